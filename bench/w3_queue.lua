--- w3 queue: one producer puts the numbers 1..N into an unbounded
-- asyncio.Queue, then one nil per consumer as its stop signal; four
-- consumers, started first, get and sum the numbers until their nil. The
-- sums are checked. Measures put and get on the queue (await of the
-- Coroutine objects q:put(i) and q:get()), the wake-up of the blocked
-- getters and the task switches between them.
--
-- As in the Python twin, an unbounded put never suspends, so the producer
-- runs to its end in one step and the first consumer to wake drains most
-- of the queue without suspending either.
--
--   luaio bench/w3_queue.lua [N]      (N defaults to 500000)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local create_task = asyncio.create_task

local N = bench.count(500000)
local CONSUMERS = 4
local gc = bench.setup_gc()

local consumer = async(function(q)
  local sum, got = 0, 0
  while true do
    local item = await(q:get())
    if item == nil then return sum, got end
    sum = sum + item
    got = got + 1
  end
end)

local producer = async(function(q)
  for i = 1, N do
    await(q:put(i))
  end
  for _ = 1, CONSUMERS do
    await(q:put(nil))
  end
end)

local main = async(function()
  local loop = asyncio.get_running_loop()
  local q = asyncio.Queue()
  local t0, c0 = loop:time(), os.clock()
  local consumers = {}
  for i = 1, CONSUMERS do consumers[i] = create_task(consumer(q)) end
  await(create_task(producer(q)))
  local sum, got = 0, 0
  for i = 1, CONSUMERS do
    local s, n = await(consumers[i])
    sum, got = sum + s, got + n
  end
  local seconds, cpu = loop:time() - t0, os.clock() - c0
  if sum ~= N * (N + 1) // 2 or got ~= N then
    error(string.format("w3_queue: %d items summing to %d, expected %d "
                        .. "summing to %d", got, sum, N, N * (N + 1) // 2))
  end
  bench.report("w3_queue", N, seconds,
               string.format("cpu=%.4f gc=%s", cpu, gc))
end)

asyncio.run(main())
