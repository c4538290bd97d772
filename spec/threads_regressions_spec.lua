-- spec/threads_regressions_spec.lua: regressions of thread bugs, each
-- named after the behaviour it guards.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await
local proc = dofile("spec/fixtures/proc.lua")

-- valgrind runs one thread at a time, much slower (LUAIO_VALGRIND=1)
local ROUNDS = os.getenv("LUAIO_VALGRIND") == "1" and 20 or 500

describe("thread regressions", function()
  it("a worker that never required asyncio raises SendError for an "
     .. "unsendable result", function()
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local f = ex:submit(function() return coroutine.create(print) end)
    local ok, e = pcall(f.result, f, 5)
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, asyncio.SendError))
    assert.matches("thread value", tostring(e))
  end)

  it("S230 cancelling the thread-side future before its task exists: the "
     .. "task never runs", function()
    local ref = asyncio.start_loop_thread()
    local gate, seen = asyncio.Channel(), asyncio.Channel()
    ref:call_soon_threadsafe(function(g) g:get() end, gate) -- hold the loop
    local body = async(function(s) s:put("ran") end)
    local cf = asyncio.run_coroutine_threadsafe(body(seen), ref)
    assert.is_true(cf:cancel())
    gate:put(true)
    -- a later callback proves the loop went past the task's creation
    ref:call_soon_threadsafe(function(s) s:put("after") end, seen)
    assert.equal("after", seen:get(5))
    ref:stop()
    ref:join()
  end)

  it("S230 a thread-side future cancelled while its loop creates the task "
     .. "cancels that task", function()
    -- each cancel lands a few microseconds after the loop thread started
    -- on the call posted just before the coroutine: around the task's
    -- creation. A missed one leaves a task sleeping on the loop.
    local ref = asyncio.start_loop_thread()
    local sleeper = async(function()
      local aio = require "asyncio"
      aio.await(aio.sleep(3600))
    end)
    local count_tasks = async(function()
      local aio = require "asyncio"
      return #aio.all_tasks()
    end)
    local reached = asyncio.Channel()
    for _ = 1, ROUNDS do
      ref:call_soon_threadsafe(function(r) r:put(true) end, reached)
      local cf = asyncio.run_coroutine_threadsafe(sleeper(), ref)
      while reached:qsize() == 0 do end -- spin: a blocking get is too slow
      reached:get(0)
      for _ = 1, math.random(0, 1000) do end
      assert.is_true(cf:cancel())
    end
    -- only the counting task itself is left
    assert.equal(1, asyncio.run_coroutine_threadsafe(count_tasks(), ref)
                      :result(10))
    ref:stop()
    ref:join()
  end)

  it("T234 run_in_executor's future belongs to the loop it was called on",
     function()
    local other = asyncio.new_event_loop()
    local f = other:run_in_executor(nil, function() return 7 end)
    assert.equal(other, f:get_loop())
    assert.equal(7, other:run_until_complete(f))
    other:shutdown_default_executor()
    other:close()
  end)

  it("Channel wakes parked tasks in the order they parked",
     aspec.async(function()
    local ch = asyncio.Channel()
    local got = {}
    local function taker(name)
      return asyncio.create_task(async(function()
        local v = await(ch:aget())
        got[#got + 1] = name .. "=" .. v
      end)())
    end
    local t1, t2 = taker("t1"), taker("t2")
    await(asyncio.sleep(0))
    ch:put("a")
    ch:put("b")
    await(t1)
    await(t2)
    assert.same({"t1=a", "t2=b"}, got)
  end))

  it("an executor starts a worker per queued job, up to max_workers",
     function()
    local ex <close> = asyncio.ThreadPoolExecutor(4)
    ex:submit(function() end):result(5)
    local ch = asyncio.Channel()
    -- two jobs that need each other run at the same time
    local a = ex:submit(function(c) return c:get(2) end, ch)
    ex:submit(function(c) c:put("b") end, ch)
    assert.equal("b", a:result(5))
  end)

  it("an executor whose last reference goes in one of its own workers "
     .. "lives until that worker ends", function()
    local gate, done = asyncio.Channel(), asyncio.Channel()
    do
      local ex = asyncio.ThreadPoolExecutor(2)
      ex:submit(function(pool, g, d)
        -- closing the worker's state, once the worker left its loop,
        -- reports it
        _G.WORKER_END = setmetatable({}, {__gc = function()
          d:put("worker state closed")
        end})
        g:get(10) -- until this state's reference is gone
        pool = nil
        collectgarbage()
        collectgarbage()
        d:put("job done")
      end, ex, gate, done)
    end
    collectgarbage()
    collectgarbage()
    gate:put(true)
    assert.equal("job done", done:get(10))
    -- the worker drops the last reference with the job's message, then
    -- goes on with its loop: it must still find its pool there, see it
    -- shut down, and end
    assert.equal("worker state closed", done:get(10))
  end)

  it("Channel put and aput need a value", function()
    local ch = asyncio.Channel()
    assert.is_false(pcall(ch.put, ch))
    assert.is_false(pcall(ch.aput, ch))
    ch:put(nil) -- an explicit nil is a value
    assert.equal(1, ch:qsize())
  end)

  it("a loop whose creation failed (out of file descriptors) leaves its "
     .. "thread's list of loops: a later blocking wait does not touch it",
     function()
    local script = proc.tempfile([[
      local asyncio = require "asyncio"
      local loops, err = {}, nil
      for _ = 1, 200 do
        local ok, l = pcall(asyncio.new_event_loop)
        if not ok then err = l break end
        loops[#loops + 1] = l
      end
      collectgarbage()
      collectgarbage()
      local ch = asyncio.Channel()
      ch:put("waited") -- a blocking call walks the thread's open loops
      print(tostring(err), ch:get(1))
      for _, l in ipairs(loops) do l:close() end
    ]])
    local r = proc.run({"sh", "-c", "ulimit -n 40; exec \"$0\" \"$1\"",
                        proc.luaio, script}, {timeout = 60})
    os.remove(script)
    assert.equal(0, r.status, r.stderr)
    assert.matches("^OSError: EMFILE: too many open files\twaited\n$",
                   r.stdout)
  end)
end)
