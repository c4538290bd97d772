--- asyncio.http.web: an HTTP/1.1 server in aiohttp.web's shape.
--
--   local web = require "asyncio.http.web"
--   local app = web.Application()
--   app.router:add_get("/hello/{name}", async(function(request)
--     return web.Response{text = "hi " .. request.match_info.name}
--   end))
--   web.run_app(app, {host = "127.0.0.1", port = 8080})
--
-- Each connection is a C protocol (asyncio._http's ServerProtocol, on
-- libhttp_parser) on a transport of loop:create_server, with one task
-- that answers its requests one after the other in arrival order
-- (pipelined requests too), the connection kept alive while both sides
-- want it. A handler starts at its request's head: the body streams into
-- request.content (at most client_max_size bytes, else 413). A handler
-- error is a 500 (the traceback goes to web.log_error) and the server
-- goes on; malformed input is a 400 and a closed connection, an
-- oversized head a 431, a head slower than header_timeout a closed
-- connection. See docs/http.md, "How the server works".

local asyncio = require "asyncio"
local _http = require "asyncio._http"
local check = require "asyncio.check"
local http = require "asyncio.http"
local headers_mod = require "asyncio.http.headers"
local cookiejar = require "asyncio.http.cookiejar"
local url_mod = require "asyncio.http.url"
local mimetypes = require "asyncio.http.mimetypes"

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror
local concat = table.concat
local error, ipairs, pairs, pcall, setmetatable, tostring, type =
  error, ipairs, pairs, pcall, setmetatable, tostring, type
local CIMultiDict = headers_mod.CIMultiDict
local CIMultiDict_mt = headers_mod.class
local rawlen = rawlen
local is_cancel = http._is_cancel
local ConnectionResetError = asyncio.ConnectionResetError
local unknown_option = require("asyncio.core")._unknown_option
local gethostname = require("asyncio.core")._gethostname

local M = {}
local EMPTY = {} -- read-only by contract
M.null = http.null -- JSON's null, as lua-cjson decodes it

--- Raises "bad argument #n to 'fname' (unknown option 'x')" when the
-- table opts has a key the set known lacks (Python's TypeError for an
-- unexpected keyword argument); level as error's, from the caller of
-- this. For the checks made below the public function (check.options
-- serves those it makes itself).
local function check_known(opts, known, n, fname, level)
  local k = unknown_option(opts, known)
  if k ~= nil then
    error(("bad argument #%d to '%s' (unknown option '%s')")
      :format(n, fname, tostring(k)), level + 1)
  end
end

---------------------------------------------------------------------------
-- Logging

--- log_error(message, err): where handler errors go (stderr); replace it
-- to capture them.
function M.log_error(message, err)
  local tb = type(err) == "table" and err.traceback or ""
  io.stderr:write(tostring(message), ": ", tostring(err), "\n",
                  tostring(tb or ""), "\n")
end

---------------------------------------------------------------------------
-- Status reasons

-- every status Python's http.HTTPStatus names, with its phrase
local REASONS = {
  [100] = "Continue", [101] = "Switching Protocols", [102] = "Processing",
  [103] = "Early Hints", [200] = "OK", [201] = "Created", [202] = "Accepted",
  [203] = "Non-Authoritative Information", [204] = "No Content",
  [205] = "Reset Content", [206] = "Partial Content", [207] = "Multi-Status",
  [208] = "Already Reported", [226] = "IM Used", [300] = "Multiple Choices",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other",
  [304] = "Not Modified", [305] = "Use Proxy", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [402] = "Payment Required", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed",
  [406] = "Not Acceptable", [407] = "Proxy Authentication Required",
  [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
  [411] = "Length Required", [412] = "Precondition Failed",
  [413] = "Request Entity Too Large", [414] = "Request-URI Too Long",
  [415] = "Unsupported Media Type",
  [416] = "Requested Range Not Satisfiable", [417] = "Expectation Failed",
  [418] = "I'm a Teapot", [421] = "Misdirected Request",
  [422] = "Unprocessable Entity", [423] = "Locked",
  [424] = "Failed Dependency", [425] = "Too Early",
  [426] = "Upgrade Required", [428] = "Precondition Required",
  [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
  [451] = "Unavailable For Legal Reasons", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
  [505] = "HTTP Version Not Supported", [506] = "Variant Also Negotiates",
  [507] = "Insufficient Storage", [508] = "Loop Detected",
  [510] = "Not Extended", [511] = "Network Authentication Required",
}
M.REASONS = REASONS

--- Is there a Content-Type among the headers h?
local function has_ctype(h)
  return rawlen(h) > 0 and h:contains("Content-Type")
end

--- Raises what aiohttp refuses in the options opts of a response (or an
-- HTTP exception), argument #1 of fname, whose headers are h (a
-- CIMultiDict); level as error's, from the caller of this: a text or body
-- that is no string (a number is taken, as Lua's strings take it), and a
-- content_type or charset besides a Content-Type header (ValueError).
local function check_body_field(opts, name, fname, level)
  local v = opts[name]
  if v ~= nil and type(v) ~= "string" and type(v) ~= "number" then
    error(("bad argument #1 to '%s' (field '%s': string expected, got "
      .. "%s)"):format(fname, name, check.typename(v)), level + 1)
  end
end

local function check_body_opts(opts, h, fname, level)
  check_body_field(opts, "text", fname, level + 1)
  check_body_field(opts, "body", fname, level + 1)
  if (opts.content_type or opts.charset) and has_ctype(h) then
    error(asyncio.ValueError("passing both Content-Type header and "
      .. "content_type or charset params is forbidden"), level + 1)
  end
end

---------------------------------------------------------------------------
-- The HTTPException family

local HTTPException = asyncio.Exception:subclass("web.HTTPException")
M.HTTPException = HTTPException

-- statuses whose exceptions have no body (aiohttp's empty_body)
local EMPTY_BODY = {[204] = true, [205] = true, [304] = true}

--- The reason of a response: opts_reason (checked against header
-- injection: ValueError as aiohttp) or the standard phrase.
local function check_reason(reason, status)
  if reason == nil then return REASONS[status] or "" end
  reason = tostring(reason)
  if reason:find("[\r\n]") then
    error(asyncio.ValueError("Reason cannot contain \\r or \\n"), 3)
  end
  return reason
end

--- The constructor of an exception class: opts is a table {text =,
-- body =, reason =, headers =, content_type =, location = (redirects),
-- method =, allowed_methods = (405), max_size =, actual_size = (413)};
-- a string is the text, or the location of a redirect (HTTPFound("/x")
-- as aiohttp). aiohttp's positional forms HTTPMethodNotAllowed(method,
-- allowed_methods [, opts]) and HTTPRequestEntityTooLarge(max_size,
-- actual_size [, opts]) are taken too.
local EXC_OPTS = check.option_set{"text", "body", "reason", "headers",
                                   "content_type", "location"}
local EXC_405_OPTS = check.option_set({"method", "allowed_methods"},
                                      EXC_OPTS)
local EXC_413_OPTS = check.option_set({"max_size", "actual_size"},
                                      EXC_OPTS)

--- opts of a positional form: the fields given, over a copy of more (a
-- table of options or nil).
local function with_fields(more, fields)
  local o = {}
  for k, v in pairs(type(more) == "table" and more or EMPTY) do o[k] = v end
  for k, v in pairs(fields) do o[k] = v end
  return o
end

local function exc_init(status, name)
  local redirect = status >= 300 and status < 400 and status ~= 304
  local known = status == 405 and EXC_405_OPTS or status == 413 and
    EXC_413_OPTS or EXC_OPTS
  return function(e, opts, second, more)
    if status == 405 and type(opts) == "string" then
      opts = with_fields(more, {method = opts, allowed_methods = second})
    elseif status == 413 and type(opts) == "number" then
      opts = with_fields(more, {max_size = opts, actual_size = second})
    elseif type(opts) == "string" then
      opts = redirect and {location = opts} or {text = opts}
    end
    if opts ~= nil and type(opts) ~= "table" then
      error(("bad argument #1 to '%s' (table expected, got %s)")
            :format(name, type(opts)), 3)
    end
    opts = opts or EMPTY
    check_known(opts, known, 1, name, 3)
    -- headers: always a CIMultiDict, with the Location of a redirect and
    -- the Allow of a 405 in it, as aiohttp's
    local h = CIMultiDict(opts.headers or EMPTY)
    check_body_opts(opts, h, name, 3)
    e.status = status
    e.reason = check_reason(opts.reason, status)
    e.location = opts.location
    if redirect and not e.location then
      error(("bad argument #1 to '%s' (location expected)"):format(name), 3)
    end
    if redirect and e.location == "" then
      error(asyncio.ValueError("HTTP redirects need a location to "
                               .. "redirect to."), 3)
    end
    local text = opts.text
    if text == nil and opts.max_size ~= nil then
      text = ("Maximum request body size %s exceeded, actual body size %s")
        :format(opts.max_size, opts.actual_size)
    end
    e.text = text or (not EMPTY_BODY[status] and
      (status .. ": " .. e.reason)) or ""
    e.body = opts.body
    e.content_type = opts.content_type
    e.headers = h
    if redirect then -- as aiohttp's str(URL(location)); .location as given
      h:set("Location", url_mod.requote(tostring(e.location)))
    end
    e.message = e.reason
    if status == 405 then
      local allowed = {}
      for i, m in ipairs(opts.allowed_methods or EMPTY) do
        allowed[i] = m:upper()
      end
      table.sort(allowed)
      e.method = opts.method and opts.method:upper()
      e.allowed_methods = allowed
      h:set("Allow", concat(allowed, ","))
    end
  end
end

-- aiohttp's classes, in its order
local EXCEPTIONS = {
  {"HTTPOk", 200}, {"HTTPCreated", 201}, {"HTTPAccepted", 202},
  {"HTTPNonAuthoritativeInformation", 203}, {"HTTPNoContent", 204},
  {"HTTPResetContent", 205}, {"HTTPPartialContent", 206},
  {"HTTPMultipleChoices", 300}, {"HTTPMovedPermanently", 301},
  {"HTTPFound", 302}, {"HTTPSeeOther", 303}, {"HTTPNotModified", 304},
  {"HTTPUseProxy", 305}, {"HTTPTemporaryRedirect", 307},
  {"HTTPPermanentRedirect", 308},
  {"HTTPBadRequest", 400}, {"HTTPUnauthorized", 401},
  {"HTTPPaymentRequired", 402}, {"HTTPForbidden", 403},
  {"HTTPNotFound", 404}, {"HTTPMethodNotAllowed", 405},
  {"HTTPNotAcceptable", 406}, {"HTTPProxyAuthenticationRequired", 407},
  {"HTTPRequestTimeout", 408}, {"HTTPConflict", 409}, {"HTTPGone", 410},
  {"HTTPLengthRequired", 411}, {"HTTPPreconditionFailed", 412},
  {"HTTPRequestEntityTooLarge", 413}, {"HTTPRequestURITooLong", 414},
  {"HTTPUnsupportedMediaType", 415},
  {"HTTPRequestRangeNotSatisfiable", 416}, {"HTTPExpectationFailed", 417},
  {"HTTPMisdirectedRequest", 421}, {"HTTPUnprocessableEntity", 422},
  {"HTTPFailedDependency", 424}, {"HTTPUpgradeRequired", 426},
  {"HTTPPreconditionRequired", 428}, {"HTTPTooManyRequests", 429},
  {"HTTPRequestHeaderFieldsTooLarge", 431},
  {"HTTPUnavailableForLegalReasons", 451},
  {"HTTPInternalServerError", 500}, {"HTTPNotImplemented", 501},
  {"HTTPBadGateway", 502}, {"HTTPServiceUnavailable", 503},
  {"HTTPGatewayTimeout", 504}, {"HTTPVersionNotSupported", 505},
  {"HTTPVariantAlsoNegotiates", 506}, {"HTTPInsufficientStorage", 507},
  {"HTTPNotExtended", 510}, {"HTTPNetworkAuthenticationRequired", 511},
}
-- HTTPError: the base of the 4xx and 5xx classes, as aiohttp's
local HTTPError = HTTPException:subclass("web.HTTPError")
M.HTTPError = HTTPError
local groups = {
  [2] = HTTPException:subclass("web.HTTPSuccessful"),
  [3] = HTTPException:subclass("web.HTTPRedirection"),
  [4] = HTTPError:subclass("web.HTTPClientError"),
  [5] = HTTPError:subclass("web.HTTPServerError"),
}
M.HTTPSuccessful, M.HTTPRedirection = groups[2], groups[3]
M.HTTPClientError, M.HTTPServerError = groups[4], groups[5]
for _, x in ipairs(EXCEPTIONS) do
  local name, status = x[1], x[2]
  local cls = groups[status // 100]:subclass("web." .. name,
                                             exc_init(status, name))
  cls.status_code = status
  M[name] = cls
end

---------------------------------------------------------------------------
-- Responses

local date_cache, date_at = "", -1
local function http_date()
  local now = os.time()
  if now ~= date_at then
    date_at = now
    date_cache = os.date("!%a, %d %b %Y %H:%M:%S GMT", now)
  end
  return date_cache
end

local StreamResponse = {__name = "web.StreamResponse"}
StreamResponse.__index = StreamResponse

local Response = setmetatable({__name = "web.Response"},
                              {__index = StreamResponse})

--- A Response's fields, and its content_length as aiohttp's property
-- computes it (unless set): its Content-Length header's, else the length
-- of its body (text or body, as it stands), 0 without one.
function Response.__index(r, k)
  if k ~= "content_length" then return Response[k] end
  local h = rawget(r, "headers")
  local cl = h and rawlen(h) > 0 and tonumber(h["content-length"])
  if cl then return cl end
  local b = rawget(r, "text") or rawget(r, "body")
  if type(b) == "number" then b = tostring(b) end
  return type(b) == "string" and #b or 0
end


-- The options of the responses: the head's, then each kind's own
local HEAD_OPTS = check.option_set{"status", "reason", "headers",
                                   "content_type", "charset"}
local RESPONSE_OPTS = check.option_set({"text", "body"}, HEAD_OPTS)
local FILE_OPTS = check.option_set({"chunk_size"}, HEAD_OPTS)

--- A new response of class cls from opts, argument #n of fname, which
-- takes the options of the set known; every field set at once.
local function new_response(cls, opts, fname, n, known)
  if opts == nil then
    opts = EMPTY
  elseif type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)")
          :format(n, fname, type(opts)), 3)
  end
  if opts ~= EMPTY and unknown_option(opts, known) ~= nil then
    check_known(opts, known, n, fname, 3) -- raises
  end
  local status = opts.status or 200
  if math.type(status) ~= "integer" or status < 100 or status > 999 then
    error(("bad argument #%d to '%s' (field 'status': integer 100-999 "
      .. "expected, got %s)"):format(n, fname, math.type(status) or
      check.typename(status)), 3)
  end
  local h = opts.headers
  h = h and CIMultiDict(h) or setmetatable({}, CIMultiDict_mt)
  check_body_opts(opts, h, fname, 3)
  return setmetatable({status = status,
    reason = check_reason(opts.reason, status), headers = h,
    content_type = opts.content_type, charset = opts.charset,
    prepared = false, text = false, body = false, compression = false},
    cls), opts
