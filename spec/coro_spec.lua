-- spec/coro_spec.lua: coroutine functions, Coroutine objects and await
-- (bindings/core/coro.c), DESIGN "Coroutines and await".
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local proc = dofile("spec/fixtures/proc.lua")
local h = dofile("spec/helpers.lua")
local raises = h.raises
local async, await = asyncio.async, asyncio.await

local iserror, CancelledError = asyncio.iserror, asyncio.CancelledError

-- Runs `luaio -e code` and returns what it wrote on stderr.
local function luaio_stderr(code)
  return proc.run{proc.luaio, "-e", code}.stderr
end

describe("coroutine functions", function()
  it("async(fn) returns a coroutine function whose calls make Coroutine "
     .. "objects", function()
    local plain = function() end
    local f = async(plain)
    assert.is_true(asyncio.iscoroutinefunction(f))
    assert.is_false(asyncio.iscoroutinefunction(plain))
    assert.is_false(asyncio.iscoroutinefunction(42))
    assert.equal(f, async(f))
    local c = f()
    assert.is_true(asyncio.iscoroutine(c))
    assert.is_false(asyncio.iscoroutine(f))
    assert.is_false(asyncio.iscoroutine(plain))
    assert.is_false(asyncio.iscoroutine({}))
    c:close()
  end)

  it("calling a coroutine function runs nothing until it is awaited",
     aspec.async({clock = "virtual"}, function()
    local ran = 0
    local c = async(function(x)
      ran = ran + 1
      return x * 2
    end)(21)
    await(asyncio.sleep(0))
    assert.equal(0, ran)
    assert.equal(42, await(c))
    assert.equal(1, ran)
  end))

  it("calling a coroutine function needs no loop", function()
    require("asyncio.core")._unset_event_loop()
    local ran = 0
    local c = async(function() ran = ran + 1 end)()
    assert.is_true(asyncio.iscoroutine(c))
    assert.equal(0, ran)
    c:close()
  end)
end)

