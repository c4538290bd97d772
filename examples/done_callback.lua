-- done_callback.lua: a done callback reads the task's result.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "綁定回調" (bind a callback),
-- first program.
-- Python -> Lua: `'Done after {}s'.format(x)` -> string.format; the
-- callback receives the future as its only argument, as in Python.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async = asyncio.async

local now = example.now

local do_some_work = async(function(x)
  print("Waiting: ", x)
  return string.format("Done after %ss", x)
end)

local function callback(future)
  print("Callback: ", future:result())
end

local start = now()

local coroutine = do_some_work(2)
local loop = example.loop()
local task = asyncio.ensure_future(coroutine)
task:add_done_callback(callback)
loop:run_until_complete(task)

print("TIME: ", now() - start)
