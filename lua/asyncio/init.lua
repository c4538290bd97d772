--- asyncio: Python's asyncio for Lua 5.4, on libuv.
--
-- This facade gathers the C core (asyncio.core: loop, Future, Task,
-- await, sleep, ...), the error classes (asyncio.errors) and the parts
-- written in Lua (asyncio.pcall, and the modules listed in
-- `parts` below), into one table.

-- Lua 5.1 (Debian's default `lua`, and so `busted`'s) would fail later
-- in the C module's loader with an undefined symbol: say what to do.
if _VERSION ~= "Lua 5.4" then
  error("luaio needs Lua 5.4, not " .. _VERSION .. ": run scripts with " ..
        "lua5.4 or luaio, and busted as 'busted --lua=lua5.4' or " ..
        "'luaio-busted'", 2)
end

local core = require "asyncio.core"
local errors = require "asyncio.errors"

local M = {}

for k, v in pairs(core) do
  if type(k) == "string" and k:sub(1, 1) ~= "_" then M[k] = v end
end
for k, v in pairs(errors) do
  if type(v) == "table" and rawget(v, "__is") then M[k] = v end
end

local iserror, Exception = core.iserror, errors.Exception

--- pcall(fn, ...): Python's `except Exception`. Returns true and fn's
-- results, or false and the error for ordinary errors; a CancelledError,
-- KeyboardInterrupt or any other BaseException-only error propagates.
local function add_traceback(e)
  if iserror(e, Exception) and rawget(e, "traceback") == nil then
    e.traceback = debug.traceback(nil, 2)
  end
  return e
end

local function pass(ok, ...)
  if not ok then
    local e = ...
    if iserror(e) and not iserror(e, Exception) then error(e, 0) end
  end
  return ok, ...
end

function M.pcall(fn, ...)
  return pass(xpcall(fn, add_traceback, ...))
end

--- Parts of the API written in Lua; each returns a table merged here.
for _, name in ipairs{"combinators", "taskgroup", "timeouts", "locks",
                      "threads", "streams", "subprocess", "runners",
                      "dump"} do
  for k, v in pairs(require("asyncio." .. name)) do M[k] = v end
end

--- Modules reached as fields on first use (the core never loads the
-- batteries): asyncio.fs is require "asyncio.fs", asyncio.ssl is
-- require "asyncio.ssl", and so on.
local lazy = {fs = "asyncio.fs", ssl = "asyncio.ssl",
              staggered = "asyncio.staggered", http = "asyncio.http",
              redis = "asyncio.redis", workqueue = "asyncio.workqueue"}
setmetatable(M, {__index = function(t, k)
  local name = lazy[k]
  if name == nil then return nil end
  local mod = require(name)
  rawset(t, k, mod)
  return mod
end})

M._core = core
return M
