-- spec/repl_spec.lua: the REPL of the luaio CLI (lua/asyncio/repl.lua and
-- the readline terminal of host/main.c), driven through a pseudo-terminal
-- by spec/fixtures/pty_session.py, and through a pipe.
local proc = dofile("spec/fixtures/proc.lua")

local helpers = dofile("spec/helpers.lua")
local has, lacks = helpers.has, helpers.lacks

--- Plays the steps on a terminal; returns the transcript (CRs dropped)
-- and the home directory used (for the history file).
local function session(steps)
  local home = proc.tempdir()
  local r = proc.run({"python3", proc.fixture("pty_session.py"), proc.luaio},
                     {stdin = table.concat(steps, "\n") .. "\n",
                      env = {HOME = home}})
  return r.stdout:gsub("\r", ""), home, r.status
end

describe("the REPL on a terminal", function()
  it("has asyncio, async and await ready, shows values with tostring and "
     .. "nothing for nil", function()
    local out, home, status = session{
      "expect > ", [[send x = await(asyncio.sleep(0.01, 41)) + 1\n]],
      "expect > ", [[send x\n]], "expect 42",
      "expect > ", [[send await(asyncio.sleep(0))\n]],
      "expect > ", [[send {1, "two", k = true}\n]],
      [[expect {1, "two", k = true}]],
      "expect > ", [[send type(async), type(await)\n]],
      "expect function\tfunction",
      "expect > ", [[send asyncio.get_running_loop():create_future()\n]],
      "expect <Future pending>",
      "expect > ", [[send \x04]]}
    proc.rmdir(home)
    assert.equal(0, status, out)
    lacks(out, "\nnil\n")
    has(out, "EXIT 0")
  end)

  it("accepts multi-line input as lua does", function()
    local out, home, status = session{
      "expect > ", [[send for i = 1, 2 do\n]], "expect >> ",
      [[send print("line", i)\n]], "expect >> ", [[send end\n]],
      "expect line\t2", "expect > ", [[send \x04]]}
    proc.rmdir(home)
    assert.equal(0, status, out)
    has(out, "line\t1")
  end)

  it("edits lines and keeps a history across sessions", function()
    local out, home, status = session{
      "expect > ", [[send y = 6 * 7\n]], "expect > ", [[send y\n]],
      "expect 42", "expect > ", [[send \x1b[A\n]], "expect 42",
      "expect > ", [[send \x04]]}
    assert.equal(0, status, out)
    local hist = proc.slurp(home .. "/.luaio_history")
    proc.rmdir(home)
    assert.equal("y = 6 * 7\ny\ny\n", hist)
  end)

  it("Ctrl-C cancels the running await, not the REPL, and drops a "
     .. "half-typed line; no pending-task report at exit", function()
    local out, home, status = session{
      "expect > ",
      [[send t = asyncio.get_running_loop():create_task(asyncio.sleep(50))\n]],
      "expect > ",
      -- the typed line is echoed: the marker is built so that only the
      -- running task prints it whole
      [[send print("sta" .. "rted") await(asyncio.sleep(100))\n]],
      "expect started", [[send \x03]], "expect KeyboardInterrupt",
      "expect > ", [[send half typed\x03]], "expect KeyboardInterrupt",
      "expect > ", [[send print("alive", t:done())\n]],
      "expect alive\tfalse", "expect > ", [[send \x04]]}
    proc.rmdir(home)
    assert.equal(0, status, out)
    lacks(out, "destroyed")
    lacks(out, "pending!")
  end)
end)

describe("the REPL on a pipe (-i)", function()
  it("reads lines without a terminal and shows the same values", function()
    local r = proc.run({proc.luaio, "-i"},
                       {stdin = "x = 1\nx + 1\nawait(asyncio.sleep(0))\n"})
    assert.equal(0, r.status)
    assert.equal("> > 2\n> > \n", r.stdout:gsub("^luaio [^\n]*\n", ""))
  end)

  it("exit(status) leaves with that status; another value is printed, "
     .. "status 1, as Python's", function()
    local r = proc.run({proc.luaio, "-i"}, {stdin = "print(1)\nexit(3)\n"})
    assert.same({"exit", 3}, {r.how, r.status})
    r = proc.run({proc.luaio, "-i"}, {stdin = "exit()\nprint(2)\n"})
    assert.equal(0, r.status)
    assert.not_matches("2", r.stdout)
    r = proc.run({proc.luaio, "-i"}, {stdin = 'exit("bye")\n'})
    assert.same({1, "bye\n"}, {r.status, r.stderr})
  end)

  it("reads '=exp' as 'return exp', as lua 5.4's REPL does", function()
    local r = proc.run({proc.luaio, "-i"}, {stdin = "=6 * 7\nx = 1\n=x\n"})
    assert.equal(0, r.status)
    assert.equal("", r.stderr)
    assert.equal("> 42\n> > 1\n> \n", r.stdout:gsub("^luaio [^\n]*\n", ""))
  end)

  it("shows an error as lua does, with its traceback, and goes on",
     function()
    local r = proc.run({proc.luaio, "-i"}, {stdin = table.concat({
      "local function f() error('deep') end f()",
      "error({})",
      "error(nil)",
      "error(setmetatable({}, {__tostring = function() return 'shown' end}))",
      "error(asyncio.ValueError('bad value'))",
      "print('after')"}, "\n") .. "\n"})
    assert.equal(0, r.status)
    has(r.stdout, "after\n")
    -- each error: its message, then a traceback that names the input
    local want = {"stdin:1: deep", "(error object is a table value)",
                  "(error object is a nil value)", "shown",
                  "ValueError: bad value"}
    local lines = {}
    for line in r.stderr:gmatch("[^\n]+") do lines[#lines + 1] = line end
    local i = 1
    for _, msg in ipairs(want) do
      while lines[i] and lines[i] ~= msg do i = i + 1 end
      assert.equal(msg, lines[i], r.stderr)
      assert.matches("^stack traceback", lines[i + 1] or "", 1)
      has(table.concat(lines, "\n", i + 2, math.min(#lines, i + 4)),
          "stdin:1:")
    end
    lacks(r.stderr, "table: 0x")
  end)

  it("reports an error and goes on", function()
    local r = proc.run({proc.luaio, "-i"},
                       {stdin = "error('boom')\nprint('after')\n"})
    assert.equal(0, r.status)
    has(r.stderr, "boom")
    has(r.stdout, "after")
  end)
end)
