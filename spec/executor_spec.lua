-- spec/executor_spec.lua: executors (semantics section T):
-- loop:run_in_executor, asyncio.to_thread, the loop's default executor,
-- and ThreadPoolExecutor (bindings/threads/executor.c, lua/asyncio/threads.lua).
--
-- Functions run in worker threads, each with a Lua state of its own; a
-- function sent there has no upvalue but _ENV and requires what it uses.
-- A worker blocks with a Channel: ch:get(t) waits for an item, or for t
-- seconds and raises TimeoutError. Real clock; time-outs only guard
-- against hanging.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, raises = h.await_error, h.raises

local iserror = asyncio.iserror
local gather, sleep = asyncio.gather, asyncio.sleep

-- This state's main coroutine, named as a worker can name its own.
local MAIN_THREAD = tostring(coroutine.running())

-- Worker functions (no upvalue but _ENV).

--- Blocks its thread until `gate` has an item; returns that item.
local function wait_gate(gate)
  return gate:get(10)
end

--- Names the worker's thread and state: its main coroutine and whether
-- this state's globals are visible there.
local function whoami()
  return tostring(coroutine.running()), rawget(_G, "EXECUTOR_SPEC_MARK")
end

describe("T: run_in_executor", function()
  it("T234 runs fn in another thread and state; the Future gets its "
     .. "result", aspec.async(function()
      local loop = asyncio.get_running_loop()
      _G.EXECUTOR_SPEC_MARK = "main"
      local fut = loop:run_in_executor(nil, whoami)
      assert.is_true(asyncio.isfuture(fut))
      assert.equal(loop, fut:get_loop())
      local thread, mark = await(fut)
      _G.EXECUTOR_SPEC_MARK = nil
      assert.are_not.equal(MAIN_THREAD, thread)
      assert.truthy(thread:find("^thread: "))
      assert.is_nil(mark)
    end))

  it("T234 the function runs while this loop goes on (another OS thread)",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local gate = asyncio.Channel()
      -- the worker blocks until this loop's thread opens the gate: run on
      -- this thread, it would never return
      local fut = loop:run_in_executor(nil, wait_gate, gate)
      await(sleep(0.01))
      assert.is_false(fut:done())
      gate:put("opened")
      assert.equal("opened", await(asyncio.wait_for(fut, 10)))
    end))

  it("T234 passes the arguments and returns every result",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local fut = loop:run_in_executor(nil, function(a, b, t)
        return a + b, nil, t.k
      end, 1, 2, {k = "v"})
      local got = table.pack(await(fut))
      assert.equal(3, got.n)
      assert.same({3, nil, "v"}, {table.unpack(got, 1, 3)})
    end))

  it("T234 an error in fn is raised on await", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local err = await_error(loop:run_in_executor(nil, function()
      error("worker failed")
    end))
    assert.truthy(tostring(err):find("worker failed$"), tostring(err))
    err = await_error(loop:run_in_executor(nil, function()
      local aio = require "asyncio"
      error(aio.ValueError("bad"))
    end))
    assert.is_true(iserror(err, asyncio.ValueError), tostring(err))
    assert.equal("bad", err.message)
  end))

  it("T234 a result that cannot be sent back raises SendError on await",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local err = await_error(loop:run_in_executor(nil, function()
        require "asyncio"
        return {co = coroutine.create(print)}
      end))
      assert.is_true(iserror(err, asyncio.SendError), tostring(err))
      assert.equal("args[1].co: thread value", err.message)
    end))

  it("T234 fn must be a function that can be sent", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local upvalue = 1
    assert.has_error(function() loop:run_in_executor(nil, 42) end)
    local err = raises(asyncio.SendError, loop.run_in_executor, loop, nil,
                       function() return upvalue end)
    assert.equal("fn: function with upvalues", err.message)
  end))

  it("T236 cancelling the Future does not interrupt the running function",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local started, release, finished =
        asyncio.Channel(), asyncio.Channel(), asyncio.Channel()
      local fut = loop:run_in_executor(nil, function(s, r, f)
        s:put(true)
        r:get(10)
        f:put("finished")
      end, started, release, finished)
      await(started:aget())
      assert.is_true(fut:cancel())
      assert.is_true(fut:cancelled())
      release:put(true)
      assert.equal("finished", await(asyncio.wait_for(finished:aget(), 10)))
    end))

  it("T236 cancelling it before a worker took the job: the job never runs",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local gate, ran = asyncio.Channel(), asyncio.Channel()
      local busy = loop:run_in_executor(ex, wait_gate, gate)
      local queued = loop:run_in_executor(ex, function(r) r:put("ran") end,
                                          ran)
      queued:cancel()
      -- the job's own future is cancelled by a done callback of this
      -- one, on the loop's next step (as asyncio's _chain_future); the
      -- worker, free once the gate opens, must not find the job first
      await(asyncio.sleep(0))
      gate:put(true)
      await(busy)
      ex:shutdown(true)
      assert.equal(0, ran:qsize())
    end))

  it("T236 once the loop is closed no completion is delivered into it",
    function()
      local loop = asyncio.new_event_loop()
      asyncio.set_event_loop(loop)
      local ex = asyncio.ThreadPoolExecutor(1)
      local gate = asyncio.Channel()
      local fut = loop:run_in_executor(ex, wait_gate, gate)
      loop:close()
      require("asyncio.core")._unset_event_loop()
      gate:put("late")
      ex:shutdown(true)
      assert.is_false(fut:done())
    end)

  it("T237 set_default_executor takes a ThreadPoolExecutor, nothing else",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      for _, bad in ipairs{42, {}, "pool", asyncio.Channel()} do
        raises(asyncio.TypeError, loop.set_default_executor, loop, bad)
      end
      local ex = asyncio.ThreadPoolExecutor(1)
      loop:set_default_executor(ex)
      assert.truthy(tostring(ex):find(" workers=0>"), tostring(ex))
      assert.equal(7, await(loop:run_in_executor(nil, function()
        return 7
      end)))
      assert.truthy(tostring(ex):find(" workers=1>"), tostring(ex))
      ex:shutdown(true)
    end))

  it("T238 shutdown_default_executor waits for the workers; later "
     .. "run_in_executor(nil) raises RuntimeError", function()
    local loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    local done = asyncio.Channel()
    loop:run_in_executor(nil, function(d)
      local idle = require("asyncio").Channel()
      pcall(idle.get, idle, 0.05)
      d:put("done")
    end, done)
    -- Python's coroutine method: here it waits, then returns a done
    -- Future, so that await(loop:shutdown_default_executor()) works too
    local fut = loop:shutdown_default_executor()
    assert.equal(1, done:qsize())
    assert.is_true(asyncio.isfuture(fut))
    assert.is_true(fut:done())
    assert.equal(0, select("#", loop:run_until_complete(fut)))
    assert.is_true(loop:shutdown_default_executor():done()) -- again
    local err = raises(asyncio.RuntimeError, loop.run_in_executor, loop, nil,
                       print)
    assert.equal("Executor shutdown has been called", err.message)
    -- an explicit executor still works
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    assert.equal(2, loop:run_until_complete(
      loop:run_in_executor(ex, function() return 2 end)))
    loop:close()
    require("asyncio.core")._unset_event_loop()
  end)

  it("T244 asyncio.run shuts the default executor down, waiting for it",
    function()
      local done = asyncio.Channel()
      asyncio.run(async(function()
        -- started, not awaited: run() waits for it at the end
        asyncio.get_running_loop():run_in_executor(nil, function(d)
          local idle = require("asyncio").Channel()
          pcall(idle.get, idle, 0.05)
          d:put("done")
        end, done)
      end))
      assert.equal(1, done:qsize())
    end)
