-- spec/redis_pubsub_spec.lua: asyncio.redis pub/sub: subscribe,
-- psubscribe, get_message with timeouts, listen(), unsubscribe.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await

describe("asyncio.redis pub/sub", function()
  teardown(servers.stop)

  it("delivers confirmations and messages as {type, channel, pattern, "
     .. "data}", aspec.async(function()
    local r <close> = await(redis.from_url(await(servers.redis_url(7))))
    local ps = r:pubsub()
    await(ps:subscribe("news", "sport"))
    await(ps:psubscribe("w*"))
    assert.same({type = "subscribe", channel = "news", data = 1},
                await(ps:get_message{timeout = 1}))
    assert.same({type = "subscribe", channel = "sport", data = 2},
                await(ps:get_message{timeout = 1}))
    assert.same({type = "psubscribe", channel = "w*", data = 3},
                await(ps:get_message{timeout = 1}))
    assert.is_nil(await(ps:get_message()))  -- nothing waiting
    assert.is_nil(await(ps:get_message{timeout = 0.05}))
    assert.equal(1, await(r:publish("news", "hello")))
    assert.equal(1, await(r:publish("weather", "rain")))
    assert.same({type = "message", channel = "news", data = "hello"},
                await(ps:get_message{timeout = 1}))
    assert.same({type = "pmessage", pattern = "w*", channel = "weather",
                 data = "rain"}, await(ps:get_message{timeout = 1}))
    await(r:publish("sport", "goal"))
    assert.same({type = "message", channel = "sport", data = "goal"},
      await(ps:get_message{timeout = 1, ignore_subscribe_messages = true}))
    await(ps:close())
    await(r:close())
  end))

  it("listen() yields every message until the last unsubscribe",
     aspec.async(function()
    local r <close> = await(redis.from_url(await(servers.redis_url(7))))
    local ps = r:pubsub()
    await(ps:subscribe("c"))
    local publisher
    local got = {}
    await(asyncio.wait_for(async(function()
      for msg in ps:listen() do
        got[#got + 1] = msg.type .. ":" .. tostring(msg.data)
        if msg.type == "subscribe" then
          -- Redis confirmed the subscription: each message published
          -- from now on reaches it
          publisher = asyncio.create_task(async(function()
            for i = 1, 3 do
              assert.equal(1, await(r:publish("c", "m" .. i)))
            end
          end)())
        end
        if msg.data == "m3" then await(ps:unsubscribe()) end
      end
    end)(), 10))
    await(publisher)
    assert.same({"subscribe:1", "message:m1", "message:m2", "message:m3",
                 "unsubscribe:0"}, got)
    await(ps:close())
    await(r:close())
  end))
end)
