--- asyncio.sslproto: TLS as a transport wrapped around a transport, as
-- CPython's asyncio/sslproto.py.
--
-- SSLProtocol is the protocol of a raw transport (anything with write,
-- close, abort, pause_reading, resume_reading, get_extra_info,
-- get_write_buffer_size, set_write_buffer_limits); it runs an SSLObject
-- of asyncio.ssl (the C engine) over it and offers the application
-- protocol a transport of its own, `p._app_transport`:
--
--   raw transport --data_received--> SSLProtocol --plaintext--> app
--   app --write--> _app_transport --ciphertext--> raw transport
--
-- Each chunk off the wire is one call into C (feed: handshake, or all the
-- plaintext available in one string) and each write is one (encrypt
-- all of it). States follow CPython's: UNWRAPPED -> DO_HANDSHAKE ->
-- WRAPPED -> FLUSHING -> SHUTDOWN -> UNWRAPPED. Closing sends
-- close_notify and waits for the peer's within ssl_shutdown_timeout; a
-- peer that closes without one is an EOF, as in Python.
--
-- Loading this module adds loop:start_tls(transport, protocol, ctx,
-- {server_side =, server_hostname =, ssl_handshake_timeout =,
-- ssl_shutdown_timeout =}) to event loops.

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local check = require "asyncio.check"

local async, await, iserror = core.async, core.await, core.iserror
local error, pcall, setmetatable, tostring, type =
  error, pcall, setmetatable, tostring, type
local concat = table.concat

local M = {}

M.SSL_HANDSHAKE_TIMEOUT = 60.0
M.SSL_SHUTDOWN_TIMEOUT = 30.0

local UNWRAPPED, DO_HANDSHAKE, WRAPPED, FLUSHING, SHUTDOWN =
  "UNWRAPPED", "DO_HANDSHAKE", "WRAPPED", "FLUSHING", "SHUTDOWN"
-- what the application protocol has been told
local APP_INIT, APP_CON_MADE, APP_EOF, APP_CON_LOST = 0, 1, 2, 3

local EV_HANDSHAKE, EV_EOF = 1, 2   -- SSLObject:feed's event bits

-- The options of SSLProtocol and start_tls; any other name raises
-- "unknown option".
local PROTOCOL_OPTIONS = check.option_set{"ssl_handshake_timeout",
  "ssl_shutdown_timeout", "call_connection_made"}
local START_TLS_OPTIONS = check.option_set{"server_side", "server_hostname",
  "ssl_handshake_timeout", "ssl_shutdown_timeout"}

--- Raises what a protocol callback raised when it is not an ordinary
-- error (CancelledError, KeyboardInterrupt, SystemExit go through).
local function pass_fatal(err)
  if iserror(err) and not iserror(err, errors.Exception) then
    error(err, 0)
  end
end

local function check_timeout(name, v, default)
  if v == nil then return default end
  if type(v) ~= "number" or v <= 0 then
    error(errors.ValueError(("%s should be a positive number, got %s")
                            :format(name, tostring(v))), 3)
  end
  return v
end

local function check_limits(high, low, default_high)
  if high == nil then
    high = low == nil and default_high or 4 * low
  end
  if low == nil then low = high // 4 end
  if not (high >= low and low >= 0) then
    error(errors.ValueError(("high (%s) must be >= low (%s) must be >= 0")
                            :format(tostring(high), tostring(low))), 3)
  end
  return high, low
end

-- The application's transport --------------------------------------------

local Transport = {}
Transport.__index = Transport
Transport.__name = "asyncio.sslproto._SSLProtocolTransport"
M._SSLProtocolTransport = Transport

local function new_transport(proto)
  return setmetatable({_ssl_protocol = proto, _closed = false}, Transport)
end

function Transport:get_extra_info(name, default)
  return self._ssl_protocol:_get_extra_info(name, default)
end

function Transport:set_protocol(protocol)
  self._ssl_protocol._app_protocol = protocol
end

