-- thread_target.lua: a thread running a plain function that prints a
-- count, one number a second.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "直接使用Thread类" (using
-- Thread directly); no asyncio in it.
-- Python -> Lua: Thread(target=func, args=(1,)).start() -> a loop thread
-- (asyncio.start_loop_thread(), the closest thing here to a plain
-- thread) given func and its argument with call_soon_threadsafe. func goes
-- to that thread's own Lua state, so it requires what it uses;
-- time.sleep -> lib/blocking.lua. Python's thread counts forever; here it
-- stops after five numbers, and the main thread stops and joins it.
-- Takes 5 s (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"

local function func(num)
  local blocking = require "lib.blocking"
  for _ = 1, 5 do -- `while True:` in the tutorial
    print(num)
    num = num + 1
    blocking.sleep(1)
  end
end

local t = asyncio.start_loop_thread()
t:call_soon_threadsafe(func, 1)

t:stop()
t:join()
