-- spec/examples_core_spec.lua: the tutorial examples of the core runtime
-- (examples/*.lua; map in examples/README.md) print what the tutorials show.
--
-- Each example runs as a script under the CLI, `<build>/luaio
-- examples/x.lua` (build directory from LUAIO_BUILD, default "build"),
-- with LUAIO_EXAMPLE_FAST=1 so that sleeps run on the virtual clock; the
-- few whose sleeps add up to at most 1 s run on the real clock too. Its
-- stdout is compared with the expected text below, both normalised the
-- same way (see normalise). The expected text is the tutorial's printed
-- output where it shows one, else what Python 3.13 prints for the
-- tutorial's program (marked py = true below), with what varies between
-- runs written as normalise leaves it (<t>, <loc>). It differs only where
-- Lua must (nil for None, true for True, no address in a coroutine's repr,
-- Lua file:line in a task's) and where Python 3.13 differs from the
-- tutorial's older Python (name='Task-N' in task reprs).
local h = dofile("spec/helpers.lua")
local proc = dofile("spec/fixtures/proc.lua")

--- normalise(text) -> text with what may differ between runs, or between
-- Python's print and Lua's, made equal (h.example_lines, h.unvary).
local function normalise(text)
  return table.concat(h.example_lines(text, h.unvary), "\n")
end

local NEVER_AWAITED =
  "^RuntimeWarning: coroutine '[^\n]-' was never awaited\n" ..
  "%(run with %-%-debug or LUAIO_DEBUG=1 to see where it was created%)\n$"

local function pending_report_or_none(err)
  return err == "" or err:find("^Task was destroyed but it is pending!")
end

-- One entry per example: file, source (seed and section), expected stdout,
-- py (the tutorial shows no output: the expected text is Python 3.13's),
-- and optionally: elapsed = the TIME values on the virtual clock, stderr =
-- a pattern stderr must match or a predicate it must satisfy (default:
-- stderr is empty), status = the exit status (default 0; then stderr is a
-- pattern), real = also run it on the real clock.
local examples = {
  {file = "coroutine_run.lua", source = "000 定義一個協程",
   elapsed = {0}, expected = [[
Waiting: 2
TIME: 0.0004658699035644531
]]},
  {file = "task_states.lua", source = "000 創建一個task",
   elapsed = {0}, expected = [[
<Task pending name='Task-1' coro=<do_some_work() running at /Users/ghost/Rsj217/python3.6/async/async-main.py:17>>
Waiting: 2
<Task finished name='Task-1' coro=<do_some_work() done, defined at /Users/ghost/Rsj217/python3.6/async/async-main.py:17> result=nil>
TIME: 0.0003490447998046875
]]},
  {file = "done_callback.lua", py = true,
   source = "000 綁定回調",
   elapsed = {0}, expected = [[
Waiting: 2
Callback: Done after 2s
TIME: <t>
]]},
  {file = "done_callback_partial.lua", py = true,
   source = "000 綁定回調 (partial)", elapsed = {0}, expected = [[
Waiting: 2
Callback: 2 Done after 2s
TIME: <t>
]]},
  -- The tutorial shows "Waiting: 2"; its code prints 'Waiting {}'.
  {file = "task_result.lua", source = "000 future 與 result",
   elapsed = {0}, expected = [[
Waiting 2
Task ret: Done after 2s
TIME: 0.0003650188446044922
]]},
  {file = "await_sleep.lua", py = true,
   source = "000 阻塞和await",
   elapsed = {2}, expected = [[
Waiting: 2
Task ret: Done after 2s
TIME: <t>
]]},
  {file = "loop_run_coroutine.lua", py = true,
   source = "001 直接传入协程",
   expected = ""},
  -- Python 3.13 refuses asyncio.wait on coroutine objects; the
  -- tutorial's Python ran the program, which prints nothing.
  {file = "loop_run_wait.lua", source = "001 使用asyncio.wait传入协程列表",
   expected = ""},
  {file = "run_forever_stop.lua", source = "001 loop.stop暂停事件循环",
   expected = [[
start
after 1s stop
]]},
  {file = "call_soon_work.lua", source = "001 loop.call_soon", expected = [[
[work ] start A
[hello] Hello, Tom
[work ] start B
[work ] start C
[work ] A after 1s stop
[work ] B after 2s stop
[work ] C after 3s stop
]]},
  {file = "call_later_work.lua", source = "001 loop.call_later", expected = [[
[workA] start
[hello] Hello, Kitty
[workB] start
[hello] Hello, Jerry
[workA] stop
[hello] Hello, Tom
[workB] stop
]]},
  {file = "call_at_work.lua", source = "001 loop.call_at & loop.time",
   expected = [[
[workA] start
[hello] Hello, Kitty
[workB] start
[hello] Hello, Jerry
[workA] stop
[hello] Hello, Tom
[workB] stop
]]},
  {file = "coroutine_start.lua", py = true,
   source = "002 run_until_complete",
   expected = [[
starting coroutine
entering event loop
in coroutine
closing event loop
]]},
  {file = "coroutine_return.lua", py = true,
   source = "002 return value", expected = [[
in coroutine
it returned: 'result'
]]},
  {file = "nested_coroutines.lua", py = true,
   source = "002 outer/phase1/phase2",
   expected = [[
in outer
waiting for result1
in phase1
waiting for result2
in phase2
return value: ('result1', 'result2 derived from result1')
]]},
  {file = "call_soon.lua", py = true,
   source = "002 call_soon", real = true,
   expected = [[
entering event loop
registering callbacks
callback invoked with 1 and default
callback invoked with 2 and not default
closing event loop
]]},
  {file = "call_later.lua", py = true,
   source = "002 call_later", real = true,
   expected = [[
entering event loop
registering callbacks
callback 3 invoked
callback 2 invoked
callback 1 invoked
closing event loop
]]},
  {file = "call_at.lua", py = true,
   source = "002 call_at", real = true, expected = [[
entering event loop
clock time: <t>
loop time: <t>
registering callbacks
callback 3 invoked at <t>
callback 2 invoked at <t>
callback 1 invoked at <t>
closing event loop
]]},
  {file = "future_callback.lua", py = true,
   source = "002 Future, run_until_complete",
   expected = [[
scheduling mark_done
entering event loop
setting future result to 'the result'
returned result: 'the result'
closing event loop
future result: 'the result'
]]},
  {file = "future_await.lua", py = true,
   source = "002 Future, await", expected = [[
scheduling mark_done
setting future result to 'the result'
returned result: 'the result'
]]},
  {file = "future_done_callbacks.lua", py = true,
   source = "002 Future callbacks",
   expected = [[
registering callbacks on future
setting result of future
1: future done: the result
2: future done: the result
]]},
  {file = "task_create.lua", py = true,
   source = "002 create_task", expected = [[
creating task
waiting for <Task pending name='Task-2' coro=<task_func() running at <loc>>>
in task_func
task completed <Task finished name='Task-2' coro=<task_func() done, defined at <loc>> result='the result'>
return value: 'the result'
]]},
  {file = "task_cancel.lua", py = true,
   source = "002 cancel before start",
   expected = [[
creating task
canceling task
canceled task <Task cancelling name='Task-2' coro=<task_func() running at <loc>>>
caught error from canceled task
]]},
  {file = "task_cancel_callback.lua", py = true,
   source = "002 cancel from callback",
   expected = [[
creating task
in task_func, sleeping
in task_canceller
canceled the task
task_func was canceled
main() also sees task as canceled
]]},
  {file = "ensure_future.lua", py = true,
   source = "002 ensure_future", expected = [[
entering event loop
starter: creating task
starter: waiting for inner
inner: starting
inner: waiting for <Task pending name='Task-2' coro=<wrapped() running at <loc>>>
wrapped
inner: task returned 'result'
starter: inner returned
]]},
  {file = "coroutine_check.lua", source = "003 1.1/1.2",
   stderr = NEVER_AWAITED, expected = [[
true
true
]]},
  {file = "ensure_future_run.lua", source = "003 1.2.1", expected = [[
Waiting 3
]]},
  {file = "done_callback_notify.lua", py = true,
   source = "003 1.3", expected = [[
Waiting 3
Done
]]},
  {file = "run_until_complete.lua", source = "003 1.5.1", expected = [[
Waiting 3
Done
]]},
  {file = "run_forever.lua", source = "003 1.5.2", expected = [[
Waiting 3
Done
]]},
  -- The second task is pending when the script ends. Python then reports
  -- "Task was destroyed but it is pending!" (semantics item 250, [later]).
  {file = "run_forever_stop_early.lua", py = true,
   source = "003 1.5.2 (stop)", stderr = pending_report_or_none,
   expected = [[
Waiting 1
Waiting 3
Done
]]},
  {file = "loop_close.lua", py = true,
   source = "003 1.6", expected = [[
Waiting 1
Done
Waiting 3
Done
]]},
  -- The RuntimeError ends the program, as in Python: status 1, the error
  -- and its traceback on stderr, then the never-awaited coroutine.
  {file = "loop_closed_run.lua", py = true,
   source = "003 1.6 (closed)", status = 1,
   stderr = "^luaio: RuntimeError: Event loop is closed\nstack traceback:\n"
     .. ".-\nRuntimeWarning: coroutine 'do_some_work' was never awaited\n",
   expected = [[
Waiting 1
Done
]]},
  {file = "timer.lua", py = true,
   source = "003 1.8", expected = [[
Done
]]},
  {file = "coroutine_object.lua", py = true,
   source = "004 簡單例子", expected = [[
Coroutine: <coroutine object execute>
After calling execute
Number: 1
After calling loop
]]},
}

--- run(ex, fast) -> the stdout of ex.file, asserting its exit status
-- (ex.status, default 0) and its stderr (ex.stderr, as h.run_example).
local function run(ex, fast)
  if not ex.status then
    return h.run_example(ex.file, {fast = fast}, ex.stderr)
  end
  local r = proc.example(ex.file, fast)
  assert.are.equal("exit " .. ex.status, r.how .. " " .. tostring(r.status),
                   "exit status; stderr:\n" .. r.stderr)
  assert.is_truthy(r.stderr:match(ex.stderr), "stderr:\n" .. r.stderr)
  return r.stdout
end

local function check(ex, fast)
  local out = run(ex, fast)
  assert.are.equal(normalise(ex.expected), normalise(out))
  if fast and ex.elapsed then h.assert_times(out, ex.elapsed) end
end

describe("core tutorial examples", function()
  for _, ex in ipairs(examples) do
    local what = ex.py and "what Python prints for seed "
      or "what the tutorial shows for seed "
    it(ex.file .. " prints " .. what .. ex.source, function()
      check(ex, true)
    end)
    if ex.real then
      it(ex.file .. " prints the same on the real clock", function()
        check(ex, false)
      end)
    end
  end

  it("examples/README.md maps every example above", function()
    h.assert_mapped(examples)
  end)

  it("make run's default example, hello.lua, prints hello then world",
    function()
      assert.are.equal("hello\nworld\n", h.run_example("hello.lua"))
    end)
end)

describe("the examples' normalisation", function()
  it("makes Python's and Lua's print separators equal", function()
    assert.are.equal("Waiting: 2", normalise("Waiting: \t2\n"))
    assert.are.equal("Waiting: 2", normalise("Waiting:  2"))
  end)

  it("hides timings and locations but keeps the words around them",
    function()
      assert.are.equal("TIME: <t>\nloop time: <t>\ncallback 1 invoked at <t>",
        normalise("TIME:\t4.0035\nloop time: 0.0\ncallback 1 invoked at 0.2"))
      assert.are.equal("<coroutine object f>",
        normalise("<coroutine object f at 0x10e1f4f48>"))
      assert.are.equal("coro=<f() running at <loc>>>",
        normalise("coro=<f() running at examples/x.lua:3>>"))
      assert.are_not.equal(normalise("Waiting 2"), normalise("Waiting 3"))
    end)
end)