function Transport:get_protocol()
  return self._ssl_protocol._app_protocol
end

function Transport:is_closing()
  return self._closed
end

--- close(): sends close_notify after the data already written, then
-- closes the raw transport; the protocol's connection_lost(nil) follows.
function Transport:close()
  if not self._closed then
    self._closed = true
    self._ssl_protocol:_start_shutdown()
  end
end

function Transport:abort()
  self._closed = true
  self._ssl_protocol:_abort(nil)
end

function Transport:is_reading()
  return not self._ssl_protocol._app_reading_paused
end

function Transport:pause_reading()
  self._ssl_protocol._app_reading_paused = true
end

function Transport:resume_reading()
  self._ssl_protocol:_resume_reading()
end

--- set_write_buffer_limits([high [, low]]): integers, as the socket
-- transports' (the raw transport gets them too).
function Transport:set_write_buffer_limits(high, low)
  high = check.integer(high, 2, "set_write_buffer_limits", true)
  low = check.integer(low, 3, "set_write_buffer_limits", true)
  self._ssl_protocol:_set_write_buffer_limits(high, low)
end

--- get_write_buffer_limits() -> low, high (Python's order).
function Transport:get_write_buffer_limits()
  local p = self._ssl_protocol
  return p._low, p._high
end

function Transport:get_write_buffer_size()
  return self._ssl_protocol:_get_write_buffer_size()
end

function Transport:set_read_buffer_limits(high, low)
  high = check.integer(high, 2, "set_read_buffer_limits", true)
  low = check.integer(low, 3, "set_read_buffer_limits", true)
  local p = self._ssl_protocol
  p._read_high, p._read_low = check_limits(high, low, 256 * 1024)
  p:_control_ssl_reading()
end

function Transport:get_read_buffer_limits()
  local p = self._ssl_protocol
  return p._read_low, p._read_high
end

function Transport:get_read_buffer_size()
  return self._ssl_protocol._sslobj:pending_in()
end

--- write(data): a string; a number is written as Lua writes it (42 as
-- "42"), as the socket transports and io.write do.
function Transport:write(data)
  local kind = type(data)
  if kind == "number" then
    data = tostring(data)
  elseif kind ~= "string" then
    error(("bad argument #1 to 'write' (string expected, got %s)")
          :format(check.typename(data)), 2)
  end
  local p = self._ssl_protocol
  if p._state == WRAPPED and not p._backlog then
    -- the hot path: encrypt all of it, hand it to the raw transport (a
    -- core transport gets it from C: out is then nil)
    local out, n, err = p._obj_write(p._sslobj, data, p._transport)
    if out then p._transport:write(out) end
    if err or n < #data then p:_write_rest(data, n, err) end
  elseif #data > 0 then
    p:_write_appdata(data)
  end
end

--- writelines(list): one write of the strings (or numbers) joined; refuses
-- what the socket transports' writelines refuses (any other list item).
function Transport:writelines(list)
  if type(list) ~= "table" then
    check.argerror(2, "writelines", "table expected, got "
                   .. (list == nil and "nil" or check.typename(list)), 1)
  end
  for i = 1, #list do
    local kind = type(list[i])
    if kind ~= "string" and kind ~= "number" then
      error(("bad item #%d to 'writelines' (string expected, got %s)")
            :format(i, check.typename(list[i])), 2)
    end
  end
  self:write(concat(list))
end

function Transport:write_eof()
  error(errors.NotImplementedError("SSL doesn't support half-closes"), 2)
end

function Transport:can_write_eof()
  return false
end

function Transport:__tostring()
  return "<asyncio.sslproto._SSLProtocolTransport"
    .. (self._closed and " closed" or "") .. ">"
end

-- The protocol ------------------------------------------------------------

local SSLProtocol = {}
SSLProtocol.__index = SSLProtocol
SSLProtocol.__name = "asyncio.sslproto.SSLProtocol"
M._SSLProtocol = SSLProtocol

--- SSLProtocol(loop, app_protocol, sslcontext, waiter, server_side,
-- server_hostname [, {ssl_handshake_timeout =, ssl_shutdown_timeout =,
-- call_connection_made = true}]): the protocol for a raw transport;
-- waiter (a Future or nil) completes when the handshake is done, or
-- fails with its error. sslcontext nil: a default client context.
function M.SSLProtocol(loop, app_protocol, sslcontext, waiter, server_side,
                       server_hostname, opts)
  opts = check.options(opts, 7, "SSLProtocol", PROTOCOL_OPTIONS) or {}
  local hs = check_timeout("ssl_handshake_timeout",
                           opts.ssl_handshake_timeout,
                           M.SSL_HANDSHAKE_TIMEOUT)
  local sd = check_timeout("ssl_shutdown_timeout", opts.ssl_shutdown_timeout,
                           M.SSL_SHUTDOWN_TIMEOUT)
  server_side = not not server_side
  if server_side then server_hostname = nil end
  if server_hostname ~= nil and type(server_hostname) ~= "string" then
    -- a number would otherwise be taken for a name ("5")
    error(errors.TypeError("server_hostname must be a string, got "
                           .. check.typename(server_hostname)), 2)
  end
  local ssl = require "asyncio.ssl"
  if not sslcontext then
    sslcontext = ssl._create_transport_context(server_side, server_hostname)
  elseif not ssl.is_context(sslcontext) then -- not a failed index later
    error(errors.TypeError("sslcontext is expected to be an instance of "
                           .. "ssl.SSLContext, got " .. tostring(sslcontext)),
          2)
  end
  local self = setmetatable({
    _loop = loop, _app_protocol = app_protocol, _sslcontext = sslcontext,
    _waiter = waiter, _server_side = server_side,
    _server_hostname = server_hostname,
    _extra = {sslcontext = sslcontext},
    -- start_tls (call_connection_made false): the app already has its
    -- connection, so a failed handshake reaches its connection_lost
    _state = UNWRAPPED, _conn_lost = 0,
    _app_state = opts.call_connection_made == false and APP_CON_MADE
      or APP_INIT,
    _backlog = nil, _backlog_size = 0,
    _app_reading_paused = false, _ssl_reading_paused = false,
    _app_writing_paused = false, _raw_paused = false,
    -- asyncio's FLOW_CONTROL_HIGH_WATER_SSL_WRITE and _READ (KiB)
    _high = 512 * 1024, _low = 128 * 1024,
    _read_high = 256 * 1024, _read_low = 64 * 1024,
    _handshake_timeout = hs, _shutdown_timeout = sd,
  }, SSLProtocol)
  local obj = sslcontext:wrap_bio(server_side, server_hostname)
  -- the engine's hot methods, looked up once
  self._sslobj, self._obj_feed, self._obj_write = obj, obj.feed, obj.write
  self._app_transport = new_transport(self)
  return self
end

function SSLProtocol:__tostring()
  return ("<asyncio.sslproto.SSLProtocol %s%s>"):format(self._state,
    self._server_side and " server" or "")
end

--- Calls the application protocol's method `name`, if it has one. An
-- ordinary error fails the connection (exception handler, then the
-- app's connection_lost(err)); returns false then.
function SSLProtocol:_app_call(name, ...)
  local app = self._app_protocol
  local f = app and app[name]
  if not f then return true end
  local ok, res = pcall(f, app, ...)
  if ok then return true, res end
  pass_fatal(res)
  self:_fatal_error(res, "Fatal error on SSL protocol")
  return false
end

--- Calls the app's flow-control method `name` (pause_writing,
-- resume_writing), if it has one. An ordinary error is only reported, as
-- Python's: the connection goes on.
function SSLProtocol:_app_notify(name)
  local app = self._app_protocol
  local f = app and app[name]
  if not f then return end
  local ok, err = pcall(f, app)
  if ok then return end
  pass_fatal(err)
  self._loop:call_exception_handler{
    message = "protocol." .. name .. "() failed", exception = err,
    transport = self._app_transport, protocol = self}
end

function SSLProtocol:_get_extra_info(name, default)
  local v = self._extra[name]
  if v ~= nil then return v end
  if self._transport then
    return self._transport:get_extra_info(name, default)
  end
  return default
end

function SSLProtocol:_wakeup_waiter(exc)
  local w = self._waiter
  if w == nil then return end
  self._waiter = nil
  if not w:done() then
    if exc ~= nil then w:set_exception(exc) else w:set_result() end
  end
end

-- Raw transport events ------------------------------------------------

function SSLProtocol:connection_made(transport)
  self._transport = transport
  -- the app is paused with the raw transport (_control_app_writing): its
  -- marks are the TLS transport's
  transport:set_write_buffer_limits(self._high, self._low)
  self._state = DO_HANDSHAKE
  self._handshake_handle = self._loop:call_later(self._handshake_timeout,
    self._check_handshake_timeout, self)
  self:_feed(nil)
end

function SSLProtocol:data_received(data)
  local st = self._state
  if st == WRAPPED and not self._app_reading_paused and not self._backlog
     and self._app_state == APP_CON_MADE then
    -- the hot path: a chunk of records, all plaintext for the app (a
    -- stream reader's protocol gets it in its buffer, from C; app_err is
    -- what its data_received raised)
    local app = self._app_protocol
    local plain, out, ev, err, app_err =
      self._obj_feed(self._sslobj, data, true, app)
    if out then self._transport:write(out) end
    if app_err ~= nil then return self:_app_failed(app_err) end
    if ev == 0 and not err and not self._ssl_reading_paused then
      local f = plain and app.data_received
      if f then
        local ok, e = pcall(f, app, plain)
        if not ok then
          pass_fatal(e)
          self:_fatal_error(e, "Fatal error on SSL protocol")
        end
      end
      return
    end
    return self:_fed(plain, ev, err or nil, true)
  elseif st == WRAPPED or st == DO_HANDSHAKE then
    self:_feed(data)
  elseif st == FLUSHING then
    self:_feed(data)
    if self._state == FLUSHING then self:_do_flush() end
  elseif st == SHUTDOWN then
    self:_do_shutdown(data)
  end
end

--- The application's data_received raised err (on the hot path, where
-- the plaintext went straight into a stream reader): the connection
-- fails, as _app_call's.
function SSLProtocol:_app_failed(err)
  pass_fatal(err)
  self:_fatal_error(err, "Fatal error on SSL protocol")
