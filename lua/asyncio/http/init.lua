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
local check = require "asyncio.check"
local headers_mod = require "asyncio.http.headers"
local url_mod = require "asyncio.http.url"
local cookiejar = require "asyncio.http.cookiejar"
local mimetypes = require "asyncio.http.mimetypes"

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror
local concat, remove = table.concat, table.remove
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
local add_base = require("asyncio.errors").add_base
-- aiohttp's ClientOSError is also an OSError, and so are the connector
-- errors under it
add_base(M.ClientOSError, asyncio.OSError)
M.ClientConnectorError =
  M.ClientOSError:subclass("http.ClientConnectorError")
-- a proxy that could not be reached
M.ClientProxyConnectionError =
  M.ClientConnectorError:subclass("http.ClientProxyConnectionError")
-- TLS failures while connecting, as aiohttp: a certificate that does not
-- verify (`.certificate_error`: the ssl.SSLCertVerificationError, with
-- verify_code and verify_message), any other ssl.SSLError
M.ClientSSLError = M.ClientConnectorError:subclass("http.ClientSSLError")
M.ClientConnectorCertificateError =
  M.ClientSSLError:subclass("http.ClientConnectorCertificateError")
M.ClientConnectorSSLError =
  M.ClientSSLError:subclass("http.ClientConnectorSSLError")
M.ServerConnectionError =
  M.ClientConnectionError:subclass("http.ServerConnectionError")
M.ServerDisconnectedError = M.ServerConnectionError:subclass(
  "http.ServerDisconnectedError", function(e, msg)
    e.message = msg or "Server disconnected"
  end)
-- A read over sock_read, or a connection not made within connect /
-- sock_connect. As aiohttp's, it is both a ServerConnectionError and an
-- asyncio.TimeoutError.
M.ServerTimeoutError =
  M.ServerConnectionError:subclass("http.ServerTimeoutError")
add_base(M.ServerTimeoutError, asyncio.TimeoutError)
-- aiohttp 3.10's subclasses: a connection not made within connect /
-- sock_connect, a read over sock_read
M.ConnectionTimeoutError =
  M.ServerTimeoutError:subclass("http.ConnectionTimeoutError")
M.SocketTimeoutError =
  M.ServerTimeoutError:subclass("http.SocketTimeoutError")
M.ClientPayloadError = ClientError:subclass("http.ClientPayloadError")

--- s as Python's repr of a str: single quotes, double ones when s holds
-- a single quote and no double quote.
local function py_repr(s)
  s = tostring(s)
  local q = (s:find("'", 1, true) and not s:find('"', 1, true)) and '"'
    or "'"
  return q .. s:gsub("\\", "\\\\"):gsub(q, "\\" .. q) .. q
end
M._py_repr = py_repr

--- ClientResponseError{status =, message =, request_info =, history =,
-- headers =}, as aiohttp's: message is the reason alone ("Not Found"),
-- status 0 unless given, request_info the {method, url, real_url,
-- headers} of the request; tostring gives aiohttp's str after the class
-- name: "http.ClientResponseError: 404, message='Not Found', url='...'".
local function response_error_init(e, info)
  info = type(info) == "table" and info or {message = info}
  e.status = info.status or 0
  e.message = info.message ~= nil and tostring(info.message) or ""
  e.request_info = info.request_info
  e.history = info.history or {}
  e.headers = info.headers
end

local function response_error_tostring(e)
  local ri = e.request_info
  return ("%s: %s, message=%s, url=%s"):format(getmetatable(e).__name,
    tostring(e.status), py_repr(e.message),
    py_repr(ri and ri.real_url or ""))
end

local function response_error_class(name, base)
  local cls = base:subclass(name, response_error_init)
  cls.__tostring = response_error_tostring
  return cls
end
M._response_error_class = response_error_class

M.ClientResponseError =
  response_error_class("http.ClientResponseError", ClientError)
M.ContentTypeError =
  response_error_class("http.ContentTypeError", M.ClientResponseError)
-- a proxy that refused to open a tunnel (its status and reason)
M.ClientHttpProxyError =
  response_error_class("http.ClientHttpProxyError", M.ClientResponseError)
M.TooManyRedirects =
  response_error_class("http.TooManyRedirects", M.ClientResponseError)
M.InvalidURL = ClientError:subclass("http.InvalidURL", function(e, url)
  e.url = url
  e.message = tostring(url)
end)
add_base(M.InvalidURL, asyncio.ValueError) -- as aiohttp's
--- Invalid JSON in json() (aiohttp: json.JSONDecodeError, a ValueError)
M.JSONDecodeError = asyncio.ValueError:subclass("http.JSONDecodeError")

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

--- v with its integral floats made integers, in place: lua-cjson reads
-- every JSON number as a float, where Python's json gives int for 1
-- (and float for 1.5). So 1.0 in the text becomes 1 too.
local function integers(v)
  local t = type(v)
  if t == "number" then return math.tointeger(v) or v end
  if t ~= "table" then return v end
  for k, x in pairs(v) do
    local tx = type(x)
    if tx == "number" then
      local i = math.tointeger(x)
      if i then v[k] = i end
    elseif tx == "table" then
      integers(x)
    end
  end
  return v
end

