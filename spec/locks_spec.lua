-- spec/locks_spec.lua: Lock, Event, Semaphore and BoundedSemaphore
-- (bindings/sync/locks.c), semantics sections N, O and Q, and the
-- `local _ <close> = await(x)` guards of locks, semaphores and conditions.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, raises, vspec = h.await_error, h.raises, h.vspec

local iserror = asyncio.iserror
local CancelledError, RuntimeError, ValueError, TimeoutError =
  asyncio.CancelledError, asyncio.RuntimeError, asyncio.ValueError,
  asyncio.TimeoutError
local sleep, create_task = asyncio.sleep, asyncio.create_task

--- The number of waiters tostring(x) shows (0 when it shows none).
local function waiters(x)
  return tonumber(tostring(x):match("waiters:(%d+)")) or 0
end

--- Runs bind() as a task on a first loop, then wait() on a second one,
-- which must raise RuntimeError "... is bound to a different event
-- loop"; returns that error (N194).
local function bound_to_first_loop(bind, wait)
  local loop1 = asyncio.new_event_loop{clock = "virtual"}
  local loop2 = asyncio.new_event_loop{clock = "virtual"}
  loop1:run_until_complete(async(bind)())
  local err = raises(RuntimeError, loop2.run_until_complete, loop2,
                     async(wait)())
  loop1:close()
  loop2:close()
  assert.matches("is bound to a different event loop", err.message)
  return err
end

