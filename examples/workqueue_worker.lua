-- workqueue_worker.lua: a worker process of the distributed work queue
-- (asyncio.workqueue): takes jobs from the queue "squares" and runs them,
-- up to 20 at a time, until SIGTERM; then finishes the running jobs and
-- exits. Run one per core, on as many machines as share the Redis.
-- Beyond the tutorials: the master-worker of "master-worker主從模式"
-- (seeds/000_bde8f9ac2968a39b.txt) across processes and machines, with
-- what a plain Redis list lacks (leases, retries, results).
--
--   luaio examples/workqueue_worker.lua
--
-- Redis at 127.0.0.1:6379, or REDIS_PORT / REDIS_DB (db 3).
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local wq = require "asyncio.workqueue"
local async, await = asyncio.async, asyncio.await

local functions = {}

--- square({x =, delay =}) -> x * x, after delay seconds.
functions.square = async(function(args, job)
  await(asyncio.sleep(args.delay or 0))
  return args.x * args.x
end)

asyncio.run(async(function()
  local r = redis.Redis{port = tonumber(os.getenv("REDIS_PORT")) or 6379,
                        db = tonumber(os.getenv("REDIS_DB")) or 3}
  local q = wq.Queue("squares", {redis = r, lease = 5})
  local w = wq.Worker(q, {functions = functions, concurrency = 20})
  await(w:run())
  await(r:close())
end))
