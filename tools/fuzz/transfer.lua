--- tools/fuzz/transfer.lua: transfer.c's pack/unpack of the values that
-- cross Lua states. The input is decoded into a value (nil, booleans,
-- integers, floats, strings, nested tables with any of those as keys,
-- shared and cyclic references) that goes through a Channel (packed, then
-- unpacked); what comes out must equal what went in, or the put must
-- raise a SendError.
local asyncio = require "asyncio"

local function decoder(data)
  local pos = 0
  local function byte()
    pos = pos + 1
    return data:byte(pos) or 0
  end
  local made = {}
  local function value(depth)
    local tag = byte() % 9
    if tag == 0 then return nil
    elseif tag == 1 then return byte() % 2 == 1
    elseif tag == 2 then return byte() - 128
    elseif tag == 3 then
      local s = data:sub(pos + 1, pos + 8)
      pos = pos + 8
      if #s < 8 then return 0.5 end
      return (string.unpack("<d", s))
    elseif tag == 4 then
      local n = byte() % 24
      local s = data:sub(pos + 1, pos + n)
      pos = pos + n
      return s
    elseif tag == 5 and depth < 4 then
      local t = {}
      made[#made + 1] = t
      for _ = 1, byte() % 6 do
        local k = value(depth + 1)
        if k ~= nil and k == k then t[k] = value(depth + 1) end
      end
      return t
    elseif tag == 6 and #made > 0 then -- a shared or cyclic reference
      return made[byte() % #made + 1]
    elseif tag == 7 then return math.maxinteger - byte()
    else return 0 / 0
    end
  end
  return value
end

local function same(a, b, seen)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    if a ~= a then return b ~= b end
    return a == b and math.type(a) == math.type(b)
  end
  if type(a) ~= "table" then return a == b end
  if seen[a] then return seen[a] == b end
  seen[a] = b
  for k, v in pairs(a) do
    local bk = k
    if type(k) == "table" then -- find b's copy of the key table
      bk = nil
      for k2 in pairs(b) do
        if type(k2) == "table" and same(k, k2, seen) then bk = k2 break end
      end
      if bk == nil then return false end
    end
    if not same(v, b[bk], seen) then return false end
  end
  for k in pairs(b) do
    if type(k) ~= "table" and a[k] == nil then return false end
  end
  return true
end

local ch = asyncio.Channel()

return function(data)
  local v = decoder(data)(0)
  local ok, err = pcall(ch.put, ch, v)
  if not ok then
    if not asyncio.iserror(err, asyncio.SendError) then
      error("put raised " .. tostring(err), 0)
    end
    return
  end
  local got = ch:get(0)
  if not same(v, got, {}) then
    error("the value changed on its way: " .. asyncio.repr(v), 0)
  end
end
