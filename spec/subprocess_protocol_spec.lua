-- loop:subprocess_exec / subprocess_shell with a SubprocessProtocol:
-- pipe_data_received(fd, data), pipe_connection_lost(fd, exc),
-- process_exited(), connection_made and connection_lost, each counted;
-- the transport's get_pid, get_returncode, get_pipe_transport,
-- send_signal, terminate, kill, close.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"
local h = dofile("spec/helpers.lua")

local await, iserror = asyncio.await, asyncio.iserror

local function recorder()
  local loop = asyncio.get_running_loop()
  local p = {out = {[1] = "", [2] = ""}, events = {}, counts = {},
             lost = loop:create_future(), exited = loop:create_future(),
             data = loop:create_future()}
  local function note(e)
    p.counts[e] = (p.counts[e] or 0) + 1
    p.events[#p.events + 1] = e
  end
  function p:connection_made(t) self.transport = t; note("connection_made") end
  function p:pipe_data_received(fd, data)
    self.out[fd] = self.out[fd] .. data
    if not self.data:done() then self.data:set_result(fd) end
  end
  function p:pipe_connection_lost(fd, exc)
    note("pipe_connection_lost " .. fd .. " " .. tostring(exc))
  end
  function p:process_exited()
    note("process_exited")
    self.exited:set_result(self.transport:get_returncode())
  end
  function p:connection_lost(exc)
    note("connection_lost")
    self.lost:set_result(exc)
  end
  return p
end

local function index_of(list, v)
  for i, x in ipairs(list) do if x == v then return i end end
end

describe("subprocess transports", function()
  it("subprocess_exec: output by fd, then the exit, then connection_lost",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:subprocess_exec(recorder, "sh", "-c",
      "cat; echo err >&2; exit 3"))
    assert.equal("asyncio.SubprocessTransport", getmetatable(t).__name)
    assert.equal(t, p.transport)
    assert.is_true(t:get_pid() > 0)
    assert.is_nil(t:get_returncode())
    local stdin = t:get_pipe_transport(0)
    stdin:write("to cat\n")
    stdin:close()
    assert.is_nil(await(p.lost))
    assert.equal(3, t:get_returncode())
    assert.equal(3, await(p.exited))
    assert.equal("to cat\n", p.out[1])
    assert.equal("err\n", p.out[2])
    for _, e in ipairs{"connection_made", "process_exited",
                       "connection_lost", "pipe_connection_lost 1 nil",
                       "pipe_connection_lost 2 nil"} do
      assert.equal(1, p.counts[e], e)
    end
    -- connection_made first, connection_lost last, after the exit and the
    -- ends of the output pipes
    assert.equal(1, index_of(p.events, "connection_made"))
    assert.equal(#p.events, index_of(p.events, "connection_lost"))
    assert.is_true(index_of(p.events, "process_exited")
                   < index_of(p.events, "connection_lost"))
    -- only close() makes it closing, as asyncio's
    assert.is_false(t:is_closing())
    t:close()
    assert.is_true(t:is_closing())
  end))

  it("closing the child's stdin calls pipe_connection_lost(0) then, before "
     .. "the output", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:subprocess_exec(recorder, "cat"))
    local stdin = t:get_pipe_transport(0)
    stdin:write("hello\n")
    stdin:close()
    await(asyncio.wait_for(p.lost, 10))
    assert.equal("hello\n", p.out[1])
    assert.equal("connection_made", p.events[1])
    assert.equal("pipe_connection_lost 0 nil", p.events[2])
    assert.equal(6, #p.events) -- and the ends of 1 and 2, and the exit
    assert.equal("connection_lost", p.events[#p.events])
  end))

  it("write_eof on the child's stdin closes it; the child sees its end",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:subprocess_exec(recorder, "cat"))
    local stdin = t:get_pipe_transport(0)
    assert.is_true(stdin:can_write_eof())
    stdin:write("eof\n")
    stdin:write_eof()
    assert.is_true(stdin:is_closing())
    stdin:write("dropped") -- as asyncio's pipe: no error, nothing sent
    await(asyncio.wait_for(p.lost, 10))
    assert.equal("eof\n", p.out[1])
    assert.equal(0, t:get_returncode())
    assert.equal("pipe_connection_lost 0 nil", p.events[2])
  end))

  it("a child that closes its stdin: pipe_connection_lost(0) while it runs",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local stdin_lost = loop:create_future()
    local t, p = await(loop:subprocess_exec(function()
      local p = recorder()
      local base = p.pipe_connection_lost
      function p:pipe_connection_lost(fd, exc)
        base(self, fd, exc)
        if fd == 0 then stdin_lost:set_result(exc) end
      end
      return p
    end, "sh", "-c", "exec 0<&-; exec sleep 30"))
    assert.is_nil(await(asyncio.wait_for(stdin_lost, 10)))
    assert.is_nil(t:get_returncode())
    assert.is_nil(p.counts.process_exited)
    t:kill()
    assert.equal(-9, await(p.exited))
    await(p.lost)
  end))

  it("a child trying to write into its stdin (a pipe, read-only on its "
     .. "side: the write fails, as with Python's os.pipe()) keeps it open",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:subprocess_exec(recorder, "sh", "-c",
      "if echo junk >&0 2>/dev/null; then echo wrote; fi; echo ready; "
      .. "read x; echo got $x"))
    assert.equal(1, await(p.data)) -- "ready": the junk was written before
    t:get_pipe_transport(0):write("line\n")
    await(asyncio.wait_for(p.lost, 10))
    assert.equal("ready\ngot line\n", p.out[1])
    assert.equal(0, t:get_returncode())
  end))

  it("get_extra_info('subprocess'), get_protocol and set_protocol",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    -- cat runs until its stdin closes (a child that ends at once may be
    -- all told to p before set_protocol)
    local t, p = await(loop:subprocess_exec(recorder, "cat"))
    local proc = t:get_extra_info("subprocess")
    assert.equal(t:get_pid(), proc.pid)
    assert.equal(t:get_pipe_transport(1), proc.stdout)
    assert.equal("dflt", t:get_extra_info("nothing", "dflt"))
    assert.equal(p, t:get_protocol())
    local q = recorder()
    q.transport = t
    t:set_protocol(q)
    assert.equal(q, t:get_protocol())
    t:get_pipe_transport(0):close()
    await(q.lost) -- the new protocol is told the rest
    assert.equal(0, await(q.exited))
    assert.equal(0, await(proc:wait()))
  end))

  it("the stdin pipe's flow control calls the protocol's pause_writing "
     .. "and resume_writing", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local resumed = loop:create_future()
    local t, p = await(loop:subprocess_exec(function()
      local p = recorder()
      function p:pause_writing() self.counts.pause = (self.counts.pause or 0)
                                                     + 1 end
      function p:resume_writing()
        self.counts.resume = (self.counts.resume or 0) + 1
        resumed:set_result(true)
      end
      return p
    end, "sh", "-c", "cat > /dev/null"))
    local stdin = t:get_pipe_transport(0)
    stdin:set_write_buffer_limits(1)
    stdin:write(string.rep("x", 4 * 1024 * 1024)) -- more than a socket holds
    assert.equal(1, p.counts.pause)
    await(asyncio.wait_for(resumed, 10))
    assert.equal(1, p.counts.resume)
    stdin:close()
    await(asyncio.wait_for(p.lost, 10))
    assert.equal(0, t:get_returncode())
  end))

  it("an error in a protocol callback is reported; the rest goes on",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local reported = {}
    loop:set_exception_handler(function(_, ctx)
      reported[#reported + 1] = ctx
    end)
    local t, p = await(loop:subprocess_exec(function()
      local p = recorder()
      function p:pipe_data_received() error(asyncio.ValueError("boom")) end
      return p
    end, "echo", "out", {stdin = asyncio.DEVNULL, stderr = asyncio.DEVNULL}))
    await(p.lost)
    loop:set_exception_handler(nil)
    assert.equal(1, #reported)
    assert.equal("Exception in callback protocol.pipe_data_received()",
                 reported[1].message)
    assert.is_true(iserror(reported[1].exception, asyncio.ValueError))
    assert.equal(t, reported[1].transport)
    assert.equal(1, p.counts["pipe_connection_lost 1 nil"])
    assert.equal(1, p.counts.process_exited)
  end))

  it("subprocess_shell, and a child killed by a signal",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:subprocess_shell(recorder,
      "echo started; exec sleep 30"))
    assert.equal(1, await(p.data))
    assert.equal("started\n", p.out[1])
    t:terminate()
    assert.equal(-15, await(p.exited))
    await(p.lost)
    -- after the exit, as Python's transport
    local e = select(2, pcall(t.kill, t))
    assert.is_true(asyncio.iserror(e, asyncio.ProcessLookupError),
                   tostring(e))
    assert.matches("^<SubprocessTransport pid=%d+ returncode=%-15>$",
                   tostring(t))
  end))

  it("close kills a running child and closes its pipes",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:subprocess_exec(recorder, "sleep", "30",
                                            {stderr = asyncio.DEVNULL}))
    assert.is_nil(t:get_pipe_transport(2))
    t:close()
    t:close()
    assert.equal(-9, await(p.exited))
    await(p.lost)
    assert.equal(1, p.counts.connection_lost)
  end))

  it("bad arguments raise", aspec.async(function()
    local loop = asyncio.get_running_loop()
    assert.matches("bad argument #1 to 'subprocess_exec' %(protocol factory",
      tostring(h.await_error(loop:subprocess_exec(42, "true"))))
    assert.matches("bad argument #2 to 'subprocess_shell'",
      tostring(h.await_error(loop:subprocess_shell(recorder, 42))))
    local err = h.await_error(loop:subprocess_exec(recorder,
      "/nonexistent/program"))
    assert.is_true(asyncio.iserror(err, asyncio.FileNotFoundError))
  end))

  it("an argument is counted from the factory (self excluded), as in "
     .. "the other loop methods", aspec.async(function()
    local loop = asyncio.get_running_loop()
    assert.equal("bad argument #3 to 'subprocess_exec' (string expected, "
                 .. "got boolean)", h.await_error(loop:subprocess_exec(
                   recorder, "echo", true)))
    assert.equal("bad argument #4 to 'subprocess_exec' (string expected, "
                 .. "got function)", h.await_error(loop:subprocess_exec(
                   recorder, "echo", "a", print, "b")))
  end))

  it("an unknown option raises a bad-argument error naming its argument, "
     .. "before the child is started; the documented options are taken",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local made = 0 -- the factory runs before the child is started
    local function factory()
      made = made + 1
      return recorder()
    end
    assert.equal("bad argument #5 to 'subprocess_exec' (unknown option "
                 .. "'shell')", h.await_error(loop:subprocess_exec(factory,
                   "sh", "-c", "true", {shell = false})))
    assert.equal("bad argument #3 to 'subprocess_shell' (unknown option "
                 .. "'bufsize')", h.await_error(loop:subprocess_shell(
                   factory, "true", {bufsize = 0})))
    assert.equal(0, made)
    local all = {stdin = asyncio.DEVNULL, stdout = asyncio.PIPE,
                 stderr = asyncio.STDOUT, cwd = "/",
                 env = {X = "x", PATH = os.getenv("PATH")}, limit = 1000,
                 start_new_session = true}
    local t, p = await(loop:subprocess_exec(factory, "sh", "-c",
                                            "pwd; echo $X >&2", all))
    assert.is_nil(await(p.lost))
    assert.equal("/\nx\n", p.out[1])
    t:close()
    t, p = await(loop:subprocess_shell(factory, "pwd; echo $X >&2", all))
    assert.is_nil(await(p.lost))
    assert.equal("/\nx\n", p.out[1])
    t:close()
    assert.equal(2, made)
  end))
end)
