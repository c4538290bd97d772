--- asyncio.http.ws: the WebSocket connection shared by the client
-- (session:ws_connect) and the server (web.WebSocketResponse), on a
-- stream's reader and writer. Frames are built, parsed, unmasked and
-- UTF-8-checked in C (asyncio._http, bindings/http/ws.c).
--
-- receive() answers pings itself, reassembles fragmented messages and
-- returns {type =, data =, extra =} with type one of WSMsgType: TEXT and
-- BINARY (data the payload), CLOSE (data the code, extra the reason; the
-- close frame is answered and the connection closed), CLOSED (after the
-- end), ERROR (a protocol error: a close frame with its code was sent).

local asyncio = require "asyncio"
local _http = require "asyncio._http"

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror
local concat = table.concat

local M = {}

local WSMsgType = {CONTINUATION = 0, TEXT = 1, BINARY = 2, PING = 9,
  PONG = 10, CLOSE = 8, CLOSING = 256, CLOSED = 257, ERROR = 258}
M.WSMsgType = WSMsgType

local OP_CLOSE, OP_PING, OP_PONG = 8, 9, 10

local WebSocket = {}
WebSocket.__index = WebSocket
M.WebSocket = WebSocket

--- new(reader, writer, {client =, rest =, max_msg_size =, on_close =})
function M.new(reader, writer, opts)
  return setmetatable({_reader = reader, _writer = writer,
    _client = opts.client, _buf = opts.rest or "", _pos = 1,
    _max = opts.max_msg_size or 4 * 1024 * 1024,
    _on_close = opts.on_close, closed = false, close_code = nil,
    _closing = false}, WebSocket)
end

local function msg(t, data, extra)
  return {type = t, data = data, extra = extra}
end

--- Sends one frame (raises ConnectionResetError once closed).
function WebSocket:_send(op, payload)
  if self._closing and op ~= OP_CLOSE then
    error(asyncio.ConnectionResetError("Cannot write to closing transport"),
          3)
  end
  self._writer:write(_http.ws_build(op, payload, {mask = self._client}))
  return self._writer:drain()
end

