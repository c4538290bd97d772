-- spec/queue_spec.lua: Queue, LifoQueue and PriorityQueue
-- (bindings/sync/queue.c), semantics section M.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, raises, vspec = h.await_error, h.raises, h.vspec

local iserror = asyncio.iserror
local CancelledError, QueueEmpty, QueueFull, QueueShutDown, ValueError,
  TimeoutError, RuntimeError = asyncio.CancelledError, asyncio.QueueEmpty,
  asyncio.QueueFull, asyncio.QueueShutDown, asyncio.ValueError,
  asyncio.TimeoutError, asyncio.RuntimeError
local sleep, create_task = asyncio.sleep, asyncio.create_task

--- The number of blocked getters / putters, as tostring(q) shows them.
local function getters(q)
  return tonumber(tostring(q):match(" getters%[(%d+)%]")) or 0
end

local function putters(q)
  return tonumber(tostring(q):match(" putters%[(%d+)%]")) or 0
end

--- Drains q with get_nowait into a list.
local function drain(q)
  local out = {}
  while not q:empty() do out[#out + 1] = q:get_nowait() end
  return out
end

describe("Queue", function()
  it("M166 is FIFO: put 1, 3, 2 -> get 1, 3, 2", vspec(function()
    local q = asyncio.Queue()
    for _, v in ipairs{1, 3, 2} do q:put_nowait(v) end
    assert.same({1, 3, 2}, drain(q))
  end))

  it("M166 stays FIFO when its storage grows while it wraps around",
     vspec(function()
    local q = asyncio.Queue()
    local want, n = {}, 0
    -- fill, take some from the front, then put past the first capacity
    -- so that the items wrap around the start before the storage grows
    for _ = 1, 16 do n = n + 1; q:put_nowait(n) end
    for i = 1, 10 do assert.equal(i, await(q:get())) end
    for _ = 1, 100 do n = n + 1; await(q:put(n)) end
    for i = 11, n do want[#want + 1] = i end
    assert.same(want, drain(q))
  end))

  it("M167 q.maxsize is a field; queues of one maxsize share a metatable",
     function()
    local a, b, c = asyncio.Queue(3), asyncio.LifoQueue(3), asyncio.Queue()
    assert.equal(3, a.maxsize)
    assert.equal(3, b.maxsize)
    assert.equal(0, c.maxsize)
    assert.equal(2.5, asyncio.PriorityQueue(2.5).maxsize)
    -- a float stays a float, as in Python (Queue(3.0).maxsize is 3.0),
    -- though a table key would make it the integer 3
    local f = asyncio.Queue(3.0)
    assert.equal("float", math.type(f.maxsize))
    assert.equal("<asyncio.Queue maxsize=3.0 qsize=0 tasks=0>", tostring(f))
    assert.equal("integer", math.type(a.maxsize))
    assert.equal("float", math.type(asyncio.Queue(0.0).maxsize))
    assert.equal("integer", math.type(c.maxsize))
    assert.equal(getmetatable(a), getmetatable(b))
    assert.are_not.equal(getmetatable(a), getmetatable(c))
    assert.is_nil(a.nosuchfield)
    assert.equal("function", type(c.get))
    assert.equal("<asyncio.LifoQueue maxsize=3 qsize=0 tasks=0>",
                 tostring(b))
  end)

  it("M167 empty, full, qsize and maxsize; maxsize <= 0 is unbounded",
    vspec(function()
      local q = asyncio.Queue()
      assert.equal(0, q.maxsize)
      assert.is_true(q:empty())
      q:put_nowait(1)
      assert.is_false(q:empty())
      assert.equal(1, q:qsize())
      assert.equal(1, q:get_nowait())
      assert.is_true(q:empty())
      for i = 1, 1000 do q:put_nowait(i) end
      assert.is_false(q:full())
      assert.equal(1000, q:qsize())
      local neg = asyncio.Queue(-1)
      for i = 1, 100 do neg:put_nowait(i) end
      assert.is_false(neg:full())
      local one = asyncio.Queue(1)
      assert.equal(1, one.maxsize)
      assert.is_false(one:full())
      one:put_nowait(1)
      assert.is_true(one:full())
      -- math.huge, -math.huge and NaN, as Python's inf and nan: never full
      for _, m in ipairs{math.huge, -math.huge, 0 / 0} do
        local big = asyncio.Queue(m)
        for i = 1, 100 do big:put_nowait(i) end
        assert.is_false(big:full())
        assert.equal(100, big:qsize())
        assert.equal(tostring(m), tostring(big.maxsize))
      end
      -- an integer maxsize stays one, however large
      assert.equal(math.maxinteger, asyncio.Queue(math.maxinteger).maxsize)
      assert.equal("integer",
                   math.type(asyncio.LifoQueue(math.maxinteger).maxsize))
    end))

  it("M168 get_nowait on an empty queue raises QueueEmpty, put_nowait on "
     .. "a full one QueueFull", vspec(function()
    local q = asyncio.Queue(1)
    raises(QueueEmpty, q.get_nowait, q)
    q:put_nowait("a")
    raises(QueueFull, q.put_nowait, q, "b")
    assert.equal(1, q:qsize())
    assert.equal("a", q:get_nowait())
  end))

  it("M169 get on a non-empty queue returns without suspending",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local q = asyncio.Queue()
      q:put_nowait(1)
      local ran = false
      loop:call_soon(function() ran = true end)
      assert.equal(1, await(q:get()))
      assert.is_false(ran)
    end))

  it("M169 get on an empty queue waits for an item put later",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local q = asyncio.Queue()
      local started, finished = asyncio.Event(), false
      local t = create_task(async(function()
        started:set()
        local v = await(q:get())
        finished = true
        return v
      end)())
      await(started:wait())
      assert.is_false(finished)
      loop:call_later(0.01, q.put_nowait, q, 1)
      assert.equal(1, await(t))
      assert.is_true(finished)
      assert.equal(0.01, loop:time())
    end))

  it("M170 put on a full queue waits; a freed slot lets it in within one "
     .. "iteration", vspec(function()
    local q = asyncio.Queue(2)
    assert.equal(2, q.maxsize)
    local have_been_put = {}
    local t = create_task(async(function()
      for i = 0, 2 do
        await(q:put(i))
        have_been_put[#have_been_put + 1] = i
      end
      return true
    end)())
    await(sleep(0))
    await(sleep(0))
    assert.same({0, 1}, have_been_put)
    assert.equal(0, await(q:get()))
    await(sleep(0))
    assert.same({0, 1, 2}, have_been_put)
    assert.equal(1, await(q:get()))
    assert.equal(2, await(q:get()))
    assert.is_true(t:done())
    assert.is_true(t:result())
  end))

  it("M170 a blocked put completes once a callback frees the slot",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local q = asyncio.Queue(1)
      local finished = false
      loop:call_later(0.01, q.get_nowait, q)
      local t = create_task(async(function()
        await(q:put(1))
        await(q:put(2))
        finished = true
      end)())
      await(sleep(0))
      assert.is_false(finished)
      await(t)
      assert.is_true(finished)
      assert.equal(0.01, loop:time())
      assert.equal(2, q:get_nowait())
    end))

  it("M171 a getter already waiting receives an item put later",
    vspec(function()
      local q = asyncio.Queue()
      local t = create_task(q:get())
      await(sleep(0))
      assert.equal(1, getters(q))
      await(q:put("a"))
      assert.equal("a", await(t))
      assert.equal(0, getters(q))
    end))

  it("M172 blocked putters are served in FIFO order", vspec(function()
    local q = asyncio.Queue(1)
    create_task(q:put("a"))
    create_task(q:put("b"))
    await(sleep(0))
    assert.equal("a", await(q:get()))
    assert.equal("b", await(q:get()))
  end))

  it("M173 a cancelled getter never consumes an item", vspec(function()
    local q = asyncio.Queue()
    local t1 = create_task(q:get())
    local t2 = create_task(q:get())
    await(sleep(0))
    t1:cancel()
    await(sleep(0))
    assert.is_true(t1:done())
    assert.is_true(t1:cancelled())
    await(q:put("a"))
    await(sleep(0))
    assert.equal("a", t2:result())
    assert.equal(0, q:qsize())
  end))

  it("M174 a getter woken by a put but cancelled before it ran leaves the "
     .. "item: a retried get returns 1, not 2", vspec(function()
    local q = asyncio.Queue()
    local reader = create_task(q:get())
    await(sleep(0))
    q:put_nowait(1)
    q:put_nowait(2)
    reader:cancel()
    local err = await_error(reader)
    assert.is_true(iserror(err, CancelledError))
    reader = create_task(q:get())
    assert.equal(1, await(reader))
    assert.equal(1, q:qsize())
    assert.equal(2, q:get_nowait())
  end))

  it("M175 three readers, two puts, the first reader cancelled: the other "
     .. "two get 1 and 2", vspec(function()
    local q = asyncio.Queue()
    local r1 = create_task(q:get())
    local r2 = create_task(q:get())
    local r3 = create_task(q:get())
    await(sleep(0))
    q:put_nowait(1)
    q:put_nowait(2)
    r1:cancel()
    assert.is_true(iserror(await_error(r1), CancelledError))
    local a, b = await(r2), await(r3)
    assert.same({1, 2}, {math.min(a, b), math.max(a, b)})
    assert.equal(0, q:qsize())
    assert.equal(0, getters(q))
  end))

  it("M176 a putter granted a slot but cancelled before it ran does not "
     .. "insert; a retried put succeeds", vspec(function()
    local q = asyncio.Queue(1)
    q:put_nowait(1)
    local writer = create_task(q:put(2))
    await(sleep(0))
    assert.equal(1, q:get_nowait())
    writer:cancel()
    assert.is_true(iserror(await_error(writer), CancelledError))
    assert.equal(0, q:qsize())
    writer = create_task(q:put(2))
    await(writer)
    assert.equal(2, q:get_nowait())
    assert.equal(0, q:qsize())
  end))

  it("M176 a cancelled putter never enters; order stays 'a', 'b'",
    vspec(function()
      local q = asyncio.Queue(1)
      local put_a = create_task(q:put("a"))
      local put_b = create_task(q:put("b"))
      local put_c = create_task(q:put("X"))
      await(sleep(0))
      assert.is_true(put_a:done())
      assert.is_false(put_b:done())
      put_c:cancel()
      await(sleep(0))
      assert.is_true(put_c:done())
      assert.equal("a", q:get_nowait())
      await(sleep(0))
      assert.equal("b", q:get_nowait())
      await(put_b)
      assert.is_true(q:empty())
      assert.equal(0, putters(q))
    end))

  it("M176 the slot of a woken, cancelled putter passes to the next "
     .. "putter", vspec(function()
      local q = asyncio.Queue(1)
      q:put_nowait("a")
      local put_b = create_task(q:put("b"))
      local put_c = create_task(q:put("c"))
      await(sleep(0))
      assert.equal(2, putters(q))
      assert.equal("a", q:get_nowait()) -- wakes put_b
      put_b:cancel()
      await(sleep(0))  -- put_b runs, gives up its slot and wakes put_c
      assert.is_true(put_b:cancelled())
      assert.is_false(put_c:done())
      await(sleep(0))
      assert.is_true(put_c:done())
      assert.same({"c"}, drain(q))
      assert.equal(0, putters(q))
    end))

  it("M a task cancelled while it ran raises CancelledError, with the "
     .. "message, at the get that must wait; it takes nothing and leaves "
     .. "no getter", vspec(function()
    local q = asyncio.Queue()
    local reached = 0
    local t = create_task(async(function()
      asyncio.current_task():cancel("stop")
      reached = reached + 1
      local v = await(q:get())
      reached = reached + 1
      return v
    end)())
    local err = await_error(t)
    assert.is_true(iserror(err, CancelledError))
    assert.equal("stop", err.message)
    assert.equal(1, reached)
    assert.equal(0, getters(q))
    -- a later getter is served
    local other = create_task(q:get())
    await(sleep(0))
    assert.equal(1, getters(q))
    q:put_nowait("x")
    assert.equal("x", await(other))
  end))

  it("M a queue whose loop closed with tasks waiting on it forgets them",
     function()
    local q = asyncio.Queue(1)
    h.close_with_waiters(2, function()
      for _ = 1, 2 do create_task(q:get()) end
      await(sleep(0))
      assert.equal(2, getters(q))
    end)
    assert.equal(0, getters(q))
    q:put_nowait(1) -- wakes nobody
    assert.equal(1, q:qsize())
    assert.equal("<asyncio.Queue maxsize=1 qsize=1 tasks=1>", tostring(q))
  end)

  it("M177 a getter timed out by wait_for does not linger", vspec(function()
    local q = asyncio.Queue(5)
    local err = await_error(asyncio.wait_for(q:get(), 0.1))
    assert.is_true(iserror(err, TimeoutError))
    assert.equal(0, getters(q))
    assert.equal("<asyncio.Queue maxsize=5 qsize=0 tasks=0>", tostring(q))
  end))

  it("M177 put and join compose with timeout scopes and wait_for",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local q = asyncio.Queue(1)
      q:put_nowait("a")
      local ok, err = pcall(function()
        local _ <close> = asyncio.timeout(0.5)
        await(q:put("b"))
      end)
      assert.is_false(ok)
      assert.is_true(iserror(err, TimeoutError), tostring(err))
      assert.equal(0, putters(q))
      assert.same({"a"}, drain(q))
      err = await_error(asyncio.wait_for(q:join(), 0.5))
      assert.is_true(iserror(err, TimeoutError))
      assert.equal(1.0, loop:time())
      q:task_done()
      await(asyncio.wait_for(q:join(), 0.5))
      assert.equal(1.0, loop:time())
    end))

  it("M177 a cancelled blocked put does not linger", vspec(function()
    local q = asyncio.Queue(1)
    q:put_nowait(1)
    local put_task = create_task(q:put(1))
    await(sleep(0))
    assert.equal(1, putters(q))
    put_task:cancel()
    assert.is_true(iserror(await_error(put_task), CancelledError))
    assert.equal(0, putters(q))
    assert.equal(1, q:qsize())
  end))

  it("M177 cancelling a putter already woken by a get raises plain "
     .. "CancelledError and inserts nothing", vspec(function()
    local q = asyncio.Queue(1)
    q:put_nowait(1)
    local put_task = create_task(q:put(1))
    await(sleep(0))
    q:get_nowait()
    put_task:cancel()
    local err = await_error(put_task)
    assert.is_true(iserror(err, CancelledError))
    assert.equal(0, q:qsize())
    assert.equal(0, putters(q))
  end))

  it("M178 producer and consumer through maxsize 1 finish (5 items)",
    vspec(function()
      local q = asyncio.Queue(1)
      local got = {}
      local producer = async(function()
        for i = 1, 5 do await(q:put(i)) end
      end)
      local consumer = async(function()
        for _ = 1, 5 do got[#got + 1] = await(q:get()) end
      end)
      await(asyncio.gather(producer(), consumer()))
      assert.same({1, 2, 3, 4, 5}, got)
    end))

  it("M178 four putters and one draining getter on maxsize 2 finish",
    vspec(function()
      local q = asyncio.Queue(2)
      local got = {}
      local putter = async(function(item) await(q:put(item)) end)
      local getter = async(function()
        await(sleep(0))
        for _ = 1, q:qsize() do got[#got + 1] = q:get_nowait() end
      end)
      await(asyncio.gather(getter(), putter(0), putter(1), putter(2),
                           putter(3)))
      assert.same({0, 1}, got)
      assert.same({2, 3}, drain(q))
    end))

  it("M181 a put counts as unfinished also when handed straight to a "
     .. "waiting getter", vspec(function()
    local q = asyncio.Queue()
    local getter = create_task(q:get())
    await(sleep(0))
    q:put_nowait("x")
    assert.equal("x", await(getter))
    assert.equal("<asyncio.Queue maxsize=0 qsize=0 tasks=1>", tostring(q))
    local joiner = create_task(q:join())
    await(sleep(0))
    assert.is_false(joiner:done())
    q:task_done()
    await(sleep(0))
    assert.is_true(joiner:done())
  end))

  it("M182 Queue(1.3) is full after 2 items", vspec(function()
    local q = asyncio.Queue(1.3)
    assert.equal(1.3, q.maxsize)
    q:put_nowait(1)
    assert.is_false(q:full())
    q:put_nowait(2)
    assert.is_true(q:full())
    raises(QueueFull, q.put_nowait, q, 3)
    q = asyncio.Queue(1.3)
    await(q:put(1))
    await(q:put(2))
    assert.is_true(q:full())
  end))

  it("M183 LifoQueue: put 1, 3, 2 -> get 2, 3, 1", vspec(function()
    local q = asyncio.LifoQueue()
    for _, v in ipairs{1, 3, 2} do q:put_nowait(v) end
    assert.same({2, 3, 1}, drain(q))
  end))

  it("M183 PriorityQueue: put 1, 3, 2 -> get 1, 2, 3", vspec(function()
    local q = asyncio.PriorityQueue()
    for _, v in ipairs{1, 3, 2} do q:put_nowait(v) end
    assert.same({1, 2, 3}, drain(q))
  end))

  it("M184 shutdown of an empty queue: a waiting get and later put/get "
     .. "raise QueueShutDown, join returns", vspec(function()
    local q = asyncio.Queue()
    local get_task = create_task(q:get())
    await(sleep(0))
    q:shutdown()
    assert.equal(0, q:qsize())
    await(q:join())
    await(sleep(0))
    assert.is_true(get_task:done())
    assert.is_true(iserror(await_error(get_task), QueueShutDown))
    assert.is_true(iserror(await_error(q:put("data")), QueueShutDown))
    raises(QueueShutDown, q.put_nowait, q, "data")
    assert.is_true(iserror(await_error(q:get()), QueueShutDown))
    raises(QueueShutDown, q.get_nowait, q)
    assert.equal("<asyncio.Queue maxsize=0 qsize=0 tasks=0 shutdown>",
                 tostring(q))
  end))

  it("M185 shutdown(true) empties the queue and lowers the unfinished "
     .. "count", vspec(function()
    local q = asyncio.Queue()
    q:put_nowait("data")
    q:put_nowait("data")
    q:put_nowait("data")
    local join_task = create_task(q:join())
    assert.equal("data", await(q:get()))
    q:shutdown(true)  -- unfinished: 3 -> 1
    assert.equal(0, q:qsize())
    await(sleep(0))
    assert.is_false(join_task:done())
    q:task_done()
    raises(ValueError, q.task_done, q)
    await(sleep(0))
    assert.is_true(join_task:done())
  end))

  it("M185 shutdown(true) wakes blocked getters and putters with "
     .. "QueueShutDown", vspec(function()
    local full = asyncio.Queue(1)
    full:put_nowait(1)
    local putter = create_task(full:put(2))
    local empty = asyncio.Queue()
    local getter = create_task(empty:get())
    await(sleep(0))
    full:shutdown(true)
    empty:shutdown(true)
    assert.is_true(iserror(await_error(putter), QueueShutDown))
    assert.is_true(iserror(await_error(getter), QueueShutDown))
    assert.equal(0, full:qsize())
    assert.equal(0, putters(full))
    assert.equal(0, getters(empty))
  end))
end)

-- task_done / join / shutdown behave the same for the three kinds (M183).
for _, kind in ipairs{"Queue", "LifoQueue", "PriorityQueue"} do
  local new = asyncio[kind]
  describe(kind .. " join and shutdown", function()
    it("M179 task_done() with nothing outstanding raises ValueError ("
       .. kind .. ")", vspec(function()
      local q = new()
      local err = raises(ValueError, q.task_done, q)
      assert.equal("task_done() called too many times", err.message)
      q:put_nowait(1)
      q:get_nowait()
      q:task_done()
      raises(ValueError, q.task_done, q)
    end))

    it("M180 join returns once task_done was called per item (" .. kind
       .. ")", vspec(function()
      local q = new()
      for i = 0, 99 do q:put_nowait(i) end
      local acc, running = 0, true
      local worker = async(function()
        while running do
          acc = acc + await(q:get())
          q:task_done()
        end
      end)
      local w1, w2 = create_task(worker()), create_task(worker())
      await(q:join())
      assert.equal(4950, acc)
      running = false
      q:put_nowait(0)
      q:put_nowait(0)
      await(w1)
      await(w2)
    end))

    it("M180 join on a queue that never held items returns at once, "
       .. "repeatedly (" .. kind .. ")", vspec(function()
      local loop = asyncio.get_running_loop()
      local q = new()
      local ran = false
      loop:call_soon(function() ran = true end)
      await(q:join())
      await(q:join())
      assert.is_false(ran)
    end))

    it("M184 shutdown of a non-empty queue: items still come out, then "
       .. "QueueShutDown; join waits for task_done (" .. kind .. ")",
      vspec(function()
        local q = new(1)
        q:put_nowait("data")
        local join_task = create_task(q:join())
        local put_task = create_task(q:put("data2"))
        await(sleep(0))
        assert.is_false(put_task:done())
        q:shutdown(false)
        assert.equal(1, q:qsize())
        await(sleep(0))
        assert.is_true(put_task:done())
        assert.is_true(iserror(await_error(put_task), QueueShutDown))
        assert.equal("data", await(q:get()))
        await(sleep(0))
        assert.is_false(join_task:done())
        assert.is_true(iserror(await_error(q:put("data")), QueueShutDown))
        raises(QueueShutDown, q.put_nowait, q, "data")
        assert.is_true(iserror(await_error(q:get()), QueueShutDown))
        raises(QueueShutDown, q.get_nowait, q)
        q:task_done()
        await(sleep(0))
        assert.is_true(join_task:done())
        await(join_task)
        raises(ValueError, q.task_done, q)
      end))

    it("M185 shutdown(true) drops the items and wakes join (" .. kind
       .. ")", vspec(function()
      local q = new()
      q:put_nowait("data")
      local join_task = create_task(q:join())
      q:shutdown(true)
      assert.equal(0, q:qsize())
      await(sleep(0))
      assert.is_true(join_task:done())
      await(join_task)
      assert.is_true(iserror(await_error(q:put("data")), QueueShutDown))
      raises(QueueShutDown, q.put_nowait, q, "data")
      assert.is_true(iserror(await_error(q:get()), QueueShutDown))
      raises(QueueShutDown, q.get_nowait, q)
      raises(ValueError, q.task_done, q)
    end))

    it("M185 shutdown(true) with an item already taken leaves one "
       .. "unfinished (" .. kind .. ")", vspec(function()
      local q = new()
      q:put_nowait("data")
      q:put_nowait("data")
      local join_task = create_task(q:join())
      assert.equal("data", await(q:get()))
      q:shutdown(true)
      assert.equal(0, q:qsize())
      await(sleep(0))
      assert.is_false(join_task:done())
      q:task_done()
      raises(ValueError, q.task_done, q)
      await(sleep(0))
      assert.is_true(join_task:done())
      await(join_task)
    end))
  end)
end

describe("queued values", function()
  it("M nil is an item like any other (Queue, LifoQueue)", vspec(function()
    local q = asyncio.Queue()
    q:put_nowait(nil)
    await(q:put(nil))
    q:put_nowait(false)
    assert.equal(3, q:qsize())
    local a, b, c = q:get_nowait(), await(q:get()), q:get_nowait()
    assert.is_nil(a)
    assert.is_nil(b)
    assert.is_false(c)
    assert.is_true(q:empty())
    local lifo = asyncio.LifoQueue()
    lifo:put_nowait(1)
    lifo:put_nowait(nil)
    assert.equal(2, lifo:qsize())
    assert.is_nil(lifo:get_nowait())
    assert.equal(1, lifo:get_nowait())
  end))

  it("M a getter waiting on an empty queue receives nil", vspec(function()
    local q = asyncio.Queue()
    local getter = create_task(async(function()
      return select("#", await(q:get())), await(q:get())
    end)())
    await(sleep(0))
    q:put_nowait(nil)
    q:put_nowait("after")
    local n, second = await(getter)
    assert.equal(1, n)
    assert.equal("after", second)
  end))

  it("M a put with no value puts nil", vspec(function()
    local q = asyncio.Queue()
    await(q:put())
    q:put_nowait()
    assert.equal(2, q:qsize())
    assert.is_nil(q:get_nowait())
    assert.is_nil(q:get_nowait())
  end))

  it("M tables, functions and coroutines go through unchanged",
    vspec(function()
      local q = asyncio.Queue()
      local t, f, co = {}, function() end, coroutine.create(print)
      q:put_nowait(t)
      q:put_nowait(f)
      q:put_nowait(co)
      assert.equal(t, q:get_nowait())
      assert.equal(f, q:get_nowait())
      assert.equal(co, q:get_nowait())
    end))

  it("M PriorityQueue orders {priority, data} tables by item[1], ties in "
     .. "insertion order", vspec(function()
    local q = asyncio.PriorityQueue()
    local items = {{2, "b"}, {1, "a"}, {3, "c"}, {1, "a2"}, {2, "b2"},
                   {1, "a3"}}
    for _, item in ipairs(items) do q:put_nowait(item) end
    local order = {}
    for i, item in ipairs(drain(q)) do order[i] = item[2] end
    assert.same({"a", "a2", "a3", "b", "b2", "c"}, order)
  end))

  it("M PriorityQueue breaks ties on the next fields as Python's tuples "
     .. "(numbers with numbers, strings with strings; a shorter item first), "
     .. "then by insertion", vspec(function()
    local q = asyncio.PriorityQueue()
    local t1, t2 = {}, {}
    local items = {{1, "b"}, {1, "a"}, {0, "z"}, {1, "a", 2}, {1, "a", 1},
                   {1}, {2, t1}, {2, t2}, {1, "a", 1, "x"}, {3, 2}, {3, 10}}
    for _, item in ipairs(items) do q:put_nowait(item) end
    local out = drain(q)
    -- Python 3.13, heapq of the same tuples (the {2, table} ties would
    -- raise TypeError there; here they keep the order they were put)
    local want = {items[3], items[6], items[2], items[5], items[9],
                  items[4], items[1], items[7], items[8], items[10],
                  items[11]}
    assert.equal(#want, #out)
    for i = 1, #want do assert.equal(want[i], out[i]) end
  end))

  it("M PriorityQueue returns the very table that was put", vspec(function()
    local q = asyncio.PriorityQueue()
    local item = {5, {payload = true}}
    q:put_nowait(item)
    assert.equal(item, await(q:get()))
  end))

  it("M PriorityQueue orders plain values, equal ones in insertion order",
    vspec(function()
      local q = asyncio.PriorityQueue()
      q:put_nowait(2)
      q:put_nowait(1.0)
      q:put_nowait(3)
      q:put_nowait(1)
      local out = drain(q)
      assert.same({1, 1, 2, 3}, out)
      assert.equal("float", math.type(out[1]))
      assert.equal("integer", math.type(out[2]))
      for _, s in ipairs{"pear", "apple", "fig"} do q:put_nowait(s) end
      assert.same({"apple", "fig", "pear"}, drain(q))
    end))

  it("M PriorityQueue sorts 2000 shuffled keys with many ties, stable",
    vspec(function()
      local q = asyncio.PriorityQueue()
      local rng = {}
      local seed = 12345
      for i = 1, 2000 do
        seed = (seed * 1103515245 + 12345) % 2147483648
        rng[i] = {seed % 50, i}
      end
      for _, item in ipairs(rng) do q:put_nowait(item) end
      local prev_key, prev_seq = -1, 0
      for _ = 1, 2000 do
        local item = q:get_nowait()
        assert.is_true(item[1] > prev_key or
                       (item[1] == prev_key and item[2] > prev_seq))
        prev_key, prev_seq = item[1], item[2]
      end
      assert.is_true(q:empty())
    end))

  it("M PriorityQueue keys may be interleaved with gets", vspec(function()
    local q = asyncio.PriorityQueue()
    q:put_nowait(5)
    q:put_nowait(1)
    assert.equal(1, q:get_nowait())
    q:put_nowait(3)
    q:put_nowait(0)
    assert.equal(0, q:get_nowait())
    q:put_nowait(4)
    assert.same({3, 4, 5}, drain(q))
  end))

  it("M LifoQueue hands the newest item to a blocked getter first",
    vspec(function()
      local q = asyncio.LifoQueue()
      local getter = create_task(q:get())
      await(sleep(0))
      q:put_nowait(1)
      q:put_nowait(2)
      assert.equal(2, await(getter))
      assert.equal(1, q:get_nowait())
    end))
end)

describe("queue misuse and reprs", function()
  it("M tostring shows kind, maxsize, size, unfinished count and waiters",
    vspec(function()
      local q = asyncio.Queue(1)
      q:put_nowait(1)
      local putter = create_task(q:put(2))
      await(sleep(0))
      assert.equal("<asyncio.Queue maxsize=1 qsize=1 tasks=1 putters[1]>",
                   tostring(q))
      q:get_nowait()
      await(putter)
      assert.equal("<asyncio.LifoQueue maxsize=0 qsize=0 tasks=0>",
                   tostring(asyncio.LifoQueue()))
      assert.equal("<asyncio.PriorityQueue maxsize=2.5 qsize=0 tasks=0>",
                   tostring(asyncio.PriorityQueue(2.5)))
      local empty = asyncio.Queue()
      local getter = create_task(empty:get())
      await(sleep(0))
      assert.equal("<asyncio.Queue maxsize=0 qsize=0 tasks=0 getters[1]>",
                   tostring(empty))
      getter:cancel()
      await_error(getter)
    end))

  it("M a bad maxsize or a call on a non-queue raises bad argument",
    function()
      local ok, err = pcall(asyncio.Queue, "big")
      assert.is_false(ok)
      assert.matches("bad argument #1", err)
      local q = asyncio.Queue()
      ok, err = pcall(q.put_nowait, {}, 1)
      assert.is_false(ok)
      assert.matches("asyncio.Queue expected", err)
    end)

  it("M get and put outside a task raise RuntimeError", function()
    local q = asyncio.Queue()
    local get, put = q:get(), q:put(1)
    local ok, err = pcall(await, get)
    assert.is_false(ok)
    assert.is_true(iserror(err, RuntimeError), tostring(err))
    ok, err = pcall(await, put)
    assert.is_false(ok)
    assert.is_true(iserror(err, RuntimeError), tostring(err))
    get:close()
    put:close()
    assert.equal(0, q:qsize())
  end)

  it("N194 a queue bound to one loop raises RuntimeError when it must "
     .. "wait on another", function()
    local q = asyncio.Queue()
    local loop1 = asyncio.new_event_loop{clock = "virtual"}
    local loop2 = asyncio.new_event_loop{clock = "virtual"}
    loop1:run_until_complete(async(function()
      local t = create_task(q:get())
      await(sleep(0))
      q:put_nowait(1)
      assert.equal(1, await(t))
    end)())
    local ok, err = pcall(loop2.run_until_complete, loop2,
                          async(function() return await(q:get()) end)())
    assert.is_false(ok)
    assert.is_true(iserror(err, RuntimeError), tostring(err))
    assert.matches("is bound to a different event loop", err.message)
    loop1:close()
    loop2:close()
  end)
end)

-- An awaited put or get that need not wait (an unbounded or non-full
-- queue, an item there, nobody to wake) completes in await's fast path;
-- these check that it is the same operation as the slow one.
describe("put and get that complete at once", function()
  it("M LifoQueue: awaited puts and gets come out last in, first out",
    vspec(function()
      local q = asyncio.LifoQueue()
      for i = 1, 40 do await(q:put(i)) end
      local out = {}
      for i = 1, 40 do out[i] = await(q:get()) end
      for i = 1, 40 do assert.equal(41 - i, out[i]) end
      assert.is_true(q:empty())
    end))

  it("M an operation armed but not awaited puts its own item when awaited "
     .. "later, after a newer one", vspec(function()
      local q = asyncio.Queue()
      local a = q:put("a")
      assert.equal(0, q:qsize())
      await(q:put("b"))
      await(a)
      assert.same({"b", "a"}, drain(q))
      local get1 = q:get()
      q:put_nowait("x")
      q:put_nowait("y")
      assert.equal("x", await(q:get()))
      assert.equal("y", await(get1))
    end))

  it("M awaited puts count as unfinished: join waits for each task_done",
    vspec(function()
      local q = asyncio.Queue()
      for i = 1, 3 do await(q:put(i)) end
      local joined = 0
      local joiner = create_task(async(function()
        await(q:join())
        joined = joined + 1
      end)())
      for i = 1, 3 do
        assert.equal(i, await(q:get()))
        await(sleep(0))
        assert.equal(0, joined)
        q:task_done()
      end
      await(joiner)
      assert.equal(1, joined)
    end))

  it("M the queue lets go of an item once it was taken", vspec(function()
    -- a taken number may stay in its free slot (it holds nothing alive),
    -- a taken table must not
    for _, make in ipairs{asyncio.Queue, asyncio.LifoQueue} do
      local q = make()
      await(q:put(0)) -- the queue makes its storage: the next put need not
      assert.equal(0, await(q:get()))
      local weak = setmetatable({}, {__mode = "v"})
      local function put_one()
        local item = {}
        weak[1] = item
        await(q:put(item))
      end
      put_one()
      assert.is_table(await(q:get()))
      collectgarbage()
      collectgarbage()
      assert.is_nil(weak[1])
    end
  end))

  it("M an awaited put wakes the getter waiting for it", vspec(function()
    local q = asyncio.Queue()
    await(q:put(0)) -- storage made: the next put could complete at once
    assert.equal(0, await(q:get()))
    local getter = create_task(async(function() return await(q:get()) end)())
    await(sleep(0))
    await(q:put(1))
    assert.equal(1, await(asyncio.wait_for(getter, 0.5)))
  end))

  it("M awaited gets stay FIFO while the ring's head wraps around",
    vspec(function()
      local q = asyncio.Queue()
      for i = 1, 16 do q:put_nowait(i) end
      for i = 1, 40 do
        assert.equal(i, await(q:get()))
        q:put_nowait(i + 16)
      end
      assert.equal(16, q:qsize())
    end))

  it("M PriorityQueue: awaited puts and gets keep priority order",
    vspec(function()
      local q = asyncio.PriorityQueue()
      for _, v in ipairs{5, 1, 3} do await(q:put(v)) end
      local out = {}
      for i = 1, 3 do out[i] = await(q:get()) end
      assert.same({1, 3, 5}, out)
    end))

  it("M a put or get wrapped in a task runs as when awaited", vspec(function()
    local q = asyncio.Queue()
    await(create_task(q:put(5)))
    await(q:put(6))
    assert.equal(5, await(create_task(q:get())))
    assert.equal(6, await(q:get()))
  end))
end)

-- A FIFO queue's kept put operation, armed again by q:put(x), keeps x in
-- the ring slot x takes once awaited (queue.c, push_slot): these check
-- that what a user sees is that of an operation holding its argument.
describe("Queue put armed and awaited later", function()
  --- q with its kept put operation awaited once, so that q:put(x)
  -- arms it again.
  local function warm(q)
    await(q:put("w"))
    assert.equal("w", await(q:get()))
  end

  it("M a put never awaited puts nothing", vspec(function()
    local q = asyncio.Queue()
    warm(q)
    local _ = q:put(1)
    assert.equal(0, q:qsize())
    assert.is_true(q:empty())
    assert.is_true(iserror(select(2, pcall(q.get_nowait, q)), QueueEmpty))
    await(q:put(2))
    assert.same({2}, drain(q))
  end))

  it("M armed puts run in the order they are awaited", vspec(function()
    local q = asyncio.Queue()
    warm(q)
    local a = q:put(1)
    local b = q:put(2)
    await(b)
    await(a)
    local c = q:put(3)
    q:put_nowait(4)
    await(c)
    await(q:put(5))
    assert.same({2, 1, 4, 3, 5}, drain(q))
  end))

  it("M an armed put survives gets, growth and wrap-around",
    vspec(function()
      local q = asyncio.Queue()
      warm(q)
      for i = 1, 15 do q:put_nowait(i) end
      local op = q:put(16)
      for i = 1, 10 do assert.equal(i, await(q:get())) end
      await(op)
      local op2 = q:put(17)
      for i = 18, 40 do q:put_nowait(i) end -- grows the ring
      await(op2)
      local want = {}
      for i = 11, 16 do want[#want + 1] = i end
      for i = 18, 40 do want[#want + 1] = i end
      want[#want + 1] = 17
      assert.same(want, drain(q))
    end))

  it("M an armed put of nil puts nil", vspec(function()
    local q = asyncio.Queue()
    warm(q)
    local op = q:put(nil)
    q:put_nowait(false)
    await(op)
    assert.equal(2, q:qsize())
    assert.is_false(q:get_nowait())
    assert.is_nil(q:get_nowait())
  end))

  it("M a closed armed put puts nothing, and the next one works",
    vspec(function()
      local q = asyncio.Queue()
      warm(q)
      local op = q:put(1)
      op:close()
      await(q:put(2))
      q:put(3):close()
      q:put_nowait(4)
      assert.same({2, 4}, drain(q))
    end))

  it("M an armed put wrapped in a task, or waiting for room",
    vspec(function()
      local q = asyncio.Queue(1)
      warm(q)
      local t = create_task(q:put(1))
      await(t)
      local op = q:put(2) -- the queue is full
      local t2 = create_task(async(function() await(op) end)())
      await(sleep(0))
      assert.equal(1, putters(q))
      assert.equal(1, await(q:get()))
      await(t2)
      assert.same({2}, drain(q))
    end))

  it("M an armed put wakes a waiting getter", vspec(function()
    local q = asyncio.Queue()
    warm(q)
    local got = create_task(q:get())
    await(sleep(0))
    assert.equal(1, getters(q))
    local op = q:put(7)
    await(op)
    assert.equal(7, await(got))
    assert.equal(0, q:qsize())
  end))

  it("M an armed put raises QueueShutDown after shutdown",
    vspec(function()
      local q = asyncio.Queue()
      warm(q)
      q:put_nowait(1)
      local op = q:put(2)
      q:shutdown(true)
      assert.is_true(iserror(await_error(op), QueueShutDown))
      assert.equal(0, q:qsize())
    end))

  it("M an item put and taken is not kept alive by the queue",
    vspec(function()
      local q = asyncio.Queue()
      warm(q)
      local weak = setmetatable({}, {__mode = "k"})
      local a, b, c = {}, {}, {}
      weak[a], weak[b], weak[c] = true, true, true
      await(q:put(a))
      assert.equal(a, await(q:get()))
      await(create_task(q:put(c)))
      assert.equal(c, await(q:get()))
      local op = q:put(b) -- armed, never awaited
      op:close()
      a, b, c, op = nil, nil, nil, nil
      await(q:put(1)) -- the closed put's item leaves the ring
      collectgarbage()
      collectgarbage()
      assert.is_nil(next(weak))
    end))
end)

-- await(op) of a C operation with a fast path tries that path before it
-- looks for the awaiting task (coro.c, await_coro_at1): in a coroutine
-- that is not a task's own, what completes at once completes, as a
-- Python coroutine driven by send() completes an await that never
-- suspends; what its fast path leaves to its body (a wait, a wake-up,
-- the ring's growth) raises as before, and leaves the operation new.
describe("put and get in a coroutine that is not a task's own",
  function()
  it("M complete when they need not wait, else raise RuntimeError",
    vspec(function()
      local q = asyncio.Queue()
      q:put_nowait(0) -- the ring has room now: put needs no growth
      assert.equal(0, q:get_nowait())
      local co = coroutine.wrap(function()
        await(q:put(1))
        local got = await(q:get())
        local op = q:get()
        local ok, err = pcall(await, op) -- empty: it would wait
        return got, ok, err, op
      end)
      local got, ok, err, op = co()
      assert.equal(1, got)
      assert.is_false(ok)
      assert.is_true(iserror(err, RuntimeError), tostring(err))
      assert.matches("not a task's own", err.message)
      q:put_nowait(2)
      assert.equal(2, await(op)) -- still new: it runs in the task
      assert.equal(0, q:qsize())
    end))
end)
