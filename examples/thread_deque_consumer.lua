-- thread_deque_consumer.lua: producer-consumer across three threads: the
-- main thread produces messages, a consumer thread takes them from a
-- shared deque and submits a coroutine per message to a loop thread.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "協程中生產-消費模型設計"
-- (producer-consumer in coroutines), the deque program.
-- Python -> Lua: the loop thread as in thread_loop_call_soon.lua. Lua
-- threads share no tables, so the deque becomes an asyncio.Channel()
-- (appendleft -> put, pop -> get: the same FIFO order), which the
-- consumer blocks on instead of spinning on `if dq:`. The consumer is
-- Python's Thread(target=consumer): the closest thing here is an
-- executor worker, a plain OS thread running a function with its own Lua
-- state (ThreadPoolExecutor(1):submit(consumer, ...)). Python's threads
-- are daemons and its producer never stops; here the producer makes five
-- messages and closes the channel; the consumer then waits for its
-- coroutines and returns, and the main thread stops the loop. Takes 10 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"

--- The body of the coroutine function thread_example. A coroutine
-- function (made by asyncio.async) stays in its state; the consumer
-- thread gets this plain function and makes its own.
local function thread_example(name)
  local aio = require "asyncio"
  print("正在執行name: " .. name)
  aio.await(aio.sleep(require("lib.blocking").seconds(2)))
  return "返回結果:" .. name
end

--- Runs in the consumer thread: dq, new_loop and thread_example arrive
-- as arguments (a channel, a loop reference, a function).
local function consumer(dq, new_loop, example_body)
  local aio = require "asyncio"
  local example = aio.async(example_body)
  local submitted = {}
  while true do
    local ok, msg = pcall(dq.get, dq)
    if not ok then break end -- closed and empty: the producer is done
    if msg then
      submitted[#submitted + 1] =
        aio.run_coroutine_threadsafe(example("Zarten" .. msg), new_loop)
    end
  end
  for _, f in ipairs(submitted) do f:result() end
  return #submitted
end

local dq = asyncio.Channel()
local new_loop = asyncio.start_loop_thread()

local consumer_thread = asyncio.ThreadPoolExecutor(1)
local consumed = consumer_thread:submit(consumer, dq, new_loop,
                                        thread_example)

for _ = 1, 5 do
  local i = math.random(1, 10)
  dq:put(tostring(i))
  require("lib.blocking").sleep(2)
end
dq:close()

consumed:result()
consumer_thread:shutdown()
new_loop:stop()
new_loop:join()
