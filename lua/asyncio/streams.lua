--- asyncio.streams: open_connection, start_server, their Unix-socket
-- twins, StreamWriter:start_tls, and open_udp.
--
-- Streams are a protocol on the transports, as in asyncio: the
-- StreamReader, StreamReaderProtocol and StreamWriter are C objects of
-- the core (bindings/io/stream.c), the transports and servers too
-- (transport.c, server.c); these functions go through the loop's
-- create_connection / create_server (asyncio.transports: the twins that
-- leave the options, checked here, unchecked) with the stream protocol.
-- Every function here is a coroutine function: call it and await the
-- result.
--
--   local reader, writer = await(asyncio.open_connection("127.0.0.1", 80))
--   local srv = await(asyncio.start_server(handle, "127.0.0.1", 0))

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local transports = require "asyncio.transports"
local check = require "asyncio.check"

local async, await = core.async, core.await
local StreamReader, StreamReaderProtocol, StreamWriter =
  core.StreamReader, core.StreamReaderProtocol, core.StreamWriter
local pairs = pairs

local M = {}

local SOCK_DGRAM = core.SOCK_DGRAM
local resolve = transports._resolve

local DEFAULT_LIMIT = 65536

-- The options of each function: those of the loop method it goes through
-- (whose unchecked twin it calls) and limit, as Python's `limit=,
-- **kwds`; any other name raises "unknown option".
local option_set = check.option_set
local LIMIT = {"limit"}
local CONNECTION_OPTIONS = option_set(LIMIT, transports._CONNECTION_OPTIONS)
local UNIX_CONNECTION_OPTIONS =
  option_set(LIMIT, transports._UNIX_CONNECTION_OPTIONS)
local SERVER_OPTIONS = option_set(LIMIT, transports._SERVER_OPTIONS)
local UNIX_SERVER_OPTIONS = option_set(LIMIT, transports._UNIX_SERVER_OPTIONS)
local START_TLS_OPTIONS = option_set{"server_hostname",
  "ssl_handshake_timeout", "ssl_shutdown_timeout"}
local UDP_OPTIONS = option_set{"limit", "broadcast", "remote_host",
                               "remote_port"}
local create_connection, create_unix_connection =
  transports._create_connection, transports._create_unix_connection
local create_server, create_unix_server =
  transports._create_server, transports._create_unix_server

--- The limit option of the function fname (the default without one).
local function limit_of(opts, fname)
  local limit = opts and opts.limit
  if limit == nil then return DEFAULT_LIMIT end
  if math.type(limit) ~= "integer" then
    error(("bad option 'limit' to '%s' (integer expected)"):format(fname), 0)
  end
  if limit <= 0 then -- a value problem: Python's ValueError
    error(errors.ValueError("Limit cannot be <= 0"), 0)
  end
  return limit
end

--- Connects with the stream protocol through connect(loop, factory) (an
-- unchecked twin's call, run here): returns reader, writer; fname names
-- the function for errors.
local function open_with(connect, opts, fname)
  local loop = core.get_running_loop()
  -- without options, the reader's own default limit (the same 64 KiB)
  local reader = opts == nil and StreamReader()
                 or StreamReader{limit = limit_of(opts, fname)}
  local protocol = StreamReaderProtocol(reader)
  local transport = connect(loop, function() return protocol end)
  return reader, StreamWriter(transport, protocol, reader, loop)
end

--- open_connection(host, port [, {limit =, and loop:create_connection's:
-- local_addr = {host, port}, family =, happy_eyeballs_delay =,
-- interleave =, ssl =, server_hostname =, ssl_handshake_timeout =,
-- ssl_shutdown_timeout =}]) -> reader, writer: the first address of
-- host that accepts.
M.open_connection = async(function(host, port, opts)
  check.type(host, 1, "open_connection", "string", true)
  check.port(port, 2, "open_connection")
  check.options(opts, 3, "open_connection", CONNECTION_OPTIONS)
  return open_with(function(loop, factory)
    return create_connection(loop, factory, host, port, opts)
  end, opts, "open_connection")
end)

--- start_server(client_cb, host, port [, {limit =, and
-- loop:create_server's: family =, backlog =, reuse_port =,
-- reuse_address =, start_serving =, ssl =, ssl_handshake_timeout =,
-- ssl_shutdown_timeout =}]) -> Server. client_cb(reader, writer) is
-- called for each connection; when it returns a Coroutine object (a
-- coroutine function), that runs as a task. host may be a list of
-- hosts; nil or "" listens on every interface. Port 0 lets the system
-- choose (see server.sockets).
M.start_server = async(function(client_cb, host, port, opts)
  check.callable(client_cb, 1, "start_server")
  transports._check_hosts(host, 2, "start_server")
  check.port(port, 3, "start_server", true)
  check.options(opts, 4, "start_server", SERVER_OPTIONS)
  local loop = core.get_running_loop()
  return create_server(loop,
    core._stream_factory(limit_of(opts, "start_server"), client_cb), host,
    port, opts)
end)

--- open_unix_connection(path [, {limit =, ssl =, server_hostname =,
-- ssl_handshake_timeout =, ssl_shutdown_timeout =}]) -> reader, writer
M.open_unix_connection = async(function(path, opts)
  check.type(path, 1, "open_unix_connection", "string")
  check.options(opts, 2, "open_unix_connection", UNIX_CONNECTION_OPTIONS)
  return open_with(function(loop, factory)
    return create_unix_connection(loop, factory, path, opts)
  end, opts, "open_unix_connection")
end)

--- start_unix_server(client_cb, path [, {limit =, backlog =,
-- start_serving =, ssl =, ssl_handshake_timeout =,
-- ssl_shutdown_timeout =}]) -> Server. The socket file is removed when
-- the server closes.
M.start_unix_server = async(function(client_cb, path, opts)
  check.callable(client_cb, 1, "start_unix_server")
  check.type(path, 2, "start_unix_server", "string")
  check.options(opts, 3, "start_unix_server", UNIX_SERVER_OPTIONS)
  local loop = core.get_running_loop()
  return create_unix_server(loop,
    core._stream_factory(limit_of(opts, "start_unix_server"), client_cb),
    path, opts)
end)

--- writer:start_tls(sslcontext [, {server_hostname =,
-- ssl_handshake_timeout =, ssl_shutdown_timeout =}]) upgrades the
-- connection to TLS, after what was written went out: loop:start_tls
-- gives the new transport, which the writer and its protocol use from
-- then on. A writer of start_server's is the server side, as in Python.
core._StreamWriter.start_tls = async(function(self, sslcontext, opts)
  check.options(opts, 2, "start_tls", START_TLS_OPTIONS)
  local loop = core.get_running_loop()
  local protocol = self:_get_protocol()
  await(self:drain())
  local transport = await(loop:start_tls(self.transport, protocol,
    sslcontext, {server_side = protocol:_server_side(),
                 server_hostname = opts and opts.server_hostname,
                 ssl_handshake_timeout = opts and opts.ssl_handshake_timeout,
                 ssl_shutdown_timeout = opts and opts.ssl_shutdown_timeout}))
  self:_replace_transport(transport)
  protocol:_replace_transport(transport)
end)

--- open_udp(local_host, local_port [, {limit =, broadcast =,
-- remote_host =, remote_port =}]) -> a DatagramEndpoint with
-- sendto(data, host, port), await(ep:recvfrom()) -> data, host, port,
-- getsockname(), close(). local_host nil binds every interface.
M.open_udp = async(function(local_host, local_port, opts)
  check.type(local_host, 1, "open_udp", "string", true)
  check.port(local_port, 2, "open_udp", true)
  check.options(opts, 3, "open_udp", UDP_OPTIONS)
  local host = local_host
  if host == nil or host == "" then
    host = "0.0.0.0"
  elseif not core._ip_family(host) then
    host = resolve(host, local_port, SOCK_DGRAM, true)[1]
  end
  if opts and opts.remote_host and not core._ip_family(opts.remote_host) then
    local copy = {}
    for k, v in pairs(opts) do copy[k] = v end
    copy.remote_host = resolve(opts.remote_host, opts.remote_port,
                               SOCK_DGRAM)[1]
    opts = copy
  end
  return core._udp_open(host, local_port or 0, opts)
end)

return M
