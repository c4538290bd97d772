-- spec/alloc_free_spec.lua: awaiting a C operation that can complete at
-- once allocates nothing (DESIGN "Performance"): the Lua heap, with the
-- collector stopped, does not grow across many such awaits; and the
-- kept operation objects behind it (aio_ccoro_kept) keep Python's
-- observable semantics.
local asyncio = require "asyncio"
local await = asyncio.await
local h = dofile("spec/helpers.lua")
local vspec = h.vspec

local N = 20000
-- what a loop of N awaits may allocate in all (a few table resizes of
-- the spec's own, nothing per await: one 48-byte object per await would
-- be about 960 KB)
local TOLERANCE = 16 * 1024

--- Runs body() N times with the collector stopped (after a warm-up
-- round, which may allocate the kept objects); returns the heap growth
-- in bytes.
local function growth(body)
  for _ = 1, 10 do body() end
  collectgarbage()
  collectgarbage("stop")
  local before = collectgarbage("count")
  for _ = 1, N do body() end
  local grown = (collectgarbage("count") - before) * 1024
  collectgarbage("restart")
  return grown
end

describe("awaiting a C operation that completes at once", function()
  it("q:get() from a non-empty queue allocates nothing", vspec(function()
    local q = asyncio.Queue()
    local got = 0
    local grown = growth(function()
      q:put_nowait(1)
      got = got + await(q:get())
    end)
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(N + 10, got)
  end))

  it("q:put(x) into a queue with room allocates nothing", vspec(function()
    local q = asyncio.Queue(4)
    local grown = growth(function()
      await(q:put(7))
      q:get_nowait()
    end)
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(0, q:qsize())
  end))

  it("writer:drain() with nothing to wait for allocates nothing",
     vspec(function()
    -- a writer over a transport written in Lua that is never paused
    local transport = {is_closing = function() return false end,
                       write = function() end}
    local w = asyncio.StreamWriter(transport, {}, nil,
                                   asyncio.get_running_loop())
    local drained = 0
    local grown = growth(function()
      await(w:drain())
      drained = drained + 1
    end)
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(N + 10, drained)
  end))

  it("an uncontended Lock allocates nothing", vspec(function()
    local lock = asyncio.Lock()
    local inside, acquired = 0, 0
    local grown = growth(function()
      do
        local _ <close> = await(lock)
        inside = inside + 1
      end
      if await(lock:acquire()) then acquired = acquired + 1 end
      lock:release()
    end)
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(N + 10, inside)
    assert.equal(N + 10, acquired)
    assert.is_false(lock:locked())
  end))

  it("a Lock handed between two tasks allocates nothing", vspec(function()
    -- each round the other task waits: the waiter is the task itself,
    -- with no Future
    local lock = asyncio.Lock()
    local rounds, other_rounds = 0, 0
    local other = asyncio.create_task(asyncio.async(function()
      while true do
        local _ <close> = await(lock)
        other_rounds = other_rounds + 1
        await(asyncio.sleep(0))
      end
    end)())
    await(asyncio.sleep(0))
    local grown = growth(function()
      local _ <close> = await(lock)
      rounds = rounds + 1
    end)
    other:cancel()
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(N + 10, rounds)
    -- the lock went back and forth: every round waited for the other
    assert.is_true(other_rounds >= N + 10, other_rounds .. " rounds")
  end))

  it("a Queue of one slot between two tasks allocates nothing",
     vspec(function()
    -- each put waits for the getter and each get for the putter: the
    -- waiters are the tasks themselves, with no Future
    local q = asyncio.Queue(1)
    local got, sum = 0, 0
    local consumer = asyncio.create_task(asyncio.async(function()
      while true do
        sum = sum + await(q:get())
        got = got + 1
      end
    end)())
    local grown = growth(function()
      await(q:put(1))
      await(q:put(1))
    end)
    await(asyncio.sleep(0))
    consumer:cancel()
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(2 * (N + 10), got)
    assert.equal(2 * (N + 10), sum)
  end))

  it("an uncontended Semaphore allocates nothing", vspec(function()
    local sem = asyncio.Semaphore(2)
    local grown = growth(function()
      do local _ <close> = await(sem) end
      await(sem:acquire())
      sem:release()
    end)
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(2, sem:_get_value())
  end))

  it("sleep(0) allocates nothing", vspec(function()
    local loop = asyncio.get_running_loop()
    local t0 = loop:time()
    local grown = growth(function()
      await(asyncio.sleep(0))
    end)
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(t0, loop:time())
  end))

  it("reader:read(n) of buffered data allocates nothing but the data",
     vspec(function()
    local r = asyncio.StreamReader()
    local got = 0
    local grown = growth(function()
      r:feed_data("x") -- a short string: interned, no new object
      if await(r:read(1)) == "x" then got = got + 1 end
    end)
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(N + 10, got)
  end))

  it("waiting on a set Event allocates nothing", vspec(function()
    local ev = asyncio.Event()
    ev:set()
    local woke = 0
    local grown = growth(function()
      if await(ev:wait()) then woke = woke + 1 end
    end)
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
    assert.equal(N + 10, woke)
  end))
end)

