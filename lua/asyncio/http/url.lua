--- asyncio.http.url: the URLs of the HTTP client (a small part of yarl).
--
--   local u = url.parse("http://h:8080/a/b?x=1")
--   u.scheme, u.host, u.port, u.path, u.query  --> "http" "h" 8080 ...
--   url.join(u, "../c")  url.format(u)

local M = {}

local DEFAULT_PORT = {http = 80, https = 443, ws = 80, wss = 443}

local function invalid(cls, s)
  error(cls and cls(s) or ("invalid URL: " .. tostring(s)), 0)
end

local function unquote(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16))
  end))
end

-- the bytes sent as %XX in a path (all but RFC 3986's pchar, "/" and
-- "%") and in a query ("?" kept too)
local PATH_UNSAFE = "[^%w%-%._~!%$&'%(%)%*%+,;=:@/%%]"
local QUERY_UNSAFE = "[^%w%-%._~!%$&'%(%)%*%+,;=:@/%?%%]"

local function pct(c) return ("%%%02X"):format(c:byte()) end

--- s (a path or a query) as it may go on the wire, as yarl requotes a
-- URL: each byte in unsafe (a space, non-ASCII, '"', "<"...) as %XX (a
-- space as "+" in a query: qs), a "%" that starts no %XX as "%25"; a %XX
-- of a byte that may go as it is becomes that byte, unless protected
-- holds it (a "%2F" in a path stays one), and the others are upper-cased.
local function requote(s, unsafe, protected, qs)
  if not s:find(unsafe) and not s:find("%", 1, true) then return s end
  s = s:gsub("%%(%x?%x?)", function(h)
    if #h < 2 then return "%25" .. h end
    local c = string.char(tonumber(h, 16))
    if c ~= "%" and not c:find(unsafe) and not protected:find(c, 1, true)
        then
      return c
    end
    return "%" .. h:upper()
  end)
  if qs then s = s:gsub(" ", "+") end
  return (s:gsub(unsafe, pct))
end

