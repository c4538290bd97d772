--- w7 tcp: an echo server on 127.0.0.1:PORT that exits once CONNS
-- connections have closed. The load (N round trips of 64 bytes over 50
-- connections, every byte checked) comes from bench/tcp_client.c, which
-- prints the result line; the Python twin is bench/py/w7_tcp_server.py.
--
--   luaio bench/w7_tcp_server.lua N PORT CONNS
--
-- Each connection is served by one task: read what arrived, write it
-- back, drain. N is unused by the server (it is the client's), kept so
-- that every workload takes N first.

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

bench.count(1)
local PORT = tonumber(arg[2]) or 8888
local CONNS = tonumber(arg[3]) or 50
bench.setup_gc()

local main = async(function()
  local loop = asyncio.get_running_loop()
  local all_closed = loop:create_future()
  local closed = 0

  local serve = async(function(reader, writer)
    while true do
      local data = await(reader:read(65536))
      if data == "" then break end
      writer:write(data)
      await(writer:drain())
    end
    writer:close()
    closed = closed + 1
    if closed == CONNS then all_closed:set_result() end
  end)

  local srv = await(asyncio.start_server(serve, "127.0.0.1", PORT))
  await(all_closed)
  srv:close()
  await(srv:wait_closed())
end)

asyncio.run(main())
