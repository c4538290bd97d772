-- thread_loop_call_soon_here.lua: a loop running in another thread, fed
-- with call_soon_threadsafe; the blocking calls run there one after
-- another while the main thread goes on at once and prints "here".
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "動態添加協程", 同步方式 (the
-- synchronous way): the program of thread_loop_call_soon.lua (seed 000)
-- with a last print('here').
-- Python -> Lua: as in thread_loop_call_soon.lua: asyncio.start_loop_thread()
-- for new_event_loop + Thread(start_loop); more_work is sent to that
-- thread as bytecode, so it requires what it uses; time.sleep ->
-- lib/blocking.lua. Python's program never ends; here the main thread
-- stops the loop after the two calls (stop is queued behind them) and
-- joins the thread. "here" and "More work 6" come from two threads at
-- about the same time, in either order (in Python too). Takes 9 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local asyncio = require "asyncio"

local now = blocking.now

local function more_work(x)
  print(string.format("More work %s", x))
  require("lib.blocking").sleep(x)
  print(string.format("Finished more work %s", x))
end

local start = now()
local new_loop = asyncio.start_loop_thread()
print(string.format("TIME: %s", now() - start))

new_loop:call_soon_threadsafe(more_work, 6)
new_loop:call_soon_threadsafe(more_work, 3)
print("here")

new_loop:stop()
new_loop:join()