end)

describe("T: to_thread", function()
  it("T235 to_thread(fn, ...) passes the arguments, returns the results",
    aspec.async(function()
      local a, b = await(asyncio.to_thread(function(x, opts)
        return x * 2, opts.name
      end, 21, {name = "kw"}))
      assert.equal(42, a)
      assert.equal("kw", b)
    end))

  it("T235 returns a coroutine: nothing runs until awaited",
    aspec.async(function()
      -- a default executor of our own: its repr counts the workers it
      -- started, and a submitted job starts one at once
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      asyncio.get_running_loop():set_default_executor(ex)
      local ran = asyncio.Channel()
      local coro = asyncio.to_thread(function(r) r:put(1) end, ran)
      assert.is_true(asyncio.iscoroutine(coro))
      await(sleep(0))
      assert.equal("<ThreadPoolExecutor max_workers=1 workers=0>",
                   tostring(ex))
      assert.equal(0, ran:qsize())
      await(coro)
      assert.equal("<ThreadPoolExecutor max_workers=1 workers=1>",
                   tostring(ex))
      assert.equal(1, ran:qsize())
    end))

  it("T235 calls fn exactly once", aspec.async(function()
    local calls = asyncio.Channel()
    await(asyncio.to_thread(function(c) c:put("call") end, calls))
    -- wait for the workers: any second call would have happened by now
    -- (awaited, as Python's coroutine method is)
    await(asyncio.get_running_loop():shutdown_default_executor())
    assert.equal(1, calls:qsize())
  end))

  it("T235 an error in fn is raised by the await", aspec.async(function()
    local err = await_error(asyncio.to_thread(function()
      local aio = require "asyncio"
      error(aio.RuntimeError("in the thread"))
    end))
    assert.is_true(iserror(err, asyncio.RuntimeError))
    assert.equal("in the thread", err.message)
  end))

  it("T235 10 concurrent calls all complete, results in order",
    aspec.async(function()
      local coros = {}
      for i = 1, 10 do
        coros[i] = asyncio.to_thread(function(n)
          local idle = require("asyncio").Channel()
          pcall(idle.get, idle, 0.01 * (n % 3))
          return n * n
        end, i)
      end
      local results = await(gather(table.unpack(coros)))
      for i = 1, 10 do assert.equal(i * i, results[i]) end
    end))
end)

describe("ThreadPoolExecutor", function()
  it("submit returns a concurrent future with the results", function()
    local ex <close> = asyncio.ThreadPoolExecutor(2)
    assert.equal("<ThreadPoolExecutor max_workers=2 workers=0>",
                 tostring(ex))
    local cf = ex:submit(function(a, b) return a .. b, #a end, "ab", "cd")
    assert.same({"abcd", 2}, {cf:result(10)})
    assert.is_true(cf:done())
    assert.equal("<ConcurrentFuture finished>", tostring(cf))
  end)

  it("max_workers must be positive; the default is min(32, CPUs + 4)",
    function()
      local err = raises(asyncio.ValueError, asyncio.ThreadPoolExecutor, 0)
      assert.equal("max_workers must be greater than 0", err.message)
      raises(asyncio.ValueError, asyncio.ThreadPoolExecutor, -1)
      local ex <close> = asyncio.ThreadPoolExecutor()
      local n = tonumber(tostring(ex):match("max_workers=(%d+)"))
      assert.is_true(n >= 5 and n <= 32, tostring(ex))
    end)

  it("runs up to max_workers functions at once, the rest wait", function()
    local ex <close> = asyncio.ThreadPoolExecutor(2)
    local gate, started = asyncio.Channel(), asyncio.Channel()
    local cfs = {}
    for i = 1, 3 do
      cfs[i] = ex:submit(function(g, s, n)
        s:put(n)
        return g:get(10)
      end, gate, started, i)
    end
    started:get(10)
    started:get(10)
    -- two started; the third waits for a free worker
    assert.is_false(pcall(started.get, started, 0.05))
    assert.truthy(tostring(ex):find(" workers=2>"), tostring(ex))
    for i = 1, 3 do gate:put(i) end
    local got = {}
    for i = 1, 3 do got[#got + 1] = cfs[i]:result(10) end
    table.sort(got)
    assert.same({1, 2, 3}, got)
  end)

  it("map(fn, list) returns the results in order", function()
    local ex <close> = asyncio.ThreadPoolExecutor(3)
    local out = ex:map(function(x)
      local idle = require("asyncio").Channel()
      pcall(idle.get, idle, 0.001 * (10 - x))
      return x * 10
    end, {1, 2, 3, 4, 5, 6, 7, 8, 9})
    assert.same({10, 20, 30, 40, 50, 60, 70, 80, 90}, out)
    assert.same({}, ex:map(print, {}))
  end)

  it("map raises the first error in list order", function()
    local ex <close> = asyncio.ThreadPoolExecutor(2)
    local ok, err = pcall(ex.map, ex, function(x)
      if x >= 2 then error("item " .. x, 0) end
      return x
    end, {1, 2, 3})
    assert.is_false(ok)
    assert.equal("item 2", err)
  end)

  it("shutdown(true) waits for every queued function", function()
    local ex = asyncio.ThreadPoolExecutor(1)
    local done = asyncio.Channel()
    for i = 1, 3 do
      ex:submit(function(d, n)
        local idle = require("asyncio").Channel()
        pcall(idle.get, idle, 0.01)
        d:put(n)
      end, done, i)
    end
    ex:shutdown(true)
    assert.equal(3, done:qsize())
    assert.same({1, 2, 3}, {done:get(0), done:get(0), done:get(0)})
    assert.truthy(tostring(ex):find(" shutdown>$"), tostring(ex))
  end)

  it("shutdown does nothing once the executor was finalized; the other "
     .. "methods raise RuntimeError", function()
    local ex = asyncio.ThreadPoolExecutor(1)
    getmetatable(ex).__gc(ex) -- as the collector runs it when a state closes
    assert.same({}, {ex:shutdown()})
    assert.same({}, {ex:shutdown(false)})
    local e = raises(asyncio.RuntimeError, ex.submit, ex, function() end)
    assert.equal("the ThreadPoolExecutor was finalized", e.message)
    raises(asyncio.RuntimeError, ex.map, ex, function() end, {1})
  end)

  it("a loop never closed shuts its default executor down quietly when "
     .. "the state closes, after the executor's own finalizer", function()
    local proc = dofile("spec/fixtures/proc.lua")
    local r = proc.run{proc.luaio, "-e", [[
      local asyncio = require "asyncio"
      local loop = asyncio.get_event_loop()
      print(loop:run_until_complete(asyncio.to_thread(function()
        return 41 + 1
      end)))]]}
    assert.equal(0, r.status)
    assert.equal("42\n", r.stdout)
    assert.equal("", r.stderr)
  end)

  it("shutdown(false) returns at once; queued functions still run",
    function()
      local ex = asyncio.ThreadPoolExecutor(1)
      local gate = asyncio.Channel()
      local first = ex:submit(wait_gate, gate)
      local second = ex:submit(function() return "second" end)
      ex:shutdown(false)
      assert.is_false(first:done())
      gate:put("first")
      assert.equal("first", first:result(10))
      assert.equal("second", second:result(10))
    end)

  it("submit after shutdown raises RuntimeError", function()
    local ex = asyncio.ThreadPoolExecutor(1)
    ex:shutdown()
    local err = raises(asyncio.RuntimeError, ex.submit, ex, print)
    assert.equal("cannot schedule new futures after shutdown", err.message)
  end)

  it("a to-be-closed executor shuts down, waiting, when its scope ends",
    function()
      local done = asyncio.Channel()
      local ex_ref
      do
        local ex <close> = asyncio.ThreadPoolExecutor(1)
        ex_ref = ex
        ex:submit(function(d)
          local idle = require("asyncio").Channel()
          pcall(idle.get, idle, 0.02)
          d:put("done")
        end, done)
      end
      assert.equal(1, done:qsize())
      raises(asyncio.RuntimeError, ex_ref.submit, ex_ref, print)
    end)

  it("a concurrent future can be cancelled while its job waits", function()
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local gate, started = asyncio.Channel(), asyncio.Channel()
    local busy = ex:submit(function(g, s)
      s:put(true)
      return g:get(10)
    end, gate, started)
    local queued = ex:submit(function() return "never" end)
    started:get(10)
    assert.is_true(busy:running())
    assert.is_false(busy:cancel()) -- running: too late
    assert.is_true(queued:cancel())
    assert.is_true(queued:cancelled())
    raises(asyncio.CancelledError, queued.result, queued, 0)
    gate:put("go")
    assert.equal("go", busy:result(10))
    assert.is_false(busy:cancelled())
  end)

  it("worker states have the standard libraries and asyncio", function()
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local got = ex:submit(function()
      local aio = require "asyncio"
      return type(string.format), type(table.concat), type(math.floor),
        type(io.write), type(os.time), type(coroutine.wrap),
        type(utf8.char), type(debug.traceback), type(aio.run),
        type(aio.Channel)
    end)
    assert.same({"function", "function", "function", "function", "function",
                 "function", "function", "function", "function", "function"},
                {got:result(10)})
  end)

  it("worker states inherit package.path and package.cpath", function()
    local path, cpath = package.path, package.cpath
    package.path = "/nonexistent/executor_spec/?.lua;" .. path
    package.cpath = "/nonexistent/executor_spec/?.so;" .. cpath
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    package.path, package.cpath = path, cpath
    local p, c = ex:submit(function()
      return package.path, package.cpath
    end):result(10)
    assert.equal("/nonexistent/executor_spec/?.lua;" .. path, p)
    assert.equal("/nonexistent/executor_spec/?.so;" .. cpath, c)
  end)

  it("an executor is shared: several loops submit to one pool",
    function()
      local ex <close> = asyncio.ThreadPoolExecutor(2)
      local refs, cfs = {}, {}
      local job = async(function(pool, n)
        local aio = require "asyncio"
        local loop = aio.get_running_loop()
        return aio.await(loop:run_in_executor(pool, function(x)
          return x * 100
        end, n))
      end)
      for i = 1, 3 do
        refs[i] = asyncio.start_loop_thread()
        cfs[i] = asyncio.run_coroutine_threadsafe(job(ex, i), refs[i])
      end
      for i = 1, 3 do assert.equal(i * 100, cfs[i]:result(10)) end
      for i = 1, 3 do
        refs[i]:stop()
        refs[i]:join()
      end
    end)
end)

describe("A: a closed loop and its default executor", function()
  it("A23 close() shuts the default executor down without waiting for it",
    function()
      local loop = asyncio.new_event_loop{clock = "virtual"}
      local ex = asyncio.ThreadPoolExecutor(1)
      loop:set_default_executor(ex)
      local gate, finished = asyncio.Channel(), asyncio.Channel()
      loop:run_in_executor(nil, function(g, f)
        local ok, v = pcall(g.get, g, 10)
        f:put(ok and v or "close waited")
      end, gate, finished)
      loop:close()
      assert.truthy(tostring(ex):find(" shutdown>$"), tostring(ex))
      raises(asyncio.RuntimeError, ex.submit, ex, print)
      -- the job still waits for its gate: close() did not wait for it
      assert.equal(0, finished:qsize())
      gate:put("opened")
      assert.equal("opened", finished:get(10))
      ex:shutdown(true)
    end)

  it("A24 run_in_executor on a closed loop raises 'Event loop is closed'",
    function()
      local loop = asyncio.new_event_loop{clock = "virtual"}
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      loop:close()
      local err = raises(asyncio.RuntimeError, loop.run_in_executor, loop,
                         nil, print)
      assert.equal("Event loop is closed", err.message)
      err = raises(asyncio.RuntimeError, loop.run_in_executor, loop, ex, print)
      assert.equal("Event loop is closed", err.message)
      assert.truthy(tostring(ex):find(" workers=0>$"), tostring(ex))
    end)
end)
