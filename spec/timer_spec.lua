-- spec/timer_spec.lua: the timer heap, call_later/call_at and TimerHandle
-- (bindings/core/timer.c, bindings/core/handle.c), semantics items A5-A10.
local asyncio = require "asyncio"
local h = dofile("spec/helpers.lua")

describe("timers", function()
  local loop
  h.each_virtual_loop(function(l) loop = l end)

  -- Runs the loop until the virtual clock reaches `t_end` (a stop()
  -- registered last among the timers due at t_end).
  local function run_until(t_end)
    loop:call_at(t_end, loop.stop, loop)
    loop:run_forever()
    assert.equal(t_end, loop:time())
  end

  it("A8 twelve call_at(T) run in registration order", function()
    local order, times = {}, {}
    for i = 1, 12 do
      loop:call_at(5, function()
        order[#order + 1] = i
        times[#times + 1] = loop:time()
      end)
    end
    run_until(6)
    assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, order)
    assert.same({5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, times)
  end)

  it("A8 ties stay in registration order when mixed with other deadlines",
     function()
    local order = {}
    local function log(x) order[#order + 1] = x end
    loop:call_at(2, log, "2a")
    loop:call_at(1, log, "1a")
    loop:call_at(2, log, "2b")
    loop:call_later(1, log, "1b")
    loop:call_at(3, log, "3a")
    loop:call_at(1, log, "1c")
    loop:call_at(2, log, "2c")
    run_until(4)
    assert.same({"1a", "1b", "1c", "2a", "2b", "2c", "3a"}, order)
  end)

  it("A7 deadlines in the past still sort by deadline", function()
    local order = {}
    local function log(x) order[#order + 1] = x end
    loop:call_at(10, function()
      loop:call_later(-1, log, "a")
      loop:call_later(-2, log, "b")
      loop:call_at(5, log, "c")
      loop:call_at(0, log, "d")
    end)
    run_until(11)
    assert.same({"d", "c", "b", "a"}, order)
  end)

  it("A5 call_later passes its arguments and fires at time() + delay",
     function()
    local calls = {}
    loop:call_later(0.5, function(...)
      calls[#calls + 1] = {loop:time(), select("#", ...), ...}
    end, 1, nil, "x")
    run_until(1)
    assert.same({{0.5, 3, 1, nil, "x"}}, calls)
  end)

  it("A5 TimerHandle:when() is time() + delay; call_at's when() is its "
     .. "deadline", function()
    loop:call_at(2, function()
      local h = loop:call_later(1.5, function() end)
      assert.equal(3.5, h:when())
      h:cancel()
    end)
    local at = loop:call_at(7.25, function() end)
    assert.equal(7.25, at:when())
    assert.equal(0.25, loop:call_later(0.25, function() end):when())
    run_until(8)
  end)

  it("A4 cancel() makes cancelled() true; cancelling twice is harmless",
     function()
    local h = loop:call_later(1, function() end)
    assert.is_false(h:cancelled())
    h:cancel()
    assert.is_true(h:cancelled())
    h:cancel()
    assert.is_true(h:cancelled())
  end)

  it("A4 cancel() lets go of the callback and its arguments at once",
     function()
    local gone = setmetatable({}, {__mode = "k"})
    local fn, arg = function() end, {}
    gone[fn], gone[arg] = true, true
    local timer = loop:call_later(1, fn, arg)
    local soon = loop:call_soon(fn, arg)
    fn, arg = nil, nil
    timer:cancel()
    soon:cancel()
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(gone))
  end)

  it("A10 cancelled timers never run and do not count as live timers",
     function()
    local ran = {}
    local handles = {}
    for i = 1, 5 do
      handles[i] = loop:call_later(i, function() ran[#ran + 1] = i end)
    end
    assert.equal(5, loop:_counts().timers)
    handles[1]:cancel()
    handles[4]:cancel()
    assert.equal(3, loop:_counts().timers)
    handles[4]:cancel()
    assert.equal(3, loop:_counts().timers)
    run_until(6)
    assert.same({2, 3, 5}, ran)
    assert.equal(0, loop:_counts().timers)
  end)

  it("A10 a timer cancelled by another due in the same iteration never "
     .. "runs", function()
    local ran = {}
    local b
    loop:call_at(1, function()
      ran[#ran + 1] = "a"
      b:cancel()
    end)
    b = loop:call_at(1, function() ran[#ran + 1] = "b" end)
    loop:call_at(1, function() ran[#ran + 1] = "c" end)
    run_until(2)
    assert.same({"a", "c"}, ran)
  end)

  it("cancelling 1000 of 1500 timers keeps the survivors' order", function()
    local order, expected, handles = {}, {}, {}
    for i = 1, 1500 do
      local when = (i * 7919) % 13
      handles[i] = loop:call_at(when, function()
        order[#order + 1] = i
      end)
      if i % 3 == 0 then expected[#expected + 1] = {when, i} end
    end
    -- cancel from the middle outwards, so that compaction happens while
    -- both live and dead entries sit everywhere in the heap
    for k = 0, 749 do
      for _, i in ipairs{750 - k, 751 + k} do
        if i % 3 ~= 0 then handles[i]:cancel() end
      end
    end
    assert.equal(500, loop:_counts().timers)
    -- entries added after the compaction keep their place among ties
    for i = 1501, 1510 do
      loop:call_at(6, function() order[#order + 1] = i end)
      expected[#expected + 1] = {6, i}
    end
    table.sort(expected, function(a, b)
      if a[1] ~= b[1] then return a[1] < b[1] end
      return a[2] < b[2]
    end)
    run_until(13)
    local want = {}
    for k, e in ipairs(expected) do want[k] = e[2] end
    assert.equal(510, #order)
    assert.same(want, order)
    assert.equal(0, loop:_counts().timers)
  end)

  it("cancelled timers leave the heap once over 100 and more than half "
     .. "of it are dead, before their deadline", function()
    local handles, dead = {}, setmetatable({}, {__mode = "k"})
    for i = 1, 300 do handles[i] = loop:call_later(100 + i, print) end
    for i = 1, 300 do
      if i % 3 ~= 0 then
        handles[i]:cancel()
        dead[handles[i]] = true
        handles[i] = nil
      end
    end
    collectgarbage()
    collectgarbage()
    -- the 151st cancel compacted the heap (151 > 100, and > 300 / 2): only
    -- the 49 cancelled after it are still held, until they are popped
    local held = 0
    for _ in pairs(dead) do held = held + 1 end
    assert.equal(49, held)
    assert.equal(100, loop:_counts().timers)
  end)

  it("cancelling timers while they are due keeps the rest in order",
     function()
    local order, handles = {}, {}
    for i = 1, 300 do
      handles[i] = loop:call_at(1 + i % 3, function()
        order[#order + 1] = i
        -- each one cancels the next two of the same deadline
        for j = i + 3, i + 6, 3 do
          if handles[j] then handles[j]:cancel() end
        end
      end)
    end
    run_until(4)
    -- deadline 1 holds 3, 6, 9, ...; deadline 2 holds 1, 4, ...;
    -- deadline 3 holds 2, 5, ...: every third one of each survives
    local want = {}
    for _, first in ipairs{3, 1, 2} do
      for i = first, 300, 9 do want[#want + 1] = i end
    end
    assert.same(want, order)
  end)

  it("TimerHandles compare by when (<, <=, >, >=) and are equal as "
     .. "events.py's: same when, callback, arguments and cancelled state",
     function()
    local function f() end
    local function g() end
    local a, b = loop:call_at(5, f, 1, "x"), loop:call_at(5, f, 1, "x")
    local c = loop:call_at(6, f, 1, "x")
    assert.is_false(rawequal(a, b))
    assert.is_true(a == b)
    assert.is_true(a <= b and a >= b)
    assert.is_false(a < b or a > b)
    assert.is_true(a < c and a <= c and c > a and c >= a)
    assert.is_false(a == c)
    assert.is_false(a == loop:call_at(5, g, 1, "x"))  -- another callback
    assert.is_false(a == loop:call_at(5, f, 1, "y"))  -- another argument
    assert.is_false(a == loop:call_at(5, f, 1))       -- fewer arguments
    a:cancel()
    assert.is_false(a == b)       -- cancelled against not cancelled
    assert.is_true(a < c)         -- still ordered by when
    b:cancel()
    assert.is_true(a == b)        -- both dropped callback and arguments
    -- a plain Handle is only equal to itself and cannot be ordered
    local h1 = loop:call_soon(f)
    assert.is_true(h1 == h1)
    assert.is_false(h1 == loop:call_soon(f))
    assert.is_false(h1 == c)
    local ok, err = pcall(function() return h1 < c end)
    assert.is_false(ok)
    assert.matches("only TimerHandles are ordered", err)
    for _, t in ipairs{b, c, h1} do t:cancel() end
  end)

  it("a Handle's repr hides its arguments outside debug mode (3.13)",
     function()
    local function cb() end
    local h1 = loop:call_soon(cb, "secret", 2)
    local t1 = loop:call_at(3, cb, "secret")
    assert.equal("<Handle cb()>", tostring(h1))
    assert.equal("<TimerHandle when=3.0 cb()>", tostring(t1))
    loop:set_debug(true)
    assert.equal("<Handle cb('secret', 2)>", tostring(h1))
    assert.equal("<TimerHandle when=3.0 cb('secret')>", tostring(t1))
    loop:set_debug(false)
    h1:cancel()
    t1:cancel()
    assert.equal("<Handle cancelled>", tostring(h1))
  end)

  it("call_later(math.huge) never fires and is not a live timer", function()
    local ran = 0
    local h = loop:call_later(math.huge, function() ran = ran + 1 end)
    assert.equal(math.huge, h:when())
    assert.equal(0, loop:_counts().timers)
    local later = 0
    loop:call_later(3, function() later = later + 1 end)
    run_until(4)
    assert.equal(0, ran)
    assert.equal(1, later)
    h:cancel()
    assert.is_true(h:cancelled())
  end)
end)
