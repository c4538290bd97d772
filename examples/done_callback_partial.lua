-- done_callback_partial.lua: a done callback that takes an extra argument.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "綁定回調" (bind a callback),
-- the functools.partial variant, completed into the first program.
-- Python -> Lua: `functools.partial(callback, 2)` -> a closure that calls
-- callback(2, future); the future still comes last.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async = asyncio.async

local now = example.now

local do_some_work = async(function(x)
  print("Waiting: ", x)
  return string.format("Done after %ss", x)
end)

local function callback(t, future)
  print("Callback:", t, future:result())
end

local start = now()

local coroutine = do_some_work(2)
local loop = example.loop()
local task = asyncio.ensure_future(coroutine)
task:add_done_callback(function(future) callback(2, future) end)
loop:run_until_complete(task)

print("TIME: ", now() - start)
