--- asyncio.http: an HTTP/1.1 client in aiohttp's shape (the server is
-- asyncio.http.web).
--
--   local http = require "asyncio.http"
--   local session <close> = http.ClientSession{base_url = url}
--   local resp <close> = await(session:get("/x", {params = {q = 1}}))
--   print(resp.status, resp.headers["Content-Type"], await(resp:text()))
--
-- The wire format is parsed by libhttp_parser and heads are written in C
-- (asyncio._http, bindings/http/); the transport is asyncio's streams. A
-- session keeps idle keep-alive connections per host:port (at most
-- `limit` connections in use at once, `limit_per_host` per host). A
-- response holds its connection until its body is read, or it is
-- released/closed: then a connection whose message ended cleanly goes
-- back to the pool, any other (cancelled, broken, body unread) is closed.

local asyncio = require "asyncio"
local _http = require "asyncio._http"
local headers_mod = require "asyncio.http.headers"
local url_mod = require "asyncio.http.url"
local cookiejar = require "asyncio.http.cookiejar"

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror
local concat, insert, remove = table.concat, table.insert, table.remove
local error, ipairs, pairs, pcall, setmetatable, tostring, type =
  error, ipairs, pairs, pcall, setmetatable, tostring, type
local CIMultiDict = headers_mod.CIMultiDict

local M = {}
M.CIMultiDict = CIMultiDict
M.URL = url_mod
M.CookieJar = cookiejar.CookieJar
M.DummyCookieJar = cookiejar.DummyCookieJar

