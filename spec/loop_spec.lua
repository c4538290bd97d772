-- spec/loop_spec.lua: the event loop (bindings/core/loop.c, handle.c, timer.c),
-- semantics section A.
local asyncio = require "asyncio"
local h = dofile("spec/helpers.lua")
local aspec = require "asyncio.busted"
local proc = dofile("spec/fixtures/proc.lua")
local async, await = asyncio.async, asyncio.await

local raised = h.error_of

--- Asserts e is an error object of class cls whose message is msg.
local function assert_error(cls, msg, e)
  assert.is_true(asyncio.iserror(e, cls), "not a " .. tostring(cls) ..
                 ": " .. tostring(e))
  if msg then assert.equal(msg, e.message) end
end

--- Runs one pass of the loop: everything queued now, then stop.
local function run_once(loop)
  loop:call_soon(loop.stop, loop)
  loop:run_forever()
end

describe("event loop", function()
  local loop
  h.each_virtual_loop(function(l) loop = l end)

  it("A1 call_soon runs the callback once, later, with its arguments",
     function()
    local calls = {}
    loop:call_soon(function(a, b) calls[#calls + 1] = {a, b} end, 1, 2)
    assert.same({}, calls)
    loop:call_soon(loop.stop, loop)
    loop:run_forever()
    assert.same({{1, 2}}, calls)
  end)

  it("A2 call_soon, task steps and done-callbacks share one FIFO queue",
     function()
    local log = {}
    local function note(what) return function() log[#log + 1] = what end end
    local fut = loop:create_future()
    fut:add_done_callback(note("done-callback"))
    loop:call_soon(note("soon-1"))
    loop:create_task(async(note("task-step"))())
    fut:set_result(1)
    loop:call_soon(note("soon-2"))
    run_once(loop)
    assert.same({"soon-1", "task-step", "done-callback", "soon-2"}, log)
  end)

  it("A3 callbacks scheduled while an iteration runs wait for the next one",
     function()
    local log = {}
    loop:call_soon(function()
      log[#log + 1] = "A"
      loop:call_soon(function() log[#log + 1] = "B" end)
    end)
    loop:call_soon(loop.stop, loop)
    loop:run_forever()
    assert.same({"A"}, log)
    loop:stop()
    loop:run_forever()
    assert.same({"A", "B"}, log)
  end)

  it("A4 a cancelled handle never runs; cancelling twice is harmless",
     function()
    local calls = 0
    local h = loop:call_soon(function() calls = calls + 1 end)
    local kept = loop:call_soon(function() calls = calls + 10 end)
    assert.is_false(h:cancelled())
    h:cancel()
    assert.is_true(h:cancelled())
    h:cancel()
    assert.is_true(h:cancelled())
    run_once(loop)
    assert.equal(10, calls)
    assert.is_false(kept:cancelled())
  end)

  it("A5 call_later: when() is time() + delay and it runs at that time",
     function()
    loop:call_later(1.5, loop.stop, loop)
    loop:run_forever()
    assert.equal(1.5, loop:time())
    local ran_at, args = {}, nil
    local h = loop:call_later(2, function(...)
      ran_at[#ran_at + 1] = loop:time()
      args = {...}
    end, "x", "y")
    assert.equal(3.5, h:when())
    loop:call_later(10, loop.stop, loop)
    loop:run_forever()
    assert.same({3.5}, ran_at)
    assert.same({"x", "y"}, args)
    assert.equal(11.5, loop:time())
  end)

  it("A6 call_at takes a loop:time() deadline and runs once it is reached",
     function()
    local ran_at = {}
    local h = loop:call_at(4.25, function()
      ran_at[#ran_at + 1] = loop:time()
    end)
    assert.equal(4.25, h:when())
    loop:call_at(5, loop.stop, loop)
    loop:run_forever()
    assert.same({4.25}, ran_at)
    assert.equal(5, loop:time())
  end)

  it("A7 timers fire by deadline, also deadlines in the past", function()
    -- the clock first moves away from 0, as a real clock always is
    loop:run_until_complete(asyncio.sleep(10))
    local log = {}
    local function cb(x) log[#log + 1] = x end
    loop:call_later(-1, cb, "a")
    loop:call_later(-2, cb, "b")
    loop:call_later(3, cb, "d")
    loop:call_later(1, cb, "c")
    loop:call_later(5, loop.stop, loop)
    loop:run_forever()
    assert.same({"b", "a", "c", "d"}, log)
    assert.equal(15, loop:time())
  end)

  it("A8 equal deadlines fire in registration order", function()
    local log = {}
    for i = 1, 12 do
      loop:call_at(7, function() log[#log + 1] = i end)
    end
    loop:call_at(8, loop.stop, loop)
    loop:run_forever()
    assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, log)
  end)

  it("A9 due timers run after callbacks already queued", function()
    local log = {}
    loop:call_later(0, function() log[#log + 1] = "A" end)
    loop:call_soon(function() log[#log + 1] = "B" end)
    loop:call_later(1, loop.stop, loop)
    loop:run_forever()
    assert.same({"B", "A"}, log)
  end)

  it("A10 a cancelled timer never runs and does not hold the clock", function()
    local log = {}
    local dead = loop:call_later(5, function() log[#log + 1] = "dead" end)
    loop:call_later(10, function()
      log[#log + 1] = loop:time()
      loop:stop()
    end)
    dead:cancel()
    assert.equal(1, loop:_counts().timers)
    loop:run_forever()
    assert.same({10}, log)
    assert.equal(0, loop:_counts().timers)
  end)

  it("A11 call_later(nil) and call_at(nil) raise TypeError", function()
    local function cb() end
    assert_error(asyncio.TypeError, nil, raised(loop.call_later, loop, nil, cb))
    assert_error(asyncio.TypeError, nil, raised(loop.call_at, loop, nil, cb))
    assert.equal(0, loop:_counts().timers)
  end)

  it("A11 a coroutine function or object as a callback raises TypeError, "
     .. "as asyncio's _check_callback", function()
    local fn = asyncio.async(function() end)
    local function message(f, ...)
      local e = raised(f, ...)
      assert_error(asyncio.TypeError, nil, e)
      return e.message
    end
    assert.equal("coroutines cannot be used with call_soon()",
                 message(loop.call_soon, loop, fn))
    assert.equal("coroutines cannot be used with call_later()",
                 message(loop.call_later, loop, 1, fn))
    assert.equal("coroutines cannot be used with call_at()",
                 message(loop.call_at, loop, 1, fn))
    assert.equal("coroutines cannot be used with call_soon_threadsafe()",
                 message(loop.call_soon_threadsafe, loop, fn))
    local coro = fn()
    assert.equal("coroutines cannot be used with call_soon()",
                 message(loop.call_soon, loop, coro))
    coro:close()
    assert.equal(0, loop:_counts().timers)
  end)

  it("A12 a callback error goes to the handler and the loop goes on", function()
    local seen, after = {}, 0
    loop:set_exception_handler(function(l, ctx) seen[#seen + 1] = {l, ctx} end)
    local h = loop:call_soon(function() error(asyncio.ValueError("boom")) end)
    loop:call_soon(function() after = after + 1 end)
    run_once(loop)
    assert.equal(1, #seen)
    assert.equal(loop, seen[1][1])
    local ctx = seen[1][2]
    assert.matches("^Exception in callback ", ctx.message)
    assert_error(asyncio.ValueError, "boom", ctx.exception)
    assert.equal(h, ctx.handle)
    assert.equal(1, after)
    assert.is_false(loop:is_running())
  end)

  it("A12 a plain string error in a callback is reported too", function()
    local seen = {}
    loop:set_exception_handler(function(_, ctx) seen[#seen + 1] = ctx end)
    loop:call_soon(function() error("plain", 0) end)
    run_once(loop)
    assert.equal(1, #seen)
    assert.equal("plain", seen[1].exception)
    assert.matches("^Exception in callback ", seen[1].message)
  end)

  it("A12 an error that carries no traceback (a plain table, nil) has "
     .. "the context's, and the default handler prints it", function()
    local seen = {}
    loop:set_exception_handler(function(_, ctx) seen[#seen + 1] = ctx end)
    local marked = setmetatable({}, {__tostring = function() return "m" end})
    loop:call_soon(function() error({code = 5}) end)
    loop:call_soon(function() error(nil) end)
    loop:call_soon(function() error(marked) end)
    run_once(loop)
    assert.equal(3, #seen)
    assert.same({code = 5}, seen[1].exception)
    assert.matches("^stack traceback:", seen[1].traceback)
    assert.is_nil(seen[2].exception)
    assert.matches("^stack traceback:", seen[2].traceback)
    -- a table with a metatable got its own
    assert.is_nil(seen[3].traceback)
    assert.matches("^stack traceback:", rawget(marked, "traceback"))
    local errors = require "asyncio.errors"
    for i = 1, 3 do
      assert.matches("\nstack traceback:\n", errors.format_context(seen[i]))
    end
  end)

  it("A13 set/get_exception_handler: custom, then nil unsets it", function()
    assert.is_nil(loop:get_exception_handler())
    local calls = {}
    local function handler(l, ctx) calls[#calls + 1] = {l, ctx.message} end
    loop:set_exception_handler(handler)
    assert.equal(handler, loop:get_exception_handler())
    loop:call_soon(error, "x")
    run_once(loop)
    assert.equal(1, #calls)
    assert.equal(loop, calls[1][1])
    assert.matches("^Exception in callback ", calls[1][2])
    loop:set_exception_handler(nil)
    assert.is_nil(loop:get_exception_handler())
  end)

  it("A13 a non-callable exception handler raises TypeError", function()
    for _, bad in ipairs{42, "handler", {}, true} do
      assert_error(asyncio.TypeError, nil,
                   raised(loop.set_exception_handler, loop, bad))
    end
    assert.is_nil(loop:get_exception_handler())
    local callable = setmetatable({}, {__call = function() end})
    loop:set_exception_handler(callable)
    assert.equal(callable, loop:get_exception_handler())
  end)

  it("A14 stop() lets the rest of the current iteration run", function()
    local log = {}
    loop:call_soon(loop.stop, loop)
    loop:call_soon(function()
      log[#log + 1] = "same iteration"
      loop:call_soon(function() log[#log + 1] = "next iteration" end)
    end)
    loop:run_forever()
    assert.same({"same iteration"}, log)
    assert.equal(1, loop:_counts().ready)
  end)

  it("A15 a pre-stopped run_forever runs exactly one non-blocking iteration",
     function()
    local log = {}
    loop:call_soon(function()
      log[#log + 1] = "A"
      loop:call_soon(function() log[#log + 1] = "B" end)
    end)
    local timer = 0
    loop:call_later(10, function() timer = timer + 1 end)
    loop:stop()
    loop:run_forever()
    assert.same({"A"}, log)
    assert.equal(0, timer)
    assert.equal(0, loop:time())
    assert.is_false(loop:is_running())
  end)

  it("A16 callbacks left queued by a stop run once, in the next run", function()
    local runs = 0
    loop:call_soon(function()
      loop:stop()
      loop:call_soon(function() runs = runs + 1 end)
    end)
    loop:run_forever()
    assert.equal(0, runs)
    loop:run_until_complete(asyncio.sleep(1))
    assert.equal(1, runs)
    run_once(loop)
    assert.equal(1, runs)
  end)

  it("A17 run_until_complete returns every value of the awaitable", function()
    local inner1 = async(function() await(asyncio.sleep(0.1)) return 42 end)
    local inner2 = async(function() await(asyncio.sleep(0.1)) return 1000 end)
    local outer = async(function() return await(inner1()) + await(inner2()) end)
    assert.equal(1042, loop:run_until_complete(outer()))
    assert.equal(0.2, loop:time())
    local values = {loop:run_until_complete(async(function()
      return 1, nil, "three"
    end)())}
    assert.same({1, nil, "three"}, values)
    local fut = loop:create_future()
    loop:call_later(1, fut.set_result, fut, "from a future")
    assert.equal("from a future", loop:run_until_complete(fut))
  end)

  it("A17 run_until_complete raises the awaitable's error", function()
    local e = raised(loop.run_until_complete, loop, async(function()
      await(asyncio.sleep(1))
      error(asyncio.ValueError("spam"))
    end)())
    assert_error(asyncio.ValueError, "spam", e)
    local s = raised(loop.run_until_complete, loop, async(function()
      error("plain", 0)
    end)())
    assert.equal("plain", s)
  end)

  it("A18 running a loop that already runs raises and runs nothing", function()
    local ran, errs = false, {}
    local coro = async(function() ran = true end)()
    loop:call_soon(function()
      errs[1] = raised(loop.run_until_complete, loop, coro)
      errs[2] = raised(loop.run_forever, loop)
    end)
    run_once(loop)
    assert_error(asyncio.RuntimeError, nil, errs[1])
    assert_error(asyncio.RuntimeError, nil, errs[2])
    assert.matches("already running", errs[1].message)
    assert.is_false(ran)
    assert.same(0, #asyncio.all_tasks(loop))
    coro:close()
  end)

  it("A19 stop before the future completes raises; the task resumes later",
     function()
    local steps = 0
    local task = loop:create_task(async(function()
      for _ = 1, 10 do
        steps = steps + 1
        await(asyncio.sleep(1))
      end
      return "finished"
    end)())
    loop:call_later(1.5, loop.stop, loop)
    local e = raised(loop.run_until_complete, loop, task)
    assert_error(asyncio.RuntimeError,
                 "Event loop stopped before Future completed.", e)
    assert.equal(2, steps)
    assert.is_false(task:done())
    assert.equal("finished", loop:run_until_complete(task))
    assert.equal(10, steps)
    assert.equal(10, loop:time())
  end)

  it("A19 a task left pending by a stop can be cancelled", function()
    local task = loop:create_task(async(function()
      await(asyncio.sleep(100))
    end)())
    loop:call_later(1, loop.stop, loop)
    assert_error(asyncio.RuntimeError, nil,
                 raised(loop.run_until_complete, loop, task))
    assert.is_true(task:cancel())
    assert_error(asyncio.CancelledError, nil,
                 raised(loop.run_until_complete, loop, task))
    assert.is_true(task:cancelled())
  end)

  it("A20 run_until_complete: another loop's future raises ValueError",
     function()
    local other = asyncio.new_event_loop{clock = "virtual"}
    local fut = other:create_future()
    assert_error(asyncio.ValueError, nil,
                 raised(loop.run_until_complete, loop, fut))
    other:close()
    assert.same(0, other:_counts().handles)
  end)

  it("A20 run_until_complete of a non-awaitable raises TypeError", function()
    for _, bad in ipairs{42, "x", {}, function() end} do
      assert_error(asyncio.TypeError, nil,
                   raised(loop.run_until_complete, loop, bad))
    end
    assert.is_false(loop:is_running())
  end)

  it("A21 after a KeyboardInterrupt escapes, no stray stop survives", function()
    local task = loop:create_task(async(function()
      await(asyncio.sleep(0))
      error(asyncio.KeyboardInterrupt())
    end)())
    assert.is_false(pcall(loop.run_until_complete, loop, task))
    assert_error(asyncio.KeyboardInterrupt, nil, task:exception())
    local t0 = loop:time()
    loop:call_later(5, loop.stop, loop)
    loop:run_forever()
    assert.equal(5, loop:time() - t0)
  end)

  it("A21 the interrupted future's completion no longer stops the loop",
     function()
    local fut = loop:create_future()
    loop:call_soon(function() error(asyncio.KeyboardInterrupt()) end)
    assert.is_false(pcall(loop.run_until_complete, loop, fut))
    fut:set_result(1)
    local ticks = 0
    loop:call_later(1, function() ticks = ticks + 1 end)
    loop:call_later(2, loop.stop, loop)
    loop:run_forever()
    assert.equal(2, loop:time())
    assert.equal(1, ticks)
  end)

  it("A22 close: is_closed, idempotent, then run methods raise", function()
    assert.is_false(loop:is_closed())
    loop:close()
    assert.is_true(loop:is_closed())
    loop:close()
    assert.is_true(loop:is_closed())
    assert_error(asyncio.RuntimeError, "Event loop is closed",
                 raised(loop.run_forever, loop))
    local fut = asyncio.Future()
    assert_error(asyncio.RuntimeError, "Event loop is closed",
                 raised(loop.run_until_complete, loop, fut))
    fut:cancel()
  end)

  it("A23 close() on a running loop raises RuntimeError", function()
    local e
    loop:call_soon(function() e = raised(loop.close, loop) end)
    run_once(loop)
    assert_error(asyncio.RuntimeError, nil, e)
    assert.is_false(loop:is_closed())
  end)

  it("A23 close() discards queued callbacks and timers", function()
    local calls = 0
    local function cb() calls = calls + 1 end
    loop:call_soon(cb)
    loop:call_later(1, cb)
    loop:call_at(2, cb)
    assert.equal(1, loop:_counts().ready)
    assert.equal(2, loop:_counts().timers)
    loop:close()
    assert.equal(0, calls)
    assert.equal(0, loop:_counts().ready)
    assert.equal(0, loop:_counts().timers)
  end)

  it("A24 after close, scheduling raises 'Event loop is closed'", function()
    loop:close()
    local function cb() end
    local cases = {
      {"call_soon", cb}, {"call_later", 1, cb}, {"call_at", 1, cb},
      {"call_soon_threadsafe", cb},
    }
    for _, case in ipairs(cases) do
      local method = table.remove(case, 1)
      assert_error(asyncio.RuntimeError, "Event loop is closed",
                   raised(loop[method], loop, table.unpack(case)))
    end
    local coro = async(cb)()
    assert_error(asyncio.RuntimeError, "Event loop is closed",
                 raised(loop.create_task, loop, coro))
  end)

  it("A24 create_task on a closed loop disposes of the coroutine", function()
    -- a control coroutine, never used, shows the warning is on
    local r = proc.run{proc.luaio, "-e", [[
      local asyncio = require "asyncio"
      local loop = asyncio.new_event_loop()
      loop:close()
      local gone = setmetatable({}, {__mode = "v"})
      gone[1] = asyncio.async(function() end)()
      gone[2] = asyncio.async(function() --[=[control]=] end)()
      assert(not pcall(loop.create_task, loop, gone[1]))
      collectgarbage() collectgarbage()
      print(gone[1] == nil and gone[2] == nil)
    ]]}
    assert.equal(0, r.status)
    assert.equal("true\n", r.stdout)
    local lines = proc.lines(r.stderr)
    assert.equal(2, #lines) -- the warning, then how to see its origin
    assert.matches("was never awaited", lines[1], 1, true)
    assert.matches("run with --debug", lines[2], 1, true)
    assert.matches("(command line):6>", lines[1], 1, true)
  end)

  it("A25 get_running_loop and is_running inside and outside the loop",
     function()
    assert_error(asyncio.RuntimeError, "no running event loop",
                 raised(asyncio.get_running_loop))
    assert.is_false(loop:is_running())
    local seen = {}
    loop:call_soon(function()
      seen[#seen + 1] = {asyncio.get_running_loop() == loop, loop:is_running()}
    end)
    run_once(loop)
    loop:run_until_complete(async(function()
      seen[#seen + 1] = {asyncio.get_running_loop() == loop, loop:is_running()}
    end)())
    assert.same({{true, true}, {true, true}}, seen)
    assert.is_false(loop:is_running())
    assert_error(asyncio.RuntimeError, nil, raised(asyncio.get_running_loop))
  end)

  it("A26 a KeyboardInterrupt in a task propagates; the task keeps it",
     function()
    local reports = 0
    loop:set_exception_handler(function() reports = reports + 1 end)
    local task = loop:create_task(async(function()
      await(asyncio.sleep(1))
      error(asyncio.KeyboardInterrupt("stop it"))
    end)())
    assert_error(asyncio.KeyboardInterrupt, "stop it",
                 raised(loop.run_until_complete, loop, task))
    assert.is_false(loop:is_running())
    assert.is_true(task:done())
    assert_error(asyncio.KeyboardInterrupt, "stop it", task:exception())
    assert.equal(0, reports)
  end)

  it("A26 the KeyboardInterrupt that leaves run_until_complete counts as "
     .. "retrieved: collecting its task reports nothing", function()
    local reports = 0
    loop:set_exception_handler(function() reports = reports + 1 end)
    assert_error(asyncio.KeyboardInterrupt, "stop it",
                 raised(loop.run_until_complete, loop, async(function()
                   error(asyncio.KeyboardInterrupt("stop it"))
                 end)()))
    run_once(loop) -- the task's done-callbacks no longer hold it
    collectgarbage()
    collectgarbage()
    assert.equal(0, reports)
  end)

  it("A26 a KeyboardInterrupt in a callback stops run_forever, the rest waits",
     function()
    local reports, later = 0, 0
    loop:set_exception_handler(function() reports = reports + 1 end)
    loop:call_soon(function() error(asyncio.KeyboardInterrupt("cb")) end)
    loop:call_soon(function() later = later + 1 end)
    assert_error(asyncio.KeyboardInterrupt, "cb",
                 raised(loop.run_forever, loop))
    assert.is_false(loop:is_running())
    assert.equal(0, reports)
    assert.equal(0, later)
    run_once(loop)
    assert.equal(1, later)
  end)
end)

describe("task factory", function()
  local loop
  h.each_virtual_loop(function(l) loop = l end)

  it("A27 create_task calls factory(loop, coro, opts) and returns its "
     .. "result; nil restores the default", function()
    local calls = {}
    local function factory(l, coro, opts)
      calls[#calls + 1] = {l, coro, opts}
      return asyncio.Task(coro, {loop = l, name = opts and opts.name})
    end
    assert.is_nil(loop:get_task_factory())
    loop:set_task_factory(factory)
    assert.equal(factory, loop:get_task_factory())
    local coro = asyncio.sleep(1, "slept")
    local opts = {name = "named"}
    local t = loop:create_task(coro, opts)
    assert.equal(1, #calls)
    assert.equal(loop, calls[1][1])
    assert.equal(coro, calls[1][2])
    assert.equal(opts, calls[1][3])  -- name= forwarded
    assert.equal("named", t:get_name())
    assert.equal("slept", loop:run_until_complete(t))
    -- run_until_complete, ensure_future and asyncio.create_task too
    loop:run_until_complete(async(function()
      await(asyncio.create_task(asyncio.sleep(0)))
    end)())
    assert.equal(3, #calls)
    assert.is_nil(calls[3][3])
    loop:set_task_factory(nil)
    assert.is_nil(loop:get_task_factory())
    loop:run_until_complete(asyncio.sleep(0))
    assert.equal(3, #calls)
  end)

  it("A27 whatever the factory returns, create_task returns", function()
    local coro = async(function() end)()
    loop:set_task_factory(function(_, c)
      c:close()
      return "not a task"
    end)
    assert.equal("not a task", loop:create_task(coro))
    local e = raised(loop.run_until_complete, loop, async(function() end)())
    assert_error(asyncio.TypeError,
                 "the task factory returned 'not a task', not a Future", e)
  end)

  it("A27 a factory that is not callable raises TypeError", function()
    assert_error(asyncio.TypeError,
                 "task factory must be a callable or None, got 1",
                 raised(loop.set_task_factory, loop, 1))
    assert.is_nil(loop:get_task_factory())
    local callable = setmetatable({}, {__call = function(_, l, c)
      return asyncio.Task(c, {loop = l})
    end})
    loop:set_task_factory(callable)
    assert.equal(7, loop:run_until_complete(asyncio.sleep(0, 7)))
  end)

  it("create_task rejects an unknown option without a factory; a factory "
     .. "gets the options as given and decides (Python 3.13 passes its "
     .. "keyword arguments on)", function()
    local coro = asyncio.sleep(0, "ran")
    local e = raised(function() loop:create_task(coro, {nmae = "x"}) end)
    assert.equal("bad argument #2 to 'create_task' (unknown option 'nmae')",
                 h.message(e))
    local calls = {}
    loop:set_task_factory(function(l, c, opts)
      calls[#calls + 1] = opts
      return asyncio.Task(c, {loop = l, name = opts and opts.name})
    end)
    local t = loop:create_task(coro, {name = "x", eager = true})
    assert.same({{name = "x", eager = true}}, calls)
    assert.equal("x", t:get_name())
    assert.equal("ran", loop:run_until_complete(t))
    -- asyncio.Task, which the factory calls, rejects what it does not take
    loop:set_task_factory(function(l, c, opts)
      return asyncio.Task(c, opts)
    end)
    e = raised(function()
      loop:create_task(asyncio.sleep(0), {eager = true})
    end)
    assert.matches("bad argument #2 to '.-' %(unknown option 'eager'%)$", e)
  end)

  it("asyncio.Task(coro [, {loop =, name =}]) makes a Task directly",
     function()
    local t = asyncio.Task(asyncio.sleep(0, "r"), {loop = loop, name = "x"})
    assert.is_true(asyncio.isfuture(t))
    assert.equal("x", t:get_name())
    assert.equal(loop, t:get_loop())
    assert.equal("r", loop:run_until_complete(t))
    assert_error(asyncio.TypeError, nil, raised(asyncio.Task, 42,
                                                {loop = loop}))
  end)
end)

describe("loop options (Python's keyword arguments)", function()
  --- The message of the error fn raises, without a "file:line:" prefix.
  local function message_of(fn)
    return h.message(raised(fn))
  end

  it("new_event_loop rejects an unknown option; {clock =, debug =} are "
     .. "taken", function()
    assert.equal("bad argument #1 to 'new_event_loop' (unknown option "
                 .. "'clok')", message_of(function()
      asyncio.new_event_loop{clok = "virtual"}
    end))
    assert.equal("bad argument #1 to 'new_event_loop' (unknown option "
                 .. "'loop_factory')", message_of(function()
      asyncio.new_event_loop{clock = "virtual", loop_factory = print}
    end))
    local loop = asyncio.new_event_loop{clock = "virtual", debug = true}
    assert.is_true(loop:get_debug())
    assert.equal(0, loop:time())
    loop:close()
  end)

  it("a clock function is the loop's time: timers fall due by it, and a "
     .. "clock that pauses holds them back (a game's clock)", function()
    local now, readings = 10, 0
    local loop = asyncio.new_event_loop{clock = function()
      readings = readings + 1
      return now
    end}
    assert.equal(10, loop:time())
    local fired = {}
    loop:call_later(0.5, function() fired[#fired + 1] = loop:time() end)
    local slept = loop:create_task(asyncio.sleep(1, "slept"))
    loop:run_until_complete(asyncio.sleep(0))
    assert.same({}, fired) -- paused: nothing is due
    now = 10.5
    loop:run_until_complete(asyncio.sleep(0))
    assert.same({10.5}, fired)
    assert.is_false(slept:done())
    now = 11
    assert.equal("slept", loop:run_until_complete(slept))
    assert.same({10.5}, fired)
    assert.is_true(readings >= 5)
    -- a callable table is a clock too
    local clock = setmetatable({}, {__call = function() return 42 end})
    local other = asyncio.new_event_loop{clock = clock}
    assert.equal(42, other:time())
    other:close()
    loop:close()
  end)

  it("a bad clock is refused by new_event_loop; what a clock function "
     .. "raises propagates from loop:time() and from the run", function()
    assert.equal("bad clock true to 'new_event_loop' (expected 'real', "
                 .. "'virtual' or a function)", message_of(function()
      asyncio.new_event_loop{clock = true}
    end))
    assert.equal("bad clock 'fast' to 'new_event_loop' (expected 'real', "
                 .. "'virtual' or a function)", message_of(function()
      asyncio.new_event_loop{clock = "fast"}
    end))
    local e = raised(function()
      asyncio.new_event_loop{clock = function() return "soon" end}
    end)
    assert.is_true(asyncio.iserror(e, asyncio.TypeError))
    assert.equal("the loop's clock returned 'soon', not a number",
                 e.message)
    local broken = false
    local loop = asyncio.new_event_loop{clock = function()
      if broken then error("clock stopped", 0) end
      return 1
    end}
    loop:call_later(1, function() end)
    broken = true
    assert.equal("clock stopped", message_of(function() loop:time() end))
    local t = loop:create_task(asyncio.sleep(0, "after"))
    assert.equal("clock stopped", message_of(function()
      loop:run_until_complete(t)
    end))
    assert.is_false(loop:is_running())
    assert.is_false(t:done())
    broken = false
    assert.equal(1, loop:time())
    assert.equal("after", loop:run_until_complete(t)) -- it goes on
    loop:close()
  end)

  it("create_future rejects an unknown option; {cancel =} is taken",
     function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    assert.equal("bad argument #1 to 'create_future' (unknown option "
                 .. "'cancle')", message_of(function()
      loop:create_future{cancle = function() end}
    end))
    local hooked = 0
    local fut = loop:create_future{cancel = function() hooked = hooked + 1 end}
    fut:cancel()
    assert.equal(1, hooked)
    assert.is_false(fut:done())
    loop:close()
  end)
end)

describe("asyncio.busted", function()
  it("async rejects an unknown option when the test is made; {clock =, "
     .. "debug =} are taken", function()
    local e = raised(function() aspec.async({clok = "virtual"}, print) end)
    assert.equal("bad argument #1 to 'async' (unknown option 'clok')",
                 h.message(e))
    aspec.async({clock = "virtual", debug = true}, function()
      local loop = asyncio.get_running_loop()
      assert.is_true(loop:get_debug())
      await(asyncio.sleep(3600))
      assert.equal(3600, loop:time())
    end)()
  end)

  it("runs the body as a task on a fresh loop", aspec.async(function()
    assert.is_not_nil(asyncio.current_task())
    assert.equal("virtual-free", (await(asyncio.sleep(0, "virtual-free"))))
  end))

  -- the failures of a test body, as busted would see them
  local function failure(fn)
    local ok, err = pcall(aspec.async(fn))
    assert.is_false(ok)
    return tostring(err)
  end

  it("fails a test on an error, on a task still pending at its end, on a "
     .. "task exception nobody retrieved, on a callback error", function()
    h.has(failure(function() await(asyncio.sleep(0)) error("boom") end),
        "boom")
    h.has(failure(function() asyncio.create_task(asyncio.sleep(10)) end),
        "1 task(s) still pending at the end of the test")
    h.has(failure(function()
      asyncio.create_task(asyncio.async(function() error("lost") end)())
      await(asyncio.sleep(0))
    end), "Task exception was never retrieved")
    h.has(failure(function()
      asyncio.get_running_loop():call_soon(function() error("cb") end)
      await(asyncio.sleep(0))
    end), "Exception in callback")
  end)

  it("shows the traceback of the task that raised a string error",
     function()
    local e = failure(function()
      await(asyncio.sleep(0))
      error("boom")
    end)
    h.has(e, "boom\nstack traceback of task 'Task-")
    h.has(e, "in global 'error'")
  end)

  it("a failed assertion in the body stays busted's failure (not an "
     .. "error), with the task's traceback; pending() stays pending",
     function()
    local _, direct = pcall(assert.equal, 1, 2)
    local ok, err = pcall(aspec.async(function()
      await(asyncio.sleep(0))
      assert.equal(1, 2)
    end))
    assert.is_false(ok)
    assert.equal(getmetatable(direct), getmetatable(err))
    h.has(tostring(err), "Expected objects to be equal.")
    h.has(tostring(err), "stack traceback of task 'Task-")
    local _, later = pcall(pending, "later")
    ok, err = pcall(aspec.async(function()
      await(asyncio.sleep(0))
      pending("later")
    end))
    assert.is_false(ok)
    assert.equal(getmetatable(later), getmetatable(err))
    assert.equal("later", err.message)
  end)

  it("a failed task the test kept is reported on stderr once collected, "
     .. "not swallowed", function()
    local r = proc.run{proc.luaio, "-e", [[
      local asyncio = require "asyncio"
      local aspec = require "asyncio.busted"
      local kept
      aspec.async(function()
        kept = asyncio.create_task(asyncio.async(function()
          error("kept failure")
        end)())
        asyncio.await(asyncio.sleep(0))
      end)()
      print("test passed")
      kept = nil
      collectgarbage() collectgarbage()
      print("collected")
    ]]}
    assert.equal(0, r.status, r.stderr)
    assert.equal("test passed\ncollected\n", r.stdout)
    h.has(r.stderr, "Task exception was never retrieved")
    h.has(r.stderr, "kept failure")
  end)

  it("A5 sleeps on the virtual clock advance time() exactly",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local t0 = loop:time()
    await(asyncio.sleep(2.5))
    assert.equal(2.5, loop:time() - t0)
    await(asyncio.sleep(0))
    assert.equal(2.5, loop:time() - t0)
  end))
end)

describe("the current loop", function()
  local core = require "asyncio.core"
  after_each(function() core._unset_event_loop() end)

  it("get_event_loop() makes a loop when none was ever set", function()
    core._unset_event_loop()
    local loop = asyncio.get_event_loop()
    assert.is_false(loop:is_closed())
    assert.equal(loop, asyncio.get_event_loop())
    loop:close()
  end)

  it("get_event_loop() raises after an explicit set_event_loop(nil), as "
     .. "CPython's policy does, until a loop is set again", function()
    local loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncio.set_event_loop(nil)
    local ok, err = pcall(asyncio.get_event_loop)
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(err, asyncio.RuntimeError))
    assert.equal("There is no current event loop", err.message)
    -- what binds to the current loop raises the same
    assert.is_false((pcall(asyncio.Future)))
    asyncio.set_event_loop(loop)
    assert.equal(loop, asyncio.get_event_loop())
    loop:close()
  end)

  it("asyncio.run leaves no loop set, and get_event_loop() then makes a "
     .. "fresh one (DESIGN), even after an explicit set_event_loop(nil)",
     function()
    asyncio.set_event_loop(nil)
    local ran = asyncio.run(function()
      return asyncio.get_running_loop()
    end)
    local fresh = asyncio.get_event_loop()
    assert.are_not.equal(ran, fresh)
    assert.is_true(ran:is_closed())
    assert.is_false(fresh:is_closed())
    fresh:close()
  end)
end)
