-- wait_phases.lua: asyncio.wait on coroutine objects; each becomes a task.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, program 15 (asyncio.wait).
-- Python -> Lua: `phases = [phase(i) for i in range(num_phases)]` -> a
-- loop filling an array; `[t.result() for t in completed]` likewise.
-- asyncio.wait accepts coroutine objects here, as it did in the tutorial's
-- Python (3.11 refuses them); it wraps them in tasks in array order, so
-- the phases start in order where the tutorial's set order varied.
-- Takes 0.2 s (LUAIO_EXAMPLE_FAST=1: no waiting).
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
  await(asyncio.sleep(0.1 * i))
  print(string.format("done with phase %d", i))
  return string.format("phase %d result", i)
end)

local main = async(function(num_phases)
  print("starting main")
  local phases = {}
  for i = 0, num_phases - 1 do phases[#phases + 1] = phase(i) end
  print("waiting for phases to complete")
  local completed, pending = await(asyncio.wait(phases))
  local results = {}
  for _, t in ipairs(completed) do results[#results + 1] = t:result() end
  print(string.format("results: %s", list_repr(results)))
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(3))
end
