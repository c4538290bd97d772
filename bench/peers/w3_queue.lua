--- w3 queue on a Lua peer: one producer, four consumers, an unbounded
-- queue of N numbers, then one false per consumer as its stop signal.
--   lua5.4 bench/peers/w3_queue.lua [N] [luv|cqueues]
-- (arg 2 names the scheduler, bench/peers/<name>.lua; default luv)
local here = arg[0]:match("^(.*/)") or "./"
local bench = dofile(here .. "../common.lua")
local S = dofile(here .. (arg[2] or "luv") .. ".lua")
local N = bench.count(500000)
local CONSUMERS = 4
local await, get, put = S.await, S.get, S.put

S.run(function()
  local q = S.queue()
  local function consumer()
    local sum, got = 0, 0
    while true do
      local item = get(q)
      if not item then return {sum, got} end
      sum, got = sum + item, got + 1
    end
  end
  local function producer()
    for i = 1, N do put(q, i) end
    for _ = 1, CONSUMERS do put(q, false) end
  end
  local t0, c0 = S.now(), os.clock()
  local cs = {}
  for i = 1, CONSUMERS do cs[i] = S.spawn(consumer) end
  await(S.spawn(producer))
  local sum, got = 0, 0
  for i = 1, CONSUMERS do
    local r = await(cs[i])
    sum, got = sum + r[1], got + r[2]
  end
  local seconds, cpu = S.now() - t0, os.clock() - c0
  assert(sum == N * (N + 1) // 2 and got == N, "w3_queue: bad sums")
  bench.report("w3_queue", N, seconds, 
               string.format("cpu=%.4f", cpu), S.name)
end)
