-- spec/process_spec.lua: subprocesses (bindings/io/process.c,
-- lua/asyncio/subprocess.lua): exec and shell, pipes, communicate, wait,
-- signals, options, errors, and what closing the loop does; the child's
-- pipes are real pipes, and NULs and bad env entries are refused.
--
-- Real clock; the children are /bin/sh and coreutils. Time only for order.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local iserror = asyncio.iserror
local PIPE, STDOUT, DEVNULL = asyncio.PIPE, asyncio.STDOUT, asyncio.DEVNULL

local raises = dofile("spec/helpers.lua").error_of

--- Runs fn and returns the number of children it started (through the
-- core's _spawn, counted while fn runs).
local function spawns_of(fn)
  local core = require "asyncio.core"
  local spawn, n = core._spawn, 0
  core._spawn = function(...)
    n = n + 1
    return spawn(...)
  end
  local ok, err = pcall(fn)
  core._spawn = spawn
  if not ok then error(err, 0) end
  return n
end

local function sh(script, opts)
  return await(asyncio.create_subprocess_exec("/bin/sh", "-c", script, opts))
end

--- True while a process with this pid exists (and is not a zombie).
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

describe("create_subprocess_exec", function()
  it("communicate returns what the child wrote to stdout and stderr",
     aspec.async(function()
    local p = sh("echo out; echo err >&2", {stdout = PIPE, stderr = PIPE})
    assert.equal("asyncio.Process", getmetatable(p).__name)
    local out, err = await(p:communicate())
    assert.equal("out\n", out)
    assert.equal("err\n", err)
    assert.equal(0, p.returncode)
  end))

  it("pid is the child's; returncode is nil until it exits",
     aspec.async(function()
    local p = sh("read line", {stdin = PIPE})
    assert.is_true(math.type(p.pid) == "integer" and p.pid > 0)
    assert.is_true(alive(p.pid))
    assert.is_nil(p.returncode)
    p.stdin:write("go\n")
    assert.equal(0, await(p:wait()))
    assert.equal(0, p.returncode)
  end))

  it("wait returns the exit status", aspec.async(function()
    local p = sh("exit 3")
    assert.equal(3, await(p:wait()))
    assert.equal(3, await(p:wait())) -- again, at once
    assert.equal(3, p.returncode)
  end))

  it("communicate(input) feeds stdin and closes it", aspec.async(function()
    local p = await(asyncio.create_subprocess_exec("cat",
      {stdin = PIPE, stdout = PIPE}))
    local out, err = await(p:communicate("fed through stdin\n"))
    assert.equal("fed through stdin\n", out)
    assert.is_nil(err)
    assert.equal(0, p.returncode)
  end))

  it("communicate ignores a child that exits without reading its input",
     aspec.async(function()
    local p = sh("exit 0", {stdin = PIPE})
    await(p:wait())
    local out = await(p:communicate(string.rep("x", 1 << 20)))
    assert.is_nil(out)
  end))

  it("stderr = STDOUT joins the two streams into stdout",
     aspec.async(function()
    local p = sh("echo one; echo two >&2; echo three",
                 {stdout = PIPE, stderr = STDOUT})
    assert.is_nil(p.stderr)
    local out, err = await(p:communicate())
    assert.equal("one\ntwo\nthree\n", out)
    assert.is_nil(err)
  end))

  it("gives the child real pipes, as Python's os.pipe(): it may open "
     .. "/dev/stdin", aspec.async(function()
    local p = sh("cat /dev/stdin; for fd in 0 1 2; do "
                 .. "readlink /proc/self/fd/$fd >&2; done",
                 {stdin = PIPE, stdout = PIPE, stderr = PIPE})
    local out, err = await(p:communicate("hello"))
    assert.equal("hello", out)
    assert.equal(0, p.returncode)
    local kinds = {}
    for link in err:gmatch("[^\n]+") do kinds[#kinds + 1] = link:match("^%a+") end
    assert.same({"pipe", "pipe", "pipe"}, kinds)
    -- stderr = STDOUT: both on the stdout pipe's write end
    p = sh("readlink /proc/self/fd/1; readlink /proc/self/fd/2",
           {stdout = PIPE, stderr = STDOUT})
    out = await(p:communicate())
    local one, two = out:match("^(%S+)\n(%S+)\n$")
    assert.matches("^pipe:", one)
    assert.equal(one, two)
  end))

  it("refuses a NUL in the program, an argument, cwd or env (Python's "
     .. "ValueError), an env name with '=' and an env value that is no "
     .. "string or number", aspec.async(function()
    local cases = {
      {function() return asyncio.create_subprocess_exec("ec\0ho") end,
       "embedded null byte"},
      {function() return asyncio.create_subprocess_exec("printf", "a\0b") end,
       "embedded null byte"},
      {function() return asyncio.create_subprocess_shell("echo 'a\0b'") end,
       "embedded null byte"},
      {function() return asyncio.create_subprocess_exec("true",
         {cwd = "/tmp\0/x"}) end, "embedded null byte"},
      {function() return asyncio.create_subprocess_exec("true",
         {env = {A = "x\0y"}}) end, "embedded null byte"},
      {function() return asyncio.create_subprocess_exec("true",
         {env = {["C=D"] = "e"}}) end, "illegal environment variable name"},
    }
    for i, case in ipairs(cases) do
      local e = raises(function() return await(case[1]()) end)
      assert.is_true(iserror(e, asyncio.ValueError), i .. tostring(e))
      assert.equal(case[2], e.message)
    end
    local e = raises(function()
      return await(asyncio.create_subprocess_exec("true", {env = {B = false}}))
    end)
    assert.matches("bad option 'env' %(string or number values expected, "
                   .. "got boolean for 'B'%)", e)
    e = raises(function()
      return await(asyncio.create_subprocess_exec("true", {cwd = true}))
    end)
    assert.matches("bad option 'cwd' %(string expected, got boolean%)", e)
    -- a number is taken, as Lua writes it
    local p = await(asyncio.create_subprocess_exec("/bin/sh", "-c",
      "echo $PORT", {env = {PORT = 8080}, stdout = PIPE}))
    assert.equal("8080\n", (await(p:communicate())))
  end))

  it("DEVNULL discards a stream", aspec.async(function()
    local p = sh("echo hidden; echo shown >&2",
                 {stdout = DEVNULL, stderr = PIPE})
    assert.is_nil(p.stdout)
    local out, err = await(p:communicate())
    assert.is_nil(out)
    assert.equal("shown\n", err)
  end))

  it("stdout reads line by line as the child writes", aspec.async(function()
    local p = sh("for i in 1 2 3; do echo line $i; done", {stdout = PIPE})
    local lines = {}
    for line in p.stdout:lines() do lines[#lines + 1] = line end
    assert.same({"line 1\n", "line 2\n", "line 3\n"}, lines)
    assert.equal(0, await(p:wait()))
  end))

  it("a conversation over stdin and stdout", aspec.async(function()
    local p = sh("while read x; do echo \"<$x>\"; done",
                 {stdin = PIPE, stdout = PIPE})
    for _, word in ipairs{"a", "b", "c"} do
      p.stdin:write(word .. "\n")
      await(p.stdin:drain())
      assert.equal("<" .. word .. ">\n", await(p.stdout:readline()))
    end
    p.stdin:close()
    assert.equal(0, await(p:wait()))
  end))

  it("arguments reach the program as they are", aspec.async(function()
    local p = await(asyncio.create_subprocess_exec("printf", "[%s]",
      "two words", "", "$HOME", 42, {stdout = PIPE}))
    assert.equal("[two words][][$HOME][42]", (await(p:communicate())))
  end))

  it("cwd and env options", aspec.async(function()
    local p = sh("pwd; echo \"$GREETING\"", {stdout = PIPE, cwd = "/",
      env = {GREETING = "hello", PATH = os.getenv("PATH")}})
    assert.equal("/\nhello\n", (await(p:communicate())))
  end))

  it("env replaces the whole environment", aspec.async(function()
    local p = sh("echo \"[$HOME]\"", {stdout = PIPE, env = {X = "1"}})
    assert.equal("[]\n", (await(p:communicate())))
  end))

  it("terminate, kill and send_signal: returncode is minus the signal",
     aspec.async(function()
    local cases = {{"terminate", 15}, {"kill", 9}, {"SIGUSR1", 10},
                   {asyncio.signals.SIGHUP, 1}}
    for _, case in ipairs(cases) do
      local p = sh("read x", {stdin = PIPE})
      local how = case[1]
      if how == "terminate" or how == "kill" then
        p[how](p)
      else
        p:send_signal(how)
      end
      assert.equal(-case[2], await(p:wait()))
    end
  end))

  it("send_signal takes every name of asyncio.signals; an unknown name "
     .. "raises ValueError", aspec.async(function()
    local p = sh("read x", {stdin = PIPE})
    p:send_signal("SIGWINCH") -- ignored by the shell
    p:send_signal("SIGTSTP") -- stops it
    p:send_signal("SIGCONT")
    assert.is_nil(p.returncode)
    local err = raises(p.send_signal, p, "SIGNOPE")
    assert.is_true(iserror(err, asyncio.ValueError))
    p.stdin:write("go\n")
    assert.equal(0, await(p:wait()))
  end))

  it("signals after the exit raise ProcessLookupError, as Python's (they "
     .. "did nothing)", aspec.async(function()
    local p = sh("exit 0")
    await(p:wait())
    local n = 0
    for _, signal in ipairs{p.terminate, p.kill, p.send_signal} do
      local e = raises(signal, p, "SIGTERM")
      assert.is_true(iserror(e, asyncio.ProcessLookupError), tostring(e))
      n = n + 1
    end
    assert.equal(3, n)
    assert.equal(0, p.returncode)
  end))

  it("a missing program raises FileNotFoundError", aspec.async(function()
    local err = raises(function()
      return await(asyncio.create_subprocess_exec("/no/such/program"))
    end)
    assert.is_true(iserror(err, asyncio.FileNotFoundError))
    assert.equal("ENOENT", err.name)
  end))

  it("the OSError of a missing program names it, as Python's",
     aspec.async(function()
    local err = raises(function()
      return await(asyncio.create_subprocess_exec("no-such-prog-xyz", "a"))
    end)
    assert.equal("FileNotFoundError: [Errno 2] No such file or directory: "
                 .. "'no-such-prog-xyz'", tostring(err))
    assert.equal("no-such-prog-xyz", err.filename)
    assert.equal(2, err.errno)
    -- a missing working directory is named instead
    err = raises(function()
      return await(asyncio.create_subprocess_exec("true",
                                                  {cwd = "/no/such/dir"}))
    end)
    assert.is_true(iserror(err, asyncio.FileNotFoundError))
    assert.equal("/no/such/dir", err.filename)
    -- the low-level subprocess_exec too
    local loop = asyncio.get_running_loop()
    err = raises(function()
      return await(loop:subprocess_exec(function() return {} end,
                                        "no-such-prog-xyz"))
    end)
    assert.equal("no-such-prog-xyz", err.filename)
  end))

  it("bad options and arguments raise", aspec.async(function()
    assert.matches("bad option 'stdout'", tostring(raises(function()
      return sh("true", {stdout = STDOUT})
    end)))
    assert.matches("string expected", tostring(raises(function()
      return await(asyncio.create_subprocess_exec("echo", {}, 1))
    end)))
  end))

  it("a program that is not a string raises a bad-argument error, before "
     .. "any child is started", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local factory = function() return {} end
    assert.equal(0, spawns_of(function()
      assert.equal("bad argument #1 to 'create_subprocess_exec' (string "
                   .. "expected, got nil)", raises(function()
        return await(asyncio.create_subprocess_exec())
      end))
      assert.equal("bad argument #1 to 'create_subprocess_exec' (string "
                   .. "expected, got table)", raises(function()
        return await(asyncio.create_subprocess_exec({stdout = PIPE}))
      end))
      assert.equal("bad argument #2 to 'subprocess_exec' (string "
                   .. "expected, got boolean)", raises(function()
        return await(loop:subprocess_exec(factory, false, "x"))
      end))
      assert.equal("bad argument #1 to 'create_subprocess_shell' (string "
                   .. "expected, got number)", raises(function()
        return await(asyncio.create_subprocess_shell(5))
      end))
      assert.equal("bad argument #2 to 'subprocess_shell' (string "
                   .. "expected, got no value)", raises(function()
        return await(loop:subprocess_shell(factory))
      end))
    end))
  end))

  it("an unknown option raises a bad-argument error naming its argument, "
     .. "before the child is started", aspec.async(function()
    assert.equal(0, spawns_of(function()
      -- Python's options that are not implemented are unknown too
      for name, v in pairs{stdoutt = PIPE, shell = true, text = true,
                           pass_fds = {3}} do
        assert.equal("bad argument #4 to 'create_subprocess_exec' (unknown "
                     .. "option '" .. name .. "')", raises(function()
          return await(asyncio.create_subprocess_exec("/bin/sh", "-c",
                                                      "true", {[name] = v}))
        end))
      end
      assert.equal("bad argument #2 to 'create_subprocess_exec' (unknown "
                   .. "option 'timeout')", raises(function()
        return await(asyncio.create_subprocess_exec("true", {timeout = 1}))
      end))
    end))
  end))

  it("every documented option is taken", aspec.async(function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local p = sh("cat; pwd; echo $X; echo e >&2",
                 {stdin = PIPE, stdout = PIPE, stderr = STDOUT, cwd = dir,
                  env = {X = "x", PATH = os.getenv("PATH")}, limit = 1000,
                  start_new_session = true})
    local out = await(p:communicate("in\n"))
    os.remove(dir)
    assert.equal("in\n" .. dir .. "\nx\ne\n", out)
    assert.equal(0, p.returncode)
  end))

  it("wait is cancellable and composes with wait_for",
     aspec.async(function()
    local p = sh("read x", {stdin = PIPE})
    local err = raises(function()
      return await(asyncio.wait_for(p:wait(), 0.02))
    end)
    assert.is_true(iserror(err, asyncio.TimeoutError))
    assert.is_nil(p.returncode)
    p:kill()
    assert.equal(-9, await(p:wait()))
  end))

  it("several tasks may wait for the same process; one of them cancelled "
     .. "leaves the others waiting", aspec.async(function()
    local p = sh("read x; exit 0", {stdin = PIPE})
    local waiters = {}
    for i = 1, 4 do
      waiters[i] = asyncio.create_task(p:wait())
    end
    await(asyncio.sleep(0))
    waiters[2]:cancel()
    await(asyncio.sleep(0))
    assert.is_true(waiters[2]:cancelled())
    table.remove(waiters, 2)
    p.stdin:close()
    assert.same({0, 0, 0}, await(asyncio.gather(table.unpack(waiters))))
  end))

  it("tostring shows the pid and, after the exit, the returncode",
     aspec.async(function()
    local p = sh("exit 7")
    assert.equal(("<Process %d running>"):format(p.pid), tostring(p))
    await(p:wait())
    assert.equal(("<Process %d returncode=7>"):format(p.pid), tostring(p))
  end))
end)

describe("create_subprocess_shell", function()
  it("runs the command under /bin/sh", aspec.async(function()
    local p = await(asyncio.create_subprocess_shell("echo $((6 * 7)) | cat",
                                                    {stdout = PIPE}))
    assert.equal("42\n", (await(p:communicate())))
    assert.equal(0, p.returncode)
  end))

  it("an unknown option raises a bad-argument error (argument #2), "
     .. "before the child is started; the documented ones are taken",
     aspec.async(function()
    assert.equal(0, spawns_of(function()
      assert.equal("bad argument #2 to 'create_subprocess_shell' (unknown "
                   .. "option 'executable')", raises(function()
        return await(asyncio.create_subprocess_shell("true",
                                                     {executable = "/bin/sh"}))
      end))
    end))
    assert.equal(1, spawns_of(function()
      await(await(asyncio.create_subprocess_shell("true")):wait())
    end))
    local p = await(asyncio.create_subprocess_shell("cat; echo $X >&2",
      {stdin = PIPE, stdout = PIPE, stderr = PIPE, cwd = "/",
       env = {X = "x", PATH = os.getenv("PATH")}, limit = 1000,
       start_new_session = false}))
    assert.same({"in", "x\n"}, {await(p:communicate("in"))})
  end))
end)

describe("subprocesses and the loop", function()
  it("closing the loop kills nothing", function()
    local loop = asyncio.new_event_loop()
    local p = loop:run_until_complete(async(function()
      return sh("sleep 5")
    end)())
    loop:close()
    assert.equal(0, loop:_counts().handles)
    assert.is_true(alive(p.pid))
    assert.is_nil(p.returncode) -- nobody watches its exit any more
    os.execute("kill " .. p.pid)
  end)

  it("closing the loop closes the pipes: the child reads its end",
     function()
    -- Nobody watches the child once its loop is closed, so it reports
    -- on a FIFO it holds open until it exits: what its read returned,
    -- then the FIFO's end, which is its exit.
    local fifo = os.tmpname()
    os.remove(fifo)
    assert.is_true(os.execute("mkfifo " .. fifo))
    local loop = asyncio.new_event_loop()
    loop:run_until_complete(async(function()
      return sh("exec 3>" .. fifo .. "; read x; echo \"read $?\" >&3",
                {stdin = PIPE})
    end)())
    local rf = assert(io.open(fifo, "r")) -- meets the child's open
    os.remove(fifo)
    loop:close()
    local watch = asyncio.new_event_loop()
    local report = watch:run_until_complete(async(function()
      local lost = watch:create_future()
      local data = {}
      await(watch:connect_read_pipe(function()
        return {
          data_received = function(_, d) data[#data + 1] = d end,
          connection_lost = function() lost:set_result(nil) end,
        }
      end, rf))
      await(asyncio.wait_for(lost, 10))
      return table.concat(data)
    end)())
    watch:close()
    -- read x met the end of stdin (status 1), and the child is gone
    assert.equal("read 1\n", report)
  end)
end)
