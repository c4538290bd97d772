-- spec/taskgroup_spec.lua: asyncio.TaskGroup (lua/asyncio/taskgroup.lua),
-- semantics section L.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, vspec = h.await_error, h.vspec

local iserror = asyncio.iserror
local CancelledError, RuntimeError, ValueError = asyncio.CancelledError,
  asyncio.RuntimeError, asyncio.ValueError
local sleep, TaskGroup = asyncio.sleep, asyncio.TaskGroup

-- A BaseException that is neither a cancellation nor KeyboardInterrupt.
local MyBaseExc = asyncio.BaseException:subclass("MyBaseExc")

local raises = h.error_of

-- The set of the class names of a group's leaves.
local function error_types(eg)
  local names = {}
  for _, e in ipairs(eg.exceptions) do
    names[getmetatable(e).__name] = true
  end
  return names
end

local value_after = async(function(delay, v)
  await(sleep(delay))
  return v
end)

local raise_after = async(function(delay, cls, msg)
  await(sleep(delay))
  error(cls(msg), 0)
end)

-- Sleeps `delay`; on cancellation bumps counter.n and re-raises.
local counted_sleep = async(function(delay, counter)
  local ok, e = pcall(await, sleep(delay))
  if not ok then
    if iserror(e, CancelledError) then counter.n = counter.n + 1 end
    error(e, 0)
  end
  counter.done = (counter.done or 0) + 1
end)

