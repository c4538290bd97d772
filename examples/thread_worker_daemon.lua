-- thread_worker_daemon.lua: the master-worker of thread_worker_redis.lua,
-- stopped with Ctrl-C: the main thread catches KeyboardInterrupt, prints
-- it and stops the loop thread; that thread is a daemon, so the program
-- ends with the main thread.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "停止子線程" (stopping the
-- child thread), the program with t.setDaemon(True).
-- Python -> Lua: the loop thread and Redis as in thread_worker_redis.lua;
-- `try: ... except KeyboardInterrupt as e: print(e)` -> pcall and
-- asyncio.iserror, printing the error's message (empty, as Python's
-- str(e)). A daemon thread -> a loop thread that is not joined:
-- the process ends when the main chunk does. The `# print('start rpop')`
-- of the tutorial stays a comment.
--
-- Runs until Ctrl-C. Redis at 127.0.0.1:6379 or REDIS_PORT / REDIS_DB
-- (db 3). Feed it with redis_producer.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local async, await = asyncio.async, asyncio.await

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

local new_loop = asyncio.start_loop_thread()  -- never joined: a daemon

local ok, err = pcall(function()
  while true do
    -- print('start rpop')
    local task = loop:run_until_complete(rcon:rpop("queue"))
    if not task then
      loop:run_until_complete(asyncio.sleep(1))
    else
      asyncio.run_coroutine_threadsafe(do_some_work(tonumber(task)),
                                       new_loop)
    end
  end
end)
if not asyncio.iserror(err, asyncio.KeyboardInterrupt) then error(err, 0) end
print(err.message)
new_loop:stop()
-- the main thread's loop: end the interrupted wait and the Redis reader
for _, t in ipairs(asyncio.all_tasks(loop)) do t:cancel() end
loop:run_until_complete(rcon:close())
loop:close()
