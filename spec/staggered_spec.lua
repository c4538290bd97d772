-- asyncio.staggered.staggered_race (Python's asyncio.staggered), on the
-- virtual clock: when each attempt starts, who wins, what the others
-- see, and what the race returns.
local asyncio = require "asyncio"
local staggered = require "asyncio.staggered"
local assert = require "luassert"
local h = dofile("spec/helpers.lua")

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror
local vspec = h.vspec
local race = staggered.staggered_race

--- An attempt that logs its start time (relative to t0) in log, sleeps
-- `secs`, then returns `value` or raises `err`; a cancellation is logged
-- as "name cancelled" and let through.
local function attempt(log, t0, name, secs, value, err)
  return async(function()
    local loop = asyncio.get_running_loop()
    log[#log + 1] = ("%s starts at %g"):format(name, loop:time() - t0)
    local ok, e = pcall(await, asyncio.sleep(secs))
    if not ok then
      log[#log + 1] = name .. " cancelled"
      error(e, 0)
    end
    if err then error(err, 0) end
    return value
  end)
end

describe("staggered_race", function()
  it("starts the next attempt after the delay; the first to return wins "
     .. "and the others are cancelled", vspec(function()
    local loop = asyncio.get_running_loop()
    local t0, log = loop:time(), {}
    local res, i, excs = await(race({
      attempt(log, t0, "a", 10, "A"),
      attempt(log, t0, "b", 0.5, "B"),
      attempt(log, t0, "c", 0.1, "C"),
    }, 0.25))
    assert.equal("C", res)
    assert.equal(3, i)
    -- c started at 0.5 and won at 0.6; a and b were cancelled
    assert.same({"a starts at 0", "b starts at 0.25", "c starts at 0.5",
                 "a cancelled", "b cancelled"}, log)
    assert.near(0.6, loop:time() - t0, 1e-9)
    assert.equal(3, excs.n)
    assert.is_true(iserror(excs[1], asyncio.CancelledError))
    assert.is_true(iserror(excs[2], asyncio.CancelledError))
    assert.is_nil(excs[3])
  end))

  it("a failure starts the next attempt at once", vspec(function()
    local loop = asyncio.get_running_loop()
    local t0, log = loop:time(), {}
    local refused = asyncio.ConnectionRefusedError("refused")
    local res, i, excs = await(race({
      attempt(log, t0, "a", 0.1, nil, refused),
      attempt(log, t0, "b", 0.2, "B"),
    }, 5))
    assert.equal("B", res)
    assert.equal(2, i)
    assert.same({"a starts at 0", "b starts at 0.1"}, log)
    assert.near(0.3, loop:time() - t0, 1e-9)
    assert.equal(2, excs.n)
    assert.equal(refused, excs[1])
    assert.is_nil(excs[2])
  end))

  it("a winner that returns at once leaves the rest unstarted",
     vspec(function()
    local started = 0
    local function count(v)
      return function() started = started + 1 return async(function()
        return v end)() end
    end
    local res, i, excs = await(race({count("x"), count("y")}, 0))
    assert.same({"x", 1, 1}, {res, i, excs.n})
    assert.equal(1, started)
  end))

  it("when every attempt fails: nil, nil and each error in order",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local t0, log = loop:time(), {}
    local e1, e2 = asyncio.OSError("one"), asyncio.ValueError("two")
    local res, i, excs = await(race({
      attempt(log, t0, "a", 1, nil, e1),
      attempt(log, t0, "b", 1, nil, e2),
    }, 0.5))
    assert.is_nil(res)
    assert.is_nil(i)
    assert.same({n = 2, e1, e2}, excs)
    assert.same({"a starts at 0", "b starts at 0.5"}, log)
    assert.near(1.5, loop:time() - t0, 1e-9)
  end))

  it("with no delay the attempts run one at a time", vspec(function()
    local loop = asyncio.get_running_loop()
    local t0, log = loop:time(), {}
    local res, i = await(race({
      attempt(log, t0, "a", 100, nil, asyncio.OSError("late")),
      attempt(log, t0, "b", 1, "B"),
    }))
    assert.same({"B", 2}, {res, i})
    assert.same({"a starts at 0", "b starts at 100"}, log)
  end))

  it("an empty list: nil, nil and no exceptions", vspec(function()
    local res, i, excs = await(race({}, 1))
    assert.same({nil, nil, {n = 0}}, {res, i, excs})
  end))

  it("a cancelled race cancels the running attempts and raises "
     .. "CancelledError", vspec(function()
    local loop = asyncio.get_running_loop()
    local t0, log = loop:time(), {}
    local t = asyncio.create_task(race({
      attempt(log, t0, "a", 10, "A"),
      attempt(log, t0, "b", 10, "B"),
      attempt(log, t0, "c", 10, "C"),
    }, 1))
    await(asyncio.sleep(1.5))
    t:cancel()
    local err = h.await_error(t)
    assert.is_true(iserror(err, asyncio.CancelledError))
    assert.is_true(t:cancelled())
    assert.same({"a starts at 0", "b starts at 1", "a cancelled",
                 "b cancelled"}, log)
    assert.equal(1, #asyncio.all_tasks())
  end))

  it("an attempt whose await finished in the winner's iteration is "
     .. "cancelled, not returned", vspec(function()
    local loop = asyncio.get_running_loop()
    local a, b = loop:create_future(), loop:create_future()
    local outcomes = {}
    local function wait_on(name, fut)
      return async(function()
        local ok, v = pcall(await, fut)
        outcomes[#outcomes + 1] = name .. (ok and " returned" or
                                           " cancelled")
        if not ok then error(v, 0) end
        return v
      end)
    end
    local t = asyncio.create_task(race({wait_on("a", a), wait_on("b", b)},
                                       0))
    await(asyncio.sleep(0.5)) -- both are waiting
    a:set_result("A")
    b:set_result("B")
    local res, i, excs = await(t)
    assert.same({"A", 1}, {res, i})
    assert.same({"a returned", "b cancelled"}, outcomes)
    assert.is_true(iserror(excs[2], asyncio.CancelledError))
  end))

  it("checks its arguments", vspec(function()
    local err = h.await_error(race("x", 1))
    assert.matches("bad argument #1 to 'staggered_race' %(table expected, "
                   .. "got string%)", tostring(err))
    err = h.await_error(race({function() end, 42}, 1))
    assert.matches("function expected at coro_fns%[2%], got number",
                   tostring(err))
    err = h.await_error(race({}, "soon"))
    assert.matches("bad argument #2 to 'staggered_race' %(number "
                   .. "expected, got string%)", tostring(err))
  end))
end)
