--- asyncio.http.cookiejar: the client's cookie jar (aiohttp's CookieJar).
--
--   local jar = http.CookieJar{unsafe = false}
--   jar:update_cookies({"a=1; Path=/"}, url)   -- Set-Cookie values
--   jar:filter_cookies(url)  --> "a=1" (the Cookie header for url)
--
-- As aiohttp's, the jar ignores cookies sent by hosts that are IP
-- addresses unless it is unsafe. Domain and Path attributes are honoured
-- (a Domain must match the host), Secure cookies go only to https/wss,
-- Max-Age and Expires end cookies (the clock is os.time()).

local check = require "asyncio.check"

local M = {}

-- the bytes a cookie name or unquoted value may hold (RFC 2109 tokens,
-- as Python's http.cookies._LegalChars)
M.LEGAL = "^[%w!#$%%&'*+%-.^_`|~:]+$"

-- how a byte is escaped inside a quoted value: as Python's _quote
local ESC = {['"'] = '\\"', ["\\"] = "\\\\", [","] = "\\054",
             [";"] = "\\073"}
local function esc(c)
  local b = c:byte()
  if b < 32 or b > 126 then return ("\\%03o"):format(b) end
  return ESC[c]
end

--- quote(value) -> value as a Cookie or Set-Cookie header carries it, as
-- Python's http.cookies: unchanged when all its bytes are legal (or it is
-- empty), else double-quoted with '"', '\', ',', ';', control and
-- non-ASCII bytes escaped, so it can never end the cookie or add another.
function M.quote(value)
  if value == "" or value:find(M.LEGAL) then return value end
  return '"' .. value:gsub('[%c"\\,;\128-\255]', esc) .. '"'
end

local CookieJar = {__name = "http.CookieJar"}
CookieJar.__index = CookieJar

local MONTHS = {jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
  jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12}

--- An HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT" and kin) as a time.
local function parse_date(s)
  local d, mon, y, h, mi, sec =
    s:match("(%d%d?)[ %-](%a%a%a)%a*[ %-](%d%d%d?%d?) (%d%d?):(%d%d):(%d%d)")
  if not d then return nil end
  local m = MONTHS[mon:lower()]
  if not m then return nil end
  y = tonumber(y)
  if y < 100 then y = y + (y < 70 and 2000 or 1900) end
  -- os.time reads a local time: correct by the zone's offset
  local t = os.time{year = y, month = m, day = tonumber(d),
    hour = tonumber(h), min = tonumber(mi), sec = tonumber(sec)}
  local now = os.time()
  local offset = os.difftime(os.time(os.date("*t", now)),
                             os.time(os.date("!*t", now)))
  return t + offset
end

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or
    host:find(":", 1, true) ~= nil
end

local JAR_OPTS = check.option_set{"unsafe"}

--- CookieJar([{unsafe = false}])
function M.CookieJar(opts)
  check.options(opts, 1, "CookieJar", JAR_OPTS)
  return setmetatable({unsafe = opts and opts.unsafe or false,
                       _cookies = {}}, CookieJar)
end

