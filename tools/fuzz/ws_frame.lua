--- tools/fuzz/ws_frame.lua: the WebSocket frame codec
-- (bindings/http/ws.c: ws_parse, ws_build, utf8_valid) on arbitrary bytes
-- in arbitrary splits.
--
-- Byte 1: bits 0-1 the masking asked (nil, true, false), bit 2 a small
-- max_size (64) instead of none. The rest is a stream of frames, parsed
-- as asyncio.http.ws reads it: from a position, waiting for more bytes
-- when told (and never given fewer than the size the codec says a frame
-- needs), once fed whole and once in chunks whose sizes come from the
-- bytes. Both must give the same frames and the same error (a close code
-- 1002 or 1009 with a reason). Each frame must rebuild: ws_build of its
-- fin, opcode and payload, masked or not, parses back to the same frame;
-- utf8_valid must agree with a reference decoder in Lua.
local _http = require "asyncio._http"
local parse, build = _http.ws_parse, _http.ws_build

-- RFC 3629 in Lua (utf8.len accepts surrogates and lax forms)
local function utf8_ok(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local need, min
    if c < 0x80 then need, min = 0, 0
    elseif c >= 0xc2 and c <= 0xdf then need, min = 1, 0x80
    elseif c >= 0xe0 and c <= 0xef then need, min = 2, 0x800
    elseif c >= 0xf0 and c <= 0xf4 then need, min = 3, 0x10000
    else return false end
    if i + need > n then return false end
    local cp = need == 0 and c or c & (0x3f >> need)
    for k = 1, need do
      local d = s:byte(i + k)
      if d & 0xc0 ~= 0x80 then return false end
      cp = (cp << 6) | (d & 0x3f)
    end
    if cp < min or cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff) then
      return false
    end
    i = i + need + 1
  end
  return true
end

local function frames(stream, opts, sizes)
  local out, buf, pos, fed, k = {}, "", 1, 0, 1
  while true do
    local fin, op, payload, nxt = parse(buf, pos, opts)
    if fin == nil and op then
      if (op ~= 1002 and op ~= 1009) or type(payload) ~= "string" then
        error("bad error: " .. tostring(op) .. " " .. tostring(payload), 0)
      end
      return out, op
    elseif fin ~= nil then
      if type(fin) ~= "boolean" or nxt <= pos or nxt > #buf + 1 then
        error("bad frame result", 0)
      end
      out[#out + 1] = {fin, op, payload}
      pos = nxt
    else
      if fed >= #stream then return out end -- cut short: no error
      local need = payload
      if need ~= nil and (need <= #buf - pos + 1) then
        error("asks for bytes it has: " .. need, 0)
      end
      local n = sizes and sizes(k) or #stream
      k = k + 1
      buf = buf:sub(pos) .. stream:sub(fed + 1, fed + n)
      pos, fed = 1, fed + n
    end
  end
end

local function rebuild(f, masked, max)
  local fin, op, payload = f[1], f[2], f[3]
  for _, mask in ipairs{true, false} do
    if masked == nil or masked == mask then
      local b = build(op, payload, {fin = fin, mask = mask})
      local g = {parse(b, 1, {masked = masked, max_size = max})}
      if g[1] ~= fin or g[2] ~= op or g[3] ~= payload or g[4] ~= #b + 1 then
        error("a frame does not rebuild", 0)
      end
    end
  end
  if _http.utf8_valid(payload) ~= utf8_ok(payload) then
    error("utf8_valid disagrees on a payload", 0)
  end
end

return function(data)
  if #data < 1 then return end
  local b = data:byte(1)
  local masked = ({nil, true, false, nil})[b % 4 + 1]
  local max = b & 4 ~= 0 and 64 or 0
  local opts = {masked = masked, max_size = max}
  local stream = data:sub(2)
  local w, werr = frames(stream, opts)
  local s, serr = frames(stream, opts, function(k)
    return (stream:byte(k) or 1) % 9 + 1
  end)
  if werr ~= serr or #w ~= #s then
    error("the frames depend on how the bytes were split", 0)
  end
  for i, f in ipairs(w) do
    local g = s[i]
    if f[1] ~= g[1] or f[2] ~= g[2] or f[3] ~= g[3] then
      error("the frames depend on how the bytes were split", 0)
    end
    rebuild(f, masked, max)
  end
end
