-- spec/task_memory_spec.lua: what a task holds in the Lua heap (DESIGN
-- "Performance"). A sleeping task is its Lua thread (the state, its
-- 45-slot stack and one CallInfo per active frame: the task's
-- trampoline, the body, await), its Task userdata and the Coroutine
-- object it runs; its sleep allocates no Future, TimerHandle or
-- Coroutine object of its own, and its timer entry is C memory. Counted
-- with collectgarbage("count") after full collections, so these are
-- allocation counts, not times.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local vspec = dofile("spec/helpers.lua").vspec

local N = 20000

local function heap()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count") * 1024
end

-- Debian's liblua5.4 (5.4.4, 64-bit): a thread is 928 bytes and each
-- CallInfo 64, so 1120 of the 1410 a sleeping task holds today are its
-- thread with three frames; the Task userdata is 176 (72 of C, four user
-- values), the Coroutine object 88, the loop's anchor about 20. A
-- finished task keeps its Task, its Coroutine object and its result
-- (about 300).
local SLEEPING_BOUND = 1430
local DONE_BOUND = 320
-- A task waiting for its first step has no thread yet: its Task and
-- Coroutine objects and its anchor (about 306; 1234 with the thread).
local WAITING_BOUND = 320

describe("the memory a task holds", function()
  it("a task sleeping in asyncio.sleep holds at most " .. SLEEPING_BOUND ..
     " bytes", vspec(function()
    local sleeper = async(function(i)
      await(asyncio.sleep(1 + i / N))
      return i
    end)
    local tasks = {}
    for i = 1, N do tasks[i] = false end -- the list's own memory first
    local before = heap()
    for i = 1, N do tasks[i] = asyncio.create_task(sleeper(i)) end
    await(asyncio.sleep(0)) -- each has taken its first step and sleeps
    local per_task = (heap() - before) / N
    assert.is_true(per_task <= SLEEPING_BOUND, per_task .. " bytes")
    local sum = 0
    for i = 1, N do sum = sum + await(tasks[i]) end
    assert.equal(N * (N + 1) // 2, sum)
  end))

  it("a task waiting for its first step holds no thread yet (at most " ..
     WAITING_BOUND .. " bytes)", vspec(function()
    local work = async(function(i) return i end)
    local tasks = {}
    for i = 1, N do tasks[i] = false end
    local before = heap()
    for i = 1, N do tasks[i] = asyncio.create_task(work(i)) end
    local per_task = (heap() - before) / N
    assert.is_true(per_task <= WAITING_BOUND, per_task .. " bytes")
    assert.is_false(tasks[1]:done())
    await(asyncio.sleep(0))
    assert.equal(N, tasks[N]:result())
  end))

  it("a finished task lets go of its thread (at most " .. DONE_BOUND ..
     " bytes)", vspec(function()
    local work = async(function(i) return i end)
    local tasks = {}
    for i = 1, N do tasks[i] = false end
    local before = heap()
    for i = 1, N do tasks[i] = asyncio.create_task(work(i)) end
    await(asyncio.sleep(0))
    local per_task = (heap() - before) / N
    assert.is_true(per_task <= DONE_BOUND, per_task .. " bytes")
    assert.is_true(tasks[N]:done())
    assert.equal(N, tasks[N]:result())
  end))
end)

-- A started Coroutine object lets go of its arguments: they live in the
-- body's frame and die with it, not with the object (which a task keeps
-- for get_coro, and whose finalizer resurrects it once more).
describe("what a started coroutine object lets go of", function()
  local function collected(weak)
    collectgarbage()
    collectgarbage()
    return next(weak) == nil
  end

  it("a task's coroutine does not keep the task's arguments",
     vspec(function()
    local weak = setmetatable({}, {__mode = "k"})
    local first = async(function(arg) return #arg end)
    local arg = {1, 2, 3}
    weak[arg] = true
    local coro = first(arg)
    local task = asyncio.create_task(coro)
    arg = nil
    assert.equal(3, await(task))
    assert.is_true(collected(weak))
    -- while the task keeps the very object it was made from
    assert.equal(coro, task:get_coro())
  end))

  it("an awaited coroutine does not keep its arguments", vspec(function()
    local weak = setmetatable({}, {__mode = "k"})
    local count = async(function(arg)
      await(asyncio.sleep(0))
      return #arg
    end)
    local arg = {1, 2}
    weak[arg] = true
    local coro = count(arg)
    arg = nil
    assert.equal(2, await(coro))
    assert.is_true(collected(weak))
    -- the object lives on, started, its function still named
    assert.equal("<coroutine object count (started)>", tostring(coro))
  end))

  it("big strings handed to an async function do not get old",
     vspec(function()
    -- In the generational collector, what survives two minor collections
    -- gets old and waits for a major one: 1 MiB strings passed through
    -- an async function piled up so (a file copied in chunks, written
    -- through File:write, grew the heap by 130 MiB).
    local MiB = 1024 * 1024
    local mode = collectgarbage("generational")
    local sink = async(function(data)
      collectgarbage("step") -- a minor collection while data is in use
      await(asyncio.sleep(0))
      return #data
    end)
    local base = collectgarbage("count")
    for i = 1, 16 do
      local chunk = string.rep("x", MiB - 8) .. string.format("%8d", i)
      assert.equal(MiB, await(sink(chunk)))
      chunk = nil -- luacheck: ignore (dropped before the minor ones below)
      collectgarbage("step")
      collectgarbage("step")
    end
    local grown = collectgarbage("count") - base
    collectgarbage(mode)
    -- none is left: the minor collections freed them, where 16 were old
    assert.is_true(grown < 2 * 1024, grown .. " KiB")
  end))
end)
