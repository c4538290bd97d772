-- spec/redis_commands_spec.lua: asyncio.redis's methods for the geo
-- commands, ZUNION/ZINTER/ZDIFF and their STORE forms, LMPOP/BLMPOP,
-- ZMPOP/BZMPOP, LCS, the BITFIELD builder, DUMP/RESTORE, XPENDING's
-- detail form and SINTERCARD, against a real redis-server
-- (spec/fixtures/servers.lua): redis-py 4.3's names, argument shapes,
-- reply shapes and DataErrors, on a client and in pipelines; and, on a
-- fake server, what a cancelled BLMPOP or BZMPOP popped going back.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await

--- A client on database db of the spec's server, database emptied.
local function client(db)
  return await(servers.client(db or 9))
end

local err_of = dofile("spec/helpers.lua").await_error

--- Asserts that awaiting aw raises redis.DataError with message msg.
local function data_error(msg, aw)
  local e = err_of(aw)
  assert.is_true(asyncio.iserror(e, redis.DataError), tostring(e))
  assert.equal(msg, e.message)
end

local function is_float(x) return math.type(x) == "float" end

--- Redis's documentation's two places in Sicily, in key "Sicily".
local function sicily(r)
  return await(r:geoadd("Sicily", {13.361389, 38.115556, "Palermo",
                                   15.087269, 37.502669, "Catania"}))
end
-- where Redis puts them (its 52-bit geohash), as redis-py reads them
local PALERMO = {13.361389338970184, 38.1155563954963}
local CATANIA = {15.087267458438873, 37.50266842333162}

