-- task_states.lua: wrap a coroutine in a task and print the task before
-- and after it runs (pending, then finished with its result).
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "創建一個task" (create a task).
-- Python -> Lua: print(task) -> print(task), whose text follows Python's
-- repr (Python 3.13 adds name='Task-1'; the coroutine's location is the Lua
-- file and line); result=None -> result=nil.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async = asyncio.async

local now = example.now

local do_some_work = async(function(x)
  print("Waiting: ", x)
end)

local start = now()

local coroutine = do_some_work(2)
local loop = example.loop()
-- local task = asyncio.ensure_future(coroutine)
local task = loop:create_task(coroutine)
print(task)
loop:run_until_complete(task)
print(task)
print("TIME: ", now() - start)
