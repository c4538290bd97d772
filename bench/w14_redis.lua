--- w14 redis: 50 tasks on one asyncio.redis client each run N/50 pairs
-- of SET k v then GET k (awaiting each), against the redis-server at
-- REDIS_URL (default redis://127.0.0.1:6379/0). The client pipelines
-- the commands of all tasks on its shared connection (one write per loop
-- iteration). Every GET is checked. N counts the commands (2 per pair).
--
--   luaio bench/w14_redis.lua [N]      (N defaults to 200000)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local async, await = asyncio.async, asyncio.await

local N = bench.count(200000)
local TASKS = 50
local gc = bench.setup_gc()

local worker = async(function(r, id, pairs_n)
  local key = "w14:" .. id
  for i = 1, pairs_n do
    local v = tostring(i)
    await(r:set(key, v))
    local got = await(r:get(key))
    if got ~= v then error(("w14: GET %s -> %s, expected %s"):format(
      key, tostring(got), v)) end
  end
end)

asyncio.run(async(function()
  local r <close> = await(redis.from_url(os.getenv("REDIS_URL")
                                         or "redis://127.0.0.1:6379/0"))
  local loop = asyncio.get_running_loop()
  local per = N // (2 * TASKS)
  local t0, c0 = loop:time(), os.clock()
  local ts = {}
  for i = 1, TASKS do ts[i] = asyncio.create_task(worker(r, i, per)) end
  await(asyncio.gather(table.unpack(ts)))
  local seconds, cpu = loop:time() - t0, os.clock() - c0
  bench.report("w14_redis", per * TASKS * 2, seconds,
               string.format("cpu=%.4f gc=%s", cpu, gc))
end))