end

function SSLProtocol:eof_received()
  self._eof_received = true
  local st = self._state
  if st == DO_HANDSHAKE then
    -- Python's is ConnectionResetError() with no message
    self:_on_handshake_complete(errors.ConnectionResetError())
  elseif st == WRAPPED then
    self._state = FLUSHING
    if self._app_reading_paused then return true end
    self:_do_flush()
  elseif st == FLUSHING then
    self:_do_flush()
  elseif st == SHUTDOWN then
    self:_do_shutdown(nil)
  end
end

function SSLProtocol:connection_lost(exc)
  exc = exc or self._fatal_exc
  self._backlog, self._backlog_size = nil, 0
  self._conn_lost = self._conn_lost + 1
  if self._app_transport then self._app_transport._closed = true end
  if self._state == DO_HANDSHAKE then
    exc = exc or errors.ConnectionResetError(
      "Connection lost during the SSL handshake")
  end
  -- during the handshake only an upgraded connection's app is told (a
  -- new one's connection_made has not been called)
  if self._app_state == APP_CON_MADE or self._app_state == APP_EOF then
    self._app_state = APP_CON_LOST
    local app = self._app_protocol
    if app and app.connection_lost then
      self._loop:call_soon(app.connection_lost, app, exc)
    end
  end
  self._state = UNWRAPPED
  self._transport = nil
  self:_wakeup_waiter(exc)
  self:_cancel_timers()
