-- spec/sleep_spec.lua: asyncio.sleep (bindings/core/timer.c), semantics
-- section E.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local raises = dofile("spec/helpers.lua").raises
local async, await = asyncio.async, asyncio.await

local iserror, CancelledError = asyncio.iserror, asyncio.CancelledError

describe("sleep", function()
  it("E75 sleep(0) yields exactly one iteration and returns its result",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local log = {}
    loop:call_soon(function()
      log[#log + 1] = "first"
      loop:call_soon(function() log[#log + 1] = "second" end)
    end)
    assert.equal("r", await(asyncio.sleep(0, "r")))
    assert.same({"first"}, log)
    assert.is_nil(await(asyncio.sleep(0)))
    assert.same({"first", "second"}, log)
    assert.equal(0, loop:time())
  end))

  it("E75 sleep(0, result) keeps a table result as is",
     aspec.async({clock = "virtual"}, function()
    local t = {}
    assert.equal(t, await(asyncio.sleep(0, t)))
  end))

  it("E76 two sleeps of 0.05 end at virtual time 0.1 with their result",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    assert.equal("yeah", await(asyncio.sleep(0.05, "yeah")))
    assert.equal(0.05, loop:time())
    assert.equal("yeah", await(asyncio.sleep(0.05, "yeah")))
    assert.equal(0.1, loop:time())
  end))

  it("E77 a negative delay behaves as sleep(0)",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    await(asyncio.sleep(1))
    local ran = 0
    loop:call_soon(function() ran = ran + 1 end)
    assert.equal("neg", await(asyncio.sleep(-5, "neg")))
    assert.equal(1, ran)
    assert.equal(1, loop:time())
    assert.equal(0, loop:_counts().timers)
  end))

  it("E78 sleep(NaN) raises ValueError",
     aspec.async({clock = "virtual"}, function()
    raises(asyncio.ValueError, await, asyncio.sleep(0 / 0))
    assert.equal(0, asyncio.get_running_loop():time())
  end))

  it("E78 sleep of a non-number raises TypeError",
     aspec.async({clock = "virtual"}, function()
    raises(asyncio.TypeError, await, asyncio.sleep("1"))
  end))

  it("E79 sleeps of 0.1 and 0.15 started together are both done at 0.15",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local ends = {}
    local function sleeper(d)
      await(asyncio.sleep(d))
      ends[#ends + 1] = {d, loop:time()}
    end
    local a = asyncio.create_task(async(sleeper)(0.15))
    local b = asyncio.create_task(async(sleeper)(0.1))
    await(a)
    await(b)
    assert.same({{0.1, 0.1}, {0.15, 0.15}}, ends)
    assert.equal(0.15, loop:time())
  end))

  it("E80 cancelling a sleeping task cancels the sleep's timer", function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    local t = loop:create_task(async(function()
      await(asyncio.sleep(10))
    end)())
    loop:stop()
    loop:run_forever()
    assert.equal(1, loop:_counts().timers)
    t:cancel()
    assert.equal(0, loop:_counts().timers)
    raises(CancelledError, loop.run_until_complete, loop, t)
    assert.equal(0, loop:time())
    loop:close()
    assert.same(0, loop:_counts().handles)
  end)

  it("E80 a cancelled sleep does not wake the task again later",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local wakes = 0
    local t = asyncio.create_task(async(function()
      local ok = pcall(await, asyncio.sleep(1))
      wakes = wakes + 1
      assert(not ok)
      await(asyncio.sleep(5))
      wakes = wakes + 1
    end)())
    await(asyncio.sleep(0.5))
    t:cancel()
    await(t)
    assert.equal(2, wakes)
    assert.equal(5.5, loop:time())
  end))

  it("a task that ended is kept while its cancelled sleeps are in the "
     .. "heap, and let go once they left it",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local seen = setmetatable({}, {__mode = "k"})
    local t = asyncio.create_task(async(function()
      pcall(await, asyncio.sleep(100)) -- cancelled: a dead entry at 100
      pcall(await, asyncio.sleep(50))  -- cancelled: a dead entry at 50
      return "done"
    end)())
    seen[t] = true
    for _ = 1, 2 do
      await(asyncio.sleep(0))
      t:cancel()
    end
    assert.equal("done", await(t))
    t = nil
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(next(seen)) -- the heap still points at it
    await(asyncio.sleep(60))      -- the entry at 50 leaves the heap
    collectgarbage()
    assert.is_not_nil(next(seen))
    await(asyncio.sleep(60))      -- the entry at 100 too
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(seen))
    assert.equal(120, loop:time())
  end))

  it("E81 sleep(math.huge) never fires and does not stop the loop",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local t = asyncio.create_task(async(function()
      await(asyncio.sleep(math.huge))
    end)())
    local ticks = 0
    for _ = 1, 3 do
      await(asyncio.sleep(1))
      ticks = ticks + 1
    end
    assert.equal(3, ticks)
    assert.is_false(t:done())
    assert.equal(3, loop:time())
    t:cancel()
    local ok, e = pcall(await, t)
    assert.is_false(ok)
    assert.is_true(iserror(e, CancelledError))
    assert.equal(3, loop:time())
  end))

  it("E81 a huge finite sleep is cancelled on time",
     aspec.async({clock = "virtual"}, function()
    local loop = asyncio.get_running_loop()
    local t = asyncio.create_task(async(function()
      await(asyncio.sleep(1e300))
    end)())
    loop:call_later(2, function() t:cancel() end)
    local ok = pcall(await, t)
    assert.is_false(ok)
    assert.is_true(t:cancelled())
    assert.equal(2, loop:time())
  end))

  it("E81 on the real clock, huge sleeps do not overflow the poll timer",
     function()
    local loop = asyncio.new_event_loop()
    local tasks = {}
    for _, d in ipairs{math.huge, 1e300, 2 ^ 63} do
      tasks[#tasks + 1] = loop:create_task(async(function()
        await(asyncio.sleep(d))
      end)())
    end
    local start = loop:time()
    loop:call_later(0.02, function()
      for _, t in ipairs(tasks) do t:cancel() end
    end)
    for _, t in ipairs(tasks) do
      raises(CancelledError, loop.run_until_complete, loop, t)
    end
    assert.is_true(loop:time() - start >= 0.02)
    loop:close()
    assert.same(0, loop:_counts().handles)
  end)

  it("sleep returns a Coroutine object and needs no loop until awaited",
     function()
    require("asyncio.core")._unset_event_loop()
    local c = asyncio.sleep(1)
    assert.is_true(asyncio.iscoroutine(c))
    c:close()
  end)
end)
