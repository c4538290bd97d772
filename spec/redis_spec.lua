-- spec/redis_spec.lua: asyncio.redis against a real redis-server (started
-- by spec/fixtures/servers.lua on a free port): URLs, every command
-- family with redis-py's conversions, raw replies, errors, AUTH, and a
-- server killed mid-command and restarted under the client.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local certs = dofile("spec/fixtures/certs.lua")
local async, await = asyncio.async, asyncio.await

--- A client on database db of the spec's server, database emptied.
local function client(db)
  return await(servers.client(db or 5))
end

--- Waits (10 s at most) until the server, asked over client r's shared
-- connection, lists a client blocked (flag b) in command cmd: a blocking
-- command sent on a dedicated connection has reached Redis and waits.
local until_blocked = servers.until_blocked

local err_of = dofile("spec/helpers.lua").await_error

describe("asyncio.redis", function()
  teardown(servers.stop)

  it("parses URLs as redis-py does", function()
    local r = redis.from_url("redis://u%40x:p%3Aw@example.org:7000/4")
    assert.same({"example.org", 7000, 4, "u@x", "p:w"},
      {r.opts.host, r.opts.port, r.opts.db, r.opts.username,
       r.opts.password})
    r = redis.from_url("redis://:secret@localhost")
    assert.same({"localhost", 6379, 0, nil, "secret"}, {r.opts.host,
      r.opts.port, r.opts.db, r.opts.username, r.opts.password})
    r = redis.from_url("unix:///tmp/r.sock?db=2")
    assert.same({"/tmp/r.sock", 2}, {r.opts.path, r.opts.db})
    r = redis.from_url("redis://h/1", {db = 9, pool_size = 3})
    assert.same({9, 3}, {r.opts.db, r.opts.pool_size})
    -- redis-py's ValueError (it was a redis.DataError)
    local e = select(2, pcall(redis.from_url, "http://h:1/0"))
    assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
    assert.is_false(asyncio.iserror(e, redis.RedisError))
    assert.equal("Redis URL must specify one of the following schemes "
                 .. "(redis://, rediss://, unix://)", e.message)
    assert.matches("bad argument #1 to 'from_url'",
                   select(2, pcall(redis.from_url, 5)))
  end)

  it("strings, with redis-py's conversions and raw replies",
     aspec.async(function()
    local r <close> = client()
    assert.is_true(await(r:set("k", "v")))
    assert.equal("OK", await(r:execute_command("SET", "k2", "v2")))
    assert.equal("v", await(r:get("k")))
    assert.is_nil(await(r:get("missing")))
    assert.is_nil(await(r:set("k", "x", {nx = true})))
    assert.is_true(await(r:set("k", "x", {xx = true, ex = 100})))
    assert.equal("x", await(r:set("k", "y", {get = true})))
    assert.is_true(await(r:set("k", "y", {px = 5000, keepttl = false})))
    local m = await(r:mget({"k", "nope", "k2"}))
    assert.same({"y", nil, "v2", n = 3}, m)
    assert.is_true(await(r:mset{a = "1", b = "2"}))
    assert.equal(2, await(r:incr("a")))
    assert.equal(12, await(r:incrby("a", 10)))
    assert.equal(11, await(r:decr("a")))
    assert.equal(3, await(r:append("b", "xy")))
    assert.equal("2xy", await(r:getdel("b")))
    assert.is_false(await(r:setnx("a", "z")))
    assert.is_true(await(r:setnx("c", "z")))
    assert.is_true(await(r:setex("d", 100, "w")))
    assert.equal("w", await(r:getex("d", {persist = true})))
    assert.equal(-1, await(r:ttl("d")))
    assert.equal(1.5, await(r:incrbyfloat("f", 1.5)))
    local bin = "\0\1\2\r\n\255"
    await(r:set("bin", bin))
    assert.equal(bin, await(r:get("bin")))
    await(r:close())
  end))

  it("keys", aspec.async(function()
    local r <close> = client()
    await(r:mset{k1 = 1, k2 = 2, other = 3})
    assert.equal(2, await(r:exists("k1", "k2", "nope")))
    assert.is_true(await(r:expire("k1", 100)))
    assert.is_false(await(r:expire("nope", 100)))
    assert.is_true(await(r:ttl("k1")) > 90)
    assert.is_true(await(r:pttl("k1")) > 90000)
    assert.is_true(await(r:persist("k1")))
    local keys = await(r:keys("k*"))
    table.sort(keys)
    assert.same({"k1", "k2"}, {keys[1], keys[2]})
    local seen, cursor = {}, 0
    repeat
      local res = await(r:scan(cursor, {match = "*", count = 10}))
      cursor = res[1]
      for _, k in ipairs(res[2]) do seen[k] = true end
    until cursor == 0
    assert.same({k1 = true, k2 = true, other = true}, seen)
    assert.equal("string", await(r:type("k1")))
    assert.equal("none", await(r:type("nope")))
    assert.is_true(await(r:rename("other", "k3")))
    assert.equal(2, await(r:delete("k1", "k2")))
    assert.equal(1, await(r:del({"k3"})))
    await(r:close())
  end))

  it("lists, with blocking pops on their own connection",
     aspec.async(function()
    local r <close> = client()
    assert.equal(3, await(r:rpush("l", "a", "b", "c")))
    assert.equal(4, await(r:lpush("l", "z")))
    assert.same({"z", "a", "b", "c", n = 4}, await(r:lrange("l", 0, -1)))
    assert.equal(4, await(r:llen("l")))
    assert.equal("z", await(r:lpop("l")))
    assert.equal("c", await(r:rpop("l")))
    await(r:rpush("l", "a", "x"))
    assert.equal(2, await(r:lrem("l", 0, "a")))
    assert.is_true(await(r:ltrim("l", 0, 0)))
    assert.equal("b", await(r:lmove("l", "m", "LEFT", "RIGHT")))
    assert.equal("b", await(r:blmove("m", "l", 1, "RIGHT", "LEFT")))
    local key, value = await(r:brpop({"none", "l"}, 1))
    assert.same({"l", "b"}, {key, value})
    -- a pop that waits is served by a push from another task
    local t = asyncio.create_task(r:blpop({"q"}, 5))
    until_blocked(r, "blpop")
    await(r:rpush("q", "item"))
    assert.same({"q", "item"}, {await(t)})
    assert.is_nil(await(r:brpop({"empty"}, 0.1)))
    await(r:rpush("s", "v"))
    assert.equal("v", await(r:brpoplpush("s", "d", 1)))
    assert.same({"v", n = 1}, await(r:lrange("d", 0, -1)))
    await(r:close())
  end))

  -- regression: close closed the idle connections only: a BLPOP in
  -- flight went on waiting and took an element pushed after close
  it("close ends the connections in use too: a blocking command in "
     .. "flight fails and takes nothing pushed afterwards",
     aspec.async(function()
    local other <close> = client()
    local r = redis.from_url(await(servers.redis_url(5)))
    local popping = asyncio.create_task(r:blpop({"q"}, 0))
    until_blocked(other, "blpop")
    -- a pipeline WATCHing on a connection of its own, a PubSub waiting
    local p = r:pipeline()
    assert.is_true(await(p:watch("w")))
    local ps = r:pubsub()
    await(ps:subscribe("ch"))
    assert.equal("subscribe", await(ps:get_message{timeout = 10}).type)
    local listening = asyncio.create_task(ps:get_message{
      timeout = math.huge})
    await(r:close())
    -- (bounded: without the fix, they wait for good)
    for _, e in ipairs{err_of(asyncio.wait_for(popping, 10)),
                       err_of(asyncio.wait_for(listening, 10)),
                       err_of(p:get("w"))} do
      assert.equal(redis.ConnectionError, getmetatable(e))
      assert.equal("Connection closed.", e.message)
    end
    assert.equal(1, await(other:rpush("q", "item")))
    assert.same({"item", n = 1}, await(other:lrange("q", 0, -1)))
    p:reset()
    assert.equal(0, r.nconns)
    -- used again, the client and the PubSub open new connections (the
    -- PubSub subscribed again), as redis-py's
    assert.equal("subscribe", await(ps:get_message{timeout = 10}).type)
    assert.equal(1, await(r:publish("ch", "hi")))
    assert.equal("hi", await(ps:get_message{timeout = 10}).data)
    assert.equal("item", await(r:lpop("q")))
    await(r:close())
    -- a client in a <close> variable: at once, the end of its block
    local t
    do
      local r2 <close> = redis.from_url(await(servers.redis_url(5)))
      t = asyncio.create_task(r2:blpop({"q"}, 0))
      until_blocked(other, "blpop")
    end
    local e = err_of(asyncio.wait_for(t, 10))
    assert.equal(redis.ConnectionError, getmetatable(e))
  end))

  --- A TCP proxy to the spec's Redis that keeps its connection to Redis
  -- open when its client closes, as a link whose far end vanished
  -- silently: Redis goes on holding a client closed on our side until
  -- CLIENT KILL drops it, or the proxy closes. With the Event hold, the
  -- first connection reaches Redis only once hold is set. -> {url =
  -- (database 5 through the proxy), accepted = (connections so far),
  -- close = (awaited)}.
  local lagging_proxy = async(function(hold)
    local port = await(servers.redis_port())
    local writers, tasks, proxy = {}, {}, {accepted = 0}
    local srv = await(asyncio.start_server(async(function(cr, cw)
      tasks[#tasks + 1] = asyncio.current_task()
      proxy.accepted = proxy.accepted + 1
      if hold and proxy.accepted == 1 then await(hold:wait()) end
      local sr, sw = await(asyncio.open_connection("127.0.0.1", port))
      writers[#writers + 1], writers[#writers + 2] = cw, sw
      tasks[#tasks + 1] = asyncio.create_task(async(function()
        while true do -- Redis -> client, until Redis drops the client
          local data = await(sr:read(65536))
          if data == "" then break end
          pcall(cw.write, cw, data)
        end
        cw:close()
      end)())
      pcall(function()
        while true do -- client -> Redis, until the client closes
          local data = await(cr:read(65536))
          if data == "" then return end
          sw:write(data)
        end
      end)
    end), "127.0.0.1", 0))
    proxy.url = ("redis://127.0.0.1:%d/5"):format(
      srv.sockets[1]:getsockname()[2])
    proxy.close = async(function()
      srv:close()
      for _, t in ipairs(tasks) do t:cancel() end
      for _, w in ipairs(writers) do w:close() end
      if #tasks > 0 then await(asyncio.wait(tasks)) end
      await(srv:wait_closed())
    end)
    return proxy
  end)

  --- Returns once cond() holds (polled each loop iteration; 10 s at most).
  local function until_true(cond)
    await(asyncio.wait_for(async(function()
      while not cond() do await(asyncio.sleep(0)) end
    end)(), 10))
  end

  --- Asserts that e is redis.ConnectionError "Connection closed.".
  local function assert_closed(e)
    assert.equal(redis.ConnectionError, getmetatable(e), tostring(e))
    assert.equal("Connection closed.", e.message)
  end

  --- A client through proxy with a BLPOP on "q" blocked in Redis (and its
  -- shared connection open): -> the client, the BLPOP's task.
  local function blocked_through(proxy, other)
    local r = redis.from_url(proxy.url)
    await(r:ping())
    local popping = asyncio.create_task(r:blpop({"q"}, 0))
    until_blocked(other, "blpop")
    return r, popping
  end

  --- Asserts that an element pushed now stays in "q": no BLPOP of a
  -- closed client takes it.
  local function assert_nothing_popped(other)
    assert.equal(1, await(other:rpush("q", "item")))
    assert.same({"item", n = 1}, await(other:lrange("q", 0, -1)))
    await(other:delete("q"))
  end

  -- regression: a second close closed the shared connection before the
  -- first one's CLIENT KILL was written, so Redis kept the blocked client
  -- and it popped the element pushed after close returned
  it("a close while another waits for Redis to drop the blocked clients "
     .. "waits for it: an element pushed afterwards stays in its list",
     aspec.async(function()
    local other <close> = client()
    local proxy = await(lagging_proxy())
    -- two closes at once
    local r, popping = blocked_through(proxy, other)
    local c1, c2 = asyncio.create_task(r:close()),
                   asyncio.create_task(r:close())
    assert.is_nil(await(asyncio.wait_for(c1, 10)))
    assert.is_nil(await(asyncio.wait_for(c2, 10)))
    assert_closed(err_of(asyncio.wait_for(popping, 10)))
    assert_nothing_popped(other)
    -- a <close> variable closing while close waits for Redis's answer
    r, popping = blocked_through(proxy, other)
    local closing = asyncio.create_task(r:close())
    await(asyncio.sleep(0)) -- close has sent CLIENT KILL: it waits
    assert.is_false(closing:done())
    do local _ <close> = r end
    assert.is_nil(await(asyncio.wait_for(closing, 10)))
    assert_closed(err_of(asyncio.wait_for(popping, 10)))
    assert_nothing_popped(other)
    await(proxy.close())
  end))

  -- regression: an open that a close overtook, finishing after the open
  -- that followed the close, made the client's shared connection the
  -- closed one: the newer one stayed open for nobody and the next
  -- command opened a third
  it("an open that a close overtook fails with redis.ConnectionError and "
     .. "leaves the client the connection opened after the close",
     aspec.async(function()
    local held = asyncio.Event()
    local proxy = await(lagging_proxy(held))
    local r = redis.from_url(proxy.url)
    local first = asyncio.create_task(r:ping())
    until_true(function() return proxy.accepted == 1 end)
    await(r:close())
    local id = await(r:execute_command("CLIENT", "ID"))
    held:set()
    assert_closed(err_of(asyncio.wait_for(first, 10)))
    assert.equal(id, await(r:execute_command("CLIENT", "ID")))
    await(r:close())
    await(proxy.close())
  end))

  -- regression: a connection still opening, or handed to a task that had
  -- not resumed yet, when close ran was used afterwards: the BLPOP blocked
  -- and the PubSub subscribed as if the client were open
  it("close ends the connections being opened or handed over too: their "
     .. "commands fail with redis.ConnectionError", aspec.async(function()
    local other <close> = client()
    local url = await(servers.redis_url(5))
    -- a BLPOP whose connection is being opened
    local r = redis.from_url(url)
    local popping = asyncio.create_task(r:blpop({"q"}, 0))
    until_true(function() return r.nconns == 1 end)
    await(r:close())
    assert_closed(err_of(asyncio.wait_for(popping, 10)))
    assert_nothing_popped(other)
    assert.equal(0, r.nconns)
    -- a BLPOP waiting for the only connection, handed it just before close
    r = redis.from_url(url, {pool_size = 1})
    local p = r:pipeline()
    assert.is_true(await(p:watch("w")))
    popping = asyncio.create_task(r:blpop({"q"}, 0))
    until_true(function() return #r.waiters == 1 end)
    p:reset() -- hands the connection to the BLPOP, which has not resumed
    await(r:close())
    assert_closed(err_of(asyncio.wait_for(popping, 10)))
    assert_nothing_popped(other)
    assert.equal(0, r.nconns)
    -- a PubSub whose connection is being opened
    r = redis.from_url(url)
    local ps = r:pubsub()
    local subscribing = asyncio.create_task(ps:subscribe("ch"))
    until_true(function() return ps.opening ~= nil end)
    await(r:close())
    assert_closed(err_of(asyncio.wait_for(subscribing, 10)))
    assert.equal(0, await(other:publish("ch", "hi")))
    -- used again, they work
    assert.is_true(await(ps:subscribe("ch")))
    assert.equal("subscribe", await(ps:get_message{timeout = 10}).type)
    assert.equal(1, await(other:publish("ch", "hi")))
    await(ps:close())
    await(r:close())
  end))

  -- regression: a <close> variable's close raised "Event loop is closed"
  -- when the client's loop had closed with a command in flight
  it("a client in a <close> variable whose loop closed first closes "
     .. "without raising", function()
    local loop = asyncio.new_event_loop()
    local url = loop:run_until_complete(servers.redis_url(5))
    -- the loop closes with the BLPOP's task and the connections' readers
    -- pending: asyncio reports each as destroyed, to the loop's handler
    local reports, blpop_reported = {}, false
    loop:set_exception_handler(function(_, context)
      reports[#reports + 1] = context.message
      if tostring(context.task):find("coro=<blpop()", 1, true) then
        blpop_reported = true
      end
    end)
    local ok, e = pcall(function()
      local r <close> = redis.from_url(url)
      local ps <close> = r:pubsub()
      loop:run_until_complete(async(function()
        asyncio.create_task(r:blpop({"q"}, 0))
        await(ps:subscribe("ch"))
        until_blocked(r, "blpop")
      end)())
      loop:close()
    end)
    assert.is_true(ok, tostring(e))
    collectgarbage()
    collectgarbage()
    assert.is_true(blpop_reported)
    for _, message in ipairs(reports) do
      assert.equal("Task was destroyed but it is pending!", message)
    end
  end)

  it("hashes, sets and sorted sets", aspec.async(function()
    local r <close> = client()
    assert.equal(2, await(r:hset("h", {mapping = {a = "1", b = "2"}})))
    assert.equal(1, await(r:hset("h", "c", "3")))
    assert.equal("1", await(r:hget("h", "a")))
    assert.same({a = "1", b = "2", c = "3"}, await(r:hgetall("h")))
    assert.same({}, await(r:hgetall("nope")))
    assert.equal(12, await(r:hincrby("h", "c", 9)))
    assert.equal(1, await(r:hdel("h", "b")))
    local ks = await(r:hkeys("h")); table.sort(ks)
    assert.same({"a", "c"}, {ks[1], ks[2]})
    assert.equal(2, #await(r:hvals("h")))
    assert.equal(2, await(r:hlen("h")))
    assert.is_true(await(r:hexists("h", "a")))
    assert.is_false(await(r:hexists("h", "b")))
    assert.same({"1", nil, "12", n = 3}, await(r:hmget("h", {"a", "b",
                                                             "c"})))
    assert.equal(2, await(r:sadd("s", "x", "y")))
    assert.equal(0, await(r:sadd("s", "x")))
    assert.same({x = true, y = true}, await(r:smembers("s")))
    assert.is_true(await(r:sismember("s", "x")))
    assert.is_false(await(r:sismember("s", "q")))
    assert.equal(1, await(r:srem("s", "x")))
    assert.equal(1, await(r:scard("s")))
    assert.equal(3, await(r:zadd("z", {a = 1, b = 2.5, c = 3})))
    assert.equal(0, await(r:zadd("z", {a = 10}, {nx = true})))
    assert.equal(1, await(r:zadd("z", {a = 0.5}, {lt = true, ch = true})))
    assert.same({"a", "b", "c", n = 3}, await(r:zrange("z", 0, -1)))
    assert.same({{"a", 0.5}, {"b", 2.5}},
                await(r:zrange("z", 0, 1, {withscores = true})))
    assert.same({"b", "c", n = 2}, await(r:zrangebyscore("z", 1, "+inf")))
    assert.equal(2.5, await(r:zscore("z", "b")))
    assert.is_nil(await(r:zscore("z", "nope")))
    assert.equal(5, await(r:zincrby("z", 2.5, "b")))
    assert.equal(3, await(r:zcard("z")))
    assert.same({{"a", 0.5}}, await(r:zpopmin("z")))
    assert.same({"z", "c", 3}, {await(r:bzpopmin({"z"}, 1))})
    assert.equal(1, await(r:zrem("z", "b")))
    assert.is_nil(await(r:bzpopmin("z", 0.1)))
    await(r:close())
  end))

  it("incr and its kin take redis-py's amounts and defaults", aspec.async(
     function()
    local r <close> = client()
    assert.equal(1, await(r:incr("n")))
    assert.equal(6, await(r:incr("n", 5)))
    assert.equal(7, await(r:incrby("n")))
    assert.equal(5, await(r:decr("n", 2)))
    assert.equal(4, await(r:decrby("n")))
    assert.equal(1.0, await(r:incrbyfloat("fl")))
    assert.equal(1, await(r:hincrby("hh", "f")))
    assert.equal(1.0, await(r:hincrbyfloat("hh", "g")))
    assert.equal(-2, await(r:incr("m", -2)))
    await(r:close())
  end))

  it("more of redis-py's commands: set algebra and moves, lexicographic "
     .. "ranges, stores, bits, HyperLogLog, copy, stream and client "
     .. "introspection", aspec.async(function()
    local r <close> = client()
    await(r:sadd("s1", "a", "b", "c"))
    await(r:sadd("s2", "b", "d"))
    assert.same({a = true, c = true}, await(r:sdiff("s1", "s2")))
    assert.equal(2, await(r:sdiffstore("sd", {"s1", "s2"})))
    assert.equal(1, await(r:sinterstore("si", "s1", "s2")))
    assert.equal(4, await(r:sunionstore("su", "s1", "s2")))
    assert.is_true(await(r:smove("s1", "s2", "a")))
    assert.is_false(await(r:smove("s1", "s2", "nope")))
    assert.same({b = true, c = true}, await(r:smembers("s1")))
    await(r:zadd("lex", {a = 0, b = 0, c = 0, d = 0}))
    assert.same({"b", "c", n = 2}, await(r:zrangebylex("lex", "[b", "[c")))
    assert.same({"a", n = 1}, await(r:zrangebylex("lex", "-", "+", 0, 1)))
    assert.same({"d", "c", n = 2},
                await(r:zrevrangebylex("lex", "+", "-", 0, 2)))
    assert.equal(4, await(r:zlexcount("lex", "-", "+")))
    assert.equal(1, await(r:zremrangebylex("lex", "[d", "+")))
    assert.equal(1, await(r:zremrangebyrank("lex", 0, 0)))
    await(r:zadd("za", {x = 1, y = 2}))
    await(r:zadd("zb", {y = 10}))
    assert.equal(2, await(r:zunionstore("zu", {"za", "zb"})))
    assert.same({{"x", 1.0}, {"y", 12.0}},
                await(r:zrange("zu", 0, -1, {withscores = true})))
    assert.equal(1, await(r:zinterstore("zi", {za = 2, zb = 1},
                                        {aggregate = "max"})))
    assert.same({{"y", 10.0}}, await(r:zrange("zi", 0, -1,
                                               {withscores = true})))
    local pick = await(r:zrandmember("za", {withscores = true}))
    assert.equal(1, #pick)
    assert.is_true(pick[1][1] == "x" or pick[1][1] == "y")
    assert.equal(2, #await(r:zrandmember("za", 2)))
    assert.equal(0, await(r:setbit("bits", 7, 1)))
    assert.equal(1, await(r:getbit("bits", 7)))
    assert.equal(1, await(r:bitcount("bits")))
    assert.equal(1, await(r:pfadd("hll", "a", "b", "c")))
    assert.equal(3, await(r:pfcount("hll")))
    assert.is_true(await(r:pfmerge("hll2", "hll")))
    await(r:hset("hr", {mapping = {f = "value"}}))
    assert.equal(5, await(r:hstrlen("hr", "f")))
    assert.equal("f", await(r:hrandfield("hr")))
    assert.same({"f", "value", n = 2}, await(r:hrandfield("hr",
      {withvalues = true})))
    await(r:set("src", "v"))
    assert.is_true(await(r:copy("src", "dst")))
    assert.is_false(await(r:copy("src", "dst")))
    assert.is_true(await(r:copy("src", "dst", {replace = true})))
    assert.equal(-1, await(r:expiretime("dst")))
    local id = await(r:xadd("xs", {f = "1"}))
    assert.is_true(await(r:xgroup_create("xs", "g", "0")))
    assert.equal(1, await(r:xgroup_createconsumer("xs", "g", "c")))
    local info = await(r:xinfo_stream("xs"))
    assert.equal(1, info.length)
    assert.same({id, {f = "1"}}, info["first-entry"])
    assert.equal("g", await(r:xinfo_groups("xs"))[1].name)
    assert.equal("c", await(r:xinfo_consumers("xs", "g"))[1].name)
    assert.equal(0, await(r:xgroup_delconsumer("xs", "g", "c")))
    assert.is_true(await(r:xgroup_setid("xs", "g", "$")))
    -- redis-py's bool, as XGROUP CREATE's and SETID's are
    assert.is_true(await(r:xgroup_destroy("xs", "g")))
    assert.is_false(await(r:xgroup_destroy("xs", "g")))
    assert.is_true(await(r:client_setname("spec-client")))
    assert.equal("spec-client", await(r:client_getname()))
    local mine
    for _, c in ipairs(await(r:client_list())) do
      if c.name == "spec-client" then mine = c end
    end
    assert.is_truthy(mine and mine.id)
    assert.equal("no", await(r:config_get("appendonly")).appendonly)
    assert.is_true(await(r:config_set("maxmemory-policy", "noeviction")))
    local e = err_of(r:zunionstore("zu", "za"))
    assert.is_true(asyncio.iserror(e, redis.DataError))
    await(r:close())
  end))

  it("streams", aspec.async(function()
    local r <close> = client()
    local id1 = await(r:xadd("st", {f = "1"}))
    local id2 = await(r:xadd("st", {f = "2"}))
    assert.equal(2, await(r:xlen("st")))
    local res = await(r:xread({st = "0"}, {count = 10}))
    assert.same({{"st", {{id1, {f = "1"}}, {id2, {f = "2"}}}}}, res)
    assert.is_true(await(r:xgroup_create("st", "g", "0")))
    res = await(r:xreadgroup("g", "c1", {st = ">"}, {count = 1}))
    assert.same({{"st", {{id1, {f = "1"}}}}}, res)
    local p = await(r:xpending("st", "g"))
    assert.same({1, id1, id1}, {p.pending, p.min, p.max})
    assert.same({{name = "c1", pending = 1}}, p.consumers)
    local claimed = await(r:xautoclaim("st", "g", "c2", 0))
    assert.same({id1, {f = "1"}}, claimed[2][1])
    assert.equal(1, await(r:xack("st", "g", id1)))
    -- XREAD BLOCK waits on its own connection
    local t = asyncio.create_task(r:xread({st = "$"}, {block = 2000}))
    until_blocked(r, "xread")
    local id3 = await(r:xadd("st", {f = "3"}))
    assert.same({{"st", {{id3, {f = "3"}}}}}, await(t))
    assert.same({}, await(r:xread({st = "$"}, {block = 50})))
    await(r:close())
  end))

  it("an unknown option raises at the call, naming the function and the "
     .. "argument", function()
    local function raises(msg, fn) assert.has_error(fn, msg) end
    raises("bad argument #1 to 'Redis' (unknown option 'sockettimeout')",
           function() redis.Redis{sockettimeout = 5} end)
    -- redis-py's options that luaio does not have are not ignored either
    raises("bad argument #1 to 'Redis' (unknown option "
           .. "'retry_on_error')",
           function() redis.Redis{retry_on_error = {}} end)
    -- decode_responses is taken (replies are Lua strings either way)
    assert.is_table(redis.Redis{decode_responses = true})
    raises("bad option 'decode_responses' to 'Redis' (boolean expected)",
           function() redis.Redis{decode_responses = "yes"} end)
    raises("bad argument #1 to 'Redis' (unknown option 'ssl_cert_reqs')",
           function() redis.Redis{ssl_cert_reqs = "none"} end)
    -- values are checked too: a db that does not convert is not
    -- database 0, a timeout that is not a number not a failure later
    raises("bad option 'db' to 'Redis' (non-negative integer expected)",
           function() redis.Redis{db = "x"} end)
    raises("bad option 'db' to 'Redis' (non-negative integer expected)",
           function() redis.Redis{db = -1} end)
    raises("bad option 'port' to 'Redis' (integer in 0 .. 65535 "
           .. "expected)", function() redis.Redis{port = "x"} end)
    raises("bad option 'socket_timeout' to 'Redis' (positive number "
           .. "expected)", function() redis.Redis{socket_timeout = "5"} end)
    raises("bad option 'socket_connect_timeout' to 'Redis' (positive "
           .. "number expected)",
           function() redis.from_url("redis://h", {socket_connect_timeout
                                                   = 0}) end)
    raises("bad option 'host' to 'Redis' (string expected)",
           function() redis.Redis{host = 127} end)
    raises("bad option 'password' to 'Redis' (string expected)",
           function() redis.Redis{password = {}} end)
    local o = redis.Redis{db = "3", port = "6380"}.opts
    assert.same({3, "integer", 6380}, {o.db, math.type(o.db), o.port})
    raises("bad argument #2 to 'from_url' (unknown option 'pool')",
           function() redis.from_url("redis://h", {pool = 3}) end)
    local r = redis.from_url("redis://127.0.0.1:1")  -- never connected
    raises("bad argument #3 to 'set' (unknown option 'exx')",
           function() r:set("k", "v", {exx = 10}) end)
    -- counted as Lua counts: self too when not called as a method
    raises("bad argument #4 to 'set' (unknown option 'exx')",
           function() redis._Redis.set(r, "k", "v", {exx = 10}) end)
    -- and in a tail call, where Lua no longer sees the method call
    raises("bad argument #4 to 'set' (unknown option 'exx')",
           function() return r:set("k", "v", {exx = 10}) end)
    raises("bad argument #2 to 'getex' (table expected, got string)",
           function() r:getex("k", "persist") end)
    raises("bad argument #3 to 'expire' (unknown option 'gte')",
           function() r:expire("k", 1, {gte = true}) end)
    raises("bad argument #4 to 'zrange' (unknown option 'score_cast_func')",
           function() r:zrange("z", 0, -1, {score_cast_func = tonumber}) end)
    raises("bad argument #6 to 'xclaim' (unknown option 'justids')",
           function() r:xclaim("s", "g", "c", 0, {"1-0"}, {justids = 1}) end)
    -- options that may come early (optional arguments left out) are
    -- checked in their own last place too
    raises("bad argument #4 to 'xrange' (table expected, got string)",
           function() r:xrange("s", "-", "+", "count") end)
    raises("bad argument #6 to 'xautoclaim' (table expected, got number)",
           function() r:xautoclaim("s", "g", "c", 0, "0-0", 5) end)
    raises("bad argument #1 to 'scan_iter' (unknown option '_type')",
           function() r:scan_iter{_type = "string"} end)
    raises("bad argument #2 to 'hscan_iter' (unknown option 'no_values')",
           function() r:hscan_iter("h", {no_values = true}) end)
    raises("bad argument #1 to 'pipeline' (unknown option 'shard_hint')",
           function() r:pipeline{shard_hint = "x"} end)
    local p = r:pipeline()
    raises("bad argument #3 to 'zadd' (unknown option 'nxx')",
           function() p:zadd("z", {a = 1}, {nxx = true}) end)
    assert.equal(0, #p)
    raises("bad argument #1 to 'execute' (unknown option 'raise_on_errors')",
           function() p:execute{raise_on_errors = false} end)
    raises("bad argument #1 to 'pubsub' (unknown option 'ignore')",
           function() r:pubsub{ignore = true} end)
    local ps = r:pubsub()
    raises("bad argument #1 to 'get_message' (unknown option 'timout')",
           function() ps:get_message{timout = 1} end)
    raises("bad argument #1 to 'run' (unknown option 'sleep_time')",
           function() ps:run{sleep_time = 1} end)
  end)

  it("takes every documented option", aspec.async(function()
    local port = await(servers.redis_port())
    local c = redis.Redis{host = "127.0.0.1", port = port, db = 5,
      pool_size = 4, max_connections = 4, socket_timeout = 5,
      socket_connect_timeout = 5, ssl = false}
    assert.same({"127.0.0.1", port, 4}, {c.opts.host, c.opts.port,
                                          c.opts.pool_size})
    assert.equal("/tmp/r.sock", redis.Redis{path = "/tmp/r.sock",
      username = "u", password = "p"}.opts.path)
    local t = redis.from_url("rediss://h", {port = 1, db = 1,
      password = "p", username = "u", pool_size = 2, max_connections = 2,
      socket_timeout = 1, socket_connect_timeout = 1,
      ssl_cert_reqs = "none", ssl_check_hostname = false})
    assert.equal(require("asyncio.ssl").CERT_NONE, t.opts.ssl.verify_mode)
    assert.equal("/x", redis.from_url("redis://h", {path = "/x"}).opts.path)
    assert.equal("/y", redis.Redis{unix_socket_path = "/y"}.opts.path)
    -- redis-py's classmethod, and client_name set on each connection
    local named <close> = redis.Redis.from_url(("redis://127.0.0.1:%d/5"
      .. "?client_name=from-url"):format(port))
    assert.equal("from-url", await(named:client_getname()))
    local named2 <close> = redis.Redis{port = port, client_name = "kw"}
    assert.equal("kw", await(named2:client_getname()))
    assert.matches("bad option 'client_name'",
                   tostring(select(2, pcall(redis.Redis, {client_name = 1}))))
    local r <close> = client()
    local now = os.time()
    for _, o in ipairs{{ex = 100}, {px = 100000}, {exat = now + 100},
                       {pxat = (now + 100) * 1000}, {xx = true},
                       {keepttl = true}, {get = true}} do
      assert.is_not_nil(await(r:set("k", "v", o)))
    end
    assert.is_nil(await(r:set("k", "v", {nx = true})))
    for _, o in ipairs{{ex = 100}, {px = 100000}, {exat = now + 100},
                       {pxat = (now + 100) * 1000}, {persist = true}} do
      assert.equal("v", await(r:getex("k", o)))
    end
    await(r:set("e", "v"))
    for _, o in ipairs{{nx = true}, {xx = true}, {gt = true}, {lt = true}} do
      for _, m in ipairs{"expire", "pexpire", "expireat", "pexpireat"} do
        assert.is_boolean(await(r[m](r, "e", now + 1000, o)))
      end
    end
    await(r:rpush("l", "a", "b", "a"))
    assert.same({0, n = 1}, await(r:lpos("l", "a", {rank = 1, count = 1,
                                                     maxlen = 0})))
    assert.equal(2, await(r:hset("h", "f", "v", {mapping = {g = "w"}})))
    await(r:sadd("s", "m"))
    for _, o in ipairs{{nx = true}, {xx = true, gt = true, ch = true},
                       {lt = true}} do
      assert.is_number(await(r:zadd("z", {a = 1, b = 2}, o)))
    end
    assert.equal(3.0, await(r:zadd("z", {a = 2}, {incr = true})))
    assert.same({{"a", 3.0}}, await(r:zrange("z", 0, 0, {withscores = true,
                                                          desc = true})))
    assert.same({"b", n = 1}, await(r:zrange("z", "-inf", "+inf",
      {byscore = true, offset = 0, num = 1})))
    assert.equal(2, #await(r:zrange("z", "-", "+", {bylex = true})))
    assert.same({{"a", 3.0}}, await(r:zrevrange("z", 0, 0,
                                                 {withscores = true})))
    for _, m in ipairs{"zrangebyscore", "zrevrangebyscore"} do
      assert.equal(1, #await(r[m](r, "z", m == "zrangebyscore" and "-inf"
        or "+inf", m == "zrangebyscore" and "+inf" or "-inf",
        {withscores = true, start = 0, num = 1})))
    end
    for _, cmd in ipairs{{"scan", 0, {match = "*", count = 10,
                                      type = "string"}},
                         {"sscan", "s", 0, {match = "*", count = 10}},
                         {"hscan", "h", 0, {match = "*", count = 10}},
                         {"zscan", "z", 0, {match = "*", count = 10}}} do
      local reply = await(r[cmd[1]](r, table.unpack(cmd, 2)))
      assert.equal(0, reply[1])
    end
    local n = 0
    for _ in r:scan_iter{match = "*", count = 10, type = "list"} do
      n = n + 1
    end
    for _ in r:sscan_iter("s", {match = "*", count = 10}) do n = n + 1 end
    for _ in r:hscan_iter("h", {match = "*", count = 10}) do n = n + 1 end
    for _ in r:zscan_iter("z", {match = "*", count = 10}) do n = n + 1 end
    assert.equal(6, n)
    assert.equal("1-0", await(r:xadd("st", {f = "1"}, {id = "1-0"})))
    assert.equal("2-0", await(r:xadd("st", {f = "2"}, {id = "2-0",
      nomkstream = true, maxlen = 10, approximate = false})))
    await(r:xadd("st", {f = "3"}, {id = "3-0", minid = "0-1", limit = 10}))
    assert.equal(0, await(r:xtrim("st", {maxlen = 10, approximate = true,
                                         limit = 100})))
    assert.equal(0, await(r:xtrim("st", {minid = "0-1"})))
    assert.is_true(await(r:xgroup_create("st2", "g", "0",
                                         {mkstream = true})))
    assert.is_true(await(r:xgroup_create("st", "g", "0")))
    assert.equal(1, #await(r:xread({st = "0"}, {count = 1, block = 10}))[1][2])
    assert.equal(1, #await(r:xreadgroup("g", "c", {st = ">"},
      {count = 1, block = 10}))[1][2])
    await(r:xreadgroup("g", "c", {st = ">"}, {count = 1, noack = true}))
    assert.equal(1, #await(r:xrange("st", "-", "+", {count = 1})))
    assert.equal(1, #await(r:xrevrange("st", "+", "-", {count = 1})))
    assert.same({"1-0", n = 1}, await(r:xclaim("st", "g", "c2", 0, {"1-0"},
      {idle = 0, retrycount = 1, force = true, justid = true})))
    assert.equal(1, #await(r:xclaim("st", "g", "c", 0, {"1-0"},
      {time = (now - 1) * 1000})))
    assert.equal(1, #await(r:xautoclaim("st", "g", "c2", 0, "0-0",
                                        {count = 1}))[2])
    -- the options may come in place of the optional arguments before them
    assert.is_true(await(r:xgroup_create("st3", "g", {mkstream = true})))
    assert.equal(2, #await(r:xrange("st", {count = 2})))
    assert.equal("3-0", await(r:xrevrange("st", "+", {count = 1}))[1][1])
    assert.equal(1, #await(r:xautoclaim("st", "g", "c", 0, {count = 1}))[2])
    assert.has_error(function() r:xrange("st", {cuont = 2}) end,
                     "bad argument #2 to 'xrange' (unknown option 'cuont')")
    assert.has_error(function() r:xautoclaim("st", "g", "c", 0, {cnt = 1}) end,
      "bad argument #5 to 'xautoclaim' (unknown option 'cnt')")
    local p = r:pipeline{transaction = false}
    p:get("k")
    assert.same({"v", n = 1}, await(p:execute{raise_on_error = false}))
    local ps = r:pubsub{ignore_subscribe_messages = true}
    await(ps:subscribe{news = function() end})
    assert.is_nil(await(ps:get_message{timeout = 0,
                                       ignore_subscribe_messages = true}))
    local runner = asyncio.create_task(ps:run{poll_timeout = 0.01,
      exception_handler = function() end})
    await(asyncio.sleep(0))
    assert.is_false(runner:done()) -- its options were taken: it runs
    runner:cancel()
    assert.is_false(pcall(await, runner))
    assert.is_true(runner:cancelled())
    await(ps:close())
    await(r:close())
  end))

  it("scripts: eval, evalsha and register_script with NOSCRIPT reload",
     aspec.async(function()
    local r <close> = client()
    assert.equal(3, await(r:eval("return KEYS[1] + ARGV[1]", 1, 1, 2)))
    local sha = await(r:script_load("return 'hi'"))
    assert.equal("hi", await(r:evalsha(sha, 0)))
    local e = err_of(r:evalsha(("0"):rep(40), 0))
    assert.is_true(asyncio.iserror(e, redis.NoScriptError))
    assert.is_true(asyncio.iserror(e, redis.ResponseError))
    local incr = r:register_script(
      "return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert.equal(5, await(incr({"n"}, {5})))
    assert.is_true(await(r:script_flush()))
    assert.equal(7, await(incr({"n"}, {2})))  -- reloaded after NOSCRIPT
    await(r:close())
  end))

  it("server commands and errors", aspec.async(function()
    local r <close> = client()
    assert.is_true(await(r:ping()))
    assert.equal("PONG", await(r:execute_command("PING")))
    await(r:set("a", 1))
    assert.equal(1, await(r:dbsize()))
    assert.equal("number", type(await(r:info()).uptime_in_seconds))
    local e = err_of(r:execute_command("NOSUCHCOMMAND"))
    assert.is_true(asyncio.iserror(e, redis.ResponseError))
    assert.is_true(asyncio.iserror(e, redis.RedisError))
    assert.is_true(asyncio.iserror(e, asyncio.Exception))
    assert.is_false(asyncio.iserror(e, asyncio.ConnectionError))
    assert.matches("unknown command", e.message)
    e = err_of(r:lpush("a", "x"))
    assert.equal("WRONGTYPE Operation against a key holding the wrong "
                 .. "kind of value", e.message)
    -- the connection carries on after errors
    assert.equal("1", await(r:get("a")))
    assert.equal("bad argument #2 to 'SET' (string or number expected, "
                 .. "got boolean)", err_of(r:set("a", true)))
    -- the db option selects on every new connection
    local r2 <close> = await(redis.Redis{port = await(servers.redis_port()),
                                        db = 5})
    assert.equal("1", await(r2:get("a")))
    await(r2:close())
    await(r:close())
    -- a closed client reconnects when used again, as redis-py's
    assert.equal("1", await(r:get("a")))
  end))

  it("pipelines the commands of many tasks on one connection",
     aspec.async(function()
    local r <close> = client()
    local ts = {}
    for i = 1, 200 do ts[i] = r:incr("counter") end
    local res = await(asyncio.gather(table.unpack(ts)))
    table.sort(res)
    for i = 1, 200 do assert.equal(i, res[i]) end
    assert.equal(0, r.nconns)  -- no dedicated connection was opened
    -- a cancelled command does not desynchronise the connection
    local t = asyncio.create_task(r:get("counter"))
    local t2 = asyncio.create_task(r:incr("counter"))
    await(asyncio.sleep(0))
    t:cancel()
    assert.equal(201, await(t2))
    assert.is_true(t:cancelled())
    assert.equal("201", await(r:get("counter")))
    await(r:close())
  end))

  it("raises AuthenticationError on a bad password, and works with the "
     .. "right one (and a username)", aspec.async(function()
    local srv = await(servers.redis_server({"--requirepass", "s3cret"}))
    local url = "redis://:%s@127.0.0.1:" .. srv.port
    local e = err_of(redis.from_url(url:format("wrong")))
    assert.is_true(asyncio.iserror(e, redis.AuthenticationError), tostring(e))
    assert.is_true(asyncio.iserror(e, redis.ConnectionError))
    local r = redis.from_url("redis://127.0.0.1:" .. srv.port)
    e = err_of(r:get("k"))
    assert.is_true(asyncio.iserror(e, redis.AuthenticationError), tostring(e))
    await(r:close())
    r = await(redis.from_url(url:format("s3cret")))
    assert.is_true(await(r:set("k", "v")))
    await(r:close())
    r = await(redis.from_url("redis://default:s3cret@127.0.0.1:" .. srv.port))
    assert.equal("v", await(r:get("k")))
    await(r:close())
    await(servers.kill_server(srv))
  end))

  it("fails the commands in flight when the server dies, and reconnects "
     .. "once it is back", aspec.async(function()
    -- a script running over 10 ms makes Redis answer the others BUSY
    local srv = await(servers.redis_server({"--busy-reply-threshold",
                                            "10"}))
    local url = "redis://127.0.0.1:" .. srv.port
    local r = await(redis.from_url(url))
    local probe = await(redis.from_url(url))
    assert.is_true(await(r:set("k", "v")))
    assert.is_true(await(probe:ping()))  -- its connection is open
    -- a blocking pop on a dedicated connection, waiting in Redis
    local blocked = asyncio.create_task(r:brpop({"q"}, 0))
    until_blocked(r, "brpop")
    -- a command on the shared connection that never ends, running in
    -- Redis once another client is answered BUSY
    local slow = asyncio.create_task(r:eval("while true do end", 0))
    await(asyncio.wait_for(async(function()
      while true do
        local ok, e = pcall(await, probe:ping())
        if not ok then
          if not asyncio.iserror(e, redis.ResponseError) then error(e, 0) end
          assert.matches("^BUSY", e.message)
          return
        end
      end
    end)(), 10))
    await(probe:close())
    await(servers.kill_server(srv))
    assert.is_true(asyncio.iserror(err_of(slow), redis.ConnectionError))
    assert.is_true(asyncio.iserror(err_of(blocked), redis.ConnectionError))
    local e = err_of(r:get("k"))
    assert.is_true(asyncio.iserror(e, redis.ConnectionError), tostring(e))
    srv = await(servers.redis_server(nil, srv.port))
    assert.is_nil(await(r:get("k")))  -- a new server, empty
    assert.is_true(await(r:set("k", "w")))
    assert.equal("w", await(r:get("k")))
    await(r:close())
    await(servers.kill_server(srv))
  end))

  it("a malformed reply fails the commands in flight with "
     .. "redis.ProtocolError, and the next command has a new connection",
     aspec.async(function()
    -- a fake server: CLIENT ID answered, then the first command of the
    -- first connection gets `bad` and every other command :1
    local conns, bad = 0, nil
    local srv = await(asyncio.start_server(async(function(rd, wr)
      conns = conns + 1
      local mine = conns
      while true do
        local data = await(rd:read(4096))
        if data == "" then break end
        for cmd in data:gmatch("%*%d+\r\n%$%d+\r\n(%u+)") do
          if cmd == "CLIENT" then wr:write(":7\r\n")
          elseif mine == 1 and bad then wr:write(bad); bad = nil
          else wr:write(":1\r\n") end
        end
      end
      wr:close()
    end), "127.0.0.1", 0))
    local port = srv.sockets[1].port
    for _, case in ipairs{
        {"?what\r\n", 'Protocol error, got "?" as reply type byte'},
        {("*1\r\n"):rep(9) .. ":1\r\n",
         "No support for nested multi bulk replies with depth > 7"},
        {"%1\r\n+a\r\n+b\r\n", 'Protocol error, got "%" as reply type byte'},
      } do
      conns, bad = 0, case[1]
      local r = redis.Redis{port = port, socket_timeout = 5}
      await(r)
      local first = asyncio.create_task(r:get("a"))
      local second = asyncio.create_task(r:get("b"))
      for _, t in ipairs{first, second} do
        local e = err_of(t)
        assert.is_true(asyncio.iserror(e, redis.ProtocolError), tostring(e))
        assert.is_true(asyncio.iserror(e, redis.ConnectionError))
        -- hiredis's words, no Lua position of the library's
        assert.equal(case[2], e.message)
      end
      assert.equal(1, await(r:get("c")))
      assert.equal(2, conns)
      await(r:close())
    end
    srv:close()
  end))

  it("rediss:// talks TLS to a redis-server with a TLS port, checking "
     .. "its certificate", aspec.async(function()
    local srv = await(servers.redis_server(nil, nil, {
      cert = certs.path("server.pem"), key = certs.path("server.key"),
      ca = certs.path("ca.pem")}))
    local url = "rediss://localhost:" .. srv.port .. "/2"
    local r = await(redis.from_url(url, {ssl = certs.client_ctx()}))
    assert.is_true(await(r:set("k", "over tls")))
    assert.equal("over tls", await(r:get("k")))
    local p = r:pipeline()
    p:incr("n"):incr("n")
    assert.same({1, 2, n = 2}, await(p:execute()))
    await(r:close())
    -- the system's CAs do not know the test CA
    local e = err_of(redis.from_url(url))
    assert.is_true(asyncio.iserror(e, redis.ConnectionError), tostring(e))
    assert.matches("certificate verify failed", e.message)
    await(servers.kill_server(srv))
  end))

  it("socket_timeout: a reply later than it raises redis.TimeoutError "
     .. "and the next command uses a new connection", aspec.async(function()
    local srv = await(servers.redis_server({"--enable-debug-command",
                                            "yes"}))
    local r = await(redis.from_url("redis://127.0.0.1:" .. srv.port,
                                   {socket_timeout = 0.1}))
    local e = err_of(r:execute_command("DEBUG", "SLEEP", "0.3"))
    assert.is_true(asyncio.iserror(e, redis.TimeoutError), tostring(e))
    assert.is_false(asyncio.iserror(e, asyncio.TimeoutError))
    -- while the server sleeps, a new connection's handshake is bound by
    -- socket_timeout too (redis-py's); a client without one sees the
    -- sleep end
    e = err_of(r:set("k", "v"))
    assert.is_true(asyncio.iserror(e, redis.TimeoutError), tostring(e))
    local patient = redis.from_url("redis://127.0.0.1:" .. srv.port)
    assert.is_true(await(patient:ping()))
    await(patient:close())
    assert.is_true(await(r:set("k", "v")))
    assert.equal("v", await(r:get("k")))
    -- blocking commands are not bound by it
    assert.is_nil(await(r:brpop({"q"}, 0.2)))
    await(r:close())
    await(servers.kill_server(srv))
  end))
end)