--- A coroutine function: acquire `prim`, then append `tag` to `out`.
local acquire_then = async(function(prim, out, tag)
  local got = await(prim:acquire())
  out[#out + 1] = tag
  return got
end)

describe("Lock", function()
  it("N186 acquire returns true and locks; release unlocks; releasing an "
     .. "unlocked lock raises RuntimeError", vspec(function()
    local lock = asyncio.Lock()
    assert.is_false(lock:locked())
    assert.equal("<asyncio.Lock [unlocked]>", tostring(lock))
    assert.is_true(await(lock:acquire()))
    assert.is_true(lock:locked())
    assert.equal("<asyncio.Lock [locked]>", tostring(lock))
    lock:release()
    assert.is_false(lock:locked())
    local err = raises(RuntimeError, lock.release, lock)
    assert.equal("Lock is not acquired.", err.message)
  end))

  it("N187 strict FIFO hand-off: a newcomer queues behind a woken waiter",
    vspec(function()
      local lock = asyncio.Lock()
      local result = {}
      assert.is_true(await(lock:acquire()))
      local t1 = create_task(acquire_then(lock, result, 1))
      local t2 = create_task(acquire_then(lock, result, 2))
      await(sleep(0))
      assert.same({}, result)
      assert.equal(2, waiters(lock))
      lock:release()
      await(sleep(0))
      assert.same({1}, result)
      await(sleep(0))
      assert.same({1}, result)
      local t3 = create_task(acquire_then(lock, result, 3))
      lock:release()
      await(sleep(0))
      assert.same({1, 2}, result)
      lock:release()
      await(sleep(0))
      assert.same({1, 2, 3}, result)
      for _, t in ipairs{t1, t2, t3} do
        assert.is_true(t:done())
        assert.is_true(t:result())
      end
      assert.is_true(lock:locked())
    end))

  it("N188 a lock has no owner: a callback or another task may release it",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local lock = asyncio.Lock()
      await(lock:acquire())
      loop:call_soon(lock.release, lock)
      await(sleep(0))
      assert.is_false(lock:locked())
      await(lock:acquire())
      await(create_task(async(function() lock:release() end)()))
      assert.is_false(lock:locked())
    end))

  it("N189 the guard acquires on entry and releases on exit",
    vspec(function()
      local lock = asyncio.Lock()
      do
        local guard <close> = await(lock)
        assert.equal(lock, guard)
        assert.is_true(lock:locked())
      end
      assert.is_false(lock:locked())
    end))

  it("N189 the guard releases when the body raises", vspec(function()
    local lock = asyncio.Lock()
    local ok, err = pcall(function()
      local _ <close> = await(lock)
      assert.is_true(lock:locked())
      error("boom", 0)
    end)
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.is_false(lock:locked())
  end))

  it("N190 a cancelled queued acquire leaves no waiter and the lock held",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local lock = asyncio.Lock()
      assert.is_true(await(lock:acquire()))
      local task = create_task(lock:acquire())
      loop:call_soon(task.cancel, task)
      assert.is_true(iserror(await_error(task), CancelledError))
      assert.equal(0, waiters(lock))
      assert.is_true(lock:locked())
      lock:release()
      assert.is_false(lock:locked())
    end))

  it("N191 the holder releases while the first queued waiter is cancelled:"
     .. " the next one gets the lock", vspec(function()
      local loop = asyncio.get_running_loop()
      local lock = asyncio.Lock()
      local lockit = async(function(blocker)
        await(lock:acquire())
        local ok, err = pcall(function()
          if blocker ~= nil then await(blocker) end
        end)
        lock:release()
        if not ok then error(err, 0) end
      end)
      local fa = loop:create_future()
      local ta = create_task(lockit(fa))
      await(sleep(0))
      assert.is_true(lock:locked())
      local tb = create_task(lockit(nil))
      await(sleep(0))
      assert.equal(1, waiters(lock))
      local tc = create_task(lockit(nil))
      await(sleep(0))
      assert.equal(2, waiters(lock))
      fa:set_result(nil)
      tb:cancel()
      await(sleep(0))
      assert.is_false(lock:locked())
      assert.is_true(ta:done())
      assert.is_true(tb:cancelled())
      await(tc)
      assert.is_false(lock:locked())
      assert.equal(0, waiters(lock))
    end))

  it("N192 cancel and release in one callback: exactly one task acquires",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local lock = asyncio.Lock()
      local lock_count, call_count = 0, 0
      local lockit = async(function()
        call_count = call_count + 1
        await(lock:acquire())
        lock_count = lock_count + 1
      end)
      await(lock:acquire())
      local t1 = create_task(lockit())
      local t2 = create_task(lockit())
      local t3 = create_task(lockit())
      await(sleep(0))
      loop:call_soon(function()
        t1:cancel()
        lock:release()
      end)
      assert.is_true(iserror(await_error(t1), CancelledError))
      assert.equal(1, lock_count)
      assert.equal(3, call_count)
      assert.is_true(t1:cancelled())
      assert.is_true(t2:done())
      assert.is_false(t3:done())
      t3:cancel()
      await(sleep(0))
      assert.is_true(t3:cancelled())
    end))

  it("N193 the only queued waiter cancelled, then release: a new task "
     .. "takes the lock", vspec(function()
      local lock = asyncio.Lock()
      await(lock:acquire())
      local tb = create_task(lock:acquire())
      await(sleep(0))
      assert.equal(1, waiters(lock))
      local tc = create_task(lock:acquire())
      tb:cancel()
      lock:release()
      await(sleep(0))
      assert.is_true(lock:locked())
      assert.is_true(tb:cancelled())
      assert.is_true(tc:done())
      assert.is_true(await(tc))
    end))

  it("N194 a lock bound to one loop raises RuntimeError when it must wait "
     .. "on another", function()
    local lock = asyncio.Lock()
    local err = bound_to_first_loop(function()
      await(lock:acquire())
      local t = create_task(lock:acquire())
      await(sleep(0))
      lock:release()
      await(t)     -- t holds the lock now, and keeps it
    end, function() await(lock:acquire()) end)
    assert.equal("<asyncio.Lock [locked]> is bound to a different event "
                 .. "loop", err.message)
    assert.is_true(lock:locked())
    assert.equal(0, waiters(lock))
  end)

  it("N a task cancelled while it ran raises CancelledError, with the "
     .. "message, at the acquire that must wait", vspec(function()
    local lock = asyncio.Lock()
    await(lock:acquire())
    local reached = 0
    local t = create_task(async(function()
      asyncio.current_task():cancel("stop")
      reached = reached + 1
      await(lock:acquire())
      reached = reached + 1
    end)())
    local err = await_error(t)
    assert.is_true(iserror(err, CancelledError))
    assert.equal("stop", err.message)
    assert.equal(1, reached)
    assert.is_true(t:cancelled())
    assert.equal(0, waiters(lock))
    -- the lock is still the holder's, and a new waiter gets it
    local got = create_task(lock:acquire())
    await(sleep(0))
    lock:release()
    assert.is_true(await(got))
    assert.is_true(lock:locked())
  end))

  it("N a lock whose loop closed with tasks queued on it forgets them",
     function()
    local lock = asyncio.Lock()
    h.close_with_waiters(3, function()
      await(lock:acquire())
      for _ = 1, 3 do create_task(lock:acquire()) end
      await(sleep(0))
      assert.equal(3, waiters(lock))
    end)
    assert.equal(0, waiters(lock))
    lock:release()     -- wakes nobody
    assert.is_false(lock:locked())
    assert.equal("<asyncio.Lock [unlocked]>", tostring(lock))
  end)

  it("N acquire and the guard outside a task raise RuntimeError", function()
    local lock = asyncio.Lock()
    local acquire = lock:acquire()
    raises(RuntimeError, await, acquire)
    raises(RuntimeError, await, lock)
    acquire:close()
    assert.is_false(lock:locked())
  end)

  it("N a lock wait composes with wait_for: timed out, it leaves no waiter",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local lock = asyncio.Lock()
      await(lock:acquire())
      local err = await_error(asyncio.wait_for(lock:acquire(), 0.5))
      assert.is_true(iserror(err, TimeoutError))
      assert.equal(0.5, loop:time())
      assert.equal(0, waiters(lock))
      lock:release()
      assert.is_true(await(asyncio.wait_for(lock:acquire(), 0.5)))
      lock:release()
    end))

  it("N a lock wait composes with a timeout scope", vspec(function()
    local lock = asyncio.Lock()
    await(lock:acquire())
    local ok, err = pcall(function()
      local _ <close> = asyncio.timeout(1)
      local _ <close> = await(lock)
    end)
    assert.is_false(ok)
    assert.is_true(iserror(err, TimeoutError), tostring(err))
    assert.is_true(lock:locked())
    assert.equal(0, waiters(lock))
  end))

  it("N _would_wait (internal): held, or a live waiter queued, a woken "
     .. "one that has not run included; a cancelled one does not count",
     vspec(function()
    local lock = asyncio.Lock()
    assert.is_false(lock:_would_wait())
    await(lock:acquire())
    assert.is_true(lock:_would_wait())
    local t = create_task(lock:acquire())
    await(sleep(0))
    lock:release() -- wakes t, which has not run yet
    assert.is_false(lock:locked())
    assert.is_true(lock:_would_wait())
    assert.is_true(await(t))
    lock:release()
    assert.is_false(lock:_would_wait())
    await(lock:acquire())
    local c = create_task(lock:acquire())
    await(sleep(0))
    c:cancel()
    lock:release()
    assert.is_false(lock:_would_wait()) -- an acquire would not wait
    assert.is_true(iserror(await_error(c), CancelledError))
    assert.equal(0, waiters(lock))
  end))
