-- spec/cli_spec.lua: the luaio command line (host/main.c), shaped like
-- lua(1), and `require "asyncio"` from the CLI and from stock lua5.4.
local proc = dofile("spec/fixtures/proc.lua")

local luaio, fixture = proc.luaio, proc.fixture

local helpers = dofile("spec/helpers.lua")
local has, lacks = helpers.has, helpers.lacks

--- Runs luaio with the arguments, then lua5.4 with the same ones.
local function both(args, opts)
  local a, b = {luaio}, {"lua5.4"}
  for _, v in ipairs(args) do
    a[#a + 1], b[#b + 1] = v, v
  end
  return proc.run(a, opts), proc.run(b, opts)
end

local asyncio_probe = [[
  local asyncio = require "asyncio"
  print(asyncio.run(asyncio.async(function()
    asyncio.await(asyncio.sleep(0.001))
    return "ran"
  end)))
]]

describe("luaio CLI", function()
  it("sets 'arg' and the script's varargs as lua5.4 does", function()
    local cases = {
      {fixture("args.lua"), "a", "b"},
      {fixture("args.lua")},
      {"-e", "x = 1", fixture("args.lua"), "a b", "", "q\""},
      {"--", fixture("args.lua"), "-e", "--"},
    }
    for _, args in ipairs(cases) do
      local mine, stock = both(args)
      assert.equal(0, mine.status)
      assert.equal(0, stock.status)
      assert.equal(stock.stdout, mine.stdout)
      assert.equal("", mine.stderr)
    end
  end)

  it("runs the script under the generational collector (man page)",
     function()
    -- asking for a mode returns the one before (a new state's is
    -- incremental)
    local r = proc.run{luaio, "-e", "io.write(collectgarbage('incremental'))"}
    assert.same({0, "generational", ""}, {r.status, r.stdout, r.stderr})
  end)

  it("-e runs each statement in order", function()
    local r = proc.run{luaio, "-e", "x = 20", "-e", "print(x + 22)"}
    assert.same({0, "42\n", ""}, {r.status, r.stdout, r.stderr})
  end)

  it("-l mod and -l g=mod require a module into a global", function()
    local opts = {cwd = proc.fixtures, env = {LUA_PATH = "./?.lua;;"}}
    local r = proc.run({luaio, "-l", "climod", "-e",
                        "print(climod.name, climod.loaded_as)"}, opts)
    assert.same({0, "climod\tclimod\n", ""}, {r.status, r.stdout, r.stderr})
    r = proc.run({luaio, "-l", "g=climod", "-e",
                  "print(g.name, climod)"}, opts)
    assert.same({0, "climod\tnil\n", ""}, {r.status, r.stdout, r.stderr})
    r = proc.run{luaio, "-l", "asyncio", "-e",
                 "print(asyncio.run(function() return 'lib' end))"}
    assert.same({0, "lib\n", ""}, {r.status, r.stdout, r.stderr})
  end)

  it("-l of a missing module fails with exit 1", function()
    local r = proc.run{luaio, "-l", "no_such_module_here", "-e", "print(1)"}
    assert.equal(1, r.status)
    assert.equal("", r.stdout)
    has(r.stderr, "module 'no_such_module_here' not found")
  end)

  it("-v prints the version and exits 0", function()
    local r = proc.run{luaio, "-v"}
    assert.equal(0, r.status)
    assert.matches("^luaio %d+%.%d+%.%d+", r.stdout)
    has(r.stdout, "Lua 5.4")
  end)

  it("-h and --help print the usage", function()
    for _, opt in ipairs{"-h", "--help"} do
      local r = proc.run{luaio, opt}
      assert.equal("exit", r.how)
      assert.equal("", r.stdout)
      has(r.stderr, "usage: ")
      has(r.stderr, "-e stat")
      lacks(r.stderr, "unrecognized option")
    end
  end)

  it("unknown or incomplete options print the usage and exit 1", function()
    for _, args in ipairs{{"-x"}, {"--nope"}, {"-e"}, {"-l"}} do
      local r = proc.run{luaio, table.unpack(args)}
      assert.equal(1, r.status)
      assert.equal("", r.stdout)
      has(r.stderr, "usage: ")
    end
    has(proc.run{luaio, "-x"}.stderr, "unrecognized option '-x'")
    has(proc.run{luaio, "-e"}.stderr, "'-e' needs argument")
  end)

  it("- runs the script read from stdin, with its arguments", function()
    local opts = {stdin = "print('from stdin', ...) print(arg[0])"}
    local mine, stock = both({"-", "q", "r"}, opts)
    assert.same({0, "from stdin\tq\tr\n-\n", ""},
                {mine.status, mine.stdout, mine.stderr})
    assert.equal(stock.stdout, mine.stdout)
  end)

  it("-- ends the options", function()
    local r = proc.run{luaio, "--", fixture("args.lua"), "-v"}
    assert.equal(0, r.status)
    has(r.stdout, '1\t"-v"')
    lacks(r.stdout, "luaio ")
  end)

  it("--debug puts every loop in debug mode", function()
    local code = "print(require('asyncio').new_event_loop():get_debug())"
    local r = proc.run({luaio, "--debug", "-e", code},
                       {env = {LUAIO_DEBUG = "0"}})
    assert.same({0, "true\n"}, {r.status, r.stdout})
  end)

  it("LUA_INIT runs first (LUA_INIT_5_4 wins); -E ignores it and "
     .. "LUAIO_DEBUG", function()
    local code = "print(x, require('asyncio').new_event_loop():get_debug())"
    local env = {LUA_INIT = "x = 'init'", LUAIO_DEBUG = "1"}
    local r = proc.run({luaio, "-e", code}, {env = env})
    assert.same({0, "init\ttrue\n", ""}, {r.status, r.stdout, r.stderr})
    r = proc.run({luaio, "-E", "-e", code}, {env = env})
    assert.same({0, "nil\tfalse\n", ""}, {r.status, r.stdout, r.stderr})
    env.LUA_INIT_5_4 = "x = 'init 5.4'"
    r = proc.run({luaio, "-e", "print(x)"}, {env = env})
    assert.same({0, "init 5.4\n"}, {r.status, r.stdout})
  end)

  it("prefixes its errors with 'luaio:' whatever path ran it", function()
    local r = proc.run{luaio, "-e", "error('x', 0)"}
    assert.equal(1, r.status)
    assert.equal("luaio: x\n", r.stderr:match("^[^\n]*\n"))
    assert.are_not.equal("luaio", luaio) -- it ran as a path
  end)

  it("-i runs the REPL after the script", function()
    local r = proc.run({luaio, "-i", "-e", "x = 41"},
                       {stdin = "print(x + 1)\n"})
    assert.equal(0, r.status)
    has(r.stdout, "42\n")
  end)

  it("exits 0 when the script succeeds", function()
    local r = proc.run{luaio, "-e", asyncio_probe}
    assert.same({0, "ran\n", ""}, {r.status, r.stdout, r.stderr})
    assert.equal("exit", r.how)
  end)

  it("exits 1 with the error and a traceback when the script fails",
     function()
    local r = proc.run({luaio, "-"}, {stdin = "local x\nprint(x.y)\n"})
    assert.equal(1, r.status)
    has(r.stderr, "stdin:2: attempt to index a nil value")
    has(r.stderr, "stack traceback:")
    local missing = proc.run{luaio, "/nonexistent/script.lua"}
    assert.equal(1, missing.status)
    has(missing.stderr, "cannot open /nonexistent/script.lua")
  end)

  it("exits 1 with the task's traceback when main fails (error object)",
     function()
    local r = proc.run{luaio, fixture("fail_task.lua"), "object"}
    assert.equal(1, r.status)
    assert.equal("", r.stdout)
    has(r.stderr, "ValueError: task failed here")
    has(r.stderr, "stack traceback:")
    has(r.stderr, "fail_task.lua:11:")
  end)

  it("exits 1 with the task's traceback when main fails (string error)",
     function()
    local r = proc.run{luaio, fixture("fail_task.lua"), "string"}
    assert.equal(1, r.status)
    assert.equal("", r.stdout)
    has(r.stderr, "fail_task.lua:13: plain failure in the task")
    has(r.stderr, "stack traceback of task 'Task-1':")
    has(r.stderr, "fail_task.lua:18:")
  end)

  it("exits 1 with the task's traceback when main fails (number error)",
     function()
    local r = proc.run{luaio, "-e", [[
      local asyncio = require "asyncio"
      asyncio.run(asyncio.async(function()
        asyncio.await(asyncio.sleep(0))
        error(42)
      end)())
    ]]}
    assert.equal(1, r.status)
    has(r.stderr, "luaio: 42\nstack traceback of task 'Task-1':")
    has(r.stderr, "(command line):4:")
  end)

  it("an uncaught TimeoutError shows its cause, then the script's lines "
     .. "where the deadline found main waiting, as Python", function()
    local r = proc.run{luaio, "-e", [[
      local asyncio = require "asyncio"
      asyncio.run(asyncio.async(function()
        asyncio.await(asyncio.wait_for(asyncio.sleep(60), 0.01))
      end)())
    ]]}
    assert.equal(1, r.status)
    has(r.stderr, "luaio: CancelledError\n\nThe above exception was the "
        .. "direct cause of the following exception:\n\nTimeoutError\n"
        .. "stack traceback:\n")
    has(r.stderr, "(command line):3: in function")
  end)

  it("await at the top level of a script raises", function()
    local r = proc.run{luaio, "-e", [[
      local asyncio = require "asyncio"
      local fut = asyncio.new_event_loop():create_future()
      asyncio.await(fut)
    ]]}
    assert.equal(1, r.status)
    has(r.stderr, "RuntimeError: cannot await outside a task")
  end)

  it("exits 130 on Ctrl-C, after main's cleanup ran", function()
    local r = proc.run{luaio, fixture("interrupt.lua"), "sleep"}
    assert.equal("exit", r.how)
    assert.equal(130, r.status)
    assert.equal("cleanup\n", r.stdout)
    has(r.stderr, "KeyboardInterrupt")
  end)

  it("prints each error of an unhandled ExceptionGroup with its "
     .. "traceback, as Python", function()
    local r = proc.run{luaio, "-e", [[
      local asyncio = require "asyncio"
      asyncio.run(asyncio.async(function()
        local tg <close> = asyncio.TaskGroup()
        tg:create_task(asyncio.async(function() error("child boom") end)())
      end)())
    ]]}
    assert.equal(1, r.status)
    has(r.stderr, "luaio: ExceptionGroup: unhandled errors in a TaskGroup "
        .. "(1 sub-exception)")
    has(r.stderr, "  +-+---------------- 1 ----------------\n"
        .. "    | (command line):4: child boom\n"
        .. "    | stack traceback of task ")
  end)

  it("an uncaught SystemExit exits with its status and no traceback, as "
     .. "Python (none: 0; another value is printed, status 1)", function()
    for _, case in ipairs{{"asyncio.SystemExit(3)", 3, ""},
                          {"asyncio.SystemExit()", 0, ""},
                          {'asyncio.SystemExit("bye")', 1, "bye\n"}} do
      local r = proc.run{luaio, "-e", ([[
        local asyncio = require "asyncio"
        asyncio.run(asyncio.async(function() error(%s) end)())
      ]]):format(case[1])}
      assert.same({case[2], case[3]}, {r.status, r.stderr}, case[1])
    end
  end)

  it("exits 130 on Ctrl-C while main waits on a future", function()
    local r = proc.run{luaio, fixture("interrupt.lua"), "future"}
    assert.equal(130, r.status)
    assert.equal("cleanup\n", r.stdout)
  end)

  -- the loop cannot poll while Lua code is busy: a second Ctrl-C must
  -- still stop that code, as Python's does (`timeout` only guards
  -- against a hang)
  it("a second Ctrl-C stops a task busy in plain Lua: cleanup, exit 130",
     function()
    local r = proc.run{"timeout", "60", luaio, fixture("interrupt.lua"),
                       "busy"}
    assert.equal(130, r.status)
    assert.equal("cleanup\n", r.stdout)
    has(r.stderr, "KeyboardInterrupt")
    r = proc.run{"timeout", "60", luaio, fixture("interrupt.lua"), "busy",
                 "catch"}
    assert.same({0, "cleanup\nrun raised KeyboardInterrupt\n"},
                {r.status, r.stdout})
  end)

  it("a second Ctrl-C stops a busy callback; main's cleanup still runs",
     function()
    local r = proc.run{"timeout", "60", luaio, fixture("interrupt.lua"),
                       "busycb", "catch"}
    assert.same({0, "cleanup\nrun raised KeyboardInterrupt\n"},
                {r.status, r.stdout})
  end)

  it("a second Ctrl-C stops plain Lua after a run; it is not replayed",
     function()
    local r = proc.run{"timeout", "60", luaio, "-e", [[
      local asyncio = require "asyncio"
      local loop = asyncio.get_event_loop()
      loop:run_until_complete(asyncio.sleep(0)) -- the watch stays
      local f = assert(io.open("/proc/self/stat"))
      local pid = f:read("n")
      f:close()
      local ok, e = pcall(function()
        for i = 1, math.maxinteger do
          if i == 10 or i == 20 then
            assert(io.popen("kill -INT " .. pid)):close()
          end
        end
      end)
      print(ok, asyncio.iserror(e, asyncio.KeyboardInterrupt))
      print(loop:run_until_complete(asyncio.sleep(0, "next run")))
    ]]}
    assert.same({0, "false\ttrue\nnext run\n"}, {r.status, r.stdout})
  end)

  it("exits 130 for a KeyboardInterrupt of a subclass too, 1 for others",
     function()
    local r = proc.run{luaio, "-e", [[
      local asyncio = require "asyncio"
      error(asyncio.KeyboardInterrupt:subclass("MyInterrupt")("x"))
    ]]}
    assert.equal(130, r.status)
    has(r.stderr, "MyInterrupt: x")
    r = proc.run{luaio, "-e", [[
      local asyncio = require "asyncio"
      error(asyncio.Exception:subclass("KeyboardInterruptLike")("y"))
    ]]}
    assert.equal(1, r.status)
  end)

  it("require 'asyncio' needs no Lua file beside the binary", function()
    local dir = proc.tempdir()
    local copy = dir .. "/luaio"
    assert.is_true(os.execute("cp " .. proc.quote(luaio) .. " " ..
                              proc.quote(copy)))
    local r = proc.run({copy, "-e", asyncio_probe}, {cwd = dir,
      env = {LUA_PATH = "/nonexistent/?.lua",
             LUA_CPATH = "/nonexistent/?.so"},
      unset = {"LUA_PATH_5_4", "LUA_CPATH_5_4", "LUA_INIT", "LUA_INIT_5_4"}})
    proc.rmdir(dir)
    assert.same({0, "ran\n", ""}, {r.status, r.stdout, r.stderr})
  end)

  -- libuv's destructor joins its thread pool at exit: a request there
  -- that may never end (an open of a FIFO nobody opens for writing)
  -- must not keep the process from ending, with its status
  it("exits with its status while an open of a FIFO waits on libuv's "
     .. "pool: os.exit in a task (closing the state or not), an error "
     .. "after the run", function()
    local dir = proc.fifo_dir()
    local start = ([[
      local asyncio = require "asyncio"
      local fs = require "asyncio.fs"
      asyncio.run(asyncio.async(function()
        asyncio.create_task(fs.open("%s/ff", "r")) -- its first step opens
        asyncio.await(asyncio.sleep(0))
        %s
      end)())
      %s]])
    local cases = {
      {4, start:format(dir, "io.write('x'); os.exit(4)", "")},
      {5, start:format(dir, "io.write('x'); os.exit(5, true)", "")},
      {1, start:format(dir, "io.write('x')", "error('boom')")},
    }
    -- lua5.4 finds this build's modules (proc.build is absolute)
    local env = {LUA_PATH = proc.root .. "/lua/?.lua;" .. proc.root
                   .. "/lua/?/init.lua;;", LUA_CPATH = proc.build .. "/?.so;;"}
    for _, case in ipairs(cases) do
      for _, cmd in ipairs{luaio, "lua5.4"} do
        local r = proc.run({cmd, "-e", case[2]}, {env = env, timeout = 20})
        assert.same({case[1], "x"}, {r.status, r.stdout}, cmd)
      end
    end
    proc.rmdir(dir)
  end)
end)
