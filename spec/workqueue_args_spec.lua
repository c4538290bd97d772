-- spec/workqueue_args_spec.lua: asyncio.workqueue's arguments and
-- options against a real redis-server. A misspelt option name, a value
-- of the wrong kind or a missing argument raises "bad argument #n to
-- 'f' (...)" naming the function and the option; none is ignored (an
-- ignored result{timout =} waited forever, an ignored enqueue{job_timeout
-- =} ran the job unbounded, concurrency = 0 never took a job, and a bad
-- delay left a half-written job that its job_id then kept out for
-- good). Args that cannot be sent raise PayloadError at the call (it
-- came only when the call was awaited). q:close() closes only a client
-- the queue made itself.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local wq = require "asyncio.workqueue"
local servers = dofile("spec/fixtures/servers.lua")
local await = asyncio.await

--- The message of the error fn(...) raises (fails when it raises none).
local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "no error")
  return tostring(e)
end

local function assert_msg(expected, msg)
  assert.truthy(msg:find(expected, 1, true), msg)
end

describe("asyncio.workqueue arguments", function()
  teardown(servers.stop)

  it("Queue and Worker reject unknown options and bad values",
     aspec.async(function()
    local r = await(servers.client(9))
    assert_msg("bad argument #2 to 'Queue' (unknown option 'leese')",
               err_of(wq.Queue, "a", {redis = r, leese = 5}))
    assert_msg("bad argument #2 to 'Queue' (table expected, got number)",
               err_of(wq.Queue, "a", 5))
    assert_msg("(field 'lease': positive number expected, got 0)",
               err_of(wq.Queue, "a", {redis = r, lease = 0}))
    assert_msg("(field 'retries': non-negative integer expected, got "
               .. "string)", err_of(wq.Queue, "a", {redis = r,
                                                    retries = "3"}))
    assert_msg("(field 'result_ttl': non-negative integer expected, got "
               .. "1.5)", err_of(wq.Queue, "a", {redis = r,
                                                 result_ttl = 1.5}))
    assert_msg("(field 'redis': Redis URL or client expected, got number)",
               err_of(wq.Queue, "a", {redis = 42}))
    local q = wq.Queue("a", {redis = r, retries = 2.0})
    assert.equal(math.type(q.retries), "integer")
    assert_msg("bad argument #2 to 'Worker' (unknown option 'function')",
               err_of(wq.Worker, q, {["function"] = {}}))
    assert_msg("bad argument #2 to 'Worker' (field 'concurrency': "
               .. "positive integer expected, got 0)",
               err_of(wq.Worker, q, {concurrency = 0}))
    assert_msg("(field 'concurrency': positive integer expected, got 2.5)",
               err_of(wq.Worker, q, {concurrency = 2.5}))
    assert_msg("(field 'functions': function expected at 'resize', got "
               .. "string)", err_of(wq.Worker, q,
                                    {functions = {resize = "resize"}}))
    assert_msg("(field 'lease': positive number expected, got -1)",
               err_of(wq.Worker, q, {lease = -1}))
    -- callable tables are functions
    local callable = setmetatable({}, {__call = function() end})
    assert.equal(callable,
                 wq.Worker(q, {functions = {f = callable}}).functions.f)
    await(r:close())
  end))

  it("enqueue rejects unknown options and bad values when it is called, "
     .. "and writes nothing", aspec.async(function()
    local r = await(servers.client(9))
    local q = wq.Queue("b", {redis = r})
    for _, case in ipairs{
      {{job_timeout = 30}, "(unknown option 'job_timeout')"},
      {{retry = 3}, "(unknown option 'retry')"},
      {{timeout = "30"}, "(field 'timeout': non-negative number expected, "
                         .. "got string)"},
      {{retries = -1}, "(field 'retries': non-negative integer expected, "
                       .. "got -1)"},
      {{delay = 0 / 0}, "(field 'delay': non-negative number expected, "
                        .. "got " .. tostring(0 / 0) .. ")"},
      {{retry_delay = math.huge}, "(field 'retry_delay': non-negative "
                                  .. "number expected, got inf)"},
      {{job_id = 7}, "(field 'job_id': string expected, got number)"},
      {{delay = "soon", job_id = "J"}, "(field 'delay': non-negative "
                                       .. "number expected, got string)"},
    } do
      assert_msg("bad argument #3 to 'enqueue' " .. case[2],
                 err_of(q.enqueue, q, "f", {}, case[1]))
    end
    assert_msg("bad argument #3 to 'enqueue' (table expected, got number)",
               err_of(q.enqueue, q, "f", {}, 30))
    assert_msg("bad argument #1 to 'enqueue' (string expected, got "
               .. "function)", err_of(q.enqueue, q, print, {}))
    assert.equal(0, await(r:dbsize()))
    -- the job_id of the refused enqueue is free: a good one runs
    local w = wq.Worker(q, {functions = {f = function() return "ran" end}})
    local run = asyncio.create_task(w:run())
    local job = await(q:enqueue("f", {}, {job_id = "J", delay = 0}))
    assert.equal("J", job.id)
    assert.equal("ran", await(job:result{timeout = 10}))
    w:stop()
    await(run)
    await(r:close())
  end))

  it("enqueue refuses args it cannot send when it is called, with "
     .. "PayloadError, and writes nothing", aspec.async(function()
    local r = await(servers.client(9))
    local q = wq.Queue("e", {redis = r})
    local cyclic, shared = {}, {}
    cyclic.self = cyclic
    for _, case in ipairs{
      {{f = print}, "cannot encode a function in a job payload"},
      {cyclic, "payload holds a table twice (or a cycle)"},
      {{shared, shared}, "payload holds a table twice (or a cycle)"},
      {coroutine.create(print), "cannot encode a thread in a job payload"},
    } do
      local ok, e = pcall(q.enqueue, q, "f", case[1], {job_id = "J"})
      assert.is_false(ok, "no error at the call")
      assert.is_true(asyncio.iserror(e, wq.PayloadError), tostring(e))
      assert.equal(case[2], e.message)
    end
    assert.equal(0, await(r:dbsize()))
    await(r:close())
  end))

  it("job:result and q:job check their arguments instead of waiting",
     aspec.async(function()
    local r = await(servers.client(9))
    local q = wq.Queue("c", {redis = r})
    local job = await(q:enqueue("nobody_runs_this", {}))
    -- no worker: a misspelt timeout would wait forever
    local function result_err(o) -- raised by the call, before any wait
      return err_of(job.result, job, o)
    end
    assert_msg("bad argument #1 to 'result' (unknown option 'timout')",
               result_err{timout = 0.01})
    assert_msg("bad argument #1 to 'result' (table expected, got number)",
               result_err(5))
    assert_msg("(field 'timeout': number expected, got string)",
               result_err{timeout = "1"})
    assert_msg("bad argument #1 to 'job' (string expected, got nil)",
               err_of(await, q:job(nil)))
    assert.equal("queued", await(job:status()))
    await(r:close())
  end))

  it("q:close() leaves open a client it was given, closes its own",
     aspec.async(function()
    local r = await(servers.client(9))
    local q = wq.Queue("d", {redis = r})
    await(q:enqueue("f", {}))
    local before = await(r:execute_command("CLIENT", "ID"))
    await(q:close())
    assert.equal(before, await(r:execute_command("CLIENT", "ID")))
    local own = wq.Queue("d", {redis = await(servers.redis_url(9))})
    assert.equal(1, await(own.redis:llen("wq:d:queue")))
    local id = await(own.redis:execute_command("CLIENT", "ID"))
    await(own:close())
    assert.are_not.equal(id,
                         await(own.redis:execute_command("CLIENT", "ID")))
    await(own.redis:close())
    await(r:close())
  end))
end)
