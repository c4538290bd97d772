-- run_forever_stop_early.lua: a coroutine that stops the loop stops it for
-- every task: the first to finish ends run_forever while the other is
-- still sleeping.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.5.2. run_forever", the
-- do_some_work(loop, x) that calls loop.stop(), run with two coroutines.
-- Python -> Lua: loop.stop() -> loop:stop(). The second task is still
-- pending when the script ends. Takes 1 s (LUAIO_EXAMPLE_FAST=1: no
-- waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(loop, x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
  print("Done")
  loop:stop()
end)

local loop = example.loop()

asyncio.ensure_future(do_some_work(loop, 1))
asyncio.ensure_future(do_some_work(loop, 3))

loop:run_forever()
