-- done_callback_notify.lua: a done callback notifies that the work is
-- finished.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.3. 回调" (callbacks), whose
-- fragment completes the program of "1.2.1. 完整代码".
-- Python -> Lua: `futu.add_done_callback(done_callback)` ->
-- futu:add_done_callback(done_callback). Takes 3 s
-- (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
end)

local loop = example.loop()

local function done_callback(futu)
  print("Done")
end

local futu = asyncio.ensure_future(do_some_work(3))
futu:add_done_callback(done_callback)

loop:run_until_complete(futu)
