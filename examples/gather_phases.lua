-- gather_phases.lua: asyncio.gather runs two coroutines concurrently and
-- returns their results in argument order.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, program 17 (gather).
-- Python -> Lua: `results = await asyncio.gather(phase1(), phase2())` ->
-- `local results = await(asyncio.gather(phase1(), phase2()))`. Takes 2 s
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

local phase1 = async(function()
  print("in phase1")
  await(asyncio.sleep(2))
  print("done with phase1")
  return "phase1 result"
end)

local phase2 = async(function()
  print("in phase2")
  await(asyncio.sleep(1))
  print("done with phase2")
  return "phase2 result"
end)

local main = async(function()
  print("starting main")
  print("waiting for phases to complete")
  local results = await(asyncio.gather(
    phase1(),
    phase2()
  ))
  print(string.format("results: %s", list_repr(results)))
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main())
end
