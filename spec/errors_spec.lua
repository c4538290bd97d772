-- spec/errors_spec.lua: the error classes (lua/asyncio/errors.lua,
-- bindings/core/errors.c), asyncio.iserror and asyncio.pcall.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await
local iserror = asyncio.iserror

local raised = dofile("spec/helpers.lua").error_of

--- The line this function is called from, in this file.
local function here()
  return debug.getinfo(2, "l").currentline
end

-- Every class named by the design, with its expected parent.
local parents = {
  Exception = "BaseException",
  CancelledError = "BaseException",
  KeyboardInterrupt = "BaseException",
  RuntimeError = "Exception",
  ValueError = "Exception",
  TypeError = "Exception",
  InvalidStateError = "Exception",
  QueueEmpty = "Exception",
  QueueFull = "Exception",
  QueueShutDown = "Exception",
  SendError = "Exception",
  LimitOverrunError = "Exception",
  ExceptionGroup = "Exception",
  BrokenBarrierError = "RuntimeError",
  IncompleteReadError = "EOFError",
  OSError = "Exception",
  TimeoutError = "OSError",
  ConnectionError = "OSError",
  ConnectionRefusedError = "ConnectionError",
  ConnectionResetError = "ConnectionError",
  BrokenPipeError = "ConnectionError",
  FileNotFoundError = "OSError",
  gaierror = "OSError",
}