---------------------------------------------------------------------------
-- Errors (aiohttp's tree)

local ClientError = asyncio.Exception:subclass("http.ClientError")
M.ClientError = ClientError
M.ClientConnectionError =
  ClientError:subclass("http.ClientConnectionError")
M.ClientOSError = M.ClientConnectionError:subclass("http.ClientOSError")
M.ClientConnectorError =
  M.ClientOSError:subclass("http.ClientConnectorError")
-- TLS failures while connecting, as aiohttp: a certificate that does not
-- verify (`.certificate_error`: the ssl.SSLCertVerificationError, with
-- verify_code and verify_message), any other ssl.SSLError
M.ClientSSLError = M.ClientConnectorError:subclass("http.ClientSSLError")
M.ClientConnectorCertificateError =
  M.ClientSSLError:subclass("http.ClientConnectorCertificateError")
M.ClientConnectorSSLError =
  M.ClientSSLError:subclass("http.ClientConnectorSSLError")
M.ServerDisconnectedError = M.ClientConnectionError:subclass(
  "http.ServerDisconnectedError", function(e, msg)
    e.message = msg or "Server disconnected"
  end)
M.ClientPayloadError = ClientError:subclass("http.ClientPayloadError")
M.ClientResponseError = ClientError:subclass("http.ClientResponseError",
  function(e, info)
    info = type(info) == "table" and info or {message = info}
    e.status = info.status
    e.headers = info.headers
    e.request_info = info.request_info
    e.history = info.history
    e.message = ("%s, message=%q, url=%q"):format(tostring(e.status),
      tostring(info.message or ""), tostring(info.url or ""))
  end)
M.TooManyRedirects =
  M.ClientResponseError:subclass("http.TooManyRedirects")
M.InvalidURL = ClientError:subclass("http.InvalidURL", function(e, url)
  e.url = url
  e.message = tostring(url)
end)
M.ClientPayloadError = ClientError:subclass("http.ClientPayloadError")

local function is_cancel(e)
  return iserror(e) and not iserror(e, asyncio.Exception)
end
M._is_cancel = is_cancel

---------------------------------------------------------------------------
-- JSON (lua-cjson, loaded on first use)

local cjson
local function json()
  if cjson then return cjson end
  local ok, mod = pcall(require, "cjson")
  if not ok then
    error("asyncio.http: JSON needs lua-cjson (Debian: lua-cjson), "
          .. "which is not installed", 3)
  end
  cjson = mod
  return cjson
end
M._json = json

---------------------------------------------------------------------------
-- ClientTimeout

local ClientTimeout = {__name = "http.ClientTimeout"}
ClientTimeout.__index = ClientTimeout

--- ClientTimeout{total =, connect =, sock_read =, sock_connect =}: seconds
-- (nil: no bound). total bounds the whole request up to the head read;
-- connect the wait for and making of a connection; sock_read each read.
function M.ClientTimeout(t)
  if t ~= nil and type(t) ~= "table" then
    error("bad argument #1 to 'ClientTimeout' (table expected, got " ..
          type(t) .. ")", 2)
  end
  t = t or {}
  for _, k in ipairs{"total", "connect", "sock_read", "sock_connect"} do
    local v = t[k]
    if v ~= nil and (type(v) ~= "number" or v < 0) then
      error(("bad argument #1 to 'ClientTimeout' (field '%s': "
             .. "non-negative number expected)"):format(k), 2)
    end
  end
  return setmetatable({total = t.total, connect = t.connect,
    sock_read = t.sock_read, sock_connect = t.sock_connect},
    ClientTimeout)
end
local DEFAULT_TIMEOUT = M.ClientTimeout{total = 300, sock_connect = 30}

local function bounded(aw, seconds)
  if seconds then return await(asyncio.wait_for(aw, seconds)) end
  return await(aw)
end

---------------------------------------------------------------------------
-- Connections

local Connection = {}
Connection.__index = Connection

local BUFSIZE = 65536

local function new_connection(reader, writer, key)
  return setmetatable({reader = reader, writer = writer, key = key,
    parser = _http.Parser("response"), events = {}, ev = 1,
    eof = false}, Connection)
end

function Connection:close()
  if self.writer then
    self.writer:close()
    self.writer = nil
  end
end

--- The next parser event (head table, body string, true at the end of a
-- message); raises ServerDisconnectedError / ClientPayloadError.
function Connection:next_event(sock_read)
  while true do
    local ev = self.events[self.ev]
    if ev ~= nil then
      self.events[self.ev] = nil
      self.ev = self.ev + 1
      return ev
    end
    if self.eof then
      error(M.ServerDisconnectedError(), 0)
    end
    local ok, data = pcall(bounded, self.reader:read(BUFSIZE), sock_read)
    if not ok then
      if iserror(data, asyncio.TimeoutError) or is_cancel(data) then
        error(data, 0)
      end
      if iserror(data, ClientError) then error(data, 0) end
      error(M.ClientOSError(tostring(data.message or data)), 0)
    end
    self.got_bytes = true
    local events, name, desc
    if data == "" then
      self.eof = true
      events, name, desc = self.parser:feed_eof()
    else
      events, name, desc = self.parser:feed(data)
    end
    if events and name then self.rest = name end -- an upgrade's bytes
    if not events then
      self.eof = true
      if name == "HPE_INVALID_EOF_STATE" and not self.in_body then
        error(M.ServerDisconnectedError(), 0)
      end
      if self.in_body then
        error(M.ClientPayloadError(("Response payload is not completed"
          .. " (%s: %s)"):format(name, desc)), 0)
      end
      error(M.ClientResponseError{message = name .. ": " .. desc}, 0)
    end
    self.events, self.ev = events, 1
  end
end

---------------------------------------------------------------------------
-- Request bodies

local function urlencode_value(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end
M._quote = urlencode_value

--- Form fields (a name -> value table, names sorted, or a list of
-- {name, value}) as application/x-www-form-urlencoded.
local function urlencode(form)
  local parts = {}
  for i = 1, #form do
    parts[#parts + 1] = urlencode_value(form[i][1]) .. "=" ..
      urlencode_value(form[i][2])
  end
  local names = {}
  for k in pairs(form) do
    if type(k) == "string" then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = form[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do
        parts[#parts + 1] = urlencode_value(k) .. "=" .. urlencode_value(x)
      end
    else
      parts[#parts + 1] = urlencode_value(k) .. "=" .. urlencode_value(v)
    end
  end
  return concat(parts, "&")
end
M._urlencode = urlencode

---------------------------------------------------------------------------
-- ClientResponse and its content

local StreamContent = {}
StreamContent.__index = StreamContent

--- The next piece of the body, "" at its end (a plain function that
-- awaits: callable from any coroutine function running in a task).
local function piece(self)
  local resp = self.resp
  if self.buf ~= "" then
    local b = self.buf
    self.buf = ""
    return b
  end
  if resp._done then return "" end
  local conn = resp._conn
  local ok, ev = pcall(conn.next_event, conn, resp._sock_read)
  if not ok then
    resp:close()
    error(ev, 0)
  end
  if ev == true then
    resp:_finish()
    return ""
  end
  if resp._decoder then ev = resp._decoder(ev) end
  return ev
end
StreamContent._piece = async(piece)

--- The rest of the body: most bodies come in one piece, joined only
-- when there are more.
local function read_all(self)
  local first = piece(self)
  if first == "" then return first end
  local p = piece(self)
  if p == "" then return first end
  local parts = {first, p}
  while true do
    p = piece(self)
    if p == "" then return concat(parts) end
    parts[#parts + 1] = p
  end
end

local function read_some(self, n)
  if n == nil or n < 0 then return read_all(self) end
  local p = piece(self)
  if #p > n then
    self.buf = p:sub(n + 1)
    p = p:sub(1, n)
  end
  return p
end

--- read([n]) -> up to n bytes (all of the body without n); "" at the end
StreamContent.read = async(read_some)

--- readexactly(n) -> n bytes; raises asyncio.IncompleteReadError short
StreamContent.readexactly = async(function(self, n)
  local parts, got = {}, 0
  while got < n do
    local p = read_some(self, n - got)
    if p == "" then
      error(asyncio.IncompleteReadError(concat(parts), n), 0)
    end
    parts[#parts + 1] = p
    got = got + #p
  end
  return concat(parts)
end)

--- readline() -> the next line with its "\n" (the rest at the end)
StreamContent.readline = async(function(self)
  local parts = {}
  while true do
    local p = piece(self)
    if p == "" then return concat(parts) end
    local i = p:find("\n", 1, true)
    if i then
      self.buf = p:sub(i + 1)
      parts[#parts + 1] = p:sub(1, i)
      return concat(parts)
    end
    parts[#parts + 1] = p
  end
end)

--- iter_chunked(n): for chunk in resp.content:iter_chunked(n) do, in a
-- task: pieces of at most n bytes until the end.
function StreamContent:iter_chunked(n)
  return function()
    local p = read_some(self, n)
    if p ~= "" then return p end
  end
end

--- iter_any(): the pieces as they arrive
function StreamContent:iter_any()
  return function()
    local p = piece(self)
    if p ~= "" then return p end
  end
end

function StreamContent:at_eof()
  return self.buf == "" and self.resp._done
end

local ClientResponse = {__name = "http.ClientResponse"}
ClientResponse.__index = ClientResponse

--- Ends the response: its connection goes back to the session's pool
-- when the message ended cleanly, else it is closed.
function ClientResponse:_finish()
  if self._done then return end
  self._done = true
  local conn = self._conn
  self._conn = nil
  if conn then self._session:_release(conn, self._keep_alive) end
end

--- release(): gives the connection back (closed unless the body was read)
function ClientResponse:release()
  if not self._done then self:close() end
end

--- close(): closes the connection unless the body was read to its end
function ClientResponse:close()
  if self._done then return end
  self._done = true
  local conn = self._conn
  self._conn = nil
  if conn then self._session:_release(conn, false) end
end
ClientResponse.__close = ClientResponse.close
ClientResponse.__gc = ClientResponse.close

--- read() -> the whole body (kept: read, text and json may be called
-- again)
local function read_body(self)
  local body = self._body
  if body == nil then
    body = read_all(self.content)
    self._body = body
  end
  return body
end
ClientResponse.read = async(read_body)

--- text() -> the body as a string (Lua strings are bytes: no decoding)
ClientResponse.text = ClientResponse.read

--- json() -> the body decoded by lua-cjson (nil for an empty body)
ClientResponse.json = async(function(self, opts)
  local body = read_body(self)
  local ct = self.headers["content-type"] or ""
  local want = opts and opts.content_type
  if want == nil then want = "application/json" end
  if want and not ct:lower():find(want, 1, true) then
    error(M.ContentTypeError{status = self.status, url = self.url,
      message = "Attempt to decode JSON with unexpected mimetype: " ..
      ct}, 2)
  end
  if body:match("^%s*$") then return nil end
  return json().decode(body)
end)

--- raise_for_status(): raises ClientResponseError for a status >= 400
function ClientResponse:raise_for_status()
  if self.status >= 400 then
    self:release()
    error(M.ClientResponseError{status = self.status, message = self.reason,
      url = self.url, headers = self.headers, history = self.history}, 2)
  end
end

function ClientResponse:__tostring()
  return ("<ClientResponse(%s) [%d %s]>"):format(self.url, self.status,
                                                  self.reason)
end

M.ContentTypeError = M.ClientResponseError:subclass("http.ContentTypeError")

---------------------------------------------------------------------------
-- ClientSession

local ClientSession = {__name = "http.ClientSession"}
ClientSession.__index = ClientSession

--- ClientSession([{base_url =, headers =, timeout =, limit = 100,
-- limit_per_host = 0, raise_for_status = false, cookie_jar =}])
function M.ClientSession(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("bad argument #1 to 'ClientSession' (table expected, got " ..
          type(opts) .. ")", 2)
  end
  local base
  if opts.base_url then base = url_mod.parse(opts.base_url, M.InvalidURL) end
  local limit = opts.limit or 100
  return setmetatable({
    _base = base, headers = CIMultiDict(opts.headers),
    timeout = opts.timeout or DEFAULT_TIMEOUT,
    _limit = limit > 0 and asyncio.Semaphore(limit) or nil,
    _limit_per_host = opts.limit_per_host or 0, _per_host = {},
    _raise = opts.raise_for_status or false,
    cookie_jar = opts.cookie_jar or cookiejar.CookieJar(),
    _pool = {}, closed = false, _urls = {}, _nurls = 0}, ClientSession)
end

--- Gives conn back: kept idle when reusable, else closed; frees its
-- permits.
function ClientSession:_release_permits(conn)
  if conn.released then return false end
  conn.released = true
  if self._limit then self._limit:release() end
  local ph = self._per_host[conn.key]
  if ph then ph:release() end
  return true
end

function ClientSession:_release(conn, reusable)
  if not self:_release_permits(conn) then return end
  if reusable and not self.closed and conn.writer and not conn.eof and
      conn.ev > #conn.events then
    local idle = self._pool[conn.key]
    if not idle then idle = {}; self._pool[conn.key] = idle end
    idle[#idle + 1] = conn
  else
    conn:close()
  end
end

--- The `ssl` of open_connection for a request's `ssl` option, as
-- aiohttp's: nil or true verify with the system's CAs (and the host
-- name), false does not verify at all, an ssl.SSLContext is used as it is.
local no_verify
local function tls_context(opt)
  if opt == nil or opt == true then return true end
  if opt ~= false then return opt end
  if not no_verify then
    local ssl = require "asyncio.ssl"
    no_verify = ssl.create_default_context()
    no_verify.check_hostname = false
    no_verify.verify_mode = ssl.CERT_NONE
  end
  return no_verify
end

--- Takes the permits of a connection to key (the session's limit, then
-- the host's).
local function acquire(self, key)
  if self._limit then await(self._limit:acquire()) end
  if self._limit_per_host > 0 then
    local ph = self._per_host[key]
    if not ph then
      ph = asyncio.Semaphore(self._limit_per_host)
      self._per_host[key] = ph
    end
    local ok, e = pcall(await, ph:acquire())
    if not ok then
      if self._limit then self._limit:release() end
      error(e, 0)
    end
  end
end
local acquire_co = async(acquire)

--- A connection to u (a parsed URL): an idle one or a new one, with its
-- permits taken. Returns conn, reused.
function ClientSession:_connect(u, opts, timeout)
  local key = u.scheme .. "://" .. u.host .. ":" .. u.port
  if opts.ssl ~= nil and opts.ssl ~= true and
      (u.scheme == "https" or u.scheme == "wss") then
    -- a connection verified otherwise is not shared
    key = key .. " " .. tostring(opts.ssl)
  end
  if timeout.connect then
    bounded(acquire_co(self, key), timeout.connect)
  else
    acquire(self, key)
  end
  local idle = self._pool[key]
  while idle and #idle > 0 do
    local conn = remove(idle)
    if conn.writer and not conn.reader:at_eof() then
      conn.released = false
      return conn, true
    end
    conn:close()
  end
  local copts
  if u.scheme == "https" or u.scheme == "wss" then
    copts = {ssl = tls_context(opts.ssl), server_hostname = u.host}
  end
  local ok, r, w = pcall(bounded, asyncio.open_connection(u.host, u.port,
    copts), timeout.sock_connect or timeout.connect)
  if not ok then
    if self._limit then self._limit:release() end
    local ph = self._per_host[key]
    if ph then ph:release() end
    if is_cancel(r) or iserror(r, asyncio.TimeoutError) then error(r, 0) end
    local cls = M.ClientConnectorError
    if copts and iserror(r, asyncio.OSError) then
      local ssl = require "asyncio.ssl"
      if iserror(r, ssl.SSLCertVerificationError) then
        cls = M.ClientConnectorCertificateError
      elseif iserror(r, ssl.SSLError) then
        cls = M.ClientConnectorSSLError
      end
    end
    local e = cls(("Cannot connect to host %s:%d ssl:%s [%s]"):format(
      u.host, u.port, copts and "default" or "False",
      tostring(r and r.message or r)))
    e.os_error = r
    if cls == M.ClientConnectorCertificateError then
      e.certificate_error = r
    end
    e.host, e.port = u.host, u.port
    error(e, 0)
  end
  return new_connection(r, w, key), false
end

local function add_cookies_header(self, u, hdrs)
  local jar = self.cookie_jar
  if jar and jar.filter_cookies then
    local c = jar:filter_cookies(u)
    if c and c ~= "" and not hdrs:contains("Cookie") then
      hdrs:add("Cookie", c)
    end
  end
end

--- The bytes of an async file from where it stands to its end, or nil
-- when it cannot seek (a pipe); it is left where it stood.
local function file_left(f)
  local ok, size = pcall(function()
    local pos = await(f:seek("cur"))
    local size = await(f:seek("end"))
    await(f:seek("set", pos))
    return size - pos
  end)
  if ok then return size end
  if is_cancel(size) then error(size, 0) end
  return nil
end

--- The request's head fields and body (string, an iterator function
-- of pieces for a chunked body, or {size =, read = function(n)} for a
-- file of known length, sent as it is).
local function request_body(opts, hdrs)
  local body = opts.data
  if opts.json ~= nil then
    if body ~= nil then
      error("data and json parameters can not be used at the same time", 0)
    end
    body = json().encode(opts.json)
    if not hdrs:contains("Content-Type") then
      hdrs:add("Content-Type", "application/json")
    end
  elseif type(body) == "table" and getmetatable(body) == nil then
    body = urlencode(body)
    if not hdrs:contains("Content-Type") then
      hdrs:add("Content-Type", "application/x-www-form-urlencoded")
    end
  elseif body ~= nil and type(body) ~= "string" then
    local src = body
    local size = type(src) == "table" and src.seek and
      not hdrs:contains("Transfer-Encoding") and file_left(src)
    if size then -- a file that can seek: its length is known, as aiohttp
      if not hdrs:contains("Content-Length") then
        hdrs:add("Content-Length", size)
      end
      return {size = size, read = function(n)
        local piece = await(src:read(n))
        if piece == nil or piece == "" then
          error(M.ClientPayloadError(("the file ended %d bytes short of "
            .. "its Content-Length"):format(n)), 0)
        end
        return piece
      end}
    elseif type(src) == "table" and src.read then -- an async file
      body = function()
        local piece = await(src:read(65536))
        if piece ~= "" then return piece end
      end
    elseif type(src) == "function" then
      body = src
    else
      error("bad option 'data' (string, table, async file or function "
            .. "expected, got " .. type(src) .. ")", 0)
    end
    if not hdrs:contains("Transfer-Encoding") then
      hdrs:add("Transfer-Encoding", "chunked")
    end
    return body
  end
  if body ~= nil and not hdrs:contains("Content-Length") then
    hdrs:add("Content-Length", #body)
  end
  return body
end

--- Sends one request on conn and reads its head: returns the head.
local function exchange(conn, method, u, hdrs, body, sock_read)
  local target = u.path .. (u.query ~= "" and "?" .. u.query or "")
  local w = conn.writer
  if type(body) == "function" then
    w:write(_http.head(method .. " " .. target .. " HTTP/1.1", hdrs))
    while true do
      local piece = body()
      if piece == nil then break end
      if piece ~= "" then
        w:write(_http.chunk(piece))
        await(w:drain())
      end
    end
    w:write(_http.chunk(""))
  elseif type(body) == "table" then -- a file of known length
    w:write(_http.head(method .. " " .. target .. " HTTP/1.1", hdrs))
    local left = body.size
    while left > 0 do
      local piece = body.read(left < 65536 and left or 65536)
      if #piece > left then piece = piece:sub(1, left) end
      left = left - #piece
      w:write(piece)
      await(w:drain())
    end
  else
    w:write(_http.head(method .. " " .. target .. " HTTP/1.1", hdrs, body))
  end
  await(w:drain())
  if method == "HEAD" then conn.parser:skip_body(true) end
  while true do
    local head = conn:next_event(sock_read)
    if type(head) == "table" then
      if head.status >= 200 or head.status == 101 then return head end
      -- an interim response (100 Continue): its end comes at once
      local done = conn:next_event(sock_read)
      if done ~= true then
        error(M.ClientResponseError{message = "bad interim response"}, 0)
      end
    end
  end
end

local function content_decoder(enc)
  if not enc then return nil end
  enc = enc:lower()
  if enc ~= "gzip" and enc ~= "deflate" then return nil end
  local z = _http.Inflater(enc)
  return function(piece)
    local ok, out = pcall(z.feed, z, piece)
    if not ok then
      error(M.ClientPayloadError("Can not decode content-encoding: " ..
                                 enc .. " (" .. tostring(out) .. ")"), 0)
    end
    return out
  end
end

--- One request/response without redirects: a ClientResponse with its
-- head read.
function ClientSession:_send(method, u, opts, hdrs, body, timeout, history)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local conn, reused = self:_connect(u, opts, timeout)
    conn.got_bytes = false
    local ok, head = pcall(exchange, conn, method, u, hdrs, body,
                           timeout.sock_read)
    if ok then
      -- at most 16 fields: the table's hash part stays at 16 slots
      local hh = head.headers
      local resp = setmetatable({
        status = head.status, reason = head.reason, method = method,
        url = u.str or url_mod.format(u), _url = u,
        version = {head.major, head.minor},
        headers = headers_mod.wrap(hh), history = history,
        _session = self, _conn = conn, _sock_read = timeout.sock_read,
        _keep_alive = head.keep_alive and not head.upgrade,
        _done = false, content = false,
        _decoder = content_decoder(rawget(hh, "content-encoding"))},
        ClientResponse)
      resp.content = setmetatable({resp = resp, buf = ""}, StreamContent)
      conn.in_body = true
      return resp
    end
    self:_release(conn, false)
    -- a kept connection the server had closed: once more, on a new one
    if not (reused and not conn.got_bytes and attempt == 1 and
            (body == nil or type(body) == "string") and
            (iserror(head, M.ServerDisconnectedError) or
             iserror(head, M.ClientOSError) or
             iserror(head, asyncio.ConnectionError))) then
      if not iserror(head, asyncio.TimeoutError) and
          not iserror(head, ClientError) and
          (iserror(head, asyncio.ConnectionError) or
           iserror(head, asyncio.OSError)) then
        error(M.ClientOSError(tostring(head.message or head)), 0)
      end
      error(head, 0)
    end
  end
end

local REDIRECTS = {[301] = true, [302] = true, [303] = true, [307] = true,
                   [308] = true}

--- url parsed against the session's base_url; the parsed URLs of string
-- URLs are kept (at most URL_CACHE of them), so they are never changed:
-- callers copy one before changing it.
local URL_CACHE = 64

function ClientSession:_url(url)
  local cache = self._urls
  local u = cache[url]
  if u then return u end
  u = url_mod.join(self._base, url, M.InvalidURL)
  if type(url) == "string" then
    u.str = url_mod.format(u)
    if self._nurls >= URL_CACHE then
      cache = {}
      self._urls, self._nurls = cache, 0
    end
    cache[url] = u
    self._nurls = self._nurls + 1
  end
  return u
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

--- The fields every request of the session sends unless its own headers
-- say otherwise: the session's headers, then the defaults they lack, as
-- a flat list {name1, value1, ...} with the lower-cased names in `names`
-- (made again when session.headers changed).
local function same_list(a, b)
  local n = #a
  if n ~= #b then return false end
  for i = 1, n do
    if a[i] ~= b[i] then return false end
  end
  return true
end

--- Adds to the CIMultiDict h the fields a request carries unless the
-- caller set them: Accept, Accept-Encoding (when zlib is there) and
-- User-Agent.
local function add_default_fields(h)
  if not h:contains("Accept") then h:add("Accept", "*/*") end
  if not h:contains("Accept-Encoding") and _http.Inflater then
    h:add("Accept-Encoding", "gzip, deflate")
  end
  if not h:contains("User-Agent") then
    h:add("User-Agent", "luaio-http/0.1")
  end
end

function ClientSession:_fields()
  local f = self._fixed
  if f and same_list(f.session, self.headers) then return f end
  local h = CIMultiDict()
  h:extend(self.headers)
  add_default_fields(h)
  f = {names = {}, session = table.move(self.headers, 1, #self.headers, 1,
                                        {})}
  for i = 1, #h, 2 do
    f[i], f[i + 1] = h[i], h[i + 1]
    f.names[#f.names + 1] = h[i]:lower()
  end
  self._fixed = f
  return f
end

--- The head fields of a request to u: Host, then the session's and the
-- request's headers, then the defaults (a CIMultiDict).
function ClientSession:_head_fields(u, opts)
  if opts.headers == nil then
    local f = self:_fields()
    local hdrs = {"Host", u.host_header, host = u.host_header}
    local n = #f
    table.move(f, 1, n, 3, hdrs)
    local names = f.names
    for i = 1, #names do
      local key = names[i]
      if hdrs[key] == nil then hdrs[key] = f[2 * i] end
    end
    return headers_mod.wrap(hdrs)
  end
  local hdrs = CIMultiDict()
  hdrs:add("Host", u.host_header)
  hdrs:extend(self.headers)
  local extra = CIMultiDict(opts.headers)
  for name, value in extra:items() do hdrs:set(name, value) end
  add_default_fields(hdrs)
  return hdrs
end

function ClientSession:_request(method, url, opts)
  local u = self:_url(url)
  if opts.params then
    u = copy(u)
    u.str = nil
    local q = type(opts.params) == "string" and opts.params or
      urlencode(opts.params)
    if q ~= "" then
      u.query = u.query ~= "" and (u.query .. "&" .. q) or q
    end
  end
  local timeout = opts.timeout or self.timeout
  local history = {}
  local max_redirects = opts.max_redirects or 10
  local allow = opts.allow_redirects
  if allow == nil then allow = true end
  while true do
    local hdrs = self:_head_fields(u, opts)
    add_cookies_header(self, u, hdrs)
    local body = request_body(opts, hdrs)
    local resp = self:_send(method, u, opts, hdrs, body, timeout, history)
    local jar = self.cookie_jar
    if jar and jar.update_cookies and
        rawget(resp.headers, "set-cookie") ~= nil then
      jar:update_cookies(resp.headers:getall("Set-Cookie"), u)
    end
    local loc = resp.headers["location"]
    if not (allow and REDIRECTS[resp.status] and loc) then
      return resp
    end
    history[#history + 1] = resp
    if #history > max_redirects then
      resp:release()
      error(M.TooManyRedirects{status = resp.status, message = resp.reason,
        url = resp.url, history = history}, 0)
    end
    await(resp:read())
    local nu = url_mod.join(u, loc, M.InvalidURL)
    if resp.status == 303 and method ~= "HEAD" or
        (resp.status == 301 or resp.status == 302) and method == "POST" then
      method = "GET"
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      o.data, o.json = nil, nil
      opts = o
    end
    if nu.host ~= u.host or nu.port ~= u.port then
      -- credentials do not follow to another origin
      if opts.headers then
        local o = {}
        for k, v in pairs(opts) do o[k] = v end
        o.headers = CIMultiDict(opts.headers)
        o.headers:set("Authorization", nil)
        opts = o
      end
    end
    u = nu
  end
end

--- request(method, url [, opts]) -> Coroutine -> ClientResponse with its
-- head read; opts: params, headers, data, json, allow_redirects,
-- max_redirects, timeout, raise_for_status, ssl.
local NO_OPTS = {}

--- A request's `total` bound, as asyncio.timeout(seconds) in the calling
-- task, with less made per request: on expiry the task is cancelled;
-- leaving the scope with that cancellation (and no other one pending
-- since it was entered) raises TimeoutError instead.
local Deadline = {__name = "http.Deadline"}
Deadline.__index = Deadline

local function expire(d)
  d.handle = nil
  d.expired = true
  d.task:cancel()
end

function Deadline:__close(err)
  local h = self.handle
  if h then
    self.handle = nil
    h:cancel()
  end
  if self.expired and self.task:uncancel() <= self.cancelling and
      err ~= nil and iserror(err, asyncio.CancelledError) then
    local te = asyncio.TimeoutError()
    te.cause = err
    error(te, 0)
  end
end

local function deadline(seconds)
  local loop = asyncio.get_running_loop()
  local task = asyncio.current_task(loop)
  local d = setmetatable({task = task, cancelling = task:cancelling(),
                          expired = false, handle = false}, Deadline)
  d.handle = loop:call_later(seconds, expire, d)
  return d
end

local do_request = async(function(self, method, url, opts)
  opts = opts or NO_OPTS
  local timeout = opts.timeout or self.timeout
  local resp
  if timeout.total then
    local _ <close> = deadline(timeout.total)
    resp = self:_request(method:upper(), url, opts)
  else
    resp = self:_request(method:upper(), url, opts)
  end
  local raise = opts.raise_for_status
  if raise == nil then raise = self._raise end
  if raise then resp:raise_for_status() end
  return resp
end)

function ClientSession.request(self, method, url, opts)
  if getmetatable(self) ~= ClientSession then
    error("bad argument #1 to 'request' (ClientSession expected)", 2)
  end
  if type(method) ~= "string" then
    error("bad argument #2 to 'request' (string expected, got " ..
          type(method) .. ")", 2)
  end
  if type(url) ~= "string" and not (type(url) == "table" and url.host) then
    error("bad argument #3 to 'request' (string expected, got " ..
          type(url) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #4 to 'request' (table expected, got " ..
          type(opts) .. ")", 2)
  end
  if self.closed then error(asyncio.RuntimeError("Session is closed"), 2) end
  return do_request(self, method, url, opts)
end

for _, m in ipairs{"get", "post", "put", "patch", "delete", "head",
                   "options"} do
  local METHOD = m:upper()
  ClientSession[m] = function(self, url, opts)
    return self:request(METHOD, url, opts)
  end
end

--- close() -> Coroutine: closes the idle connections; the session can
-- not be used again.
ClientSession.close = async(function(self)
  self.closed = true
  for _, idle in pairs(self._pool) do
    for _, conn in ipairs(idle) do conn:close() end
  end
  self._pool = {}
end)

function ClientSession:__close()
  self.closed = true
  for _, idle in pairs(self._pool) do
    for _, conn in ipairs(idle) do conn:close() end
  end
  self._pool = {}
end

--- request(method, url [, opts]) -> Coroutine -> ClientResponse whose
-- body is read (aiohttp.request): a session of its own, closed after.
M.request = async(function(method, url, opts)
  local s = M.ClientSession()
  local ok, resp = pcall(await, s:request(method, url, opts))
  if ok then
    ok, resp = pcall(function() await(resp:read()) return resp end)
  end
  s:__close()
  if not ok then error(resp, 0) end
  return resp
end)

---------------------------------------------------------------------------
-- WebSockets

local ws_mod = require "asyncio.http.ws"
M.WSMsgType = ws_mod.WSMsgType
M.WSServerHandshakeError = M.ClientResponseError:subclass(
  "http.WSServerHandshakeError")
M.WSCloseCode = ws_mod.WSCloseCode
M.WebSocketError = ws_mod.WebSocketError

local function has_token(value, token)
  for t in (value or ""):gmatch("[^,]+") do
    if t:match("^%s*(.-)%s*$"):lower() == token then return true end
  end
  return false
end

--- ws_connect(url [, {headers =, protocols = {...}, heartbeat =,
-- autoping = true, autoclose = true, receive_timeout =, max_msg_size =
-- 4 MiB, timeout = 10 (close's wait; a ClientTimeout bounds the
-- handshake instead), origin =, ssl =}]) -> Coroutine -> a WebSocket (see
-- asyncio.http.ws; ws.protocol the subprotocol the server chose among
-- protocols): the connection leaves the pool for good.
ClientSession.ws_connect = async(function(self, url, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'ws_connect' (table expected, got " ..
          type(opts) .. ")", 2)
  end
  opts = opts or {}
  ws_mod.check_opts(opts, "ws_connect")
  local key = _http.ws_key()
  local hdrs = CIMultiDict(opts.headers)
  hdrs:set("Upgrade", "websocket")
  hdrs:set("Connection", "Upgrade")
  hdrs:set("Sec-WebSocket-Key", key)
  hdrs:set("Sec-WebSocket-Version", "13")
  if opts.protocols and #opts.protocols > 0 then
    hdrs:set("Sec-WebSocket-Protocol", table.concat(opts.protocols, ","))
  end
  if opts.origin then hdrs:set("Origin", tostring(opts.origin)) end
  local resp = await(self:request("GET", url, {headers = hdrs,
    allow_redirects = false, timeout = type(opts.timeout) == "table" and
    opts.timeout or nil, ssl = opts.ssl}))
  local function fail(message)
    resp:close()
    error(M.WSServerHandshakeError{status = resp.status, message = message,
      url = resp.url, headers = resp.headers}, 0)
  end
  if resp.status ~= 101 then fail("Invalid response status") end
  if (resp.headers["upgrade"] or ""):lower() ~= "websocket" then
    fail("Invalid upgrade header")
  end
  if not has_token(resp.headers["connection"], "upgrade") then
    fail("Invalid connection header")
  end
  if resp.headers["sec-websocket-accept"] ~= _http.ws_accept(key) then
    fail("Invalid challenge response")
  end
  local protocol = ws_mod.choose_protocol(
    resp.headers["sec-websocket-protocol"], opts.protocols)
  local conn = resp._conn
  resp._conn, resp._done = nil, true
  self:_release_permits(conn)
  return ws_mod.new(conn.reader, conn.writer, {client = true,
    rest = conn.rest, max_msg_size = opts.max_msg_size,
    heartbeat = opts.heartbeat, autoping = opts.autoping,
    autoclose = opts.autoclose, receive_timeout = opts.receive_timeout,
    timeout = opts.timeout, protocol = protocol})
end)

M._ClientResponse = ClientResponse
M._ClientSession = ClientSession
return M
