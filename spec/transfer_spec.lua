-- spec/transfer_spec.lua: values crossing between Lua states
-- (bindings/threads/transfer.c; DESIGN.md "Threads").
--
-- A Channel packs a value on put and unpacks it on get, so a put and a
-- get in this state copy the value the way a send to another thread
-- does. Where the receiving state matters (functions run with that
-- state's globals, error classes rebuilt there), the values go to a
-- worker of a one-thread executor, whose Lua state lives as long as the
-- executor.
local asyncio = require "asyncio"

local iserror = asyncio.iserror
local SendError = asyncio.SendError

--- copy(v) -> v after a trip through a Channel (packed, then unpacked).
local function copy(v)
  local ch = asyncio.Channel()
  ch:put(v)
  return ch:get(0)
end

--- send_error(fn, ...) -> the message of the SendError fn(...) raises.
local function send_error(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected a SendError")
  assert.is_true(iserror(err, SendError), tostring(err))
  return err.message
end

describe("transfer: scalars", function()
  it("nil, booleans and integers keep their values and subtype", function()
    assert.is_nil(copy(nil))
    assert.is_true(copy(true))
    assert.is_false(copy(false))
    for _, i in ipairs{0, -1, 42, math.maxinteger, math.mininteger,
                       (1 << 53) + 1} do
      local v = copy(i)
      assert.equal("integer", math.type(v))
      assert.equal(i, v)
    end
  end)

  it("floats keep their subtype, infinities, NaN and the sign of zero",
    function()
      assert.equal("float", math.type(copy(3.0)))
      assert.equal(0.1, copy(0.1))
      assert.equal(1.7976931348623157e308, copy(1.7976931348623157e308))
      assert.equal(4.9e-324, copy(4.9e-324))
      assert.equal(math.huge, copy(math.huge))
      assert.equal(-math.huge, copy(-math.huge))
      local nan = copy(0 / 0)
      assert.is_true(nan ~= nan)
      assert.equal(-math.huge, 1 / copy(-0.0))
      assert.equal(math.huge, 1 / copy(0.0))
    end)

  it("strings keep every byte: NULs, the empty string, a 2 MB string",
    function()
      assert.equal("a\0b\0", copy("a\0b\0"))
      assert.equal("", copy(""))
      local big = string.rep("x\0\255", 700000)
      assert.equal(big, copy(big))
    end)

  it("several values travel in one message, nils included", function()
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local cf = ex:submit(function(...) return select("#", ...), ... end,
                         nil, 1, nil, "x", nil)
    local got = table.pack(cf:result(5))
    assert.equal(6, got.n)
    assert.same({5, nil, 1, nil, "x", nil}, {table.unpack(got, 1, 6)})
  end)
end)

describe("transfer: tables", function()
  it("nested tables arrive as copies with every key kind", function()
    local t = {1, 2, {x = {y = "z"}}, [true] = "t", [false] = "f",
               [2.5] = "float key", ["with space"] = {}}
    local u = copy(t)
    assert.are_not.equal(t, u)
    assert.same(t, u)
    assert.equal("float key", u[2.5])
    assert.equal("t", u[true])
  end)

  it("cycles and shared references are kept", function()
    local shared = {n = 1}
    local t = {a = shared, b = shared, list = {shared}}
    t.self = t
    t.list.parent = t
    local u = copy(t)
    assert.equal(u, u.self)
    assert.equal(u, u.list.parent)
    assert.equal(u.a, u.b)
    assert.equal(u.a, u.list[1])
    assert.are_not.equal(shared, u.a)
    u.a.n = 2
    assert.equal(2, u.b.n)
    assert.equal(1, shared.n)
  end)

  it("a table shared between two values of one message stays shared",
    function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local shared = {}
      local same = ex:submit(function(a, b) return a == b end, shared, shared)
      assert.is_true(same:result(5))
    end)

  it("tables nested 199 deep cross; deeper ones raise SendError",
    function()
      local function nest(depth)
        local root = {}
        local cur = root
        for _ = 2, depth do cur.n = {}; cur = cur.n end
        return root
      end
      local u = copy(nest(199))
      local depth = 0
      while u do depth = depth + 1; u = u.n end
      assert.equal(199, depth)
      local ch = asyncio.Channel()
      local msg = send_error(ch.put, ch, nest(300))
      assert.truthy(msg:find(": tables nested too deeply$"), msg)
      assert.truthy(msg:find("^args%[1%]%.n%.n%."), msg)
      assert.equal(0, ch:qsize())
    end)
end)

describe("transfer: functions", function()
  local ex

  setup(function() ex = asyncio.ThreadPoolExecutor(1) end)
  teardown(function() ex:shutdown(true) end)

  it("a function with no upvalue at all crosses as bytecode", function()
    local add = copy(function(a, b) return a + b end)
    assert.equal(5, add(2, 3))
  end)

  it("a function whose only upvalue is _ENV runs with the receiving "
     .. "state's globals", function()
    -- the one worker keeps its state between jobs
    ex:submit(function() TRANSFER_SPEC_MARK = "worker" end):result(5)
    _G.TRANSFER_SPEC_MARK = "main"
    local read = function() return TRANSFER_SPEC_MARK end
    assert.equal("worker",
                 ex:submit(function(f) return f() end, read):result(5))
    assert.equal("main", read())
    _G.TRANSFER_SPEC_MARK = nil
  end)

  it("light C functions like print cross as themselves", function()
    assert.equal(print, copy(print))
    assert.equal(string.format, copy(string.format))
    local same = ex:submit(function(p, f) return p == print, f("%03d", 7) end,
                           print, string.format)
    assert.same({true, "007"}, {same:result(5)})
  end)

  it("a function sent again arrives as the function that came before",
    function()
      local function double(x) return x * 2 end
      ex:submit(function(f) TRANSFER_SPEC_FN = f end, double):result(5)
      local same = ex:submit(function(f)
        local was = TRANSFER_SPEC_FN
        TRANSFER_SPEC_FN = nil
        return was == f, f(4)
      end, double)
      assert.same({true, 8}, {same:result(5)})
    end)

  it("a function sent again with plain values runs as the first time, "
     .. "globals included", function()
    local function triple(x) return x * 3 end
    local apply = function(f, x) return tostring(f(x)) end -- _ENV
    local got = {}
    for i = 1, 3 do got[i] = ex:submit(apply, triple, i):result(5) end
    assert.same({"3", "6", "9"}, got)
  end)

  it("a new function arrives as itself after one of the same size was "
     .. "collected", function()
    local function call_there(f)
      return ex:submit(function(g) return g() end, f):result(5)
    end
    local function send_a() return call_there(function() return "a" end) end
    local function send_b() return call_there(function() return "b" end) end
    local got = {}
    for i = 1, 4 do
      got[#got + 1] = send_a()
      collectgarbage()
      collectgarbage()
      got[#got + 1] = send_b()
      collectgarbage()
      collectgarbage()
    end
    assert.equal("abababab", table.concat(got))
  end)

  it("results come back the same way: a function made in the worker",
    function()
      local f = ex:submit(function()
        return function(x) return x * 2 end
      end):result(5)
      assert.equal(42, f(21))
    end)
end)

describe("transfer: error objects", function()
  it("are rebuilt with the receiving state's class, fields kept", function()
    local e = asyncio.ValueError("bad", 2)
    e.extra = {code = 7}
    local u = copy(e)
    assert.are_not.equal(e, u)
    assert.equal(getmetatable(e), getmetatable(u))
    assert.is_true(iserror(u, asyncio.ValueError))
    assert.is_true(iserror(u, asyncio.Exception))
    assert.equal(e.message, u.message)
    assert.same(e.args, u.args)
    assert.equal("bad", u.args[1])
    assert.equal(7, u.extra.code)
    assert.equal(tostring(e), tostring(u))
  end)

  it("raised in a worker, arrive as an object of this state's class",
    function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local cf = ex:submit(function()
        local a = require "asyncio"
        error(a.TimeoutError("slow"))
      end)
      local ok, err = pcall(cf.result, cf, 5)
      assert.is_false(ok)
      assert.equal(asyncio.TimeoutError, getmetatable(err))
      assert.is_true(iserror(err, asyncio.OSError))
      assert.equal("slow", err.message)
      assert.equal("string", type(err.traceback))
    end)

  it("sent to a worker, are objects of the worker's class there",
    function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local cf = ex:submit(function(e)
        local a = require "asyncio"
        return getmetatable(e) == a.KeyboardInterrupt,
          a.iserror(e, a.BaseException), a.iserror(e, a.Exception)
      end, asyncio.KeyboardInterrupt())
      assert.same({true, true, false}, {cf:result(5)})
    end)

  it("an error value of a class the receiver lacks becomes a RuntimeError",
    function()
      local Mine = asyncio.ValueError:subclass("TransferSpecError")
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local cf = ex:submit(function(e)
        local a = require "asyncio"
        return getmetatable(e) == a.RuntimeError, e.message
      end, Mine("gone"))
      assert.same({true, "gone"}, {cf:result(5)})
      -- this state knows the class by its name: it comes back as itself
      assert.equal(Mine, getmetatable(copy(Mine("here"))))
    end)
end)

describe("transfer: shareable objects", function()
  it("a Channel travels by reference: both ends see one channel",
    function()
      local ch = asyncio.Channel()
      local other = copy(ch)
      assert.are_not.equal(ch, other)
      other:put("through the copy")
      assert.equal(1, ch:qsize())
      assert.equal("through the copy", ch:get(0))
    end)

  it("a worker puts into a channel it received", function()
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local ch = asyncio.Channel()
    ex:submit(function(c) c:put("from the worker") end, ch):result(5)
    assert.equal("from the worker", ch:get(0))
  end)

  it("a loop arrives as a loop reference", function()
    local loop = asyncio.new_event_loop()
    local ref = copy(loop)
    assert.truthy(tostring(ref):find("^<LoopRef "), tostring(ref))
    assert.is_false(ref:is_closed())
    loop:close()
    assert.is_true(ref:is_closed())
  end)

  it("executors, concurrent futures and thread-safe callables cross",
    function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local ex2 = copy(ex)
      local cf = ex2:submit(function() return "ran" end)
      assert.equal("ran", copy(cf):result(5))
      local loop = asyncio.new_event_loop()
      asyncio.set_event_loop(loop)
      local got
      local tf = copy(asyncio.threadsafe(function(v) got = v end))
      tf("called")
      loop:run_until_complete(asyncio.sleep(0))
      assert.equal("called", got)
      loop:close()
      require("asyncio.core")._unset_event_loop()
    end)
end)

describe("transfer: SendError", function()
  local loopref

  setup(function() loopref = asyncio.start_loop_thread() end)
  teardown(function()
    loopref:stop()
    loopref:join()
  end)

  it("names the argument and the key: args[2].cb: function with upvalues",
    function()
      local upvalue = 1
      local msg = send_error(loopref.call_soon_threadsafe, loopref, print, 1,
                             {cb = function() return upvalue end})
      assert.equal("args[2].cb: function with upvalues", msg)
    end)

  it("names the function itself fn", function()
    local upvalue = 1
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    assert.equal("fn: function with upvalues",
                 send_error(ex.submit, ex, function() return upvalue end))
    assert.equal("fn: function with upvalues",
                 send_error(loopref.call_soon_threadsafe, loopref,
                            function() return upvalue end))
  end)

  it("names list positions: args[1][3]: thread value", function()
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    assert.equal("args[1][3]: thread value",
                 send_error(ex.submit, ex, print,
                            {1, 2, coroutine.create(print)}))
  end)

  it("refuses tables with metatables, coroutines, userdata, loop-bound "
     .. "objects and C closures", function()
    local ch = asyncio.Channel()
    local loop = asyncio.new_event_loop()
    local cases = {
      {setmetatable({}, {}), "args[1]: table with a metatable"},
      {coroutine.create(print), "args[1]: thread value"},
      {io.stdout, "args[1]: FILE* value"},
      {loop:create_future(), "args[1]: asyncio.Future value"},
      {asyncio.Lock(), "args[1]: asyncio.Lock value"},
      {string.gmatch("a", "a"), "args[1]: C function with upvalues"},
      {{[{}] = 1}, "args[1][<table key>]: table key that cannot be sent"},
      {{x = {[1.5] = coroutine.create(print)}},
       "args[1].x[1.5]: thread value"},
    }
    for _, case in ipairs(cases) do
      assert.equal(case[2], send_error(ch.put, ch, case[1]))
    end
    local e = asyncio.ValueError("x")
    e.co = coroutine.create(print)
    assert.equal("args[1].co: thread value", send_error(ch.put, ch, e))
    assert.equal(0, ch:qsize())
    loop:close()
  end)

  it("nothing is half-sent: a failing send queues nothing", function()
    local ch = asyncio.Channel()
    local bad = coroutine.create(print)
    send_error(ch.put, ch, {1, 2, 3, bad})
    assert.equal(0, ch:qsize())

    -- a loop thread: the good calls around a failing one arrive, it
    -- does not (FIFO: the last call reports what arrived before it)
    loopref:call_soon_threadsafe(function(c) c:put("first") end, ch)
    send_error(loopref.call_soon_threadsafe, loopref,
               function(c) c:put("never") end, ch, bad)
    loopref:call_soon_threadsafe(function(c) c:put("last") end, ch)
    assert.equal("first", ch:get(5))
    assert.equal("last", ch:get(5))
    assert.equal(0, ch:qsize())

    -- an executor: no job, no worker started
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    send_error(ex.submit, ex, print, 1, {bad})
    assert.truthy(tostring(ex):find(" workers=0"), tostring(ex))

    -- a thread-safe callable: no call
    local loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    local calls = 0
    local tf = asyncio.threadsafe(function() calls = calls + 1 end)
    send_error(tf, 1, bad)
    loop:run_until_complete(asyncio.sleep(0))
    assert.equal(0, calls)
    loop:close()
    require("asyncio.core")._unset_event_loop()
  end)
end)
