-- spec/workqueue_spec.lua: asyncio.workqueue against a real redis-server:
-- the payload encoding, results, retries with backoff and dead letters,
-- delayed jobs, a malformed payload, a master with three worker
-- processes (build/luaio), a worker killed with kill -9 while holding
-- jobs, and a graceful stop on SIGTERM.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local wq = require "asyncio.workqueue"
local servers = dofile("spec/fixtures/servers.lua")
local proc = dofile("spec/fixtures/proc.lua")
local async, await = asyncio.async, asyncio.await

--- A queue on a fresh database 9.
local function fresh_queue(name, opts)
  local url = await(servers.redis_url(9))
  local r = await(redis.from_url(url))
  await(r:flushdb())
  opts = opts or {}
  opts.redis = r
  return wq.Queue(name, opts), r, url
end

--- Starts n worker processes; returns their Process objects once each
-- printed "ready" (it holds a lease).
local function start_workers(url, name, n, lease, concurrency)
  local ps = {}
  for i = 1, n do
    ps[i] = await(asyncio.create_subprocess_exec(proc.luaio,
      proc.fixture("wq_worker.lua"), url, name, lease, concurrency,
      {stdout = asyncio.PIPE}))
    assert.equal("ready\n",
                 await(asyncio.wait_for(ps[i].stdout:readline(), 10)))
  end
  return ps
end

--- Reads the next n lines of worker p, each "start <job id>" (a gated
-- job it started): -> the set of those ids.
local function read_starts(p, n)
  local ids = {}
  for _ = 1, n do
    local line = await(asyncio.wait_for(p.stdout:readline(), 10))
    ids[assert(line:match("^start (%S+)\n$"), line)] = true
  end
  return ids
end

local function stop_all(ps)
  for _, p in ipairs(ps) do
    if p.returncode == nil then p:send_signal("SIGTERM") end
  end
  for _, p in ipairs(ps) do await(p:wait()) end
end

