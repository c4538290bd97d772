--- w4 timers on a Lua peer: N tasks sleeping (i * 7919 % 100000) / 100000
-- s, one timer each. Overhead over 1 s and memory per sleeping task (Lua
-- heap and VmRSS), as bench/w4_timers.lua.
--   lua5.4 bench/peers/w4_timers.lua [N] [luv|cqueues]
-- (arg 2 names the scheduler, bench/peers/<name>.lua; default luv)
local here = arg[0]:match("^(.*/)") or "./"
local bench = dofile(here .. "../common.lua")
local S = dofile(here .. (arg[2] or "luv") .. ".lua")
local N = bench.count(100000)

local function sleeper(i)
  S.sleep((i * 7919 % 100000) / 100000)
  return i
end

local function heap_bytes()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count") * 1024
end

S.run(function()
  local heap0, rss0 = heap_bytes(), bench.rss()
  local t0, c0 = S.now(), os.clock()
  local tasks = {}
  for i = 1, N do tasks[i] = S.spawn(sleeper, i) end
  S.sleep(0)
  local heap1, rss1 = heap_bytes(), bench.rss()
  local sum = 0
  for i = 1, N do sum = sum + S.await(tasks[i]) end
  local seconds, cpu = S.now() - t0, os.clock() - c0
  assert(sum == N * (N + 1) // 2, "w4_timers: bad sum")
  bench.report("w4_timers", N, seconds, string.format(
    "overhead=%.3f bytes_per_task=%.0f rss_per_task=%.0f cpu=%.3f",
    seconds - 1, (heap1 - heap0) / N, (rss1 - rss0) / N, cpu), S.name)
end)
