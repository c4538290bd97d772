--- w8 gather/wait: N rounds; each round creates 100 tasks, of which one
-- finishes at the next iteration (sleep(0)) and 99 sleep for an hour,
-- waits for them with wait(FIRST_COMPLETED), cancels the 99 pending ones
-- and lets their cancellation run (one sleep(0)). Measures wait's
-- bookkeeping (100 done-callbacks added and removed per round), task
-- creation and cancellation of sleeping tasks.
--
--   luaio bench/w8_gather_wait.lua [N]     (N defaults to 1000)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local sleep, create_task, wait = asyncio.sleep, asyncio.create_task,
  asyncio.wait

local N = bench.count(1000)
local WIDTH = 100
local gc = bench.setup_gc()

local quick = async(function()
  await(sleep(0))
  return 1
end)

local slow = async(function()
  await(sleep(3600))
  return 0
end)

local main = async(function()
  local loop = asyncio.get_running_loop()
  local t0 = loop:time()
  local finished, cancelled = 0, 0
  local opts = {return_when = asyncio.FIRST_COMPLETED}
  for _ = 1, N do
    local tasks = {create_task(quick())}
    for i = 2, WIDTH do tasks[i] = create_task(slow()) end
    local done, pending = await(wait(tasks, opts))
    for i = 1, #done do finished = finished + done[i]:result() end
    for i = 1, #pending do pending[i]:cancel() end
    await(sleep(0))
    for i = 1, #pending do
      if pending[i]:cancelled() then cancelled = cancelled + 1 end
    end
  end
  local seconds = loop:time() - t0
  if finished ~= N or cancelled ~= N * (WIDTH - 1) then
    error(string.format("w8_gather_wait: %d finished, %d cancelled; "
                        .. "expected %d and %d", finished, cancelled, N,
                        N * (WIDTH - 1)))
  end
  bench.report("w8_gather_wait", N, seconds, "gc=" .. gc)
end)

asyncio.run(main())
