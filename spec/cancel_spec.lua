-- spec/cancel_spec.lua: Task cancellation (bindings/core/future.c), semantics
-- section D.
local asyncio = require "asyncio"
local h = dofile("spec/helpers.lua")
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local iserror, CancelledError = asyncio.iserror, asyncio.CancelledError

-- Runs exactly one iteration of a loop that is not running (A15).
local run_once = h.run_once

local sleep_10 = async(function() await(asyncio.sleep(10)) end)

-- A task of `loop` that has started and now sleeps for 10 s.
local function started_sleeper(loop)
  local t = loop:create_task(sleep_10())
  run_once(loop)
  return t
end

local raises = h.error_of

-- The argument list of an error object, as a plain sequence.
local function args_of(e)
  return {table.unpack(e.args, 1, e.args.n or #e.args)}
end

describe("cancellation", function()
  local loop, reports
  h.each_reporting_loop(function(l, r) loop, reports = l, r end)
  after_each(function()
    assert.same({}, reports)
  end)

  it("D56 cancel() returns true but only requests: not cancelled yet, "
     .. "cancelling() is 1", function()
    local t = started_sleeper(loop)
    assert.is_true(t:cancel())
    assert.is_false(t:cancelled())
    assert.is_false(t:done())
    assert.equal(1, t:cancelling())
    run_once(loop)
    assert.is_true(t:cancelled())
  end)

  it("D57 the task gets CancelledError at its await and ends cancelled; "
     .. "cancel() is then false", function()
    local after = 0
    local caught
    local t = loop:create_task(async(function()
      local ok, e = pcall(await, asyncio.sleep(10))
      caught = e
      after = after + 1
      if not ok then error(e, 0) end
    end)())
    run_once(loop)
    t:cancel()
    local e = raises(loop.run_until_complete, loop, t)
    assert.is_true(iserror(e, CancelledError))
    assert.is_true(iserror(caught, CancelledError))
    assert.equal(1, after)
    assert.is_true(t:cancelled())
    assert.is_true(t:done())
    assert.is_false(t:cancel())
    assert.equal(0, loop:time())
  end)

  it("D58 cancel() cancels the awaited future at once; the finished task "
     .. "drops it", function()
    local weak = setmetatable({}, {__mode = "v"})
    local t
    do
      -- handed over in a box, so that neither the body's upvalues nor
      -- the Coroutine object's arguments keep the future alive
      local fut = loop:create_future()
      local box = {fut}
      weak[1] = fut
      t = loop:create_task(async(function()
        local f = table.remove(box)
        await(f)
      end)())
      run_once(loop)
      assert.is_true(t:cancel())
      assert.is_true(fut:cancelled())
      assert.is_false(t:done())
    end
    run_once(loop)
    assert.is_true(t:cancelled())
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
  end)

  it("D59 a task cancelled before its first step never runs its body",
     function()
    local ran = 0
    local t = loop:create_task(async(function() ran = ran + 1 end)())
    assert.is_true(t:cancel("early"))
    local e = raises(loop.run_until_complete, loop, t)
    assert.is_true(iserror(e, CancelledError))
    assert.same({"early"}, args_of(e))
    assert.equal(0, ran)
    assert.is_true(t:cancelled())
  end)

  it("D59 awaiting a task cancelled before it started raises "
     .. "CancelledError", aspec.async({clock = "virtual"}, function()
    local ran = 0
    local t = asyncio.create_task(async(function() ran = ran + 1 end)())
    t:cancel()
    local ok, e = pcall(await, t)
    assert.is_false(ok)
    assert.is_true(iserror(e, CancelledError))
    assert.equal(0, ran)
  end))

  it("D60 a task sleeping 5000 s and cancelled at 0.1 stops at 0.1; its "
     .. "timer is gone", function()
    local sleeper = loop:create_task(async(function()
      await(asyncio.sleep(5000))
    end)())
    local cancels = 0
    loop:call_later(0.1, function()
      cancels = cancels + 1
      sleeper:cancel()
    end)
    local doer = async(function()
      local ok, e = pcall(await, sleeper)
      if not ok and iserror(e, CancelledError) then return "cancelled" end
      return "slept in"
    end)
    assert.equal("cancelled", loop:run_until_complete(doer()))
    assert.equal(0.1, loop:time())
    assert.equal(1, cancels)
    assert.is_true(sleeper:cancelled())
    assert.equal(0, loop:_counts().timers)
  end)

  it("D61 a coroutine that catches CancelledError and returns 42 ends "
     .. "normally", function()
    local fut = loop:create_future()
    local t = loop:create_task(async(function()
      local ok, e = pcall(await, fut)
      assert(not ok and iserror(e, CancelledError))
      return 42
    end)())
    run_once(loop)
    t:cancel()
    assert.equal(42, loop:run_until_complete(t))
    assert.is_false(t:cancelled())
    assert.is_true(fut:cancelled())
  end)

  it("D62 one cancel() delivers exactly one CancelledError; the task goes "
     .. "on with the next future", function()
    local fut1, fut2 = loop:create_future(), loop:create_future()
    local seen = 0
    local t = loop:create_task(async(function()
      local ok, e = pcall(await, fut1)
      if not ok and iserror(e, CancelledError) then seen = seen + 1 end
      local ok2, v = pcall(await, fut2)
      if not ok2 then seen = seen + 100 end
      return v
    end)())
    run_once(loop)
    t:cancel()
    run_once(loop)
    assert.is_true(fut1:cancelled())
    assert.is_false(t:done())
    fut2:set_result(42)
    assert.equal(42, loop:run_until_complete(t))
    assert.equal(1, seen)
    assert.is_false(t:cancelled())
  end)

  it("D63 cancelling the future a task awaits cancels the task", function()
    local fut = loop:create_future()
    local after = 0
    local t = loop:create_task(async(function()
      await(fut)
      after = after + 1
    end)())
    run_once(loop)
    assert.is_true(fut:cancel())
    assert.is_false(t:done())
    local e = raises(loop.run_until_complete, loop, t)
    assert.is_true(iserror(e, CancelledError))
    assert.is_true(t:cancelled())
    assert.equal(0, after)
  end)

  it("D63 cancelling both the task and its future in one step ends it "
     .. "cancelled", function()
    local fut = loop:create_future()
    local t = loop:create_task(async(function() await(fut) end)())
    run_once(loop)
    assert.is_true(fut:cancel())
    assert.is_true(t:cancel())
    raises(loop.run_until_complete, loop, t)
    assert.is_true(t:cancelled())
  end)

  it("D64 a task that cancels itself gets CancelledError at its next await",
     function()
    local after = 0
    local t = loop:create_task(async(function()
      asyncio.current_task():cancel()
      await(asyncio.sleep(100))
      after = after + 1
    end)())
    raises(loop.run_until_complete, loop, t)
    assert.is_true(t:cancelled())
    assert.equal(0, after)
    assert.equal(0, loop:time())
    assert.equal(0, loop:_counts().timers)
  end)

  it("D65 a task that cancels itself and returns ends cancelled, its value "
     .. "discarded", function()
    local t = loop:create_task(async(function()
      asyncio.current_task():cancel()
      return 12
    end)())
    local e = raises(loop.run_until_complete, loop, t)
    assert.is_true(iserror(e, CancelledError))
    assert.is_true(t:cancelled())
  end)

  it("D66 a pending self-cancel is handed to the next awaited task and "
     .. "what it awaits", function()
    local fut = loop:create_future()
    local inner = loop:create_task(async(function() await(fut) end)())
    local outer = loop:create_task(async(function()
      await(asyncio.sleep(0))
      asyncio.current_task():cancel()
      await(inner)
    end)())
    raises(loop.run_until_complete, loop, outer)
    assert.is_true(outer:cancelled())
    assert.is_true(inner:cancelled())
    assert.is_true(fut:cancelled())
  end)

  it("D67 cancellation flows through plain coroutine calls (proof 101)",
     function()
    local proof = 0
    local waiter = loop:create_future()
    local inner = async(function()
      local ok, e = pcall(await, waiter)
      if ok then error("got past the await in inner") end
      if iserror(e, CancelledError) then proof = proof + 1 end
      error(e, 0)
    end)
    local outer = async(function()
      local ok, e = pcall(await, inner())
      if not ok and iserror(e, CancelledError) then
        proof = proof + 100
      else
        proof = proof + 10
      end
    end)
    local f = loop:create_task(outer())
    run_once(loop)
    f:cancel()
    loop:run_until_complete(f)
    assert.equal(101, proof)
    assert.is_true(waiter:cancelled())
    assert.is_false(f:cancelled())
  end)

  it("D68 cancelling a task that awaits another task cancels that task",
     function()
    local inner = loop:create_task(async(function()
      await(asyncio.sleep(10))
      return "finished"
    end)())
    local outer = loop:create_task(async(function() return await(inner) end)())
    loop:call_later(1, function() outer:cancel() end)
    raises(loop.run_until_complete, loop, outer)
    assert.is_true(outer:cancelled())
    assert.is_true(inner:cancelled())
    assert.equal(1, loop:time())
  end)

  it("D69 cancel(msg): awaiting, result() and exception() raise "
     .. "CancelledError with args {msg}", function()
    local inside
    local t = loop:create_task(async(function()
      local ok, e = pcall(await, asyncio.sleep(10))
      inside = e
      error(e, 0)
    end)())
    run_once(loop)
    t:cancel("my message")
    local outer = async(function()
      local ok, e = pcall(await, t)
      return e
    end)
    local awaited = loop:run_until_complete(outer())
    assert.same({"my message"}, args_of(inside))
    assert.same({"my message"}, args_of(awaited))
    assert.same({"my message"}, args_of(raises(t.result, t)))
    assert.same({"my message"}, args_of(raises(t.exception, t)))
  end)

  it("D69 cancel() and cancel(nil) give an empty argument list; a "
     .. "non-string message round-trips", function()
    local function cancelled_with(...)
      local t = started_sleeper(loop)
      t:cancel(...)
      run_once(loop)
      assert.is_true(t:cancelled())
      return raises(t.result, t)
    end
    assert.same({}, args_of(cancelled_with()))
    assert.same({}, args_of(cancelled_with(nil)))
    local five = args_of(cancelled_with(5))
    assert.equal(1, #five)
    assert.equal(5, five[1])
    assert.equal("number", type(five[1]))
  end)

  it("D69 the message also reaches a task cancelled while awaiting a "
     .. "future", function()
    local fut = loop:create_future()
    local t = loop:create_task(async(function() await(fut) end)())
    run_once(loop)
    t:cancel("via future")
    local e = raises(loop.run_until_complete, loop, t)
    assert.same({"via future"}, args_of(e))
    assert.same({"via future"}, args_of(raises(t.exception, t)))
  end)

  it("D70 cancel() is true every time on a pending task and counts the "
     .. "requests", function()
    local t = started_sleeper(loop)
    assert.is_true(t:cancel())
    assert.is_true(t:cancel())
    assert.equal(2, t:cancelling())
    local caught = 0
    local t2 = loop:create_task(async(function()
      for _ = 1, 3 do
        local ok = pcall(await, asyncio.sleep(10))
        if not ok then caught = caught + 1 end
      end
    end)())
    run_once(loop)
    assert.is_true(t2:cancel())
    assert.is_true(t2:cancel())
    assert.is_true(t2:cancel())
    assert.equal(3, t2:cancelling())
    loop:run_until_complete(t2)
    assert.equal(1, caught)
    assert.is_true(t:cancelled())
    assert.equal(20, loop:time())
  end)

  it("D71 uncancel() decrements cancelling() and returns the new count",
     function()
    local t = started_sleeper(loop)
    t:cancel()
    t:cancel()
    assert.equal(1, t:uncancel())
    assert.equal(1, t:cancelling())
    assert.equal(0, t:uncancel())
    assert.equal(0, t:cancelling())
    t:cancel()
    run_once(loop)
    assert.is_true(t:cancelled())
  end)

  it("D71 reaching 0 withdraws a cancellation not yet delivered: the task "
     .. "returns 42", function()
    local fut = loop:create_future()
    local t = loop:create_task(async(function()
      await(fut)
      return 42
    end)())
    run_once(loop)
    fut:set_result()
    assert.is_true(t:cancel())
    assert.equal(1, t:cancelling())
    assert.equal(0, t:uncancel())
    assert.equal(42, loop:run_until_complete(t))
    assert.is_false(t:cancelled())
  end)

  it("D71 a self-cancel withdrawn by uncancel() never reaches an await",
     function()
    local t = loop:create_task(async(function()
      local me = asyncio.current_task()
      me:cancel()
      me:uncancel()
      await(asyncio.sleep(1))
      return 42
    end)())
    assert.equal(42, loop:run_until_complete(t))
    assert.equal(1, loop:time())
  end)

  it("D71 uncancel() on a finished task leaves it cancelled", function()
    local t = started_sleeper(loop)
    t:cancel()
    run_once(loop)
    assert.is_true(t:cancelled())
    t:uncancel()
    assert.is_true(t:cancelled())
    assert.is_true(t:done())
    assert.is_true(iserror(raises(t.result, t), CancelledError))
  end)

  it("D72 a structured timeout from cancel() + uncancel() interrupts the "
     .. "block only", function()
    local request = async(function(sleep, timeout)
      local task = asyncio.current_task()
      local timed_out, block_finished, outer_reached = false, false, false
      local handle = loop:call_later(timeout, function()
        timed_out = true
        task:cancel()
      end)
      local ok, e = pcall(function()
        await(asyncio.sleep(sleep))
        block_finished = true
      end)
      handle:cancel()
      if not ok then
        if not (timed_out and task:uncancel() == 0 and
                iserror(e, CancelledError)) then
          error(e, 0)
        end
      end
      outer_reached = true
      await(asyncio.sleep(0))
      return timed_out, block_finished, outer_reached
    end)
    local t1 = loop:create_task(request(10, 0.1))
    local timed_out, finished, reached = loop:run_until_complete(t1)
    assert.is_true(timed_out)
    assert.is_false(finished)
    assert.is_true(reached)
    assert.equal(0, t1:cancelling())
    assert.equal(0.1, loop:time())
    local t2 = loop:create_task(request(0, 10))
    timed_out, finished, reached = loop:run_until_complete(t2)
    assert.is_false(timed_out)
    assert.is_true(finished)
    assert.is_true(reached)
    assert.equal(0, t2:cancelling())
    assert.equal(0.1, loop:time())
    assert.equal(0, loop:_counts().timers)
  end)

  it("D73 asyncio.pcall catches ordinary errors: error objects and "
     .. "strings", function()
    local ok, e = asyncio.pcall(error, asyncio.ValueError("plain"))
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.ValueError))
    ok, e = asyncio.pcall(error, "string error", 0)
    assert.is_false(ok)
    assert.equal("string error", e)
    assert.same({true, 1, 2}, {asyncio.pcall(function() return 1, 2 end)})
  end)

  it("D73 asyncio.pcall around await lets CancelledError through",
     function()
    local fut = loop:create_future()
    local after = 0
    local t = loop:create_task(async(function()
      asyncio.pcall(await, fut)
      after = after + 1
    end)())
    run_once(loop)
    t:cancel()
    local e = raises(loop.run_until_complete, loop, t)
    assert.is_true(iserror(e, CancelledError))
    assert.equal(0, after)
    assert.is_true(t:cancelled())
  end)

  it("D73 CancelledError is a BaseException, not an Exception; pcall plus "
     .. "iserror catches it", function()
    local e = CancelledError()
    assert.is_true(iserror(e, asyncio.BaseException))
    assert.is_false(iserror(e, asyncio.Exception))
    assert.is_true(iserror(asyncio.ValueError(), asyncio.Exception))
    local fut = loop:create_future()
    local t = loop:create_task(async(function()
      local ok, err = pcall(await, fut)
      return not ok and iserror(err, CancelledError)
    end)())
    run_once(loop)
    t:cancel()
    assert.is_true(loop:run_until_complete(t))
    assert.is_false(t:cancelled())
  end)

  it("D74 cancel() on a task that already failed is false and silences "
     .. "its report", function()
    do
      local t = loop:create_task(async(function()
        error(asyncio.ValueError("failed"))
      end)())
      run_once(loop)
      assert.is_true(t:done())
      assert.is_false(t:cancel())
      assert.is_false(t:cancelled())
    end
    collectgarbage()
    collectgarbage()
    assert.same({}, reports)
  end)

  it("D a task raising CancelledError, or an instance of a subclass of "
     .. "it, ends cancelled with that very error", aspec.async(function()
    local Stop = CancelledError:subclass("Stop")
    for _, cls in ipairs({CancelledError, Stop}) do
      local e = cls("why")
      local t = asyncio.create_task(async(function() error(e, 0) end)())
      local ok, got = pcall(await, t)
      assert.is_false(ok)
      assert.is_true(t:cancelled())
      assert.equal(e, got)
      assert.is_true(iserror(got, cls))
      assert.equal("why", got.message)
    end
  end))
end)
