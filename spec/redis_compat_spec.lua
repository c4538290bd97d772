-- spec/redis_compat_spec.lua: asyncio.redis where it follows redis-py
-- closely, against a real redis-server (spec/fixtures/servers.lua):
-- from_url's query string and user-only URLs, infinite and float scores,
-- ZRANGE's BYSCORE/BYLEX/LIMIT, Lua's bad argument error for arguments
-- Redis cannot take, EXPIRE's options, INFO's nested values, reuse after
-- close, scripts in pipelines, pipeline options, the SCAN iterators and
-- the other methods redis-py has, max_connections, the error classes of
-- replies, ACL users, socket_timeout while connecting, scripts called
-- with named arguments, setbit's boolean bits, whole floats sent as
-- 2.0 and other floats as Python's repr writes them, xautoclaim's
-- justid, bitcount's mode, client_list's filters and redis-py's
-- DataErrors for option values it refuses.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await

--- A client on database db of the spec's server, database emptied.
local function client(db)
  return await(servers.client(db or 7))
end

local err_of = dofile("spec/helpers.lua").await_error

local function is_float(x) return math.type(x) == "float" end

describe("asyncio.redis as redis-py", function()
  teardown(servers.stop)

  it("from_url reads the query string, as redis-py's", function()
    local o = redis.from_url("redis://cache.example.com:6380?db=2").opts
    assert.same({"cache.example.com", 6380, 2}, {o.host, o.port, o.db})
    o = redis.from_url("redis://h/1?db=3&socket_timeout=0.5"
                       .. "&socket_connect_timeout=2&max_connections=4").opts
    assert.same({"h", 6379, 3, 0.5, 2, 4}, {o.host, o.port, o.db,
      o.socket_timeout, o.socket_connect_timeout, o.pool_size})
    o = redis.from_url("redis://h?password=p%20w&username=u+x").opts
    assert.same({"p w", "u x"}, {o.password, o.username})
    -- a user with no ':' has no password (urllib's reading)
    o = redis.from_url("redis://user@h:7000").opts
    assert.same({"user", nil, "h", 7000}, {o.username, o.password,
                                            o.host, o.port})
    o = redis.from_url("unix:///tmp/r.sock?db=3&socket_timeout=1").opts
    assert.same({"/tmp/r.sock", 3, 1}, {o.path, o.db, o.socket_timeout})
    -- options given to from_url win over the URL, its query included
    o = redis.from_url("redis://h/1?db=2", {db = 4}).opts
    assert.equal(4, o.db)
    -- ?decode_responses= is taken, as redis-py's, and changes nothing
    o = redis.from_url("redis://h?decode_responses=True&db=1").opts
    assert.same({1, nil}, {o.db, o.decode_responses})
    -- a value or a port that does not convert is redis-py's ValueError;
    -- a parameter luaio does not know, a redis.DataError
    for _, case in ipairs{
        {"redis://h?db=x", asyncio.ValueError,
         "Invalid value for `db` in connection URL."},
        {"redis://h:port/0", asyncio.ValueError,
         "Port could not be cast to integer value as 'port'"},
        {"redis://h?retry=1", redis.DataError,
         "Unsupported parameter 'retry' in Redis URL"}} do
      local ok, e = pcall(redis.from_url, case[1])
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, case[2]), tostring(e))
      assert.equal(case[3], e.message)
    end
  end)

  it("from_url's ?db= and a user alone reach the server",
     aspec.async(function()
    local port = await(servers.redis_port())
    local r <close> = client(8)
    await(r:set("where", "db8"))
    local q <close> = await(redis.from_url(
      ("redis://default@127.0.0.1:%d?db=8"):format(port)))
    assert.equal("db8", await(q:get("where")))
    await(q:close())
    await(r:close())
  end))

  it("parses infinite scores and returns scores as floats",
     aspec.async(function()
    local r <close> = client()
    await(r:zadd("z", {top = math.huge, bottom = -math.huge, two = 2}))
    assert.equal(math.huge, await(r:zscore("z", "top")))
    assert.equal(-math.huge, await(r:zscore("z", "bottom")))
    local two = await(r:zscore("z", "two"))
    assert.equal(2, two)
    assert.is_true(is_float(two))
    assert.same({{"bottom", -math.huge}, {"two", 2.0}, {"top", math.huge}},
                await(r:zrange("z", 0, -1, {withscores = true})))
    local ms = await(r:zmscore("z", {"top", "nope", "two"}))
    assert.same({math.huge, nil, 2.0, n = 3}, ms)
    assert.is_true(is_float(ms[3]))
    assert.equal(math.huge, await(r:zincrby("z", 1, "top")))
    local inc = await(r:zincrby("z", 1, "two"))
    assert.is_true(is_float(inc) and inc == 3)
    assert.is_true(is_float(await(r:zadd("z", {two = 1}, {incr = true}))))
    assert.is_true(is_float(await(r:incrbyfloat("f", 2))))
    assert.is_true(is_float(await(r:hincrbyfloat("h", "f", 2))))
    local popped = await(r:zpopmin("z"))
    assert.same({{"bottom", -math.huge}}, popped)
    local _, member, score = await(r:bzpopmin({"z"}, 1))
    assert.equal("two", member)
    assert.is_true(is_float(score))
  end))

  it("zrange with byscore, bylex, desc, offset and num",
     aspec.async(function()
    local r <close> = client()
    await(r:zadd("z", {a = 1, b = 2, c = 3, d = 4}))
    assert.same({"b", "c", n = 2}, await(r:zrange("z", 2, 3,
                                                  {byscore = true})))
    assert.same({{"c", 3.0}, {"b", 2.0}}, await(r:zrange("z", "(4", 2,
      {byscore = true, desc = true, withscores = true})))
    assert.same({"b", "c", n = 2}, await(r:zrange("z", "-inf", "+inf",
      {byscore = true, offset = 1, num = 2})))
    await(r:zadd("lex", {a = 0, b = 0, c = 0}))
    assert.same({"b", "c", n = 2}, await(r:zrange("lex", "[b", "+",
                                                  {bylex = true})))
    assert.same({"b", n = 1}, await(r:zrange("lex", "+", "-",
      {bylex = true, desc = true, offset = 1, num = 1})))
    assert.same({"d", "c", n = 2}, await(r:zrange("z", 0, 1, {desc = true})))
    for _, o in ipairs{{byscore = true, bylex = true}, {offset = 1},
                       {bylex = true, withscores = true}} do
      assert.is_true(asyncio.iserror(err_of(r:zrange("z", 0, 1, o)),
                                     redis.DataError))
    end
  end))

  it("raises Lua's bad argument error for arguments Redis cannot take, "
     .. "sending nothing", aspec.async(function()
    local r <close> = client()
    local cases = {
      function() return r:rpush("l", "a", nil, "c") end,
      function() return r:set("k", nil) end,
      function() return r:set("k", true) end,
      function() return r:set("k", {}) end,
      function() return r:set("k", 0 / 0) end,
      function() return r:mset({a = false}) end,
      function() return r:execute_command("SET", "k", nil) end,
      function() return r:blpop({"l", true}, 1) end,
    }
    for i, f in ipairs(cases) do
      local e = err_of(f())
      assert.equal("string", type(e), i .. tostring(e))
      assert.matches("^bad argument #%d to '%u+' %(string or number "
                     .. "expected, got %a+%)$", e)
    end
    assert.equal("bad argument #3 to 'RPUSH' (string or number expected, "
                 .. "got nil)", err_of(cases[1]()))
    assert.equal("bad argument #2 to 'SET' (string or number expected, "
                 .. "got NaN)", err_of(cases[5]()))
    assert.equal(0, await(r:llen("l")))
    assert.equal(0, await(r:exists("k")))
    -- a pipeline refuses them when they are queued
    local p = r:pipeline()
    local ok, e = pcall(p.set, p, "k", nil)
    assert.is_false(ok)
    assert.matches("^bad argument #2 to 'SET'", e)
    assert.equal(0, #p)
    -- the blocking command gave its connection back
    assert.equal(0, r.nconns - #r.idle)
  end))

  it("raises redis-py's DataError for option values it refuses, sending "
     .. "nothing", aspec.async(function()
    local r <close> = client()
    local cases = {
      {function() return r:zadd("z", {}) end,
       "ZADD requires at least one element/score pair"},
      {function() return r:zadd("z", {m = 1}, {nx = true, xx = true}) end,
       "ZADD allows either 'nx' or 'xx', not both"},
      {function() return r:zadd("z", {m = 1}, {gt = true, lt = true}) end,
       "ZADD allows either 'gt' or 'lt', not both"},
      {function() return r:zadd("z", {m = 1, n = 2}, {incr = true}) end,
       "ZADD option 'incr' only works when passing a single element/score "
       .. "pair"},
      {function() return r:zadd("z", {m = 1}, {nx = true, gt = true}) end,
       "Only one of 'nx', 'lt', or 'gr' may be defined."},
      {function() return r:set("k", "v", {ex = 1.5}) end,
       "ex must be datetime.timedelta or int"},
      {function() return r:set("k", "v", {px = 10.0}) end,
       "px must be datetime.timedelta or int"},
      {function() return r:getex("k", {ex = 1, px = 1000}) end,
       "``ex``, ``px``, ``exat``, ``pxat``, and ``persist`` are mutually "
       .. "exclusive."},
      {function() return r:getex("k", {ex = 1, persist = true}) end,
       "``ex``, ``px``, ``exat``, ``pxat``, and ``persist`` are mutually "
       .. "exclusive."},
      {function() return r:zunionstore("d", {"a"}, {aggregate = "avg"}) end,
       "aggregate can be sum, min or max."},
      {function() return r:xadd("s", {}) end,
       "XADD fields must be a non-empty dict"},
      {function() return r:xadd("s", {f = 1}, {maxlen = 0}) end,
       "XADD maxlen must be a positive integer"},
      {function() return r:xread({}) end,
       "XREAD streams must be a non empty dict"},
      {function() return r:xread({s = "0"}, {count = 0}) end,
       "XREAD count must be a positive integer"},
      {function() return r:xread({s = "0"}, {block = -1}) end,
       "XREAD block must be a non-negative integer"},
      {function() return r:xreadgroup("g", "c", {s = ">"}, {count = 1.5}) end,
       "XREADGROUP count must be a positive integer"},
      {function() return r:xrange("s", {count = 0}) end,
       "XRANGE count must be a positive integer"},
      {function() return r:xrevrange("s", {count = -2}) end,
       "XREVRANGE count must be a positive integer"},
    }
    for i, case in ipairs(cases) do
      local e = err_of(case[1]())
      assert.is_true(asyncio.iserror(e, redis.DataError), i .. tostring(e))
      assert.equal(case[2], e.message)
    end
    assert.equal(0, await(r:exists("z", "k", "d", "s")))
    -- a whole number of seconds still goes
    assert.is_true(await(r:set("k", "v", {ex = 10})))
    assert.equal(10, await(r:ttl("k")))
  end))

  it("raises a bad argument error naming the method for a mapping or "
     .. "streams argument that is not a table", aspec.async(function()
    local r <close> = client()
    local cases = {
      {"bad argument #2 to 'zadd' (table expected, got string)",
       function() return r:zadd("z", "a") end},
      {"bad argument #1 to 'mset' (table expected, got no value)",
       function() return r:mset() end},
      {"bad argument #1 to 'msetnx' (table expected, got string)",
       function() return r:msetnx("a") end},
      {"bad argument #2 to 'hset' (field 'mapping': table expected, got "
       .. "string)", function() return r:hset("h", {mapping = "a"}) end},
      {"bad argument #4 to 'hset' (field 'mapping': table expected, got "
       .. "number)", function() return r:hset("h", "f", "v",
                                               {mapping = 1}) end},
      {"bad argument #2 to 'xadd' (table expected, got no value)",
       function() return r:xadd("s") end},
      {"bad argument #1 to 'xread' (table expected, got string)",
       function() return r:xread("s") end},
      {"bad argument #3 to 'xreadgroup' (table expected, got no value)",
       function() return r:xreadgroup("g", "c") end},
    }
    for _, case in ipairs(cases) do
      assert.equal(case[1], err_of(case[2]()))
    end
    -- a pipeline raises it when the command is queued
    local p = r:pipeline()
    local ok, e = pcall(p.zadd, p, "z", "a")
    assert.is_false(ok)
    assert.equal("bad argument #2 to 'zadd' (table expected, got string)", e)
    assert.equal(0, #p)
    assert.equal(0, await(r:exists("z", "h", "s")))
  end))

  it("expire and its kin take nx, xx, gt and lt", aspec.async(function()
    local r <close> = client()
    await(r:set("k", "v"))
    assert.is_false(await(r:expire("k", 100, {xx = true})))
    assert.is_true(await(r:expire("k", 100, {nx = true})))
    assert.is_false(await(r:expire("k", 50, {gt = true})))
    assert.is_true(await(r:expire("k", 50, {lt = true})))
    assert.is_true(await(r:pexpire("k", 200000, {gt = true})))
    local now = await(r:time())
    assert.is_false(await(r:expireat("k", now + 10, {gt = true})))
    assert.is_true(await(r:pexpireat("k", (now + 300) * 1000, {xx = true})))
    assert.is_true(await(r:ttl("k")) > 250)
  end))

  it("time gives seconds and microseconds: two values, and one table "
     .. "{seconds, microseconds} in a pipeline or a transaction, as "
     .. "redis-py's tuple", aspec.async(function()
    local r <close> = client()
    local secs, usecs = await(r:time())
    assert.equal("integer", math.type(secs))
    assert.equal("integer", math.type(usecs))
    assert.is_true(usecs >= 0 and usecs < 1000000)
    for _, transaction in ipairs{true, false} do
      local p = r:pipeline(transaction)
      p:time()
      p:set("t", 1)
      local res = await(p:execute())
      assert.equal(2, res.n)
      assert.equal(2, #res[1])
      assert.is_true(res[1][1] >= secs and res[1][1] < secs + 60)
      assert.is_true(res[1][2] >= 0 and res[1][2] < 1000000)
      assert.is_true(res[2])
    end
  end))

  it("info parses nested values into tables of numbers",
     aspec.async(function()
    local r <close> = client(7)
    await(r:set("a", 1))
    local info = await(r:info())
    assert.same({keys = 1, expires = 0, avg_ttl = 0}, info.db7)
    assert.is_true(math.type(info.db7.keys) == "integer")
    assert.is_true(is_float(info.mem_fragmentation_ratio))
    local stats = await(r:info("commandstats"))
    local set = stats.cmdstat_set
    assert.equal("table", type(set))
    assert.is_true(set.calls >= 1)
    assert.is_true(is_float(set.usec_per_call))
    err_of(r:execute_command("NOSUCHCOMMAND"))
    assert.is_true(await(r:info("errorstats")).errorstat_ERR.count >= 1)
  end))

  it("a closed client reconnects when used again", aspec.async(function()
    local r = client()
    await(r:set("k", "v"))
    await(r:close())
    assert.equal("v", await(r:get("k")))
    assert.is_nil(await(r:blpop({"nothing"}, 0.05)))
    await(r:close())
    do local r2 <close> = client() await(r2:set("k", "w")) end
    assert.equal("w", await(r:get("k")))
    await(r:close())
  end))

  it("runs a registered script in a pipeline, loading it first",
     aspec.async(function()
    local r <close> = client()
    local s = r:register_script("return redis.call('INCRBY', KEYS[1], "
                                .. "ARGV[1])")
    for _, tx in ipairs{true, false} do
      await(r:script_flush())
      local p = r:pipeline{transaction = tx}
      p:set("n", 10)
      assert.equal(p, s({"n"}, {5}, p))
      assert.equal(p, await(s({"n"}, {1}, p)))
      p:get("n")
      assert.same({true, 15, 16, "16", n = 4}, await(p:execute()))
    end
    -- the Script knows its sha now: a direct call reloads after a flush
    await(r:script_flush())
    assert.equal(17, await(s({"n"}, {1})))
  end))

  it("pipeline and execute take their options as tables; #p counts",
     aspec.async(function()
    local r <close> = client()
    await(r:set("s", "v"))
    local p = r:pipeline{transaction = false}
    assert.is_false(p.transaction)
    p:incr("n"):lpush("s", "x"):incr("n")
    assert.equal(3, #p)
    local res = await(p:execute{raise_on_error = false})
    assert.equal(1, res[1])
    assert.is_true(asyncio.iserror(res[2], redis.ResponseError))
    assert.equal(2, res[3])
    assert.equal(0, #p)
    p = r:pipeline(false)
    assert.is_false(p.transaction)
    assert.is_true(r:pipeline{}.transaction)
    p = r:pipeline()
    p:lpush("s", "x")
    assert.is_true(asyncio.iserror(err_of(p:execute{}), redis.ResponseError))
  end))

  it("scan, hscan, sscan, zscan and their iterators", aspec.async(function()
    local r <close> = client()
    for i = 1, 30 do await(r:set("key:" .. i, i)) end
    await(r:set("other", 1))
    local seen, n = {}, 0
    for key in r:scan_iter{match = "key:*", count = 7} do
      seen[key] = true
      n = n + 1
    end
    assert.equal(30, n)
    assert.is_true(seen["key:30"])
    await(r:hset("h", {mapping = {a = "1", b = "2"}}))
    local h = {}
    for field, value in r:hscan_iter("h") do h[field] = value end
    assert.same({a = "1", b = "2"}, h)
    assert.same({0, {a = "1", b = "2"}}, await(r:hscan("h", 0)))
    await(r:sadd("s", "x", "y"))
    local s = {}
    for m in r:sscan_iter("s", {match = "x"}) do s[#s + 1] = m end
    assert.same({"x"}, s)
    assert.equal(0, await(r:sscan("s"))[1])
    await(r:zadd("z", {a = 1, b = math.huge}))
    local z = {}
    for m, score in r:zscan_iter("z") do z[m] = score end
    assert.same({a = 1.0, b = math.huge}, z)
    assert.is_true(is_float(z.a))
    assert.same({0, {{"a", 1.0}, {"b", math.huge}}}, await(r:zscan("z", 0)))
  end))

  it("has redis-py's other methods, with its reply shapes",
     aspec.async(function()
    local r <close> = client()
    await(r:set("k", "old"))
    assert.equal("old", await(r:getset("k", "new")))
    assert.is_true(await(r:hmset("hm", {a = 1, b = 2})))
    assert.same({a = "1", b = "2"}, await(r:hgetall("hm")))
    await(r:rpush("l", "a", "b", "a"))
    assert.equal(4, await(r:linsert("l", "BEFORE", "b", "x")))
    assert.equal(-1, await(r:linsert("l", "AFTER", "nope", "x")))
    assert.equal(0, await(r:lpos("l", "a")))
    assert.same({0, 3, n = 2}, await(r:lpos("l", "a", {count = 0})))
    assert.equal(3, await(r:lpos("l", "a", {rank = -1})))
    assert.is_nil(await(r:lpos("l", "zz")))
    await(r:sadd("s", "m"))
    assert.equal("m", await(r:srandmember("s")))
    assert.same({"m", n = 1}, await(r:srandmember("s", 3)))
    assert.same({true, false, n = 2}, await(r:smismember("s", {"m", "q"})))
    assert.same({true, n = 1}, await(r:smismember("s", "m")))
    await(r:zadd("z", {a = 1, b = 2, c = 3}))
    assert.equal(0, await(r:zrevrank("z", "c")))
    assert.same({"c", "b", n = 2}, await(r:zrevrangebyscore("z", 3, 2)))
    assert.same({{"b", 2.0}}, await(r:zrevrangebyscore("z", "+inf", "-inf",
      {start = 1, num = 1, withscores = true})))
    assert.is_true(asyncio.iserror(err_of(r:zmscore("z", {})),
                                   redis.DataError))
    for i = 1, 5 do await(r:xadd("st", {f = i}, {id = i .. "-0"})) end
    local rev = await(r:xrevrange("st", "+", "-", {count = 2}))
    assert.same({{"5-0", {f = "5"}}, {"4-0", {f = "4"}}}, rev)
    assert.equal(2, await(r:xtrim("st", {maxlen = 3, approximate = false})))
    assert.equal(1, await(r:xtrim("st", {minid = "4-0",
                                          approximate = false})))
    assert.is_true(asyncio.iserror(err_of(r:xtrim("st")), redis.DataError))
    await(r:xgroup_create("st", "g", "0"))
    await(r:xreadgroup("g", "c1", {st = ">"}))
    local claimed = await(r:xclaim("st", "g", "c2", 0, {"4-0"}))
    assert.same({{"4-0", {f = "4"}}}, claimed)
    assert.same({"5-0", n = 1},
                await(r:xclaim("st", "g", "c2", 0, {"5-0"}, {justid = true})))
    assert.equal("c2", await(r:xpending("st", "g")).consumers[1].name)
  end))

  it("setbit takes a boolean bit, as redis-py's (value and 1 or 0)",
     aspec.async(function()
    local r <close> = client()
    assert.equal(0, await(r:setbit("bits", 7, true)))
    assert.equal(1, await(r:getbit("bits", 7)))
    assert.equal(1, await(r:setbit("bits", 7, false)))
    assert.equal(0, await(r:getbit("bits", 7)))
    assert.equal(0, await(r:setbit("bits", 6, 1)))
    assert.equal(1, await(r:setbit("bits", 6, 0)))
    assert.equal(0, await(r:setbit("bits", 5, "1")))
    assert.equal(1, await(r:bitcount("bits")))
    for _, case in ipairs{{2, "2"}, {-1, "-1"}, {0.5, "0.5"},
                          {"x", "string"}, {nil, "no value"},
                          {{}, "table"}} do
      assert.equal("bad argument #3 to 'setbit' (0, 1 or boolean "
                   .. "expected, got " .. case[2] .. ")",
                   err_of(r:setbit("bits", 0, case[1])))
    end
    -- a pipeline refuses it when the command is queued
    local p = r:pipeline()
    local ok, e = pcall(p.setbit, p, "bits", 0, 2)
    assert.is_false(ok)
    assert.matches("^bad argument #3 to 'setbit'", e)
    assert.equal(0, #p)
    assert.equal(1, await(r:bitcount("bits")))
  end))

  it("sends a whole float as 2.0, as redis-py sends repr(2.0)",
     aspec.async(function()
    local r <close> = client()
    for _, case in ipairs{{2.0, "2.0"}, {-3.0, "-3.0"}, {0.0, "0.0"},
                          {2 ^ 53, "9007199254740992.0"}, {0.1, "0.1"},
                          {1e16, "1e+16"}, {math.huge, "inf"}, {2, "2"},
                          -- Python's repr: the shortest digits, positional
                          -- from 1e-4 up to 1e16
                          {1.5e15, "1500000000000000.0"}, {5e-324, "5e-324"},
                          {1e-5, "1e-05"}, {0.0001, "0.0001"},
                          {-2.5e-7, "-2.5e-07"}, {1 / 3, "0.3333333333333333"},
                          {1.7976931348623157e308, "1.7976931348623157e+308"},
                          {123456.789, "123456.789"}, {-0.0, "-0.0"}} do
      assert.is_true(await(r:set("k", case[1])))
      assert.equal(case[2], await(r:get("k")))
    end
    assert.equal(tostring(2.0), await(r:echo(2.0)))
    await(r:rpush("l", 1.0, 1))
    assert.same({"1.0", "1", n = 2}, await(r:lrange("l", 0, -1)))
    await(r:hset("h", {mapping = {f = 5.0}}))
    assert.equal("5.0", await(r:hget("h", "f")))
    await(r:execute_command("SET", "e", 6.0))
    assert.equal("6.0", await(r:get("e")))
    local p = r:pipeline()
    assert.same({true, "7.0", n = 2}, await(p:set("p", 7.0):get("p"):execute()))
    -- a whole float score or amount still reads as the number it is
    await(r:zadd("z", {m = 2.0}))
    assert.equal(2.0, await(r:zscore("z", "m")))
    assert.equal(3.0, await(r:zincrby("z", 1.0, "m")))
    assert.equal(2.0, await(r:incrbyfloat("n", 2.0)))
    assert.equal(4.0, await(r:hincrbyfloat("h", "g", 4.0)))
    -- where Redis wants an integer it refuses one, as redis-py's
    local e = err_of(r:expire("k", 10 / 2))
    assert.is_true(asyncio.iserror(e, redis.ResponseError))
    assert.equal("value is not an integer or out of range", e.message)
    assert.is_true(await(r:expire("k", 10 // 2)))
  end))

  it("xautoclaim takes justid: the claimed ids alone, as redis-py's",
     aspec.async(function()
    local r <close> = client()
    for i = 1, 3 do await(r:xadd("st", {f = i}, {id = i .. "-0"})) end
    await(r:xgroup_create("st", "g", "0"))
    await(r:xreadgroup("g", "c1", {st = ">"}))
    assert.same({"1-0", "2-0", n = 2}, await(r:xautoclaim("st", "g", "c2",
      0, {count = 2, justid = true})))
    assert.same({"3-0", n = 1}, await(r:xautoclaim("st", "g", "c2", 0,
      "3-0", {justid = true})))
    local pending = await(r:xpending("st", "g"))
    assert.same({{name = "c2", pending = 3}}, pending.consumers)
    -- without it, entries and the cursor as before
    assert.same({"2-0", {{"1-0", {f = "1"}}}, {n = 0}},
      await(r:xautoclaim("st", "g", "c3", 0, {count = 1, justid = false})))
  end))

  -- regression: a field named mapping made hset(name, t) read t as its
  -- options ("field 'mapping': table expected"), and items was unknown
  it("hset takes redis-py's key and value, mapping and items",
     aspec.async(function()
    local r <close> = client()
    assert.equal(3, await(r:hset("h", {mapping = {mapping = "m",
                                                  items = "i", x = "1"}})))
    assert.same({mapping = "m", items = "i", x = "1"}, await(r:hgetall("h")))
    assert.equal(2, await(r:hset("h2", {items = {"a", "1", "b", "2"}})))
    assert.same({a = "1", b = "2"}, await(r:hgetall("h2")))
    assert.equal(3, await(r:hset("h3", "k", "v", {items = {"i", "1"},
                                                  mapping = {m = "2"}})))
    assert.same({k = "v", i = "1", m = "2"}, await(r:hgetall("h3")))
    assert.equal(1, await(r:hset("h3", nil, nil, {mapping = {n = "3"}})))
    local p = r:pipeline()
    p:hset("h4", {items = {"f", "1"}, mapping = {items = "2"}})
    p:hgetall("h4")
    assert.same({2, {f = "1", items = "2"}, n = 2}, await(p:execute()))
    -- a table in place of the field is the options, never a mapping
    local ok, e = pcall(r.hset, r, "h", {a = "1"})
    assert.is_false(ok)
    assert.matches("bad argument #3 to 'hset' %(unknown option 'a'%)", e)
    e = err_of(r:hset("h", {items = "f"}))
    assert.matches("bad argument #2 to 'hset' %(field 'items': table "
                   .. "expected, got string%)", tostring(e))
    assert.is_true(asyncio.iserror(err_of(r:hset("h", {mapping = {}})),
                                   redis.DataError))
  end))

  -- regression: the fields of such an entry were nil ({"2-1"})
  it("an entry deleted after delivery comes back from the pending list "
     .. "with no fields, as redis-py's (id, {})", aspec.async(function()
    local r <close> = client()
    await(r:xadd("st", {a = "1"}, {id = "2-1"}))
    await(r:xgroup_create("st", "g", "0"))
    assert.same({{"st", {{"2-1", {a = "1"}}}}},
                await(r:xreadgroup("g", "c", {st = ">"})))
    assert.equal(1, await(r:xdel("st", "2-1")))
    assert.same({{"st", {{"2-1", {}}}}},
                await(r:xreadgroup("g", "c", {st = "0"})))
  end))

  it("object, touch, move, bitop, bitpos and the PUBSUB introspection "
     .. "commands, with redis-py's replies", aspec.async(function()
    local r <close> = client()
    await(r:set("n", 12345))
    await(r:rpush("l", "a"))
    assert.equal("int", await(r:object("ENCODING", "n")))
    await(r:set("s", "abc"))
    assert.equal("embstr", await(r:object("encoding", "s")))
    assert.is_true(math.type(await(r:object("REFCOUNT", "l"))) == "integer")
    assert.equal(0, await(r:object("IDLETIME", "l")))
    assert.is_nil(await(r:object("ENCODING", "missing")))
    assert.equal(3, await(r:touch("n", "l", "s", "missing")))
    assert.is_true(await(r:move("n", 8)))
    assert.is_false(await(r:move("missing", 8)))
    assert.equal(0, await(r:exists("n")))
    await(r:set("a", "\xff\xf0"))
    await(r:set("b", "\x0f\x00"))
    assert.equal(2, await(r:bitop("AND", "c", "a", "b")))
    assert.equal("\x0f\x00", await(r:get("c")))
    assert.equal(4, await(r:bitpos("c", 1)))
    assert.equal(8, await(r:bitpos("c", 0, 1)))
    assert.equal(-1, await(r:bitpos("c", 1, 1, 1)))
    assert.equal(5, await(r:bitpos("c", 1, 5, 7, {mode = "BIT"})))
    for _, case in ipairs{{{"c", 2}, "bit must be 0 or 1"},
        {{"c", 1, nil, 3}, "start argument is not set, when end is "
                           .. "specified"}} do
      local e = err_of(r:bitpos(table.unpack(case[1], 1, 4)))
      assert.is_true(asyncio.iserror(e, redis.DataError), tostring(e))
      assert.equal(case[2], e.message)
    end
    local ps = r:pubsub()
    await(ps:subscribe("news"))
    await(ps:psubscribe("w*"))
    assert.equal("subscribe", await(ps:get_message{timeout = 10}).type)
    assert.equal("psubscribe", await(ps:get_message{timeout = 10}).type)
    assert.same({"news", n = 1}, await(r:pubsub_channels()))
    assert.same({n = 0}, await(r:pubsub_channels("x*")))
    assert.equal(1, await(r:pubsub_numpat()))
    assert.same({{"news", 1}, {"none", 0}},
                await(r:pubsub_numsub("news", "none")))
    await(ps:close())
  end))

  it("bitcount takes mode BYTE or BIT (Redis 7), as redis-py's",
     aspec.async(function()
    local r <close> = client()
    await(r:set("b", "\xff\xf0"))
    assert.equal(12, await(r:bitcount("b")))
    assert.equal(4, await(r:bitcount("b", 1, 1)))
    assert.equal(4, await(r:bitcount("b", 1, 1, {mode = "BYTE"})))
    assert.equal(4, await(r:bitcount("b", 8, 15, {mode = "BIT"})))
    assert.equal(5, await(r:bitcount("b", 5, 9, {mode = "bit"})))
    -- start and end go together, as redis-py's
    for _, e in ipairs{err_of(r:bitcount("b", 0)),
                       err_of(r:bitcount("b", 0, {mode = "BIT"}))} do
      assert.is_true(asyncio.iserror(e, redis.DataError))
      assert.equal("Both start and end must be specified", e.message)
    end
    assert.has_error(function() r:bitcount("b", 0, -1, {mod = "BIT"}) end,
                     "bad argument #4 to 'bitcount' (unknown option 'mod')")
    assert.has_error(function() r:bitcount("b", 0, -1, "BIT") end,
                     "bad argument #4 to 'bitcount' (table expected, got "
                     .. "string)")
  end))

  it("client_list filters by type and client_id, as redis-py's",
     aspec.async(function()
    local r <close> = client()
    local other <close> = client()
    local id, other_id = await(r:client_id()), await(other:client_id())
    local ps = r:pubsub()
    await(ps:subscribe("news"))
    local function ids(list)
      local out = {}
      for _, c in ipairs(list) do out[#out + 1] = tonumber(c.id) end
      table.sort(out)
      return out
    end
    assert.same({id}, ids(await(r:client_list{client_id = {id}})))
    assert.same({id, other_id}, ids(await(r:client_list{
      client_id = {tostring(other_id), id}})))
    local pubsub = await(r:client_list{type = "pubsub"})
    assert.equal(1, #pubsub)
    assert.equal("1", pubsub[1].sub)
    local normal = await(r:client_list{type = "NORMAL"})
    for _, c in ipairs(normal) do assert.equal("0", c.sub) end
    assert.is_true(#normal >= 2)
    assert.is_true(#await(r:client_list()) >= 3)
    -- another type is redis-py's DataError; the options are checked
    local e = err_of(r:client_list{type = "nope"})
    assert.is_true(asyncio.iserror(e, redis.DataError))
    assert.equal("CLIENT LIST type must be one of 'normal', 'master', "
                 .. "'replica', 'pubsub'", e.message)
    assert.equal("bad argument #1 to 'client_list' (field 'client_id': "
                 .. "table expected, got number)",
                 err_of(r:client_list{client_id = id}))
    assert.has_error(function() r:client_list{_type = "normal"} end,
      "bad argument #1 to 'client_list' (unknown option '_type')")
    await(ps:close())
  end))

  it("takes redis-py's max_connections as the pool size, waiting for a "
     .. "connection past it", aspec.async(function()
    local port = await(servers.redis_port())
    local r <close> = redis.Redis{port = port, max_connections = 1}
    assert.equal(1, r.opts.pool_size)
    assert.equal(3, redis.Redis{pool_size = 3, max_connections = 1}
                      .opts.pool_size)
    assert.is_false(pcall(redis.Redis, {max_connections = 0}))
    local a = asyncio.create_task(r:blpop({"none1"}, 0.2))
    local b = asyncio.create_task(r:blpop({"none2"}, 0.2))
    await(asyncio.sleep(0)) -- both took their first step
    -- a holds the one connection; b waits for it instead of opening one
    assert.equal(1, r.nconns)
    assert.equal(1, #r.waiters)
    await(asyncio.gather(a, b))
    assert.same({nil, nil}, {a:result(), b:result()}) -- both timed out
    assert.equal(1, r.nconns)
    assert.equal(0, #r.waiters)
    await(r:close())
  end))

  it("a pool waiter cancelled just as a place frees passes the place on "
     .. "to the next waiter", aspec.async(function()
    local port = await(servers.redis_port())
    local r <close> = await(redis.Redis{port = port, db = 7, pool_size = 1})
    await(r:delete("q1", "q2"))
    -- the pool's one connection, held by a watching pipeline
    local p = r:pipeline()
    await(p:watch("k"))
    local b = asyncio.create_task(r:brpop({"q1"}, 0))
    local c = asyncio.create_task(r:brpop({"q2"}, 0))
    await(asyncio.wait_for(async(function()
      while #r.waiters < 2 do await(asyncio.sleep(0)) end
    end)(), 10))
    -- the pipeline's connection is lost: giving it back frees a place
    local id = await(p:execute_command("CLIENT", "ID"))
    await(r:execute_command("CLIENT", "KILL", "ID", id))
    local e = err_of(p:get("k"))
    assert.is_true(asyncio.iserror(e, redis.ConnectionError), tostring(e))
    p:reset()   -- b is told that a place is free ...
    b:cancel()  -- ... and is cancelled before it takes it: c must get it
    await(r:rpush("q2", "v"))
    assert.same({"q2", "v"}, {await(asyncio.wait_for(c, 10))})
    assert.is_true(b:cancelled())
    assert.same({1, 0}, {r.nconns, #r.waiters})
  end))

  it("a pool waiter is told when a connection that was to take the last "
     .. "place fails to open", aspec.async(function()
    -- a port nobody listens on: every connection is refused
    local srv = await(asyncio.start_server(function() end, "127.0.0.1", 0))
    local port = srv.sockets[1].port
    srv:close()
    await(srv:wait_closed())
    local r <close> = redis.Redis{port = port, pool_size = 1}
    local a = asyncio.create_task(r:blpop({"q1"}, 0))
    local b = asyncio.create_task(r:blpop({"q2"}, 0))
    -- a takes the one place and fails to connect; b, which waited for
    -- that place, tries in turn instead of waiting for good
    for _, t in ipairs{a, b} do
      local ok, e = pcall(await, asyncio.wait_for(t, 10))
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, redis.ConnectionError), tostring(e))
    end
    assert.same({0, 0}, {r.nconns, #r.waiters})
  end))

  -- regression: the message was "Error connecting to 127.0.0.1:1.
  -- ECONNREFUSED: Connect call failed (...)", with no errno
  it("words a failed connection as redis-py's _error_message, with its "
     .. "errno", aspec.async(function()
    local srv = await(asyncio.start_server(function() end, "127.0.0.1", 0))
    local port = srv.sockets[1].port
    srv:close()
    await(srv:wait_closed())
    local e = err_of(redis.Redis{port = port}:ping())
    assert.equal(redis.ConnectionError, getmetatable(e))
    assert.equal(111, e.errno)
    assert.equal(("Error 111 connecting to 127.0.0.1:%d. Connect call "
                  .. "failed ('127.0.0.1', %d)."):format(port, port),
                 e.message)
    e = err_of(redis.Redis{path = "/nonexistent/redis.sock"}:ping())
    assert.equal(2, e.errno)
    assert.equal("Error 2 connecting to unix socket: /nonexistent/redis.sock."
                 .. " No such file or directory.", e.message)
    -- getaddrinfo's code (-2 "Name or service not known", or -3 where
    -- no resolver answers)
    e = err_of(redis.Redis{host = "nonexistent.invalid"}:ping())
    assert.is_true(e.errno < 0, tostring(e))
    assert.matches("^Error %-%d connecting to nonexistent%.invalid:6379%. "
                   .. "%u.*%.$", e.message)
  end))

  -- regression: OOM and the ERR replies redis-py tells apart by message
  -- were plain ResponseErrors
  it("maps error replies to redis-py's classes", aspec.async(function()
    local cases = {
      {"OOM command not allowed when used memory > 'maxmemory'.",
       redis.OutOfMemoryError,
       "command not allowed when used memory > 'maxmemory'."},
      {"ERR max number of clients reached", redis.ConnectionError},
      {"ERR invalid password", redis.AuthenticationError},
      {"ERR Client sent AUTH, but no password is set",
       redis.AuthenticationError},
      {"ERR wrong number of arguments for 'auth' command",
       redis.AuthenticationWrongNumberOfArgsError},
      {"ERR Error unloading module: no such module with that name",
       redis.ModuleError},
      {"ERR unknown command 'X'", redis.ResponseError,
       "unknown command 'X'"},
      {"WRONGTYPE Operation", redis.ResponseError, "WRONGTYPE Operation"},
      -- a bare code: its message is empty (it was "ERR")
      {"ERR", redis.ResponseError, ""},
      {"NOSCRIPT", redis.NoScriptError, ""},
      {"ERR ", redis.ResponseError, ""},
      {"WRONGTYPE", redis.ResponseError, "WRONGTYPE"},
      {"", redis.ResponseError, ""},
    }
    for _, c in ipairs(cases) do
      local e = redis._reply_error(c[1])
      assert.equal(c[2], getmetatable(e), c[1])
      if c[3] then assert.equal(c[3], e.message) end
    end
    assert.is_true(asyncio.iserror(redis._reply_error("OOM x"),
                                   redis.ResponseError))
    -- a bare "-ERR\r\n" from a server (Redis itself always adds a text)
    local fake = await(asyncio.start_server(async(function(rd, wr)
      while true do
        local data = await(rd:read(4096))
        if data == "" then break end
        for cmd in data:gmatch("%*%d+\r\n%$%d+\r\n(%u+)") do
          wr:write(cmd == "CLIENT" and ":7\r\n" or "-ERR\r\n")
        end
      end
      wr:close()
    end), "127.0.0.1", 0))
    local fr = redis.Redis{port = fake.sockets[1].port}
    local fe = err_of(fr:get("k"))
    assert.equal(redis.ResponseError, getmetatable(fe))
    assert.equal("", fe.message)
    await(fr:close())
    fake:close()
    -- from a server
    local srv = await(servers.redis_server({"--maxmemory", "1"}))
    local r = await(redis.Redis{port = srv.port})
    local e = err_of(r:set("k", "v"))
    assert.is_true(asyncio.iserror(e, redis.OutOfMemoryError), tostring(e))
    await(r:close())
    await(servers.kill_server(srv))
  end))

  -- regression: every connection ran CLIENT ID, which an ACL user may not
  -- run, so such a user could not connect at all
  it("works for an ACL user who may not run CLIENT ID or CLIENT UNBLOCK",
     aspec.async(function()
    local srv = await(servers.redis_server())
    local admin = await(redis.Redis{port = srv.port})
    assert.equal("OK", await(admin:execute_command("ACL", "SETUSER",
      "limited", "on", ">pw", "~*", "+get", "+blpop", "+ping")))
    local r = await(redis.Redis{port = srv.port, username = "limited",
                                password = "pw"})
    assert.is_nil(await(r:get("k")))
    local e = err_of(r:set("k", "v"))
    assert.is_true(asyncio.iserror(e, redis.NoPermissionError), tostring(e))
    assert.matches("'set' command", e.message)
    -- a cancelled blocking pop cannot be unblocked: its connection is
    -- closed instead, and the pool carries on
    local t = asyncio.create_task(r:blpop({"q"}, 0))
    await(asyncio.wait_for(async(function()  -- until Redis holds it
      repeat
        local list = await(admin:execute_command("CLIENT", "LIST"))
      until list:find(" flags=b .* cmd=blpop ")
    end)(), 10))
    t:cancel()
    assert.is_true(asyncio.iserror(err_of(t), asyncio.CancelledError))
    assert.is_nil(await(r:blpop({"q"}, 0.05)))
    assert.is_true(await(r:ping()))
    await(r:close())
    await(admin:close())
    await(servers.kill_server(srv))
  end))

  -- regression: AUTH, SELECT and CLIENT ID were awaited with no limit
  it("socket_connect_timeout bounds the replies that open a connection",
     aspec.async(function()
    local srv = await(servers.redis_server({"--requirepass", "pw"}))
    srv.process:send_signal("SIGSTOP")
    for _, o in ipairs{{}, {password = "pw", db = 2}} do
      o.port, o.socket_connect_timeout = srv.port, 0.2
      local e = err_of(asyncio.wait_for(redis.Redis(o):initialize(), 10))
      assert.is_true(asyncio.iserror(e, redis.TimeoutError), tostring(e))
    end
    srv.process:send_signal("SIGCONT")
    local r = await(redis.Redis{port = srv.port, password = "pw",
                                socket_connect_timeout = 0.2})
    assert.is_true(await(r:ping()))
    await(r:close())
    await(servers.kill_server(srv))
  end))

  -- regression: script{keys =, args =} ran with no keys and no args
  it("a registered script takes redis-py's keys, args and client as "
     .. "named arguments", aspec.async(function()
    local r <close> = client()
    local s = r:register_script("return {#KEYS, #ARGV, "
      .. "table.concat(KEYS, ','), table.concat(ARGV, ',')}")
    assert.same({1, 1, "k", "a", n = 4},
                await(s{keys = {"k"}, args = {"a"}}))
    assert.same({1, 0, "k", "", n = 4}, await(s{keys = {"k"}}))
    assert.same({0, 2, "", "a,b", n = 4}, await(s{args = {"a", "b"}}))
    local p = r:pipeline()
    assert.equal(p, s{keys = {"x"}, args = {"y"}, client = p})
    assert.same({{1, 1, "x", "y", n = 4}, n = 1}, await(p:execute()))
    assert.has_error(function() s{key = {"k"}} end,
                     "bad argument #1 to 'Script' (unknown option 'key')")
    -- a plain list of keys is still a list
    assert.same({1, 0, "k", "", n = 4}, await(s({"k"})))
  end))
end)
