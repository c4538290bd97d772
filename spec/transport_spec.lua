-- The stream transports (loop:create_connection, create_server and their
-- Unix twins): the transport's methods, servers' close_clients and
-- abort_clients, and the TLS hook (tested with a pass-through
-- asyncio.sslproto defined here, so that no TLS is needed).
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"
local h = dofile("spec/helpers.lua")

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror

--- A protocol keeping what it got: data (concatenated), eof, lost (a
-- future completed by connection_lost).
local function sink()
  local p = {data = "", eofs = 0,
             lost = asyncio.get_running_loop():create_future()}
  function p:connection_made(t) self.transport = t end
  function p:data_received(d)
    self.data = self.data .. d
    if self.on_data then self.on_data(self) end
  end
  function p:eof_received() self.eofs = self.eofs + 1 end
  function p:connection_lost(exc) self.lost:set_result(exc) end
  return p
end

local function port_of(srv) return srv.sockets[1].port end

local sockpath = h.sockpath

--- An echo server of protocol sinks that echo and close at the end.
local function echo_server(loop)
  return await(loop:create_server(function()
    local p = sink()
    function p:data_received(d) self.transport:write(d) end
    function p:eof_received() end -- closes
    return p
  end, "127.0.0.1", 0))
end

describe("transports", function()
  it("write, writelines, get_extra_info and the transport's state",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = echo_server(loop)
    local t, p = await(loop:create_connection(sink, "127.0.0.1",
                                              port_of(srv)))
    assert.same({"127.0.0.1", port_of(srv)}, t:get_extra_info("peername"))
    local sock = t:get_extra_info("sockname")
    assert.equal("127.0.0.1", sock[1])
    assert.equal("number", math.type(sock[2]) and "number")
    assert.equal(2, t:get_extra_info("socket").family) -- AF_INET
    assert.is_true(t:get_extra_info("socket").fd >= 0)
    assert.equal("dflt", t:get_extra_info("peercert", "dflt"))
    assert.is_nil(t:get_extra_info("nothing"))
    assert.equal(loop, t:get_loop())
    assert.equal(p, t:get_protocol())
    assert.is_true(t:is_reading())
    assert.is_false(t:is_closing())
    t:write("a")
    t:writelines({"b", "c"})
    t:write("")
    -- a number is written as Lua writes it (io.write's rule); anything
    -- else is refused and writes nothing
    t:write(42)
    t:writelines({1.5, "d"})
    assert.matches("bad argument #1 to 'write' %(string expected, got "
                   .. "boolean%)", h.error_of(function() t:write(true) end))
    assert.matches("bad item #2 to 'writelines' %(string expected, got "
                   .. "table%)", h.error_of(function() t:writelines{"x", {}} end))
    t:write_eof()
    assert.is_true(iserror(h.error_of(t.write, t, "late"),
                           asyncio.RuntimeError))
    assert.is_nil(await(p.lost))
    assert.equal("abc421.5d", p.data)
    assert.equal(1, p.eofs)
    assert.is_true(t:is_closing())
    assert.is_false(t:is_reading())
    assert.matches("^<Transport tcp fd=%-?%d+ closed", tostring(t))
    srv:close()
    await(srv:wait_closed())
  end))

  it("pause_reading and resume_reading", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = echo_server(loop)
    local t, p = await(loop:create_connection(sink, "127.0.0.1",
                                              port_of(srv)))
    t:pause_reading()
    assert.is_false(t:is_reading())
    t:write("ping")
    t:write_eof()
    await(asyncio.sleep(0)) -- nothing arrives while paused, however long
    local got = loop:create_future()
    p.on_data = function() if not got:done() then got:set_result() end end
    t:resume_reading()
    assert.is_true(t:is_reading())
    await(got)
    await(p.lost)
    assert.equal("ping", p.data)
    srv:close()
    await(srv:wait_closed())
  end))

  it("set_write_buffer_limits checks and defaults as asyncio's",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = echo_server(loop)
    local t = await(loop:create_connection(sink, "127.0.0.1", port_of(srv)))
    assert.same({16384, 65536}, {t:get_write_buffer_limits()})
    local err = h.raises(asyncio.ValueError, t.set_write_buffer_limits, t,
                         1, 2)
    assert.equal("ValueError: high (1) must be >= low (2) must be >= 0",
                 tostring(err))
    -- low defaults to high // 4, floored as Python's
    assert.equal("ValueError: high (-1) must be >= low (-1) must be >= 0",
                 tostring(h.error_of(t.set_write_buffer_limits, t, -1)))
    t:set_write_buffer_limits(nil, 100)
    assert.same({100, 400}, {t:get_write_buffer_limits()})
    t:set_write_buffer_limits(100)
    assert.same({25, 100}, {t:get_write_buffer_limits()})
    t:close()
    srv:close()
    await(srv:wait_closed())
  end))

  it("close flushes what is queued, then calls connection_lost",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local done = loop:create_future()
    local srv = await(loop:create_server(function()
      local p = sink()
      function p:connection_lost() done:set_result(self.data) end
      return p
    end, "127.0.0.1", 0))
    local t, p = await(loop:create_connection(sink, "127.0.0.1",
                                              port_of(srv)))
    local big = string.rep("0123456789abcdef", 1 << 16)
    t:write(big)
    t:close()
    t:write("dropped") -- a closing transport drops writes, as asyncio's
    assert.is_true(t:is_closing())
    assert.is_nil(await(p.lost))
    assert.equal(#big, #await(done))
    srv:close()
    await(srv:wait_closed())
  end))

  it("create_connection raises what connect raises; a failing factory "
     .. "leaves nothing open", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = echo_server(loop)
    local port = port_of(srv)
    srv:close()
    await(srv:wait_closed())
    local err = h.await_error(loop:create_connection(sink, "127.0.0.1",
                                                     port))
    assert.is_true(iserror(err, asyncio.ConnectionRefusedError))
    srv = echo_server(loop)
    err = h.await_error(loop:create_connection(function()
      error(asyncio.ValueError("no protocol"))
    end, "127.0.0.1", port_of(srv)))
    assert.is_true(iserror(err, asyncio.ValueError))
    err = h.await_error(loop:create_connection(42, "127.0.0.1", 1))
    assert.matches("bad argument #1 to 'create_connection' %(protocol "
                   .. "factory expected, got number%)", err)
    -- a factory that makes no protocol: the connection is closed, and the
    -- call raises (Python's AttributeError on None)
    local accepted = 0
    local srv2 = await(loop:create_server(function()
      accepted = accepted + 1
      return {}
    end, "127.0.0.1", 0))
    for _, made in ipairs{false, 7} do
      err = h.await_error(loop:create_connection(function() return made end,
                                                 "127.0.0.1", port_of(srv2)))
      assert.equal("bad argument #1 to 'create_connection' (the protocol "
                   .. "factory returned " .. type(made) .. ", not a "
                   .. "protocol)", err)
    end
    err = h.await_error(loop:create_datagram_endpoint(function() end,
      {local_addr = {"127.0.0.1", 0}}))
    assert.equal("bad argument #1 to 'create_datagram_endpoint' (the "
                 .. "protocol factory returned nil, not a protocol)", err)
    srv2:close()
    await(srv2:wait_closed())
    srv:close()
    await(srv:wait_closed())
  end))

  it("create_connection and create_server check host and port at the "
     .. "call", aspec.async(function()
    local loop = asyncio.get_running_loop()
    -- a number is no host name (it used to resolve as an address)
    local err = h.await_error(loop:create_connection(sink, 5, 1))
    assert.matches("bad argument #2 to 'create_connection' %(string "
                   .. "expected, got number%)", err)
    err = h.await_error(loop:create_connection(sink, "127.0.0.1", "x"))
    assert.matches("bad argument #3 to 'create_connection' %(number "
                   .. "expected, got string%)", err)
    err = h.await_error(loop:create_connection(sink, "127.0.0.1"))
    assert.matches("bad argument #3 to 'create_connection' %(number "
                   .. "expected, got no value%)", err)
    err = h.await_error(loop:create_server(sink, 5, 0))
    assert.matches("bad argument #2 to 'create_server' %(string "
                   .. "expected, got number%)", err)
    err = h.await_error(loop:create_server(sink, {"127.0.0.1", 5}, 0))
    assert.matches("bad argument #2 to 'create_server' %(list of strings "
                   .. "expected, item 2 is number%)", err)
    err = h.await_error(loop:create_server(sink, "127.0.0.1", 1.5))
    assert.matches("bad argument #3 to 'create_server' %(number has no "
                   .. "integer representation%)", err)
    err = h.await_error(asyncio.start_server(function() end, {"::1", true},
                                             0))
    assert.matches("bad argument #2 to 'start_server' %(list of strings "
                   .. "expected, item 2 is boolean%)", err)
    -- nil host and port: every interface, a port the system picks
    local srv = await(loop:create_server(sink, nil, nil))
    assert.is_true(srv.sockets[1].port > 0)
    srv:close()
    await(srv:wait_closed())
  end))

  it("local_addr takes a host name, bound to an address of the remote's "
     .. "family, as asyncio's", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = echo_server(loop)
    local t = await(loop:create_connection(sink, "127.0.0.1", port_of(srv),
      {local_addr = {"localhost", 0}}))
    assert.equal("127.0.0.1", t:get_extra_info("sockname")[1])
    t:close()
    -- no local address of that family: asyncio's OSError, no bind tried
    local err = h.await_error(loop:create_connection(sink, "127.0.0.1",
      port_of(srv), {local_addr = {"::1", 0}}))
    assert.is_true(iserror(err, asyncio.OSError))
    assert.equal("no matching local address with family=AF_INET found",
                 err.message)
    -- malformed addresses and backlogs are named, not taken for others
    for _, case in ipairs{
      {"x", "{host, port} expected, got string"},
      {{5, 0}, "host must be a string, got number"},
      {{"127.0.0.1", "x"}, "number expected, got string"},
      {{"127.0.0.1", 65536}, "port must be 0-65535"},
      {{"127.0.0.1", -1}, "port must be 0-65535"}} do
      err = h.await_error(loop:create_connection(sink, "127.0.0.1",
        port_of(srv), {local_addr = case[1]}))
      assert.matches("bad option 'local_addr' %(" .. case[2]:gsub("%p", "%%%0")
                     .. "%)", tostring(err))
    end
    err = h.await_error(loop:create_datagram_endpoint(sink,
      {local_addr = {"127.0.0.1", "x"}}))
    assert.matches("bad option 'local_addr' %(number expected, got string",
                   tostring(err))
    err = h.await_error(loop:create_datagram_endpoint(sink,
      {remote_addr = {"127.0.0.1", 70000}}))
    assert.matches("bad option 'remote_addr' %(port must be 0%-65535%)",
                   tostring(err))
    err = h.await_error(loop:create_server(sink, "127.0.0.1", 0,
                                           {backlog = "x"}))
    assert.matches("bad option 'backlog' %(integer expected, got string%)",
                   tostring(err))
    srv:close()
    await(srv:wait_closed())
  end))

  it("server_hostname and ssl timeouts without ssl raise ValueError",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    for _, name in ipairs{"server_hostname", "ssl_handshake_timeout",
                          "ssl_shutdown_timeout"} do
      local err = h.await_error(loop:create_connection(sink, "127.0.0.1",
        1, {[name] = name == "server_hostname" and "x" or 1}))
      assert.is_true(iserror(err, asyncio.ValueError))
      assert.equal("ValueError: " .. name .. " is only meaningful with ssl",
                   tostring(err))
    end
    local err = h.await_error(asyncio.open_connection("127.0.0.1", 1,
      {server_hostname = "x"}))
    assert.is_true(iserror(err, asyncio.ValueError))
  end))

  it("Unix sockets: create_unix_server and create_unix_connection",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local path = sockpath()
    local srv = await(loop:create_unix_server(function()
      local p = sink()
      function p:data_received(d) self.transport:write(d:upper()) end
      return p
    end, path))
    local t, p = await(loop:create_unix_connection(sink, path))
    assert.equal(path, t:get_extra_info("peername"))
    assert.equal(1, t:get_extra_info("socket").family) -- AF_UNIX
    local got = loop:create_future()
    p.on_data = function(self)
      if #self.data == 3 then got:set_result(self.data) end
    end
    t:write("abc")
    assert.equal("ABC", await(got))
    t:close()
    await(p.lost)
    srv:close()
    await(srv:wait_closed())
    assert.is_nil(io.open(path))
  end))

  it("a Unix path longer than a socket address raises OSError naming it",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local long = "/tmp/" .. string.rep("x", 120) .. ".sock"
    local err = h.await_error(loop:create_unix_server(sink, long))
    assert.is_true(iserror(err, asyncio.OSError))
    assert.equal("OSError: AF_UNIX path too long", tostring(err))
    assert.equal(long, err.filename)
    assert.is_nil(io.open(long)) -- no stray socket file
    err = h.await_error(asyncio.open_unix_connection(long))
    assert.is_true(iserror(err, asyncio.OSError))
    assert.equal(long, err.filename)
    err = h.await_error(asyncio.start_unix_server(function() end, long))
    assert.equal(long, err.filename)
  end))
