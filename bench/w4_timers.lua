--- w4 timers: N tasks sleeping (i * 7919 % 100000) / 100000 seconds on
-- the real clock (spread over 0..1 s). Reports the overhead (wall time
-- minus 1 s) and the memory each sleeping task holds: the Lua heap
-- (collectgarbage "count", after a full collection, while every task
-- sleeps, minus the same before they were created) and, for comparison,
-- the growth of the process's resident set (VmRSS).
--
--   luaio bench/w4_timers.lua [N]     (N defaults to 100000)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local sleep, create_task = asyncio.sleep, asyncio.create_task

local N = bench.count(100000)
local gc = bench.setup_gc()

local sleeper = async(function(i)
  await(sleep((i * 7919 % 100000) / 100000))
  return i
end)

local function heap_bytes()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count") * 1024
end

local main = async(function()
  local loop = asyncio.get_running_loop()
  local heap0, rss0 = heap_bytes(), bench.rss()
  local t0, c0 = loop:time(), os.clock()
  local tasks = {}
  for i = 1, N do
    tasks[i] = create_task(sleeper(i))
  end
  -- one iteration: every task has taken its first step and sleeps (a
  -- full collection here delays some wake-ups, not the last one)
  await(sleep(0))
  local heap1, rss1 = heap_bytes(), bench.rss()
  local sum = 0
  for i = 1, N do
    sum = sum + await(tasks[i])
  end
  local seconds, cpu = loop:time() - t0, os.clock() - c0
  if sum ~= N * (N + 1) // 2 then
    error(string.format("w4_timers: sum %d, expected %d", sum,
                        N * (N + 1) // 2))
  end
  bench.report("w4_timers", N, seconds, string.format(
    "overhead=%.3f bytes_per_task=%.0f rss_per_task=%.0f cpu=%.3f gc=%s",
    seconds - 1, (heap1 - heap0) / N,
    rss0 and (rss1 - rss0) / N or 0, cpu, gc))
end)

asyncio.run(main())
