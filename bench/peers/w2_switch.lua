--- w2 switch on a Lua peer: N ping-pong round trips between two tasks
-- through a fresh future per message (as bench/w2_switch.lua).
--   lua5.4 bench/peers/w2_switch.lua [N] [luv|cqueues]
-- (arg 2 names the scheduler, bench/peers/<name>.lua; default luv)
local here = arg[0]:match("^(.*/)") or "./"
local bench = dofile(here .. "../common.lua")
local S = dofile(here .. (arg[2] or "luv") .. ".lua")
local N = bench.count(200000)
local await, future, set_result = S.await, S.future, S.set_result

S.run(function()
  local inbox_ping, inbox_pong = nil, future()
  local trips = 0
  local function ping()
    for i = 1, N do
      local out = inbox_pong
      inbox_ping = future()
      set_result(out, i)
      local v = await(inbox_ping)
      assert(v == i)
      trips = trips + 1
    end
  end
  local function pong()
    for _ = 1, N do
      local v = await(inbox_pong)
      inbox_pong = future()
      set_result(inbox_ping, v)
    end
  end
  local t0, c0 = S.now(), os.clock()
  local b = S.spawn(pong)
  local a = S.spawn(ping)
  await(a)
  await(b)
  local seconds, cpu = S.now() - t0, os.clock() - c0
  assert(trips == N)
  bench.report("w2_switch", N, seconds, 
               string.format("cpu=%.4f", cpu), S.name)
end)
