-- redis_coro_producer.lua: the producer of the tutorial's Redis queue
-- model: pushes '1' to '4' onto the list coro_test. It prints nothing.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "redis隊列模型", 生產者代碼
-- (the producer).
-- Python -> Lua: redis-py's lpush -> asyncio.redis's lpush, one command
-- after the other as in the tutorial.
--
-- Redis at 127.0.0.1:6379, db 0 as in the tutorial, or REDIS_PORT /
-- REDIS_DB from the environment. redis_coro_consumer.lua takes the items.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"
local redis = require "asyncio.redis"
local async, await = asyncio.async, asyncio.await

asyncio.run(async(function()
  local redis_conn = redis.Redis{
    port = tonumber(os.getenv("REDIS_PORT")) or 6379,
    db = tonumber(os.getenv("REDIS_DB")) or 0}
  await(redis_conn:lpush("coro_test", "1"))
  await(redis_conn:lpush("coro_test", "2"))
  await(redis_conn:lpush("coro_test", "3"))
  await(redis_conn:lpush("coro_test", "4"))
  await(redis_conn:close())
end))
