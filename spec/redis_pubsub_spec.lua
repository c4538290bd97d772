-- spec/redis_pubsub_spec.lua: asyncio.redis pub/sub: subscribe,
-- psubscribe, get_message with timeouts, listen(), unsubscribe, PING,
-- handlers and run(), reuse after close, and a lost connection opened
-- again with its subscriptions.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await
local err_of = dofile("spec/helpers.lua").await_error

--- Kills the pub/sub connections of r's server (CLIENT KILL TYPE pubsub
-- from r's shared connection) -> how many.
local function kill_pubsub(r)
  return await(r:execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
end

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

  -- regression: the reply ["unsubscribe", nil, 0] raised "table index is
  -- nil" in the reader and dropped the connection
  it("unsubscribe() with nothing subscribed is confirmed with no channel",
     aspec.async(function()
    local r <close> = await(redis.from_url(await(servers.redis_url(7))))
    local ps = r:pubsub()
    await(ps:unsubscribe())
    assert.same({type = "unsubscribe", data = 0},
                await(ps:get_message{timeout = 1}))
    await(ps:subscribe("c"))
    assert.same({type = "subscribe", channel = "c", data = 1},
                await(ps:get_message{timeout = 1}))
    assert.equal(1, await(r:publish("c", "still here")))
    assert.equal("still here", await(ps:get_message{timeout = 1}).data)
    await(ps:close())
    await(r:close())
  end))

  -- regression: a lost connection was never opened again, so listen()
  -- waited forever and get_message() returned nil
  it("a lost connection raises once, then is opened again with its "
     .. "subscriptions, as redis-py's", aspec.async(function()
    local r <close> = await(redis.from_url(await(servers.redis_url(7))))
    local ps = r:pubsub()
    await(ps:subscribe("a"))
    await(ps:psubscribe("p*"))
    assert.equal("subscribe", await(ps:get_message{timeout = 1}).type)
    assert.equal("psubscribe", await(ps:get_message{timeout = 1}).type)
    assert.equal(1, kill_pubsub(r))
    local e = err_of(ps:get_message{timeout = 5})
    assert.is_true(asyncio.iserror(e, redis.ConnectionError), tostring(e))
    -- the next call subscribes a new connection again
    local got = {}
    for _ = 1, 2 do
      local msg = await(ps:get_message{timeout = 5})
      got[msg.type] = msg.channel
    end
    assert.same({subscribe = "a", psubscribe = "p*"}, got)
    assert.equal(2, await(r:publish("a", "x")) + await(r:publish("pq", "y")))
    assert.same({type = "message", channel = "a", data = "x"},
                await(ps:get_message{timeout = 1}))
    assert.same({type = "pmessage", pattern = "p*", channel = "pq",
                 data = "y"}, await(ps:get_message{timeout = 1}))
    -- listen() likewise: its loop ends with the error, a new one goes on
    assert.equal(1, kill_pubsub(r))
    e = err_of(asyncio.wait_for(async(function()
      for _ in ps:listen() do end
    end)(), 5))
    assert.is_true(asyncio.iserror(e, redis.ConnectionError), tostring(e))
    local types = {}
    await(asyncio.wait_for(async(function()
      for msg in ps:listen() do
        types[#types + 1] = msg.type
        if #types == 2 then
          -- both subscriptions confirmed: a message reaches them
          assert.equal(1, await(r:publish("a", "again")))
        elseif msg.type == "message" then
          assert.equal("again", msg.data)
          await(ps:unsubscribe())
          await(ps:punsubscribe())
        end
      end
    end)(), 5))
    table.sort(types)
    assert.same({"message", "psubscribe", "punsubscribe", "subscribe",
                 "unsubscribe"}, types)
    assert.is_false(ps.subscribed)
    await(ps:close())
    await(r:close())
  end))

  -- regression: close() left the PubSub unusable ("PubSub is closed")
  it("close() and reset() forget the subscriptions; the PubSub may "
     .. "subscribe again", aspec.async(function()
    local r <close> = await(redis.from_url(await(servers.redis_url(7))))
    local ps = r:pubsub()
    await(ps:subscribe("a", "b"))
    assert.is_true(ps.subscribed)
    assert.same({a = true, b = true}, ps.channels)
    await(ps:reset())
    assert.is_false(ps.subscribed)
    assert.same({}, ps.channels)
    assert.is_nil(await(ps:get_message()))
    await(ps:subscribe("c"))
    assert.same({type = "subscribe", channel = "c", data = 1},
                await(ps:get_message{timeout = 1}))
    assert.equal(1, await(r:publish("c", "hi")))
    assert.equal(0, await(r:publish("a", "gone")))
    assert.equal("hi", await(ps:get_message{timeout = 1}).data)
    await(ps:close())
    await(r:close())
  end))

  -- regression: outside subscribed mode the PONG reply was dropped
  it("ping() is answered by a pong message, subscribed or not",
     aspec.async(function()
    local r <close> = await(redis.from_url(await(servers.redis_url(7))))
    local ps = r:pubsub()
    await(ps:ping())
    assert.same({type = "pong", data = ""},
                await(ps:get_message{timeout = 1}))
    await(ps:ping("hi"))
    assert.same({type = "pong", data = "hi"},
                await(ps:get_message{timeout = 1}))
    await(ps:subscribe("c"))
    await(ps:ping("there"))
    assert.equal("subscribe", await(ps:get_message{timeout = 1}).type)
    assert.same({type = "pong", data = "there"},
                await(ps:get_message{timeout = 1}))
    await(ps:close())
    await(r:close())
  end))

  it("handlers given as subscribe{channel = fn} take their messages; "
     .. "run() dispatches them", aspec.async(function()
    local r <close> = await(redis.from_url(await(servers.redis_url(7))))
    local ps = r:pubsub()
    local got = {}
    local done = asyncio.Event()
    await(ps:subscribe{"plain", news = function(msg)
      got[#got + 1] = msg.channel .. "=" .. msg.data
    end})
    await(ps:psubscribe{["w*"] = async(function(msg)
      await(asyncio.sleep(0))
      got[#got + 1] = msg.pattern .. ":" .. msg.channel .. "=" .. msg.data
      if msg.data == "last" then done:set() end
    end)})
    assert.is_function(ps.channels.news)
    assert.is_true(ps.channels.plain)
    for _ = 1, 3 do
      assert.matches("subscribe", await(ps:get_message{timeout = 1}).type)
    end
    assert.equal(1, await(r:publish("news", "n1")))
    assert.equal(1, await(r:publish("plain", "p1")))
    -- news's message went to its handler: get_message gives the next
    assert.same({type = "message", channel = "plain", data = "p1"},
                await(ps:get_message{timeout = 1}))
    assert.same({"news=n1"}, got)
    -- run() wants a handler for every channel
    local e = err_of(ps:run())
    assert.is_true(asyncio.iserror(e, redis.PubSubError))
    assert.equal("Channel: 'plain' has no handler registered", e.message)
    await(ps:unsubscribe("plain"))
    assert.same({type = "unsubscribe", channel = "plain", data = 2},
                await(ps:get_message{timeout = 1}))
    local runner = asyncio.create_task(ps:run{poll_timeout = 0.05})
    await(r:publish("news", "n2"))
    await(r:publish("weather", "last"))
    await(asyncio.wait_for(done:wait(), 5))
    runner:cancel()
    assert.is_true(asyncio.iserror(err_of(runner), asyncio.CancelledError))
    assert.same({"news=n1", "news=n2", "w*:weather=last"}, got)
    -- a handler must be a function
    assert.equal("bad argument #1 to 'subscribe' (field 'news': function "
                 .. "expected, got string)",
                 err_of(ps:subscribe{news = "nope"}))
    await(ps:close())
    await(r:close())
  end))

  it("get_message skips confirmations when told to, also without a "
     .. "timeout", aspec.async(function()
    local r <close> = await(redis.from_url(await(servers.redis_url(7))))
    local ps = r:pubsub()
    await(ps:subscribe("c"))
    assert.equal(1, await(r:publish("c", "m")))
    -- both the confirmation and the message have been read
    await(asyncio.wait_for(async(function()
      while ps.queue:qsize() < 2 do await(asyncio.sleep(0)) end
    end)(), 5))
    assert.same({type = "message", channel = "c", data = "m"},
                await(ps:get_message{ignore_subscribe_messages = true}))
    assert.is_nil(await(ps:get_message()))
    await(ps:close())
    await(r:close())
  end))
end)
