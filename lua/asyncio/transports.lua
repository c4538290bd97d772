--- asyncio.transports: the event loop's transport methods, asyncio's
-- low-level layer: create_connection, create_server,
-- create_unix_connection, create_unix_server, connect_read_pipe,
-- connect_write_pipe.
--
-- The transports are C (bindings/io/transport.c, server.c); this module
-- resolves host names, tries the addresses in order as asyncio does,
-- makes the protocol with the factory (called with no arguments) and
-- hooks TLS in: with opts.ssl, the raw transport's protocol is
-- asyncio.sslproto's SSLProtocol wrapping the application's, and the
-- transport returned is its _app_transport (the TLS battery is required
-- only then). Every method is awaited and returns transport, protocol
-- (create_*_server: a Server).
--
--   local t, p = await(loop:create_connection(Proto, "127.0.0.1", 8080))

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local check = require "asyncio.check"

local async, await, iserror = core.async, core.await, core.iserror
local error, ipairs, math, pairs, pcall, require, tostring, type =
  error, ipairs, math, pairs, pcall, require, tostring, type

local M = {}

local SOCK_STREAM, SOCK_DGRAM = core.SOCK_STREAM, core.SOCK_DGRAM

-- The options each method takes (Python's keyword arguments): any other
-- name raises "unknown option". asyncio.streams adds its own (limit) to
-- the method's set and calls the method's unchecked twin (_create_*), a
-- plain function run in the caller's coroutine.
local option_set = check.option_set
local TLS_OPTIONS = option_set{"ssl", "ssl_handshake_timeout",
                               "ssl_shutdown_timeout"}
local UNIX_CONNECTION_OPTIONS = option_set({"server_hostname"}, TLS_OPTIONS)
local CONNECTION_OPTIONS = option_set({"local_addr", "family",
  "happy_eyeballs_delay", "interleave", "all_errors"},
  UNIX_CONNECTION_OPTIONS)
local UNIX_SERVER_OPTIONS = option_set({"backlog", "start_serving"},
                                       TLS_OPTIONS)
-- reuse_address is taken and always on (libuv's bind sets it)
local SERVER_OPTIONS = option_set({"family", "reuse_port", "reuse_address"},
                                  UNIX_SERVER_OPTIONS)
local DATAGRAM_OPTIONS = option_set{"local_addr", "remote_addr", "family",
                                    "reuse_port", "allow_broadcast"}
M._CONNECTION_OPTIONS = CONNECTION_OPTIONS
M._UNIX_CONNECTION_OPTIONS = UNIX_CONNECTION_OPTIONS
M._SERVER_OPTIONS = SERVER_OPTIONS
M._UNIX_SERVER_OPTIONS = UNIX_SERVER_OPTIONS

--- The numeric addresses of host (a name, a numeric address, or nil for
-- every local interface when passive, else the loopback), without
-- duplicates, in getaddrinfo's order; with `family` (asyncio.AF_INET or
-- AF_INET6, as asyncio's family=) only that family's, gaierror if none.
function M._resolve(host, port, socktype, passive, family)
  if family == core.AF_UNSPEC then family = nil end
  local numeric = host ~= nil and core._ip_family(host)
  if numeric and (family == nil or numeric == family) then return {host} end
  local infos = await(core.getaddrinfo(host, port, {
    type = socktype, family = family,
    flags = passive and core.AI_PASSIVE or nil}))
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
local resolve = M._resolve

--- An error's text without its class, as Python's str(exc).
local function text(e)
  local m = type(e) == "table" and rawget(e, "message")
  return m ~= nil and tostring(m) or tostring(e)
end

--- Raises the failure of trying every address, as asyncio does: the one
-- error, or an OSError naming them all when their texts differ; with
-- all_errors, an ExceptionGroup of them all.
local function raise_all(errs, all_errors)
  if all_errors then -- Python 3.12's all_errors=True
    error(errors.ExceptionGroup("create_connection failed", errs), 0)
  end
  local first, same = errs[1], true
  for i = 2, #errs do
    if text(errs[i]) ~= text(first) then same = false end
  end
  if same then error(first, 0) end
  local parts = {}
  for i, e in ipairs(errs) do parts[i] = text(e) end
  error(errors.OSError("Multiple exceptions: " .. table.concat(parts, ", ")),
        0)
end

--- pcall's results, raising again an error that is not an Exception.
local function try_result(ok, ...)
  if not ok and not iserror((...), errors.Exception) then
    error((...), 0)
  end
  return ok, ...
end

--- Awaits aw, returning true and its values, or false and an ordinary
-- error; a cancellation (or any BaseException) goes through.
local function try_await(aw)
  return try_result(pcall(await, aw))
end

local check_factory = check.factory

local function opt(opts, name)
  return opts and opts[name]
end

-- the options that only count with ssl
local SSL_ONLY = {"server_hostname", "ssl_handshake_timeout",
                  "ssl_shutdown_timeout"}

--- Checks the TLS options as asyncio does; returns the SSL context to use
-- (nil without ssl).
local function ssl_context(opts, server_side)
  if opts == nil then return nil end
  local ssl = opts.ssl
  if not ssl then
    for _, name in ipairs(SSL_ONLY) do
      if opts[name] ~= nil then
        error(errors.ValueError(name .. " is only meaningful with ssl"), 0)
      end
    end
    return nil
  end
  if ssl == true then
    if server_side then
      error(errors.TypeError("ssl argument must be an SSLContext or nil"),
            0)
    end
    return require("asyncio.ssl").create_default_context()
  end
  -- a context is an object: asyncio.sslproto (which may be replaced)
  -- takes it from here
  if type(ssl) ~= "userdata" and type(ssl) ~= "table" then
    error(errors.TypeError(("ssl argument must be an SSLContext, true or "
                            .. "nil, not %s"):format(check.typename(ssl))), 0)
  end
  return ssl
end

local function ssl_timeouts(opts)
  return {ssl_handshake_timeout = opt(opts, "ssl_handshake_timeout"),
          ssl_shutdown_timeout = opt(opts, "ssl_shutdown_timeout")}
end

--- Gives the connected raw transport its protocol: the application's, or
-- (ctx given) an SSLProtocol wrapping it; waits for connection_made (and
-- the TLS handshake). Returns transport, protocol.
local function start(loop, raw, factory, ctx, hostname, opts)
  local ok, app = pcall(factory)
  if not ok then
    raw:abort()
    error(app, 0)
  end
  if not ctx then
    raw:_start(app)
    -- connection_made runs first, as call_soon's
    local done, err = pcall(await, core.sleep(0))
    if not done then
      raw:close()
      error(err, 0)
    end
    return raw, app
  end
  local sslproto = require "asyncio.sslproto"
  local waiter = loop:create_future()
  local made, p = pcall(sslproto.SSLProtocol, loop, app, ctx, waiter, false,
                        hostname, ssl_timeouts(opts))
  if not made then -- a server's context, a bad timeout: the socket goes
    raw:abort()
    error(p, 0)
  end
  raw:_start(p)
  local done, err = pcall(await, waiter)
  if not done then
    raw:close()
    error(err, 0)
  end
  return p._app_transport, app
end

--- The `family` option: nil, asyncio.AF_UNSPEC, AF_INET or AF_INET6.
local function family_option(opts)
  local family = opt(opts, "family")
  if family ~= nil and family ~= core.AF_UNSPEC and family ~= core.AF_INET
     and family ~= core.AF_INET6 then
    error(errors.ValueError(("family must be asyncio.AF_INET, AF_INET6 or "
                             .. "AF_UNSPEC, not %s"):format(tostring(family))),
          0)
  end
  return family
end

--- The options happy_eyeballs_delay (nil or a number of seconds) and
-- interleave (an integer; 1 when happy_eyeballs_delay is given without
-- it, else 0), checked.
local function eyeballs_options(opts)
  if opts == nil then return nil, 0 end
  local delay, interleave = opts.happy_eyeballs_delay, opts.interleave
  if delay ~= nil and (type(delay) ~= "number" or delay ~= delay) then
    error(errors.TypeError("happy_eyeballs_delay must be a number, not "
                           .. check.typename(delay)), 0)
  end
  if interleave ~= nil and math.type(interleave) ~= "integer" then
    error(errors.TypeError("interleave must be an integer, not "
                           .. check.typename(interleave)), 0)
  end
  return delay, interleave or (delay ~= nil and 1 or 0)
end

--- addrs reordered as asyncio's _interleave_addrinfos does: the first
-- `first_count` - 1 addresses of the first address family, then one
-- address of each family in turn (families in order of first
-- appearance), each family's addresses in their own order.
function M._interleave(addrs, first_count)
  local families, by_family = {}, {}
  for _, addr in ipairs(addrs) do
    local f = core._ip_family(addr) or 0
    if by_family[f] == nil then
      by_family[f] = {}
      families[#families + 1] = f
    end
    local list = by_family[f]
    list[#list + 1] = addr
  end
  local out, first = {}, by_family[families[1]]
  local skip = math.max(0, math.min(first_count - 1, #first))
  for i = 1, skip do out[i] = first[i] end
  local next_of = {[families[1]] = skip + 1}
  repeat
    local added = false
    for _, f in ipairs(families) do
      local i = next_of[f] or 1
      if by_family[f][i] ~= nil then
        out[#out + 1] = by_family[f][i]
        next_of[f] = i + 1
        added = true
      end
    end
  until not added
  return out
end

--- The {host, port} option `name` (local_addr, remote_addr), checked: a
-- table whose host is a string or nil and port an integer in 0-65535 or
-- nil. Raises "bad option 'name' (...)" otherwise.
local function addr_option(opts, name)
  local addr = opt(opts, name)
  if addr == nil then return nil end
  local why
  if type(addr) ~= "table" then
    why = "{host, port} expected, got " .. check.typename(addr)
  elseif addr[1] ~= nil and type(addr[1]) ~= "string" then
    why = "host must be a string, got " .. check.typename(addr[1])
  elseif addr[2] ~= nil then
    why = check.bad_port(addr[2])
  end
  if why then error(("bad option '%s' (%s)"):format(name, why), 0) end
  return addr
end

local AF_NAMES = {[core.AF_INET] = "AF_INET", [core.AF_INET6] = "AF_INET6"}

-- the options of a connect without options (never written)
local NO_OPTIONS = {}
local function no_options() return NO_OPTIONS end

--- The options of the connect to each remote address: bind(addr) ->
-- opts, with local_addr's host (a name or an address) resolved as
-- asyncio does and the first local address of addr's family bound; or
-- nil and the OSError asyncio raises when there is none of that family.
local function local_binder(opts, family)
  local la = addr_option(opts, "local_addr")
  if la == nil or la[1] == nil then
    if opts == nil then return no_options end
    return function() return opts end
  end
  local locals = M._resolve(la[1], la[2], SOCK_STREAM, false, family)
  return function(addr)
    local family = core._ip_family(addr)
    for _, l in ipairs(locals) do
      if core._ip_family(l) == family then
        local o = {}
        for k, v in pairs(opts) do o[k] = v end
        o.local_addr = {l, la[2]}
        return o
      end
    end
    return nil, errors.OSError(("no matching local address with "
      .. "family=%s found"):format(AF_NAMES[family] or tostring(family)))
  end
end

--- Names the address in the error of a failed connect, as asyncio's
-- "Connect call failed ('127.0.0.1', 1)" (its strerror; the message
-- keeps the libuv name first: "ECONNREFUSED: Connect call failed ...").
-- Two addresses that fail alike then differ, and raise_all names both.
local function connect_failed(e, addr, port)
  if iserror(e, errors.OSError) and rawget(e, "op") == "connect"
     and type(rawget(e, "name")) == "string" then
    local where = core._ip_family(addr) == core.AF_INET6
      and ("('%s', %d, 0, 0)"):format(addr, port)
      or ("('%s', %d)"):format(addr, port)
    e.strerror = "Connect call failed " .. where
    e.message = e.name .. ": " .. e.strerror
  end
  return e
end

--- Connects to the first of addrs that accepts, trying each after the
-- one before it failed; raises what they all raised. bind(addr) gives
-- each connect's options (local_binder).
local function connect_in_turn(addrs, port, bind, all_errors)
  local errs
  for _, addr in ipairs(addrs) do
    local o, raw = bind(addr)
    local ok = false
    if o then ok, raw = try_await(core._tcp_connect(addr, port, o)) end
    if ok then return raw end
    errs = errs or {}
    errs[#errs + 1] = connect_failed(raw, addr, port)
  end
  raise_all(errs or {}, all_errors)
end

--- Happy Eyeballs (RFC 8305), as asyncio's happy_eyeballs_delay: the
-- next address is tried when the one before it failed or `delay`
-- seconds after it started; the first connection made wins and the
-- attempts still connecting are cancelled (their sockets closed).
local function connect_staggered(addrs, port, bind, delay, all_errors)
  local fns = {}
  for i, addr in ipairs(addrs) do
    fns[i] = async(function()
      local o, err = bind(addr)
      if not o then error(err, 0) end -- this attempt's failure
      local ok, raw = try_await(core._tcp_connect(addr, port, o))
      if not ok then error(connect_failed(raw, addr, port), 0) end
      return raw
    end)
  end
  local staggered = require "asyncio.staggered"
  local raw, _, excs = await(staggered.staggered_race(fns, delay))
  if raw ~= nil then return raw end
  local errs = {}
  for i = 1, excs.n do errs[#errs + 1] = excs[i] end
  raise_all(errs, all_errors)
end

--- loop:create_connection(factory, host, port [, {ssl =,
-- server_hostname =, local_addr = {host, port}, family =,
-- happy_eyeballs_delay =, interleave =, ssl_handshake_timeout =,
-- ssl_shutdown_timeout =}]) -> transport, protocol: the first address of
-- host that accepts, tried in turn, or raced with happy_eyeballs_delay
-- (connect_staggered). Its body, with the options already checked.
local function create_connection(loop, factory, host, port, opts)
  local ctx = ssl_context(opts, false)
  local hostname = opt(opts, "server_hostname")
  if ctx and hostname == nil then
    if host == nil or host == "" then
      error(errors.ValueError("You must set server_hostname when using "
                              .. "ssl without a host"), 0)
    end
    hostname = host
  end
  local delay, interleave = eyeballs_options(opts)
  local family = family_option(opts)
  local addrs = M._resolve(host, port, SOCK_STREAM, false, -- specs
                           family)                   -- replace it
  if interleave ~= 0 then addrs = M._interleave(addrs, interleave) end
  local bind = local_binder(opts, family)
  local raw
  local all_errors = opt(opts, "all_errors")
  if delay == nil then
    raw = connect_in_turn(addrs, port, bind, all_errors)
  else
    raw = connect_staggered(addrs, port, bind, delay, all_errors)
  end
  return start(loop, raw, factory, ctx, hostname, opts)
end

M.create_connection = async(function(loop, factory, host, port, opts)
  factory = check_factory(factory, "create_connection")
  check.type(host, 2, "create_connection", "string", true)
  port = check.port(port, 3, "create_connection")
  check.options(opts, 4, "create_connection", CONNECTION_OPTIONS)
  return create_connection(loop, factory, host, port, opts)
end)
-- unchecked, for open_connection (which checked its arguments and calls
-- it in its own coroutine: no Coroutine object of its own)
M._create_connection = create_connection

--- loop:create_unix_connection(factory, path [, {ssl =,
-- server_hostname =, ssl_handshake_timeout =, ssl_shutdown_timeout =}])
-- -> transport, protocol. Its body, with the arguments already checked.
local function create_unix_connection(loop, factory, path, opts)
  local ctx = ssl_context(opts, false)
  local hostname = opt(opts, "server_hostname")
  if ctx and hostname == nil then
    error(errors.ValueError("you have to pass server_hostname when using "
                            .. "ssl"), 0)
  end
  local raw = await(core._unix_connect(path))
  return start(loop, raw, factory, ctx, hostname, opts)
end

M.create_unix_connection = async(function(loop, factory, path, opts)
  factory = check_factory(factory, "create_unix_connection")
  check.type(path, 2, "create_unix_connection", "string")
  check.options(opts, 3, "create_unix_connection", UNIX_CONNECTION_OPTIONS)
  return create_unix_connection(loop, factory, path, opts)
end)
-- unchecked, for open_unix_connection
M._create_unix_connection = create_unix_connection

--- The factory a server calls per connection: with TLS, an SSLProtocol
-- (server side) around the application's protocol; a failed handshake
-- goes to the exception handler and the server goes on.
local function server_factory(loop, factory, opts)
  local ctx = ssl_context(opts, true)
  if not ctx then return factory end
  local sslproto = require "asyncio.sslproto"
  local timeouts = ssl_timeouts(opts)
  local function report(f)
    if f:cancelled() then return end
    local exc = f:exception()
    if exc ~= nil then
      loop:call_exception_handler{
        message = "Error on transport creation for incoming connection",
        exception = exc}
    end
  end
  return function()
    local waiter = loop:create_future()
    waiter:add_done_callback(report)
    return sslproto.SSLProtocol(loop, factory(), ctx, waiter, true, nil,
                                timeouts)
  end
end

--- The backlog option, checked: nil or an integer.
local function check_backlog(opts)
  local b = opt(opts, "backlog")
  if b ~= nil and (type(b) ~= "number" or math.tointeger(b) == nil) then
    error(("bad option 'backlog' (integer expected, got %s)")
          :format(check.typename(b)), 0)
  end
end

--- Checks argument n of fname, the host(s) of a server: nil, a string or
-- a list of strings.
local function check_hosts(host, n, fname)
  if type(host) ~= "table" then
    return check.type(host, n, fname, "string", true)
  end
  for i, h in ipairs(host) do
    if type(h) ~= "string" then
      check.argerror(n, fname, ("list of strings expected, item %d is %s")
                     :format(i, check.typename(h)), 2)
    end
  end
end
M._check_hosts = check_hosts

--- loop:create_server(factory, host, port [, {ssl =, family =, backlog =,
-- reuse_port =, reuse_address =, start_serving =,
-- ssl_handshake_timeout =, ssl_shutdown_timeout =}]) -> Server. host
-- may be a list of hosts; nil or "" listens on every interface. Port 0
-- lets the system choose (see server.sockets). Its body, with the
-- options already checked.
local function create_server(loop, factory, host, port, opts)
  port = port or 0
  check_backlog(opts)
  local make = server_factory(loop, factory, opts)
  local addrs = {}
  for _, h in ipairs(type(host) == "table" and host or {host or ""}) do
    for _, addr in ipairs(resolve(h ~= "" and h or nil, port, SOCK_STREAM,
                                  true, family_option(opts))) do
      addrs[#addrs + 1] = {addr, port}
    end
  end
  return core._tcp_server(make, addrs, opts)
end

M.create_server = async(function(loop, factory, host, port, opts)
  factory = check_factory(factory, "create_server")
  check_hosts(host, 2, "create_server")
  port = check.port(port, 3, "create_server", true)
  check.options(opts, 4, "create_server", SERVER_OPTIONS)
  return create_server(loop, factory, host, port, opts)
end)
-- unchecked, for start_server (which checked its arguments)
M._create_server = create_server

--- loop:create_unix_server(factory, path [, {ssl =, backlog =,
-- start_serving =, ssl_handshake_timeout =, ssl_shutdown_timeout =}])
-- -> Server. The socket file is removed when the server closes.
local function create_unix_server(loop, factory, path, opts)
  check_backlog(opts)
  return core._unix_server(server_factory(loop, factory, opts), path, opts)
end

M.create_unix_server = async(function(loop, factory, path, opts)
  factory = check_factory(factory, "create_unix_server")
  check.type(path, 2, "create_unix_server", "string")
  check.options(opts, 3, "create_unix_server", UNIX_SERVER_OPTIONS)
  return create_unix_server(loop, factory, path, opts)
end)
-- unchecked, for start_unix_server
M._create_unix_server = create_unix_server

--- connect_read_pipe(factory, pipe) / connect_write_pipe(factory, pipe):
-- pipe is a Lua file (io.open, io.popen) or a file descriptor; the
-- transport owns it from then on.
local function connect_pipe(loop, factory, pipe, readable, name)
  factory = check_factory(factory, name)
  if io.type(pipe) == "closed file" then
    check.argerror(2, name, "attempt to use a closed file", 2)
  elseif not io.type(pipe) then
    pipe = check.integer(pipe, 2, name)
  end
  local t = core._pipe_open(pipe, readable)
  return start(loop, t, factory)
end

M.connect_read_pipe = async(function(loop, factory, pipe)
  return connect_pipe(loop, factory, pipe, true, "connect_read_pipe")
end)

M.connect_write_pipe = async(function(loop, factory, pipe)
  return connect_pipe(loop, factory, pipe, false, "connect_write_pipe")
end)

--- The numeric addresses of the {host, port} option `name` (of
-- `family` when given), or nil.
local function dgram_addrs(opts, name, passive, family)
  local addr = addr_option(opts, name)
  if addr == nil then return nil end
  local host = addr[1]
  if host == nil or host == "" then
    host = passive and (family == core.AF_INET6 and "::" or "0.0.0.0")
           or (family == core.AF_INET6 and "::1" or "127.0.0.1")
  end
  local out = {}
  for i, a in ipairs(resolve(host, addr[2], SOCK_DGRAM, passive, family)) do
    out[i] = {a, addr[2] or 0}
  end
  return out
end

--- The {local, remote} pairs to try, as asyncio's: per address family
-- (in order of first appearance), the first address of each option, for
-- the families every given option has; ValueError "can not get address
-- information" when none. With neither option, `family`'s wildcard.
local function dgram_pairs(opts)
  local family = family_option(opts)
  local locals = dgram_addrs(opts, "local_addr", true, family)
  local remotes = dgram_addrs(opts, "remote_addr", false, family)
  if locals == nil and remotes == nil then
    if family == nil or family == core.AF_UNSPEC then
      error(errors.ValueError("unexpected address family"), 0)
    end
    return {{{family == core.AF_INET6 and "::" or "0.0.0.0", 0}}}
  end
  local order, by_family = {}, {}
  for i, list in ipairs{locals or {}, remotes or {}} do
    for _, addr in ipairs(list) do
      local f = core._ip_family(addr[1])
      if by_family[f] == nil then
        by_family[f] = {}
        order[#order + 1] = f
      end
      if by_family[f][i] == nil then by_family[f][i] = addr end
    end
  end
  local pairs_ = {}
  for _, f in ipairs(order) do
    local pair = by_family[f]
    if (locals == nil or pair[1]) and (remotes == nil or pair[2]) then
      pairs_[#pairs_ + 1] = pair
    end
  end
  if #pairs_ == 0 then
    error(errors.ValueError("can not get address information"), 0)
  end
  return pairs_
end

--- loop:create_datagram_endpoint(factory [, {local_addr = {host, port},
-- remote_addr = {host, port}, family =, reuse_port =,
-- allow_broadcast =}]) -> transport, protocol. The transport has
-- sendto(data [, addr]), close(), abort(), is_closing(),
-- get_extra_info(name [, default]), the write buffer's methods; the
-- protocol gets datagram_received(data, addr) and error_received(exc).
-- Each address family both addresses have is tried in turn; the first
-- failure is raised when all fail.
M.create_datagram_endpoint = async(function(loop, factory, opts)
  factory = check_factory(factory, "create_datagram_endpoint")
  check.options(opts, 2, "create_datagram_endpoint", DATAGRAM_OPTIONS)
  local errs, t = {}, nil
  for _, pair in ipairs(dgram_pairs(opts)) do
    local ok, res = pcall(core._dgram_open, pair[1], pair[2], opts)
    if ok then
      t = res
      break
    end
    if not iserror(res, errors.OSError) then error(res, 0) end
    errs[#errs + 1] = res
  end
  if t == nil then error(errs[1], 0) end
  return start(loop, t, factory)
end)

local Loop = core._EventLoop
for _, name in ipairs{"create_connection", "create_unix_connection",
                      "create_server", "create_unix_server",
                      "connect_read_pipe", "connect_write_pipe",
                      "create_datagram_endpoint"} do
  Loop[name] = M[name]
end
--- loop:start_tls(transport, protocol, sslcontext [, opts]): the TLS
-- battery's (asyncio.sslproto), loaded on first use.
function Loop.start_tls(...)
  return require("asyncio.sslproto").start_tls(...)
end

return M
