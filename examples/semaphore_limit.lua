-- semaphore_limit.lua: a Semaphore(500) lets at most 500 of 600 requests
-- run at once, the tutorial's cure for "too many file descriptors".
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, section 限制並發數量方法.
-- The tutorial's requests are aiohttp GETs to a web search; here
-- fake_get stands in for `session.get(url)` (no network needed): it
-- takes 0.1 s and answers status 200. It also counts the requests in
-- flight, and the last line, not in the tutorial, prints the most there
-- ever were.
-- Python -> Lua: `async with semaphore:` -> `local _ <close> =
-- await(semaphore)`; the global count -> a local the coroutine updates;
-- url.format(i) -> string.format.
-- Takes 0.2 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local count = 0
local semaphore
local in_flight, most = 0, 0

--- The stand-in for an HTTP GET of url: returns a response with .status.
local fake_get = async(function(url)
  in_flight = in_flight + 1
  most = math.max(most, in_flight)
  await(asyncio.sleep(0.1))
  in_flight = in_flight - 1
  return {url = url, status = 200}
end)

local get_http = async(function(url)
  local _ <close> = await(semaphore)
  local res = await(fake_get(url))
  count = count + 1
  print(count, res.status)
end)

semaphore = asyncio.Semaphore(500)
local loop = example.loop()
local url = "https://www.baidu.com/s?ie=utf-8&f=8&rsv_bp=1&ch=&tn=baiduerr"
  .. "&bar=&wd=%d"
local tasks = {}
for i = 0, 599 do tasks[#tasks + 1] = get_http(string.format(url, i)) end
loop:run_until_complete(asyncio.wait(tasks))
loop:close()
print("most requests at once:", most)
