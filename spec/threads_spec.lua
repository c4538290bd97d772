-- spec/threads_spec.lua: thread-safe submission (semantics section S):
-- call_soon_threadsafe, asyncio.threadsafe, loop threads, and
-- run_coroutine_threadsafe with its concurrent futures
-- (bindings/threads/threads.c, bindings/threads/cfuture.c).
--
-- Other OS threads come from two places: loop threads
-- (asyncio.start_loop_thread) and executor workers, which are plain
-- threads (no loop running) with a Lua state of their own. A function
-- sent to either has no upvalue but _ENV and requires what it uses.
-- Real clock throughout (threads do not share a virtual clock); time-outs
-- only guard against hanging, never measure.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local raises = h.raises

local iserror = asyncio.iserror
local sleep, create_task = asyncio.sleep, asyncio.create_task

-- Coroutine functions sent to other states (no upvalue but _ENV).
local add = async(function(a, b)
  local aio = require "asyncio"
  aio.await(aio.sleep(0))
  return a + b
end)

local fail = async(function()
  local aio = require "asyncio"
  aio.await(aio.sleep(0))
  error("Fail!")
end)

local sleeper = async(function(seconds, events)
  local aio = require "asyncio"
  if events then events:put("started") end
  local ok, err = pcall(aio.await, aio.sleep(seconds))
  if events then
    events:put(aio.iserror(err, aio.CancelledError) and "cancelled" or "other")
  end
  if not ok then error(err, 0) end
  return "slept"
end)

local count_tasks = async(function()
  local aio = require "asyncio"
  aio.await(aio.sleep(0))
  return #aio.all_tasks()
end)