end)

local transports = require "asyncio.transports"

--- Makes host names resolve to `addrs` until the value returned is
-- closed.
local function resolving_to(addrs)
  local resolve = transports._resolve
  transports._resolve = function() return addrs end
  return setmetatable({}, {__close = function()
    transports._resolve = resolve
  end})
end

describe("create_connection that fails", function()
  --- A port nobody listens on: a closed server's.
  local function closed_port(loop)
    local srv = await(loop:create_server(sink, "127.0.0.1", 0))
    local port = port_of(srv)
    srv:close()
    await(srv:wait_closed())
    return port
  end

  it("names the address, as asyncio's 'Connect call failed (host, port)'",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local port = closed_port(loop)
    local err = h.await_error(loop:create_connection(sink, "127.0.0.1",
                                                     port))
    assert.is_true(iserror(err, asyncio.ConnectionRefusedError))
    assert.equal(111, err.errno)
    assert.equal(("Connect call failed ('127.0.0.1', %d)"):format(port),
                 err.strerror)
    assert.equal(("ECONNREFUSED: Connect call failed ('127.0.0.1', %d)")
                 :format(port), err.message)
    err = h.await_error(asyncio.open_connection("127.0.0.1", port))
    assert.is_true(iserror(err, asyncio.ConnectionRefusedError))
    assert.equal(("ECONNREFUSED: Connect call failed ('127.0.0.1', %d)")
                 :format(port), err.message)
  end))

  it("every address refused: an OSError 'Multiple exceptions: ...' naming "
     .. "each, in turn and with happy_eyeballs_delay", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local port = closed_port(loop)
    local _ <close> = resolving_to({"127.0.0.3", "127.0.0.4"})
    local want = ("Multiple exceptions: ECONNREFUSED: Connect call failed "
      .. "('127.0.0.3', %d), ECONNREFUSED: Connect call failed "
      .. "('127.0.0.4', %d)"):format(port, port)
    for _, opts in ipairs{{}, {happy_eyeballs_delay = 60}} do
      local err = h.await_error(asyncio.wait_for(loop:create_connection(
        sink, "some.host", port, opts), 10))
      assert.is_true(iserror(err, asyncio.OSError))
      assert.is_false(iserror(err, asyncio.ConnectionRefusedError))
      assert.equal(want, err.message)
    end
  end))

  it("all_errors = true raises an ExceptionGroup of every attempt's error",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local port = closed_port(loop)
    local _ <close> = resolving_to({"127.0.0.3", "127.0.0.4"})
    for _, opts in ipairs{{all_errors = true},
                          {all_errors = true, happy_eyeballs_delay = 60}} do
      local err = h.await_error(asyncio.wait_for(loop:create_connection(
        sink, "some.host", port, opts), 10))
      assert.is_true(iserror(err, asyncio.ExceptionGroup))
      assert.equal("create_connection failed (2 sub-exceptions)",
                   tostring(err.message))
      assert.equal(2, #err.exceptions)
      for i, host in ipairs{"127.0.0.3", "127.0.0.4"} do
        local e = err.exceptions[i]
        assert.is_true(iserror(e, asyncio.ConnectionRefusedError))
        assert.equal(("Connect call failed ('%s', %d)"):format(host, port),
                     e.strerror)
      end
    end
    -- streams pass it on
    local err = h.await_error(asyncio.open_connection("some.host", port,
                                                      {all_errors = true}))
    assert.is_true(iserror(err, asyncio.ExceptionGroup))
  end))
