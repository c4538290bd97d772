-- redis_producer.lua: the producer side of the tutorial's Redis queue:
-- pushes task values onto the list "queue", as the tutorial does by hand
-- with redis-cli, printing each reply as redis-cli does.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "master-worker主從模式"
-- (`127.0.0.1:6379[3]> lpush queue 2` ...).
-- Python -> Lua: redis-cli's LPUSH commands -> an asyncio.redis
-- pipeline, all of them in one write.
--
--   luaio examples/redis_producer.lua VALUE...   (e.g. 5 1 1)
--
-- Redis at 127.0.0.1:6379, or REDIS_PORT / REDIS_DB from the environment
-- (the tutorial uses db 3).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local async, await = asyncio.async, asyncio.await

asyncio.run(async(function()
  local conn = redis.Redis{port = tonumber(os.getenv("REDIS_PORT")) or 6379,
                           db = tonumber(os.getenv("REDIS_DB")) or 3}
  local p = conn:pipeline(false)
  for _, value in ipairs(arg) do p:lpush("queue", value) end
  for _, reply in ipairs(await(p:execute())) do
    print(("(integer) %d"):format(reply))
  end
  await(conn:close())
end))