end)

describe("Event", function()
  it("O195 starts unset; set, is_set and clear act as a flag",
    vspec(function()
      local ev = asyncio.Event()
      assert.is_false(ev:is_set())
      assert.equal("<asyncio.Event [unset]>", tostring(ev))
      ev:set()
      assert.is_true(ev:is_set())
      assert.equal("<asyncio.Event [set]>", tostring(ev))
      ev:clear()
      assert.is_false(ev:is_set())
    end))

  it("O196 wait on a set event returns true without suspending",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local ev = asyncio.Event()
      ev:set()
      local ran = false
      loop:call_soon(function() ran = true end)
      assert.is_true(await(ev:wait()))
      assert.is_false(ran)
    end))

  it("O197 set wakes every waiter; a task created before set runs first",
    vspec(function()
      local ev = asyncio.Event()
      local result = {}
      local waiter = async(function(tag)
        if await(ev:wait()) then result[#result + 1] = tag end
      end)
      local t1 = create_task(waiter(1))
      local t2 = create_task(waiter(2))
      await(sleep(0))
      assert.same({}, result)
      assert.equal(2, waiters(ev))
      local t3 = create_task(waiter(3))
      ev:set()
      await(sleep(0))
      assert.same({3, 1, 2}, result)
      for _, t in ipairs{t1, t2, t3} do
        assert.is_true(t:done())
        assert.is_nil(t:result())
      end
    end))

  it("O198 set then clear before the waiters run still wakes them, once",
    vspec(function()
      local ev = asyncio.Event()
      local result = {}
      local t = create_task(async(function()
        if await(ev:wait()) then result[#result + 1] = 1 end
        return true
      end)())
      await(sleep(0))
      assert.same({}, result)
      ev:set()
      ev:clear()
      assert.is_false(ev:is_set())
      ev:set()
      ev:set()
      assert.equal(1, waiters(ev))
      await(sleep(0))
      assert.same({1}, result)
      assert.equal(0, waiters(ev))
      assert.is_true(t:done())
      assert.is_true(t:result())
    end))

  it("O199 a cancelled wait leaves no waiter behind", vspec(function()
    local loop = asyncio.get_running_loop()
    local ev = asyncio.Event()
    local wait = create_task(ev:wait())
    loop:call_soon(wait.cancel, wait)
    assert.is_true(iserror(await_error(wait), CancelledError))
    assert.equal(0, waiters(ev))
    assert.equal("<asyncio.Event [unset]>", tostring(ev))
  end))

  it("O a wait composes with wait_for and timeout", vspec(function()
    local loop = asyncio.get_running_loop()
    local ev = asyncio.Event()
    local err = await_error(asyncio.wait_for(ev:wait(), 0.25))
    assert.is_true(iserror(err, TimeoutError))
    assert.equal(0, waiters(ev))
    local ok
    ok, err = pcall(function()
      local _ <close> = asyncio.timeout(0.25)
      await(ev:wait())
    end)
    assert.is_false(ok)
    assert.is_true(iserror(err, TimeoutError))
    assert.equal(0, waiters(ev))
    assert.equal(0.5, loop:time())
    loop:call_later(0.1, ev.set, ev)
    assert.is_true(await(asyncio.wait_for(ev:wait(), 1)))
  end))

  it("N194 an event bound to one loop raises RuntimeError when it must "
     .. "wait on another", function()
    local ev = asyncio.Event()
    bound_to_first_loop(function()
      asyncio.get_running_loop():call_soon(ev.set, ev)
      await(ev:wait())
      ev:clear()
    end, function() await(ev:wait()) end)
  end)
end)

describe("Semaphore", function()
  it("Q210 default value 1; Semaphore(0) is locked; Semaphore(-1) raises "
     .. "ValueError", vspec(function()
    local sem = asyncio.Semaphore()
    assert.equal(1, sem:_get_value())
    assert.is_false(sem:locked())
    assert.equal("<asyncio.Semaphore [unlocked, value:1]>", tostring(sem))
    assert.is_true(asyncio.Semaphore(0):locked())
    raises(ValueError, asyncio.Semaphore, -1)
    raises(ValueError, asyncio.BoundedSemaphore, -1)
    await(sem:acquire())
    assert.is_true(sem:locked())
    assert.matches("^<asyncio.Semaphore %[locked", tostring(sem))
  end))

  it("Q211 acquire decrements; at 0 it queues; release hands the permit "
     .. "to the first waiter", vspec(function()
    local sem = asyncio.Semaphore(3)
    local result = {}
    assert.is_true(await(sem:acquire()))
    assert.is_true(await(sem:acquire()))
    assert.is_false(sem:locked())
    local t1 = create_task(acquire_then(sem, result, 1))
    local t2 = create_task(acquire_then(sem, result, 2))
    local t3 = create_task(acquire_then(sem, result, 3))
    await(sleep(0))
    assert.same({1}, result)
    assert.is_true(sem:locked())
    assert.equal(2, waiters(sem))
    assert.equal(0, sem:_get_value())
    local t4 = create_task(acquire_then(sem, result, 4))
    sem:release()
    sem:release()
    assert.equal(0, sem:_get_value())
    await(sleep(0))
    assert.equal(0, sem:_get_value())
    assert.equal(3, #result)
    assert.is_true(sem:locked())
    assert.equal(1, waiters(sem))
    assert.is_true(t1:done())
    assert.is_true(t1:result())
    local done = 0
    for _, t in ipairs{t2, t3, t4} do
      if t:done() and t:result() then done = done + 1 end
    end
    assert.equal(2, done)
    sem:release()
    await(asyncio.gather(t2, t3, t4))
  end))

  it("Q212 locked while a live waiter is queued, even with a permit free",
    vspec(function()
      local sem = asyncio.Semaphore(0)
      local result = {}
      local t4
      local c4 = async(function() result[#result + 1] = 4 end)
      local c1 = async(function()
        assert.equal(0, sem:_get_value())
        await(sem:acquire())
        assert.equal(0, sem:_get_value())
        t4 = create_task(c4())
        result[#result + 1] = 1
      end)
      local c2 = async(function()
        sem:release()
        sem:release()
        sem:release()
        assert.equal(2, sem:_get_value())
        assert.is_true(sem:locked())  -- c1 is woken but has not run
        await(sem:acquire())
        result[#result + 1] = 2
      end)
      local c3 = async(function()
        await(sem:acquire())
        assert.is_true(sem:locked())
        result[#result + 1] = 3
      end)
      local t1, t2, t3 = create_task(c1()), create_task(c2()),
        create_task(c3())
      await(sleep(0))
      assert.equal(2, sem:_get_value())
      assert.equal(3, waiters(sem))
      await(sleep(0))
      await(asyncio.gather(t1, t2, t3, t4))
      assert.same({1, 2, 3, 4}, result)
    end))

  it("Q213 FIFO: c1, c2, c3 each acquire and release twice, in turn",
    vspec(function()
      local sem = asyncio.Semaphore(1)
      local result = {}
      local coro = async(function(tag)
        for round = 1, 2 do
          await(sem:acquire())
          result[#result + 1] = tag .. "_" .. round
          await(sleep(0.01))
          sem:release()
        end
      end)
      await(asyncio.gather(coro("c1"), coro("c2"), coro("c3")))
      assert.same({"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"}, result)
    end))

  it("Q213 FIFO: a releaser that acquires again queues behind the woken",
    vspec(function()
      local sem = asyncio.Semaphore(1)
      local result = {}
      local c2 = async(function()
        await(sem:acquire())
        result[#result + 1] = 2
        sem:release()
        await(sem:acquire())
        result[#result + 1] = 4
        return true
      end)
      local t1 = create_task(acquire_then(sem, result, 1))
      local t2 = create_task(c2())
      local t3 = create_task(acquire_then(sem, result, 3))
      await(sleep(0))
      sem:release()
      sem:release()
      await(asyncio.gather(t1, t2, t3))
      assert.same({1, 2, 3, 4}, result)
    end))

  it("Q213 FIFO: the first waiter cancelled, two releases -> 2, 3",
    vspec(function()
      local sem = asyncio.Semaphore(0)
      local result = {}
      local t1 = create_task(acquire_then(sem, result, 1))
      local t2 = create_task(acquire_then(sem, result, 2))
      local t3 = create_task(acquire_then(sem, result, 3))
      await(sleep(0))
      t1:cancel()
      await(sleep(0))
      sem:release()
      sem:release()
      await(asyncio.gather(t1, t2, t3, {return_exceptions = true}))
      assert.same({2, 3}, result)
      assert.is_true(t1:cancelled())
    end))

  it("Q214 cancelled waiters never consume a permit", vspec(function()
    local sem = asyncio.Semaphore(0)
    local t = {}
    for i = 1, 4 do t[i] = create_task(sem:acquire()) end
    await(sleep(0))
    t[1]:cancel()
    t[2]:cancel()
    sem:release()
    await(sleep(0))
    await(sleep(0))
    assert.is_true(t[3]:done())
    assert.is_false(t[4]:done())
    assert.is_true(t[1]:cancelled())
    assert.is_true(t[2]:cancelled())
    t[4]:cancel()
    await(sleep(0))
    assert.is_true(t[4]:cancelled())
    assert.equal(0, sem:_get_value())
    assert.equal(0, waiters(sem))
  end))

  it("Q214 one waiter cancelled, one release: the other one gets it",
    vspec(function()
      local sem = asyncio.Semaphore(0)
      local t1 = create_task(sem:acquire())
      local t2 = create_task(sem:acquire())
      await(sleep(0))
      t1:cancel()
      sem:release()
      await(sleep(0))
      await(sleep(0))
      assert.is_true(sem:locked())
      assert.is_true(t2:done())
      assert.is_true(t1:cancelled())
    end))

  it("Q215 a woken waiter cancelled before it runs gives its permit back",
    vspec(function()
      local sem = asyncio.Semaphore(1)
      local t2
      local c1 = async(function()
        do
          local _ <close> = await(sem)
          await(sleep(0))
        end
        t2:cancel()
      end)
      local entered = false
      local c2 = async(function()
        local _ <close> = await(sem)
        entered = true
      end)
      local t1 = create_task(c1())
      t2 = create_task(c2())
      local r = await(asyncio.gather(t1, t2, {return_exceptions = true}))
      assert.is_nil(r[1])
      assert.is_true(iserror(r[2], CancelledError))
      assert.is_false(entered)
      assert.equal(1, sem:_get_value())
      assert.is_true(await(asyncio.wait_for(sem:acquire(), 1)))
    end))

  it("Q215 a task woken by an earlier wait, cancelled while it runs, "
     .. "takes no permit from its next acquire", vspec(function()
    local sem = asyncio.Semaphore(1)
    await(sem:acquire())
    local rounds = 0
    local t = create_task(async(function()
      await(sem:acquire()) -- waits, then is woken with the permit
      rounds = rounds + 1
      asyncio.current_task():cancel()
      await(sem:acquire()) -- must wait: ends cancelled at once
      rounds = rounds + 1
    end)())
    await(sleep(0))
    sem:release()
    assert.is_true(iserror(await_error(t), CancelledError))
    assert.equal(1, rounds)
    -- the task holds the one permit (never released): none was made
    assert.equal(0, sem:_get_value())
    assert.is_true(sem:locked())
    assert.equal(0, waiters(sem))
  end))

  it("Q216 a cancelled queued acquire leaves no live waiter",
    vspec(function()
      local loop = asyncio.get_running_loop()
      local sem = asyncio.Semaphore()
      await(sem:acquire())
      local acquire = create_task(sem:acquire())
      loop:call_soon(acquire.cancel, acquire)
      assert.is_true(iserror(await_error(acquire), CancelledError))
      assert.equal(0, waiters(sem))
      assert.equal(0, sem:_get_value())
      sem:release()
      assert.is_false(sem:locked())
    end))

  it("Q217 a Semaphore may go above its initial value; a BoundedSemaphore "
     .. "raises ValueError", vspec(function()
    local sem = asyncio.Semaphore(1)
    sem:release()
    sem:release()
    assert.equal(3, sem:_get_value())
    local bsem = asyncio.BoundedSemaphore(1)
    local err = raises(ValueError, bsem.release, bsem)
    assert.equal("BoundedSemaphore released too many times", err.message)
    assert.equal(1, bsem:_get_value())
    await(bsem:acquire())
    bsem:release()
    raises(ValueError, bsem.release, bsem)
    assert.equal("<asyncio.BoundedSemaphore [unlocked, value:1]>",
                 tostring(bsem))
  end))

  it("Q a semaphore wait composes with wait_for", vspec(function()
    local sem = asyncio.BoundedSemaphore(1)
    await(sem:acquire())
    local err = await_error(asyncio.wait_for(sem:acquire(), 0.1))
    assert.is_true(iserror(err, TimeoutError))
    assert.equal(0, waiters(sem))
    sem:release()
    assert.equal(1, sem:_get_value())
  end))

  it("N194 a semaphore bound to one loop raises RuntimeError when it must "
     .. "wait on another", function()
    local sem = asyncio.Semaphore(0)
    bound_to_first_loop(function()
      asyncio.get_running_loop():call_soon(sem.release, sem)
      await(sem:acquire())
    end, function() await(sem:acquire()) end)
  end)
end)

-- `local _ <close> = await(x)`: acquired for the scope, released however
-- the scope ends.
local guarded = {
  {"Lock", function() return asyncio.Lock() end},
  {"Semaphore", function() return asyncio.Semaphore(1) end},
  {"BoundedSemaphore", function() return asyncio.BoundedSemaphore(1) end},
  {"Condition", function() return asyncio.Condition() end},
}

describe("guards", function()
  for _, case in ipairs(guarded) do
    local name, new = case[1], case[2]

    it("guard: " .. name .. " is held in the scope and released at its "
       .. "end", vspec(function()
      local prim = new()
      do
        local g <close> = await(prim)
        assert.equal(prim, g)
        assert.is_true(prim:locked())
      end
      assert.is_false(prim:locked())
      do
        local _ <close> = await(prim)
      end
      assert.is_false(prim:locked())
    end))

    it("guard: " .. name .. " that had to wait is the primitive too",
      vspec(function()
        local prim = new()
        await(prim:acquire())
        local got
        local t = create_task(async(function()
          local g <close> = await(prim)
          got = g
        end)())
        await(sleep(0))
        assert.is_nil(got)
        prim:release()
        await(t)
        assert.equal(prim, got)
        assert.is_false(prim:locked())
      end))

    it("guard: " .. name .. " is released when the scope ends by an error",
      vspec(function()
        local prim = new()
        local ok, err = pcall(function()
          local _ <close> = await(prim)
          error(asyncio.ValueError("inside"))
        end)
        assert.is_false(ok)
        assert.is_true(iserror(err, ValueError))
        assert.is_false(prim:locked())
      end))

    it("guard: " .. name .. " is released when the task is cancelled "
       .. "inside the scope", vspec(function()
      local prim = new()
      local inside = false
      local t = create_task(async(function()
        local _ <close> = await(prim)
        inside = true
        await(sleep(10))
      end)())
      await(sleep(0))
      assert.is_true(inside)
      assert.is_true(prim:locked())
      t:cancel()
      assert.is_true(iserror(await_error(t), CancelledError))
      assert.is_false(prim:locked())
    end))

    it("guard: " .. name .. " cancelled while acquiring releases nothing",
      vspec(function()
        local prim = new()
        await(prim:acquire())
        local entered = false
        local t = create_task(async(function()
          local _ <close> = await(prim)
          entered = true
        end)())
        await(sleep(0))
        t:cancel()
        assert.is_true(iserror(await_error(t), CancelledError))
        assert.is_false(entered)
        assert.is_true(prim:locked())
        prim:release()
        assert.is_false(prim:locked())
      end))

    it("guard: " .. name .. " composes with a timeout scope", vspec(function()
      local loop = asyncio.get_running_loop()
      local prim = new()
      local ok, err = pcall(function()
        local _ <close> = asyncio.timeout(0.5)
        local _ <close> = await(prim)
        await(sleep(10))
      end)
      assert.is_false(ok)
      assert.is_true(iserror(err, TimeoutError), tostring(err))
      assert.equal(0.5, loop:time())
      assert.is_false(prim:locked())
    end))
  end
end)
