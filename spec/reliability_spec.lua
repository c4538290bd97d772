-- spec/reliability_spec.lua: what a hostile caller found (the reliability
-- issue): bad options that crashed, argument checks that failed inside
-- the library, and the documented place of the "bad yield" error.
local asyncio = require "asyncio"
local h = dofile("spec/helpers.lua")
local async, await = asyncio.async, asyncio.await

local function noop() end

describe("reliability", function()
  describe("create_task with options that are not a table", function()
    -- each returned the value instead of a Task; the process then
    -- segfaulted in the reporter of the task it lost
    for _, bad in ipairs{5, "name", noop, true} do
      local what = type(bad)

      it("asyncio.create_task raises a bad argument (" .. what .. ")",
         h.vspec(function()
        local coro = asyncio.sleep(0)
        local err = h.error_of(asyncio.create_task, coro, bad)
        assert.matches("bad argument #2 to '.*create_task' %(table "
                       .. "expected, got " .. what .. "%)", err)
        await(coro) -- not consumed by the failed call
      end))

      it("loop:create_task raises a bad argument (" .. what .. ")",
         function()
        local loop = asyncio.new_event_loop{clock = "virtual"}
        local coro = asyncio.sleep(0)
        local err = h.error_of(function() loop:create_task(coro, bad) end)
        assert.matches("bad argument #2 to 'create_task' %(table "
                       .. "expected, got " .. what .. "%)", err)
        assert.same({}, {loop:run_until_complete(coro)})
        loop:close()
      end)

      it("TaskGroup:create_task raises a bad argument (" .. what .. ")",
         h.vspec(function()
        local err, coro
        do
          local tg <close> = asyncio.TaskGroup()
          coro = asyncio.sleep(0)
          err = h.error_of(function() tg:create_task(coro, bad) end)
          tg:create_task(coro)
        end
        assert.matches("bad argument #2 to 'create_task' %(table "
                       .. "expected, got " .. what .. "%)", err)
      end))
    end

    it("a table still names the task", h.vspec(function()
      local t = asyncio.create_task(asyncio.sleep(0), {name = "n1"})
      assert.equal("n1", t:get_name())
      await(t)
    end))
  end)

  it("Exception:subclass wants a string name and a function init",
     function()
    local err = h.error_of(asyncio.Exception.subclass, asyncio.Exception, 5)
    assert.matches("bad argument #1 to 'subclass' %(string expected, "
                   .. "got number%)", err)
    err = h.error_of(function() asyncio.Exception:subclass("E", 7) end)
    assert.matches("bad argument #2 to 'subclass' %(function expected, "
                   .. "got number%)", err)
    local E = asyncio.Exception:subclass("MyError")
    assert.equal("MyError: x", tostring(E("x")))
  end)

  describe("a bare coroutine.yield in a task", function()
    it("raises where the yield returns: a pcall around the code that "
       .. "yields catches it", h.vspec(function()
      local t = h.spawn(function()
        local ok, err = pcall(function() coroutine.yield(42) end)
        return ok, tostring(err)
      end)
      assert.same({false, "RuntimeError: Task got bad yield: 42"},
                  {await(t)})
    end))

    it("a pcall of coroutine.yield itself does not catch it (documented)",
       h.vspec(function()
      local reached = false
      local t = h.spawn(function()
        pcall(coroutine.yield, 42)
        reached = true
      end)
      local err = h.await_error(t)
      assert.equal("RuntimeError: Task got bad yield: 42", tostring(err))
      assert.is_false(reached)
    end))
  end)

  describe("argument checks that failed inside the library", function()
    local function bad(pattern, fn, ...)
      local err = h.error_of(fn, ...)
      assert.is_string(err)
      assert.matches(pattern, err)
    end

    it("Barrier refuses NaN and infinite sizes; Queue takes them as "
       .. "Python's inf and nan (unbounded)", function()
      for _, n in ipairs{0 / 0, math.huge, -math.huge} do
        local q = asyncio.Queue(n)
        q:put_nowait(1)
        assert.is_false(q:full())
        bad("bad argument #1 to 'Barrier' %(number is", asyncio.Barrier, n)
      end
      assert.equal(3, asyncio.Queue(3).maxsize)
    end)

    it("ExceptionGroup and IncompleteReadError check their arguments",
       function()
      bad("bad argument #2 to 'ExceptionGroup' %(table expected, got "
          .. "number%)", asyncio.ExceptionGroup, "msg", 5)
      bad("bad argument #2 to 'BaseExceptionGroup' %(table expected, got "
          .. "string%)", asyncio.BaseExceptionGroup, "msg", "e")
      bad("bad argument #1 to 'IncompleteReadError' %(string expected",
          asyncio.IncompleteReadError, 5, 10)
    end)

    it("Condition methods check self and wait_for its predicate",
       h.vspec(function()
      local cond = asyncio.Condition()
      bad("bad argument #1 to 'notify' %(asyncio.Condition expected, got "
          .. "table%)", cond.notify, {})
      bad("bad argument #2 to 'wait_for' %(function expected, got number%)",
          await, cond:wait_for(5))
    end))

    it("timeout, timeout_at and Timeout methods check their arguments",
       h.vspec(function()
      bad("bad argument #1 to 'timeout' %(number expected, got string%)",
          asyncio.timeout, "str")
      bad("bad argument #1 to 'timeout_at' %(number expected, got table%)",
          asyncio.timeout_at, {})
      local cm <close> = asyncio.timeout(10)
      bad("bad argument #1 to 'when' %(asyncio.Timeout expected",
          cm.when, 5)
      bad("bad argument #2 to 'reschedule' %(number expected, got string%)",
          cm.reschedule, cm, "soon")
    end))

    it("wait, as_completed, wait_for and open_udp refuse options that are "
       .. "not tables", h.vspec(function()
      local fut = asyncio.get_running_loop():create_future()
      -- wait's options are checked when the call is made (the Python
      -- keyword arguments), its other arguments when awaited
      bad("bad argument #2 to 'wait' %(table expected, got number%)",
          asyncio.wait, {fut}, 5)
      bad("bad argument #2 to 'as_completed' %(table expected, got string%)",
          asyncio.as_completed, {}, "x")
      bad("bad argument #2 to 'wait_for' %(number expected, got string%)",
          await, asyncio.wait_for(fut, "1"))
      bad("bad argument #3 to 'open_udp' %(table expected, got number%)",
          await, asyncio.open_udp("127.0.0.1", 0, 7))
    end))

    it("Runner methods check self; print_stack wants a file",
       h.vspec(function()
      local runner = asyncio.Runner()
      bad("bad argument #1 to 'get_loop' %(asyncio.Runner expected",
          runner.get_loop, {})
      local t = h.spawn(function() await(asyncio.sleep(0)) end)
      bad("bad argument #1 to 'print_stack' %(file expected, got number%)",
          function() t:print_stack(5) end)
      await(t)
      runner:close()
    end))
  end)

  describe("CPython behaviours", function()
    it("gather(coro, not_awaitable) raises TypeError; the task it made "
       .. "for coro runs on and nothing reaches the handler (CPython issue "
       .. "46672)", h.vspec(function()
      local loop = asyncio.get_running_loop()
      local reports = 0
      loop:set_exception_handler(function() reports = reports + 1 end)
      local ran = false
      local err = h.error_of(asyncio.gather, async(function()
        await(asyncio.sleep(0.1))
        ran = true
        error(asyncio.ValueError("late"))
      end)(), 42)
      assert.is_true(asyncio.iserror(err, asyncio.TypeError), tostring(err))
      await(asyncio.sleep(0.2))
      collectgarbage()
      assert.is_true(ran)
      assert.equal(0, reports)
    end))

    it("remove_signal_handler(SIGKILL) returns false", function()
      local loop = asyncio.new_event_loop()
      assert.is_false(loop:remove_signal_handler("SIGKILL"))
      assert.is_false(loop:remove_signal_handler(9))
      loop:close()
    end)
  end)
end)
