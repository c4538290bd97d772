--- tools/fuzz/http_response.lua: the client's HTTP response glue
-- (Parser("response") of bindings/http/parser.c, its chunked framing, and
-- gzip/deflate decoding through inflate.c's Inflater) on arbitrary bytes
-- in arbitrary splits.
--
-- Byte 1: bit 0 asks skip_body (a HEAD request's answer), bits 1-2 the
-- Content-Encoding decoder forced on every body (none, gzip, deflate) in
-- addition to the one the head names. The response stream is parsed
-- whole, then in chunks whose sizes come from the bytes; each body is
-- decoded piece by piece as the client does. Both runs must agree on the
-- heads, the decoded bodies and the errors: a parser error "HPE_...", or
-- the decoder's "invalid compressed data" / "decoded body too large".
local _http = require "asyncio._http"
local compare = dofile("tools/fuzz/lib/compare.lua")
local same, agree = compare.same, compare.agree

local DECODE_ERRORS = {["invalid compressed data"] = true,
                       ["decoded body too large"] = true}

local function parse(stream, skip, forced, sizes)
  local p = _http.Parser("response")
  if skip then p:skip_body(true) end
  local out, z, i, k = {}, nil, 1, 1
  local function add(events)
    for _, ev in ipairs(events) do
      if type(ev) == "table" then
        out[#out + 1] = ev
        out[#out + 1] = ""
        local enc = forced or (ev.headers["content-encoding"] or ""):lower()
        z = (enc == "gzip" or enc == "deflate") and _http.Inflater(enc)
          or nil
      elseif type(ev) == "string" then
        if z then
          local ok, dec = pcall(z.feed, z, ev)
          if not ok then
            local why = tostring(dec):gsub("^.-: ", "")
            if not DECODE_ERRORS[why] then
              error("unexpected decoder error: " .. tostring(dec), 0)
            end
            return "decode: " .. why
          end
          ev = dec
        end
        out[#out] = out[#out] .. ev
      elseif ev == true then -- the message's end (false: a chunk's end)
        out[#out + 1] = z and z:finish() or true
        z = nil
      end
    end
  end
  local function fail(events, name, why)
    compare.check_failure(events, name, why)
    return out, name
  end
  while i <= #stream do
    local n = sizes and sizes(k) or #stream
    local events, name, why = p:feed(stream:sub(i, i + n - 1))
    if not events then return fail(events, name, why) end
    local derr = add(events)
    if derr then return out, derr end
    if name then return out end -- switched protocols
    i, k = i + n, k + 1
  end
  local events, name, why = p:feed_eof()
  if not events then return fail(events, name, why) end
  return out, add(events)
end

return function(data)
  if #data < 1 then return end
  local b = data:byte(1)
  local skip = b & 1 == 1
  local forced = ({nil, "gzip", "deflate"})[(b >> 1) % 4]
  local stream = data:sub(2)
  local w, werr = parse(stream, skip, forced)
  local s, serr = parse(stream, skip, forced, function(k)
    return (stream:byte(k) or 1) % 7 + 1
  end)
  if werr or serr then
    if not agree(werr, serr) then
      error(("the error depends on the split: %s vs %s"):format(
        tostring(werr), tostring(serr)), 0)
    end
    return
  end
  if not same(w, s) then
    error("the responses depend on how the bytes were split", 0)
  end
end
