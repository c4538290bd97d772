-- spec/task_spec.lua: Task (bindings/core/future.c), semantics section C.
local asyncio = require "asyncio"
local h = dofile("spec/helpers.lua")
local aspec = require "asyncio.busted"
local raises = h.raises
local async, await = asyncio.async, asyncio.await

-- Runs exactly one iteration of a loop that is not running (A15).
local run_once = h.run_once

local function contains(list, x)
  for _, v in ipairs(list) do
    if rawequal(v, x) then return true end
  end
  return false
end

describe("Task", function()
  local loop
  h.each_virtual_loop(function(l) loop = l end)

  it("C44 create_task runs nothing; first steps follow creation order",
     function()
    local log = {}
    local function body(i) log[#log + 1] = i end
    local tasks = {}
    for i = 0, 2 do tasks[#tasks + 1] = loop:create_task(async(body)(i)) end
    log[#log + 1] = "created"
    assert.same({"created"}, log)
    assert.is_false(tasks[1]:done())
    assert.is_true(asyncio.isfuture(tasks[1]))
    run_once(loop)
    assert.same({"created", 0, 1, 2}, log)
    for _, t in ipairs(tasks) do assert.is_true(t:done()) end
  end)

  it("C44 a task created inside a task starts only after its creator "
     .. "yields", aspec.async({clock = "virtual"}, function()
    local log = {}
    local t = asyncio.create_task(async(function()
      log[#log + 1] = "child"
    end)())
    log[#log + 1] = "parent"
    assert.same({"parent"}, log)
    await(asyncio.sleep(0))
    assert.same({"parent", "child"}, log)
    assert.is_true(t:done())
  end))

  it("C45 the task's result is the coroutine's return value; awaiting it "
     .. "returns the same", aspec.async({clock = "virtual"}, function()
    local t = asyncio.create_task(async(function(a, b)
      await(asyncio.sleep(0.1))
      return a + b, "two"
    end)(40, 2))
    local x, y = await(t)
    assert.equal(42, x)
    assert.equal("two", y)
    local r1, r2 = t:result()
    assert.equal(42, r1)
    assert.equal("two", r2)
    assert.is_nil(t:exception())
  end))

  it("C45 an error raised by the coroutine becomes the task's exception",
     aspec.async({clock = "virtual"}, function()
    local e = asyncio.ValueError("nope")
    local t = asyncio.create_task(async(function()
      await(asyncio.sleep(0))
      error(e)
    end)())
    local ok, got = pcall(await, t)
    assert.is_false(ok)
    assert.equal(e, got)
    assert.equal(e, t:exception())
    assert.equal(e, raises(asyncio.ValueError, t.result, t))
    assert.is_false(t:cancelled())
  end))

  it("D66 D69 a cancel(msg) issued while the task runs hits its next "
     .. "await: the awaited future is cancelled with msg",
     aspec.async({clock = "virtual"}, function()
    local fut = asyncio.get_running_loop():create_future()
    local t = asyncio.create_task(async(function()
      asyncio.current_task():cancel("bye")
      await(fut)
    end)())
    local err = raises(asyncio.CancelledError, await, t)
    assert.same({"bye"}, {table.unpack(err.args, 1, #err.args)})
    assert.is_true(t:cancelled())
    assert.is_true(fut:cancelled())
    assert.equal("bye",
                 raises(asyncio.CancelledError, fut.result, fut).args[1])
  end))

  it("C45 run_until_complete of a coroutine returns 42 + 1000", function()
    local inner1 = async(function() return 42 end)
    local inner2 = async(function() return 1000 end)
    local outer = async(function()
      return await(inner1()) + await(inner2())
    end)
    assert.equal(1042, loop:run_until_complete(outer()))
  end)

  it("asyncio.create_task with no running loop binds to get_event_loop(), "
     .. "as gather and ensure_future do", function()
    asyncio.set_event_loop(loop)
    finally(function() require("asyncio.core")._unset_event_loop() end)
    local runs = 0
    local t = asyncio.create_task(async(function(x)
      runs = runs + 1
      await(asyncio.sleep(0))
      return x * 2
    end)(21), {name = "top"})
    assert.equal(loop, t:get_loop())
    assert.equal("top", t:get_name())
    assert.equal(0, runs)
    assert.equal(42, loop:run_until_complete(t))
    assert.equal(1, runs)
  end)

  it("C46 create_task with something that is not a coroutine raises "
     .. "TypeError", function()
    local fn = async(function() end)
    for _, bad in ipairs{42, fn, function() end, loop:create_future()} do
      local e = raises(asyncio.TypeError, loop.create_task, loop, bad)
      assert.is_truthy(e.message:find("a coroutine was expected, got", 1,
                                      true))
    end
    assert.equal(0, loop:_counts().tasks)
  end)

  it("C47 a task that awaits itself fails with RuntimeError", function()
    local t
    t = loop:create_task(async(function()
      await(asyncio.sleep(0))
      await(t)
    end)())
    local e = raises(asyncio.RuntimeError, loop.run_until_complete, loop, t)
    assert.is_truthy(e.message:find("Task cannot await on itself", 1, true))
    assert.is_false(t:cancelled())
  end)

  it("C48 awaiting a future of another loop fails with RuntimeError",
     function()
    local other = asyncio.new_event_loop()
    local foreign = other:create_future()
    local t = loop:create_task(async(function() await(foreign) end)())
    local e = raises(asyncio.RuntimeError, loop.run_until_complete, loop, t)
    other:close()
    assert.is_truthy(e.message:find("attached to a different loop", 1, true))
  end)

  it("C49 set_result and set_exception on a task raise RuntimeError; the "
     .. "task still completes with its own value", function()
    local t = loop:create_task(async(function()
      await(asyncio.sleep(0))
      return "own"
    end)())
    local e1 = raises(asyncio.RuntimeError, t.set_result, t, "forced")
    local e2 = raises(asyncio.RuntimeError,
                      t.set_exception, t, asyncio.ValueError("forced"))
    assert.equal("Task does not support set_result operation", e1.message)
    assert.equal("Task does not support set_exception operation", e2.message)
    assert.is_false(t:done())
    assert.equal("own", loop:run_until_complete(t))
  end)

  it("C50 current_task() is the running task, across interleaved tasks",
     function()
    local seen = {}
    local tasks = {}
    local function body(i)
      for step = 1, 3 do
        seen[#seen + 1] = asyncio.current_task() == tasks[i] and i * 10 + step
        await(asyncio.sleep(0))
      end
    end
    tasks[1] = loop:create_task(async(body)(1))
    tasks[2] = loop:create_task(async(body)(2))
    loop:run_until_complete(tasks[2])
    assert.same({11, 21, 12, 22, 13, 23}, seen)
  end)

  it("C50 current_task(loop) is nil once the loop stopped; with no running "
     .. "loop current_task() raises RuntimeError", function()
    loop:run_until_complete(async(function()
      assert.is_not_nil(asyncio.current_task())
    end)())
    assert.is_nil(asyncio.current_task(loop))
    raises(asyncio.RuntimeError, asyncio.current_task)
  end)

  it("C50 current_task() in a plain callback of a running loop is nil",
     function()
    local got = "unset"
    loop:call_soon(function() got = asyncio.current_task() end)
    run_once(loop)
    assert.is_nil(got)
  end)

  it("C51 all_tasks() lists the pending tasks of the running loop only",
     aspec.async({clock = "virtual"}, function()
    local quick = asyncio.create_task(async(function() end)())
    local slow = asyncio.create_task(async(function()
      await(asyncio.sleep(1))
    end)())
    local all = asyncio.all_tasks()
    assert.equal(3, #all)
    assert.is_true(contains(all, asyncio.current_task()))
    assert.is_true(contains(all, quick))
    assert.is_true(contains(all, slow))
    await(asyncio.sleep(0))
    all = asyncio.all_tasks()
    assert.equal(2, #all)
    assert.is_false(contains(all, quick))
    assert.is_true(contains(all, slow))
    await(slow)
    assert.same({asyncio.current_task()}, asyncio.all_tasks())
  end))

  it("C52 default names are Task-<n> with n increasing; name= and "
     .. "set_name(v) store tostring(v)", function()
    local coro = async(function() end)
    local a = loop:create_task(coro())
    local b = loop:create_task(coro())
    local c = loop:create_task(coro(), {name = "worker"})
    local d = loop:create_task(coro(), {name = 12})
    local na = tonumber(a:get_name():match("^Task%-(%d+)$"))
    local nb = tonumber(b:get_name():match("^Task%-(%d+)$"))
    assert.is_not_nil(na)
    assert.is_true(nb > na)
    assert.equal("worker", c:get_name())
    assert.equal("12", d:get_name())
    a:set_name(5)
    assert.equal("5", a:get_name())
    b:set_name("renamed")
    assert.equal("renamed", b:get_name())
    loop:run_until_complete(d)
  end)

  it("C53 a coroutine that returns a future completes the task with that "
     .. "future, not awaited", function()
    local fut = loop:create_future()
    local t = loop:create_task(async(function() return fut end)())
    local got = loop:run_until_complete(t)
    assert.equal(fut, got)
    assert.is_false(fut:done())
  end)

  it("C54 ensure_future(fut) returns it; ensure_future(coro) makes a task",
     aspec.async({clock = "virtual"}, function()
    local fut = asyncio.Future()
    assert.equal(fut, asyncio.ensure_future(fut))
    local t = asyncio.create_task(async(function() end)())
    assert.equal(t, asyncio.ensure_future(t))
    local made = asyncio.ensure_future(async(function() return 7 end)())
    assert.is_true(asyncio.isfuture(made))
    assert.is_not_nil(made.get_coro)
    assert.equal(7, await(made))
    await(t)
  end))

  it("C54 ensure_future of a non-awaitable raises TypeError; of a future "
     .. "with a different explicit loop, ValueError", function()
    raises(asyncio.TypeError, asyncio.ensure_future, 42)
    local other = asyncio.new_event_loop()
    local e2 = raises(asyncio.ValueError,
                      asyncio.ensure_future, loop:create_future(), other)
    other:close()
    assert.is_truthy(e2.message:find("The future belongs to a different loop",
                                     1, true))
  end)

  it("C55 the error stored in a failed task keeps the traceback of where "
     .. "it was raised", function()
    local function fail_here()
      error(asyncio.ValueError("deep"))
    end
    local t = loop:create_task(async(function()
      await(asyncio.sleep(0))
      fail_here()
    end)())
    local e = raises(asyncio.ValueError, loop.run_until_complete, loop, t)
    assert.equal(e, t:exception())
    assert.equal("string", type(e.traceback))
    assert.is_truthy(e.traceback:find("task_spec.lua:%d+: in "))
    assert.is_truthy(e.traceback:find("fail_here", 1, true))
  end)

  it("C55 the traceback of a deep recursion elides its middle", function()
    local function deep(n)
      if n == 0 then error(asyncio.ValueError("deep")) end
      return deep(n - 1) + 1
    end
    local t = loop:create_task(async(function() deep(200) end)())
    local e = raises(asyncio.ValueError, loop.run_until_complete, loop, t)
    local _, lines = e.traceback:gsub("\n", "")
    assert.is_true(lines < 40, e.traceback)
    assert.is_truthy(e.traceback:find("\n\t...\n", 1, true))
    assert.is_truthy(e.traceback:find("'deep'", 1, true))
  end)
end)

describe("Task introspection", function()
  local loop
  h.each_virtual_loop(function(l) loop = l end)

  it("tostring: pending, cancelling, finished with result=, cancelled",
     function()
    local fut = loop:create_future()
    local t = loop:create_task(async(function() return await(fut) end)())
    assert.matches("^<Task pending name='Task%-%d+' coro=<.+>>$", tostring(t))
    run_once(loop)
    assert.matches("^<Task pending name='Task%-%d+' coro=<.+>.*>$", tostring(t))
    fut:set_result("done")
    loop:run_until_complete(t)
    assert.matches("^<Task finished name='Task%-%d+' coro=<.+> "
                   .. "result='done'>$", tostring(t))
    local c = loop:create_task(async(function()
      await(asyncio.sleep(10))
    end)(), {name = "sleeper"})
    run_once(loop)
    c:cancel()
    assert.matches("^<Task cancelling name='sleeper' coro=<.+>>$",
                   tostring(c))
    run_once(loop)
    assert.matches("^<Task cancelled name='sleeper' coro=<.+>>$",
                   tostring(c))
  end)

  it("tostring names the coroutine function and where it runs", function()
    local fut = loop:create_future()
    local worker = async(function() await(fut) end)
    local t = loop:create_task(worker())
    run_once(loop)
    assert.matches("coro=<worker%(%) running at .*task_spec%.lua:%d+>",
                   tostring(t))
    fut:set_result()
    loop:run_until_complete(t)
    assert.matches("coro=<worker%(%) done, defined at .*task_spec%.lua:%d+>",
                   tostring(t))
  end)

  it("tostring names a task's C operation as Python names the method",
     function()
    local q, lock, ev = asyncio.Queue(), asyncio.Lock(), asyncio.Event()
    assert.equal("<coroutine object Queue.get>", tostring(q:get()))
    local tasks = {
      loop:create_task(q:get()), loop:create_task(q:put(1)),
      loop:create_task(q:join()), loop:create_task(ev:wait()),
      loop:create_task(lock:acquire()), loop:create_task(lock:acquire()),
      loop:create_task(asyncio.sleep(10)),
    }
    run_once(loop)
    local names = {}
    for i, t in ipairs(tasks) do
      names[i] = tostring(t):match("coro=<(.-)>")
    end
    assert.same({"Queue.get() running at [C]",
                 "Queue.put() done, defined at [C]",
                 "Queue.join() running at [C]", "Event.wait() running at [C]",
                 "Lock.acquire() done, defined at [C]",
                 "Lock.acquire() running at [C]", "sleep() running at [C]"},
                names)
    for _, t in ipairs(tasks) do t:cancel() end
    tasks[#tasks + 1] = {return_exceptions = true}
    loop:run_until_complete(asyncio.gather(table.unpack(tasks)))
  end)

  it("get_coro and the name stay the task's own once it waited on a "
     .. "lock, a queue and an event (its extra fields share a slot with "
     .. "the Coroutine object)", function()
    local lock, q, ev = asyncio.Lock(), asyncio.Queue(), asyncio.Event()
    local worker = async(function()
      for _ = 1, 3 do
        do local _ <close> = await(lock) end
        await(q:get())
        await(ev:wait())
        ev:clear()
      end
      return "done"
    end)
    local coro = worker()
    local t = loop:create_task(coro, {name = "w"})
    local feeder = async(function()
      for _ = 1, 3 do
        await(lock:acquire())
        await(asyncio.sleep(0))
        lock:release()
        await(asyncio.sleep(0))
        q:put_nowait(1)
        await(asyncio.sleep(0))
        ev:set()
        await(asyncio.sleep(0))
      end
    end)
    loop:run_until_complete(feeder())
    assert.equal("done", loop:run_until_complete(t))
    assert.equal(coro, t:get_coro())
    assert.equal("w", t:get_name())
    assert.matches("coro=<worker%(%) done", tostring(t))
  end)

  it("get_coro returns the Coroutine object the task runs", function()
    local coro = async(function() end)()
    local t = loop:create_task(coro)
    assert.equal(coro, t:get_coro())
    assert.is_true(asyncio.iscoroutine(t:get_coro()))
    loop:run_until_complete(t)
    assert.equal(coro, t:get_coro())
  end)

  it("get_coro stays the Coroutine object after waits on an Event, a "
     .. "Lock and a Queue", function()
    local ev, lock, q = asyncio.Event(), asyncio.Lock(), asyncio.Queue()
    local coro = async(function()
      for _ = 1, 2 do
        await(ev:wait())
        ev:clear()
        await(q:get())
        await(lock:acquire())
        lock:release()
      end
      return "done"
    end)()
    local t = loop:create_task(coro)
    loop:run_until_complete(async(function()
      await(lock:acquire())
      for i = 1, 2 do
        await(asyncio.sleep(0))
        ev:set()
        await(asyncio.sleep(0))
        q:put_nowait(i)
        await(asyncio.sleep(0))
        lock:release()
        await(asyncio.sleep(0))
        if i == 1 then await(lock:acquire()) end
      end
    end)())
    assert.equal("done", loop:run_until_complete(t))
    assert.equal(coro, t:get_coro())
  end)

  it("get_stack lists 'src:line: in ...' frames of a suspended task, its "
     .. "body's first line before it starts, none when done", function()
    local fut = loop:create_future()
    local inner = async(function() return await(fut) end)
    local defined = debug.getinfo(1, "l").currentline + 1
    local outer = async(function()
      return await(inner())
    end)
    local t = loop:create_task(outer())
    -- as Python's new coroutine's frame: where the body is defined, named
    -- after the coroutine
    assert.same({"spec/task_spec.lua:" .. defined .. ": in outer"},
                t:get_stack())
    run_once(loop)
    local stack = t:get_stack()
    assert.is_true(#stack >= 2)
    assert.equal("spec/task_spec.lua:" .. defined + 1 .. ": in outer",
                 stack[1])
    local lua_frames = 0
    for _, frame in ipairs(stack) do
      assert.equal("string", type(frame))
      assert.matches("^.+: in .+$", frame)
      if frame:find("task_spec.lua:%d+: in ") then
        lua_frames = lua_frames + 1
      end
    end
    assert.equal(2, lua_frames)
    fut:set_result(1)
    loop:run_until_complete(t)
    assert.same({}, t:get_stack())
  end)

  it("get_stack{limit =} keeps the newest frames of a suspended task, the "
     .. "oldest of a failed one; a failed task lists its error's frames",
     function()
    local fut = loop:create_future()
    local inner = async(function() return await(fut) end)
    local t = loop:create_task(async(function()
      return await(inner())
    end)())
    run_once(loop)
    local all = t:get_stack()
    assert.equal(#all, #t:get_stack{limit = #all + 5})
    assert.same({}, t:get_stack{limit = 0})
    assert.same({}, t:get_stack{limit = -1})
    assert.same({all[#all - 1], all[#all]}, t:get_stack{limit = 2})
    fut:set_result(1)
    loop:run_until_complete(t)
    assert.same({}, t:get_stack{limit = 1})

    -- failed: the frames of the error's traceback, outermost first
    local deep = async(function() error(asyncio.ValueError("deep")) end)
    local body_line
    local f = loop:create_task(async(function()
      body_line = debug.getinfo(1, "l").currentline + 1
      await(deep())
    end)())
    local ok = pcall(loop.run_until_complete, loop, f)
    assert.is_false(ok)
    local frames = f:get_stack()
    assert.is_true(#frames >= 2)
    assert.matches("task_spec%.lua:" .. body_line .. ": in ", frames[1])
    assert.matches("task_spec%.lua:%d+: in ", frames[#frames])
    assert.same({frames[1]}, f:get_stack{limit = 1})
    -- an error that is not an object: the traceback the task kept
    local g = loop:create_task(async(function() error("plain") end)())
    assert.is_false(pcall(loop.run_until_complete, loop, g))
    assert.is_true(#g:get_stack() >= 1)
    assert.matches("task_spec%.lua:%d+: in ", g:get_stack()[1])
    -- cancelled: no frames
    local c = loop:create_task(async(function() end)())
    c:cancel()
    assert.is_false(pcall(loop.run_until_complete, loop, c))
    assert.same({}, c:get_stack())
    assert.matches("'limit' must be an integer",
                   h.error_of(t.get_stack, t, {limit = "x"}))
  end)

  it("print_stack says 'No stack for' without frames, 'Traceback for' "
     .. "and the error for a failed task; takes {limit =, file =}",
     function()
    local function capture(t, arg)
      local out = {}
      local file = {write = function(_, text) out[#out + 1] = text end}
      if arg then arg.file = file else arg = file end
      t:print_stack(arg)
      assert.equal(1, #out)
      return out[1]
    end
    local defined = debug.getinfo(1, "l").currentline + 1
    local fresh = loop:create_task(async(function() end)())
    assert.equal("Stack for " .. tostring(fresh) .. " (most recent call "
                 .. "last):\n  spec/task_spec.lua:" .. defined .. ": in "
                 .. "function <spec/task_spec.lua:" .. defined .. ">\n",
                 capture(fresh))
    loop:run_until_complete(fresh)
    assert.equal("No stack for " .. tostring(fresh) .. "\n", capture(fresh))

    local f = loop:create_task(async(function()
      error(asyncio.ValueError("bad"))
    end)())
    assert.is_false(pcall(loop.run_until_complete, loop, f))
    local text = capture(f)
    local head = "Traceback for " .. tostring(f)
                 .. " (most recent call last):\n"
    assert.equal(head, text:sub(1, #head))
    assert.matches("\n  [^\n]*task_spec%.lua:%d+: in [^\n]*\n", text)
    assert.equal("ValueError: bad\n", text:sub(-#"ValueError: bad\n"))
    -- limit = 0: no frames, but still the error (as Python's)
    assert.equal("No stack for " .. tostring(f) .. "\nValueError: bad\n",
                 capture(f, {limit = 0}))

    local gate = loop:create_future()
    local s = loop:create_task(async(function() return await(gate) end)())
    run_once(loop)
    local one = capture(s, {limit = 1})
    assert.equal("Stack for " .. tostring(s) .. " (most recent call last):"
                 .. "\n  " .. s:get_stack{limit = 1}[1] .. "\n", one)
    assert.matches("'file' must be a file",
                   h.error_of(s.print_stack, s, {file = 5}))
    gate:set_result(1)
    loop:run_until_complete(s)
  end)

  it("print_stack writes the repr and the frames; long names and a task "
     .. "waiting on a task keep the repr whole", function()
    local fut = loop:create_future()
    local worker = async(function() return await(fut) end)
    local name = ("n"):rep(3000) -- past the C buffer's first block
    local inner = loop:create_task(worker(), {name = name})
    local outer = loop:create_task(async(function()
      return await(inner)
    end)(), {name = name .. "-outer"})
    run_once(loop)
    local written = {}
    local file = {}
    function file:write(text)
      assert.equal(file, self)
      written[#written + 1] = text
    end
    outer:print_stack(file)
    assert.equal(1, #written)
    local head, frames = written[1]:match("^(Stack for .-%):\n)(.*)$")
    local repr = tostring(outer)
    assert.equal("Stack for " .. repr .. " (most recent call last):\n", head)
    local function has(text) assert.truthy(repr:find(text, 1, true), repr) end
    has("<Task pending name='" .. name .. "-outer' coro=<")
    has(" wait_for=<Task pending name='" .. name .. "' coro=<worker() "
        .. "running at ")
    assert.matches("task_spec%.lua:%d+: in ", frames)
    assert.equal(#outer:get_stack(), select(2, frames:gsub("\n", "")))
    fut:set_result(1)
    loop:run_until_complete(outer)
  end)
end)

describe("Task options (Python's keyword arguments)", function()
  local loop
  h.each_virtual_loop(function(l) loop = l end)

  --- The message of the error fn raises, without a "file:line:" prefix.
  local function message_of(fn)
    return h.message(h.error_of(fn))
  end

  it("loop:create_task and Task reject an unknown option, naming the "
     .. "function and the argument, and make nothing", function()
    local coro = async(function() return "ran" end)()
    assert.equal("bad argument #2 to 'create_task' (unknown option 'nmae')",
      message_of(function() loop:create_task(coro, {nmae = "x"}) end))
    assert.equal("bad argument #2 to 'create_task' (unknown option "
                 .. "'context')", message_of(function()
      loop:create_task(coro, {name = "x", context = {}})
    end))
    assert.equal("bad argument #2 to 'create_task' (unknown option '1')",
      message_of(function() loop:create_task(coro, {"x"}) end))
    assert.equal("bad argument #2 to 'Task' (unknown option 'eager_start')",
      message_of(function()
        asyncio.Task(coro, {loop = loop, eager_start = true})
      end))
    assert.same({}, asyncio.all_tasks(loop))
    -- the coroutine was not taken: it still runs, and every documented
    -- option is taken
    local t = loop:create_task(coro, {name = "named"})
    assert.equal("named", t:get_name())
    assert.equal("ran", loop:run_until_complete(t))
    local d = asyncio.Task(asyncio.sleep(0, "direct"),
                           {loop = loop, name = "direct"})
    assert.equal("direct", d:get_name())
    assert.equal("direct", loop:run_until_complete(d))
  end)

  it("asyncio.create_task rejects an unknown option; {name =} is taken",
     aspec.async({clock = "virtual"}, function()
    local coro = asyncio.sleep(0, "ran")
    assert.equal("bad argument #2 to 'create_task' (unknown option 'nmae')",
      message_of(function() asyncio.create_task(coro, {nmae = "x"}) end))
    local t = asyncio.create_task(coro, {name = "named"})
    assert.equal("named", t:get_name())
    assert.equal("ran", await(t))
  end))

  it("get_stack and print_stack reject an unknown option; {limit =} and "
     .. "{limit =, file =} are taken", function()
    local gate = loop:create_future()
    local t = loop:create_task(async(function() return await(gate) end)())
    run_once(loop)
    assert.equal("bad argument #1 to 'get_stack' (unknown option 'limt')",
      message_of(function() t:get_stack{limt = 1} end))
    assert.equal("bad argument #1 to 'get_stack' (unknown option 'file')",
      message_of(function() t:get_stack{limit = 1, file = io.stderr} end))
    assert.equal("bad argument #1 to 'print_stack' (unknown option "
                 .. "'fille')", message_of(function()
      t:print_stack{limit = 1, fille = io.stderr}
    end))
    assert.equal(1, #t:get_stack{limit = 1})
    local out = {}
    t:print_stack{limit = 1,
                  file = {write = function(_, s) out[#out + 1] = s end}}
    assert.equal(1, #out)
    assert.equal("Stack for " .. tostring(t) .. " (most recent call last):"
                 .. "\n  " .. t:get_stack{limit = 1}[1] .. "\n", out[1])
    -- print_stack's own 'limit' error names print_stack
    assert.equal("bad argument #1 to 'print_stack' ('limit' must be an "
                 .. "integer)", message_of(function()
      t:print_stack{limit = "x"}
    end))
    gate:set_result(1)
    loop:run_until_complete(t)
  end)
end)