describe("TaskGroup", function()
  it("errors.format_exception shows each error of the group under a "
     .. "numbered rule, with its traceback (a string error's too)",
     vspec(function()
    local line = debug.getinfo(1, "l").currentline
    local e = await_error(async(function()
      local tg <close> = TaskGroup()
      tg:create_task(async(function() error("plain boom") end)())
      tg:create_task(async(function() error(ValueError("bad value")) end)())
    end)())
    local text = require("asyncio.errors").format_exception(e)
    local lines = {}
    for l in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
    assert.equal("ExceptionGroup: unhandled errors in a TaskGroup "
                 .. "(2 sub-exceptions)", lines[1])
    local function at(n) return ("taskgroup_spec.lua:%d:"):format(line + n) end
    local want = {"  +-+---------------- 1 ----------------",
      "    | spec/" .. at(3) .. " plain boom",
      "    | stack traceback of task ",
      "    +---------------- 2 ----------------",
      "    | ValueError: bad value",
      "    +------------------------------------"}
    local i = 1
    for _, l in ipairs(lines) do -- in this order, other lines between
      if i <= #want and l:sub(1, #want[i]) == want[i] then i = i + 1 end
    end
    assert.equal(#want + 1, i, text)
    -- the string error's traceback is its task's: its line is there
    assert.truthy(text:find("| \t" .. "spec/" .. at(3), 1, true), text)
  end))

  it("L149 leaving the scope waits for every child", vspec(function()
    local loop = asyncio.get_running_loop()
    local t1, t2
    do
      local tg <close> = TaskGroup()
      t1 = tg:create_task(value_after(0.1, 42))
      t2 = tg:create_task(value_after(0.2, 11))
    end
    assert.equal(42, t1:result())
    assert.equal(11, t2:result())
    assert.equal(0.2, loop:time())
  end))

  it("L150 tasks can be added after awaits in the body", vspec(function()
    local t1, t2
    do
      local tg <close> = TaskGroup()
      t1 = tg:create_task(value_after(0.1, 42))
      await(sleep(0.15))
      t2 = tg:create_task(value_after(0.2, 11))
    end
    assert.equal(42, t1:result())
    assert.equal(11, t2:result())
  end))

  it("L150 children can add tasks, recursively", vspec(function()
    local ran = 0
    local coro1 = async(function(d) await(sleep(d)); ran = ran + 1 end)
    local root = async(function(tg)
      await(sleep(0.1))
      tg:create_task(coro1(0.1))
      tg:create_task(coro1(0.2))
    end)
    do
      local tg <close> = TaskGroup()
      tg:create_task(root(tg))
    end
    assert.equal(2, ran)
    local nhydras = 0
    local hydra
    hydra = async(function(tg)
      nhydras = nhydras + 1
      await(sleep(0.01))
      tg:create_task(hydra(tg))
      tg:create_task(hydra(tg))
    end)
    local hercules = async(function()
      while nhydras < 10 do await(sleep(0.015)) end
      error(ValueError("slain"), 0)
    end)
    local e = raises(function()
      local tg <close> = TaskGroup()
      tg:create_task(hydra(tg))
      tg:create_task(hercules())
    end)
    assert.is_true(iserror(e, asyncio.ExceptionGroup))
    assert.same({ValueError = true}, error_types(e))
    assert.is_true(nhydras >= 10)
  end))

  it("L151 a child cancelled explicitly ends cancelled; nothing else "
     .. "happens", vspec(function()
    local t1, t2
    do
      local tg <close> = TaskGroup()
      t1 = tg:create_task(value_after(1, 42))
      await(sleep(0.15))
      t1:cancel()
      t2 = tg:create_task(value_after(0.2, 11))
    end
    assert.is_true(t1:cancelled())
    assert.equal(11, t2:result())
  end))

  it("L152 a child failure cancels the other children and the body; an "
     .. "ExceptionGroup is raised", vspec(function()
    local counter = {n = 0}
    local num, body_cancelled = 0, false
    local t2
    local runner = async(function()
      do
        local tg <close> = TaskGroup()
        tg:create_task(raise_after(0.1, ValueError, "boom"))
        tg:create_task(raise_after(0.1, ValueError, "boom2"))
        t2 = tg:create_task(counted_sleep(5, counter))
        local ok, e = pcall(await, sleep(10))
        if not ok then
          body_cancelled = iserror(e, CancelledError)
          error(e, 0)
        end
      end
      num = num + 10
    end)
    local e = await_error(asyncio.create_task(runner()))
    assert.is_true(iserror(e, asyncio.ExceptionGroup))
    assert.same({ValueError = true}, error_types(e))
    assert.equal(2, #e.exceptions)
    assert.equal(0, num)
    assert.equal(1, counter.n)
    assert.is_true(t2:cancelled())
    assert.is_true(body_cancelled)
  end))

  it("L153 cancelling the parent from outside cancels every child and the "
     .. "body; CancelledError propagates", vspec(function()
    local counter = {n = 0}
    local runner = async(function()
      local tg <close> = TaskGroup()
      for _ = 1, 5 do tg:create_task(counted_sleep(5, counter)) end
      local ok, e = pcall(await, sleep(10))
      if not ok and iserror(e, CancelledError) then
        counter.n = counter.n + 10
      end
      if not ok then error(e, 0) end
    end)
    local r = asyncio.create_task(runner())
    await(sleep(0.1))
    assert.is_false(r:done())
    r:cancel("test")
    local e = await_error(r)
    assert.is_true(iserror(e, CancelledError))
    assert.same({"test"}, {table.unpack(e.args, 1, 1)})
    assert.equal(15, counter.n)
    assert.is_true(r:cancelled())
  end))

  it("L153 an outside cancel while the scope waits for its children",
     vspec(function()
    local counter = {n = 0}
    local runner = async(function()
      local tg <close> = TaskGroup()
      for _ = 1, 5 do tg:create_task(counted_sleep(5, counter)) end
    end)
    local r = asyncio.create_task(runner())
    await(sleep(0.1))
    r:cancel("test")
    local e = await_error(r)
    assert.is_true(iserror(e, CancelledError))
    assert.equal("test", e.args[1])
    assert.equal(5, counter.n)
  end))

  it("L153 an outside cancel wins over child errors still to come",
     vspec(function()
    local runner = async(function()
      local tg <close> = TaskGroup()
      for _ = 1, 5 do tg:create_task(raise_after(0.1, ValueError)) end
      await(sleep(10))
    end)
    local r = asyncio.create_task(runner())
    await(sleep(0.05))
    r:cancel("test")
    local e = await_error(r)
    assert.is_true(iserror(e, CancelledError))
    assert.equal("test", e.args[1])
  end))

  it("L154 an error raised by the body cancels the children and is in the "
     .. "group", vspec(function()
    for _, pause in ipairs{0.1, false} do
      local t1, t2
      local e = raises(function()
        local tg <close> = TaskGroup()
        t1 = tg:create_task(value_after(1, 42))
        t2 = tg:create_task(value_after(2, 11))
        if pause then await(sleep(pause)) end
        error(ValueError("body"), 0)
      end)
      assert.is_true(iserror(e, asyncio.ExceptionGroup))
      assert.same({ValueError = true}, error_types(e))
      assert.equal("body", e.exceptions[1].message)
      assert.is_true(t1:cancelled())
      assert.is_true(t2:cancelled())
    end
  end))

  it("L154 a body failing with a plain Lua error puts it in the group",
     vspec(function()
    local e = raises(function()
      local tg <close> = TaskGroup()
      tg:create_task(value_after(1, 42))
      error("just a string", 0)
    end)
    assert.is_true(iserror(e, asyncio.ExceptionGroup))
    assert.same({"just a string"}, e.exceptions)
  end))

  it("L155 a body turning its CancelledError into another error yields an "
     .. "ExceptionGroup with it", vspec(function()
    local num = 0
    local runner = async(function()
      local tg <close> = TaskGroup()
      local ok = pcall(await, sleep(10))
      if not ok then
        num = num + 10
        error(RuntimeError("mine"), 0)
      end
    end)
    local r = asyncio.create_task(runner())
    await(sleep(0.1))
    r:cancel()
    local e = await_error(r)
    assert.is_true(iserror(e, asyncio.ExceptionGroup))
    assert.same({RuntimeError = true}, error_types(e))
    assert.equal(10, num)
  end))

  it("L156 errors from body cleanup and from children form one group",
     vspec(function()
    local nested = async(function()
      pcall(await, sleep(10))
      error(RuntimeError("cleanup"), 0)
    end)
    local e = raises(function()
      local tg <close> = TaskGroup()
      tg:create_task(raise_after(0.1, ValueError))
      await(nested())
    end)
    assert.is_true(iserror(e, asyncio.ExceptionGroup))
    assert.same({RuntimeError = true, ValueError = true}, error_types(e))
  end))

  it("L157 a failing inner group reaches the outer group as a nested group",
     vspec(function()
    local e = raises(function()
      local g1 <close> = TaskGroup()
      g1:create_task(raise_after(10, ValueError))
      local g2 <close> = TaskGroup()
      g2:create_task(raise_after(0.1, ValueError))
    end)
    assert.is_true(iserror(e, asyncio.ExceptionGroup))
    assert.same({ExceptionGroup = true}, error_types(e))
    assert.same({ValueError = true}, error_types(e.exceptions[1]))
  end))

  it("L157 a failing outer child cancels the inner group, whose "
     .. "cancellation is absorbed", vspec(function()
    local e = raises(function()
      local g1 <close> = TaskGroup()
      g1:create_task(raise_after(0.1, ValueError))
      local g2 <close> = TaskGroup()
      g2:create_task(raise_after(10, ValueError))
    end)
    assert.is_true(iserror(e, asyncio.ExceptionGroup))
    assert.same({ValueError = true}, error_types(e))
    assert.equal(1, #e.exceptions)
  end))

  it("L158 KeyboardInterrupt from the body is raised bare", vspec(function()
    local nested = async(function()
      pcall(await, sleep(10))
      error(asyncio.KeyboardInterrupt(), 0)
    end)
    local e = raises(function()
      local tg <close> = TaskGroup()
      tg:create_task(raise_after(0.1, ValueError))
      await(nested())
    end)
    assert.equal(asyncio.KeyboardInterrupt, getmetatable(e))
  end))

  it("L158 other BaseException errors go into a BaseExceptionGroup",
     vspec(function()
    local nested = async(function()
      pcall(await, sleep(10))
      error(MyBaseExc(), 0)
    end)
    local e = raises(function()
      local tg <close> = TaskGroup()
      tg:create_task(raise_after(0.1, ValueError))
      await(nested())
    end)
    assert.equal(asyncio.BaseExceptionGroup, getmetatable(e))
    assert.is_false(iserror(e, asyncio.Exception))
    assert.same({MyBaseExc = true, ValueError = true}, error_types(e))
    local e2 = raises(function()
      local tg <close> = TaskGroup()
      tg:create_task(raise_after(0.1, MyBaseExc))
      local ok = pcall(await, sleep(10))
      if not ok then error(asyncio.TypeError("cleanup"), 0) end
    end)
    assert.equal(asyncio.BaseExceptionGroup, getmetatable(e2))
    assert.same({MyBaseExc = true, TypeError = true}, error_types(e2))
  end))

  it("L159 create_task on a group not entered raises RuntimeError; the "
     .. "coroutine is disposed of", vspec(function()
    local loop = asyncio.get_running_loop()
    local tg
    loop:call_soon(function() tg = TaskGroup() end)
    await(sleep(0))
    local coro = sleep(0)
    local e = raises(tg.create_task, tg, coro)
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("has not been entered", e.message)
    assert.matches("cannot reuse", raises(await, coro).message)
  end))

  it("L159 create_task on a finished group raises RuntimeError",
     vspec(function()
    local group
    do
      local tg <close> = TaskGroup()
      group = tg
    end
    local coro = sleep(0)
    local e = raises(group.create_task, group, coro)
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("is finished", e.message)
    assert.matches("cannot reuse", raises(await, coro).message)
  end))

  it("L159 create_task while shutting down after a failure raises "
     .. "RuntimeError", vspec(function()
    local refused
    local coro1 = async(function()
      await(sleep(0.001))
      error(ValueError("first"), 0)
    end)
    local coro2 = async(function(g)
      local ok, e = pcall(await, sleep(1))
      if not ok then
        local c = coro1()
        local ok2, e2 = pcall(g.create_task, g, c)
        refused = not ok2 and iserror(e2, RuntimeError) and e2.message
        error(e, 0)
      end
    end)
    local e = raises(function()
      local g <close> = TaskGroup()
      g:create_task(coro1())
      g:create_task(coro2(g))
    end)
    assert.same({ValueError = true}, error_types(e))
    assert.matches("is shutting down", refused)
  end))

  it("L160 entering a group twice raises RuntimeError", vspec(function()
    local e
    do
      local tg <close> = TaskGroup()
      e = raises(await, tg)
    end
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("has already been entered", e.message)
    local group
    do
      local tg <close> = TaskGroup()
      group = tg
    end
    e = raises(await, group)
    assert.matches("has already been entered", e.message)
  end))

  it("L160 entering outside a task raises RuntimeError naming the parent "
     .. "task", vspec(function()
    local loop = asyncio.get_running_loop()
    local tg, ok, e
    loop:call_soon(function()
      tg = TaskGroup()
      ok, e = pcall(getmetatable(tg).__await, tg)
    end)
    await(sleep(0))
    assert.is_false(ok)
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("parent task", e.message)
    local coro = sleep(0)
    assert.matches("has not been entered",
                   raises(tg.create_task, tg, coro).message)
  end))

  it("L160 a group made outside a task is entered with await", function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    asyncio.set_event_loop(loop)
    local group = TaskGroup()
    assert.equal("<TaskGroup>", tostring(group))
    local main = async(function()
      local tg <close> = await(group)
      assert.equal(group, tg)
      tg:create_task(sleep(1))
    end)
    loop:run_until_complete(main())
    assert.equal(1, loop:time())
    require("asyncio.core")._unset_event_loop()
    loop:close()
  end)

  it("L161 after a group failure is caught, cancelling() is 0 and no stray "
     .. "CancelledError follows", vspec(function()
    local e = raises(function()
      local tg <close> = TaskGroup()
      tg:create_task(raise_after(0, RuntimeError))
    end)
    assert.same({RuntimeError = true}, error_types(e))
    assert.equal(0, asyncio.current_task():cancelling())
    await(sleep(0))
    await(sleep(0.1))
  end))

  it("L161 the same when the body was interrupted by the failure",
     vspec(function()
    local e = raises(function()
      local tg <close> = TaskGroup()
      tg:create_task(raise_after(0.1, RuntimeError))
      await(sleep(10))
    end)
    assert.same({RuntimeError = true}, error_types(e))
    assert.equal(0, asyncio.current_task():cancelling())
    assert.equal("still here", await(sleep(1, "still here")))
  end))

  it("L162 an outside cancel and a child error: the group error is raised "
     .. "and the cancel survives", vspec(function()
    local event = asyncio.Future()
    local log = {}
    local raise_error = async(function()
      event:set_result()
      await(sleep(0))
      error(RuntimeError("child"), 0)
    end)
    local inner = async(function()
      local e = raises(function()
        local tg <close> = TaskGroup()
        tg:create_task(raise_error())
        await(sleep(1))
        log[#log + 1] = "sleep in group not cancelled"
      end)
      assert.same({RuntimeError = true}, error_types(e))
      log[#log + 1] = "cancelling " .. asyncio.current_task():cancelling()
      await(sleep(1))
      log[#log + 1] = "sleep after group not cancelled"
    end)
    local t = asyncio.create_task(inner())
    await(event)
    assert.equal(0, t:cancelling())
    t:cancel()
    assert.equal(1, t:cancelling())
    assert.is_true(iserror(await_error(t), CancelledError))
    assert.is_true(t:cancelled())
    assert.same({"cancelling 1"}, log)
  end))

  it("L163 nested groups both failing: cancelling() is 1 inside the outer "
     .. "group, 0 after it", vspec(function()
    local levels = {}
    local e = raises(function()
      local outer_tg <close> = TaskGroup()
      local inner_e = raises(function()
        local inner_tg <close> = TaskGroup()
        inner_tg:create_task(raise_after(0, RuntimeError))
        outer_tg:create_task(raise_after(0, ValueError))
      end)
      assert.same({RuntimeError = true}, error_types(inner_e))
      levels[#levels + 1] = asyncio.current_task():cancelling()
    end)
    assert.same({ValueError = true}, error_types(e))
    levels[#levels + 1] = asyncio.current_task():cancelling()
    assert.same({1, 0}, levels)
  end))

  it("L164 a child spawning a sibling that fails at once is cancelled at "
     .. "its next awaits", vspec(function()
    local ran = false
    local e = raises(function()
      local tg <close> = TaskGroup()
      local third = async(function()
        error(ValueError("third task failed"), 0)
      end)
      local second = async(function()
        tg:create_task(third())
        local ok, err = pcall(function()
          await(sleep(0))
          await(sleep(0))
        end)
        assert.is_false(ok)
        assert.is_true(iserror(err, CancelledError))
        ran = true
      end)
      tg:create_task(second())
    end)
    assert.is_true(ran)
    assert.same({ValueError = true}, error_types(e))
    assert.equal("third task failed", e.exceptions[1].message)
  end))

  it("L165 create_task passes the name through", vspec(function()
    local tg <close> = TaskGroup()
    local t = tg:create_task(sleep(0), {name = "yolo"})
    assert.equal("yolo", t:get_name())
  end))

  it("L165 finished tasks leave the group's bookkeeping", vspec(function()
    local counts = {}
    do
      local g <close> = TaskGroup()
      for count = 0, 9 do
        await(sleep(0.1))
        g:create_task(sleep(0.3))
        if count == 5 then
          counts[#counts + 1] = tonumber(tostring(g):match("tasks=(%d+)"))
        end
      end
      await(sleep(1.35))
      counts[#counts + 1] = tostring(g)
    end
    assert.is_true(counts[1] < 5)
    assert.equal("<TaskGroup entered>", counts[2])
  end))

  it("L works with Coroutine objects wrapping __await values and Futures",
     vspec(function()
    local f = asyncio.Future()
    local obj = setmetatable({}, {__await = function()
      return sleep(0.1, "obj")
    end})
    local t1, t2
    do
      local tg <close> = TaskGroup()
      t1 = tg:create_task(async(function() return await(obj) end)())
      t2 = tg:create_task(async(function() return await(f) end)())
      asyncio.get_running_loop():call_later(0.2, function()
        f:set_result("fut")
      end)
    end
    assert.equal("obj", t1:result())
    assert.equal("fut", t2:result())
  end))

  it("create_task rejects an unknown option before anything, the group "
     .. "going on; {name =} is taken", vspec(function()
    local e, t
    local coro = value_after(0.1, "ran")
    do
      local tg <close> = TaskGroup()
      e = raises(function() tg:create_task(coro, {nmae = "x"}) end)
      t = tg:create_task(coro, {name = "named"})
    end
    assert.equal("bad argument #2 to 'create_task' (unknown option 'nmae')",
                 h.message(e))
    assert.equal("named", t:get_name())
    assert.equal("ran", t:result())
  end))

  it("create_task checks its options before whether the group was "
     .. "entered", function()
    local tg = TaskGroup() -- outside a task: not entered
    local coro = value_after(0, 1)
    local e = raises(function() tg:create_task(coro, {context = {}}) end)
    assert.equal("bad argument #2 to 'create_task' (unknown option "
                 .. "'context')", h.message(e))
    e = raises(function() tg:create_task(coro, {name = "x"}) end)
    assert.is_true(iserror(e, RuntimeError))
    assert.matches("has not been entered", e.message)
  end)

  it("a group never exited (not held in <close>) is reported when its "
     .. "task ends, with its children's errors; one exited is not",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local ctxs = {}
    loop:set_exception_handler(function(_, ctx) ctxs[#ctxs + 1] = ctx end)
    local forgotten = asyncio.create_task(async(function()
      local tg = TaskGroup() -- entered, never exited
      tg:create_task(raise_after(0, ValueError, "child"))
      await(sleep(1))
      return "not reached: the child's failure cancels the parent"
    end)())
    local e = await_error(forgotten)
    assert.is_true(iserror(e, CancelledError))
    await(sleep(0))
    assert.equal(1, #ctxs)
    assert.matches("^TaskGroup <TaskGroup.*> was never exited: hold it in "
                   .. "a <close> variable$", ctxs[1].message)
    assert.equal(forgotten, ctxs[1].task)
    local eg = ctxs[1].exception
    assert.is_true(iserror(eg, asyncio.ExceptionGroup))
    assert.equal(1, #eg.exceptions)
    assert.is_true(iserror(eg.exceptions[1], ValueError))
    -- exited: no report
    local held = asyncio.create_task(async(function()
      for _ = 1, 3 do
        local tg <close> = TaskGroup()
        tg:create_task(value_after(0, 1))
      end
      return "done"
    end)())
    assert.equal("done", await(held))
    await(sleep(0))
    assert.equal(1, #ctxs)
  end))
end)
