--- w5 lock on a Lua peer: 100 tasks x N/100 acquisitions of one FIFO lock
-- with sleep(0) inside (as bench/w5_lock.lua).
--   lua5.4 bench/peers/w5_lock.lua [N] [luv|cqueues]
-- (arg 2 names the scheduler, bench/peers/<name>.lua; default luv)
local here = arg[0]:match("^(.*/)") or "./"
local bench = dofile(here .. "../common.lua")
local S = dofile(here .. (arg[2] or "luv") .. ".lua")
local N = bench.count(100000)
local TASKS, ROUNDS = 100, N // 100
local acquire, release, sleep = S.acquire, S.release, S.sleep

S.run(function()
  local lock = S.lock()
  local inside, turns = 0, 0
  local function worker()
    for _ = 1, ROUNDS do
      acquire(lock)
      inside = inside + 1
      assert(inside == 1, "w5_lock: two tasks inside the lock")
      sleep(0)
      turns = turns + 1
      inside = inside - 1
      release(lock)
    end
  end
  local t0, c0 = S.now(), os.clock()
  local tasks = {}
  for i = 1, TASKS do tasks[i] = S.spawn(worker) end
  for i = 1, TASKS do S.await(tasks[i]) end
  local seconds, cpu = S.now() - t0, os.clock() - c0
  assert(turns == TASKS * ROUNDS)
  bench.report("w5_lock", TASKS * ROUNDS, seconds,
               
               string.format("cpu=%.4f", cpu), S.name)
end)
