--- asyncio.http.ws: the WebSocket connection shared by the client
-- (session:ws_connect) and the server (web.WebSocketResponse), on a
-- stream's reader and writer, in the shape of aiohttp's
-- ClientWebSocketResponse / WebSocketResponse. Frames are built, parsed,
-- unmasked and UTF-8-checked in C (asyncio._http, bindings/http/ws.c).
--
-- receive([timeout]) returns {type =, data =, extra =} with type one of
-- WSMsgType: TEXT and BINARY (data the payload, extra "" as aiohttp's),
-- CLOSE (data the peer's code, extra its reason), CLOSING (close() was
-- called by another task while this one was receiving, or the peer's
-- close awaits our close() when autoclose is off), CLOSED (after the
-- end), ERROR (data the error: a WebSocketError with .code after a
-- protocol error, for which a close frame with that code was sent; an
-- asyncio.TimeoutError when the heartbeat got no pong), and PING/PONG
-- (extra "") when autoping is off. One task receives at a time; any task
-- may send.

local asyncio = require "asyncio"
local _http = require "asyncio._http"
local check = require "asyncio.check"
local TOKEN = require("asyncio.http.headers").TOKEN

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror
local concat = table.concat
local ws_parse, ws_build = _http.ws_parse, _http.ws_build

local M = {}

local WSMsgType = {CONTINUATION = 0, TEXT = 1, BINARY = 2, PING = 9,
  PONG = 10, CLOSE = 8, CLOSING = 256, CLOSED = 257, ERROR = 258}
M.WSMsgType = WSMsgType

local WSCloseCode = {OK = 1000, GOING_AWAY = 1001, PROTOCOL_ERROR = 1002,
  UNSUPPORTED_DATA = 1003, ABNORMAL_CLOSURE = 1006, INVALID_TEXT = 1007,
  POLICY_VIOLATION = 1008, MESSAGE_TOO_BIG = 1009,
  MANDATORY_EXTENSION = 1010, INTERNAL_ERROR = 1011, SERVICE_RESTART = 1012,
  TRY_AGAIN_LATER = 1013, BAD_GATEWAY = 1014}
M.WSCloseCode = WSCloseCode

--- WebSocketError(code, message): a protocol error (the data of an ERROR
-- message); .code is the close code that was sent.
M.WebSocketError = asyncio.Exception:subclass("http.WebSocketError",
  function(e, code, message)
    e.code = code
    e.message = message
  end)

local OP_CLOSE, OP_PING, OP_PONG = 8, 9, 10
local BUFSIZE = 65536
-- a server returning CLOSED this many times raises instead (aiohttp's
-- guard against a receive loop that ignores the end)
local CLOSED_THRESHOLD = 5

local WebSocket = {}
WebSocket.__index = WebSocket
M.WebSocket = WebSocket

local function is_cancel(e)
  return iserror(e) and not iserror(e, asyncio.Exception)
end

--- A received message: {type =, data =, extra =} (aiohttp's WSMessage)
-- with json([{loads =}]): its data decoded, as receive_json.
local WSMessage = {}
WSMessage.__index = WSMessage
M.WSMessage = WSMessage

local MSG_JSON_OPTS = check.option_set{"loads"}

function WSMessage:json(opts)
  check.options(opts, 2, "json", MSG_JSON_OPTS)
  local http = require "asyncio.http"
  return http._check_loads(opts and opts.loads, 2, "json")(self.data)
end

local function msg(t, data, extra)
  return setmetatable({type = t, data = data, extra = extra}, WSMessage)
end

local function opt_number(v, name, fname, n)
  if v ~= nil and (type(v) ~= "number" or v ~= v or v < 0) then
    error(("bad argument #%d to '%s' (field '%s': a number >= 0 expected, "
      .. "got %s)"):format(n, fname, name, tostring(v)), 4)
  end
  return v
end

--- check_opts(opts, fname, n): raises a bad argument for a wrong value of
-- an option of WebSocketResponse or ws_connect, whose argument #n opts
-- is (called from those, level 3). Their own option sets reject
-- unknown names.
function M.check_opts(opts, fname, n)
  opt_number(opts.heartbeat, "heartbeat", fname, n)
  opt_number(opts.receive_timeout, "receive_timeout", fname, n)
  opt_number(opts.max_msg_size, "max_msg_size", fname, n)
  if type(opts.timeout) == "number" then
    opt_number(opts.timeout, "timeout", fname, n)
  end
  if opts.heartbeat == 0 then
    error(("bad argument #%d to '%s' (field 'heartbeat': must be > 0)")
      :format(n, fname), 3)
  end
  local p = opts.protocols
  if p ~= nil then
    if type(p) ~= "table" then
      error(("bad argument #%d to '%s' (field 'protocols': table expected, "
        .. "got %s)"):format(n, fname, type(p)), 3)
    end
    for i, v in ipairs(p) do
      if type(v) ~= "string" or not v:match(TOKEN) then
        error(("bad argument #%d to '%s' (protocols[%d]: a token expected)")
          :format(n, fname, i), 3)
      end
    end
  end
end

--- choose_protocol(offered, protocols) -> the first subprotocol of the
-- header value offered ("a, b") that the list protocols holds, or nil.
function M.choose_protocol(offered, protocols)
  if not offered or not protocols then return nil end
  for p in offered:gmatch("[^,]+") do
    p = p:match("^%s*(.-)%s*$")
    for _, mine in ipairs(protocols) do
      if p == mine then return p end
    end
  end
end

--- new(reader, writer, {client =, rest =, max_msg_size = 4 MiB (0: no
-- limit), heartbeat =, autoping = true, autoclose = true,
-- receive_timeout =, timeout = 10 (close's wait), protocol =,
-- on_close =} [, obj]) -> a WebSocket. Starts the heartbeat when asked.
-- obj, when given, becomes the WebSocket (web.WebSocketResponse: it
-- keeps its metatable, whose __index must find WebSocket's methods), so
-- its methods are called on it directly and count their arguments as
-- the caller wrote them.
function M.new(reader, writer, opts, obj)
  local ws = obj or setmetatable({}, WebSocket)
  ws._reader, ws._writer = reader, writer
  ws._client, ws._buf, ws._pos = opts.client, opts.rest or "", 1
  ws._max = opts.max_msg_size or 4 * 1024 * 1024
  ws._autoping = opts.autoping ~= false
  ws._autoclose = opts.autoclose ~= false
  ws._receive_timeout = opts.receive_timeout
  ws._close_timeout = type(opts.timeout) == "number" and opts.timeout or 10
  ws._on_close, ws.protocol = opts.on_close, opts.protocol
  ws.closed, ws.close_code = false, nil
  if opts.heartbeat then
    ws._hb = opts.heartbeat
    ws._loop = asyncio.get_running_loop()
    ws._last_rx = ws._loop:time()
    ws:_hb_arm(ws._hb)
  end
  return ws
end

---------------------------------------------------------------------------
-- Heartbeat (aiohttp's): heartbeat seconds after the last frame received,
-- a ping; no frame within half of that after it fails the connection
-- with 1006 and an asyncio.TimeoutError. Frames count when a receive (or
-- close) reads them.

local hb_ping

local function hb_check(self)
  self._hb_handle = nil
  if self.closed then return end
  local now = self._loop:time()
  if self._last_rx >= self._ping_at then
    return self:_hb_arm(self._last_rx + self._hb - now)
  end
  self._hb_exc = asyncio.TimeoutError(("No PONG received after %g "
    .. "seconds"):format(self._hb / 2))
  self._exception = self._hb_exc
  self.close_code = WSCloseCode.ABNORMAL_CLOSURE
  self:_finish() -- a receive in progress sees the end, then the error
end

hb_ping = function(self)
  self._hb_handle = nil
  if self.closed then return end
  local now = self._loop:time()
  local idle = now - self._last_rx
  if idle < self._hb then return self:_hb_arm(self._hb - idle) end
  self._ping_at = now
  pcall(self._writer.write, self._writer,
        ws_build(OP_PING, "", {mask = self._client}))
  self._hb_handle = self._loop:call_later(self._hb / 2, hb_check, self)
end

function WebSocket:_hb_arm(delay)
  self._hb_handle = self._loop:call_later(delay, hb_ping, self)
end

---------------------------------------------------------------------------
-- Sending

-- the awaitable of a send once closed: raises when awaited, as
-- aiohttp's coroutines (so pcall(await, ws:send_str(x)) catches it)
local raise_closed = async(function()
  error(asyncio.ConnectionResetError("Cannot write to closing transport"),
        0)
end)

--- Sends one frame -> an awaitable (raising ConnectionResetError when
-- awaited once closed, or once the peer ended the stream: aiohttp's
-- transport is closing then, and a write would go to a socket gone).
function WebSocket:_send(op, payload)
  if self.closed or self._sent_close or self._reader:is_eof() then
    return raise_closed()
  end
  self._writer:write(ws_build(op, payload, {mask = self._client}))
  return self._writer:drain()
end

local function need_string(v, fname)
  if type(v) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(
      fname, type(v)), 3)
  end
end

--- send_str(s) -> Coroutine
function WebSocket:send_str(s)
  need_string(s, "send_str")
  return self:_send(1, s)
end

--- send_bytes(b) -> Coroutine
function WebSocket:send_bytes(b)
  need_string(b, "send_bytes")
  return self:_send(2, b)
end

local SEND_JSON_OPTS = check.option_set{"dumps"}

--- send_json(v [, {dumps =}]) -> Coroutine: v as the text dumps(v)
-- gives (lua-cjson's encode by default), as aiohttp's; a value that does
-- not encode raises at the call what json.dumps raises (http._dumps), as
-- json_response.
function WebSocket:send_json(v, opts)
  check.options(opts, 3, "send_json", SEND_JSON_OPTS)
  local http = require "asyncio.http"
  local dumps = http._check_codec(opts and opts.dumps, "dumps", 3,
                                  "send_json")
  local s = http._dumps(v, dumps, 2)
  if type(s) ~= "string" then
    check.argerror(3, "send_json", "option 'dumps': returned "
      .. check.typename(s) .. ", not a string")
  end
  return self:_send(1, s)
end

--- A control frame's payload (at most 125 bytes, RFC 6455 5.5), argument
-- #1 of fname.
local function control_data(data, fname)
  if data == nil then return "" end
  if type(data) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(
      fname, type(data)), 3)
  end
  if #data > 125 then
    error(("bad argument #1 to '%s' (at most 125 bytes expected, got %d)")
      :format(fname, #data), 3)
  end
  return data
end

--- ping([data]) / pong([data]) -> Coroutine
function WebSocket:ping(data)
  return self:_send(OP_PING, control_data(data, "ping"))
end
function WebSocket:pong(data)
  return self:_send(OP_PONG, control_data(data, "pong"))
end

--- Writes a close frame with code (0: empty) without waiting; false when
-- the transport refused it.
function WebSocket:_write_close(code, reason)
  self._sent_close = true
  local payload = code == 0 and "" or
    string.pack(">I2", code) .. (reason or ""):sub(1, 123)
  return pcall(self._writer.write, self._writer,
               ws_build(OP_CLOSE, payload, {mask = self._client}))
end

--- The end: closes the transport once, stops the heartbeat.
function WebSocket:_finish()
  self.closed = true
  if self._hb_handle then
    self._hb_handle:cancel()
    self._hb_handle = nil
  end
  if not self._done then
    self._done = true
    self._writer:close()
    if self._on_close then self._on_close() end
  end
end

---------------------------------------------------------------------------
-- Receiving

--- The next frame: fin (a boolean), opcode, payload | "error", code,
-- reason | nil at the end of the stream. Raises what cancels the task.
-- A frame whose header says it needs more bytes is read in pieces
-- joined once.
function WebSocket:_frame()
  local opts = {masked = not self._client, max_size = self._max}
  while true do
    local fin, op, payload, nxt = ws_parse(self._buf, self._pos, opts)
    if fin == nil and op then return "error", op, payload end
    if fin ~= nil then
      self._pos = nxt
      if self._hb then self._last_rx = self._loop:time() end
      return fin, op, payload
    end
    local need, pieces = payload or 0, {self._buf:sub(self._pos)}
    local have = #pieces[1]
    repeat
      if self._done then return nil end
      local ok, data = pcall(await, self._reader:read(BUFSIZE))
      if not ok then
        -- keeps what came: a cancelled receive loses no byte
        self._buf, self._pos = concat(pieces), 1
        if is_cancel(data) then error(data, 0) end
        return nil
      end
      if data == "" then
        self._buf, self._pos = concat(pieces), 1
        return nil
      end
      pieces[#pieces + 1] = data
      have = have + #data
    until have >= need
    self._buf, self._pos = concat(pieces), 1
  end
end

--- Fails the connection with code, as aiohttp after a WebSocketError:
-- the close frame carries the code alone, close_code ends as 1006 (the
-- close found the stream broken) and exception() is the error, which the
-- ERROR message carries too.
function WebSocket:_fail(code, reason)
  self.close_code = WSCloseCode.ABNORMAL_CLOSURE
  if not self._sent_close then self:_write_close(code) end
  self:_finish()
  local e = M.WebSocketError(code, reason)
  self._exception = e
  return msg(WSMsgType.ERROR, e)
end

--- A close frame's payload: code, reason | false, close code, why.
local function close_payload(payload)
  if #payload == 0 then return 0, "" end
  if #payload == 1 then return false, 1002, "invalid close frame" end
  local code = string.unpack(">I2", payload)
  if code < 1000 or (code >= 1004 and code <= 1006) or
      (code >= 1015 and code < 3000) or code >= 5000 then
    return false, 1002, "invalid close code " .. code
  end
  local reason = payload:sub(3)
  if not _http.utf8_valid(reason) then
    return false, 1007, "invalid UTF-8 in the close reason"
  end
  return code, reason
end

--- The peer's close frame arrived.
function WebSocket:_peer_close(payload)
  local code, reason, why = close_payload(payload)
  if not code then return self:_fail(reason, why) end
  self._got_close = true
  self.close_code = code
  if self._sent_close then
    self:_finish()
  elseif self._autoclose then
    self:_write_close(WSCloseCode.OK)
    self:_finish()
  end
  return msg(WSMsgType.CLOSE, code, reason)
end

--- A data frame: the message when it is whole, else nil (the fragments
-- so far stay on self, so a timeout between them loses nothing).
function WebSocket:_data(fin, op, payload)
  local op0 = self._frag_op
  if op == 0 then
    if not op0 then return self:_fail(1002, "unexpected continuation") end
    self._parts[#self._parts + 1] = payload
    self._size = self._size + #payload
  else
    if op0 then return self:_fail(1002, "expected a continuation") end
    op0 = op
    if not fin then
      self._frag_op, self._parts, self._size = op, {payload}, #payload
    end
  end
  if self._frag_op and self._max > 0 and self._size >= self._max then
    return self:_fail(1009, ("Message size %d exceeds limit %d")
                      :format(self._size, self._max))
  end
  if not fin then return nil end
  local data = payload
  if self._frag_op then
    data = concat(self._parts)
    self._frag_op, self._parts, self._size = nil, nil, nil
  end
  if op0 == 1 then
    if not _http.utf8_valid(data) then
      return self:_fail(1007, "invalid UTF-8 text")
    end
    return msg(WSMsgType.TEXT, data, "")
  end
  return msg(WSMsgType.BINARY, data, "")
end

--- Reads until a message for the caller of receive.
function WebSocket:_read_message()
  while true do
    local fin, op, payload = self:_frame()
    if fin == nil then
      if self._hb_exc then return msg(WSMsgType.ERROR, self._hb_exc) end
      if not self.close_code then
        self.close_code = WSCloseCode.ABNORMAL_CLOSURE
      end
      self:_finish()
      return msg(WSMsgType.CLOSED)
    end
    if fin == "error" then return self:_fail(op, payload) end
    if op == OP_PING then
      if not self._autoping then return msg(WSMsgType.PING, payload, "") end
      local ok, e = pcall(function()
        self._writer:write(ws_build(OP_PONG, payload, {mask = self._client}))
        await(self._writer:drain())
      end)
      if not ok and is_cancel(e) then error(e, 0) end
    elseif op == OP_PONG then
      if not self._autoping then return msg(WSMsgType.PONG, payload, "") end
    elseif op == OP_CLOSE then
      return self:_peer_close(payload)
    else
      local m = self:_data(fin, op, payload)
      if m then return m end
    end
  end
end

--- receive([timeout]) -> Coroutine -> a message (see the file comment).
-- timeout (or the receive_timeout option) bounds the wait: then
-- asyncio.TimeoutError is raised, close_code becomes 1006 and the
-- connection stays usable.
WebSocket.receive = async(function(self, timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout)
      then
    error("bad argument #1 to 'receive' (number expected, got " ..
          type(timeout) .. ")", 0)
  end
  if self._receiving then
    error(asyncio.RuntimeError("Concurrent call to receive() is not "
      .. "allowed"), 0)
  end
  if self.closed then
    if self._server then
      self._closed_reads = (self._closed_reads or 0) + 1
      if self._closed_reads >= CLOSED_THRESHOLD then
        error(asyncio.RuntimeError("WebSocket connection is closed."), 0)
      end
    end
    return msg(WSMsgType.CLOSED)
  end
  if self._got_close then
    -- the peer's close not answered yet (autoclose false): a client
    -- answers it now and is closed, a server says CLOSING, as aiohttp's
    if self._server then return msg(WSMsgType.CLOSING) end
    await(self:close())
    return msg(WSMsgType.CLOSED)
  end
  -- aiohttp's `timeout or self._receive_timeout`: 0 is no timeout of
  -- this call's
  if timeout == 0 then timeout = nil end
  timeout = timeout or self._receive_timeout
  local task = asyncio.current_task()
  self._receiving = task
  local ok, m
  if timeout then
    ok, m = pcall(function()
      local cm <close> = asyncio.timeout(timeout)
      return self:_read_message()
    end)
  else
    ok, m = pcall(self._read_message, self)
  end
  self._receiving = nil
  local interrupted = self._interrupted
  self._interrupted = nil
  if interrupted then interrupted:set_result(true) end
  if not ok then
    if interrupted and is_cancel(m) and task:uncancel() == 0 then
      return msg(WSMsgType.CLOSING)
    end
    if iserror(m, asyncio.TimeoutError) or is_cancel(m) then
      self.close_code = WSCloseCode.ABNORMAL_CLOSURE
    end
    error(m, 0)
  end
  return m
end)

--- A message's data as Python's repr writes it: b'...' for BINARY.
local function data_repr(m)
  local d = m.data
  if type(d) == "string" then
    return (m.type == WSMsgType.BINARY and "b" or "") ..
      require("asyncio.http")._py_repr(d)
  end
  return d == nil and "None" or tostring(d)
end

--- The next message's data if it is of type t, else aiohttp's TypeError
-- "Received message 2:b'x' is not <what>".
local function expect(self, t, what, timeout)
  local m = await(self:receive(timeout))
  if m.type ~= t then
    error(asyncio.TypeError(("Received message %d:%s is not %s"):format(
      m.type, data_repr(m), what)), 0)
  end
  return m.data
end

--- What receive_str says a message is not: aiohttp's server and client
-- say it differently.
local function not_text(self)
  return self._server and "WSMsgType.TEXT" or "str"
end

--- receive_str / receive_bytes / receive_json([timeout]) -> Coroutine
WebSocket.receive_str = async(function(self, timeout)
  return expect(self, WSMsgType.TEXT, not_text(self), timeout)
end)
WebSocket.receive_bytes = async(function(self, timeout)
  return expect(self, WSMsgType.BINARY, "bytes", timeout)
end)
local receive_json = async(function(self, timeout, loads)
  return loads(expect(self, WSMsgType.TEXT, not_text(self), timeout))
end)
local RECEIVE_JSON_OPTS = check.option_set{"timeout", "loads"}

--- receive_json([timeout | {timeout =, loads =}]) -> Coroutine: the next
-- TEXT message decoded by loads(text) (lua-cjson by default: invalid
-- JSON raises http.JSONDecodeError), as aiohttp's keyword arguments.
function WebSocket:receive_json(opts)
  local timeout, loads = opts, nil
  if type(opts) == "table" then
    check.options(opts, 2, "receive_json", RECEIVE_JSON_OPTS)
    timeout, loads = opts.timeout, opts.loads
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout)
      then
    check.argerror(2, "receive_json", "number or table expected, got "
      .. check.typename(opts))
  end
  loads = require("asyncio.http")._check_loads(loads, 2, "receive_json")
  return receive_json(self, timeout, loads)
end

--- iter(): for msg in ws:iter() do (inside a task): messages until
-- CLOSE, CLOSING or CLOSED (not given to the loop); ERROR is given.
function WebSocket:iter()
  return function()
    local m = await(self:receive())
    local t = m.type
    if t ~= WSMsgType.CLOSE and t ~= WSMsgType.CLOSING and
        t ~= WSMsgType.CLOSED then
      return m
    end
  end
end

--- local ws <close> = await(session:ws_connect(url)): at the end of the
-- scope an open connection sends a close frame (1000) and closes its
-- transport at once, without waiting for the peer's answer (await
-- ws:close() for the whole handshake).
function WebSocket:__close()
  if self.closed then return end
  if not self._sent_close then self:_write_close(WSCloseCode.OK) end
  if not self.close_code then self.close_code = WSCloseCode.OK end
  self:_finish()
end

--- exception() -> the error that ended the connection (a protocol
-- error, the heartbeat's or close's TimeoutError), or nil
function WebSocket:exception() return self._exception end

--- Reads frames until the peer's close (close's wait): its code, nil
-- when the stream ended or failed first, false when a server met another
-- frame first.
function WebSocket:_await_close()
  while true do
    local fin, op, payload = self:_frame()
    if fin == nil or fin == "error" then return nil end
    if op == OP_CLOSE then
      local code = close_payload(payload)
      return code or nil
    end
    -- aiohttp's server reads one message for the peer's close: another
    -- ends the wait as its timeout would
    if self._server then return false end
  end
end

--- The closing handshake of ws self (see WebSocket:close), its
-- arguments checked; timeout nil: the websocket's.
local close = async(function(self, code, message, timeout)
  local reader = self._receiving
  if reader and not self.closed and reader ~= asyncio.current_task() then
    local done = asyncio.get_running_loop():create_future()
    self._interrupted = done
    reader:cancel()
    await(done)
  end
  if self.closed or self._sent_close then return false end
  if self._hb_handle then
    self._hb_handle:cancel()
    self._hb_handle = nil
  end
  message = message ~= nil and tostring(message) or ""
  local ok, err = pcall(function()
    self._sent_close = true
    self._writer:write(ws_build(OP_CLOSE, string.pack(">I2", code) ..
      message, {mask = self._client}))
    await(self._writer:drain())
  end)
  self.closed = true
  if not ok then
    self.close_code = WSCloseCode.ABNORMAL_CLOSURE
    self:_finish()
    if is_cancel(err) then error(err, 0) end
    self._exception = err
    return true
  end
  if self._got_close then
    self:_finish()
    return true
  end
  local wok, peer = pcall(function()
    local cm <close> = asyncio.timeout(timeout or self._close_timeout)
    return self:_await_close()
  end)
  if wok and peer then
    self.close_code = peer
  else
    self.close_code = WSCloseCode.ABNORMAL_CLOSURE
    if peer == false then self._exception = asyncio.TimeoutError() end
    if not wok then
      self:_finish()
      if is_cancel(peer) then error(peer, 0) end
      self._exception = peer
    end
  end
  self:_finish()
  return true
end)

local CLOSE_OPTS = check.option_set{"code", "message", "timeout"}
local NO_OPTS = {}

--- close([{code = 1000, message = "", timeout =}]) -> Coroutine -> true
-- when this call closed it, false when it was closed already. A receive
-- in another task returns CLOSING first. Sends the close frame, then
-- (unless the peer closed first) waits at most timeout (the websocket's,
-- 10 by default) seconds for the peer's: close_code is the peer's code,
-- or 1006 with exception() the TimeoutError when none came. Bad options
-- raise at the call.
function WebSocket:close(opts)
  opts = check.options(opts, 2, "close", CLOSE_OPTS) or NO_OPTS
  local code = opts.code or WSCloseCode.OK
  if math.type(code) ~= "integer" or code < 0 or code > 65535 then
    error("bad argument #1 to 'close' (field 'code': an integer in "
      .. "0..65535 expected)", 2)
  end
  local message = opts.message
  if message ~= nil and #tostring(message) > 123 then
    -- a close frame is a control frame: 2 bytes of code, then these
    error(("bad argument #1 to 'close' (field 'message': at most 123 bytes "
      .. "expected, got %d)"):format(#tostring(message)), 2)
  end
  return close(self, code, message, opts.timeout)
end

return M
