-- timer.lua: a timer built from asyncio.sleep and a done callback.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.8. Timer".
-- Python -> Lua: `lambda futu: print('Done')` -> function(futu)
-- print("Done") end. Takes 3 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local loop = example.loop()

local timer = async(function(x, cb)
  local futu = asyncio.ensure_future(asyncio.sleep(x))
  futu:add_done_callback(cb)
  await(futu)
end)

local t = timer(3, function(futu) print("Done") end)
loop:run_until_complete(t)
