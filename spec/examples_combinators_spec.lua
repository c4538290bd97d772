-- spec/examples_combinators_spec.lua: the tutorial examples that run
-- several coroutines at once (examples/*.lua; map in examples/README.md)
-- print what the tutorials show.
--
-- Each example runs as a script under the CLI, `<build>/luaio
-- examples/x.lua` (build directory from LUAIO_BUILD, default "build"),
-- with LUAIO_EXAMPLE_FAST=1 so that sleeps run on the virtual clock; the
-- Ctrl-C programs run on the real clock and get SIGINT once their tasks
-- have started (printed their first lines). Stdout is compared with the expected text, both normalised the
-- same way (see normalise). The expected text is the tutorial's printed
-- output where it shows one, else what Python prints for the tutorial's
-- program: Python 3.13 (py = "3.13"), or, where 3.13 refuses the
-- program because asyncio.wait no longer takes coroutine objects (this
-- library takes them, as the tutorials' Python did), the output the
-- tutorial's source published for Python 3.6 (py = "3.6"). Where Python
-- prints a set, or the order came from a set, the lines (or the items of
-- a printed set or list) are compared as sets.
local h = dofile("spec/helpers.lua")
local proc = dofile("spec/fixtures/proc.lua")

--- Splits the text between one pair of brackets at its top-level commas.
local function split_items(body)
  local items, depth, quote, start = {}, 0, nil, 1
  for i = 1, #body do
    local c = body:sub(i, i)
    if quote then
      if c == quote then quote = nil end
    elseif c == "'" then
      quote = c
    elseif c:match("[<%[{(]") then
      depth = depth + 1
    elseif c:match("[>%]})]") then
      depth = depth - 1
    elseif c == "," and depth == 0 then
      items[#items + 1] = body:sub(start, i - 1):gsub("^ ", "")
      start = i + 1
    end
  end
  items[#items + 1] = body:sub(start):gsub("^ ", "")
  return items
end

--- Sorts the items of every top-level {...} and [...] of a line.
local function sort_items(line)
  return (line:gsub("%b{}", function(set)
    local items = split_items(set:sub(2, -2))
    table.sort(items)
    return "{" .. table.concat(items, ", ") .. "}"
  end):gsub("%b[]", function(list)
    local items = split_items(list:sub(2, -2))
    table.sort(items)
    return "[" .. table.concat(items, ", ") .. "]"
  end))
end

--- normalise(text, ex) -> the lines of text with what may differ between
-- runs, or between Python's print and Lua's, made equal (h.example_lines,
-- h.unvary); besides, lines matching one of ex.items have the items of
-- their sets and lists sorted, and runs of consecutive lines matching the
-- same pattern of ex.sets are sorted.
local function normalise(text, ex)
  local lines = h.example_lines(text, function(line)
    line = h.unvary(line)
    for _, pat in ipairs(ex.items or {}) do
      if line:find(pat) then line = sort_items(line) end
    end
    return line
  end)
  for _, pat in ipairs(ex.sets or {}) do
    local i = 1
    while i <= #lines do
      local j = i
      while j <= #lines and lines[j]:find(pat) do j = j + 1 end
      if j > i + 1 then
        local run = table.move(lines, i, j - 1, 1, {})
        table.sort(run)
        table.move(run, 1, #run, i, lines)
      end
      i = math.max(j, i + 1)
    end
  end
  return table.concat(lines, "\n")
end

-- One entry per example: file, source (seed and section), expected
-- stdout, and optionally py (the tutorial shows no output: whose Python
-- printed the expected text), sets / items (see normalise), elapsed (the
-- TIME values on the virtual clock), interrupt (run on the real clock,
-- SIGINT once it printed that many lines), check (a function given the stdout,
-- replacing expected).
local examples = {
  {file = "wait_tasks.lua", source = "000 并发和并行", elapsed = {4},
   expected = [[
Waiting: 1
Waiting: 2
Waiting: 4
Task ret: Done after 1s
Task ret: Done after 2s
Task ret: Done after 4s
TIME: 4.003541946411133
]]},
  {file = "nested_wait.lua", source = "000 協程嵌套 (wait)", py = "3.13",
   elapsed = {4}, sets = {"^Task ret:"}, expected = [[
Waiting: 1
Waiting: 2
Waiting: 4
Task ret: Done after 2s
Task ret: Done after 4s
Task ret: Done after 1s
TIME: 4.00
]]},
  {file = "nested_gather.lua", source = "000 協程嵌套 (gather)",
   py = "3.13", elapsed = {4}, expected = [[
Waiting: 1
Waiting: 2
Waiting: 4
Task ret: Done after 1s
Task ret: Done after 2s
Task ret: Done after 4s
TIME: 4.00
]]},
  {file = "nested_gather_return.lua",
   source = "000 協程嵌套 (return gather)", py = "3.13", expected = [[
Waiting: 1
Waiting: 2
Waiting: 2
Task ret: Done after 1s
Task ret: Done after 2s
Task ret: Done after 2s
]]},
  {file = "nested_wait_return.lua", source = "000 協程嵌套 (return wait)",
   py = "3.13", sets = {"^Task ret:"}, expected = [[
Waiting: 1
Waiting: 2
Waiting: 4
Task ret: Done after 4s
Task ret: Done after 1s
Task ret: Done after 2s
]]},
  {file = "nested_as_completed.lua", source = "000 協程嵌套 (as_completed)",
   py = "3.13", elapsed = {4}, expected = [[
Waiting: 1
Waiting: 2
Waiting: 4
Task ret: Done after 1s
Task ret: Done after 2s
Task ret: Done after 4s
TIME: 4.00
]]},
  -- Python 3.13 shows more in a task's repr (what it waits on, its
  -- callbacks); the Lua repr names no future for a sleeping task.
  {file = "stop_all_tasks.lua", source = "000 協程停止 (all_tasks)",
   interrupt = 3, items = {"^{"}, expected = [[
Waiting: 1
Waiting: 2
Waiting: 2
{<Task pending name='Task-1' coro=<do_some_work() running at examples/stop_all_tasks.lua:27> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>, <Task pending name='Task-2' coro=<do_some_work() running at examples/stop_all_tasks.lua:27> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>, <Task pending name='Task-4' coro=<wait() running at lua/asyncio/combinators.lua:262> wait_for=<Future pending cb=[Task.task_wakeup()]>>, <Task pending name='Task-3' coro=<do_some_work() running at examples/stop_all_tasks.lua:27> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>}
true
true
true
true
TIME: 0.8858370780944824
]]},
  {file = "stop_main_task.lua", source = "000 協程停止 (main task)",
   interrupt = 3, items = {"^{"}, expected = [[
Waiting: 1
Waiting: 2
Waiting: 2
{<Task pending name='Task-1' coro=<main() running at examples/stop_main_task.lua:43> wait_for=<Future pending cb=[Task.task_wakeup()]>>, <Task pending name='Task-2' coro=<do_some_work() running at examples/stop_main_task.lua:28> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>, <Task pending name='Task-3' coro=<do_some_work() running at examples/stop_main_task.lua:28> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>, <Task pending name='Task-4' coro=<do_some_work() running at examples/stop_main_task.lua:28> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>}
true
]]},
  {file = "stop_tasks.lua", source = "004 協程的停止",
   interrupt = 3, items = {"^{"}, expected = [[
Waiting: 1
Waiting: 2
Waiting: 2
{<Task pending name='Task-1' coro=<do_some_work() running at examples/stop_tasks.lua:27> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>, <Task pending name='Task-2' coro=<do_some_work() running at examples/stop_tasks.lua:27> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>, <Task pending name='Task-4' coro=<wait() running at lua/asyncio/combinators.lua:262> wait_for=<Future pending cb=[Task.task_wakeup()]>>, <Task pending name='Task-3' coro=<do_some_work() running at examples/stop_tasks.lua:27> wait_for=<Future pending cb=[Task.task_wakeup()]> cb=[function <lua/asyncio/combinators.lua:277>()]>}
true
true
true
true
Time: 0.8858370780944824
]]},
  {file = "wait_coroutines.lua", source = "003 1.7 gather vs. wait",
   py = "3.6", sets = {"^Waiting"}, expected = [[
Waiting 3
Waiting 1
Done
Done
]]},
  {file = "gather_groups.lua", source = "001 asyncio.gather (groups)",
   py = "3.13", expected = [==[
A 1
A 2
B 1
B 2
B 3
B 4
B 1
B 2
B 3
B 4
B 5
B 6
[['A1', 'A2'], ['B1', 'B2', 'B3', 'B4'], ['B1', 'B2', 'B3', 'B4', 'B5', 'B6']]
]==]},
  {file = "wait_phases.lua", source = "002 program 15 (wait)", py = "3.6",
   sets = {"^in phase"}, items = {"^results:"}, expected = [[
starting main
waiting for phases to complete
in phase 0
in phase 2
in phase 1
done with phase 0
done with phase 1
done with phase 2
results: ['phase 1 result', 'phase 0 result', 'phase 2 result']
]]},
  {file = "wait_timeout.lua", source = "002 program 16 (wait timeout)",
   py = "3.6", sets = {"^in phase", "^phase %d canceled"}, expected = [[
starting main
waiting 0.1 for phases to complete
in phase 1
in phase 0
in phase 2
done with phase 0
1 completed and 2 pending
canceling tasks
exiting main
phase 1 canceled
phase 2 canceled
]]},
  {file = "gather_phases.lua", source = "002 program 17 (gather)",
   py = "3.13", expected = [[
starting main
waiting for phases to complete
in phase1
in phase2
done with phase2
done with phase1
results: ['phase1 result', 'phase2 result']
]]},
  {file = "as_completed_phases.lua", source = "002 program 18 (as_completed)",
   py = "3.13", sets = {"^in phase"}, expected = [[
starting main
waiting for phases to complete
in phase 0
in phase 2
in phase 1
done with phase 2
received answer 'phase 2 result'
done with phase 1
received answer 'phase 1 result'
done with phase 0
received answer 'phase 0 result'
results: ['phase 2 result', 'phase 1 result', 'phase 0 result']
]]},
  -- The tutorial shows "Waiting 3, Waiting 1, Done" for one gather (an
  -- older Python, a set); 3.13 starts the coroutines in argument order.
  {file = "gather_coroutines.lua", source = "003 1.4 多个协程",
   py = "3.13", expected = [[
Waiting 1
Waiting 3
Done
Done
Waiting 1
Waiting 3
Done
Done
Waiting 1
Waiting 3
Done
Done
Waiting 1
Waiting 3
Done
Done
[nil, nil]
]]},
  {file = "run_forever_gather.lua", source = "003 1.5.2 (gather)",
   py = "3.13", expected = [[
Waiting 1
Waiting 3
Done
Done
]]},
  {file = "wait_dones_pendings.lua", source = "004 進階例子", py = "3.13",
   elapsed = {4}, items = {"^{"}, sets = {"^Task ret:"}, expected = [[
waiting: 1
waiting: 2
waiting: 4
{<Task finished name='Task-4' coro=<do_some_work() done, defined at /tmp/x.py:21> result='Done after 4s'>, <Task finished name='Task-2' coro=<do_some_work() done, defined at /tmp/x.py:21> result='Done after 1s'>, <Task finished name='Task-3' coro=<do_some_work() done, defined at /tmp/x.py:21> result='Done after 2s'>} set()
Task ret: Done after 4s
Task ret: Done after 1s
Task ret: Done after 2s
Time: 4.004
]]},
}

--- The random sleeps of wait_return_when.lua make its output vary; this
-- checks what every run of the tutorial's program shows: ten starts in
-- order, one result after the first wait, the 2 s round, then the rest;
-- every tag finishes once and is reported in the round it finished in.
-- When none is left for the last round, its wait raises ValueError, which
-- ends the program (exit status 1), as Python's does. r: as proc.run.
local function check_return_when(r)
  local out = r.stdout
  local lines = {}
  for line in out:gmatch("[^\n]+") do
    lines[#lines + 1] = line:gsub("[ \t]+", " ")
  end
  local i = 1
  local function expect(pat)
    local cap = lines[i] and lines[i]:match(pat)
    assert.is_truthy(cap, ("line %d: expected %s, got %s")
                     :format(i, pat, tostring(lines[i])))
    i = i + 1
    return cap
  end
  expect("^Get first result:$")
  for tag = 1, 10 do assert.equal(tostring(tag), expect("^> (%d+)$")) end
  local finished = {}
  -- a round: "< tag" lines as tasks end, then the results of that round
  local function round(until_pat)
    local ended, results = {}, {}
    while lines[i] and not lines[i]:find(until_pat) do
      local tag = lines[i]:match("^< (%d+)$")
      if tag then
        assert.is_nil(finished[tag], "tag " .. tag .. " ended twice")
        finished[tag] = true
        ended[#ended + 1] = tag
      else
        results[#results + 1] = expect("^(%d+)$")
        i = i - 1
      end
      i = i + 1
    end
    table.sort(ended)
    table.sort(results)
    assert.same(ended, results)
    return #results
  end
  assert.equal(1, round("^unfinished:"))
  assert.equal("9", expect("^unfinished: (%d+)$"))
  expect("^Get more results in 2 seconds:$")
  local second = round("^unfinished2:")
  assert.equal(tostring(9 - second), expect("^unfinished2: (%d+)$"))
  expect("^Get all other results:$")
  assert.equal(9 - second, round("^$"))
  assert.equal(#lines + 1, i)
  local n = 0
  for _ in pairs(finished) do n = n + 1 end
  assert.equal(10, n)
  if second == 9 then
    assert.equal("exit 1", r.how .. " " .. tostring(r.status))
    assert.is_truthy(r.stderr:find(
      "^luaio: ValueError: Set of Tasks/Futures is empty%.\n"), r.stderr)
  else
    assert.same({"exit", 0, ""}, {r.how, r.status, r.stderr})
  end
end

examples[#examples + 1] = {
  file = "wait_return_when.lua", check = check_return_when, raw = true,
  source = "004 asyncio.wait 帶有控制功能",
  what = "the rounds the tutorial's program reports for seed "}

--- process_loops.lua prints the list of names, then ten processes print
-- their lines side by side: this checks each process's lines (the
-- process id names it): its ten greetings, names 9 down to 0, all before
-- its ten goodbyes in the same order, from one thread.
local function check_process_loops(out)
  local lines = h.example_lines(out)
  local names = {}
  for i = 1, 100 do names[i] = "'" .. (i - 1) % 10 .. "'" end
  assert.equal("[" .. table.concat(names, ", ") .. "]", lines[1])
  assert.equal(201, #lines)
  local seen = {} -- pid -> {hellos =, ends =, thread =}
  local processes = 0
  for i = 2, #lines do
    local name, pid, thread =
      lines[i]:match("^hello (%d) (%d+)%*%*%*%*%*%*%*%*%*%*(thread: %S+)$")
    if not name then name, pid = lines[i]:match("^end:(%d) (%d+)$") end
    assert.is_truthy(name, "line " .. i .. ": " .. lines[i])
    if not seen[pid] then
      seen[pid] = {hellos = {}, ends = {}, thread = thread}
      processes = processes + 1
    end
    local p = seen[pid]
    if thread then
      assert.equal(0, #p.ends, "a greeting after a goodbye: " .. lines[i])
      assert.equal(p.thread, thread)
      p.hellos[#p.hellos + 1] = name
    else
      p.ends[#p.ends + 1] = name
    end
  end
  assert.equal(10, processes)
  local order = {"9", "8", "7", "6", "5", "4", "3", "2", "1", "0"}
  for _, p in pairs(seen) do
    assert.same(order, p.hellos)
    assert.same(order, p.ends)
  end
end

examples[#examples + 1] = {
  file = "process_loops.lua", check = check_process_loops,
  source = "003 3. 多进程+asyncio",
  what = "each process's lines of the tutorial's program for seed "}

--- Runs an example: on the virtual clock, or on the real clock with
-- SIGINT after ex.interrupt lines of output. An example marked raw is
-- run on the virtual clock and its check is given the whole result
-- (stdout, stderr, exit status) to judge.
local function check(ex)
  if ex.raw then return ex.check(proc.example(ex.file, true)) end
  local out = h.run_example(ex.file, {fast = not ex.interrupt,
                                      interrupt = ex.interrupt})
  if ex.check then return ex.check(out) end
  assert.are.equal(normalise(ex.expected, ex), normalise(out, ex))
  if ex.elapsed then h.assert_times(out, ex.elapsed) end
end

describe("combinator tutorial examples", function()
  for _, ex in ipairs(examples) do
    local what = ex.what or
      ex.py and ("what Python " .. ex.py .. " prints for seed ") or
      "what the tutorial shows for seed "
    it(ex.file .. " prints " .. what .. ex.source, function() check(ex) end)
  end

  it("examples/README.md maps every example above", function()
    h.assert_mapped(examples)
  end)
end)

describe("the combinator examples' normalisation", function()
  it("compares sets and lists item by item in any order", function()
    local ex = {items = {"^{", "^results:"}}
    assert.are.equal(normalise("{<a, b>, <c>} set()", ex),
                     normalise("{<c>, <a, b>} set()", ex))
    assert.are.equal(normalise("results: ['x, y', 'z']", ex),
                     normalise("results: ['z', 'x, y']", ex))
    assert.are_not.equal(normalise("results: ['x', 'z']", ex),
                         normalise("results: ['x', 'y']", ex))
  end)

  it("compares runs of matching lines as sets, and only those", function()
    local ex = {sets = {"^in "}}
    assert.are.equal(normalise("a\nin 2\nin 1\nb", ex),
                     normalise("a\nin 1\nin 2\nb", ex))
    assert.are_not.equal(normalise("in 1\nb\nin 2", ex),
                         normalise("in 2\nb\nin 1", ex))
  end)

  it("hides timings, addresses and locations", function()
    assert.are.equal("TIME: <t>\nTime: <t>", normalise("TIME:\t4.0\nTime: 4",
                                                       {}))
    assert.are.equal("coro=<f() running at <loc>>>",
      normalise("coro=<f() running at examples/x.lua:3>>", {}))
  end)
end)
