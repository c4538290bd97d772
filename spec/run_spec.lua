-- spec/run_spec.lua: asyncio.run (lua/asyncio/init.lua), semantics
-- section U.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local proc = dofile("spec/fixtures/proc.lua")
local async, await = asyncio.async, asyncio.await

local h = dofile("spec/helpers.lua")
local raised = h.error_of

local function assert_error(cls, pattern, e)
  assert.is_true(asyncio.iserror(e, cls), "not a " .. tostring(cls) ..
                 ": " .. tostring(e))
  if pattern then assert.matches(pattern, e.message) end
end

--- Returns a coroutine function that records the running loop in `box`
-- and then runs body(...).
local function recording(box, body)
  return async(function(...)
    box.loop = asyncio.get_running_loop()
    if body then return body(...) end
  end)
end

local function assert_finished(loop)
  assert.is_true(loop:is_closed())
  assert.same(0, loop:_counts().handles)
  assert.is_false(loop:is_running())
end

--- Runs the interrupt fixture with `mode`, catching run's outcome.
local function interrupted(mode)
  return proc.run{proc.luaio, proc.fixture("interrupt.lua"), mode, "catch"}
end

describe("asyncio.run", function()
  after_each(function()
    assert.is_false((pcall(asyncio.get_running_loop)))
    require("asyncio.core")._unset_event_loop()
  end)

  it("U239 returns main's result", function()
    local box = {}
    assert.equal(42, asyncio.run(recording(box, function()
      await(asyncio.sleep(0))
      return 42
    end)()))
    assert_finished(box.loop)
  end)

  it("U239 returns every value; main may be a function or coroutine fn",
     function()
    assert.same({1, nil, 3},
                {asyncio.run(async(function() return 1, nil, 3 end))})
    assert.same({"plain", 2},
                {asyncio.run(function() return "plain", 2 end)})
    assert.equal("object", asyncio.run(async(function()
      return "object"
    end)()))
  end)

  it("U240 main's error propagates out of run", function()
    local box = {}
    local e = raised(asyncio.run, recording(box, function()
      await(asyncio.sleep(0))
      error(asyncio.ValueError("spam"))
    end))
    assert_error(asyncio.ValueError, "^spam$", e)
    assert_finished(box.loop)
    local s = raised(asyncio.run, function() error("plain spam", 0) end)
    assert.equal("plain spam", s)
  end)

  it("U241 run of a non-coroutine raises ValueError", function()
    local other = asyncio.new_event_loop()
    local fut = other:create_future()
    for _, bad in ipairs{42, "main", {}, fut} do
      assert_error(asyncio.ValueError, "a coroutine was expected",
                   raised(asyncio.run, bad))
    end
    other:close()
    assert.same(0, other:_counts().handles)
  end)

  it("U242 run inside a running loop raises RuntimeError",
     aspec.async({clock = "virtual"}, function()
    local ran = false
    local coro = async(function() ran = true end)()
    assert_error(asyncio.RuntimeError,
                 "cannot be called from a running event loop",
                 raised(asyncio.run, coro))
    assert_error(asyncio.RuntimeError,
                 "cannot be called from a running event loop",
                 raised(asyncio.run, function() ran = true end))
    await(asyncio.sleep(0))
    assert.is_false(ran)
    coro:close()
  end))

  it("U243 tasks left pending are cancelled and awaited", function()
    local left, log = {}, {}
    local worker = async(function(name)
      local ok, err = pcall(await, asyncio.sleep(1000))
      log[#log + 1] = name .. (ok and " woke" or " cancelled")
      await(asyncio.sleep(0)) -- cleanup that itself awaits
      log[#log + 1] = name .. " cleaned up"
      error(err, 0)
    end)
    asyncio.run(async(function()
      left[1] = asyncio.create_task(worker("a"))
      left[2] = asyncio.create_task(worker("b"))
      await(asyncio.sleep(0))
      return "main done"
    end))
    for _, t in ipairs(left) do
      assert.is_true(t:done())
      assert.is_true(t:cancelled())
    end
    table.sort(log)
    assert.same({"a cancelled", "a cleaned up", "b cancelled",
                 "b cleaned up"}, log)
  end)

  it("U244 each run has a fresh loop, closed at the end, then unset",
     function()
    local first, second = {}, {}
    asyncio.run(recording(first))
    asyncio.run(recording(second))
    assert.is_not_nil(first.loop)
    assert.are_not.equal(first.loop, second.loop)
    assert_finished(first.loop)
    assert_finished(second.loop)
    local current = asyncio.get_event_loop()
    assert.are_not.equal(second.loop, current)
    assert.is_false(current:is_closed())
    current:close()
  end)

  it("U244 the loop is closed also when main raised", function()
    local box = {}
    local stray
    raised(asyncio.run, recording(box, function()
      stray = asyncio.create_task(asyncio.sleep(1000))
      error(asyncio.RuntimeError("main failed"))
    end))
    assert_finished(box.loop)
    assert.is_true(stray:cancelled())
  end)

  it("U245 an error raised while being cancelled at shutdown is reported",
     function()
    local reports, task = {}, nil
    local result = asyncio.run(async(function()
      asyncio.get_running_loop():set_exception_handler(function(_, ctx)
        reports[#reports + 1] = ctx
      end)
      task = asyncio.create_task(async(function()
        pcall(await, asyncio.sleep(1000))
        error(asyncio.ValueError("while cancelling"))
      end)())
      await(asyncio.sleep(0))
      return "main done"
    end))
    assert.equal("main done", result)
    assert.equal(1, #reports)
    assert.equal("unhandled exception during asyncio.run() shutdown",
                 reports[1].message)
    assert.equal(task, reports[1].task)
    assert_error(asyncio.ValueError, "while cancelling", reports[1].exception)
    assert.is_true(task:done())
    assert.is_false(task:cancelled())
  end)

  it("U246 run(main, {debug = true}) runs the loop in debug mode", function()
    local function debug_flag()
      return asyncio.get_running_loop():get_debug()
    end
    assert.is_true(asyncio.run(debug_flag, {debug = true}))
    assert.is_false(asyncio.run(debug_flag, {debug = false}))
  end)

  it("U246 by default debug mode follows LUAIO_DEBUG", function()
    local code = [[
      local asyncio = require "asyncio"
      print(asyncio.run(function()
        return asyncio.get_running_loop():get_debug()
      end))
    ]]
    local on = proc.run({proc.luaio, "-e", code}, {env = {LUAIO_DEBUG = "1"}})
    local off = proc.run({proc.luaio, "-e", code},
                         {env = {LUAIO_DEBUG = "0"}})
    assert.same({0, "true\n", ""}, {on.status, on.stdout, on.stderr})
    assert.same({0, "false\n", ""}, {off.status, off.stdout, off.stderr})
  end)

  it("U246 run(main, {clock = 'virtual'}) runs on the virtual clock",
     function()
    local t = asyncio.run(async(function()
      await(asyncio.sleep(3600))
      return asyncio.get_running_loop():time()
    end), {clock = "virtual"})
    assert.equal(3600, t)
  end)

  it("run rejects an unknown option before making a loop; {clock =, "
     .. "debug =, loop_factory =} are taken", function()
    local ran = false
    local main = async(function() ran = true end)
    for _, case in ipairs{{{clok = "virtual"}, "clok"},
                          {{debug = true, loop = 1}, "loop"}} do
      local e = raised(function() asyncio.run(main, case[1]) end)
      assert.equal("bad argument #2 to 'run' (unknown option '" .. case[2]
                   .. "')", h.message(e))
    end
    assert.is_false(ran)
    local made
    assert.same({true, 3600}, {asyncio.run(async(function()
      local loop = asyncio.get_running_loop()
      await(asyncio.sleep(3600))
      return loop:get_debug(), loop:time()
    end), {clock = "virtual", debug = true})})
    assert.equal(1, asyncio.run(async(function()
      await(asyncio.sleep(1))
      return asyncio.get_running_loop():time()
    end), {loop_factory = function()
      made = asyncio.new_event_loop{clock = "virtual"}
      return made
    end}))
    assert_finished(made)
  end)

  it("U248 Ctrl-C cancels a sleeping main; run raises KeyboardInterrupt",
     function()
    local r = interrupted("sleep")
    assert.equal(0, r.status)
    assert.equal("cleanup\nrun raised KeyboardInterrupt\n", r.stdout)
  end)

  it("U248 Ctrl-C cancels a main waiting on a future", function()
    local r = interrupted("future")
    assert.equal(0, r.status)
    assert.equal("cleanup\nrun raised KeyboardInterrupt\n", r.stdout)
  end)

  it("U248 a main that swallows the Ctrl-C cancellation returns normally",
     function()
    local r = interrupted("swallow")
    assert.equal(0, r.status)
    assert.equal("cleanup\nrun returned swallowed\n", r.stdout)
  end)

  it("U248 a main cancelled for another reason raises CancelledError",
     function()
    local box = {}
    local e = raised(asyncio.run, recording(box, function()
      asyncio.current_task():cancel()
      await(asyncio.sleep(0))
    end))
    assert_error(asyncio.CancelledError, nil, e)
    assert.is_false(asyncio.iserror(e, asyncio.KeyboardInterrupt))
    assert_finished(box.loop)
  end)
end)

describe("asyncio.Runner", function()
  -- no current loop, as asyncio.run leaves it (an explicit
  -- set_event_loop(nil) would make get_event_loop() raise)
  after_each(function() require("asyncio.core")._unset_event_loop() end)

  it("U247 one loop serves several runs; what a run leaves pending lives on",
     function()
    local runner <close> = asyncio.Runner{clock = "virtual"}
    local loop = runner:get_loop()
    assert.equal(loop, asyncio.get_event_loop())
    local ticks = 0
    local ticker = runner:run(async(function()
      return asyncio.create_task(async(function()
        while true do ticks = ticks + 1; await(asyncio.sleep(1)) end
      end)())
    end))
    assert.equal(1, ticks)
    local t = runner:run(async(function()
      await(asyncio.sleep(2.5))
      return asyncio.get_running_loop():time()
    end))
    assert.equal(2.5, t)
    assert.equal(3, ticks)           -- the first run's task kept running
    assert.equal(loop, runner:get_loop())
    assert.is_false(ticker:done())
    runner:close()
    assert.is_true(ticker:cancelled())
    assert_finished(loop)
    assert.are_not.equal(loop, asyncio.get_event_loop())  -- it was unset
  end)

  it("U247 after close, run and get_loop raise 'Runner is closed'; a second "
     .. "close does nothing", function()
    local runner = asyncio.Runner()
    assert.equal(42, runner:run(function() return 42 end))
    local loop = runner:get_loop()
    runner:close()
    runner:close()
    assert_finished(loop)
    assert_error(asyncio.RuntimeError, "^Runner is closed$",
                 raised(runner.run, runner, function() end))
    assert_error(asyncio.RuntimeError, "^Runner is closed$",
                 raised(runner.get_loop, runner))
  end)

  it("U247 closing a runner before use does nothing: it makes no loop and "
     .. "can still run, as Python's", function()
    local made = 0
    local runner = asyncio.Runner{loop_factory = function()
      made = made + 1
      return asyncio.new_event_loop{clock = "virtual"}
    end}
    runner:close()
    runner:close()
    assert.equal(0, made)
    assert.equal(7, runner:run(async(function()
      await(asyncio.sleep(1))
      return 7
    end)))
    assert.equal(1, made)
    local loop = runner:get_loop()
    runner:close()
    assert_finished(loop)
    assert_error(asyncio.RuntimeError, "^Runner is closed$",
                 raised(runner.get_loop, runner))
  end)

  it("Runner rejects an unknown option when made; the options are copied",
     function()
    local e = raised(function() asyncio.Runner{clock = "virtual", dbug = 1} end)
    assert.equal("bad argument #1 to 'Runner' (unknown option 'dbug')",
                 h.message(e))
    local opts = {clock = "virtual", debug = true}
    local runner <close> = asyncio.Runner(opts)
    opts.clock, opts.bogus = "real", true -- too late to matter
    local loop = runner:get_loop()
    assert.is_true(loop:get_debug())
    assert.equal(0, loop:time())
  end)

  it("U247 run from inside its own running loop raises RuntimeError",
     function()
    local runner <close> = asyncio.Runner{clock = "virtual"}
    local e = runner:run(async(function()
      return raised(runner.run, runner, function() end)
    end))
    assert_error(asyncio.RuntimeError,
                 "^Runner.run%(%) cannot be called from a running event loop$",
                 e)
  end)

  it("U247 run of a Future or a plain value raises ValueError", function()
    local runner <close> = asyncio.Runner{clock = "virtual"}
    local fut = runner:get_loop():create_future()
    assert_error(asyncio.ValueError, "^a coroutine was expected, got ",
                 raised(runner.run, runner, fut))
    assert_error(asyncio.ValueError, "^a coroutine was expected, got 42$",
                 raised(runner.run, runner, 42))
  end)

  it("U247 a loop_factory's loop is used and never set as current",
     function()
    local made = {}
    local runner = asyncio.Runner{loop_factory = function()
      made[#made + 1] = asyncio.new_event_loop{clock = "virtual"}
      return made[#made]
    end}
    local ran_on = runner:run(async(function()
      return asyncio.get_running_loop()
    end))
    assert.equal(1, #made)
    assert.equal(made[1], ran_on)
    assert.are_not.equal(made[1], asyncio.get_event_loop())
    runner:close()
    assert_finished(made[1])
  end)

  it("U247 <close> closes the runner when the block raises", function()
    local loop
    local ok, e = pcall(function()
      local runner <close> = asyncio.Runner{clock = "virtual"}
      loop = runner:get_loop()
      runner:run(function() error("boom", 0) end)
    end)
    assert.is_false(ok)
    assert.equal("boom", e)
    assert_finished(loop)
  end)
end)
