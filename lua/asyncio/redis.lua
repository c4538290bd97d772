--- asyncio.redis: a Redis client in redis-py's asyncio shape.
--
--   local redis = require "asyncio.redis"
--   local r <close> = redis.from_url("redis://127.0.0.1:6379/3")
--   await(r:set("k", "v", {ex = 10}))       --> true
--   print(await(r:get("k")))                --> v
--   local key, value = await(r:brpop({"jobs"}, 5))  -- nil on timeout
--
-- The bytes are RESP2, parsed by hiredis's reader and encoded in C
-- (asyncio._redis, bindings/redis/resp.c); the transport is asyncio's
-- streams. A client is a pool of connections:
--   - one shared connection carries the ordinary commands of every task,
--     pipelined: commands issued in one loop iteration leave in one write
--     at the next, and their replies complete their futures in order;
--   - blocking commands (BRPOP, BLMOVE, BZPOPMIN, XREAD BLOCK ...), WATCH
--     transactions and pub/sub take a dedicated connection (at most
--     pool_size of them at once; the others wait for one).
-- A command whose caller is cancelled leaves its reply to be read and
-- discarded, so a connection never loses its place. A blocking command
-- cancelled in flight is unblocked with CLIENT UNBLOCK from the shared
-- connection; if Redis had already popped elements for it, they are
-- pushed back where they came from (BRPOP: RPUSH, BLPOP: LPUSH,
-- BZPOPMIN/MAX and BZMPOP: ZADD, BLMPOP: LPUSH or RPUSH) before the
-- connection is reused. BLMOVE and BRPOPLPUSH leave it in their
-- destination list (the lease). See docs/redis.md for the exact
-- guarantee.

local asyncio = require "asyncio"
local _redis = require "asyncio._redis"
local check = require "asyncio.check"

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror
local error, ipairs, pairs, pcall, select, setmetatable, tonumber,
  tostring, type = error, ipairs, pairs, pcall, select, setmetatable,
  tonumber, tostring, type
local concat, unpack = table.concat, table.unpack
local Protocol = _redis.Protocol

local M = {}

---------------------------------------------------------------------------
-- Errors (redis-py's tree)

local RedisError = asyncio.Exception:subclass("redis.RedisError")
M.RedisError = RedisError
M.ConnectionError = RedisError:subclass("redis.ConnectionError")
M.TimeoutError = RedisError:subclass("redis.TimeoutError")
M.AuthenticationError =
  M.ConnectionError:subclass("redis.AuthenticationError")
M.BusyLoadingError = M.ConnectionError:subclass("redis.BusyLoadingError")
M.ResponseError = RedisError:subclass("redis.ResponseError")
M.DataError = RedisError:subclass("redis.DataError")
M.PubSubError = RedisError:subclass("redis.PubSubError")
M.WatchError = RedisError:subclass("redis.WatchError")
M.NoScriptError = M.ResponseError:subclass("redis.NoScriptError")
M.ExecAbortError = M.ResponseError:subclass("redis.ExecAbortError")
M.ReadOnlyError = M.ResponseError:subclass("redis.ReadOnlyError")
M.NoPermissionError = M.ResponseError:subclass("redis.NoPermissionError")
M.OutOfMemoryError = M.ResponseError:subclass("redis.OutOfMemoryError")
M.ModuleError = M.ResponseError:subclass("redis.ModuleError")
M.AuthenticationWrongNumberOfArgsError = M.ResponseError:subclass(
  "redis.AuthenticationWrongNumberOfArgsError")
M.ProtocolError = M.ConnectionError:subclass("redis.ProtocolError")
--- Lock's errors: it is not held, or no longer by this holder
M.LockError = RedisError:subclass("redis.LockError")
-- redis-py's LockError is also a ValueError (LockNotOwnedError, made
-- after, inherits it)
require("asyncio.errors").add_base(M.LockError, asyncio.ValueError)
M.LockNotOwnedError = M.LockError:subclass("redis.LockNotOwnedError")

-- error reply prefix -> class; the prefix is dropped from the message
local ERROR_CODES = {
  ERR = M.ResponseError, EXECABORT = M.ExecAbortError,
  LOADING = M.BusyLoadingError, NOSCRIPT = M.NoScriptError,
  READONLY = M.ReadOnlyError, NOAUTH = M.AuthenticationError,
  NOPERM = M.NoPermissionError, WRONGPASS = M.AuthenticationError,
  OOM = M.OutOfMemoryError,
}

-- the ERR replies redis-py gives a class of their own, by message
local ERR_MESSAGES = {
  ["max number of clients reached"] = M.ConnectionError,
  ["invalid password"] = M.AuthenticationError,
  ["wrong number of arguments for 'auth' command"] =
    M.AuthenticationWrongNumberOfArgsError,
  ["wrong number of arguments for 'AUTH' command"] =
    M.AuthenticationWrongNumberOfArgsError,
  ["Error loading the extension. Please check the server logs."] =
    M.ModuleError,
  ["Error unloading module: no such module with that name"] = M.ModuleError,
  ["Error unloading module: operation not possible."] = M.ModuleError,
  ["Error unloading module: the module exports one or more module-side "
   .. "data types, can't unload"] = M.ModuleError,
  ["AUTH <password> called without any password configured for the "
   .. "default user. Are you sure your configuration is correct?"] =
    M.AuthenticationError,
  ["Client sent AUTH, but no password is set"] = M.AuthenticationError,
}

