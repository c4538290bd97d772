-- loop:connect_read_pipe and loop:connect_write_pipe: transports over a
-- pipe given as a Lua file (io.popen) or a file descriptor, which the
-- transport owns.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"
local h = dofile("spec/helpers.lua")

local await, iserror = asyncio.await, asyncio.iserror

local function sink()
  local loop = asyncio.get_running_loop()
  local p = {data = "", log = {}, lost = loop:create_future()}
  function p:connection_made(t)
    self.transport = t
    self.log[#self.log + 1] = "connection_made"
  end
  function p:data_received(d)
    self.data = self.data .. d
    if self.log[#self.log] ~= "data_received" then
      self.log[#self.log + 1] = "data_received"
    end
  end
  function p:eof_received()
    self.log[#self.log + 1] = "eof_received"
    return true -- a read pipe closes at its end anyway
  end
  function p:connection_lost(exc)
    self.log[#self.log + 1] = "connection_lost"
    self.lost:set_result(exc)
  end
  return p
end

describe("pipe transports", function()
  it("connect_read_pipe reads a popen'd command to its end",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local f = io.popen("printf 'one\\ntwo\\n'", "r")
    local t, p = await(loop:connect_read_pipe(sink, f))
    assert.equal(f, t:get_extra_info("pipe"))
    assert.is_false(t:can_write_eof())
    assert.is_nil(await(p.lost))
    assert.equal("one\ntwo\n", p.data)
    assert.same({"connection_made", "data_received", "eof_received",
                 "connection_lost"}, p.log)
    assert.is_true(t:is_closing())
    -- the transport owned the file and closed it
    assert.equal("closed file", io.type(f))
  end))

  it("connect_write_pipe writes into a popen'd command",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local out = os.tmpname()
    local f = io.popen("cat > " .. out, "w")
    local t, p = await(loop:connect_write_pipe(sink, f))
    assert.is_false(t:is_reading())
    t:write("written ")
    t:writelines({"through ", "a pipe"})
    t:close()
    assert.is_nil(await(p.lost))
    assert.same({"connection_made", "connection_lost"}, p.log)
    local r = assert(io.open(out))
    assert.equal("written through a pipe", r:read("a"))
    r:close()
    os.remove(out)
  end))

  it("reads a FIFO opened with io.open, written by a child",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    -- a child writes to the read end's peer: use a FIFO for a plain fd
    local fifo = os.tmpname()
    os.remove(fifo)
    assert(os.execute("mkfifo " .. fifo))
    local writer = await(asyncio.create_subprocess_shell(
      "printf fifo-data > " .. fifo))
    local rf = assert(io.open(fifo, "r"))
    local t, p = await(loop:connect_read_pipe(sink, rf))
    assert.is_nil(await(p.lost))
    assert.equal("fifo-data", p.data)
    assert.equal(0, await(writer:wait()))
    assert.equal("closed file", io.type(rf))
    t:close()
    os.remove(fifo)
  end))

  it("write_eof closes a write pipe, as asyncio's: the reader sees its end",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local out = os.tmpname()
    local t, p = await(loop:connect_write_pipe(sink,
                                               io.popen("cat > " .. out, "w")))
    assert.is_true(t:can_write_eof())
    t:write("before eof")
    t:write_eof()
    assert.is_true(t:is_closing())
    t:write("after eof") -- dropped, as asyncio's write pipe does
    assert.is_nil(await(asyncio.wait_for(p.lost, 10)))
    assert.same({"connection_made", "connection_lost"}, p.log)
    local r = assert(io.open(out))
    assert.equal("before eof", r:read("a")) -- cat ended: its file was closed
    r:close()
    os.remove(out)
  end))

  it("a write pipe whose reader closed its end: connection_lost(nil)",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:connect_write_pipe(sink, io.popen("true", "w")))
    assert.is_nil(await(asyncio.wait_for(p.lost, 10)))
    assert.same({"connection_made", "connection_lost"}, p.log)
    assert.is_true(t:is_closing())
  end))

  it("a child spawned later does not inherit the pipe", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t = await(loop:connect_write_pipe(sink, io.popen("cat", "w")))
    local fd = assert(tonumber(tostring(t):match("fd=(%d+)")))
    -- the child looks for the transport's pipe among its descriptors
    local child = await(asyncio.create_subprocess_exec("sh", "-c", [[
      target=$(readlink /proc/$PPID/fd/$1)
      for f in /proc/$$/fd/*; do
        [ "$(readlink "$f")" = "$target" ] && echo inherited
      done
      echo checked]], "sh", tostring(fd), {stdout = asyncio.PIPE}))
    assert.equal("checked\n", await(child.stdout:read()))
    assert.equal(0, await(child:wait()))
    t:close()
    await(t:get_protocol().lost)
  end))

  it("writing to a read pipe raises; the transport goes on",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:connect_read_pipe(sink,
                                              io.popen("echo still", "r")))
    assert.matches("attempt to call 'write' on a read pipe transport",
                   h.error_of(t.write, t, "x"))
    assert.matches("attempt to call 'write_eof' on a read pipe transport",
                   h.error_of(t.write_eof, t))
    assert.is_false(t:is_closing())
    assert.is_nil(await(p.lost))
    assert.equal("still\n", p.data)
  end))

  it("a file that is not a pipe, socket or terminal raises ValueError",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local f = assert(io.open("spec/pipe_transport_spec.lua"))
    local err = h.await_error(loop:connect_read_pipe(sink, f))
    assert.is_true(iserror(err, asyncio.ValueError))
    assert.equal("ValueError: Pipe transport is for pipes/sockets only.",
                 tostring(err))
    f:close()
    local name = os.tmpname()
    f = assert(io.open(name, "w"))
    err = h.await_error(loop:connect_write_pipe(sink, f))
    assert.equal("ValueError: Pipe transport is only for pipes, sockets and "
                 .. "character devices", tostring(err))
    f:close()
    f = assert(io.open("/dev/null", "w"))
    assert.is_true(iserror(h.await_error(loop:connect_write_pipe(sink, f)),
                           asyncio.ValueError))
    f:close()
    os.remove(name)
  end))

  it("a bad pipe argument raises", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local err = h.await_error(loop:connect_read_pipe(sink, "nope"))
    assert.matches("bad argument #2 to 'connect_read_pipe'", tostring(err))
    local f = io.popen("true")
    f:close()
    err = h.await_error(loop:connect_read_pipe(sink, f))
    assert.matches("bad argument #2 to 'connect_read_pipe' %(attempt to "
                   .. "use a closed file%)", tostring(err))
    err = h.await_error(loop:connect_write_pipe(sink, 1.5))
    assert.matches("bad argument #2 to 'connect_write_pipe' %(number has "
                   .. "no integer representation%)", tostring(err))
  end))
end)
