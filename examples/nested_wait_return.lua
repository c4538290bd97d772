-- nested_wait_return.lua: main returns both values of asyncio.wait, and
-- run_until_complete returns them to the script.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "協程嵌套" (nested
-- coroutines), "或者返回使用asyncio.wait方式掛起協程"; also
-- seeds/001_06256a0f1b3d8a40.txt, "loop.run_until_complete配合asyncio.wait".
-- Python -> Lua: `done, pending = loop.run_until_complete(main())` is the
-- same: run_until_complete returns every value main returned. Takes 4 s
-- (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(x)
  print("Waiting: ", x)
  await(asyncio.sleep(x))
  return string.format("Done after %ss", x)
end)

local main = async(function()
  local coroutine1 = do_some_work(1)
  local coroutine2 = do_some_work(2)
  local coroutine3 = do_some_work(4)

  local tasks = {
    asyncio.ensure_future(coroutine1),
    asyncio.ensure_future(coroutine2),
    asyncio.ensure_future(coroutine3),
  }

  return await(asyncio.wait(tasks))
end)

local loop = example.loop()
local done, pending = loop:run_until_complete(main())

for _, task in ipairs(done) do
  print("Task ret: ", task:result())
end
