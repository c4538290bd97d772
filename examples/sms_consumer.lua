-- sms_consumer.lua: the tutorial's async consumer: tasks come from a Redis
-- list, blocking in BRPOP; each one becomes a task that calls the SMS
-- service over HTTP (/<n> answers after n seconds) and prints the status
-- and the answer; when the call fails it calls /error instead.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "aiohttp", async-customer.py
-- with the brpop loop given after it.
-- Python -> Lua: the tutorial's loop runs in a second thread fed by
-- run_coroutine_threadsafe from a blocking brpop in the main thread; here
-- the BRPOP itself is awaited, so one loop does both. aiohttp ->
-- lib/http.lua; try/except/else -> asyncio.pcall.
--
--   luaio examples/sms_consumer.lua [COUNT]
--
-- Runs until Ctrl-C, or until COUNT tasks were taken and done. Redis at
-- 127.0.0.1:6379 or REDIS_PORT / REDIS_DB (db 3); the SMS service at
-- SMS_URL, else started on a free port (lib/sms.lua). Feed it with
-- redis_producer.lua (the tutorial pushes 5, 1, 1).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local http = require "lib.http"
local redis = require "lib.redis"
local sms = require "lib.sms"
local async, await = asyncio.async, asyncio.await

local base
local count = tonumber(arg[1])

local fetch = async(function(url)
  local resp = await(http.get(url))
  print(resp.status)
  return resp.body
end)

local do_some_work = async(function(x)
  print("Waiting ", x)
  local ok, ret = asyncio.pcall(function()
    return await(fetch(("%s/%d"):format(base, x)))
  end)
  if ok then
    print(ret)
    print(("Done %d"):format(x))
  else
    local ok2, ret2 = asyncio.pcall(function()
      return await(fetch(base .. "/error"))
    end)
    print(ok2 and ret2 or tostring(ret2))
  end
end)

asyncio.run(async(function()
  local rcon = await(redis.connect("127.0.0.1",
    tonumber(os.getenv("REDIS_PORT")) or 6379,
    {db = tonumber(os.getenv("REDIS_DB")) or 3}))
  local server
  base, server = await(sms.start())
  local _ <close> = setmetatable({}, {__close = function()
    await(sms.stop(server))
    await(rcon:close())
  end})
  local tasks = {}
  while count == nil or #tasks < count do
    local reply = await(rcon:call("BRPOP", "queue", 0))
    tasks[#tasks + 1] = asyncio.create_task(do_some_work(tonumber(reply[2])))
  end
  await(asyncio.wait(tasks))
end))
