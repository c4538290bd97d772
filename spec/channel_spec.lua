-- spec/channel_spec.lua: Channel(maxsize), the queue between threads
-- (bindings/threads/channel.c; DESIGN.md "Threads").
--
-- Plain threads (this one when no loop runs, executor workers) block in
-- put/get; tasks await aput/aget without blocking their loop. Real clock:
-- time-outs are checked with lower bounds only. The task tests that check
-- nothing more happens run on the virtual clock, where a sleep ends only
-- once the loop is idle.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, raises = h.await_error, h.raises

local iserror = asyncio.iserror
local sleep, create_task = asyncio.sleep, asyncio.create_task
local Channel = asyncio.Channel

-- A monotonic clock in seconds (a loop's clock; the loop never runs).
local clock_loop = asyncio.new_event_loop()
local function now() return clock_loop:time() end

describe("Channel: plain threads", function()
  local ex

  setup(function() ex = asyncio.ThreadPoolExecutor(4) end)
  teardown(function()
    ex:shutdown(true)
    clock_loop:close()
  end)

  it("Channel() and Channel(0) are unbounded", function()
    for _, ch in ipairs{Channel(), Channel(0)} do
      for i = 1, 1000 do ch:put(i, 0) end
      assert.equal(1000, ch:qsize())
      assert.equal("<Channel maxsize=0 qsize=1000>", tostring(ch))
    end
  end)

  it("is FIFO, for any sendable value, nil included", function()
    local ch = Channel()
    local items = {1, "two", 3.5, true, {four = 4}, false}
    for _, v in ipairs(items) do ch:put(v) end
    ch:put(nil)
    assert.equal(7, ch:qsize())
    for _, v in ipairs(items) do assert.same(v, ch:get(0)) end
    assert.equal(1, ch:qsize())
    assert.is_nil(ch:get(0))
    assert.equal(0, ch:qsize())
  end)

  it("get copies: the item is a new table", function()
    local ch = Channel()
    local t = {1}
    ch:put(t)
    t[1] = "changed after put"
    assert.same({1}, ch:get(0))
  end)

  it("keeps order across the ring's growth and wrap-around", function()
    local ch = Channel()
    local next_in, next_out = 1, 1
    for _ = 1, 50 do
      for _ = 1, 7 do ch:put(next_in); next_in = next_in + 1 end
      for _ = 1, 5 do
        assert.equal(next_out, ch:get(0))
        next_out = next_out + 1
      end
    end
    while ch:qsize() > 0 do
      assert.equal(next_out, ch:get(0))
      next_out = next_out + 1
    end
    assert.equal(next_in, next_out)
  end)

  it("get(timeout) on an empty channel raises TimeoutError after the "
     .. "timeout", function()
    local ch = Channel()
    local t0 = now()
    local err = raises(asyncio.TimeoutError, ch.get, ch, 0.05)
    assert.equal("Channel get timed out", err.message)
    assert.is_true(now() - t0 >= 0.05)
    raises(asyncio.TimeoutError, ch.get, ch, 0)
    raises(asyncio.TimeoutError, ch.get, ch, -1)
  end)

  it("put(v, timeout) on a full channel raises TimeoutError after the "
     .. "timeout; the value is not added", function()
    local ch = Channel(2)
    ch:put(1)
    ch:put(2)
    local t0 = now()
    local err = raises(asyncio.TimeoutError, ch.put, ch, 3, 0.05)
    assert.equal("Channel put timed out", err.message)
    assert.is_true(now() - t0 >= 0.05)
    raises(asyncio.TimeoutError, ch.put, ch, 3, 0)
    assert.equal(2, ch:qsize())
    assert.equal(1, ch:get(0))
    ch:put(3, 0)
    assert.same({2, 3}, {ch:get(0), ch:get(0)})
  end)

  it("get blocks until another thread puts (a timeout of math.huge as "
     .. "long as none)", function()
    for _, timeout in ipairs{10, math.huge} do
      local ch = Channel()
      ex:submit(function(c)
        local idle = require("asyncio").Channel()
        pcall(idle.get, idle, 0.02)
        c:put("late")
      end, ch)
      assert.equal("late", ch:get(timeout))
    end
  end)

  it("maxsize: put blocks while full, until another thread gets",
    function()
      local ch = Channel(1)
      local cf = ex:submit(function(c)
        for i = 1, 3 do c:put(i) end
        return "all put"
      end, ch)
      -- the worker is stuck on its second put
      assert.is_false(pcall(cf.result, cf, 0.05))
      assert.equal(1, ch:qsize())
      assert.equal("<Channel maxsize=1 qsize=1>", tostring(ch))
      assert.same({1, 2, 3}, {ch:get(10), ch:get(10), ch:get(10)})
      assert.equal("all put", cf:result(10))
    end)

  it("close wakes blocked getters and putters: both raise QueueShutDown",
    function()
      local empty, full = Channel(), Channel(1)
      full:put("x")
      local started = Channel()
      local ex <close> = asyncio.ThreadPoolExecutor(2) -- one per job
      local getter = ex:submit(function(c, s)
        s:put(true)
        return c:get(10)
      end, empty, started)
      local putter = ex:submit(function(c, s)
        s:put(true)
        return c:put("y", 10)
      end, full, started)
      started:get(10)
      started:get(10)
      empty:close()
      full:close()
      local err = raises(asyncio.QueueShutDown, getter.result, getter, 10)
      assert.equal("Channel is closed", err.message)
      raises(asyncio.QueueShutDown, putter.result, putter, 10)
      assert.is_true(empty:is_closed())
    end)

  it("after close, put raises and get drains what is left, then raises",
    function()
      local ch = Channel()
      ch:put(1)
      ch:put(2)
      assert.is_false(ch:is_closed())
      ch:close()
      assert.is_true(ch:is_closed())
      assert.equal("<Channel maxsize=0 qsize=2 closed>", tostring(ch))
      raises(asyncio.QueueShutDown, ch.put, ch, 3)
      assert.same({1, 2}, {ch:get(), ch:get()})
      raises(asyncio.QueueShutDown, ch.get, ch)
      raises(asyncio.QueueShutDown, ch.get, ch, 10)
      ch:close() -- twice is harmless
    end)

  it("a value that cannot be sent raises SendError and is not queued",
    function()
      local ch = Channel()
      raises(asyncio.SendError, ch.put, ch, {coroutine.create(print)})
      assert.equal(0, ch:qsize())
    end)

  it("several producers and consumers: every item once", function()
    local ch, results = Channel(8), Channel()
    local producers, consumers = {}, {}
    local ex <close> = asyncio.ThreadPoolExecutor(4) -- one per job
    for p = 1, 2 do
      producers[p] = ex:submit(function(c, base)
        for i = 1, 500 do c:put(base + i) end
      end, ch, p * 1000)
    end
    for c = 1, 2 do
      consumers[c] = ex:submit(function(cin, out)
        local n = 0
        while true do
          local ok, v = pcall(cin.get, cin)
          if not ok then break end
          out:put(v)
          n = n + 1
        end
        return n
      end, ch, results)
    end
    for p = 1, 2 do producers[p]:result(10) end
    ch:close()
    local total = consumers[1]:result(10) + consumers[2]:result(10)
    assert.equal(1000, total)
    local seen = {}
    for _ = 1, 1000 do
      local v = results:get(0)
      assert.is_nil(seen[v])
      seen[v] = true
    end
    for p = 1, 2 do
      for i = 1, 500 do assert.is_true(seen[p * 1000 + i]) end
    end
  end)
end)

describe("Channel: tasks", function()
  it("aget and aput complete at once when they can", aspec.async(function()
    local ch = Channel(1)
    await(ch:aput("v"))
    assert.equal(1, ch:qsize())
    assert.equal("v", await(ch:aget()))
    await(ch:aput(nil))
    assert.is_nil(await(ch:aget()))
  end))

  it("a task parked in aget does not block its loop", aspec.async(function()
    local ch = Channel()
    local ticks = 0
    local getter = create_task(async(function() return await(ch:aget()) end)())
    for _ = 1, 3 do -- the getter parks in the first iteration
      await(sleep(0))
      ticks = ticks + 1
    end
    assert.is_false(getter:done())
    ch:put("item")
    assert.equal("item", await(asyncio.wait_for(getter, 10)))
    assert.equal(3, ticks)
  end))

  it("aget in a task while a plain thread blocks in put", aspec.async(function()
    local ch = Channel(2)
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local producer = asyncio.get_running_loop():run_in_executor(ex,
      function(c)
        for i = 1, 50 do c:put(i) end
        c:close()
        return "produced"
      end, ch)
    local got = {}
    while true do
      local ok, v = pcall(await, ch:aget())
      if not ok then
        assert.is_true(iserror(v, asyncio.QueueShutDown), tostring(v))
        break
      end
      got[#got + 1] = v
    end
    assert.equal(50, #got)
    for i = 1, 50 do assert.equal(i, got[i]) end
    assert.equal("produced", await(producer))
  end))

  it("aput in a task while a plain thread blocks in get", aspec.async(function()
    local ch = Channel(2)
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local consumer = asyncio.get_running_loop():run_in_executor(ex,
      function(c)
        local sum, n = 0, 0
        for _ = 1, 50 do
          local v = c:get(10)
          assert(v == n + 1, "out of order")
          n, sum = v, sum + v
        end
        return sum
      end, ch)
    for i = 1, 50 do await(ch:aput(i)) end
    assert.equal(50 * 51 // 2, await(asyncio.wait_for(consumer, 10)))
  end))

  it("close wakes parked tasks: aget and aput raise QueueShutDown",
    aspec.async(function()
      local empty, full = Channel(), Channel(1)
      full:put("x")
      local getter = create_task(async(function()
        return await(empty:aget())
      end)())
      local putter = create_task(async(function()
        return await(full:aput("y"))
      end)())
      await(sleep(0)) -- both park in their first step
      assert.is_false(getter:done())
      assert.is_false(putter:done())
      empty:close()
      full:close()
      local err = await_error(getter)
      assert.is_true(iserror(err, asyncio.QueueShutDown), tostring(err))
      assert.equal("Channel is closed", err.message)
      err = await_error(putter)
      assert.is_true(iserror(err, asyncio.QueueShutDown), tostring(err))
      assert.equal("x", await(full:aget())) -- left before close: drained
    end))

  it("a cancelled aget never takes an item", aspec.async({clock = "virtual"},
                                                        function()
    local ch = Channel()
    local getter = create_task(async(function() return await(ch:aget()) end)())
    await(sleep(0)) -- it parks in its first step
    getter:cancel()
    local err = await_error(getter)
    assert.is_true(iserror(err, asyncio.CancelledError))
    ch:put("kept")
    -- virtual clock: the sleep ends once the loop is idle, so the
    -- wake-up the put posted, and any task it woke, have run
    await(sleep(1))
    assert.equal(1, ch:qsize())
    assert.equal("kept", ch:get(0))
  end))

  it("a getter cancelled after the put that woke it leaves the item",
    aspec.async(function()
      local ch = Channel()
      local getter = create_task(async(function() return await(ch:aget()) end)())
      await(sleep(0)) -- it parks in its first step
      ch:put("kept") -- wakes the getter: its wake-up is on the way
      getter:cancel() -- before it runs
      local err = await_error(getter)
      assert.is_true(iserror(err, asyncio.CancelledError))
      assert.equal(1, ch:qsize())
      assert.equal("kept", await(ch:aget()))
    end))

  it("the wake-up of a cancelled getter passes to another parked getter",
    aspec.async(function()
      -- one put wakes one of two parked getters; cancelling either one
      -- (so, in one of the rounds, the woken one) leaves the item to the
      -- other
      for cancelled = 1, 2 do
        local ch = Channel()
        local getters = {}
        for i = 1, 2 do
          getters[i] = create_task(async(function()
            return await(ch:aget())
          end)())
        end
        await(sleep(0)) -- both park in their first step
        ch:put("item")
        getters[cancelled]:cancel()
        await_error(getters[cancelled])
        assert.equal("item", await(asyncio.wait_for(getters[3 - cancelled],
                                                    10)))
        assert.equal(0, ch:qsize())
      end
    end))

  it("a cancelled aput never adds its item", aspec.async({clock = "virtual"},
                                                       function()
    local ch = Channel(1)
    ch:put("first")
    local putter = create_task(async(function()
      await(ch:aput("second"))
    end)())
    await(sleep(0)) -- it parks in its first step
    putter:cancel()
    assert.is_true(iserror(await_error(putter), asyncio.CancelledError))
    assert.equal("first", ch:get(0)) -- frees the slot
    -- virtual clock: the sleep ends once the loop is idle, so the
    -- wake-up the get posted, and any task it woke, have run
    await(sleep(1))
    assert.equal(0, ch:qsize())
  end))

  it("aget and aput outside a task raise RuntimeError, taking nothing",
    function()
      local ch = Channel()
      ch:put(1)
      for _, coro in ipairs{ch:aget(), ch:aput(2)} do
        local err = raises(asyncio.RuntimeError, await, coro)
        assert.equal("cannot await outside a task", err.message)
        coro:close()
      end
      assert.equal(1, ch:qsize())
    end)
end)
