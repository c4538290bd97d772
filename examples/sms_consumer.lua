-- sms_consumer.lua: the tutorial's async consumer with the blocking pop:
-- the main thread blocks in BRPOP on a Redis list and hands each task to
-- a loop running in another thread; there each one calls the SMS service
-- over HTTP (/<n> answers after n seconds) and prints the status and the
-- answer, or, when the call fails, calls /error instead.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "aiohttp", async-customer.py
-- with the brpop loop given after it (sms_consumer_rpop.lua is the
-- program as first written, polling with rpop).
-- Python -> Lua: redis-py's blocking brpop -> asyncio.redis, its reply
-- awaited with the main thread's own loop (run_until_complete blocks the
-- main thread as redis-py does); the daemon loop thread ->
-- asyncio.start_loop_thread(), never joined; do_some_work is sent there,
-- so it requires what it uses and takes the service's address as an
-- argument; aiohttp -> asyncio.http (`async with
-- aiohttp.ClientSession() as session` and `async with session.get(url)
-- as resp` -> to-be-closed variables); try/except/else -> asyncio.pcall;
-- `except Exception as e: print('error', e)` -> asyncio.pcall around the
-- main loop (Ctrl-C, a KeyboardInterrupt, goes through, as in Python).
--
--   luaio examples/sms_consumer.lua [COUNT]
--
-- Runs until Ctrl-C, or until COUNT tasks were taken and done. Redis at
-- 127.0.0.1:6379 or REDIS_PORT / REDIS_DB (db 3); the SMS service at
-- SMS_URL, else started on a free port (lib/sms.lua). Feed it with
-- redis_producer.lua (the tutorial pushes 5, 1, 1).
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

-- the main thread's loop: Redis replies and the SMS service's process
local loop = asyncio.get_event_loop()
local rcon = redis.Redis{port = tonumber(os.getenv("REDIS_PORT")) or 6379,
                         db = tonumber(os.getenv("REDIS_DB")) or 3}
local base, server = loop:run_until_complete(sms.start())

local new_loop = asyncio.start_loop_thread()

local submitted = {}
local ok, err = asyncio.pcall(function()
  while count == nil or #submitted < count do
    local _, task = loop:run_until_complete(rcon:brpop("queue", 0))
    submitted[#submitted + 1] = asyncio.run_coroutine_threadsafe(
      do_some_work(tonumber(task), base), new_loop)
  end
end)
if not ok then
  print("error", err)
else -- COUNT tasks taken: wait for their work
  for _, f in ipairs(submitted) do f:result() end
end
new_loop:stop()
loop:run_until_complete(sms.stop(server))
loop:run_until_complete(rcon:close())
loop:close()
