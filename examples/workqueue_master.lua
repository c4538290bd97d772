-- workqueue_master.lua: the master of the distributed work queue: starts
-- three worker processes (workqueue_worker.lua), enqueues N jobs, prints
-- their results in order, then stops the workers with SIGTERM (each
-- finishes what it runs and exits).
-- Beyond the tutorials: the master-worker of "master-worker主從模式"
-- (seeds/000_bde8f9ac2968a39b.txt) across processes; the same workers
-- could run on other machines (docs/workqueue-deploy.md).
--
--   luaio examples/workqueue_master.lua [N]     (N defaults to 10)
--
-- Redis at 127.0.0.1:6379, or REDIS_PORT / REDIS_DB (db 3).
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local wq = require "asyncio.workqueue"
local async, await = asyncio.async, asyncio.await

local N = tonumber(arg[1]) or 10
local here = arg[0]:match("^(.*)/") or "."
local luaio = arg[-1] or "luaio"

asyncio.run(async(function()
  local r = redis.Redis{port = tonumber(os.getenv("REDIS_PORT")) or 6379,
                        db = tonumber(os.getenv("REDIS_DB")) or 3}
  local q = wq.Queue("squares", {redis = r})
  local workers = {}
  for i = 1, 3 do
    workers[i] = await(asyncio.create_subprocess_exec(luaio,
      here .. "/workqueue_worker.lua"))
  end
  local jobs = {}
  for i = 1, N do
    jobs[i] = await(q:enqueue("square", {x = i, delay = 0.1},
                              {retries = 2, timeout = 10}))
  end
  for i, job in ipairs(jobs) do
    print(("%d squared is %d"):format(i, await(job:result{timeout = 30})))
  end
  for _, p in ipairs(workers) do p:terminate() end
  for _, p in ipairs(workers) do await(p:wait()) end
  print("workers stopped:", #workers)
  await(r:close())
end))
