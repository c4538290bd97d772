-- ensure_future_run.lua: wrap a coroutine with ensure_future and run the
-- loop until it is done.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.2.1. 完整代码" (the
-- complete program).
-- Python -> Lua: `"Waiting " + str(x)` -> "Waiting " .. tostring(x).
-- Takes 3 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
end)

local loop = example.loop()
-- loop:run_until_complete(do_some_work(3))
loop:run_until_complete(asyncio.ensure_future(do_some_work(3)))
