-- task_result.lua: read a finished task's result with result().
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "future 與 result".
-- Python -> Lua: `'{}'.format(x)` -> string.format("%s", x). (The
-- tutorial's printed output shows "Waiting: 2", from an earlier version of
-- the program; its code prints "Waiting 2", which is what this prints.)
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async = asyncio.async

local now = example.now

local do_some_work = async(function(x)
  print(string.format("Waiting %s", x))
  return string.format("Done after %ss", x)
end)

local start = now()

local coroutine = do_some_work(2)
local loop = example.loop()
local task = asyncio.ensure_future(coroutine)
loop:run_until_complete(task)

print(string.format("Task ret: %s", task:result()))
print(string.format("TIME: %s", now() - start))
