--- w10 tls bulk: N MiB through one TLS 1.3 connection on 127.0.0.1, both
-- ends in this process (asyncio.ssl encrypting on one side, decrypting
-- on the other): the client writes 64 KiB chunks and drains, the server
-- reads 64 KiB at a time and counts. Prints MiB/s as ops/s. The Python
-- twin is bench/py/w10_tls_bulk.py.
--
--   luaio bench/w10_tls_bulk.lua N CERT KEY

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local ssl = require "asyncio.ssl"
local async, await = asyncio.async, asyncio.await

local N = bench.count(256)
local CERT, KEY = assert(arg[2], "CERT expected"), assert(arg[3], "KEY")
bench.setup_gc()

local main = async(function()
  local loop = asyncio.get_running_loop()
  local sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
  sctx:load_cert_chain(CERT, KEY)
  local cctx = ssl.create_default_context()
  cctx.check_hostname = false
  cctx.verify_mode = ssl.CERT_NONE
  local total = N * 1024 * 1024
  local done = loop:create_future()
  local srv = await(asyncio.start_server(async(function(r, w)
    local got = 0
    while got < total do
      local data = await(r:read(65536))
      if data == "" then break end
      got = got + #data
    end
    done:set_result(got)
    w:close()
  end), "127.0.0.1", 0, {ssl = sctx}))
  local r, w = await(asyncio.open_connection("127.0.0.1",
    srv.sockets[1].port, {ssl = cctx}))
  local chunk = ("b"):rep(65536)
  local t0 = loop:time()
  for _ = 1, total // #chunk do
    w:write(chunk)
    await(w:drain())
  end
  local got = await(done)
  local t1 = loop:time()
  assert(got == total, "short transfer")
  bench.report("w10_tls_bulk", N, t1 - t0)
  w:close()
  await(r:read())
  srv:close()
  await(srv:wait_closed())
end)

asyncio.run(main())
