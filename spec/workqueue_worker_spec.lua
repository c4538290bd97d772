-- spec/workqueue_worker_spec.lua: an asyncio.workqueue Worker against a
-- real redis-server, where it went wrong before: the traceback kept for
-- an error that is not an error object (it showed the worker's code, not
-- where the job raised, and its class name was ""); a job that awaits
-- something cancelled (it stayed "running" until the worker exited); a
-- tick or a finishing script that meets a dropped connection or an error
-- reply such as READONLY (the lease renewals stopped for good, or the job
-- stayed "running"); w:stop() before run() took its first step (it was
-- lost: run() never returned); SIGTERM with two workers on one loop (only
-- the last one stopped); a second run() of a worker while its first is
-- going (it put the first's running jobs back in the queue, which ran
-- them again, and never returned); an id put back in the queue after its
-- job ended and its record expired (it was buried as malformed; the
-- requeue made a junk record, or turned a done job back to queued and it
-- ran again); a dead job's record, which never expired, and its id, which
-- stayed in the dead-letter list.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local wq = require "asyncio.workqueue"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await

--- A queue on a fresh database 9, and its client.
local function fresh_queue(name, opts)
  local r = await(servers.client(9))
  opts = opts or {}
  opts.redis = r
  return wq.Queue(name, opts), r
end

--- Stops worker w, waits for its run() task and closes r; with q, first
-- checks that q's one job is done and nothing else is counted.
local function stop_worker(w, run, r, q)
  w:stop()
  await(run)
  if q then
    assert.same({queued = 0, deferred = 0, running = 0, done = 1, dead = 0},
                await(q:counts()))
  end
  await(r:close())
end

--- The error the awaitable raises (fails when it raises none).
local err_of = dofile("spec/helpers.lua").await_error

--- Makes q's script `name` raise redis.ConnectionError at its calls
-- listed in `failing` (call numbers); returns an Event set by every call
-- that succeeded after them, and the table {calls =} that counts.
local function break_script(q, name, failing)
  local real, seen = q.scripts[name], {calls = 0}
  local after = asyncio.Event()
  local last = 0
  for n in pairs(failing) do last = math.max(last, n) end
  q.scripts[name] = async(function(...)
    seen.calls = seen.calls + 1
    if failing[seen.calls] then
      error(redis.ConnectionError("connection dropped"))
    end
    local res = await(real(...))
    if seen.calls > last then after:set() end
    return res
  end)
  return after, seen
end

