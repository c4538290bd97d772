-- nested_gather.lua: a main coroutine awaits asyncio.gather on its tasks;
-- the results come back in the order of the tasks.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "協程嵌套" (nested
-- coroutines), the gather variant of the first program.
-- Python -> Lua: `results = await asyncio.gather(*tasks)` ->
-- `local results = await(asyncio.gather(table.unpack(tasks)))`, a list.
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

  local results = await(asyncio.gather(table.unpack(tasks)))
  for _, result in ipairs(results) do
    print("Task ret: ", result)
  end
end)

local loop = example.loop()
local start = now()
loop:run_until_complete(main())
print("TIME: ", now() - start)