end)

describe("create_connection with happy_eyeballs_delay", function()

  it("orders the addresses by family in turn, as asyncio's interleave",
     function()
    local addrs = {"::1", "::2", "10.0.0.1", "10.0.0.2", "::3"}
    assert.same({"::1", "10.0.0.1", "::2", "10.0.0.2", "::3"},
                transports._interleave(addrs, 1))
    assert.same({"::1", "::2", "10.0.0.1", "::3", "10.0.0.2"},
                transports._interleave(addrs, 2))
    assert.same({"10.0.0.1", "10.0.0.2"},
                transports._interleave({"10.0.0.1", "10.0.0.2"}, 1))
  end)

  it("a refused address starts the next one at once", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = echo_server(loop)
    -- 127.0.0.3 is loopback too, but nobody listens there: refused. With
    -- a 60 s delay only the failure can start the second attempt.
    local _ <close> = resolving_to({"127.0.0.3", "127.0.0.1"})
    local t, p = await(asyncio.wait_for(loop:create_connection(sink,
      "some.host", port_of(srv), {happy_eyeballs_delay = 60}), 10))
    assert.equal("127.0.0.1", t:get_extra_info("peername")[1])
    t:write("ping")
    t:write_eof()
    assert.is_nil(await(p.lost))
    assert.equal("ping", p.data)
    -- streams pass the option on
    local r, w = await(asyncio.wait_for(asyncio.open_connection("some.host",
      port_of(srv), {happy_eyeballs_delay = 60}), 10))
    w:write("pong")
    w:write_eof()
    assert.equal("pong", await(r:read()))
    w:close()
    srv:close()
    await(srv:wait_closed())
  end))

  it("a connect that gets no answer: the next address starts after the "
     .. "delay and wins; the first is given up", aspec.async(function()
    local loop = asyncio.get_running_loop()
    -- 127.0.0.1:port drops SYNs (full accept queue); 127.0.0.2:port echoes
    local peer = await(asyncio.create_subprocess_exec("/usr/bin/python3",
      "spec/fixtures/full_backlog.py", "127.0.0.1",
      {stdin = asyncio.PIPE, stdout = asyncio.PIPE}))
    local line = await(asyncio.wait_for(peer.stdout:readline(), 10))
    local port = tonumber((assert(line:match("^PORT (%d+)"), line)))
    local srv = await(loop:create_server(function()
      local p = sink()
      function p:data_received(d) self.transport:write(d) end
      return p
    end, "127.0.0.2", port))
    local before = loop:_counts().handles
    do
      local _ <close> = resolving_to({"127.0.0.1", "127.0.0.2"})
      -- in turn, the first connect would wait for minutes: the guard
      -- fails the test
      local t, p = await(asyncio.wait_for(loop:create_connection(sink,
        "some.host", port, {happy_eyeballs_delay = 0.1}), 10))
      assert.same({"127.0.0.2", port}, t:get_extra_info("peername"))
      t:write("echo")
      t:close()
      await(p.lost)
    end
    -- the unanswered connect's socket is closed too
    assert.equal(before, loop:_counts().handles)
    peer.stdin:close()
    assert.equal(0, await(peer:wait()))
    srv:close()
    await(srv:wait_closed())
  end))

  it("two addresses that both accept: one connection is returned and no "
     .. "other stays open", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got, marker, reads = {}, asyncio.Event(), {}
    local srv = await(asyncio.start_server(async(function(r, w)
      local data = await(r:read())
      got[#got + 1] = data
      if data == "marker" then marker:set() end
      w:close()
    end), "127.0.0.1", 0))
    local before = loop:_counts().handles
    do
      local _ <close> = resolving_to({"127.0.0.1", "127.0.0.1"})
      local t, p = await(loop:create_connection(sink, "some.host",
        port_of(srv), {happy_eyeballs_delay = 0}))
      t:write("winner")
      t:close()
      await(p.lost)
    end
    -- accepts are in order: once the server read the marker's connection,
    -- it has read every connection the race left
    local _, w = await(asyncio.open_connection("127.0.0.1", port_of(srv)))
    w:write("marker")
    w:write_eof()
    await(asyncio.wait_for(marker:wait(), 10))
    w:close()
    await(w:wait_closed())
    for _, data in ipairs(got) do reads[data] = (reads[data] or 0) + 1 end
    assert.equal(1, reads.winner)
    assert.equal(1, reads.marker)
    assert.equal(#got - 2, reads[""] or 0) -- a loser that connected: EOF
    assert.equal(before, loop:_counts().handles)
    srv:close()
    await(srv:wait_closed())
  end))

  it("every address refused: what connect raised, naming each address "
     .. "(as asyncio: they differ, so an OSError names them all)",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = echo_server(loop)
    local _ <close> = resolving_to({"127.0.0.2", "127.0.0.3"})
    local err = h.await_error(loop:create_connection(sink, "some.host",
      port_of(srv), {happy_eyeballs_delay = 0.05}))
    assert.is_true(iserror(err, asyncio.OSError))
    assert.matches("^Multiple exceptions: ECONNREFUSED: Connect call "
      .. "failed %('127%.0%.0%.2', %d+%), ECONNREFUSED", err.message)
    srv:close()
    await(srv:wait_closed())
  end))

  it("checks its options", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local bad = h.await_error(loop:create_connection(sink, "127.0.0.1", 1,
      {ssl = "yes"}))
    assert.equal("TypeError: ssl argument must be an SSLContext, true or "
                 .. "nil, not string", tostring(bad))
    local err = h.await_error(loop:create_connection(sink, "127.0.0.1", 1,
      {happy_eyeballs_delay = "soon"}))
    assert.is_true(iserror(err, asyncio.TypeError))
    assert.equal("TypeError: happy_eyeballs_delay must be a number, not "
                 .. "string", tostring(err))
    err = h.await_error(loop:create_connection(sink, "127.0.0.1", 1,
      {interleave = 1.5}))
    assert.equal("TypeError: interleave must be an integer, not number",
                 tostring(err))
  end))
