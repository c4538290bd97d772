-- run_forever_stop.lua: a task stops the loop that run_forever runs, then
-- the stopped loop is closed.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "loop.stop暂停事件循环"
-- (loop.stop pauses the event loop).
-- Python -> Lua: loop.stop() -> loop:stop(); `'after {}s stop'.format(t)`
-- -> string.format. Takes 1 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local work = async(function(loop, t)
  print("start")
  await(asyncio.sleep(t))
  print(string.format("after %ss stop", t))
  loop:stop()   -- stop the loop; it may be run again afterwards
end)

local loop = example.loop()
local task = asyncio.ensure_future(work(loop, 1))
loop:run_forever()   -- runs until loop:stop()
loop:close()         -- only a stopped loop may be closed
