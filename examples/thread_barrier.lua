-- thread_barrier.lua: nine threads start a second apart and wait at a
-- barrier for three: they go on by threes, each three printing together.
-- Fifteen seconds after the last start the main thread prints.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Barrier" (a Barrier:
-- threads go on once enough of them wait); no asyncio in it.
-- Python -> Lua: threading.Barrier(3) -> threading.Barrier(3) of
-- lib/threading.lua; bar.wait() -> bar:wait(). The threads are executor
-- workers (asyncio.ThreadPoolExecutor(9)), each given its number;
-- time.sleep -> lib/blocking.lua; print -> io.write of the whole line,
-- flushed (print writes a line in pieces, which the other threads' lines
-- could split: Python's do). Python's main thread prints with the
-- threads long done; here it waits for them (shutdown) before it prints,
-- so that its line comes last on a slow machine too. Takes 24 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local threading = require "lib.threading"
local asyncio = require "asyncio"

local function fun(num, bar)
  bar:wait()
  io.write(("-------- %d\n"):format(num)):flush()
  require("lib.blocking").sleep(2)
end

local bar = threading.Barrier(3)
local num = 0

local threads = asyncio.ThreadPoolExecutor(9)
for i = 0, 8 do
  blocking.sleep(1)
  threads:submit(fun, i, bar)
end

blocking.sleep(15)
threads:shutdown() -- long done, unless the machine is very slow
print("*******", num)
