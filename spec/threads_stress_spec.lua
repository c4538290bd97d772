-- spec/threads_stress_spec.lua: many threads at once against one loop,
-- loop threads started and stopped over and over, busy channels and
-- concurrent futures. Everything posted is counted: nothing may be lost,
-- merged or run twice. `make check` also runs this file under
-- ThreadSanitizer and under valgrind; valgrind runs one thread at a time
-- some fifty times slower, so there (LUAIO_VALGRIND=1) every count is
-- divided by SHRINK.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local SHRINK = os.getenv("LUAIO_VALGRIND") == "1" and 50 or 1
local THREADS, POSTS = 8, 100000 // SHRINK
local LOOP_THREADS = 50 // math.min(SHRINK, 10)
local ROUNDS = 10 // math.min(SHRINK, 5)
local ITEMS = 25000 // SHRINK -- per producer
local TRIPS = 250 // math.min(SHRINK, 10) -- per thread
local RACE_POSTS, RACE_STOP = 50000 // SHRINK, 1000 // SHRINK

describe("threads under stress", function()
  it(("%d threads x %d posts to one loop: every one arrives once, in "
      .. "each thread's order"):format(THREADS, POSTS),
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local done = loop:create_future()
      local expected = THREADS * POSTS
      local seen, last, bad = 0, {}, 0
      local function arrive(t, i)
        if i ~= (last[t] or 0) + 1 then bad = bad + 1 end
        last[t] = i
        seen = seen + 1
        if seen == expected then done:set_result() end
      end
      -- half the threads call a thread-safe callable, half post with
      -- call_soon_threadsafe through a loop reference
      local tf = asyncio.threadsafe(arrive)
      _G.STRESS_ARRIVE = arrive
      local ex <close> = asyncio.ThreadPoolExecutor(THREADS)
      local jobs = {}
      for t = 1, THREADS do
        if t % 2 == 1 then
          jobs[t] = loop:run_in_executor(ex, function(call, id, n)
            for i = 1, n do call(id, i) end
            return n
          end, tf, t, POSTS)
        else
          jobs[t] = loop:run_in_executor(ex, function(ref, id, n)
            local function post(a, b) STRESS_ARRIVE(a, b) end
            for i = 1, n do ref:call_soon_threadsafe(post, id, i) end
            return n
          end, loop, t, POSTS)
        end
      end
      local sent = await(asyncio.gather(table.unpack(jobs)))
      await(asyncio.wait_for(done, 60))
      _G.STRESS_ARRIVE = nil
      for t = 1, THREADS do
        assert.equal(POSTS, sent[t])
        assert.equal(POSTS, last[t])
      end
      assert.equal(expected, seen)
      assert.equal(0, bad)
      -- nothing more arrives afterwards: every post was made before its
      -- job returned, so before this call_soon, and posts that happen
      -- before a call_soon run before its callback
      local flushed = loop:create_future()
      loop:call_soon(flushed.set_result, flushed, true)
      await(flushed)
      assert.equal(expected, seen)
    end))

  it(LOOP_THREADS .. " loop threads started, used, stopped and joined one "
     .. "after another", function()
      local out = asyncio.Channel()
      for i = 1, LOOP_THREADS do
        local ref = asyncio.start_loop_thread()
        ref:call_soon_threadsafe(function(o, n) o:put(n) end, out, i)
        assert.equal(i, out:get(10))
        ref:stop()
        ref:join()
        assert.is_true(ref:is_closed())
      end
    end)

  it(ROUNDS .. " rounds of 8 loop threads at once, each with posts and a "
     .. "coroutine", function()
    local out = asyncio.Channel()
    local work = async(function(n)
      local aio = require "asyncio"
      aio.await(aio.sleep(0))
      return n * 2
    end)
    for round = 1, ROUNDS do
      local refs, cfs = {}, {}
      for i = 1, 8 do refs[i] = asyncio.start_loop_thread() end
      for i = 1, 8 do
        for k = 1, 100 do
          refs[i]:call_soon_threadsafe(function(o, v) o:put(v) end, out, k)
        end
        cfs[i] = asyncio.run_coroutine_threadsafe(work(round * 10 + i),
                                                  refs[i])
      end
      for i = 1, 8 do
        assert.equal((round * 10 + i) * 2, cfs[i]:result(10))
        refs[i]:stop()
      end
      for i = 1, 8 do refs[i]:join() end
      local sum = 0
      for _ = 1, 800 do sum = sum + out:get(0) end
      assert.equal(8 * 5050, sum)
      assert.equal(0, out:qsize())
    end
  end)

  it("loop threads stopped and never joined, their references dropped",
    function()
      for _ = 1, 20 do
        local ref = asyncio.start_loop_thread()
        ref:stop()
      end
      collectgarbage()
      collectgarbage()
      -- still able to start and use one
      local ref = asyncio.start_loop_thread()
      local out = asyncio.Channel()
      ref:call_soon_threadsafe(function(o) o:put("alive") end, out)
      assert.equal("alive", out:get(10))
      ref:stop()
      ref:join()
    end)

  it(("4 threads post up to %d calls each to a loop thread that stops "
      .. "after %d: each post is taken or refused, what ran is a prefix "
      .. "in order, and once refused always refused"):format(
      RACE_POSTS, RACE_STOP), function()
      local ref = asyncio.start_loop_thread()
      local out = asyncio.Channel()
      local ex <close> = asyncio.ThreadPoolExecutor(4)
      local posters = {}
      for t = 1, 4 do
        posters[t] = ex:submit(function(target, o, id, n, stop_at)
          local function arrive(ch, who, i, last)
            ch:put({who, i})
            if i == last then require("asyncio").get_running_loop():stop() end
          end
          local taken, accepted_after = 0, 0
          while taken < n do
            local ok, err = pcall(target.call_soon_threadsafe, target,
                                  arrive, o, id, taken + 1, stop_at)
            if not ok then
              assert(err.message == "Event loop is closed", tostring(err))
              -- sealed: every later post is refused too
              for _ = 1, 100 do
                if pcall(target.call_soon_threadsafe, target, arrive, o, id,
                         0, stop_at) then
                  accepted_after = accepted_after + 1
                end
              end
              break
            end
            taken = taken + 1
          end
          return taken, accepted_after
        end, ref, out, t, RACE_POSTS, t == 1 and RACE_STOP or -1)
      end
      ref:join() -- poster 1's call number RACE_STOP stops it
      local ran, last, bad = {0, 0, 0, 0}, {0, 0, 0, 0}, 0
      while out:qsize() > 0 do
        local item = out:get(0)
        local id, i = item[1], item[2]
        if i ~= last[id] + 1 then bad = bad + 1 end
        last[id], ran[id] = i, ran[id] + 1
      end
      assert.equal(0, bad)
      assert.is_true(ran[1] >= RACE_STOP)
      for t = 1, 4 do
        local taken, accepted_after = posters[t]:result(60)
        assert.equal(0, accepted_after)
        assert.is_true(ran[t] <= taken) -- nothing ran that was not posted
      end
    end)

  it(("4 producers and 4 consumers move %d items through Channel(64)")
     :format(4 * ITEMS), function()
      local ch = asyncio.Channel(64)
      local ex <close> = asyncio.ThreadPoolExecutor(8)
      local producers = {}
      for p = 1, 4 do
        producers[p] = ex:submit(function(c, base, n)
          for i = 1, n do c:put(base + i) end
        end, ch, p * 1000000, ITEMS)
      end
      local consumers = {}
      for c = 1, 4 do
        consumers[c] = ex:submit(function(cin)
          local n, sum = 0, 0
          while true do
            local ok, v = pcall(cin.get, cin)
            if not ok then return n, sum end
            n, sum = n + 1, sum + v
          end
        end, ch)
      end
      for p = 1, 4 do producers[p]:result(60) end
      ch:close()
      local n, sum = 0, 0
      for c = 1, 4 do
        local cn, cs = consumers[c]:result(60)
        n, sum = n + cn, sum + cs
      end
      assert.equal(4 * ITEMS, n)
      local expected = 0
      for p = 1, 4 do expected = expected + ITEMS * p * 1000000
                                 + ITEMS * (ITEMS + 1) // 2 end
      assert.equal(expected, sum)
    end)

  it(4 * TRIPS .. " run_coroutine_threadsafe round trips from 4 threads",
    aspec.async(function()
      local loop = asyncio.get_running_loop()
      local ref = asyncio.start_loop_thread()
      local ex <close> = asyncio.ThreadPoolExecutor(4)
      local jobs = {}
      for t = 1, 4 do
        jobs[t] = loop:run_in_executor(ex, function(target, id, trips)
          local aio = require "asyncio"
          local double = aio.async(function(x)
            local a = require "asyncio"
            a.await(a.sleep(0))
            return x * 2
          end)
          local sum = 0
          for i = 1, trips do
            sum = sum + aio.run_coroutine_threadsafe(double(id * 1000 + i),
                                                     target):result(10)
          end
          return sum
        end, ref, t, TRIPS)
      end
      local sums = await(asyncio.gather(table.unpack(jobs)))
      for t = 1, 4 do
        assert.equal(2 * (TRIPS * t * 1000 + TRIPS * (TRIPS + 1) // 2),
                     sums[t])
      end
      ref:stop()
      ref:join()
    end))
end)
