-- aiohttp_many.lua: six hundred HTTP requests at once with asyncio.wait;
-- each prints how many have answered so far and its status.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "aiohttp並發量太大的異常解決方案"
-- (too many requests at once), 異常代碼示例 (the failing program): the
-- program of aiohttp_count.lua with 600 requests. On Windows, Python's
-- select() fails with "too many file descriptors in select()"; libuv
-- polls with epoll here, which has no such limit, so all 600 answer
-- (aiohttp_semaphore.lua is the tutorial's cure, 500 at a time).
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
  for i = 0, 599 do tasks[#tasks + 1] = get_http((url:gsub("{0}", i))) end
  loop:run_until_complete(asyncio.wait(tasks))
  loop:run_until_complete(sms.stop(server))
  loop:close()
end

main()
