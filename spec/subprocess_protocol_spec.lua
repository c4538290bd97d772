-- loop:subprocess_exec / subprocess_shell with a SubprocessProtocol:
-- pipe_data_received(fd, data), pipe_connection_lost(fd, exc),
-- process_exited(), connection_made and connection_lost, each counted;
-- the transport's get_pid, get_returncode, get_pipe_transport,
-- send_signal, terminate, kill, close.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"
local h = dofile("spec/helpers.lua")

local await = asyncio.await

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
    assert.is_true(t:is_closing())
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
    t:kill() -- after the exit: nothing
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
end)
