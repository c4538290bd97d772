-- coroutine_workers.lua: master-worker in one thread: worker coroutines
-- poll a Redis list themselves (RPOP; when it is empty, sleep a second and
-- try again) and sleep for each task's value; the loop runs until Ctrl-C,
-- which cancels every task before the loop closes.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "協程消費" (consuming with
-- coroutines).
-- Python -> Lua: redis-py's blocking `rcon.rpop("queue")` -> the
-- non-blocking await(rcon:rpop("queue")) (asyncio.redis), so the
-- workers wait for Redis without blocking each other;
-- `asyncio.Task.all_tasks()` (gone since Python 3.9) -> asyncio.all_tasks;
-- `except KeyboardInterrupt` -> pcall and asyncio.iserror. Redis prints
-- task values as b'5' in Python, as 5 here.
--
-- Redis at 127.0.0.1:6379, or REDIS_PORT / REDIS_DB from the environment
-- (db 3, as the tutorial). Feed it with redis_producer.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local async, await = asyncio.async, asyncio.await

local now = example.now
local rcon

local worker = async(function()
  print("Start worker")
  while true do
    local start = now()
    local task = await(rcon:rpop("queue"))
    if not task then
      await(asyncio.sleep(1))
    else
      print("Wait ", tonumber(task))
      await(asyncio.sleep(tonumber(task)))
      print("Done ", task, now() - start)
    end
  end
end)

local function main()
  local loop = asyncio.get_event_loop()
  rcon = redis.Redis{port = tonumber(os.getenv("REDIS_PORT")) or 6379,
                    db = tonumber(os.getenv("REDIS_DB")) or 3}
  asyncio.ensure_future(worker())
  asyncio.ensure_future(worker())
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
