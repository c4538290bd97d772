-- sms_server.lua: the tutorial's stand-in for an SMS API, an HTTP server:
-- GET /<n> sleeps n seconds, then answers "<n> It works"; GET /error
-- answers "error!" after 3 s (the alarm called when sending failed).
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "aiohttp", server.py.
-- Python -> Lua: Flask's blocking routes (time.sleep, one thread per
-- request) -> one task per connection under asyncio.start_server, with
-- await(asyncio.sleep(n)); the HTTP is written by hand on the streams.
--
--   luaio examples/sms_server.lua [port]     (default 5000; 0: any free)
--
-- Prints the address it serves on, as Flask does; stops on Ctrl-C or
-- SIGTERM. Used by sms_consumer.lua and the aiohttp_*.lua examples (see
-- lib/sms.lua).
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local port = tonumber(arg[1]) or 5000

--- The route: status code and body for a request path.
local route = async(function(path)
  if path == "/error" then
    await(asyncio.sleep(3))
    return 200, "error!"
  end
  local x = path:match("^/(%d+)$")
  if x then
    await(asyncio.sleep(tonumber(x)))
    return 200, ("%d It works"):format(tonumber(x))
  end
  return 404, "Not Found"
end)

local REASONS = {[200] = "OK", [400] = "Bad Request", [404] = "NOT FOUND"}

local handle = async(function(reader, writer)
  local _ <close> = writer
  local request = await(reader:readline())
  repeat -- the headers: not needed
    local line = await(reader:readline())
  until line == "\r\n" or line == "\n" or line == ""
  local path = request:match("^GET ([^%s?]+)%S* HTTP/1%.%d")
  local status, body = 400, "Bad Request"
  if path then status, body = await(route(path)) end
  writer:write(("HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8"
    .. "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
    :format(status, REASONS[status], #body, body))
  await(writer:drain())
end)

asyncio.run(async(function()
  local loop = asyncio.get_running_loop()
  local srv = await(asyncio.start_server(handle, "127.0.0.1", port,
                                         {backlog = 1024}))
  print((" * Running on http://127.0.0.1:%d/ (Press CTRL+C to quit)")
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
