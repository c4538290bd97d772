--- tools/fuzz/resp.lua: the RESP reply glue of asyncio.redis
-- (bindings/redis/resp.c over hiredis' reader) fed arbitrary bytes.
--
-- The bytes are parsed twice: fed whole, then cut into chunks (sizes from
-- the bytes themselves) with a get() after each; both must give the same
-- replies, and the only error allowed is "protocol error: ..." (after
-- which the stream is unusable).
local ok_load, redis = pcall(require, "asyncio._redis")
if not ok_load then -- built without hiredis: nothing to fuzz
  return function() end
end

local function errfn(msg) return {err = msg} end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" and a ~= a then return b ~= b end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Parses data fed in chunks of the given sizes (nil: whole); returns the
-- replies and the protocol error, if any.
local function parse(data, sizes)
  local p <close> = redis.Protocol(errfn)
  local replies, i, k = {}, 1, 1
  while i <= #data do
    local n = sizes and sizes(k) or #data
    p:feed(data:sub(i, i + n - 1))
    i, k = i + n, k + 1
    while true do
      local got = table.pack(pcall(p.get, p))
      if not got[1] then
        if type(got[2]) ~= "string" or
           not got[2]:find("^protocol error") then
          error("unexpected error: " .. tostring(got[2]), 0)
        end
        return replies, got[2]
      end
      if got.n == 1 then break end
      replies[#replies + 1] = {got[2], got[3]}
    end
  end
  return replies
end

return function(data)
  local whole, werr = parse(data)
  local split, serr = parse(data, function(k)
    return (data:byte(k) or 1) % 5 + 1
  end)
  if (werr == nil) ~= (serr == nil) or not same(whole, split) then
    error("the replies depend on how the bytes were split", 0)
  end
end
