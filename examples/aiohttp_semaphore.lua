-- aiohttp_semaphore.lua: 600 concurrent HTTP requests, at most 500 at a
-- time: each request holds the semaphore while it runs, so the program
-- never opens more connections than the system allows.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "限制並發數量方法"
-- (limiting concurrency), after "aiohttp並發量太大的異常解決方案".
-- Python -> Lua: `async with semaphore:` -> a to-be-closed guard,
-- `local _ <close> = await(semaphore)`; aiohttp's ClientSession and
-- session.get -> asyncio.http's, each a to-be-closed variable (`async
-- with`); the tutorial's search-engine URL -> the local SMS
-- service (sms_server.lua: /1 answers after 1 s), so that 500 requests
-- really are in flight at once. Takes 2 s.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local http = require "asyncio.http"
local sms = require "lib.sms"
local async, await = asyncio.async, asyncio.await

local count = 0
local semaphore

local get_http = async(function(url)
  local _ <close> = await(semaphore)
  local session <close> = http.ClientSession()
  local res <close> = await(session:get(url))
  count = count + 1
  print(count, res.status)
end)

local loop = asyncio.get_event_loop()
local base, server = loop:run_until_complete(sms.start())
count = 0
semaphore = asyncio.Semaphore(500)
local url = base .. "/1?wd={0}"
local tasks = {}
for i = 0, 599 do
  tasks[#tasks + 1] = get_http((url:gsub("{0}", i)))
end
loop:run_until_complete(asyncio.wait(tasks))
loop:run_until_complete(sms.stop(server))
loop:close()