describe("asyncio.workqueue", function()
  teardown(servers.stop)

  it("encodes payloads losslessly and refuses malformed ones", function()
    local v = {1, 2.5, "s\0x", true, false, {nested = {deep = {}}},
               [10] = -7, big = math.maxinteger, n = 3}
    assert.same(v, wq.decode(wq.encode(v)))
    assert.equal(math.type(wq.decode(wq.encode(3))), "integer")
    assert.equal(math.type(wq.decode(wq.encode(3.0))), "float")
    assert.is_nil(wq.decode(wq.encode(nil)))
    local s = wq.encode({a = "xyz"})
    for _, bad in ipairs{"", "WQ2n", s:sub(1, -2), s .. "x", "WQ1T\255\255"
                         .. "\255\255", "WQ1?", "WQ1Tn\0\0\0nn"} do
      local ok, e = pcall(wq.decode, bad)
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, wq.PayloadError), tostring(e))
      assert.matches("malformed payload", e.message)
    end
    local t = {}
    t.self = t
    assert.is_true(asyncio.iserror(select(2, pcall(wq.encode, t)),
                                   wq.PayloadError))
    assert.is_true(asyncio.iserror(select(2, pcall(wq.encode, print)),
                                   wq.PayloadError))
  end)

  it("runs jobs, retries with backoff, and keeps dead letters",
     aspec.async(function()
    local q, r = fresh_queue("q1", {retry_delay = 0.02})
    local calls = {}
    local w = wq.Worker(q, {concurrency = 4, functions = {
      add = function(a) return a.x + a.y, "two" end,
      flaky = function(_, job)
        calls[#calls + 1] = job.attempts
        if job.attempts < 3 then error("not yet") end
        return "ok at " .. job.attempts
      end,
      boom = function() error(asyncio.ValueError("always")) end,
      slow = async(function() await(asyncio.sleep(0.5)) end),
    }})
    local run = asyncio.create_task(w:run())
    local j = await(q:enqueue("add", {x = 2, y = 3}))
    assert.same({5, "two"}, {await(j:result{timeout = 5})})
    assert.equal("done", await(j:status()))
    assert.is_true(await(j:refresh()))
    assert.equal(1, j.attempts)
    local f = await(q:enqueue("flaky", {}, {retries = 3}))
    assert.equal("ok at 3", await(f:result{timeout = 5}))
    assert.same({1, 2, 3}, calls)
    local b = await(q:enqueue("boom", {}, {retries = 1}))
    local ok, e = pcall(await, b:result{timeout = 5})
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
    assert.equal("always", e.message)
    assert.matches("stack traceback", e.traceback)
    assert.equal("dead", await(b:status()))
    local dl = await(q:dead_letters())
    assert.equal(1, #dl)
    assert.same({b.id, "boom", {}, "always", 2},
                {dl[1].id, dl[1].fn, dl[1].args, dl[1].error,
                 dl[1].attempts})
    assert.matches("stack traceback", dl[1].traceback)
    -- a job for a function the worker lacks, and a timeout
    local nf = await(q:enqueue("nosuch", {}))
    e = select(2, pcall(await, nf:result{timeout = 5}))
    assert.is_true(asyncio.iserror(e, wq.JobError), tostring(e))
    assert.matches("no function 'nosuch'", e.message)
    local s = await(q:enqueue("slow", {}, {timeout = 0.05}))
    e = select(2, pcall(await, s:result{timeout = 5}))
    assert.is_true(asyncio.iserror(e, asyncio.TimeoutError), tostring(e))
    assert.equal("job exceeded its timeout of 0.05 s", e.message)
    dl = await(q:dead_letters())
    assert.same({s.id, "job exceeded its timeout of 0.05 s"},
                {dl[1].id, dl[1].error})
    -- result{timeout} of a job nobody runs raises TimeoutError
    local never = await(q:enqueue("add", {x = 1, y = 1}, {delay = 60}))
    assert.equal("deferred", await(never:status()))
    e = select(2, pcall(await, never:result{timeout = 0.05}))
    assert.is_true(asyncio.iserror(e, asyncio.TimeoutError), tostring(e))
    -- a delayed job runs once due
    local d = await(q:enqueue("add", {x = 1, y = 1}, {delay = 0.05}))
    assert.equal("deferred", await(d:status()))
    assert.equal(2, await(d:result{timeout = 5}))
    -- a malformed payload fails its job, not the worker
    local m = await(q:enqueue("add", {x = 1, y = 1}, {delay = 60}))
    await(r:hset("wq:q1:job:" .. m.id, "args", "WQ1Tgarbage"))
    await(r:zadd("wq:q1:delayed", {[m.id] = 0}))
    e = select(2, pcall(await, m:result{timeout = 5}))
    assert.is_true(asyncio.iserror(e, wq.PayloadError), tostring(e))
    local after = await(q:enqueue("add", {x = 2, y = 2}))
    assert.equal(4, await(after:result{timeout = 5}))
    assert.equal(j.id, await(q:job(j.id)).id)
    assert.is_nil(await(q:job("nope")))
    w:stop()
    await(run)
    await(r:close())
  end))

  it("a master and three worker processes: every result exactly once",
     aspec.async(function()
    local q, r, url = fresh_queue("q2")
    local ps = start_workers(url, "q2", 3, 5, 20)
    -- three workers, three leases (ids unique across processes)
    assert.equal(3, await(r:zcard("wq:q2:workers")))
    local jobs = {}
    for i = 1, 1000 do jobs[i] = q:enqueue("square", {x = i}) end
    jobs = await(asyncio.gather(table.unpack(jobs)))
    await(asyncio.wait_for(async(function()
      for i, job in ipairs(jobs) do
        assert.equal(i * i, await(job:result()))
      end
    end)(), 30))
    local executed = await(r:lrange("executed", 0, -1))
    assert.equal(1000, #executed)
    local seen = {}
    for _, id in ipairs(executed) do
      assert.is_nil(seen[id])
      seen[id] = true
    end
    stop_all(ps)
    for _, p in ipairs(ps) do
      assert.equal(0, p.returncode)
      assert.equal("stopping\nstopped\n", await(p.stdout:read()))
    end
    assert.same({queued = 0, deferred = 0, running = 0, done = 1000,
                 dead = 0}, await(q:counts()))
    await(r:close())
  end))

  it("a worker killed with kill -9 while holding jobs: every job still "
     .. "completes once its lease expires", aspec.async(function()
    local q, r, url = fresh_queue("q3")
    local ps = start_workers(url, "q3", 3, 1, 10)
    local jobs = {}
    for i = 1, 60 do jobs[i] = q:enqueue("gated", {x = i}) end
    jobs = await(asyncio.gather(table.unpack(jobs)))
    -- the first worker fills its ten slots (the gate is closed: its jobs
    -- cannot end), then dies
    local held = read_starts(ps[1], 10)
    ps[1]:kill()
    await(ps[1]:wait())
    await(r:rpush("gate", "open"))
    await(asyncio.wait_for(async(function()
      for i, job in ipairs(jobs) do assert.equal(i, await(job:result())) end
    end)(), 30))
    -- the dead worker's jobs ran again elsewhere
    for _, job in ipairs(jobs) do
      if held[job.id] then
        assert.is_true(await(job:refresh()))
        assert.is_true(job.attempts > 1, "job not redelivered")
        held[job.id] = nil
      end
    end
    assert.is_nil(next(held))
    stop_all(ps)
    await(r:close())
  end))

  it("SIGTERM: a worker stops taking jobs, finishes the running ones, "
     .. "and exits", aspec.async(function()
    local q, r, url = fresh_queue("q4")
    local ps = start_workers(url, "q4", 1, 5, 5)
    local jobs = {}
    for i = 1, 8 do jobs[i] = await(q:enqueue("gated", {x = i})) end
    -- five running (the concurrency), held at the closed gate
    local started = read_starts(ps[1], 5)
    ps[1]:send_signal("SIGTERM")
    assert.equal("stopping\n",
                 await(asyncio.wait_for(ps[1].stdout:readline(), 10)))
    await(r:rpush("gate", "open"))
    await(asyncio.wait_for(ps[1]:wait(), 10))
    assert.equal(0, ps[1].returncode)
    assert.equal("stopped\n", await(ps[1].stdout:readline()))
    for i = 1, 5 do assert.is_true(started[jobs[i].id]) end
    local c = await(q:counts())
    assert.same({5, 3, 0}, {c.done, c.queued, c.running})
    for i = 1, 5 do assert.equal("done", await(jobs[i]:status())) end
    for i = 6, 8 do assert.equal("queued", await(jobs[i]:status())) end
    await(r:close())
  end))
end)
