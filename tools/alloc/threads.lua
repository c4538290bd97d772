-- tools/alloc/threads.lua: to_thread, an executor of its own, a
-- concurrent future wrapped, a thread-safe callable with a maxsize called
-- from a worker.
local h = dofile("tools/alloc/harness.lua")
local asyncio = require "asyncio"
local await = asyncio.await

local r = h.run(function()
  local loop = asyncio.get_running_loop()
  local a = await(asyncio.to_thread(function(x) return x + 1 end, 41))
  local ex <close> = asyncio.ThreadPoolExecutor(1)
  local b = await(loop:run_in_executor(ex, function() return 2 end))
  local c = await(asyncio.wrap_future(ex:submit(function() return 5 end)))
  local got = loop:create_future()
  local tf = asyncio.threadsafe(function(v)
    if not got:done() then got:set_result(v) end
  end, {maxsize = 1})
  await(loop:run_in_executor(ex, function(f) f(3); f(3) end, tf))
  return a + b + c + await(got)
end)
h.check(r == 52, "sum")