describe("asyncio.redis commands", function()
  teardown(servers.stop)

  it("geoadd, geodist, geohash and geopos, as redis-py's",
     aspec.async(function()
    local r <close> = client()
    assert.equal(2, sicily(r))
    -- nx and xx, ch: what changed
    assert.equal(0, await(r:geoadd("Sicily", {13.5, 38.1, "Palermo"},
                                   {nx = true})))
    assert.equal(1, await(r:geoadd("Sicily", {13.5, 38.1, "Palermo"},
                                   {xx = true, ch = true})))
    await(r:geoadd("Sicily", {13.361389, 38.115556, "Palermo"}))
    local d = await(r:geodist("Sicily", "Palermo", "Catania"))
    assert.equal(166274.1516, d)
    assert.equal(166.2742, await(r:geodist("Sicily", "Palermo", "Catania",
                                           {unit = "km"})))
    assert.is_true(is_float(await(r:geodist("Sicily", "Palermo",
                                            "Palermo"))))
    assert.is_nil(await(r:geodist("Sicily", "Palermo", "Nowhere")))
    assert.same({"sqc8b49rny0", nil, "sqdtr74hyu0", n = 3},
                await(r:geohash("Sicily", "Palermo", "Nowhere", "Catania")))
    assert.same({"sqdtr74hyu0", n = 1},
                await(r:geohash("Sicily", {"Catania"})))
    local pos = await(r:geopos("Sicily", "Palermo", "Nowhere", "Catania"))
    assert.same({PALERMO, nil, CATANIA, n = 3}, pos)
    assert.is_true(is_float(pos[1][1]) and is_float(pos[1][2]))
    -- redis-py's DataErrors, nothing sent
    data_error("GEOADD allows either 'nx' or 'xx', not both",
               r:geoadd("Sicily", {1, 2, "x"}, {nx = true, xx = true}))
    data_error("GEOADD requires places with lon, lat and name values",
               r:geoadd("Sicily", {1, 2}))
    data_error("GEODIST invalid unit",
               r:geodist("Sicily", "Palermo", "Catania", {unit = "KM"}))
    assert.equal("bad argument #2 to 'geoadd' (table expected, got "
                 .. "string)", err_of(r:geoadd("Sicily", "x")))
    assert.equal(2, await(r:zcard("Sicily")))
  end))

  it("georadius and georadiusbymember: members, or rows with distance, "
     .. "hash and coordinates; with store, the count stored",
     aspec.async(function()
    local r <close> = client()
    sicily(r)
    assert.same({"Catania", "Palermo", n = 2},
                await(r:georadius("Sicily", 15, 37, 200, {unit = "km",
                                                          sort = "ASC"})))
    -- the unit is m unless told
    assert.same({"Catania", n = 1},
                await(r:georadius("Sicily", 15, 37, 100000)))
    assert.same({
      {"Catania", 56.4413, 3479447370796909, CATANIA},
      {"Palermo", 190.4424, 3479099956230698, PALERMO},
    }, await(r:georadius("Sicily", 15, 37, 200, {unit = "km",
      withdist = true, withcoord = true, withhash = true, sort = "ASC"})))
    assert.same({{"Palermo", 190.4424}},
                await(r:georadius("Sicily", 15, 37, 200, {unit = "km",
                  withdist = true, sort = "DESC", count = 1})))
    assert.same({{"Catania", 3479447370796909},
                 {"Palermo", 3479099956230698}},
                await(r:georadius("Sicily", 15, 37, 200, {unit = "km",
                  withhash = true, count = 2, any = true, sort = "ASC"})))
    local rows = await(r:georadiusbymember("Sicily", "Palermo", 200,
      {unit = "km", withdist = true, withcoord = true, sort = "ASC"}))
    assert.same({{"Palermo", 0.0, PALERMO},
                 {"Catania", 166.2742, CATANIA}}, rows)
    assert.is_true(is_float(rows[1][2]))
    -- store: the members and their geohash scores; store_dist: distances
    assert.equal(2, await(r:georadius("Sicily", 15, 37, 200,
                                      {unit = "km", store = "near"})))
    assert.same(await(r:zrange("Sicily", 0, -1, {withscores = true})),
                await(r:zrange("near", 0, -1, {withscores = true})))
    assert.equal(1, await(r:georadiusbymember("Sicily", "Catania", 100,
      {unit = "km", store_dist = "dist"})))
    assert.same({{"Catania", 0.0}},
                await(r:zrange("dist", 0, -1, {withscores = true})))
    data_error("GEORADIUS invalid unit",
               r:georadius("Sicily", 15, 37, 200, {unit = "yd"}))
    data_error("``any`` can't be provided without ``count``",
               r:georadius("Sicily", 15, 37, 200, {any = true}))
    data_error("GEORADIUS invalid sort",
               r:georadiusbymember("Sicily", "Palermo", 1, {sort = "asc"}))
    data_error("GEORADIUS store and store_dist cant be set together",
               r:georadius("Sicily", 15, 37, 200, {store = "a",
                                                   store_dist = "b"}))
  end))

  it("geosearch and geosearchstore: from a member or a point, in a "
     .. "radius or a box", aspec.async(function()
    local r <close> = client()
    sicily(r)
    assert.same({{"Catania", 56.4413}, {"Palermo", 190.4424}},
                await(r:geosearch("Sicily", {longitude = 15, latitude = 37,
                  radius = 200, unit = "km", withdist = true,
                  sort = "asc"})))
    assert.same({"Palermo", "Catania", n = 2},
                await(r:geosearch("Sicily", {member = "Palermo",
                  width = 400, height = 400, unit = "km", sort = "ASC"})))
    -- a longitude of 0 is one (redis-py tests Python's truth: 0 is none)
    await(r:geoadd("Sicily", {0, 0, "origin"}))
    assert.same({"origin", n = 1},
                await(r:geosearch("Sicily", {longitude = 0, latitude = 0,
                                             radius = 1, unit = "km"})))
    assert.same({{"Catania", 3479447370796909}},
                await(r:geosearch("Sicily", {member = "Palermo",
                  radius = 200, unit = "km", sort = "DESC", count = 1,
                  withhash = true})))
    assert.equal(2, await(r:geosearchstore("d", "Sicily",
      {member = "Palermo", radius = 200, unit = "km", storedist = true})))
    assert.same({{"Palermo", 0.0}, {"Catania", 166.27415156960032}},
                await(r:zrange("d", 0, -1, {withscores = true})))
    assert.equal(1, await(r:geosearchstore("d", "Sicily",
      {longitude = 15, latitude = 37, width = 200, height = 200,
       unit = "km"})))
    assert.same({"Catania", n = 1}, await(r:zrange("d", 0, -1)))
    for _, case in ipairs{
        {"GEOSEARCH must have member or longitude and latitude",
         {longitude = 15, radius = 1}},
        {"GEOSEARCH member and longitude or latitude cant be set together",
         {member = "Palermo", longitude = 15, latitude = 37, radius = 1}},
        {"GEOSEARCH must have radius or width and height",
         {member = "Palermo", width = 1}},
        {"GEOSEARCH invalid unit", {member = "Palermo", radius = 1,
                                    unit = "yd"}},
        {"GEOSEARCH radius and width or height cant be set together",
         {member = "Palermo", radius = 1, width = 1, height = 1}},
        {"GEOSEARCH invalid sort", {member = "Palermo", radius = 1,
                                    sort = "up"}},
        {"GEOSEARCH ``any`` can't be provided without count",
         {member = "Palermo", radius = 1, any = true}}} do
      data_error(case[1], r:geosearch("Sicily", case[2]))
    end
    data_error("GEOSEARCH must have radius or width and height",
               r:geosearchstore("d", "Sicily", {member = "Palermo"}))
    assert.equal("bad argument #2 to 'geosearch' (table expected, got "
                 .. "no value)", err_of(r:geosearch("Sicily")))
  end))

  it("zunion, zinter, zdiff and their STORE forms: weights, aggregate "
     .. "and withscores", aspec.async(function()
    local r <close> = client()
    await(r:zadd("a", {x = 1, y = 2, z = 3}))
    await(r:zadd("b", {x = 10, y = 20}))
    assert.same({"z", "x", "y", n = 3}, await(r:zunion({"a", "b"})))
    assert.same({{"z", 3.0}, {"x", 10.0}, {"y", 20.0}},
                await(r:zunion({"a", "b"}, {aggregate = "max",
                                            withscores = true})))
    -- a table key -> weight: redis-py's dict
    assert.same({{"x", 32.0}, {"y", 64.0}},
                await(r:zinter({a = 2, b = 3}, {withscores = true})))
    assert.same({"x", "y", n = 2}, await(r:zinter({"a", "b"},
                                                  {aggregate = "MIN"})))
    assert.same({"z", n = 1}, await(r:zdiff({"a", "b"})))
    local diff = await(r:zdiff({"a", "b"}, {withscores = true}))
    assert.same({{"z", 3.0}}, diff)
    assert.is_true(is_float(diff[1][2]))
    assert.same({}, await(r:zdiff({"b", "a"}, {withscores = true})))
    assert.equal(1, await(r:zdiffstore("d", {"a", "b"})))
    assert.same({{"z", 3.0}}, await(r:zrange("d", 0, -1,
                                              {withscores = true})))
    assert.equal(3, await(r:zunionstore("u", {a = 2, b = 3},
                                        {aggregate = "MAX"})))
    assert.same({{"z", 6.0}, {"x", 30.0}, {"y", 60.0}},
                await(r:zrange("u", 0, -1, {withscores = true})))
    assert.equal(2, await(r:zinterstore("i", {"a", "b"})))
    assert.same({{"x", 11.0}, {"y", 22.0}},
                await(r:zrange("i", 0, -1, {withscores = true})))
    data_error("aggregate can be sum, min or max.",
               r:zunion({"a"}, {aggregate = "avg"}))
    data_error("ZINTER keys must be a list or a table of key = weight",
               r:zinter("a"))
    assert.equal("bad argument #2 to 'zdiffstore' (table expected, got "
                 .. "string)", err_of(r:zdiffstore("d", "a")))
    assert.has_error(function() r:zunion({"a"}, {withscore = true}) end,
      "bad argument #2 to 'zunion' (unknown option 'withscore')")
    assert.has_error(function() r:zunionstore("u", {"a"},
                                              {withscores = true}) end,
      "bad argument #3 to 'zunionstore' (unknown option 'withscores')")
  end))

  it("lmpop and zmpop pop from the first non-empty key; nil when all are "
     .. "empty", aspec.async(function()
    local r <close> = client()
    await(r:rpush("l", "a", "b", "c", "d"))
    assert.same({"l", {"a", "b", n = 2}, n = 2},
                await(r:lmpop(2, "none", "l", {direction = "LEFT",
                                               count = 2})))
    assert.same({"l", {"d", n = 1}, n = 2},
                await(r:lmpop(1, {"l"}, {direction = "RIGHT"})))
    assert.is_nil(await(r:lmpop(1, "none", {direction = "RIGHT"})))
    -- direction is required, as Python's keyword-only argument
    assert.equal("bad argument #3 to 'LMPOP' (string or number expected, "
                 .. "got nil)", err_of(r:lmpop(1, "l")))
    assert.has_error(function() r:lmpop(1, "l", {side = "LEFT"}) end,
                     "bad argument #3 to 'lmpop' (unknown option 'side')")
    await(r:zadd("z", {m1 = 1, m2 = 2, m3 = 3.5}))
    local got = await(r:zmpop(2, {"none", "z"}, {min = true, count = 2}))
    assert.same({"z", {{"m1", 1.0}, {"m2", 2.0}}}, got)
    assert.is_true(is_float(got[2][1][2]))
    assert.same({"z", {{"m3", 3.5}}}, await(r:zmpop(1, {"z"},
                                                    {max = true})))
    assert.is_nil(await(r:zmpop(1, {"z"}, {max = true})))
    for _, o in ipairs{{min = true, max = true}, {count = 2}} do
      data_error("Either min or max, but not both must be set",
                 r:zmpop(1, {"z"}, o))
    end
    data_error("Either min or max, but not both must be set",
               r:bzmpop(1, 1, {"z"}))
  end))

  it("blmpop and bzmpop: nil at their timeout, or what another "
     .. "connection pushes", aspec.async(function()
    local r <close> = client()
    local other <close> = client()
    assert.is_nil(await(r:blmpop(0.05, 1, "q", {direction = "LEFT"})))
    assert.is_nil(await(r:bzmpop(0.05, 1, {"z"}, {min = true})))
    local t = asyncio.create_task(r:blmpop(0, 2, "none", "q",
      {direction = "RIGHT", count = 2}))
    servers.until_blocked(other, "blmpop")
    assert.equal(3, await(other:rpush("q", "a", "b", "c")))
    assert.same({"q", {"c", "b", n = 2}, n = 2}, await(t))
    assert.same({"a", n = 1}, await(other:lrange("q", 0, -1)))
    t = asyncio.create_task(r:bzmpop(0, 2, {"none", "z"}, {max = true}))
    servers.until_blocked(other, "bzmpop")
    await(other:zadd("z", {lo = 1, hi = 2}))
    assert.same({"z", {{"hi", 2.0}}}, await(t))
    assert.has_error(function() r:bzmpop(0, 1, {"z"}, {mim = true}) end,
                     "bad argument #4 to 'bzmpop' (unknown option 'mim')")
  end))

  it("lcs, the bitfield builder, dump and restore, sintercard",
     aspec.async(function()
    local r <close> = client()
    await(r:mset{k1 = "ohmytext", k2 = "mynewtext"})
    assert.equal("mytext", await(r:lcs("k1", "k2")))
    assert.equal(6, await(r:lcs("k1", "k2", {len = true})))
    assert.same({"matches", {{{4, 7, n = 2}, {5, 8, n = 2}, 4, n = 3}, n = 1},
                 "len", 6, n = 4},
                await(r:lcs("k1", "k2", {idx = true, minmatchlen = 4,
                                         withmatchlen = true})))
    -- bitfield: redis-py's BitFieldOperation, execute awaited
    local bf = r:bitfield("bf")
    assert.equal(bf, bf:set("u8", 0, 255):get("u8", 0):incrby("u8", 0, 10))
    assert.same({0, 255, 9, nil, 15, n = 5},
                await(bf:incrby("u8", 0, 300, {overflow = "FAIL"})
                        :incrby("u4", "#1", 100, {overflow = "sat"})
                        :execute()))
    -- execute reset the builder (u4 #1 is the high half of the byte)
    assert.same({15, n = 1}, await(bf:get("u8", 0):execute()))
    assert.same({255, n = 1}, await(r:bitfield("bf2",
      {default_overflow = "SAT"}):incrby("u8", 0, 300):execute()))
    assert.same({n = 0}, await(r:bitfield("bf3"):execute()))
    assert.equal("bad argument #4 to 'BITFIELD' (string or number "
                 .. "expected, got nil)",
                 err_of(r:bitfield("bf"):get("u8", nil):execute()))
    assert.has_error(function() r:bitfield("bf"):overflow(nil) end,
      "bad argument #1 to 'overflow' (string expected, got no value)")
    -- dump and restore
    await(r:set("k", "hello\0world"))
    await(r:expire("k", 100))
    local payload = await(r:dump("k"))
    assert.is_string(payload)
    assert.is_nil(await(r:dump("missing")))
    assert.equal("OK", await(r:restore("copy", 0, payload)))
    assert.equal("hello\0world", await(r:get("copy")))
    assert.equal(-1, await(r:ttl("copy")))
    local e = err_of(r:restore("copy", 0, payload))
    assert.is_true(asyncio.iserror(e, redis.ResponseError), tostring(e))
    assert.equal("BUSYKEY Target key name already exists.", e.message)
    assert.equal("OK", await(r:restore("copy", 50000, payload,
      {replace = true, idletime = 1000})))
    assert.is_true(await(r:ttl("copy")) > 40)
    assert.is_true(await(r:object("IDLETIME", "copy")) >= 1000)
    local at = (await(r:time())) * 1000 + 60000
    assert.equal("OK", await(r:restore("copy2", at, payload,
                                       {absttl = true})))
    assert.is_true(await(r:pttl("copy2")) > 50000)
    data_error("idletimemust be an integer",
               r:restore("copy3", 0, payload, {idletime = "soon"}))
    data_error("frequency must be an integer",
               r:restore("copy3", 0, payload, {frequency = "1.0"}))
    -- as Python's int(): a float is truncated, a string of digits read
    assert.equal("OK", await(r:restore("copy3", 0, payload,
                                       {frequency = 1.5, replace = true})))
    assert.equal("OK", await(r:restore("copy3", 0, payload,
                                       {idletime = " 7 ", replace = true})))
    assert.is_true(await(r:object("IDLETIME", "copy3")) >= 7)
    await(r:delete("copy3"))
    assert.equal(0, await(r:exists("copy3")))
    assert.has_error(function() r:restore("copy3", 0, payload, {idle = 1}) end,
                     "bad argument #4 to 'restore' (unknown option 'idle')")
    -- sintercard
    await(r:sadd("s1", "a", "b", "c"))
    await(r:sadd("s2", "b", "c", "d"))
    assert.equal(2, await(r:sintercard(2, {"s1", "s2"})))
    assert.equal(1, await(r:sintercard(2, {"s1", "s2"}, 1)))
    assert.equal(0, await(r:sintercard(2, {"s1", "none"})))
  end))

  it("xpending_range: the pending entries, as redis-py's dicts",
     aspec.async(function()
    local r <close> = client()
    local id1 = await(r:xadd("st", {f = "1"}))
    local id2 = await(r:xadd("st", {f = "2"}))
    await(r:xgroup_create("st", "g", "0"))
    await(r:xreadgroup("g", "alice", {st = ">"}, {count = 1}))
    await(r:xreadgroup("g", "bob", {st = ">"}))
    local rows = await(r:xpending_range("st", "g", "-", "+", 10))
    assert.equal(2, #rows)
    assert.same({id1, "alice", 1}, {rows[1].message_id, rows[1].consumer,
                                    rows[1].times_delivered})
    assert.same({id2, "bob", 1}, {rows[2].message_id, rows[2].consumer,
                                  rows[2].times_delivered})
    assert.equal("integer", math.type(rows[1].time_since_delivered))
    rows = await(r:xpending_range("st", "g", "-", "+", 10,
                                  {consumername = "bob"}))
    assert.same({id2}, {rows[1].message_id, rows[2]})
    assert.same({}, await(r:xpending_range("st", "g", "-", "+", 10,
                                           {idle = 3600000})))
    -- none of min, max and count: xpending's summary, as redis-py's
    assert.same({pending = 2, min = id1, max = id2,
                  consumers = {{name = "alice", pending = 1},
                               {name = "bob", pending = 1}}},
                await(r:xpending_range("st", "g")))
    data_error("if XPENDING is provided with idle time or consumername, "
               .. "it must be provided with min, max and count parameters",
               r:xpending_range("st", "g", nil, nil, nil, {idle = 1}))
    data_error("XPENDING must be provided with min, max and count "
               .. "parameters, or none of them.",
               r:xpending_range("st", "g", "-", "+"))
    data_error("XPENDING idle must be a integer >= 0",
               r:xpending_range("st", "g", "-", "+", 1, {idle = -1}))
    data_error("XPENDING count must be a integer >= 0",
               r:xpending_range("st", "g", "-", "+", -1))
  end))

  it("the new methods queue on pipelines and transactions, their "
     .. "replies converted", aspec.async(function()
    local r <close> = client()
    sicily(r)
    await(r:zadd("a", {x = 1, y = 2}))
    await(r:rpush("l", "a", "b"))
    for _, transaction in ipairs{false, true} do
      local p = r:pipeline(transaction)
      assert.equal(p, p:geodist("Sicily", "Palermo", "Catania",
                                {unit = "km"}))
      p:geopos("Sicily", "Nowhere", "Catania")
      p:zunion({a = 2}, {withscores = true})
      -- a builder made on a pipeline queues its command there
      assert.equal(p, p:bitfield("bf"):set("u8", 0, 7):get("u8", 0)
                        :execute())
      p:lmpop(1, "l", {direction = "LEFT"})
      p:zmpop(1, {"a"}, {min = true})
      p:georadius("Sicily", 15, 37, 100, {unit = "km", withdist = true})
      assert.equal(7, #p)
      assert.same({166.2742, {nil, CATANIA, n = 2},
                   {{"x", 2.0}, {"y", 4.0}}, {0, 7, n = 2},
                   {"l", {"a", n = 1}, n = 2}, {"a", {{"x", 1.0}}},
                   {{"Catania", 56.4413}}, n = 7},
                  await(p:execute()))
      await(r:lpush("l", "a"))
      await(r:zadd("a", {x = 1}))
      await(r:delete("bf"))
    end
    -- blocking ones, outside a transaction, on a connection of their own
    local p = r:pipeline(false)
    p:blmpop(1, 1, "l", {direction = "RIGHT"}):bzmpop(1, 1, {"a"},
                                                      {max = true})
    assert.same({{"l", {"b", n = 1}, n = 2}, {"a", {{"y", 2.0}}}, n = 2},
                await(p:execute()))
    -- a DataError raises as the command is queued
    p = r:pipeline()
    local ok, e = pcall(p.zmpop, p, 1, {"a"}, {})
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, redis.DataError), tostring(e))
    assert.equal(0, #p)
  end))

  --- A fake Redis for the pops of a cancelled BLMPOP or BZMPOP: it
  -- blocks them, answers CLIENT UNBLOCK with 1 and then sends the
  -- blocked command `popped` (elements Redis popped just before), and
  -- records the commands that put things back. -> {port, blocked (an
  -- Event), restored (a list of argv), close}.
  local function fake_redis(popped)
    local srv = {blocked = asyncio.Event(), restored = {}}
    local writers, nconns = {}, 0
    local function encode(v)
      if math.type(v) == "integer" then return ":" .. v .. "\r\n" end
      if type(v) == "string" then
        return "$" .. #v .. "\r\n" .. v .. "\r\n"
      end
      local out = {"*" .. #v .. "\r\n"}
      for _, x in ipairs(v) do out[#out + 1] = encode(x) end
      return table.concat(out)
    end
    local read_command = async(function(rd)
      local line = await(rd:readline())
      if line == "" then return nil end
      local argv = {}
      for i = 1, tonumber(line:match("^%*(%d+)")) do
        local len = tonumber(await(rd:readline()):match("^%$(%d+)"))
        argv[i] = await(rd:readexactly(len + 2)):sub(1, len)
      end
      return argv
    end)
    local server = await(asyncio.start_server(async(function(rd, wr)
      nconns = nconns + 1
      local id = nconns
      writers[id] = wr
      while true do
        local argv = await(read_command(rd))
        if argv == nil then break end
        local name = argv[1]:upper()
        if name == "CLIENT" and argv[2]:upper() == "ID" then
          wr:write(encode(id))
        elseif name == "CLIENT" and argv[2]:upper() == "UNBLOCK" then
          wr:write(encode(1))
          writers[tonumber(argv[3])]:write(encode(popped))
        elseif name == "BLMPOP" or name == "BZMPOP" then
          srv.blocked:set()
        elseif name == "LPUSH" or name == "RPUSH" or name == "ZADD" then
          srv.restored[#srv.restored + 1] = argv
          wr:write(encode(#argv - 2))
        else
          wr:write("+PONG\r\n")
        end
      end
      wr:close()
    end), "127.0.0.1", 0))
    srv.port = server.sockets[1].port
    srv.close = async(function()
      server:close()
      await(server:wait_closed())
    end)
    return srv
  end

  it("a cancelled BLMPOP or BZMPOP puts back what Redis popped for it, "
     .. "in order, at the end it came from", aspec.async(function()
    for _, case in ipairs{
        {{"BLMPOP", 0, 2, "none", "q", "LEFT", "COUNT", 2},
         {"q", {"x", "y"}}, {"LPUSH", "q", "y", "x"}},
        {{"blmpop", 0, 1, "q", "right", "COUNT", 3},
         {"q", {"z", "y", "x"}}, {"RPUSH", "q", "x", "y", "z"}},
        {{"BZMPOP", 0, 1, "z", "MIN", "COUNT", 2},
         {"z", {{"m1", "1"}, {"m2", "2.5"}}},
         {"ZADD", "z", "1", "m1", "2.5", "m2"}}} do
      for _, in_pipeline in ipairs{false, true} do
        local srv = fake_redis(case[2])
        local r = redis.Redis{port = srv.port}
        assert.is_true(await(r:ping())) -- CLIENT UNBLOCK goes there
        local aw
        if in_pipeline then
          aw = r:pipeline(false):execute_command(table.unpack(case[1]))
                :execute()
        else
          aw = r:execute_command(table.unpack(case[1]))
        end
        local t = asyncio.create_task(aw)
        await(asyncio.wait_for(srv.blocked:wait(), 10))
        t:cancel()
        assert.is_true(asyncio.iserror(err_of(t), asyncio.CancelledError))
        await(r:close()) -- waits until it is put back
        assert.same({case[3]}, srv.restored)
        await(srv.close())
      end
    end
  end))
end)
