--- w2 switch: N ping-pong round trips between two tasks through two
-- Futures, a fresh Future per message: ping resolves pong's inbox and
-- awaits its own, pong does the same back. Measures Future creation,
-- set_result, the scheduled wake-up and the task switch.
--
--   luaio bench/w2_switch.lua [N]     (N defaults to 200000)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local N = bench.count(200000)
local gc = bench.setup_gc()

local main = async(function()
  local loop = asyncio.get_running_loop()
  local inbox_ping, inbox_pong = nil, loop:create_future()
  local trips = 0

  -- Each side makes its next inbox before it answers, so the other side
  -- always finds the inbox it must resolve.
  local ping = async(function()
    for i = 1, N do
      local out = inbox_pong
      inbox_ping = loop:create_future()
      out:set_result(i)
      local v = await(inbox_ping)
      if v ~= i then error("w2_switch: got " .. tostring(v)) end
      trips = trips + 1
    end
  end)
  local pong = async(function()
    for _ = 1, N do
      local v = await(inbox_pong)
      inbox_pong = loop:create_future()
      inbox_ping:set_result(v)
    end
  end)

  local t0, c0 = loop:time(), os.clock()
  local b = asyncio.create_task(pong())
  local a = asyncio.create_task(ping())
  await(a)
  await(b)
  local seconds, cpu = loop:time() - t0, os.clock() - c0
  if trips ~= N then
    error(string.format("w2_switch: %d round trips, expected %d", trips, N))
  end
  bench.report("w2_switch", N, seconds,
               string.format("cpu=%.4f gc=%s", cpu, gc))
end)

asyncio.run(main())
