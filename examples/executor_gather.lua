-- executor_gather.lua: blocking calls made awaitable with
-- run_in_executor; two of them run side by side in worker threads while
-- gather waits for both.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "2. 将阻塞操作定义为协程"
-- (turning a blocking operation into a coroutine).
-- Python -> Lua: `loop.run_in_executor(None, func, *args)` is the same
-- call; func runs in a worker thread of the loop's default executor, with
-- a Lua state of its own, so my_fun requires what it uses there.
-- time.sleep -> lib/blocking.lua; datetime.datetime.now() ->
-- os.date("*t"), a table of the date's fields, which the list prints as
-- Python's repr of a datetime (datetime.datetime(2024, 5, 1, 12, 0, 7);
-- os.date has whole seconds, so there is no microsecond field).
-- "这两个time.sleep相互不影响": both return at the same second. Takes 4 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function my_fun()
  require("lib.blocking").sleep(4)
  return os.date("*t")
end

--- Python's repr of a datetime with the fields of the table t.
local function datetime_repr(t)
  return ("datetime.datetime(%d, %d, %d, %d, %d, %d)")
    :format(t.year, t.month, t.day, t.hour, t.min, t.sec)
end

local fetch_async = async(function(func, ...)
  print("begin")
  local loop = asyncio.get_event_loop()
  local future = loop:run_in_executor(nil, func, ...)
  local result = await(future)
  return result
end)

local tasks = {
  fetch_async(my_fun),
  fetch_async(my_fun),
}

local loop = asyncio.get_event_loop()
local results = loop:run_until_complete(asyncio.gather(table.unpack(tasks)))
local items = {}
for i, t in ipairs(results) do items[i] = datetime_repr(t) end
print("[" .. table.concat(items, ", ") .. "]")
loop:close()
