-- coroutine_workers_brpop.lua: the same master-worker with BRPOP: each
-- worker blocks in Redis until a task arrives (no polling); the client
-- gives each blocked BRPOP a pooled connection of its own, since a
-- blocked connection answers nothing else; three workers share the
-- queue and the client. Ctrl-C cancels them and the loop closes.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "aiohttp": "對于redis的消費，
-- 還有一個block的方法" (the blocking way to consume the queue, brpop),
-- applied to the coroutine workers of "協程消費".
-- Python -> Lua: `_, task = await rcon.brpop("queue")` ->
-- `local _, task = await(rcon:brpop("queue", 0))` (asyncio.redis).
--
-- Redis at 127.0.0.1:6379, or REDIS_PORT / REDIS_DB from the environment
-- (db 3). Feed it with redis_producer.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local async, await = asyncio.async, asyncio.await

local now = example.now
local PORT = tonumber(os.getenv("REDIS_PORT")) or 6379
local DB = tonumber(os.getenv("REDIS_DB")) or 3

local rcon = redis.Redis{port = PORT, db = DB}

local worker = async(function(name)
  print("Start worker", name)
  while true do
    local start = now()
    local _, task = await(rcon:brpop("queue", 0))
    print("Wait ", name, tonumber(task))
    await(asyncio.sleep(tonumber(task)))
    print("Done ", name, task, now() - start)
  end
end)

local function main()
  local loop = asyncio.get_event_loop()
  for i = 1, 3 do asyncio.ensure_future(worker(i)) end
  local _ <close> = example.finally(function() loop:close() end)
  local ok, err = pcall(loop.run_forever, loop)
  if not ok then
    if not asyncio.iserror(err, asyncio.KeyboardInterrupt) then
      error(err, 0)
    end
    print(asyncio.gather(table.unpack(asyncio.all_tasks(loop))):cancel())
    loop:stop()
    loop:run_forever()
  end
end

main()
