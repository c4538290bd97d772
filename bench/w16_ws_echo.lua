--- w16 websocket echo: N text messages of 32 bytes echoed, 10 clients
-- each with one message in flight, both ends in one process: a
-- web.WebSocketResponse server and session:ws_connect clients on
-- 127.0.0.1. The peer is bench/py/w16_ws_echo.py (aiohttp both ends).
--
--   luaio bench/w16_ws_echo.lua N

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local async, await = asyncio.async, asyncio.await

local N = bench.count(100000)
local CLIENTS = 10
bench.setup_gc()

asyncio.run(async(function()
  local app = web.Application()
  app.router:add_get("/ws", async(function(request)
    local ws = web.WebSocketResponse()
    await(ws:prepare(request))
    for m in ws:iter() do await(ws:send_str(m.data)) end
    return ws
  end))
  local runner = web.AppRunner(app)
  await(runner:setup())
  local site = web.TCPSite(runner, "127.0.0.1", 0)
  await(site:start())
  local url = "ws://127.0.0.1:" .. site.port .. "/ws"
  local session <close> = http.ClientSession()
  local msg = string.rep("m", 32)
  local left = N
  local client = async(function()
    local ws = await(session:ws_connect(url))
    while left > 0 do
      left = left - 1
      await(ws:send_str(msg))
      assert(await(ws:receive_str()) == msg)
    end
    await(ws:close())
  end)
  local loop = asyncio.get_running_loop()
  local w0 = loop:time()
  local cs = {}
  for i = 1, CLIENTS do cs[i] = client() end
  await(asyncio.gather(table.unpack(cs)))
  bench.report("w16_ws_echo", N, loop:time() - w0)
  await(runner:cleanup())
end)())
