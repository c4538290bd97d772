-- spec/threadsafe_limit_spec.lua: asyncio.threadsafe(fn, {maxsize = N}),
-- the high-water mark on the calls a thread-safe callable has queued on
-- its loop: posters in other threads wait for room instead of growing
-- the queue without limit; none is lost, each thread's calls run in
-- order; the loop's own thread never waits. `make check` also runs this
-- file under ThreadSanitizer and valgrind (LUAIO_VALGRIND=1: fewer calls).
local asyncio = require "asyncio"
local h = dofile("spec/helpers.lua")
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local SHRINK = os.getenv("LUAIO_VALGRIND") == "1" and 50 or 1
local THREADS, TOTAL, MAXSIZE = 16, 200000 // SHRINK, 1000 // SHRINK

describe("threadsafe with a maxsize", function()
  it(("%d threads post %d calls through maxsize=%d: all run, in each "
      .. "thread's order, and never more than %d wait"):format(
      THREADS, TOTAL, MAXSIZE, MAXSIZE),
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local done = loop:create_future()
      local per = TOTAL // THREADS
      local seen, last, bad, over = 0, {}, 0, 0
      local tf
      tf = asyncio.threadsafe(function(t, i)
        if i ~= (last[t] or 0) + 1 then bad = bad + 1 end
        last[t] = i
        seen = seen + 1
        if tf:stats().qsize > MAXSIZE then over = over + 1 end
        if seen == per * THREADS then done:set_result() end
      end, {maxsize = MAXSIZE})
      local ex <close> = asyncio.ThreadPoolExecutor(THREADS)
      local jobs = {}
      for t = 1, THREADS do
        jobs[t] = loop:run_in_executor(ex, function(call, id, n)
          for i = 1, n do call(id, i) end
          return n
        end, tf, t, per)
      end
      local sent = await(asyncio.gather(table.unpack(jobs)))
      await(asyncio.wait_for(done, 60))
      for t = 1, THREADS do
        assert.equal(per, sent[t])
        assert.equal(per, last[t])
      end
      assert.equal(per * THREADS, seen)
      assert.equal(0, bad)
      assert.equal(0, over)
      local st = tf:stats()
      assert.equal(MAXSIZE, st.maxsize)
      assert.equal(0, st.qsize)
      assert.is_true(st.peak <= MAXSIZE, "peak " .. st.peak)
      assert.is_true(st.peak > 0)
      -- the mark was reached: some posters did wait
      assert.is_true(st.waited > 0, "no poster waited")
      await(asyncio.sleep(0))
      assert.equal(per * THREADS, seen) -- nothing more arrives
    end))

  it("a call in the loop's own thread never waits: it is queued beyond "
     .. "the mark", aspec.async(function()
      local n = 0
      local tf = asyncio.threadsafe(function() n = n + 1 end, {maxsize = 3})
      for _ = 1, 10 do tf() end -- no deadlock: nothing runs the loop here
      local st = tf:stats()
      assert.equal(0, n)
      assert.equal(10, st.qsize)
      assert.equal(10, st.peak)
      assert.equal(0, st.waited)
      await(asyncio.sleep(0))
      assert.equal(10, n)
      assert.equal(0, tf:stats().qsize)
    end))

  it("a poster waiting for room goes on once the loop ran a call",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local order = {}
      local tf = asyncio.threadsafe(function(v) order[#order + 1] = v end,
                                    {maxsize = 1})
      tf("loop") -- fills the mark from the loop's own thread
      local job = loop:run_in_executor(nil, function(call)
        call("worker") -- waits until "loop" has run
        return "posted"
      end, tf)
      -- the loop's thread holds still until the worker found no room
      local t0 = os.time()
      while tf:stats().waited == 0 and os.time() - t0 < 30 do end
      assert.equal(1, tf:stats().waited)
      assert.same({}, order)
      assert.equal("posted", await(job))
      await(asyncio.sleep(0))
      assert.same({"loop", "worker"}, order)
      assert.equal(1, tf:stats().waited)
    end))

  it("while the loop's thread blocks (cf:result, joining workers) the mark "
     .. "is lifted: a caller waiting for room does not deadlock it",
    aspec.async(function()
      local got = {}
      local tf = asyncio.threadsafe(function(i) got[#got + 1] = i end,
                                    {maxsize = 1})
      local ex = asyncio.ThreadPoolExecutor(1)
      local cf = ex:submit(function(call)
        for i = 1, 3 do call(i) end
        return "sent"
      end, tf)
      -- blocks this loop's thread: nothing runs the queue meanwhile
      assert.equal("sent", cf:result(30))
      ex:shutdown(true)
      assert.same({}, got)
      assert.equal(3, tf:stats().peak) -- beyond the mark, counted
      await(asyncio.sleep(0))
      assert.same({1, 2, 3}, got)
    end))

  it("without a maxsize nothing is counted", aspec.async(function()
      local tf = asyncio.threadsafe(function() end)
      tf(); tf()
      assert.same({maxsize = 0, qsize = 0, peak = 0, waited = 0},
                  tf:stats())
      await(asyncio.sleep(0))
    end))

  it("options that are not a table, or a maxsize that is not an integer, "
     .. "are bad arguments", function()
      local f = function() end
      for _, bad in ipairs({1, "x", f}) do
        local ok, err = pcall(asyncio.threadsafe, f, bad)
        assert.is_false(ok)
        assert.matches("bad argument #2 to '[%w.]*threadsafe'", err)
      end
      for _, bad in ipairs({1.5, "many", 0 / 0, math.huge, {}}) do
        local ok, err = pcall(asyncio.threadsafe, f, {maxsize = bad})
        assert.is_false(ok)
        assert.matches("bad argument #2 to '[%w.]*threadsafe' %(maxsize", err)
      end
      local ok, err = pcall(asyncio.threadsafe, f, {maxsize = 1 << 40})
      assert.is_false(ok)
      assert.matches("maxsize is too large", err)
    end)

  it("an unknown option is a bad argument; {maxsize =} is taken",
    aspec.async(function()
      local f = function() end
      local ok, err = pcall(function()
        asyncio.threadsafe(f, {max_size = 10})
      end)
      assert.is_false(ok)
      assert.equal("bad argument #2 to 'threadsafe' (unknown option "
                   .. "'max_size')", h.message(err))
      local tf = asyncio.threadsafe(f, {maxsize = 10})
      assert.equal(10, tf:stats().maxsize)
    end))
end)
