--- w15 workqueue: N jobs through asyncio.workqueue with 4 worker
-- processes (this file run with the argument "worker"), each running up
-- to 50 jobs at once. The master starts the workers, waits until each is
-- ready, then enqueues the N jobs (a function returning its argument)
-- from 50 tasks and waits until Redis counts N done; the time runs from
-- the first enqueue to the last job done. Every result is checked.
-- Redis at REDIS_URL (default redis://127.0.0.1:6379/0; its queue
-- "w15" is emptied first).
--
--   luaio bench/w15_workqueue.lua [N]      (N defaults to 20000)

local here = arg[0]:match("^(.*/)") or "./"
local bench = dofile(here .. "common.lua")
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local wq = require "asyncio.workqueue"
local async, await = asyncio.async, asyncio.await

local URL = os.getenv("REDIS_URL") or "redis://127.0.0.1:6379/0"
local WORKERS, TASKS = 4, 50

if arg[1] == "worker" then
  asyncio.run(async(function()
    local q = wq.Queue("w15", {redis = URL})
    local w = wq.Worker(q, {concurrency = 50, functions = {
      echo = function(x) return x end}})
    local t = asyncio.create_task(w:run())
    await(asyncio.sleep(0))
    io.write("ready\n")
    io.stdout:flush()
    await(t)
    await(q:close())
  end))
  return
end

local N = bench.count(20000)
local gc = bench.setup_gc()

asyncio.run(async(function()
  local r = await(redis.from_url(URL))
  for _, k in ipairs(await(r:keys("wq:w15:*"))) do await(r:delete(k)) end
  local q = wq.Queue("w15", {redis = r})
  local workers = {}
  for i = 1, WORKERS do
    workers[i] = await(asyncio.create_subprocess_exec(arg[-1], arg[0],
      "worker", {stdout = asyncio.PIPE}))
    assert(await(workers[i].stdout:readline()) == "ready\n")
  end
  local loop = asyncio.get_running_loop()
  local t0, c0 = loop:time(), os.clock()
  local jobs = {}
  local producer = async(function(first)
    for i = first, N, TASKS do jobs[i] = await(q:enqueue("echo", i)) end
  end)
  local ps = {}
  for i = 1, TASKS do ps[i] = asyncio.create_task(producer(i)) end
  await(asyncio.gather(table.unpack(ps)))
  local enqueued = loop:time() - t0
  while (await(q:counts())).done < N do await(asyncio.sleep(0.002)) end
  local seconds, cpu = loop:time() - t0, os.clock() - c0
  -- check every result (not timed)
  local p = r:pipeline(false)
  for i = 1, N do p:hget("wq:w15:job:" .. jobs[i].id, "result") end
  local res = await(p:execute())
  for i = 1, N do
    if wq.decode(res[i])[1] ~= i then
      error(("w15: job %d result %s"):format(i, tostring(res[i])))
    end
  end
  for _, w in ipairs(workers) do w:terminate() end
  for _, w in ipairs(workers) do await(w:wait()) end
  await(r:close())
  bench.report("w15_workqueue", N, seconds,
               string.format("cpu=%.4f enqueue=%.4f gc=%s", cpu, enqueued,
                             gc))
end))
