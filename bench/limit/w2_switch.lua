--- w2 switch, the limit: bare Lua coroutines. Two coroutines exchange N
-- numbers through a plain scheduler loop that resumes each in turn (two
-- resumes per round trip, as two loop iterations are in asyncio).
local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "../common.lua")
local N = bench.count(200000)
local create, resume, yield = coroutine.create, coroutine.resume,
  coroutine.yield

local box
local ping = create(function()
  for i = 1, N do
    box = i
    yield()
    assert(box == -i)
  end
end)
local pong = create(function()
  for _ = 1, N do
    box = -box
    yield()
  end
end)

local t0 = os.clock()
for _ = 1, N do
  resume(ping)
  resume(pong)
end
resume(ping)
local seconds = os.clock() - t0
bench.report("w2_switch", N, seconds, string.format("cpu=%.4f", seconds),
             "limit")
