-- thread_event.lua: a thread waits for an event, prints, clears it and
-- waits again; the main thread sets the event once a second, five times.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Event" (wait - set -
-- clear: block, unblock, block again); no asyncio in it.
-- Python -> Lua: threading.Event() -> threading.Event() of
-- lib/threading.lua; event.wait() / set() / clear() -> event:wait() /
-- set() / clear(). The thread is an executor worker
-- (asyncio.ThreadPoolExecutor(1)) given fun; time.sleep ->
-- lib/blocking.lua. Python's thread waits forever after the fifth line
-- (the program never ends); here it stops after five lines and the main
-- thread waits for it. As in Python, the fifth line and the main
-- thread's last come at the same moment, in either order. Takes 5 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local threading = require "lib.threading"
local asyncio = require "asyncio"

local function fun(event)
  for _ = 1, 5 do -- `while True:` in the tutorial
    event:wait()
    print("--------")
    event:clear()
  end
end

local event = threading.Event()

local threads = asyncio.ThreadPoolExecutor(1)
local t = threads:submit(fun, event)

for _ = 1, 5 do
  blocking.sleep(1)
  -- a set made before the thread cleared the last one would be lost and
  -- leave it waiting forever: on a very slow machine, wait for the clear
  while event:is_set() do blocking.sleep(0.01) end
  event:set()
end

print("********")
t:result()
threads:shutdown()
