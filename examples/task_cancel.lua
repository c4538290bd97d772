-- task_cancel.lua: cancel a task before it starts; awaiting it raises
-- CancelledError.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the first cancel program
-- (task.cancel() right after create_task).
-- Python -> Lua: `try: await task except asyncio.CancelledError: ... else:
-- ...` -> pcall(await, task) and asyncio.iserror(err,
-- asyncio.CancelledError); anything else is raised again.
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

  print("canceling task")
  task:cancel()

  print(string.format("canceled task %s", tostring(task)))
  local ok, err = pcall(await, task)
  if ok then
    print(string.format("task result: %s", repr(task:result())))
  elseif asyncio.iserror(err, asyncio.CancelledError) then
    print("caught error from canceled task")
  else
    error(err, 0)
  end
end)

local event_loop = asyncio.get_event_loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop))
end
