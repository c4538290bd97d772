-- nested_coroutines.lua: a coroutine awaits two others in turn and returns
-- both of their results.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the third program (outer,
-- phase1, phase2); its fourth program is the same with pre-3.5 generator
-- coroutines (@asyncio.coroutine, yield from), which Lua has no separate
-- form for.
-- Python -> Lua: `return (result1, result2)` -> `return result1, result2`
-- (two values, which run_until_complete returns as they are); the tuple's
-- repr is rebuilt with example.repr.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local repr = example.repr

local phase1, phase2

local outer = async(function()
  print("in outer")
  print("waiting for result1")
  local result1 = await(phase1())
  print("waiting for result2")
  local result2 = await(phase2(result1))
  return result1, result2
end)

phase1 = async(function()
  print("in phase1")
  return "result1"
end)

phase2 = async(function(arg)
  print("in phase2")
  return string.format("result2 derived from %s", arg)
end)

local event_loop = asyncio.get_event_loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  local r1, r2 = event_loop:run_until_complete(outer())
  print(string.format("return value: (%s, %s)", repr(r1), repr(r2)))
end
