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
end)
