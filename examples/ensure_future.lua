-- ensure_future.lua: ensure_future wraps a coroutine in a task that
-- another coroutine awaits.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the ensure_future program
-- (wrapped, inner, starter).
-- Python -> Lua: `{!r}` of a task -> tostring(task); of a string ->
-- example.repr.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local repr = example.repr

local wrapped = async(function()
  print("wrapped")
  return "result"
end)

local inner = async(function(task)
  print("inner: starting")
  print(string.format("inner: waiting for %s", tostring(task)))
  local result = await(task)
  print(string.format("inner: task returned %s", repr(result)))
end)

local starter = async(function()
  print("starter: creating task")
  local task = asyncio.ensure_future(wrapped())
  print("starter: waiting for inner")
  await(inner(task))
  print("starter: inner returned")
end)

local event_loop = asyncio.get_event_loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  print("entering event loop")
  local result = event_loop:run_until_complete(starter())
end
