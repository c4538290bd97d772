-- spec/examples_workers_spec.lua: the tutorials' programs that hand work
-- to other threads or processes (map in examples/README.md): the Redis
-- master-worker programs, whose main thread feeds a loop thread, their SMS
-- consumer, the Redis queue model, the call_soon_threadsafe feeder that
-- prints "here" (and aiohttp_many.lua, which needs the same servers); and
-- seed 001's programs of plain threads and processes.
--
-- Each example runs as a script under the CLI. The Redis ones run against
-- the servers of spec/fixtures/servers.lua: the spec pushes the tasks as
-- the tutorials do by hand, waiting for the lines a push must follow, so
-- that what the tutorial shows is what must come out; they keep the
-- tutorials' real sleeps and one-second polling. The others run with
-- LUAIO_EXAMPLE_FAST=1 (a tutorial second lasts 50 ms) and are checked
-- by their lines and by how long they take at least.
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
  await(conn:execute_command("LPUSH", key, value))
end

-- One entry per example, for the README check.
local examples = {
  {file = "thread_worker_redis.lua"}, {file = "thread_worker_daemon.lua"},
  {file = "sms_consumer_rpop.lua"}, {file = "redis_coro_producer.lua"},
  {file = "redis_coro_consumer.lua"},
  {file = "thread_loop_call_soon_here.lua"}, {file = "aiohttp_many.lua"},
}

--- The lines of process_start.lua and process_pool.lua, sorted: process n
-- prints 0 to n-1, for n = 0..9.
local function numbers_below_0_to_9()
  local lines = {}
  for n = 0, 9 do
    for i = 0, n - 1 do lines[#lines + 1] = tostring(i) end
  end
  table.sort(lines)
  return lines
end

local function sorted(list)
  table.sort(list)
  return list
end

-- Seed 001's thread and process programs: file, section, at_least (the
-- tutorial seconds the run must last), check(lines).
-- thread_race and thread_lock add a million per thread, as the tutorial;
-- under valgrind (make check) a thousand, which runs the same code
local PER_THREAD = os.getenv("LUAIO_VALGRIND") == "1" and 1000 or 1000000
local ADDITIONS = PER_THREAD ~= 1000000 and {tostring(PER_THREAD)} or nil

