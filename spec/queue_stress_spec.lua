-- spec/queue_stress_spec.lua: many items through a bounded Queue
-- (bindings/sync/queue.c) while waiters are cancelled mid-wait and replaced.
-- No item may be lost or taken twice, join() must return, and no waiter
-- may stay behind in the queue (tostring(q) shows getters[n] / putters[n]
-- while any are queued). The random choices use a fixed seed.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local vspec = h.vspec

local iserror = asyncio.iserror
local CancelledError = asyncio.CancelledError
local sleep, create_task = asyncio.sleep, asyncio.create_task

--- Cancels every task of `tasks` and waits for them; each must end
-- cancelled.
local function cancel_all(tasks)
  local list = {}
  for _, t in pairs(tasks) do
    t:cancel()
    list[#list + 1] = t
  end
  for _, t in ipairs(list) do
    local ok, err = pcall(await, t)
    assert.is_false(ok)
    assert.is_true(iserror(err, CancelledError), tostring(err))
  end
end

local function getters(q)
  return tonumber(tostring(q):match(" getters%[(%d+)%]")) or 0
end

--- The ids of the keys of `set` whose state is `what`, sorted.
local function ids_in(state, what)
  local ids = {}
  for id, s in pairs(state) do
    if s == what then ids[#ids + 1] = id end
  end
  table.sort(ids)
  return ids
end

--- Picks one of `ids`: half the time the one that has waited longest
-- (the first in the queue's FIFO, which the last put or get has just
-- woken when it has not run yet), else any.
local function pick(ids, since, rand)
  if rand(2) == 1 then return ids[rand(#ids)] end
  local best = ids[1]
  for _, id in ipairs(ids) do
    if since[id] < since[best] then best = id end
  end
  return best
end

describe("queue stress", function()
  it("M173-M177 100000 items, 50 consumers, random ones cancelled mid-get "
     .. "and replaced: each item consumed once", vspec(function()
    local N, MAXSIZE, CONSUMERS = 100000, 64, 50
    local rand = math.random
    math.randomseed(20240611)
    local q = asyncio.Queue(MAXSIZE)
    local seen = {}
    local state, tasks, since = {}, {}, {}
    local next_id, cancelled, sum, clock = 0, 0, 0, 0

    local consumer = async(function(id)
      while true do
        state[id] = "get"
        clock = clock + 1
        since[id] = clock
        local item = await(q:get())
        state[id] = "work"
        seen[item] = (seen[item] or 0) + 1
        sum = sum + item
        q:task_done()
        if rand(4) == 1 then await(sleep(0)) end
      end
    end)

    local function spawn()
      next_id = next_id + 1
      local id = next_id
      local t = create_task(consumer(id))
      tasks[id] = t
      t:add_done_callback(function()
        tasks[id], state[id] = nil, nil
      end)
    end

    --- Cancels one consumer blocked in get() (possibly one that the last
    -- put has just woken) and starts a replacement.
    local function cancel_one()
      local waiting = ids_in(state, "get")
      if #waiting == 0 then return end
      local id = pick(waiting, since, rand)
      state[id] = "cancelled"
      tasks[id]:cancel()
      cancelled = cancelled + 1
      spawn()
    end

    for _ = 1, CONSUMERS do spawn() end
    for i = 1, N do
      await(q:put(i))
      if rand(40) == 1 then cancel_one() end
    end
    await(q:join())

    assert.is_true(cancelled > 1000, "cancellations: " .. cancelled)
    assert.equal(N * (N + 1) // 2, sum)
    for i = 1, N do
      if seen[i] ~= 1 then
        error(("item %d consumed %s times"):format(i, tostring(seen[i])))
      end
    end
    assert.equal(0, q:qsize())
    await(sleep(0))  -- a consumer may still be in its sleep(0), a new one
    await(sleep(0))  -- not yet started: then all of them wait in get()
    assert.equal(CONSUMERS, #ids_in(state, "get"))
    assert.equal(CONSUMERS, getters(q))
    cancel_all(tasks)
    assert.equal(("<asyncio.Queue maxsize=%d qsize=0 tasks=0>")
                 :format(MAXSIZE), tostring(q))
  end))

  it("M176-M177 20000 items from 10 producers on a 1-slot queue, random "
     .. "putters cancelled mid-put and their items put again: each item "
     .. "enters once", vspec(function()
    local N, PRODUCERS = 20000, 10
    local rand = math.random
    math.randomseed(7)
    local q = asyncio.Queue(1)
    local seen, got = {}, 0
    local state, tasks, holding, since = {}, {}, {}, {}
    local backlog = {}  -- items whose putter was cancelled
    local next_item, next_id, cancelled, clock = 0, 0, 0, 0

    local function take_item()
      if #backlog > 0 then return table.remove(backlog) end
      if next_item < N then
        next_item = next_item + 1
        return next_item
      end
    end

    local producer = async(function(id)
      while true do
        local item = take_item()
        if item == nil then return end
        holding[id] = item
        state[id] = "put"
        clock = clock + 1
        since[id] = clock
        await(q:put(item))
        holding[id] = nil
        state[id] = "idle"
        if rand(3) == 1 then await(sleep(0)) end
      end
    end)

    local function spawn()
      next_id = next_id + 1
      local id = next_id
      local t = create_task(producer(id))
      tasks[id] = t
      t:add_done_callback(function()
        tasks[id], state[id] = nil, nil
      end)
    end

    for _ = 1, PRODUCERS do spawn() end
    while got < N do
      local item = await(q:get())
      seen[item] = (seen[item] or 0) + 1
      got = got + 1
      q:task_done()
      if rand(10) == 1 then
        local putting = ids_in(state, "put")
        if #putting > 0 then
          local id = pick(putting, since, rand)
          state[id] = "cancelled"
          tasks[id]:cancel()
          local ok, err = pcall(await, tasks[id])
          assert.is_false(ok)
          assert.is_true(iserror(err, CancelledError))
          backlog[#backlog + 1] = holding[id]  -- its item never entered
          holding[id] = nil
          cancelled = cancelled + 1
          spawn()
        end
      end
    end
    await(q:join())
    assert.is_true(cancelled > 1000, "cancellations: " .. cancelled)
    for i = 1, N do
      if seen[i] ~= 1 then
        error(("item %d entered %s times"):format(i, tostring(seen[i])))
      end
    end
    local left = {}
    for _, t in pairs(tasks) do left[#left + 1] = t end
    for _, t in ipairs(left) do await(t) end  -- they run out of items
    await(sleep(0))  -- their done callbacks
    assert.is_nil(next(tasks), "producers left")
    assert.equal("<asyncio.Queue maxsize=1 qsize=0 tasks=0>", tostring(q))
  end))
end)
