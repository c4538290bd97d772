--- w1 spawn: N tasks that each await sleep(0) once and return their
-- index; the main task gathers them (asyncio.gather) and checks the sum.
-- Measures task creation, the first step, one suspension through the
-- ready queue, completion and gather's per-child callback.
--
--   luaio bench/w1_spawn.lua [N]      (N defaults to 200000)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local sleep, create_task = asyncio.sleep, asyncio.create_task

local N = bench.count(200000)
local gc = bench.setup_gc()

local one = async(function(i)
  await(sleep(0))
  return i
end)

local main = async(function()
  local loop = asyncio.get_running_loop()
  local t0, c0 = loop:time(), os.clock()
  local tasks = {}
  for i = 1, N do
    tasks[i] = create_task(one(i))
  end
  local results = await(asyncio.gather(table.unpack(tasks)))
  local sum = 0
  for i = 1, N do
    sum = sum + results[i]
  end
  local seconds, cpu = loop:time() - t0, os.clock() - c0
  if sum ~= N * (N + 1) // 2 then
    error(string.format("w1_spawn: sum %d, expected %d", sum,
                        N * (N + 1) // 2))
  end
  bench.report("w1_spawn", N, seconds,
               string.format("cpu=%.4f gc=%s", cpu, gc))
end)

asyncio.run(main())
