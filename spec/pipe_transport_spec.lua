-- loop:connect_read_pipe and loop:connect_write_pipe: transports over a
-- pipe given as a Lua file (io.popen) or a file descriptor, which the
-- transport owns.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"
local h = dofile("spec/helpers.lua")

local await = asyncio.await

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

  it("a bad pipe argument raises", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local err = h.await_error(loop:connect_read_pipe(sink, "nope"))
    assert.matches("bad argument #2 to 'connect_read_pipe'", tostring(err))
    local f = io.popen("true")
    f:close()
    err = h.await_error(loop:connect_read_pipe(sink, f))
    assert.matches("attempt to use a closed file", tostring(err))
  end))
end)
