--- w1 spawn, the limit: bare Lua coroutines (lua5.4, no event loop). N
-- coroutines are created, each resumed once to its one yield (the
-- sleep(0)) from a plain array of ready ones, then once more to return
-- its index; the results are summed. What Lua itself costs for w1.
local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "../common.lua")
local N = bench.count(200000)
local create, resume, yield = coroutine.create, coroutine.resume,
  coroutine.yield

local function one(i)
  yield()
  return i
end

local t0, c0 = os.clock(), os.clock()
local cos = {}
for i = 1, N do cos[i] = create(one) end
for i = 1, N do resume(cos[i], i) end
local sum = 0
for i = 1, N do
  local _, r = resume(cos[i])
  sum = sum + r
end
local seconds = os.clock() - t0
assert(sum == N * (N + 1) // 2)
bench.report("w1_spawn", N, seconds, string.format("cpu=%.4f", seconds),
             "limit")
