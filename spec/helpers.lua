-- spec/helpers.lua: small helpers the specs share.
--   local h = dofile("spec/helpers.lua")
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"
local proc = dofile("spec/fixtures/proc.lua")

local M = {}

--- Asserts that text contains (has) or lacks the plain string s,
-- showing the text when it does not.
function M.has(text, s)
  assert.is_truthy(text:find(s, 1, true),
                   ("%q not found in:\n%s"):format(s, text))
end

function M.lacks(text, s)
  assert.is_falsy(text:find(s, 1, true),
                  ("%q found in:\n%s"):format(s, text))
end

--- A test body run as a task on a virtual-clock loop.
function M.vspec(fn)
  return aspec.async({clock = "virtual"}, fn)
end

--- The message of error e without the "file:line: " that error() puts
-- before it.
function M.message(e)
  return (tostring(e):gsub("^[^\n]-:%d+: ", ""))
end

--- Awaits aw, which must fail; returns its error.
function M.await_error(aw)
  local ok, err = pcall(asyncio.await, aw)
  assert.is_false(ok, "expected an error")
  return err
end

--- Awaits aw, which must fail with "bad argument #n to 'fname' (unknown
-- option 'name')".
function M.unknown_option(n, fname, name, aw)
  assert.equal(("bad argument #%d to '%s' (unknown option '%s')")
               :format(n, fname, name), M.await_error(aw))
end

--- each_virtual_loop(set): each test of the enclosing describe block
-- gets a fresh virtual-clock loop, handed to set(loop) before it runs;
-- afterwards the loop is closed and must have no uv handle left open.
function M.each_virtual_loop(set)
  local busted = require "busted"
  local loop
  busted.before_each(function()
    loop = asyncio.new_event_loop{clock = "virtual"}
    set(loop)
  end)
  busted.after_each(function()
    if not loop:is_closed() then loop:close() end
    assert.same(0, loop:_counts().handles)
  end)
end

