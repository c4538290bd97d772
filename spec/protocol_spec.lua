-- Protocols driven by the stream transports (loop:create_connection,
-- loop:create_server): which callbacks are called, how many times, in
-- which order. The orders were observed with CPython 3 asyncio running
-- the same exchanges (a mirror script, once):
--   A server writes "hello" and closes:
--     server: connection_made, connection_lost(None)
--     client: connection_made, data_received(b'hello'), eof_received,
--             connection_lost(None)
--   client writes "q", write_eof; server's eof_received returns True,
--   writes "late" and closes:
--     server: connection_made, data_received(b'q'), eof_received,
--             connection_lost(None)
--     client (eof_received true): connection_made, data_received(b'late'),
--             eof_received  (no connection_lost: it stays half-open)
--   the server's data_received raises ValueError:
--     handler: "Fatal error: protocol.data_received() call failed." with
--             exception, transport, protocol
--     server: connection_made, data_received(b'x'),
--             connection_lost(ValueError)
--     client: connection_made, eof_received, connection_lost(None)
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"

local async, await = asyncio.async, asyncio.await

--- A protocol recording its callbacks in log as "name event [arg]";
-- `lost` is a future completed by connection_lost. opts: keep (what
-- eof_received returns), fail (data_received raises), made(p, t) and
-- eof(p) hooks.
local function recorder(log, name, opts)
  opts = opts or {}
  local p = {lost = asyncio.get_running_loop():create_future(), counts = {}}
  local function note(event, arg)
    p.counts[event] = (p.counts[event] or 0) + 1
    log[#log + 1] = name .. " " .. event .. (arg and " " .. arg or "")
  end
  function p:connection_made(t)
    self.transport = t
    note("connection_made")
    if opts.made then opts.made(self, t) end
  end
  function p:data_received(data)
    note("data_received", data)
    if opts.fail then error(asyncio.ValueError("boom")) end
  end
  function p:eof_received()
    note("eof_received")
    if opts.eof then opts.eof(self) end
    return opts.keep
  end
  function p:connection_lost(exc)
    note("connection_lost", exc and exc.__name or "nil")
    self.lost:set_result(exc)
  end
  function p:pause_writing() note("pause_writing") end
  function p:resume_writing() note("resume_writing") end
  return p
end

local function port_of(srv) return srv.sockets[1].port end

--- Keeps only the entries of log starting with prefix.
local function side(log, prefix)
  local out = {}
  for _, e in ipairs(log) do
    if e:sub(1, #prefix) == prefix then out[#out + 1] = e end
  end
  return out
end

--- A server whose connections read nothing (pause_reading at once), so
-- that what a client writes stays in its buffer. Returns the server and
-- a table whose `protocol` is the last connection's recorder (on log).
local function stalled_server(loop, log)
  local last = {}
  local srv = await(loop:create_server(function()
    last.protocol = recorder(log or {}, "srv", {made = function(_, t)
      t:pause_reading()
    end})
    return last.protocol
  end, "127.0.0.1", 0))
  return srv, last
end

describe("protocols", function()
  it("a server that writes and closes: each callback once, in asyncio's "
     .. "order", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local log, srvp = {}, nil
    local srv = await(loop:create_server(function()
      srvp = recorder(log, "srv", {made = function(_, t)
        t:write("hello")
        t:close()
      end})
      return srvp
    end, "127.0.0.1", 0))
    local t, p = await(loop:create_connection(function()
      return recorder(log, "cli")
    end, "127.0.0.1", port_of(srv)))
    log[#log + 1] = "cli create_connection returned"
    assert.equal("asyncio.Transport", getmetatable(t).__name)
    assert.equal(t, p.transport)
    assert.is_nil(await(p.lost))
    assert.is_nil(await(srvp.lost))
    assert.same({"cli connection_made", "cli create_connection returned",
                 "cli data_received hello", "cli eof_received",
                 "cli connection_lost nil"}, side(log, "cli"))
    assert.same({"srv connection_made", "srv connection_lost nil"},
                side(log, "srv"))
    assert.is_true(t:is_closing())
    srv:close()
    await(srv:wait_closed())
  end))

  it("eof_received returning true keeps the connection half-open",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local log, srvp = {}, nil
    local srv = await(loop:create_server(function()
      srvp = recorder(log, "srv", {keep = true, eof = function(self)
        self.transport:write("late")
        self.transport:close()
      end})
      return srvp
    end, "127.0.0.1", 0))
    local got_late = loop:create_future()
    local t, p = await(loop:create_connection(function()
      return recorder(log, "cli", {keep = true, eof = function()
        got_late:set_result(true)
      end})
    end, "127.0.0.1", port_of(srv)))
    t:write("q")
    assert.is_true(t:can_write_eof())
    t:write_eof()
    await(srvp.lost)
    await(got_late)
    assert.same({"srv connection_made", "srv data_received q",
                 "srv eof_received", "srv connection_lost nil"},
                side(log, "srv"))
    -- the client stays open after its end of file, until it closes
    assert.same({"cli connection_made", "cli data_received late",
                 "cli eof_received"}, side(log, "cli"))
    assert.is_false(t:is_closing())
    assert.is_false(p.lost:done())
    t:close()
    assert.is_nil(await(p.lost))
    assert.equal(1, p.counts.connection_lost)
    srv:close()
    await(srv:wait_closed())
  end))

  it("an error in data_received goes to the exception handler, then "
     .. "connection_lost(exc)", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local ctxs = {}
    loop:set_exception_handler(function(_, ctx) ctxs[#ctxs + 1] = ctx end)
    local log, srvp = {}, nil
    local srv = await(loop:create_server(function()
      srvp = recorder(log, "srv", {fail = true})
      return srvp
    end, "127.0.0.1", 0))
    local t, p = await(loop:create_connection(function()
      return recorder(log, "cli")
    end, "127.0.0.1", port_of(srv)))
    t:write("x")
    local exc = await(srvp.lost)
    assert.is_true(asyncio.iserror(exc, asyncio.ValueError))
    assert.is_nil(await(p.lost))
    assert.equal(1, #ctxs)
    assert.equal("Fatal error: protocol.data_received() call failed.",
                 ctxs[1].message)
    assert.equal(exc, ctxs[1].exception)
    assert.equal(srvp, ctxs[1].protocol)
    assert.equal(srvp.transport, ctxs[1].transport)
    assert.same({"srv connection_made", "srv data_received x",
                 "srv connection_lost ValueError"}, side(log, "srv"))
    assert.same({"cli connection_made", "cli eof_received",
                 "cli connection_lost nil"}, side(log, "cli"))
    srv:close()
    await(srv:wait_closed())
  end))

  it("abort: connection_lost(nil) once, later; the peer sees its end",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local log, srvp = {}, nil
    local srv = await(loop:create_server(function()
      srvp = recorder(log, "srv")
      return srvp
    end, "127.0.0.1", 0))
    local t, p = await(loop:create_connection(function()
      return recorder(log, "cli")
    end, "127.0.0.1", port_of(srv)))
    t:write(string.rep("z", 1 << 20))
    t:abort()
    log[#log + 1] = "cli after abort"
    t:abort()
    t:close()
    assert.is_true(t:is_closing())
    assert.is_nil(await(p.lost))
    await(srvp.lost)
    assert.same({"cli connection_made", "cli after abort",
                 "cli connection_lost nil"}, side(log, "cli"))
    assert.equal("srv connection_lost nil", side(log, "srv")[#side(log,
                                                                "srv")])
    assert.equal(0, t:get_write_buffer_size())
    srv:close()
    await(srv:wait_closed())
  end))

  it("pause_writing over the high-water mark, resume_writing at the low "
     .. "one", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local log = {}
    local srv, last = stalled_server(loop, log)
    local resumed = loop:create_future()
    local t, p = await(loop:create_connection(function()
      local r = recorder(log, "cli")
      local resume = r.resume_writing
      function r:resume_writing()
        resume(self)
        resumed:set_result(true)
      end
      return r
    end, "127.0.0.1", port_of(srv)))
    t:set_write_buffer_limits(4096, 1024)
    assert.same({1024, 4096}, {t:get_write_buffer_limits()})
    local chunk = string.rep("w", 65536)
    for _ = 1, 64 do t:write(chunk) end -- more than the socket buffers
    assert.equal(1, p.counts.pause_writing)
    assert.is_true(t:get_write_buffer_size() > 4096)
    last.protocol.transport:resume_reading()
    await(resumed)
    assert.is_true(t:get_write_buffer_size() <= 1024)
    assert.same({"cli connection_made", "cli pause_writing",
                 "cli resume_writing"}, side(log, "cli"))
    t:close()
    await(p.lost)
    srv:close()
    await(srv:wait_closed())
  end))

  it("a write after close() while the buffer is flushing is sent, as "
     .. "asyncio appends it; once closed, writes are dropped",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local log = {}
    local srv, last = stalled_server(loop, log)
    local t, p = await(loop:create_connection(function()
      return recorder({}, "cli")
    end, "127.0.0.1", port_of(srv)))
    local chunk = string.rep("w", 65536)
    for _ = 1, 64 do t:write(chunk) end -- more than the socket buffers
    local buffered = t:get_write_buffer_size()
    assert.is_true(buffered > 0)
    t:close()
    t:write("tail")
    assert.equal(buffered + 4, t:get_write_buffer_size())
    last.protocol.transport:resume_reading()
    assert.is_nil(await(p.lost))
    t:write("dropped") -- closed: nothing, no error
    await(last.protocol.lost)
    local prefix, got, received = "srv data_received ", {}, 0
    for _, e in ipairs(log) do
      if e:sub(1, #prefix) == prefix then
        got[#got + 1] = e:sub(#prefix + 1)
        received = received + #e - #prefix
      end
    end
    assert.equal(64 * 65536 + 4, received)
    assert.equal("tail", table.concat(got):sub(-4))
    srv:close()
    await(srv:wait_closed())
  end))

  it("abort discards the write buffer: its size is 0 at once",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = stalled_server(loop)
    local t, p = await(loop:create_connection(function()
      return recorder({}, "cli")
    end, "127.0.0.1", port_of(srv)))
    local chunk = string.rep("w", 65536)
    for _ = 1, 64 do t:write(chunk) end -- more than the socket buffers
    assert.is_true(t:get_write_buffer_size() > 0)
    t:abort()
    assert.equal(0, t:get_write_buffer_size())
    assert.is_nil(await(p.lost))
    assert.equal(0, t:get_write_buffer_size())
    srv:close()
    srv:abort_clients()
    await(srv:wait_closed())
  end))

  it("errors in pause_writing are reported; the connection goes on",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local ctxs = {}
    loop:set_exception_handler(function(_, ctx) ctxs[#ctxs + 1] = ctx end)
    local srv = stalled_server(loop)
    local t, p = await(loop:create_connection(function()
      local r = recorder({}, "cli")
      function r:pause_writing() error(asyncio.ValueError("no pause")) end
      return r
    end, "127.0.0.1", port_of(srv)))
    t:set_write_buffer_limits(0)
    t:write(string.rep("w", 1 << 22))
    assert.equal(1, #ctxs)
    assert.equal("protocol.pause_writing() failed", ctxs[1].message)
    assert.is_false(t:is_closing())
    t:abort()
    await(p.lost)
    srv:close()
    srv:abort_clients()
    await(srv:wait_closed())
  end))

  it("set_protocol hands the connection to another protocol",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local log = {}
    local srv = await(loop:create_server(function()
      return recorder(log, "srv", {made = function(_, t)
        t:write("one")
      end, eof = function(self) self.transport:close() end})
    end, "127.0.0.1", 0))
    local first = loop:create_future()
    local t, p = await(loop:create_connection(function()
      local r = recorder(log, "a")
      function r:data_received(d)
        log[#log + 1] = "a data_received " .. d
        first:set_result(true)
      end
      return r
    end, "127.0.0.1", port_of(srv)))
    await(first)
    local q = recorder(log, "b")
    t:set_protocol(q)
    assert.equal(q, t:get_protocol())
    t:write_eof()
    await(q.lost)
    assert.same({"a connection_made", "a data_received one"},
                side(log, "a "))
    assert.same({"b eof_received", "b connection_lost nil"}, side(log, "b "))
    assert.is_false(p.lost:done())
    srv:close()
    await(srv:wait_closed())
  end))
end)
