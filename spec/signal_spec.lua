-- spec/signal_spec.lua: loop:add_signal_handler / remove_signal_handler
-- (bindings/io/signal.c). The spec sends signals to its own process with
-- kill(1); the handlers run as loop callbacks once the loop polls.
-- (Ctrl-C and asyncio.run are covered by spec/run_spec.lua.)
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local iserror = asyncio.iserror

local raises = dofile("spec/helpers.lua").error_of

local function own_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

-- io.popen, not os.execute: system() blocks SIGINT while it waits.
local function send(sig)
  local p = assert(io.popen("kill -" .. sig .. " " .. own_pid()))
  p:close()
end

--- Awaits fut, failing after 5 s rather than hanging.
local function within(fut)
  return await(asyncio.wait_for(fut, 5))
end

describe("signal handlers", function()
  it("a handler runs with its arguments when the signal arrives",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got = loop:create_future()
    loop:add_signal_handler("SIGUSR1", function(a, b)
      got:set_result({a, b})
    end, "x", 42)
    send("USR1")
    assert.same({"x", 42}, within(got))
    assert.is_true(loop:remove_signal_handler("SIGUSR1"))
  end))

  it("a coroutine function as the handler raises TypeError and is not "
     .. "registered", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local ok, e = pcall(loop.add_signal_handler, loop, "SIGUSR1",
                        asyncio.async(function() end))
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, asyncio.TypeError))
    assert.equal("coroutines cannot be used with add_signal_handler()",
                 e.message)
    assert.is_false(loop:remove_signal_handler("SIGUSR1"))
  end))

  it("signals are named or numbered (asyncio.signals)", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got = loop:create_future()
    assert.equal("integer", math.type(asyncio.signals.SIGUSR2))
    loop:add_signal_handler(asyncio.signals.SIGUSR2, function()
      got:set_result("usr2")
    end)
    send("USR2")
    assert.equal("usr2", within(got))
    assert.is_true(loop:remove_signal_handler("SIGUSR2"))
  end))

  it("the handler runs as a loop callback, outside any task",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got = loop:create_future()
    loop:add_signal_handler("SIGUSR1", function()
      got:set_result({asyncio.current_task(), loop:is_running()})
    end)
    send("USR1")
    local seen = within(got)
    assert.is_nil(seen[1])
    assert.is_true(seen[2])
    loop:remove_signal_handler("SIGUSR1")
  end))

  it("each signal received is one call", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local calls, next_call = 0, loop:create_future()
    loop:add_signal_handler("SIGUSR1", function()
      calls = calls + 1
      next_call:set_result()
    end)
    for i = 1, 3 do
      send("USR1")
      within(next_call)
      assert.equal(i, calls)
      next_call = loop:create_future()
    end
    loop:remove_signal_handler("SIGUSR1")
  end))

  it("adding a handler again replaces the first", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local log, got = {}, loop:create_future()
    loop:add_signal_handler("SIGUSR1", function() log[#log + 1] = "old" end)
    loop:add_signal_handler("SIGUSR1", function()
      log[#log + 1] = "new"
      got:set_result()
    end)
    send("USR1")
    within(got)
    await(asyncio.sleep(0))
    assert.same({"new"}, log)
    loop:remove_signal_handler("SIGUSR1")
  end))

  it("remove_signal_handler returns true, then false; a removed handler "
     .. "is not called", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local calls = 0
    -- SIGWINCH: ignored by default, safe to receive without a handler
    loop:add_signal_handler("SIGWINCH", function() calls = calls + 1 end)
    assert.is_true(loop:remove_signal_handler("SIGWINCH"))
    assert.is_false(loop:remove_signal_handler("SIGWINCH"))
    send("WINCH")
    -- a sentinel handler proves the loop has polled since
    local got = loop:create_future()
    loop:add_signal_handler("SIGUSR1", function() got:set_result() end)
    send("USR1")
    within(got)
    assert.equal(0, calls)
    loop:remove_signal_handler("SIGUSR1")
  end))

  it("a failing handler goes to the exception handler and the loop goes on",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local reported = loop:create_future()
    loop:set_exception_handler(function(_, ctx) reported:set_result(ctx) end)
    loop:add_signal_handler("SIGUSR1", function()
      error(asyncio.ValueError("handler failed"))
    end)
    send("USR1")
    local ctx = within(reported)
    assert.is_true(iserror(ctx.exception, asyncio.ValueError))
    assert.matches("^Exception in callback", ctx.message)
    loop:remove_signal_handler("SIGUSR1")
    loop:set_exception_handler(nil)
  end))

  it("a SIGINT handler takes Ctrl-C over: no KeyboardInterrupt",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got = loop:create_future()
    loop:add_signal_handler("SIGINT", function() got:set_result("caught") end)
    send("INT")
    assert.equal("caught", within(got))
    await(asyncio.sleep(0))
    assert.is_true(loop:remove_signal_handler("SIGINT"))
  end))

  it("uncatchable and unknown signals raise", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local f = function() end
    for _, sig in ipairs{"SIGKILL", "SIGSTOP", asyncio.signals.SIGKILL} do
      assert.is_true(iserror(raises(loop.add_signal_handler, loop, sig, f),
                             asyncio.RuntimeError))
    end
    assert.is_true(iserror(raises(loop.add_signal_handler, loop, "SIGNOPE", f),
                           asyncio.ValueError))
    assert.is_true(iserror(raises(loop.add_signal_handler, loop, 0, f),
                           asyncio.ValueError))
    assert.is_true(iserror(raises(loop.add_signal_handler, loop, 4096, f),
                           asyncio.ValueError))
  end))

  it("closing the loop closes its signal watchers", function()
    local loop = asyncio.new_event_loop()
    local base = loop:_counts().handles
    loop:add_signal_handler("SIGUSR1", function() end)
    loop:add_signal_handler("SIGUSR2", function() end)
    assert.equal(base + 2, loop:_counts().handles)
    loop:close()
    assert.equal(0, loop:_counts().handles)
  end)
end)