describe("error classes", function()
  it("every class of the design exists and derives from its parent",
     function()
    for name, parent in pairs(parents) do
      local cls = asyncio[name]
      assert.is_table(cls, name)
      assert.equal("<class '" .. name .. "'>", tostring(cls))
      local e = name == "ExceptionGroup" and cls("x", {cls("y", {"z"})})
        or cls("x")
      assert.is_true(iserror(e, cls), name)
      assert.is_true(iserror(e, asyncio[parent]), name .. " < " .. parent)
      assert.is_true(iserror(e, asyncio.BaseException), name)
    end
  end)

  it("everything but CancelledError and KeyboardInterrupt is an Exception",
     function()
    for name in pairs(parents) do
      local e = asyncio[name]("x", name == "ExceptionGroup" and {"z"} or nil)
      local ordinary = name ~= "CancelledError" and
                       name ~= "KeyboardInterrupt"
      assert.equal(ordinary, iserror(e, asyncio.Exception), name)
    end
  end)

  it("TimeoutError is an OSError, not a CancelledError", function()
    local e = asyncio.TimeoutError("late")
    assert.is_true(iserror(e, asyncio.OSError))
    assert.is_false(iserror(e, asyncio.CancelledError))
    assert.is_false(iserror(asyncio.CancelledError(), asyncio.TimeoutError))
  end)

  it("tostring(e) is 'Class: message', or the class alone", function()
    assert.equal("TimeoutError: msg", tostring(asyncio.TimeoutError("msg")))
    assert.equal("TimeoutError", tostring(asyncio.TimeoutError()))
    assert.equal("CancelledError: why",
                 tostring(asyncio.CancelledError("why")))
  end)

  it("an error object has .message and .args", function()
    local e = asyncio.ValueError("bad value")
    assert.equal("bad value", e.message)
    assert.equal(1, e.args.n)
    assert.equal("bad value", e.args[1])
    local none = asyncio.ValueError()
    assert.equal("", none.message)
    assert.equal(0, none.args.n)
    local several = asyncio.ValueError("a", 2)
    assert.equal(2, several.args.n)
    assert.equal("a", several.args[1])
    assert.equal(2, several.args[2])
    assert.equal("('a', 2)", several.message)
  end)

  it("an error object has the traceback of where it was made", function()
    local line = here() + 1
    local e = asyncio.RuntimeError("traced")
    assert.is_string(e.traceback)
    assert.matches("errors_spec.lua:" .. line .. ":", e.traceback, 1, true)
  end)

  it("errors the core raises are error objects with a traceback",
     function()
    local loop = asyncio.new_event_loop()
    loop:close()
    local line = here() + 1
    local e = raised(loop.call_soon, loop, print)
    assert.is_true(iserror(e, asyncio.RuntimeError))
    assert.equal("Event loop is closed", e.message)
    assert.equal("RuntimeError: Event loop is closed", tostring(e))
    assert.matches("errors_spec.lua:" .. line .. ":", e.traceback, 1, true)
    assert.same(0, loop:_counts().handles)
  end)

  it("plain argument misuse raises Lua's own 'bad argument' error",
     function()
    local loop = asyncio.new_event_loop()
    local e = raised(loop.call_soon, loop, 42)
    assert.is_string(e)
    assert.matches("bad argument #2", e, 1, true)
    local fut = loop:create_future()
    e = raised(fut.add_done_callback, fut, 42)
    assert.is_string(e)
    assert.matches("bad argument #1 to 'add_done_callback'", e, 1, true)
    loop:close()
    assert.same(0, loop:_counts().handles)
  end)

  it("OSError(errno, strerror) keeps both as fields", function()
    local e = asyncio.OSError(2, "No such file or directory")
    assert.equal(2, e.errno)
    assert.equal("No such file or directory", e.strerror)
    assert.equal("No such file or directory", e.message)
    assert.same({n = 2, 2, "No such file or directory"}, e.args)
    local sub = asyncio.FileNotFoundError(2, "gone")
    assert.equal(2, sub.errno)
    assert.is_true(iserror(sub, asyncio.OSError))
    local plain = asyncio.OSError("just a message")
    assert.equal("just a message", plain.message)
    assert.is_nil(plain.errno)
  end)

  it("ExceptionGroup keeps its sub-exceptions", function()
    local a, b = asyncio.ValueError("a"), asyncio.TypeError("b")
    local eg = asyncio.ExceptionGroup("two failed", {a, b})
    assert.equal(a, eg.exceptions[1])
    assert.equal(b, eg.exceptions[2])
    assert.equal("ExceptionGroup: two failed (2 sub-exceptions)",
                 tostring(eg))
    assert.is_true(iserror(eg, asyncio.BaseExceptionGroup))
    assert.is_true(iserror(eg, asyncio.Exception))
  end)

  it("exception groups check their arguments as Python's; a "
     .. "BaseExceptionGroup of Exceptions alone is an ExceptionGroup",
     function()
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return e
    end
    for _, cls in ipairs{asyncio.ExceptionGroup, asyncio.BaseExceptionGroup} do
      local e = err(cls, "m", {})
      assert.is_true(iserror(e, asyncio.ValueError), tostring(e))
      assert.equal("second argument (exceptions) must be a non-empty "
                   .. "sequence", e.message)
      e = err(cls, "m", {n = 2, asyncio.ValueError("v")})
      assert.is_true(iserror(e, asyncio.ValueError), tostring(e))
      assert.equal("Item 1 of second argument (exceptions) is not an "
                   .. "exception", e.message)
      assert.matches("bad argument #1 to '%a+' %(string expected, got "
                     .. "number%)", err(cls, 42, {"e"}))
    end
    local e = err(asyncio.ExceptionGroup, "m",
                  {asyncio.CancelledError("stop")})
    assert.is_true(iserror(e, asyncio.TypeError), tostring(e))
    assert.equal("Cannot nest BaseExceptions in an ExceptionGroup",
                 e.message)
    local g = asyncio.BaseExceptionGroup("m", {asyncio.ValueError("v"), "s"})
    assert.equal(asyncio.ExceptionGroup, getmetatable(g))
    assert.is_true(iserror(g, asyncio.Exception))
    g = asyncio.BaseExceptionGroup("m", {asyncio.CancelledError("stop")})
    assert.equal(asyncio.BaseExceptionGroup, getmetatable(g))
    -- so pcall, Python's `except Exception`, lets the cancellation out
    local ok, out = pcall(asyncio.pcall, error, g)
    assert.is_false(ok)
    assert.equal(g, out)
  end)

  it("an ExceptionGroup's repr lists its exceptions, as Python's",
     function()
    local eg = asyncio.ExceptionGroup("msg", {asyncio.ValueError("boom")})
    assert.equal("ExceptionGroup('msg', [ValueError('boom')])",
                 asyncio.repr(eg))
    local nested = asyncio.ExceptionGroup("outer", {
      asyncio.TimeoutError(), asyncio.ExceptionGroup("inner", {"s", 3})})
    assert.equal("ExceptionGroup('outer', [TimeoutError(), "
                 .. "ExceptionGroup('inner', ['s', 3])])",
                 asyncio.repr(nested))
    -- as a Future's exception too
    local loop = asyncio.new_event_loop()
    local fut = loop:create_future()
    fut:set_exception(eg)
    assert.equal("<Future finished exception=ExceptionGroup('msg', "
                 .. "[ValueError('boom')])>", tostring(fut))
    fut:exception()
    loop:close()
  end)

  it("an exception group splits by class, list or predicate, keeping "
     .. "its nesting, as Python's split and subgroup", function()
    local v, t = asyncio.ValueError("v"), asyncio.TypeError("t")
    local inner = asyncio.ExceptionGroup("inner", {asyncio.ValueError("v2"),
                                                   asyncio.TimeoutError()})
    local eg = asyncio.ExceptionGroup("outer", {v, t, inner, "s"})
    eg.cause = "why"
    local match, rest = eg:split(asyncio.ValueError)
    assert.equal("ExceptionGroup('outer', [ValueError('v'), "
                 .. "ExceptionGroup('inner', [ValueError('v2')])])",
                 asyncio.repr(match))
    assert.equal("ExceptionGroup('outer', [TypeError('t'), "
                 .. "ExceptionGroup('inner', [TimeoutError()]), 's'])",
                 asyncio.repr(rest))
    assert.equal(v, match.exceptions[1])
    assert.equal("outer (2 sub-exceptions)", match.message)
    assert.equal(eg.traceback, match.traceback)
    assert.equal("why", rest.cause)
    -- a plain value raised counts as an Exception; a whole match is eg
    assert.equal(eg, eg:subgroup(asyncio.Exception))
    local whole, none = eg:split(asyncio.BaseExceptionGroup)
    assert.equal(eg, whole)
    assert.is_nil(none)
    assert.is_nil(eg:subgroup(asyncio.KeyboardInterrupt))
    assert.equal("ExceptionGroup('outer', ['s'])", asyncio.repr(
      eg:subgroup(function(e) return e == "s" end)))
    assert.equal("ExceptionGroup('outer', [TypeError('t'), "
                 .. "ExceptionGroup('inner', [TimeoutError()])])",
                 asyncio.repr(eg:subgroup{asyncio.TypeError,
                                          asyncio.OSError}))
    -- the parts of a BaseExceptionGroup narrow as its constructor does
    local b = asyncio.BaseExceptionGroup("b", {asyncio.CancelledError(), v})
    local bm, br = b:split(asyncio.ValueError)
    assert.equal(asyncio.ExceptionGroup, getmetatable(bm))
    assert.equal(asyncio.BaseExceptionGroup, getmetatable(br))
    -- a subclass has the methods; derive makes the parts
    local Mine = asyncio.ExceptionGroup:subclass("Mine")
    function Mine.derive(self, excs) return Mine(self.args[1], excs) end
    local mine = Mine("m", {v, t})
    assert.equal(Mine, getmetatable(mine:subgroup(asyncio.TypeError)))
    assert.equal("bad argument #1 to 'split' (error class, list of error "
                 .. "classes or function expected, got number)",
                 select(2, pcall(eg.split, eg, 3)))
  end)

  it("format_exception and the default handler show the chain of causes "
     .. "first, as Python's __cause__", function()
    local errors = require "asyncio.errors"
    local root = asyncio.OSError("disk gone")
    local mid = asyncio.ValueError("bad record")
    mid.cause = root
    local top = asyncio.RuntimeError("load failed")
    top.cause = mid
    local rule = "The above exception was the direct cause of the " ..
      "following exception:"
    local text = errors.format_exception(top)
    local order = {}
    for _, what in ipairs{"OSError: disk gone", rule, "ValueError: bad record",
                          rule, "RuntimeError: load failed"} do
      local at = text:find(what, order[#order] and order[#order] + 1 or 1,
                           true)
      assert.truthy(at, what .. " in:\n" .. text)
      order[#order + 1] = at
    end
    -- each with its own traceback
    local _, tbs = text:gsub("stack traceback:", "")
    assert.equal(3, tbs)
    assert.truthy(errors.format_context{message = "m", exception = top}
      :find("OSError: disk gone\n", 1, true))
    -- a cycle, or a cause that is no error object, ends the chain
    root.cause = top
    local _, rules = errors.format_exception(top):gsub(rule, "")
    assert.equal(2, rules)
    local plain = asyncio.ValueError("v")
    plain.cause = "why"
    assert.equal(errors.format_exception(asyncio.ValueError("v")):gsub(
      "\n.*", ""), errors.format_exception(plain):gsub("\n.*", ""))
    assert.falsy(errors.format_exception(plain):find(rule, 1, true))
  end)

  it("IncompleteReadError and LimitOverrunError carry their fields",
     function()
    local ir = asyncio.IncompleteReadError("ab", 5)
    assert.equal("ab", ir.partial)
    assert.equal(5, ir.expected)
    assert.equal("2 bytes read on a total of 5 expected bytes", ir.message)
    local lo = asyncio.LimitOverrunError("too long", 7)
    assert.equal("too long", lo.message)
    assert.equal(7, lo.consumed)
  end)
end)

describe("asyncio.iserror", function()
  it("tells error objects, and their classes, from other values",
     function()
    local e = asyncio.QueueFull("full")
    assert.is_true(iserror(e))
    assert.is_true(iserror(e, asyncio.QueueFull))
    assert.is_true(iserror(e, asyncio.Exception))
    assert.is_false(iserror(e, asyncio.QueueEmpty))
    assert.is_false(iserror(e, asyncio.CancelledError))
    for _, v in ipairs{"QueueFull: full", 42, {}, true, print} do
      assert.is_false(iserror(v))
      assert.is_false(iserror(v, asyncio.QueueFull))
    end
    assert.is_false(iserror(nil))
    assert.is_false(iserror(setmetatable({}, {__name = "QueueFull"})))
  end)
end)

describe("subclassing", function()
  it("Cls:subclass(name) makes a class under Cls", function()
    local AppError = asyncio.Exception:subclass("AppError")
    local DbError = AppError:subclass("DbError")
    local e = DbError("no connection")
    assert.equal("<class 'DbError'>", tostring(DbError))
    assert.equal("DbError: no connection", tostring(e))
    assert.equal("no connection", e.message)
    assert.is_true(iserror(e, DbError))
    assert.is_true(iserror(e, AppError))
    assert.is_true(iserror(e, asyncio.Exception))
    assert.is_false(iserror(AppError("x"), DbError))
    assert.is_false(iserror(e, asyncio.RuntimeError))
    assert.is_string(e.traceback)
  end)

  it("a subclass of a class with fields keeps its constructor", function()
    local MyOSError = asyncio.OSError:subclass("MyOSError")
    local e = MyOSError(13, "denied")
    assert.equal(13, e.errno)
    assert.equal("denied", e.strerror)
    assert.is_true(iserror(e, asyncio.OSError))
  end)

  it("subclass(name, init) fills the fields of new instances", function()
    local HttpError = asyncio.Exception:subclass("HttpError",
      function(e, status, reason)
        e.status = status
        e.message = status .. " " .. reason
      end)
    local e = HttpError(404, "Not Found")
    assert.equal(404, e.status)
    assert.equal("HttpError: 404 Not Found", tostring(e))
    assert.same({n = 2, 404, "Not Found"}, e.args)
  end)

  it("errors.add_base gives a class a second base, with its ancestors, "
     .. "that its later subclasses inherit", function()
    local errors = require "asyncio.errors"
    local ParseError = asyncio.Exception:subclass("ParseError")
    local Before = ParseError:subclass("Before")
    errors.add_base(ParseError, asyncio.ValueError)
    local After = ParseError:subclass("After")
    assert.is_true(iserror(ParseError("x"), asyncio.ValueError))
    assert.is_true(iserror(After("x"), asyncio.ValueError))
    assert.is_true(iserror(After("x"), ParseError))
    assert.is_false(iserror(Before("x"), asyncio.ValueError))
    assert.is_false(iserror(ParseError("x"), asyncio.OSError))
    errors.add_base(ParseError, asyncio.ConnectionResetError)
    assert.is_true(iserror(ParseError("x"), asyncio.ConnectionError))
    assert.is_true(iserror(ParseError("x"), asyncio.OSError))
  end)

  it("asyncio.pcall catches subclasses of Exception", function()
    local AppError = asyncio.Exception:subclass("AppError")
    local ok, e = asyncio.pcall(error, AppError("app"))
    assert.is_false(ok)
    assert.is_true(iserror(e, AppError))
  end)
end)

describe("asyncio.pcall", function()
  it("returns true and every result on success", function()
    assert.same({true, 1, nil, 3},
                {asyncio.pcall(function(a) return a, nil, 3 end, 1)})
  end)

  it("returns false and the error for ordinary error objects", function()
    local err = asyncio.ValueError("bad")
    local ok, e = asyncio.pcall(error, err)
    assert.is_false(ok)
    assert.equal(err, e)
  end)

  it("returns false and the message for plain string errors", function()
    local line = here() + 1
    local ok, e = asyncio.pcall(function() error("plain") end)
    assert.is_false(ok)
    assert.equal("errors_spec.lua:" .. line .. ": plain",
                 e:match("errors_spec.lua:.*"))
    local ok2, e2 = asyncio.pcall(function() return nil + 1 end)
    assert.is_false(ok2)
    assert.matches("attempt to perform arithmetic", e2, 1, true)
  end)

  it("lets CancelledError and KeyboardInterrupt through", function()
    for _, cls in ipairs{asyncio.CancelledError, asyncio.KeyboardInterrupt,
                         asyncio.BaseException} do
      local err = cls("through")
      local ok, e = pcall(asyncio.pcall, error, err)
      assert.is_false(ok)
      assert.equal(err, e)
    end
  end)

  it("plain pcall is try/except BaseException: it catches cancellation",
     aspec.async({clock = "virtual"}, function()
    local inner = asyncio.create_task(asyncio.sleep(10))
    asyncio.get_running_loop():call_later(1, inner.cancel, inner)
    local ok, e = pcall(await, inner)
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.CancelledError))
  end))

  it("in a task, a cancellation passes asyncio.pcall and cancels the task",
     aspec.async({clock = "virtual"}, function()
    local caught = 0
    local task = asyncio.create_task(async(function()
      local ok = asyncio.pcall(await, asyncio.sleep(10))
      if not ok then caught = caught + 1 end
      return "swallowed"
    end)())
    await(asyncio.sleep(1))
    task:cancel()
    local ok, e = pcall(await, task)
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.CancelledError))
    assert.is_true(task:cancelled())
    assert.equal(0, caught)
  end))

  it("in a task, an ordinary error stops at asyncio.pcall",
     aspec.async({clock = "virtual"}, function()
    local failing = async(function()
      await(asyncio.sleep(1))
      error(asyncio.InvalidStateError("nope"))
    end)
    local ok, e = asyncio.pcall(await, failing())
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.InvalidStateError))
    assert.equal(1, asyncio.get_running_loop():time())
  end))
end)
