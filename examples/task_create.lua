-- task_create.lua: create a task from inside a coroutine, print it while
-- pending, await it, print it finished.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the create_task program
-- (task_func, main).
-- Python -> Lua: `{!r}` of a task -> tostring(task), which follows Python's
-- repr; `{!r}` of a string -> example.repr.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local repr = example.repr

local task_func = async(function()
  print("in task_func")
  return "the result"
end)

local main = async(function(loop)
  print("creating task")
  local task = loop:create_task(task_func())
  print(string.format("waiting for %s", tostring(task)))
  local return_value = await(task)
  print(string.format("task completed %s", tostring(task)))
  print(string.format("return value: %s", repr(return_value)))
end)

local event_loop = asyncio.get_event_loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop))
end
