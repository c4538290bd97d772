-- wait_coroutines.lua: run_until_complete(asyncio.wait(coros)) runs a list
-- of coroutine objects concurrently.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.7. gather vs. wait"; the
-- same call in seeds/001_06256a0f1b3d8a40.txt ("传入loop的方法:
-- asyncio.wait") and seeds/004_d4f6bba75a86f4a7.txt ("gather和wait 的區別").
-- Python -> Lua: the same call. asyncio.wait wraps the coroutine objects
-- in tasks, as the tutorials' Python did (3.11 refuses them). Takes 3 s
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

local coros = {do_some_work(loop, 1), do_some_work(loop, 3)}
loop:run_until_complete(asyncio.wait(coros))
