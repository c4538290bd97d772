-- spec/redis_pipeline_spec.lua: explicit pipelines and MULTI/EXEC
-- transactions of asyncio.redis, WATCH conflicts, UNWATCH, errors inside
-- them, socket_timeout on their replies, blocking commands in a
-- pipeline and the pub/sub commands it refuses.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await
local err_of = dofile("spec/helpers.lua").await_error

local function client()
  return await(servers.client(6))
end

describe("asyncio.redis pipelines", function()
  teardown(servers.stop)

  it("a transaction returns the converted replies in order",
     aspec.async(function()
    local r <close> = client()
    local p = r:pipeline()
    assert.equal(p, p:set("a", "1"))
    p:incr("a"):get("a"):hset("h", {mapping = {x = "1"}}):hgetall("h")
    p:execute_command("GET", "a")
    local res = await(p:execute())
    assert.same({true, 2, "2", 1, {x = "1"}, "2", n = 6}, res)
    -- the pipeline is empty again and reusable
    assert.same({n = 0}, await(p:execute()))
    p:get("a")
    assert.same({"2", n = 1}, await(p:execute()))
    await(r:close())
  end))

  it("without transaction, and error replies raised or kept",
     aspec.async(function()
    local r <close> = client()
    await(r:set("s", "x"))
    local p = r:pipeline(false)
    p:incr("n"); p:lpush("s", "v"); p:incr("n")
    local ok, e = pcall(await, p:execute())
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, redis.ResponseError))
    assert.matches("^Command # 2 %(LPUSH s v%) of pipeline caused error: "
                   .. "WRONGTYPE", e.message)
    assert.equal("2", await(r:get("n")))  -- the others ran
    p:incr("n"); p:lpush("s", "v"); p:incr("n")
    local res = await(p:execute(false))
    assert.equal(3, res[1])
    assert.is_true(asyncio.iserror(res[2], redis.ResponseError))
    assert.equal(4, res[3])
    -- inside MULTI/EXEC: a runtime error does not stop the others
    local t = r:pipeline()
    t:incr("n"); t:lpush("s", "v"); t:incr("n")
    res = await(t:execute(false))
    assert.same({5, 6}, {res[1], res[3]})
    assert.is_true(asyncio.iserror(res[2], redis.ResponseError))
    -- a command Redis refuses to queue aborts the whole transaction
    t:incr("n"); t:execute_command("NOSUCH"); t:incr("n")
    ok, e = pcall(await, t:execute())
    assert.is_false(ok)
    assert.matches("Command # 2 %(NOSUCH%)", e.message)
    assert.equal("6", await(r:get("n")))
    await(r:close())
  end))

  it("WATCH: optimistic locking raises WatchError on a conflict",
     aspec.async(function()
    local r <close> = client()
    await(r:set("balance", "10"))
    -- no conflict
    local p = r:pipeline()
    await(p:watch("balance"))
    local v = tonumber(await(p:get("balance")))  -- immediate mode
    p:multi()
    p:set("balance", v + 5)
    assert.same({true, n = 1}, await(p:execute()))
    assert.equal("15", await(r:get("balance")))
    -- another client changes the key between WATCH and EXEC
    p = r:pipeline()
    await(p:watch("balance"))
    v = tonumber(await(p:get("balance")))
    await(r:set("balance", "100"))
    p:multi()
    p:set("balance", v + 5)
    local ok, e = pcall(await, p:execute())
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, redis.WatchError))
    assert.equal("100", await(r:get("balance")))
    -- the usual retry loop
    local tries = 0
    while true do
      tries = tries + 1
      local q <close> = r:pipeline()
      await(q:watch("balance"))
      local cur = tonumber(await(q:get("balance")))
      if tries == 1 then await(r:incr("balance")) end
      q:multi()
      q:set("balance", cur * 2)
      local ok2, err = pcall(await, q:execute())
      if ok2 then break end
      assert.is_true(asyncio.iserror(err, redis.WatchError))
    end
    assert.equal(2, tries)
    assert.equal("202", await(r:get("balance")))
    -- the watching connection went back to the pool
    assert.equal(1, #r.idle)
    await(r:close())
  end))

  it("r:transaction(func, keys...) retries func until no watched key "
     .. "changed, as redis-py's helper", aspec.async(function()
    local r <close> = client()
    await(r:set("acct", "10"))
    local calls = 0
    local replies = await(r:transaction(function(pipe)
      calls = calls + 1
      local cur = tonumber(await(pipe:get("acct")))
      if calls == 1 then await(r:incr("acct")) end -- a conflict, once
      pipe:multi()
      pipe:set("acct", cur * 2)
    end, "acct"))
    assert.equal(2, calls)
    assert.same({true, n = 1}, replies)
    assert.equal("22", await(r:get("acct")))
    local value = await(r:transaction(async(function(pipe)
      local cur = await(pipe:get("acct"))
      pipe:multi()
      pipe:incr("acct")
      return "saw " .. cur
    end), "acct", {value_from_callable = true, watch_delay = 0.01}))
    assert.equal("saw 22", value)
    assert.equal("23", await(r:get("acct")))
    local e = err_of(r:transaction(function() error("own", 0) end, "acct"))
    assert.equal("own", e)
    assert.matches("unknown option 'value_from_callabel'", tostring(select(2,
      pcall(r.transaction, r, print, "k", {value_from_callabel = true}))))
    assert.equal(1, #r.idle) -- the watching connection went back
    await(r:close())
  end))

  -- regression: Pipeline had no unwatch()
  it("unwatch() forgets the watched keys", aspec.async(function()
    local r <close> = client()
    await(r:set("w", "1"))
    local p <close> = r:pipeline()
    assert.is_true(await(p:unwatch()))  -- nothing watched: nothing sent
    await(p:watch("w"))
    await(r:set("w", "2"))
    assert.is_true(await(p:unwatch()))
    assert.equal("2", await(p:get("w")))  -- still immediate
    p:multi()
    p:set("w", "3")
    assert.same({true, n = 1}, await(p:execute()))
    assert.equal("3", await(r:get("w")))
    await(r:close())
  end))

  -- regression: a failure before EXEC gave the connection back to the
  -- pool still watching, and the next transaction on it failed
  it("a transaction failing before EXEC does not leave its keys watched",
     aspec.async(function()
    local r <close> = client()
    await(r:set("w", "1"))
    local bad = r:register_script("this is not Lua")
    local p = r:pipeline()
    await(p:watch("w"))
    p:multi()
    bad({}, {}, p)
    local e = err_of(p:execute())  -- its SCRIPT LOAD fails
    assert.is_true(asyncio.iserror(e, redis.ResponseError), tostring(e))
    assert.equal(1, #r.idle)
    -- the same connection, from the pool, for another transaction
    local q <close> = r:pipeline()
    await(q:watch("other"))
    await(r:set("w", "2"))
    q:multi()
    q:set("other", "x")
    assert.same({true, n = 1}, await(q:execute()))
    await(r:close())
  end))

  -- regression: pipeline replies were awaited with no time limit
  it("a pipeline holding a blocking command runs on a connection of its "
     .. "own; cancelled, Redis is unblocked and nothing popped is lost",
     aspec.async(function()
    local r = client()
    local probe <close> = client()
    await(r:set("a", "A"))
    local p = r:pipeline(false)
    p:set("b", "B"):blpop({"q"}, 0):get("a")
    local t = asyncio.create_task(p:execute())
    servers.until_blocked(probe, "blpop")
    -- the other tasks' commands do not wait behind it
    assert.equal("A", await(r:get("a")))
    t:cancel()
    assert.is_true(asyncio.iserror(err_of(t), asyncio.CancelledError))
    await(r:close()) -- waits for the recovery
    await(probe:rpush("q", "x"))
    assert.equal(1, await(probe:llen("q")))
    assert.equal("B", await(probe:get("b")))
    -- an element that reaches the pipeline as it is cancelled is either
    -- its result or back in the list
    r = client()
    p = r:pipeline(false)
    p:blpop({"q2"}, 0)
    t = asyncio.create_task(p:execute())
    servers.until_blocked(probe, "blpop")
    await(probe:rpush("q2", "y"))
    local cancelled = t:cancel()
    local ok, res = pcall(await, t)
    await(r:close())
    if cancelled and not ok then
      assert.same({"y", n = 1}, await(probe:lrange("q2", 0, -1)))
    else
      assert.same({{"q2", "y", n = 2}, n = 1}, res)
      assert.equal(0, await(probe:llen("q2")))
    end
    -- the same commands in a transaction do not block: Redis runs them
    -- at once
    r = client()
    p = r:pipeline()
    assert.same({true, nil, n = 2}, await(p:set("c", "C")
      :blpop({"empty"}, 0):execute()))
    await(r:close())
  end))

  it("refuses pub/sub commands, whose replies are not one per command",
     aspec.async(function()
    local r <close> = client()
    for _, name in ipairs{"SUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
                          "SUNSUBSCRIBE"} do
      local ok, e = pcall(r.execute_command, r, name, "ch")
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, redis.PubSubError), tostring(e))
      assert.equal("use r:pubsub() for " .. name, e.message)
      local p = r:pipeline(false)
      ok, e = pcall(p.execute_command, p, name:lower(), "ch")
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, redis.PubSubError), tostring(e))
      assert.equal(0, #p)
    end
  end))

  it("socket_timeout bounds the replies of a pipeline and of a "
     .. "transaction", aspec.async(function()
    local srv = await(servers.redis_server())
    local r = await(redis.Redis{port = srv.port, socket_timeout = 0.2})
    for _, tx in ipairs{false, true} do
      assert.is_true(await(r:ping()))  -- connected
      srv.process:send_signal("SIGSTOP")
      local p = r:pipeline(tx)
      p:set("k", "v"):get("k")
      local e = err_of(asyncio.wait_for(p:execute(), 10))
      srv.process:send_signal("SIGCONT")
      assert.is_true(asyncio.iserror(e, redis.TimeoutError), tostring(e))
      assert.equal(0, #p)
    end
    -- WATCH's immediate commands likewise
    local p <close> = r:pipeline()
    await(p:watch("k"))
    srv.process:send_signal("SIGSTOP")
    local e = err_of(asyncio.wait_for(p:get("k"), 10))
    srv.process:send_signal("SIGCONT")
    assert.is_true(asyncio.iserror(e, redis.TimeoutError), tostring(e))
    p:reset()
    assert.equal("v", await(r:get("k")))
    await(r:close())
    await(servers.kill_server(srv))
  end))
end)
