-- loop_closed_run.lua: a closed loop cannot be run again.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.6. Close Loop?", second
-- fragment ("此处异常": an exception here).
-- Python -> Lua: `loop.close()` -> loop:close(). As in Python, the
-- RuntimeError "Event loop is closed" ends the program: the CLI prints it
-- with its traceback on stderr and exits with status 1, and the coroutine
-- that never ran is reported there as never awaited. Takes 1 s
-- (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(loop, x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
  print("Done")
end)

local loop = example.loop()

loop:run_until_complete(do_some_work(loop, 1))
loop:close()
loop:run_until_complete(do_some_work(loop, 3))  -- the error is raised here
