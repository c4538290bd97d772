-- spec/gather_spec.lua: asyncio.gather (lua/asyncio/combinators.lua),
-- semantics section F.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, vspec = h.await_error, h.vspec

local iserror, CancelledError = asyncio.iserror, asyncio.CancelledError
local sleep, gather = asyncio.sleep, asyncio.gather

-- Yields n iterations of the running loop.
local function iterations(n)
  for _ = 1, n do await(sleep(0)) end
end

local value_after = async(function(delay, v, log)
  await(sleep(delay))
  if log then log[#log + 1] = v end
  return v
end)

local fail_after = async(function(delay, err)
  await(sleep(delay))
  error(err, 0)
end)

-- An awaitable object that is neither a Future nor a Coroutine.
local function awaitable(v)
  return setmetatable({}, {__await = function() return sleep(0.01, v) end})
end

describe("gather", function()
  it("F82 results come in argument order, not completion order", vspec(
    function()
      local a, b, c = asyncio.Future(), asyncio.Future(), asyncio.Future()
      local g = gather(a, b, c)
      b:set_result(1)
      a:set_result(2)
      c:set_result(3)
      assert.same({2, 1, 3}, await(g))
    end))

  it("F83 the gather completes only after its last child", vspec(function()
    local a, b = asyncio.Future(), asyncio.Future()
    local g = gather(a, b)
    local fired = 0
    g:add_done_callback(function() fired = fired + 1 end)
    a:set_result(1)
    iterations(3)
    assert.is_false(g:done())
    assert.equal(0, fired)
    b:set_result(2)
    iterations(2)
    assert.is_true(g:done())
    assert.equal(1, fired)
    assert.same({1, 2}, g:result())
  end))

  it("F83 children completing in one step complete the gather one "
     .. "iteration later, failures and successes mixed", vspec(function()
    local a, b, c, d = asyncio.Future(), asyncio.Future(), asyncio.Future(),
                       asyncio.Future()
    local g = gather(a, b, c, d, {return_exceptions = true})
    local err = asyncio.ValueError("x")
    b:set_result(2) -- successes before the last are only counted
    a:set_exception(err)
    c:set_result(3) -- after a failure's callback is queued
    assert.is_false(g:done())
    d:set_result(4)
    assert.is_false(g:done())
    iterations(1)
    assert.is_true(g:done())
    local r = g:result()
    assert.equal(err, r[1])
    assert.same({2, 3, 4}, {r[2], r[3], r[4]})
  end))

  it("F84 the first error completes the gather with that very error; the "
     .. "other children go on", vspec(function()
    local loop = asyncio.get_running_loop()
    local err = asyncio.ValueError("first")
    local log = {}
    local slow = asyncio.create_task(value_after(1, "slow", log))
    local g = gather(fail_after(0.1, err), slow)
    assert.equal(err, await_error(g))
    assert.equal(0.1, loop:time())
    assert.is_false(slow:done())
    assert.equal("slow", await(slow))
    assert.same({"slow"}, log)
    assert.is_false(slow:cancelled())
  end))

  it("F85 children failing after the gather failed are marked retrieved",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local reports = {}
    loop:set_exception_handler(function(_, ctx)
      reports[#reports + 1] = ctx.message
    end)
    local function run()
      local g = gather(fail_after(0.1, asyncio.ValueError("a")),
                       fail_after(0.2, asyncio.ValueError("b")))
      await_error(g)
      await(sleep(0.5)) -- the second child fails meanwhile
    end
    run()
    collectgarbage()
    collectgarbage()
    iterations(1)
    assert.same({}, reports)
  end))

  it("F86 return_exceptions puts errors in their slots and waits for all",
     vspec(function()
    local e1, e2 = asyncio.ValueError("x"), asyncio.RuntimeError("y")
    local a, b, c, d = asyncio.Future(), asyncio.Future(), asyncio.Future(),
      asyncio.Future()
    local g = gather(a, b, c, d, {return_exceptions = true})
    a:set_result(3)
    c:set_exception(e1)
    iterations(2)
    assert.is_false(g:done())
    b:set_result(1)
    d:set_exception(e2)
    local r = await(g)
    assert.same({3, 1}, {r[1], r[2]})
    assert.equal(e1, r[3])
    assert.equal(e2, r[4])
  end))

  it("F87 a cancelled child fails the gather with a CancelledError; the "
     .. "gather is not cancelled, siblings go on", vspec(function()
    local a, b = asyncio.Future(), asyncio.Future()
    local g = gather(a, b)
    a:cancel("stop a")
    iterations(2)
    assert.is_true(g:done())
    assert.is_false(g:cancelled())
    local e = g:exception()
    assert.is_true(iserror(e, CancelledError))
    assert.equal("stop a", e.args[1])
    assert.is_false(b:done())
    b:set_result(1)
  end))

  it("F88 with return_exceptions, cancelled children give CancelledError "
     .. "values", vspec(function()
    local a, b, c = asyncio.Future(), asyncio.Future(), asyncio.Future()
    local g = gather(a, b, c, {return_exceptions = true})
    a:set_result(1)
    b:cancel()
    c:set_result(3)
    local r = await(g)
    assert.is_false(g:cancelled())
    assert.equal(1, r[1])
    assert.is_true(iserror(r[2], CancelledError))
    assert.equal(3, r[3])
  end))

  it("F89 cancelling the gather cancels every child not yet done; "
     .. "awaiting it raises CancelledError", vspec(function()
    local done_child = asyncio.Future()
    done_child:set_result("early")
    local seen = {}
    local child = async(function(name)
      local ok, e = pcall(await, sleep(10))
      seen[#seen + 1] = name .. (ok and " ran" or " cancelled")
      if not ok then error(e, 0) end
    end)
    local t1 = asyncio.create_task(child("t1"))
    local t2 = asyncio.create_task(child("t2"))
    local g = gather(done_child, t1, t2)
    iterations(1)
    assert.is_true(g:cancel("enough"))
    local e = await_error(g)
    assert.is_true(iserror(e, CancelledError))
    iterations(2)
    assert.is_true(t1:cancelled())
    assert.is_true(t2:cancelled())
    assert.same({"t1 cancelled", "t2 cancelled"}, seen)
    assert.equal("early", done_child:result())
    assert.is_false(g:cancel())
  end))

  it("F89 the gather's cancel message reaches the children", vspec(
    function()
      local t = asyncio.create_task(sleep(10))
      local g = gather(t)
      iterations(1)
      g:cancel("bye")
      iterations(2)
      local e = await_error(t)
      assert.is_true(iserror(e, CancelledError))
      assert.equal("bye", e.args[1])
      -- the gather itself is not cancelled: it holds a CancelledError
      assert.is_false(g:cancelled())
      assert.equal("bye", g:exception().args[1])
    end))

  it("F89 a cancelled gather raises CancelledError even when its children "
     .. "swallow the cancellation and succeed", vspec(function()
    local stubborn = async(function()
      local ok = pcall(await, sleep(10))
      return ok and "slept" or "kept going"
    end)
    local t = asyncio.create_task(stubborn())
    local g = gather(t)
    await(sleep(0))
    assert.is_true(g:cancel("stop"))
    assert.is_true(iserror(await_error(g), CancelledError))
    assert.is_false(g:cancelled())
    assert.equal("kept going", t:result())
  end))

  it("F90 cancelling the task that awaits a gather cancels every child and "
     .. "what they await", vspec(function()
    local proof = 0
    local waiter = asyncio.Future()
    local child1 = async(function() await(waiter); proof = proof + 1 end)
    local child2 = async(function() await(sleep(10)); proof = proof + 1 end)
    local gatherer
    local outer = asyncio.create_task(async(function()
      gatherer = gather(child1(), child2())
      await(gatherer)
      proof = proof + 100
    end)())
    iterations(2)
    assert.is_true(outer:cancel())
    assert.is_true(iserror(await_error(outer), CancelledError))
    iterations(3)
    assert.is_false(gatherer:cancel())
    assert.is_true(waiter:cancelled())
    assert.equal(0, proof)
  end))

  it("F91 an outer cancel propagates even with return_exceptions",
     vspec(function()
    local rounds = 0
    local looper = asyncio.create_task(async(function()
      while true do
        rounds = rounds + 1
        await(gather(sleep(0.05), {return_exceptions = true}))
        if rounds > 1000 then return "looped forever" end
      end
    end)())
    await(sleep(0.2))
    looper:cancel("stop looping")
    local e = await_error(looper)
    assert.is_true(iserror(e, CancelledError))
    assert.equal("stop looping", e.args[1])
    assert.is_true(looper:cancelled())
    assert.is_true(rounds < 10)
  end))

  it("F92 gather() is an already-done future holding an empty list",
     vspec(function()
    local g = gather()
    assert.is_true(asyncio.isfuture(g))
    assert.is_true(g:done())
    assert.same({}, g:result())
    assert.same({}, await(gather({return_exceptions = true})))
  end))

  it("F93 Coroutine arguments become tasks that start on the next "
     .. "iteration, in argument order", vspec(function()
    local log = {}
    local step = async(function(name) log[#log + 1] = name end)
    local g = gather(step("a"), step("b"), step("c"))
    log[#log + 1] = "gather returned"
    await(g)
    assert.same({"gather returned", "a", "b", "c"}, log)
  end))

  it("F94 an awaitable passed several times runs once and repeats its "
     .. "result", vspec(function()
    local runs = 0
    local make = async(function(s) runs = runs + 1; return s end)
    local c, d = make("abc"), make("def")
    assert.same({"abc", "abc", "def", "abc"}, await(gather(c, c, d, c)))
    assert.equal(2, runs)
    local f = asyncio.Future()
    f:set_result(7)
    assert.same({7, 7}, await(gather(f, f)))
  end))

  it("F95 when every child is already done, gather:cancel() returns false "
     .. "and the gather completes with their results", vspec(function()
    local f = asyncio.Future()
    local g = gather(f)
    f:set_result(42)
    assert.is_false(g:cancel())
    iterations(1)
    assert.is_false(g:cancelled())
    assert.same({42}, g:result())
  end))

  it("F89 gather:cancel() cancels the pending children at once",
     vspec(function()
    local c = asyncio.Future()
    local g = gather(c)
    assert.is_true(g:cancel())
    assert.is_true(c:cancelled())
    assert.is_false(g:done())
    iterations(1)
    assert.is_false(g:cancelled())
    assert.is_true(iserror(g:exception(), CancelledError))
  end))

  it("F96 when every argument is already done, the gather is done at once",
     vspec(function()
    local a, b = asyncio.Future(), asyncio.Future()
    a:set_result(1)
    b:set_result(2)
    local g = gather(a, b)
    assert.is_true(g:done())
    assert.same({1, 2}, g:result())
    local e = asyncio.ValueError("done")
    local c = asyncio.Future()
    c:set_exception(e)
    local g2 = gather(a, c)
    assert.is_true(g2:done())
    assert.equal(e, g2:exception())
  end))

  it("F keeps the first value of each child", vspec(function()
    local multi = async(function() return 1, 2, 3 end)
    assert.same({1, "x"}, await(gather(multi(), sleep(0, "x"))))
  end))

  it("F accepts Coroutine objects, Tasks, Futures and __await values",
     vspec(function()
    local f = asyncio.Future()
    asyncio.get_running_loop():call_later(0.05, function()
      f:set_result("future")
    end)
    local t = asyncio.create_task(value_after(0.02, "task"))
    assert.same({"coro", "task", "future", "object"},
                await(gather(value_after(0.03, "coro"), t, f,
                             awaitable("object"))))
  end))

  it("F a future of another loop than the first child's raises "
     .. "ValueError; the children set up before it still complete",
     vspec(function()
    local reports = 0
    asyncio.get_running_loop():set_exception_handler(function()
      reports = reports + 1
    end)
    local other = asyncio.new_event_loop{clock = "virtual"}
    local first = asyncio.Future()
    local err = h.error_of(gather, first, other:create_future())
    assert.is_true(iserror(err, asyncio.ValueError), tostring(err))
    assert.equal("The future belongs to a different loop than the one "
                 .. "specified as the loop argument", err.message)
    -- the first child is watched: completing it runs gather's callback,
    -- which finds no gather and reports nothing
    assert.matches("cb=%[", tostring(first))
    first:set_result(1)
    iterations(2)
    assert.equal(1, first:result())
    assert.equal(0, reports)
    other:close()
  end))

  it("F made with no running loop, binds to get_event_loop()", function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    asyncio.set_event_loop(loop)
    local g = gather(value_after(1, "a"), value_after(2, "b"))
    assert.equal(loop, g:get_loop())
    assert.same({"a", "b"}, loop:run_until_complete(g))
    assert.equal(2, loop:time())
    local empty = gather()
    assert.equal(loop, empty:get_loop())
    require("asyncio.core")._unset_event_loop()
    loop:close()
  end)

  it("F a plain table as last argument is the options table", vspec(
    function()
      local e = asyncio.ValueError("v")
      local r = await(gather(fail_after(0, e), value_after(0, 2),
                             {return_exceptions = true}))
      assert.equal(e, r[1])
      assert.equal(2, r[2])
      local e2 = await_error(gather(fail_after(0, e), {}))
      assert.equal(e, e2)
    end))

  it("F a non-awaitable argument raises TypeError", vspec(function()
    local ok, e = pcall(gather, 42)
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.TypeError))
  end))

  it("a trailing options table with an unknown key raises, naming the "
     .. "argument; return_exceptions is taken", vspec(function()
    local a = asyncio.Future()
    local function message_of(...)
      local args = table.pack(...)
      local e = h.error_of(function()
        gather(table.unpack(args, 1, args.n))
      end)
      return h.message(e)
    end
    assert.equal("bad argument #2 to 'gather' (unknown option "
                 .. "'return_exception')",
                 message_of(a, {return_exception = true}))
    -- a list of awaitables given as the last argument by mistake
    assert.equal("bad argument #1 to 'gather' (unknown option '1')",
                 message_of({a}))
    assert.equal("bad argument #1 to 'gather' (unknown option 'x')",
                 message_of({x = 1}))
    local e = asyncio.ValueError("failed")
    a:set_exception(e)
    assert.same({e, 2}, await(gather(a, sleep(0, 2),
                                     {return_exceptions = true})))
  end))
end)
