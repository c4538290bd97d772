--- w7 tcp on luv: an echo server on 127.0.0.1:PORT in luv's callback
-- style (what a luv user writes: read_start, write the chunk back),
-- exiting once CONNS connections have closed.
--   lua5.4 bench/luv/w7_tcp_server.lua N PORT CONNS
local uv = require "luv"
local PORT = tonumber(arg[2]) or 8888
local CONNS = tonumber(arg[3]) or 50
local closed = 0
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", PORT))
assert(server:listen(128, function(err)
  assert(not err, err)
  local c = uv.new_tcp()
  server:accept(c)
  c:read_start(function(rerr, data)
    if data then
      c:write(data)
    else
      c:close()
      closed = closed + 1
      if closed == CONNS then server:close() end
    end
  end)
end))
uv.run()
