--- w1 spawn on a Lua peer: N tasks that each sleep(0) once and return
-- their index; the main task awaits them all (gather) and checks the sum.
--   lua5.4 bench/peers/w1_spawn.lua [N] [luv|cqueues]
-- (arg 2 names the scheduler, bench/peers/<name>.lua; default luv)
local here = arg[0]:match("^(.*/)") or "./"
local bench = dofile(here .. "../common.lua")
local S = dofile(here .. (arg[2] or "luv") .. ".lua")
local N = bench.count(200000)
local sleep, await, spawn = S.sleep, S.await, S.spawn

local function one(i)
  sleep(0)
  return i
end

S.run(function()
  local t0, c0 = S.now(), os.clock()
  local tasks = {}
  for i = 1, N do tasks[i] = spawn(one, i) end
  local sum = 0
  for i = 1, N do sum = sum + await(tasks[i]) end
  local seconds, cpu = S.now() - t0, os.clock() - c0
  assert(sum == N * (N + 1) // 2, "w1_spawn: bad sum")
  bench.report("w1_spawn", N, seconds, 
               string.format("cpu=%.4f", cpu), S.name)
end)