local function domain_match(host, domain)
  return host == domain or
    (#host > #domain and host:sub(-#domain - 1) == "." .. domain)
end

local function path_match(path, cpath)
  if path == cpath then return true end
  if path:sub(1, #cpath) ~= cpath then return false end
  return cpath:sub(-1) == "/" or path:sub(#cpath + 1, #cpath + 1) == "/"
end

--- Keeps cookies (name -> value, or a list of "name=value") for every
-- host and path: the jar's domain "" matches any host.
local function share(self, cookies)
  for k, v in pairs(cookies) do
    local name, value = k, v
    if math.type(k) == "integer" then
      name, value = tostring(v):match("^%s*([^=;%s]+)%s*=%s*([^;]*)")
    end
    if name then
      name, value = tostring(name), tostring(value)
      self._cookies[";/;" .. name] = {name = name, value = value,
        coded = M.quote(value), domain = "", host_only = false, path = "/",
        secure = false}
    end
  end
end

--- update_cookies(cookies [, url]): cookies a list of Set-Cookie values,
-- url the parsed URL that sent them. Without url, cookies (a name ->
-- value table, or a list of "name=value") are sent to every host, as
-- aiohttp's update_cookies without a response URL.
function CookieJar:update_cookies(values, u)
  if u == nil then return share(self, values) end
  if not self.unsafe and is_ip(u.host) then return end
  local now = os.time()
  for _, v in ipairs(values) do
    local name, value, attrs = v:match("^%s*([^=;%s]+)%s*=%s*([^;]*)(.*)$")
    if name then
      -- sent back as it came (coded: quoted, escapes and all), as aiohttp
      local coded = value:gsub("%s+$", "")
      value = coded:match('^"(.*)"$') or coded
      local c = {name = name, value = value, coded = coded, domain = u.host,
                 host_only = true, path = nil, secure = false}
      local expires
      for attr in attrs:gmatch(";%s*([^;]*)") do
        local k, av = attr:match("^([^=]+)=?(.*)$")
        if k then
          k = k:gsub("%s+$", ""):lower()
          av = av:gsub("^%s+", ""):gsub("%s+$", "")
          if k == "domain" and av ~= "" then
            c.domain = av:gsub("^%.", ""):lower()
            c.host_only = false
          elseif k == "path" and av:sub(1, 1) == "/" then
            c.path = av
          elseif k == "max-age" and tonumber(av) then
            expires = now + math.floor(tonumber(av))
            c.max_age = true
          elseif k == "expires" and not c.max_age then
            expires = parse_date(av) or expires
          elseif k == "secure" then
            c.secure = true
          end
        end
      end
      if not c.path then
        c.path = u.path:match("^(.*)/[^/]*$")
        if not c.path or c.path == "" then c.path = "/" end
      end
      if c.host_only or domain_match(u.host, c.domain) then
        c.expires = expires
        local key = c.domain .. ";" .. c.path .. ";" .. name
        if expires and expires <= now then
          self._cookies[key] = nil
        else
          self._cookies[key] = c
        end
      end
    end
  end
end

--- filter_cookies(url) -> the Cookie header value for url ("" for none)
function CookieJar:filter_cookies(u)
  if next(self._cookies) == nil then return "" end
  local now, out = os.time(), {}
  local secure = u.scheme == "https" or u.scheme == "wss"
  local keys = {}
  for key in pairs(self._cookies) do keys[#keys + 1] = key end
  -- by name, then by the rest of the key: the same order every time
  table.sort(keys, function(a, b)
    local ca, cb = self._cookies[a], self._cookies[b]
    if ca.name ~= cb.name then return ca.name < cb.name end
    return a < b
  end)
  for _, key in ipairs(keys) do
    local c = self._cookies[key]
    if c.expires and c.expires <= now then
      self._cookies[key] = nil
    elseif (c.domain == "" or c.host_only and u.host == c.domain or
            not c.host_only and domain_match(u.host, c.domain)) and
        path_match(u.path, c.path) and (secure or not c.secure) then
      out[#out + 1] = c.name .. "=" .. c.coded
    end
  end
  return table.concat(out, "; ")
end

--- len() -> the number of cookies kept
function CookieJar:len()
  local n = 0
  for _ in pairs(self._cookies) do n = n + 1 end
  return n
end

--- cookies() -> list of {name =, value =, domain =, path =}
function CookieJar:cookies()
  local out = {}
  for _, c in pairs(self._cookies) do
    out[#out + 1] = {name = c.name, value = c.value, domain = c.domain,
                     path = c.path}
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

--- clear()
function CookieJar:clear() self._cookies = {} end

--- DummyCookieJar(): a jar that keeps nothing
function M.DummyCookieJar()
  return setmetatable({unsafe = false, _cookies = {},
    update_cookies = function() end}, CookieJar)
end

return M
