-- spec/examples_sync_spec.lua: the tutorial examples of locks, events,
-- conditions, queues and semaphores (examples/*.lua; map in
-- examples/README.md) print what the tutorials show.
--
-- Each example runs as a script under the CLI, `<build>/luaio
-- examples/x.lua` (build directory from LUAIO_BUILD, default "build"),
-- with LUAIO_EXAMPLE_FAST=1 so that sleeps run on the virtual clock, and
-- again on the real clock (none sleeps more than 0.3 s in all). Stdout is
-- compared with the expected text (on the real clock, as a set of lines),
-- both normalised the same way (see normalise). The expected text is the tutorial's printed output where it
-- shows one, with None, True and False written as Lua prints them (nil,
-- true, false); else (py = "3.13") what Python 3.13 prints for the
-- tutorial's program, its coroutine objects wrapped in tasks in list
-- order since 3.13's asyncio.wait refuses them (this library's wait takes
-- them and does the same wrapping).
local h = dofile("spec/helpers.lua")

--- normalise(text, ex) -> text with Lua's and Python's print made equal
-- (h.example_lines). With ex.renumber (a pattern with two captures, a
-- prefix and a number), those numbers are renamed #1, #2, ... in order of
-- first appearance: the tutorial's order of equal coroutines came from a
-- Python set, ours is list order, and the renaming keeps everything else
-- exact.
local function normalise(text, ex)
  local names, n = {}, 0
  local function rename(prefix, num)
    if not names[num] then
      n = n + 1
      names[num] = "#" .. n
    end
    return prefix .. names[num]
  end
  return table.concat(h.example_lines(text, function(line)
    return ex.renumber and (line:gsub(ex.renumber, rename)) or line
  end), "\n")
end

--- The expected output of semaphore_limit.lua: Python 3.13's for the
-- same program (the same stand-in for the HTTP GET).
local function semaphore_expected()
  local lines = {}
  for i = 1, 600 do lines[i] = i .. " 200" end
  lines[#lines + 1] = "most requests at once: 500"
  return table.concat(lines, "\n")
end

-- One entry per example: file, source (seed and section), expected
-- stdout, and optionally py (the tutorial shows no output: the expected
-- text is Python 3.13's) and renumber (see normalise).
local examples = {
  {file = "lock_work.lua", source = "001 asyncio.lock", expected = [[
\\\\\\\\\\\\ one
one start
++++++++++ one
///////////
\\\\\\\\\\\\ two
---------- one
one end
one ok
two start
two ok
]]},
  {file = "lock_callback.lua", source = "002 program 19 (Lock)",
   py = "3.13", expected = [[
acquiring the lock before starting coroutines
lock acquired: true
waiting for coroutines
coro1 waiting for the lock
coro2 waiting for the lock
callback releasing lock
coro1 acquired lock
coro1 released lock
coro2 acquired lock
coro2 released lock
]]},
  {file = "event_wait.lua", source = "001 asyncio.Event", expected = [[
event start state: false
coro1 waiting for event
coro2 waiting for event
setting event in callback
coro1 triggered
coro2 triggered
event end state: true
]]},
  {file = "condition_notify.lua", source = "001 asyncio.condition",
   renumber = "(consumer )(%d+)", expected = [[
starting manipulate_condition
----
consumer 3 is waiting
----
consumer 0 is waiting
----
consumer 2 is waiting
----
consumer 4 is waiting
----
consumer 1 is waiting
notifying 1 consumers
consumer 3 triggered
ending consumer 3
notifying 2 consumers
consumer 0 triggered
ending consumer 0
consumer 2 triggered
ending consumer 2
notifying remaining consumers
ending manipulate_condition
consumer 4 triggered
ending consumer 4
consumer 1 triggered
ending consumer 1
]]},
  {file = "queue_consumers.lua", source = "001 asyncio.Queue", expected = [[
consumer 0: waiting for item
consumer 0: waiting for item
consumer 1: waiting for item
consumer 1: waiting for item
producer: starting
producer: added task 0 to the queue
producer: added task 1 to the queue
consumer 0: has item 0
consumer 1: has item 1
producer: added task 2 to the queue
producer: added task 3 to the queue
consumer 0: waiting for item
consumer 0: has item 2
producer: added task 4 to the queue
consumer 1: waiting for item
consumer 1: has item 3
producer: added task 5 to the queue
producer: adding stop signals to the queue
consumer 0: waiting for item
consumer 0: has item 4
consumer 1: waiting for item
consumer 1: has item 5
producer: waiting for queue to empty
consumer 0: waiting for item
consumer 0: has item nil
consumer 0: ending
consumer 1: waiting for item
consumer 1: has item nil
consumer 1: ending
producer: ending
]]},
  {file = "condition_consumers.lua", source = "002 program 21 (Condition)",
   py = "3.13", expected = [[
starting manipulate_condition
consumer 0 is waiting
consumer 1 is waiting
consumer 2 is waiting
consumer 3 is waiting
consumer 4 is waiting
notifying 1 consumers
consumer 0 triggered
ending consumer 0
notifying 2 consumers
consumer 1 triggered
ending consumer 1
consumer 2 triggered
ending consumer 2
notifying remaining consumers
ending manipulate_condition
consumer 3 triggered
ending consumer 3
consumer 4 triggered
ending consumer 4
]]},
  {file = "queue_consumers_starting.lua", source = "002 program 22 (Queue)",
   py = "3.13", expected = [[
consumer 0: starting
consumer 0: waiting for item
consumer 1: starting
consumer 1: waiting for item
producer: starting
producer: added task 0 to the queue
producer: added task 1 to the queue
consumer 0: has item 0
consumer 1: has item 1
producer: added task 2 to the queue
producer: added task 3 to the queue
consumer 0: waiting for item
consumer 0: has item 2
producer: added task 4 to the queue
consumer 1: waiting for item
consumer 1: has item 3
producer: added task 5 to the queue
producer: adding stop signals to the queue
consumer 0: waiting for item
consumer 0: has item 4
consumer 1: waiting for item
consumer 1: has item 5
producer: waiting for queue to empty
consumer 0: waiting for item
consumer 0: has item nil
consumer 0: ending
consumer 1: waiting for item
consumer 1: has item nil
consumer 1: ending
producer: ending
]]},
  {file = "semaphore_limit.lua", source = "004 限制並發數量方法",
   py = "3.13", expected = semaphore_expected()},
}

--- The lines of text, sorted.
local function sorted_lines(text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  table.sort(lines)
  return table.concat(lines, "\n")
end

--- On the virtual clock the output must match line for line. On the real
-- clock it must hold the same lines: their order there depends on how the
-- machine schedules sleeps 10 ms apart, which the virtual clock settles.
local function check(ex, fast)
  local out = h.run_example(ex.file, {fast = fast})
  local want, got = normalise(ex.expected, ex), normalise(out, ex)
  if fast then
    assert.are.equal(want, got)
  else
    assert.are.equal(sorted_lines(want), sorted_lines(got))
  end
end

describe("synchronisation tutorial examples", function()
  for _, ex in ipairs(examples) do
    local what = ex.py and "what Python prints for seed "
      or "what the tutorial shows for seed "
    it(ex.file .. " prints " .. what .. ex.source, function()
      check(ex, true)
    end)
    it(ex.file .. " prints the same lines on the real clock", function()
      check(ex, false)
    end)
  end

  it("examples/README.md maps every example above", function()
    h.assert_mapped(examples)
  end)
end)

describe("the sync examples' normalisation", function()
  it("renames the numbers of ex.renumber in order of first appearance",
    function()
      local ex = {renumber = "(consumer )(%d+)"}
      assert.are.equal("consumer #1 waits\nconsumer #2 waits\nconsumer #1",
        normalise("consumer 3 waits\nconsumer 0 waits\nconsumer 3", ex))
      assert.are_not.equal(
        normalise("consumer 3 waits\nconsumer 0 waits\nconsumer 3", ex),
        normalise("consumer 3 waits\nconsumer 0 waits\nconsumer 0", ex))
      assert.are.equal("notifying 2 consumers",
        normalise("notifying 2 consumers", ex))
    end)

  it("makes Python's and Lua's print separators equal", function()
    assert.are.equal("600 200", normalise("600\t200\n", {}))
  end)
end)
