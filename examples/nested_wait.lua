-- nested_wait.lua: a main coroutine awaits asyncio.wait on its tasks and
-- prints the results of the done ones.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "協程嵌套" (nested
-- coroutines), the first program; also seeds/001_06256a0f1b3d8a40.txt,
-- "task获取结果: asyncio.wait".
-- Python -> Lua: `dones, pendings = await asyncio.wait(tasks)` ->
-- `local dones, pendings = await(asyncio.wait(tasks))`; the sets are
-- arrays (in the order of `tasks`). Takes 4 s (LUAIO_EXAMPLE_FAST=1: no
-- waiting).
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

  local dones, pendings = await(asyncio.wait(tasks))
  for _, task in ipairs(dones) do
    print("Task ret: ", task:result())
  end
end)

local loop = example.loop()
local start = now()
loop:run_until_complete(main())
print("TIME: ", now() - start)
