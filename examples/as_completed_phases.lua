-- as_completed_phases.lua: answers are received in the order the phases
-- finish, with asyncio.as_completed.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, program 18 (as_completed).
-- Python -> Lua: `for next_to_complete in asyncio.as_completed(phases):
-- answer = await next_to_complete` -> a generic for whose each step waits
-- for the next phase to finish; await then gives its result. The
-- coroutines are wrapped in tasks in array order. Takes 0.5 s
-- (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function list_repr(list)
  local items = {}
  for i, v in ipairs(list) do items[i] = example.repr(v) end
  return "[" .. table.concat(items, ", ") .. "]"
end

local phase = async(function(i)
  print(string.format("in phase %d", i))
  await(asyncio.sleep(0.5 - (0.1 * i)))
  print(string.format("done with phase %d", i))
  return string.format("phase %d result", i)
end)

local main = async(function(num_phases)
  print("starting main")
  local phases = {}
  for i = 0, num_phases - 1 do phases[#phases + 1] = phase(i) end
  print("waiting for phases to complete")
  local results = {}
  for next_to_complete in asyncio.as_completed(phases) do
    local answer = await(next_to_complete)
    print(string.format("received answer %s", example.repr(answer)))
    results[#results + 1] = answer
  end
  print(string.format("results: %s", list_repr(results)))
  return results
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(3))
end
