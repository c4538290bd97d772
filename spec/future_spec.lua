-- spec/future_spec.lua: Future (bindings/core/future.c), semantics section B.
local asyncio = require "asyncio"
local h = dofile("spec/helpers.lua")
local aspec = require "asyncio.busted"
local raises = h.raises
local async, await = asyncio.async, asyncio.await

local iserror = asyncio.iserror

-- Runs exactly one iteration of a loop that is not running (A15).
local run_once = h.run_once

-- Returns select("#", ...) and the values as a packed table.
local function pack(...)
  return table.pack(...)
end

describe("Future", function()
  local loop, reports
  h.each_reporting_loop(function(l, r) loop, reports = l, r end)

  it("B29 a new future is neither done nor cancelled", function()
    local fut = loop:create_future()
    assert.is_false(fut:done())
    assert.is_false(fut:cancelled())
    assert.is_true(asyncio.isfuture(fut))
  end)

  it("B30 result() and exception() of a pending future raise "
     .. "InvalidStateError", function()
    local fut = loop:create_future()
    -- the messages of CPython's Future (_asyncio)
    assert.equal("Result is not set.",
                 raises(asyncio.InvalidStateError, fut.result, fut).message)
    assert.equal("Exception is not set.",
                 raises(asyncio.InvalidStateError, fut.exception,
                        fut).message)
  end)

  it("B31 set_result completes the future once; later sets raise, "
     .. "cancel() is false", function()
    local fut = loop:create_future()
    fut:set_result(42)
    assert.is_true(fut:done())
    assert.is_false(fut:cancelled())
    assert.equal(42, fut:result())
    assert.is_nil(fut:exception())
    raises(asyncio.InvalidStateError, fut.set_result, fut, 1)
    raises(asyncio.InvalidStateError,
           fut.set_exception, fut, asyncio.ValueError("x"))
    assert.is_false(fut:cancel())
    assert.equal(42, fut:result())
  end)

  it("B32 set_exception: result() raises that very error, exception() "
     .. "returns it", function()
    local fut = loop:create_future()
    local e = asyncio.ValueError("bad")
    fut:set_exception(e)
    assert.is_true(fut:done())
    assert.is_false(fut:cancelled())
    assert.equal(e, raises(asyncio.ValueError, fut.result, fut))
    assert.equal(e, fut:exception())
    raises(asyncio.InvalidStateError, fut.set_result, fut, 1)
    raises(asyncio.InvalidStateError,
           fut.set_exception, fut, asyncio.ValueError("y"))
    assert.is_false(fut:cancel())
    assert.equal(e, fut:exception())
  end)

  it("B32 set_exception with a class stores an instance of it", function()
    local fut = loop:create_future()
    fut:set_exception(asyncio.ValueError)
    local e = fut:exception()
    assert.is_true(iserror(e, asyncio.ValueError))
    assert.are_not.equal(asyncio.ValueError, e)
    assert.equal(e, raises(asyncio.ValueError, fut.result, fut))
  end)

  it("B33 cancel() of a pending future: cancelled, done, results raise "
     .. "CancelledError, sets raise InvalidStateError", function()
    local fut = loop:create_future()
    assert.is_true(fut:cancel())
    assert.is_true(fut:cancelled())
    assert.is_true(fut:done())
    raises(asyncio.CancelledError, fut.result, fut)
    raises(asyncio.CancelledError, fut.exception, fut)
    raises(asyncio.InvalidStateError, fut.set_result, fut, 1)
    raises(asyncio.InvalidStateError,
           fut.set_exception, fut, asyncio.ValueError("x"))
    assert.is_false(fut:cancel())
  end)

  it("B34 cancel(msg): the CancelledError carries msg as its only "
     .. "argument", function()
    local fut = loop:create_future()
    fut:cancel("stop it")
    local e = raises(asyncio.CancelledError, fut.result, fut)
    assert.equal(1, #e.args)
    assert.equal("stop it", e.args[1])
    local e2 = raises(asyncio.CancelledError, fut.exception, fut)
    assert.same({"stop it"}, {table.unpack(e2.args, 1, #e2.args)})
    local plain = loop:create_future()
    plain:cancel()
    assert.equal(0, #raises(asyncio.CancelledError, plain.result, plain).args)
  end)

  it("B34 awaiting a future cancelled with a message raises "
     .. "CancelledError(msg)", function()
    local fut = loop:create_future()
    local caught
    local t = loop:create_task(async(function()
      local ok, e = pcall(await, fut)
      caught = e
      return ok
    end)())
    run_once(loop)
    fut:cancel("bye")
    assert.is_false(loop:run_until_complete(t))
    assert.is_true(iserror(caught, asyncio.CancelledError))
    assert.same("bye", caught.args[1])
  end)

  it("B35 done callbacks are scheduled, in order, with the future, never "
     .. "called by set_result", function()
    local bag = {}
    local fut = loop:create_future()
    fut:add_done_callback(function(f)
      bag[#bag + 1] = {f, 42}
    end)
    fut:add_done_callback(function(f)
      bag[#bag + 1] = {f, 17}
    end)
    fut:set_result("r")
    assert.same({}, bag)
    assert.equal(2, loop:_counts().ready)
    run_once(loop)
    assert.equal(2, #bag)
    assert.equal(42, bag[1][2])
    assert.equal(17, bag[2][2])
    assert.equal(fut, bag[1][1])
    assert.equal(fut, bag[2][1])
  end)

  it("B35 set_exception and cancel schedule the callbacks too", function()
    local bag = {}
    local function cb(f) bag[#bag + 1] = f end
    local failed, cancelled = loop:create_future(), loop:create_future()
    failed:add_done_callback(cb)
    cancelled:add_done_callback(cb)
    failed:set_exception(asyncio.ValueError("x"))
    cancelled:cancel()
    assert.same({}, bag)
    run_once(loop)
    assert.equal(2, #bag)
    assert.equal(failed, bag[1])
    assert.equal(cancelled, bag[2])
    failed:exception()
  end)

  it("B36 add_done_callback on a done future runs the callback on the next "
     .. "iteration", function()
    local calls = 0
    local fut = loop:create_future()
    fut:set_result(1)
    fut:add_done_callback(function() calls = calls + 1 end)
    assert.equal(0, calls)
    run_once(loop)
    assert.equal(1, calls)
    run_once(loop)
    assert.equal(1, calls)
  end)

  it("B37 remove_done_callback removes every registration and returns how "
     .. "many", function()
    local bag = {}
    local function cb1() bag[#bag + 1] = "cb1" end
    local function cb2() bag[#bag + 1] = "cb2" end
    local function cb3() bag[#bag + 1] = "cb3" end
    local fut = loop:create_future()
    fut:add_done_callback(cb1)
    fut:add_done_callback(cb2)
    assert.equal(1, fut:remove_done_callback(cb2))
    assert.equal(0, fut:remove_done_callback(cb3))
    fut:add_done_callback(cb2)
    for _ = 1, 5 do fut:add_done_callback(cb1) end
    assert.equal(6, fut:remove_done_callback(cb1))
    fut:set_result(1)
    run_once(loop)
    assert.same({"cb2"}, bag)
  end)

  it("B37 removing the first or the last of three callbacks keeps the "
     .. "others' order", function()
    local bag = {}
    local function mk(name) return function() bag[#bag + 1] = name end end
    local a, b, c = mk("a"), mk("b"), mk("c")
    local first, last = loop:create_future(), loop:create_future()
    for _, f in ipairs{first, last} do
      f:add_done_callback(a)
      f:add_done_callback(b)
      f:add_done_callback(c)
    end
    assert.equal(1, first:remove_done_callback(a))
    assert.equal(1, last:remove_done_callback(c))
    first:set_result(1)
    run_once(loop)
    assert.same({"b", "c"}, bag)
    bag = {}
    last:set_result(1)
    run_once(loop)
    assert.same({"a", "b"}, bag)
  end)

  it("B38 awaiting a done future does not suspend the task",
     aspec.async({clock = "virtual"}, function()
    local fut = asyncio.Future()
    fut:set_result("v")
    local ran = 0
    asyncio.get_running_loop():call_soon(function() ran = ran + 1 end)
    assert.equal("v", await(fut))
    assert.equal("v", await(fut))
    assert.equal(0, ran)
    await(asyncio.sleep(0))
    assert.equal(1, ran)
  end))

  it("B38 awaiting a failed done future raises its error without "
     .. "suspending", aspec.async({clock = "virtual"}, function()
    local fut = asyncio.Future()
    local e = asyncio.ValueError("x")
    fut:set_exception(e)
    local ran = 0
    asyncio.get_running_loop():call_soon(function() ran = ran + 1 end)
    local ok, got = pcall(await, fut)
    assert.is_false(ok)
    assert.equal(e, got)
    assert.equal(0, ran)
    await(asyncio.sleep(0))
    assert.equal(1, ran)
  end))

  it("B39 a task awaiting a future resumes on the iteration after "
     .. "set_result, ahead of callbacks queued later", function()
    local log = {}
    local fut = loop:create_future()
    local t = loop:create_task(async(function()
      log[#log + 1] = "T" .. await(fut)
    end)())
    run_once(loop)
    assert.same({}, log)
    assert.is_false(t:done())
    loop:call_soon(function()
      fut:set_result("1")
      loop:call_soon(function() log[#log + 1] = "cb" end)
    end)
    run_once(loop)
    assert.same({}, log)
    run_once(loop)
    assert.same({"T1", "cb"}, log)
    assert.is_true(t:done())
  end)

  it("B40 get_loop() returns the loop the future is bound to", function()
    assert.equal(loop, loop:create_future():get_loop())
    local inner = loop:run_until_complete(async(function()
      return asyncio.Future():get_loop()
    end)())
    assert.equal(loop, inner)
  end)

  it("B40 Future() with no running and no set loop binds to "
     .. "get_event_loop(), which creates one", function()
    require("asyncio.core")._unset_event_loop() -- as asyncio.run leaves it
    local fut = asyncio.Future()
    local bound = fut:get_loop()
    assert.is_not_nil(bound)
    assert.are_not.equal(loop, bound)
    assert.equal(asyncio.get_event_loop(), bound)
    assert.is_false(bound:is_closed())
    fut:set_result(3)
    assert.equal(3, bound:run_until_complete(fut))
    require("asyncio.core")._unset_event_loop()
    bound:close()
    assert.same(0, bound:_counts().handles)
  end)

  it("B41 a future whose exception nobody retrieved is reported when "
     .. "collected", function()
    do loop:create_future():set_exception(asyncio.ValueError("lost")) end
    collectgarbage()
    collectgarbage()
    assert.equal(1, #reports)
    local ctx = reports[1]
    assert.equal("table", type(ctx))
    assert.equal("Future exception was never retrieved", ctx.message)
    assert.is_true(iserror(ctx.exception, asyncio.ValueError))
    assert.equal("lost", ctx.exception.message)
    assert.equal("<Future finished exception=ValueError('lost')>",
                 tostring(ctx.future))
  end)

  it("B41 a task whose error nobody retrieved is reported when collected",
     function()
    do
      local t = loop:create_task(async(function()
        error(asyncio.ValueError("lost"))
      end)())
      loop:run_until_complete(asyncio.sleep(0))
      assert.is_true(t:done())
    end
    collectgarbage()
    collectgarbage()
    assert.equal(1, #reports)
    local ctx = reports[1]
    assert.equal("Task exception was never retrieved", ctx.message)
    assert.is_true(iserror(ctx.exception, asyncio.ValueError))
    assert.equal("lost", ctx.exception.message)
    assert.is_true(tostring(ctx.future):find("^<Task finished") ~= nil)
  end)

  it("B42 no report for a future that only got a result", function()
    do loop:create_future():set_result(1) end
    collectgarbage()
    collectgarbage()
    assert.same({}, reports)
  end)

  it("B42 no report once result() or exception() was called", function()
    do
      local a, b = loop:create_future(), loop:create_future()
      a:set_exception(asyncio.ValueError("a"))
      b:set_exception(asyncio.ValueError("b"))
      pcall(a.result, a)
      b:exception()
    end
    collectgarbage()
    collectgarbage()
    assert.same({}, reports)
  end)

  it("B42 no report when cancel() was called after set_exception",
     function()
    do
      local fut = loop:create_future()
      fut:set_exception(asyncio.ValueError("x"))
      assert.is_false(fut:cancel())
    end
    collectgarbage()
    collectgarbage()
    assert.same({}, reports)
  end)

  it("B42 no report for a future abandoned pending", function()
    do loop:create_future() end
    collectgarbage()
    collectgarbage()
    assert.same({}, reports)
  end)
end)

describe("Future values", function()
  local loop
  h.each_virtual_loop(function(l) loop = l end)

  it("a future holds every value given to set_result, nils included",
     function()
    local fut = loop:create_future()
    fut:set_result(1, nil, "three", nil)
    local got = pack(fut:result())
    assert.equal(4, got.n)
    assert.same({1, nil, "three", nil, n = 4}, got)
  end)

  it("set_result() with no value gives no value back", function()
    local fut = loop:create_future()
    fut:set_result()
    assert.equal(0, select("#", fut:result()))
    assert.is_nil(fut:exception())
  end)

  it("await returns every value of the future", function()
    local fut = loop:create_future()
    local t = loop:create_task(async(function()
      return pack(await(fut))
    end)())
    run_once(loop)
    fut:set_result("a", nil, 3)
    local got = loop:run_until_complete(t)
    assert.same({"a", nil, 3, n = 3}, got)
  end)

  it("run_until_complete returns every value of the future", function()
    local fut = loop:create_future()
    loop:call_soon(function() fut:set_result(1, 2, 3) end)
    assert.same({1, 2, 3, n = 3}, pack(loop:run_until_complete(fut)))
  end)
end)

describe("Future tostring", function()
  local loop
  h.each_virtual_loop(function(l) loop = l end)

  it("elides callbacks past two as base_futures's _format_callbacks does",
     function()
    local fut = loop:create_future()
    local function first() end
    local function middle() end
    local function last() end
    fut:add_done_callback(first)
    assert.equal("<Future pending cb=[first()]>", tostring(fut))
    fut:add_done_callback(last)
    assert.equal("<Future pending cb=[first(), last()]>", tostring(fut))
    fut:remove_done_callback(last)
    fut:add_done_callback(middle)
    fut:add_done_callback(middle)
    fut:add_done_callback(last)
    assert.equal("<Future pending cb=[first(), <2 more>, last()]>",
                 tostring(fut))
    fut:cancel()
  end)

  it("a Task shows its done callbacks after what it waits for",
     function()
    local function on_done() end
    local gate = loop:create_future()
    local t = loop:create_task(asyncio.async(function()
      return asyncio.await(gate)
    end)(), {name = "w"})
    t:add_done_callback(on_done)
    h.run_once(loop)
    local r = tostring(t)
    assert.matches("^<Task pending name='w' coro=<.-> wait_for=<Future "
                   .. "pending cb=%[Task%.task_wakeup%(%)%]> "
                   .. "cb=%[on_done%(%)%]>$", r)
    gate:set_result(1)
    loop:run_until_complete(t)
    assert.matches("^<Task finished name='w' coro=<.-> result=1>$",
                   tostring(t))
  end)

  it("a Task asleep in sleep(d > 0) waits for a future in its repr, as "
     .. "Python's; after sleep(0) it waits for nothing", function()
    local function task_of(delay, name)
      return loop:create_task(asyncio.async(function()
        asyncio.await(asyncio.sleep(delay))
      end)(), {name = name})
    end
    local long, short = task_of(10, "long"), task_of(0, "short")
    h.run_once(loop)
    assert.matches("^<Task pending name='long' coro=<.-> wait_for=<Future "
                   .. "pending cb=%[Task%.task_wakeup%(%)%]>>$",
                   tostring(long))
    assert.matches("^<Task pending name='short' coro=<.* running at "
                   .. "spec/future_spec%.lua:%d+>>$", tostring(short))
    assert.not_matches("wait_for", tostring(short))
    long:cancel()
    loop:run_until_complete(asyncio.gather(long, short,
                                           {return_exceptions = true}))
  end)

  it("shows pending, finished with the result, and cancelled", function()
    local fut = loop:create_future()
    assert.equal("<Future pending>", tostring(fut))
    fut:set_result(42)
    assert.equal("<Future finished result=42>", tostring(fut))
    local s = loop:create_future()
    s:set_result("hi")
    assert.equal("<Future finished result='hi'>", tostring(s))
    local esc = loop:create_future()
    esc:set_result("a\nb\1")
    assert.equal([[<Future finished result='a\nb\x01'>]], tostring(esc))
    local c = loop:create_future()
    c:cancel()
    assert.equal("<Future cancelled>", tostring(c))
  end)

  it("shows the exception of a failed future as Class('message')",
     function()
    local fut = loop:create_future()
    fut:set_exception(asyncio.ValueError("x"))
    assert.equal("<Future finished exception=ValueError('x')>", tostring(fut))
    local cls = loop:create_future()
    cls:set_exception(asyncio.TimeoutError)
    assert.equal("<Future finished exception=TimeoutError()>", tostring(cls))
    fut:exception()
    cls:exception()
  end)

  it("a repr longer than the C buffer's first block stays whole",
     function()
    local many = loop:create_future()
    local results = {}
    for i = 1, 200 do results[i] = ("r"):rep(10) .. i end
    many:set_result(table.unpack(results))
    local repr = tostring(many)
    assert.equal("<Future finished result='"
                 .. table.concat(results, "', '") .. "'>", repr)
    -- an exception is shown whole (a result would be cut, see below)
    local long = loop:create_future()
    local a = ("a"):rep(1400)
    long:set_exception(asyncio.ValueError(a))
    assert.equal("<Future finished exception=ValueError('" .. a .. "')>",
                 tostring(long))
    long:exception()
  end)

  it("cuts a long string result in the middle as reprlib.repr does; "
     .. "the exception stays whole", function()
    local function shown(...)
      local fut = loop:create_future()
      fut:set_result(...)
      return tostring(fut)
    end
    -- Python: repr(Future) with the result "x" * 100
    assert.equal("<Future finished result='xxxxxxxxxxxx...xxxxxxxxxxxxx'>",
                 shown(("x"):rep(100)))
    local az = ("abcdefghijklmnopqrstuvwxyz"):rep(4)
    assert.equal("<Future finished result='abcdefghijkl...nopqrstuvwxyz'>",
                 shown(az))
    -- 28 characters fit (30 with the quotes), 29 do not
    assert.equal("<Future finished result='" .. ("y"):rep(28) .. "'>",
                 shown(("y"):rep(28)))
    assert.equal("<Future finished result='yyyyyyyyyyyy...yyyyyyyyyyyyy'>",
                 shown(("y"):rep(29)))
    -- each of several results; other values as before
    assert.equal("<Future finished result='zzzzzzzzzzzz...zzzzzzzzzzzzz', "
                 .. "42, 'ok'>", shown(("z"):rep(50), 42, "ok"))
    -- counted in bytes, but never cut inside a UTF-8 sequence
    local e = shown(("\u{e9}"):rep(40))
    assert.truthy(utf8.len(e), e)
    assert.equal("<Future finished result='" .. ("\u{e9}"):rep(6) .. "..."
                 .. ("\u{e9}"):rep(6) .. "'>", e)
    -- a task's result too
    local t = loop:create_task(async(function() return ("w"):rep(64) end)(),
                               {name = "big"})
    loop:run_until_complete(t)
    assert.matches("^<Task finished name='big' coro=<.-> "
                   .. "result='wwwwwwwwwwww%.%.%.wwwwwwwwwwwww'>$", tostring(t))
    local fut = loop:create_future()
    fut:set_exception(asyncio.ValueError(("v"):rep(64)))
    assert.equal("<Future finished exception=ValueError('" .. ("v"):rep(64)
                 .. "')>", tostring(fut))
    fut:exception()
  end)
end)
