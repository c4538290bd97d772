-- run_until_complete.lua: run_until_complete returns once the coroutine is
-- done, and the program ends.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.5.1. run_until_complete".
-- Python -> Lua: `'Waiting ' + str(x)` -> "Waiting " .. tostring(x).
-- Takes 3 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
  print("Done")
end)

local loop = example.loop()

local coro = do_some_work(3)
loop:run_until_complete(coro)