end

--- StreamResponse([{status =, reason =, headers =}]): a response written
-- piece by piece: await(resp:prepare(request)), await(resp:write(data)),
-- await(resp:write_eof()); chunked unless content_length is set first.
function M.StreamResponse(opts)
  local r = new_response(StreamResponse, opts, "StreamResponse", 1,
                         HEAD_OPTS)
  r.text, r.body = nil, nil
  return r
end

--- Response{status =, reason =, text =, body =, content_type =,
-- charset =, headers =}
function M.Response(opts)
  local r
  r, opts = new_response(Response, opts, "Response", 1, RESPONSE_OPTS)
  local status = r.status
  local text, body = opts.text, opts.body
  if text ~= nil and body ~= nil then
    error("only one of text and body may be given", 2)
  end
  if text ~= nil then
    if type(text) ~= "string" then text = tostring(text) end
    r.text, r.body, r._text = text, text, text
    -- as aiohttp: text is sent as text/plain unless said otherwise, in
    -- UTF-8 unless a charset is given (a Content-Type header too)
    local h = r.headers
    if not has_ctype(h) then
      r.content_type = r.content_type or "text/plain"
      r.charset = r.charset or "utf-8"
    elseif not h["content-type"]:lower():find("charset", 1, true) then
      h:set("Content-Type", h["content-type"] .. "; charset=" ..
            (r.charset or "utf-8"))
    end
  else
    r.text = nil
    if body ~= nil then
      r.body = tostring(body)
      if not r.content_type and not has_ctype(r.headers) then
        r.content_type = "application/octet-stream"
      end
    else
      r.body = nil
      if not r.content_type and not has_ctype(r.headers) and
          not EMPTY_BODY[status] and status >= 200 then
        r.content_type = "application/octet-stream" -- as aiohttp
      end
    end
  end
  return r
end

local JSON_OPTS = check.option_set{"status", "reason", "headers",
                                   "content_type", "dumps", "text", "body"}

