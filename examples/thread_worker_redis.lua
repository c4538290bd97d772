-- thread_worker_redis.lua: master-worker across two threads: the main
-- thread polls a Redis list (RPOP; when it is empty, it sleeps a second
-- and tries again) and hands each task to a loop running in another
-- thread, where the tasks sleep side by side.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "master-worker主從模式"
-- (master-worker), with the loop thread of "新線程協程".
-- Python -> Lua: redis-py's blocking calls -> asyncio.redis, its replies
-- awaited with the main thread's own loop (run_until_complete blocks the
-- main thread as redis-py does); time.sleep(1) -> a second of that loop
-- (run_until_complete(asyncio.sleep(1)), which Ctrl-C interrupts as it
-- interrupts time.sleep). The loop thread: asyncio.start_loop_thread(),
-- as in thread_loop_coroutine.lua; do_some_work is sent there, so it
-- requires what it uses. The tutorial's output shows "Done 2" where
-- 新線程協程's do_some_work prints "Done after 2s": this prints "Done 2".
--
--   luaio examples/thread_worker_redis.lua [COUNT]
--
-- Runs until Ctrl-C, which ends it with KeyboardInterrupt (in Python the
-- loop thread would keep the process alive, as the tutorial says of this
-- version), or, with COUNT, until COUNT tasks were taken and done. Redis
-- at 127.0.0.1:6379 or REDIS_PORT / REDIS_DB (db 3). Feed it with
-- redis_producer.lua (the tutorial pushes 2, 5, 1, 1).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local async, await = asyncio.async, asyncio.await

local count = tonumber(arg[1])

local do_some_work = async(function(x)
  local aio = require "asyncio"
  print(("Waiting %d"):format(x))
  aio.await(aio.sleep(x))
  print(("Done %d"):format(x))
end)

-- the main thread's loop: Redis replies and the polling sleep
local loop = asyncio.get_event_loop()
local rcon = redis.Redis{port = tonumber(os.getenv("REDIS_PORT")) or 6379,
                         db = tonumber(os.getenv("REDIS_DB")) or 3}

local new_loop = asyncio.start_loop_thread()

local submitted = {}
while count == nil or #submitted < count do
  local task = loop:run_until_complete(rcon:rpop("queue"))
  if not task then
    loop:run_until_complete(asyncio.sleep(1))
  else
    submitted[#submitted + 1] = asyncio.run_coroutine_threadsafe(
      do_some_work(tonumber(task)), new_loop)
  end
end

-- with COUNT: wait for the work, stop the loop thread, close
for _, f in ipairs(submitted) do f:result() end
new_loop:stop()
new_loop:join()
loop:run_until_complete(rcon:close())
loop:close()
