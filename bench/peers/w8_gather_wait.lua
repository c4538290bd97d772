--- w8 gather/wait on a Lua peer (as bench/w8_gather_wait.lua): N rounds;
-- each round spawns 100 tasks, one finishing at the next iteration
-- (sleep(0)) and 99 sleeping an hour (cancellable_sleep), waits for the
-- first with wait_first, cancels the 99 and lets their cancellation run
-- (one sleep(0); cqueues may need more steps: then the round awaits
-- each cancelled task); every finished and cancelled task is counted.
--   lua5.4 bench/peers/w8_gather_wait.lua [N] [luv|cqueues]
local here = arg[0]:match("^(.*/)") or "./"
local bench = dofile(here .. "../common.lua")
local S = dofile(here .. (arg[2] or "luv") .. ".lua")
local N = bench.count(1000)
local WIDTH = 100
local sleep, spawn, CANCELLED = S.sleep, S.spawn, S.CANCELLED

local function quick()
  sleep(0)
  return 1
end

local function slow()
  if S.cancellable_sleep(3600) == CANCELLED then return CANCELLED end
  return 0
end

S.run(function()
  local t0 = S.now()
  local finished, cancelled = 0, 0
  for _ = 1, N do
    local tasks = {spawn(quick)}
    for i = 2, WIDTH do tasks[i] = spawn(slow) end
    local first = S.wait_first(tasks)
    finished = finished + first.value
    for i = 1, WIDTH do
      local t = tasks[i]
      if t ~= first then S.cancel(t) end
    end
    sleep(0)
    for i = 1, WIDTH do
      -- luv: all are done after the sleep(0); cqueues may wake them later
      if not tasks[i].done then S.await(tasks[i]) end
      if tasks[i].value == CANCELLED then
        cancelled = cancelled + 1
      end
    end
  end
  local seconds = S.now() - t0
  if finished ~= N or cancelled ~= N * (WIDTH - 1) then
    error(string.format("w8_gather_wait: %d finished, %d cancelled; "
                        .. "expected %d and %d", finished, cancelled, N,
                        N * (WIDTH - 1)))
  end
  bench.report("w8_gather_wait", N, seconds, nil, S.name)
end)
