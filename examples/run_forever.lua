-- run_forever.lua: run_forever goes on running after the task is done.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.5.2. run_forever", first
-- program.
-- Python -> Lua: as written, the tutorial's program never ends ("<程序没有
-- 退出>", the program does not exit). So that this script ends, one line is
-- added: a timer stops the loop 4 s after it starts, 1 s after "Done". Takes
-- 4 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
  print("Done")
end)

local loop = example.loop()

local coro = do_some_work(3)
asyncio.ensure_future(coro)

loop:call_later(4, loop.stop, loop)   -- added: end the script
loop:run_forever()
