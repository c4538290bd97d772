-- thread_condition.lua: two threads wake each other through a Condition,
-- taking turns once a second: one prints a line of stars, the other a
-- line of dashes.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Condition" (threads
-- waking each other); no asyncio in it.
-- Python -> Lua: threading.Condition() -> threading.Condition() of
-- lib/threading.lua; `with cond:` -> `local _ <close> = cond:acquire()`
-- in the loop's body; cond.wait() / notify() -> cond:wait() / notify().
-- The threads are executor workers (asyncio.ThreadPoolExecutor(2));
-- time.sleep -> lib/blocking.lua. The program counts on Python's GIL: a
-- thread that notifies runs on until it waits, so the other is never
-- notified before it waits. These threads run side by side, so a notify
-- can come first: the Condition of lib/threading.lua keeps it for the
-- other thread's next wait, and the two take turns as in Python. Python's
-- threads take turns forever; here each takes five and the main thread
-- waits for them. Takes 10 s (LUAIO_EXAMPLE_FAST=1: a tutorial second
-- lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local threading = require "lib.threading"
local asyncio = require "asyncio"

local function fun1(cond)
  local sleep = require("lib.blocking").sleep
  for _ = 1, 5 do -- `while True:` in the tutorial
    local _ <close> = cond:acquire()
    cond:wait()
    print("--------")
    sleep(1)
    cond:notify()
  end
end

local function fun2(cond)
  local sleep = require("lib.blocking").sleep
  for _ = 1, 5 do -- `while True:` in the tutorial
    local _ <close> = cond:acquire()
    cond:notify()
    print("*******")
    sleep(1)
    cond:wait()
  end
end

local cond = threading.Condition()

local threads = asyncio.ThreadPoolExecutor(2)
local t1 = threads:submit(fun1, cond)
local t2 = threads:submit(fun2, cond)

t1:result()
t2:result()
threads:shutdown()
