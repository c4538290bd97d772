-- aiohttp_count.lua: ten HTTP requests at once with asyncio.wait; each
-- prints how many have answered so far and its status.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "asyncio在aiohttp中的應用"
-- (asyncio in aiohttp).
-- Python -> Lua: `async with aiohttp.ClientSession() as session:` ->
-- `local session <close> = http.ClientSession()` (asyncio.http), `async
-- with session.get(url) as res:` -> `local res <close> =
-- await(session:get(url))` (closing it without reading the body closes
-- the connection, as leaving aiohttp's block does); the tutorial's
-- search-engine URL -> the local SMS service (sms_server.lua), path /0
-- (answers at once).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local http = require "asyncio.http"
local sms = require "lib.sms"
local async, await = asyncio.async, asyncio.await

local count = 0

local get_http = async(function(url)
  local session <close> = http.ClientSession()
  local res <close> = await(session:get(url))
  count = count + 1
  print(count, res.status)
end)

local function main()
  local loop = asyncio.get_event_loop()
  local base, server = loop:run_until_complete(sms.start())
  local url = base .. "/0?wd={0}"
  local tasks = {}
  for i = 0, 9 do tasks[#tasks + 1] = get_http((url:gsub("{0}", i))) end
  loop:run_until_complete(asyncio.wait(tasks))
  loop:run_until_complete(sms.stop(server))
  loop:close()
end

main()