--- send_str(s) -> Coroutine
function WebSocket:send_str(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'send_str' (string expected, got " ..
          type(s) .. ")", 2)
  end
  return self:_send(1, s)
end

--- send_bytes(b) -> Coroutine
function WebSocket:send_bytes(b)
  if type(b) ~= "string" then
    error("bad argument #1 to 'send_bytes' (string expected, got " ..
          type(b) .. ")", 2)
  end
  return self:_send(2, b)
end

--- send_json(v) -> Coroutine
function WebSocket:send_json(v)
  return self:_send(1, require("asyncio.http")._json().encode(v))
end

--- ping([data]) / pong([data]) -> Coroutine
function WebSocket:ping(data) return self:_send(OP_PING, data or "") end
function WebSocket:pong(data) return self:_send(OP_PONG, data or "") end

function WebSocket:_finish()
  if not self.closed then
    self.closed = true
    self._writer:close()
    if self._on_close then self._on_close() end
  end
end

--- The next frame: fin, opcode, payload | false, code, reason | nil at
-- the end of the stream.
function WebSocket:_frame()
  while true do
    local fin, op, payload, nxt = _http.ws_parse(self._buf, self._pos,
      {masked = not self._client, max_size = self._max})
    if fin == false then return false, op, payload end
    if fin ~= nil then
      self._pos = nxt
      if nxt > 65536 then
        self._buf, self._pos = self._buf:sub(nxt), 1
      end
      return fin, op, payload
    end
    local ok, data = pcall(await, self._reader:read(65536))
    if not ok then
      if iserror(data, asyncio.Exception) then return nil end
      error(data, 0)
    end
    if data == "" then return nil end
    if self._pos > 1 then
      self._buf, self._pos = self._buf:sub(self._pos), 1
    end
    self._buf = self._buf .. data
  end
end

--- Fails the connection with code: sends the close frame, closes.
function WebSocket:_fail(code, reason)
  self.close_code = code
  if not self._closing then
    self._closing = true
    pcall(function()
      self._writer:write(_http.ws_build(OP_CLOSE,
        string.pack(">I2", code) .. (reason or ""):sub(1, 120),
        {mask = self._client}))
    end)
  end
  self:_finish()
  return msg(WSMsgType.ERROR, asyncio.ConnectionError(reason or ""))
end

--- receive() -> Coroutine -> a message (see the file comment)
WebSocket.receive = async(function(self)
  if self.closed then return msg(WSMsgType.CLOSED) end
  local op0, parts, size = nil, {}, 0
  while true do
    local fin, op, payload = self:_frame()
    if fin == nil then
      self.close_code = self.close_code or 1006
      self:_finish()
      return msg(WSMsgType.CLOSED)
    end
    if fin == false then return self:_fail(op, payload) end
    if op == OP_PING then
      if not self._closing then pcall(await, self:pong(payload)) end
    elseif op == OP_PONG then -- luaio sends no pings of its own
    elseif op == OP_CLOSE then
      local code, reason = 1005, ""
      if #payload >= 2 then
        code = string.unpack(">I2", payload)
        reason = payload:sub(3)
        if code < 1000 or (code >= 1004 and code <= 1006) or
            (code >= 1012 and code < 3000) or code >= 5000 or
            not _http.utf8_valid(reason) then
          return self:_fail(1002, "invalid close frame")
        end
      elseif #payload == 1 then
        return self:_fail(1002, "invalid close frame")
      end
      self.close_code = code
      if not self._closing then
        self._closing = true
        pcall(function()
          self._writer:write(_http.ws_build(OP_CLOSE,
            #payload >= 2 and string.pack(">I2", code) or "",
            {mask = self._client}))
        end)
      end
      self:_finish()
      return msg(WSMsgType.CLOSE, code, reason)
    elseif op == 0 then
      if not op0 then return self:_fail(1002, "unexpected continuation") end
      parts[#parts + 1] = payload
      size = size + #payload
    else
      if op0 then return self:_fail(1002, "expected a continuation") end
      op0, parts, size = op, {payload}, #payload
    end
    if size > self._max then
      return self:_fail(1009, "message too big")
    end
    if op0 and fin and op < 8 then
      local data = #parts == 1 and parts[1] or concat(parts)
      if op0 == 1 then
        if not _http.utf8_valid(data) then
          return self:_fail(1007, "invalid UTF-8 text")
        end
        return msg(WSMsgType.TEXT, data)
      end
      return msg(WSMsgType.BINARY, data)
    end
  end
end)

local function expect(self, t, fname)
  local m = await(self:receive())
  if m.type ~= t then
    error(asyncio.TypeError(("Received message %d:%s is not %s"):format(
      m.type, tostring(m.data), fname)), 0)
  end
  return m.data
end

--- receive_str() / receive_bytes() / receive_json() -> Coroutine
WebSocket.receive_str = async(function(self)
  return expect(self, WSMsgType.TEXT, "WSMsgType.TEXT")
end)
WebSocket.receive_bytes = async(function(self)
  return expect(self, WSMsgType.BINARY, "WSMsgType.BINARY")
end)
WebSocket.receive_json = async(function(self)
  local s = expect(self, WSMsgType.TEXT, "WSMsgType.TEXT")
  return require("asyncio.http")._json().decode(s)
end)

--- iter(): for msg in ws:iter() do (inside a task): messages until the
-- connection closes (CLOSE, CLOSED and ERROR end it)
function WebSocket:iter()
  return function()
    local m = await(self:receive())
    if m.type ~= WSMsgType.CLOSE and m.type ~= WSMsgType.CLOSED and
        m.type ~= WSMsgType.ERROR then
      return m
    end
  end
end

--- close([{code = 1000, message = ""}]) -> Coroutine -> true when this
-- call closed it: sends the close frame, waits (at most timeout = 10
-- seconds) for the peer's, then closes the connection.
WebSocket.close = async(function(self, opts)
  if self.closed or self._closing then return false end
  opts = opts or {}
  local code = opts.code or 1000
  self._closing = true
  self.close_code = code
  local ok = pcall(function()
    self._writer:write(_http.ws_build(OP_CLOSE, string.pack(">I2", code)
      .. (opts.message or ""):sub(1, 120), {mask = self._client}))
    await(self._writer:drain())
  end)
  if ok then
    pcall(await, asyncio.wait_for(async(function()
      while true do
        local fin, op = self:_frame()
        if fin == nil or fin == false or op == OP_CLOSE then return end
      end
    end)(), opts.timeout or 10))
  end
  self:_finish()
  return true
end)

return M
