-- nested_gather_return.lua: main returns what it awaited from
-- asyncio.gather, and run_until_complete returns that to the script.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "協程嵌套" (nested
-- coroutines), "不在main協程函數里處理結果"; also
-- seeds/001_06256a0f1b3d8a40.txt, "run_until_complete配合asyncio.gather".
-- Python -> Lua: `return await asyncio.gather(*tasks)` ->
-- `return await(asyncio.gather(table.unpack(tasks)))`. Takes 2 s
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
  local coroutine3 = do_some_work(2)

  local tasks = {
    asyncio.ensure_future(coroutine1),
    asyncio.ensure_future(coroutine2),
    asyncio.ensure_future(coroutine3),
  }

  return await(asyncio.gather(table.unpack(tasks)))
end)

local loop = example.loop()
local results = loop:run_until_complete(main())

for _, result in ipairs(results) do
  print("Task ret: ", result)
end
