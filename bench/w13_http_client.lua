--- w13 http client: N GETs of a small response with 10 in flight, one
-- asyncio.http ClientSession (keep-alive), against the server at
-- 127.0.0.1:PORT (bench/node/w12_http_server.js in the runs quoted);
-- the peer is bench/py/w13_http_client.py (aiohttp's client).
--
--   luaio bench/w13_http_client.lua N PORT

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local http = require "asyncio.http"
local async, await = asyncio.async, asyncio.await

local N = bench.count(20000)
local PORT = tonumber(arg[2]) or 8080
bench.setup_gc()

asyncio.run(async(function()
  local url = "http://127.0.0.1:" .. PORT .. "/"
  local session <close> = http.ClientSession()
  local left = N
  local worker = async(function()
    while left > 0 do
      left = left - 1
      local resp = await(session:get(url))
      assert(#await(resp:read()) > 0)
    end
  end)
  local t0 = os.clock()
  local loop = asyncio.get_running_loop()
  local w0 = loop:time()
  local ws = {}
  for i = 1, 10 do ws[i] = worker() end
  await(asyncio.gather(table.unpack(ws)))
  local _ = t0
  bench.report("w13_http_client", N, loop:time() - w0)
end)())
