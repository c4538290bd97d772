-- tls_server.lua: an HTTPS "hello" server on asyncio.ssl: start_server
-- with ssl = a server context holding a certificate and its key; each
-- connection is a task reading one request and answering it.
-- Not from a tutorial: Python's `asyncio.start_server(handle, host, port,
-- ssl=ctx)` with `ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)`.
--
--   luaio examples/tls_server.lua CERT KEY [port]   (default 8443; 0: any)
--
-- Prints the address it serves on; stops on Ctrl-C or SIGTERM. Try it
-- with examples/tls_fetch.lua, or `curl --cacert CA https://localhost:PORT/`.
-- A throwaway certificate for localhost:
--   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
--     -nodes -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost \
--     -addext subjectAltName=DNS:localhost,IP:127.0.0.1
-- (then cert.pem is also the CA to trust).
local asyncio = require "asyncio"
local ssl = require "asyncio.ssl"
local async, await = asyncio.async, asyncio.await

local cert, key = arg[1], arg[2]
if not cert or not key then
  io.stderr:write("usage: luaio examples/tls_server.lua CERT KEY [port]\n")
  os.exit(2)
end
local port = tonumber(arg[3]) or 8443

local handle = async(function(reader, writer)
  local _ <close> = writer
  local request = await(reader:readline())
  repeat -- the headers: not needed
    local line = await(reader:readline())
  until line == "\r\n" or line == "\n" or line == ""
  local obj = writer:get_extra_info("ssl_object")
  local body = ("hello over %s (%s), you asked for %s\n"):format(
    obj:version(), obj:cipher()[1],
    request:match("^GET (%S+)") or "nothing I know")
  writer:write(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    .. "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(#body,
                                                                 body))
  await(writer:drain())
end)

asyncio.run(async(function()
  local loop = asyncio.get_running_loop()
  local ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
  ctx:load_cert_chain(cert, key)
  local srv = await(asyncio.start_server(handle, "127.0.0.1", port,
                                         {ssl = ctx}))
  print(("Serving TLS on https://localhost:%d/ (Press CTRL+C to quit)")
        :format(srv.sockets[1].port))
  io.stdout:flush()
  loop:add_signal_handler("SIGTERM", function() srv:close() end)
  -- SIGTERM closes the server, which ends serve_forever as a
  -- cancellation; Ctrl-C cancels this task itself and goes on out
  local ok, err = pcall(await, srv:serve_forever())
  if not ok and asyncio.current_task():cancelling() > 0 then
    error(err, 0)
  end
end))
