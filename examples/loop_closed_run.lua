-- loop_closed_run.lua: a closed loop cannot be run again.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.6. Close Loop?", second
-- fragment ("此处异常": an exception here).
-- Python -> Lua: the tutorial lets RuntimeError end the program; here
-- pcall catches it and prints it, so the script ends normally. The
-- coroutine that never ran is reported on stderr as never awaited, as in
-- Python. Takes 1 s (LUAIO_EXAMPLE_FAST=1: no waiting).
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
local ok, err = pcall(loop.run_until_complete, loop,
                      do_some_work(loop, 3))  -- the error is raised here
if not ok then print(err) end
