-- spec/examples_io_spec.lua: the tutorials' I/O programs (examples/; map
-- in examples/README.md) print what the tutorials show: the SMS service
-- and its consumers over HTTP, the Redis producer and workers.
--
-- Each example runs as a script under the CLI (<build>/luaio, the build
-- directory from LUAIO_BUILD), started with asyncio's own subprocess API.
-- The spec starts what they talk to, once, on free local ports: a real
-- redis-server (from Debian; `make test` installs it) with no persistence,
-- and examples/sms_server.lua; both are stopped at the end. The examples
-- keep the tutorials' real sleeps, shortened where the tutorial's values
-- are the user's input (the task values pushed to Redis); times printed
-- are checked as lower bounds or replaced by <t>.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local http = require "asyncio.http"

local servers = dofile("spec/fixtures/servers.lua")
local h = dofile("spec/helpers.lua")
local start, read_until = servers.start, servers.read_until

--- A connection to the spec's Redis, db 3 (the tutorial's), emptied.
local function fresh_db() return servers.fresh_db(3) end

--- Runs an example to its end: stdout, stderr, exit status.
local run = async(function(script, ...)
  local p = await(start(script, ...))
  local out, err = await(p:communicate())
  return out, err, p.returncode
end)

--- Blanks and tabs become one space; the number after "Done <value>" (an
-- elapsed time) becomes <t>.
local function normalise(text)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do
    line = line:gsub("[ \t]+", " "):gsub(" $", "")
    line = line:gsub("^(Done %S+ %S*) [%d.e+-]+$", "%1 <t>")
    line = line:gsub("^(Done %S+) [%d.e+-]+$", "%1 <t>")
    lines[#lines + 1] = line
  end
  return lines
end

local function count_matching(lines, pattern)
  local n = 0
  for _, l in ipairs(lines) do if l:match(pattern) then n = n + 1 end end
  return n
end

describe("I/O examples", function()
  teardown(function()
    servers.stop()
  end)

  it("sms_server.lua: /<n> answers '<n> It works' after n s, /error "
     .. "'error!' after 3 s", aspec.async(function()
    local base = await(servers.sms_url())
    local loop = asyncio.get_running_loop()
    local t0, order = loop:time(), {}
    local session <close> = http.ClientSession()
    local function get(path)
      return asyncio.create_task(async(function()
        local resp <close> = await(session:get(base .. path))
        local body = await(resp:text())
        order[#order + 1] = path
        return {resp.status, body, loop:time() - t0,
                resp.headers["Content-Type"]}
      end)())
    end
    local results = await(asyncio.gather(get("/error"), get("/1"), get("/0"),
                                         get("/nope"), get("/1x")))
    -- Flask answers text/html in UTF-8
    assert.same({200, "error!", "text/html; charset=utf-8"},
                {results[1][1], results[1][2], results[1][4]})
    assert.is_true(results[1][3] >= 3)
    assert.same({200, "1 It works"}, {results[2][1], results[2][2]})
    assert.is_true(results[2][3] >= 1)
    assert.same({200, "0 It works"}, {results[3][1], results[3][2]})
    assert.equal(404, results[4][1])
    assert.equal(404, results[5][1])
    local at = {}
    for i, path in ipairs(order) do at[path] = i end
    assert.is_true(at["/0"] < at["/1"] and at["/1"] < at["/error"])
  end))

  it("http_task.lua: the task's GET ends before main's sleep",
     aspec.async(function()
    await(servers.sms_url())
    local out, err, code = await(run("http_task.lua"))
    local lines = normalise(out)
    assert.equal(2, #lines)
    local t1 = tonumber(lines[1]:match("^task_func: ([%d.]+) %- 0 It works$"))
    local t2 = tonumber(lines[2]:match("^main loop: ([%d.]+)$"))
    assert.is_true(t1 ~= nil and t2 ~= nil, out)
    assert.is_true(t2 >= t1)
    assert.equal("", err)
    assert.equal(0, code)
  end))

  it("aiohttp_count.lua: ten requests, counted as they answer",
     aspec.async(function()
    await(servers.sms_url())
    local out, err, code = await(run("aiohttp_count.lua"))
    local want = {}
    for i = 1, 10 do want[i] = i .. " 200" end
    assert.same(want, normalise(out))
    assert.equal("", err)
    assert.equal(0, code)
  end))

  it("aiohttp_semaphore.lua: 600 requests complete, 500 at a time",
     aspec.async(function()
    await(servers.sms_url())
    local out, err, code = await(run("aiohttp_semaphore.lua"))
    local want = {}
    for i = 1, 600 do want[i] = i .. " 200" end
    assert.same(want, normalise(out))
    assert.equal("", err)
    assert.equal(0, code)
  end))

  it("redis_producer.lua: LPUSH the values, replies as redis-cli prints "
     .. "them", aspec.async(function()
    local conn = await(fresh_db())
    local out, err, code = await(run("redis_producer.lua", 5, 1, 1))
    assert.same({"(integer) 1", "(integer) 2", "(integer) 3"},
                normalise(out))
    assert.equal("", err)
    assert.equal(0, code)
    local items = await(conn:execute_command("LRANGE", "queue", 0, -1))
    assert.same({"1", "1", "5", n = 3}, items)
    await(conn:close())
  end))

  it("sms_consumer.lua: BRPOP tasks from Redis, each calls the SMS "
     .. "service", aspec.async(function()
    await(servers.sms_url())
    local conn = await(fresh_db())
    -- the tutorial pushes 5, 1, 1; 2, 1, 1 shows the same in 2 s
    await(conn:lpush("queue", 2, 1, 1))
    local out, err, code = await(run("sms_consumer.lua", 3))
    assert.same({"Waiting 2", "Waiting 1", "Waiting 1",
                 "200", "1 It works", "Done 1",
                 "200", "1 It works", "Done 1",
                 "200", "2 It works", "Done 2"}, normalise(out))
    assert.equal("", err)
    assert.equal(0, code)
    await(conn:close())
  end))

  it("coroutine_workers.lua: two workers poll with RPOP; Ctrl-C cancels "
     .. "every task and the loop closes", aspec.async(function()
    local conn = await(fresh_db())
    await(conn:lpush("queue", 1, 0))
    local p = await(start("coroutine_workers.lua"))
    local lines = await(read_until(p, function(l)
      return count_matching(l, "^Done") == 2
    end))
    p:send_signal("SIGINT")
    local rest, err = await(p:communicate())
    for line in rest:gmatch("[^\n]*\n") do lines[#lines + 1] = line end
    assert.same({"Start worker", "Start worker", "Wait 1", "Wait 0",
                 "Done 0 <t>", "Done 1 <t>", "true"},
                normalise(table.concat(lines)))
    local t1 = table.concat(lines):match("Done%s+1%s+([%d.e+-]+)")
    assert.is_true(tonumber(t1) >= 1)
    assert.equal(0, p.returncode)
    assert.equal("", err)
    await(conn:close())
  end))

  it("coroutine_workers_brpop.lua: three workers block in BRPOP and share "
     .. "the tasks; Ctrl-C ends them", aspec.async(function()
    local conn = await(fresh_db())
    local p = await(start("coroutine_workers_brpop.lua"))
    local lines = await(read_until(p, function(l)
      return count_matching(l, "^Start worker") == 3
    end))
    -- each worker's BRPOP has reached Redis (its connection opens first)
    while await(conn:info("clients")).blocked_clients < 3 do
      await(asyncio.sleep(0.01))
    end
    await(conn:lpush("queue", 1, 0, 1))
    local more = await(read_until(p, function(l)
      return count_matching(l, "^Done") == 3
    end))
    p:send_signal("SIGINT")
    local rest, err = await(p:communicate())
    local waits, dones, workers = {}, {}, {}
    for _, line in ipairs(normalise(table.concat(more) .. rest)) do
      local w, v = line:match("^Wait (%d) (%d)$")
      if w then
        waits[#waits + 1] = v
        workers[w] = true
      end
      local d = line:match("^Done %d (%d) <t>$")
      if d then dones[#dones + 1] = d end
    end
    assert.equal(3, #lines)
    table.sort(waits)
    assert.same({"0", "1", "1"}, waits)
    assert.same({"0", "1", "1"}, dones) -- the quickest task is done first
    local n = 0
    for _ in pairs(workers) do n = n + 1 end
    assert.equal(3, n) -- each worker took one
    assert.equal("true\n", rest:match("true\n$"))
    assert.equal(0, p.returncode)
    assert.equal("", err)
    await(conn:close())
  end))

  it("workqueue_master.lua: three worker processes square the numbers; "
     .. "SIGTERM stops them", aspec.async(function()
    local conn = await(fresh_db())
    local out, err, code = await(run("workqueue_master.lua", 12))
    local want = {}
    for i = 1, 12 do want[i] = ("%d squared is %d"):format(i, i * i) end
    want[13] = "workers stopped: 3"
    assert.same(want, normalise(out))
    assert.equal("", err)
    assert.equal(0, code)
    await(conn:close())
  end))

  it("examples/README.md maps every example above", function()
    h.assert_mapped{{file = "sms_server.lua"}, {file = "http_task.lua"},
      {file = "aiohttp_count.lua"}, {file = "aiohttp_semaphore.lua"},
      {file = "redis_producer.lua"}, {file = "sms_consumer.lua"},
      {file = "coroutine_workers.lua"},
      {file = "coroutine_workers_brpop.lua"},
      {file = "workqueue_master.lua"}, {file = "workqueue_worker.lua"}}
  end)
end)