local plain = {
  {file = "thread_subclass.lua", section = "继承Thread类", at_least = 5,
   check = function(lines)
     -- five threads, five lines each
     assert.same(("------------\n"):rep(25), table.concat(lines, "\n") .. "\n")
   end},
  {file = "thread_target.lua", section = "直接使用Thread类", at_least = 5,
   check = function(lines)
     assert.same({"1", "2", "3", "4", "5"}, lines)
   end},
  {file = "thread_local.lua", section = "使用ThreadLocal", at_least = 0,
   check = function(lines)
     assert.same({"----- 1000000", "----- 1000000", "----- 0"}, lines)
   end},
  {file = "thread_timer.lua", section = "使用Timer", at_least = 7,
   check = function(lines)
     assert.same({"--------", "*******"}, lines)
   end},
  {file = "process_start.lua", section = "使用Process类", at_least = 9,
   check = function(lines)
     assert.same(numbers_below_0_to_9(), sorted(lines))
   end},
  {file = "process_pool.lua", section = "使用Pool", at_least = 9,
   check = function(lines)
     assert.same(numbers_below_0_to_9(), sorted(lines))
   end},
  {file = "process_queue.lua", section = "使用Queue", at_least = 5,
   check = function(lines)
     -- the numbers read in order until the end, then the main's line
     assert.equal("强制结束", table.remove(lines))
     assert.is_true(#lines >= 1)
     for i, line in ipairs(lines) do assert.equal(tostring(i), line) end
   end},
  {file = "thread_race.lua", section = "编写一个资源抢占的多线程",
   at_least = 0, args = ADDITIONS, check = function(lines)
     -- two threads' additions, some of which may be lost
     assert.equal(1, #lines)
     local n = math.tointeger(tonumber(lines[1]))
     assert.is_truthy(n, lines[1])
     assert.is_true(n >= 1 and n <= 2 * PER_THREAD, lines[1])
   end},
  {file = "thread_lock.lua", section = "使用Lock", at_least = 0,
   args = ADDITIONS, check = function(lines)
     assert.same({tostring(2 * PER_THREAD)}, lines)
   end},
  {file = "thread_rlock.lua", section = "使用RLock", at_least = 0,
   check = function(lines)
     local want = {}
     for i = 1, 10000 do want[i] = tostring(i) end
     assert.same(want, lines)
   end},
  {file = "thread_semaphore.lua", section = "使用Semaphore", at_least = 15,
   check = function(lines)
     -- the main thread's line last; before it, turns of at most three
     -- threads, two seconds each: at most 8 turns in its 15 s
     assert.equal("******* 0", table.remove(lines))
     assert.is_true(#lines >= 3 and #lines <= 3 * 8, #lines .. " lines")
     for _, line in ipairs(lines) do
       assert.truthy(line:find("^%-%-%-%-%-%-%-%- %d+$"), line)
     end
   end},
  {file = "thread_barrier.lua", section = "使用Barrier", at_least = 9 + 15,
   check = function(lines)
     -- the threads go on by threes, in the order they came
     assert.equal(10, #lines)
     for k = 0, 2 do
       local three = {lines[3 * k + 1], lines[3 * k + 2], lines[3 * k + 3]}
       local want = {}
       for i = 1, 3 do want[i] = "-------- " .. 3 * k + i - 1 end
       assert.same(want, sorted(three))
     end
     assert.equal("******* 0", lines[10])
   end},
  {file = "thread_event.lua", section = "使用Event", at_least = 5,
   check = function(lines)
     -- one line a second; the main's comes with the fifth, in either order
     assert.equal(6, #lines)
     if lines[6] == "********" then
       table.remove(lines, 6)
     else
       assert.equal("********", lines[5])
       table.remove(lines, 5)
     end
     assert.same({"--------", "--------", "--------", "--------",
                  "--------"}, lines)
   end},
  {file = "thread_condition.lua", section = "使用Condition", at_least = 10,
   check = function(lines)
     -- the two threads take turns, stars first
     assert.same(("*******\n--------\n"):rep(5),
                 table.concat(lines, "\n") .. "\n")
   end},
}
for _, ex in ipairs(plain) do examples[#examples + 1] = ex end

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
    -- print(e) of a Ctrl-C's KeyboardInterrupt prints an empty line
    assert.equal("Waiting 1\nDone 1\n\n", table.concat(out) .. rest)
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
                await(conn:execute_command("LRANGE", "coro_test", 0, -1)))
    p = await(servers.start("redis_coro_consumer.lua", 4))
    out, err = await(p:communicate())
    assert.same({"正在執行name: Zarten1", "正在執行name: Zarten2",
                 "正在執行name: Zarten3", "正在執行name: Zarten4"},
                lines_of(out))
    assert.equal("", err)
    assert.equal(0, p.returncode)
    assert.equal(0, await(conn:execute_command("LLEN", "coro_test")))
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

  it("examples/README.md maps every example of this spec", function()
    h.assert_mapped(examples)
  end)
end)

describe("seed 001's thread and process examples", function()

  it("thread_barrier.lua: each three print once the third of them has "
     .. "started, 3 s apart (seed 001 使用Barrier)", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t0 = loop:time()
    local p = await(asyncio.create_subprocess_exec(proc.luaio,
      "examples/thread_barrier.lua", {stdout = asyncio.PIPE,
      env = {PATH = os.getenv("PATH"), LUAIO_EXAMPLE_FAST = "1"}}))
    for k = 1, 3 do
      -- the threads start a second apart, so the third of a three
      -- starts 3k seconds in: none of the three prints before
      local first = await(p.stdout:readline())
      local at = (loop:time() - t0) / h.FAST_SCALE
      assert.truthy(first:find("^%-%-%-%-%-%-%-%- %d\n$"), first)
      assert.is_true(at >= 3 * k, ("three %d printed at %.2f tutorial s")
                     :format(k, at))
      await(p.stdout:readline())
      await(p.stdout:readline())
    end
    await(p:communicate())
    assert.equal(0, p.returncode)
  end))

  for _, ex in ipairs(plain) do
    it(ex.file .. " prints what seed 001's " .. ex.section .. " prints",
      function()
        local r, took = h.timed_example(ex.file, ex.args)
        assert.same({"exit", 0, ""}, {r.how, r.status, r.stderr})
        ex.check(lines_of(r.stdout))
        assert.is_true(took >= ex.at_least, ("ran %.2f tutorial seconds, "
          .. "expected at least %s"):format(took, ex.at_least))
      end)
  end
end)
