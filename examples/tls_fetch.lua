-- tls_fetch.lua: fetch a page over TLS with asyncio.ssl: open_connection
-- with ssl = a client context (the system's CAs, or the file given),
-- which checks the server's certificate and its name; then HTTP/1.1 by
-- hand on the streams.
-- Not from a tutorial: Python's `asyncio.open_connection(host, 443,
-- ssl=ssl.create_default_context(cafile=...))`.
--
--   luaio examples/tls_fetch.lua https://HOST[:PORT]/PATH [CAFILE]
--
-- Prints the TLS version, the cipher, the server certificate's subject,
-- then the response's status line and body. A certificate that does not
-- verify fails with ssl.SSLCertVerificationError, as in Python.
local asyncio = require "asyncio"
local ssl = require "asyncio.ssl"
local async, await = asyncio.async, asyncio.await

local url, cafile = arg[1], arg[2]
local host, port, path = (url or ""):match("^https://([^/:]+):?(%d*)(/?.*)$")
if not host then
  io.stderr:write("usage: luaio examples/tls_fetch.lua https://HOST[:PORT]"
                  .. "/PATH [CAFILE]\n")
  os.exit(2)
end
port = tonumber(port) or 443
if path == "" then path = "/" end

--- "CN=localhost, O=luaio" from getpeercert()'s subject.
local function name(subject)
  local parts = {}
  for _, rdn in ipairs(subject or {}) do
    for _, pair in ipairs(rdn) do
      parts[#parts + 1] = pair[1] .. "=" .. pair[2]
    end
  end
  return table.concat(parts, ", ")
end

asyncio.run(async(function()
  local ctx = ssl.create_default_context{cafile = cafile}
  local reader, writer = await(asyncio.open_connection(host, port,
                                                       {ssl = ctx}))
  local _ <close> = writer
  local obj = writer:get_extra_info("ssl_object")
  print("TLS:", obj:version(), obj:cipher()[1])
  print("server:", name(writer:get_extra_info("peercert").subject))
  writer:write(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n")
               :format(path, host))
  local status = await(reader:readline())
  print("status:", (status:gsub("\r?\n$", "")))
  repeat
    local line = await(reader:readline())
  until line == "\r\n" or line == "\n" or line == ""
  io.write(await(reader:read()))
end))
