--- tools/fuzz/ws_messages.lua: the WebSocket connection of
-- asyncio.http.ws (message reassembly, control frames, the close
-- handshake, protocol errors) reading arbitrary bytes in arbitrary
-- splits from a StreamReader, on a virtual-clock loop.
--
-- Byte 1: bit 0 the client side (it wants unmasked frames, else masked),
-- bit 1 autoping off, bit 2 autoclose off, bit 3 max_msg_size 100 (else
-- 4 MiB). The rest is fed whole, then in chunks whose sizes come from the
-- bytes, with a task switch between them; receive() is called until the
-- end. Both runs must give the same messages; no error may escape
-- receive; TEXT is valid UTF-8 and no message is over max_msg_size; an
-- ERROR carries a WebSocketError with code 1002, 1007 or 1009; what the
-- connection wrote are whole frames masked on the client side only, and
-- the connection is closed at the end (unless it waits in CLOSING).
local asyncio = require "asyncio"
local ws_mod = require "asyncio.http.ws"
local _http = require "asyncio._http"
local await = asyncio.await
local T = ws_mod.WSMsgType

local loop = asyncio.new_event_loop{clock = "virtual"}

-- a writer keeping what is written
local Writer = {}
Writer.__index = Writer
function Writer:write(s) self.out[#self.out + 1] = s end
function Writer:drain() return asyncio.sleep(0) end
function Writer:close() self.closed = true end

local ERROR_CODES = {[1002] = true, [1007] = true, [1009] = true}

local function check_written(w, client)
  local buf, pos = table.concat(w.out), 1
  while pos <= #buf do
    local fin, op, payload, nxt = _http.ws_parse(buf, pos,
      {masked = client, max_size = 0})
    if fin == nil or type(payload) ~= "string" then
      error("wrote a broken frame", 0)
    end
    pos = nxt
  end
end

local function run(flags, stream, split)
  local client = flags & 1 == 1
  local max = flags & 8 ~= 0 and 100 or 4 * 1024 * 1024
  local reader = asyncio.StreamReader()
  local writer = setmetatable({out = {}, closed = false}, Writer)
  local got = {}
  local main = asyncio.async(function()
    local ws = ws_mod.new(reader, writer, {client = client,
      autoping = flags & 2 == 0, autoclose = flags & 4 == 0,
      max_msg_size = max})
    local feeder = asyncio.create_task(asyncio.async(function()
      local i, k = 1, 1
      while i <= #stream do
        local n = split and (stream:byte(k) or 1) % 9 + 1 or #stream
        reader:feed_data(stream:sub(i, i + n - 1))
        i, k = i + n, k + 1
        await(asyncio.sleep(0))
      end
      reader:feed_eof()
    end)())
    while true do
      local ok, m = pcall(await, ws:receive())
      if not ok then error("receive raised: " .. tostring(m), 0) end
      local t = m.type
      if t == T.ERROR then
        if not asyncio.iserror(m.data, ws_mod.WebSocketError) or
            not ERROR_CODES[m.data.code] then
          error("bad ERROR: " .. tostring(m.data), 0)
        end
        got[#got + 1] = {t, m.data.code}
      elseif t == T.TEXT or t == T.BINARY then
        if #m.data > max then error("a message over max_msg_size", 0) end
        if t == T.TEXT and not _http.utf8_valid(m.data) then
          error("TEXT that is no UTF-8", 0)
        end
        got[#got + 1] = {t, m.data}
      else
        got[#got + 1] = {t, m.data, m.extra}
      end
      if t == T.CLOSED or t == T.CLOSING then break end
    end
    await(feeder)
    if not got[#got] or (got[#got][1] == T.CLOSED) ~= writer.closed then
      error("the end and the transport disagree", 0)
    end
  end)
  loop:run_until_complete(main())
  check_written(writer, client)
  return got
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    local x, y = a[i], b[i]
    if x[1] ~= y[1] or x[2] ~= y[2] or x[3] ~= y[3] then return false end
  end
  return true
end

return function(data)
  if #data < 1 then return end
  local flags, stream = data:byte(1), data:sub(2)
  if not same(run(flags, stream, false), run(flags, stream, true)) then
    error("the messages depend on how the bytes were split", 0)
  end
end
