-- thread_subclass.lua: five threads of a Thread subclass, each printing a
-- line every second.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "继承Thread类" (subclassing
-- Thread); no asyncio in it.
-- Python -> Lua: the subclass thread1 with its run() -> a Lua class
-- whose start() runs self.run in a new OS thread: the closest thing
-- here to threading.Thread is a loop thread (asyncio.start_loop_thread()),
-- given run with call_soon_threadsafe. run goes to that thread's own Lua
-- state, so it requires what it uses; time.sleep -> lib/blocking.lua;
-- print -> io.write of the whole line (print writes a line in pieces,
-- which the other threads' lines could split). Python's threads print
-- forever; here each prints five times, then the main thread stops and
-- joins them. Takes 5 s (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts
-- 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"

local thread1 = {}
thread1.__index = thread1

function thread1.new()
  return setmetatable({}, thread1)
end

--- Runs in the new thread.
function thread1.run()
  local blocking = require "lib.blocking"
  for _ = 1, 5 do -- `while True:` in the tutorial
    io.write("------------\n")
    blocking.sleep(1)
  end
end

--- Starts run in a new thread.
function thread1:start()
  self.loop = asyncio.start_loop_thread()
  self.loop:call_soon_threadsafe(self.run)
end

local threads = {}
for each = 1, 5 do
  threads[each] = thread1.new()
  threads[each]:start()
end

for _, t in ipairs(threads) do
  t.loop:stop()
  t.loop:join()
end
