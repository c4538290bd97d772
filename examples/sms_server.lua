-- sms_server.lua: the tutorial's stand-in for an SMS API, an HTTP server:
-- GET /<n> sleeps n seconds, then answers "<n> It works"; GET /error
-- answers "error!" after 3 s (the alarm called when sending failed).
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "aiohttp", server.py.
-- Python -> Lua: Flask -> asyncio.http.web (aiohttp's server); a Flask
-- route `@app.route('/<int:x>')` -> `router:add_get("/{x:\d+}", handler)`,
-- the handler reading `request.match_info.x`; Flask's blocking
-- time.sleep (one thread per request) -> await(asyncio.sleep(n)) (one
-- task per connection); a returned string -> web.Response{text =} as
-- text/html, as Flask sends it; app.run() -> web.AppRunner and
-- web.TCPSite, so that the port can be 0 and the one bound printed.
--
--   luaio examples/sms_server.lua [port]     (default 5000; 0: any free)
--
-- Prints the address it serves on, as Flask does; stops on Ctrl-C or
-- SIGTERM. Used by sms_consumer.lua and the aiohttp_*.lua examples (see
-- lib/sms.lua).
local asyncio = require "asyncio"
local web = require "asyncio.http.web"
local async, await = asyncio.async, asyncio.await

local port = tonumber(arg[1]) or 5000

local function html(text)
  return web.Response{text = text, content_type = "text/html"}
end

local app = web.Application()

app.router:add_get("/{x:\\d+}", async(function(request)
  local x = tonumber(request.match_info.x)
  await(asyncio.sleep(x))
  return html(("%d It works"):format(x))
end))

app.router:add_get("/error", async(function()
  await(asyncio.sleep(3))
  return html("error!")
end))

asyncio.run(async(function()
  local runner = web.AppRunner(app, {shutdown_timeout = 0})
  await(runner:setup())
  -- the aiohttp_*.lua examples open 600 connections at once
  local site = web.TCPSite(runner, "127.0.0.1", port, {backlog = 1024})
  await(site:start())
  print((" * Running on http://127.0.0.1:%d/ (Press CTRL+C to quit)")
        :format(site.port))
  io.stdout:flush()
  local stop = asyncio.Event()
  local loop = asyncio.get_running_loop()
  loop:add_signal_handler("SIGTERM", function() stop:set() end)
  -- Ctrl-C cancels this task: the runner is cleaned up on the way out
  local ok, err = pcall(await, stop:wait())
  await(runner:cleanup())
  if not ok then error(err, 0) end
end))
