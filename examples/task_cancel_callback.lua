-- task_cancel_callback.lua: a callback cancels a sleeping task; the task
-- sees CancelledError at its await, and so does the coroutine awaiting it.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the second cancel program
-- (task_canceller scheduled with call_soon).
-- Python -> Lua: `except asyncio.CancelledError: ...; raise` -> pcall, then
-- error(err, 0) to raise the same error object again. The 1 s sleep is
-- cancelled at once, so this takes no time.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local task_func = async(function()
  print("in task_func, sleeping")
  local ok, err = pcall(await, asyncio.sleep(1))
  if not ok then
    if asyncio.iserror(err, asyncio.CancelledError) then
      print("task_func was canceled")
    end
    error(err, 0)
  end
  return "the result"
end)

local function task_canceller(t)
  print("in task_canceller")
  t:cancel()
  print("canceled the task")
end

local main = async(function(loop)
  print("creating task")
  local task = loop:create_task(task_func())
  loop:call_soon(task_canceller, task)
  local ok, err = pcall(await, task)
  if not ok then
    if not asyncio.iserror(err, asyncio.CancelledError) then
      error(err, 0)
    end
    print("main() also sees task as canceled")
  end
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop))
end
