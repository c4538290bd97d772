--- examples/lib/http.lua: a minimal HTTP/1.1 client on asyncio's streams,
-- standing in for aiohttp's `session.get(url)` in the tutorials.
--
--   local http = require "lib.http"
--   local resp = await(http.get("http://127.0.0.1:5000/1"))
--   print(resp.status, resp.body)
--
-- One GET per connection (`Connection: close`), http:// URLs only. The
-- body is read by Content-Length, by chunks (Transfer-Encoding: chunked)
-- or to the end of the connection. A connection failure raises the
-- OSError open_connection raised; a malformed answer raises
-- http.HTTPError. Cancelling (or a timeout around) a request closes its
-- connection.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local M = {}

M.HTTPError = asyncio.Exception:subclass("HTTPError")

--- parse_url(url) -> host, port, path
function M.parse_url(url)
  local host, port, path = url:match("^http://([^:/]+):?(%d*)(/?.*)$")
  if not host then
    error(M.HTTPError("unsupported URL: " .. tostring(url)), 2)
  end
  return host, tonumber(port) or 80, path ~= "" and path or "/"
end

--- Reads the status line and the headers: status, reason, headers (keys
-- in lower case).
local read_head = async(function(reader)
  local line = await(reader:readline())
  local status, reason = line:match("^HTTP/1%.%d (%d%d%d) ?([^\r\n]*)")
  if not status then
    error(M.HTTPError("bad status line: " .. ("%q"):format(line)), 0)
  end
  local headers = {}
  while true do
    line = await(reader:readline())
    if line == "\r\n" or line == "\n" then break end
    if line == "" then error(M.HTTPError("connection closed in headers"), 0) end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  return tonumber(status), reason, headers
end)

local read_chunked = async(function(reader)
  local parts = {}
  while true do
    local size = tonumber(await(reader:readline()):match("^%x+"), 16)
    if not size then error(M.HTTPError("bad chunk size"), 0) end
    if size == 0 then
      await(reader:readline())
      return table.concat(parts)
    end
    parts[#parts + 1] = await(reader:readexactly(size))
    await(reader:readexactly(2))
  end
end)

--- get(url [, {headers = {name = value}}]) -> {status =, reason =,
-- headers =, body =}
M.get = async(function(url, opts)
  local host, port, path = M.parse_url(url)
  local reader, writer = await(asyncio.open_connection(host, port))
  local _ <close> = writer -- closed however the request ends
  local lines = {("GET %s HTTP/1.1"):format(path),
                 ("Host: %s:%d"):format(host, port),
                 "User-Agent: luaio-example", "Connection: close"}
  for name, value in pairs(opts and opts.headers or {}) do
    lines[#lines + 1] = name .. ": " .. value
  end
  writer:write(table.concat(lines, "\r\n") .. "\r\n\r\n")
  await(writer:drain())
  local status, reason, headers = await(read_head(reader))
  local body
  if headers["transfer-encoding"] == "chunked" then
    body = await(read_chunked(reader))
  elseif headers["content-length"] then
    body = await(reader:readexactly(tonumber(headers["content-length"])))
  else
    body = await(reader:read())
  end
  return {status = status, reason = reason, headers = headers, body = body}
end)

return M
