--- w17 connections: N connections to a stream server in this process,
-- each of which has echoed one 1000-byte line and stays open, idle.
-- Reports the memory each connection holds, both ends together (the
-- client's reader and writer, the server's, and their transports): the
-- growth of the process's resident set (VmRSS) over the N connections,
-- and of the Lua heap (collectgarbage "count"), each after a full
-- collection. ops_per_sec is connections made per second. N stays under
-- the usual limit of 1024 open files (two per connection).
--
--   luaio bench/w17_conns.lua [N]     (N defaults to 450)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local N = bench.count(450)
local gc = bench.setup_gc()
local LINE = ("x"):rep(999) .. "\n"

local main = async(function()
  local loop = asyncio.get_running_loop()
  local served = {}
  local srv = await(asyncio.start_server(async(function(r, w)
    w:write(await(r:readline()))
    await(w:drain())
    served[#served + 1] = {r, w} -- kept open, idle
  end), "127.0.0.1", 0))
  local port = srv.sockets[1]:getsockname()[2]
  local clients = {}
  local function connect()
    local r, w = await(asyncio.open_connection("127.0.0.1", port))
    w:write(LINE)
    assert(await(r:readline()) == LINE, "w17_conns: a bad echo")
    clients[#clients + 1] = {r, w}
  end
  for _ = 1, 20 do connect() end -- the first ones grow shared tables
  local rss0, heap0 = bench.memory()
  local t0 = loop:time()
  for _ = 1, N do connect() end
  local seconds = loop:time() - t0
  local per = bench.memory_per(N, "conn", rss0, heap0)
  for _, c in ipairs(clients) do c[2]:close() end
  for _, c in ipairs(served) do c[2]:close() end
  srv:close()
  await(srv:wait_closed())
  bench.report("w17_conns", N, seconds, per .. " gc=" .. gc)
end)

asyncio.run(main())
