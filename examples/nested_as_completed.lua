-- nested_as_completed.lua: main awaits its tasks in the order they
-- complete, with asyncio.as_completed.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "協程嵌套" (nested
-- coroutines), "也可以使用asyncio的as_completed方法"; also
-- seeds/001_06256a0f1b3d8a40.txt, "asyncio的as_completed方法".
-- Python -> Lua: `for task in asyncio.as_completed(tasks): result = await
-- task` -> `for task in asyncio.as_completed(tasks) do local result =
-- await(task)`: each step of the loop waits for the next task to finish.
-- Takes 4 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local now = example.now

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

  for task in asyncio.as_completed(tasks) do
    local result = await(task)
    print(string.format("Task ret: %s", result))
  end
end)

local loop = example.loop()
local start = now()
loop:run_until_complete(main())
print("TIME: ", now() - start)
