-- thread_timer.lua: a timer thread runs a function five seconds after it
-- starts; the main thread waits for it, then prints.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Timer" (a timer thread);
-- no asyncio in it.
-- Python -> Lua: threading.Timer(5, fun) is a thread that waits, then
-- calls fun: here an executor worker (asyncio.ThreadPoolExecutor(1), the
-- closest thing here to a thread) runs a function that sleeps 5 s and
-- calls fun; t.start() -> submit, t.join() -> result(). The functions go
-- to the worker's own Lua state, so they require what they use;
-- time.sleep -> lib/blocking.lua. Takes 7 s (LUAIO_EXAMPLE_FAST=1: a
-- tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"

local function fun()
  print("--------")
  require("lib.blocking").sleep(2)
end

--- Timer(interval, fn): the body of the timer thread.
local function timer(interval, fn)
  require("lib.blocking").sleep(interval)
  fn()
end

local pool = asyncio.ThreadPoolExecutor(1)
local t = pool:submit(timer, 5, fun)
t:result()
pool:shutdown()
print("*******")
