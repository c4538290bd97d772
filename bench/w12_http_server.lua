--- w12 http server: an asyncio.http.web hello-world server on
-- 127.0.0.1:PORT, loaded by Debian's wrk (keep-alive, 50 connections);
-- the peers are bench/py/w12_http_server.py (aiohttp, on uvloop with
-- --uvloop) and bench/node/w12_http_server.js (Node's http).
--
--   luaio bench/w12_http_server.lua N PORT
--
-- Serves until killed (SIGTERM/SIGINT: run_app's graceful stop).

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local web = require "asyncio.http.web"

bench.count(1)
local PORT = tonumber(arg[2]) or 8080
bench.setup_gc()

local app = web.Application()
app.router:add_get("/", asyncio.async(function()
  return web.Response{text = "Hello, World!"}
end))
web.run_app(app, {host = "127.0.0.1", port = PORT, print = false})
