--- w17 connections on cqueues: N connections to a server in this
-- process, each of which has echoed one 1000-byte line and stays open,
-- idle; one cqueues coroutine per served connection, the client's in the
-- main one. Memory per connection, both ends together: VmRSS growth and
-- the Lua heap's, each after a full collection. The luaio twin is
-- bench/w17_conns.lua.
--   lua5.4 bench/peers/w17_cqueues_conns.lua [N]
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "../common.lua")
local N = bench.count(450)
local LINE = ("x"):rep(999) .. "\n"

local cq = cqueues.new()
local srv = socket.listen{host = "127.0.0.1", port = 0, reuseaddr = true}
local _, _, port = srv:localname()
local served, clients = {}, {}
cq:wrap(function()
  for _ = 1, N + 20 do
    local s = assert(srv:accept())
    cq:wrap(function()
      s:write(assert(s:read("*L")))
      s:flush()
      served[#served + 1] = s -- kept open, idle
    end)
  end
end)
cq:wrap(function()
  local rss0, heap0, t0
  for i = 1, N + 20 do
    if i == 21 then -- the first ones grow shared tables
      rss0, heap0 = bench.memory()
      t0 = cqueues.monotime()
    end
    local c = assert(socket.connect("127.0.0.1", port))
    c:write(LINE)
    c:flush()
    assert(c:read("*L") == LINE, "w17_conns: a bad echo")
    clients[#clients + 1] = c
  end
  local seconds = cqueues.monotime() - t0
  local per = bench.memory_per(N, "conn", rss0, heap0)
  for _, c in ipairs(clients) do c:close() end
  for _, s in ipairs(served) do s:close() end
  srv:close()
  bench.report("w17_conns", N, seconds, per, "cqueues")
end)
assert(cq:loop())
