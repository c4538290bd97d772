-- http_task.lua: a task created inside main does an HTTP GET after a
-- second while main sleeps two; each prints the time it finished.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1. asyncio".
-- Python -> Lua: the tutorial's blocking requests.get (which would stall
-- the loop) -> asyncio.http's http.request("GET", url), awaited (one
-- request on a session of its own, its body read, as aiohttp.request);
-- resp.text -> await(resp:text()); its LAN server -> the local SMS
-- service (sms_server.lua, path /0 answers at once); time.time() ->
-- example.now() (the loop's clock); f-string ->
-- string.format; try/finally -> example.finally. Takes 2 s.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local http = require "asyncio.http"
local sms = require "lib.sms"
local async, await = asyncio.async, asyncio.await

local now = example.now
local url

-- create an asynchronous function
local task_func = async(function()
  await(asyncio.sleep(1))
  local resp = await(http.request("GET", url))
  print(("task_func: %.6f - %s"):format(now(), await(resp:text())))
end)

local main = async(function(loop)
  -- the global event loop
  loop = asyncio.get_event_loop()
  -- only a coroutine given to the loop is run by it
  local task = loop:create_task(task_func())
  await(asyncio.sleep(2))
  print(("main loop: %.6f"):format(now()))
  return task
end)

local event_loop = asyncio.get_event_loop()
local base, server = event_loop:run_until_complete(sms.start())
url = base .. "/0"
do
  -- when the loop closes, the coroutines not done are closed with it
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop))
  event_loop:run_until_complete(sms.stop(server))
end