--- json_response(value [, {status =, reason =, headers =, content_type
-- = "application/json", dumps = (lua-cjson's encode), text =, body =}]):
-- the value encoded by dumps, sent as text (so "; charset=utf-8", as
-- aiohttp); or, with value nil, the JSON text or body given already
-- (ValueError with a value too, as aiohttp).
function M.json_response(value, opts)
  opts = check.options(opts, 2, "json_response", JSON_OPTS) or EMPTY
  local text, body = opts.text, opts.body
  if text ~= nil or body ~= nil then
    if value ~= nil or (text ~= nil and body ~= nil) then
      error(asyncio.ValueError("only one of data, text, or body should be "
        .. "specified"), 2)
    end
  else
    text = http._dumps(value, opts.dumps, 2)
  end
  return M.Response{status = opts.status, reason = opts.reason,
    headers = opts.headers, text = text, body = body,
    content_type = opts.content_type or "application/json"}
end

-- CookieError: an illegal cookie name or attribute (a ValueError; in
-- Python http.cookies.CookieError)
local CookieError = asyncio.ValueError:subclass("web.CookieError")
M.CookieError = CookieError

-- the bytes a cookie name may hold; a value is quoted as Python's
-- http.cookies quotes it (so it can never add attributes)
local LEGAL = cookiejar.LEGAL
local quote_cookie = cookiejar.quote

--- An attribute value, raising CookieError for what would end it or the
-- header (';', CR, LF, other control bytes).
local function cookie_attr(what, v)
  v = tostring(v)
  if v:find("[;%c]") then
    error(CookieError(("invalid character in cookie %s"):format(what)), 3)
  end
  return v
end

local COOKIE_OPTS = check.option_set{"max_age", "path", "domain", "expires",
                                     "secure", "httponly", "samesite"}

--- set_cookie(name, value [, {max_age =, path = "/", domain =, expires =,
-- secure =, httponly =, samesite =}]): adds a Set-Cookie header.
-- The value is quoted as Python's http.cookies does when it holds bytes
-- outside the legal set; an illegal name or an attribute with ';' or a
-- control byte raises web.CookieError (a ValueError).
function StreamResponse:set_cookie(name, value, opts)
  opts = check.options(opts, 4, "set_cookie", COOKIE_OPTS) or EMPTY
  if type(name) ~= "string" or not name:find(LEGAL) then
    error(CookieError(("Illegal key %q"):format(tostring(name))), 2)
  end
  local parts = {name .. "=" .. quote_cookie(tostring(value))}
  -- in the order of Python's Morsel (its attribute names sorted)
  if opts.domain then
    parts[#parts + 1] = "Domain=" .. cookie_attr("domain", opts.domain)
  end
  if opts.expires then
    parts[#parts + 1] = "expires=" .. cookie_attr("expires", opts.expires)
  end
  if opts.httponly then parts[#parts + 1] = "HttpOnly" end
  if opts.max_age then
    parts[#parts + 1] = "Max-Age=" .. cookie_attr("max_age", opts.max_age)
  end
  parts[#parts + 1] = "Path=" .. cookie_attr("path", opts.path or "/")
  if opts.samesite then
    parts[#parts + 1] = "SameSite=" .. cookie_attr("samesite",
                                                   opts.samesite)
  end
  if opts.secure then parts[#parts + 1] = "Secure" end
  self.headers:add("Set-Cookie", concat(parts, "; "))
end

local DEL_COOKIE_OPTS = check.option_set{"path", "domain"}

--- del_cookie(name [, {path = "/", domain =}])
function StreamResponse:del_cookie(name, opts)
  opts = check.options(opts, 3, "del_cookie", DEL_COOKIE_OPTS) or EMPTY
  self:set_cookie(name, "", {max_age = 0, path = opts.path,
    domain = opts.domain, expires = "Thu, 01 Jan 1970 00:00:00 GMT"})
end

--- set_status(status [, reason]): a new status, and its reason (the
-- standard phrase unless given), as aiohttp; RuntimeError once the head
-- went out.
function StreamResponse:set_status(status, reason)
  if self.prepared then
    error(asyncio.RuntimeError("Cannot change the response status code "
      .. "after the headers have been sent"), 2)
  end
  if math.type(status) ~= "integer" or status < 100 or status > 999 then
    check.argerror(2, "set_status", "integer 100-999 expected, got "
      .. check.typename(status))
  end
  check.type(reason, 3, "set_status", "string", true)
  self.reason = check_reason(reason, status)
  self.status = status
end

-- {major, minor} tables, one per version (read-only by contract)
local versions = setmetatable({}, {__index = function(t, major)
  local by_minor = setmetatable({}, {__index = function(u, minor)
    local v = {major, minor, major = major, minor = minor}
    u[minor] = v
    return v
  end})
  t[major] = by_minor
  return by_minor
end})

-- "HTTP/1.1 200 OK" by version (a request's), status and reason
local status_lines = setmetatable({}, {__mode = "k",
  __index = function(t, v)
    local by_status = setmetatable({}, {__index = function(u, status)
      local by_reason = setmetatable({}, {__index = function(w, reason)
        local line = ("HTTP/%d.%d %d %s"):format(v[1], v[2], status, reason)
        w[reason] = line
        return line
      end})
      u[status] = by_reason
      return by_reason
    end})
    t[v] = by_status
    return by_status
  end})

--- The status line of r answering request: in the request's version, as
-- aiohttp ("HTTP/1.0 200 OK" to an HTTP/1.0 request); HTTP/1.1 without
-- one (a request that could not be parsed).
local function status_line(r, request)
  local v = request and request.version or versions[1][1]
  return status_lines[v][r.status][r.reason]
end

-- "text/plain; charset=utf-8" by content type and charset
local ctypes = setmetatable({}, {__index = function(t, ct)
  local by_cs = setmetatable({}, {__index = function(u, cs)
    local v = ct .. "; charset=" .. cs
    u[cs] = v
    return v
  end})
  t[ct] = by_cs
  return by_cs
end})

--- The Content-Type r adds (nil when its headers have one).
local function content_type(r)
  local ct = r.content_type
  if not ct then return nil end
  local h = r.headers
  if rawlen(h) > 0 and h:contains("Content-Type") then return nil end
  local cs = r.charset
  return cs and ctypes[ct][cs] or ct
end

--- The Connection header of a response on conn (nil for none).
local function connection_header(conn, request)
  if not conn.keep_alive then return "close" end
  if request and request.version[2] == 0 then return "keep-alive" end
  return nil
end

local function flush_conn(conn)
  conn.flushing = false
  if not conn.lost then conn.proto:flush() end
end

-- The content codings a response may be compressed with, as aiohttp's
-- web.ContentCoding; enable_compression takes one of them (or true for
-- "deflate", false for "identity", as aiohttp's deprecated booleans).
M.ContentCoding = {deflate = "deflate", gzip = "gzip",
                   identity = "identity"}

--- enable_compression([force [, strategy]]): the body is sent compressed
-- with force, or else with the first of deflate and gzip (aiohttp's
-- order) that the request's Accept-Encoding names; strategy is zlib's
-- (0..4). Content-Length becomes the compressed one (Response) or goes
-- (StreamResponse: chunked).
function StreamResponse:enable_compression(force, strategy)
  if force == true then
    force = "deflate"
  elseif force == false then
    force = "identity"
  elseif force ~= nil and M.ContentCoding[force] ~= force then
    error(("bad argument #1 to 'enable_compression' (\"deflate\", "
           .. "\"gzip\", \"identity\" or boolean expected, got %s)")
          :format(type(force) == "string" and ("%q"):format(force)
                  or type(force)), 2)
  end
  if strategy ~= nil and (math.type(strategy) ~= "integer" or
                          strategy < 0 or strategy > 4) then
    error("bad argument #2 to 'enable_compression' (integer 0..4 "
          .. "expected)", 2)
  end
  self.compression = true
  self._compression_force, self._compression_strategy = force, strategy
end

--- Does the Accept-Encoding value accept (lower-cased) name the coding?
-- A q of 0 refuses it.
local function accepts(accept, coding)
  for item in accept:gmatch("[^,]+") do
    local name, params = item:match("^%s*([^;%s]+)%s*(.*)$")
    if name == coding then
      local q = params:match(";%s*q%s*=%s*([%d.]+)")
      return not q or (tonumber(q) or 1) > 0
    end
  end
  return false
end

--- The coding r's body is compressed with for request (nil: none).
local function content_coding(r, request)
  if not r.compression or request == nil then return nil end
  local status = r.status
  if status == 204 or status == 304 or status < 200 then return nil end
  local coding = r._compression_force
  if coding == nil then
    local accept = request.headers["accept-encoding"]
    accept = accept and accept:lower() or ""
    coding = accepts(accept, "deflate") and "deflate" or
      accepts(accept, "gzip") and "gzip" or nil
  end
  if coding == "identity" then return nil end
  return coding
end

--- Marks the head of r as compressed with coding: Content-Encoding set,
-- its own Content-Length gone.
local function set_coding(r, coding)
  local h = r.headers
  h:set("Content-Length", nil)
  h:set("Content-Encoding", coding)
end

--- Writes r (a Response) whole on conn in one write: head and body.
-- request is nil for the server's own error answers.
--- A text set on the response after it was made (aiohttp's text setter)
-- becomes its body, sent with a charset (utf-8 unless one is set); a
-- response made without text becomes text/plain.
local function take_new_text(r)
  local text = r.text
  if type(text) ~= "string" then text = tostring(text) end
  local h = r.headers
  if has_ctype(h) then
    if not h["content-type"]:lower():find("charset", 1, true) then
      h:set("Content-Type", h["content-type"] .. "; charset=" ..
            (r.charset or "utf-8"))
    end
  else
    if r.content_type == nil or
        r.content_type == "application/octet-stream" then
      r.content_type = "text/plain"
    end
    r.charset = r.charset or "utf-8"
  end
  r.text, r.body, r._text = text, text, text
end

function M._send_response(conn, r, request)
  r._conn = conn
  local status = r.status
  if r.text and r.text ~= r._text then take_new_text(r) end
  local body = r.body or ""
  local no_body = status == 204 or status == 304 or status < 200 or
    (request and request.method == "HEAD")
  local coding = content_coding(r, request)
  if coding then -- a HEAD's head says what a GET's would
    set_coding(r, coding)
    body = _http.Deflater(coding, nil, r._compression_strategy)
      :finish(body)
  end
  local h = r.headers
  -- respond raises (writing nothing) for a CR, LF or NUL in the head:
  -- r stays unprepared, so the caller can still answer 500
  local corked = conn.proto:respond(status_line(r, request),
    http_date(), content_type(r), rawlen(h) > 0 and h or nil,
    (status ~= 204 and status >= 200) and #body or nil, false,
    connection_header(conn, request), not no_body and body or nil)
  r.prepared, r._eof = true, true
  conn.responded = true
  if corked and not conn.flushing then
    -- corked behind pipelined requests: out by the end of this turn
    conn.flushing = true
    conn.loop:call_soon(flush_conn, conn)
  end
end

--- prepare(request) -> Coroutine: sends the head
StreamResponse.prepare = async(function(self, request)
  if self.prepared then return end
  local conn = request._conn
  self._conn = conn
  self._request = request
  local status = self.status
  local no_body = request.method == "HEAD" or status == 204 or
    status == 304 or status < 200
  local cl = self.content_length or
    tonumber(self.headers["content-length"])
  local coding = content_coding(self, request)
  if coding then
    set_coding(self, coding)
    cl = nil
    if not no_body then
      self._deflate = _http.Deflater(coding, nil,
                                     self._compression_strategy)
    end
  end
  self._chunked = not no_body and not cl and request.version[2] >= 1
    and request.version[1] == 1
  if not self._chunked and not cl and not no_body then
    conn.keep_alive = false -- HTTP/1.0: the end is the close
  end
  self._no_body = no_body
  -- the bytes the Content-Length still allows (nil: no bound)
  self._left = not self._chunked and not no_body and cl or nil
  local h = self.headers
  local ct = content_type(self)
  if ct == nil and status ~= 204 and status ~= 304 and not has_ctype(h) then
    ct = "application/octet-stream" -- aiohttp's default
  end
  -- raises (nothing written, still unprepared) for a CR or LF in it
  local corked = conn.proto:respond(status_line(self, request),
    http_date(), ct, rawlen(h) > 0 and h or nil, cl, self._chunked,
    connection_header(conn, request), nil)
  self.prepared = true
  conn.responded = true
  if corked then conn.proto:flush() end -- a stream's head goes out now
  conn:_drain()
end)

--- write(data) -> Coroutine: one piece of the body; what goes past a
-- Content-Length set before prepare() is dropped.
StreamResponse.write = async(function(self, data)
  if not self.prepared then
    error(asyncio.RuntimeError("Cannot call write() before prepare()"), 2)
  end
  if self._eof then
    error(asyncio.RuntimeError("Cannot call write() after write_eof()"), 2)
  end
  if type(data) ~= "string" then
    if type(data) ~= "number" then
      error(("bad argument #1 to 'write' (string expected, got %s)")
        :format(check.typename(data)), 2)
    end
    data = tostring(data)
  end
  if data == "" or self._no_body then return end
  local conn = self._conn
  if conn.lost then error(ConnectionResetError("Connection lost"), 0) end
  local left = self._left
  if left then -- past the Content-Length: dropped, as aiohttp
    if #data > left then data = data:sub(1, left) end
    self._left = left - #data
    if data == "" then return end
  end
  if self._deflate then
    data = self._deflate:feed(data)
    if data == "" then return end -- zlib holds it for now
  end
  conn.proto:write(self._chunked and _http.chunk(data) or data)
  conn:_drain()
end)

--- write_eof() -> Coroutine: the end of the body
StreamResponse.write_eof = async(function(self, data)
  if self._eof then return end
  if data then await(self:write(data)) end
  self._eof = true
  local z = self._deflate
  if z and not self._conn.lost then -- what zlib held back, and its end
    local tail = z:finish() -- never "": zlib ends with a trailer
    self._conn.proto:write(self._chunked and _http.chunk(tail) or tail)
  end
  if self._chunked then
    self._conn.proto:write("0\r\n\r\n")
  end
  -- a body short of its Content-Length ends with the connection: the
  -- client must not read the next response as the rest of it
  if self._left and self._left > 0 then self._conn.keep_alive = false end
  self._conn:_drain()
end)

--- A Response is sent in one write: head and body.
Response.prepare = async(function(self, request)
  if self.prepared then return end
  M._send_response(request._conn, self, request)
  request._conn:_drain()
end)
Response.write_eof = async(function(self) end)

local MONTHS = {jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
  jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12}

--- Seconds since the epoch of the UTC date y-m-d h:mi:sec (no time
-- zone involved: days from the civil date).
local function utc_time(y, m, d, h, mi, sec)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return ((era * 146097 + doe - 719468) * 24 + h) * 3600 + mi * 60 + sec
end

--- An HTTP date (RFC 7231: IMF-fixdate, or the obsolete RFC 850 and
-- asctime forms) as seconds since the epoch; nil when s is none of them.
local function parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, h, mi, sec =
    s:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d then -- RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    d, mon, y, h, mi, sec =
      s:match("^%a+, (%d%d)%-(%a%a%a)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    if y then
      y = tonumber(y)
      y = y + (y < 70 and 2000 or 1900)
    end
  end
  if not d then -- asctime: Sun Nov  6 08:49:37 1994
    mon, d, h, mi, sec, y =
      s:match("^%a%a%a (%a%a%a) ([ %d]%d) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$")
  end
  local m = mon and MONTHS[mon:lower()]
  if not m then return nil end
  d, h, mi, sec = tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  return utc_time(tonumber(y), m, d, h, mi, sec)
end
M._parse_http_date = parse_http_date

local FileResponse = setmetatable({__name = "web.FileResponse"},
                                  {__index = StreamResponse})
FileResponse.__index = FileResponse

--- FileResponse(path [, {chunk_size = 262144, status =, reason =,
-- headers =}]): the file at path, sent by prepare in chunk_size pieces
-- (never read whole) with the Content-Type its extension names (unless
-- set), Content-Length and Last-Modified; a request whose
-- If-Modified-Since is at or after the file's mtime gets a 304. A file
-- that cannot be opened is the error of fs.stat (a 500, as aiohttp 3.8).
function M.FileResponse(path, opts)
  if type(path) ~= "string" then
    error("bad argument #1 to 'FileResponse' (string expected, got " ..
          type(path) .. ")", 2)
  end
  local r = new_response(FileResponse, opts, "FileResponse", 2, FILE_OPTS)
  r.text, r.body = nil, nil
  r._path, r._chunk = path, (opts or EMPTY).chunk_size or 262144
  return r
end

--- The part of a file of size bytes (modified at mtime) a request's
-- Range header asks for, as aiohttp's FileResponse reads it (one range,
-- bytes=a-b, a- or -n): nil for the whole file (no Range, or an If-Range
-- date older than the file), start and count, or false when it cannot
-- be served (416).
local function file_range(request, size, mtime)
  local rng = request.headers["range"]
  if rng == nil then return nil end
  local since = parse_http_date(request.headers["if-range"])
  if since and mtime > since then return nil end
  local s, e = rng:match("^bytes=(%d*)-(%d*)$")
  if not s then return false end
  s, e = tonumber(s), tonumber(e)
  if s == nil and e == nil then return false end
  if s == nil then -- the last e bytes
    s = math.max(size - e, 0)
    if s >= size then return false end
    return s, size - s
  end
  if e ~= nil then
    e = math.min(e, size - 1) + 1 -- inclusive in the header; past the end:
    if s >= e then return false end -- the rest of the file
  end
  if s >= size then return false end
  return s, math.min(e or size, size) - s
end

--- prepare(request) -> Coroutine: sends the file, the part of it a Range
-- asks for (206), a 416, or the 304
FileResponse.prepare = async(function(self, request)
  if self.prepared then return end
  local fs = require "asyncio.fs"
  local st = self._stat or await(fs.stat(self._path))
  -- as aiohttp: Last-Modified rounds the mtime up, and a date at or
  -- after the mtime (compared as times) is a 304
  self.headers:set("Last-Modified", os.date("!%a, %d %b %Y %H:%M:%S GMT",
                                            math.ceil(st.mtime)))
  local since = parse_http_date(request.headers["if-modified-since"])
  if since and st.mtime <= since then
    self.status, self.reason = 304, REASONS[304]
    await(StreamResponse.prepare(self, request))
    return await(self:write_eof())
  end
  self.headers:set("Accept-Ranges", "bytes")
  local start, count = file_range(request, st.size, st.mtime)
  if start == false then
    self.headers:set("Content-Range", "bytes */" .. st.size)
    self.status, self.reason = 416, REASONS[416]
    self.content_length = 0
    await(StreamResponse.prepare(self, request))
    return await(self:write_eof())
  end
  local f <close> = await(fs.open(self._path, "rb"))
  self.content_type = self.content_type or M._guess_type(self._path)
  if start then
    self.status, self.reason = 206, REASONS[206]
    self.headers:set("Content-Range", ("bytes %d-%d/%d"):format(start,
      start + count - 1, st.size))
    await(f:seek("set", start))
  end
  count = count or st.size
  self.content_length = count
  await(StreamResponse.prepare(self, request))
  if request.method ~= "HEAD" then
    local left = count
    while left > 0 do
      local piece = await(f:read(math.min(self._chunk, left)))
      if not piece then break end -- the file shrank: the client sees it
      left = left - #piece
      await(self:write(piece))
    end
  end
  await(self:write_eof())
end)

--- The Response an HTTPException e stands for: its body, else its text
-- (none for 204, 205 and 304), its Location.
local function exception_response(e)
  local text = e.body == nil and not EMPTY_BODY[e.status] and e.text
    or nil
  local r = M.Response{status = e.status, reason = e.reason,
    headers = e.headers, content_type = e.content_type, body = e.body,
    text = text}
  if e.location then
    r.headers:set("Location", url_mod.requote(tostring(e.location)))
  end
  return r
end

---------------------------------------------------------------------------
-- WebSocketResponse

local ws_mod = require "asyncio.http.ws"
M.WSMsgType = ws_mod.WSMsgType
M.WSCloseCode = ws_mod.WSCloseCode

local function not_prepared()
  error(asyncio.RuntimeError("Call .prepare() first"), 2)
end

-- A WebSocketResponse is its WebSocket once prepared (ws_mod.new makes
-- it one): the methods of asyncio.http.ws are called on it directly, as
-- on a client's, so their bad arguments are counted alike.
local WSResponse = {__name = "web.WebSocketResponse"}
local WebSocket = ws_mod.WebSocket
WSResponse.__index = function(t, k)
  local v = WSResponse[k]
  if v ~= nil then return v end
  v = WebSocket[k]
  if rawget(t, "_reader") == nil then -- not prepared
    if k == "closed" then return false end
    if type(v) == "function" then return not_prepared end
    return nil
  end
  return v
end

-- The metatable of a WebSocketResponse once prepared (the same name):
-- look-ups go through tables, its own methods first, then the
-- WebSocket's. WSResponse's __index, a function, would run for every
-- method call and every nil field of a connection's life.
local WSPrepared = {__name = WSResponse.__name}

local WS_OPTS = check.option_set{"protocols", "heartbeat", "autoping",
  "autoclose", "receive_timeout", "max_msg_size", "timeout"}

--- WebSocketResponse([{max_msg_size = 4 MiB, heartbeat =, autoping =
-- true, autoclose = true, receive_timeout =, timeout = 10, protocols =
-- {...}}]): await(ws:prepare(request)) answers the handshake (choosing
-- the first of the client's subprotocols that protocols lists: then
-- ws.ws_protocol); then the methods and fields of asyncio.http.ws.
function M.WebSocketResponse(opts)
  check.options(opts, 1, "WebSocketResponse", WS_OPTS)
  ws_mod.check_opts(opts or {}, "WebSocketResponse", 1)
  return setmetatable({status = 101, prepared = false,
    headers = CIMultiDict(), _opts = opts or {}}, WSResponse)
end

-- the Sec-WebSocket-Version values answered, aiohttp's: RFC 6455's 13,
-- and 7 and 8 of its drafts, whose handshake is the same
local WS_VERSIONS = {["13"] = true, ["8"] = true, ["7"] = true}

--- Why request is no WebSocket handshake this server answers: the
-- HTTPBadRequest to raise, or nil.
local function handshake_error(request)
  local h = request.headers
  local key = h["sec-websocket-key"]
  -- the 400 texts are aiohttp's (a value absent is nil where Python
  -- writes None; the key is quoted as Python's repr quotes it); any
  -- method may ask, as aiohttp's _handshake does not look at it
  if (h["upgrade"] or ""):lower():match("^%s*(.-)%s*$") ~= "websocket" then
    return M.HTTPBadRequest{text = "No WebSocket UPGRADE hdr: " ..
      tostring(h["upgrade"]) .. '\n Can "Upgrade" only to "WebSocket".'}
  end
  if not (h["connection"] or ""):lower():find("upgrade", 1, true) then
    return M.HTTPBadRequest{text = "No CONNECTION upgrade hdr: " ..
      tostring(h["connection"])}
  end
  local version = h["sec-websocket-version"] or ""
  if not WS_VERSIONS[version] then
    return M.HTTPBadRequest{text = "Unsupported version: " .. version}
  end
  if not key or #key ~= 24 or not key:match("^[%w+/]+==$") then
    return M.HTTPBadRequest{text = "Handshake error: " ..
      (key and "'" .. key .. "'" or "nil")}
  end
end

--- can_prepare(request) -> {ok =, protocol =}: whether prepare(request)
-- would answer the handshake, and the subprotocol it would choose, as
-- aiohttp's WebSocketReady; RuntimeError once prepared.
function WSResponse:can_prepare(request)
  if self.prepared then error(asyncio.RuntimeError("Already started"), 2) end
  if handshake_error(request) then return {ok = false} end
  return {ok = true, protocol = ws_mod.choose_protocol(
    request.headers["sec-websocket-protocol"], self._opts.protocols)}
end

WSResponse.prepare = async(function(self, request)
  if self.prepared then return end
  local bad = handshake_error(request)
  if bad then error(bad, 0) end
  local h = request.headers
  local key = h["sec-websocket-key"]
  local conn = request._conn
  conn.keep_alive = false
  conn.responded = true
  self.prepared = true
  local o = self._opts
  local protocol = ws_mod.choose_protocol(h["sec-websocket-protocol"],
                                   o.protocols)
  local f = {"Upgrade", "websocket", "Connection", "upgrade",
    "Sec-WebSocket-Accept", _http.ws_accept(key)}
  if protocol then
    f[#f + 1] = "Sec-WebSocket-Protocol"; f[#f + 1] = protocol
  end
  for name, value in self.headers:items() do
    f[#f + 1] = name; f[#f + 1] = value
  end
  conn.proto:write(_http.head("HTTP/1.1 101 Switching Protocols", f))
  -- the transport goes to a stream protocol, with what came after the
  -- head
  conn.upgraded = true
  local rest = conn.proto:take_rest()
  local t = conn.transport
  local reader = asyncio.StreamReader()
  local sp = asyncio.StreamReaderProtocol(reader)
  t:set_protocol(sp)
  sp:connection_made(t)
  if conn.lost then sp:connection_lost(nil) end
  local writer = asyncio.StreamWriter(t, sp, reader, conn.loop)
  await(writer:drain())
  ws_mod.new(reader, writer, {client = false,
    rest = rest, max_msg_size = o.max_msg_size,
    heartbeat = o.heartbeat, autoping = o.autoping,
    autoclose = o.autoclose, receive_timeout = o.receive_timeout,
    timeout = o.timeout, protocol = protocol}, self)
  self._server = true
  self.ws_protocol = protocol
  setmetatable(self, WSPrepared)
end)

--- write_eof(): what the server does after the handler returns the
-- response: closes the websocket (code 1000) unless it is closed.
WSResponse.write_eof = async(function(self)
  self._eof = true
  if rawget(self, "_reader") and not self.closed then
    await(self:close())
  end
end)

WSPrepared.__index = setmetatable({can_prepare = WSResponse.can_prepare,
  prepare = WSResponse.prepare, write_eof = WSResponse.write_eof},
  {__index = WebSocket})

---------------------------------------------------------------------------
-- Requests

local function unquote(s, plus)
  if plus then s = s:gsub("+", " ") end
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

-- the bytes whose %XX a decoded query string keeps (yarl's)
local QS_KEPT = {["+"] = true, ["="] = true, ["&"] = true, [";"] = true}

--- A raw query string decoded as yarl's query_string: "+" is a space and
-- a %XX its byte, but %2B, %3D, %26 and %3B stay (upper-cased), so the
-- pairs read as sent.
local function unquote_qs(s)
  if not s:find("[%%+]") then return s end
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h)
    local c = string.char(tonumber(h, 16))
    if QS_KEPT[c] then return "%" .. h:upper() end
    return c
  end))
end

-- The methods of a MultiDict (query strings and forms), aiohttp's
-- MultiDictProxy: the table itself maps each name to its first value
-- (so pairs() sees names only); every {name, value} pair in order is
-- under .all. A field named like a method hides it: then call
-- web.MultiDict.getall(t, name).
local KeyError = headers_mod.KeyError
local MultiDict = {}
M.MultiDict = MultiDict

--- getall(name [, default]) -> the list of every value of name (raises
-- KeyError when there is none and no default, as multidict)
function MultiDict.getall(t, name, default)
  local out = {}
  for _, p in ipairs(getmetatable(t).__index.all) do
    if p[1] == name then out[#out + 1] = p[2] end
  end
  if #out == 0 then
    if default ~= nil then return default end
    error(KeyError(name), 2)
  end
  return out
end

--- getone(name [, default]) -> the first value (raises KeyError when
-- there is none and no default, as multidict)
function MultiDict.getone(t, name, default)
  local v = rawget(t, name)
  if v ~= nil then return v end
  if default ~= nil then return default end
  error(KeyError(name), 2)
end

--- get(name [, default]) -> the first value or default
function MultiDict.get(t, name, default)
  local v = rawget(t, name)
  if v == nil then return default end
  return v
end

--- items() -> iterator of name, value over every pair in order
function MultiDict.items(t)
  local all, i = getmetatable(t).__index.all, 0
  return function()
    i = i + 1
    local p = all[i]
    if p then return p[1], p[2] end
  end
end

local MultiDict_mt = {__index = MultiDict}

--- first (name -> first value) as a MultiDict of the pairs all.
local function multidict(first, all)
  return setmetatable(first, {__name = "web.MultiDict",
    __index = setmetatable({all = all}, MultiDict_mt)})
end

--- "a=1&b=2" -> {a = "1", b = "2"} (the first value of each name) and
-- the list of {name, value} pairs. Only "&" separates pairs, as aiohttp
-- (yarl, and Python's parse_qsl since 3.9.2): "a=1;b=2" is a = "1;b=2",
-- so a proxy and this server cannot read one query two ways.
local function parse_qs(qs)
  local first, all = {}, {}
  for pair in qs:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = unquote(k, true), unquote(v, true)
    all[#all + 1] = {k, v}
    if first[k] == nil then first[k] = v end
  end
  return first, all
end
M._parse_qs = parse_qs

--- The quoted string of s at i (its opening quote) -> its text (\\c is
-- c), the index after its closing quote (or after s when unclosed), and
-- whether a closing quote came.
local function quoted_string(s, i)
  local buf, j = {}, i + 1
  while j <= #s do
    local _, b, text, c = s:find('^([^"\\]*)(["\\]?)', j)
    buf[#buf + 1] = text
    j = b + 1
    if c == '"' then return concat(buf), j, true end
    if c == "" then break end
    buf[#buf + 1] = s:sub(j, j) -- the escaped byte
    j = j + 1
  end
  return concat(buf), j, false
end

--- The text of a cookie's quoted value (q: between the quotes) as
-- Python's http.cookies unquotes it, left to right: \ooo for an octal
-- 000 to 377, else \c is c, so "\\101" is \101 and "\9" is 9.
local function unquote_cookie(q)
  return (q:gsub("\\(.)([0-7]?[0-7]?)", function(c, o)
    if #o == 2 and c:find("^[0-3]$") then
      return string.char(tonumber(c .. o, 8))
    end
    return c .. o
  end))
end

--- The value of a cookie pair at j of h -> the value, the index after
-- it: a quoted value runs to its closing quote (";" inside it
-- included), any other to the next ";" (trailing spaces dropped).
local function cookie_value(h, j)
  if h:byte(j) == 34 then -- unclosed, it is taken as it stands
    local _, e, closed = quoted_string(h, j)
    if closed then return unquote_cookie(h:sub(j + 1, e - 2)), e end
  end
  local v, e = h:match("^([^;]*)()", j)
  return v:match("^(.-)%s*$"), e
end

--- A Cookie header -> name -> value: its "name=value" pairs (RFC 6265
-- 5.4), quoted values unquoted; a piece without "=" is skipped, and a
-- later pair of a name wins, as aiohttp's request.cookies (a dict).
local function parse_cookies(h)
  local out, i = {}, 1
  h = h or ""
  while true do
    local k, j = h:match("^[%s;]*([^=;%s]+)%s*=%s*()", i)
    if k then
      out[k], i = cookie_value(h, j)
    else
      i = h:match("^[%s;]*[^;]*;()", i)
      if not i then return out end
    end
  end
end

--- '; a=1; b="x;y"' -> {a = "1", b = "x;y"} (names lower-cased); a
-- parameter without "=" ("; foo;") is skipped, as aiohttp reads past it;
-- of two of a name the last counts, of two boundaries the first.
local function parse_params(s)
  local params, i = {}, 1
  while true do
    local k, j = s:match("^[%s;]*([^=;%s]+)%s*=%s*()", i)
    if k then
      local v
      if s:byte(j) == 34 then
        v, i = quoted_string(s, j)
      else
        v, i = s:match("^([^;]*)()", j)
        v = v:match("^(.-)%s*$")
      end
      k = k:lower()
      -- a later one wins, but for boundary: aiohttp's multipart reader
      -- takes the first (a MultiDict's get), its charset the last
      if k ~= "boundary" or params.boundary == nil then params[k] = v end
    else -- a parameter without "=", or the end
      i = s:match("^[%s;]*[^=;]+;()", i)
      if not i then return params end
    end
  end
end

--- A Content-Type header -> the type (lower-cased, default
-- application/octet-stream as aiohttp), its parameters (names
-- lower-cased, quotes removed).
local function parse_ctype(h)
  local ct, rest = (h or ""):match("^%s*([^;%s]*)%s*(.*)$")
  if ct == "" then ct = "application/octet-stream" end
  return ct:lower(), parse_params(rest)
end

local Request = {__name = "web.Request"}

-- Fields computed when first read.
local LAZY = {
  -- pairs split from the query as sent: a %26 in a value splits nothing
  query = function(r) return multidict(parse_qs(r._raw_query)) end,
  query_string = function(r) return unquote_qs(r._raw_query) end,
  cookies = function(r) return parse_cookies(r.headers["cookie"]) end,
  content_length = function(r)
    local n = r.headers["content-length"]
    return n and math.tointeger(tonumber(n)) or nil
  end,
  content_type = function(r)
    local ct = parse_ctype(r.headers["content-type"])
    return ct
  end,
  charset = function(r)
    local _, params = parse_ctype(r.headers["content-type"])
    return params.charset
  end,
  secure = function(r) return r.scheme == "https" end,
  body_exists = function(r) return rawget(r, "_has_body") == true end,
  url = function(r)
    return r.scheme .. "://" .. (r.host or "") .. r.raw_path
  end,
  path_qs = function(r) -- the target as sent, without a fragment
    return (r.raw_path:gsub("#.*$", ""))
  end,
  -- aiohttp's URL, as a string: str(request.rel_url) is path_qs
  rel_url = function(r) return r.path_qs end,
  -- the state of the request's application, then of each application
  -- it is a sub-application of, looked up in that order (aiohttp's
  -- ChainMapProxy)
  config_dict = function(r)
    local apps = rawget(r, "_apps") or {r.app}
    return setmetatable({}, {__name = "web.ChainMapProxy",
      __index = function(_, k)
        for i = #apps, 1, -1 do
          local v = rawget(apps[i], "_state")[k]
          if v ~= nil then return v end
        end
      end,
      __newindex = function()
        error("config_dict is read-only", 2)
      end})
  end,
  content = function() -- a request with no body
    local c = asyncio.StreamReader()
    c:feed_eof()
    return c
  end,
}

-- fields read each time
local LIVE = {
  can_read_body = function(r)
    return rawget(r, "_has_body") == true and not r.content:at_eof()
  end,
}

Request.__index = function(r, k)
  local live = LIVE[k]
  if live then return live(r) end
  local v = Request[k]
  if v ~= nil then return v end
  local f = LAZY[k]
  if f then
    v = f(r)
    rawset(r, k, v)
  end
  return v
end

--- read() -> Coroutine -> the body
Request.read = async(function(self)
  if self._body == nil then self._body = await(self.content:read()) end
  return self._body
end)

Request.text = Request.read

--- Why a body failed to decode as JSON: the decoder's message.
local function json_why(e)
  if iserror(e) and e.message ~= nil then return tostring(e.message) end
  return tostring(e)
end

local request_json = async(function(self, loads)
  local body = await(self:read())
  local ok, v = pcall(loads, body)
  if not ok then
    if is_cancel(v) then error(v, 0) end
    error(M.HTTPBadRequest{text = "Invalid JSON: " .. json_why(v)}, 0)
  end
  return v
end)
local REQUEST_JSON_OPTS = check.option_set{"loads"}

--- json([{loads =}]) -> Coroutine -> the body decoded by lua-cjson, or by
-- loads(text) (aiohttp's); what fails to decode is a 400
function Request:json(opts)
  check.options(opts, 2, "json", REQUEST_JSON_OPTS)
  local json = request_json -- its Coroutine objects take the caller's name
  return json(self, http._check_loads(opts and opts.loads, 2, "json"))
end

local function bad_form(why)
  error(M.HTTPBadRequest{text = "Bad multipart/form-data body: " .. why}, 0)
end

--- The headers of a multipart part (s: its head, CRLF-separated lines)
-- as lower-cased name -> value.
local function part_headers(s)
  local h = {}
  for line in s:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:%s]+)%s*:%s*(.-)%s*$")
    if not k then bad_form("bad part header") end
    h[k:lower()] = v
  end
  return h
end

--- A part's name and filename from its Content-Disposition parameters
-- (h: its headers), each nil when absent, as aiohttp's BodyPartReader
-- reads them whatever the disposition type.
local function part_disposition(h)
  local params = parse_params((h["content-disposition"] or ""):match(
    "^%s*[^;%s]*(.*)$"))
  local filename = params.filename
  if not filename and params["filename*"] then -- RFC 5987: utf-8''a%20b
    filename = unquote(params["filename*"]:match("^[^']*'[^']*'(.*)$")
                       or params["filename*"])
  end
  return params.name, filename
end



---------------------------------------------------------------------------
-- request:multipart(): a multipart body read part by part as it arrives
-- (aiohttp's MultipartReader and BodyPartReader)

local MultipartReader = {__name = "web.MultipartReader"}
MultipartReader.__index = MultipartReader
local BodyPartReader = {__name = "web.BodyPartReader"}
BodyPartReader.__index = BodyPartReader

local MAX_PART_HEAD = 16384 -- the bytes of a part's head, at most

--- The reader's buffer holds the body read and not yet taken from
-- mr._pos on; compact drops what was taken.
local function compact(mr)
  if mr._pos > 1 then
    mr._buf, mr._pos = mr._buf:sub(mr._pos), 1
  end
end

--- Appends the next piece of the body to the reader's buffer; false at
-- the end of the body.
local function more(mr)
  local piece = await(mr._content:readany())
  if piece == "" then return false end
  compact(mr)
  mr._buf = mr._buf .. piece
  return true
end

--- Reads to the next delimiter line and past it: true for another part,
-- false for the close delimiter (what follows it is ignored).
local function past_delimiter(mr)
  compact(mr)
  while true do
    local buf = mr._buf
    local _, e = buf:find(mr._delim, 1, true)
    if e then
      while #buf < e + 2 do
        if not more(mr) then bad_form("unterminated delimiter") end
        buf = mr._buf
      end
      if buf:sub(e + 1, e + 2) == "--" then
        mr._buf = ""
        return false
      end
      while not mr._buf:find("\r\n", e + 1, true) do
        if #mr._buf > e + 1024 or not more(mr) then
          bad_form("bad delimiter line")
        end
      end
      local _, le = mr._buf:find("^[ \t]*\r\n", e + 1)
      if not le then bad_form("bad delimiter line") end
      mr._buf = mr._buf:sub(le + 1)
      return true
    end
    -- keep what may be the start of a delimiter
    if #buf > #mr._delim then mr._buf = buf:sub(-#mr._delim) end
    if not more(mr) then bad_form("no boundary") end
  end
end

--- A part's head: its headers, name and filename.
local function read_part_head(mr)
  local head
  compact(mr)
  while true do
    if mr._buf:sub(1, 2) == "\r\n" then -- a part with no header
      head, mr._buf = "", mr._buf:sub(3)
      break
    end
    local he = mr._buf:find("\r\n\r\n", 1, true)
    if he then
      head, mr._buf = mr._buf:sub(1, he - 1), mr._buf:sub(he + 4)
      break
    end
    if #mr._buf > MAX_PART_HEAD then bad_form("part head too large") end
    if not more(mr) then bad_form("unterminated part head") end
  end
  local headers = part_headers(head)
  local name, filename = part_disposition(headers)
  return setmetatable({name = name, filename = filename, headers = headers,
    _reader = mr, _done = false}, BodyPartReader)
end

--- reader:next() -> Coroutine -> the next part, nil after the last (the
-- rest of the current one is skipped first), as aiohttp's next()
MultipartReader.next = async(function(self)
  if self._part and not self._part._done then await(self._part:release()) end
  self._part = nil
  if self._ended then return nil end
  if not self._started then
    self._started = true
    -- the first delimiter opens the body, or ends a preamble line
    compact(self)
    self._buf = "\r\n" .. self._buf
  end
  if not past_delimiter(self) then
    self._ended = true
    return nil
  end
  self._part = read_part_head(self)
  return self._part
end)

--- for part in reader:iter() do (in a task): the parts in turn
function MultipartReader:iter()
  return function() return await(self:next()) end
end

--- part:read_chunk([size = 8192]) -> Coroutine -> up to size bytes of the
-- part, "" at its end
BodyPartReader.read_chunk = async(function(self, size)
  size = size or 8192
  if math.type(size) ~= "integer" or size <= 0 then
    error("bad argument #1 to 'read_chunk' (positive integer expected)", 0)
  end
  if self._done then return "" end
  local mr = self._reader
  local delim = mr._delim
  while true do
    local buf, pos = mr._buf, mr._pos
    local i = buf:find(delim, pos, true)
    if i then -- the part ends before i: the delimiter stays for next()
      if i == pos then
        self._done = true
        return ""
      end
      local n = math.min(i - pos, size)
      mr._pos = pos + n
      return buf:sub(pos, pos + n - 1)
    end
    -- the bytes that cannot start a delimiter
    local safe = #buf - pos + 1 - #delim + 1
    if safe > 0 then
      local n = math.min(safe, size)
      mr._pos = pos + n
      return buf:sub(pos, pos + n - 1)
    end
    if not more(mr) then bad_form("unterminated part") end
  end
end)

--- part:read() -> Coroutine -> the rest of the part (also part:text(),
-- bytes as they are); part:json() decodes it; part:release() skips it.
BodyPartReader.read = async(function(self)
  local parts = {}
  while true do
    local chunk = await(self:read_chunk(65536))
    if chunk == "" then return concat(parts) end
    parts[#parts + 1] = chunk
  end
end)
BodyPartReader.text = BodyPartReader.read
BodyPartReader.json = async(function(self)
  local body = await(self:read())
  if body == "" then return nil end
  local ok, v = pcall(http._decode_json, body)
  if not ok then
    error(M.HTTPBadRequest{text = "Invalid JSON: " .. json_why(v)}, 0)
  end
  return v
end)
BodyPartReader.release = async(function(self)
  while await(self:read_chunk(65536)) ~= "" do end
end)

--- A MultipartReader of the body that the StreamReader content gives,
-- in parts split by boundary (HTTPBadRequest when there is none or it is
-- longer than RFC 2046's 70 bytes).
local function multipart_reader(content, boundary)
  if not boundary or #boundary == 0 or #boundary > 70 then
    bad_form("missing or invalid boundary")
  end
  return setmetatable({_content = content, _buf = "", _pos = 1,
    _delim = "\r\n--" .. boundary, _started = false, _ended = false},
    MultipartReader)
end

--- post() -> Coroutine -> the form of the body as a MultiDict (name ->
-- first value; web.MultiDict methods; all pairs under .all):
-- application/x-www-form-urlencoded (or no Content-Type) and
-- multipart/form-data, whose fields are strings and whose files are
-- tables {filename =, content_type =, headers =, body =}; empty for any
-- other type, as aiohttp. The body is read whole (client_max_size).
Request.post = async(function(self)
  local body = await(self:read())
  local ct, params = parse_ctype(self.headers["content-type"])
  if not self.headers["content-type"] or
      ct == "application/x-www-form-urlencoded" then
    return multidict(parse_qs(body))
  elseif ct == "multipart/form-data" then -- the reader of multipart()
    local content = asyncio.StreamReader()
    if body ~= "" then content:feed_data(body) end
    content:feed_eof()
    local first, all = {}, {}
    for part in multipart_reader(content, params.boundary):iter() do
      -- a 400 where aiohttp's assert makes a 500
      if part.name == nil then bad_form("part without a name") end
      local value = await(part:read())
      if part.filename then
        value = {filename = part.filename, headers = part.headers,
                 body = value,
                 content_type = part.headers["content-type"] or "text/plain"}
      end
      all[#all + 1] = {part.name, value}
      if first[part.name] == nil then first[part.name] = value end
    end
    return multidict(first, all)
  end
  return multidict({}, {})
end)

--- multipart() -> Coroutine -> a MultipartReader of the body, which it
-- reads as it arrives (client_max_size still bounds it): the body must
-- be multipart/* with a boundary, else HTTPBadRequest.
Request.multipart = async(function(self)
  local ct, params = parse_ctype(self.headers["content-type"])
  if not ct or not ct:find("^multipart/") then
    bad_form("not a multipart body")
  end
  return multipart_reader(self.content, params.boundary)
end)

function Request:__tostring()
  return ("<Request %s %s >"):format(self.method, self.path)
end

---------------------------------------------------------------------------
-- The router

local Router = {__name = "web.UrlDispatcher"}

-- router.named[name] is the route named name; so is router.name
-- (aiohttp's router["name"]), a field route_add sets when no method or
-- field of the router has that name.
Router.__index = Router

local Route = {__name = "web.Route"}
Route.__index = Route

local function pct(c) return ("%%%02X"):format(c:byte()) end

--- A route path's part: percent-encoded but for what a path may hold,
-- a "%" too unless keep_pct (a path whose %XX are escapes already).
local function quote_path(s, keep_pct)
  return (s:gsub(keep_pct and "[^%w%-%._~!%$&'%(%)%*%+,;=:@/%%]"
                 or "[^%w%-%._~!%$&'%(%)%*%+,;=:@/]", pct))
end

--- A plain route's path as a request sends it, aiohttp's _requote_path:
-- the bytes a path may not hold as they are (a space, non-ASCII) as %XX,
-- its %XX kept. Plain routes are matched against the path as sent.
local function route_key(path)
  return quote_path(path, true)
end

--- route:url_for([parts [, query]]) -> the route's path with each
-- {name} (or {name:regex}) replaced by parts[name], percent-encoded, and
-- query (a table of parameters or a string) after a "?": aiohttp's
-- url_for(**parts).with_query(query), as a string. A missing part
-- raises KeyError.
function Route:url_for(parts, query)
  if parts ~= nil and type(parts) ~= "table" then
    error("bad argument #1 to 'url_for' (table expected, got "
          .. type(parts) .. ")", 2)
  end
  parts = parts or EMPTY
  local missing
  local path = self.path:gsub("{([%a_][%w_]*)[^}]*}", function(name)
    local v = parts[name]
    if v == nil then
      missing = missing or name
      return ""
    end
    return quote_path(tostring(v))
  end)
  if missing then error(KeyError(missing), 2) end
  if query == nil then return path end
  if type(query) == "table" then query = http._urlencode(query) end
  if type(query) ~= "string" then
    error("bad argument #2 to 'url_for' (table or string expected, got "
          .. type(query) .. ")", 2)
  end
  return query == "" and path or path .. "?" .. query
end

-- {name:regex} for the regexes a Lua pattern can say
local REGEX = {["\\d+"] = "%d+", ["[0-9]+"] = "%d+", ["\\w+"] = "[%w_]+",
  [".*"] = ".*", [".+"] = ".+", ["[^/]+"] = "[^/]+",
  ["[^{}/]+"] = "[^/]+", ["[a-z]+"] = "%l+", ["[A-Za-z]+"] = "%a+"}

local function compile(path)
  if not path:find("{", 1, true) then return nil end
  local names, pat, i = {}, {"^"}, 1
  while true do
    local s, e, spec = path:find("{([^}]*)}", i)
    local lit = path:sub(i, (s or 0) - 1)
    if not s then lit = path:sub(i) end
    pat[#pat + 1] = lit:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
    if not s then break end
    local name, re = spec:match("^([%a_][%w_]*):(.+)$")
    if not name then name = spec:match("^[%a_][%w_]*$") end
    if not name then error("invalid route pattern: " .. path, 4) end
    local lp = "[^/]+"
    if re then
      lp = REGEX[re]
      if not lp then error("unsupported regex in route: " .. re, 4) end
    end
    for _, seen in ipairs(names) do
      if seen == name then -- as aiohttp (Python's re refuses it)
        error(asyncio.ValueError(("Bad pattern '%s': redefinition of "
          .. "name '%s'"):format(path, name)), 4)
      end
    end
    names[#names + 1] = name
    pat[#pat + 1] = "(" .. lp .. ")"
    i = e + 1
  end
  pat[#pat + 1] = "$"
  return concat(pat), names
end

--- Adds the route of method, path and handler, named name (or nil),
-- to the router; bad arguments raise as add_route's, at the line that
-- called the public function calling this.
local function route_add(self, method, path, handler, name, fname, n)
  if self._frozen then
    error(asyncio.RuntimeError("Cannot register a resource into frozen "
                               .. "router."), 3)
  end
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
    error(("bad argument #%d to '%s' (path starting with / expected)")
          :format(n, fname), 3)
  end
  if type(handler) ~= "function" and type(handler) ~= "table" then
    error(("bad argument #%d to '%s' (function expected, got %s)")
          :format(n + 1, fname, type(handler)), 3)
  end
  method = method:upper()
  if method ~= "*" and not method:find(headers_mod.TOKEN) then
    error(asyncio.ValueError(("%s is not allowed HTTP method")
      :format(method)), 3)
  end
  if name ~= nil and self.named[name] ~= nil then
    error(asyncio.ValueError(("Duplicate '%s', already handled by %s %s")
      :format(tostring(name), self.named[name].method,
              self.named[name].path)), 3)
  end
  local route = setmetatable({method = method, path = path,
                              handler = handler, name = name}, Route)
  local pat, names = compile(path)
  if pat then
    route.pattern, route.names = pat, names
    self._dynamic[#self._dynamic + 1] = route
  else
    local key = route_key(path)
    local t = self._exact[key]
    if not t then t = {}; self._exact[key] = t end
    t[method] = route
  end
  if route.name then
    self.named[route.name] = route
    local held = rawget(self, route.name)
    if Router[route.name] == nil and
        (held == nil or getmetatable(held) == Route) then
      rawset(self, route.name, route)
    end
  end
  return route
end

-- The options of add_route and add_post ..., and those of add_get
local ROUTE_OPTS = check.option_set{"name"}
local GET_OPTS = check.option_set({"allow_head"}, ROUTE_OPTS)

--- add_route(method, path, handler [, {name =}]) -> the route
function Router:add_route(method, path, handler, opts)
  check.options(opts, 5, "add_route", ROUTE_OPTS)
  if type(method) ~= "string" then
    error("bad argument #1 to 'add_route' (string expected)", 2)
  end
  return route_add(self, method, path, handler, opts and opts.name,
                   "add_route", 2)
end

--- add_get/add_post/.../add_options(path, handler [, {name =}]) -> the
-- route; add_get also answers HEAD unless allow_head = false.
for _, m in ipairs{"get", "post", "put", "patch", "delete", "head",
                   "options"} do
  local known = m == "get" and GET_OPTS or ROUTE_OPTS
  local fname = "add_" .. m
  Router[fname] = function(self, path, handler, opts)
    check.options(opts, 4, fname, known)
    local r = route_add(self, m:upper(), path, handler, opts and opts.name,
                        fname, 1)
    if m == "get" and not (opts and opts.allow_head == false) then
      route_add(self, "HEAD", path, handler, nil, "add_get", 1)
    end
    return r
  end
end

--- add_view(path, view [, {name =}]) -> the route: every method at path
-- goes to view, a web.View class (aiohttp's add_route("*", ...)).
function Router:add_view(path, view, opts)
  check.options(opts, 4, "add_view", ROUTE_OPTS)
  return route_add(self, "*", path, view, opts and opts.name, "add_view", 1)
end

local STATIC_OPTS = check.option_set{"chunk_size", "follow_symlinks",
                                     "name"}

--- add_static(prefix, dir [, {chunk_size = 262144, follow_symlinks =
-- false}]): the files under dir served at prefix/<path>, for GET and HEAD
-- (aiohttp's StaticResource). The path is percent-decoded first; a ".."
-- segment or a directory is refused (403), a missing file, a name with
-- a NUL and (unless follow_symlinks) a file whose real path leaves dir are
-- not found (404). The answer has the Content-Type its extension names,
-- Content-Length and Last-Modified (If-Modified-Since: 304); the file is
-- sent in chunk_size pieces, never read whole.
function Router:add_static(prefix, dir, opts)
  if type(prefix) ~= "string" then
    error("bad argument #1 to 'add_static' (string expected, got " ..
          type(prefix) .. ")", 2)
  end
  if type(dir) ~= "string" then
    error("bad argument #2 to 'add_static' (string expected, got " ..
          type(dir) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'add_static' (table expected, got " ..
          type(opts) .. ")", 2)
  end
  opts = opts or EMPTY
  check_known(opts, STATIC_OPTS, 3, "add_static", 2)
  local chunk = opts.chunk_size or 262144
  prefix = prefix:gsub("/$", "")
  dir = dir:gsub("(.)/$", "%1")
  local fs = require "asyncio.fs"
  local root -- dir's real path, found at the first request
  local handler = async(function(request)
    local name = request.match_info.filename
    for seg in name:gmatch("[^/]+") do
      if seg == ".." then error(M.HTTPForbidden(), 0) end
    end
    if name:find("\0", 1, true) then error(M.HTTPNotFound(), 0) end
    local path = dir .. "/" .. name
    local ok, st = pcall(await, fs.stat(path))
    if not ok then error(M.HTTPNotFound(), 0) end
    if st.type == "directory" then error(M.HTTPForbidden(), 0) end
    if st.type ~= "file" then error(M.HTTPNotFound(), 0) end
    if not opts.follow_symlinks then
      root = root or await(fs.realpath(dir))
      local real = await(fs.realpath(path))
      if real:sub(1, #root + 1) ~= root .. "/" then
        error(M.HTTPNotFound(), 0)
      end
    end
    local resp = M.FileResponse(path, {chunk_size = chunk})
    resp._stat = st
    await(resp:prepare(request))
    return resp
  end)
  local route = self:add_route("GET", prefix .. "/{filename:.*}", handler,
                               {name = opts.name})
  self:add_route("HEAD", prefix .. "/{filename:.*}", handler)
  return route
end

---------------------------------------------------------------------------
-- Route definitions (aiohttp's RouteTableDef, web.get, web.static...)

local RouteDef = {__name = "web.RouteDef"}
RouteDef.__index = RouteDef

--- Registers the definition on router.
function RouteDef:register(router)
  if self.method == "STATIC" then
    return router:add_static(self.path, self.handler, self.opts)
  end
  if self.method == "GET" then
    return router:add_get(self.path, self.handler, self.opts)
  end
  return router:add_route(self.method, self.path, self.handler, self.opts)
end

--- A RouteDef, its arguments checked for `fname` (whose argument #first
-- is the path); handler is a directory for STATIC.
local function route_def(fname, first, method, path, handler, opts)
  check.type(path, first, fname, "string")
  if method == "STATIC" then
    check.type(handler, first + 1, fname, "string")
  else
    check.callable(handler, first + 1, fname)
  end
  check.options(opts, first + 2, fname, method == "STATIC" and STATIC_OPTS
                or method == "GET" and GET_OPTS or ROUTE_OPTS)
  return setmetatable({method = method, path = path, handler = handler,
                       opts = opts}, RouteDef)
end

--- route(method, path, handler [, opts]) -> a RouteDef for add_routes;
-- get/post/put/patch/delete/head/options(path, handler [, opts]) and
-- static(prefix, dir [, opts]) likewise.
function M.route(method, path, handler, opts)
  check.type(method, 1, "route", "string")
  return route_def("route", 2, method:upper(), path, handler, opts)
end
function M.static(prefix, dir, opts)
  return route_def("static", 1, "STATIC", prefix, dir, opts)
end
for _, m in ipairs{"get", "post", "put", "patch", "delete", "head",
                   "options"} do
  M[m] = function(path, handler, opts)
    return route_def(m, 1, m:upper(), path, handler, opts)
  end
end

--- view(path, view [, opts]) -> a RouteDef of add_view for add_routes
function M.view(path, view, opts)
  return route_def("view", 1, "*", path, view, opts)
end

--- add_routes(defs): registers each RouteDef of the list defs (a
-- RouteTableDef or {web.get(...), ...}).
function Router:add_routes(defs)
  for _, d in ipairs(defs) do d:register(self) end
end

local RouteTableDef = {__name = "web.RouteTableDef"}
RouteTableDef.__index = RouteTableDef

--- RouteTableDef(): a list of RouteDefs filled by
-- routes:get(path, handler [, opts]) (also post, put, patch, delete,
-- head, options, route(method, path, handler) and static(prefix, dir)),
-- or, aiohttp's decorator, routes:get(path)(handler) -> handler; then
-- app.router:add_routes(routes).
function M.RouteTableDef()
  return setmetatable({}, RouteTableDef)
end

local function table_add(self, fname, first, method, path, handler, opts)
  if handler == nil then -- the decorator form
    check.type(path, first, fname, "string")
    return function(h, o)
      self[#self + 1] = route_def(fname, first, method, path, h, o)
      return h
    end
  end
  self[#self + 1] = route_def(fname, first, method, path, handler, opts)
  return handler
end
function RouteTableDef:route(method, path, handler, opts)
  check.type(method, 1, "route", "string")
  return table_add(self, "route", 2, method:upper(), path, handler, opts)
end
function RouteTableDef:view(path, view, opts)
  return table_add(self, "view", 1, "*", path, view, opts)
end
function RouteTableDef:static(prefix, dir, opts)
  self[#self + 1] = route_def("static", 1, "STATIC", prefix, dir, opts)
end
for _, m in ipairs{"get", "post", "put", "patch", "delete", "head",
                   "options"} do
  RouteTableDef[m] = function(self, path, handler, opts)
    return table_add(self, m, 1, m:upper(), path, handler, opts)
  end
end

--- middleware(fn) -> fn: aiohttp's decorator, which new-style
-- middlewares no longer need (every middleware here is one).
function M.middleware(fn) return fn end

--- The media type of a file name, else application/octet-stream.
function M._guess_type(name)
  return mimetypes.guess_type(name) or "application/octet-stream"
end

--- resolve(method, path [, raw]) -> route, match_info [, apps] | nil,
-- status, allowed. path is decoded; raw (default path) is the path as
-- sent, which routes match as aiohttp's do: a plain route is the same
-- string (so /a%2Fb and /%61/b are not /a/b), {name} segments match it,
-- then each value is decoded (so /a%2Fb matches /{name} with name
-- "a/b"). The routes of the router come first, then those of its
-- sub-applications: apps lists the ones a route was found in, outermost
-- first.
function Router:resolve(method, path, raw)
  raw = raw or path
  local t = self._exact[raw]
  if t then
    local r = t[method] or t["*"]
    if r then return r, {} end
  end
  local allowed = {}
  if t then
    for m in pairs(t) do allowed[#allowed + 1] = m end
  end
  for _, r in ipairs(self._dynamic) do
    local caps = {raw:match(r.pattern)}
    if caps[1] then
      if r.method == method or r.method == "*" then
        local mi = {}
        for i, name in ipairs(r.names) do
          local v = caps[i]
          mi[name] = v:find("%", 1, true) and unquote(v) or v
        end
        return r, mi
      end
      allowed[#allowed + 1] = r.method
    end
  end
  local r, mi, apps = self:_resolve_subapps(method, path, raw, allowed)
  if r then return r, mi, apps end
  if #allowed > 0 then
    table.sort(allowed)
    return nil, 405, allowed
  end
  return nil, 404
end

--- The route of a sub-application whose prefix holds raw (resolve's
-- arguments), its match_info, and the list of the applications it is
-- in, outermost first; else nil, with the methods the path has in them
-- added to allowed. (A sub-application's 404 or 405 is its parent's, as
-- aiohttp's: only the parent's middlewares see it.)
function Router:_resolve_subapps(method, path, raw, allowed)
  for _, sub in ipairs(self._subapps) do
    local prefix = sub.prefix
    if raw == prefix or raw:sub(1, #prefix + 1) == prefix .. "/" then
      local r, mi, more = sub.app.router:resolve(method, path, raw)
      if r then
        local apps = {sub.app}
        for _, a in ipairs(more or {}) do apps[#apps + 1] = a end
        return r, mi, apps
      end
      for _, m in ipairs(more or {}) do allowed[#allowed + 1] = m end
    end
  end
  return nil
end

---------------------------------------------------------------------------
-- Application

local Application = {__name = "web.Application"}
Application.__index = function(t, k)
  local v = Application[k]
  if v ~= nil then return v end
  return rawget(t, "_state")[k]
end
Application.__newindex = function(t, k, v) rawget(t, "_state")[k] = v end

local APP_OPTS = check.option_set{"middlewares", "client_max_size"}

--- Application([{middlewares =, client_max_size = 1048576}])
function M.Application(opts)
  opts = check.options(opts, 1, "Application", APP_OPTS) or EMPTY
  local app = {_state = {},
    router = setmetatable({_exact = {}, _dynamic = {}, named = {},
                           _subapps = {}}, Router),
    middlewares = opts.middlewares or {},
    client_max_size = opts.client_max_size or 1024 * 1024,
    on_startup = {}, on_shutdown = {}, on_cleanup = {}, cleanup_ctx = {}}
  return setmetatable(app, Application)
end

--- Is r something to await: a Coroutine, a Future or an object whose
-- metatable has __await (a web.View)?
local function awaitable(r)
  if asyncio.iscoroutine(r) or asyncio.isfuture(r) then return true end
  local mt = getmetatable(r)
  return type(mt) == "table" and rawget(mt, "__await") ~= nil
end

local function call_handler(h, request)
  local r = h(request)
  if awaitable(r) then r = await(r) end
  return r
end

--- Puts prefix before the path of every route of router and of the
-- routers of its sub-applications (aiohttp's add_prefix).
local function prefix_routes(router, prefix)
  local exact = router._exact
  router._exact = {}
  for path, t in pairs(exact) do
    router._exact[route_key(prefix) .. path] = t
    for _, route in pairs(t) do route.path = prefix .. route.path end
  end
  for _, route in ipairs(router._dynamic) do
    route.path = prefix .. route.path
    route.pattern, route.names = compile(route.path)
  end
  for _, sub in ipairs(router._subapps) do
    sub.prefix = route_key(prefix) .. sub.prefix
    prefix_routes(sub.app.router, prefix)
  end
end

--- The hooks that run a sub-application's own signals and cleanup_ctx
-- from its parent's: aiohttp's _reg_subapp_signals.
local startup, shutdown, cleanup

--- add_subapp(prefix, subapp) -> subapp: serves subapp's routes under
-- prefix (a trailing "/" dropped), its middlewares inside the parent's,
-- request.app being subapp; its on_startup, on_shutdown, on_cleanup and
-- cleanup_ctx run when the parent's reach this point. Neither router
-- takes routes afterwards (RuntimeError), as aiohttp's frozen ones.
function Application:add_subapp(prefix, subapp)
  if type(prefix) ~= "string" then
    error(asyncio.TypeError("Prefix must be str"), 2)
  end
  if getmetatable(subapp) ~= Application then
    error("bad argument #2 to 'add_subapp' (web.Application expected, got "
          .. check.typename(subapp) .. ")", 2)
  end
  prefix = prefix:gsub("/+$", "")
  if prefix == "" then
    error(asyncio.ValueError("Prefix cannot be empty"), 2)
  end
  if rawget(self, "_frozen") then
    error(asyncio.RuntimeError("Cannot add sub application to frozen "
                               .. "application"), 2)
  end
  if rawget(subapp, "_frozen") or subapp == self then
    error(asyncio.RuntimeError("Cannot add frozen application"), 2)
  end
  prefix_routes(subapp.router, prefix)
  rawset(subapp, "_frozen", true)
  subapp.router._frozen = true
  local subs = self.router._subapps
  subs[#subs + 1] = {prefix = route_key(prefix), app = subapp}
  local on_startup, on_shutdown, on_cleanup = rawget(self, "on_startup"),
    rawget(self, "on_shutdown"), rawget(self, "on_cleanup")
  on_startup[#on_startup + 1] = function() startup(subapp) end
  on_shutdown[#on_shutdown + 1] = function() shutdown(subapp) end
  on_cleanup[#on_cleanup + 1] = function() cleanup(subapp) end
  return subapp
end

---------------------------------------------------------------------------
-- Class-based views (aiohttp's web.View)

-- the methods a view may answer, as aiohttp's hdrs.METH_ALL
local VIEW_METHODS = {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS",
                      "PATCH", "POST", "PUT", "TRACE"}
local IS_VIEW_METHOD = {}
for _, m in ipairs(VIEW_METHODS) do IS_VIEW_METHOD[m] = true end

--- The response of the view instance v: the method of its class named
-- by the request's method, lower-cased, called with v (and awaited when
-- it returns something to await); 405 naming the methods the class has
-- when it has none of that name (HEAD is not GET here, as aiohttp's).
local view_response = async(function(v)
  local method = v.request.method
  local fn = IS_VIEW_METHOD[method] and v[method:lower()]
  if fn == nil or fn == false then
    local allowed = {}
    for _, m in ipairs(VIEW_METHODS) do
      if v[m:lower()] then allowed[#allowed + 1] = m end
    end
    error(M.HTTPMethodNotAllowed{method = method,
                                 allowed_methods = allowed}, 0)
  end
  local r = fn(v)
  if awaitable(r) then r = await(r) end
  return r
end)

local ViewClass = {__name = "web.View"}
ViewClass.__index = ViewClass

--- View(methods) -> a view class: a handler for add_view (or
-- web.view, routes:view). Each request makes an instance, {request =
-- request}, whose fields come from methods (and its own __index chain:
-- a base view's methods table for inheritance); awaiting it calls
-- instance:get(), instance:post() ... as the request's method says.
function M.View(methods)
  check.type(methods, 1, "View", "table")
  return setmetatable({methods = methods,
    _instance_mt = {__index = methods, __await = view_response,
                    __name = "web.View"}}, ViewClass)
end

--- cls(request) -> the view instance for request (await it for the
-- response), as aiohttp's MyView(request).
function ViewClass.__call(cls, request)
  return setmetatable({request = request}, cls._instance_mt)
end

--- The handler h inside the middlewares of app (the first outermost).
local function with_middlewares(app, h)
  local mws = app.middlewares
  for i = #mws, 1, -1 do
    local mw, nxt = mws[i], h
    h = async(function(req)
      return call_handler(function(r) return mw(r, nxt) end, req)
    end)
  end
  return h
end

--- The response to request (raises what the handlers raise).
function Application:_handle(request)
  -- extra: a sub-application route's applications, or a 405's methods
  local route, mi, extra = self.router:resolve(request.method,
    request.path, request._rpath)
  local h
  if route then
    request.match_info = mi
    request.route = route
    h = route.handler
    if extra then -- self, then each sub-application, the innermost last
      local apps = {self, table.unpack(extra)}
      request.app, request._apps = apps[#apps], apps
      for i = #apps, 2, -1 do h = with_middlewares(apps[i], h) end
    end
  else
    local allowed = extra
    request.match_info = {}
    -- a coroutine function: the 404/405 is raised when awaited, inside
    -- the middlewares' pcall(await, handler(req)), so they can catch it
    h = async(function()
      if mi == 405 then
        error(M.HTTPMethodNotAllowed{method = request.method,
          allowed_methods = allowed}, 0)
      end
      error(M.HTTPNotFound(), 0)
    end)
  end
  return call_handler(with_middlewares(self, h), request)
end

---------------------------------------------------------------------------
-- Serving a connection
--
-- Each connection is a C protocol (_http.ServerProtocol) on a transport
-- of loop:create_server: it parses what arrives straight from the
-- transport's buffer and calls the Conn methods below once per complete
-- head (then for body pieces). One task per connection serves its
-- requests one after the other, in arrival order: it builds the request,
-- runs the handler (which may await), writes the response, then tells
-- the protocol to go on with the next request (pipelined ones wait in
-- its buffer). A request's body streams into request.content as it
-- arrives, so the handler starts at the head.
--
-- Timeouts use one timer per connection at most, re-armed lazily: a
-- deadline field moves with each request, the timer only checks it when
-- it fires.

-- a string error gets the traceback of where it was raised
local function add_traceback(e)
  if type(e) == "string" then
    return asyncio.RuntimeError(e)
  end
  return e
end

local Conn = {}
Conn.__index = Conn

local StreamReader = asyncio.StreamReader

local function on_timer(conn)
  conn.timer = nil
  local d = conn.deadline
  if not d or conn.done then return end
  local loop = conn.loop
  if loop:time() < d then
    conn.timer_at = d
    conn.timer = loop:call_at(d, on_timer, conn)
    return
  end
  conn.deadline = nil
  if conn.serving then -- a body read too slow
    conn.keep_alive = false
    local c = conn.content
    if c and not c:at_eof() then
      c:set_exception(asyncio.TimeoutError())
    end
    return
  end
  conn.transport:close() -- idle, or a head too slow: no answer
end

--- The connection times out at `when` (loop time) unless a request
-- comes first.
function Conn:_arm(when)
  self.deadline = when
  local t = self.timer
  if t then
    if self.timer_at <= when then return end -- it fires, then re-arms
    t:cancel()
  end
  self.timer_at = when
  self.timer = self.loop:call_at(when, on_timer, self)
end

--- Wakes the task waiting for data, unless its wait already ended (a
-- cancelled serving task's waiter is cancelled with it).
function Conn:_wake()
  local w = self.waiter
  if w then
    self.waiter = nil
    if not w:done() then w:set_result(true) end
  end
end

--- Answers status (text: its body) and closes conn; request (nil when
-- none was parsed) gives the version of the answer.
local function send_error(conn, status, text, request)
  conn.keep_alive = false
  if conn.lost then return end
  local r = M.Response{status = status, text = text or
    (status .. ": " .. REASONS[status])}
  M._send_response(conn, r, request)
  conn.proto:flush()
  conn.transport:close()
end

local serve

function Conn:on_made(transport)
  self.transport = transport
  local server = self.server
  server._conns[self] = true
  server._nconns = server._nconns + 1
  local peer = transport:get_extra_info("peername")
  self.remote = type(peer) == "table" and (peer.host or peer[1]) or nil
  self:_arm(self.loop:time() + server.keepalive_timeout)
  self.task = self.loop:create_task(serve(self))
end

--- The decoder of a request body sent with Content-Encoding gzip or
-- deflate (aiohttp decodes them too), or nil: other codings stay as sent.
local function body_decoder(head, max)
  local enc = head.headers["content-encoding"]
  enc = enc and enc:lower():match("^%s*(.-)%s*$")
  if enc == "gzip" or enc == "deflate" then
    return _http.Inflater(enc, max > 0 and max or nil), enc
  end
end

function Conn:on_request(head)
  self.head = head
  self.serving = true
  self.deadline = nil
  if head.has_body then
    local c = StreamReader()
    if head.chunked then c:begin_http_chunk_receiving() end
    self.content = c
    head.content = c
    self.inflater, self.coding = body_decoder(head,
                                              self.server.app.client_max_size)
    local rt = self.server.read_timeout
    if rt then self:_arm(self.loop:time() + rt) end
  end
  self:_wake()
end

--- The 413 of a body over client_max_size max, of size bytes so far.
local function too_large(max, size)
  return M.HTTPRequestEntityTooLarge{text = ("Maximum request body size "
    .. "%d exceeded, actual body size %d"):format(max, size)}
end

--- The request's body reader fails with err and gets no more of it.
function Conn:_fail_body(err)
  local c = self.content
  self.content = nil
  self.keep_alive = false
  c:set_exception(err)
end

--- Decodes a piece of a compressed body (nil once the body failed:
-- undecodable, or decoded past client_max_size).
function Conn:_decode(data)
  local z = self.inflater
  local ok, out = pcall(z.feed, z, data)
  if ok then return out end
  -- the inflater stops once past client_max_size: the bytes it decoded
  -- so far are the size reported
  local max = self.server.app.client_max_size
  if max > 0 and z:size() > max then
    self:_fail_body(too_large(max, z:size()))
  else
    self:_fail_body(M.HTTPBadRequest{text = "Can not decode "
      .. "content-encoding: " .. self.coding})
  end
  return nil
end

--- Feeds a compressed piece to the body reader c, decoded, with its
-- chunk ends (offsets packed in ends, or nil) after what each chunk
-- decoded to.
function Conn:_feed_decoded(c, data, ends)
  local from = 1
  for i = 1, ends and #ends or 0, 4 do
    local off = string.unpack("=I4", ends, i)
    local out = self:_decode(data:sub(from, off))
    if out == nil then return end -- the body failed
    if out ~= "" then c:feed_data(out) end
    c:end_http_chunk_receiving()
    from = off + 1
  end
  local out = self:_decode(data:sub(from))
  if out and out ~= "" then c:feed_data(out) end
end

function Conn:on_body(data, ends)
  local c = self.content
  if c then
    if self.inflater then
      self:_feed_decoded(c, data, ends)
    elseif ends then
      c:_feed_http(data, ends)
    elseif data ~= "" then
      c:feed_data(data)
    end
  end
  local rt = self.server.read_timeout
  if rt then self:_arm(self.loop:time() + rt) end
end

function Conn:on_body_end()
  local c = self.content
  if c and self.inflater and not self.inflater:finish() then
    self:_fail_body(M.HTTPBadRequest{text = "Can not decode "
      .. "content-encoding: " .. self.coding .. " (truncated)"})
    c = nil
  end
  if c then c:feed_eof() end
  self.content = nil
  if self.serving then self.deadline = nil end
end

function Conn:on_error(name, size, in_body)
  self.keep_alive = false
  self.failed = true
  if self.serving and self.content then -- the body being served
    if name == "HPE_BODY_TOO_LARGE" then
      self:_fail_body(too_large(self.server.app.client_max_size, size))
    else
      self:_fail_body(M.HTTPBadRequest{text = "Bad request body: " .. name})
    end
    return
  end
  if self.serving then return end
  if in_body then -- the rest of a body its handler left unread
    self.transport:close()
  elseif name == "HPE_HEADER_OVERFLOW" then
    send_error(self, 431)
  elseif name == "HPE_BODY_TOO_LARGE" then
    send_error(self, 413)
  else
    send_error(self, 400)
  end
  self:_wake()
end

function Conn:on_partial()
  if not self.serving then
    self:_arm(self.loop:time() + self.server.header_timeout)
  end
end

function Conn:on_eof()
  self.eof = true
  if self.serving then
    local c = self.content
    if c then
      self.content = nil
      c:set_exception(ConnectionResetError("Connection lost"))
    end
    return true -- the response still goes out, then the close
  end
  self:_wake()
  return false
end

function Conn:on_lost()
  self.lost = true
  local c = self.content
  if c then
    self.content = nil
    c:set_exception(ConnectionResetError("Connection lost"))
  end
  if self.timer then
    self.timer:cancel()
    self.timer = nil
  end
  self:_wake()
  self:on_resume_writing()
end

function Conn:on_pause_writing() self.wpaused = true end

function Conn:on_resume_writing()
  self.wpaused = false
  local d = self.drainer
  if d then
    self.drainer = nil
    if not d:done() then d:set_result(true) end
  end
end

--- Waits while the transport's buffer is over its high-water mark.
function Conn:_drain()
  if self.lost then
    error(ConnectionResetError("Connection lost"), 0)
  end
  if not self.wpaused then return end
  local f = self.loop:create_future()
  self.drainer = f
  await(f)
  if self.lost then
    error(ConnectionResetError("Connection lost"), 0)
  end
end

--- The path of a target, as sent ("/a%20b") and decoded ("/a b"); an
-- absolute-form target's path.
local function target_path(path, url)
  if path:byte(1) ~= 47 then -- absolute-form (a proxy request) or '*'
    path = url:match("^%a[%w+.-]*://[^/]*(/[^?#]*)") or path
    if path == "" then path = "/" end
  end
  if path:find("%", 1, true) then return path, unquote(path) end
  return path, path
end

--- The answer to a handler that failed, as aiohttp's handle_error: a 504
-- without a body for an asyncio.TimeoutError, else a 500 saying "500
-- Internal Server Error\n\nServer got itself in trouble" (an HTML page
-- for a client that accepts text/html); the connection closes after it.
local function failure_response(conn, request, err)
  conn.keep_alive = false
  if iserror(err, asyncio.TimeoutError) then
    return M.Response{status = 504, body = "", content_type = "text/plain"}
  end
  local title = "500 Internal Server Error"
  local msg = "Server got itself in trouble"
  local accept = request.headers["accept"]
  if accept and accept:find("text/html", 1, true) then
    return M.Response{status = 500, content_type = "text/html",
      text = ("<html><head><title>%s</title></head><body>\n<h1>%s</h1>"
              .. "\n%s\n</body></html>\n"):format(title, title, msg)}
  end
  return M.Response{status = 500, text = title .. "\n\n" .. msg}
end

local function respond(conn, request, resp)
  if iserror(resp, HTTPException) then -- returned, not raised: sent all the
    resp = exception_response(resp)     -- same, as aiohttp 3.8
  end
  if getmetatable(resp) == Response then
    if not resp.prepared then
      M._send_response(conn, resp, request)
      -- a client that does not read its answers holds its next request
      -- here, not the server's memory (a last answer is not waited for)
      if conn.keep_alive and not conn.server._closing then conn:_drain() end
    end
    return
  end
  if getmetatable(resp) == nil or type(resp.prepare) ~= "function" then
    local err = asyncio.RuntimeError("handler returned " .. tostring(resp)
                                     .. ", not a response")
    M.log_error("Error handling request", err)
    M._send_response(conn, failure_response(conn, request, err), request)
    return
  end
  if not resp.prepared then await(resp:prepare(request)) end
  if not resp._eof then await(resp:write_eof()) end
end

local hostname -- the machine's, for a request without Host (aiohttp's
                -- socket.getfqdn())

--- The request's scheme, host, url and path_qs when its target is in
-- absolute form ("http://h:81/p?q"): they come from the target, not the
-- Host field, as aiohttp's (RFC 9112 3.2.2); else nothing.
local function absolute_target(request, target)
  local scheme, authority, rest = target:match(
    "^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return end
  local userinfo, hostport = authority:match("^(.*@)(.*)$")
  hostport = (hostport or authority):lower()
  local host = hostport:match("^%[(.-)%]") or hostport:gsub(":%d*$", "")
  request.scheme, request.host = scheme:lower(), host
  -- as yarl normalises it: scheme and host in lower case
  request.url = (request.scheme .. "://" .. (userinfo or "") .. hostport
    .. rest):gsub("#.*$", "")
  request.path_qs = rest == "" and "/" or rest:gsub("#.*$", "")
end

--- Serves one request (head: the protocol's head table).
local function handle(conn, head)
  local server = conn.server
  local app = server.app
  if not head.keep_alive or head.upgrade then conn.keep_alive = false end
  local hh = head.headers
  local rpath, path = target_path(head.path, head.url)
  local host = hh["host"]
  if host == nil then
    hostname = hostname or gethostname()
    host = hostname
  end
  local request = setmetatable({method = head.method,
    path = path, _rpath = rpath, raw_path = head.url,
    _raw_query = head.query_string,
    headers = setmetatable(hh, CIMultiDict_mt),
    version = versions[head.major][head.minor],
    remote = conn.remote, keep_alive = head.keep_alive == true, app = app,
    _conn = conn, host = host, scheme = server.scheme}, Request)
  absolute_target(request, head.url)
  -- an Expect other than 100-continue (HTTP/1.1 only) is refused, as
  -- aiohttp's default expect handler refuses it
  local expect = head.major == 1 and head.minor >= 1 and hh["expect"]
  if expect and expect:lower() ~= "100-continue" then
    send_error(conn, 417, "Unknown Expect: " .. expect, request)
    return
  end
  if head.has_body then
    local max, cl = app.client_max_size, head.content_length
    if cl and max > 0 and cl > max then
      send_error(conn, 413, ("Maximum request body size %d exceeded, "
        .. "actual body size %d"):format(max, cl), request)
      return
    end
    request.content, request._has_body = head.content, true
    -- 100-continue, the one Expect left (an HTTP/1.0 client, which
    -- knows no interim response, gets none: RFC 7231 5.1.1)
    if expect then
      conn.proto:write("HTTP/1.1 100 Continue\r\n\r\n")
    end
  end
  conn.responded = false -- set once a head for this request goes out
  local hok, resp = xpcall(app._handle, add_traceback, app, request)
  if not hok then
    if is_cancel(resp) then error(resp, 0) end
    if conn.responded then
      -- a StreamResponse or WebSocket already sent its head: no other
      -- response can follow it, so the error is logged and the
      -- connection closed, as aiohttp
      M.log_error("Error handling request", resp)
      conn.keep_alive = false
      return
    end
    if iserror(resp, HTTPException) then
      resp = exception_response(resp)
    else
      M.log_error("Error handling request", resp)
      resp = failure_response(conn, request, resp)
    end
  end
  if server._closing or conn.eof or conn.failed then
    conn.keep_alive = false
  end
  local wok, werr = pcall(respond, conn, request, resp)
  if not wok then
    if is_cancel(werr) then error(werr, 0) end
    if iserror(werr, ConnectionResetError) then return end
    -- never silent: logged, then a 500 if the head did not go out (it
    -- raised before writing: a CR or LF in it), else the close
    M.log_error("Error handling request", werr)
    if getmetatable(resp) and resp.prepared then
      conn.keep_alive = false
      return
    end
    send_error(conn, 500, nil, request)
  end
end

--- The task of a connection: its requests, one after the other.
serve = async(function(conn)
  local server = conn.server
  local ok, err = pcall(function()
    while true do
      local head = conn.head
      if not head then
        if conn.lost or conn.eof or conn.failed or not conn.keep_alive
            or server._closing then
          break
        end
        local w = conn.loop:create_future()
        conn.waiter = w
        await(w)
        head = conn.head
        if not head then break end
      end
      conn.head = nil
      handle(conn, head)
      if not conn.keep_alive or conn.lost or server._closing then break end
      conn.serving = false
      conn.content = nil
      conn:_arm(conn.loop:time() + server.keepalive_timeout)
      conn.proto:finish() -- the next request may come at once
    end
  end)
  conn.done = true
  conn.serving = false
  if conn.timer then
    conn.timer:cancel()
    conn.timer = nil
  end
  if not conn.lost and not conn.upgraded then conn.proto:flush() end
  conn.transport:close()
  server._conns[conn] = nil
  server._nconns = server._nconns - 1
  if server._nconns == 0 and server._idle then server._idle:set() end
  if not ok then
    if is_cancel(err) then error(err, 0) end
    M.log_error("Error serving connection", err)
  end
end)

--- The protocol factory of a runner's sites.
local function conn_factory(server)
  return function()
    local conn = setmetatable({server = server, loop = server._loop,
      keep_alive = true}, Conn)
    conn.proto = _http.ServerProtocol(conn, {max_field_size =
      server.max_field_size, max_body = server.app.client_max_size})
    return conn.proto
  end
end

---------------------------------------------------------------------------
-- AppRunner, TCPSite, run_app

local AppRunner = {__name = "web.AppRunner"}

--- runner.addresses: the addresses served, as {host, port} pairs, of
-- every started site in start order (aiohttp's property: socket names).
local function runner_addresses(self)
  local out = {}
  for _, site in ipairs(self.sites) do
    for _, s in ipairs(site.server.sockets) do
      out[#out + 1] = {s.host, s.port}
    end
  end
  return out
end

function AppRunner.__index(self, k)
  if k == "addresses" then return runner_addresses(self) end
  return AppRunner[k]
end

local RUNNER_OPTS = check.option_set{"keepalive_timeout", "header_timeout",
  "read_timeout", "shutdown_timeout", "max_field_size"}

--- AppRunner(app [, {keepalive_timeout = 75, header_timeout = 60,
-- read_timeout = nil (each read of a body), shutdown_timeout = 60,
-- max_field_size = 8190}])
function M.AppRunner(app, opts)
  if getmetatable(app) ~= Application then
    error("bad argument #1 to 'AppRunner' (web.Application expected)", 2)
  end
  opts = check.options(opts, 2, "AppRunner", RUNNER_OPTS) or EMPTY
  return setmetatable({app = app, sites = {},
    keepalive_timeout = opts.keepalive_timeout or 75,
    header_timeout = opts.header_timeout or 60,
    read_timeout = opts.read_timeout,
    shutdown_timeout = opts.shutdown_timeout or 60,
    max_field_size = opts.max_field_size or 8190,
    _conns = {}, _nconns = 0, _closing = false, scheme = "http"},
    AppRunner)
end

--- Runs the cleanup functions the app's cleanup_ctx entries gave, the
-- last set up first; raises the first error once all ran.
--- Runs the cleanup functions app's cleanup_ctx entries gave, the
-- last first; all run, then the first error raises.
local function run_cleanups(app)
  local exits, first = rawget(app, "_exits") or {}, nil
  rawset(app, "_exits", nil)
  for i = #exits, 1, -1 do
    local ok, e = pcall(call_handler, exits[i], app)
    if not ok and first == nil then first = e end
  end
  if first ~= nil then error(first, 0) end
end

--- Sets up app's cleanup_ctx entries (each fn(app) does its setup and
-- returns its cleanup function, aiohttp's generator up to its yield and
-- after it), then runs its on_startup callbacks. An entry that fails
-- has the ones before it cleaned up.
function startup(app)
  local exits = {}
  rawset(app, "_exits", exits)
  for i, ctx in ipairs(rawget(app, "cleanup_ctx")) do
    local ok, exit = pcall(call_handler, ctx, app)
    if not ok then
      pcall(run_cleanups, app)
      error(exit, 0)
    end
    if type(exit) ~= "function" and not (getmetatable(exit) or {}).__call
        then
      pcall(run_cleanups, app)
      error(asyncio.TypeError(("cleanup_ctx entry %d returned %s, not its "
        .. "cleanup function"):format(i, type(exit))), 0)
    end
    exits[#exits + 1] = exit
  end
  for _, cb in ipairs(rawget(app, "on_startup")) do call_handler(cb, app) end
end

--- Runs app's on_shutdown callbacks.
function shutdown(app)
  for _, cb in ipairs(rawget(app, "on_shutdown")) do call_handler(cb, app) end
end

--- Runs app's cleanup functions (run_cleanups), then its on_cleanup
-- callbacks; then raises the cleanup functions' first error.
function cleanup(app)
  local ok, err = pcall(run_cleanups, app)
  for _, cb in ipairs(rawget(app, "on_cleanup")) do call_handler(cb, app) end
  if not ok then error(err, 0) end
end

--- setup() -> Coroutine: freezes the app (no more sub-applications),
-- then starts it: its cleanup_ctx entries, then its on_startup callbacks
-- (those of its sub-applications among them).
AppRunner.setup = async(function(self)
  rawset(self.app, "_frozen", true)
  startup(self.app)
end)

--- cleanup() -> Coroutine: stops accepting, closes idle connections,
-- lets in-flight requests finish (at most shutdown_timeout seconds, then
-- cancels them), runs on_shutdown / on_cleanup.
AppRunner.cleanup = async(function(self)
  self._closing = true
  for _, site in ipairs(self.sites) do site.server:close() end
  shutdown(self.app)
  for conn in pairs(self._conns) do
    if not conn.serving then conn.transport:close() end
  end
  if self._nconns > 0 then
    self._idle = asyncio.Event()
    local ok = pcall(await, asyncio.wait_for(self._idle:wait(),
                                             self.shutdown_timeout))
    if not ok then
      for conn in pairs(self._conns) do
        if conn.task then conn.task:cancel() end
      end
    end
  end
  for _, site in ipairs(self.sites) do
    await(site.server:wait_closed())
  end
  cleanup(self.app)
end)

local TCPSite = {__name = "web.TCPSite"}
TCPSite.__index = TCPSite

local SITE_OPTS = check.option_set{"ssl_context", "backlog", "reuse_port"}

--- TCPSite(runner [, host [, port [, {ssl_context =, backlog =,
-- reuse_port =}]]]); the options may come in host's place.
function M.TCPSite(runner, host, port, opts)
  if getmetatable(runner) ~= AppRunner then
    error("bad argument #1 to 'TCPSite' (web.AppRunner expected)", 2)
  end
  local n = 4
  if type(host) == "table" and port == nil then
    opts, host, n = host, nil, 2
  end
  opts = check.options(opts, n, "TCPSite", SITE_OPTS) or {}
  -- host nil: every interface, IPv6 too (its name says 0.0.0.0)
  return setmetatable({runner = runner, host = host,
    port = port or (opts.ssl_context and 8443 or 8080), opts = opts},
    TCPSite)
end

--- start() -> Coroutine: listens
TCPSite.start = async(function(self)
  local runner = self.runner
  if self.opts.ssl_context then runner.scheme = "https" end
  local loop = asyncio.get_running_loop()
  runner._loop = loop
  self.server = await(loop:create_server(conn_factory(runner), self.host,
    self.port, {ssl = self.opts.ssl_context, backlog = self.opts.backlog,
    reuse_port = self.opts.reuse_port}))
  runner.sites[#runner.sites + 1] = self
  self.port = self.server.sockets[1].port
  self.name = ("%s://%s:%d"):format(runner.scheme, self.host or "0.0.0.0",
                                    self.port)
end)

--- stop() -> Coroutine: stops listening and forgets the site (aiohttp's
-- BaseSite.stop). Its connections go on: the runner's cleanup() ends
-- them. Stopping a site not started, or twice, does nothing.
TCPSite.stop = async(function(self)
  local sites = self.runner.sites
  for i = #sites, 1, -1 do
    if sites[i] == self then table.remove(sites, i) end
  end
  if self.server then self.server:close() end
end)

local RUN_APP_OPTS = check.option_set({"host", "port", "ssl_context",
                                       "print"}, RUNNER_OPTS)

--- run_app(app [, {host = nil (every interface), port = 8080,
-- ssl_context =, print = print, and AppRunner's options
-- (shutdown_timeout = 60 ...)}]): serves until SIGINT or SIGTERM, then
-- shuts down gracefully. app may be a coroutine returning the app.
function M.run_app(app, opts)
  if getmetatable(app) ~= Application and not asyncio.iscoroutine(app) then
    error("bad argument #1 to 'run_app' (web.Application expected, got " ..
          type(app) .. ")", 2)
  end
  opts = check.options(opts, 2, "run_app", RUN_APP_OPTS) or {}
  local runner_opts = {}
  for k, v in pairs(opts) do
    if RUNNER_OPTS[k] then runner_opts[k] = v end
  end
  local main = async(function()
    if asyncio.iscoroutine(app) then app = await(app) end
    local runner = M.AppRunner(app, runner_opts)
    local loop = asyncio.get_running_loop()
    -- as aiohttp's _run_app: the runner is cleaned up however serving
    -- ends (a site that cannot listen, a failing on_startup, a cancel)
    local ok, err = pcall(function()
      await(runner:setup())
      local site = M.TCPSite(runner, opts.host, opts.port,
                             {ssl_context = opts.ssl_context})
      await(site:start())
      local out = opts.print
      if out == nil then out = print end
      if out then
        out(("======== Running on %s ========\n(Press CTRL+C to quit)")
            :format(site.name))
        io.stdout:flush()
      end
      local stop = asyncio.Event()
      loop:add_signal_handler("SIGINT", function() stop:set() end)
      loop:add_signal_handler("SIGTERM", function() stop:set() end)
      await(stop:wait())
    end)
    loop:remove_signal_handler("SIGINT")
    loop:remove_signal_handler("SIGTERM")
    await(runner:cleanup())
    if not ok then error(err, 0) end
  end)
  asyncio.run(main())
end

M._Conn = Conn
M._conn_factory = conn_factory
return M
