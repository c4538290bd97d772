-- loop_close.lua: a loop that is not closed can be run again; close it
-- when done.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.6. Close Loop?", first
-- fragment, with the do_some_work(loop, x) of "1.5.2" (the last one, which
-- does not stop the loop).
-- Python -> Lua: loop.close() -> loop:close(). Takes 4 s
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
loop:run_until_complete(do_some_work(loop, 3))
loop:close()
