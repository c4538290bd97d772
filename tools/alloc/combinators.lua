-- tools/alloc/combinators.lua: gather, wait, wait_for, shield,
-- as_completed, timeout, TaskGroup.
local h = dofile("tools/alloc/harness.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local after = async(function(d, v)
  await(asyncio.sleep(d))
  return v
end)

local r = h.run(function()
  local g = await(asyncio.gather(after(0.1, 1), after(0.2, 2)))
  local done = await(asyncio.wait({after(0.1, 3), after(0.3, 4)},
                                  {return_when = "FIRST_COMPLETED"}))
  local n = 0
  for _ in pairs(done) do n = n + 1 end
  local ok = pcall(await, asyncio.wait_for(after(5, 0), 0.1))
  h.check(not ok, "wait_for timed out")
  local s = await(asyncio.shield(after(0.1, 5)))
  local order = {}
  for f in asyncio.as_completed({after(0.2, "b"), after(0.1, "a")}) do
    order[#order + 1] = await(f)
  end
  do
    local _ <close> = asyncio.timeout(1)
    await(asyncio.sleep(0.1))
  end
  local t1, t2
  do
    local tg <close> = asyncio.TaskGroup()
    t1 = tg:create_task(after(0.1, 6))
    t2 = tg:create_task(after(0.2, 7))
  end
  return g[1] + g[2] + s + t1:result() + t2:result(), table.concat(order)
end, {clock = "virtual"})
h.check(r == 21, "sum")
