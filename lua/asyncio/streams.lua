--- asyncio.streams: open_connection, start_server, their Unix-socket
-- twins, and open_udp.
--
-- The transports, StreamReader, StreamWriter, Server and the UDP
-- endpoint are C objects of the core (bindings/io/stream.c, udp.c); this
-- module only resolves host names (asyncio.getaddrinfo, on libuv's thread
-- pool) and tries the addresses in order, as asyncio does. Every function
-- here is a coroutine function: call it and await the result.
--
--   local reader, writer = await(asyncio.open_connection("127.0.0.1", 80))
--   local srv = await(asyncio.start_server(handle, "127.0.0.1", 0))

local core = require "asyncio.core"
local errors = require "asyncio.errors"

local async, await, iserror = core.async, core.await, core.iserror
local error, ipairs, pcall, tostring, type =
  error, ipairs, pcall, tostring, type

local M = {}

local SOCK_STREAM, SOCK_DGRAM = core.SOCK_STREAM, core.SOCK_DGRAM

--- The numeric addresses of host (a name, a numeric address, or nil for
-- every local interface when passive, else the loopback), without
-- duplicates, in getaddrinfo's order.
local function resolve(host, port, socktype, passive)
  if host ~= nil and core._ip_family(host) then return {host} end
  local infos = await(core.getaddrinfo(host, port, {
    type = socktype, flags = passive and core.AI_PASSIVE or nil}))
  local seen, out = {}, {}
  for _, ai in ipairs(infos) do
    if not seen[ai.addr] then
      seen[ai.addr] = true
      out[#out + 1] = ai.addr
    end
  end
  if #out == 0 then
    error(errors.OSError("getaddrinfo() returned empty list"), 0)
  end
  return out
end

--- Raises the failure of trying every address, as asyncio does: the one
-- error, or an OSError naming them all when they differ.
local function raise_all(errs)
  local first, same = errs[1], true
  for i = 2, #errs do
    if tostring(errs[i]) ~= tostring(first) then same = false end
  end
  if same then error(first, 0) end
  local parts = {}
  for i, e in ipairs(errs) do parts[i] = tostring(e) end
  error(errors.OSError("Multiple exceptions: " .. table.concat(parts, ", ")),
        0)
end

--- Awaits aw, returning true and its values, or false and an ordinary
-- error; a cancellation (or any BaseException) goes through.
local function try_await(aw)
  local res = table.pack(pcall(await, aw))
  if not res[1] and not iserror(res[2], errors.Exception) then
    error(res[2], 0)
  end
  return table.unpack(res, 1, res.n)
end

--- open_connection(host, port [, {limit =, local_addr = {host, port}}])
-- -> reader, writer: the first address of host that accepts.
M.open_connection = async(function(host, port, opts)
  local errs = {}
  for _, addr in ipairs(resolve(host, port, SOCK_STREAM)) do
    local ok, reader, writer = try_await(core._tcp_connect(addr, port, opts))
    if ok then return reader, writer end
    errs[#errs + 1] = reader
  end
  raise_all(errs)
end)

--- start_server(client_cb, host, port [, {backlog =, limit =,
-- start_serving =}]) -> Server. client_cb(reader, writer) is called for
-- each connection; when it returns a Coroutine object (a coroutine
-- function), that runs as a task. host may be a list of hosts; nil or ""
-- listens on every interface. Port 0 lets the system choose (see
-- server.sockets).
M.start_server = async(function(client_cb, host, port, opts)
  port = port or 0
  local addrs = {}
  for _, h in ipairs(type(host) == "table" and host or {host or ""}) do
    for _, addr in ipairs(resolve(h ~= "" and h or nil, port, SOCK_STREAM,
                                  true)) do
      addrs[#addrs + 1] = {addr, port}
    end
  end
  return core._tcp_server(client_cb, addrs, opts)
end)

--- open_unix_connection(path [, {limit =}]) -> reader, writer
M.open_unix_connection = async(function(path, opts)
  return await(core._pipe_connect(path, opts))
end)

--- start_unix_server(client_cb, path [, {backlog =, limit =}]) -> Server.
-- The socket file is removed when the server closes.
M.start_unix_server = async(function(client_cb, path, opts)
  return core._pipe_server(client_cb, path, opts)
end)

--- open_udp(local_host, local_port [, {limit =, broadcast =,
-- remote_host =, remote_port =}]) -> a DatagramEndpoint with
-- sendto(data, host, port), await(ep:recvfrom()) -> data, host, port,
-- getsockname(), close(). local_host nil binds every interface.
M.open_udp = async(function(local_host, local_port, opts)
  local host = local_host
  if host == nil then
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
