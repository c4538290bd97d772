--- tools/fuzz/http_request.lua: the server's HTTP request glue
-- (bindings/http/parser.c's Parser("request") as asyncio.http.web feeds
-- it) on arbitrary bytes in arbitrary splits.
--
-- Byte 1 picks the limits (max_field_size, max_headers); the rest is the
-- stream. It is parsed twice: fed whole, then cut into chunks whose sizes
-- come from the bytes themselves, each followed by feed_eof. Both must
-- give the same events (heads equal, body pieces joined equal, the same
-- ends), the same upgrade remainder, and fail alike: an error is a name
-- "HPE_..." and a description, and a failed parser keeps failing.
local _http = require "asyncio._http"
local compare = dofile("tools/fuzz/lib/compare.lua")
local same, agree = compare.same, compare.agree

-- Parses stream fed in chunks of sizes(k) bytes (nil: whole): the
-- events (consecutive body pieces joined), the upgrade's remainder, and
-- the error name if any.
local function parse(kind, opts, stream, sizes)
  local p = _http.Parser(kind, opts)
  local out, i, k = {}, 1, 1
  local function add(events)
    for _, ev in ipairs(events) do
      if type(ev) == "string" and type(out[#out]) == "string" then
        out[#out] = out[#out] .. ev
      else
        out[#out + 1] = ev
      end
    end
  end
  while i <= #stream do
    local n = sizes and sizes(k) or #stream
    local events, r, why = p:feed(stream:sub(i, i + n - 1))
    if not events then
      compare.check_failure(events, r, why)
      local again, r2 = p:feed("x")
      if again ~= nil or r2 ~= r then error("a failed parser revived", 0) end
      return out, nil, r
    end
    add(events)
    if r then -- switched protocols: the rest is not HTTP
      return out, r .. stream:sub(i + n)
    end
    i, k = i + n, k + 1
  end
  local events, name, why = p:feed_eof()
  if not events then
    compare.check_failure(events, name, why)
    return out, nil, name
  end
  add(events)
  return out
end

local function run(kind, data)
  if #data < 1 then return end
  local b = data:byte(1)
  local opts = {max_field_size = b & 0x0f == 0 and 16 or 8190,
                max_headers = b & 0x10 == 0 and 128 or 4}
  local stream = data:sub(2)
  local w_ev, w_rest, w_err = parse(kind, opts, stream)
  local s_ev, s_rest, s_err = parse(kind, opts, stream, function(k)
    return (stream:byte(k) or 1) % 7 + 1
  end)
  -- an error ends the events at a point that depends on the split: only
  -- the error must agree then (see agree)
  if w_err or s_err then
    if not agree(w_err, s_err) then
      error(("the error depends on the split: %s vs %s"):format(
        tostring(w_err), tostring(s_err)), 0)
    end
    return
  end
  if not same(w_ev, s_ev) or w_rest ~= s_rest then
    error("the events depend on how the bytes were split", 0)
  end
end

return function(data) run("request", data) end
