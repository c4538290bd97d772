-- run_forever_gather.lua: run_forever stopped by a done callback on the
-- gather of two coroutines, so the loop stops only when both are done.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.5.2. run_forever", the
-- gather + done_callback program.
-- Python -> Lua: `functools.partial(done_callback, loop)` -> a closure
-- calling done_callback(loop, futu). Takes 3 s (LUAIO_EXAMPLE_FAST=1: no
-- waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(loop, x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
  print("Done")
end)

local function done_callback(loop, futu)
  loop:stop()
end

local loop = example.loop()

local futus = asyncio.gather(do_some_work(loop, 1), do_some_work(loop, 3))
futus:add_done_callback(function(f) done_callback(loop, f) end)

loop:run_forever()
