-- spec/condition_spec.lua: asyncio.Condition (lua/asyncio/locks.lua),
-- semantics section P (Python 3.13).
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, raises, vspec = h.await_error, h.raises, h.vspec

local iserror = asyncio.iserror
local CancelledError, RuntimeError, TimeoutError = asyncio.CancelledError,
  asyncio.RuntimeError, asyncio.TimeoutError
local sleep, create_task = asyncio.sleep, asyncio.create_task

local function waiters(x)
  return tonumber(tostring(x):match("waiters:(%d+)")) or 0
end

--- A coroutine function: acquire cond, wait, append tag to out; with
-- `release`, release the lock afterwards.
local waiter = async(function(cond, out, tag, release)
  await(cond:acquire())
  if await(cond:wait()) then
    out[#out + 1] = tag
    if release then cond:release() end
  end
  return true
end)

describe("Condition", function()
  it("P200 wait, notify and notify_all without the lock raise "
     .. "RuntimeError", vspec(function()
    local cond = asyncio.Condition()
    local err = await_error(cond:wait())
    assert.is_true(iserror(err, RuntimeError))
    assert.equal("cannot wait on un-acquired lock", err.message)
    err = raises(RuntimeError, cond.notify, cond)
    assert.equal("cannot notify on un-acquired lock", err.message)
    raises(RuntimeError, cond.notify_all, cond)
    assert.is_false(cond:locked())
    assert.equal(0, waiters(cond))
  end))

  it("P201 wait releases the lock, and re-acquires it before returning "
     .. "true; notify does not release", vspec(function()
    local cond = asyncio.Condition()
    local result = {}
    local t1 = create_task(waiter(cond, result, 1))
    local t2 = create_task(waiter(cond, result, 2))
    local t3 = create_task(waiter(cond, result, 3))
    await(sleep(0))
    assert.same({}, result)
    assert.is_false(cond:locked())
    assert.equal(3, waiters(cond))
    assert.is_true(await(cond:acquire()))
    cond:notify()
    await(sleep(0))
    assert.same({}, result)
    assert.is_true(cond:locked())
    cond:release()
    await(sleep(0))
    assert.same({1}, result)
    assert.is_true(cond:locked())
    cond:notify(2)
    await(sleep(0))
    assert.same({1}, result)
    assert.is_true(cond:locked())
    cond:release()
    await(sleep(0))
    assert.same({1, 2}, result)
    assert.is_true(cond:locked())
    cond:release()
    await(sleep(0))
    assert.same({1, 2, 3}, result)
    assert.is_true(cond:locked())
    for _, t in ipairs{t1, t2, t3} do
      assert.is_true(t:done())
      assert.is_true(t:result())
    end
    assert.equal(0, waiters(cond))
  end))

  it("P202 notify(n) wakes up to n waiters in FIFO order; notify(2048) "
     .. "wakes the rest", vspec(function()
    local cond = asyncio.Condition()
    local result = {}
    local t = {}
    for i = 1, 3 do t[i] = create_task(waiter(cond, result, i, true)) end
    await(sleep(0))
    assert.same({}, result)
    await(cond:acquire())
    cond:notify(1)
    cond:release()
    await(sleep(0))
    assert.same({1}, result)
    await(cond:acquire())
    cond:notify(1)
    cond:notify(2048)
    cond:release()
    await(sleep(0))
    assert.same({1, 2, 3}, result)
    for i = 1, 3 do assert.is_true(t[i]:result()) end
  end))

  it("P202 notify_all wakes every waiter", vspec(function()
    local cond = asyncio.Condition()
    local result = {}
    local t1 = create_task(waiter(cond, result, 1, true))
    local t2 = create_task(waiter(cond, result, 2, true))
    await(sleep(0))
    await(cond:acquire())
    cond:notify_all()
    cond:release()
    await(sleep(0))
    assert.same({1, 2}, result)
    assert.is_true(t1:result())
    assert.is_true(t2:result())
  end))

  it("P202 notify with nobody waiting does nothing", vspec(function()
    local cond = asyncio.Condition()
    local _ <close> = await(cond)
    cond:notify()
    cond:notify_all()
    assert.equal("<asyncio.Condition [locked]>", tostring(cond))
  end))

  it("P203 wait_for re-evaluates the predicate after every wake-up",
    vspec(function()
      local cond = asyncio.Condition()
      local presult, calls = false, 0
      local function predicate()
        calls = calls + 1
        return presult
      end
      local result = {}
      local t = create_task(async(function()
        await(cond:acquire())
        if await(cond:wait_for(predicate)) then
          result[#result + 1] = 1
          cond:release()
        end
        return true
      end)())
      await(sleep(0))
      assert.same({}, result)
      assert.equal(1, calls)
      await(cond:acquire())
      cond:notify()
      cond:release()
      await(sleep(0))
      assert.same({}, result)
      assert.equal(2, calls)
      presult = true
      await(cond:acquire())
      cond:notify()
      cond:release()
      await(sleep(0))
      assert.same({1}, result)
      assert.equal(3, calls)
      assert.is_true(t:done())
      assert.is_true(t:result())
    end))

  it("P203 wait_for returns the predicate's value; a truthy one returns at"
     .. " once even without the lock", vspec(function()
    local cond = asyncio.Condition()
    local value = {1, 2, 3}
    assert.equal(value, await(cond:wait_for(function() return value end)))
    local err = await_error(cond:wait_for(function() return false end))
    assert.is_true(iserror(err, RuntimeError))
    assert.is_false(cond:locked())
  end))

  it("P204 a cancelled wait leaves the waiters and re-acquires the lock "
     .. "before raising", vspec(function()
    local loop = asyncio.get_running_loop()
    local cond = asyncio.Condition()
    await(cond:acquire())
    local wait = create_task(cond:wait())
    loop:call_soon(wait.cancel, wait)
    assert.is_true(iserror(await_error(wait), CancelledError))
    assert.equal(0, waiters(cond))
    assert.is_true(cond:locked())
  end))

  it("P205 notified, then cancelled while the lock is contested: the "
     .. "waiter ends holding the lock", vspec(function()
    local loop = asyncio.get_running_loop()
    local cond = asyncio.Condition()
    await(cond:acquire())
    assert.is_true(cond:locked())
    local wait_task = create_task(cond:wait())
    await(sleep(0))
    assert.is_false(cond:locked())
    await(cond:acquire())
    assert.is_true(cond:locked())
    cond:notify()
    loop:call_soon(wait_task.cancel, wait_task)
    loop:call_soon(cond.release, cond)
    local ok, err = pcall(await, wait_task)
    assert.is_true(ok or iserror(err, CancelledError), tostring(err))
    assert.is_true(wait_task:done())
    assert.is_true(cond:locked())
    assert.equal(0, waiters(cond))
  end))

  it("P205 cancelled while re-acquiring: CancelledError only once the "
     .. "lock is held", vspec(function()
    local cond = asyncio.Condition()
    local waited, held_at_raise = false, nil
    local t = create_task(async(function()
      local _ <close> = await(cond)
      waited = true
      local ok, err = pcall(await, cond:wait())
      held_at_raise = cond:locked()
      if not ok then error(err, 0) end
    end)())
    await(sleep(0))
    await(cond:acquire())
    cond:notify()
    await(sleep(0))  -- t now waits to re-acquire
    t:cancel()
    await(sleep(0))  -- the cancellation reaches t, which keeps waiting
    assert.is_false(t:done())
    cond:release()
    await(sleep(0))
    assert.is_true(t:cancelled())
    assert.is_true(waited)
    assert.is_true(held_at_raise)
    assert.is_false(cond:locked())  -- t's guard released it
  end))

  --- A spec body: two consumers wait for `state ~= 0`; one notify is sent
  -- and the consumer it wakes is cancelled, before it runs or (with
  -- `relocking`) while it waits for the lock. The other consumer must get
  -- the notification: `state` is consumed before a 0.01 s timeout.
  local function notify_racing_cancel(relocking)
    return vspec(function()
      local cond = asyncio.Condition()
      local state = 0
      local consumer = async(function()
        local _ <close> = await(cond)
        while true do
          await(cond:wait_for(function() return state ~= 0 end))
          if state < 0 then return end
          state = state - 1
        end
      end)
      local c = {create_task(consumer()), create_task(consumer())}
      await(sleep(0))
      do
        local _ <close> = await(cond)
        state = state + 1
        cond:notify(1)
        if relocking then await(sleep(0)) end -- c[1] wakes, waits the lock
        c[1]:cancel()
        pcall(function()
          local _ <close> = asyncio.timeout(0.01)
          await(cond:wait_for(function() return state == 0 end))
        end)
        assert.equal(0, state)
        state = -1
        cond:notify_all()
      end
      await(c[2])
      assert.is_true(c[1]:cancelled())
    end)
  end
  it("P206 a notify racing a cancel before the wake-up is passed on",
     notify_racing_cancel(false))
  it("P206 a notify racing a cancel while re-locking is passed on",
     notify_racing_cancel(true))

  it("P207 the CancelledError leaving wait_for is the very object "
     .. "delivered while waiting for the wake-up", vspec(function()
    local cond = asyncio.Condition()
    local raised
    local task = create_task(async(function()
      local _ <close> = await(cond)
      local ok, err = pcall(await, cond:wait_for(function() return false end))
      assert(not ok)
      raised = err
      error(err, 0)
    end)())
    await(sleep(0))
    task:cancel("foo")
    local err = await_error(task)
    assert.is_true(iserror(err, CancelledError))
    assert.equal("foo", err.args[1])
    assert.equal(raised, err)
  end))

  it("P207 the CancelledError delivered while re-acquiring is the one "
     .. "raised", vspec(function()
    local cond = asyncio.Condition()
    local wake, raised = false, nil
    local task = create_task(async(function()
      local _ <close> = await(cond)
      local ok, err = pcall(await, cond:wait_for(function() return wake end))
      assert(not ok)
      raised = err
      error(err, 0)
    end)())
    await(sleep(0))
    await(cond:acquire())
    wake = true
    cond:notify()
    await(sleep(0))
    task:cancel("foo")
    cond:release()
    local err = await_error(task)
    assert.is_true(iserror(err, CancelledError))
    assert.equal("foo", err.args[1])
    assert.equal(raised, err)
  end))

  it("P207 cancelled while waiting and again while re-acquiring: the most "
     .. "recent CancelledError is raised", vspec(function()
    local cond = asyncio.Condition()
    local t = create_task(async(function()
      local _ <close> = await(cond)
      await(cond:wait())
    end)())
    await(sleep(0))
    await(cond:acquire())
    t:cancel("first")
    await(sleep(0))  -- t leaves the waiters and queues for the lock
    t:cancel("second")
    await(sleep(0))
    assert.is_false(t:done())
    cond:release()
    local err = await_error(t)
    assert.is_true(iserror(err, CancelledError))
    assert.equal("second", err.args[1])
    assert.is_false(cond:locked())
  end))

  it("P208 Condition(lock) shares the lock", vspec(function()
    local function check(lock, cond)
      assert.is_false(lock:locked())
      assert.is_false(cond:locked())
      do
        local _ <close> = await(cond)
        assert.is_true(lock:locked())
        assert.is_true(cond:locked())
      end
      assert.is_false(lock:locked())
      do
        local _ <close> = await(lock)
        assert.is_true(cond:locked())
      end
      assert.is_false(cond:locked())
    end
    local lock = asyncio.Lock()
    check(lock, asyncio.Condition(lock))
    local own = asyncio.Condition()
    await(own:acquire())
    assert.is_true(own:locked())
    own:release()
  end))

  it("P208 Condition with something other than a Lock is a bad argument",
    function()
      local ok, err = pcall(asyncio.Condition, {})
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'Condition' %(asyncio.Lock "
                     .. "expected, got table%)", err)
    end)

  it("P209 wait_for(cond:wait(), 0.5) inside the guard times out and the "
     .. "scope still exits cleanly", vspec(function()
    local loop = asyncio.get_running_loop()
    local cond = asyncio.Condition()
    local ok, err = pcall(function()
      local _ <close> = await(cond)
      local e = await_error(asyncio.wait_for(cond:wait(), 0.5))
      assert.is_true(cond:locked())
      error(e, 0)
    end)
    assert.is_false(ok)
    assert.is_true(iserror(err, TimeoutError))
    assert.equal(0.5, loop:time())
    assert.is_false(cond:locked())
    assert.equal(0, waiters(cond))
  end))

  it("P209 a wait inside a timeout scope re-acquires before the "
     .. "TimeoutError", vspec(function()
    local cond = asyncio.Condition()
    local held
    local ok, err = pcall(function()
      local _ <close> = await(cond)
      local _ <close> = setmetatable({}, {__close = function()
        held = cond:locked()
      end})
      local _ <close> = asyncio.timeout(0.5)
      await(cond:wait())
    end)
    assert.is_false(ok)
    assert.is_true(iserror(err, TimeoutError), tostring(err))
    assert.is_true(held)
    assert.is_false(cond:locked())
  end))

  it("P tostring shows the lock state and the waiters", vspec(function()
    local cond = asyncio.Condition()
    assert.equal("<asyncio.Condition [unlocked]>", tostring(cond))
    local t1 = create_task(waiter(cond, {}, 1, true))
    local t2 = create_task(waiter(cond, {}, 2, true))
    await(sleep(0))
    assert.equal("<asyncio.Condition [unlocked, waiters:2]>", tostring(cond))
    await(cond:acquire())
    assert.equal("<asyncio.Condition [locked, waiters:2]>", tostring(cond))
    cond:notify_all()
    cond:release()
    await(t1)
    await(t2)
    assert.equal("<asyncio.Condition [unlocked]>", tostring(cond))
  end))

  it("N194 a condition bound to one loop raises RuntimeError when it waits"
     .. " on another", function()
    local cond = asyncio.Condition()
    local loop1 = asyncio.new_event_loop{clock = "virtual"}
    local loop2 = asyncio.new_event_loop{clock = "virtual"}
    loop1:run_until_complete(async(function()
      local t = create_task(waiter(cond, {}, 1, true))
      await(sleep(0))
      do
        local _ <close> = await(cond)
        cond:notify()
      end
      await(t)
    end)())
    local ok, err = pcall(loop2.run_until_complete, loop2, async(function()
      local _ <close> = await(cond)
      await(cond:wait())
    end)())
    assert.is_false(ok)
    assert.is_true(iserror(err, RuntimeError), tostring(err))
    assert.matches("is bound to a different event loop", err.message)
    assert.is_false(cond:locked())
    loop1:close()
    loop2:close()
  end)
end)