end)

describe("the family option", function()
  it("limits a server and a connection to one address family, as "
     .. "asyncio's family=", aspec.async(function()
    local srv = await(asyncio.start_server(function(_, w) w:close() end,
                                           nil, 0, {family = asyncio.AF_INET}))
    assert.equal(1, #srv.sockets)
    assert.equal("0.0.0.0", srv.sockets[1].host)
    local port = srv.sockets[1].port
    local _, w = await(asyncio.open_connection("127.0.0.1", port,
                                               {family = asyncio.AF_INET}))
    assert.equal("127.0.0.1", w:get_extra_info("peername")[1])
    w:close()
    -- a numeric address of the other family does not resolve
    local err = h.await_error(asyncio.open_connection("127.0.0.1", port,
      {family = asyncio.AF_INET6}))
    assert.is_true(iserror(err, asyncio.gaierror))
    err = h.await_error(asyncio.open_connection("127.0.0.1", port,
                                                {family = 99}))
    assert.is_true(iserror(err, asyncio.ValueError))
    srv:close()
    await(srv:wait_closed())
  end))
end)

describe("Server with transports", function()
  --- A server whose connections stay open and idle; returns it and the
  -- list of its protocols.
  local function idle_server(loop)
    local protos = {}
    local srv = await(loop:create_server(function()
      local p = sink()
      protos[#protos + 1] = p
      return p
    end, "127.0.0.1", 0))
    return srv, protos
  end

  it("close_clients closes the idle connections, so wait_closed ends",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv, protos = idle_server(loop)
    local clients = {}
    for i = 1, 3 do
      local _, p = await(loop:create_connection(sink, "127.0.0.1",
                                                port_of(srv)))
      clients[i] = p
    end
    while #protos < 3 do await(asyncio.sleep(0)) end
    srv:close()
    local waiting = asyncio.create_task(srv:wait_closed())
    await(asyncio.sleep(0))
    assert.is_false(waiting:done()) -- idle clients hold it
    srv:close_clients()
    await(waiting)
    for i = 1, 3 do
      assert.is_nil(await(protos[i].lost))
      assert.is_nil(await(clients[i].lost)) -- they saw the end
    end
  end))

  it("abort_clients ends serve_forever's shutdown (a SIGTERM handler's "
     .. "job)", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv, protos = idle_server(loop)
    local _, cp = await(loop:create_connection(sink, "127.0.0.1",
                                               port_of(srv)))
    while #protos < 1 do await(asyncio.sleep(0)) end
    local serving = asyncio.create_task(srv:serve_forever())
    await(asyncio.sleep(0))
    serving:cancel()
    await(asyncio.sleep(0))
    assert.is_false(serving:done()) -- waits for the idle client
    srv:abort_clients()
    assert.is_true(iserror(h.await_error(serving), asyncio.CancelledError))
    assert.is_nil(await(protos[1].lost))
    await(cp.lost)
    assert.is_false(srv:is_serving())
  end))

  it("a failing protocol factory is reported; the server goes on",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local ctxs = {}
    loop:set_exception_handler(function(_, ctx) ctxs[#ctxs + 1] = ctx end)
    local n = 0
    local srv = await(loop:create_server(function()
      n = n + 1
      if n == 1 then error(asyncio.ValueError("factory broke")) end
      local p = sink()
      function p:data_received(d) self.transport:write(d) end
      return p
    end, "127.0.0.1", 0))
    local _, p1 = await(loop:create_connection(sink, "127.0.0.1",
                                               port_of(srv)))
    assert.is_nil(await(p1.lost))
    assert.equal(1, #ctxs)
    assert.equal("Error on transport creation for incoming connection",
                 ctxs[1].message)
    assert.is_true(iserror(ctxs[1].exception, asyncio.ValueError))
    local t2, p2 = await(loop:create_connection(sink, "127.0.0.1",
                                                port_of(srv)))
    local got = loop:create_future()
    p2.on_data = function() got:set_result(p2.data) end
    t2:write("ok")
    assert.equal("ok", await(got))
    t2:close()
    srv:close()
    srv:close_clients()
    await(srv:wait_closed())
  end))
end)

describe("the TLS hook", function()
  -- A pass-through asyncio.sslproto: SSLProtocol wraps the application's
  -- protocol, resolves the waiter once connected, and gives the
  -- application a Lua transport forwarding to the raw one.
  local made, saved
  local function fake_sslproto()
    local M = {}
    function M.SSLProtocol(loop, app, ctx, waiter, server_side, hostname,
                           opts)
      made[#made + 1] = {loop = loop, ctx = ctx, server_side = server_side,
                         hostname = hostname, opts = opts}
      local p = {}
      local app_t = {}
      function app_t:write(d) p.raw:write("<" .. d .. ">") end
      function app_t:writelines(l) self:write(table.concat(l)) end
      function app_t:write_eof() p.raw:write_eof() end
      function app_t:can_write_eof() return false end
      function app_t:close() p.raw:close() end
      function app_t:abort() p.raw:abort() end
      function app_t:is_closing() return p.raw:is_closing() end
      function app_t:pause_reading() p.raw:pause_reading() end
      function app_t:resume_reading() p.raw:resume_reading() end
      function app_t:get_write_buffer_size()
        return p.raw:get_write_buffer_size()
      end
      function app_t:get_extra_info(name, default)
        if name == "sslcontext" then return ctx end
        return p.raw:get_extra_info(name, default)
      end
      p._app_transport = app_t
      function p:connection_made(raw)
        self.raw = raw
        app:connection_made(app_t)
        waiter:set_result()
      end
      function p:data_received(d) app:data_received(d) end
      function p:eof_received() return app:eof_received() end
      function p:connection_lost(exc) app:connection_lost(exc) end
      function p:pause_writing() app:pause_writing() end
      function p:resume_writing() app:resume_writing() end
      return p
    end
    return M
  end

  before_each(function()
    made = {}
    saved = package.loaded["asyncio.sslproto"]
    package.loaded["asyncio.sslproto"] = fake_sslproto()
  end)
  after_each(function()
    package.loaded["asyncio.sslproto"] = saved
  end)

  it("create_connection with ssl: SSLProtocol gets the arguments asyncio "
     .. "gives, the caller the app transport", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = echo_server(loop)
    local ctx = {name = "a context"}
    local t, p = await(loop:create_connection(sink, "localhost",
      port_of(srv), {ssl = ctx, ssl_handshake_timeout = 5}))
    assert.equal(1, #made)
    assert.equal(loop, made[1].loop)
    assert.equal(ctx, made[1].ctx)
    assert.is_false(made[1].server_side)
    assert.equal("localhost", made[1].hostname) -- defaults to host
    assert.same({ssl_handshake_timeout = 5}, made[1].opts)
    assert.equal(p.transport, t)
    assert.equal(ctx, t:get_extra_info("sslcontext"))
    t:write("x")
    t:write_eof()
    assert.is_nil(await(p.lost))
    assert.equal("<x>", p.data)
    srv:close()
    await(srv:wait_closed())
  end))

  it("streams over the hook: open_connection and start_server with ssl",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local ctx = {name = "server context"}
    local srv = await(asyncio.start_server(async(function(r, w)
      local line = await(r:readline())
      w:write(line:upper())
      await(w:drain())
      w:close()
    end), "127.0.0.1", 0, {ssl = ctx}))
    local cctx = {name = "client context"}
    local r, w = await(asyncio.open_connection("127.0.0.1", port_of(srv),
      {ssl = cctx, server_hostname = "example.test"}))
    assert.equal(cctx, w:get_extra_info("sslcontext"))
    w:write("hello\n")
    await(w:drain())
    -- the server's reply went through both fake protocols
    assert.equal("<<HELLO\n>", await(r:read()))
    w:close()
    await(w:wait_closed())
    srv:close()
    await(srv:wait_closed())
    assert.equal(2, #made)
    local server_side, client_side = made[1], made[2]
    if not server_side.server_side then
      server_side, client_side = client_side, server_side
    end
    assert.is_true(server_side.server_side)
    assert.equal(ctx, server_side.ctx)
    assert.equal("example.test", client_side.hostname)
  end))

  it("with ssl, every TLS option is taken by the create_* methods and "
     .. "the streams' functions, and reaches SSLProtocol",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local timeouts = {ssl_handshake_timeout = 5, ssl_shutdown_timeout = 6}
    local sctx, cctx = {name = "server"}, {name = "client"}
    local function tls(ctx, more)
      local o = {ssl = ctx}
      for k, v in pairs(timeouts) do o[k] = v end
      for k, v in pairs(more or {}) do o[k] = v end
      return o
    end
    local function echo()
      local p = sink()
      function p:data_received(d) self.transport:write(d) end
      function p:eof_received() end
      return p
    end
    local path, path4 = sockpath(), sockpath()
    local servers = {
      await(loop:create_server(echo, "127.0.0.1", 0, tls(sctx))),
      await(loop:create_unix_server(echo, path, tls(sctx))),
      await(asyncio.start_server(function(_, w) w:close() end,
                                 "127.0.0.1", 0, tls(sctx, {limit = 10}))),
      await(asyncio.start_unix_server(function(_, w) w:close() end,
                                      path4, tls(sctx, {limit = 10}))),
    }
    local host = {server_hostname = "h.test"}
    local t1, p1 = await(loop:create_connection(sink, "127.0.0.1",
      port_of(servers[1]), tls(cctx, host)))
    local t2, p2 = await(loop:create_unix_connection(sink, path,
                                                     tls(cctx, host)))
    local _, w3 = await(asyncio.open_connection("127.0.0.1",
      port_of(servers[3]), tls(cctx, {server_hostname = "h.test",
                                      limit = 10})))
    local _, w4 = await(asyncio.open_unix_connection(path4,
      tls(cctx, {server_hostname = "h.test", limit = 10})))
    for _, t in ipairs{t1, t2, w3, w4} do t:close() end
    await(p1.lost)
    await(p2.lost)
    await(w3:wait_closed())
    await(w4:wait_closed())
    for _, srv in ipairs(servers) do
      srv:close()
      await(srv:wait_closed())
    end
    -- the server sides of the connections accepted before the close
    local clients = 0
    for _, m in ipairs(made) do
      assert.same(timeouts, m.opts)
      if m.server_side then
        assert.equal(sctx, m.ctx)
      else
        clients = clients + 1
        assert.equal("h.test", m.hostname)
        assert.equal(cctx, m.ctx)
      end
    end
    assert.equal(4, clients)
  end))

  it("ssl = true asks asyncio.ssl for the default client context; servers "
     .. "need a context", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local saved_ssl = package.loaded["asyncio.ssl"]
    local default = {name = "default"}
    package.loaded["asyncio.ssl"] = {
      create_default_context = function() return default end}
    local ok, err = pcall(function()
      local srv = echo_server(loop)
      local t = await(loop:create_connection(sink, "127.0.0.1",
                                             port_of(srv), {ssl = true}))
      assert.equal(default, made[1].ctx)
      t:close()
      local e = h.await_error(loop:create_server(sink, "127.0.0.1", 0,
                                                 {ssl = true}))
      assert.is_true(iserror(e, asyncio.TypeError))
      srv:close()
      await(srv:wait_closed())
    end)
    package.loaded["asyncio.ssl"] = saved_ssl
    assert(ok, err)
  end))

  it("writer:start_tls swaps the writer's and protocol's transport",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = await(asyncio.start_server(async(function(r, w)
      while true do
        local line = await(r:readline())
        if line == "" then break end
        w:write(line)
      end
      w:close()
    end), "127.0.0.1", 0))
    local r, w = await(asyncio.open_connection("127.0.0.1", port_of(srv)))
    local raw = w.transport
    local calls = {}
    local sslproto = package.loaded["asyncio.sslproto"]
    -- loop:start_tls is the TLS battery's; a stand-in here
    local Loop = asyncio._core._EventLoop
    local saved_start_tls = Loop.start_tls
    Loop.start_tls = async(function(self, transport, protocol, ctx, opts)
      calls[#calls + 1] = {transport = transport, protocol = protocol,
                           ctx = ctx, opts = opts}
      local waiter = self:create_future()
      local p = sslproto.SSLProtocol(self, protocol, ctx, waiter,
                                     opts.server_side, opts.server_hostname)
      transport:set_protocol(p)
      p:connection_made(transport)
      await(waiter)
      return p._app_transport
    end)
    local ok, err = pcall(function()
      w:write("plain\n")
      assert.equal("plain\n", await(r:readline()))
      local ctx = {name = "upgrade"}
      await(w:start_tls(ctx, {server_hostname = "h.test"}))
      assert.equal(1, #calls)
      assert.equal(raw, calls[1].transport)
      assert.equal(ctx, calls[1].ctx)
      assert.same({server_side = false, server_hostname = "h.test"},
                  calls[1].opts)
      assert.are_not.equal(raw, w.transport)
      assert.equal(ctx, w:get_extra_info("sslcontext"))
      w:write("secret\n")
      await(w:drain())
      assert.equal("<secret\n", await(r:readline()))
    end)
    Loop.start_tls = saved_start_tls
    assert(ok, err)
    w:close()
    srv:close()
    await(srv:wait_closed())
  end))
end)

