-- spec/barrier_spec.lua: asyncio.Barrier (lua/asyncio/locks.lua),
-- semantics section R.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, vspec = h.await_error, h.vspec

local iserror = asyncio.iserror
local BrokenBarrierError, CancelledError, ValueError, RuntimeError =
  asyncio.BrokenBarrierError, asyncio.CancelledError, asyncio.ValueError,
  asyncio.RuntimeError
local sleep, create_task, gather = asyncio.sleep, asyncio.create_task,
  asyncio.gather

--- Runs n tasks of coro_fn() and gathers them; returns the results list.
local function gather_tasks(n, coro_fn)
  local tasks = {}
  for i = 1, n do tasks[i] = create_task(coro_fn()) end
  return await(gather(table.unpack(tasks))), tasks
end

local function count(list, value)
  local n = 0
  for _, v in ipairs(list) do
    if v == value then n = n + 1 end
  end
  return n
end

local function sorted(list)
  local copy = {table.unpack(list)}
  table.sort(copy)
  return copy
end

--- One of `n` parties: passes `barrier` twice, except that the party
-- with index n // 2 raises after the first pass and then aborts the
-- barrier. Counts passes in counts.passed and BrokenBarrierErrors in
-- counts.broken.
local function pass_twice_or_abort(barrier, n, counts)
  local ok, err = pcall(function()
    local i = await(barrier:wait())
    if i == n // 2 then error(RuntimeError("boom")) end
    await(barrier:wait())
    counts.passed = counts.passed + 1
  end)
  if ok then return end
  if iserror(err, BrokenBarrierError) then
    counts.broken = counts.broken + 1
  elseif iserror(err, RuntimeError) then
    await(barrier:abort())
  else
    error(err, 0)
  end
end

