--- w5 lock: 100 tasks each take one asyncio.Lock 1000 times, with
-- `await(asyncio.sleep(0))` inside the critical section, and count their
-- turns inside. N = 100 x 1000 acquisitions; the count is checked, and
-- so is that nobody else was inside while a task held the lock. Measures
-- the lock's FIFO hand-off (release wakes the first waiter, which takes
-- the lock when it runs), the guard (`local _ <close> = await(lock)`)
-- and the loop iterations the sleeps cost.
--
--   luaio bench/w5_lock.lua [N]       (N defaults to 100000; a multiple
--                                      of 100)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local sleep, create_task = asyncio.sleep, asyncio.create_task

local N = bench.count(100000)
local TASKS = 100
local ROUNDS = N // TASKS
local gc = bench.setup_gc()

local main = async(function()
  local loop = asyncio.get_running_loop()
  local lock = asyncio.Lock()
  local inside, turns = 0, 0

  local worker = async(function()
    for _ = 1, ROUNDS do
      local _ <close> = await(lock)
      inside = inside + 1
      if inside ~= 1 then error("w5_lock: two tasks inside the lock") end
      await(sleep(0))
      turns = turns + 1
      inside = inside - 1
    end
  end)

  local t0, c0 = loop:time(), os.clock()
  local tasks = {}
  for i = 1, TASKS do tasks[i] = create_task(worker()) end
  for i = 1, TASKS do await(tasks[i]) end
  local seconds, cpu = loop:time() - t0, os.clock() - c0
  if turns ~= TASKS * ROUNDS then
    error(string.format("w5_lock: %d turns, expected %d", turns,
                        TASKS * ROUNDS))
  end
  bench.report("w5_lock", TASKS * ROUNDS, seconds,
               string.format("cpu=%.4f gc=%s", cpu, gc))
end)

asyncio.run(main())
