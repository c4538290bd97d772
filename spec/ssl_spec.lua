-- spec/ssl_spec.lua: TLS over real sockets, luaio on both ends: streams
-- and protocols with ssl =, the options asyncio checks, a peer that goes
-- away mid-handshake, a handshake that never completes, start_tls
-- upgrading a plain connection on both sides, and flow control passing
-- through the TLS transport.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local ssl = require "asyncio.ssl"
local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror

local h = dofile("spec/helpers.lua")
local certs = dofile("spec/fixtures/certs.lua")

local server_ctx, client_ctx = certs.server_ctx, certs.client_ctx

local function close(w)
  w:close()
  await(w:wait_closed())
end

local function stop(srv)
  srv:close()
  await(srv:wait_closed())
end

--- A plain TCP server whose handler is fn(reader, writer).
local function plain_server(fn)
  local srv = await(asyncio.start_server(async(fn), "127.0.0.1", 0))
  return srv, srv.sockets[1].port
end

describe("TLS over sockets", function()
  it("streams: a server and a client, both luaio", aspec.async(function()
    local server_seen
    local srv = await(asyncio.start_server(async(function(r, w)
      server_seen = w:get_extra_info("ssl_object")
      w:write((await(r:readline()):upper()))
      await(w:drain())
      close(w)
    end), "127.0.0.1", 0, {ssl = server_ctx()}))
    local port = srv.sockets[1].port
    -- server_hostname defaults to the host: here an address the
    -- certificate names
    local r, w = await(asyncio.open_connection("127.0.0.1", port,
                                               {ssl = client_ctx()}))
    assert.equal("127.0.0.1", w:get_extra_info("ssl_object").server_hostname)
    w:write("quiet ")
    w:write(42) -- a number is written as Lua writes it
    w:write("\n")
    await(w:drain())
    assert.is_false(w:is_closing())
    assert.equal("QUIET 42\n", await(r:readline()))
    -- the server's close_notify closes this end too (as asyncio's
    -- _start_shutdown): the writer sees its transport closing
    assert.equal("", await(r:read()))
    assert.is_true(w:is_closing())
    assert.is_true(server_seen.server_side)
    assert.equal("TLSv1.3", server_seen:version())
    close(w)
    stop(srv)
  end))

  it("a peer that ends with close_notify: the handler's last write and "
     .. "drain do not raise, as asyncio's (the write is dropped)",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local outcome = loop:create_future()
    local srv = await(asyncio.start_server(async(function(r, w)
      local got = await(r:read()) -- through the peer's close_notify
      w:write(got:upper())
      local ok, err = pcall(await, w:drain())
      outcome:set_result({got = got, drained = ok, err = err,
                          closing = w:is_closing()})
      close(w)
    end), "127.0.0.1", 0, {ssl = server_ctx()}))
    local _, w = await(asyncio.open_connection("127.0.0.1",
      srv.sockets[1].port, {ssl = client_ctx()}))
    w:write("bye")
    close(w)
    local o = await(asyncio.wait_for(outcome, 10))
    assert.same({got = "bye", drained = true, closing = true},
                {got = o.got, drained = o.drained, closing = o.closing,
                 err = o.err})
    stop(srv)
  end))

  it("protocols: create_connection and create_server with ssl",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got = loop:create_future()
    local srv = await(loop:create_server(function()
      return {
        connection_made = function(self, t) self.t = t end,
        data_received = function(self, data)
          self.t:write(data:reverse())
          self.t:close()
        end,
      }
    end, "127.0.0.1", 0, {ssl = server_ctx()}))
    local events, lost = {}, loop:create_future()
    local t, p = await(loop:create_connection(function()
      return {
        connection_made = function() events[#events + 1] = "made" end,
        data_received = function(_, d) got:set_result(d) end,
        eof_received = function() events[#events + 1] = "eof" end,
        connection_lost = function(_, exc)
          events[#events + 1] = "lost"
          lost:set_result(exc)
        end,
      }
    end, "127.0.0.1", srv.sockets[1].port,
       {ssl = client_ctx(), server_hostname = "localhost"}))
    assert.is_table(p)
    assert.equal(p, t:get_protocol())
    t:write("drawkcab")
    assert.equal("backward", await(got))
    assert.is_nil(await(lost))
    assert.same({"made", "eof", "lost"}, events)
    stop(srv)
  end))

  it("a client closing while the server still sends: both close cleanly",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local server_lost = loop:create_future()
    local srv = await(loop:create_server(function()
      return {
        connection_made = function(_, t) t:write(("s"):rep(1 << 20)) end,
        connection_lost = function(_, exc) server_lost:set_result(exc) end,
      }
    end, "127.0.0.1", 0, {ssl = server_ctx()}))
    local r, w = await(asyncio.open_connection("127.0.0.1",
      srv.sockets[1].port, {ssl = client_ctx(), server_hostname = "localhost"}))
    assert.equal(("s"):rep(1000), await(r:readexactly(1000)))
    close(w)
    assert.is_nil(await(server_lost))
    stop(srv)
  end))

  it("checks the options as asyncio does", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local e = h.await_error(asyncio.start_server(function() end,
      "127.0.0.1", 0, {ssl = true}))
    assert.is_true(iserror(e, asyncio.TypeError))
    e = h.await_error(asyncio.open_connection("127.0.0.1", 1,
      {server_hostname = "x"}))
    assert.equal("server_hostname is only meaningful with ssl", e.message)
    -- refused once connected: the socket is closed, not left open
    local eofs = 0
    local srv, port = plain_server(function(r, w)
      assert.equal("", await(r:read()))
      eofs = eofs + 1
      w:close()
    end)
    e = h.await_error(loop:create_connection(function() return {} end,
      "127.0.0.1", port, {ssl = client_ctx(), ssl_handshake_timeout = -1}))
    assert.is_true(iserror(e, asyncio.ValueError), tostring(e))
    assert.equal("ssl_handshake_timeout should be a positive number, got -1",
                 e.message)
    e = h.await_error(asyncio.open_connection("127.0.0.1", port,
      {ssl = server_ctx()}))
    assert.is_true(iserror(e, ssl.SSLError), tostring(e))
    assert.equal("Cannot create a client socket with a PROTOCOL_TLS_SERVER "
                 .. "context", e.message)
    srv:close()
    -- waits for both handlers: both saw EOF (a socket left open would
    -- keep its handler waiting: failure, not a hang)
    await(asyncio.wait_for(srv:wait_closed(), 10))
    assert.equal(2, eofs)
  end))

  it("a peer that does not speak TLS: SSLError, no hang",
     aspec.async(function()
    local srv, port = plain_server(function(r, w)
      await(r:read(10))
      w:write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
      await(w:drain())
      w:close()
    end)
    local e = h.await_error(asyncio.open_connection("127.0.0.1", port,
      {ssl = client_ctx(), server_hostname = "localhost"}))
    assert.is_true(iserror(e, ssl.SSLError), tostring(e))
    assert.equal("SSL", e.library)
    stop(srv)
  end))

  it("a peer that goes away mid-handshake: a clean error",
     aspec.async(function()
    local srv, port = plain_server(function(r, w)
      await(r:read(10)) -- the start of the ClientHello
      w:close()
    end)
    local e = h.await_error(asyncio.open_connection("127.0.0.1", port,
      {ssl = client_ctx(), server_hostname = "localhost"}))
    -- Python's ConnectionResetError(): no message, no errno
    assert.is_true(iserror(e, asyncio.ConnectionResetError), tostring(e))
    assert.equal("", e.message)
    assert.is_nil(e.errno)
    stop(srv)
  end))

  it("a handshake that never completes: ConnectionAbortedError after " ..
     "ssl_handshake_timeout", h.vspec(function()
    local loop = asyncio.get_running_loop()
    local held = {}
    local srv, port = plain_server(function(r, w)
      held[#held + 1] = w -- silent, and kept open
      await(r:read())
    end)
    local t0 = loop:time()
    local e = h.await_error(asyncio.open_connection("127.0.0.1", port,
      {ssl = client_ctx(), server_hostname = "localhost",
       ssl_handshake_timeout = 10}))
    assert.is_true(iserror(e, asyncio.ConnectionAbortedError))
    assert.equal("SSL handshake is taking longer than 10 seconds: aborting "
                 .. "the connection", e.message)
    assert.is_true(loop:time() - t0 >= 10)
    for _, w in ipairs(held) do w:close() end
    stop(srv)
  end))

  it("start_tls upgrades a plain connection on both sides",
     aspec.async(function()
    local served = asyncio.get_running_loop():create_future()
    local srv, port = plain_server(function(r, w)
      assert.equal("STARTTLS\n", await(r:readline()))
      w:write("GO\n")
      await(w:start_tls(server_ctx()))
      served:set_result(w:get_extra_info("ssl_object"):version())
      w:write("secret: " .. await(r:readline()))
      await(w:drain())
      close(w)
    end)
    local r, w = await(asyncio.open_connection("127.0.0.1", port))
    assert.is_nil(w:get_extra_info("ssl_object"))
    w:write("STARTTLS\n")
    assert.equal("GO\n", await(r:readline()))
    await(w:start_tls(client_ctx(), {server_hostname = "localhost"}))
    assert.equal("TLSv1.3", w:get_extra_info("ssl_object"):version())
    assert.equal("TLSv1.3", await(served))
    w:write("tls now\n")
    assert.equal("secret: tls now\n", await(r:readline()))
    assert.equal("", await(r:read()))
    close(w)
    stop(srv)
  end))

  -- A failed upgrade: the application was told of the connection before
  -- (call_connection_made is false), so its connection_lost gets the
  -- handshake's error and the streams end with it, as asyncio's.
  it("start_tls failing the handshake: reads, wait_closed and drain "
     .. "raise on both sides, no hang", aspec.async(function()
    local loop = asyncio.get_running_loop()
    loop:set_exception_handler(function() end)
    local served = loop:create_future()
    local srv, port = plain_server(function(r, w)
      assert.equal("STARTTLS\n", await(r:readline()))
      w:write("GO\n")
      local outcome = {h.await_error(w:start_tls(server_ctx())),
                       h.await_error(w:drain()),
                       h.await_error(asyncio.wait_for(r:read(10), 10)),
                       h.await_error(asyncio.wait_for(w:wait_closed(), 10))}
      served:set_result(outcome)
    end)
    local r, w = await(asyncio.open_connection("127.0.0.1", port))
    w:write("STARTTLS\n")
    assert.equal("GO\n", await(r:readline()))
    local e = h.await_error(w:start_tls(client_ctx(),
      {server_hostname = "wrong.example"}))
    assert.is_true(iserror(e, ssl.SSLCertVerificationError), tostring(e))
    assert.equal(62, e.verify_code)
    -- right after the failure: the connection is going, not yet gone
    local de = h.await_error(w:drain())
    assert.is_true(iserror(de, asyncio.ConnectionResetError), tostring(de))
    assert.equal("Connection lost", de.message)
    assert.equal(e, h.await_error(asyncio.wait_for(r:read(10), 10)))
    assert.equal(e, h.await_error(asyncio.wait_for(w:wait_closed(), 10)))
    -- once gone, drain raises what ended it
    assert.equal(e, h.await_error(w:drain()))
    -- the server's handshake ends with the client's alert
    local s = await(asyncio.wait_for(served, 10))
    assert.is_true(iserror(s[1], ssl.SSLError), tostring(s[1]))
    assert.is_true(iserror(s[2], asyncio.ConnectionResetError),
                   tostring(s[2]))
    assert.equal(s[1], s[3])
    assert.equal(s[1], s[4])
    stop(srv)
  end))

  it("loop:start_tls failing the handshake: each side's protocol gets "
     .. "one connection_lost with the error", aspec.async(function()
    local loop = asyncio.get_running_loop()
    loop:set_exception_handler(function() end)
    local function recorder()
      local p = {lost = {}, done = loop:create_future()}
      function p.connection_made(self, t) self.t = t end
      function p.data_received(self, d) self.data = (self.data or "") .. d end
      function p.connection_lost(self, exc)
        self.lost[#self.lost + 1] = exc
        if not self.done:done() then self.done:set_result() end
      end
      return p
    end
    local sp, cp = recorder(), recorder()
    local upgraded = loop:create_future()
    local srv = await(loop:create_server(function()
      function sp.data_received(_, d)
        assert.equal("STARTTLS\n", d)
        sp.t:write("GO\n")
        upgraded:set_result(asyncio.ensure_future(loop:start_tls(sp.t, sp,
          server_ctx(), {server_side = true})))
      end
      return sp
    end, "127.0.0.1", 0))
    local got_go = loop:create_future()
    function cp.data_received(_, d) got_go:set_result(d) end
    local t = await(loop:create_connection(function() return cp end,
      "127.0.0.1", srv.sockets[1].port))
    t:write("STARTTLS\n")
    assert.equal("GO\n", await(got_go))
    local e = h.await_error(loop:start_tls(t, cp, client_ctx(),
      {server_hostname = "wrong.example"}))
    assert.is_true(iserror(e, ssl.SSLCertVerificationError), tostring(e))
    local se = h.await_error(await(upgraded))
    assert.is_true(iserror(se, ssl.SSLError), tostring(se))
    await(asyncio.wait_for(cp.done, 10))
    await(asyncio.wait_for(sp.done, 10))
    stop(srv)
    -- the raw transports' own connection_lost (call_soon after their
    -- close) came and went: a second report would be in by now
    for _ = 1, 5 do await(asyncio.sleep(0)) end
    assert.is_true(t:is_closing())
    assert.same({e}, cp.lost)
    assert.same({se}, sp.lost)
  end))

  it("a record altered on the wire: the server's reader fails with " ..
     "SSLError, and the peer gets its alert", aspec.async(function()
    local lines, failed = {}, asyncio.get_running_loop():create_future()
    local srv = await(asyncio.start_server(async(function(r, w)
      w:write("ready\n") -- the server's handshake is over
      while true do
        local ok, line = pcall(await, r:readline())
        if not ok then failed:set_result(line) return end
        lines[#lines + 1] = line
      end
    end), "127.0.0.1", 0, {ssl = server_ctx()}))
    -- the client: TLS by hand (asyncio.ssl's engine) over plain TCP
    local r, w = await(asyncio.open_connection("127.0.0.1",
                                               srv.sockets[1].port))
    local c = client_ctx():wrap_bio(false, "localhost")
    local _, out, ev = c:feed(nil)
    while ev & 1 == 0 do
      w:write(out)
      local err
      _, out, ev, err = c:feed(await(r:read(65536)))
      assert.is_nil(err)
    end
    if out then w:write(out) end
    local ready = ""
    while ready ~= "ready\n" do
      local plain, _, _, err = c:feed(await(r:read(65536)))
      assert.is_nil(err)
      ready = ready .. (plain or "")
    end
    -- two records in one chunk: the first read, the second refused
    w:write((c:write("intact\n")))
    local record = c:write("altered\n")
    local at = #record - 20 -- in the body: the authentication fails
    w:write(record:sub(1, at - 1) .. string.char(record:byte(at) ~ 1)
            .. record:sub(at + 1))
    local e = await(asyncio.wait_for(failed, 10))
    assert.is_true(iserror(e, ssl.SSLError), tostring(e))
    assert.same({"intact\n"}, lines)
    -- the server's alert reaches the client, then the connection ends
    local alert, text
    repeat
      local data = await(r:read(65536))
      local plain, _, _, err = c:feed(data ~= "" and data or nil)
      alert, text = alert or err, plain or text
    until alert or data == ""
    assert.is_true(iserror(alert, ssl.SSLError), tostring(alert))
    assert.matches("bad record mac", tostring(alert):lower())
    assert.is_nil(text)
    close(w)
    stop(srv)
  end))

  it("flow control: a stream reader over TLS pauses its transport at its " ..
     "limit and gets every byte, in order", aspec.async(function()
    local pieces = {}
    for i = 1, 40000 do pieces[i] = ("%05d|"):format(i) end
    local payload = table.concat(pieces) -- 240,000 bytes, none repeated
    local srv = await(asyncio.start_server(async(function(_, w)
      for i = 1, #payload, 7000 do -- records of every size up to 7000
        w:write(payload:sub(i, i + 6999))
      end
      await(w:drain())
      close(w)
    end), "127.0.0.1", 0, {ssl = server_ctx()}))
    local r, w = await(asyncio.open_connection("127.0.0.1",
      srv.sockets[1].port, {ssl = client_ctx(),
      server_hostname = "localhost", limit = 4096}))
    local t, turns = w.transport, 0
    while t:is_reading() do
      await(asyncio.sleep(0))
      turns = turns + 1
      assert.is_true(turns < 100000, "never paused")
    end
    local got = {}
    repeat
      local piece = await(r:read(1000))
      got[#got + 1] = piece
    until piece == ""
    assert.equal(#payload, #table.concat(got))
    assert.is_true(table.concat(got) == payload, "bytes lost or reordered")
    assert.is_true(t:is_reading())
    close(w)
    stop(srv)
  end))

  it("flow control: the app's pause_writing follows a peer that does " ..
     "not read", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local server_t, sent
    local received, all_in = 0, loop:create_future()
    local srv = await(loop:create_server(function()
      return {
        connection_made = function(_, t)
          server_t = t
          t:pause_reading()
        end,
        data_received = function(_, d)
          received = received + #d
          if received == sent then all_in:set_result() end
        end,
      }
    end, "127.0.0.1", 0, {ssl = server_ctx()}))
    local events = {}
    local t = await(loop:create_connection(function()
      return {
        pause_writing = function() events[#events + 1] = "pause" end,
        resume_writing = function() events[#events + 1] = "resume" end,
        data_received = function() end,
      }
    end, "127.0.0.1", srv.sockets[1].port,
       {ssl = client_ctx(), server_hostname = "localhost"}))
    local chunk = ("p"):rep(65536)
    sent = 0
    while events[1] ~= "pause" do
      t:write(chunk)
      sent = sent + #chunk
      await(asyncio.sleep(0))
      assert.is_true(sent < 64 * 1024 * 1024, "never paused")
    end
    assert.is_true(t:get_write_buffer_size() > 0)
    server_t:resume_reading()
    await(all_in)
    assert.equal(sent, received)
    assert.same({"pause", "resume"}, events)
    t:close()
    server_t:close()
    stop(srv)
  end))
end)
