--- asyncio.http.headers: CIMultiDict, the case-insensitive multidict of
-- HTTP headers (aiohttp's multidict.CIMultiDict).
--
-- The table keeps every field in order as a flat list {name1, value1,
-- name2, value2, ...} and, under each lower-cased name, the first value;
-- the parser (asyncio._http) builds exactly this shape, so a parsed head's
-- headers become a CIMultiDict with no copy.
--
--   local h = CIMultiDict{["Content-Type"] = "text/plain"}
--   h["content-type"]  --> "text/plain" (any case)
--   h:add("Set-Cookie", "a=1"); h:getall("set-cookie") --> {"a=1"}
--   for name, value in h:items() do ... end

local lower, setmetatable, rawget, rawset, type, tostring, pairs =
  string.lower, setmetatable, rawget, rawset, type, tostring, pairs

local M = {}

--- The pattern of an HTTP token (RFC 9110: a method, a WebSocket
-- subprotocol, a field name), the whole string.
M.TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"
M.KeyError = require("asyncio").Exception:subclass("KeyError")
local TypeError = require("asyncio").TypeError
local methods = {}
local CIMultiDict = {__name = "CIMultiDict"}

CIMultiDict.__index = function(t, k)
  local m = methods[k]
  if m then return m end
  if type(k) == "string" then return rawget(t, lower(k)) end
  return nil
end

--- h[name] = value replaces every field called name (any case) by one.
CIMultiDict.__newindex = function(t, k, v)
  if type(k) ~= "string" then error("header names are strings", 2) end
  methods.set(t, k, v)
end

function CIMultiDict.__tostring(t)
  local out = {}
  for i = 1, #t, 2 do out[#out + 1] = t[i] .. ": " .. t[i + 1] end
  return "<CIMultiDict(" .. table.concat(out, ", ") .. ")>"
end

--- get(name [, default]) -> the first value or default
function methods.get(t, name, default)
  local v = rawget(t, lower(name))
  if v == nil then return default end
  return v
end

--- getone(name [, default]) -> the first value (raises KeyError when
-- there is none and no default, as multidict)
function methods.getone(t, name, default)
  local v = rawget(t, lower(name))
  if v ~= nil then return v end
  if default ~= nil then return default end
  error(M.KeyError(name), 2)
end

--- getall(name [, default]) -> the list of every value (raises KeyError
-- when there is none and no default, as multidict)
function methods.getall(t, name, default)
  local key, out = lower(name), {}
  for i = 1, #t, 2 do
    if lower(t[i]) == key then out[#out + 1] = t[i + 1] end
  end
  if #out == 0 then
    if default ~= nil then return default end
    error(M.KeyError(name), 2)
  end
  return out
end

--- add(name, value): one more field (the others stay); value a string
-- or a number, else TypeError (a list of values is not one)
function methods.add(t, name, value)
  local tv = type(value)
  if tv ~= "string" then
    if tv ~= "number" then
      error(TypeError(("header %s: a string expected, got %s")
        :format(tostring(name), tv)), 0)
    end
    value = tostring(value)
  end
  local n = #t
  rawset(t, n + 1, name)
  rawset(t, n + 2, value)
  local key = lower(name)
  if rawget(t, key) == nil then rawset(t, key, value) end
end

--- set(name, value): the one field called name (nil removes them all)
function methods.set(t, name, value)
  local key, j, n = lower(name), 1, #t
  for i = 1, n, 2 do
    if lower(t[i]) ~= key then
      rawset(t, j, t[i]); rawset(t, j + 1, t[i + 1]); j = j + 2
    end
  end
  for i = j, n do rawset(t, i, nil) end
  rawset(t, key, nil)
  if value ~= nil then methods.add(t, name, value) end
end

--- pop(name [, default]) -> the first value, every field removed
function methods.pop(t, name, default)
  local v = rawget(t, lower(name))
  methods.set(t, name, nil)
  if v == nil then return default end
  return v
end

--- contains(name) -> boolean
function methods.contains(t, name)
  return rawget(t, lower(name)) ~= nil
end

--- len() -> the number of fields
function methods.len(t) return #t // 2 end

--- items() -> iterator of name, value in order
function methods.items(t)
  local i = -1
  return function()
    i = i + 2
    if t[i] ~= nil then return t[i], t[i + 1] end
  end
end

--- keys() -> the list of names in order (repeats kept)
function methods.keys(t)
  local out = {}
  for i = 1, #t, 2 do out[#out + 1] = t[i] end
  return out
end

--- copy() -> a new CIMultiDict with the same fields
function methods.copy(t)
  local c = setmetatable({}, CIMultiDict)
  for i = 1, #t, 2 do methods.add(c, t[i], t[i + 1]) end
  return c
end

--- extend(src): adds every field of src (a CIMultiDict, a list of
-- {name, value} pairs or a name -> value table)
function methods.extend(t, src)
  if src == nil then return end
  if getmetatable(src) == CIMultiDict then
    for i = 1, #src, 2 do methods.add(t, src[i], src[i + 1]) end
    return
  end
  for i = 1, #src do
    if type(src[i]) ~= "table" then
      error("header pairs are {name, value} tables", 3)
    end
    methods.add(t, src[i][1], src[i][2])
  end
  local names = {}
  for k in pairs(src) do
    if type(k) == "string" then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do methods.add(t, k, src[k]) end
end

--- CIMultiDict([src]) -> a new multidict (src as extend's)
function M.CIMultiDict(src)
  if src ~= nil and type(src) ~= "table" then
    error("bad argument #1 to 'CIMultiDict' (table expected, got " ..
          type(src) .. ")", 2)
  end
  local t = setmetatable({}, CIMultiDict)
  methods.extend(t, src)
  return t
end

--- wrap(t) -> t (a parsed headers table) as a CIMultiDict, in place
function M.wrap(t) return setmetatable(t, CIMultiDict) end

function M.is(t) return getmetatable(t) == CIMultiDict end

M.class = CIMultiDict
return M