describe("await", function()
  it("a Coroutine object runs inline: no iteration passes, the caller "
     .. "sees its values", aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local me = asyncio.current_task()
    local ran, inside = 0, nil
    loop:call_soon(function() ran = ran + 1 end)
    local child = async(function(a, b)
      inside = asyncio.current_task()
      return a, nil, b
    end)
    local got = table.pack(await(child("x", "y")))
    assert.same({"x", nil, "y", n = 3}, got)
    assert.equal(me, inside)
    assert.equal(0, ran)
    assert.equal(0, select("#", await(async(function() end)())))
  end))

  it("a Coroutine object that suspends resumes its awaiting caller with "
     .. "its values", aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local child = async(function()
      await(asyncio.sleep(1))
      return 1, 2, 3
    end)
    local a, b, c = await(child())
    assert.same({1, 2, 3}, {a, b, c})
    assert.equal(1, loop:time())
  end))

  it("an error raised by an awaited Coroutine reaches the awaiter",
     aspec.async({clock = "virtual"}, function()
    local e = asyncio.ValueError("inner")
    local ok, got = pcall(await, async(function() error(e) end)())
    assert.is_false(ok)
    assert.equal(e, got)
  end))

  it("a Coroutine object can be awaited once; a second await raises "
     .. "RuntimeError", aspec.async({clock = "virtual"}, function()
    local c = async(function() return 1 end)()
    assert.equal(1, await(c))
    raises(asyncio.RuntimeError, await, c)
    raises(asyncio.RuntimeError, asyncio.create_task, c)
  end))

  it("a Coroutine object wrapped in a task cannot be awaited or wrapped "
     .. "again", aspec.async({clock = "virtual"}, function()
    local runs = 0
    local c = async(function() runs = runs + 1 end)()
    local t = asyncio.create_task(c)
    raises(asyncio.RuntimeError, await, c)
    raises(asyncio.RuntimeError, asyncio.create_task, c)
    await(t)
    assert.equal(1, runs)
  end))

  it("awaiting a done future or task does not yield",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local t = asyncio.create_task(async(function() return "t" end)())
    await(t)
    local fut = loop:create_future()
    fut:set_result("f")
    local ran = 0
    loop:call_soon(function() ran = ran + 1 end)
    assert.equal("t", await(t))
    assert.equal("f", await(fut))
    assert.equal(0, ran)
    await(asyncio.sleep(0))
    assert.equal(1, ran)
  end))

  it("__await: a value whose metatable's __await returns a Future is "
     .. "awaitable", aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local calls = 0
    local fut = loop:create_future()
    local mt = {__await = function(self)
      calls = calls + 1
      return self.fut
    end}
    local obj = setmetatable({fut = fut}, mt)
    loop:call_later(1, function() fut:set_result("via __await", 2) end)
    local a, b = await(obj)
    assert.equal("via __await", a)
    assert.equal(2, b)
    assert.equal(1, calls)
    assert.equal(1, loop:time())
  end))

  it("__await may return a Coroutine object or another awaitable",
     aspec.async({clock = "virtual"}, function()
    local inner = setmetatable({}, {__await = function()
      return async(function() return "deep" end)()
    end})
    local outer = setmetatable({}, {__await = function() return inner end})
    assert.equal("deep", await(outer))
  end))

  it("await of a non-awaitable raises TypeError",
     aspec.async({clock = "virtual"}, function()
    for _, v in ipairs{42, "str", {}, function() end, true} do
      local e = raises(asyncio.TypeError, await, v)
      assert.is_truthy(e.message:find("await", 1, true))
    end
    raises(asyncio.TypeError, await, nil)
  end))

  it("await outside a task raises an error naming await", function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    local fut = loop:create_future()
    local e = raises(asyncio.RuntimeError, await, fut)
    assert.is_truthy(tostring(e):find("await", 1, true))
    local in_callback
    loop:call_soon(function()
      local c = asyncio.sleep(0)
      in_callback = select(2, pcall(await, c))
      c:close()
    end)
    loop:stop()
    loop:run_forever()
    assert.is_true(iserror(in_callback, asyncio.RuntimeError))
    assert.is_truthy(tostring(in_callback):find("await", 1, true))
    loop:close()
    assert.same(0, loop:_counts().handles)
  end)

  it("await inside a user's coroutine.wrap/create within a task raises a "
     .. "clear error", aspec.async({clock = "virtual"}, function()
    local pending = asyncio.get_running_loop():create_future()
    local wrapped = coroutine.wrap(function() return await(pending) end)
    local e1 = raises(asyncio.RuntimeError, wrapped)
    assert.is_truthy(tostring(e1):find("await", 1, true))
    local co = coroutine.create(function() return await(pending) end)
    local ok, e2 = coroutine.resume(co)
    assert.is_false(ok)
    assert.is_true(iserror(e2, asyncio.RuntimeError))
    assert.equal("dead", coroutine.status(co))
    pending:cancel()
  end))

  it("a user's coroutine inside a task still works when it does not await",
     aspec.async({clock = "virtual"}, function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do coroutine.yield(i) end
    end)
    assert.same({1, 2, 3}, {gen(), gen(), gen()})
    await(asyncio.sleep(0))
  end))

  it("a bare coroutine.yield in a task raises 'Task got bad yield' there",
     function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    local after = 0
    local t = loop:create_task(async(function()
      coroutine.yield("oops")
      after = after + 1
    end)())
    local e = raises(asyncio.RuntimeError, loop.run_until_complete, loop, t)
    assert.is_truthy(e.message:find("Task got bad yield", 1, true))
    assert.equal(0, after)
    assert.equal(e, t:exception())
    loop:close()
    assert.same(0, loop:_counts().handles)
  end)

  it("a bad yield is catchable by pcall around a Lua function that yields",
     aspec.async({clock = "virtual"}, function()
    local ok, e = pcall(function() coroutine.yield() end)
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.RuntimeError))
    assert.is_truthy(e.message:find("Task got bad yield", 1, true))
    assert.equal("after", await(asyncio.sleep(0, "after")))
  end))

  it("asyncio.pcall around await catches an ordinary error",
     aspec.async({clock = "virtual"}, function()
    local e = asyncio.ValueError("inner")
    local ok, got = asyncio.pcall(await, async(function()
      await(asyncio.sleep(0))
      error(e)
    end)())
    assert.is_false(ok)
    assert.equal(e, got)
    assert.same({true, "v"}, {asyncio.pcall(await, asyncio.sleep(0, "v"))})
  end))

  it("asyncio.pcall around await does not catch CancelledError",
     function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    local reached = 0
    local t = loop:create_task(async(function()
      asyncio.pcall(await, asyncio.sleep(10))
      reached = reached + 1
    end)())
    loop:call_later(1, function() t:cancel() end)
    raises(CancelledError, loop.run_until_complete, loop, t)
    assert.equal(0, reached)
    assert.is_true(t:cancelled())
    assert.equal(1, loop:time())
    loop:close()
    assert.same(0, loop:_counts().handles)
  end)

  it("asyncio.iserror(e) without a class tells error objects from other "
     .. "values", function()
    assert.is_true(iserror(asyncio.ValueError("x")))
    assert.is_true(iserror(CancelledError()))
    assert.is_false(iserror("a string"))
    assert.is_false(iserror({}))
    assert.is_false(iserror(asyncio.ValueError))
  end)

  it("plain pcall around await catches CancelledError (except "
     .. "BaseException)", function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    local caught
    local t = loop:create_task(async(function()
      local ok, e = pcall(await, asyncio.sleep(10))
      caught = e
      return ok, "went on"
    end)())
    loop:stop()
    loop:run_forever()
    t:cancel("why")
    local ok, went = loop:run_until_complete(t)
    assert.is_false(ok)
    assert.equal("went on", went)
    assert.is_true(iserror(caught, CancelledError))
    assert.equal("why", caught.args[1])
    assert.is_false(t:cancelled())
    loop:close()
    assert.same(0, loop:_counts().handles)
  end)
