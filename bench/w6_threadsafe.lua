--- w6 threadsafe: another OS thread posts N callbacks to the loop; the
-- loop counts every one and checks the sum (none may be lost or run
-- twice). Measures the cross-thread path: packing the arguments in the
-- poster's Lua state, the post queue and its wake-up, the drain into the
-- ready queue, unpacking in the loop's state and the call.
--
--   luaio bench/w6_threadsafe.lua [N] [--ref]    (N defaults to 200000)
--
-- The poster is an executor worker (a plain OS thread with a Lua state of
-- its own), started before the clock starts. By default it calls a
-- thread-safe callable, asyncio.threadsafe(on), as a worker calls back
-- into a closure of the loop's state; with --ref it posts through a loop
-- reference, ref:call_soon_threadsafe(fn, i), which also sends fn's
-- bytecode with every post.

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local N = bench.count(200000)
local via_ref = arg[2] == "--ref"
local gc = bench.setup_gc()

local main = async(function()
  local loop = asyncio.get_running_loop()
  local done = loop:create_future()
  local count, sum = 0, 0
  local function on(i)
    count = count + 1
    sum = sum + i
    if count == N then done:set_result() end
  end
  local ex <close> = asyncio.ThreadPoolExecutor(1)
  await(loop:run_in_executor(ex, function() end)) -- the worker is up
  local poster
  local t0 = loop:time()
  if via_ref then
    _G.W6_ON = on
    poster = loop:run_in_executor(ex, function(ref, n)
      local function post(i) W6_ON(i) end
      for i = 1, n do ref:call_soon_threadsafe(post, i) end
    end, loop, N)
  else
    poster = loop:run_in_executor(ex, function(call, n)
      for i = 1, n do call(i) end
    end, asyncio.threadsafe(on), N)
  end
  await(done)
  local seconds = loop:time() - t0
  await(poster)
  if count ~= N or sum ~= N * (N + 1) // 2 then
    error(string.format("w6_threadsafe: %d calls, sum %d; expected %d, %d",
                        count, sum, N, N * (N + 1) // 2))
  end
  bench.report("w6_threadsafe", N, seconds,
               "gc=" .. gc .. (via_ref and " via=ref" or " via=threadsafe"))
end)

asyncio.run(main())