--- remove_dots(path) -> path without its "." and ".." segments (RFC
-- 3986's remove_dot_segments, as yarl normalizes a path)
local function remove_dots(path)
  if path:sub(1, 1) == "/" and not path:find("/.", 1, true) then
    return path -- no dot segment: the usual path, as it is
  end
  local out = {}
  for seg in (path .. "/"):gmatch("([^/]*)/") do
    if seg == ".." then
      if #out > 1 then out[#out] = nil end
    elseif seg ~= "." then
      out[#out + 1] = seg
    end
  end
  local r = table.concat(out, "/")
  if path:sub(-1) ~= "/" and path:match("/%.%.?$") then r = r .. "/" end
  if r:sub(1, 1) ~= "/" then r = "/" .. r end
  return r
end

--- The path of a URL and its query as they go on the wire (yarl's
-- _PATH_REQUOTER and its normalization, _QUERY_REQUOTER).
local function wire_path(path)
  return remove_dots(requote(path, PATH_UNSAFE, "/+"))
end

local function wire_query(query)
  return requote(query, QUERY_UNSAFE, "=+&;", true)
end

--- requote(s) -> the URL or relative reference s as yarl's str(URL(s))
-- gives it: its path, query and fragment requoted (a space or a
-- non-ASCII byte as %XX, a space in the query as "+", a "%" that starts
-- no %XX as "%25"), the scheme and authority as they are, and the "."
-- and ".." segments of an absolute URL's path removed. A tab, CR or LF
-- is dropped first, as yarl (and WHATWG's URL parser) does.
function M.requote(s)
  s = s:gsub("[\t\r\n]", "")
  local prefix, rest = s:match("^(%a[%w+.-]*://[^/?#]*)(.*)$")
  if not prefix then prefix, rest = "", s end
  local path, query, frag = rest:match("^([^?#]*)(%??[^#]*)(#?.*)$")
  path = requote(path, PATH_UNSAFE, "/+")
  if prefix ~= "" and path ~= "" then path = remove_dots(path) end
  if query ~= "" then
    query = "?" .. requote(query:sub(2), QUERY_UNSAFE, "=+&;", true)
  end
  if frag ~= "" then frag = "#" .. requote(frag:sub(2), QUERY_UNSAFE, "") end
  return prefix .. path .. query .. frag
end

--- parse(s [, errcls]) -> {scheme, host, port, path, query, host_header,
-- user, password}; raises errcls(s) when s is not an absolute
-- http(s)/ws(s) URL. user and password (percent-decoded, nil when
-- absent) come from "user:password@"; format leaves them out.
function M.parse(s, errcls)
  if type(s) == "table" then return s end
  if type(s) ~= "string" then invalid(errcls, s) end
  local scheme, rest = s:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then invalid(errcls, s) end
  scheme = scheme:lower()
  if not DEFAULT_PORT[scheme] then invalid(errcls, s) end
  local authority, tail = rest:match("^([^/?#]*)(.*)$")
  local userinfo = authority:match("^(.*)@")
  authority = authority:gsub("^.*@", "")
  local user, password
  if userinfo and userinfo ~= "" then
    user, password = userinfo:match("^([^:]*):(.*)$")
    user = unquote(user or userinfo)
    password = password and unquote(password)
  end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
  else
    host, port = authority:match("^([^:]*):?(%d*)$")
  end
  if not host or host == "" or host:find("[%s%c]") then
    invalid(errcls, s)
  end
  local explicit = port ~= ""
  port = explicit and tonumber(port) or DEFAULT_PORT[scheme]
  if port < 1 or port > 65535 then invalid(errcls, s) end
  local fragment = tail:match("#.*$")
  tail = tail:gsub("#.*$", "")
  local path, query = tail:match("^([^?]*)%??(.*)$")
  if path == "" then path = "/" end
  if path:find("%c") or query:find("%c") then invalid(errcls, s) end
  local h = host:find(":", 1, true) and "[" .. host .. "]" or host
  return {scheme = scheme, host = host:lower(), port = port,
    path = wire_path(path), query = wire_query(query), user = user,
    password = password, fragment = fragment and
      "#" .. requote(fragment:sub(2), QUERY_UNSAFE, ""),
    host_header = (port == DEFAULT_PORT[scheme]) and h or
      (h .. ":" .. port)}
end

--- format(u) -> the URL as a string
function M.format(u)
  local h = u.host:find(":", 1, true) and "[" .. u.host .. "]" or u.host
  local port = u.port == DEFAULT_PORT[u.scheme] and "" or (":" .. u.port)
  return u.scheme .. "://" .. h .. port .. u.path ..
    (u.query ~= "" and ("?" .. u.query) or "")
end

--- join(base, ref [, errcls]) -> ref resolved against base (a parsed URL
-- or nil); ref may be absolute, "//host/...", "/path", "?q" or relative
-- (then base's user and password stay, as RFC 3986 and yarl say).
function M.join(base, ref, errcls)
  if type(ref) == "table" then return ref end
  if type(ref) ~= "string" then invalid(errcls, ref) end
  if ref:match("^%a[%w+.-]*://") then return M.parse(ref, errcls) end
  if not base then invalid(errcls, ref) end
  if ref:sub(1, 2) == "//" then return M.parse(base.scheme .. ":" .. ref,
                                               errcls) end
  local u = {scheme = base.scheme, host = base.host, port = base.port,
             host_header = base.host_header, user = base.user,
             password = base.password}
  local fragment = ref:match("#.*$")
  u.fragment = fragment and "#" .. requote(fragment:sub(2), QUERY_UNSAFE, "")
  ref = ref:gsub("#.*$", "")
  local path, query = ref:match("^([^?]*)%??(.*)$")
  if path == "" then
    u.path = base.path
    u.query = ref:find("?", 1, true) and query or base.query
  elseif path:sub(1, 1) == "/" then
    u.path, u.query = path, query
  else
    u.path, u.query = (base.path:match("^(.*/)") or "/") .. path, query
  end
  if u.path:find("%c") or u.query:find("%c") then invalid(errcls, ref) end
  u.path, u.query = wire_path(u.path), wire_query(u.query)
  return u
end

return M