describe("S: call_soon_threadsafe", function()
  local ex

  setup(function() ex = asyncio.ThreadPoolExecutor(4) end)
  teardown(function() ex:shutdown(true) end)

  it("S225 a call from another thread wakes a loop blocked in poll",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local fut = loop:create_future()
      local tf = asyncio.threadsafe(function(v) fut:set_result(v) end)
      -- the worker waits 50 ms: by then the loop sleeps in poll, with
      -- only wait_for's 60 s timer (a guard against hanging) to wake it
      local t0 = loop:time()
      ex:submit(function(call)
        local idle = require("asyncio").Channel()
        pcall(idle.get, idle, 0.05) -- a blocking 50 ms sleep
        call("from the worker")
      end, tf)
      assert.equal("from the worker", await(asyncio.wait_for(fut, 60)))
      -- woken by the call, not by the guard's timer
      assert.is_true(loop:time() - t0 < 30)
    end))

  it("S225 ref:call_soon_threadsafe runs the function in the loop's "
     .. "state, with its globals", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local fut = loop:create_future()
      _G.THREADS_SPEC_FUT = fut
      ex:submit(function(ref)
        local idle = require("asyncio").Channel()
        pcall(idle.get, idle, 0.05)
        ref:call_soon_threadsafe(function(v)
          THREADS_SPEC_FUT:set_result(v)
        end, "posted")
      end, loop)
      assert.equal("posted", await(asyncio.wait_for(fut, 10)))
      _G.THREADS_SPEC_FUT = nil
    end))

  it("S226 a post that happens before a call_soon runs first",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local log = {}
      local done = loop:create_future()
      local tf = asyncio.threadsafe(function(v) log[#log + 1] = v end)
      local posted = asyncio.Channel()
      ex:submit(function(call, ch)
        call("hello")
        ch:put(true)
      end, tf, posted)
      -- block this loop's thread until the post has happened
      posted:get(10)
      loop:call_soon(function()
        log[#log + 1] = "world"
        done:set_result()
      end)
      await(done)
      assert.same({"hello", "world"}, log)
    end))

  it("S226 from the loop's own thread too: hello, then world",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local log = {}
      local done = loop:create_future()
      loop:call_soon_threadsafe(function(v) log[#log + 1] = v end, "hello")
      loop:call_soon(function()
        log[#log + 1] = "world"
        done:set_result()
      end)
      await(done)
      assert.same({"hello", "world"}, log)
    end))

  it("S226 posts and call_soon interleave in one FIFO queue",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local log = {}
      local done = loop:create_future()
      local tf = asyncio.threadsafe(function(v) log[#log + 1] = v end)
      local step, ack = asyncio.Channel(), asyncio.Channel()
      -- post i happens before call_soon i, which happens before post i+1
      ex:submit(function(call, s, a)
        for i = 1, 5 do
          call("post " .. i)
          s:put(i)
          a:get(10)
        end
      end, tf, step, ack)
      for i = 1, 5 do
        step:get(10)
        loop:call_soon(function() log[#log + 1] = "soon " .. i end)
        ack:put(i)
      end
      loop:call_soon(function() done:set_result() end)
      await(done)
      assert.same({"post 1", "soon 1", "post 2", "soon 2", "post 3",
                   "soon 3", "post 4", "soon 4", "post 5", "soon 5"}, log)
    end))

  it("S226 10 000 posts from 4 threads: none merged or dropped, each "
     .. "thread's in order", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local per, threads = 2500, 4
      local done = loop:create_future()
      local seen, total, last = 0, 0, {}
      local tf = asyncio.threadsafe(function(t, i)
        assert(i == (last[t] or 0) + 1, "out of order")
        last[t] = i
        seen = seen + 1
        total = total + i
        if seen == per * threads then done:set_result() end
      end)
      for t = 1, threads do
        ex:submit(function(call, t, n)
          for i = 1, n do call(t, i) end
        end, tf, t, per)
      end
      await(asyncio.wait_for(done, 30))
      assert.equal(per * threads, seen)
      assert.equal(threads * per * (per + 1) // 2, total)
      for t = 1, threads do assert.equal(per, last[t]) end
    end))

  it("S227 a closed loop raises RuntimeError, here and in other threads",
    function()
      local loop = asyncio.new_event_loop()
      asyncio.set_event_loop(loop)
      local tf = asyncio.threadsafe(print)
      require("asyncio.core")._unset_event_loop()
      loop:close()
      local err = raises(asyncio.RuntimeError, loop.call_soon_threadsafe,
                         loop, print)
      assert.equal("Event loop is closed", err.message)
      raises(asyncio.RuntimeError, tf, 1)
      local cf = ex:submit(function(ref)
        ref:call_soon_threadsafe(print, "never")
      end, loop)
      err = raises(asyncio.RuntimeError, cf.result, cf, 10)
      assert.equal("Event loop is closed", err.message)
    end)

  it("S227 returns a handle; cancelling it before it runs skips the call",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local log = {}
      local h = loop:call_soon_threadsafe(function() log[#log + 1] = "h" end)
      assert.is_false(h:cancelled())
      h:cancel()
      assert.is_true(h:cancelled())
      await(sleep(0))
      await(sleep(0))
      assert.same({}, log)
    end))

  it("S227 a handle from another thread cancels the posted call",
    function()
      local ref = asyncio.start_loop_thread()
      local gate, out = asyncio.Channel(), asyncio.Channel()
      -- hold the loop thread so the next call waits in its queue
      ref:call_soon_threadsafe(function(g) g:get(10) end, gate)
      local h = ref:call_soon_threadsafe(function(o) o:put("ran") end, out)
      assert.is_false(h:cancelled())
      h:cancel()
      assert.is_true(h:cancelled())
      gate:put("go")
      ref:call_soon_threadsafe(function(o) o:put("after") end, out)
      assert.equal("after", out:get(10))
      assert.equal(0, out:qsize())
      ref:stop()
      ref:join()
    end)
end)

describe("S: asyncio.threadsafe", function()
  it("called in the loop's own thread, it schedules fn and returns",
    aspec.async(function()
      local log = {}
      local tf = asyncio.threadsafe(function(a, b) log[#log + 1] = a + b end)
      assert.is_nil(tf(1, 2))
      assert.same({}, log)
      await(sleep(0))
      assert.same({3}, log)
    end))

  it("lets its function go once the callable is collected, after calls "
     .. "made with it", aspec.async(function()
    local weak = setmetatable({}, {__mode = "k"})
    local calls = 0
    local function call_three_times()
      local fn = function() calls = calls + 1 end
      weak[fn] = true
      local tf = asyncio.threadsafe(fn)
      tf(); tf(); tf()
    end
    call_three_times()
    await(sleep(0))
    assert.equal(3, calls)
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(next(weak)) -- the loop lets it go in its next turn
    await(sleep(0))
    await(sleep(0))
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end))

  it("is bound to the current loop, runs fn with the copied arguments",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local fut = loop:create_future()
      local tf = asyncio.threadsafe(function(t) fut:set_result(t) end)
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local sent = {list = {1, 2}}
      ex:submit(function(call, t)
        t.list[3] = "added in the worker"
        call(t)
      end, tf, sent)
      local got = await(asyncio.wait_for(fut, 10))
      assert.same({1, 2, "added in the worker"}, got.list)
      assert.same({1, 2}, sent.list)
    end))

  it("an error in fn goes to the loop's exception handler", function()
    local loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    local contexts = {}
    loop:set_exception_handler(function(_, ctx)
      contexts[#contexts + 1] = ctx
    end)
    local tf = asyncio.threadsafe(function() error("boom") end)
    tf()
    loop:run_until_complete(sleep(0))
    assert.equal(1, #contexts)
    assert.equal("Exception in threadsafe function", contexts[1].message)
    assert.truthy(tostring(contexts[1].exception):find("boom"))
    loop:close()
    require("asyncio.core")._unset_event_loop()
  end)

  it("calls posted together run in order; one that raises is reported "
     .. "and the calls after it still run", function()
    local loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    local contexts, log = {}, {}
    loop:set_exception_handler(function(_, ctx)
      contexts[#contexts + 1] = ctx
    end)
    local tf = asyncio.threadsafe(function(v)
      log[#log + 1] = v
      if v == 2 or v == 4 then error("boom " .. v) end
    end)
    local other = asyncio.threadsafe(function(v)
      log[#log + 1] = "other " .. v
    end)
    tf(1); tf(2); tf(3); other(1)
    loop:call_soon_threadsafe(function() log[#log + 1] = "soon" end)
    tf(4); tf(5)
    loop:run_until_complete(sleep(0))
    assert.same({1, 2, 3, "other 1", "soon", 4, 5}, log)
    assert.equal(2, #contexts)
    assert.truthy(tostring(contexts[1].exception):find("boom 2"))
    assert.truthy(tostring(contexts[2].exception):find("boom 4"))
    loop:close()
    require("asyncio.core")._unset_event_loop()
  end)

  it("a KeyboardInterrupt from one of calls posted together leaves the "
     .. "run; the calls after it run in the next one", function()
    local loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    local log = {}
    local tf = asyncio.threadsafe(function(v)
      log[#log + 1] = v
      if v == 2 then error(asyncio.KeyboardInterrupt()) end
    end)
    tf(1); tf(2); tf(3); tf(4)
    local ok, err = pcall(loop.run_until_complete, loop, sleep(0))
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(err, asyncio.KeyboardInterrupt))
    assert.same({1, 2}, log)
    loop:run_until_complete(sleep(0))
    assert.same({1, 2, 3, 4}, log)
    loop:close()
    require("asyncio.core")._unset_event_loop()
  end)

  it("with no current loop it binds to get_event_loop()", function()
    require("asyncio.core")._unset_event_loop() -- as asyncio.run leaves it
    local got
    local tf = asyncio.threadsafe(function(v) got = v end)
    local loop = asyncio.get_event_loop()
    tf("here")
    loop:run_until_complete(sleep(0))
    assert.equal("here", got)
    loop:close()
    require("asyncio.core")._unset_event_loop()
  end)
end)

describe("S: loop threads", function()
  it("start_loop_thread runs calls in another state; stop and join end it",
    function()
      local ref = asyncio.start_loop_thread()
      assert.truthy(tostring(ref):find("^<LoopRef "))
      assert.is_false(ref:is_closed())
      local out = asyncio.Channel()
      _G.THREADS_SPEC_MARK = "main"
      ref:call_soon_threadsafe(function(o)
        local aio = require "asyncio"
        local loop = aio.get_running_loop()
        o:put({mark = THREADS_SPEC_MARK, running = loop:is_running(),
               thread = tostring(coroutine.running())})
      end, out)
      local got = out:get(10)
      _G.THREADS_SPEC_MARK = nil
      assert.is_nil(got.mark)
      assert.is_true(got.running)
      assert.are_not.equal(tostring(coroutine.running()), got.thread)
      ref:stop()
      ref:join()
      assert.is_true(ref:is_closed())
      assert.truthy(tostring(ref):find(" closed>$"))
    end)

  it("a loop reference used after its thread ended raises "
     .. "'Event loop is closed'", function()
    local ref = asyncio.start_loop_thread()
    ref:stop()
    ref:join()
    local err = raises(asyncio.RuntimeError, ref.call_soon_threadsafe, ref,
                       print)
    assert.equal("Event loop is closed", err.message)
    err = raises(asyncio.RuntimeError, ref.stop, ref)
    assert.equal("Event loop is closed", err.message)
    raises(asyncio.RuntimeError, asyncio.run_coroutine_threadsafe,
           add(1, 2), ref)
    raises(asyncio.RuntimeError, ref.join, ref) -- joined already
  end)

  it("stop runs after the calls posted before it", function()
    local ref = asyncio.start_loop_thread()
    local out = asyncio.Channel()
    for i = 1, 3 do
      ref:call_soon_threadsafe(function(o, n) o:put(n) end, out, i)
    end
    ref:stop()
    ref:join()
    assert.equal(3, out:qsize())
    for i = 1, 3 do assert.equal(i, out:get(0)) end
  end)

  it("a fatal error in a loop thread ends it: join returns, the loop is "
     .. "closed", function()
    local ref = asyncio.start_loop_thread()
    ref:call_soon_threadsafe(function()
      local aio = require "asyncio"
      error(aio.SystemExit(3))
    end)
    ref:join()
    assert.is_true(ref:is_closed())
    local err = raises(asyncio.RuntimeError, ref.call_soon_threadsafe, ref,
                       print)
    assert.equal("Event loop is closed", err.message)
  end)

  it("a reference that is not a loop thread's cannot be joined", function()
    local loop = asyncio.new_event_loop()
    local ch = asyncio.Channel()
    ch:put(loop)
    local ref = ch:get(0)
    raises(asyncio.RuntimeError, ref.join, ref)
    loop:close()
  end)
end)

describe("S: run_coroutine_threadsafe", function()
  local ref

  setup(function() ref = asyncio.start_loop_thread() end)
  teardown(function()
    ref:stop()
    ref:join()
  end)

  it("S228 from a plain thread, result() blocks and returns 1 + 2 = 3",
    function()
      local cf = asyncio.run_coroutine_threadsafe(add(1, 2), ref)
      assert.truthy(tostring(cf):find("^<ConcurrentFuture "))
      assert.equal(3, cf:result(10))
      assert.is_true(cf:done())
      assert.is_false(cf:cancelled())
      assert.is_false(cf:running())
      assert.is_nil(cf:exception())
      assert.equal("<ConcurrentFuture finished>", tostring(cf))
    end)

  it("S228 from an executor worker to this thread's loop",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local got = await(loop:run_in_executor(ex, function(target)
        local aio = require "asyncio"
        local plus = aio.async(function(a, b) return a + b end)
        return aio.run_coroutine_threadsafe(plus(1, 2), target):result(10)
      end, loop))
      assert.equal(3, got)
    end))

  it("S228 every result value crosses back", function()
    local many = async(function() return 1, nil, "three" end)
    local cf = asyncio.run_coroutine_threadsafe(many(), ref)
    local got = table.pack(cf:result(10))
    assert.equal(3, got.n)
    assert.same({1, nil, "three"}, {table.unpack(got, 1, 3)})
  end)

  it("S229 an error in the coroutine is raised by result(): Fail!",
    function()
      local cf = asyncio.run_coroutine_threadsafe(fail(), ref)
      local ok, err = pcall(cf.result, cf, 10)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("Fail!$"), tostring(err))
      assert.truthy(tostring(cf:exception()):find("Fail!$"))
      assert.equal("<ConcurrentFuture finished (exception)>", tostring(cf))
    end)

  it("S229 error objects keep their class across", function()
    local bad = async(function()
      local aio = require "asyncio"
      error(aio.ValueError("bad value"))
    end)
    local cf = asyncio.run_coroutine_threadsafe(bad(), ref)
    local err = raises(asyncio.ValueError, cf.result, cf, 10)
    assert.equal("bad value", err.message)
  end)

  it("a result or error that cannot be sent back completes the future "
     .. "with SendError", function()
    local returns_thread = async(function()
      return 1, coroutine.create(print)
    end)
    local cf = asyncio.run_coroutine_threadsafe(returns_thread(), ref)
    local err = raises(asyncio.SendError, cf.result, cf, 10)
    assert.equal("args[2]: thread value", err.message)
    local raises_table = async(function() error(setmetatable({}, {})) end)
    cf = asyncio.run_coroutine_threadsafe(raises_table(), ref)
    err = raises(asyncio.SendError, cf.result, cf, 10)
    assert.equal("args[1]: table with a metatable", err.message)
  end)

  it("S230 result(0) raises TimeoutError; cancel() cancels the remote "
     .. "task and leaves no task", function()
    local events = asyncio.Channel()
    local cf = asyncio.run_coroutine_threadsafe(sleeper(3600, events), ref)
    assert.equal("started", events:get(10))
    raises(asyncio.TimeoutError, cf.result, cf, 0)
    raises(asyncio.TimeoutError, cf.result, cf, 0.01)
    assert.is_false(cf:done())
    assert.is_true(cf:cancel())
    assert.is_true(cf:cancelled())
    assert.is_true(cf:done())
    raises(asyncio.CancelledError, cf.result, cf)
    assert.equal("cancelled", events:get(10))
    -- only the counting task itself is left on the loop
    assert.equal(1, asyncio.run_coroutine_threadsafe(count_tasks(), ref)
                      :result(10))
  end)

  it("S231 a task cancelled on the loop side: result() raises "
     .. "CancelledError", function()
    local self_cancel = async(function()
      local aio = require "asyncio"
      aio.current_task():cancel()
      aio.await(aio.sleep(0))
    end)
    local cf = asyncio.run_coroutine_threadsafe(self_cancel(), ref)
    raises(asyncio.CancelledError, cf.result, cf, 10)
    assert.is_true(cf:cancelled())
  end)

  it("S232 a non-coroutine raises TypeError at once", function()
    raises(asyncio.TypeError, asyncio.run_coroutine_threadsafe,
           function() end, ref)
    raises(asyncio.TypeError, asyncio.run_coroutine_threadsafe, add, ref)
    raises(asyncio.TypeError, asyncio.run_coroutine_threadsafe, 42, ref)
    local loop = asyncio.new_event_loop()
    raises(asyncio.TypeError, asyncio.run_coroutine_threadsafe,
           loop:create_future(), ref)
    loop:close()
  end)

  it("a coroutine that cannot be sent raises SendError; nothing runs",
    function()
      local out = asyncio.Channel()
      local upvalue = out
      local closure = async(function() upvalue:put("ran") end)
      local err = raises(asyncio.SendError, asyncio.run_coroutine_threadsafe,
                         closure(), ref)
      assert.equal("fn: function with upvalues", err.message)
      assert.equal(1, asyncio.run_coroutine_threadsafe(count_tasks(), ref)
                        :result(10))
      assert.equal(0, out:qsize())
    end)

  it("await(cf) in a task does not block its loop: other tasks progress",
    aspec.async(function()
      local ticks = 0
      local ticker = create_task(async(function()
        while true do
          ticks = ticks + 1
          await(sleep(0.001))
        end
      end)())
      local gate = asyncio.Channel()
      local wait_gate = async(function(g)
        local aio = require "asyncio"
        return aio.await(g:aget())
      end)
      local cf = asyncio.run_coroutine_threadsafe(wait_gate(gate), ref)
      -- the gate opens only once the ticker ran five times while this
      -- task awaits cf
      create_task(async(function()
        while ticks < 5 do await(sleep(0.001)) end
        gate:put("opened")
      end)())
      assert.equal("opened", await(asyncio.wait_for(cf, 10)))
      assert.is_true(ticks >= 5)
      ticker:cancel()
    end))

  it("to this thread's own loop: await(cf) in a task", aspec.async(function()
    local cf = asyncio.run_coroutine_threadsafe(add(20, 22),
                                                asyncio.get_running_loop())
    assert.equal(42, await(cf))
  end))

  it("wrap_future: a Future of the running loop; a Future unchanged",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local cf = asyncio.run_coroutine_threadsafe(add(2, 3), ref)
      local fut = asyncio.wrap_future(cf)
      assert.is_true(asyncio.isfuture(fut))
      assert.equal(loop, fut:get_loop())
      assert.equal(5, await(fut))
      local plain = loop:create_future()
      assert.equal(plain, asyncio.wrap_future(plain))
      plain:cancel()
    end))

  it("cancelling the task awaiting cf cancels the remote task",
    aspec.async(function()
      local events = asyncio.Channel()
      local cf = asyncio.run_coroutine_threadsafe(sleeper(3600, events), ref)
      local waiter = create_task(async(function() return await(cf) end)())
      assert.equal("started", await(events:aget()))
      waiter:cancel()
      local ok, err = pcall(await, waiter)
      assert.is_false(ok)
      assert.is_true(iserror(err, asyncio.CancelledError))
      assert.equal("cancelled", await(asyncio.wait_for(events:aget(), 10)))
      assert.is_true(cf:cancelled())
    end))
end)

describe("B: wrap_future", function()
  --- Blocks its worker until `gate` has an item; returns that item.
  local function wait_gate(gate)
    return gate:get(10)
  end

  it("B43 cancelling the wrapper cancels the concurrent future",
    aspec.async({clock = "virtual"}, function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local gate = asyncio.Channel()
      local busy = ex:submit(wait_gate, gate)   -- holds the only worker
      local cf = ex:submit(function() return "never" end)
      local fut = asyncio.wrap_future(cf)
      assert.is_false(cf:done())
      assert.is_true(fut:cancel())
      await(sleep(0))
      assert.is_true(cf:cancelled())
      gate:put("free")
      assert.equal("free", busy:result(10))
    end))

  it("B43 a concurrent future that already has its result keeps it when "
     .. "the wrapper is cancelled", aspec.async({clock = "virtual"}, function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local gate = asyncio.Channel()
      local cf = ex:submit(wait_gate, gate)
      local fut = asyncio.wrap_future(cf)
      gate:put(42)
      assert.equal(42, cf:result(10))   -- done there; not yet heard here
      assert.is_false(fut:done())
      assert.is_true(fut:cancel())
      -- the same worker's next job completes after cf did, so its news
      -- arrives after cf's
      local after = ex:submit(function() return "after" end)
      assert.equal("after", await(asyncio.wrap_future(after)))
      assert.is_true(fut:cancelled())
      assert.is_false(cf:cancelled())
      assert.equal(42, cf:result(0))
    end))

  it("wrap_future of a concurrent future already done is done one "
     .. "iteration later, as CPython's (it copies the state with "
     .. "call_soon_threadsafe), and can be cancelled meanwhile",
    aspec.async({clock = "virtual"}, function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local cf = ex:submit(function() return "r", 2 end)
      assert.equal("r", cf:result(10))
      local fut = asyncio.wrap_future(cf)
      assert.is_false(fut:done())
      await(sleep(0))
      assert.is_true(fut:done())
      assert.same({"r", 2}, {fut:result()})
      local other = asyncio.wrap_future(cf)
      assert.is_true(other:cancel())
      await(sleep(0))
      assert.is_true(other:cancelled())
      assert.is_false(cf:cancelled())
      -- an error and a cancellation cross the same way
      local bad = ex:submit(function()
        error(require("asyncio").ValueError("no"))
      end)
      pcall(bad.result, bad, 10)
      local wbad = asyncio.wrap_future(bad)
      assert.is_false(wbad:done())
      local ok, err = pcall(await, wbad)
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(err, asyncio.ValueError))
    end))
end)

describe("concurrent futures: add_done_callback", function()
  --- Blocks its worker until `gate` has an item; returns that item.
  local function wait_gate(gate)
    return gate:get(10)
  end

  it("calls each callback with the future once it is done, in the order "
     .. "added, from this thread's loop; at once when it is done already",
    aspec.async({clock = "virtual"}, function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local gate = asyncio.Channel()
      local cf = ex:submit(wait_gate, gate)
      local calls = {}
      cf:add_done_callback(function(f)
        calls[#calls + 1] = {"first", f == cf, f:result(0)}
      end)
      cf:add_done_callback(function(f)
        calls[#calls + 1] = {"second", f:result(0)}
      end)
      await(sleep(0))
      assert.same({}, calls)
      gate:put("go")
      assert.equal("go", await(cf)) -- added last: woken after them
      assert.same({{"first", true, "go"}, {"second", "go"}}, calls)
      cf:add_done_callback(function(f)
        calls[#calls + 1] = {"late", f:done()}
      end)
      assert.same({"late", true}, calls[3])
      -- a cancelled future calls them too
      local busy = ex:submit(wait_gate, gate)
      local queued = ex:submit(function() return "never" end)
      local cancelled
      queued:add_done_callback(function(f) cancelled = f:cancelled() end)
      assert.is_true(queued:cancel())
      gate:put("free")
      assert.equal("free", await(busy))
      await(sleep(0))
      assert.is_true(cancelled)
    end))

  it("what a callback raises goes to the loop's exception handler, as "
     .. "concurrent.futures logs it", aspec.async({clock = "virtual"},
    function()
      local ex <close> = asyncio.ThreadPoolExecutor(1)
      local seen = {}
      asyncio.get_running_loop():set_exception_handler(function(_, ctx)
        seen[#seen + 1] = ctx
      end)
      local cf = ex:submit(function() return 1 end)
      assert.equal(1, cf:result(10))
      cf:add_done_callback(function() error(asyncio.ValueError("cb")) end)
      assert.equal(1, #seen)
      assert.equal("exception calling callback for <ConcurrentFuture "
                   .. "finished>", seen[1].message)
      assert.is_true(iserror(seen[1].exception, asyncio.ValueError))
      assert.equal(cf, seen[1].future)
      local gate = asyncio.Channel()
      local pending = ex:submit(wait_gate, gate)
      pending:add_done_callback(function() error("late", 0) end)
      gate:put(2)
      assert.equal(2, await(pending))
      await(sleep(0))
      assert.equal(2, #seen)
      assert.equal("late", seen[2].exception)
      assert.equal(pending, seen[2].future)
      -- a failure the callback reads is not reported as never retrieved
      local failing = ex:submit(function(g)
        g:get(10)
        error("worker failed", 0)
      end, gate)
      local saw
      failing:add_done_callback(function(f) saw = f:exception() end)
      gate:put(3)
      while saw == nil do await(sleep(0)) end
      assert.equal("worker failed", saw)
      for _ = 1, 3 do
        collectgarbage()
        await(sleep(0))
      end
      assert.equal(2, #seen)
      assert.matches("function expected",
                     tostring(h.error_of(cf.add_done_callback, cf, 5)))
    end))

  it("a pending future without a running loop in this thread: "
     .. "RuntimeError; a done one calls at once", function()
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local gate = asyncio.Channel()
    local cf = ex:submit(wait_gate, gate)
    local e = h.error_of(cf.add_done_callback, cf, function() end)
    assert.is_true(iserror(e, asyncio.RuntimeError))
    assert.matches("^no running event loop", e.message)
    gate:put(3)
    assert.equal(3, cf:result(10))
    local got
    cf:add_done_callback(function(f) got = f:result(0) end)
    assert.equal(3, got)
  end)
end)

describe("A: other threads and the loop", function()
  it("A28 another thread gets the loop as a LoopRef: call_soon_threadsafe "
     .. "and no call_soon, call_later, call_at or create_task", function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    local ex <close> = asyncio.ThreadPoolExecutor(1)
    local seen = ex:submit(function(l)
      return {kind = tostring(l), call_soon = l.call_soon,
              call_later = l.call_later, call_at = l.call_at,
              create_task = l.create_task,
              threadsafe = type(l.call_soon_threadsafe)}
    end, loop):result(10)
    assert.truthy(seen.kind:find("^<LoopRef "), seen.kind)
    assert.same({kind = seen.kind, threadsafe = "function"}, seen)
    loop:close()
  end)
end)

describe("S: run_coroutine_threadsafe and a task factory", function()
  it("S233 a factory that raises: the thread-side future gets the error, "
     .. "the exception handler sees that error object once", function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    local boom = asyncio.ValueError("no tasks today")
    local seen = {}
    loop:set_exception_handler(function(_, ctx)
      seen[#seen + 1] = ctx.exception
    end)
    loop:set_task_factory(function(_, coro)
      coro:close()
      error(boom)
    end)
    local cf = asyncio.run_coroutine_threadsafe(add(1, 2), loop)
    loop:call_soon(loop.stop, loop)
    loop:run_forever()
    local err = raises(asyncio.ValueError, cf.result, cf, 0)
    assert.equal("no tasks today", err.message)
    assert.equal(1, #seen)
    assert.is_true(rawequal(boom, seen[1]))
    loop:close()
  end)
end)

describe("asyncio.threadsafe and its loop's life", function()
  it("the function goes with its loop, also when the last call came after "
     .. "the loop closed", function()
    local weak = setmetatable({}, {__mode = "k"})
    do
      local loop = asyncio.new_event_loop()
      asyncio.set_event_loop(loop)
      local fn = function() end
      weak[fn] = true
      local ts = asyncio.threadsafe(fn)
      loop:close()
      require("asyncio.core")._unset_event_loop()
      raises(asyncio.RuntimeError, ts)
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end)
end)
