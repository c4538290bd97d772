-- tools/alloc/primitives.lua: Queue, Lock, Event, Condition, Semaphore,
-- Barrier.
local h = dofile("tools/alloc/harness.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local r = h.run(function()
  local q = asyncio.Queue(2)
  local lock, ev = asyncio.Lock(), asyncio.Event()
  local cond, sem = asyncio.Condition(), asyncio.BoundedSemaphore(1)
  local barrier = asyncio.Barrier(2)
  local got = 0
  local consumer = asyncio.create_task(async(function()
    for _ = 1, 5 do got = got + await(q:get()); q:task_done() end
  end)())
  for i = 1, 5 do await(q:put(i)) end
  await(q:join())
  await(consumer)
  -- a wrapped ring that grows keeps its order, even when growing fails
  -- part-way (nil items leave holes, so the moved slots go to the hash
  -- part, where each may allocate)
  local rq, want = asyncio.Queue(), {}
  for i = 1, 16 do
    local v = (i <= 3 or i > 10) and i or nil
    rq:put_nowait(v)
    want[i] = v
  end
  for i = 1, 3 do h.check(rq:get_nowait() == want[i], "ring head") end
  for i = 17, 19 do rq:put_nowait(i); want[i] = i end
  local grown, err = pcall(rq.put_nowait, rq, 20) -- full: it grows
  if grown then want[20] = 20 end
  for i = 4, grown and 20 or 19 do
    h.check(rq:get_nowait() == want[i], "ring order")
  end
  h.check(rq:empty(), "ring end")
  if not grown then error(err, 0) end
  local pq = asyncio.PriorityQueue()
  pq:put_nowait({2, "b"}); pq:put_nowait({1, "a"})
  h.check(pq:get_nowait()[2] == "a", "priority")
  local waiter = asyncio.create_task(async(function()
    local _ <close> = await(lock)
    await(ev:wait())
    return "woken"
  end)())
  await(asyncio.sleep(0))
  ev:set()
  local w = await(waiter)
  local flag = false
  local cw = asyncio.create_task(async(function()
    local _ <close> = await(cond)
    return await(cond:wait_for(function() return flag end))
  end)())
  await(asyncio.sleep(0))
  do
    local _ <close> = await(cond)
    flag = true
    cond:notify_all()
  end
  await(cw)
  do local _ <close> = await(sem) end
  local b1 = asyncio.create_task(barrier:wait())
  local i2 = await(barrier:wait())
  local i1 = await(b1)
  -- wake-ups of waiting tasks: a release each, and a cancelled sleep
  local l2, s2 = asyncio.Lock(), asyncio.Semaphore(0)
  await(l2:acquire())
  local lw = asyncio.create_task(async(function()
    local _ <close> = await(l2)
    return 1
  end)())
  local sw = asyncio.create_task(async(function()
    await(s2:acquire())
    return 2
  end)())
  local sl = asyncio.create_task(asyncio.sleep(100))
  await(asyncio.sleep(0))
  l2:release()
  s2:release()
  sl:cancel()
  h.check(await(lw) + await(sw) == 3, "woken")
  local ok, err = pcall(await, sl)
  if not ok and not sl:cancelled() then error(err, 0) end -- its own
  h.check(not ok, "cancelled sleep")
  return got, w, i1 + i2
end, {clock = "virtual"})
h.check(r == 15, "sum")
