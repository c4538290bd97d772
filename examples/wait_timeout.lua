-- wait_timeout.lua: asyncio.wait with a timeout returns what is done and
-- what is pending; the pending tasks are then cancelled.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, program 16 (wait with a
-- timeout).
-- Python -> Lua: `try: ... except asyncio.CancelledError: ...; raise
-- else: ...` -> pcall(await, ...), then error(err, 0) to re-raise.
-- asyncio.wait accepts the coroutine objects and wraps them in tasks (see
-- wait_phases.lua). Takes 0.1 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local phase = async(function(i)
  print(string.format("in phase %d", i))
  local ok, err = pcall(await, asyncio.sleep(0.1 * i))
  if not ok then
    if asyncio.iserror(err, asyncio.CancelledError) then
      print(string.format("phase %d canceled", i))
    end
    error(err, 0)
  end
  print(string.format("done with phase %d", i))
  return string.format("phase %d result", i)
end)

local main = async(function(num_phases)
  print("starting main")
  local phases = {}
  for i = 0, num_phases - 1 do phases[#phases + 1] = phase(i) end
  print("waiting 0.1 for phases to complete")
  local completed, pending = await(asyncio.wait(phases, {timeout = 0.1}))
  print(string.format("%d completed and %d pending", #completed, #pending))
  -- Cancel remaining tasks so they do not generate errors
  -- as we exit without finishing them.
  if #pending > 0 then
    print("canceling tasks")
    for _, t in ipairs(pending) do t:cancel() end
  end
  print("exiting main")
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(3))
end
