-- spec/wait_for_spec.lua: asyncio.wait_for (lua/asyncio/combinators.lua),
-- semantics section I.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, vspec = h.await_error, h.vspec

local iserror = asyncio.iserror
local CancelledError, TimeoutError = asyncio.CancelledError,
  asyncio.TimeoutError
local sleep, wait_for, create_task = asyncio.sleep, asyncio.wait_for,
  asyncio.create_task

-- A task body that sleeps 10 s; `state.running` tells whether it is
-- inside the sleep (its "finally" clears it).
local sleeper = async(function(state)
  state.running = true
  local ok, e = pcall(await, sleep(10))
  state.running = false
  if not ok then error(e, 0) end
  return "done"
end)

describe("wait_for", function()
  it("I116 returns the result of what completes in time", vspec(function()
    local loop = asyncio.get_running_loop()
    local fut = loop:create_future()
    local waiting = wait_for(fut, 0.2)
    loop:call_later(0.1, function() fut:set_result("ok") end)
    assert.equal("ok", await(waiting))
    assert.equal(0.1, loop:time())
    assert.equal(0, loop:_counts().timers)
  end))

  it("I116 wait_for returns a Coroutine object: nothing runs until it is "
     .. "awaited", vspec(function()
    local started = false
    local c = wait_for(async(function() started = true end)(), 1)
    assert.is_true(asyncio.iscoroutine(c))
    await(sleep(0))
    assert.is_false(started)
    await(c)
    assert.is_true(started)
  end))

  it("I117 on timeout the inner task is cancelled and finished before "
     .. "TimeoutError", vspec(function()
    local loop = asyncio.get_running_loop()
    local state = {}
    local fut = create_task(sleeper(state))
    local e = await_error(wait_for(fut, 0.1))
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(fut:done())
    assert.is_true(fut:cancelled())
    assert.is_false(state.running)
    assert.equal(0.1, loop:time())
  end))

  it("I118 waits for an inner task that needs extra iterations to cancel; "
     .. "the TimeoutError's cause is a CancelledError", vspec(function()
    local task_done = false
    local inner = async(function()
      local ok, e = pcall(await, sleep(10))
      if not ok and iserror(e, CancelledError) then
        await(sleep(0.0001))
      end
      task_done = true
      if not ok then error(e, 0) end
    end)
    local inner_task = create_task(inner())
    local e = await_error(wait_for(inner_task, 0.0001))
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(task_done)
    assert.is_true(iserror(e.cause, CancelledError))
  end))

  it("I118 the same with timeout 0", vspec(function()
    local task_done = false
    local inner = async(function()
      local ok, e = pcall(await, sleep(10))
      if not ok then await(sleep(0.0001)) end
      task_done = true
      if not ok then error(e, 0) end
    end)
    local inner_task = create_task(inner())
    await(sleep(0.0001))
    local e = await_error(wait_for(inner_task, 0))
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(task_done)
    assert.is_true(iserror(e.cause, CancelledError))
  end))

  it("I119 timeout nil is a plain await", vspec(function()
    local loop = asyncio.get_running_loop()
    assert.equal("done", await(wait_for(sleep(100, "done"), nil)))
    assert.equal(100, loop:time())
    local a, b = await(wait_for(async(function() return 1, 2 end)()))
    assert.same({1, 2}, {a, b})
  end))

  local function cancel_wait_for(timeout)
    return vspec(function()
      local loop = asyncio.get_running_loop()
      local blocking = async(function() await(loop:create_future()) end)
      local task = create_task(blocking())
      local waiting = create_task(wait_for(task, timeout))
      loop:call_soon(function() waiting:cancel() end)
      assert.is_true(iserror(await_error(waiting), CancelledError))
      assert.is_true(task:cancelled())
    end)
  end
  it("I120 cancelling the waiting task cancels the inner task (finite "
     .. "timeout)", cancel_wait_for(60))
  it("I120 cancelling the waiting task cancels the inner task (nil "
     .. "timeout)", cancel_wait_for(nil))

  it("I121 wait_for, timeout() and as_completed raise the one TimeoutError "
     .. "class, an OSError", vspec(function()
    local e1 = await_error(wait_for(sleep(1), 0.1))
    local ok, e2 = pcall(function()
      local _ <close> = asyncio.timeout(0.1)
      await(sleep(1))
    end)
    assert.is_false(ok)
    local e3
    for aw in asyncio.as_completed({sleep(1)}, {timeout = 0.1})
              :awaitables() do
      e3 = await_error(aw)
    end
    for _, e in ipairs{e1, e2, e3} do
      assert.equal(TimeoutError, getmetatable(e))
      assert.is_true(iserror(e, asyncio.OSError))
    end
    await(sleep(1)) -- the as_completed input finishes
  end))

  it("I122 timeout <= 0 returns the result of a done future at once",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local fut = loop:create_future()
    fut:set_result("done")
    assert.equal("done", await(wait_for(fut, 0)))
    assert.equal("done", await(wait_for(fut, -1)))
    assert.equal(0, loop:time())
  end))

  it("I122 timeout <= 0 never starts a coroutine", vspec(function()
    local started = false
    local foo = async(function() started = true end)
    local e = await_error(wait_for(foo(), 0))
    assert.is_true(iserror(e, TimeoutError))
    assert.is_false(started)
    assert.equal(0, asyncio.get_running_loop():time())
  end))

  it("I122 timeout <= 0 cancels a running task, waits, then raises",
     vspec(function()
    local loop = asyncio.get_running_loop()
    for _, timeout in ipairs{0, -1} do
      local state = {}
      local fut = create_task(sleeper(state))
      await(sleep(0))
      assert.is_true(state.running)
      local e = await_error(wait_for(fut, timeout))
      assert.is_true(iserror(e, TimeoutError))
      assert.is_true(fut:cancelled())
      assert.is_false(state.running)
    end
    assert.equal(0, loop:time())
  end))

  it("I123 an error raised while the inner handles its cancellation wins",
     vspec(function()
    local foo_error = asyncio.ValueError("foo")
    local inner = async(function()
      pcall(await, sleep(0.2))
      error(foo_error, 0)
    end)
    local e = await_error(wait_for(create_task(inner()), 0.0001))
    assert.equal(foo_error, e)
  end))

  it("I124 an inner that swallows the cancellation and returns a value: "
     .. "wait_for returns it", vspec(function()
    local inner = async(function()
      local ok, e = pcall(await, sleep(1))
      assert.is_false(ok)
      assert.is_true(iserror(e, CancelledError))
      return 1
    end)
    assert.equal(1, await(wait_for(inner(), 0.01)))
    local return_42 = async(function()
      local ok = pcall(await, sleep(10))
      if not ok then return 42 end
    end)
    assert.equal(42, await(wait_for(return_42(), 0.1)))
    assert.equal(0, asyncio.current_task():cancelling())
  end))

  it("I125 an outer cancel is never lost, even when the inner finished in "
     .. "the same iteration", vspec(function()
    local reached_end = false
    local inner = async(function() end)
    local wait_for_coro = async(function()
      await(wait_for(inner(), 100))
      await(sleep(1))
      reached_end = true
    end)
    local task = create_task(wait_for_coro())
    await(sleep(0))
    assert.is_false(task:done())
    task:cancel()
    assert.is_true(iserror(await_error(task), CancelledError))
    assert.is_false(reached_end)
  end))

  it("I125 an outer cancel arriving as the inner task completes still "
     .. "cancels the waiter; the inner result stays", vspec(function()
    local reached_end = false
    local inner_task = create_task(async(function() return "done" end)())
    local task = create_task(async(function()
      await(wait_for(inner_task, 100))
      await(sleep(1))
      reached_end = true
    end)())
    await(sleep(0))
    task:cancel()
    assert.is_true(iserror(await_error(task), CancelledError))
    assert.is_false(reached_end)
    assert.equal("done", await(inner_task))
  end))

  it("I126 wait_for stays cancellable while the inner ignores "
     .. "cancellation", vspec(function()
    local inner = async(function()
      local ok = pcall(await, sleep(0.3))
      if not ok then
        ok = pcall(await, sleep(0.3))
        if not ok then await(sleep(0.3)) end
      end
      return 42
    end)
    local inner_task = create_task(inner())
    local task = create_task(wait_for(inner_task, 0.1))
    task:cancel()
    assert.is_true(iserror(await_error(task), CancelledError))
    assert.equal(42, await(inner_task))
  end))

  it("I127 wait_for(shield(task)): TimeoutError, the task goes on",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local task = create_task(sleep(0.5, "done"))
    local e = await_error(wait_for(asyncio.shield(task), 0.1))
    assert.is_true(iserror(e, TimeoutError))
    assert.is_false(task:done())
    assert.equal("done", await(task))
    assert.equal(0.5, loop:time())
  end))

  it("I127 with timeout 0 the shield ends cancelled, the task goes on",
     vspec(function()
    local task = create_task(sleep(0.5, "done"))
    local shielded = asyncio.shield(task)
    local e = await_error(wait_for(shielded, 0))
    assert.is_true(iserror(e, TimeoutError))
    assert.is_true(shielded:cancelled())
    assert.is_false(task:done())
    assert.equal("done", await(task))
  end))

  it("I127 with timeout nil it simply completes", vspec(function()
    local task = create_task(sleep(0.5, "done"))
    assert.equal("done", await(wait_for(asyncio.shield(task), nil)))
  end))

  it("I accepts Futures, Tasks and __await values", vspec(function()
    local obj = setmetatable({}, {__await = function()
      return sleep(0.1, "object")
    end})
    assert.equal("object", await(wait_for(obj, 1)))
    local e = await_error(wait_for(obj, 0.05))
    assert.is_true(iserror(e, TimeoutError))
  end))
end)
