-- executor_blocked_sleep.lua: five coroutines each hand a blocking sleep
-- to a thread pool with run_in_executor; the sleeps run side by side and
-- gather collects what they return.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "在線程或進程池中執行代碼"
-- (running code in a thread or process pool).
-- Python -> Lua: futures.ThreadPoolExecutor(max_workers=5) ->
-- asyncio.ThreadPoolExecutor(5); `loop.run_in_executor(executor, sleep,
-- t)` passes Python's C function time.sleep; here the blocking sleep is a
-- Lua function sent to the worker, which requires lib/blocking.lua there.
-- strftime('[%H:%M:%S]') -> os.date; the generator of coroutines -> a
-- list. Takes 5 s (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local executor = asyncio.ThreadPoolExecutor(5)

local function sleep(t)
  require("lib.blocking").sleep(t)
end

local blocked_sleep = async(function(name, t)
  io.write(os.date("[%H:%M:%S]"), " ")
  print(string.format("sleep %s is running %ss", name, t))
  local loop = asyncio.get_event_loop()
  await(loop:run_in_executor(executor, sleep, t))
  io.write(os.date("[%H:%M:%S]"), " ")
  print(string.format("sleep %s is end", name))
  return t
end)

local main = async(function()
  local future = {}
  for i = 1, 5 do future[i] = blocked_sleep(i, i) end
  local fs = asyncio.gather(table.unpack(future))
  return await(fs)
end)

local loop = asyncio.get_event_loop()
local results = loop:run_until_complete(main())
print(string.format("results: [%s]", table.concat(results, ", ")))