describe("options", function()
  local unknown = h.unknown_option

  it("an unknown option raises a bad-argument error naming the method "
     .. "and the argument (self not counted), before anything is opened",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local made = 0
    local function factory()
      made = made + 1
      return sink()
    end
    local srv = echo_server(loop)
    local port = port_of(srv)
    -- limit is open_connection's (the reader's), not the transport's
    unknown(4, "create_connection", "limit",
            loop:create_connection(factory, "127.0.0.1", port, {limit = 1}))
    unknown(4, "create_connection", "sock",
            loop:create_connection(factory, "127.0.0.1", port, {sock = 3}))
    unknown(4, "create_server", "limit",
            loop:create_server(factory, "127.0.0.1", 0, {limit = 1}))
    unknown(4, "create_server", "server_hostname",
            loop:create_server(factory, "127.0.0.1", 0,
                               {server_hostname = "x"}))
    local path = sockpath()
    unknown(3, "create_unix_server", "reuse_port",
            loop:create_unix_server(factory, path, {reuse_port = true}))
    assert.is_nil(io.open(path), "the socket file was made")
    unknown(3, "create_unix_connection", "family",
            loop:create_unix_connection(factory, path,
                                        {family = asyncio.AF_UNIX}))
    assert.equal(0, made)
    -- not a table
    assert.equal("bad argument #4 to 'create_connection' (table expected, "
                 .. "got string)", h.await_error(loop:create_connection(
                   factory, "127.0.0.1", port, "ssl")))
    srv:close()
    await(srv:wait_closed())
  end))

  it("the documented options are taken", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local srv = await(loop:create_server(function()
      local p = sink()
      function p:data_received(d) self.transport:write(d) end
      function p:eof_received() end
      return p
    end, "127.0.0.1", 0, {family = asyncio.AF_INET, backlog = 10,
                          reuse_port = true, reuse_address = true,
                          start_serving = false, ssl = false}))
    assert.is_false(srv:is_serving())
    await(srv:start_serving())
    local t, p = await(loop:create_connection(sink, "127.0.0.1",
      port_of(srv), {local_addr = {"127.0.0.1", 0}, family = asyncio.AF_INET,
                     happy_eyeballs_delay = 0.25, interleave = 1,
                     ssl = false}))
    t:write("x")
    t:write_eof()
    await(p.lost)
    assert.equal("x", p.data)
    srv:close()
    await(srv:wait_closed())
    local path = sockpath()
    srv = await(loop:create_unix_server(sink, path,
      {backlog = 10, start_serving = true, ssl = false}))
    t, p = await(loop:create_unix_connection(sink, path, {ssl = false}))
    t:close()
    await(p.lost)
    srv:close()
    await(srv:wait_closed())
    -- the TLS ones too (see "the TLS hook"): without ssl they are refused
    -- as asyncio's are, not as unknown
    local function ssl_only(name, aw)
      assert.equal(name .. " is only meaningful with ssl",
                   h.await_error(aw).message)
    end
    for _, name in ipairs{"server_hostname", "ssl_handshake_timeout",
                          "ssl_shutdown_timeout"} do
      local o = {[name] = name == "server_hostname" and "x" or 1}
      ssl_only(name, loop:create_connection(sink, "127.0.0.1", 1, o))
      ssl_only(name, loop:create_unix_connection(sink, path, o))
      if name ~= "server_hostname" then -- not a server's option
        ssl_only(name, loop:create_server(sink, "127.0.0.1", 0, o))
        ssl_only(name, loop:create_unix_server(sink, path, o))
      end
    end
  end))
end)
