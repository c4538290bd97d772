-- redis_coro_consumer.lua: the consumer of the tutorial's Redis queue
-- model: the main thread takes messages off the list coro_test (RPOP, in
-- a loop that never pauses) and runs a coroutine for each in a loop
-- thread, where they sleep side by side.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "redis隊列模型", 消費者代碼
-- (the consumer).
-- Python -> Lua: redis-py's blocking rpop -> asyncio.redis, its reply
-- awaited with the main thread's own loop (run_until_complete blocks the
-- main thread as redis-py does); bytes.decode(msg) -> the reply is a Lua
-- string already; the daemon loop thread -> asyncio.start_loop_thread(),
-- not joined; thread_example is sent there, so it requires what it uses.
-- As in the tutorial, the main loop polls Redis without a pause.
--
--   luaio examples/redis_coro_consumer.lua [COUNT]
--
-- Runs until Ctrl-C, or until COUNT messages were taken and their
-- coroutines done. Redis at 127.0.0.1:6379, db 0 as in the tutorial, or
-- REDIS_PORT / REDIS_DB. Feed it with redis_coro_producer.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local async, await = asyncio.async, asyncio.await

local count = tonumber(arg[1])

local thread_example = async(function(name)
  local aio = require "asyncio"
  print("正在執行name:", name)
  aio.await(aio.sleep(2))
  return "返回結果:" .. name
end)

-- the main thread's loop, for the Redis replies
local loop = asyncio.get_event_loop()
local redis_conn = redis.Redis{
  port = tonumber(os.getenv("REDIS_PORT")) or 6379,
  db = tonumber(os.getenv("REDIS_DB")) or 0}

local new_loop = asyncio.start_loop_thread()  -- never joined: a daemon

-- receive Redis messages in a loop and add a coroutine for each
local submitted = {}
while count == nil or #submitted < count do
  local msg = loop:run_until_complete(redis_conn:rpop("coro_test"))
  if msg then
    submitted[#submitted + 1] = asyncio.run_coroutine_threadsafe(
      thread_example("Zarten" .. msg), new_loop)
  end
end

-- with COUNT: wait for the coroutines, then close
for _, f in ipairs(submitted) do f:result() end
new_loop:stop()
loop:run_until_complete(redis_conn:close())
loop:close()
