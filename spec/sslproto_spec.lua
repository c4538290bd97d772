-- spec/sslproto_spec.lua: the TLS transport (lua/asyncio/sslproto.lua)
-- over a pair of in-process transports (spec/fixtures/pipes.lua): the
-- handshake, data both ways, close_notify, EOF without one, failures,
-- timeouts on the virtual clock, flow control passing through, and
-- loop:start_tls. Real sockets and real peers are in ssl_peers_spec.lua.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local ssl = require "asyncio.ssl"
local sslproto = require "asyncio.sslproto"
local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror

local h = dofile("spec/helpers.lua")
local certs = dofile("spec/fixtures/certs.lua")
local pipes = dofile("spec/fixtures/pipes.lua")

local server_ctx, client_ctx = certs.server_ctx, certs.client_ctx

--- A TLS connection over pipes: client and server SSLProtocols with
-- recorder app protocols. Returns {c =, s = (recorders), cp =, sp =
-- (SSLProtocols), ca =, sa = (raw pipes), cw =, sw = (waiters)}.
local function tls_pair(opts)
  opts = opts or {}
  local loop = asyncio.get_running_loop()
  local t = {c = pipes.recorder(loop), s = pipes.recorder(loop),
             cw = loop:create_future(), sw = loop:create_future()}
  t.cp = sslproto.SSLProtocol(loop, t.c, opts.client_ctx or client_ctx(),
    t.cw, false, opts.hostname or "localhost", opts.client_opts)
  t.sp = sslproto.SSLProtocol(loop, t.s, opts.server_ctx or server_ctx(),
    t.sw, true, nil, opts.server_opts)
  t.ca, t.sa = pipes.pair(loop, t.cp, opts.server_raw or t.sp)
  return t
end

--- Awaits both waiters; returns their errors (nil when fine).
local function handshake(t)
  local ok1, e1 = pcall(await, t.cw)
  local ok2, e2 = pcall(await, t.sw)
  return not ok1 and e1 or nil, not ok2 and e2 or nil
end

--- received(rec, n, ...): awaits until each recorder given has received
-- at least its count of bytes (10 seconds guard against a hang).
local function received(...)
  local args = table.pack(...)
  for i = 1, args.n, 2 do
    await(asyncio.wait_for(args[i]:received(args[i + 1]), 10))
  end
end

