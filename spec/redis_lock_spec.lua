-- spec/redis_lock_spec.lua: redis.Lock (asyncio.redis.lock), redis-py's
-- lock shared through a real redis-server: holders, blocking and its
-- time bound, expiry taken over by another holder, extend and reacquire,
-- the async-with form, errors.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local h = dofile("spec/helpers.lua")
local async, await = asyncio.async, asyncio.await
local iserror = asyncio.iserror

local function client()
  return await(servers.client(6))
end

--- Awaits aw, which must raise LockNotOwnedError for the method `what`.
local function not_owned(aw, what)
  local e = h.await_error(aw)
  assert.is_true(iserror(e, redis.LockNotOwnedError))
  assert.is_true(iserror(e, redis.LockError))
  assert.is_true(iserror(e, asyncio.ValueError)) -- as redis-py's
  assert.equal(("Cannot %s a lock that's no longer owned"):format(what),
               e.message)
end

--- Asserts that key's time to live is in (lo, hi] milliseconds.
local function ttl_in(r, key, lo, hi)
  local ttl = await(r:pttl(key))
  assert.is_true(ttl > lo and ttl <= hi, tostring(ttl))
end

describe("redis.Lock", function()
  teardown(servers.stop)

  it("one holder at a time: acquire, locked, owned, release; a second "
     .. "holder gets false without blocking", aspec.async(function()
    local r <close> = client()
    local a, b = r:lock("res"), r:lock("res")
    assert.is_false(await(a:locked()))
    assert.is_true(await(a:acquire()))
    assert.is_true(await(a:locked()))
    assert.is_true(await(a:owned()))
    assert.is_false(await(b:owned()))
    assert.is_false(await(b:acquire{blocking = false}))
    await(a:release())
    assert.is_false(await(a:locked()))
    assert.is_true(await(b:acquire{blocking = false}))
    await(b:release())
    local e = h.error_of(a.release, a)
    assert.is_true(iserror(e, redis.LockError))
    assert.equal("Cannot release an unlocked lock", e.message)
    assert.is_true(await(a:acquire{token = "mine"}))
    assert.equal("mine", await(r:get("res")))
    await(a:release())
  end))

  it("a blocked acquire gets the lock once its holder releases it, and "
     .. "gives up past blocking_timeout", aspec.async(function()
    local r <close> = client()
    local a = r:lock("res2")
    local b = r:lock("res2", {sleep = 0.01})
    assert.is_true(await(a:acquire()))
    local events = {}
    local waiter = asyncio.create_task(async(function()
      local got = await(b:acquire())
      events[#events + 1] = "b acquired"
      return got
    end)())
    for _ = 1, 5 do await(asyncio.sleep(0.01)) end
    assert.same({}, events) -- still held by a
    events[#events + 1] = "a releases"
    await(a:release())
    assert.is_true(await(waiter))
    assert.same({"a releases", "b acquired"}, events)
    assert.is_true(await(b:owned()))
    -- its sleep (0.1) would pass the bound: false at once, as redis-py
    assert.is_false(await(a:acquire{blocking_timeout = 0.05}))
    local c = r:lock("res2", {sleep = 0.01, blocking_timeout = 0.05})
    assert.is_false(await(c:acquire())) -- after a few tries
    await(b:release())
  end))

  it("a holder whose lock expired and was taken can neither release nor "
     .. "extend it: LockNotOwnedError", aspec.async(function()
    local r <close> = client()
    local a = r:lock("res3", {timeout = 60})
    assert.is_true(await(a:acquire()))
    await(r:delete("res3")) -- as its timeout would
    local b = r:lock("res3", {timeout = 60})
    assert.is_true(await(b:acquire()))
    not_owned(a:extend(5), "extend")
    not_owned(a:release(), "release")
    assert.is_true(await(b:owned())) -- b's lock was left alone
    await(b:release())
  end))

  it("extend adds to the time to live or replaces it; reacquire resets "
     .. "it to the timeout; both return true, release nothing",
     aspec.async(function()
    local r <close> = client()
    local a = r:lock("res4", {timeout = 10})
    assert.is_true(await(a:acquire()))
    ttl_in(r, "res4", 9000, 10000)
    assert.is_true(await(a:extend(5))) -- true, as redis-py's
    ttl_in(r, "res4", 14000, 15000)
    assert.is_true(await(a:extend(3, {replace_ttl = true})))
    ttl_in(r, "res4", 2000, 3000)
    assert.is_true(await(a:reacquire()))
    ttl_in(r, "res4", 9000, 10000)
    assert.is_nil(await(a:release())) -- None in redis-py
    local zero = r:lock("res7", {timeout = 0}) -- no expiry, as redis-py
    assert.is_true(await(zero:acquire()))
    assert.equal(-1, await(r:pttl("res7")))
    await(zero:release())
    local forever = r:lock("res5")
    assert.is_true(await(forever:acquire()))
    assert.equal(-1, await(r:pttl("res5")))
    assert.equal("Cannot extend a lock with no timeout",
                 h.error_of(forever.extend, forever, 1).message)
    assert.equal("Cannot reacquire a lock with no timeout",
                 h.error_of(forever.reacquire, forever).message)
    await(forever:release())
    assert.equal("Cannot extend an unlocked lock",
                 h.error_of(forever.extend, forever, 1).message)
  end))

  it("await(lock) in a <close> variable is async with lock: released "
     .. "however the block ends; LockError when not had in time",
     aspec.async(function()
    local r <close> = client()
    local lock = r:lock("res6", {blocking_timeout = 0.05, sleep = 0.01})
    do
      local l <close> = await(lock)
      assert.equal(lock, l)
      assert.is_true(await(lock:owned()))
    end
    assert.is_false(await(lock:locked()))
    local ok, err = pcall(function()
      local _ <close> = await(lock)
      error("inside", 0)
    end)
    assert.same({false, "inside"}, {ok, err})
    assert.is_false(await(lock:locked()))
    local other = r:lock("res6")
    assert.is_true(await(other:acquire()))
    local e = h.await_error(async(function()
      local _ <close> = await(lock)
    end)())
    assert.is_true(iserror(e, redis.LockError))
    assert.is_true(iserror(e, asyncio.ValueError))
    assert.equal("Unable to acquire lock within the time specified",
                 e.message)
    await(other:release())
    -- released inside the block: its end raises, as redis-py's __aexit__
    e = h.await_error(async(function()
      local _ <close> = await(lock)
      await(lock:release())
    end)())
    assert.is_true(iserror(e, redis.LockError))
    assert.equal("Cannot release an unlocked lock", e.message)
    assert.is_false(await(lock:locked()))
  end))

  it("checks its arguments", aspec.async(function()
    local r <close> = client()
    assert.matches("bad argument #1 to 'lock' %(string expected",
                   tostring(h.error_of(r.lock, r, 5)))
    assert.matches("unknown option 'timout'",
                   tostring(h.error_of(r.lock, r, "x", {timout = 1})))
    assert.matches("option 'timeout': non%-negative number",
                   tostring(h.error_of(r.lock, r, "x", {timeout = -1})))
    local lock = r:lock("x")
    assert.matches("unknown option 'blocking_timout'", tostring(
      h.error_of(lock.acquire, lock, {blocking_timout = 1})))
    assert.equal('<redis.Lock name="x" not held>', tostring(lock))
  end))
end)
