--- w17 connections on luv: N connections to a server in this process,
-- each of which has echoed one 1000-byte line and stays open, idle, in
-- luv's callback style (read_start, the line gathered, written back).
-- Memory per connection, both ends together: VmRSS growth and the Lua
-- heap's, each after a full collection. The luaio twin is
-- bench/w17_conns.lua.
--   lua5.4 bench/peers/w17_luv_conns.lua [N]
local uv = require "luv"
local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "../common.lua")
local N = bench.count(450)
local LINE = ("x"):rep(999) .. "\n"

--- Calls on_line(line) once a whole line arrived on sock.
local function read_line(sock, on_line)
  local got = {}
  sock:read_start(function(err, data)
    assert(not err, err)
    assert(data, "w17_conns: closed early")
    got[#got + 1] = data
    if data:sub(-1) == "\n" then
      sock:read_stop()
      on_line(table.concat(got))
    end
  end)
end

local served, clients = {}, {}
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
assert(server:listen(128, function(err)
  assert(not err, err)
  local s = uv.new_tcp()
  server:accept(s)
  read_line(s, function(line)
    s:write(line)
    served[#served + 1] = s -- kept open, idle
  end)
end))
local port = server:getsockname().port

local made, rss0, heap0, t0 = 0
local function connect()
  local c = uv.new_tcp()
  c:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    c:write(LINE)
    read_line(c, function(line)
      assert(line == LINE, "w17_conns: a bad echo")
      clients[#clients + 1] = c
      made = made + 1
      if made == 20 then -- the first ones grow shared tables
        rss0, heap0 = bench.memory()
        t0 = uv.hrtime()
      end
      if made < N + 20 then return connect() end
      local seconds = (uv.hrtime() - t0) / 1e9
      local per = bench.memory_per(N, "conn", rss0, heap0)
      for _, h in ipairs(clients) do h:close() end
      for _, h in ipairs(served) do h:close() end
      server:close()
      bench.report("w17_conns", N, seconds, per, "luv")
    end)
  end)
end
connect()
uv.run()