end

function SSLProtocol:pause_writing()
  self._raw_paused = true
  self:_control_app_writing()
end

function SSLProtocol:resume_writing()
  self._raw_paused = false
  self:_control_app_writing()
end

-- Handshake -----------------------------------------------------------

function SSLProtocol:_cancel_timers()
  if self._handshake_handle then
    self._handshake_handle:cancel()
    self._handshake_handle = nil
  end
  if self._shutdown_handle then
    self._shutdown_handle:cancel()
    self._shutdown_handle = nil
  end
end

function SSLProtocol:_check_handshake_timeout()
  if self._state == DO_HANDSHAKE then
    self:_fatal_error(errors.ConnectionAbortedError(
      ("SSL handshake is taking longer than %s seconds: aborting the "
       .. "connection"):format(tostring(self._handshake_timeout))))
  end
end

function SSLProtocol:_on_handshake_complete(exc)
  if self._handshake_handle then
    self._handshake_handle:cancel()
    self._handshake_handle = nil
  end
  if exc ~= nil then
    self._state = UNWRAPPED
    local ssl = require "asyncio.ssl"
    -- closed, not aborted: the alert written for the peer goes out
    self:_fatal_error(exc, iserror(exc, ssl.SSLCertVerificationError)
      and "SSL handshake failed on verifying the certificate"
      or "SSL handshake failed", true)
    self:_wakeup_waiter(exc)
    return
  end
  self._state = WRAPPED
  local obj, extra = self._sslobj, self._extra
  extra.peercert = obj:getpeercert()
  extra.cipher = obj:cipher()
  extra.ssl_object = obj
  if self._app_state == APP_INIT then -- a new connection's app
    self._app_state = APP_CON_MADE
    if not self:_app_call("connection_made", self._app_transport) then
      return
    end
  end
  self:_wakeup_waiter(nil)