describe("kept C operations", function()
  it("q:put(x) that is never awaited puts nothing", vspec(function()
    local q = asyncio.Queue()
    local _ = q:put(1)
    q:put(2)
    assert.equal(0, q:qsize())
    await(q:put(3))
    assert.same({3}, {q:get_nowait()})
  end))

  it("an operation awaited later still does its own call", vspec(function()
    local q = asyncio.Queue()
    local a = q:put("a")
    local b = q:put("b") -- a is armed and not awaited: b is another
    assert.are_not.equal(a, b)
    await(b)
    await(a)
    local get = q:get()
    assert.equal("b", await(get))
    assert.equal("a", await(q:get()))
  end))

  it("an awaited operation is reused by the next call", vspec(function()
    local q = asyncio.Queue()
    local a = q:put(1)
    await(a)
    local b = q:put(2)
    assert.equal(a, b) -- the relaxed part: the same object, armed anew
    await(b)
    assert.equal(2, q:qsize())
  end))

  it("awaiting a spent operation again raises", vspec(function()
    local q = asyncio.Queue()
    q:put_nowait(1)
    local op = q:get()
    assert.equal(1, await(op))
    local err = h.error_of(await, op)
    assert.matches("cannot reuse already awaited coroutine", tostring(err))
  end))

  it("sleep keeps its Coroutine objects too", vspec(function()
    local loop = asyncio.get_running_loop()
    local a = asyncio.sleep(5, "a")
    local b = asyncio.sleep(1, "b") -- a is armed: b is another
    assert.are_not.equal(a, b)
    assert.equal("<coroutine object sleep>", tostring(b))
    assert.equal("b", await(b))
    assert.equal("a", await(a))
    assert.equal(6, loop:time())
    local c = asyncio.sleep(0, "c")
    assert.is_true(c == a or c == b) -- one of them, armed anew
    assert.equal("c", await(c))
    assert.is_true(asyncio.iscoroutinefunction(asyncio.sleep))
  end))

  it("a reader's methods that share a slot each run their own body",
     vspec(function()
    local r = asyncio.StreamReader()
    r:feed_data("line 1\nabcline 2\nxyz;")
    local line = r:readline()
    local three = r:readexactly(3) -- another operation in the same slot
    assert.equal("line 1\n", await(line))
    assert.equal("abc", await(three))
    local again = r:readexactly(1) -- three is spent: armed anew
    assert.equal(three, again)
    assert.equal("l", await(again))
    assert.equal("ine 2\n", await(r:readline()))
    local upto = r:readuntil(";") -- the slot's readexactly is replaced
    assert.are_not.equal(three, upto)
    assert.equal("xyz;", await(upto))
    -- a loop that alternates them gets every value, in order
    for i = 1, 50 do
      r:feed_data(("%d\n%04d"):format(i, i))
      assert.equal(i .. "\n", await(r:readline()))
      assert.equal(("%04d"):format(i), await(r:readexactly(4)))
    end
  end))

  it("a kept get wrapped in a task waits and gets", vspec(function()
    local q = asyncio.Queue()
    local t = asyncio.create_task(q:get())
    await(asyncio.sleep(0))
    assert.is_false(t:done())
    -- the task holds the operation: the next call makes another one
    local op = q:get()
    q:put_nowait("x")
    q:put_nowait("y")
    assert.equal("x", await(t))
    assert.equal("y", await(op))
  end))

  it("a kept operation wrapped in a task is not armed again before the "
     .. "task's first step", vspec(function()
    local loop = asyncio.get_running_loop()
    local q = asyncio.Queue()
    local slept = asyncio.sleep(2, "task's")
    local t = asyncio.create_task(slept)
    -- the task has not run yet: these calls must not take its objects
    local op = asyncio.sleep(1, "mine")
    assert.are_not.equal(slept, op)
    assert.equal("mine", await(op))
    local tg = asyncio.create_task(q:get())
    local get = q:get()
    assert.are_not.equal(tg:get_coro(), get)
    q:put_nowait("first")
    q:put_nowait("second")
    assert.equal("first", await(tg))
    assert.equal("second", await(get))
    assert.equal("task's", await(t))
    assert.equal(2, loop:time())
  end))

  it("a blocked get cancelled hands its wake-up on (FIFO kept)",
     vspec(function()
    local q = asyncio.Queue()
    local order = {}
    local function getter(name)
      return h.spawn(function()
        local item = await(q:get())
        order[#order + 1] = name .. ":" .. item
      end)
    end
    local a, b, c = getter("a"), getter("b"), getter("c")
    await(asyncio.sleep(0))
    q:put_nowait(1)
    a:cancel()
    q:put_nowait(2)
    for _ = 1, 3 do await(asyncio.sleep(0)) end
    assert.is_true(a:cancelled())
    assert.same({"b:1", "c:2"}, order)
    assert.is_true(b:done() and c:done())
  end))
end)

describe("a task waiting on a primitive", function()
  it("waits on a future of its own, reused: no allocation per wait",
     vspec(function()
    local lock = asyncio.Lock()
    local turns = 0
    local function worker()
      for _ = 1, 1000 do
        local _ <close> = await(lock) -- contended: this task waits
        turns = turns + 1
        await(asyncio.sleep(0))
      end
    end
    local a, b = h.spawn(worker), h.spawn(worker)
    await(asyncio.sleep(0))
    await(asyncio.sleep(0))
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    await(a)
    await(b)
    local grown = (collectgarbage("count") - before) * 1024
    collectgarbage("restart")
    assert.equal(2000, turns)
    -- two tasks waiting about 1000 times each: a future per wait would
    -- be over 200 KB
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
  end))

  it("a task waiting for stream data allocates nothing per wait",
     vspec(function()
    local r = asyncio.StreamReader()
    local got = 0
    local reader = h.spawn(function()
      for _ = 1, 2000 do
        if await(r:read(1)) == "y" then got = got + 1 end
      end
    end)
    await(asyncio.sleep(0))
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    for _ = 1, 2000 do
      r:feed_data("y") -- wakes the waiting task
      await(asyncio.sleep(0))
    end
    local grown = (collectgarbage("count") - before) * 1024
    collectgarbage("restart")
    await(reader)
    assert.equal(2000, got)
    -- 2000 waits: a future and an operation object per wait would be
    -- over 400 KB
    assert.is_true(grown < TOLERANCE, grown .. " bytes")
  end))

  it("a cancelled waiter still passes the lock on in FIFO order",
     vspec(function()
    local lock = asyncio.Lock()
    local order = {}
    local function waiter(name)
      return h.spawn(function()
        for round = 1, 2 do
          local _ <close> = await(lock)
          order[#order + 1] = name .. round
          await(asyncio.sleep(0))
        end
      end)
    end
    await(lock:acquire())
    local a, b, c = waiter("a"), waiter("b"), waiter("c")
    await(asyncio.sleep(0))
    b:cancel()
    lock:release()
    for _ = 1, 12 do await(asyncio.sleep(0)) end
    assert.is_true(b:cancelled())
    assert.same({"a1", "c1", "a2", "c2"}, order)
    assert.is_true(a:done() and c:done())
  end))
end)
