-- spec/timeout_spec.lua: asyncio.timeout, timeout_at and Timeout
-- (lua/asyncio/timeouts.lua), semantics section J.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local vspec = h.vspec

local iserror = asyncio.iserror
local CancelledError, TimeoutError, RuntimeError = asyncio.CancelledError,
  asyncio.TimeoutError, asyncio.RuntimeError
local sleep, timeout, timeout_at = asyncio.sleep, asyncio.timeout,
  asyncio.timeout_at

local raises = h.error_of

local function now() return asyncio.get_running_loop():time() end

describe("timeout", function()
  it("J128 timeout() around a long sleep raises TimeoutError at scope exit",
     vspec(function()
    local cm
    local e = raises(function()
      local scope <close> = timeout(0.01)
      cm = scope
      await(sleep(10))
    end)
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(cm:expired())
    assert.equal(0.01, now())
  end))

  it("J129 timeout_at() behaves the same; when() is the deadline",
     vspec(function()
    local deadline = now() + 0.01
    local cm
    local e = raises(function()
      local scope <close> = timeout_at(deadline)
      cm = scope
      await(sleep(10))
    end)
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(cm:expired())
    assert.equal(deadline, cm:when())
  end))

  it("J130 the interrupted await sees CancelledError; conversion happens at "
     .. "scope exit", vspec(function()
    local seen
    local e = raises(function()
      local _ <close> = timeout(0.01)
      local ok, err = pcall(await, sleep(10))
      seen = err
      if not ok then error(err, 0) end
    end)
    assert.is_true(iserror(seen, CancelledError))
    assert.is_true(iserror(e, TimeoutError))
  end))

  it("J131 a block finishing in time exits normally", vspec(function()
    local cm
    do
      local scope <close> = timeout(10)
      cm = scope
      await(sleep(0.01))
    end
    local t1 = now()
    assert.is_false(cm:expired())
    assert.is_true(cm:when() > t1)
    assert.equal(0, asyncio.get_running_loop():_counts().timers)
  end))

  it("J132 timeout(nil) and timeout_at(nil) never fire; when() is nil",
     vspec(function()
    for _, make in ipairs{timeout, timeout_at} do
      local cm
      do
        local scope <close> = make(nil)
        cm = scope
        await(sleep(0.01))
      end
      assert.is_false(cm:expired())
      assert.is_nil(cm:when())
    end
  end))

  it("J133 timeout(0) expires on the next iteration, even around sleep(0)",
     vspec(function()
    for _, d in ipairs{10, 0} do
      local t0 = now()
      local cm
      local e = raises(function()
        local scope <close> = timeout(0)
        cm = scope
        await(sleep(d))
      end)
      assert.is_true(iserror(e, TimeoutError))
      assert.is_true(cm:expired())
      assert.is_true(t0 <= cm:when() and cm:when() <= now())
    end
  end))

  it("J133 a deadline in the past expires on the next iteration",
     vspec(function()
    await(sleep(20))
    local t0 = now()
    local cm
    local e = raises(function()
      local scope <close> = timeout(-11)
      cm = scope
      await(sleep(0))
    end)
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(cm:expired())
    assert.is_true(cm:when() <= t0)
  end))

  it("J134 a block that never suspends exits normally even with timeout(0)",
     vspec(function()
    local cm
    do
      local scope <close> = timeout(0)
      cm = scope
    end
    assert.is_false(cm:expired())
    await(sleep(0))
    assert.equal(0, asyncio.current_task():cancelling())
  end))

  it("J135 other errors pass through unchanged; expired() is false",
     vspec(function()
    local err = asyncio.ValueError("key")
    local cm
    local e = raises(function()
      local scope <close> = timeout(0.01)
      cm = scope
      error(err, 0)
    end)
    assert.equal(err, e)
    assert.is_false(cm:expired())
    local s = raises(function()
      local _ <close> = timeout(0.01)
      error("plain string", 0)
    end)
    assert.equal("plain string", s)
  end))

  it("J136 an error raised by cleanup during the cancellation replaces the "
     .. "TimeoutError", vspec(function()
    local crash = async(function()
      pcall(await, sleep(1))
      error(asyncio.ValueError("cleanup"), 0)
    end)
    local e = raises(function()
      local _ <close> = timeout(0.01)
      await(crash())
    end)
    assert.is_true(iserror(e, asyncio.ValueError))
    assert.equal("cleanup", e.message)
  end))

  it("J137 a cancel() from elsewhere before the deadline stays a "
     .. "CancelledError", vspec(function()
    local cm
    local e = raises(function()
      local scope <close> = timeout(10)
      cm = scope
      asyncio.current_task():cancel()
      await(sleep(10))
    end)
    assert.is_true(iserror(e, CancelledError))
    assert.is_false(cm:expired())
    assert.equal(1, asyncio.current_task():cancelling())
    asyncio.current_task():uncancel()
  end))

  it("J138 after a handled timeout the task is not cancelled and "
     .. "cancelling() is back", vspec(function()
    local outer = async(function()
      local e = raises(function()
        local _ <close> = timeout(0.001)
        await(sleep(10))
      end)
      assert.is_true(iserror(e, TimeoutError))
      assert.equal(0, asyncio.current_task():cancelling())
      await(sleep(0.5))
      return "finished"
    end)
    local task = asyncio.create_task(outer())
    assert.equal("finished", await(task))
    assert.is_false(task:cancelled())
    assert.is_true(task:done())
  end))

  it("J139 nested timeouts with one deadline: only the outermost converts",
     vspec(function()
    local deadline = now() + 0.01
    local cancelled = false
    local cm1, cm2
    local e = raises(function()
      local outer <close> = timeout_at(deadline)
      cm1 = outer
      local ok, err = pcall(function()
        local inner <close> = timeout_at(deadline)
        cm2 = inner
        await(sleep(10))
      end)
      if not ok and iserror(err, CancelledError) then cancelled = true end
      if not ok then error(err, 0) end
    end)
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(cancelled)
    assert.is_true(cm1:expired())
    assert.is_true(cm2:expired())
    assert.equal(0, asyncio.current_task():cancelling())
  end))

  it("J140 an inner timeout handled does not disable the outer one",
     vspec(function()
    local t0 = now()
    local e = raises(function()
      local _ <close> = timeout(0.1)
      local inner_e = raises(function()
        local _ <close> = timeout(0.01)
        await(sleep(1))
      end)
      assert.is_true(iserror(inner_e, TimeoutError))
      await(sleep(10)) -- interrupted by the outer timeout
    end)
    assert.is_true(iserror(e, TimeoutError))
    assert.equal(t0 + 0.1, now())
  end))

  it("J140 an outer deadline inside an inner scope: the inner lets the "
     .. "cancellation through", vspec(function()
    local inner_e, inner_cm
    local e = raises(function()
      local _ <close> = timeout(0.002)
      inner_e = raises(function()
        local cm <close> = timeout(0.1)
        inner_cm = cm
        await(sleep(1))
      end)
      error(inner_e, 0)
    end)
    assert.is_true(iserror(inner_e, CancelledError))
    assert.is_false(inner_cm:expired())
    assert.is_true(iserror(e, TimeoutError))
    assert.equal(0.002, now())
  end))

  it("J141 reschedule() moves the deadline, reschedule(nil) disables it",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local fut = loop:create_future()
    local deadline1 = now() + 10
    local deadline2 = deadline1 + 20
    local task = asyncio.create_task(async(function()
      local cm <close> = timeout_at(deadline1)
      fut:set_result(cm)
      await(sleep(50))
    end)())
    local cm = await(fut)
    assert.equal(deadline1, cm:when())
    cm:reschedule(deadline2)
    assert.equal(deadline2, cm:when())
    cm:reschedule(nil)
    assert.is_nil(cm:when())
    task:cancel()
    local ok, e = pcall(await, task)
    assert.is_false(ok)
    assert.is_true(iserror(e, CancelledError))
    assert.is_false(cm:expired())
  end))

  it("J141 a later deadline through reschedule() fires then", vspec(
    function()
      local e = raises(function()
        local cm <close> = timeout(1)
        cm:reschedule(now() + 3)
        await(sleep(10))
      end)
      assert.is_true(iserror(e, TimeoutError))
      assert.equal(3, now())
    end))

  it("J141 reschedule() before entry or after exit raises RuntimeError",
     vspec(function()
    local cm = asyncio.Timeout(now() + 1)
    local e = raises(cm.reschedule, cm, now() + 2)
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("has not been entered", e.message)
    do
      local _ <close> = await(cm)
    end
    e = raises(cm.reschedule, cm, now() + 2)
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("finished", e.message)
  end))

  it("J141 entering twice raises RuntimeError", vspec(function()
    local e = raises(function()
      local cm <close> = timeout(0.01)
      local _ <close> = await(cm)
    end)
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("has already been entered", e.message)
    local cm = timeout(0.01)
    do local _ <close> = cm end
    e = raises(await, cm)
    assert.matches("has already been entered", e.message)
  end))

  it("J141 entering outside a task raises RuntimeError", vspec(function()
    local loop = asyncio.get_running_loop()
    local cm = asyncio.Timeout(now() + 1)
    local ok, e
    loop:call_soon(function()
      ok, e = pcall(getmetatable(cm).__await, cm)
    end)
    await(sleep(0))
    assert.is_false(ok)
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("task", e.message)
    e = raises(cm.reschedule, cm, 2)
    assert.matches("has not been entered", e.message)
  end))

  it("J141 made outside a task, timeout_at() is entered later with await",
     function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    asyncio.set_event_loop(loop)
    local cm = timeout_at(0.5)
    assert.equal("<Timeout [created]>", tostring(cm))
    local main = async(function()
      local scope <close> = await(cm)
      assert.equal(cm, scope)
      await(sleep(10))
    end)
    local ok, e = pcall(loop.run_until_complete, loop, main())
    assert.is_false(ok)
    assert.is_true(iserror(e, TimeoutError))
    assert.equal(0.5, loop:time())
    require("asyncio.core")._unset_event_loop()
    loop:close()
  end)

  it("J142 the TimeoutError has the CancelledError as its cause",
     vspec(function()
    local e = raises(function()
      local _ <close> = timeout(0)
      await(sleep(1))
    end)
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(iserror(e.cause, CancelledError))
  end))

  it("the TimeoutError's traceback shows where the task waited when the "
     .. "deadline passed, and format_exception its cause first",
     vspec(function()
    local line = debug.getinfo(1, "l").currentline
    local waits = async(function()
      await(sleep(1)) -- line + 2: where the deadline finds the task
    end)
    local e = raises(function()
      local _ <close> = timeout(0.5)
      await(waits())
    end)
    assert.is_true(iserror(e, TimeoutError))
    local at = ("timeout_spec.lua:%d:"):format(line + 2)
    assert.truthy(e.traceback:find(at, 1, true), e.traceback)
    local text = require("asyncio.errors").format_exception(e)
    assert.truthy(text:find("^CancelledError\n\nThe above exception was "
      .. "the direct cause of the following exception:\n\nTimeoutError\n"
      .. "stack traceback:\n"), text)
    assert.truthy(text:find(at, 1, true), text)
  end))

  it("J143 timeout() works in cleanup after a caught cancellation",
     vspec(function()
    asyncio.current_task():cancel()
    local ok = pcall(await, sleep(1))
    assert.is_false(ok)
    local e = raises(function()
      local _ <close> = timeout(0)
      await(sleep(1))
    end)
    assert.is_true(iserror(e, TimeoutError))
    asyncio.current_task():uncancel()
  end))

  it("J143 a cancel() inside that block still surfaces as CancelledError",
     vspec(function()
    asyncio.current_task():cancel()
    local ok = pcall(await, sleep(1))
    assert.is_false(ok)
    local e = raises(function()
      local _ <close> = timeout(1)
      asyncio.current_task():cancel()
      await(sleep(2))
    end)
    assert.is_true(iserror(e, CancelledError))
    asyncio.current_task():uncancel()
    asyncio.current_task():uncancel()
  end))

  it("J nested timeout in the cleanup of an expiring one", vspec(function()
    local inner_e
    local e = raises(function()
      local _ <close> = timeout(0.01)
      local ok, err = pcall(await, sleep(1))
      inner_e = raises(function()
        local _ <close> = timeout(0.01)
        await(sleep(10))
      end)
      if not ok then error(err, 0) end
    end)
    assert.is_true(iserror(inner_e, TimeoutError))
    assert.is_true(iserror(e, TimeoutError))
  end))

  it("J tostring shows the state, and the deadline while active",
     vspec(function()
    local cm = timeout(10)
    assert.equal("<Timeout [active] when=10.0>", tostring(cm))
    local none = timeout(nil)
    assert.equal("<Timeout [active] when=nil>", tostring(none))
    do local _ <close> = cm end
    do local _ <close> = none end
    assert.equal("<Timeout [finished]>", tostring(cm))
    local expired
    raises(function()
      local scope <close> = timeout(0.01)
      expired = scope
      await(sleep(10))
    end)
    assert.equal("<Timeout [expired]>", tostring(expired))
  end))

  it("J timeout() needs a running loop", function()
    local e = raises(timeout, 1)
    assert.is_true(iserror(e, RuntimeError))
  end)
end)