--- The error object for an error reply, as redis-py's parse_error: the
-- code is the reply's first word, dropped with the space after it when
-- it is known (a bare "ERR" is a ResponseError with message "").
local function reply_error(msg)
  local code = msg:match("^[^ ]*")
  local rest = msg:sub(#code + 2)
  local cls = ERROR_CODES[code]
  if code == "ERR" then cls = ERR_MESSAGES[rest] or cls end
  if cls then return cls(rest) end
  return M.ResponseError(msg)
end

local function is_cancel(e)
  return iserror(e) and not iserror(e, asyncio.Exception)
end

---------------------------------------------------------------------------
-- Connections

local Conn = {}
Conn.__index = Conn

--- Fails every command waiting on c with err and closes it.
local function conn_lost(c, err)
  if c.closed then return end
  c.closed = true
  if not iserror(err, RedisError) then
    local what = err == nil and "Connection closed by server."
      or tostring(iserror(err) and err.message or err)
    err = M.ConnectionError(what)
  end
  c.err = err
  local futs, quiet = c.futs, c.quiet
  for i = c.head + 1, c.tail do
    local fut = futs[i]
    futs[i] = nil
    if not fut:done() then
      fut:set_exception(err)
      -- nobody awaits these: their failure is expected, not to report
      if quiet[fut] then fut:exception() end
    end
  end
  c.head = c.tail
  pcall(c.writer.close, c.writer)
  if c.push then c.push(nil, err) end
  if c.on_lost then c.on_lost(c) end
end

--- Writes what the commands of this iteration encoded, in one write.
local function flush(c)
  c.flushing = false
  if c.closed then return end
  local data = c.proto:take()
  if #data > 0 then
    local ok, err = pcall(c.writer.write, c.writer, data)
    if not ok then conn_lost(c, err) end
  end
end

--- Raises Lua's "bad argument" error (DESIGN: a wrong type is argument
-- misuse; redis-py raises DataError) unless every argument of argv, 1 to
-- argv.n (or #argv), is a string or a number other than NaN: Redis has
-- no nil, boolean or table arguments. Arguments count from the command
-- name: rpush("l", "a", nil) is "bad argument #3 to 'RPUSH'".
local function check_argv(argv)
  for i = 1, argv.n or #argv do
    local v = argv[i]
    local t = type(v)
    if t ~= "string" and (t ~= "number" or v ~= v) then
      error(("bad argument #%d to '%s' (string or number expected, got "
             .. "%s)"):format(i - 1, tostring(argv[1]),
                              t == "number" and "NaN" or t), 0)
    end
  end
  return argv
end

--- Encodes the command (argv table, checked) and returns the future of
-- its reply.
local function send_argv(c, argv)
  check_argv(argv)
  local fut = c.loop:create_future()
  if c.closed then
    fut:set_exception(c.err)
    return fut
  end
  c.proto:command_list(argv)
  local t = c.tail + 1
  c.tail = t
  c.futs[t] = fut
  if not c.flushing then
    c.flushing = true
    c.loop:call_soon(c.flush)
  end
  return fut
end

--- Encodes a command whose replies go to c.push (pub/sub), no future.
local function send_push(c, argv)
  check_argv(argv)
  if c.closed then error(c.err, 0) end
  c.proto:command_list(argv)
  if not c.flushing then
    c.flushing = true
    c.loop:call_soon(c.flush)
  end
end

--- The reader task of a connection: matches replies to futures in order
-- (or hands them to c.push) until the connection ends.
local read_loop = async(function(c)
  local reader, proto, futs = c.reader, c.proto, c.futs
  local parsing = false -- in proto:get(), whose only error is the stream's
  local ok, err = pcall(function()
    while true do
      local data = await(reader:read(65536))
      if data == "" then error(M.ConnectionError(
        "Connection closed by server."), 0) end
      proto:feed(data)
      while true do
        parsing = true
        local okr, v = proto:get()
        parsing = false
        if okr == nil then break end
        local h = c.head + 1
        local fut = futs[h]
        if fut ~= nil then
          futs[h] = nil
          c.head = h
          if not fut:done() then
            if okr then fut:set_result(v) else fut:set_exception(v) end
          end
        elseif c.push then
          c.push(okr, v)
        else
          error(M.ProtocolError("reply with no command waiting"), 0)
        end
      end
      if c.hc then c.next_check = c.loop:time() + c.hc end
    end
  end)
  -- Protocol:get's "[position: ]protocol error: <hiredis's words>" (a
  -- push handler's error is its own, whatever it says)
  local what = not ok and parsing and type(err) == "string"
    and err:match("protocol error: (.*)$")
  if what then err = M.ProtocolError(what) end
  conn_lost(c, err)
  if not ok and is_cancel(err) then error(err, 0) end
end)

--- Awaits the reply future fut of connection c within socket_timeout
-- seconds; past it, raises redis.TimeoutError and closes c (as redis-py
-- does: the reply may still come, the connection is not trusted).
local function await_timeout(c, fut, timeout)
  local ok, v = pcall(await, asyncio.wait_for(asyncio.shield(fut), timeout))
  if ok then return v end
  if iserror(v, asyncio.TimeoutError) then
    c.quiet[fut] = true
    conn_lost(c, M.TimeoutError("Timeout reading from socket"))
    error(M.TimeoutError("Timeout reading from socket"), 0)
  end
  error(v, 0)
end

--- The reply of future fut of connection c: within timeout seconds if
-- timeout is not nil (see await_timeout), else as long as it takes.
local function await_reply(c, fut, timeout)
  if timeout then return await_timeout(c, fut, timeout) end
  return await(fut)
end

--- redis-py's check_health: when c has read nothing for its
-- health_check_interval (c.hc) seconds, PINGs it and waits for the PONG
-- (within timeout, as a reply); the callers that find it due meanwhile
-- wait for the same PING. A connection that fails it is closed and the
-- error raised: redis.TimeoutError, or redis.ConnectionError.
local function check_health(c, timeout)
  if c.loop:time() <= c.next_check then return end
  local ping = c.checking
  if not ping then
    ping = send_argv(c, {"PING"})
    c.checking = ping
  end
  -- shielded: a caller cancelled while it waits leaves the PING to the
  -- others
  local ok, v = pcall(await_reply, c,
                      timeout and ping or asyncio.shield(ping), timeout)
  if c.checking == ping then c.checking = nil end
  if ok and v == "PONG" then return end
  if ok then -- an answer, but not PONG
    c:close()
    error(M.ConnectionError("Bad response from PING health check"), 0)
  end
  error(v, 0) -- a timeout or a lost connection (c is closed), or a cancel
end

--- The redis.ConnectionError for e, the error of connecting to the
-- server of client options o, worded as redis-py's _error_message: "Error
-- <errno> connecting to <host>:<port>. <strerror>." for an OSError (the
-- error keeps its errno: 111, or getaddrinfo's -2), else "Error
-- connecting to <host>:<port>. <message>."; "unix socket: <path>" in
-- place of <host>:<port> for a Unix socket.
local function connect_error(o, e)
  local where = o.path and ("unix socket: " .. o.path)
    or (o.host .. ":" .. o.port)
  if iserror(e) and math.type(e.errno) == "integer"
      and type(e.strerror) == "string" then
    local err = M.ConnectionError(("Error %d connecting to %s. %s."):format(
      e.errno, where, e.strerror))
    err.errno = e.errno
    return err
  end
  return M.ConnectionError(("Error connecting to %s. %s."):format(where,
    iserror(e) and e.message or tostring(e)))
end

--- Opens a connection for client options o: connects, starts its reader
-- task, authenticates, selects the database and learns its client id
-- (nil when the user may not run CLIENT ID). socket_connect_timeout
-- bounds the connection and each of these replies; without it,
-- socket_timeout bounds the replies (as redis-py's), not the connection.
local open_conn = async(function(o)
  local ok, reader, writer = pcall(function()
    local aw
    if o.path then
      aw = asyncio.open_unix_connection(o.path)
    else
      local copts
      if o.ssl then copts = {ssl = o.ssl, server_hostname = o.host} end
      aw = asyncio.open_connection(o.host, o.port, copts)
    end
    local timeout = o.socket_connect_timeout or o.socket_timeout
    if timeout then return await(asyncio.wait_for(aw, timeout)) end
    return await(aw)
  end)
  if not ok then
    if is_cancel(reader) then error(reader, 0) end
    if iserror(reader, asyncio.TimeoutError) then
      error(M.TimeoutError("Timeout connecting to server"), 0)
    end
    error(connect_error(o, reader), 0)
  end
  local c = setmetatable({reader = reader, writer = writer,
                          proto = Protocol(reply_error), futs = {},
                          quiet = setmetatable({}, {__mode = "k"}),
                          head = 0, tail = 0, loop = asyncio.get_running_loop(),
                          flushing = false, closed = false}, Conn)
  c.flush = function() flush(c) end
  local hc = o.health_check_interval
  if hc and hc > 0 then c.hc, c.next_check = hc, c.loop:time() + hc end
  c.task = asyncio.create_task(read_loop(c))
  local auth, sel
  if o.username then
    auth = send_argv(c, {"AUTH", o.username, o.password or ""})
  elseif o.password then
    auth = send_argv(c, {"AUTH", o.password})
  end
  if o.db and o.db ~= 0 then sel = send_argv(c, {"SELECT", o.db}) end
  local name = o.client_name and send_argv(c, {"CLIENT", "SETNAME",
                                               o.client_name})
  local id = send_argv(c, {"CLIENT", "ID"})
  -- on failure the first error is raised; the others are expected
  for _, f in ipairs{auth or id, sel or id, name or id, id} do
    f:add_done_callback(function(fut)
      if not fut:cancelled() then fut:exception() end
    end)
  end
  local timeout = o.socket_connect_timeout or o.socket_timeout
  local okh, err = pcall(function()
    if auth then
      local okauth, e = pcall(await_reply, c, auth, timeout)
      if not okauth then
        if iserror(e, M.ResponseError) then
          e = M.AuthenticationError(e.message)
        end
        error(e, 0)
      end
    end
    if sel then await_reply(c, sel, timeout) end
    if name then await_reply(c, name, timeout) end
    -- an ACL user may lack CLIENT ID: the connection works without it
    -- (a cancelled blocking command then closes its connection)
    local okid, v = pcall(await_reply, c, id, timeout)
    if okid then c.id = v
    elseif not iserror(v, M.ResponseError) then error(v, 0) end
  end)
  if not okh then
    c:close()
    error(err, 0)
  end
  return c
end)

--- Closes only the socket of c, on a closed loop: nothing runs there any
-- more, so no future is completed and no task cancelled.
local function drop_socket(c)
  if c.closed then return end
  c.closed = true
  c.err = M.ConnectionError("Connection closed.")
  pcall(c.writer.close, c.writer)
  c.proto:close()
end

--- c:close(): closes at once (commands in flight fail); never raises,
-- its loop closed or not.
function Conn:close()
  if self.loop:is_closed() then return drop_socket(self) end
  if not self.closed then
    conn_lost(self, M.ConnectionError("Connection closed."))
  end
  if self.task and not self.task:done() then self.task:cancel() end
  self.proto:close()
end

---------------------------------------------------------------------------
-- The client and its pool

local Redis = {}
Redis.__index = Redis
M._Redis = Redis

local DEFAULTS = {host = "127.0.0.1", port = 6379, db = 0, pool_size = 50}

local function url_unescape(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

-- The options of Redis{...}: redis-py's keyword arguments that luaio has
-- (others, such as retry or retry_on_error, raise). decode_responses is
-- taken and changes nothing: a reply is a Lua string, which is what
-- redis-py gives with decode_responses = true and without it.
-- unix_socket_path is redis-py's name of path; client_name is set on
-- every connection (CLIENT SETNAME).
local REDIS_OPTS = check.option_set{"host", "port", "path", "db", "password",
  "username", "pool_size", "max_connections", "socket_timeout",
  "socket_connect_timeout", "ssl", "decode_responses", "unix_socket_path",
  "client_name", "health_check_interval", "retry_on_timeout"}

--- Raises "bad option 'name' to 'Redis' (what expected)" at the caller
-- of new_client's caller.
local function bad_option(name, what)
  error(("bad option '%s' to 'Redis' (%s expected)"):format(name, what), 4)
end

--- v as an integer within lo .. hi when it is one or a string of one
-- (a port, a database number), else nil.
local function int_in(v, lo, hi)
  local i = (type(v) == "number" or type(v) == "string")
    and math.tointeger(tonumber(v))
  if i and i >= lo and i <= hi then return i end
  return nil
end

--- Checks the values of the options o that Redis{} and from_url take
-- as they are (a wrong one would otherwise surface only when a command
-- connects, or never: a db that does not convert chose database 0), in a
-- fixed order, so that of two bad options the same one is named.
local function check_values(o)
  for _, name in ipairs{"host", "path", "password", "username",
                        "client_name"} do
    local v = o[name]
    if v ~= nil and type(v) ~= "string" then bad_option(name, "string") end
  end
  for _, name in ipairs{"decode_responses", "retry_on_timeout"} do
    local v = o[name]
    if v ~= nil and type(v) ~= "boolean" then bad_option(name, "boolean") end
  end
  for _, name in ipairs{"socket_timeout", "socket_connect_timeout"} do
    local v = o[name]
    if v ~= nil and not (type(v) == "number" and v > 0) then
      bad_option(name, "positive number")
    end
  end
  local hc = o.health_check_interval
  if hc ~= nil and not (type(hc) == "number" and hc >= 0) then
    bad_option("health_check_interval", "non-negative number")
  end
  for _, c in ipairs{{"port", 0, 65535, "integer in 0 .. 65535"},
                     {"db", 0, math.maxinteger, "non-negative integer"},
                     {"pool_size", 1, math.maxinteger, "positive integer"}} do
    local name, v = c[1], o[c[1]]
    if v ~= nil then
      o[name] = int_in(v, c[2], c[3])
      if o[name] == nil then bad_option(name, c[4]) end
    end
  end
end

--- Redis{host =, port =, db =, password =, username =, pool_size =
-- (or redis-py's name max_connections), socket_timeout =,
-- socket_connect_timeout =, ssl =, path =} -> a client, not connected
-- yet. socket_timeout (seconds) bounds the wait for each reply of an
-- ordinary command (not of blocking ones) and for connecting; past it
-- redis.TimeoutError.
local function new_client(opts)
  opts = check.options(opts, 1, "Redis", REDIS_OPTS) or {}
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  o.pool_size = opts.pool_size or opts.max_connections or o.pool_size
  o.path = opts.path or opts.unix_socket_path
  o.max_connections, o.unix_socket_path = nil, nil
  check_values(o)
  o.decode_responses = nil
  -- busy: the dedicated connections handed out; pubsubs: the PubSubs
  -- made by r:pubsub() (both for close); epoch: how many closes ran (a
  -- connection opened across one is closed as it arrives)
  return setmetatable({opts = o, idle = {}, waiters = {}, nconns = 0,
                       busy = {}, pubsubs = setmetatable({}, {__mode = "k"}),
                       nrecovering = 0, closed = false, epoch = 0}, Redis)
end

--- Converters of URL query values (unescaped strings) to option values;
-- nil for a value that does not convert.
local function url_int(s)
  return s:match("^%s*[+-]?%d+%s*$") and math.tointeger(tonumber(s)) or nil
end
local function url_number(s)
  if s:find("[xX]") then return nil end
  return tonumber(s)
end
local function url_bool(s)  -- as redis-py's to_bool
  local u = s:upper()
  return not (u == "0" or u == "F" or u == "FALSE" or u == "N" or u == "NO")
end
local function url_string(s) return s end

--- The query parameters from_url knows (redis-py's, less those with no
-- luaio meaning) and how each converts.
local URL_PARAMS = {
  db = url_int, socket_timeout = url_number,
  socket_connect_timeout = url_number, max_connections = url_int,
  pool_size = url_int, password = url_string, username = url_string,
  ssl_check_hostname = url_bool, ssl_cert_reqs = url_string,
  decode_responses = url_bool, client_name = url_string,
  health_check_interval = url_number, retry_on_timeout = url_bool,
}

--- "k=v&k2=v2" -> {k = v, ...}: %- and +-unescaped, the first value of a
-- name kept, blank values skipped (urllib's parse_qs). Unknown names
-- raise redis.DataError, values that do not convert asyncio.ValueError
-- (redis-py's ValueError).
local function parse_query(query)
  local out = {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if k and v ~= "" then
      k, v = url_unescape(k), url_unescape((v:gsub("+", " ")))
      local conv = URL_PARAMS[k]
      if not conv then
        error(M.DataError(("Unsupported parameter '%s' in Redis URL")
          :format(k)), 0)
      end
      local cv = conv(v)
      if cv == nil then
        error(asyncio.ValueError(
          ("Invalid value for `%s` in connection URL."):format(k)), 0)
      end
      if out[k] == nil then out[k] = cv end
    end
  end
  return out
end

--- The parts of netloc "[user[:password]@]host[:port]" into o, as
-- urllib's urlsplit reads them (a user without ':' has no password).
local function parse_netloc(netloc, o)
  local auth, hostport = netloc:match("^(.*)@([^@]*)$")
  if auth then
    local user, pass = auth:match("^([^:]*):(.*)$")
    if not user then user = auth end
    if user ~= "" then o.username = url_unescape(user) end
    if pass and pass ~= "" then o.password = url_unescape(pass) end
  else
    hostport = netloc
  end
  local host, port = hostport:match("^%[(.*)%]:?(.*)$")
  if not host then host, port = hostport:match("^([^:]*):?(.*)$") end
  if host ~= "" then o.host = url_unescape(host) end
  if port ~= "" then
    o.port = url_int(port)
    if not o.port then
      error(asyncio.ValueError(
        ("Port could not be cast to integer value as '%s'"):format(port)), 0)
    end
  end
end

--- The default TLS context of a rediss:// URL, with its query's
-- ssl_check_hostname and ssl_cert_reqs ("none", "optional", "required").
local function default_ssl(o)
  local ok, ssl = pcall(require, "asyncio.ssl")
  if not ok then
    error(M.ConnectionError("rediss:// needs asyncio.ssl"), 0)
  end
  local ctx = ssl.create_default_context()
  local reqs = o.ssl_cert_reqs
  if reqs == "none" or reqs == "optional" then
    ctx.check_hostname = false
    ctx.verify_mode = reqs == "none" and ssl.CERT_NONE or ssl.CERT_OPTIONAL
  end
  if o.ssl_check_hostname ~= nil then
    ctx.check_hostname = o.ssl_check_hostname
  end
  o.ssl_cert_reqs, o.ssl_check_hostname = nil, nil
  return ctx
end

-- The options of from_url: Redis's, and the TLS settings of rediss://
-- URLs its query also takes.
local FROM_URL_OPTS = check.option_set({"ssl_check_hostname",
                                        "ssl_cert_reqs"}, REDIS_OPTS)

--- from_url(url [, opts]): redis://[[user][:pass]@]host[:port][/db][?query],
-- rediss:// (TLS), unix://[[user][:pass]@]/path[?query]. The query takes
-- URL_PARAMS (db, password, username, socket_timeout, ...). Precedence:
-- opts, then the query, then the URL's other parts (a ?db= beats /db).
function M.from_url(url, opts)
  if type(url) ~= "string" then
    error("bad argument #1 to 'from_url' (string expected, got "
          .. type(url) .. ")", 2)
  end
  check.options(opts, 2, "from_url", FROM_URL_OPTS)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  scheme = scheme and scheme:lower()
  if scheme ~= "redis" and scheme ~= "rediss" and scheme ~= "unix" then
    error(asyncio.ValueError("Redis URL must specify one of the following "
      .. "schemes (redis://, rediss://, unix://)"), 2)
  end
  local netloc, path, query =
    rest:gsub("#.*$", ""):match("^([^/?]*)([^?]*)%??(.*)$")
  local ok, o = pcall(function()
    local o = {}
    parse_netloc(netloc, o)
    if scheme == "unix" then
      o.host, o.port = nil, nil
      if path ~= "" then o.path = url_unescape(path) end
    else
      local db = url_unescape(path):gsub("/", "")
      o.db = url_int(db)
    end
    for k, v in pairs(parse_query(query)) do o[k] = v end
    if scheme == "rediss" then o.ssl = true end
    if opts then for k, v in pairs(opts) do o[k] = v end end
    if o.ssl == true then o.ssl = default_ssl(o) end
    o.ssl_cert_reqs, o.ssl_check_hostname = nil, nil
    return o
  end)
  if not ok then error(o, 2) end
  return new_client(o)
end

--- redis.Redis{...} makes a client (new_client); redis.Redis.from_url(url
-- [, opts]) is from_url, as redis-py's classmethod.
M.Redis = setmetatable({from_url = M.from_url}, {
  __call = function(_, opts) return new_client(opts) end,
  __name = "redis.Redis"})

--- A closed client opens connections again when used, as redis-py's;
-- self.loop is the loop it was last used on (see close_now).
local function reopen(self)
  self.closed = false
  self.loop = asyncio.get_running_loop()
end

--- The shared (pipelined) connection, opened on first use; the callers
-- that come while it opens wait for the same attempt. An open that a
-- close overtook raises its connection's error, redis.ConnectionError
-- "Connection closed." (closed as it arrived, the connection is not the
-- client's: a newer open's may be).
local function shared(self)
  local c = self.conn
  if c and not c.closed then return c end
  reopen(self)
  local opening = self.opening
  if not opening then
    local epoch = self.epoch
    opening = asyncio.ensure_future(open_conn(self.opts))
    self.opening = opening
    opening:add_done_callback(function(f)
      if self.opening == f then self.opening = nil end
      if not f:cancelled() and f:exception() == nil then
        local nc = f:result()
        -- closed meanwhile: its callers get "Connection closed."
        if self.epoch ~= epoch then nc:close() else self.conn = nc end
      end
    end)
  end
  await(asyncio.shield(opening))
  c = opening:result() -- the done callback made it self.conn, or closed it
  if c.closed then error(c.err, 0) end
  return c
end

--- Health-checks the idle connection c as acquire takes it: one that
-- fails is closed (acquire then takes another); a caller cancelled
-- meanwhile leaves it idle again.
local function checked_idle(self, c)
  local ok, e = pcall(check_health, c, self.opts.socket_timeout)
  if not ok and is_cancel(e) then
    if not c.closed then self.idle[#self.idle + 1] = c end
    error(e, 0)
  end
end

--- Hands what a release gives, a connection or false (a place freed), to
-- the first waiter still waiting (a connection handed over counts as
-- busy at once: close ends it before its waiter resumes); a connection
-- nobody waits for goes idle.
local function hand_on(self, c)
  local ws = self.waiters
  while #ws > 0 do
    local w = table.remove(ws, 1)
    if not w:done() then
      if c then self.busy[c] = true end
      w:set_result(c)
      return
    end
  end
  if c then self.idle[#self.idle + 1] = c end
end

--- A new dedicated connection in a free place of the pool. One that
-- arrives after a close began is closed and raises redis.ConnectionError
-- "Connection closed."; on failure the place is free again.
local function open_dedicated(self)
  local epoch = self.epoch
  self.nconns = self.nconns + 1
  local ok, c = pcall(await, open_conn(self.opts))
  if ok and self.epoch ~= epoch then
    c:close()
    ok, c = false, c.err
  end
  if not ok then
    self.nconns = self.nconns - 1
    hand_on(self, false)
    error(c, 0)
  end
  return c
end

--- A dedicated connection: an idle one, a new one while fewer than
-- pool_size are out, else the next one released (see acquire).
local function take(self)
  reopen(self)
  while true do
    local idle = self.idle
    while #idle > 0 do
      local c = idle[#idle]
      idle[#idle] = nil
      if c.hc and not c.closed then checked_idle(self, c) end
      if not c.closed then return c end
      self.nconns = self.nconns - 1
    end
    if self.nconns < self.opts.pool_size then
      return open_dedicated(self)
    end
    -- wait for a release: a connection, or false when a place freed
    local w = asyncio.get_running_loop():create_future()
    self.waiters[#self.waiters + 1] = w
    local ok, c = pcall(await, w)
    if not ok then
      -- cancelled once handed something: it goes to the next waiter
      if w:done() and not w:cancelled() then
        local got = w:result()
        if got then self.release(self, got) else hand_on(self, false) end
      end
      error(c, 0)
    end
    if c and c.closed then -- ended while handed over (a close)
      self.release(self, c)
      error(c.err, 0)
    end
    if c then return c end
  end
end

--- A dedicated connection (take), counted in self.busy until released:
-- close ends it even while a command holds it.
local acquire = async(function(self)
  local c = take(self)
  self.busy[c] = true
  return c
end)

--- Gives a dedicated connection back (a closed one frees its place).
local function release(self, c)
  self.busy[c] = nil
  if c.closed or self.closed then
    if not c.closed then c:close() end
    self.nconns = self.nconns - 1
    c = false
  end
  hand_on(self, c)
end
Redis.release = release

--- The reply to argv on the shared connection (checked first when its
-- health check is due), within timeout seconds if given.
local function run_once(self, argv, timeout)
  local c = self.conn
  if c == nil or c.closed then c = shared(self) end
  if c.hc then check_health(c, timeout) end
  local fut = send_argv(c, argv)
  if timeout then return await_timeout(c, fut, timeout) end
  return await(fut)
end

--- run_once, once more on a new connection after a redis.TimeoutError
-- (redis-py's retry_on_timeout: one retry, no backoff). A lost
-- connection (redis.ConnectionError) is not retried, as in redis-py: the
-- server may have run the command, and an INCR must not count twice.
local function run_retried(self, argv, timeout)
  local ok, v = pcall(run_once, self, argv, timeout)
  if ok then return v end
  if not iserror(v, M.TimeoutError) then error(v, 0) end
  return run_once(self, argv, timeout)
end

--- Runs argv on the shared connection; conv(reply) converts the reply.
local run = async(function(self, argv, conv)
  local o = self.opts
  local v
  if o.retry_on_timeout then
    v = run_retried(self, argv, o.socket_timeout)
  else
    v = run_once(self, argv, o.socket_timeout)
  end
  if conv then return conv(v) end
  return v
end)
M._run = run

--- What puts back the elements a cancelled blocking pop took:
-- RESTORE[name](reply, argv) -> the command.
local RESTORE = {
  BRPOP = function(v) return {"RPUSH", v[1], v[2]} end,
  BLPOP = function(v) return {"LPUSH", v[1], v[2]} end,
  BZPOPMIN = function(v) return {"ZADD", v[1], v[3], v[2]} end,
  BZPOPMAX = function(v) return {"ZADD", v[1], v[3], v[2]} end,
  -- BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT n] -> {key, {e1,
  -- e2, ...}}, e1 the first popped: pushed back to the same end, last
  -- first, so that e1 is again the next one out
  BLMPOP = function(v, argv)
    local side = tostring(argv[4 + tonumber(argv[3])]):upper()
    local back = {side == "LEFT" and "LPUSH" or "RPUSH", v[1]}
    local elems = v[2]
    for i = #elems, 1, -1 do back[#back + 1] = elems[i] end
    return back
  end,
  -- BZMPOP -> {key, {{member, score}, ...}}
  BZMPOP = function(v)
    local back = {"ZADD", v[1]}
    for _, pair in ipairs(v[2]) do
      back[#back + 1], back[#back + 2] = pair[2], pair[1]
    end
    return back
  end,
}

--- The function that puts back what the blocking pop argv took, given
-- its reply; nil for a command that pops nothing or leaves it in place.
local function restore_of(argv)
  local restore = RESTORE[tostring(argv[1]):upper()]
  return restore and function(v) return restore(v, argv) end
end

--- A connection other than c to send CLIENT UNBLOCK on: the shared one,
-- else an idle dedicated one; nil if none is open.
local function helper_conn(self, c)
  local o = self.conn
  if o and not o.closed then return o end
  for _, i in ipairs(self.idle) do
    if i ~= c and not i.closed then return i end
  end
  return nil
end

--- Marks a future's exception as retrieved (its failure is handled).
local function quiet(f)
  if not f:cancelled() then f:exception() end
end

--- After the caller of commands on the dedicated connection c was
-- cancelled: pending lists, in the order they were sent, {fut, restore,
-- blocking} for the commands whose replies it had not taken. Once the
-- commands before it replied, a blocking one is unblocked if Redis still
-- holds it (CLIENT UNBLOCK on another connection, retried while the
-- command has not reached Redis); once its reply came, what it popped is
-- pushed back on c (restore(reply) is the command). Then c is given
-- back. Driven by callbacks, so nothing is left pending when a loop
-- stops. With no other connection open, c is closed instead.
local function recover(self, c, pending)
  self.nrecovering = self.nrecovering + 1
  local function finish(ok)
    if not ok then c:close() end
    self.nrecovering = self.nrecovering - 1
    release(self, c)
    local w = self.recovered
    if self.nrecovering == 0 and w then
      self.recovered = nil
      if not w:done() then w:set_result(true) end
    end
  end
  local function unblock(fut)
    local tries = 0
    local function try()
      if fut:done() then return end
      local o = helper_conn(self, c)
      if o == nil or c.id == nil then return c:close() end
      local u = send_argv(o, {"CLIENT", "UNBLOCK", c.id})
      o.quiet[u] = true
      u:add_done_callback(function(uf)
        quiet(uf)
        if fut:done() then return end
        local e = not uf:cancelled() and uf:exception()
        if iserror(e, M.ResponseError) then
          return c:close() -- refused: an ACL user without CLIENT UNBLOCK
        end
        if not uf:cancelled() and not e and uf:result() == 1 then
          return -- the command's nil reply is on its way
        end
        tries = tries + 1
        if tries > 100 then return c:close() end
        -- the command has not reached Redis yet: try again shortly
        c.loop:call_later(0.01, try)
      end)
    end
    try()
  end
  local function step(i)
    local item = pending[i]
    if item == nil then return finish(true) end
    local fut, restore = item[1], item[2]
    c.quiet[fut] = true
    fut:add_done_callback(function(f)
      if f:cancelled() then return finish(false) end
      local e = f:exception()
      if e ~= nil then -- an error reply keeps c in step; a lost c not
        if iserror(e, M.ResponseError) then return step(i + 1) end
        return finish(false)
      end
      local v = f:result()
      if v == nil or not restore or c.closed then return step(i + 1) end
      local back = send_argv(c, restore(v))
      c.quiet[back] = true
      back:add_done_callback(function(bf)
        quiet(bf)
        if bf:cancelled() or bf:exception() ~= nil then
          return finish(false)
        end
        step(i + 1)
      end)
    end)
    if item[3] then unblock(fut) end
  end
  step(1)
end

--- Runs a blocking command on a dedicated connection.
local run_blocking = async(function(self, argv, conv)
  check_argv(argv)
  local c = await(acquire(self))
  local fut = send_argv(c, argv)
  local ok, v = pcall(await, asyncio.shield(fut))
  if ok then
    release(self, c)
    if conv then return conv(v) end
    return v
  end
  if is_cancel(v) and (not fut:done() or fut:exception() == nil) then
    recover(self, c, {{fut, restore_of(argv), true}})
  else
    release(self, c)
  end
  error(v, 0)
end)
M._run_blocking = run_blocking

local BLOCKING = {}
for _, name in ipairs{"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH",
                      "BZPOPMIN", "BZPOPMAX", "BLMPOP", "BZMPOP", "WAIT",
                      "WAITAOF"} do
  BLOCKING[name] = true
  BLOCKING[name:lower()] = true
end

local function has_block(argv)
  for i = 2, #argv do
    local a = argv[i]
    if type(a) == "string" and a:upper() == "BLOCK" then return true end
  end
  return false
end

--- Whether argv is a blocking command (XREAD and XREADGROUP with BLOCK).
local function is_blocking(argv)
  local name = argv[1]
  if BLOCKING[name] then return true end
  local upper = tostring(name):upper()
  return BLOCKING[upper] or (upper == "XREAD" or upper == "XREADGROUP")
    and has_block(argv)
end

-- commands whose replies do not come one per command: pub/sub's
local PUBSUB_ONLY = {SUBSCRIBE = true, PSUBSCRIBE = true, MONITOR = true,
                     SSUBSCRIBE = true, UNSUBSCRIBE = true,
                     PUNSUBSCRIBE = true, SUNSUBSCRIBE = true}

--- r:execute_command(name, ...) -> the raw reply of any command.
function Redis:execute_command(...)
  local argv = {n = select("#", ...), ...}
  local name = argv[1]
  if type(name) ~= "string" then
    error("bad argument #1 to 'execute_command' (string expected, got "
          .. type(name) .. ")", 2)
  end
  if is_blocking(argv) then return run_blocking(self, argv) end
  local upper = name:upper()
  if PUBSUB_ONLY[upper] then
    error(M.PubSubError("use r:pubsub() for " .. upper), 2)
  end
  return run(self, argv)
end

--- await(r:initialize()) / await(r): connects (raising connection and
-- authentication errors here) and returns the client.
Redis.initialize = async(function(self)
  shared(self)
  return self
end)
Redis.__await = function(self) return self:initialize() end

--- Closes the connections that something holds, as redis-py's pool
-- disconnects those in use: the dedicated ones handed out (a blocking
-- command, a WATCH pipeline, one handed to a waiter not resumed yet) and
-- those of the client's PubSubs (a PubSub waiting gets
-- redis.ConnectionError, and its next call opens a new connection
-- subscribed again, as redis-py's; one being opened closes as it
-- arrives, see ps_open). Their commands in flight fail with
-- redis.ConnectionError "Connection closed.". -> the client ids of those
-- that waited for a reply, which Redis may still hold (a BLPOP that
-- would pop an element for nobody).
local function close_in_use(self)
  local ids = {}
  for c in pairs(self.busy) do
    if not c.closed then
      if c.tail > c.head and c.id then ids[#ids + 1] = c.id end
      c:close()
    end
  end
  for ps in pairs(self.pubsubs) do
    local c = ps.conn
    if c and not c.closed then c:close() end
    ps.opening = nil -- the next call opens anew
  end
  return ids
end

--- Sends CLIENT KILL ID for each id of ids on connection c, so that
-- Redis drops those clients (a closed socket is noticed later): -> the
-- futures of the replies, their failures expected (an id already gone).
local function send_kills(c, ids)
  local futs = {}
  for i, id in ipairs(ids) do
    local f = send_argv(c, {"CLIENT", "KILL", "ID", id})
    c.quiet[f] = true
    f:add_done_callback(quiet)
    futs[i] = f
  end
  return futs
end

--- Takes out of the pool a connection to send CLIENT KILL on: the shared
-- one, else an idle one; nil if none is open. The close that took it
-- closes it, once Redis answered: another close meanwhile leaves it.
local function take_kill_conn(self)
  local via = helper_conn(self)
  if via == nil then return nil end
  if via == self.conn then
    self.conn = nil
    return via
  end
  for i, c in ipairs(self.idle) do
    if c == via then table.remove(self.idle, i) break end
  end
  self.nconns = self.nconns - 1
  return via
end

--- A connection opened to send CLIENT KILL on (5 s at most); nil when
-- Redis cannot be reached (it is losing those clients too).
local function open_kill_conn(self)
  local ok, c = pcall(await, asyncio.wait_for(open_conn(self.opts), 5))
  if ok then return c end
  if is_cancel(c) then error(c, 0) end
  return nil
end

--- Has Redis drop the clients of ids (see close_in_use), so that none of
-- them takes an element pushed after close: CLIENT KILL, written out at
-- once, on a connection of the pool (take_kill_conn), else, with wait,
-- on one opened for it. With wait, returns once Redis answered (5 s at
-- most). Closes that connection.
local function kill_clients(self, ids, wait)
  if #ids == 0 then return end
  local via = take_kill_conn(self)
  if via == nil and wait then via = open_kill_conn(self) end
  if via == nil then return end
  local futs = send_kills(via, ids)
  flush(via) -- now: closing via sends what it was given
  local ok, e = true, nil
  if wait then ok, e = pcall(await, asyncio.wait(futs, {timeout = 5})) end
  via:close()
  if not ok then error(e, 0) end
  if wait then pcall(await, via.task) end
end

--- Closes the shared and idle connections; live (the loop is open):
-- fails the tasks waiting for a place with redis.ConnectionError "Redis
-- client is closed". -> the shared connection, if there was one.
local function close_pool(self, live)
  local c = self.conn
  self.conn, self.opening = nil, nil -- an opening closes as it arrives
  if c then c:close() end
  for _, i in ipairs(self.idle) do i:close() end
  self.nconns = self.nconns - #self.idle
  self.idle = {}
  local ws = self.waiters
  self.waiters = {}
  for _, w in ipairs(live and ws or {}) do
    if not w:done() then w:set_exception(M.ConnectionError(
      "Redis client is closed")) end
  end
  return c
end

--- Waits (5 s at most) until the blocking commands cancelled earlier have
-- been put back (see recover).
local function await_recovered(self)
  if self.nrecovering == 0 then return end
  local w = self.recovered or asyncio.get_running_loop():create_future()
  self.recovered = w
  await(asyncio.wait({w}, {timeout = 5}))
end

--- Closes every connection the client made (see Redis.close), and marks
-- the opens in flight so that what they open closes as it arrives. With
-- wait (in a task): first waits for await_recovered, and returns once
-- Redis answered CLIENT KILL and the shared connection's reader ended;
-- without: returns at once, the kills written but not answered. On a
-- closed loop only the sockets close: no future, no task, no kill, no
-- error.
local function close_now(self, wait)
  if wait then await_recovered(self) end
  self.closed, self.epoch = true, self.epoch + 1
  local live = not (self.loop and self.loop:is_closed())
  local ids = close_in_use(self)
  local ok, e = true, nil
  if live then ok, e = pcall(kill_clients, self, ids, wait) end
  local c = close_pool(self, live)
  if not ok then error(e, 0) end
  if wait and live and c and c.task then pcall(await, c.task) end
end

--- await(r:close()): waits for the cancelled blocking commands to be put
-- back, then closes every connection, those in use and those being
-- opened included: commands in flight fail with redis.ConnectionError,
-- and a blocking command in flight takes nothing pushed after close
-- returned. A close called while one runs waits for that one. aclose
-- is redis-py's name.
Redis.close = async(function(self)
  local closing = self.closing
  if closing then
    await(asyncio.shield(closing))
    return
  end
  closing = asyncio.get_running_loop():create_future()
  self.closing = closing
  local ok, e = pcall(close_now, self, true)
  self.closing = nil
  closing:set_result(true)
  if not ok then error(e, 0) end
end)
Redis.aclose = Redis.close
--- <close>: closes at once, without waiting for Redis's answers (see
-- close_now); on a closed loop, the sockets only.
Redis.__close = function(self) close_now(self, false) end
Redis.__tostring = function(self)
  local o = self.opts
  return ("<redis.Redis %s db=%d>"):format(
    o.path or (tostring(o.host) .. ":" .. tostring(o.port)), o.db)
end

---------------------------------------------------------------------------
-- Reply conversions (redis-py's callbacks)

local function to_bool(v) return v == 1 or v == "OK" end
local function ok_true(v) return v == "OK" or v == true end

local FLOAT_WORDS = {inf = math.huge, ["+inf"] = math.huge,
                     ["-inf"] = -math.huge}

--- A float reply (a score, INCRBYFLOAT's result) -> a Lua float, as
-- redis-py's float(): "2" is 2.0, "inf" / "+inf" / "-inf" are
-- +-math.huge; nil stays nil. Anything else raises redis.ResponseError.
local function to_float(v)
  if v == nil then return nil end
  local n = type(v) == "number" and v or
    (type(v) == "string" and not v:find("[xX]") and tonumber(v))
  if n then return n + 0.0 end
  n = type(v) == "string" and FLOAT_WORDS[v:lower()]
  if n then return n end
  error(M.ResponseError(("Invalid float reply: %s"):format(tostring(v))),
        0)
end

--- A list of float replies (ZMSCORE) -> floats, holes kept.
local function to_floats(v)
  local out = {n = v.n or #v}
  for i = 1, out.n do out[i] = to_float(v[i]) end
  return out
end

--- [k1, v1, k2, v2, ...] -> {k1 = v1, ...}
local function pairs_to_table(v)
  local t = {}
  if v == nil then return t end
  for i = 1, #v, 2 do t[v[i]] = v[i + 1] end
  return t
end

local function to_set(v)
  local t = {}
  for i = 1, #v do t[v[i]] = true end
  return t
end

local function to_bools(v)
  local out = {n = v.n or #v}
  for i = 1, out.n do out[i] = v[i] == 1 end
  return out
end

--- [m1, s1, m2, s2] -> {{m1, s1}, {m2, s2}} with float scores.
local function score_pairs(v)
  local out = {}
  for i = 1, #v, 2 do out[#out + 1] = {v[i], to_float(v[i + 1])} end
  return out
end

--- Stream entries [[id, [f, v, ...]], ...] -> {{id, {f = v}}, ...}. An
-- entry deleted after it was delivered (read again from the pending
-- list) has no fields: {id, {}}, as redis-py's (id, {}).
local function stream_entries(v)
  local out = {}
  if v == nil then return out end
  for i = 1, #v do
    local e = v[i]
    out[i] = {e[1], pairs_to_table(e[2])}
  end
  return out
end

local function xread_reply(v)
  if v == nil then return {} end
  local out = {}
  for i = 1, #v do out[i] = {v[i][1], stream_entries(v[i][2])} end
  return out
end

--- An INFO value: "a=1,b=x" -> {a = 1, b = "x"} (redis-py 5's rule: a
-- value holding "=" is such a table; one with an item that is not k=v
-- stays a string), "1.5" -> 1.5, "12" -> 12, anything else a string.
local function info_value(s)
  if s:find("=", 1, true) then
    local t = {}
    for item in (s .. ","):gmatch("([^,]*),") do
      local k, v = item:match("^(.*)=(.*)$")
      if not k then return s end
      t[k] = info_value(v)
    end
    return t
  end
  if s:match("^[+-]?%d+$") then return math.tointeger(tonumber(s)) or s end
  if s:find(".", 1, true) and not s:find("[xX]") then
    return tonumber(s) or s
  end
  return s
end

--- An INFO reply -> a table of its fields (module lines in a list,
-- modules).
local function parse_info(v)
  local t = {}
  for line in v:gmatch("[^\r\n]+") do
    if line:sub(1, 1) ~= "#" then
      local k, val = line:match("^([^:]+):(.*)$")
      if k == "cmdstat_host" then k, val = line:match("^(.*):(.*)$") end
      if k == "module" then
        t.modules = t.modules or {}
        t.modules[#t.modules + 1] = info_value(val)
      elseif k then
        t[k] = info_value(val)
      end
    end
  end
  return t
end

---------------------------------------------------------------------------
-- Named commands: each builds an argv table (its count in field n, so a
-- nil argument is a hole that send_argv reports) and names its
-- conversion; the same builders serve Redis (run at once) and Pipeline
-- (queued).

local COMMANDS = {}   -- name -> function(...) -> argv, conv, blocking

--- An argv table of the arguments, nil ones included.
local function A(...) return {n = select("#", ...), ...} end

--- Appends the values to argv (nil ones as holes).
local function push(argv, ...)
  local n = argv.n
  for i = 1, select("#", ...) do argv[n + i] = (select(i, ...)) end
  argv.n = n + select("#", ...)
  return argv
end

--- Appends the elements 1 .. list.n (or #list) of a list to argv.
local function push_all(argv, list)
  local n, m = argv.n, list.n or #list
  for i = 1, m do argv[n + i] = list[i] end
  argv.n = n + m
  return argv
end

--- A list argument given as a table or as varargs.
local function list_args(argv, ...)
  local first = ...
  if type(first) == "table" and select("#", ...) == 1 then
    return push_all(argv, first)
  end
  return push(argv, ...)
end

--- Raises "bad argument #n to 'fname' (table expected, got x)" unless
-- v is a table (what a command's mapping or list argument must be);
-- field names the option of argument n that holds v, if any.
local function need_table(v, n, fname, field)
  if type(v) ~= "table" then
    error(("bad argument #%d to '%s' (%stable expected, got %s)"):format(
      n, fname, field and ("field '%s': "):format(field) or "",
      v == nil and "no value" or type(v)), 0)
  end
  return v
end

--- Appends the pairs (key, value) of mapping, argument #n of the method
-- fname (or its option `field`; a table, checked), to argv.
local function push_map(argv, mapping, n, fname, field)
  for k, v in pairs(need_table(mapping, n, fname, field)) do
    push(argv, k, v)
  end
  return argv
end

--- Appends the words of the flags set in o (a table or nil), in order.
local function push_flags(argv, o, names)
  if o then
    for _, name in ipairs(names) do
      if o[name] then push(argv, name:upper()) end
    end
  end
  return argv
end

local function cmd(name, fn) COMMANDS[name] = fn end

--- A command sent as word followed by the method's arguments. The first
-- nreq are required (a nil among them is an error); nil ones after them
-- are optional and dropped (nreq nil: all are required).
local function simple(name, word, conv, nreq)
  cmd(name, function(...)
    local argv = A(word, ...)
    if nreq then
      while argv.n > nreq + 1 and argv[argv.n] == nil do
        argv.n = argv.n - 1
      end
    end
    return argv, conv
  end)
end

-- strings
local function ok_or_nil(v)
  if v == nil then return nil end
  return v == "OK"
end

--- Raises redis-py's DataError "<what> must be a positive integer" (a
-- non-negative one when min is 0) unless v is nil or an integer >= min.
local function check_count(v, min, what)
  if v ~= nil and (math.type(v) ~= "integer" or v < min) then
    error(M.DataError(what .. " must be a "
      .. (min > 0 and "positive" or "non-negative") .. " integer"), 4)
  end
end

--- Appends the expiry options of SET and GETEX.
local function push_expiry(argv, o)
  for _, name in ipairs{"ex", "px", "exat", "pxat"} do
    if o[name] then push(argv, name:upper(), o[name]) end
  end
  return argv
end

cmd("set", function(key, value, o)
  local argv = A("SET", key, value)
  local conv = ok_or_nil
  if o then
    for _, name in ipairs{"ex", "px"} do -- as redis-py: no float
      if math.type(o[name]) == "float" then
        error(M.DataError(name .. " must be datetime.timedelta or int"), 3)
      end
    end
    push_expiry(argv, o)
    push_flags(argv, o, {"nx", "xx", "keepttl"})
    if o.get then push(argv, "GET"); conv = nil end
  end
  return argv, conv
end)
simple("get", "GET")
simple("getset", "GETSET")
cmd("mget", function(...) return list_args(A("MGET"), ...) end)
cmd("mset", function(mapping)
  return push_map(A("MSET"), mapping, 1, "mset"), ok_true
end)
cmd("msetnx", function(mapping)
  return push_map(A("MSETNX"), mapping, 1, "msetnx"), to_bool
end)
-- incr(name [, amount = 1]) and its kin take redis-py's defaults: word
-- alone without an amount, word_by with one
local function counter(word, word_by)
  return function(name, amount)
    if amount == nil then return A(word, name) end
    return A(word_by, name, amount)
  end
end
cmd("incr", counter("INCR", "INCRBY"))
cmd("incrby", counter("INCR", "INCRBY"))
cmd("decr", counter("DECR", "DECRBY"))
cmd("decrby", counter("DECR", "DECRBY"))
cmd("incrbyfloat", function(name, amount)
  return A("INCRBYFLOAT", name, amount or 1.0), to_float
end)
simple("append", "APPEND")
simple("strlen", "STRLEN")
simple("getdel", "GETDEL")
simple("getrange", "GETRANGE")
simple("setrange", "SETRANGE")
--- setbit(name, offset, value): value is a bit, 0 or 1 (numbers or
-- strings, as Redis reads them), or a boolean (redis-py sends `value and
-- 1 or 0`); anything else is a bad argument, as Redis takes no other bit.
local BITS = {[0] = 0, [1] = 1, ["0"] = "0", ["1"] = "1", [false] = 0,
              [true] = 1}
cmd("setbit", function(name, offset, value)
  local bit = BITS[value]
  if bit == nil then
    error(("bad argument #3 to 'setbit' (0, 1 or boolean expected, got %s)")
      :format(value == nil and "no value"
              or type(value) == "number" and tostring(value)
              or type(value)), 0)
  end
  return A("SETBIT", name, offset, bit)
end)
simple("getbit", "GETBIT")
--- bitcount(name [, start, end] [, {mode}]): mode "BYTE" or "BIT"
-- (Redis 7) tells what start and end count; they go together, as
-- redis-py's.
cmd("bitcount", function(name, start, stop, o)
  if type(start) == "table" then start, o = nil, start
  elseif type(stop) == "table" then stop, o = nil, stop end
  if (start == nil) ~= (stop == nil) then
    error(M.DataError("Both start and end must be specified"), 0)
  end
  local argv = A("BITCOUNT", name)
  if start ~= nil then push(argv, start, stop) end
  if o and o.mode ~= nil then push(argv, o.mode) end
  return argv
end)
--- bitpos(name, bit [, start [, end]] [, {mode}]): the first bit set to
-- bit (0 or 1, else redis.DataError as redis-py's); end needs start.
cmd("bitpos", function(name, bit, start, stop, o)
  if type(start) == "table" then start, o = nil, start
  elseif type(stop) == "table" then stop, o = nil, stop end
  if bit ~= 0 and bit ~= 1 then
    error(M.DataError("bit must be 0 or 1"), 0)
  end
  if start == nil and stop ~= nil then
    error(M.DataError("start argument is not set, when end is specified"),
          0)
  end
  local argv = A("BITPOS", name, bit)
  if start ~= nil then push(argv, start) end
  if stop ~= nil then push(argv, stop) end
  if o and o.mode ~= nil then push(argv, o.mode) end
  return argv
end)
--- bitop(operation, dest, key, ...) -> the length of dest.
cmd("bitop", function(operation, dest, ...)
  return list_args(A("BITOP", operation, dest), ...)
end)
cmd("pfadd", function(name, ...) return list_args(A("PFADD", name), ...) end)
cmd("pfcount", function(...) return list_args(A("PFCOUNT"), ...) end)
cmd("pfmerge", function(dest, ...)
  return list_args(A("PFMERGE", dest), ...), ok_true
end)
cmd("getex", function(key, o)
  local argv = A("GETEX", key)
  if o then
    local n = (o.ex and 1 or 0) + (o.px and 1 or 0) + (o.exat and 1 or 0)
      + (o.pxat and 1 or 0)
    if n > 1 or n > 0 and o.persist then
      error(M.DataError("``ex``, ``px``, ``exat``, ``pxat``, and "
        .. "``persist`` are mutually exclusive."), 3)
    end
    push_expiry(argv, o)
    if o.persist then push(argv, "PERSIST") end
  end
  return argv
end)
simple("setnx", "SETNX", to_bool)
cmd("setex", function(key, time, value)
  return A("SETEX", key, time, value), ok_true
end)
cmd("psetex", function(key, ms, value)
  return A("PSETEX", key, ms, value), ok_true
end)
--- lcs(key1, key2 [, {len, idx, minmatchlen, withmatchlen}]) -> the
-- longest common subsequence of the two strings; its length with len;
-- with idx Redis's reply as redis-py 4.3's lcs leaves it: {"matches",
-- {{{a1, a2}, {b1, b2} [, length]}, ...}, "len", n}.
cmd("lcs", function(key1, key2, o)
  local argv = push_flags(A("LCS", key1, key2), o, {"len", "idx"})
  if o and o.minmatchlen ~= nil and o.minmatchlen ~= 0 then
    push(argv, "MINMATCHLEN", o.minmatchlen)
  end
  return push_flags(argv, o, {"withmatchlen"})
end)

-- keys
cmd("delete", function(...) return list_args(A("DEL"), ...) end)
cmd("unlink", function(...) return list_args(A("UNLINK"), ...) end)
cmd("exists", function(...) return list_args(A("EXISTS"), ...) end)

--- EXPIRE and its kin: (name, time [, {nx, xx, gt, lt}]) -> boolean.
local function expire_cmd(name, word)
  cmd(name, function(key, time, o)
    return push_flags(A(word, key, time), o, {"nx", "xx", "gt", "lt"}),
      to_bool
  end)
end
expire_cmd("expire", "EXPIRE")
expire_cmd("pexpire", "PEXPIRE")
expire_cmd("expireat", "EXPIREAT")
expire_cmd("pexpireat", "PEXPIREAT")
simple("ttl", "TTL")
simple("expiretime", "EXPIRETIME")
simple("pexpiretime", "PEXPIRETIME")
cmd("copy", function(src, dst, o)
  local argv = A("COPY", src, dst)
  if o and o.destination_db ~= nil then push(argv, "DB", o.destination_db) end
  if o and o.replace then push(argv, "REPLACE") end
  return argv, to_bool
end)
simple("pttl", "PTTL")
simple("persist", "PERSIST", to_bool)
cmd("keys", function(pattern) return A("KEYS", pattern or "*") end)

local function scan_reply(v) return {tonumber(v[1]), v[2]} end

--- Appends SCAN's options {match, count, type} (type: SCAN only).
local function push_scan_opts(argv, o, with_type)
  if o then
    if o.match then push(argv, "MATCH", o.match) end
    if o.count then push(argv, "COUNT", o.count) end
    if with_type and o.type then push(argv, "TYPE", o.type) end
  end
  return argv
end
cmd("scan", function(cursor, o)
  return push_scan_opts(A("SCAN", cursor or 0), o, true), scan_reply
end)
cmd("sscan", function(name, cursor, o)
  return push_scan_opts(A("SSCAN", name, cursor or 0), o), scan_reply
end)
cmd("hscan", function(name, cursor, o)
  return push_scan_opts(A("HSCAN", name, cursor or 0), o), function(v)
    return {tonumber(v[1]), pairs_to_table(v[2])}
  end
end)
cmd("zscan", function(name, cursor, o)
  return push_scan_opts(A("ZSCAN", name, cursor or 0), o), function(v)
    return {tonumber(v[1]), score_pairs(v[2])}
  end
end)
simple("type", "TYPE")
simple("rename", "RENAME", ok_true)
simple("renamenx", "RENAMENX", to_bool)
simple("randomkey", "RANDOMKEY")
cmd("touch", function(...) return list_args(A("TOUCH"), ...) end)
simple("move", "MOVE", to_bool)
--- object(infotype, key): OBJECT ENCODING (a string), REFCOUNT,
-- IDLETIME or FREQ (integers) of key, nil for a missing key, as
-- redis-py's object().
simple("object", "OBJECT")
--- dump(name) -> the value of name serialized (binary), nil for a
-- missing key; restore(name, ttl, value [, {replace, absttl, idletime,
-- frequency}]) -> "OK" (redis-py keeps Redis's status: no conversion).
simple("dump", "DUMP")
--- v as an integer, as Python's int(v) makes it: an integer, a finite
-- number truncated toward zero, a string of digits (an optional sign,
-- spaces around); else redis-py's DataError, message why.
local function int_or_error(v, why)
  local n
  if type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
  then
    n = math.tointeger(v < 0 and math.ceil(v) or math.floor(v))
  elseif type(v) == "string" and v:match("^%s*[+-]?%d+%s*$") then
    n = math.tointeger(tonumber(v))
  end
  if n == nil then error(M.DataError(why), 0) end
  return n
end
cmd("restore", function(name, ttl, value, o)
  local argv = push_flags(A("RESTORE", name, ttl, value), o,
                          {"replace", "absttl"})
  if o and o.idletime ~= nil then
    -- (redis-py's message, its missing space included)
    push(argv, "IDLETIME", int_or_error(o.idletime,
                                        "idletimemust be an integer"))
  end
  if o and o.frequency ~= nil then
    push(argv, "FREQ", int_or_error(o.frequency,
                                    "frequency must be an integer"))
  end
  return argv
end)

-- lists
cmd("lpush", function(key, ...) return list_args(A("LPUSH", key), ...) end)
cmd("rpush", function(key, ...) return list_args(A("RPUSH", key), ...) end)
simple("lpushx", "LPUSHX")
simple("rpushx", "RPUSHX")
simple("lpop", "LPOP", nil, 1)
simple("rpop", "RPOP", nil, 1)
simple("llen", "LLEN")
simple("lrange", "LRANGE")
simple("lindex", "LINDEX")
simple("lset", "LSET", ok_true)
simple("lrem", "LREM")
simple("ltrim", "LTRIM", ok_true)
simple("linsert", "LINSERT")
cmd("lpos", function(name, value, o)
  local argv = A("LPOS", name, value)
  if o then
    if o.rank then push(argv, "RANK", o.rank) end
    if o.count then push(argv, "COUNT", o.count) end
    if o.maxlen then push(argv, "MAXLEN", o.maxlen) end
  end
  return argv
end)
cmd("lmove", function(src, dst, wherefrom, whereto)
  return A("LMOVE", src, dst, wherefrom or "LEFT", whereto or "RIGHT")
end)
simple("rpoplpush", "RPOPLPUSH")

--- Blocking pops: keys (a list or one key) then the timeout (seconds,
-- 0 forever). The reply table (or nil on timeout).
local function keys_timeout(word, keys, timeout)
  local argv = A(word)
  if type(keys) == "table" then push_all(argv, keys)
  else push(argv, keys) end
  return push(argv, timeout or 0)
end
cmd("brpop", function(keys, timeout)
  return keys_timeout("BRPOP", keys, timeout), nil, true
end)
cmd("blpop", function(keys, timeout)
  return keys_timeout("BLPOP", keys, timeout), nil, true
end)
cmd("blmove", function(src, dst, timeout, wherefrom, whereto)
  return A("BLMOVE", src, dst, wherefrom or "LEFT", whereto or "RIGHT",
           timeout or 0), nil, true
end)
cmd("brpoplpush", function(src, dst, timeout)
  return A("BRPOPLPUSH", src, dst, timeout or 0), nil, true
end)
--- lmpop(num_keys, key, ... , {direction, count}) and blmpop(timeout,
-- numkeys, key, ..., {direction, count}): redis-py's keyword arguments
-- in a last table (direction "LEFT" or "RIGHT" is required; the keys
-- may also come as one list) -> {key, {element, ...}}, nil when every
-- list is empty (blmpop: after timeout seconds, 0 forever). redis-py
-- sends COUNT to LMPOP only when it is not 1, always to BLMPOP.
local function mpop_args(argv, ...)
  local keys = A(...)
  local o = keys[keys.n]
  if type(o) == "table" then
    keys[keys.n], keys.n = nil, keys.n - 1
  else
    o = nil
  end
  if keys.n == 1 and type(keys[1]) == "table" then keys = keys[1] end
  return push(push_all(argv, keys), o and o.direction), o and o.count
end
cmd("lmpop", function(num_keys, ...)
  local argv, count = mpop_args(A("LMPOP", num_keys), ...)
  if count ~= nil and count ~= 1 then push(argv, "COUNT", count) end
  return argv
end)
cmd("blmpop", function(timeout, numkeys, ...)
  local argv, count = mpop_args(A("BLMPOP", timeout, numkeys), ...)
  return push(argv, "COUNT", count or 1), nil, true
end)

-- hashes
--- hset(name, key, value [, {mapping =, items =}]) or hset(name,
-- {mapping =, items =}), redis-py's keyword arguments: items is a flat
-- list f1, v1, f2, v2 ... and mapping a table field -> value, sent in
-- redis-py's order (items, key and value, mapping). A table in place of
-- key is always these options, so a field named "mapping" or "items"
-- goes in a mapping: hset(name, {mapping = {mapping = "v"}}).
cmd("hset", function(name, key, value, o)
  local argv = A("HSET", name)
  local n = 4 -- the argument that holds the options
  if type(key) == "table" and value == nil and o == nil then
    key, o, n = nil, key, 2
  end
  if o and o.items ~= nil then
    push_all(argv, need_table(o.items, n, "hset", "items"))
  end
  if key ~= nil then push(argv, key, value) end
  if o and o.mapping ~= nil then
    push_map(argv, o.mapping, n, "hset", "mapping")
  end
  if argv.n == 2 then
    error(M.DataError("'hset' with no key value pairs"), 3)
  end
  return argv
end)
cmd("hmset", function(name, mapping)
  if type(mapping) ~= "table" or next(mapping) == nil then
    error(M.DataError("'hmset' with 'mapping' of length 0"), 3)
  end
  return push_map(A("HMSET", name), mapping, 2, "hmset"), ok_true
end)
simple("hget", "HGET")
simple("hgetall", "HGETALL", pairs_to_table)
cmd("hdel", function(name, ...) return list_args(A("HDEL", name), ...) end)
cmd("hincrby", function(name, key, amount)
  return A("HINCRBY", name, key, amount or 1)
end)
cmd("hincrbyfloat", function(name, key, amount)
  return A("HINCRBYFLOAT", name, key, amount or 1.0), to_float
end)
simple("hstrlen", "HSTRLEN")
cmd("hrandfield", function(key, count, o)
  if type(count) == "table" then count, o = nil, count end
  local argv = A("HRANDFIELD", key)
  if count ~= nil then push(argv, count) end
  if o and o.withvalues then
    if count == nil then push(argv, 1) end
    push(argv, "WITHVALUES")
  end
  return argv
end)
simple("hkeys", "HKEYS")
simple("hvals", "HVALS")
simple("hlen", "HLEN")
simple("hexists", "HEXISTS", to_bool)
simple("hsetnx", "HSETNX", to_bool)
cmd("hmget", function(name, ...) return list_args(A("HMGET", name), ...) end)

-- sets
cmd("sadd", function(name, ...) return list_args(A("SADD", name), ...) end)
cmd("srem", function(name, ...) return list_args(A("SREM", name), ...) end)
simple("smembers", "SMEMBERS", to_set)
simple("sismember", "SISMEMBER", to_bool)
cmd("smismember", function(name, ...)
  return list_args(A("SMISMEMBER", name), ...), to_bools
end)
simple("scard", "SCARD")
simple("spop", "SPOP", nil, 1)
simple("srandmember", "SRANDMEMBER", nil, 1)
cmd("sinter", function(...) return list_args(A("SINTER"), ...), to_set end)
cmd("sunion", function(...) return list_args(A("SUNION"), ...), to_set end)
cmd("sdiff", function(...) return list_args(A("SDIFF"), ...), to_set end)
for _, name in ipairs{"sinterstore", "sunionstore", "sdiffstore"} do
  local word = name:upper()
  cmd(name, function(dest, ...) return list_args(A(word, dest), ...) end)
end
cmd("smove", function(src, dst, value)
  return A("SMOVE", src, dst, value), to_bool
end)
--- sintercard(numkeys, keys [, limit = 0]) -> the size of the
-- intersection (counting stops at limit; 0: no limit).
cmd("sintercard", function(numkeys, keys, limit)
  return push(push_all(A("SINTERCARD", numkeys),
                       need_table(keys, 2, "sintercard")),
              "LIMIT", limit or 0)
end)

-- sorted sets
--- The DataErrors of redis-py's zadd for mapping and the options o.
local function check_zadd(mapping, o)
  local n = 0
  for _ in pairs(mapping) do n = n + 1 end
  local why = n == 0 and "ZADD requires at least one element/score pair"
    or o and (o.nx and o.xx and "ZADD allows either 'nx' or 'xx', not both"
      or o.gt and o.lt and "ZADD allows either 'gt' or 'lt', not both"
      or o.incr and n ~= 1 and "ZADD option 'incr' only works when "
        .. "passing a single element/score pair"
      or o.nx and (o.gt or o.lt) and "Only one of 'nx', 'lt', or 'gr' may "
        .. "be defined.")
  if why then error(M.DataError(why), 4) end
end

cmd("zadd", function(name, mapping, o)
  check_zadd(need_table(mapping, 2, "zadd"), o)
  local argv = push_flags(A("ZADD", name), o, {"nx", "xx", "gt", "lt", "ch"})
  local conv
  if o and o.incr then push(argv, "INCR"); conv = to_float end
  for member, score in pairs(mapping) do
    push(argv, score, member)
  end
  return argv, conv
end)

--- Appends LIMIT offset num, both or neither (names: how the method
-- calls them).
local function push_limit(argv, offset, num, names)
  if (offset == nil) ~= (num == nil) then
    error(M.DataError(("``%s`` and ``%s`` must both be specified.")
      :format(names[1], names[2])), 4)
  end
  if offset ~= nil then push(argv, "LIMIT", offset, num) end
  return argv
end

--- zrange(name, start, stop [, {desc, withscores, byscore, bylex,
-- offset, num}]): ZRANGE with BYSCORE / BYLEX, REV, LIMIT, WITHSCORES.
cmd("zrange", function(name, start, stop, o)
  o = o or {}
  if o.byscore and o.bylex then
    error(M.DataError("``byscore`` and ``bylex`` can not be specified "
      .. "together."), 3)
  end
  if o.bylex and o.withscores then
    error(M.DataError("``withscores`` not supported in combination "
      .. "with ``bylex``."), 3)
  end
  local argv = A("ZRANGE", name, start, stop)
  if o.byscore then push(argv, "BYSCORE") end
  if o.bylex then push(argv, "BYLEX") end
  if o.desc then push(argv, "REV") end
  push_limit(argv, o.offset, o.num, {"offset", "num"})
  if o.withscores then return push(argv, "WITHSCORES"), score_pairs end
  return argv
end)
cmd("zrevrange", function(name, start, stop, o)
  local argv = A("ZREVRANGE", name, start, stop)
  if o and o.withscores then return push(argv, "WITHSCORES"), score_pairs end
  return argv
end)

--- ZRANGEBYSCORE / ZREVRANGEBYSCORE (name, first bound, second bound
-- [, {withscores, start, num}]).
local function zbyscore(word)
  return function(name, a, b, o)
    local argv = A(word, name, a, b)
    push_limit(argv, o and o.start, o and o.num, {"start", "num"})
    if o and o.withscores then
      return push(argv, "WITHSCORES"), score_pairs
    end
    return argv
  end
end
cmd("zrangebyscore", zbyscore("ZRANGEBYSCORE"))
cmd("zrevrangebyscore", zbyscore("ZREVRANGEBYSCORE"))
cmd("zrem", function(name, ...) return list_args(A("ZREM", name), ...) end)
simple("zscore", "ZSCORE", to_float)
cmd("zmscore", function(name, members)
  if type(members) ~= "table" or (members.n or #members) == 0 then
    error(M.DataError("ZMSCORE members must be a non-empty list"), 3)
  end
  return push_all(A("ZMSCORE", name), members), to_floats
end)
cmd("zincrby", function(name, amount, value)
  return A("ZINCRBY", name, amount, value), to_float
end)
simple("zcard", "ZCARD")
simple("zcount", "ZCOUNT")
simple("zrank", "ZRANK")
simple("zrevrank", "ZREVRANK")
simple("zremrangebyscore", "ZREMRANGEBYSCORE")
simple("zremrangebyrank", "ZREMRANGEBYRANK")
simple("zremrangebylex", "ZREMRANGEBYLEX")
simple("zlexcount", "ZLEXCOUNT")
--- ZRANGEBYLEX / ZREVRANGEBYLEX name a b [LIMIT start num]
local function bylex(word)
  return function(name, a, b, start, num)
    local argv = A(word, name, a, b)
    if (start == nil) ~= (num == nil) then
      error(M.DataError("``start`` and ``num`` must both be specified"), 3)
    end
    if start ~= nil then push(argv, "LIMIT", start, num) end
    return argv
  end
end
cmd("zrangebylex", bylex("ZRANGEBYLEX"))
cmd("zrevrangebylex", bylex("ZREVRANGEBYLEX"))
--- ZUNION / ZINTER [dest] numkeys keys [WEIGHTS ...] [AGGREGATE a]
-- [WITHSCORES], as redis-py's _zaggregate: keys a list, or a table key
-- -> weight (redis-py's dict). With dest (the STORE commands) -> the
-- size of dest; without, the members, or with withscores {{member,
-- score}, ...} with float scores.
local function zaggregate(word, dest, keys, o)
  if type(keys) ~= "table" then
    error(M.DataError(word .. " keys must be a list or a table of "
      .. "key = weight"), 0)
  end
  local names, weights = {}, nil
  if (keys.n or #keys) > 0 or next(keys) == nil then
    for i = 1, keys.n or #keys do names[i] = keys[i] end
  else
    weights = {}
    for k, w in pairs(keys) do
      names[#names + 1] = k
      weights[#weights + 1] = w
    end
  end
  local argv = A(word)
  if dest ~= nil then push(argv, dest) end
  push_all(push(argv, #names), names)
  if weights then push_all(push(argv, "WEIGHTS"), weights) end
  if o and o.aggregate then
    local a = tostring(o.aggregate):upper()
    if a ~= "SUM" and a ~= "MIN" and a ~= "MAX" then
      error(M.DataError("aggregate can be sum, min or max."), 0)
    end
    push(argv, "AGGREGATE", a)
  end
  if o and o.withscores then return push(argv, "WITHSCORES"), score_pairs end
  return argv
end
cmd("zunionstore", function(dest, keys, o)
  return zaggregate("ZUNIONSTORE", dest, keys, o)
end)
cmd("zinterstore", function(dest, keys, o)
  return zaggregate("ZINTERSTORE", dest, keys, o)
end)
cmd("zunion", function(keys, o) return zaggregate("ZUNION", nil, keys, o) end)
cmd("zinter", function(keys, o) return zaggregate("ZINTER", nil, keys, o) end)
--- zdiff(keys [, {withscores}]) -> the members of the first sorted set
-- in none of the others ({{member, score}, ...} with withscores);
-- zdiffstore(dest, keys) -> the size of dest.
cmd("zdiff", function(keys, o)
  need_table(keys, 1, "zdiff")
  local argv = push_all(A("ZDIFF", keys.n or #keys), keys)
  if o and o.withscores then return push(argv, "WITHSCORES"), score_pairs end
  return argv
end)
cmd("zdiffstore", function(dest, keys)
  need_table(keys, 2, "zdiffstore")
  return push_all(A("ZDIFFSTORE", dest, keys.n or #keys), keys)
end)
cmd("zrandmember", function(key, count, o)
  if type(count) == "table" then count, o = nil, count end
  if o and o.withscores then
    return A("ZRANDMEMBER", key, count or 1, "WITHSCORES"), score_pairs
  end
  if count == nil then return A("ZRANDMEMBER", key) end
  return A("ZRANDMEMBER", key, count)
end)
cmd("zpopmin", function(name, count)
  return A("ZPOPMIN", name, count or 1), score_pairs
end)
cmd("zpopmax", function(name, count)
  return A("ZPOPMAX", name, count or 1), score_pairs
end)
local function bzpop_conv(v)
  if v == nil then return nil end
  return {v[1], v[2], to_float(v[3])}
end
cmd("bzpopmin", function(keys, timeout)
  return keys_timeout("BZPOPMIN", keys, timeout), bzpop_conv, true
end)
cmd("bzpopmax", function(keys, timeout)
  return keys_timeout("BZPOPMAX", keys, timeout), bzpop_conv, true
end)
--- zmpop(num_keys, keys [, {min, max, count}]) and bzmpop(timeout,
-- numkeys, keys, {min, max, count}): pops from the first non-empty
-- sorted set -> {key, {{member, score}, ...}} (float scores, where
-- redis-py 4.3 leaves Redis's strings), nil when all are empty (bzmpop:
-- after timeout seconds, 0 forever). One of min and max, as redis-py's
-- DataError says.
local function mpop_conv(v)
  if v == nil then return nil end
  local out = {}
  for i, pair in ipairs(v[2]) do out[i] = {pair[1], to_float(pair[2])} end
  return {v[1], out}
end
--- argv with the keys and MIN or MAX, and o's count (o checked first).
local function zmpop_args(argv, keys, o, fname, n)
  push_all(argv, need_table(keys, n, fname))
  local min, max = o and o.min, o and o.max
  if (min and max) or not (min or max) then
    error(M.DataError("Either min or max, but not both must be set"), 0)
  end
  return push(argv, min and "MIN" or "MAX"), o.count
end
cmd("zmpop", function(num_keys, keys, o)
  local argv, count = zmpop_args(A("ZMPOP", num_keys), keys, o, "zmpop", 2)
  if count ~= nil and count ~= 1 then push(argv, "COUNT", count) end
  return argv, mpop_conv
end)
cmd("bzmpop", function(timeout, numkeys, keys, o)
  local argv, count = zmpop_args(A("BZMPOP", timeout, numkeys), keys, o,
                                 "bzmpop", 3)
  return push(argv, "COUNT", count or 1), mpop_conv, true
end)

-- streams

--- Appends MAXLEN / MINID [~|=] threshold [LIMIT n] (XADD, XTRIM).
local function push_trim(argv, o)
  if o.maxlen ~= nil and o.minid ~= nil then
    error(M.DataError("Only one of ``maxlen`` or ``minid`` may be "
      .. "specified"), 4)
  end
  local word = o.maxlen ~= nil and "MAXLEN" or o.minid ~= nil and "MINID"
  if word then
    push(argv, word, o.approximate == false and "=" or "~",
         o.maxlen or o.minid)
    if o.limit then push(argv, "LIMIT", o.limit) end
  end
  return argv
end
cmd("xadd", function(name, fields, o)
  if next(need_table(fields, 2, "xadd")) == nil then
    error(M.DataError("XADD fields must be a non-empty dict"), 3)
  end
  if o then check_count(o.maxlen, 1, "XADD maxlen") end
  local argv = A("XADD", name)
  if o and o.nomkstream then push(argv, "NOMKSTREAM") end
  if o then push_trim(argv, o) end
  push(argv, o and o.id or "*")
  return push_map(argv, fields, 2, "xadd")
end)
cmd("xtrim", function(name, o)
  if not o or (o.maxlen == nil and o.minid == nil) then
    error(M.DataError("One of ``maxlen`` or ``minid`` must be specified"),
          3)
  end
  return push_trim(A("XTRIM", name), o)
end)

--- streams (argument #n of fname): {name = id, ...} or a list of
-- {name, id}.
local function streams_args(argv, streams, n, fname)
  local names, ids = {}, {}
  if next(need_table(streams, n, fname)) == nil then
    error(M.DataError(fname:upper() .. " streams must be a non empty dict"),
          4)
  end
  if #streams > 0 then
    for i, s in ipairs(streams) do names[i], ids[i] = s[1], s[2] end
  else
    for k, v in pairs(streams) do names[#names + 1] = k; ids[#ids + 1] = v end
  end
  push(argv, "STREAMS")
  push_all(argv, names)
  return push_all(argv, ids)
end
--- redis-py's checks of count and block (argument names for fname).
local function check_read_opts(o, fname)
  if o then
    check_count(o.count, 1, fname .. " count")
    check_count(o.block, 0, fname .. " block")
  end
end
cmd("xread", function(streams, o)
  check_read_opts(o, "XREAD")
  local argv = A("XREAD")
  if o and o.count then push(argv, "COUNT", o.count) end
  if o and o.block then push(argv, "BLOCK", o.block) end
  return streams_args(argv, streams, 1, "xread"), xread_reply,
    o and o.block ~= nil
end)
cmd("xreadgroup", function(group, consumer, streams, o)
  check_read_opts(o, "XREADGROUP")
  local argv = A("XREADGROUP", "GROUP", group, consumer)
  if o and o.count then push(argv, "COUNT", o.count) end
  if o and o.block then push(argv, "BLOCK", o.block) end
  if o and o.noack then push(argv, "NOACK") end
  return streams_args(argv, streams, 3, "xreadgroup"), xread_reply,
    o and o.block ~= nil
end)
cmd("xack", function(name, group, ...)
  return list_args(A("XACK", name, group), ...)
end)
cmd("xgroup_create", function(name, group, id, o)
  if type(id) == "table" then id, o = nil, id end -- (name, group, {...})
  local argv = A("XGROUP", "CREATE", name, group, id or "$")
  if o and o.mkstream then push(argv, "MKSTREAM") end
  return argv, ok_true
end)
cmd("xgroup_destroy", function(name, group)
  return A("XGROUP", "DESTROY", name, group), to_bool
end)
cmd("xgroup_delconsumer", function(name, group, consumer)
  return A("XGROUP", "DELCONSUMER", name, group, consumer)
end)
cmd("xgroup_createconsumer", function(name, group, consumer)
  return A("XGROUP", "CREATECONSUMER", name, group, consumer)
end)
cmd("xgroup_setid", function(name, group, id)
  return A("XGROUP", "SETID", name, group, id), ok_true
end)
--- An XINFO reply: [k1, v1, ...] -> {k1 = v1}, its entries (first-entry,
-- last-entry) as {id, {field = value}}
local function xinfo_map(v)
  local t = pairs_to_table(v)
  for _, k in ipairs{"first-entry", "last-entry"} do
    local e = t[k]
    if type(e) == "table" then t[k] = stream_entries({e})[1] end
  end
  return t
end
local function xinfo_list(v)
  local out = {}
  for i = 1, #v do out[i] = xinfo_map(v[i]) end
  return out
end
cmd("xinfo_stream", function(name) return A("XINFO", "STREAM", name),
  xinfo_map end)
cmd("xinfo_groups", function(name) return A("XINFO", "GROUPS", name),
  xinfo_list end)
cmd("xinfo_consumers", function(name, group)
  return A("XINFO", "CONSUMERS", name, group), xinfo_list
end)
simple("xlen", "XLEN")
--- The optional range ends of xrange and xrevrange, and the options,
-- which may come in place of either end.
local function range_args(a, b, o)
  if type(a) == "table" then return nil, nil, a end
  if type(b) == "table" then return a, nil, b end
  return a, b, o
end

cmd("xrange", function(name, min, max, o)
  min, max, o = range_args(min, max, o)
  local argv = A("XRANGE", name, min or "-", max or "+")
  if o then check_count(o.count, 1, "XRANGE count") end
  if o and o.count then push(argv, "COUNT", o.count) end
  return argv, stream_entries
end)
cmd("xrevrange", function(name, max, min, o)
  max, min, o = range_args(max, min, o)
  local argv = A("XREVRANGE", name, max or "+", min or "-")
  if o then check_count(o.count, 1, "XREVRANGE count") end
  if o and o.count then push(argv, "COUNT", o.count) end
  return argv, stream_entries
end)
cmd("xdel", function(name, ...) return list_args(A("XDEL", name), ...) end)
cmd("xpending", function(name, group)
  return A("XPENDING", name, group), function(v)
    local consumers = {}
    for i, c in ipairs(v[4] or {}) do
      consumers[i] = {name = c[1], pending = tonumber(c[2])}
    end
    return {pending = v[1], min = v[2], max = v[3], consumers = consumers}
  end
end)
--- xpending_range(name, group, min, max, count [, {consumername,
-- idle}]) -> {{message_id =, consumer =, time_since_delivered =,
-- times_delivered =}, ...}, as redis-py's; with none of min, max and
-- count, xpending's summary (redis-py calls xpending).
local XPENDING_KEYS = {"message_id", "consumer", "time_since_delivered",
                       "times_delivered"}
local function xpending_detail(v)
  local out = {}
  for i, r in ipairs(v) do
    local t = {}
    for k, key in ipairs(XPENDING_KEYS) do t[key] = r[k] end
    out[i] = t
  end
  return out
end
--- Raises redis-py's DataError "XPENDING <what> must be a integer >= 0"
-- for a v below 0.
local function check_nonneg(v, what)
  if tonumber(v) and tonumber(v) < 0 then
    error(M.DataError("XPENDING " .. what .. " must be a integer >= 0"), 0)
  end
end
cmd("xpending_range", function(name, group, min, max, count, o)
  local consumer, idle = o and o.consumername, o and o.idle
  if min == nil and max == nil and count == nil then
    if idle ~= nil or consumer ~= nil then
      error(M.DataError("if XPENDING is provided with idle time or "
        .. "consumername, it must be provided with min, max and count "
        .. "parameters"), 0)
    end
    return COMMANDS.xpending(name, group)
  end
  if min == nil or max == nil or count == nil then
    error(M.DataError("XPENDING must be provided with min, max and count "
      .. "parameters, or none of them."), 0)
  end
  local argv = A("XPENDING", name, group)
  if idle ~= nil then
    check_nonneg(idle, "idle")
    push(argv, "IDLE", idle)
  end
  check_nonneg(count, "count")
  push(argv, min, max, count)
  if consumer ~= nil then push(argv, consumer) end
  return argv, xpending_detail
end)
--- xclaim(name, group, consumer, min_idle_time, ids [, {idle, time,
-- retrycount, force, justid}]) -> entries (ids with justid).
cmd("xclaim", function(name, group, consumer, min_idle_time, ids, o)
  if type(ids) ~= "table" or (ids.n or #ids) == 0 then
    error(M.DataError("XCLAIM message_ids must be a non empty list or "
      .. "tuple of message IDs to claim"), 3)
  end
  local argv = push_all(A("XCLAIM", name, group, consumer, min_idle_time),
                        ids)
  o = o or {}
  for _, k in ipairs{"idle", "time", "retrycount"} do
    if o[k] ~= nil then push(argv, k:upper(), o[k]) end
  end
  push_flags(argv, o, {"force", "justid"})
  if o.justid then return argv end
  return argv, stream_entries
end)
--- xautoclaim(name, group, consumer, min_idle_time [, start] [, {count,
-- justid}]) -> {next_id, entries, deleted}; with justid the claimed ids
-- alone, as redis-py's (Redis's cursor and deleted ids are dropped).
cmd("xautoclaim", function(name, group, consumer, min_idle_time, start, o)
  if type(start) == "table" then start, o = nil, start end
  local argv = A("XAUTOCLAIM", name, group, consumer, min_idle_time,
                 start or "0-0")
  if o and o.count then push(argv, "COUNT", o.count) end
  if o and o.justid then
    return push(argv, "JUSTID"), function(v) return v[2] end
  end
  return argv, function(v)
    return {v[1], stream_entries(v[2]), v[3] or {}}
  end
end)

-- geo
--- geoadd(name, values [, {nx, xx, ch}]): values a flat list
-- {longitude, latitude, member, ...} -> the number added (changed with
-- ch).
cmd("geoadd", function(name, values, o)
  need_table(values, 2, "geoadd")
  if o and o.nx and o.xx then
    error(M.DataError("GEOADD allows either 'nx' or 'xx', not both"), 0)
  end
  if (values.n or #values) % 3 ~= 0 then
    error(M.DataError("GEOADD requires places with lon, lat and name "
      .. "values"), 0)
  end
  return push_all(push_flags(A("GEOADD", name), o, {"nx", "xx", "ch"}),
                  values)
end)
local GEO_UNITS = {m = true, km = true, mi = true, ft = true}
--- geodist(name, place1, place2 [, {unit}]) -> a float, nil when a
-- place is missing; unit m (Redis's default), km, mi or ft.
cmd("geodist", function(name, place1, place2, o)
  local argv = A("GEODIST", name, place1, place2)
  local unit = o and o.unit
  if unit ~= nil then
    if not GEO_UNITS[unit] then
      error(M.DataError("GEODIST invalid unit"), 0)
    end
    push(argv, unit)
  end
  return argv, to_float
end)
--- geohash(name, member, ...) -> their geohashes (holes for missing
-- members); the members may come as one list.
cmd("geohash", function(name, ...)
  return list_args(A("GEOHASH", name), ...)
end)
--- geopos(name, member, ...) -> {{longitude, latitude}, ...} as floats
-- (holes for missing members).
cmd("geopos", function(name, ...)
  return list_args(A("GEOPOS", name), ...), function(v)
    local out = {n = v.n or #v}
    for i = 1, out.n do
      local p = v[i]
      if p ~= nil then out[i] = {to_float(p[1]), to_float(p[2])} end
    end
    return out
  end
end)
--- The reply converter of GEORADIUS, GEORADIUSBYMEMBER and GEOSEARCH,
-- redis-py's parse_geosearch_generic: the members, or with withdist,
-- withhash or withcoord a list per member, {member [, distance]
-- [, hash] [, {longitude, latitude}]}, distances and coordinates as
-- floats. nil (the reply as it is) without such options.
local function geo_reply(o)
  if not (o.withdist or o.withhash or o.withcoord) then return nil end
  return function(v)
    local out = {}
    for i, r in ipairs(v) do
      local row, k = {r[1]}, 2
      if o.withdist then row[#row + 1] = to_float(r[k]); k = k + 1 end
      if o.withhash then row[#row + 1] = r[k]; k = k + 1 end
      if o.withcoord then
        local c = r[k]
        row[#row + 1] = {to_float(c[1]), to_float(c[2])}
      end
      out[i] = row
    end
    return out
  end
end
--- The options of GEORADIUS and GEORADIUSBYMEMBER, in redis-py's order
-- and with its DataErrors; -> argv, its reply converter.
local function georadius_args(argv, o)
  o = o or {}
  if o.unit ~= nil and not GEO_UNITS[o.unit] then
    error(M.DataError("GEORADIUS invalid unit"), 0)
  end
  push(argv, o.unit or "m")
  if o.any and o.count == nil then
    error(M.DataError("``any`` can't be provided without ``count``"), 0)
  end
  push_flags(argv, o, {"withdist", "withcoord", "withhash"})
  if o.count ~= nil then
    push(argv, "COUNT", o.count)
    if o.any then push(argv, "ANY") end
  end
  if o.sort ~= nil then
    if o.sort ~= "ASC" and o.sort ~= "DESC" then
      error(M.DataError("GEORADIUS invalid sort"), 0)
    end
    push(argv, o.sort)
  end
  if o.store ~= nil and o.store_dist ~= nil then
    error(M.DataError("GEORADIUS store and store_dist cant be set "
      .. "together"), 0)
  end
  if o.store ~= nil then push(argv, "STORE", o.store) end
  if o.store_dist ~= nil then push(argv, "STOREDIST", o.store_dist) end
  -- stored: Redis's count of members, as it is
  if o.store ~= nil or o.store_dist ~= nil then return argv end
  return argv, geo_reply(o)
end
--- georadius(name, longitude, latitude, radius [, {unit = "m", withdist,
-- withcoord, withhash, count, sort, store, store_dist, any}]) and
-- georadiusbymember(name, member, radius [, {...}]) -> the members (see
-- geo_reply); with store or store_dist the number stored.
cmd("georadius", function(name, longitude, latitude, radius, o)
  return georadius_args(A("GEORADIUS", name, longitude, latitude, radius),
                        o)
end)
cmd("georadiusbymember", function(name, member, radius, o)
  return georadius_args(A("GEORADIUSBYMEMBER", name, member, radius), o)
end)
--- The options of GEOSEARCH and GEOSEARCHSTORE, redis-py's
-- _geosearchgeneric with its DataErrors (nil, not Python's falsy 0,
-- tells an option left out).
local function geosearch_args(argv, o)
  local member, lon, lat = o.member, o.longitude, o.latitude
  if member == nil and (lon == nil or lat == nil) then
    error(M.DataError("GEOSEARCH must have member or longitude and "
      .. "latitude"), 0)
  end
  if member ~= nil then
    if lon ~= nil or lat ~= nil then
      error(M.DataError("GEOSEARCH member and longitude or latitude cant "
        .. "be set together"), 0)
    end
    push(argv, "FROMMEMBER", member)
  else
    push(argv, "FROMLONLAT", lon, lat)
  end
  local radius, width, height = o.radius, o.width, o.height
  if radius == nil and (width == nil or height == nil) then
    error(M.DataError("GEOSEARCH must have radius or width and height"), 0)
  end
  local unit = o.unit or "m"
  if type(unit) ~= "string" or not GEO_UNITS[unit:lower()] then
    error(M.DataError("GEOSEARCH invalid unit"), 0)
  end
  if radius ~= nil then
    if width ~= nil or height ~= nil then
      error(M.DataError("GEOSEARCH radius and width or height cant be set "
        .. "together"), 0)
    end
    push(argv, "BYRADIUS", radius, unit)
  else
    push(argv, "BYBOX", width, height, unit)
  end
  if o.sort ~= nil then
    local sort = tostring(o.sort):upper()
    if sort ~= "ASC" and sort ~= "DESC" then
      error(M.DataError("GEOSEARCH invalid sort"), 0)
    end
    push(argv, sort)
  end
  if o.count ~= nil then
    push(argv, "COUNT", o.count)
    if o.any then push(argv, "ANY") end
  elseif o.any then
    error(M.DataError("GEOSEARCH ``any`` can't be provided without count"),
          0)
  end
  return push_flags(argv, o, {"withdist", "withcoord", "withhash",
                              "storedist"})
end
--- geosearch(name, {member | longitude and latitude, radius | width and
-- height, unit = "m", sort, count, any, withcoord, withdist, withhash})
-- -> the members (see geo_reply); geosearchstore(dest, name, {...,
-- storedist}) -> the number stored.
cmd("geosearch", function(name, o)
  o = need_table(o, 2, "geosearch")
  return geosearch_args(A("GEOSEARCH", name), o), geo_reply(o)
end)
cmd("geosearchstore", function(dest, name, o)
  return geosearch_args(A("GEOSEARCHSTORE", dest, name),
                        need_table(o, 3, "geosearchstore"))
end)

-- scripts
cmd("eval", function(script, numkeys, ...)
  return A("EVAL", script, numkeys, ...)
end)
cmd("evalsha", function(sha, numkeys, ...)
  return A("EVALSHA", sha, numkeys, ...)
end)
cmd("script_load", function(src) return A("SCRIPT", "LOAD", src) end)
cmd("script_exists", function(...)
  return list_args(A("SCRIPT", "EXISTS"), ...), to_bools
end)
cmd("script_flush", function() return A("SCRIPT", "FLUSH"), ok_true end)

-- server
cmd("ping", function(msg)
  if msg then return A("PING", msg) end
  return A("PING"), function(v) return v == "PONG" end
end)
simple("echo", "ECHO")
cmd("flushdb", function() return A("FLUSHDB"), ok_true end)
cmd("flushall", function() return A("FLUSHALL"), ok_true end)
cmd("info", function(section)
  if section then return A("INFO", section), parse_info end
  return A("INFO"), parse_info
end)
cmd("dbsize", function() return A("DBSIZE") end)
cmd("time", function() return A("TIME"), function(v)
  return {tonumber(v[1]), tonumber(v[2]), n = 2}
end end)
simple("publish", "PUBLISH")
cmd("pubsub_channels", function(pattern)
  return A("PUBSUB", "CHANNELS", pattern or "*")
end)
cmd("pubsub_numpat", function() return A("PUBSUB", "NUMPAT") end)
--- pubsub_numsub(channel, ...) -> {{channel, subscribers}, ...}
cmd("pubsub_numsub", function(...)
  return list_args(A("PUBSUB", "NUMSUB"), ...), function(v)
    local out = {}
    for i = 1, #v, 2 do out[#out + 1] = {v[i], v[i + 1]} end
    return out
  end
end)
cmd("client_id", function() return A("CLIENT", "ID") end)
cmd("client_setname", function(name)
  return A("CLIENT", "SETNAME", name), ok_true
end)
cmd("client_getname", function() return A("CLIENT", "GETNAME") end)
--- CLIENT LIST's lines -> {{id = "3", addr = ..., name = ...}, ...}
local function client_list(v)
  local out = {}
  for line in tostring(v):gmatch("[^\r\n]+") do
    local c = {}
    for k, val in line:gmatch("(%S-)=(%S*)") do c[k] = val end
    out[#out + 1] = c
  end
  return out
end
local CLIENT_TYPES = {normal = true, master = true, replica = true,
                      pubsub = true}
--- client_list([{type, client_id}]): the clients of one type (redis-py's
-- _type; the types redis-py takes) or of the ids in the list client_id,
-- each id an argument of its own (redis-py 4.3 joins them into one,
-- which Redis takes only for a single id).
cmd("client_list", function(o)
  local argv = A("CLIENT", "LIST")
  if o and o.type ~= nil then
    if type(o.type) ~= "string" or not CLIENT_TYPES[o.type:lower()] then
      error(M.DataError("CLIENT LIST type must be one of 'normal', "
        .. "'master', 'replica', 'pubsub'"), 0)
    end
    push(argv, "TYPE", o.type)
  end
  if o and o.client_id ~= nil then
    local ids = need_table(o.client_id, 1, "client_list", "client_id")
    if (ids.n or #ids) > 0 then push_all(push(argv, "ID"), ids) end
  end
  return argv, client_list
end)
cmd("config_get", function(pattern)
  return A("CONFIG", "GET", pattern or "*"), pairs_to_table
end)
cmd("config_set", function(name, value)
  return A("CONFIG", "SET", name, value), ok_true
end)

M._COMMANDS = COMMANDS

--- The commands that take an options table (redis-py's keyword
-- arguments): name -> {its argument number, self not counted, the set of
-- the options it takes, the first argument number it may come at when
-- optional arguments before it are left out}. Another name raises at
-- the call, as Python's TypeError for an unexpected keyword argument.
local CMD_OPTS
do
  local expiry = {"ex", "px", "exat", "pxat"}
  local scan = {"match", "count"}
  local georadius = {"unit", "withdist", "withcoord", "withhash", "count",
                     "sort", "store", "store_dist", "any"}
  local geosearch = {"member", "longitude", "latitude", "unit", "radius",
                     "width", "height", "sort", "count", "any"}
  local function opts(i, names, ...)
    return {i, check.option_set(names, ...), i}
  end
  -- for a command whose options may follow fewer arguments
  local function opts_from(first, i, names)
    return {i, check.option_set(names), first}
  end
  CMD_OPTS = {
    set = opts(3, {"nx", "xx", "keepttl", "get"}, check.option_set(expiry)),
    getex = opts(2, {"persist"}, check.option_set(expiry)),
    scan = opts(2, {"match", "count", "type"}),
    sscan = opts(3, scan), hscan = opts(3, scan), zscan = opts(3, scan),
    lpos = opts(3, {"rank", "count", "maxlen"}),
    hset = opts_from(2, 4, {"mapping", "items"}),
    zadd = opts(3, {"nx", "xx", "gt", "lt", "ch", "incr"}),
    zrange = opts(4, {"withscores", "desc", "byscore", "bylex", "offset",
                      "num"}),
    zrevrange = opts(4, {"withscores"}),
    zrangebyscore = opts(4, {"withscores", "start", "num"}),
    zrevrangebyscore = opts(4, {"withscores", "start", "num"}),
    xadd = opts(3, {"id", "maxlen", "minid", "approximate", "limit",
                    "nomkstream"}),
    xtrim = opts(2, {"maxlen", "minid", "approximate", "limit"}),
    xread = opts(2, {"count", "block"}),
    xreadgroup = opts(4, {"count", "block", "noack"}),
    xgroup_create = opts_from(3, 4, {"mkstream"}),
    bitcount = opts_from(2, 4, {"mode"}),
    bitpos = opts_from(3, 5, {"mode"}),
    xrange = opts_from(2, 4, {"count"}),
    xrevrange = opts_from(2, 4, {"count"}),
    xclaim = opts(6, {"idle", "time", "retrycount", "force", "justid"}),
    xautoclaim = opts_from(5, 6, {"count", "justid"}),
    zunionstore = opts(3, {"aggregate"}),
    zinterstore = opts(3, {"aggregate"}),
    zrandmember = opts_from(2, 3, {"withscores"}),
    hrandfield = opts_from(2, 3, {"withvalues"}),
    copy = opts(3, {"destination_db", "replace"}),
    client_list = opts(1, {"type", "client_id"}),
    lcs = opts(3, {"len", "idx", "minmatchlen", "withmatchlen"}),
    restore = opts(4, {"replace", "absttl", "idletime", "frequency"}),
    -- after the keys, however many: the last argument
    lmpop = {"last", check.option_set{"direction", "count"}},
    blmpop = {"last", check.option_set{"direction", "count"}},
    zunion = opts(2, {"aggregate", "withscores"}),
    zinter = opts(2, {"aggregate", "withscores"}),
    zdiff = opts(2, {"withscores"}),
    zmpop = opts(3, {"min", "max", "count"}),
    bzmpop = opts(4, {"min", "max", "count"}),
    xpending_range = opts(6, {"consumername", "idle"}),
    geoadd = opts(3, {"nx", "xx", "ch"}),
    geodist = opts(4, {"unit"}),
    georadius = opts(5, georadius),
    georadiusbymember = opts(4, georadius),
    geosearch = opts(2, geosearch, check.option_set{"withcoord", "withdist",
                                                    "withhash"}),
    geosearchstore = opts(3, {"storedist"}, check.option_set(geosearch)),
  }
  for _, name in ipairs{"expire", "pexpire", "expireat", "pexpireat"} do
    CMD_OPTS[name] = opts(3, {"nx", "xx", "gt", "lt"})
  end
end

--- method, or for a command that takes options (CMD_OPTS), a method that
-- checks them first: at their one place, or at the first table among the
-- places they may come (after optional arguments).
local function with_options(name, method)
  local copts = CMD_OPTS[name]
  if not copts then return method end
  local i, set, first = copts[1], copts[2], copts[3]
  if i == "last" then -- a table after the arguments is the options
    return function(self, ...)
      local n = select("#", ...)
      local o = n > 0 and select(n, ...) or nil
      if type(o) == "table" then check.options(o, n + 1, name, set) end
      return method(self, ...)
    end
  end
  if first == i then
    return function(self, ...)
      local o = select(i, ...)
      if o ~= nil then check.options(o, i + 1, name, set) end
      return method(self, ...)
    end
  end
  -- the table may come early; a value other than a table is checked
  -- only in the last place, the options' own (earlier ones are
  -- arguments)
  return function(self, ...)
    for k = first, i do
      local o = select(k, ...)
      if type(o) == "table" or (k == i and o ~= nil) then
        check.options(o, k + 1, name, set)
        break
      end
    end
    return method(self, ...)
  end
end

-- Redis methods: run the built command; the multi-valued replies of the
-- blocking pops (nil on timeout) and of TIME are returned as several
-- values (in a pipeline, each stays one table, as redis-py's tuple).
local MULTI_VALUE = {brpop = true, blpop = true, bzpopmin = true,
                     bzpopmax = true, time = true}
local function unpack_or_nil(t)
  if t == nil then return nil end
  return unpack(t, 1, t.n or #t)
end

--- A Coroutine that raises e: a method's bad arguments raise where it
-- is awaited, as every other failure of the command does.
local raise_later = async(function(e) error(e, 0) end)

for name, build in pairs(COMMANDS) do
  if MULTI_VALUE[name] then
    local conv_unpack = async(function(self, ...)
      local argv, conv, blocking = build(...)
      local v = await((blocking and run_blocking or run)(self, argv, conv))
      return unpack_or_nil(v)
    end)
    Redis[name] = conv_unpack
  else
    Redis[name] = with_options(name, function(self, ...)
      local ok, argv, conv, blocking = pcall(build, ...)
      if not ok then return raise_later(argv) end
      if blocking then return run_blocking(self, argv, conv) end
      return run(self, argv, conv)
    end)
  end
end

-- Aliases of redis-py.
Redis.del = Redis.delete

--- r:bitfield(key [, {default_overflow}]) -> a BitFieldOperation, redis-py's
-- builder of one BITFIELD command: its calls (set, get, incrby, overflow)
-- add operations and return it; execute() sends them and resets it. On a
-- client execute() returns a Coroutine (the list of the operations'
-- results, nil for an INCRBY that OVERFLOW FAIL stopped); on a pipeline
-- it queues the command and returns the pipeline, as redis-py's.
local BitField = {__name = "redis.BitFieldOperation"}
BitField.__index = BitField
M.BitFieldOperation = BitField

local BITFIELD_OPTS = check.option_set{"default_overflow"}
local INCRBY_OPTS = check.option_set{"overflow"}

--- Checks the options o, argument #n of fname (self counted), whose
-- one option, field, is a string if present: -> its value.
local function string_option(o, n, fname, set, field)
  check.options(o, n, fname, set, 2)
  local v = o and o[field]
  if v ~= nil and type(v) ~= "string" then
    check.argerror(n, fname, ("field '%s': string expected, got %s")
                   :format(field, check.typename(v)), 2)
  end
  return v
end

function Redis:bitfield(key, o)
  local how = string_option(o, 3, "bitfield", BITFIELD_OPTS,
                            "default_overflow")
  local op = setmetatable({client = self, key = key, default_overflow = how},
                          BitField)
  return op:reset()
end

--- op:reset() -> op, with no operation (but its default overflow).
function BitField:reset()
  self.operations, self.last_overflow = A(), "WRAP"
  self:overflow(self.default_overflow or "WRAP")
  return self
end

--- op:overflow(how) -> op: WRAP, SAT or FAIL for the INCRBYs after it
-- (sent only when it changes, as redis-py's).
function BitField:overflow(how)
  check.type(how, 2, "overflow", "string")
  how = how:upper()
  if how ~= self.last_overflow then
    self.last_overflow = how
    push(self.operations, "OVERFLOW", how)
  end
  return self
end

--- op:incrby(fmt, offset, increment [, {overflow}]) -> op; fmt such as
-- "u8" or "i16", offset in bits or "#n" (n times the width).
function BitField:incrby(fmt, offset, increment, o)
  local how = string_option(o, 5, "incrby", INCRBY_OPTS, "overflow")
  if how ~= nil then self:overflow(how) end
  push(self.operations, "INCRBY", fmt, offset, increment)
  return self
end

--- op:get(fmt, offset) -> op
function BitField:get(fmt, offset)
  push(self.operations, "GET", fmt, offset)
  return self
end

--- op:set(fmt, offset, value) -> op
function BitField:set(fmt, offset, value)
  push(self.operations, "SET", fmt, offset, value)
  return self
end

--- op:execute(): the BITFIELD command of the operations so far, run by
-- the client (or queued on the pipeline) the builder came from; the
-- builder is reset.
function BitField:execute()
  local argv = push_all(A("BITFIELD", self.key), self.operations)
  self:reset()
  return self.client:execute_command(unpack(argv, 1, argv.n))
end

--- A for-loop iterator over a SCAN-family command, from cursor 0 until
-- Redis gives cursor 0 back. build(cursor) -> its argv; each step
-- returns the next element (stride 1) or element pair (stride 2, the
-- second converted by conv2). Inside a task: a step may await the next
-- batch.
local function scan_iterator(self, build, stride, conv2)
  local cursor, flat, i = nil, {}, 1
  return function()
    while flat[i] == nil do
      if cursor == 0 then return nil end
      local reply = await(run(self, (build(cursor or 0))))
      cursor, flat, i = tonumber(reply[1]), reply[2] or {}, 1
    end
    local a, b = flat[i], flat[i + 1]
    i = i + stride
    if stride == 1 then return a end
    if conv2 then b = conv2(b) end
    return a, b
  end
end

--- for key in r:scan_iter{match =, count =, type =} do ... end
function Redis:scan_iter(o)
  check.options(o, 2, "scan_iter", CMD_OPTS.scan[2])
  return scan_iterator(self, function(cur) return COMMANDS.scan(cur, o) end,
                       1)
end
--- for member in r:sscan_iter(name [, {match =, count =}]) do ... end
function Redis:sscan_iter(name, o)
  check.options(o, 3, "sscan_iter", CMD_OPTS.sscan[2])
  return scan_iterator(self, function(cur)
    return COMMANDS.sscan(name, cur, o)
  end, 1)
end
--- for field, value in r:hscan_iter(name [, {match =, count =}]) do
function Redis:hscan_iter(name, o)
  check.options(o, 3, "hscan_iter", CMD_OPTS.hscan[2])
  return scan_iterator(self, function(cur)
    return COMMANDS.hscan(name, cur, o)
  end, 2)
end
--- for member, score in r:zscan_iter(name [, {match =, count =}]) do
function Redis:zscan_iter(name, o)
  check.options(o, 3, "zscan_iter", CMD_OPTS.zscan[2])
  return scan_iterator(self, function(cur)
    return COMMANDS.zscan(name, cur, o)
  end, 2, to_float)
end

---------------------------------------------------------------------------
-- Pipelines and transactions

local Pipeline = {}
Pipeline.__index = Pipeline

--- The flag of a method whose one keyword argument, `key`, comes as
-- itself or as {key = v} (no other option), argument #1 of method
-- `fname`: true unless false.
local FLAG_SETS = {transaction = check.option_set{"transaction"},
                   raise_on_error = check.option_set{"raise_on_error"}}
local function flag_arg(o, fname, key)
  if type(o) == "table" then
    check.options(o, 2, fname, FLAG_SETS[key], 2)
    o = o[key]
  end
  return o ~= false
end

--- r:pipeline([transaction]) or r:pipeline{transaction =} (default
-- true) -> a Pipeline: named calls queue commands (and return the
-- pipeline), await(p:execute()) sends them in one write and returns the
-- list of replies (field n: their count); #p is the number queued.
function Redis:pipeline(o)
  local transaction = flag_arg(o, "pipeline", "transaction")
  return setmetatable({client = self, transaction = transaction,
                       cmds = {}, convs = {}, scripts = {},
                       watching = false, explicit_multi = false}, Pipeline)
end

local TRANSACTION_OPTS = check.option_set{"value_from_callable",
                                          "watch_delay"}

local run_transaction = async(function(self, func, watches, o)
  local p <close> = self:pipeline(true)
  while true do
    local ok, res = pcall(function()
      if #watches > 0 then await(p:watch(table.unpack(watches))) end
      local value = func(p)
      if asyncio.iscoroutine(value) or asyncio.isfuture(value) then
        value = await(value)
      end
      local replies = await(p:execute())
      if o.value_from_callable then return value end
      return replies
    end)
    if ok then return res end
    if not iserror(res, M.WatchError) then error(res, 0) end
    p:reset()
    if o.watch_delay and o.watch_delay > 0 then
      await(asyncio.sleep(o.watch_delay))
    end
  end
end)

--- r:transaction(func, key, ... [, {value_from_callable =, watch_delay
-- =}]) -> Coroutine: redis-py's helper: watches the keys on a
-- transactional pipeline, calls func(pipe) (awaiting what it returns),
-- executes, and starts again when a watched key changed (WatchError);
-- the replies of execute(), or func's value with value_from_callable.
function Redis:transaction(func, ...)
  if type(func) ~= "function" then
    error("bad argument #1 to 'transaction' (function expected, got "
          .. type(func) .. ")", 2)
  end
  local watches, o = table.pack(...), nil
  if type(watches[watches.n]) == "table" then
    o = check.options(watches[watches.n], watches.n + 1, "transaction",
                      TRANSACTION_OPTS)
    watches[watches.n], watches.n = nil, watches.n - 1
  end
  return run_transaction(self, func, watches, o or {})
end

Pipeline.__len = function(self) return #self.cmds end

--- await(p) -> p, as redis-py's pipelines (so await(script(k, a, p))
-- reads as redis-py's `await script(keys, args, client=pipe)`).
Pipeline.__await = async(function(self) return self end)

--- Queues a checked command (argv) with its reply conversion.
local function queue(p, argv, conv)
  check_argv(argv)
  local n = #p.cmds + 1
  p.cmds[n] = argv
  p.convs[n] = conv or false
  return p
end
--- After WATCH and before MULTI, commands run at once (redis-py's
-- immediate mode), on the watching connection of pipeline p, within the
-- client's socket_timeout.
local run_on = async(function(p, argv, conv)
  local c = p.conn
  local v = await_reply(c, send_argv(c, argv), p.client.opts.socket_timeout)
  if conv then return conv(v) end
  return v
end)

for name, build in pairs(COMMANDS) do
  Pipeline[name] = with_options(name, function(self, ...)
    local argv, conv = build(...)
    if self.watching and not self.explicit_multi then
      return run_on(self, argv, conv)
    end
    return queue(self, argv, conv)
  end)
end
Pipeline.del = Pipeline.delete
Pipeline.bitfield = Redis.bitfield

--- p:execute_command(name, ...) queues any command (raw reply).
function Pipeline:execute_command(...)
  local argv = {n = select("#", ...), ...}
  local name = argv[1]
  if type(name) ~= "string" then
    error("bad argument #1 to 'execute_command' (string expected, got "
          .. type(name) .. ")", 2)
  end
  if PUBSUB_ONLY[name:upper()] then
    error(M.PubSubError("use r:pubsub() for " .. name:upper()), 2)
  end
  if self.watching and not self.explicit_multi then
    return run_on(self, argv)
  end
  return queue(self, argv)
end

--- await(p:watch(key, ...)): WATCHes the keys on a connection the
-- pipeline keeps until execute() or reset().
Pipeline.watch = async(function(self, ...)
  if self.explicit_multi then
    error(M.RedisError("Cannot issue a WATCH after a MULTI"), 0)
  end
  if not self.conn then self.conn = await(acquire(self.client)) end
  self.watching = true
  await(run_on(self, A("WATCH", ...)))
  return true
end)

--- await(p:unwatch()) -> true: forgets the WATCHed keys (UNWATCH on the
-- watching connection, which the pipeline keeps until execute() or
-- reset(), its calls still running at once until p:multi()).
Pipeline.unwatch = async(function(self)
  if self.watching and self.conn then await(run_on(self, {"UNWATCH"})) end
  return true
end)

--- Sends UNWATCH on c, its reply (or failure) read and dropped.
local function unwatch_quietly(c)
  if c.closed then return end
  local u = send_argv(c, {"UNWATCH"})
  c.quiet[u] = true
  u:add_done_callback(quiet)
end

--- p:multi(): the commands from here on are queued for MULTI/EXEC.
function Pipeline:multi()
  if self.explicit_multi then
    error(M.RedisError("Cannot issue nested calls to MULTI"), 2)
  end
  if #self.cmds > 0 then
    error(M.RedisError("Commands without an initial WATCH have already "
                       .. "been issued"), 2)
  end
  self.explicit_multi = true
  self.transaction = true
end

--- p:reset(): forgets the queue and gives back the watching connection.
function Pipeline:reset()
  self.cmds, self.convs, self.scripts = {}, {}, {}
  self.explicit_multi = false
  local c = self.conn
  if c then
    self.conn = nil
    if self.watching then unwatch_quietly(c) end
    release(self.client, c)
  end
  self.watching = false
end
Pipeline.__close = Pipeline.reset

local function annotate(e, i, argv)
  local words = {}
  for k = 1, #argv do words[k] = tostring(argv[k]) end
  local cls = getmetatable(e)
  local ne = cls(("Command # %d (%s) of pipeline caused error: %s"):format(
    i, concat(words, " "), e.message))
  return ne
end

--- Sends argv on c for a pipeline: -> the reply's future, whose failure
-- counts as handled (a cancelled execute() never awaits it).
local function send_quiet(c, argv)
  local f = send_argv(c, argv)
  f:add_done_callback(quiet)
  return f
end

--- Loads the scripts queued on p (SCRIPT LOAD on connection c, which
-- gives back the sha of each) and puts their sha in their EVALSHA.
local function load_scripts(p, c, timeout)
  local loads = {}
  for i, script in pairs(p.scripts) do
    loads[i] = send_quiet(c, A("SCRIPT", "LOAD", script.script))
  end
  for i, script in pairs(p.scripts) do
    script.sha = await_reply(c, loads[i], timeout)
    p.cmds[i][2] = script.sha
  end
end

--- The replies of cmds in MULTI/EXEC on c (each awaited within timeout
-- seconds, nil: no limit), converted; error replies raise (the first)
-- or, unless raise, stand in the list. Other failures (a lost
-- connection, a timeout) raise as they are.
local function exec_transaction(c, cmds, convs, raise, timeout)
  local futs = {}
  local multi = send_quiet(c, {"MULTI"})
  for i = 1, #cmds do futs[i] = send_quiet(c, cmds[i]) end
  local exec = send_quiet(c, {"EXEC"})
  await_reply(c, multi, timeout)
  local first_err
  for i = 1, #cmds do
    local okq, e = pcall(await_reply, c, futs[i], timeout)
    if not okq then
      if not iserror(e, M.ResponseError) then error(e, 0) end
      first_err = first_err or annotate(e, i, cmds[i])
    end
  end
  local okx, replies = pcall(await_reply, c, exec, timeout)
  if not okx then
    if not iserror(replies, M.ResponseError) then error(replies, 0) end
    error(first_err or replies, 0)
  end
  if replies == nil then
    error(M.WatchError("Watched variable changed."), 0)
  end
  local out = {n = #cmds}
  for i = 1, #cmds do
    local v = replies[i]
    if iserror(v) then
      if raise then error(annotate(v, i, cmds[i]), 0) end
      out[i] = v
    elseif convs[i] then
      out[i] = convs[i](v)
    else
      out[i] = v
    end
  end
  return out
end

--- The replies of cmds sent together (no transaction) on c, converted;
-- error replies as in exec_transaction. futs: the futures of cmds
-- already sent, which a cancellation leaves pending (see execute), or
-- nil: sent here.
local function exec_plain(c, cmds, convs, raise, timeout, futs)
  local shielded = futs ~= nil
  if not futs then
    futs = {}
    for i = 1, #cmds do futs[i] = send_quiet(c, cmds[i]) end
  end
  local out, first_err = {n = #cmds}, nil
  for i = 1, #cmds do
    local fut = shielded and asyncio.shield(futs[i]) or futs[i]
    local okr, v = pcall(await_reply, c, fut, timeout)
    if okr then
      if convs[i] then out[i] = convs[i](v) else out[i] = v end
    elseif iserror(v, M.ResponseError) then
      out[i] = v
      first_err = first_err or annotate(v, i, cmds[i])
    else
      error(v, 0)
    end
  end
  if first_err and raise then error(first_err, 0) end
  return out
end

--- Whether the commands hold a blocking one.
local function holds_blocking(cmds)
  for i = 1, #cmds do
    if is_blocking(cmds[i]) then return true end
  end
  return false
end

--- After a cancelled execute on the dedicated connection c: the commands
-- whose replies were not taken, for recover.
local function pending_of(cmds, futs)
  local pending = {}
  for i = 1, #futs do
    local f = futs[i]
    if not f:done() or not f:cancelled() and f:exception() == nil then
      local argv = cmds[i]
      pending[#pending + 1] = {f, restore_of(argv), is_blocking(argv)}
    end
  end
  return pending
end

--- Sends the commands of pipeline self (see Pipeline:execute); raise:
-- whether an error reply raises. Without a transaction, commands that
-- hold a blocking one go on a dedicated connection (as redis-py's
-- pipeline has its own), which a cancellation recovers as it does a
-- blocking command's.
local execute = async(function(self, raise)
  local cmds, convs = self.cmds, self.convs
  local client = self.client
  local c = self.conn
  local timeout = client.opts.socket_timeout
  local dedicated, futs = false, nil
  local ok, res = pcall(function()
    if #cmds == 0 and not self.watching then return {n = 0} end
    if c == nil then
      if not self.transaction and holds_blocking(cmds) then
        c = await(acquire(client))
        dedicated = true
      else
        c = shared(client)
        if c.hc then check_health(c, timeout) end
      end
    end
    if next(self.scripts) then load_scripts(self, c, timeout) end
    if self.transaction then
      return exec_transaction(c, cmds, convs, raise, timeout)
    end
    if dedicated then
      futs = {}
      for i = 1, #cmds do futs[i] = send_quiet(c, cmds[i]) end
    end
    return exec_plain(c, cmds, convs, raise, timeout, futs)
  end)
  if dedicated then
    if not ok and is_cancel(res) and futs then
      recover(client, c, pending_of(cmds, futs))
    else
      release(client, c)
    end
  end
  self.cmds, self.convs, self.scripts = {}, {}, {}
  self.explicit_multi = false
  if self.conn then
    self.conn = nil
    -- EXEC forgets the WATCHed keys; a failure before it may not have
    if not ok and self.watching then unwatch_quietly(c) end
    self.watching = false
    release(client, c)
  end
  if not ok then error(res, 0) end
  return res
end)

--- await(p:execute([raise_on_error])) or p:execute{raise_on_error =}
-- (default true) -> the list of replies. An error reply raises (the
-- first one, naming its command) or, with raise_on_error false, stands
-- in the list. A transaction whose WATCHed keys changed raises
-- redis.WatchError. The pipeline is empty afterwards.
function Pipeline:execute(o)
  return execute(self, flag_arg(o, "execute", "raise_on_error"))
end

---------------------------------------------------------------------------
-- Locks

--- r:lock(name [, {timeout =, sleep = 0.1, blocking = true,
-- blocking_timeout =}]) -> a redis.Lock (asyncio.redis.lock), redis-py's
function Redis:lock(name, opts)
  local lock = require("asyncio.redis.lock").new(M, self, name, opts)
  return lock -- not a tail call: new's errors name this call's caller
end

---------------------------------------------------------------------------
-- Scripts

local Script = {}
Script.__index = Script

--- r:register_script(src) -> a Script: await(script(keys, args)) runs it
-- with EVALSHA, loading it first when Redis answers NOSCRIPT.
function Redis:register_script(src)
  if type(src) ~= "string" then
    error("bad argument #1 to 'register_script' (string expected, got "
          .. type(src) .. ")", 2)
  end
  return setmetatable({client = self, script = src}, Script)
end

--- Runs the script's EVALSHA argv with send(argv) -> an awaitable of the
-- reply, loading the script on NOSCRIPT (or when its sha is unknown).
local run_script = async(function(self, argv, send)
  if self.sha then
    argv[2] = self.sha
    local ok, v = pcall(await, send(argv))
    if ok then return v end
    if not iserror(v, M.NoScriptError) then error(v, 0) end
  end
  self.sha = await(send(A("SCRIPT", "LOAD", self.script)))
  argv[2] = self.sha
  return await(send(argv))
end)

local SCRIPT_OPTIONS = {keys = true, args = true, client = true}

--- script(keys, args [, client]) or script{keys =, args =, client =}
-- (redis-py's keyword arguments) -> a Coroutine of the script's reply.
-- With a pipeline as client, EVALSHA is queued on it and the pipeline
-- returned (awaitable too); its execute() loads the script first.
function Script:__call(keys, args, client)
  if type(keys) == "table" and args == nil and client == nil then
    local named = false
    for k in pairs(keys) do
      if type(k) == "string" and k ~= "n" then
        if not SCRIPT_OPTIONS[k] then
          error(("bad argument #1 to 'Script' (unknown option '%s')")
            :format(k), 2)
        end
        named = true
      end
    end
    if named then keys, args, client = keys.keys, keys.args, keys.client end
  end
  keys, args = keys or {}, args or {}
  local argv = A("EVALSHA", self.sha or "", #keys)
  push_all(argv, keys)
  push_all(argv, args)
  if getmetatable(client) ~= Pipeline then
    local c = client or self.client
    return run_script(self, argv, function(a) return run(c, a) end)
  end
  if client.watching and not client.explicit_multi then
    return run_script(self, argv, function(a)
      return run_on(client, a)
    end)
  end
  queue(client, argv)
  client.scripts[#client.cmds] = self
  return client
end

---------------------------------------------------------------------------
-- Pub/sub

local PubSub = {}
PubSub.__index = PubSub

local PUBSUB_OPTS = check.option_set{"ignore_subscribe_messages"}

--- r:pubsub([{ignore_subscribe_messages =}]) -> a PubSub on a connection
-- of its own (opened on the first subscribe). ps.channels and
-- ps.patterns map what it is subscribed to, to true or to the handler
-- given; ps.subscribed tells whether there is any.
function Redis:pubsub(opts)
  check.options(opts, 2, "pubsub", PUBSUB_OPTS)
  local ps = setmetatable({client = self, channels = {}, patterns = {},
                       -- names whose unsubscribe Redis has not confirmed
                       unsub_channels = {}, unsub_patterns = {},
                       subscribed = false, generation = 0,
                       ignore_subscribe_messages = opts and
                         opts.ignore_subscribe_messages or false,
                       queue = asyncio.Queue()}, PubSub)
  self.pubsubs[ps] = true
  return ps
end

local function update_subscribed(ps)
  ps.subscribed = next(ps.channels) ~= nil or next(ps.patterns) ~= nil
end

local MESSAGE_KINDS = {message = true, pmessage = true, subscribe = true,
                       unsubscribe = true, psubscribe = true,
                       punsubscribe = true, pong = true}

--- A RESP2 push array -> {type, channel, pattern, data}. A confirmed
-- unsubscribe forgets its channel (pattern), as redis-py's.
local function to_message(ps, v)
  local kind = v[1]
  local msg
  if kind == "pmessage" then
    msg = {type = kind, pattern = v[2], channel = v[3], data = v[4]}
  elseif kind == "pong" then
    msg = {type = kind, data = v[2]}
  else
    msg = {type = kind, channel = v[2], data = v[3]}
  end
  -- v[2] is nil when UNSUBSCRIBE found nothing to unsubscribe from
  if (kind == "unsubscribe" or kind == "punsubscribe") and v[2] ~= nil then
    local pending, map = ps.unsub_channels, ps.channels
    if kind == "punsubscribe" then
      pending, map = ps.unsub_patterns, ps.patterns
    end
    if pending[v[2]] then
      pending[v[2]], map[v[2]] = nil, nil
      update_subscribed(ps)
    end
  end
  return msg
end

--- What the connection of ps reads: messages and error replies go to
-- ps.queue, as does the error that ended the connection (ok nil). A
-- PING reply outside subscribed mode ("PONG", or its message) is a
-- pong message, as redis-py's.
local function on_push(ps, ok, v)
  if not ok then
    ps.queue:put_nowait(v)
    return
  end
  if type(v) ~= "table" then v = {"pong", v == "PONG" and "" or v} end
  if MESSAGE_KINDS[v[1]] then ps.queue:put_nowait(to_message(ps, v)) end
end

--- The names of a map's keys, as an argv tail.
local function keys_argv(argv, map)
  for k in pairs(map) do push(argv, k) end
  return argv
end

--- Opens the connection of ps and subscribes it again to its channels
-- and patterns (after a lost connection, as redis-py's on_connect).
-- generation and epoch are those of ps and its client when the open
-- began: a connection that arrives after ps or its client closed is
-- closed, and raises redis.ConnectionError "Connection closed.".
local ps_open = async(function(self, generation, epoch)
  local c = await(open_conn(self.client.opts))
  if self.generation ~= generation or self.client.epoch ~= epoch then
    c:close()
    error(M.ConnectionError("Connection closed."), 0)
  end
  c.push = function(ok, v) on_push(self, ok, v) end
  self.conn = c
  self.unsub_channels, self.unsub_patterns = {}, {}
  if next(self.channels) then
    send_push(c, keys_argv(A("SUBSCRIBE"), self.channels))
  end
  if next(self.patterns) then
    send_push(c, keys_argv(A("PSUBSCRIBE"), self.patterns))
  end
  return c
end)

--- The connection of ps, opened (again) when it has none or lost it; the
-- tasks that come while it opens wait for the same attempt.
local function ps_connect(self)
  local c = self.conn
  if c and not c.closed then return c end
  local opening = self.opening
  if not opening then
    opening = asyncio.ensure_future(ps_open(self, self.generation,
                                            self.client.epoch))
    self.opening = opening
    opening:add_done_callback(function(f)
      if self.opening == f then self.opening = nil end
      quiet(f)
    end)
  end
  return await(asyncio.shield(opening))
end

--- The argv of a (p)subscribe call and its handlers: the arguments are
-- names, or one table listing names and mapping names to handlers
-- ({"sport", news = fn}, redis-py's keyword arguments).
local function subscribe_args(word, fname, ...)
  local argv, handlers = A(word), {}
  local first = ...
  if select("#", ...) ~= 1 or type(first) ~= "table" then
    return push(argv, ...), handlers
  end
  local len = first.n or #first
  push_all(argv, first)
  for k, h in pairs(first) do
    local listed = math.type(k) == "integer" and k >= 1 and k <= len
    if not listed and not (k == "n" and math.type(h) == "integer") then
      if type(k) ~= "string" or type(h) ~= "function" then
        error(("bad argument #1 to '%s' (field '%s': function expected, "
               .. "got %s)"):format(fname, tostring(k), type(h)), 0)
      end
      push(argv, k)
      handlers[k] = h
    end
  end
  return argv, handlers
end

local function ps_subscribe(word, fname, kind)
  return async(function(self, ...)
    local argv, handlers = subscribe_args(word, fname, ...)
    send_push(ps_connect(self), argv)
    -- recorded once sent, so that a reconnection subscribes again
    local map, pending = self[kind], self["unsub_" .. kind]
    for i = 2, argv.n do
      local name = argv[i]
      map[name] = handlers[name] or true
      pending[name] = nil
    end
    update_subscribed(self)
    return true
  end)
end

local function ps_unsubscribe(word, kind)
  return async(function(self, ...)
    local argv = list_args(A(word), ...)
    local pending = self["unsub_" .. kind]
    if argv.n == 1 then
      for name in pairs(self[kind]) do pending[name] = true end
    else
      for i = 2, argv.n do pending[argv[i]] = true end
    end
    send_push(ps_connect(self), argv)
    return true
  end)
end

--- await(ps:subscribe(channel, ...)), ps:subscribe{channel, ...,
-- channel = handler}; psubscribe likewise with patterns. A handler gets
-- the messages of its channel (pattern) instead of get_message() and
-- listen(); it may return an awaitable, which is awaited.
PubSub.subscribe = ps_subscribe("SUBSCRIBE", "subscribe", "channels")
PubSub.psubscribe = ps_subscribe("PSUBSCRIBE", "psubscribe", "patterns")
--- await(ps:unsubscribe([channel, ...])): from every channel when none is
-- named; punsubscribe likewise. The confirmations come as messages.
PubSub.unsubscribe = ps_unsubscribe("UNSUBSCRIBE", "channels")
PubSub.punsubscribe = ps_unsubscribe("PUNSUBSCRIBE", "patterns")
--- await(ps:ping([message])): the reply comes as a "pong" message.
PubSub.ping = async(function(self, msg)
  send_push(ps_connect(self), msg == nil and A("PING") or A("PING", msg))
  return true
end)

--- Takes the next message (waiting up to timeout seconds; nil: forever)
-- and returns it, nil on timeout; raises an error reply, and the error
-- that ended the connection (once: the next call opens a new one and
-- subscribes it again).
local next_message = async(function(self, timeout)
  local q = self.queue
  local c = self.conn
  if q:qsize() == 0 and c and c.closed and self.subscribed then
    ps_connect(self)
  end
  local msg
  if q:qsize() > 0 then
    msg = q:get_nowait()
  elseif timeout == 0 then
    return nil
  elseif timeout then
    local ok, v = pcall(await, asyncio.wait_for(q:get(), timeout))
    if not ok then
      if iserror(v, asyncio.TimeoutError) then return nil end
      error(v, 0)
    end
    msg = v
  else
    msg = await(q:get())
  end
  if iserror(msg) then error(msg, 0) end
  return msg
end)

--- msg, or nil when it goes to its channel's (pattern's) handler instead
-- or is a confirmation to ignore.
local function handle(self, msg, ignore)
  local kind = msg.type
  if kind == "message" or kind == "pmessage" then
    local h
    if kind == "pmessage" then h = self.patterns[msg.pattern]
    else h = self.channels[msg.channel] end
    if type(h) ~= "function" then return msg end
    local res = h(msg)
    if asyncio.iscoroutine(res) or asyncio.isfuture(res) then await(res) end
    return nil
  end
  if kind ~= "pong" and (ignore or self.ignore_subscribe_messages) then
    return nil
  end
  return msg
end

--- The next message within timeout seconds (nil: no limit), skipping
-- those that go to a handler and, with ignore, confirmations.
local get_message = async(function(self, timeout, ignore)
  local loop = asyncio.get_running_loop()
  local deadline = timeout and loop:time() + timeout
  while true do
    local left = deadline and math.max(0, deadline - loop:time())
    local msg = await(next_message(self, left))
    if msg == nil then return nil end
    msg = handle(self, msg, ignore)
    if msg then return msg end
  end
end)

local GET_MESSAGE_OPTS = check.option_set{"timeout",
                                          "ignore_subscribe_messages"}

--- await(ps:get_message{timeout =, ignore_subscribe_messages =}) -> the
-- next message or nil. timeout 0 (the default, as redis-py) never waits;
-- math.huge waits as long as it takes. Messages that go to a handler,
-- and ignored confirmations, are skipped.
function PubSub:get_message(o)
  check.options(o, 2, "get_message", GET_MESSAGE_OPTS)
  local timeout = o and o.timeout or 0
  if timeout == math.huge then timeout = nil end
  return get_message(self, timeout, o and o.ignore_subscribe_messages)
end

--- for msg in ps:listen() do ... end: every message, confirmations
-- included, while subscribed to anything (inside a task).
function PubSub:listen()
  return function()
    while self.subscribed or self.queue:qsize() > 0 do
      local msg = handle(self, await(next_message(self, nil)))
      if msg then return msg end
    end
    return nil
  end
end

--- Dispatches the messages of ps (see PubSub:run), polling every poll
-- seconds; errors go to on_error when there is one.
local run_handlers = async(function(self, poll, on_error)
  for kind, word in pairs{channels = "Channel", patterns = "Pattern"} do
    for name, h in pairs(self[kind]) do
      if type(h) ~= "function" then
        error(M.PubSubError(("%s: '%s' has no handler registered")
          :format(word, name)), 0)
      end
    end
  end
  while true do
    local ok, e = pcall(await, self:get_message{
      ignore_subscribe_messages = true, timeout = poll})
    if not ok then
      if is_cancel(e) or not on_error then error(e, 0) end
      local res = on_error(e, self)
      if asyncio.iscoroutine(res) or asyncio.isfuture(res) then
        await(res)
      end
    end
    await(asyncio.sleep(0))
  end
end)

local RUN_OPTS = check.option_set{"poll_timeout", "exception_handler"}

--- await(ps:run{poll_timeout = 1, exception_handler =}): hands every
-- message to its handler until cancelled; each channel and pattern
-- needs one (else redis.PubSubError). An error is raised, or given to
-- exception_handler(e, ps) (awaited if it returns an awaitable), after
-- which run() goes on (a lost connection is opened again).
function PubSub:run(o)
  check.options(o, 2, "run", RUN_OPTS)
  o = o or {}
  local run = run_handlers -- its Coroutine objects take the caller's name
  return run(self, o.poll_timeout or 1, o.exception_handler)
end

--- Closes the connection and forgets the subscriptions: the PubSub may
-- subscribe again (on a new connection), as redis-py's after reset().
local function ps_close(self)
  self.generation = self.generation + 1
  local c = self.conn
  self.conn, self.opening = nil, nil
  if c then c:close() end -- a listen() waiting gets ConnectionError
  self.channels, self.patterns = {}, {}
  self.unsub_channels, self.unsub_patterns = {}, {}
  self.subscribed = false
  self.queue = asyncio.Queue()
end

--- await(ps:close()) (also aclose, reset; <close> at once).
PubSub.close = async(ps_close)
PubSub.aclose = PubSub.close
PubSub.reset = PubSub.close
PubSub.__close = ps_close

M._Pipeline, M._PubSub, M._Script = Pipeline, PubSub, Script
M._Protocol = Protocol
M._reply_error = reply_error

return M