--- decode_exact(s) -> the value of the JSON text s, read by Lua: for a
-- text with an integer of 16 digits or more, which lua-cjson reads as
-- the float nearest to it (1234567890123456789 comes back ...768). Every
-- integer that fits 64 bits stays exact, as Python's int. Raises a plain
-- error for invalid JSON (the caller then asks lua-cjson, for its
-- message).
local decode_exact
do
  local find, sub, byte, char = string.find, string.sub, string.byte,
    utf8.char
  local ESCAPES = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b",
                   f = "\f", n = "\n", r = "\r", t = "\t"}
  local value

  local function skip(s, i)
    return find(s, "[^ \t\r\n]", i) or #s + 1
  end

  local function str(s, i) -- s:sub(i, i) is the opening quote
    local out, j = {}, i + 1
    while true do
      local k = find(s, '["\\%c]', j)
      if not k then error("unterminated string", 0) end
      out[#out + 1] = sub(s, j, k - 1)
      local c = sub(s, k, k)
      if c == '"' then return table.concat(out), k + 1 end
      if c ~= "\\" then error("control character in a string", 0) end
      local e = sub(s, k + 1, k + 1)
      if e == "u" then
        local hex = sub(s, k + 2, k + 5)
        if not find(hex, "^%x%x%x%x$") then error("bad \\u escape", 0) end
        local cp = tonumber(hex, 16)
        j = k + 6
        if cp >= 0xD800 and cp < 0xDC00 and
            find(s, "^\\u[dD][c-fC-F]%x%x", j) then -- a surrogate pair
          cp = 0x10000 + (cp - 0xD800) * 0x400 +
            (tonumber(sub(s, j + 2, j + 5), 16) - 0xDC00)
          j = j + 6
        end
        out[#out + 1] = char(cp)
      elseif ESCAPES[e] then
        out[#out + 1] = ESCAPES[e]
        j = k + 2
      else
        error("bad escape", 0)
      end
    end
  end

  local function num(s, i)
    local j = select(2, find(s, "^-?%d+", i))
    if not j or find(s, "^-?0%d", i) then error("bad number", 0) end
    local e = select(2, find(s, "^%.%d+", j + 1))
    if e then j = e end
    e = select(2, find(s, "^[eE][+-]?%d+", j + 1))
    if e then j = e end
    local v = tonumber(sub(s, i, j))
    return math.tointeger(v) or v, j + 1
  end

  local function container(s, i, depth, close, item)
    if depth > 1000 then error("too deep", 0) end
    local t, n = {}, 0
    i = skip(s, i + 1)
    if sub(s, i, i) == close then return t, i + 1 end
    while true do
      n = n + 1
      i = item(s, i, t, n, depth)
      i = skip(s, i)
      local c = sub(s, i, i)
      if c == close then return t, i + 1 end
      if c ~= "," then error("expected , or " .. close, 0) end
      i = skip(s, i + 1)
    end
  end

  local function array_item(s, i, t, n, depth)
    local v
    v, i = value(s, i, depth + 1)
    t[n] = v
    return i
  end

  local function object_item(s, i, t, _, depth)
    if sub(s, i, i) ~= '"' then error("expected a key", 0) end
    local k
    k, i = str(s, i)
    i = skip(s, i)
    if sub(s, i, i) ~= ":" then error("expected :", 0) end
    local v
    v, i = value(s, skip(s, i + 1), depth + 1)
    t[k] = v
    return i
  end

  local LITERALS = {t = {"true", true}, f = {"false", false},
                    n = {"null", _http.null}}

  value = function(s, i, depth)
    local c = sub(s, i, i)
    if c == "{" then return container(s, i, depth, "}", object_item) end
    if c == "[" then return container(s, i, depth, "]", array_item) end
    if c == '"' then return str(s, i) end
    local lit = LITERALS[c]
    if lit then
      if sub(s, i, i + #lit[1] - 1) ~= lit[1] then error("bad token", 0) end
      return lit[2], i + #lit[1]
    end
    if c == "-" or (byte(c) or 0) >= 48 and (byte(c) or 0) <= 57 then
      return num(s, i)
    end
    error("expected a value", 0)
  end

  decode_exact = function(s)
    local v, i = value(s, skip(s, 1), 1)
    if skip(s, i) <= #s then error("extra data", 0) end
    return v
  end
end

--- decode_json(s) -> the value of the JSON text s, numbers without a
-- fraction as integers (see integers); invalid JSON raises
-- http.JSONDecodeError (a ValueError, as Python's) with lua-cjson's
-- message, for every json method that decodes by default. A text with
-- an integer of 16 digits or more is read by decode_exact, which keeps
-- its digits.
function M._decode_json(s)
  if type(s) == "string" and
      s:find("%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d") then
    local ok, v = pcall(decode_exact, s)
    if ok then return v end
  end
  local ok, v = pcall(json().decode, s)
  if not ok then
    error(M.JSONDecodeError((tostring(v):gsub("^[^:]*:%d+: ", ""))), 2)
  end
  return integers(v)
end

--- Whether lua-cjson would write the number x otherwise than exactly:
-- it writes every number with 14 significant digits, so an integer of
-- 15 digits or more becomes a float (1e+14) and 0.1 + 0.2 becomes 0.3.
local function inexact(x)
  if math.type(x) == "integer" then
    return x >= 100000000000000 or x <= -100000000000000
  end
  return x == x and x - x == 0 and tonumber(("%.14g"):format(x)) ~= x
end

--- Whether v holds such a number (as a value or a key), looked for as
-- deep as lua-cjson encodes (1000 levels).
local function has_inexact(v, depth)
  local t = type(v)
  if t == "number" then return inexact(v) end
  if t ~= "table" or depth > 1000 then return false end
  for k, x in pairs(v) do
    if type(k) == "number" and inexact(k) or has_inexact(x, depth + 1) then
      return true
    end
  end
  return false
end

--- A number as JSON, exactly: an integer's digits, a float's shortest
-- form that reads back as it (Python's repr writes the same digits).
local function number_json(x)
  if math.type(x) == "integer" then return ("%d"):format(x) end
  if x ~= x or x - x ~= 0 then
    error("Cannot serialise number: must not be NaN or Inf", 0)
  end
  for digits = 14, 16 do
    local s = ("%." .. digits .. "g"):format(x)
    if tonumber(s) == x then return s end
  end
  return ("%.17g"):format(x)
end

--- v as lua-cjson encodes it (its array and object rules, its strings),
-- but with its numbers exact (number_json). For the values has_inexact
-- finds: lua-cjson does the others.
local function encode_exact(v, depth)
  local t = type(v)
  if t == "number" then return number_json(v) end
  if t ~= "table" then return json().encode(v) end
  if depth > 1000 then
    error(("Cannot serialise, excessive nesting (%d)"):format(depth), 0)
  end
  local max, items, array = 0, 0, true
  for k in pairs(v) do
    items = items + 1
    if array and math.type(k) == "integer" and k >= 1 then
      if k > max then max = k end
    else
      array = false
    end
  end
  local out = {}
  if array and items > 0 then
    if max > items * 2 and max > 10 then
      error("Cannot serialise table: excessively sparse array", 0)
    end
    for i = 1, max do
      local x = v[i]
      out[i] = x == nil and "null" or encode_exact(x, depth + 1)
    end
    return "[" .. concat(out, ",") .. "]"
  end
  for k, x in pairs(v) do
    local tk = type(k)
    if tk == "number" then
      k = number_json(k)
    elseif tk ~= "string" then
      error(("Cannot serialise %s: table key must be a number or string")
            :format(tk), 0)
    end
    out[#out + 1] = json().encode(k) .. ":" .. encode_exact(x, depth + 1)
  end
  return "{" .. concat(out, ",") .. "}"
end

--- encode_json(v) -> the JSON text of v: lua-cjson's, unless v holds a
-- number lua-cjson would not write exactly (an integer of 15 digits or
-- more, a float that needs 15 to 17): then the same text with that
-- number's own digits, as Python's json writes it. Raises lua-cjson's
-- errors (a function, NaN, an excessively sparse array ...).
function M._encode_json(v)
  if has_inexact(v, 1) then return encode_exact(v, 1) end
  return json().encode(v)
end

--- _dumps(v [, dumps [, level]]) -> the JSON text of v, by dumps or
-- _encode_json. A value JSON cannot hold raises what Python's json.dumps
-- raises: TypeError "Object of type function is not JSON serializable";
-- ValueError "Out of range float values are not JSON compliant" for NaN
-- or an infinity; ValueError with lua-cjson's message for the rest (an
-- excessively sparse array, a table nested too deep). An error object
-- dumps raises goes through as it is, another error of its becomes a
-- ValueError. level as error's (0: no position), from _dumps's caller.
function M._dumps(v, dumps, level)
  local ok, s = pcall(dumps or M._encode_json, v)
  if ok then return s end
  if iserror(s) then error(s, 0) end
  level = level and level > 0 and level + 1 or 0
  local msg = tostring(s):gsub("^[^:]*:%d+: ", "")
  local kind = msg:match("^Cannot serialise (%a+): type not supported")
  if kind then
    error(asyncio.TypeError(("Object of type %s is not JSON serializable")
                            :format(kind)), level)
  elseif msg:find("must not be NaN or Inf", 1, true) then
    error(asyncio.ValueError("Out of range float values are not JSON "
                             .. "compliant"), level)
  end
  error(asyncio.ValueError(msg), level)
end

--- JSON's null as the decoders give it (lua-cjson's cjson.null, a light
-- userdata): `v == http.null`. It is a true value, unlike Python's None.
M.null = _http.null

--- The loads option of the json methods (aiohttp's): a function that
-- decodes the text, or nil for the default; argument n of fname.
function M._check_loads(loads, n, fname)
  return M._check_codec(loads, "loads", n, fname, 3) or M._decode_json
end

--- f, the option `option` (loads, dumps) of argument #n of fname (self
-- counted: a method call names it #n-1, as check.argerror does): a
-- callable or nil, checked. `level` is 2 when fname calls this function
-- (the default), one more for each function in between; the error
-- blames fname's caller.
function M._check_codec(f, option, n, fname, level)
  if f ~= nil and not check.is_callable(f) then
    check.argerror(n, fname, ("option '%s': function expected, got %s")
      :format(option, type(f)), level or 2)
  end
  return f
end

---------------------------------------------------------------------------
-- ClientTimeout

local ClientTimeout = {__name = "http.ClientTimeout"}
ClientTimeout.__index = ClientTimeout

local TIMEOUTS = {"total", "connect", "sock_read", "sock_connect"}
local TIMEOUT_OPTS = check.option_set(TIMEOUTS)

--- ClientTimeout{total =, connect =, sock_read =, sock_connect =}: seconds
-- (nil: no bound). total bounds the whole request, its body read too;
-- connect the wait for and making of a connection; sock_read each read.
function M.ClientTimeout(t)
  t = check.options(t, 1, "ClientTimeout", TIMEOUT_OPTS) or {}
  for _, k in ipairs(TIMEOUTS) do
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

--- The ClientTimeout of a `timeout` option: a number is the total, as
-- aiohttp 3.8 takes it.
local function as_timeout(t)
  if type(t) == "number" then return M.ClientTimeout{total = t} end
  return t
end

--- The bounds a ClientTimeout t sets: its fields, a 0 left out (no
-- bound), as aiohttp's ("None or 0 disables a particular timeout check").
local function bounds(t)
  if t.total ~= 0 and t.connect ~= 0 and t.sock_read ~= 0 and
      t.sock_connect ~= 0 then
    return t -- the common case, without a copy
  end
  local b = {}
  for _, k in ipairs(TIMEOUTS) do
    if t[k] ~= 0 then b[k] = t[k] end
  end
  return b
end

local function bounded(aw, seconds)
  if seconds then return await(asyncio.wait_for(aw, seconds)) end
  return await(aw)
end

---------------------------------------------------------------------------
-- BasicAuth

local base64 = _http.base64 -- RFC 4648, padded (bindings/http/ws.c)

--- s (UTF-8) in latin-1, as Python's str.encode("latin1"); a string that
-- is not UTF-8 is taken as latin-1 bytes already.
local function latin1(s)
  if not s:find("[\128-\255]") or not utf8.len(s) then return s end
  local out = {}
  for _, cp in utf8.codes(s) do
    if cp > 255 then
      error(asyncio.ValueError(("'latin-1' codec can't encode character "
        .. "U+%04X"):format(cp)), 0)
    end
    out[#out + 1] = string.char(cp)
  end
  return concat(out)
end

local BasicAuth = {__name = "http.BasicAuth"}
BasicAuth.__index = BasicAuth
local ENCODINGS = {latin1 = "latin1", ["latin-1"] = "latin1",
  ["iso-8859-1"] = "latin1", ["utf-8"] = "utf-8", utf8 = "utf-8"}

--- BasicAuth(login [, password = "" [, encoding = "latin1"]]): HTTP Basic
-- credentials, as aiohttp's (a ":" in login raises ValueError). With
-- "latin1" the UTF-8 strings are sent in latin-1, as aiohttp; "utf-8"
-- sends their bytes as they are.
local function new_basic_auth(_, login, password, encoding)
  check.type(login, 1, "BasicAuth", "string")
  check.type(password, 2, "BasicAuth", "string", true)
  if encoding ~= nil and not ENCODINGS[tostring(encoding):lower()] then
    error("bad argument #3 to 'BasicAuth' ('latin1' or 'utf-8' expected)",
          2)
  end
  if login:find(":", 1, true) then
    error(asyncio.ValueError('A ":" is not allowed in login (RFC 1945#'
      .. 'section-11.1)'), 2)
  end
  return setmetatable({login = login, password = password or "",
    encoding = encoding or "latin1"}, BasicAuth)
end
setmetatable(BasicAuth, {__call = new_basic_auth})
M.BasicAuth = BasicAuth

--- auth:encode() -> "Basic <base64 of login:password>"
function BasicAuth:encode()
  local creds = self.login .. ":" .. self.password
  if ENCODINGS[self.encoding:lower()] == "latin1" then
    creds = latin1(creds)
  end
  return "Basic " .. base64(creds)
end

--- BasicAuth.from_url(url [, encoding]) -> the BasicAuth of the
-- credentials in url (a string or parsed URL), nil when it has none
function BasicAuth.from_url(url, encoding)
  local u = url_mod.parse(url, M.InvalidURL)
  if u.user == nil then return nil end
  return new_basic_auth(nil, u.user, u.password or "", encoding)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_VALUE = {}
for i = 1, 64 do B64_VALUE[B64:byte(i)] = i - 1 end

--- s decoded from padded base64 (RFC 4648), or nil when it is not that
-- (Python's b64decode with validate=True).
local function unbase64(s)
  if #s % 4 ~= 0 or not s:find("^[%w+/]*=?=?$") then return nil end
  local out = {}
  for i = 1, #s, 4 do
    local a, b, c, d = s:byte(i, i + 3) -- "=" (61) only in c and d
    local pad = (c == 61 and 1 or 0) + (d == 61 and 1 or 0)
    local n = B64_VALUE[a] << 18 | B64_VALUE[b] << 12
      | (B64_VALUE[c] or 0) << 6 | (B64_VALUE[d] or 0)
    local bytes = string.char(n >> 16 & 255, n >> 8 & 255, n & 255)
    out[#out + 1] = bytes:sub(1, 3 - pad)
  end
  return concat(out)
end

--- latin-1 bytes as UTF-8 (the Lua strings of this API are UTF-8 text).
local function from_latin1(s)
  return (s:gsub("[\128-\255]", function(c) return utf8.char(c:byte()) end))
end

--- BasicAuth.decode(header [, encoding = "latin1"]) -> the BasicAuth of
-- an Authorization header value ("Basic <base64>"), as aiohttp's;
-- ValueError for another scheme, bad base64 or no ":" in the credentials.
function BasicAuth.decode(header, encoding)
  check.type(header, 1, "decode", "string")
  local kind = ENCODINGS[tostring(encoding or "latin1"):lower()]
  if not kind then
    error("bad argument #2 to 'decode' ('latin1' or 'utf-8' expected)", 2)
  end
  local scheme, creds = header:match("^(%S+) (.*)$")
  if not scheme then
    error(asyncio.ValueError("Could not parse authorization header."), 2)
  end
  if scheme:lower() ~= "basic" then
    error(asyncio.ValueError("Unknown authorization method " .. scheme), 2)
  end
  local plain = unbase64(creds)
  if not plain then error(asyncio.ValueError("Invalid base64 encoding."), 2) end
  if kind == "latin1" then
    plain = from_latin1(plain)
  elseif not utf8.len(plain) then
    error(asyncio.ValueError("Invalid credentials."), 2)
  end
  local login, password = plain:match("^([^:]*):(.*)$")
  if not login then error(asyncio.ValueError("Invalid credentials."), 2) end
  return new_basic_auth(nil, login, password, encoding)
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
-- message). Raises ServerDisconnectedError, ClientPayloadError, a
-- ClientResponseError (status 400) for a malformed head,
-- ServerTimeoutError when a read takes over sock_read seconds and
-- asyncio.TimeoutError past `deadline` (a loop time: the request's
-- total bound).
function Connection:next_event(sock_read, deadline)
  while true do
    local ev = self.events[self.ev]
    if ev ~= nil then
      self.events[self.ev] = nil
      self.ev = self.ev + 1
      return ev
    end
    if self.failed then error(self.failed, 0) end
    if self.eof then
      error(M.ServerDisconnectedError(), 0)
    end
    local bound, by_total = sock_read, false
    if deadline then
      local left = deadline - asyncio.get_running_loop():time()
      if left <= 0 then error(asyncio.TimeoutError(), 0) end
      if not bound or left < bound then bound, by_total = left, true end
    end
    self.reading = true
    local ok, data = pcall(bounded, self.reader:read(BUFSIZE), bound)
    self.reading = false
    if not ok then
      if is_cancel(data) or iserror(data, ClientError) then error(data, 0) end
      if iserror(data, asyncio.TimeoutError) then
        if by_total then error(data, 0) end
        error(M.SocketTimeoutError("Timeout on reading data from socket"),
              0)
      end
      error(M.ClientOSError(tostring(data.message or data)), 0)
    end
    self:_feed(data)
  end
end

--- Feeds the parser data (what a read gave, "" at the end of the input):
-- its events follow those not taken yet. Raises as next_event.
function Connection:_feed(data)
  local events, name, desc
  if data == "" then
    self.eof = true
    events, name, desc = self.parser:feed_eof()
  else
    self.got_bytes = true
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
    error(M.ClientResponseError{status = 400, message = name .. ": " ..
      desc}, 0)
  end
  local left, i = self.events, self.ev
  if left[i] == nil then
    self.events, self.ev = events, 1
    return
  end
  local all, n = {}, 0
  while left[i] ~= nil do n = n + 1; all[n] = left[i]; i = i + 1 end
  for j = 1, #events do all[n + j] = events[j] end
  self.events, self.ev = all, 1
end

--- Parses, without waiting, the bytes the connection's reader holds
-- already, unless a read of the body is waiting for them. A failure is
-- kept for next_event to raise once the events before it are taken.
function Connection:parse_buffered()
  while not self.reading and not self.failed and not self.eof and
      self.reader:_buffered() > 0 do
    local data = await(self.reader:read(BUFSIZE)) -- buffered: no wait
    local ok, e = pcall(self._feed, self, data)
    if not ok then self.failed = e end
  end
end

---------------------------------------------------------------------------
-- Request bodies

local function pct(c) return ("%%%02X"):format(c:byte()) end

--- s in a form body, as Python's quote_plus: unreserved bytes kept, a
-- space as "+", any other byte as %XX.
local function quote_form(s)
  return (tostring(s):gsub("[^%w%-%._~ ]", pct):gsub(" ", "+"))
end
M._quote = quote_form

--- s as a name or value of a URL's query, as yarl quotes it: the bytes
-- a query allows kept, a space as "+", "+" as %2B unless keep_plus (a
-- query string given whole: its "+" already means a space).
local function quote_query(s, keep_plus)
  s = tostring(s):gsub("[^%w%-%._~!%$'%(%)%*,/:%?@ %+]", pct)
  if not keep_plus then s = s:gsub("%+", "%%2B") end
  return (s:gsub(" ", "+"))
end

--- An async file (asyncio.fs's, or any table with a read method): a form
-- field holding one is sent as a file part.
local function is_file(v)
  return type(v) == "table" and type(v.read) == "function"
end

--- Calls fn(name, value) for each field of a form table: its list of
-- {name, value} pairs first, then its names sorted, a list value giving
-- one field per element (an async file is one value).
local function each_field(form, fn)
  for i = 1, #form do fn(form[i][1], form[i][2]) end
  local names = {}
  for k in pairs(form) do
    if type(k) == "string" then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = form[k]
    if type(v) == "table" and not is_file(v) then
      for _, x in ipairs(v) do fn(k, x) end
    else
      fn(k, v)
    end
  end
end

--- Form fields (a form table, see each_field) as name=value pairs joined
-- by "&", each quoted by quote.
local function urlencode(form, quote)
  quote = quote or quote_form
  local parts = {}
  each_field(form, function(k, v)
    parts[#parts + 1] = quote(k) .. "=" .. quote(v)
  end)
  return concat(parts, "&")
end
M._urlencode = urlencode

local function quote_param(s) return quote_query(s, false) end

--- The query of a request's `params`: a table as form fields, a string
-- as aiohttp reads one (split at "&" and the first "=", empty pieces
-- dropped, each name and value quoted as yarl does).
local function params_query(params)
  if type(params) ~= "string" then return urlencode(params, quote_param) end
  local parts = {}
  for piece in params:gmatch("[^&]+") do
    local name, value = piece:match("^([^=]*)=?(.*)$")
    parts[#parts + 1] = quote_query(name, true) .. "=" ..
      quote_query(value, true)
  end
  return concat(parts, "&")
end

---------------------------------------------------------------------------
-- ClientResponse and its content

--- Whether the rest of the response's message is parsed already (the
-- answer to a HEAD, a 204, a short body read in one piece): its
-- connection can be reused without reading it.
local function message_parsed(conn)
  local events, i = conn.events, conn.ev
  while true do
    local ev = events[i]
    if ev == nil then return false end
    if ev == true then return events[i + 1] == nil end
    i = i + 1
  end
end

--- The rest of a message parsed already, read without its connection
-- (see ClientSession:_send): the parser's events, ending with true.
local Parsed = setmetatable({parsed = true}, {__index = Connection})
Parsed.__index = Parsed -- Connection:next_event never reads: true ends it

--- Gives conn, whose response resp is parsed to its end, back to
-- session at once, as aiohttp does once a message ended: the body is read
-- from what was parsed, so that a response left unread holds no
-- connection and no place of the session's limits.
local function give_back_parsed(session, resp, conn)
  session._holding[resp] = nil
  resp._conn = setmetatable({events = conn.events, ev = conn.ev}, Parsed)
  conn.events, conn.ev = {}, 1
  session:_release(conn, resp._keep_alive)
end

local StreamContent = {}
StreamContent.__index = StreamContent

--- The next piece of the body ("" at its end) and whether a chunk of a
-- chunked body ends with it (a plain function that awaits: callable from
-- any coroutine function running in a task); raises ClientConnectionError
-- once the response was released or closed, as aiohttp's. A chunk's end
-- parsed only after its last bytes were given is skipped, unless
-- lone_ends asks for it as "", true (readchunk).
local function piece(self, lone_ends)
  local resp = self.resp
  if self.exc then error(self.exc, 0) end -- as aiohttp's set_exception
  if resp._released then
    error(M.ClientConnectionError("Connection closed"), 0)
  end
  -- a chunk end a read other than readchunk took its bytes up to stays
  -- for readchunk, until more bytes are read (aiohttp's cursor rule)
  if self.at_end and lone_ends then
    self.at_end = false
    return "", true
  end
  self.at_end = false
  if self.buf ~= "" then
    local b, ends = self.buf, self.buf_ends
    if self.pos > 1 then b = b:sub(self.pos) end
    self.buf, self.pos, self.buf_ends, self.open = "", 1, false, not ends
    self.at_end = ends and not lone_ends
    return b, ends
  end
  if resp._done then return "", false end
  local conn = resp._conn
  while true do
    local ok, ev = pcall(conn.next_event, conn, resp._sock_read,
                         conn.deadline)
    if ok and type(ev) == "string" and resp._decoder then
      ok, ev = pcall(resp._decoder, ev)
    end
    if not ok then
      if not is_cancel(ev) then self.exc = ev end
      resp:close()
      error(ev, 0)
    end
    if ev == true then
      resp:_finish()
      return "", false
    elseif ev == false then -- a chunk's end, after bytes given before
      if self.open then
        self.open = false
        if lone_ends then return "", true end
      end
    else
      -- a piece that decodes to nothing yet (a gzip header alone) is not
      -- the end: "" means that
      if ev ~= "" then
        local ends = conn.events[conn.ev] == false -- parsed with it
        if ends then
          conn.events[conn.ev] = nil
          conn.ev = conn.ev + 1
        end
        self.open = not ends
        self.at_end = ends and not lone_ends
        return ev, ends
      end
    end
  end
end
StreamContent._piece = async(function(self) return (piece(self)) end)

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

--- Raises unless n (argument #1 of fname) is nil or a number.
local function check_size(n, fname)
  if n ~= nil and type(n) ~= "number" then
    error(("bad argument #1 to '%s' (number expected, got %s)")
      :format(fname, type(n)), 3)
  end
end

--- Keeps the bytes of piece p from i on for the next read (p itself and
-- where they start: reads of parts of a large piece copy no rest); ends:
-- a chunk ends with p.
local function keep_rest(self, p, i, ends)
  self.buf, self.pos, self.buf_ends, self.open, self.at_end = p, i, ends,
    true, false
end

local function read_some(self, n)
  if n == nil or n < 0 then return read_all(self) end
  local buf, pos = self.buf, self.pos
  if #buf - pos >= n and not self.exc and not self.resp._released then
    self.pos, self.at_end = pos + n, false -- (a part of the kept piece)
    return buf:sub(pos, pos + n - 1)
  end
  local p, ends = piece(self)
  if #p > n then
    keep_rest(self, p, n + 1, ends)
    p = p:sub(1, n)
  end
  return p
end

--- read([n]) -> up to n bytes (all of the body without n); "" at the end
local read_co = async(read_some)
function StreamContent:read(n)
  check_size(n, "read")
  return read_co(self, n)
end

--- readexactly(n) -> n bytes; raises asyncio.IncompleteReadError short
local readexactly_co = async(function(self, n)
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

function StreamContent:readexactly(n)
  check_size(n or false, "readexactly")
  return readexactly_co(self, n)
end

--- The body up to sep and it included, or the rest when it ends first.
-- A separator may straddle two pieces: each piece is searched with the
-- last #sep - 1 bytes before it.
local function read_until(self, sep)
  local parts, n, tail = {}, #sep, ""
  while true do
    local p, ends = piece(self)
    if p == "" then return concat(parts) end
    local w = tail .. p
    local i = w:find(sep, 1, true)
    if i then
      local stop = i + n - 1 - #tail -- sep's last byte, in p
      if stop < #p then keep_rest(self, p, stop + 1, ends) end
      parts[#parts + 1] = p:sub(1, stop)
      return concat(parts)
    end
    parts[#parts + 1] = p
    tail = n > 1 and w:sub(-(n - 1)) or ""
  end
end

--- readline() -> the next line with its "\n" (the rest at the end)
StreamContent.readline = async(function(self)
  return read_until(self, "\n")
end)

--- readuntil([sep = "\n"]) -> the body up to sep, sep included (the
-- rest at the end), as aiohttp's
local readuntil_co = async(read_until)
function StreamContent:readuntil(sep)
  if sep == nil then sep = "\n" end
  if type(sep) ~= "string" then
    error("bad argument #1 to 'readuntil' (string expected, got " ..
          type(sep) .. ")", 2)
  end
  if sep == "" then
    error(asyncio.ValueError("Separator should be at least one-byte string"),
          2)
  end
  return readuntil_co(self, sep)
end

--- readany() -> the next piece of the body as it arrived (what is
-- buffered first); "" at the end
StreamContent.readany = StreamContent._piece

--- iter_chunked(n): for chunk in resp.content:iter_chunked(n) do, in a
-- task: pieces of at most n bytes until the end.
function StreamContent:iter_chunked(n)
  check_size(n or false, "iter_chunked")
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

--- readchunk() -> data, end_of_http_chunk: the next piece and whether a
-- chunk of a chunked body ends with it ("", true for an end that came
-- after its bytes were read); "", false at the end (aiohttp's readchunk)
StreamContent.readchunk = async(function(self)
  return piece(self, true)
end)

--- iter_chunks(): for data, end_of_http_chunk in resp.content:iter_chunks()
-- do, in a task: readchunk()'s pairs until the end
function StreamContent:iter_chunks()
  return function()
    local p, ends = piece(self, true)
    if p ~= "" or ends then return p, ends end
  end
end

--- at_eof() -> whether the body is read to its end; is_eof() ->
-- whether its end arrived (some of it may wait to be read)
function StreamContent:at_eof()
  return self.buf == "" and self.resp._done
end

function StreamContent:is_eof()
  local resp = self.resp
  return resp._done or message_parsed(resp._conn)
end

--- exception() -> the error that cut the body short, or nil
function StreamContent:exception()
  return self.exc
end

local ClientResponse = {__name = "http.ClientResponse"}

--- request_info(method, u, hdrs) -> {method =, url =, real_url =,
-- headers =}: the request a response or an error answers (aiohttp's
-- RequestInfo; real_url is url with the fragment of the URL asked for)
local function request_info(method, u, hdrs)
  local url = u.str or url_mod.format(u)
  return {method = method, url = url, real_url = url .. (u.fragment or ""),
          headers = hdrs}
end

--- The Content-Type v as aiohttp reads it: the lower-cased type
-- ("application/octet-stream" when there is none, "text/plain" when
-- it is not type/subtype) and its charset parameter (or nil).
local function content_type(v)
  if v == nil then return "application/octet-stream", nil end
  local mime = v:match("^%s*([^;%s]*)"):lower()
  if not mime:find("/", 1, true) then mime = "text/plain" end
  for name, value in v:gmatch(";%s*([^=;%s]+)%s*=%s*([^;]*)") do
    if name:lower() == "charset" then
      return mime, (value:gsub("%s+$", ""):gsub('^"(.*)"$', "%1"))
    end
  end
  return mime, nil
end

--- The cookies of the Set-Cookie fields of headers: name -> value
local function response_cookies(headers)
  local out = {}
  for _, v in ipairs(headers:getall("Set-Cookie", {})) do
    local name, value = v:match("^%s*([^=;%s]+)%s*=%s*([^;]*)")
    if name then
      out[name] = value:gsub("%s+$", ""):gsub('^"(.*)"$', "%1")
    end
  end
  return out
end

-- The attributes of a response made on first use (kept then): most
-- responses never need them.
local LAZY = {
  ok = function(r) return r.status < 400 end,
  real_url = function(r) return r.url .. (r._url.fragment or "") end,
  request_info = function(r) return request_info(r.method, r._url, r._hdrs)
  end,
  content_type = function(r)
    return (content_type(rawget(r.headers, "content-type")))
  end,
  charset = function(r) -- nil is not kept: made again at each use
    local _, cs = content_type(rawget(r.headers, "content-type"))
    return cs
  end,
  cookies = function(r) return response_cookies(r.headers) end,
  content_length = function(r) -- nil is not kept: made again at each use
    local v = rawget(r.headers, "content-length")
    return v and math.tointeger(tonumber(v)) or nil
  end,
}

function ClientResponse.__index(r, k)
  local v = ClientResponse[k]
  if v ~= nil then return v end
  local make = LAZY[k]
  if make then
    v = make(r)
    rawset(r, k, v)
    return v
  end
end

--- Ends the response: its connection goes back to the session's pool
-- when the message ended cleanly, else it is closed.
function ClientResponse:_finish()
  if self._done then return end
  self._done = true
  self._session._holding[self] = nil
  local conn = self._conn
  self._conn = nil
  if conn and not conn.parsed then
    self._session:_release(conn, self._keep_alive)
  end
end

--- release(): gives the connection back: to the pool when the body was
-- read to its end, or has all arrived (the answer to a HEAD, a 204, a
-- short body), else closed; the body can not be read any more, as in
-- aiohttp. Leaving a `local resp <close>` scope releases, as leaving
-- aiohttp's `async with`.
function ClientResponse:release()
  self._released = true
  if self._done then return end
  local conn = self._conn
  if conn and message_parsed(conn) then
    conn.events, conn.ev = {}, 1
    return self:_finish()
  end
  self:close()
end

--- close(): closes the connection unless the body was read to its end;
-- the body can not be read any more.
function ClientResponse:close()
  self._released = true
  if self._done then return end
  self._done = true
  self._session._holding[self] = nil
  local conn = self._conn
  self._conn = nil
  if conn and not conn.parsed then self._session:_release(conn, false) end
end
ClientResponse.__close = ClientResponse.release
ClientResponse.__gc = ClientResponse.close

--- read() -> the whole body (kept: read, text and json may be called
-- again until the response is released or closed, as aiohttp's)
local function read_body(self)
  local body = self._body
  if body == nil then
    body = read_all(self.content)
    self._body = body
  elseif self._released then
    error(M.ClientConnectionError("Connection closed"), 0)
  end
  return body
end
ClientResponse.read = async(read_body)

--- text() -> the body as a string (Lua strings are bytes: no decoding)
ClientResponse.text = ClientResponse.read

--- Whether the Content-Type value ct (lower-cased) is what json()
-- expects: for "application/json", any application/json or
-- application/<x>+json (aiohttp's regex); else ct holds `want`.
local function json_type_ok(ct, want)
  if want ~= "application/json" then return ct:find(want, 1, true) ~= nil end
  return ct:find("^application/json") ~= nil or
    ct:find("^application/[%w_.+-]+%+json") ~= nil
end

--- The body of response self decoded (see ClientResponse:json); want:
-- the content type expected, or false.
local json_body = async(function(self, want, loads)
  local body = read_body(self)
  local ct = (self.headers["content-type"] or ""):lower()
  if want and not json_type_ok(ct, tostring(want)) then
    error(M.ContentTypeError{request_info = self.request_info,
      history = self.history, headers = self.headers,
      message = "Attempt to decode JSON with unexpected mimetype: " .. ct},
      0)
  end
  if body:match("^%s*$") then return nil end
  return loads(body)
end)

local JSON_OPTS = check.option_set{"content_type", "loads"}

--- json([{content_type = "application/json", loads =}]) -> the body
-- decoded by lua-cjson, or by loads(text) (nil for an empty body);
-- another content type raises ContentTypeError (content_type = false:
-- no check), invalid JSON http.JSONDecodeError (a ValueError) with the
-- decoder's message.
function ClientResponse:json(opts)
  check.options(opts, 2, "json", JSON_OPTS)
  local want = opts and opts.content_type
  if want == nil then want = "application/json" end
  local loads = M._check_loads(opts and opts.loads, 2, "json")
  local json = json_body -- its Coroutine objects take the caller's name
  return json(self, want, loads)
end

--- get_encoding() -> the charset of Content-Type in lower case, as
-- aiohttp's, else "utf-8" (no detection from the body, no check that
-- the name is a known codec)
function ClientResponse:get_encoding()
  local charset = self.charset
  return charset and charset:lower() or "utf-8"
end

--- raise_for_status(): raises ClientResponseError for a status >= 400
function ClientResponse:raise_for_status()
  if self.status >= 400 then
    self:release()
    error(M.ClientResponseError{status = self.status, message = self.reason,
      request_info = self.request_info, headers = self.headers,
      history = self.history}, 2)
  end
end

function ClientResponse:__tostring()
  return ("<ClientResponse(%s) [%d %s]>"):format(self.url, self.status,
                                                  self.reason)
end


---------------------------------------------------------------------------
-- Options

-- The kinds of option values: each a test and what it expects.
local KINDS = {
  any = {function() return true end},
  table = {function(v) return type(v) == "table" end, "table"},
  boolean = {function(v) return type(v) == "boolean" end, "boolean"},
  string = {function(v) return type(v) == "string" end, "string"},
  count = {function(v) return math.type(v) == "integer" and v >= 0 end,
           "non-negative integer"},
  timeout = {function(v)
    return getmetatable(v) == ClientTimeout or
      type(v) == "number" and v >= 0 end, "ClientTimeout or number"},
  auth = {function(v) return getmetatable(v) == BasicAuth end,
          "http.BasicAuth"},
  params = {function(v)
    return type(v) == "string" or type(v) == "table" end,
    "string or table"},
  proxy = {function(v) return type(v) == "string" end, "string"},
  compress = {function(v)
    return v == "deflate" or v == "gzip" or type(v) == "boolean" end,
    "\"deflate\", \"gzip\" or boolean"},
  data = {function(v)
    return type(v) == "string" or type(v) == "table" or
      type(v) == "function" end,
    "string, table, async file or function"},
  names = {function(v)
    if type(v) ~= "table" then return false end
    for _, name in pairs(v) do
      if type(name) ~= "string" then return false end
    end
    return true end, "list of strings"},
}

-- The options of a request, and of a session, with their kinds
local REQUEST_OPTS = {params = "params", headers = "table", data = "data",
  json = "any", allow_redirects = "boolean", max_redirects = "count",
  timeout = "timeout", raise_for_status = "boolean", ssl = "any",
  auth = "auth", cookies = "table", skip_auto_headers = "names",
  compress = "compress", proxy = "proxy", proxy_auth = "auth",
  proxy_headers = "table", expect100 = "boolean"}
local SESSION_OPTS = {base_url = "any", headers = "table",
  timeout = "timeout", limit = "count", limit_per_host = "count",
  raise_for_status = "boolean", cookie_jar = "table", auth = "auth",
  cookies = "table", auto_decompress = "boolean",
  skip_auto_headers = "names", force_close = "boolean", proxy = "proxy",
  proxy_auth = "auth", trust_env = "boolean"}

--- The message of a params table holding a value that is not a string
-- or a number (aiohttp raises TypeError), or nil.
local function params_error(params, fname, argn)
  local function bad(v)
    return type(v) ~= "string" and type(v) ~= "number" and
      ("bad argument #%d to '%s' (field 'params': string or number "
       .. "values expected, got %s)"):format(argn, fname, type(v))
  end
  for k, v in pairs(params) do
    if type(v) ~= "table" then
      if bad(v) then return bad(v) end
    else -- {name, value} in a list, or a list of values under a name
      local first = math.type(k) == "integer" and 2 or 1
      for i = first, #v do
        if bad(v[i]) then return bad(v[i]) end
      end
    end
  end
  return nil
end

--- The number Lua's errors give argument #n (self counted) of the public
-- function `level` frames above the caller of this (1: the caller):
-- one less when it was called as a method (s:get(url)), as
-- luaL_argerror counts. It reads debug information: for errors only.
local function argn(n, level)
  local ar = debug.getinfo((level or 1) + 1, "n")
  if ar and ar.namewhat == "method" then return n - 1 end
  return n
end

--- The message of the first bad option of opts for argument #argn of
-- fname (an unknown name, a value of another kind), or nil.
local function opts_error(opts, known, fname, argn)
  for k, v in pairs(opts) do
    local kind = known[k]
    if kind == nil then
      return ("bad argument #%d to '%s' (unknown option '%s')")
        :format(argn, fname, tostring(k))
    end
    local test, what = KINDS[kind][1], KINDS[kind][2]
    if not test(v) then
      return ("bad argument #%d to '%s' (field '%s': %s expected, got %s)")
        :format(argn, fname, k, what, math.type(v) == "float" and
                "number" or type(v))
    end
  end
  return type(opts.params) == "table" and
    params_error(opts.params, fname, argn) or nil
end

--- The set of the lower-cased names of the list names, added to the set
-- base (not changed; nil: none).
local function name_set(names, base)
  local set = {}
  for k in pairs(base or {}) do set[k] = true end
  for _, name in ipairs(names) do set[name:lower()] = true end
  return set
end

---------------------------------------------------------------------------
-- ClientSession

local ClientSession = {__name = "http.ClientSession"}
ClientSession.__index = ClientSession

--- ClientSession([{base_url =, headers =, timeout =, limit = 100,
-- limit_per_host = 0, raise_for_status = false, cookie_jar =, auth =,
-- cookies =, auto_decompress = true, skip_auto_headers =, force_close =
-- false}]); cookies (name -> value) go into the jar for every host, as
-- aiohttp's; force_close (aiohttp's TCPConnector option) closes every
-- connection after its response instead of keeping it.
function M.ClientSession(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("bad argument #1 to 'ClientSession' (table expected, got " ..
          type(opts) .. ")", 2)
  end
  local msg = opts_error(opts, SESSION_OPTS, "ClientSession", 1)
  if msg then error(msg, 2) end
  local base
  if opts.base_url then base = url_mod.parse(opts.base_url, M.InvalidURL) end
  local limit = opts.limit or 100
  local jar = opts.cookie_jar or cookiejar.CookieJar()
  if opts.cookies and jar.update_cookies then
    jar:update_cookies(opts.cookies)
  end
  return setmetatable({
    _base = base, headers = CIMultiDict(opts.headers),
    timeout = as_timeout(opts.timeout) or DEFAULT_TIMEOUT,
    _limit = limit > 0 and asyncio.Semaphore(limit) or nil,
    _limit_per_host = opts.limit_per_host or 0, _per_host = {},
    _raise = opts.raise_for_status or false, auth = opts.auth,
    _decompress = opts.auto_decompress ~= false, cookie_jar = jar,
    _skip = opts.skip_auto_headers and name_set(opts.skip_auto_headers),
    _force_close = opts.force_close or false,
    _proxy = opts.proxy, _proxy_auth = opts.proxy_auth,
    _trust_env = opts.trust_env or false,
    _pool = {}, closed = false, _urls = {}, _nurls = 0,
    -- responses holding a connection until their body is read: weak,
    -- a response collected unread closes its own
    _holding = setmetatable({}, {__mode = "k"})}, ClientSession)
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
  if reusable and not self.closed and not self._force_close and
      conn.writer and not conn.eof and
      conn.ev > #conn.events and conn.parser:idle() then
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

---------------------------------------------------------------------------
-- Proxies

-- the proxy variable of the environment for each scheme (trust_env)
local ENV_PROXY = {http = "http", ws = "http", https = "https",
                   wss = "https"}

--- Does the environment's no_proxy (or NO_PROXY) exempt u: "*", or an
-- entry that is its host or host:port, or ends it after a "." (a leading
-- "." ignored), as Python's urllib matches them?
local function no_proxy(u)
  local list = os.getenv("no_proxy") or os.getenv("NO_PROXY") or ""
  local host = u.host
  local hostport = host .. ":" .. u.port
  for entry in list:gmatch("[^,%s]+") do
    entry = entry:lower():gsub("^%.+", "")
    if entry == "*" then return true end
    for _, h in ipairs{host, hostport} do
      if h == entry or h:sub(-#entry - 1) == "." .. entry then
        return true
      end
    end
  end
  return false
end

--- The environment's proxy URL for u (http_proxy or HTTP_PROXY,
-- https_proxy or HTTPS_PROXY), or nil.
local function env_proxy(u)
  local name = ENV_PROXY[u.scheme]
  local proxy = os.getenv(name .. "_proxy") or os.getenv(name:upper() ..
                                                         "_PROXY")
  if proxy == nil or proxy == "" or no_proxy(u) then return nil end
  return proxy
end

--- The proxy of a request to u, {u =, auth =, headers =}, or nil: the
-- request's proxy option, else the session's, else (trust_env) the
-- environment's; its credentials are proxy_auth, else those of its URL.
-- Only http:// proxies are supported (ValueError otherwise).
function ClientSession:_proxy_for(u, opts)
  local proxy = opts.proxy or self._proxy
  if proxy == nil and self._trust_env then proxy = env_proxy(u) end
  if proxy == nil then return nil end
  local p = url_mod.parse(proxy, M.InvalidURL)
  if p.scheme ~= "http" then
    error(asyncio.ValueError("Only http proxies are supported"), 0)
  end
  local auth = opts.proxy_auth or self._proxy_auth or
    (p.user and BasicAuth(p.user, p.password or ""))
  return {u = p, auth = auth, headers = opts.proxy_headers}
end

--- Does a request to u through a proxy go through a CONNECT tunnel?
-- (Only plain http requests are sent to the proxy itself.)
local function tunnelled(u) return u.scheme ~= "http" end

--- Adds the fields a request sent to the proxy itself carries: its
-- Proxy-Authorization and proxy_headers.
local function add_proxy_fields(hdrs, proxy)
  if proxy.auth then hdrs:set("Proxy-Authorization", proxy.auth:encode()) end
  for name, value in pairs(proxy.headers or {}) do
    hdrs:set(name, value)
  end
end

local default_tls
--- The SSLContext start_tls takes for a request's `ssl` option
-- (tls_context's, with a default context for its true).
local function start_tls_context(opt)
  local ctx = tls_context(opt)
  if ctx ~= true then return ctx end
  if not default_tls then
    default_tls = require("asyncio.ssl").create_default_context()
  end
  return default_tls
end

--- Opens a tunnel to u through the proxy connection r, w (CONNECT
-- host:port), then TLS over it for https and wss (ssl: the request's
-- option). A status other than 200 raises ClientHttpProxyError.
local function open_tunnel(r, w, u, proxy, ssl)
  local h = u.host:find(":", 1, true) and "[" .. u.host .. "]" or u.host
  local target = h .. ":" .. u.port
  local hdrs = CIMultiDict()
  hdrs:add("Host", target)
  add_proxy_fields(hdrs, proxy)
  w:write(_http.head("CONNECT " .. target .. " HTTP/1.1", hdrs))
  local ok, head = pcall(await, r:readuntil("\r\n\r\n"))
  if not ok and is_cancel(head) then error(head, 0) end -- a timeout's too
  local status, reason
  if ok then status, reason = head:match("^HTTP/1%.%d (%d%d%d) ?([^\r]*)") end
  if status ~= "200" then
    error(M.ClientHttpProxyError{status = tonumber(status) or 0,
      message = reason or "bad answer to CONNECT"}, 0)
  end
  if u.scheme == "https" or u.scheme == "wss" then
    await(w:start_tls(start_tls_context(ssl), {server_hostname = u.host}))
  end
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

--- Gives back the connections of responses left unread whose message has
-- come meanwhile (their bytes wait in the reader): a new request finds
-- them in the pool, and their places of the limits free.
function ClientSession:_reap()
  for resp in pairs(self._holding) do
    local conn = resp._conn
    if conn and not conn.parsed and not conn.reading and
        conn.reader:_buffered() > 0 then
      conn:parse_buffered()
      if message_parsed(conn) then give_back_parsed(self, resp, conn) end
    end
  end
end

--- The ssl part of a connect error, as aiohttp's: "default" for none
-- given (or true), "False", or the context.
local function ssl_label(ssl)
  if ssl == nil or ssl == true then return "default" end
  return ssl == false and "False" or tostring(ssl)
end

--- The bracketed part of a connect error: the OSError's strerror, as
-- aiohttp's ("Connect call failed ('127.0.0.1', 1)"), else its message.
local function os_error_text(r)
  if type(r) == "table" and rawget(r, "strerror") ~= nil then
    return tostring(r.strerror)
  end
  return tostring(type(r) == "table" and r.message or r)
end

--- Gives a connector error e the error r it wraps (`.os_error`) and,
-- as the OSError it is (aiohttp's ClientOSError), r's errno and
-- strerror.
local function os_error_fields(e, r)
  e.os_error = r
  if type(r) == "table" then
    e.errno, e.strerror = rawget(r, "errno"), rawget(r, "strerror")
  end
end

--- aiohttp's ClientConnectorSSLError is also an ssl.SSLError, and its
-- ClientConnectorCertificateError an ssl.SSLCertVerificationError: they
-- join those classes once the client loads asyncio.ssl, before it
-- raises either (the client does not load it for plain http).
local ssl_joined = false
local function join_ssl_classes(ssl)
  if ssl_joined then return end
  ssl_joined = true
  add_base(M.ClientConnectorSSLError, ssl.SSLError)
  add_base(M.ClientConnectorCertificateError, ssl.SSLCertVerificationError)
end

--- open_connection to u (copts: its TLS options), or through proxy:
-- to the proxy, then a tunnel (open_tunnel) unless u is plain http. A
-- proxy that cannot be reached raises ClientProxyConnectionError.
local open_stream = async(function(u, copts, proxy, ssl)
  if not proxy then return await(asyncio.open_connection(u.host, u.port,
                                                        copts)) end
  local p = proxy.u
  local ok, r, w = pcall(await, asyncio.open_connection(p.host, p.port))
  if not ok then
    if is_cancel(r) or iserror(r, asyncio.TimeoutError) then error(r, 0) end
    local e = M.ClientProxyConnectionError(("Cannot connect to host "
      .. "%s:%d ssl:default [%s]"):format(p.host, p.port, os_error_text(r)))
    os_error_fields(e, r)
    e.host, e.port = p.host, p.port
    error(e, 0)
  end
  if tunnelled(u) then
    local tok, e = pcall(open_tunnel, r, w, u, proxy, ssl)
    if not tok then
      w:close()
      error(e, 0)
    end
  end
  return r, w
end)

local function connect_timeout(u)
  return M.ConnectionTimeoutError("Connection timeout to host " ..
                                  url_mod.format(u))
end

--- A connection to u (a parsed URL): an idle one or a new one, with its
-- permits taken. Returns conn, reused. Raises ServerTimeoutError past
-- timeout.connect (waiting for permits and connecting) or
-- sock_connect (connecting).
function ClientSession:_connect(u, opts, timeout, proxy)
  local key = u.scheme .. "://" .. u.host .. ":" .. u.port
  if opts.ssl ~= nil and opts.ssl ~= true and
      (u.scheme == "https" or u.scheme == "wss") then
    -- a connection verified otherwise is not shared
    key = key .. " " .. tostring(opts.ssl)
  end
  if proxy then
    key = ("%s via %s:%d %s"):format(key, proxy.u.host, proxy.u.port,
      proxy.auth and proxy.auth:encode() or "")
  end
  if next(self._holding) then self:_reap() end
  if timeout.connect then
    local ok, e = pcall(bounded, acquire_co(self, key), timeout.connect)
    if not ok then
      if iserror(e, asyncio.TimeoutError) then e = connect_timeout(u) end
      error(e, 0)
    end
  else
    acquire(self, key)
  end
  local idle = self._pool[key]
  while idle and #idle > 0 do
    local conn = remove(idle)
    -- bytes that came while it was idle belong to no request: closed,
    -- as aiohttp's should_close
    if conn.writer and not conn.reader:at_eof() and
        conn.reader:_buffered() == 0 then
      conn.released = false
      return conn, true
    end
    conn:close()
  end
  local copts
  if u.scheme == "https" or u.scheme == "wss" then
    copts = {ssl = tls_context(opts.ssl), server_hostname = u.host}
  end
  local ok, r, w = pcall(bounded, open_stream(u, copts, proxy, opts.ssl),
                         timeout.sock_connect or timeout.connect)
  if not ok then
    if self._limit then self._limit:release() end
    local ph = self._per_host[key]
    if ph then ph:release() end
    if is_cancel(r) or iserror(r, ClientError) then error(r, 0) end
    if iserror(r, asyncio.TimeoutError) and r.errno == nil then -- ours
      error(connect_timeout(u), 0)
    end
    local cls = M.ClientConnectorError
    if copts and iserror(r, asyncio.OSError) then
      local ssl = require "asyncio.ssl"
      join_ssl_classes(ssl)
      if iserror(r, ssl.SSLCertVerificationError) then
        cls = M.ClientConnectorCertificateError
      elseif iserror(r, ssl.SSLError) then
        cls = M.ClientConnectorSSLError
      end
    end
    local e = cls(("Cannot connect to host %s:%d ssl:%s [%s]"):format(
      u.host, u.port, ssl_label(opts.ssl), os_error_text(r)))
    os_error_fields(e, r)
    if cls == M.ClientConnectorCertificateError then
      e.certificate_error = r
    end
    e.host, e.port = u.host, u.port
    error(e, 0)
  end
  return new_connection(r, w, key), false
end

--- Sets the Cookie field of hdrs, as aiohttp: the caller's own Cookie
-- field, the jar's cookies for u over it, then the request's `cookies`
-- (name -> value, or nil) over those, sorted by name.
local function add_cookies_header(self, u, hdrs, cookies)
  local jar = self.cookie_jar
  local c = jar and jar.filter_cookies and jar:filter_cookies(u) or ""
  local own = hdrs["cookie"]
  if cookies == nil and own == nil then -- the common case: the jar's
    if c ~= "" then hdrs:add("Cookie", c) end
    return
  end
  if c == "" and (cookies == nil or next(cookies) == nil) then
    return -- nothing to add: the caller's field goes as given (aiohttp)
  end
  local values, names = {}, {}
  local function put(name, value)
    name = tostring(name)
    if values[name] == nil then names[#names + 1] = name end
    values[name] = tostring(value)
  end
  for _, src in ipairs{own or "", c} do
    for name, value in src:gmatch("([^=;%s]+)=([^;]*)") do
      put(name, value)
    end
  end
  -- the request's own values, quoted as the jar's (aiohttp's SimpleCookie)
  for name, value in pairs(cookies or {}) do
    put(name, cookiejar.quote(tostring(value)))
  end
  table.sort(names)
  for i, name in ipairs(names) do names[i] = name .. "=" .. values[name] end
  hdrs:set("Cookie", #names > 0 and concat(names, "; ") or nil)
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

-- Methods whose requests carry no body unless given one (aiohttp's
-- GET_METHODS), and those whose requests get a Content-Type anyway
local BODYLESS = {GET = true, HEAD = true, OPTIONS = true, TRACE = true}
local POST_METHODS = {POST = true, PUT = true, PATCH = true}

---------------------------------------------------------------------------
-- FormData and multipart/form-data bodies

local FormData = {__name = "http.FormData"}
FormData.__index = FormData
M.FormData = FormData

local FIELD_OPTS = check.option_set{"filename", "content_type"}

--- FormData([fields]): a form built field by field, as aiohttp's; fields
-- as a data table (name -> value, or a list of {name, value}). Sent as
-- multipart/form-data when a field is a file or has a filename or a
-- content type, else urlencoded.
setmetatable(FormData, {__call = function(_, fields)
  local f = setmetatable({_fields = {}, _multipart = false}, FormData)
  if fields ~= nil then
    if type(fields) ~= "table" then
      error("bad argument #1 to 'FormData' (table expected, got "
            .. type(fields) .. ")", 2)
    end
    each_field(fields, function(k, v) f:add_field(k, v) end)
  end
  return f
end})

--- form:add_field(name, value [, {filename =, content_type =}]): value a
-- string, a number or an async file (its name gives the filename).
function FormData:add_field(name, value, opts)
  if type(name) ~= "string" then
    error("bad argument #1 to 'add_field' (string expected, got "
          .. type(name) .. ")", 2)
  end
  local tv = type(value)
  if tv ~= "string" and tv ~= "number" and not is_file(value) then
    error("bad argument #2 to 'add_field' (string, number or async file "
          .. "expected, got " .. tv .. ")", 2)
  end
  opts = check.options(opts, 3, "add_field", FIELD_OPTS) or {}
  local filename = opts.filename
  if filename == nil and is_file(value) and type(value.name) == "string"
      then
    filename = value.name:match("[^/]*$")
  end
  if filename or opts.content_type or is_file(value) then
    self._multipart = true
  end
  self._fields[#self._fields + 1] = {name = name, value = value,
    filename = filename, content_type = opts.content_type}
end

--- A name or filename in a Content-Disposition header: quoted, with ",
-- CR and LF percent-encoded (the HTML form encoding).
local function disposition_quote(s)
  return '"' .. s:gsub('[\r\n"]', function(c)
    return ("%%%02X"):format(c:byte())
  end) .. '"'
end

--- The head of a part of a multipart body.
local function part_head(boundary, field)
  local h = {"--", boundary, "\r\nContent-Disposition: form-data; name=",
             disposition_quote(field.name)}
  if field.filename then
    h[#h + 1] = "; filename=" .. disposition_quote(field.filename)
  end
  -- a file's type is guessed from its name, as aiohttp's IOBasePayload
  local ct = field.content_type or
    is_file(field.value) and field.filename and
      mimetypes.guess_type(field.filename) or
    (is_file(field.value) or field.filename) and "application/octet-stream"
    or "text/plain; charset=utf-8"
  h[#h + 1] = "\r\nContent-Type: " .. ct .. "\r\n\r\n"
  return concat(h)
end

--- The pieces of a body (strings and async files: a multipart form's,
-- or one file) as a body of known length ({size =, read = fn(n)}: its
-- Content-Length, as aiohttp's, the files read as they are sent), or nil
-- when a file cannot tell its length (a pipe: the body goes chunked).
local function sized_parts(pieces)
  local left, size = {}, 0
  for i, p in ipairs(pieces) do
    if type(p) == "string" then
      size = size + #p
    else
      left[i] = file_left(p)
      if not left[i] then return nil end
      size = size + left[i]
    end
  end
  local i = 1
  return {size = size, read = function(n)
    while true do
      local p = pieces[i]
      if type(p) == "string" then
        i = i + 1
        if p ~= "" then return p end
      elseif left[i] == 0 then
        i = i + 1
      else
        local piece = await(p:read(math.min(n, left[i])))
        if piece == nil or piece == "" then
          error(M.ClientPayloadError(("the file ended %d bytes short of "
            .. "its length"):format(left[i])), 0)
        end
        left[i] = left[i] - #piece
        return piece
      end
    end
  end}
end

--- The multipart/form-data body of form: a string, a body of known
-- length (sized_parts) or a function of its pieces when a field is a file
-- (read as it is sent); and its boundary.
local function multipart_body(form, chunked)
  local boundary = ("%08x%08x%08x%08x"):format(math.random(0, 0xffffffff),
    math.random(0, 0xffffffff), math.random(0, 0xffffffff),
    math.random(0, 0xffffffff))
  local pieces, streamed = {}, false
  for _, field in ipairs(form._fields) do
    pieces[#pieces + 1] = part_head(boundary, field)
    if is_file(field.value) then
      streamed = true
      pieces[#pieces + 1] = field.value
    else
      pieces[#pieces + 1] = tostring(field.value)
    end
    pieces[#pieces + 1] = "\r\n"
  end
  pieces[#pieces + 1] = "--" .. boundary .. "--\r\n"
  if not streamed then return concat(pieces), boundary end
  local sized = not chunked and sized_parts(pieces)
  if sized then return sized, boundary end
  local i = 1
  return function()
    while true do
      local p = pieces[i]
      if p == nil then return nil end
      if type(p) == "string" then
        i = i + 1
        return p
      end
      local chunk = await(p:read(65536))
      if chunk ~= nil and chunk ~= "" then return chunk end
      i = i + 1
    end
  end, boundary
end

--- Whether a data table has a file among its values (then it goes as
-- multipart/form-data, as aiohttp's).
local function has_file(data)
  local found = false
  each_field(data, function(_, v) found = found or is_file(v) end)
  return found
end

--- Adds the Content-Type ct to hdrs unless they have one or skip (a set
-- of lower-cased names, or nil) holds it.
local function default_type(hdrs, skip, ct)
  if not hdrs:contains("Content-Type") and
      not (skip and skip["content-type"]) then
    hdrs:add("Content-Type", ct)
  end
end

--- The request's head fields and body (string, an iterator function
-- of pieces for a chunked body, or {size =, read = function(n)} for a
-- file of known length, sent as it is), as aiohttp 3.8 makes them: a
-- Content-Type for every body (application/octet-stream for bytes, an
-- iterator or a file) and for every POST, PUT and PATCH; Content-Length
-- 0 for a request without a body unless its method is GET, HEAD,
-- OPTIONS or TRACE. skip: the lower-cased names of skip_auto_headers.
local function request_body(opts, hdrs, method, skip)
  local body = opts.data
  if opts.json ~= nil then -- data is nil: _request checked
    body = M._dumps(opts.json) -- raises as aiohttp's json.dumps
    default_type(hdrs, skip, "application/json")
  elseif type(body) == "table" and (getmetatable(body) == FormData or
         (getmetatable(body) == nil and has_file(body))) then
    local form = getmetatable(body) == FormData and body or FormData(body)
    if not form._multipart then
      local list = {}
      for i, f in ipairs(form._fields) do list[i] = {f.name, f.value} end
      body = urlencode(list)
      default_type(hdrs, skip, "application/x-www-form-urlencoded")
    else
      local boundary
      body, boundary = multipart_body(form,
                                      hdrs:contains("Transfer-Encoding"))
      default_type(hdrs, skip, "multipart/form-data; boundary=" .. boundary)
      if type(body) == "table" then
        if not hdrs:contains("Content-Length") then
          hdrs:add("Content-Length", body.size)
        end
        return body
      elseif type(body) == "function" then
        if not hdrs:contains("Transfer-Encoding") then
          hdrs:add("Transfer-Encoding", "chunked")
        end
        return body
      end
    end
  elseif type(body) == "table" and getmetatable(body) == nil then
    body = urlencode(body)
    default_type(hdrs, skip, "application/x-www-form-urlencoded")
  elseif body ~= nil and type(body) ~= "string" then
    local src = body
    -- a file that can seek: its length is known, as aiohttp
    local sized = type(src) == "table" and src.seek and
      not hdrs:contains("Transfer-Encoding") and sized_parts({src})
    -- a file's type is guessed from its name, as aiohttp's payloads do
    local name = is_file(src) and type(src.name) == "string" and src.name
    default_type(hdrs, skip, name and mimetypes.guess_type(name)
                             or "application/octet-stream")
    if sized then
      if not hdrs:contains("Content-Length") then
        hdrs:add("Content-Length", sized.size)
      end
      return sized
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
  elseif body ~= nil or POST_METHODS[method] then
    default_type(hdrs, skip, "application/octet-stream")
  end
  if not hdrs:contains("Content-Length") then
    if body ~= nil then
      hdrs:add("Content-Length", #body)
    elseif not BODYLESS[method] and not hdrs:contains("Transfer-Encoding")
        then
      hdrs:add("Content-Length", 0)
    end
  end
  return body
end

--- The body (as request_body returns it) encoded with coding (Content-
-- Encoding "deflate" or "gzip"), as pieces of a chunked body.
local function compressed_body(body, coding)
  local z, done = _http.Deflater(coding), false
  local read = body
  if type(body) == "string" then
    read = function()
      if body == nil then return nil end
      local piece = body
      body = nil
      return piece
    end
  elseif type(body) == "table" then -- a file of known length
    local left = body.size
    read = function()
      if left == 0 then return nil end
      local piece = body.read(left < 65536 and left or 65536)
      if #piece > left then piece = piece:sub(1, left) end
      left = left - #piece
      return piece
    end
  end
  return function()
    if done then return nil end
    local piece = read()
    if piece == nil then
      done = true
      return z:finish()
    end
    return z:feed(piece)
  end
end

--- request_body, then the body compressed as the option compress asks
-- (aiohttp's compress=: true is "deflate"; sent chunked, without a
-- Content-Length). A request without a body is sent as it is.
local function encoded_body(opts, hdrs, method, skip)
  local body = request_body(opts, hdrs, method, skip)
  local compress = opts.compress
  if not compress or body == nil or body == "" then return body end
  if hdrs:contains("Content-Encoding") then
    error(asyncio.ValueError("compress can not be set if Content-Encoding "
                             .. "header is set"), 0)
  end
  local coding = compress == true and "deflate" or compress
  hdrs:set("Content-Encoding", coding)
  hdrs:set("Content-Length", nil)
  if not hdrs:contains("Transfer-Encoding") then
    hdrs:add("Transfer-Encoding", "chunked")
  end
  return compressed_body(body, coding)
end

--- The bytes of a request's head (with a string body after it), its
-- target in absolute form for a proxy (absolute); a field the C writer
-- refuses (CR, LF or NUL in it, a bad name) raises ValueError, as
-- aiohttp's.
local function request_head(method, u, hdrs, body, absolute)
  local target = absolute and url_mod.format(u) or u.path ..
    (u.query ~= "" and "?" .. u.query or "")
  local line = method .. " " .. target .. " HTTP/1.1"
  local ok, bytes = pcall(_http.head, line, hdrs,
                          type(body) == "string" and body or nil)
  if not ok then
    error(asyncio.ValueError((tostring(bytes):gsub("^[^:]*:%d+: ", ""))), 0)
  end
  return bytes
end

--- The next response head on conn and whether it is final (an interim
-- one, 100 Continue, is read to its end).
local function next_head(conn, sock_read)
  while true do
    local h = conn:next_event(sock_read)
    if type(h) == "table" then
      if h.status >= 200 or h.status == 101 then return h, true end
      -- an interim response (100 Continue): its end comes at once
      if conn:next_event(sock_read) ~= true then
        error(M.ClientResponseError{status = 400,
          message = "bad interim response"}, 0)
      end
      return h, false
    end
  end
end

--- With Expect: 100-continue, after the head is sent: true once the
-- server's 100 Continue came (the body may go), or the final answer's
-- head when it came first (the body is never sent: the connection is not
-- kept), as aiohttp's expect100.
local function await_continue(conn, sock_read)
  while true do
    local h, final = next_head(conn, sock_read)
    if final then
      h.keep_alive = false
      return h
    end
    if h.status == 100 then return true end
  end
end

--- Sends one request (head: its bytes, body: what encoded_body gave; a
-- string body is in head unless expect) on conn and reads its head:
-- returns the head.
local function exchange(conn, method, head, body, sock_read, expect)
  local w = conn.writer
  w:write(head)
  if expect and body ~= nil then -- a string body is not in head then
    await(w:drain())
    local answer = await_continue(conn, sock_read)
    if answer ~= true then return answer end
    if type(body) == "string" then w:write(body) end
  end
  if type(body) == "function" then
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
    local left = body.size
    while left > 0 do
      local piece = body.read(left < 65536 and left or 65536)
      if #piece > left then piece = piece:sub(1, left) end
      left = left - #piece
      w:write(piece)
      await(w:drain())
    end
  end
  await(w:drain())
  if method == "HEAD" then conn.parser:skip_body(true) end
  while true do
    local h, final = next_head(conn, sock_read)
    if final then return h end
  end
end

-- The most one piece of a compressed body may decode to, as aiohttp's
-- DEFAULT_MAX_DECOMPRESS_SIZE: a zip bomb fails its first piece instead
-- of filling memory.
local MAX_DECOMPRESS_SIZE = 1 << 25

local function content_decoder(enc)
  if not enc then return nil end
  enc = enc:lower()
  if enc ~= "gzip" and enc ~= "deflate" then return nil end
  local z = _http.Inflater(enc)
  return function(piece)
    local ok, out = pcall(z.feed, z, piece, MAX_DECOMPRESS_SIZE)
    if not ok then
      error(M.ClientPayloadError("Can not decode content-encoding: " ..
                                 enc .. " (" .. tostring(out) .. ")"), 0)
    elseif out == nil then -- the piece decodes to more than the bound
      error(M.ClientPayloadError(("400, message='Decompressed data exceeds "
        .. "the configured limit of %d bytes'"):format(MAX_DECOMPRESS_SIZE)),
        0)
    end
    return out
  end
end

local IDEMPOTENT = {GET = true, HEAD = true, OPTIONS = true, TRACE = true,
                    PUT = true, DELETE = true}

--- One request/response without redirects: a ClientResponse with its
-- head read; the reads of its body stop at `deadline` (a loop time).
function ClientSession:_send(method, u, opts, hdrs, body, timeout, history,
                             deadline)
  local proxy = self:_proxy_for(u, opts)
  local to_proxy = proxy and not tunnelled(u)
  if to_proxy then add_proxy_fields(hdrs, proxy) end
  local expect = (hdrs["expect"] or ""):lower() == "100-continue"
  local head_bytes = request_head(method, u, hdrs, not expect and body or nil,
                                  to_proxy)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local conn, reused = self:_connect(u, opts, timeout, proxy)
    conn.got_bytes, conn.deadline, conn.in_body = false, deadline, false
    local ok, head = pcall(exchange, conn, method, head_bytes, body,
                           timeout.sock_read, expect)
    if ok then
      -- at most 16 fields: the table's hash part stays at 16 slots
      local hh = head.headers
      local resp = setmetatable({
        status = head.status, reason = head.reason, method = method,
        url = u.str or url_mod.format(u), _url = u,
        version = {head.major, head.minor, major = head.major,
                   minor = head.minor},
        headers = headers_mod.wrap(hh), history = history,
        _session = self, _conn = conn, _sock_read = timeout.sock_read,
        _keep_alive = head.keep_alive and not head.upgrade,
        _done = false, content = false, _hdrs = hdrs,
        _decoder = self._decompress and
          content_decoder(rawget(hh, "content-encoding"))},
        ClientResponse)
      resp.content = setmetatable({resp = resp, buf = "", pos = 1,
                                   buf_ends = false,
                                   open = false, at_end = false},
                                  StreamContent)
      conn.in_body = true
      if head.upgrade then return resp end
      if message_parsed(conn) then -- the whole message came with its head
        give_back_parsed(self, resp, conn)
      else -- until its body is read, or comes while it waits (_reap)
        self._holding[resp] = true
      end
      return resp
    end
    self:_release(conn, false)
    if iserror(head, M.ClientResponseError) and not head.request_info then
      head.request_info = request_info(method, u, hdrs)
    end
    -- a kept connection the server had closed: an idempotent request
    -- once more, on a new one (RFC 9112 9.3.1.1; aiohttp 3.9)
    if not (reused and not conn.got_bytes and attempt == 1 and
            IDEMPOTENT[method] and
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

local NO_SKIP = {}

--- Adds to the CIMultiDict h the fields a request carries unless the
-- caller set them or skip (a set of lower-cased names, as
-- skip_auto_headers) holds them: Accept, Accept-Encoding (when zlib is
-- there) and User-Agent.
local function add_default_fields(h, skip)
  skip = skip or NO_SKIP
  if not h:contains("Accept") and not skip.accept then
    h:add("Accept", "*/*")
  end
  if not h:contains("Accept-Encoding") and _http.Inflater and
      not skip["accept-encoding"] then
    h:add("Accept-Encoding", "gzip, deflate")
  end
  if not h:contains("User-Agent") and not skip["user-agent"] then
    h:add("User-Agent", "luaio-http/0.1")
  end
end

function ClientSession:_fields()
  local f = self._fixed
  if f and same_list(f.session, self.headers) then return f end
  local h = CIMultiDict()
  h:extend(self.headers)
  add_default_fields(h, self._skip)
  f = {names = {}, session = table.move(self.headers, 1, #self.headers, 1,
                                        {})}
  local n = 0
  for i = 1, #h, 2 do
    local key = h[i]:lower()
    if key == "host" then -- it replaces the URL's, first in the head
      f.host = h[i + 1]
    else
      f[n + 1], f[n + 2] = h[i], h[i + 1]
      n = n + 2
      f.names[#f.names + 1] = key
    end
  end
  self._fixed = f
  return f
end

--- The head fields of a request to u: Host, then the session's and the
-- request's headers, then the defaults (a CIMultiDict).
function ClientSession:_head_fields(u, opts, skip)
  if opts.headers == nil and skip == self._skip then
    local f = self:_fields()
    local host = f.host or u.host_header
    local hdrs = {"Host", host, host = host}
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
  for name, value in self.headers:items() do
    if name:lower() == "host" then -- one Host: the session's replaces it
      hdrs:set(name, value)
    else
      hdrs:add(name, value)
    end
  end
  if opts.headers ~= nil then
    -- a name's first value replaces the session's, the next ones add to
    -- it (aiohttp's _prepare_headers)
    local extra, added = CIMultiDict(opts.headers), {}
    for name, value in extra:items() do
      local key = name:lower()
      if added[key] then
        hdrs:add(name, value)
      else
        hdrs:set(name, value)
        added[key] = true
      end
    end
  end
  add_default_fields(hdrs, skip)
  return hdrs
end

--- Adds the Authorization field of a request to u, as aiohttp: from
-- `auth` (the request's, kept across the redirects within its origin),
-- else from the credentials in u, else from the session's auth (which
-- does not follow a redirect to another origin either: aiohttp 3.8 sends
-- it there). Returns the auth to keep. Raises ValueError for auth with
-- credentials in u, or for either with an Authorization field.
local function add_auth_header(self, u, hdrs, auth, crossed)
  local from_url = u.user and BasicAuth(u.user, u.password or "")
  if auth and from_url then
    error(asyncio.ValueError("Cannot combine AUTH argument with "
      .. "credentials encoded in URL"), 0)
  end
  auth = auth or from_url
  local a = auth or not crossed and self.auth
  if a then
    if hdrs:contains("Authorization") then
      error(asyncio.ValueError("Cannot combine AUTHORIZATION header with "
        .. "AUTH argument or credentials encoded in URL"), 0)
    end
    hdrs:add("Authorization", a:encode())
  end
  return auth
end

--- u without its user and password (u itself when it has none)
local function without_credentials(u)
  if u.user == nil then return u end
  local c = copy(u)
  c.user, c.password = nil, nil
  return c
end

--- The request, its redirects followed: the last ClientResponse. Past
-- `deadline` (a loop time) the reads of its body raise TimeoutError.
function ClientSession:_request(method, url, opts, timeout, deadline)
  local u = self:_url(url)
  if opts.params then
    u = copy(u)
    u.str = nil
    local q = params_query(opts.params)
    if q ~= "" then
      u.query = u.query ~= "" and (u.query .. "&" .. q) or q
    end
  end
  if opts.data ~= nil and opts.json ~= nil then
    error(asyncio.ValueError("data and json parameters can not be used "
      .. "at the same time"), 0)
  end
  local skip = self._skip
  if opts.skip_auto_headers then
    skip = name_set(opts.skip_auto_headers, skip)
  end
  local history = {}
  local max_redirects = opts.max_redirects or 10
  local allow = opts.allow_redirects ~= false
  -- crossed: a redirect left the first origin; credentials stay behind
  local auth, cookies, crossed = opts.auth, opts.cookies, false
  while true do
    local hdrs = self:_head_fields(u, opts, skip)
    if opts._no_length then hdrs:set("Content-Length", nil) end
    if opts.expect100 then hdrs:set("Expect", "100-continue") end
    if crossed then
      hdrs:set("Authorization", nil)
      hdrs:set("Cookie", nil)
    end
    auth = add_auth_header(self, u, hdrs, auth, crossed)
    add_cookies_header(self, u, hdrs, cookies)
    local body = encoded_body(opts, hdrs, method, skip)
    local resp = self:_send(method, u, opts, hdrs, body, timeout, history,
                            deadline)
    local jar = self.cookie_jar
    if jar and jar.update_cookies and
        rawget(resp.headers, "set-cookie") ~= nil then
      jar:update_cookies(resp.headers:getall("Set-Cookie"), u)
    end
    local loc = resp.headers["location"] -- an empty one is none
    if loc == nil or loc == "" then loc = resp.headers["uri"] end
    if loc == "" then loc = nil end
    if not (allow and REDIRECTS[resp.status] and loc) then
      return resp
    end
    -- as aiohttp: reaching max_redirects raises (0: no limit)
    history[#history + 1] = resp
    if max_redirects > 0 and #history >= max_redirects then
      resp:close()
      error(M.TooManyRedirects{request_info = history[1].request_info,
        history = history}, 0)
    end
    resp:release() -- as aiohttp: a redirect's body is not read
    -- as aiohttp: a Location of another scheme ("ftp:", "mailto:",
    -- "ws:") is not followed
    local scheme = loc:match("^(%a[%w+.-]*):")
    if scheme and scheme:lower() ~= "http" and scheme:lower() ~= "https"
        then
      error(asyncio.ValueError("Can redirect only to http or https"), 0)
    end
    local nu = url_mod.join(without_credentials(u), loc, M.InvalidURL)
    if resp.status == 303 and method ~= "HEAD" or
        (resp.status == 301 or resp.status == 302) and method == "POST" then
      method = "GET"
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      o.data, o.json, o._no_length = nil, nil, true
      opts = o
    end
    if nu.scheme ~= u.scheme or nu.host ~= u.host or nu.port ~= u.port then
      crossed, auth, cookies = true, nil, nil
    end
    u = nu
  end
end

--- request(method, url [, opts]) -> Coroutine -> ClientResponse with its
-- head read; opts: params, headers, data, json, allow_redirects,
-- max_redirects, timeout, raise_for_status, ssl, auth, cookies (see
-- REQUEST_OPTS).
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
    expired = false, handle = false, at = loop:time() + seconds}, Deadline)
  d.handle = loop:call_later(seconds, expire, d)
  return d
end

local do_request = async(function(self, method, url, opts)
  opts = opts or NO_OPTS
  local timeout = bounds(as_timeout(opts.timeout) or self.timeout)
  local resp
  if timeout.total then
    local d <close> = deadline(timeout.total)
    resp = self:_request(method:upper(), url, opts, timeout, d.at)
  else
    resp = self:_request(method:upper(), url, opts, timeout)
  end
  local raise = opts.raise_for_status
  if raise == nil then raise = self._raise end
  if raise then resp:raise_for_status() end
  return resp
end)

--- The message of the first bad argument of a request made by fname
-- (url its argument #argn, opts #argn + 1), or nil.
local function request_args_error(url, opts, fname, n)
  local good_url = type(url) == "string" or
    (type(url) == "table" and url.host ~= nil)
  if good_url and (opts == nil or type(opts) == "table" and
                   opts_error(opts, REQUEST_OPTS, fname, 0) == nil) then
    return nil -- the common case, without debug information
  end
  local k = argn(n, 2)
  if not good_url then
    return ("bad argument #%d to '%s' (string expected, got %s)")
      :format(k, fname, type(url))
  end
  if opts == nil then return nil end
  if type(opts) ~= "table" then
    return ("bad argument #%d to '%s' (table expected, got %s)")
      :format(k + 1, fname, type(opts))
  end
  return opts_error(opts, REQUEST_OPTS, fname, k + 1)
end

--- Raises unless self is a session (s.get(url) instead of s:get(url)).
local function check_session(self, fname)
  if getmetatable(self) ~= ClientSession then
    error(("bad argument #1 to '%s' (http.ClientSession expected, got %s)")
      :format(fname, type(self)), 3)
  end
end

function ClientSession.request(self, method, url, opts)
  check_session(self, "request")
  if type(method) ~= "string" then
    error(("bad argument #%d to 'request' (string expected, got %s)")
      :format(argn(2), type(method)), 2)
  end
  -- a method is an HTTP token (RFC 9110), as aiohttp 3.9 checks
  if not method:find(headers_mod.TOKEN) then
    local shown = method:gsub("[%c\128-\255]", function(c)
      return ("\\x%02x"):format(c:byte())
    end)
    error(asyncio.ValueError(("Method cannot contain non-token characters "
      .. "'%s'"):format(shown)), 2)
  end
  local msg = request_args_error(url, opts, "request", 3)
  if msg then error(msg, 2) end
  if self.closed then error(asyncio.RuntimeError("Session is closed"), 2) end
  return do_request(self, method, url, opts)
end

-- head(url [, opts]) does not follow redirects unless allow_redirects =
-- true, as aiohttp's (request("HEAD", ...) follows them).
local HEAD_OPTS = {allow_redirects = false}

for _, m in ipairs{"get", "post", "put", "patch", "delete", "head",
                   "options"} do
  local METHOD = m:upper()
  local is_head = m == "head"
  ClientSession[m] = function(self, url, opts)
    check_session(self, m)
    local msg = request_args_error(url, opts, m, 2)
    if msg then error(msg, 2) end
    if self.closed then
      error(asyncio.RuntimeError("Session is closed"), 2)
    end
    if is_head and (opts == nil or opts.allow_redirects == nil) then
      if opts == nil then
        opts = HEAD_OPTS
      else
        opts = copy(opts)
        opts.allow_redirects = false
      end
    end
    return do_request(self, METHOD, url, opts)
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

local module_request = async(function(method, url, opts)
  local s = M.ClientSession()
  local ok, resp = pcall(await, s:request(method, url, opts))
  if ok then
    ok, resp = pcall(function() await(resp:read()) return resp end)
  end
  s:__close()
  if not ok then error(resp, 0) end
  return resp
end)

--- request(method, url [, opts]) -> Coroutine -> ClientResponse whose
-- body is read (aiohttp.request): a session of its own, closed after.
function M.request(method, url, opts)
  if type(method) ~= "string" then
    error("bad argument #1 to 'request' (string expected, got " ..
          type(method) .. ")", 2)
  end
  local msg = request_args_error(url, opts, "request", 2)
  if msg then error(msg, 2) end
  return module_request(method, url, opts)
end

---------------------------------------------------------------------------
-- WebSockets

local ws_mod = require "asyncio.http.ws"
M.WSMsgType = ws_mod.WSMsgType
M.WSServerHandshakeError = response_error_class(
  "http.WSServerHandshakeError", M.ClientResponseError)
M.WSCloseCode = ws_mod.WSCloseCode
M.WebSocketError = ws_mod.WebSocketError

local function has_token(value, token)
  for t in (value or ""):gmatch("[^,]+") do
    if t:match("^%s*(.-)%s*$"):lower() == token then return true end
  end
  return false
end

local WS_OPTS = {headers = "table", protocols = "any", heartbeat = "any",
  autoping = "any", autoclose = "any", receive_timeout = "any",
  max_msg_size = "any", timeout = "any", origin = "any", ssl = "any",
  params = "params", auth = "auth", method = "string", proxy = "proxy",
  proxy_auth = "auth", proxy_headers = "table"}

--- The handshake of session:ws_connect(url, opts), opts checked.
local ws_connect = async(function(self, url, opts)
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
  local resp = await(self:request(opts.method or "GET", url, {
    headers = hdrs, params = opts.params, auth = opts.auth,
    allow_redirects = false, timeout = type(opts.timeout) == "table" and
    opts.timeout or nil, ssl = opts.ssl, proxy = opts.proxy,
    proxy_auth = opts.proxy_auth, proxy_headers = opts.proxy_headers}))
  local function fail(message)
    resp:close()
    error(M.WSServerHandshakeError{status = resp.status, message = message,
      request_info = resp.request_info, headers = resp.headers,
      history = resp.history}, 0)
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

--- ws_connect(url [, {headers =, protocols = {...}, heartbeat =,
-- autoping = true, autoclose = true, receive_timeout =, max_msg_size =
-- 4 MiB, timeout = 10 (close's wait; a ClientTimeout bounds the
-- handshake instead), origin =, ssl =, params =, auth =, method =
-- "GET"}]) -> Coroutine -> a WebSocket (see
-- asyncio.http.ws; ws.protocol the subprotocol the server chose among
-- protocols): the connection leaves the pool for good. Bad options
-- raise at the call.
function ClientSession.ws_connect(self, url, opts)
  local n = argn(3)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #%d to 'ws_connect' (table expected, got %s)")
      :format(n, type(opts)), 2)
  end
  opts = opts or {}
  local msg = opts_error(opts, WS_OPTS, "ws_connect", n)
  if msg then error(msg, 2) end
  ws_mod.check_opts(opts, "ws_connect", n)
  return ws_connect(self, url, opts)
end

M._ClientResponse = ClientResponse
M._ClientSession = ClientSession
return M
