--- w9 tls: w7's echo server over TLS 1.3 (asyncio.ssl), on 127.0.0.1:PORT,
-- exiting once CONNS connections have closed. The load (N round trips of
-- 64 bytes over 50 connections, every byte checked, handshakes before
-- the clock starts) comes from bench/tls_client.c, which prints the
-- result line; the Python twin is bench/py/w9_tls_echo.py.
--
--   luaio bench/w9_tls_echo.lua N PORT CONNS CERT KEY

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local ssl = require "asyncio.ssl"
local async, await = asyncio.async, asyncio.await

bench.count(1)
local PORT = tonumber(arg[2]) or 8888
local CONNS = tonumber(arg[3]) or 50
local CERT, KEY = assert(arg[4], "CERT expected"), assert(arg[5], "KEY")
bench.setup_gc()

local main = async(function()
  local loop = asyncio.get_running_loop()
  local ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
  ctx:load_cert_chain(CERT, KEY)
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

  local srv = await(asyncio.start_server(serve, "127.0.0.1", PORT,
                                         {ssl = ctx}))
  await(all_closed)
  srv:close()
  await(srv:wait_closed())
end)

asyncio.run(main())
