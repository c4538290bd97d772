-- await_sleep.lua: a coroutine suspends on asyncio.sleep with await.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "阻塞和await" (blocking and
-- await).
-- Python -> Lua: `await asyncio.sleep(x)` -> await(asyncio.sleep(x)).
-- Takes 2 s (LUAIO_EXAMPLE_FAST=1: virtual clock, no waiting).
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

local start = now()

local coroutine = do_some_work(2)
local loop = example.loop()
local task = asyncio.ensure_future(coroutine)
loop:run_until_complete(task)

print("Task ret: ", task:result())
print("TIME: ", now() - start)
