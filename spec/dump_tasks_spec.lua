-- spec/dump_tasks_spec.lua: asyncio.dump_tasks([file]) (lua/asyncio/dump.lua
-- and bindings/core/dump.c) on a known task tree, and the CLI's two
-- triggers: SIGQUIT and --dump-on-hang=SECONDS.
local asyncio = require "asyncio"
local h = dofile("spec/helpers.lua")
local proc = dofile("spec/fixtures/proc.lua")

local await, async, sleep = asyncio.await, asyncio.async, asyncio.sleep

local has, lacks = h.has, h.lacks

--- A file-like object collecting what is written.
local function sink()
  local parts = {}
  return {write = function(_, s) parts[#parts + 1] = s end,
          text = function() return table.concat(parts) end}
end

--- Task ids count across the process: number them in order of first
-- appearance instead, and call the test's own task 'main'.
local function renumber(text)
  local seen, n = {}, 0
  text = text:gsub("'Task%-%d+'", "'main'")
  return (text:gsub("%(id (%d+)", function(id)
    if not seen[id] then n = n + 1; seen[id] = n end
    return "(id " .. seen[id]
  end))
end

--- The lines of text from the one equal to `first` to the end of that
-- loop's part (other specs may leave loops of their own open).
local function lines_from(text, first)
  local out, on = {}, false
  for line in text:gmatch("[^\n]*") do
    if line == first then on = true
    elseif line:match("^Loop ") then on = false end
    if on and line ~= "" then out[#out + 1] = line end
  end
  return out
end

--- The part of the dump about the loop whose header contains s.
local function loop_part(text, s)
  local out, on = {}, false
  for line in text:gmatch("[^\n]*") do
    if line:match("^Loop ") then on = line:find(s, 1, true) ~= nil end
    if on then out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

describe("dump_tasks", function()
  it("shows each task's state, what it awaits and its stack, and the "
     .. "await tree", h.vspec(function()
    local lock, q, ev = asyncio.Lock(), asyncio.Queue(), asyncio.Event()
    await(lock:acquire())
    local here = debug.getinfo(1, "l").currentline
    local sleeper = async(function() await(sleep(30)) end)
    local locker = async(function() await(lock:acquire()) end)
    local getter = async(function() return await(q:get()) end)
    local function named(coro, name)
      return asyncio.create_task(coro, {name = name})
    end
    local pair = async(function()
      return await(asyncio.gather(named(locker(), "locker"),
                                  named(getter(), "getter")))
    end)
    local parent = async(function(p) return await(p) end)
    local s = named(sleeper(), "sleeper")
    local p = named(pair(), "pair")
    local top = named(parent(p), "parent")
    local idle = named(async(function() await(ev:wait()) end)(), "idle")
    await(sleep(5))
    local f = sink()
    asyncio.dump_tasks(f)
    local text = renumber(loop_part(f:text(), "running=true"))
    has(text, "<EventLoop running=true closed=false debug=false>, " ..
              "7 pending tasks")
    has(text, "Task 'sleeper' (id 2) sleeping (wakes in 25.000 s)")
    has(text, "Task 'pair' (id 3) waiting on gather(2 children)")
    has(text, "Task 'parent' (id 4) waiting on Task 'pair'")
    has(text, "Task 'locker' (id 6) waiting on <Future pending")
    has(text, "via <asyncio.Lock [locked, waiters:1]>")
    has(text, "Task 'getter' (id 7) waiting on <Future pending")
    has(text, "via <asyncio.Queue maxsize=0 qsize=0")
    has(text, "Task 'idle' (id 5) waiting on <Future pending")
    has(text, "via <asyncio.Event [unset, waiters:1]>")
    -- the stacks point at the lines that await
    has(text, "Task 'sleeper' (id 2) sleeping (wakes in 25.000 s)\n" ..
              "    stack (most recent call last):\n" ..
              "      spec/dump_tasks_spec.lua:" .. here + 1 .. ": in sleeper")
    has(text, "      spec/dump_tasks_spec.lua:" .. here + 2 .. ": in locker")
    local tree = lines_from(text,
      "  Await tree (a task above the tasks it awaits):")
    assert.same({
      "  Await tree (a task above the tasks it awaits):",
      "  'main' (id 1, running)",
      "  'sleeper' (id 2, sleeping)",
      "  'parent' (id 4, waiting)",
      "  └── 'pair' (id 3, waiting)",
      "      ├── 'locker' (id 6, waiting)",
      "      └── 'getter' (id 7, waiting)",
      "  'idle' (id 5, waiting)",
    }, tree)
    for _, t in ipairs{s, top, idle} do t:cancel() end
    for _, t in ipairs{s, top, p, idle} do pcall(await, t) end
    lock:release()
  end))

  it("covers every open loop of the state, running or not", function()
    local one = asyncio.new_event_loop({clock = "virtual"})
    local two = asyncio.new_event_loop({clock = "virtual"})
    local t1 = one:create_task(sleep(1), {name = "on-one"})
    local t2 = two:create_task(sleep(2), {name = "on-two"})
    local f = sink()
    asyncio.dump_tasks(f)
    local text = f:text()
    has(text, "<EventLoop running=false closed=false debug=false>, " ..
              "1 pending task\n  Task 'on-one'")
    has(text, "<EventLoop running=false closed=false debug=false>, " ..
              "1 pending task\n  Task 'on-two'")
    -- oldest loop first
    assert.is_true(text:find("on-one", 1, true) < text:find("on-two", 1, true))
    one:run_until_complete(t1)
    one:close()
    f = sink()
    asyncio.dump_tasks(f)
    text = f:text()
    lacks(text, "on-one")
    has(text, "Task 'on-two'")
    two:run_until_complete(t2)
    two:close()
  end)

  it("rejects what is not a file", function()
    assert.has_error(function() asyncio.dump_tasks(42) end,
      "bad argument #1 to 'dump_tasks' (file expected, got number)")
    assert.has_error(function() asyncio.dump_tasks({}) end,
      "bad argument #1 to 'dump_tasks' (file expected, got table)")
    assert.has_error(function() asyncio.dump_tasks(asyncio.Lock()) end,
      "bad argument #1 to 'dump_tasks' (file expected, got userdata)")
  end)
end)

describe("the CLI", function()
  -- the script sends itself SIGQUIT from a child (kill $PPID) that then
  -- waits for its stdin to close, and waits for the child: the first %s
  -- defines release(), which closes that stdin once the signal was seen
  -- (the dump, or the script's own handler), so the dump is printed
  -- while the script waits for the child, which "via <Process" checks,
  -- whatever the order in which the signals reach the loop. Then it runs
  -- the second %s and ends normally.
  local quit_self = [[
local asyncio = require "asyncio"
asyncio.run(function()
  local ev = asyncio.Event()
  local stuck = asyncio.create_task(asyncio.async(function()
    asyncio.await(ev:wait())
  end)(), {name = "stuck"})
  asyncio.await(asyncio.sleep(0))
  local p
  local function release() p.stdin:close() end
  %s
  p = asyncio.await(asyncio.create_subprocess_exec(
    "sh", "-c", "kill -QUIT $PPID; read line",
    {stdin = asyncio.PIPE}))
  asyncio.await(p:wait())
  %s
  stuck:cancel()
  print("went on")
end)
]]

  it("prints the dump on SIGQUIT and goes on", function()
    local path = proc.tempfile(quit_self:format([[
  local dump = asyncio.dump_tasks -- what the CLI calls on SIGQUIT
  asyncio.dump_tasks = function(...) dump(...) release() end]], ""))
    -- a script that missed the signal would wait for ever: stopped
    local r = proc.run({proc.luaio, path}, {timeout = 60})
    os.remove(path)
    assert.equal(0, r.status)
    assert.equal("went on\n", r.stdout)
    has(r.stderr, "SIGQUIT: the tasks of every loop (the program goes on)")
    has(r.stderr, "Task 'stuck' (id 2) waiting on <Future pending")
    has(r.stderr, "via <Process ")
    has(r.stderr, "via <asyncio.Event [unset, waiters:1]>")
  end)

  it("leaves SIGQUIT to a script that handles it", function()
    local path = proc.tempfile(quit_self:format(
      [[local handled = asyncio.Event()
  asyncio.get_running_loop():add_signal_handler("SIGQUIT",
    function() print("handled"); handled:set(); release() end)]],
      [[asyncio.await(asyncio.wait_for(handled:wait(), 10))]]))
    -- a script that missed the signal would wait for ever: stopped
    local r = proc.run({proc.luaio, path}, {timeout = 60})
    os.remove(path)
    assert.equal(0, r.status)
    assert.equal("handled\nwent on\n", r.stdout)
    lacks(r.stderr, "SIGQUIT")
  end)

  it("--dump-on-hang=SECONDS prints it once when nothing ran that long",
     function()
    local path = proc.tempfile([[
local asyncio = require "asyncio"
asyncio.run(function()
  asyncio.await(asyncio.sleep(0.6))
  print("woke")
end)
]])
    local r = proc.run{proc.luaio, "--dump-on-hang=0.2", path}
    os.remove(path)
    assert.equal(0, r.status)
    assert.equal("woke\n", r.stdout)
    local _, n = r.stderr:gsub("no progress for 0.2 seconds", "")
    assert.equal(1, n)
    has(r.stderr, "Task 'Task-1' (id 1) sleeping (wakes in")
  end)

  it("rejects a bad --dump-on-hang", function()
    for _, bad in ipairs{"--dump-on-hang=", "--dump-on-hang=x",
                         "--dump-on-hang=-1"} do
      local r = proc.run{proc.luaio, bad, "-e", "print(1)"}
      assert.equal(1, r.status)
      has(r.stderr, "unrecognized option '" .. bad .. "'")
    end
  end)
end)
