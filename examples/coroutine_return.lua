-- coroutine_return.lua: run_until_complete returns what the coroutine
-- returned.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the second program.
-- Python -> Lua: `'{!r}'.format(v)` -> string.format("%s",
-- example.repr(v)); try/finally -> a to-be-closed variable.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async = asyncio.async
local repr = example.repr

local coroutine = async(function()
  print("in coroutine")
  return "result"
end)

local event_loop = asyncio.get_event_loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  local return_value = event_loop:run_until_complete(
    coroutine()
  )
  print(string.format("it returned: %s", repr(return_value)))
end
