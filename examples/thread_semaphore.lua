-- thread_semaphore.lua: nine threads take turns printing, at most three
-- at a time: each holds the semaphore for two seconds while it prints.
-- After fifteen seconds (and the threads' last turns) the main thread
-- prints its own count.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Semaphore" (using a
-- Semaphore); no asyncio in it.
-- Python -> Lua: threading.Semaphore(3) -> threading.Semaphore(3) of
-- lib/threading.lua (three tokens in a Channel the threads share); `with
-- sem:` -> `local _ <close> = sem:acquire()` in a do-block. The threads
-- are executor workers (asyncio.ThreadPoolExecutor(9)), each given its
-- number; time.sleep -> lib/blocking.lua; print -> io.write of the whole
-- line, flushed (print writes a line in pieces, which the other threads'
-- lines could split: Python's do). Python's threads print forever; here,
-- after fifteen seconds they stop at their next turn (the Event `stop`),
-- and once they have, the main thread prints its count last. Takes 16 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local threading = require "lib.threading"
local asyncio = require "asyncio"

local function fun(num, sem, stop)
  local sleep = require("lib.blocking").sleep
  while not stop:is_set() do -- `while True:` in the tutorial
    num = num + 1
    local _ <close> = sem:acquire()
    if stop:is_set() then break end
    io.write(("-------- %d\n"):format(num)):flush()
    sleep(2)
  end
end

local sem = threading.Semaphore(3)
local num = 0

local stop = threading.Event()
local threads = asyncio.ThreadPoolExecutor(9)
for i = 0, 8 do
  threads:submit(fun, i, sem, stop)
end

blocking.sleep(15)
-- the threads stop first, so that no turn prints after the main line (a
-- thread could take its turn between this print and stop:set())
stop:set()
threads:shutdown()
print("*******", num)