end

-- Reading -------------------------------------------------------------

--- Feeds ciphertext (or nil) to the engine and acts on what comes out:
-- ciphertext to send, the end of the handshake, plaintext for the app,
-- the peer's close_notify, an error.
function SSLProtocol:_feed(data)
  local reading = not self._app_reading_paused
  local plain, out, ev, err = self._obj_feed(self._sslobj, data, reading)
  if out then self._transport:write(out) end
  return self:_fed(plain, ev, err, reading)
end

--- What _feed does with the engine's answer.
function SSLProtocol:_fed(plain, ev, err, reading)
  if ev & EV_HANDSHAKE ~= 0 then
    self:_on_handshake_complete(nil)
    if self._state ~= WRAPPED then return end
  end
  if plain and self._app_state == APP_CON_MADE then
    if not self:_app_call("data_received", plain) then return end
  end
  if err then
    if self._state == DO_HANDSHAKE then
      self:_on_handshake_complete(err)
    else
      self:_fatal_error(err, "Fatal error on SSL protocol")
    end
    return
  end
  if ev & EV_EOF ~= 0 then
    self:_call_eof_received()
    self:_start_shutdown()
    return
  end
  if self._backlog then self:_do_write() end
  if not reading or self._ssl_reading_paused then
    self:_control_ssl_reading()
  end
end

function SSLProtocol:_resume_reading()
  if not self._app_reading_paused then return end
  self._app_reading_paused = false
  self._loop:call_soon(function()
    local st = self._state
    if st == WRAPPED then
      self:_feed(nil)
    elseif st == FLUSHING then
      self:_do_flush()
    elseif st == SHUTDOWN then
      self:_do_shutdown(nil)
    end
  end)
end

--- Pauses the raw transport while too much ciphertext waits for an
-- application that does not read, and resumes it once it drained.
function SSLProtocol:_control_ssl_reading()
  local t = self._transport
  if not t then return end
  local size = self._sslobj:pending_in()
  if size >= self._read_high and not self._ssl_reading_paused then
    self._ssl_reading_paused = true
    t:pause_reading()
  elseif size <= self._read_low and self._ssl_reading_paused then
    self._ssl_reading_paused = false
    t:resume_reading()
  end