--- each_reporting_loop(set): as each_virtual_loop, and the loop's
-- exception handler collects each context it is given (asserting that it
-- is called with this loop) into a fresh table: set(loop, reports).
function M.each_reporting_loop(set)
  M.each_virtual_loop(function(loop)
    local reports = {}
    loop:set_exception_handler(function(l, ctx)
      assert.equal(loop, l)
      reports[#reports + 1] = ctx
    end)
    set(loop, reports)
  end)
end

--- close_with_waiters(n, body): a fresh virtual-clock loop runs the
-- function body as a task (body leaves tasks waiting on something), is
-- closed with them pending, and the collector runs: exactly n tasks
-- must have been reported destroyed while pending.
function M.close_with_waiters(n, body)
  local loop = asyncio.new_event_loop{clock = "virtual"}
  local reports = {}
  loop:set_exception_handler(function(_, ctx)
    reports[#reports + 1] = ctx.message
  end)
  loop:run_until_complete(asyncio.async(body)())
  loop:close()
  collectgarbage()
  collectgarbage() -- the waiting tasks are gone
  local expected = {}
  for i = 1, n do expected[i] = "Task was destroyed but it is pending!" end
  assert.same(expected, reports)
end

--- assert_loop_collected(start): a fresh loop runs one iteration of a
-- task awaiting start() (the awaitable it returns), so that the task has
-- begun its work, and is closed with the task still pending; the loop
-- must then be garbage-collected (nothing the work left keeps it alive).
function M.assert_loop_collected(start)
  local weak = setmetatable({}, {__mode = "v"})
  do
    local loop = asyncio.new_event_loop()
    loop:set_exception_handler(function() end) -- the orphaned task
    weak[1] = loop
    loop:create_task(start())
    loop:call_soon(function() loop:stop() end)
    loop:run_forever()
    loop:close()
  end
  collectgarbage()
  collectgarbage()
  assert.is_nil(weak[1])
end

--- sockpath() -> a fresh path for a Unix socket, free (nothing there).
function M.sockpath()
  local path = os.tmpname()
  os.remove(path)
  return path .. ".sock"
end

--- run_once(loop): exactly one iteration of a loop that is not running
-- (a stop requested before run_forever, semantics A15).
function M.run_once(loop)
  loop:stop()
  loop:run_forever()
end

--- spawn(fn, ...) -> a task of the running loop running fn(...).
function M.spawn(fn, ...)
  return asyncio.create_task(asyncio.async(fn)(...))
end

--- Awaits until cond() holds, checking it after each turn of the loop
-- (at most 10 s): for what the C core does with no event to wait on,
-- such as a C transport's reader pausing.
function M.turns_until(cond)
  asyncio.await(asyncio.wait_for(asyncio.async(function()
    while not cond() do asyncio.await(asyncio.sleep(0)) end
  end)(), 10))
end

--- Calls fn(...), which must raise; returns the error, whatever it is.
function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

--- Calls fn(...), which must raise an error of class cls; returns it.
function M.raises(cls, fn, ...)
  local err = M.error_of(fn, ...)
  assert.is_true(asyncio.iserror(err, cls), tostring(err))
  return err
end

-- The tutorial examples (spec/examples_*_spec.lua) -----------------------

--- example_lines(text [, edit]) -> the lines of an example's output, an
-- array, made comparable with what Python prints: runs of blanks become
-- one space (Lua's print separates its arguments with a tab, Python's
-- with a space), trailing blanks and blank lines at the end go; edit(line),
-- if given, then returns each line's final text.
function M.example_lines(text, edit)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    line = line:gsub("[ \t]+", " "):gsub(" $", "")
    lines[#lines + 1] = edit and edit(line) or line
  end
  while lines[#lines] == "" do lines[#lines] = nil end
  return lines
end

--- unvary(line) -> line with what differs between runs written as the
-- expected texts write it: the number after "TIME:" or "Time:" opening a
-- line, or after "time:" or "invoked at" ending one, becomes <t>; an
-- object address " at 0x..." goes; a code location " at <file>:<line>>"
-- in a task's repr becomes " at <loc>>".
function M.unvary(line)
  return (line:gsub("^(T[Ii][Mm][Ee]:) %S+$", "%1 <t>")
              :gsub("(time:) [%d.e+-]+$", "%1 <t>")
              :gsub("(invoked at) [%d.e+-]+$", "%1 <t>")
              :gsub(" at 0x%x+", "")
              :gsub(" at [^ >]+:%d+>", " at <loc>>")
              :gsub("function <[^ >]+:%d+>", "function <loc>"))
end

--- interrupted(file, lines) -> what proc.run returns, for
-- examples/<file> run on the real clock and sent SIGINT (Ctrl-C) once it
-- has printed `lines` lines. Runs a loop of its own: call it outside a
-- task.
local function interrupted(file, lines)
  return asyncio.run(asyncio.async(function()
    local p = asyncio.await(asyncio.create_subprocess_exec(proc.luaio,
      "examples/" .. file, {stdout = asyncio.PIPE, stderr = asyncio.PIPE}))
    local head = {}
    for i = 1, lines do head[i] = asyncio.await(p.stdout:readline()) end
    p:send_signal("SIGINT")
    local rest, err = asyncio.await(p:communicate())
    return {stdout = table.concat(head) .. rest, stderr = err,
            status = p.returncode, how = "exit"}
  end))
end

--- run_example(file [, opts [, stderr_ok]]) runs examples/<file>, asserts
-- that it exits with status 0 and that its stderr matches stderr_ok (a
-- pattern, or a predicate; default: empty), and returns its stdout.
-- opts.fast: as proc.example's fast; opts.interrupt: Ctrl-C after that
-- many lines of output (see interrupted).
function M.run_example(file, opts, stderr_ok)
  opts = opts or {}
  local r
  if opts.interrupt then
    r = interrupted(file, opts.interrupt)
  else
    r = proc.example(file, opts.fast)
  end
  assert.are.equal("exit 0", r.how .. " " .. tostring(r.status),
                   "exit status; stderr:\n" .. r.stderr)
  stderr_ok = stderr_ok or "^$"
  local ok
  if type(stderr_ok) == "string" then
    ok = r.stderr:match(stderr_ok)
  else
    ok = stderr_ok(r.stderr)
  end
  assert.is_truthy(ok, "stderr:\n" .. r.stderr)
  return r.stdout
end

--- timed_example(file [, args]) -> what proc.example returns for
-- examples/<file> (with the arguments args) in fast mode, and the
-- tutorial seconds the run took (a thread example's fast mode lasts
-- M.FAST_SCALE real seconds per tutorial second).
M.FAST_SCALE = 0.05
function M.timed_example(file, args)
  local clock = asyncio.new_event_loop() -- read for its monotonic time
  local t0 = clock:time()
  local r = proc.example(file, true, args)
  local took = (clock:time() - t0) / M.FAST_SCALE
  clock:close()
  return r, took
end

--- assert_times(out, expected): the numbers printed after "TIME:" or
-- "Time:" opening a line of out are, in order, those of the list expected,
-- to 1e-6 (on the virtual clock an example prints exact sums).
function M.assert_times(out, expected)
  local got = {}
  for line in out:gmatch("[^\n]+") do
    local v = line:match("^T[Ii][Mm][Ee]:%s*(%S+)$")
    if v then got[#got + 1] = tonumber(v) end
  end
  assert.are.equal(#expected, #got, "TIME lines in:\n" .. out)
  for i, v in ipairs(expected) do
    assert.is_true(math.abs(got[i] - v) < 1e-6, string.format(
      "TIME %s on the virtual clock, expected %s", got[i], v))
  end
end

--- assert_mapped(examples): examples/README.md names the file of every
-- entry of the list (as `x.lua`).
function M.assert_mapped(examples)
  local readme = proc.slurp("examples/README.md")
  for _, ex in ipairs(examples) do
    assert.is_truthy(readme:find("`" .. ex.file .. "`", 1, true),
                     ex.file .. " missing from examples/README.md")
  end
end

return M