describe("asyncio.sslproto", function()
  describe("a connection over pipes", function()
    it("handshakes, then carries data both ways", aspec.async(function()
      local t = tls_pair()
      assert.is_nil(handshake(t))
      assert.same({"made"}, t.c.events)
      assert.same({"made"}, t.s.events)
      local ct, st = t.c.transport, t.s.transport
      assert.equal(t.cp._app_transport, ct)
      ct:write("hello ")
      ct:writelines({"from ", "the client"})
      ct:write(42) -- a number is written as Lua writes it, as io.write does
      ct:writelines({" ", 1.5})
      st:write("and back")
      received(t.s, 27, t.c, 8)
      assert.equal("hello from the client42 1.5", t.s:data())
      assert.equal("and back", t.c:data())
    end))

    it("gives Python's extra info", aspec.async(function()
      local t = tls_pair()
      handshake(t)
      local ct = t.c.transport
      local obj = ct:get_extra_info("ssl_object")
      assert.equal("TLSv1.3", obj:version())
      assert.equal("localhost", obj.server_hostname)
      assert.is_false(obj.server_side)
      assert.is_nil(obj:compression())
      local cipher = ct:get_extra_info("cipher")
      assert.same(obj:cipher(), cipher)
      assert.equal("TLSv1.3", cipher[2])
      assert.equal(cipher[1], cipher.name)
      assert.is_true(cipher.bits >= 128)
      local cert = ct:get_extra_info("peercert")
      assert.same({{{"organizationName", "luaio"}},
                   {{"commonName", "localhost"}}}, cert.subject)
      assert.same({{{"commonName", "luaio test CA"}}}, cert.issuer)
      assert.same({"DNS", "localhost"}, cert.subjectAltName[1])
      assert.is_true(ssl.is_context(ct:get_extra_info("sslcontext")))
      -- what the raw transport knows passes through
      assert.same({"pipe", "b"}, ct:get_extra_info("peername"))
      assert.equal("dflt", ct:get_extra_info("nothing", "dflt"))
      -- the server did not ask for a certificate
      assert.is_nil(t.s.transport:get_extra_info("peercert"))
      assert.is_false(ct:can_write_eof())
      assert.is_false(ct:is_closing())
      assert.is_true(ct:is_reading())
      assert.equal(t.c, ct:get_protocol())
    end))

    it("close() sends close_notify: the peer sees EOF, both sides lose " ..
       "the connection cleanly", aspec.async(function()
      local t = tls_pair()
      handshake(t)
      t.c.transport:write("last words")
      t.c.transport:close()
      assert.is_true(t.c.transport:is_closing())
      t.c.transport:write("ignored after close")
      assert.is_nil(await(t.c.lost))
      assert.is_nil(await(t.s.lost))
      assert.equal("last words", t.s:data())
      assert.same({"made", "eof", "lost"}, t.s.events)
      assert.same({"made", "eof", "lost"}, t.c.events)
      assert.is_true(t.ca.closed and t.sa.closed)
    end))

    it("a peer that closes without close_notify is an EOF",
       aspec.async(function()
      local t = tls_pair()
      handshake(t)
      t.s.transport:write("bye")
      await(asyncio.sleep(0))
      t.sa:close() -- the raw transport, under TLS
      assert.is_nil(await(t.c.lost))
      assert.equal("bye", t.c:data())
      assert.same({"made", "eof", "lost"}, t.c.events)
    end))

    it("closing while the peer still sends: the rest is dropped, both " ..
       "ends close", aspec.async(function()
      local t = tls_pair()
      handshake(t)
      t.s.transport:write(("d"):rep(700000))
      t.c.transport:close()
      assert.is_nil(await(t.c.lost))
      assert.is_nil(await(t.s.lost))
      assert.same({"made", "eof", "lost"}, t.c.events)
      -- 700 kB were over the server's high-water mark (512 KiB) a while
      assert.same({"made", "pause", "resume", "eof", "lost"}, t.s.events)
      assert.is_true(#t.c:data() < 700000)
    end))

    it("write_eof raises NotImplementedError, write wants a string or a "
       .. "number",
       aspec.async(function()
      local t = tls_pair()
      handshake(t)
      local e = h.error_of(t.c.transport.write_eof, t.c.transport)
      assert.is_true(iserror(e, asyncio.NotImplementedError))
      assert.equal("SSL doesn't support half-closes", e.message)
      e = h.error_of(t.c.transport.write, t.c.transport, true)
      assert.matches("bad argument #1 to 'write' %(string expected, got "
                     .. "boolean%)", e)
      -- writelines checks as the socket transports' do
      local ct = t.c.transport
      assert.matches("bad argument #1 to 'writelines' %(table expected, "
                     .. "got nil%)", h.error_of(function()
                       ct:writelines() end))
      assert.matches("bad item #2 to 'writelines' %(string expected, got "
                     .. "boolean%)", h.error_of(function()
                       ct:writelines{"a", false} end))
      assert.equal(0, ct:get_write_buffer_size()) -- nothing went out
      t.c.transport:abort()
      await(t.c.lost)
      assert.is_true(iserror(await(t.s.lost), asyncio.ConnectionResetError))
    end))

    it("an app protocol may leave methods out", aspec.async(function()
      local t = tls_pair()
      t.s.data_received = nil
      handshake(t)
      t.c.transport:write("into the void")
      await(asyncio.sleep(0))
      await(asyncio.sleep(0))
      t.c.transport:close()
      assert.is_nil(await(t.c.lost))
      assert.same({"made", "eof", "lost"}, t.s.events)
      assert.equal("", t.s:data())
    end))

    it("an error in the app's data_received goes to the handler and to " ..
       "its connection_lost", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local reported = {}
      loop:set_exception_handler(function(_, ctx)
        reported[#reported + 1] = ctx
      end)
      local t = tls_pair()
      handshake(t)
      function t.s.data_received() error("bad data") end
      t.c.transport:write("x")
      local exc = await(t.s.lost)
      assert.matches("bad data", tostring(exc))
      assert.equal(1, #reported)
      assert.equal("Fatal error on SSL protocol", reported[1].message)
      assert.equal(exc, reported[1].exception)
    end))

    it("carries 1 MiB each way intact, written in random sizes",
       aspec.async(function()
      local t = tls_pair()
      handshake(t)
      local rng = 12345
      local function rand(n) -- a fixed LCG, the same on every run
        rng = (rng * 1103515245 + 12345) % 2147483648
        return rng % n
      end
      local parts = {}
      for i = 0, 255 do parts[#parts + 1] = string.char(i) end
      local block = table.concat(parts):rep(4096) -- 1 MiB
      for _, side in ipairs{{t.c.transport}, {t.s.transport}} do
        local pos = 1
        while pos <= #block do
          local n = 1 + rand(70000)
          side[1]:write(block:sub(pos, pos + n - 1))
          pos = pos + n
        end
      end
      received(t.s, #block, t.c, #block)
      assert.is_true(t.s:data() == block, "server side data differs")
      assert.is_true(t.c:data() == block, "client side data differs")
    end))
  end)

  describe("failures", function()
    it("a wrong host fails the handshake with code 62 on the waiter",
       aspec.async(function()
      local t = tls_pair{hostname = "wrong.example"}
      local ce, se = handshake(t)
      assert.is_true(iserror(ce, ssl.SSLCertVerificationError))
      assert.is_true(iserror(ce, asyncio.ValueError))
      assert.equal(62, ce.verify_code)
      assert.equal("Hostname mismatch, certificate is not valid for "
                   .. "'wrong.example'.", ce.verify_message)
      -- the server is told by the client's alert
      assert.is_true(iserror(se, ssl.SSLError))
      assert.matches("alert", se.reason:lower())
      assert.same({}, t.c.events) -- the app never saw the connection
    end))

    it("the handshake times out with ConnectionAbortedError",
       h.vspec(function()
      local loop = asyncio.get_running_loop()
      local silent = pipes.recorder(loop)
      local t = tls_pair{server_raw = silent,
                         client_opts = {ssl_handshake_timeout = 5}}
      local t0 = loop:time()
      local ce = h.await_error(t.cw)
      assert.is_true(iserror(ce, asyncio.ConnectionAbortedError))
      assert.equal("SSL handshake is taking longer than 5 seconds: "
                   .. "aborting the connection", ce.message)
      assert.equal(5, loop:time() - t0)
      assert.is_true(t.ca.closed)
      await(silent.lost)
    end))

    it("a peer that goes away mid-handshake fails it cleanly",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local rude = pipes.recorder(loop)
      function rude:data_received() self.transport:close() end
      local t = tls_pair{server_raw = rude}
      local ce = h.await_error(t.cw)
      assert.is_true(iserror(ce, asyncio.ConnectionResetError))
      await(rude.lost)
    end))

    it("a silent peer at shutdown: connection_lost(TimeoutError) after " ..
       "ssl_shutdown_timeout", h.vspec(function()
      local loop = asyncio.get_running_loop()
      local t = tls_pair{client_opts = {ssl_shutdown_timeout = 3}}
      handshake(t)
      local silent = pipes.recorder(loop)
      t.sa:set_protocol(silent)  -- nobody answers the close_notify
      local t0 = loop:time()
      t.c.transport:close()
      local exc = await(t.c.lost)
      assert.is_true(iserror(exc, asyncio.TimeoutError))
      assert.equal("SSL shutdown timed out", exc.message)
      assert.equal(3, loop:time() - t0)
      await(silent.lost)
    end))

    it("checks its timeouts and arguments", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local e = h.raises(asyncio.ValueError, sslproto.SSLProtocol, loop, {},
        client_ctx(), nil, false, "localhost", {ssl_handshake_timeout = 0})
      assert.equal("ssl_handshake_timeout should be a positive number, "
                   .. "got 0", e.message)
      h.raises(asyncio.ValueError, sslproto.SSLProtocol, loop, {},
        client_ctx(), nil, false, "localhost", {ssl_shutdown_timeout = -1})
      e = h.raises(asyncio.ValueError, sslproto.SSLProtocol, loop, {},
        client_ctx(), nil, false, nil)
      assert.equal("check_hostname requires server_hostname", e.message)
      e = h.raises(asyncio.ValueError, sslproto.SSLProtocol, loop, {}, nil,
                   nil, true)
      assert.equal("Server side SSL needs a valid SSLContext", e.message)
      -- what is no context says so (it failed as "attempt to call a nil
      -- value (method 'wrap_bio')"), for ssl = {} of open_connection too
      e = h.raises(asyncio.TypeError, sslproto.SSLProtocol, loop, {},
                   client_ctx(), nil, false, 5)
      assert.equal("server_hostname must be a string, got number",
                   e.message)
      e = h.raises(asyncio.TypeError, sslproto.SSLProtocol, loop, {},
                   io.stdout, nil, false, "localhost")
      assert.matches("^sslcontext is expected to be an instance of "
                     .. "ssl.SSLContext, got file", e.message)
      local srv = await(asyncio.start_server(function() end, "127.0.0.1",
                                             0))
      e = h.await_error(asyncio.open_connection("127.0.0.1",
        srv.sockets[1].port, {ssl = {}}))
      assert.is_true(iserror(e, asyncio.TypeError))
      srv:close()
      srv:close_clients()
      await(srv:wait_closed())
    end))
  end)

  describe("flow control", function()
    it("pause_writing reaches the app when the peer does not read, " ..
       "resume_writing when it reads again", aspec.async(function()
      local t = tls_pair()
      handshake(t)
      local ct, st = t.c.transport, t.s.transport
      st:pause_reading()
      assert.is_false(st:is_reading())
      local chunk = ("z"):rep(16384)
      local sent = 0
      while t.c.events[#t.c.events] ~= "pause" do
        ct:write(chunk)
        sent = sent + #chunk
        await(asyncio.sleep(0))
        assert.is_true(sent < 8 * 1024 * 1024, "never paused")
      end
      assert.is_true(ct:get_write_buffer_size() > 0)
      -- the server's TLS layer held ciphertext, then paused the socket
      assert.is_true(st:get_read_buffer_size() > 0)
      assert.is_false(t.sa.reading)
      st:resume_reading()
      received(t.s, sent)
      assert.equal(sent, #t.s:data())
      assert.same({"made", "pause", "resume"}, t.c.events)
      assert.equal(0, ct:get_write_buffer_size())
    end))

    it("an error in the app's pause_writing or resume_writing is " ..
       "reported and the connection goes on, as in Python",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local reports = {}
      loop:set_exception_handler(function(_, ctx)
        reports[#reports + 1] = ctx
      end)
      local t = tls_pair()
      handshake(t)
      local c = t.c
      function c:pause_writing()
        self.events[#self.events + 1] = "pause"
        error(asyncio.RuntimeError("pause failed"))
      end
      function c:resume_writing()
        self.events[#self.events + 1] = "resume"
        error(asyncio.RuntimeError("resume failed"))
      end
      local ct = c.transport
      ct:set_write_buffer_limits(1000)
      ct:write(("y"):rep(5000))
      received(t.s, 5000)
      assert.same({"made", "pause", "resume"}, c.events)
      assert.equal(2, #reports)
      assert.equal("protocol.pause_writing() failed", reports[1].message)
      assert.equal("pause failed", reports[1].exception.message)
      assert.equal(ct, reports[1].transport)
      assert.equal("protocol.resume_writing() failed", reports[2].message)
      -- still open both ways
      assert.is_false(ct:is_closing())
      ct:write("more")
      received(t.s, 5004)
      t.s.transport:write("back")
      received(c, 4)
      assert.equal("back", c:data())
      ct:close()
      assert.is_nil(await(c.lost))
      loop:set_exception_handler(nil)
    end))

    it("SSLProtocol rejects an unknown option (argument #7) and takes "
       .. "its documented ones", aspec.async(function()
      local loop = asyncio.get_running_loop()
      assert.equal("bad argument #7 to 'SSLProtocol' (unknown option "
                   .. "'ssl_handshake_timout')", h.error_of(
                     sslproto.SSLProtocol, loop, pipes.recorder(loop),
                     client_ctx(), nil, false, "localhost",
                     {ssl_handshake_timout = 1}))
      local t = tls_pair{
        client_opts = {ssl_handshake_timeout = 5, ssl_shutdown_timeout = 3,
                       call_connection_made = false},
        server_opts = {ssl_handshake_timeout = 5, ssl_shutdown_timeout = 3,
                       call_connection_made = true}}
      assert.is_nil(handshake(t))
      assert.same({}, t.c.events) -- not told, as asked
      assert.same({"made"}, t.s.events)
    end))

    it("write buffer limits pass through to the raw transport",
       aspec.async(function()
      local t = tls_pair()
      handshake(t)
      local ct = t.c.transport
      -- asyncio's defaults for TLS: 512 KiB, a quarter of it low
      assert.same({128 * 1024, 512 * 1024}, {ct:get_write_buffer_limits()})
      ct:set_write_buffer_limits(1000)
      assert.same({250, 1000}, {ct:get_write_buffer_limits()})
      assert.equal(1000, t.ca.high)
      assert.equal(250, t.ca.low)
      ct:write(("y"):rep(5000))
      assert.same({"made", "pause"}, t.c.events)
      received(t.s, 5000)
      assert.equal(("y"):rep(5000), t.s:data())
      assert.same({"made", "pause", "resume"}, t.c.events)
      local e = h.raises(asyncio.ValueError, ct.set_write_buffer_limits, ct,
                         10, 20)
      assert.equal("high (10) must be >= low (20) must be >= 0", e.message)
      -- integers, checked at the call as the socket transports' are
      assert.equal("bad argument #1 to 'set_write_buffer_limits' (number "
                   .. "expected, got string)", h.error_of(function()
                     ct:set_write_buffer_limits("x") end):match("bad.*"))
      assert.equal("bad argument #2 to 'set_write_buffer_limits' (number "
                   .. "has no integer representation)", h.error_of(function()
                     ct:set_write_buffer_limits(nil, 1.5) end):match("bad.*"))
      assert.equal("bad argument #1 to 'set_read_buffer_limits' (number "
                   .. "expected, got table)", h.error_of(function()
                     ct:set_read_buffer_limits({}) end):match("bad.*"))
      -- nothing was changed by the refused calls
      assert.same({250, 1000}, {ct:get_write_buffer_limits()})
      assert.same({64 * 1024, 256 * 1024}, {ct:get_read_buffer_limits()})
    end))
  end)

  describe("loop:start_tls", function()
    it("upgrades a plain connection on both sides", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local c, s = pipes.recorder(loop), pipes.recorder(loop)
      local ca, sa = pipes.pair(loop, c, s)
      await(asyncio.sleep(0))
      ca:write("STARTTLS\n")
      received(s, #"STARTTLS\n")
      assert.equal("STARTTLS\n", s:data())
      local server = asyncio.create_task(loop:start_tls(sa, s, server_ctx(),
        {server_side = true}))
      local ct = await(loop:start_tls(ca, c, client_ctx(),
        {server_hostname = "localhost"}))
      local st = await(server)
      assert.equal("TLSv1.3", ct:get_extra_info("ssl_object"):version())
      assert.equal(c, ct:get_protocol())
      ct:write("secret")
      st:write("reply")
      received(s, #"STARTTLS\nsecret", c, #"reply")
      assert.equal("STARTTLS\nsecret", s:data())
      assert.equal("reply", c:data())
      -- connection_made is not called again
      assert.same({"made"}, c.events)
      ct:close()
      await(c.lost)
      await(s.lost)
    end))

    it("raises the handshake's failure and closes the transport",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local c, s = pipes.recorder(loop), pipes.recorder(loop)
      local ca, sa = pipes.pair(loop, c, s)
      await(asyncio.sleep(0))
      local server = asyncio.create_task(loop:start_tls(sa, s, server_ctx(),
        {server_side = true}))
      local e = h.await_error(loop:start_tls(ca, c, client_ctx(),
        {server_hostname = "other.example"}))
      assert.equal(62, e.verify_code)
      assert.is_true(iserror(h.await_error(server), ssl.SSLError))
      assert.is_true(ca.closing)
    end))

    it("rejects an unknown option (argument #4) before touching the "
       .. "transport; takes the documented ones", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local c, s = pipes.recorder(loop), pipes.recorder(loop)
      local ca, sa = pipes.pair(loop, c, s)
      await(asyncio.sleep(0))
      assert.equal("bad argument #4 to 'start_tls' (unknown option "
                   .. "'server_hostnme')", h.await_error(loop:start_tls(ca,
                     c, client_ctx(), {server_hostnme = "localhost"})))
      assert.equal("bad argument #4 to 'start_tls' (unknown option "
                   .. "'call_connection_made')", h.await_error(
                     loop:start_tls(ca, c, client_ctx(),
                                    {call_connection_made = true})))
      assert.is_false(ca.closing)
      ca:write("still plain\n")
      received(s, #"still plain\n")
      local server = asyncio.create_task(loop:start_tls(sa, s, server_ctx(),
        {server_side = true, ssl_handshake_timeout = 5,
         ssl_shutdown_timeout = 5}))
      local ct = await(loop:start_tls(ca, c, client_ctx(),
        {server_side = false, server_hostname = "localhost",
         ssl_handshake_timeout = 5, ssl_shutdown_timeout = 5}))
      local st = await(server)
      ct:write("secret")
      received(s, #"still plain\nsecret")
      assert.equal("still plain\nsecret", s:data())
      st:close()
      await(c.lost)
      await(s.lost)
    end))

    it("checks its arguments", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local e = h.await_error(loop:start_tls({}, {}, "ctx"))
      assert.is_true(iserror(e, asyncio.TypeError))
      assert.matches("sslcontext is expected to be an instance of "
                     .. "ssl.SSLContext", e.message)
      e = h.await_error(loop:start_tls({}, {}, client_ctx()))
      assert.matches("is not supported by start_tls", e.message)
    end))
  end)
end)