end

function SSLProtocol:_call_eof_received()
  if self._app_state == APP_CON_MADE then
    self._app_state = APP_EOF
    self:_app_call("eof_received")
  end
end

-- Writing -------------------------------------------------------------

function SSLProtocol:_write_appdata(data)
  local st = self._state
  if st == FLUSHING or st == SHUTDOWN or st == UNWRAPPED then
    self._conn_lost = self._conn_lost + 1
    return
  end
  if st == DO_HANDSHAKE or self._backlog then
    local b = self._backlog or {}
    b[#b + 1] = data
    self._backlog, self._backlog_size = b, self._backlog_size + #data
    if st == WRAPPED then self:_do_write() end
    self:_control_app_writing()
    return
  end
  local out, n, err = self._obj_write(self._sslobj, data, self._transport)
  if out then self._transport:write(out) end
  if err or n < #data then self:_write_rest(data, n, err) end
end

--- After a write the TLS layer did not take whole: fails the connection
-- on err, else keeps the rest (the layer must read first:
-- renegotiation) for after the next chunk from the peer.
function SSLProtocol:_write_rest(data, n, err)
  if err then return self:_fatal_error(err, "Fatal error on SSL protocol") end
  self._backlog, self._backlog_size = {data:sub(n + 1)}, #data - n
  self:_control_app_writing()
end

--- Encrypts the backlog, as far as the TLS layer lets it.
function SSLProtocol:_do_write()
  local b, obj, t = self._backlog, self._sslobj, self._transport
  local i = 1
  while b[i] do
    local data = b[i]
    local out, n, err = self._obj_write(obj, data, t)
    if out and t then t:write(out) end
    if err then return self:_fatal_error(err, "Fatal error on SSL protocol") end
    self._backlog_size = self._backlog_size - n
    if n < #data then
      b[i] = data:sub(n + 1)
      break
    end
    b[i] = false
    i = i + 1
  end
  if b[i] then
    table.move(b, i, #b, 1)
    for j = #b - i + 2, #b do b[j] = nil end
  else
    self._backlog, self._backlog_size = nil, 0
  end
  self:_control_app_writing()
end

function SSLProtocol:_get_write_buffer_size()
  local t = self._transport
  return self._backlog_size + (t and t:get_write_buffer_size() or 0)
end

function SSLProtocol:_set_write_buffer_limits(high, low)
  self._high, self._low = check_limits(high, low, 512 * 1024)
  if self._transport then
    self._transport:set_write_buffer_limits(self._high, self._low)
  end
  self:_control_app_writing()
end

--- The app is paused while the raw transport is, or while the backlog
-- (plaintext the TLS layer cannot take yet) is over the high mark.
function SSLProtocol:_control_app_writing()
  local want = self._raw_paused or self._backlog_size >= self._high
  if want and not self._app_writing_paused then
    self._app_writing_paused = true
    self:_app_notify("pause_writing")
  elseif not want and self._app_writing_paused
    and self._backlog_size <= self._low then
    self._app_writing_paused = false
    self:_app_notify("resume_writing")
  end
end

-- Shutdown ------------------------------------------------------------

function SSLProtocol:_start_shutdown()
  local st = self._state
  if st == FLUSHING or st == SHUTDOWN or st == UNWRAPPED then return end
  if self._app_transport then self._app_transport._closed = true end
  if st == DO_HANDSHAKE then
    self:_abort(nil)
    return
  end
  self._state = FLUSHING
  self._shutdown_handle = self._loop:call_later(self._shutdown_timeout,
    self._check_shutdown_timeout, self)
  self:_do_flush()
end

function SSLProtocol:_check_shutdown_timeout()
  self._shutdown_handle = nil
  local st = self._state
  if (st == FLUSHING or st == SHUTDOWN) and self._transport then
    self._fatal_exc = self._fatal_exc
      or errors.TimeoutError("SSL shutdown timed out")
    self._transport:abort()
  end
end

--- Delivers what is left to read and write, then shuts the TLS layer.
function SSLProtocol:_do_flush()
  if not self._app_reading_paused then
    self:_feed(nil)
    if self._state ~= FLUSHING then return end
  end
  if self._backlog then
    self:_do_write()
    if self._state ~= FLUSHING then return end
  end
  self._state = SHUTDOWN
  self:_do_shutdown(nil)
end

function SSLProtocol:_do_shutdown(data)
  local done, out, err = true, nil, nil
  if not self._eof_received then
    done, out, err = self._sslobj:shutdown(data)
  end
  if out and self._transport then self._transport:write(out) end
  if err then return self:_on_shutdown_complete(err) end
  if done then
    self:_call_eof_received()
    self:_on_shutdown_complete(nil)
  end
end

function SSLProtocol:_on_shutdown_complete(exc)
  if self._shutdown_handle then
    self._shutdown_handle:cancel()
    self._shutdown_handle = nil
  end
  if exc ~= nil then
    self:_fatal_error(exc)
  elseif self._transport then
    local t = self._transport
    self._loop:call_soon(t.close, t)
  end
end

-- Failures ------------------------------------------------------------

function SSLProtocol:_abort(exc)
  self._state = UNWRAPPED
  if self._transport then
    self._fatal_exc = self._fatal_exc or exc
    self._transport:abort()
  end
end

--- Closes the connection at once because of exc (or, with `flush`,
-- once what was written went out); the app protocol's connection_lost
-- gets exc. Errors that are not OSErrors (a callback's) also go to the
-- loop's exception handler.
function SSLProtocol:_fatal_error(exc, message, flush)
  local t = self._transport
  if t then
    self._fatal_exc = self._fatal_exc or exc
    if flush then t:close() else t:abort() end
  end
  if not iserror(exc, errors.OSError) then
    self._loop:call_exception_handler{
      message = message or "Fatal error on transport",
      exception = exc, transport = t, protocol = self}
  end
end

-- loop:start_tls ----------------------------------------------------------

--- loop:start_tls(transport, protocol, sslcontext [, {server_side =,
-- server_hostname =, ssl_handshake_timeout =, ssl_shutdown_timeout =}])
-- -> the TLS transport: upgrades a live connection; protocol stays the
-- application's protocol (its connection_made is not called again).
M.start_tls = async(function(loop, transport, protocol, sslcontext, opts)
  opts = check.options(opts, 4, "start_tls", START_TLS_OPTIONS) or {}
  local ssl = require "asyncio.ssl"
  if not ssl.is_context(sslcontext) then
    error(errors.TypeError("sslcontext is expected to be an instance of "
                           .. "ssl.SSLContext, got " .. tostring(sslcontext)),
          0)
  end
  if (type(transport) ~= "table" and type(transport) ~= "userdata")
    or transport.set_protocol == nil then
    error(errors.TypeError("transport " .. tostring(transport)
                           .. " is not supported by start_tls()"), 0)
  end
  local waiter = loop:create_future()
  local proto = M.SSLProtocol(loop, protocol, sslcontext, waiter,
    opts.server_side, opts.server_hostname, {
      ssl_handshake_timeout = opts.ssl_handshake_timeout,
      ssl_shutdown_timeout = opts.ssl_shutdown_timeout,
      call_connection_made = false})
  -- paused so that no data reaches the protocol before connection_made
  transport:pause_reading()
  transport:set_protocol(proto)
  local made = loop:call_soon(proto.connection_made, proto, transport)
  local resumed = loop:call_soon(transport.resume_reading, transport)
  local ok, err = pcall(await, waiter)
  if not ok then
    transport:close()
    made:cancel()
    resumed:cancel()
    error(err, 0)
  end
  return proto._app_transport
end)

core._EventLoop.start_tls = M.start_tls

return M
