-- wait_tasks.lua: three tasks run concurrently; asyncio.wait waits for all.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "并发和并行" (concurrency and
-- parallelism).
-- Python -> Lua: `loop.run_until_complete(asyncio.wait(tasks))` is the
-- same call; `for task in tasks` -> ipairs. Takes 4 s
-- (LUAIO_EXAMPLE_FAST=1: virtual clock, no waiting).
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

local loop = example.loop()
local start = now()

local coroutine1 = do_some_work(1)
local coroutine2 = do_some_work(2)
local coroutine3 = do_some_work(4)

local tasks = {
  asyncio.ensure_future(coroutine1),
  asyncio.ensure_future(coroutine2),
  asyncio.ensure_future(coroutine3),
}

loop:run_until_complete(asyncio.wait(tasks))

for _, task in ipairs(tasks) do
  print("Task ret: ", task:result())
end

print("TIME: ", now() - start)
