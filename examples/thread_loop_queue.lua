-- thread_loop_queue.lua: coroutines submitted to a loop thread hand
-- their results back to the main thread through a thread-safe queue.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "动态注册协程: 异步"
-- (registering coroutines dynamically, asynchronously).
-- Python -> Lua: queue.Queue -> asyncio.Channel(), a queue shared by the
-- threads (sent by reference); queue.put -> ch:put (a task could also
-- await(ch:aput(msg))), queue.get -> ch:get. The loop thread as in
-- thread_loop_call_soon.lua. time.ctime() -> os.date. Python's main
-- thread loops forever on queue.get(); here it takes the two messages,
-- then stops the loop and joins its thread. Takes 6 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"
local async = asyncio.async

local function ctime()
  return os.date("%a %b %e %H:%M:%S %Y")
end

local do_sleep = async(function(x, queue, msg)
  local aio = require "asyncio"
  aio.await(aio.sleep(require("lib.blocking").seconds(x)))
  queue:put(msg or "")
end)

local queue = asyncio.Channel()

-- a loop that runs forever in the background, in a new thread
local new_loop = asyncio.start_loop_thread()

print(ctime())

-- add two coroutines; the main thread is not blocked
asyncio.run_coroutine_threadsafe(do_sleep(6, queue, "第一个"), new_loop)
asyncio.run_coroutine_threadsafe(do_sleep(3, queue, "第二个"), new_loop)

for _ = 1, 2 do
  local msg = queue:get()
  print(string.format("%s 协程运行完..", msg))
  print(ctime())
end

new_loop:stop()
new_loop:join()