--- Replaces the loop's exception handler: -> the list of contexts.
local function capture_reports()
  local reports = {}
  asyncio.get_running_loop():set_exception_handler(function(_, ctx)
    reports[#reports + 1] = ctx
  end)
  return reports
end

--- Waits (10 s at most) until reports holds a report whose message
-- has the plain text `what`: -> that report.
local function until_reported(reports, what)
  return await(asyncio.wait_for(async(function()
    while true do
      for _, ctx in ipairs(reports) do
        if ctx.message:find(what, 1, true) then return ctx end
      end
      await(asyncio.sleep(0.01))
    end
  end)(), 10))
end

--- A worker of q running one job of its function f, which returns 42
-- once h.release is set: h = {w, run (its task), job, reports (the
-- loop's reports, captured), release (an Event)}.
local function run_held_job(q)
  local h = {reports = capture_reports(), release = asyncio.Event()}
  local started = asyncio.Event()
  h.w = wq.Worker(q, {functions = {f = async(function()
    started:set()
    await(h.release:wait())
    return 42
  end)}})
  h.run = asyncio.create_task(h.w:run())
  h.job = await(q:enqueue("f", {}))
  await(asyncio.wait_for(started:wait(), 10))
  return h
end

describe("asyncio.workqueue worker", function()
  teardown(servers.stop)

  it("keeps the traceback of where a job raised a plain value, and no "
     .. "class name for it", aspec.async(function()
    local q, r = fresh_queue("t1")
    local line = debug.getinfo(1, "l").currentline + 1
    local function boom() error("boom at the job") end
    local w = wq.Worker(q, {functions = {boom = boom}})
    local run = asyncio.create_task(w:run())
    local job = await(q:enqueue("boom", {}))
    local e = err_of(job:result{timeout = 10})
    assert.is_true(asyncio.iserror(e, wq.JobError), tostring(e))
    assert.matches("boom at the job", e.message)
    assert.is_nil(e.remote_class)
    local here = "workqueue_worker_spec.lua:" .. line .. ":"
    assert.truthy(e.traceback:find(here, 1, true), e.traceback)
    local dl = await(q:dead_letters())
    assert.equal(1, #dl)
    assert.truthy(dl[1].traceback:find(here, 1, true), dl[1].traceback)
    assert.is_nil(dl[1].error_class)
    assert.matches("boom at the job", dl[1].error)
    stop_worker(w, run, r)
  end))

  it("fails a job that awaits something cancelled (the waiter is not "
     .. "cancelled) and goes on", aspec.async(function()
    local q, r = fresh_queue("t2")
    local calls = 0
    local w = wq.Worker(q, {functions = {
      cancelled = async(function()
        calls = calls + 1
        local f = asyncio.Future()
        f:cancel()
        await(f)
      end),
      ok = function() return "ok" end,
    }})
    local run = asyncio.create_task(w:run())
    local job = await(q:enqueue("cancelled", {}, {retries = 1,
                                                  retry_delay = 0}))
    local e = err_of(job:result{timeout = 10})
    assert.is_true(asyncio.iserror(e, wq.JobError), tostring(e))
    assert.equal("CancelledError", e.remote_class)
    assert.equal("CancelledError", e.message)
    assert.equal(2, calls)
    assert.equal("dead", await(job:status()))
    assert.is_true(await(job:refresh()))
    assert.equal(2, job.attempts)
    assert.equal("ok", await(await(q:enqueue("ok", {})):result{timeout = 10}))
    assert.is_false(run:done())
    stop_worker(w, run, r)
  end))

  it("taking jobs that meets a dropped connection is reported once and "
     .. "tried again: the worker goes on, the job is not stranded",
     aspec.async(function()
    local q, r = fresh_queue("t7")
    local reports = capture_reports()
    -- claim 1 finds nothing; the claim of the job BLMOVE takes fails
    -- twice
    local retried, seen = break_script(q, "claim", {[2] = true, [3] = true})
    local w = wq.Worker(q, {functions = {f = function() return 7 end}})
    local run = asyncio.create_task(w:run())
    await(asyncio.wait_for(async(function()
      while seen.calls < 1 do await(asyncio.sleep(0)) end
    end)(), 10))
    local job = await(q:enqueue("f", {}))
    assert.equal(7, await(job:result{timeout = 10}))
    assert.is_true(retried:is_set())
    assert.equal(1, #reports)
    assert.matches("cannot take jobs", reports[1].message)
    assert.is_true(asyncio.iserror(reports[1].exception,
                                   redis.ConnectionError))
    assert.is_false(run:done())
    stop_worker(w, run, r)
  end))

  it("a job whose record is malformed is a dead letter with a JobError; "
     .. "the worker goes on to the next", aspec.async(function()
    local q, r = fresh_queue("t8")
    local bad = await(q:enqueue("f", {1}))
    await(r:hset("wq:t8:job:" .. bad.id, "attempts", "garbage"))
    local nofn = await(q:enqueue("f", {2}))
    await(r:hdel("wq:t8:job:" .. nofn.id, "fn"))
    local notahash = await(q:enqueue("f", {3}))
    await(r:delete("wq:t8:job:" .. notahash.id))
    await(r:set("wq:t8:job:" .. notahash.id, "x"))
    local good = await(q:enqueue("f", {4}))
    -- a failing job whose retries field is no number: dead, not lost
    local oops = await(q:enqueue("boom", {}, {retries = 3}))
    await(r:hset("wq:t8:job:" .. oops.id, "retries", "many"))
    local w = wq.Worker(q, {functions = {
      f = function(a) return a[1] * 10 end,
      boom = function() error(asyncio.ValueError("boom")) end}})
    local run = asyncio.create_task(w:run())
    assert.equal(40, await(good:result{timeout = 10}))
    for job, why in pairs{[bad] = "attempts is not an integer",
                          [nofn] = "no function or arguments"} do
      local e = err_of(job:result{timeout = 10})
      assert.is_true(asyncio.iserror(e, wq.JobError), tostring(e))
      assert.equal("malformed job: " .. why, e.message)
    end
    local e = err_of(oops:result{timeout = 10})
    assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
    assert.equal("dead", await(oops:status()))
    local dead = {}
    for _, d in ipairs(await(q:dead_letters())) do dead[d.id] = true end
    assert.same({[bad.id] = true, [nofn.id] = true, [notahash.id] = true,
                 [oops.id] = true}, dead)
    assert.is_false(run:done())
    stop_worker(w, run, r)
  end))

  it("a record changed by hand makes result() raise, not wait or fail in "
     .. "Lua: a result no worker wrote, an unknown state",
     aspec.async(function()
    local q, r = fresh_queue("t9")
    local job = await(q:enqueue("f", {}))
    local jk = "wq:t9:job:" .. job.id
    for _, payload in ipairs{"garbage", wq.encode("a bare string")} do
      await(r:hset(jk, {mapping = {state = "done", result = payload}}))
      local e = err_of(job:result{timeout = 5})
      assert.is_true(asyncio.iserror(e, wq.PayloadError), tostring(e))
      assert.equal(("job %s: its result is not one a worker wrote")
                   :format(job.id), e.message)
    end
    await(r:hset(jk, "state", "weird"))
    local e = err_of(job:result())
    assert.is_true(asyncio.iserror(e, wq.WorkQueueError), tostring(e))
    assert.equal(("job %s has an unknown state 'weird'"):format(job.id),
                 e.message)
    await(r:close())
  end))

  it("a failed tick is reported once and the lease renewals go on",
     aspec.async(function()
    local q, r = fresh_queue("t3", {lease = 1})
    local reports = capture_reports()
    local renewed, seen = break_script(q, "tick", {[2] = true, [3] = true})
    local w = wq.Worker(q, {functions = {}})
    local run = asyncio.create_task(w:run())
    await(asyncio.wait_for(renewed:wait(), 10))
    assert.is_true(seen.calls >= 4)
    -- the worker's lease runs past Redis's clock again
    local t = await(r:execute_command("TIME"))
    local lease = tonumber(await(r:execute_command("ZSCORE", "wq:t3:workers",
                                                   w.id)))
    assert.is_true(lease > tonumber(t[1]) + tonumber(t[2]) / 1e6)
    assert.equal(1, #reports)
    assert.matches("cannot renew its lease", reports[1].message)
    assert.is_true(asyncio.iserror(reports[1].exception,
                                   redis.ConnectionError))
    stop_worker(w, run, r)
  end))

  it("a job's end that meets a dropped connection is recorded once Redis "
     .. "answers", aspec.async(function()
    local q, r = fresh_queue("t4")
    local reports = capture_reports()
    local _, seen = break_script(q, "finish", {[1] = true, [2] = true})
    local w = wq.Worker(q, {functions = {f = function() return 42 end}})
    local run = asyncio.create_task(w:run())
    local job = await(q:enqueue("f", {}))
    assert.equal(42, await(job:result{timeout = 10}))
    assert.equal(3, seen.calls)
    assert.equal("done", await(job:status()))
    assert.equal(1, #reports)
    assert.matches("cannot record the end of a job", reports[1].message)
    stop_worker(w, run, r, q)
  end))

  it("a job's end that Redis refuses (READONLY after a failover) is "
     .. "recorded once Redis takes writes again", aspec.async(function()
    local q, r = fresh_queue("t10")
    local h = run_held_job(q)
    local w, run, job, reports = h.w, h.run, h.job, h.reports
    -- a replica of a master that cannot be reached refuses every write
    await(r:execute_command("REPLICAOF", "127.0.0.1", "1"))
    local ok, report = pcall(function()
      h.release:set()
      return until_reported(reports, "cannot record the end of a job")
    end)
    await(r:execute_command("REPLICAOF", "NO", "ONE"))
    assert(ok, report)
    assert.is_true(asyncio.iserror(report.exception, redis.ReadOnlyError),
                   tostring(report.exception))
    assert.equal(42, await(job:result{timeout = 10}))
    assert.equal("done", await(job:status()))
    local n = 0
    for _, ctx in ipairs(reports) do
      if ctx.message:find("cannot record the end", 1, true) then
        n = n + 1
      end
    end
    assert.equal(1, n)
    assert.is_false(run:done())
    stop_worker(w, run, r, q)
  end))

  it("a worker stopped while Redis refuses the end of a job gives it up "
     .. "one lease after the first refusal instead of holding its stop, "
     .. "and reports it: the job stays with the worker, to be delivered "
     .. "again", aspec.async(function()
    local q, r = fresh_queue("t10s", {lease = 1})
    local h = run_held_job(q)
    local w, run, job = h.w, h.run, h.job
    await(r:execute_command("REPLICAOF", "127.0.0.1", "1"))
    local ok, err = pcall(function()
      h.release:set()
      until_reported(h.reports, "cannot record the end of a job")
      w:stop()
      -- run() ends: its LEAVE is refused too, and raises
      return err_of(asyncio.wait_for(run, 10))
    end)
    await(r:execute_command("REPLICAOF", "NO", "ONE"))
    assert(ok, err)
    assert.is_true(asyncio.iserror(err, redis.ReadOnlyError), tostring(err))
    local gave = until_reported(h.reports, "gives up recording the end of "
                                .. "a job")
    assert.is_true(asyncio.iserror(gave.exception, redis.ReadOnlyError),
                   tostring(gave.exception))
    assert.equal("running", await(job:status()))
    assert.same({job.id, n = 1},
                await(r:lrange("wq:t10s:proc:" .. w.id, 0, -1)))
    await(r:close())
  end))

  it("the late end of a run by a worker that lost its job (its lease "
     .. "expired and another worker ended the job) changes nothing",
     aspec.async(function()
    local q, r = fresh_queue("t13", {retries = 3, retry_delay = 0})
    local P, s = q.prefix, q.scripts
    -- A takes both jobs and stalls: the tick gives them to B, which
    -- finishes one and fails the other for good
    local done_job = await(q:enqueue("f", {1}))
    local dead_job = await(q:enqueue("f", {2}, {retries = 0}))
    assert.equal(2, #await(s.claim({}, {P, "A", 2, 30, ""})))
    await(r:zadd(P .. "workers", {A = 0}))
    assert.equal(2, await(s.tick({}, {P, "", 30}))[2])
    assert.equal(2, #await(s.claim({}, {P, "B", 2, 30, ""})))
    assert.equal(1, await(s.finish({}, {P, "B", done_job.id,
                                        wq.encode({n = 1, "B"})})))
    assert.equal(2, await(s.fail({}, {P, "B", dead_job.id, "E", "B", "",
                                      2})))
    -- A's late runs: a failure of the done job, a result of the dead one
    assert.equal(0, await(s.fail({}, {P, "A", done_job.id, "E", "A", "",
                                      1})))
    assert.equal(0, await(s.finish({}, {P, "A", dead_job.id,
                                        wq.encode({n = 1, "A"})})))
    assert.equal("B", await(done_job:result{timeout = 10}))
    assert.equal("dead", await(dead_job:status()))
    assert.same({n = 0}, await(r:zrange(P .. "delayed", 0, -1)))
    assert.same({dead_job.id, n = 1}, await(r:lrange(P .. "dead", 0, -1)))
    assert.same({queued = 0, deferred = 0, running = 0, done = 1, dead = 1},
                await(q:counts()))
    -- a late failure while another worker runs the job does not count
    local job = await(q:enqueue("f", {3}))
    assert.equal(1, #await(s.claim({}, {P, "A", 1, 30, ""})))
    await(r:zadd(P .. "workers", {A = 0})) -- A stalls again
    assert.equal(1, await(s.tick({}, {P, "", 30}))[2])
    assert.equal(1, #await(s.claim({}, {P, "C", 1, 30, ""})))
    assert.equal(0, await(s.fail({}, {P, "A", job.id, "E", "A", "", 1})))
    assert.same({"running", "0", "C", n = 3}, await(r:hmget(P .. "job:" .. job.id,
                                        {"state", "failures", "worker"})))
    await(r:close())
  end))

  it("the ticks' pruning of the dead-letter list passes the letters that "
     .. "stay, so that expired ones behind them leave too",
     aspec.async(function()
    local q, r = fresh_queue("t14", {result_ttl = 0})
    local P, s = q.prefix, q.scripts
    -- 25 dead letters, oldest first: 12 that stay, then 13 whose record
    -- is gone
    for i = 1, 25 do
      local id = "d" .. i
      if i <= 12 then
        await(r:hset(P .. "job:" .. id, {mapping = {state = "dead"}}))
      end
      await(r:lpush(P .. "dead", id))
    end
    for _ = 1, 4 do await(s.tick({}, {P, "", 30})) end
    local left = await(r:lrange(P .. "dead", 0, -1))
    local want = {}
    for i = 12, 1, -1 do want[#want + 1] = "d" .. i end
    want.n = 12
    assert.same(want, left)
    await(r:close())
  end))

  it("a worker stopped while Redis refuses the end of a job once records "
     .. "it when Redis takes it again: the job is done, not run again",
     aspec.async(function()
    local q, r = fresh_queue("t10b")
    local _, seen = break_script(q, "finish", {[1] = true})
    local h = run_held_job(q)
    h.w:stop()
    h.release:set()
    assert.equal(42, await(h.job:result{timeout = 10}))
    assert.equal(2, seen.calls)
    stop_worker(h.w, h.run, r, q)
  end))

  it("a retried claim of an id that left the worker's list meanwhile, and "
     .. "the late failure of an earlier run by the same worker, leave the "
     .. "job to its current run", aspec.async(function()
    local q, r = fresh_queue("t15", {retries = 3, retry_delay = 0})
    local P, s = q.prefix, q.scripts
    local job = await(q:enqueue("f", {}))
    local jk = P .. "job:" .. job.id
    local function record()
      return await(r:hmget(jk, {"state", "attempts", "worker", "failures"}))
    end
    -- A's BLMOVE takes the job, A's claim of it goes unanswered and A's
    -- lease lapses: a tick puts the job back, B claims it, and then A
    -- tries its claim again
    await(r:execute_command("LMOVE", P .. "queue", P .. "proc:A", "RIGHT",
                            "LEFT"))
    await(r:zadd(P .. "workers", {A = 0}))
    assert.equal(1, await(s.tick({}, {P, "", 30}))[2])
    assert.equal(1, #await(s.claim({}, {P, "B", 1, 30, ""})))
    assert.equal(0, #await(s.claim({}, {P, "A", 1, 30, job.id})))
    assert.same({"running", "1", "B", "0", n = 4}, record())
    assert.same({n = 0}, await(r:lrange(P .. "proc:A", 0, -1)))
    assert.same({job.id, n = 1}, await(r:lrange(P .. "proc:B", 0, -1)))
    -- B's lease lapses and B takes the job again: the late failure of
    -- its first run neither counts nor takes the second's place in B's
    -- list
    await(r:zadd(P .. "workers", {B = 0}))
    assert.equal(1, await(s.tick({}, {P, "", 30}))[2])
    assert.equal(2, await(s.claim({}, {P, "B", 1, 30, ""}))[1][4])
    assert.equal(0, await(s.fail({}, {P, "B", job.id, "E", "1st", "", 1})))
    assert.same({"running", "2", "B", "0", n = 4}, record())
    assert.same({job.id, n = 1}, await(r:lrange(P .. "proc:B", 0, -1)))
    assert.same({queued = 0, deferred = 0, running = 1, done = 0, dead = 0},
                await(q:counts()))
    -- the failure of the current run counts
    assert.equal(1, await(s.fail({}, {P, "B", job.id, "E", "2nd", "", 2})))
    assert.same({"failed", "2", "", "1", n = 4}, record())
    assert.same({queued = 0, deferred = 1, running = 0, done = 0, dead = 0},
                await(q:counts()))
    await(r:close())
  end))

  it("the late result of a run whose job waits for its retry, or in the "
     .. "queue, ends the job and takes it out of there: it counts as done "
     .. "only", aspec.async(function()
    local q, r = fresh_queue("t16", {retries = 3, retry_delay = 60})
    local P, s = q.prefix, q.scripts
    --- Claims the next job for A and lets A's lease lapse: a tick puts
    -- the job back in the queue. -> its id.
    local function stall_A()
      local id = await(s.claim({}, {P, "A", 1, 30, ""}))[1][1]
      await(r:zadd(P .. "workers", {A = 0}))
      assert.equal(1, await(s.tick({}, {P, "", 30}))[2])
      return id
    end
    -- one job B ran again and failed: it waits for its retry
    local retried = await(q:enqueue("f", {1}))
    stall_A()
    assert.equal(1, #await(s.claim({}, {P, "B", 1, 30, ""})))
    assert.equal(1, await(s.fail({}, {P, "B", retried.id, "E", "B", "", 2})))
    -- one job back in the queue
    local queued = await(q:enqueue("f", {2}))
    stall_A()
    assert.same({queued = 1, deferred = 1, running = 0, done = 0, dead = 0},
                await(q:counts()))
    -- A's late results
    for _, job in ipairs{retried, queued} do
      assert.equal(1, await(s.finish({}, {P, "A", job.id,
                                          wq.encode({n = 1, "A"})})))
      assert.equal("A", await(job:result{timeout = 10}))
    end
    assert.same({queued = 0, deferred = 0, running = 0, done = 2, dead = 0},
                await(q:counts()))
    await(r:close())
  end))

  it("the ticks write the dead-letter cursor only when it moves, and start "
     .. "from the old end again after dead_letters() removed letters",
     aspec.async(function()
    local q, r = fresh_queue("t17", {result_ttl = 0})
    local P, s = q.prefix, q.scripts
    local cursor = P .. "dead_cursor"
    local function tick() await(s.tick({}, {P, "", 30})) end
    -- no dead letters: no cursor
    tick()
    assert.equal(0, await(r:exists(cursor)))
    -- 22 dead letters, oldest first: 10 that stay, 10 whose record is
    -- gone, 2 that stay
    for i = 1, 22 do
      local id = "d" .. i
      if i <= 10 or i > 20 then
        await(r:hset(P .. "job:" .. id, {mapping = {state = "dead"}}))
      end
      await(r:lpush(P .. "dead", id))
    end
    tick() -- passes d1 .. d10
    assert.equal("10", await(r:get(cursor)))
    -- the next tick removes d11 .. d20 and passes none: the cursor is
    -- not written (a transaction watching it goes through)
    local p <close> = r:pipeline()
    await(p:watch(cursor))
    tick()
    p:multi()
    p:get(cursor)
    assert.same({"10", n = 1}, await(p:execute()))
    tick() -- reaches the end: the cursor goes
    assert.equal(0, await(r:exists(cursor)))
    assert.equal(12, await(r:llen(P .. "dead")))
    -- dead_letters() removes d3 while the cursor has passed d1 .. d10;
    -- d10's record goes afterwards: the next tick removes it
    tick()
    await(r:delete(P .. "job:d3"))
    assert.equal(11, #await(q:dead_letters()))
    await(r:delete(P .. "job:d10"))
    tick()
    local want = {"d22", "d21", "d9", "d8", "d7", "d6", "d5", "d4", "d2",
                  "d1", n = 10}
    assert.same(want, await(r:lrange(P .. "dead", 0, -1)))
    await(r:close())
  end))

  it("w:stop() before run() took its first step stops it",
     aspec.async(function()
    local q, r = fresh_queue("t5")
    local calls = 0
    local job = await(q:enqueue("f", {}))
    local w = wq.Worker(q, {functions = {f = function() calls = calls + 1 end}})
    local run = asyncio.create_task(w:run())
    w:stop()
    local ok = pcall(await, asyncio.wait_for(asyncio.shield(run), 10))
    if not ok then w:stop() end
    await(run)
    assert.is_true(ok, "run() did not return")
    assert.equal(0, calls)
    assert.equal("queued", await(job:status()))
    -- and the worker runs again afterwards
    run = asyncio.create_task(w:run())
    await(job:result{timeout = 10})
    assert.equal(1, calls)
    stop_worker(w, run, r)
  end))

  it("a worker run again after its run() was cancelled delivers the "
     .. "jobs that run left again", aspec.async(function()
    local q, r = fresh_queue("t7", {lease = 1})
    local started, release = asyncio.Event(), asyncio.Event()
    local attempts = {}
    local function f(_, job)
      attempts[#attempts + 1] = job.attempts
      started:set()
      await(release:wait())
      return "done"
    end
    local job = await(q:enqueue("f", {}))
    local w = wq.Worker(q, {functions = {f = f}})
    local run = asyncio.create_task(w:run())
    await(asyncio.wait_for(started:wait(), 10))
    run:cancel() -- the running job is cancelled, left in w's list
    assert.is_false(pcall(await, run))
    release:set()
    -- the same worker, run again, renews the lease of its id: it must
    -- not leave the job it held before to a lease that never expires
    run = asyncio.create_task(w:run())
    assert.equal("done", await(job:result{timeout = 10}))
    assert.same({1, 2}, attempts)
    stop_worker(w, run, r, q)
  end))

  it("a job that a stopped worker's cancelled BLMOVE takes after the "
     .. "worker left is delivered by another worker", aspec.async(function()
    local q, r = fresh_queue("t8", {lease = 0.5})
    -- w's BLMOVE reaches Redis only when `gate` opens, as one sent just
    -- before w:stop() may reach it after the script w runs as it leaves
    local gate, sent = asyncio.Event(), asyncio.Event()
    local real = r.blmove
    r.blmove = async(function(self, ...)
      local args = table.pack(...)
      local late = asyncio.ensure_future(async(function()
        sent:set()
        await(gate:wait())
        return await(real(self, table.unpack(args, 1, args.n)))
      end)())
      return await(asyncio.shield(late)) -- w:stop() cancels this only
    end)
    local w = wq.Worker(q, {functions = {}})
    local run = asyncio.create_task(w:run())
    await(asyncio.wait_for(sent:wait(), 10))
    w:stop()
    await(asyncio.wait_for(run, 10))
    r.blmove = nil
    local job = await(q:enqueue("f", {}))
    gate:set() -- the late BLMOVE moves the job into w's list
    await(asyncio.wait_for(async(function()
      while await(r:llen("wq:t8:proc:" .. w.id)) == 0 do
        await(asyncio.sleep(0.01))
      end
    end)(), 10))
    -- another worker's tick puts it back once w's lease is over
    local other = wq.Worker(q, {functions = {f = function() return 7 end}})
    local run2 = asyncio.create_task(other:run())
    assert.equal(7, await(job:result{timeout = 10}))
    other:stop()
    await(run2)
    await(r:close())
  end))

  it("a run() of a worker whose run() is going raises RuntimeError and "
     .. "leaves its jobs alone; run() works again after the first returned",
     aspec.async(function()
    local q, r = fresh_queue("t11")
    local started, release = asyncio.Event(), asyncio.Event()
    local calls = 0
    local w = wq.Worker(q, {functions = {f = async(function()
      calls = calls + 1
      started:set()
      await(release:wait())
      return "ok"
    end)}})
    local run = asyncio.create_task(w:run())
    local job = await(q:enqueue("f", {}))
    await(asyncio.wait_for(started:wait(), 10))
    local e = err_of(asyncio.wait_for(w:run(), 10))
    assert.is_true(asyncio.iserror(e, asyncio.RuntimeError), tostring(e))
    assert.equal("this worker is already running", e.message)
    -- the running job is still the first run's, not back in the queue
    assert.equal(0, await(r:llen("wq:t11:queue")))
    assert.equal(1, await(r:llen("wq:t11:proc:" .. w.id)))
    assert.equal("running", await(job:status()))
    release:set()
    assert.equal("ok", await(job:result{timeout = 10}))
    assert.equal(1, calls)
    w:stop()
    await(asyncio.wait_for(run, 10))
    run = asyncio.create_task(w:run())
    assert.equal("ok", await(await(q:enqueue("f", {})):result{timeout = 10}))
    assert.equal(2, calls)
    w:stop()
    await(asyncio.wait_for(run, 10))
    assert.same({queued = 0, deferred = 0, running = 0, done = 2, dead = 0},
                await(q:counts()))
    await(r:close())
  end))

  it("an id put back in the queue after its job ended, or whose record "
     .. "is gone, is dropped: not run again, no dead letter, no record "
     .. "made", aspec.async(function()
    local q, r = fresh_queue("t12")
    local calls = {}
    local w = wq.Worker(q, {functions = {f = function(a)
      calls[#calls + 1] = a[1]
      return a[1]
    end}})
    -- a stalled worker whose lease is over (the tick puts its list back)
    -- and w (a run() cancelled before: its start-up puts its list back)
    -- each hold a job finished since, one dead since, and one whose
    -- record expired since
    await(r:zadd("wq:t12:workers", {stalled = 0}))
    local jobs = {}
    for i, state in ipairs{"done", "dead", "gone", "done", "dead", "gone"} do
      local job = await(q:enqueue("f", {i}))
      local jk = "wq:t12:job:" .. job.id
      await(r:execute_command("LMOVE", "wq:t12:queue", "wq:t12:proc:"
        .. (i <= 3 and "stalled" or w.id), "RIGHT", "LEFT"))
      if state == "done" then
        await(r:hset(jk, {mapping = {state = "done",
                                     result = wq.encode({n = 1, i})}}))
      elseif state == "dead" then
        await(r:hset(jk, {mapping = {state = "dead", error = "boom",
                                     error_class = "asyncio.ValueError"}}))
      else
        await(r:delete(jk))
      end
      jobs[i] = {job = job, state = state, key = jk}
    end
    local run = asyncio.create_task(w:run())
    local lists = {"wq:t12:queue", "wq:t12:proc:stalled",
                   "wq:t12:proc:" .. w.id}
    await(asyncio.wait_for(async(function()
      while true do
        local n = 0
        for _, k in ipairs(lists) do n = n + await(r:llen(k)) end
        if n == 0 then return end
        await(asyncio.sleep(0.01))
      end
    end)(), 10))
    assert.equal(7, await(await(q:enqueue("f", {7})):result{timeout = 10}))
    assert.same({7}, calls)
    for i, j in ipairs(jobs) do
      if j.state == "done" then
        assert.equal("done", await(j.job:status()))
        assert.equal(i, await(j.job:result{timeout = 10}))
      elseif j.state == "dead" then
        assert.equal("dead", await(j.job:status()))
      else
        assert.equal(0, await(r:exists(j.key)))
      end
    end
    assert.same({}, await(q:dead_letters()))
    stop_worker(w, run, r, q)
  end))

  it("a dead job's record expires after result_ttl as a result does, "
     .. "and its id then leaves the dead-letter list",
     aspec.async(function()
    local q, r = fresh_queue("t13", {result_ttl = 60})
    local w = wq.Worker(q, {functions = {
      boom = function() error(asyncio.ValueError("boom")) end}})
    local run = asyncio.create_task(w:run())
    local a = await(q:enqueue("boom", {}))
    local b = await(q:enqueue("boom", {}))
    for _, job in ipairs{a, b} do
      local e = err_of(job:result{timeout = 10})
      assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
      local ttl = await(r:ttl("wq:t13:job:" .. job.id))
      assert.is_true(ttl > 0 and ttl <= 60, tostring(ttl))
    end
    assert.equal(2, #await(q:dead_letters()))
    --- Makes job's record expire now; returns once it is gone.
    local function expire(job)
      local jk = "wq:t13:job:" .. job.id
      await(r:pexpire(jk, 1))
      await(asyncio.wait_for(async(function()
        while await(r:exists(jk)) == 1 do await(asyncio.sleep(0.01)) end
      end)(), 10))
    end
    -- dead_letters() drops an id whose record expired
    expire(a)
    local dl = await(q:dead_letters())
    assert.same({b.id}, {dl[1].id, dl[2]})
    local ids = await(r:lrange("wq:t13:dead", 0, -1))
    assert.same({b.id}, {ids[1], ids[2]})
    local e = err_of(a:result{timeout = 10})
    assert.is_true(asyncio.iserror(e, wq.WorkQueueError), tostring(e))
    assert.equal("no job " .. a.id .. " (expired?)", e.message)
    -- and so does the tick, from the old end of the list
    expire(b)
    await(asyncio.wait_for(async(function()
      while await(r:llen("wq:t13:dead")) > 0 do
        await(asyncio.sleep(0.01))
      end
    end)(), 10))
    -- result_ttl = 0: a dead job's record never expires
    local c = await(wq.Queue("t13", {redis = r, result_ttl = 0})
                    :enqueue("boom", {}))
    err_of(c:result{timeout = 10})
    assert.equal(-1, await(r:ttl("wq:t13:job:" .. c.id)))
    ids = await(r:lrange("wq:t13:dead", 0, -1))
    assert.same({c.id}, {ids[1], ids[2]})
    assert.equal(c.id, await(q:dead_letters())[1].id)
    stop_worker(w, run, r)
  end))

  it("SIGTERM stops every worker running on the loop",
     aspec.async(function()
    local q, r = fresh_queue("t6")
    local a = wq.Worker(q, {functions = {}})
    local b = wq.Worker(wq.Queue("t6b", {redis = r}), {functions = {}})
    local runs = {asyncio.create_task(a:run()), asyncio.create_task(b:run())}
    await(asyncio.sleep(0)) -- both runs took their first step
    local kill = await(asyncio.create_subprocess_exec("sh", "-c",
                                                      "kill -TERM $PPID"))
    assert.equal(0, await(kill:wait()))
    local stopped = {}
    for i, run in ipairs(runs) do
      stopped[i] = pcall(await, asyncio.wait_for(asyncio.shield(run), 10))
    end
    a:stop()
    b:stop()
    for _, run in ipairs(runs) do await(run) end
    assert.same({true, true}, stopped)
    await(r:close())
  end))
end)
