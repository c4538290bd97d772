--- asyncio.errors: the error classes and the default exception handler.
--
-- A class is a table that is the metatable of its instances. It carries
-- `__name`, `__base` (the parent class) and `__is`, the set of itself and
-- its ancestors, so that `iserror(e, cls)` is one table look-up (the C core
-- does the same look-up). Calling a class makes an error object:
-- `{message =, args = {...}, traceback =}`; `tostring(e)` is "Name: message".
--
-- BaseException <- Exception <- everything else, except CancelledError and
-- KeyboardInterrupt, which derive from BaseException only, as in Python.

local M = {}

local setmetatable, select, tostring, type =
  setmetatable, select, tostring, type

-- M.iserror(e [, cls]) and M.repr(v) are the core's: bindings/core/errors.c
-- loads this module first, then installs them here, with a traceback
-- builder faster than this default one (no search of global function
-- names).
M.traceback = debug.traceback

local function err_tostring(e)
  local cls = getmetatable(e)
  local msg = e.message
  if msg == nil or msg == "" then return cls.__name end
  return cls.__name .. ": " .. tostring(msg)
end

local metaclass = {}

local function new_error(cls, ...)
  local n = select("#", ...)
  local e = {args = {n = n, ...}}
  if cls.__init then
    -- an init may name a narrower class, which a class marked __narrows
    -- (BaseExceptionGroup, not its subclasses) takes, as Python's __new__
    local narrower = cls.__init(e, ...)
    if narrower and rawget(cls, "__narrows") then cls = narrower end
  elseif n == 1 then
    e.message = tostring((...))
  elseif n > 1 then
    local parts = {}
    for i = 1, n do parts[i] = M.repr((select(i, ...))) end
    e.message = "(" .. table.concat(parts, ", ") .. ")"
  end
  if e.message == nil then e.message = "" end
  if not cls.__notraceback then
    e.traceback = M.traceback(nil, 2)
  end
  return setmetatable(e, cls)
end
metaclass.__call = new_error
metaclass.__tostring = function(cls) return "<class '" .. cls.__name .. "'>" end

