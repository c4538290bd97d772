-- tools/alloc/core.lua: the loop, futures, tasks, handles, timers,
-- cancellation.
local h = dofile("tools/alloc/harness.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local double = async(function(x)
  await(asyncio.sleep(0.01))
  return x * 2
end)

local v = h.run(function()
  local loop = asyncio.get_running_loop()
  local fut = loop:create_future()
  loop:call_soon(function() fut:set_result(1) end)
  local th = loop:call_later(5, function() end)
  local t = asyncio.create_task(double(21), {name = "double"})
  local sum = await(fut) + await(t)
  th:cancel()
  local sleeper = asyncio.create_task(asyncio.sleep(10))
  await(asyncio.sleep(0))
  sleeper:cancel("stop")
  local ok, err = pcall(await, sleeper)
  h.check(not ok and asyncio.iserror(err, asyncio.CancelledError),
          "cancelled")
  local failing = asyncio.create_task(async(function()
    error(asyncio.ValueError("boom"))
  end)())
  ok = pcall(await, failing)
  h.check(not ok, "failing task")
  return sum, tostring(t), tostring(fut)
end, {clock = "virtual"})
h.check(v == 43, "sum")