end)

describe("to-be-closed variables in tasks", function()
  local loop, log
  h.each_virtual_loop(function(l) loop, log = l, {} end)

  -- A value whose __close logs, awaits one second, and logs again.
  local function closer(name)
    return setmetatable({}, {__close = function(_, err)
      log[#log + 1] = name .. " closing: " .. tostring(err)
      await(asyncio.sleep(1))
      log[#log + 1] = name .. " closed at " .. loop:time()
    end})
  end

  it("are closed, in reverse order, when the body raises; __close may "
     .. "await", function()
    local t = loop:create_task(async(function()
      local a <close> = closer("a")
      local b <close> = closer("b")
      await(asyncio.sleep(1))
      error(asyncio.ValueError("body"))
    end)())
    local e = raises(asyncio.ValueError, loop.run_until_complete, loop, t)
    assert.same({"b closing: ValueError: body", "b closed at 2.0",
                 "a closing: ValueError: body", "a closed at 3.0"}, log)
    assert.equal(e, t:exception())
  end)

  it("are closed when the task is cancelled; __close may await", function()
    local t = loop:create_task(async(function()
      local a <close> = closer("a")
      await(asyncio.sleep(10))
    end)())
    loop:call_later(2, function() t:cancel() end)
    raises(CancelledError, loop.run_until_complete, loop, t)
    assert.is_true(t:cancelled())
    assert.same({"a closing: CancelledError", "a closed at 3.0"}, log)
  end)

  it("are closed in an awaited Coroutine when its awaiting task is "
     .. "cancelled", function()
    local inner = async(function()
      local c <close> = closer("inner")
      await(asyncio.sleep(10))
    end)
    local t = loop:create_task(async(function()
      local ok, e = pcall(await, inner())
      log[#log + 1] = "outer caught " .. tostring(e)
      error(e, 0)
    end)())
    loop:call_later(1, function() t:cancel() end)
    raises(CancelledError, loop.run_until_complete, loop, t)
    assert.same({"inner closing: CancelledError", "inner closed at 2.0",
                 "outer caught CancelledError"}, log)
    assert.is_true(t:cancelled())
  end)

  it("are closed on a normal return, after the body's last await",
     function()
    local t = loop:create_task(async(function()
      local a <close> = closer("a")
      await(asyncio.sleep(1))
      return "result"
    end)())
    assert.equal("result", loop:run_until_complete(t))
    assert.same({"a closing: nil", "a closed at 2.0"}, log)
  end)
end)

describe("never-awaited coroutines", function()
  it("are reported on stderr when collected", function()
    local err = luaio_stderr([[
      local asyncio = require "asyncio"
      never_awaited_fn = asyncio.async(function() end)
      do local c = never_awaited_fn() end
      collectgarbage()
      collectgarbage()
      io.stderr:write("after gc\n")
    ]])
    local warning = err:find("coroutine 'never_awaited_fn' was never awaited",
                             1, true)
    local marker = err:find("after gc", 1, true)
    assert.is_truthy(warning, err)
    assert.is_truthy(marker, err)
    assert.is_true(warning < marker)
  end)

  it("are not reported once awaited, wrapped in a task or closed",
     function()
    local err = luaio_stderr([[
      local asyncio = require "asyncio"
      local fn = asyncio.async(function() end)
      do
        local closed = fn()
        closed:close()
        asyncio.run(asyncio.async(function()
          asyncio.await(fn())
          asyncio.await(asyncio.create_task(fn()))
        end))
      end
      collectgarbage()
      collectgarbage()
      io.stderr:write("after gc\n")
    ]])
    assert.equal("after gc\n", err)
  end)
end)

describe("await where the task cannot yield", function()
  -- __tostring is called by tostring without a continuation: a yield
  -- there fails. await raises before it registers anything, so neither
  -- the lock nor the future holds the task after it is gone.
  it("raises RuntimeError and leaves no waiter on a lock or a future",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local lock, fut = asyncio.Lock(), loop:create_future()
    await(lock:acquire())
    local errs = {}
    local t = asyncio.create_task(async(function()
      local on_lock = setmetatable({}, {__tostring = function()
        await(lock:acquire())
      end})
      local on_fut = setmetatable({}, {__tostring = function()
        await(fut)
      end})
      errs[1] = select(2, pcall(tostring, on_lock))
      errs[2] = select(2, pcall(tostring, on_fut))
      return "finished"
    end)())
    assert.equal("finished", await(t))
    for i = 1, 2 do
      assert.is_true(asyncio.iserror(errs[i], asyncio.RuntimeError))
      assert.matches("yield across a C%-call boundary", errs[i].message)
    end
    assert.equal("<asyncio.Lock [locked]>", tostring(lock))
    t = nil
    collectgarbage()
    collectgarbage()
    -- waking what the gone task tried to wait on reaches nobody
    fut:set_result(1)
    lock:release()
    await(asyncio.sleep(0))
    assert.is_false(lock:locked())
    assert.equal(1, await(fut))
  end))
end)