--- errors.add_base(cls, base): cls becomes also a `base` (and so all
-- of base's ancestors), as a base of Python's multiple inheritance:
-- iserror looks a class up in the `__is` set of the error's class. cls
-- takes the methods of base it lacks (the exception groups' split...):
-- a class's own look-ups go no further than itself. Subclasses of cls
-- made afterwards inherit both.
local function add_base(cls, base)
  for c in pairs(base.__is) do cls.__is[c] = true end
  for k, v in pairs(base) do
    if type(k) == "string" and k:sub(1, 2) ~= "__" and
       type(v) == "function" and rawget(cls, k) == nil then
      cls[k] = v
    end
  end
end
M.add_base = add_base

--- Makes a class `name` deriving from `base`; `init(e, ...)` (optional)
-- fills the fields of a new instance from the constructor arguments.
local function class(name, base, init)
  local cls = {__name = name, __base = base, __tostring = err_tostring,
               __init = init or (base and base.__init)}
  cls.__index = cls
  cls.__is = {[cls] = true}
  if base then add_base(cls, base) end
  cls.subclass = function(self, subname, subinit)
    if type(subname) ~= "string" then
      error(("bad argument #1 to 'subclass' (string expected, got %s)")
            :format(subname == nil and "no value" or type(subname)), 2)
    end
    if subinit ~= nil and type(subinit) ~= "function" then
      error(("bad argument #2 to 'subclass' (function expected, got %s)")
            :format(type(subinit)), 2)
    end
    return class(subname, self, subinit)
  end
  setmetatable(cls, metaclass)
  -- a user's class never replaces one of ours that has its name
  if M[name] == nil then M[name] = cls end
  return cls
end
M.class = class

local BaseException = class("BaseException")
local Exception = class("Exception", BaseException)
class("CancelledError", BaseException).__notraceback = true
class("KeyboardInterrupt", BaseException)
class("SystemExit", BaseException)

--- The init of the exception groups: (message, exceptions) as Python's,
-- a string and a non-empty list of errors (any Lua error value but nil:
-- a string is an Exception, as TaskGroup collects it). An ExceptionGroup
-- refuses a BaseException that is no Exception (CancelledError ...);
-- a BaseExceptionGroup of Exceptions alone is an ExceptionGroup.
local function group_init(name)
  return function(e, message, exceptions)
    if type(message) ~= "string" then
      error(("bad argument #1 to '%s' (string expected, got %s)")
            :format(name, message == nil and "no value" or type(message)), 3)
    end
    if exceptions ~= nil and type(exceptions) ~= "table" then
      error(("bad argument #2 to '%s' (table expected, got %s)")
            :format(name, type(exceptions)), 3)
    end
    local n = exceptions and (exceptions.n or #exceptions) or 0
    if n == 0 then
      error(M.ValueError("second argument (exceptions) must be a non-empty "
                         .. "sequence"), 3)
    end
    local only_exceptions = true
    for i = 1, n do
      local x = exceptions[i]
      if x == nil then
        error(M.ValueError(("Item %d of second argument (exceptions) is not "
                            .. "an exception"):format(i - 1)), 3)
      end
      if M.iserror(x) and not M.iserror(x, M.Exception) then
        only_exceptions = false
      end
    end
    if name == "ExceptionGroup" and not only_exceptions then
      error(M.TypeError("Cannot nest BaseExceptions in an ExceptionGroup"), 3)
    end
    e.exceptions = exceptions
    e.message = ("%s (%d sub-exception%s)"):format(message, n,
                                                    n == 1 and "" or "s")
    return only_exceptions and M.ExceptionGroup or nil
  end
end
class("BaseExceptionGroup", BaseException,
      group_init("BaseExceptionGroup")).__narrows = true

--- The test of split and subgroup for `condition` (argument #1 of
-- fname): a class (a plain Lua value raised counts as an Exception, as
-- the groups and asyncio.pcall take it), a list of classes, or a
-- function (or callable table other than a class) called with each
-- exception, groups included, that returns true for a match.
local function matcher(condition, fname)
  local classes
  if type(condition) == "function" then return condition end
  if type(condition) == "table" then
    if rawget(condition, "__is") then
      classes = {condition}
    elseif getmetatable(condition) and getmetatable(condition).__call then
      return condition
    elseif getmetatable(condition) == nil and #condition > 0 then
      classes = condition
      for i = 1, #classes do
        if type(classes[i]) ~= "table" or not rawget(classes[i], "__is") then
          classes = nil
          break
        end
      end
    end
  end
  if not classes then
    error(("bad argument #1 to '%s' (error class, list of error classes "
           .. "or function expected, got %s)")
          :format(fname, condition == nil and "no value" or type(condition)),
          3)
  end
  return function(e)
    local object = M.iserror(e)
    for i = 1, #classes do
      local cls = classes[i]
      if object and M.iserror(e, cls) or not object and
         (cls == M.Exception or cls == M.BaseException) then
        return true
      end
    end
    return false
  end
end

--- The group holding excs (a sub-list of group's exceptions, tbs their
-- kept tracebacks by index) with group's message, traceback and cause,
-- or nil when excs is empty: Python's exceptiongroup_subset.
local function subset(group, excs, tbs)
  if #excs == 0 then return nil end
  local g = group:derive(excs)
  if not M.iserror(g, M.BaseExceptionGroup) then
    error(M.TypeError("derive must return an instance of "
                      .. "BaseExceptionGroup"), 0)
  end
  g.traceback, g.cause = rawget(group, "traceback"), rawget(group, "cause")
  if next(tbs) ~= nil then g.tracebacks = tbs end
  return g
end

--- Python's split, recursively: the part of e that match accepts and,
-- when want_rest, the rest (each nil when empty), nesting kept.
local function split_group(e, match, want_rest)
  if match(e) then return e, nil end
  if not M.iserror(e, M.BaseExceptionGroup) then
    return nil, want_rest and e or nil
  end
  local subs, tbs = e.exceptions, rawget(e, "tracebacks") or {}
  local m, mtbs, r, rtbs = {}, {}, {}, {}
  for i = 1, subs.n or #subs do
    local sub = subs[i]
    local sm, sr = split_group(sub, match, want_rest)
    if sm ~= nil then
      m[#m + 1] = sm
      if rawequal(sm, sub) then mtbs[#m] = tbs[i] end
    end
    if sr ~= nil then
      r[#r + 1] = sr
      if rawequal(sr, sub) then rtbs[#r] = tbs[i] end
    end
  end
  return subset(e, m, mtbs), want_rest and subset(e, r, rtbs) or nil
end

--- Raises "bad argument #1" to fname unless self is an exception group.
local function check_group(self, fname)
  if not M.iserror(self, M.BaseExceptionGroup) then
    error(("bad argument #1 to '%s' (asyncio.BaseExceptionGroup expected, "
           .. "got %s)"):format(fname, type(self)), 3)
  end
end

--- eg:split(condition) -> match, rest: two groups shaped as eg (its
-- message, traceback and nesting) holding the exceptions that match
-- condition and the others, each nil when empty; eg itself when the
-- condition holds for it. Python's BaseExceptionGroup.split, and so the
-- `except*` clause: `local m, rest = eg:split(asyncio.ValueError)`.
local function group_split(self, condition)
  check_group(self, "split")
  return split_group(self, matcher(condition, "split"), true)
end

--- eg:subgroup(condition) -> the match part of split, or nil.
local function group_subgroup(self, condition)
  check_group(self, "subgroup")
  return (split_group(self, matcher(condition, "subgroup"), false))
end

--- eg:derive(excs) -> a group of excs with eg's message (an
-- ExceptionGroup when they are all Exceptions, as Python's): split and
-- subgroup make their parts with it; a subclass may override it.
local function group_derive(self, excs)
  check_group(self, "derive")
  if type(excs) ~= "table" then
    error(("bad argument #2 to 'derive' (table expected, got %s)")
          :format(type(excs)), 2)
  end
  return M.BaseExceptionGroup(self.args[1], excs)
end

M.BaseExceptionGroup.split = group_split
M.BaseExceptionGroup.subgroup = group_subgroup
M.BaseExceptionGroup.derive = group_derive
-- an Exception and a BaseExceptionGroup (with its methods), as Python's
M.ExceptionGroup = class("ExceptionGroup", Exception,
                         group_init("ExceptionGroup"))
add_base(M.ExceptionGroup, M.BaseExceptionGroup)

class("RuntimeError", Exception)
class("NotImplementedError", M.RuntimeError)
class("ValueError", Exception)
class("TypeError", Exception)
class("InvalidStateError", Exception)
class("QueueEmpty", Exception)
class("QueueFull", Exception)
class("QueueShutDown", Exception)
class("BrokenBarrierError", M.RuntimeError)
class("SendError", Exception)
class("EOFError", Exception)

class("IncompleteReadError", M.EOFError, function(e, partial, expected)
  if partial ~= nil and type(partial) ~= "string" then
    error(("bad argument #1 to 'IncompleteReadError' (string expected, "
           .. "got %s)"):format(type(partial)), 3)
  end
  e.partial, e.expected = partial, expected
  e.message = ("%d bytes read on a total of %s expected bytes")
    :format(#(partial or ""), expected == nil and "undefined"
            or tostring(expected))
end)
class("LimitOverrunError", Exception, function(e, message, consumed)
  e.message, e.consumed = tostring(message), consumed
end)

-- OSError(errno, strerror) as in Python; libuv failures also carry
-- `.name` ("ECONNREFUSED") and a message "ECONNREFUSED: connection refused".
local OSError = class("OSError", Exception, function(e, errno, strerror)
  if strerror ~= nil then
    e.errno, e.strerror = errno, strerror
    e.message = tostring(strerror)
  elseif errno ~= nil then
    e.message = tostring(errno)
  end
end)
class("TimeoutError", OSError)
class("BlockingIOError", OSError)
class("ChildProcessError", OSError)
local ConnectionError = class("ConnectionError", OSError)
class("BrokenPipeError", ConnectionError)
class("ConnectionAbortedError", ConnectionError)
class("ConnectionRefusedError", ConnectionError)
class("ConnectionResetError", ConnectionError)
class("FileExistsError", OSError)
class("FileNotFoundError", OSError)
class("InterruptedError", OSError)
class("IsADirectoryError", OSError)
class("NotADirectoryError", OSError)
class("PermissionError", OSError)
class("ProcessLookupError", OSError)
-- socket.gaierror: a failed name look-up; errno is the EAI_* code
-- (negative, as Python's: -2 for EAI_NONAME)
class("gaierror", OSError)
-- io.UnsupportedOperation: an OSError and a ValueError, as in Python
-- (reading a file opened for writing only).
M.UnsupportedOperation = class("UnsupportedOperation", OSError)
add_base(M.UnsupportedOperation, M.ValueError)

local function sorted_keys(ctx)
  local keys = {}
  for k in pairs(ctx) do
    if k ~= "message" and k ~= "exception" and k ~= "traceback" then
      keys[#keys + 1] = tostring(k)
    end
  end
  table.sort(keys)
  return keys
end

-- Python prints at most 15 exceptions of a group, and groups 10 deep
local GROUP_WIDTH, GROUP_DEPTH = 15, 10

-- what Python prints between an exception's __cause__ and the exception
local CAUSE_RULE = "The above exception was the direct cause of the " ..
  "following exception:"

--- The error e's `.cause` (Python's __cause__), when it is an error object
-- not shown yet (seen: the errors of the chain so far), else nil.
local function cause_of(e, seen)
  local cause = type(e) == "table" and rawget(e, "cause")
  if type(cause) ~= "table" or seen[cause] or not M.iserror(cause) then
    return nil
  end
  return cause
end

local exception_lines

--- Adds to out the lines of e's chain of causes, the first cause first,
-- each followed by Python's rule line: what format_exception shows
-- before e itself.
local function add_causes(out, e, seen)
  seen[e] = true
  local cause = cause_of(e, seen)
  if cause == nil then return end
  for _, line in ipairs(exception_lines(cause, 0, nil, seen)) do
    out[#out + 1] = line
  end
  out[#out + 1] = ""
  out[#out + 1] = CAUSE_RULE
  out[#out + 1] = ""
end

--- The lines of format_exception(e): the chain of its causes, its text,
-- its traceback (tb, else its own, else the one the core kept for a
-- task's string error), and the lines of the exceptions of a group, under
-- numbered rules (depth: of the groups around e).
function exception_lines(e, depth, tb, seen)
  local out = {}
  local function add(text)
    for line in (tostring(text):gsub("^\n", "") .. "\n"):gmatch("(.-)\n") do
      out[#out + 1] = line
    end
  end
  if type(e) == "table" then add_causes(out, e, seen or {}) end
  add(tostring(e))
  tb = tb or type(e) == "table" and rawget(e, "traceback")
  if not tb then
    local core = package.loaded["asyncio.core"]
    tb = core and core._traceback_of and core._traceback_of(e)
  end
  if tb then add(tb) end
  local subs = type(e) == "table" and rawget(e, "exceptions")
  if not (M.iserror(e, M.BaseExceptionGroup) and type(subs) == "table") then
    return out
  end
  if depth >= GROUP_DEPTH then
    out[#out + 1] = "... (max_group_depth is " .. GROUP_DEPTH .. ")"
    return out
  end
  local n, tbs = subs.n or #subs, rawget(e, "tracebacks") or {}
  local function rule(first, label)
    out[#out + 1] = (first and "  +-+" or "    +") .. ("-"):rep(16) ..
      " " .. label .. " " .. ("-"):rep(16)
  end
  for i = 1, math.min(n, GROUP_WIDTH) do
    rule(i == 1, tostring(i))
    for _, line in ipairs(exception_lines(subs[i], depth + 1, tbs[i])) do
      out[#out + 1] = "    | " .. line
    end
  end
  if n > GROUP_WIDTH then
    rule(false, "...")
    out[#out + 1] = ("    | and %d more exception%s"):format(n - GROUP_WIDTH,
      n - GROUP_WIDTH == 1 and "" or "s")
  end
  out[#out + 1] = "    +" .. ("-"):rep(36)
  return out
end

--- format_exception(e) -> the text Python's traceback.format_exception
-- gives an error: the chain of its causes (`.cause`, Python's __cause__:
-- each with its traceback, then "The above exception was the direct
-- cause of the following exception:"), its tostring and its traceback
-- (an error object's own, or the one the core kept for a task's string
-- error), and for an exception group each of its exceptions the same,
-- indented under a numbered rule (at most 15 of them, 10 groups deep, as
-- Python).
function M.format_exception(e)
  return table.concat(exception_lines(e, 0), "\n")
end

--- Formats an exception-handler context the way asyncio's default handler
-- logs it: the message, one "key: repr" line per other key, then the
-- exception and its traceback.
function M.format_context(ctx)
  local lines = {tostring(ctx.message or "Unhandled exception in event loop")}
  for _, k in ipairs(sorted_keys(ctx)) do
    local v = ctx[k]
    if k == "context" and type(v) == "table" and getmetatable(v) == nil then
      -- the context of a failed handler: show what it was about
      lines[#lines + 1] = "context: " .. M.format_context(v):gsub("\n", "\n  ")
    else
      lines[#lines + 1] = k .. ": " .. M.repr(v)
    end
  end
  local exc = ctx.exception
  if type(exc) == "table" then add_causes(lines, exc, {}) end
  if exc ~= nil then lines[#lines + 1] = tostring(exc) end
  -- an error object (any table with a metatable) carries its traceback;
  -- for another value, nil included, the context holds it
  local tb = type(exc) == "table" and rawget(exc, "traceback") or
    ctx.traceback
  if tb then lines[#lines + 1] = tostring(tb):gsub("^\n", "") end
  return table.concat(lines, "\n")
end

function M.default_exception_handler(ctx)
  io.stderr:write(M.format_context(ctx), "\n")
  io.stderr:flush()
end

return M