describe("Barrier", function()
  it("R218 Barrier(0) and Barrier(-4) raise ValueError", function()
    for _, n in ipairs{0, -4} do
      local ok, err = pcall(asyncio.Barrier, n)
      assert.is_false(ok)
      assert.is_true(iserror(err, ValueError), tostring(err))
      assert.equal("parties must be > 0", err.message)
    end
    local ok, err = pcall(asyncio.Barrier, "3")
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'Barrier'", err)
  end)

  it("R219 the N-th wait releases everybody, each with a distinct index",
    vspec(function()
      local barrier = asyncio.Barrier(3)
      local results = {}
      gather_tasks(3, async(function()
        local i = await(barrier:wait())
        results[#results + 1] = i
      end))
      assert.same({0, 1, 2}, sorted(results))
      assert.equal(0, barrier.n_waiting)
      assert.is_false(barrier.broken)
      assert.equal(3, barrier.parties)
    end))

  it("R219 twice through the barrier, the second indices are distinct too",
    vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      local results1, results2 = {}, {}
      local res = gather_tasks(n, async(function()
        await(barrier:wait())
        results1[#results1 + 1] = true
        local i = await(barrier:wait())
        results2[#results2 + 1] = true
        return i
      end))
      assert.equal(n, #results1)
      assert.equal(n, #results2)
      assert.same({0, 1, 2, 3, 4}, sorted(res))
      assert.equal(0, barrier.n_waiting)
      assert.is_false(barrier.broken)
    end))

  it("R220 Barrier(1): wait returns 0 at once, every time", vspec(function()
    local barrier = asyncio.Barrier(1)
    local loop = asyncio.get_running_loop()
    local ran = false
    loop:call_soon(function() ran = true end)
    assert.equal(0, await(barrier:wait()))
    assert.equal(0, await(barrier:wait()))
    assert.is_false(ran)
    local t1 = create_task(barrier:wait())
    await(sleep(0))
    assert.equal(0, barrier.n_waiting)
    local t2 = create_task(barrier:wait())
    await(sleep(0))
    assert.equal(t1:result(), t2:result())
    assert.equal(0, barrier.n_waiting)
    assert.is_false(barrier.broken)
  end))

  it("R220 n_waiting counts the tasks parked while filling", vspec(function()
    local barrier = asyncio.Barrier(3)
    local t1 = create_task(barrier:wait())
    await(sleep(0))
    assert.equal(1, barrier.n_waiting)
    assert.equal("<asyncio.Barrier [filling, waiters:1/3]>",
                 tostring(barrier))
    local t2 = create_task(barrier:wait())
    await(sleep(0))
    assert.equal(2, barrier.n_waiting)
    local t3 = create_task(barrier:wait())
    await(sleep(0))
    await(asyncio.wait({t1, t2, t3}))
    assert.equal(0, barrier.n_waiting)
    assert.is_false(barrier.broken)
  end))

  it("R220 tostring names the states: filling, draining, resetting, broken",
    vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      assert.equal("<asyncio.Barrier [filling, waiters:0/5]>",
                   tostring(barrier))
      local waiters = {}
      local function add(k)
        for _ = 1, k do
          waiters[#waiters + 1] = create_task(barrier:wait())
        end
      end
      add(2)
      await(sleep(0))
      assert.equal("<asyncio.Barrier [filling, waiters:2/5]>",
                   tostring(barrier))
      add(barrier.parties - barrier.n_waiting)
      await(sleep(0))
      assert.equal("<asyncio.Barrier [draining, waiters:0/5]>",
                   tostring(barrier))
      add(2)
      await(sleep(0))
      await(barrier:reset())
      assert.matches("^<asyncio.Barrier %[resetting, ", tostring(barrier))
      add(2)
      await(sleep(0))
      await(barrier:abort())
      assert.equal("<asyncio.Barrier [broken]>", tostring(barrier))
      assert.is_true(barrier.broken)
      waiters[#waiters + 1] = {return_exceptions = true}
      await(gather(table.unpack(waiters)))
    end))

  it("R221 tasks arriving while the barrier drains wait for the draining "
     .. "to end", vspec(function()
      local n, rewait = 5, 2
      local barrier = asyncio.Barrier(n)
      local nowaiting = asyncio.Barrier(n - rewait)
      local rewait_n = rewait
      local passed = 0
      gather_tasks(n, async(function()
        await(barrier:wait())
        if rewait_n > 0 then
          rewait_n = rewait_n - 1
          await(barrier:wait())
        else
          await(nowaiting:wait())
          await(barrier:wait())
        end
        passed = passed + 1
      end))
      assert.equal(n, passed)
      assert.equal(0, barrier.n_waiting)
    end))

  it("R221 all but the last leaver observe the draining state",
    vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      local results = {}
      gather_tasks(n, async(function()
        await(barrier:wait())
        results[#results + 1] = tostring(barrier):find("draining") ~= nil
      end))
      assert.equal(n, #results)
      assert.equal(n - 1, count(results, true))
      assert.is_false(results[n])
      assert.equal(0, barrier.n_waiting)
      assert.is_false(barrier.broken)
    end))

  it("R222 cancelling a parked waiter lowers n_waiting; the barrier still "
     .. "trips with N others", vspec(function()
      local barrier = asyncio.Barrier(3)
      local results = {}
      local coro = async(function()
        await(barrier:wait())
        results[#results + 1] = true
      end)
      local t1 = create_task(coro())
      await(sleep(0))
      assert.equal(1, barrier.n_waiting)
      local t2 = create_task(coro())
      await(sleep(0))
      assert.equal(2, barrier.n_waiting)
      t1:cancel()
      await(sleep(0))
      assert.equal(1, barrier.n_waiting)
      assert.is_true(iserror(await_error(t1), CancelledError))
      assert.is_true(t1:cancelled())
      local t3 = create_task(coro())
      await(sleep(0))
      assert.equal(2, barrier.n_waiting)
      local t4 = create_task(coro())
      await(gather(t2, t3, t4))
      assert.equal(3, #results)
      assert.equal(0, barrier.n_waiting)
      assert.is_false(barrier.broken)
    end))

  it("R222 a wait composes with wait_for: timed out, it leaves the count",
    vspec(function()
      local barrier = asyncio.Barrier(2)
      local err = await_error(asyncio.wait_for(barrier:wait(), 0.5))
      assert.is_true(iserror(err, asyncio.TimeoutError))
      assert.equal(0, barrier.n_waiting)
      local t = create_task(barrier:wait())
      await(sleep(0))
      assert.equal(1, barrier.n_waiting)
      assert.equal(1, await(barrier:wait()))
      assert.equal(0, await(t))
    end))

  it("R223 reset with nobody waiting is harmless", vspec(function()
    local barrier = asyncio.Barrier(1)
    create_task(barrier:reset())
    await(sleep(0))
    assert.equal(0, barrier.n_waiting)
    assert.is_false(barrier.broken)
    assert.equal(0, await(barrier:wait()))
  end))

  it("R223 reset: parked waiters get BrokenBarrierError; the barrier fills "
     .. "again, unbroken", vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      local results = {}
      local tasks = {}
      for i = 1, n - 1 do
        tasks[i] = create_task(async(function()
          local ok, err = pcall(await, barrier:wait())
          if not ok and iserror(err, BrokenBarrierError) then
            results[#results + 1] = err.message
          end
        end)())
      end
      await(sleep(0))
      create_task(barrier:reset())
      await(gather(table.unpack(tasks)))
      assert.equal(n - 1, #results)
      assert.equal(n - 1, count(results, "Abort or reset of barrier"))
      assert.equal(0, barrier.n_waiting)
      assert.is_nil(tostring(barrier):find("resetting"))
      assert.is_false(barrier.broken)
    end))

  it("R223 reset while half the tasks drain: the others get "
     .. "BrokenBarrierError", vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      local results1 = {}
      local rest = n // 2
      local out = 0
      gather_tasks(n, async(function()
        local ok, err = pcall(await, barrier:wait())
        if not ok then
          assert(iserror(err, BrokenBarrierError), tostring(err))
          results1[#results1 + 1] = true
          return
        end
        out = out + 1
        if out == n - rest then  -- `rest` tasks are still draining
          await(barrier:reset())
        end
      end))
      assert.equal(rest, #results1)
      assert.equal(0, barrier.n_waiting)
      assert.is_nil(tostring(barrier):find("resetting"))
      assert.is_false(barrier.broken)
    end))

  it("R223 after a reset the waiters can wait again and pass",
    vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      local results1, results2 = {}, {}
      local tasks = {}
      for i = 1, n - 1 do
        tasks[i] = create_task(async(function()
          local ok, err = pcall(await, barrier:wait())
          if not ok and iserror(err, BrokenBarrierError) then
            results1[#results1 + 1] = true
          end
          await(barrier:wait())
          results2[#results2 + 1] = true
        end)())
      end
      create_task(barrier:reset())
      await(sleep(0))
      create_task(async(function()
        await(barrier:wait())
        results2[#results2 + 1] = true
      end)())
      await(gather(table.unpack(tasks)))
      await(sleep(0))
      assert.is_false(barrier.broken)
      assert.equal(n - 1, #results1)
      assert.equal(n, #results2)
      assert.equal(0, barrier.n_waiting)
    end))

  it("R223 reset while the tasks drain, by the last one out: the second "
     .. "round still completes", vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      local results1, results2, results3 = 0, 0, 0
      local left = 0
      gather_tasks(n, async(function()
        await(barrier:wait())
        left = left + 1
        if left == n then
          await(barrier:reset())
          await(barrier:wait())
        else
          local ok = pcall(await, barrier:wait())
          if ok then
            results1 = results1 + 1
          else
            results2 = results2 + 1
          end
        end
        await(barrier:wait())
        results3 = results3 + 1
      end))
      assert.is_false(barrier.broken)
      assert.equal(n - 1, results1)
      assert.equal(0, results2)
      assert.equal(n, results3)
      assert.equal(0, barrier.n_waiting)
    end))

  it("R224 abort with nobody waiting breaks the barrier", vspec(function()
    local barrier = asyncio.Barrier(1)
    create_task(barrier:abort())
    await(sleep(0))
    assert.equal(0, barrier.n_waiting)
    assert.is_true(barrier.broken)
    local err = await_error(barrier:wait())
    assert.is_true(iserror(err, BrokenBarrierError))
    assert.is_true(iserror(err, RuntimeError))
    assert.equal("Barrier aborted", err.message)
  end))

  it("R224 abort while half the tasks drain and half wait again: all of "
     .. "them get BrokenBarrierError",
    vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      local results1, results2 = 0, 0
      local blocking = n // 2
      local passed = 0
      gather_tasks(n, async(function()
        local ok = pcall(await, barrier:wait())
        if not ok then
          results1 = results1 + 1
          return
        end
        passed = passed + 1
        if passed > blocking then
          await(barrier:abort())
        else
          local ok2, err = pcall(await, barrier:wait())
          if not ok2 and iserror(err, BrokenBarrierError) then
            results2 = results2 + 1
          end
        end
      end))
      assert.is_true(barrier.broken)
      assert.equal(blocking, results1)
      assert.equal(n - blocking - 1, results2)
      assert.equal(0, barrier.n_waiting)
    end))

  it("R224 an error inside aborts it: every other task gets "
     .. "BrokenBarrierError", vspec(function()
      local n = 5
      local barrier = asyncio.Barrier(n)
      local counts = {passed = 0, broken = 0}
      gather_tasks(n, async(function()
        pass_twice_or_abort(barrier, n, counts)
      end))
      assert.is_true(barrier.broken)
      assert.same({passed = 0, broken = n - 1}, counts)
      assert.equal(0, barrier.n_waiting)
    end))

  it("R224 a later reset repairs an aborted barrier", vspec(function()
    local n = 5
    local barrier1, barrier2 = asyncio.Barrier(n), asyncio.Barrier(n)
    local counts = {passed = 0, broken = 0}
    local repaired = 0
    gather_tasks(n, async(function()
      pass_twice_or_abort(barrier1, n, counts)
      -- everyone meets on barrier2, one resets barrier1, all pass it
      if await(barrier2:wait()) == n // 2 then
        await(barrier1:reset())
      end
      await(barrier2:wait())
      await(barrier1:wait())
      repaired = repaired + 1
    end))
    assert.is_false(barrier1.broken)
    assert.same({passed = 0, broken = n - 1}, counts)
    assert.equal(n, repaired)
    assert.equal(0, barrier1.n_waiting)
  end))

  it("R parties, n_waiting and broken are read-only fields", function()
    local barrier = asyncio.Barrier(2)
    for _, key in ipairs{"parties", "n_waiting", "broken"} do
      local ok, err = pcall(function() barrier[key] = 1 end)
      assert.is_false(ok)
      assert.matches("read%-only", err)
    end
    assert.equal(2, barrier.parties)
    assert.is_nil(barrier.no_such_field)
  end)
end)
