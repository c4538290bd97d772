--- asyncio.check: argument checks for the parts written in Lua, raising
-- the same "bad argument #n to 'f' (...)" errors as Lua's own
-- luaL_argerror does in the C core.
--
-- Each check is called directly by the public function `fname` whose
-- argument it checks; `n` counts arguments as the caller wrote them
-- (for a method called with a colon, self does not count, as in C).

local M = {}

local unknown_option = require("asyncio.core")._unknown_option

local getinfo, type, getmetatable, error, rawget, pairs, ipairs, select =
  debug.getinfo, type, getmetatable, error, rawget, pairs, ipairs, select

--- The type name Lua's errors use: a metatable's `__name` if it has one.
function M.typename(v)
  local mt = getmetatable(v)
  if type(mt) == "table" then
    local name = rawget(mt, "__name")
    if type(name) == "string" then return name end
  end
  return type(v)
end

--- Raises "bad argument #n to 'fname' (msg)"; `level` is the number of
-- frames between this function and the public function (1 when that
-- function calls argerror itself). The error points at its caller.
function M.argerror(n, fname, msg, level)
  level = (level or 1) + 1
  local ar = getinfo(level, "n")
  if ar and ar.namewhat == "method" then
    n = n - 1
    if n == 0 then
      error(("calling '%s' on bad self (%s)"):format(fname, msg), level + 1)
    end
  end
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), level + 1)
end

local function expected(v, tname)
  return ("%s expected, got %s")
    :format(tname, v == nil and "no value" or M.typename(v))
end

--- v must be of Lua type `tname` (or nil when `optional`).
function M.type(v, n, fname, tname, optional)
  if type(v) ~= tname and not (optional and v == nil) then
    M.argerror(n, fname, expected(v, tname), 2)
  end
  return v
end

--- self of a method of the Lua class `cls` (its metatable).
function M.self(v, cls, fname)
  if getmetatable(v) ~= cls then
    M.argerror(1, fname, expected(v, cls.__name), 2)
  end
  return v
end

--- An optional options table: nil or a table.
function M.opts(v, n, fname)
  if v ~= nil and type(v) ~= "table" then
    M.argerror(n, fname, expected(v, "table"), 2)
  end
  return v
end

--- An optional options table whose keys are all names in the set
-- `known` (name -> true): Python raises TypeError for an unexpected
-- keyword argument, so a misspelt option is not ignored. Raises "bad
-- argument #n to 'fname' (unknown option 'x')". `level` counts the
-- frames from the caller of this to the public function (1, the default:
-- the public function calls it).
function M.options(v, n, fname, known, level)
  level = (level or 1) + 1
  if v == nil then return v end
  if type(v) ~= "table" then
    M.argerror(n, fname, expected(v, "table"), level)
  end
  local k = unknown_option(v, known)
  if k ~= nil then
    M.argerror(n, fname, ("unknown option '%s'"):format(tostring(k)), level)
  end
  return v
end

--- The set of the names in the list `names`, with those of the sets
-- `...` (the options of a function whose options go on to another).
function M.option_set(names, ...)
  local set = {}
  for _, name in ipairs(names) do set[name] = true end
  for i = 1, select("#", ...) do
    for name in pairs((select(i, ...))) do set[name] = true end
  end
  return set
end

--- Raises "bad argument #1 to 'fname' (protocol factory expected, got
-- t)", at the caller of the function that calls it, unless factory (the
-- first argument of the transports' create_* and subprocess_*) can be
-- called. Returns the factory to call: it raises a bad argument error
-- naming fname when factory makes no protocol (a table or userdata).
function M.factory(factory, fname)
  if not M.is_callable(factory) then
    error(("bad argument #1 to '%s' (protocol factory expected, got %s)")
          :format(fname, type(factory)), 3)
  end
  return function()
    local p = factory()
    local t = type(p)
    if t ~= "table" and t ~= "userdata" then
      error(("bad argument #1 to '%s' (the protocol factory returned %s, "
             .. "not a protocol)"):format(fname, t), 0)
    end
    return p
  end
end

--- Whether v can be called: a function, or a value whose metatable (a
-- table) has __call.
function M.is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

--- A callable value (M.is_callable), argument #n of fname.
function M.callable(v, n, fname, optional)
  if (optional and v == nil) or M.is_callable(v) then return v end
  M.argerror(n, fname, expected(v, "function"), 2)
end

-- Why v is not a number as `kind` asks ("number", "finite", "integer"),
-- or nil.
local function bad_number(v, kind)
  if type(v) ~= "number" then return expected(v, "number") end
  if math.type(v) == "integer" then return nil end
  if v ~= v then return "number is NaN" end
  if kind ~= "number" and (v == math.huge or v == -math.huge) then
    return "number is not finite"
  end
  if kind == "integer" and math.tointeger(v) == nil then
    return "number has no integer representation"
  end
end

-- The checker of numbers of `kind`, nil allowed when `optional`:
-- "number" (not NaN), "finite" (no infinity either), "integer" (finite,
-- integer-valued, returned as an integer).
local function number_check(kind)
  return function(v, n, fname, optional)
    if optional and v == nil then return v end
    local why = bad_number(v, kind)
    if why then M.argerror(n, fname, why, 2) end
    if kind == "integer" then return math.tointeger(v) end
    return v
  end
end
M.number = number_check("number")
M.finite = number_check("finite")
M.integer = number_check("integer")

--- Why v is not a port number (an integer in 0 .. 65535), or nil: for
-- checks that word their errors otherwise (options).
function M.bad_port(v)
  local why = bad_number(v, "integer")
  if why then return why end
  if v < 0 or v > 65535 then return "port must be 0-65535" end
end

--- A port number: an integer in 0 .. 65535 (nil when `optional`),
-- returned as an integer.
function M.port(v, n, fname, optional)
  if optional and v == nil then return v end
  local why = M.bad_port(v)
  if why then M.argerror(n, fname, why, 2) end
  return math.tointeger(v)
end

return M
