-- sms_consumer_rpop.lua: the tutorial's async consumer as first written:
-- the main thread polls a Redis list (RPOP; when it is empty, it sleeps a
-- second) and hands each task to a loop running in another thread; there
-- each one calls the SMS service over HTTP (/<n> answers after n seconds)
-- and prints the status and the answer, or, when the call fails, calls
-- /error instead.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "aiohttp", async-customer.py
-- (sms_consumer.lua is its brpop version).
-- Python -> Lua: as in sms_consumer.lua; time.sleep(1) -> a second of
-- the main thread's loop (run_until_complete(asyncio.sleep(1))); `except
-- Exception as e: print('error')` -> asyncio.pcall around the main loop
-- (Ctrl-C, a KeyboardInterrupt, goes through, as in Python).
--
--   luaio examples/sms_consumer_rpop.lua [COUNT]
--
-- Runs until Ctrl-C, or until COUNT tasks were taken and done. Redis at
-- 127.0.0.1:6379 or REDIS_PORT / REDIS_DB (db 3); the SMS service at
-- SMS_URL, else started on a free port (lib/sms.lua). Feed it with
-- redis_producer.lua.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local sms = require "lib.sms"
local async, await = asyncio.async, asyncio.await

local count = tonumber(arg[1])

local do_some_work = async(function(x, base)
  local aio = require "asyncio"
  local http = require "asyncio.http"
  local fetch = aio.async(function(url)
    local session <close> = http.ClientSession()
    local resp <close> = aio.await(session:get(url))
    print(resp.status)
    return aio.await(resp:text())
  end)
  print("Waiting ", x)
  local ok, ret = aio.pcall(function()
    local body = aio.await(fetch(("%s/%d"):format(base, x)))
    print(body)
  end)
  if not ok then
    local ok2, ret2 = aio.pcall(function()
      return aio.await(fetch(base .. "/error"))
    end)
    print(ok2 and ret2 or tostring(ret2))
  else
    print(("Done %d"):format(x))
  end
end)

-- the main thread's loop: Redis replies, the polling sleep and the SMS
-- service's process
local loop = asyncio.get_event_loop()
local rcon = redis.Redis{port = tonumber(os.getenv("REDIS_PORT")) or 6379,
                         db = tonumber(os.getenv("REDIS_DB")) or 3}
local base, server = loop:run_until_complete(sms.start())

local new_loop = asyncio.start_loop_thread()

local submitted = {}
local ok = asyncio.pcall(function()
  while count == nil or #submitted < count do
    local task = loop:run_until_complete(rcon:rpop("queue"))
    if not task then
      loop:run_until_complete(asyncio.sleep(1))
    else
      submitted[#submitted + 1] = asyncio.run_coroutine_threadsafe(
        do_some_work(tonumber(task), base), new_loop)
    end
  end
end)
if not ok then
  print("error")
else -- COUNT tasks taken: wait for their work
  for _, f in ipairs(submitted) do f:result() end
end
new_loop:stop()
loop:run_until_complete(sms.stop(server))
loop:run_until_complete(rcon:close())
loop:close()
