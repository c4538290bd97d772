-- spec/examples_workers_spec.lua: the tutorials' programs whose main
-- thread hands work to an event loop running in another thread (map in
-- examples/README.md): the Redis master-worker programs, their SMS
-- consumer, the Redis queue model, and the call_soon_threadsafe feeder
-- that prints "here"; and aiohttp_many.lua, which needs the same servers.
--
-- Each example runs as a script under the CLI, against the servers of
-- spec/fixtures/servers.lua; the spec pushes the tasks into Redis as the
-- tutorials do by hand, waiting for the lines a push must follow, so that
-- what the tutorial shows is what must come out. The Redis examples keep
-- the tutorials' real sleeps and their one-second polling.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local await = asyncio.await
local h = dofile("spec/helpers.lua")
local proc = dofile("spec/fixtures/proc.lua")
local servers = dofile("spec/fixtures/servers.lua")

--- The output's lines, blanks made one space (h.example_lines).
local function lines_of(out)
  return h.example_lines(out)
end

--- A predicate for read_until: the last line read is `line`.
local function ends_with(line)
  return function(lines)
    return lines[#lines] and lines[#lines]:gsub("[ \t]+", " ") == line .. "\n"
  end
end

--- Pushes value onto the list key of conn's database.
local function lpush(conn, key, value)
  await(conn:call("LPUSH", key, value))
end

-- One entry per example, for the README check.
local examples = {
  {file = "thread_worker_redis.lua"}, {file = "thread_worker_daemon.lua"},
  {file = "sms_consumer_rpop.lua"}, {file = "redis_coro_producer.lua"},
  {file = "redis_coro_consumer.lua"},
  {file = "thread_loop_call_soon_here.lua"}, {file = "aiohttp_many.lua"},
}

describe("master-worker tutorial examples", function()
  teardown(servers.stop)

  it("thread_worker_redis.lua: tasks pushed as the tutorial pushes them "
     .. "print what seed 000 master-worker主從模式 shows",
     aspec.async(function()
    local conn = await(servers.fresh_db(3))
    local p = await(servers.start("thread_worker_redis.lua", 4))
    lpush(conn, "queue", 2)
    local out = await(servers.read_until(p, ends_with("Done 2")))
    lpush(conn, "queue", 5)
    local more = await(servers.read_until(p, ends_with("Waiting 5")))
    lpush(conn, "queue", 1)
    local more2 = await(servers.read_until(p, ends_with("Done 1")))
    lpush(conn, "queue", 1)
    local rest, err = await(p:communicate())
    out = table.concat(out) .. table.concat(more) .. table.concat(more2)
          .. rest
    assert.same({"Waiting 2", "Done 2", "Waiting 5", "Waiting 1", "Done 1",
                 "Waiting 1", "Done 1", "Done 5"}, lines_of(out))
    assert.equal("", err)
    assert.equal(0, p.returncode)
    await(conn:close())
  end))

  it("thread_worker_daemon.lua: Ctrl-C is caught and printed, the loop "
     .. "thread stopped, and the program ends (seed 000 停止子線程)",
     aspec.async(function()
    local conn = await(servers.fresh_db(3))
    local p = await(servers.start("thread_worker_daemon.lua"))
    lpush(conn, "queue", 1)
    local out = await(servers.read_until(p, ends_with("Done 1")))
    p:send_signal("SIGINT")
    local rest, err = await(p:communicate())
    assert.same({"Waiting 1", "Done 1", "interrupted"},
                lines_of(table.concat(out) .. rest))
    assert.equal("", err)
    assert.equal(0, p.returncode)
    await(conn:close())
  end))

  it("sms_consumer_rpop.lua: polled tasks call the SMS service from the "
     .. "loop thread (seed 000 aiohttp, async-customer.py)",
     aspec.async(function()
    await(servers.sms_url())
    local conn = await(servers.fresh_db(3))
    lpush(conn, "queue", 2)
    lpush(conn, "queue", 1)
    local p = await(servers.start("sms_consumer_rpop.lua", 2))
    local out, err = await(p:communicate())
    assert.same({"Waiting 2", "Waiting 1",
                 "200", "1 It works", "Done 1",
                 "200", "2 It works", "Done 2"}, lines_of(out))
    assert.equal("", err)
    assert.equal(0, p.returncode)
    await(conn:close())
  end))

  it("redis_coro_producer.lua and redis_coro_consumer.lua: the producer "
     .. "pushes '1' to '4', the consumer runs a coroutine for each, in "
     .. "order (seed 004 redis隊列模型)", aspec.async(function()
    local conn = await(servers.fresh_db(3))
    local p = await(servers.start("redis_coro_producer.lua"))
    local out, err = await(p:communicate())
    assert.same({"", "", 0}, {out, err, p.returncode})
    assert.same({"4", "3", "2", "1", n = 4},
                await(conn:call("LRANGE", "coro_test", 0, -1)))
    p = await(servers.start("redis_coro_consumer.lua", 4))
    out, err = await(p:communicate())
    assert.same({"正在執行name: Zarten1", "正在執行name: Zarten2",
                 "正在執行name: Zarten3", "正在執行name: Zarten4"},
                lines_of(out))
    assert.equal("", err)
    assert.equal(0, p.returncode)
    assert.equal(0, await(conn:call("LLEN", "coro_test")))
    await(conn:close())
  end))

  it("thread_loop_call_soon_here.lua: the main thread prints here while "
     .. "the loop thread works the calls in order (seed 004 動態添加協程, "
     .. "同步方式)", function()
    local r = proc.example("thread_loop_call_soon_here.lua", true)
    assert.same({"exit", 0, ""}, {r.how, r.status, r.stderr})
    local lines = lines_of(r.stdout)
    assert.equal(6, #lines)
    assert.truthy(lines[1]:find("^TIME: [%d.e+-]+$"), lines[1])
    -- "here" and the first call start at the same time, in two threads
    local second_third = {lines[2], lines[3]}
    table.sort(second_third)
    assert.same({"More work 6", "here"}, second_third)
    assert.same({"Finished more work 6", "More work 3",
                 "Finished more work 3"}, {lines[4], lines[5], lines[6]})
  end)

  it("aiohttp_many.lua: 600 requests at once all answer, counted as they "
     .. "do (seed 004 aiohttp並發量太大的異常)", aspec.async(function()
    await(servers.sms_url())
    local p = await(servers.start("aiohttp_many.lua"))
    local out, err = await(p:communicate())
    local want = {}
    for i = 1, 600 do want[i] = i .. " 200" end
    assert.same(want, lines_of(out))
    assert.equal("", err)
    assert.equal(0, p.returncode)
  end))

  it("examples/README.md maps every example above", function()
    h.assert_mapped(examples)
  end)
end)
