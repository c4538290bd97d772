-- spec/ssl_peers_spec.lua: asyncio.ssl against real peers on 127.0.0.1:
-- luaio's client against openssl s_server and Python's ssl, luaio's
-- server against openssl s_client, curl and Python's ssl; certificate
-- verification failures with Python's classes and codes, client
-- certificates, ALPN, protocol versions, writes during a renegotiation
-- (through a relay that holds the client's answer), 1 MiB each way.
-- Certificates come from spec/fixtures/certs.lua; every test stops its
-- peers.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local ssl = require "asyncio.ssl"
local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror

local h = dofile("spec/helpers.lua")
local certs = dofile("spec/fixtures/certs.lua")
local peers = dofile("spec/fixtures/tls_peers.lua")
local with = peers.with

local server_ctx, client_ctx = certs.server_ctx, certs.client_ctx

local function connect(port, ctx, hostname)
  return await(asyncio.open_connection("127.0.0.1", port,
    {ssl = ctx or client_ctx(), server_hostname = hostname or "localhost"}))
end

local function close(w)
  w:close()
  await(w:wait_closed())
end

--- A luaio TLS server answering one line with "echo: <line>" then
-- closing; `seen` collects each connection's peercert.
local function echo_server(ctx)
  local seen = {}
  local srv = await(asyncio.start_server(async(function(r, w)
    seen[#seen + 1] = w:get_extra_info("peercert") or false
    local line = await(r:readline())
    w:write("echo: " .. line)
    await(w:drain())
    close(w)
  end), "127.0.0.1", 0, {ssl = ctx or server_ctx()}))
  return srv, srv.sockets[1].port, seen
end

local function stop_server(srv)
  srv:close()
  await(srv:wait_closed())
end

describe("asyncio.ssl with real peers", function()
  describe("luaio's client against openssl s_server", function()
    it("talks TLS 1.3 and checks the server's certificate",
       aspec.async(with(function()
      local port = await(peers.s_server{"-rev"})
      local r, w = connect(port)
      local obj = w:get_extra_info("ssl_object")
      assert.equal("TLSv1.3", obj:version())
      assert.equal("TLSv1.3", w:get_extra_info("cipher")[2])
      local cert = w:get_extra_info("peercert")
      assert.same({{{"organizationName", "luaio"}},
                   {{"commonName", "localhost"}}}, cert.subject)
      assert.same({{"DNS", "localhost"}, {"IP Address", "127.0.0.1"},
                   {"IP Address", "0:0:0:0:0:0:0:1"}}, cert.subjectAltName)
      assert.matches("^%u%l%l [ %d]%d %d%d:%d%d:%d%d %d%d%d%d GMT$",
                     cert.notAfter)
      assert.same({"127.0.0.1", port}, w:get_extra_info("peername"))
      w:write("hello\n")
      assert.equal("olleh\n", await(r:readline()))
      close(w)
    end)))

    it("checks an address as Python does (IP in subjectAltName)",
       aspec.async(with(function()
      local port = await(peers.s_server{"-rev"})
      local r, w = connect(port, nil, "127.0.0.1")
      w:write("abc\n")
      assert.equal("cba\n", await(r:readline()))
      assert.equal("127.0.0.1", w:get_extra_info("ssl_object").server_hostname)
      close(w)
      await(peers.stop())
      port = await(peers.s_server{"-rev"})
      local e = h.await_error(asyncio.open_connection("127.0.0.1", port,
        {ssl = client_ctx(), server_hostname = "127.0.0.2"}))
      assert.equal(64, e.verify_code)
      assert.equal("IP address mismatch, certificate is not valid for "
                   .. "'127.0.0.2'.", e.verify_message)
    end)))

    it("negotiates ALPN", aspec.async(with(function()
      local port = await(peers.s_server{"-rev", "-alpn", "h2,http/1.1"})
      local ctx = client_ctx()
      ctx:set_alpn_protocols{"spam", "http/1.1"}
      local _, w = connect(port, ctx)
      assert.equal("http/1.1",
                   w:get_extra_info("ssl_object"):selected_alpn_protocol())
      close(w)
    end)))

    it("keeps to the versions allowed", aspec.async(with(function()
      local port = await(peers.s_server{"-rev", "-tls1_2"})
      local _, w = connect(port)
      assert.equal("TLSv1.2", w:get_extra_info("ssl_object"):version())
      close(w)
      await(peers.stop())
      -- TLS 1.3 at least, against a TLS 1.2 server: refused
      port = await(peers.s_server{"-rev", "-tls1_2"})
      local ctx = client_ctx()
      ctx.minimum_version = ssl.TLSVersion.TLSv1_3
      local e = h.await_error(asyncio.open_connection("127.0.0.1", port,
        {ssl = ctx, server_hostname = "localhost"}))
      assert.is_true(iserror(e, ssl.SSLError), tostring(e))
      assert.matches("PROTOCOL_VERSION", e.reason)
      await(peers.stop())
      -- TLS 1.2 at most, against a server that would do 1.3
      port = await(peers.s_server{"-rev"})
      ctx = client_ctx()
      ctx.maximum_version = ssl.TLSVersion.TLSv1_2
      _, w = connect(port, ctx)
      assert.equal("TLSv1.2", w:get_extra_info("ssl_object"):version())
      close(w)
    end)))

    -- A TCP relay from a local port to `port` that forwards the client's
    -- bytes only while relay.hold is false (else counts them in
    -- relay.held and keeps them); relay.port is where to connect.
    local function relay_to(port)
      local relay = {hold = false, held = 0, queue = {}}
      local function pump(r, w, up)
        while true do
          local data = await(r:read(65536))
          if data == "" then break end
          if up and relay.hold then
            relay.held = relay.held + #data
            relay.queue[#relay.queue + 1] = data
          else
            w:write(data)
            await(w:drain())
          end
        end
        w:close()
      end
      relay.srv = await(asyncio.start_server(async(function(cr, cw)
        local sr, sw = await(asyncio.open_connection("127.0.0.1", port))
        relay.up = sw
        local down = asyncio.create_task(async(pump)(sr, cw, false))
        pump(cr, sw, true)
        await(down)
      end), "127.0.0.1", 0))
      relay.port = relay.srv.sockets[1].port
      function relay.release()
        relay.hold = false
        for _, data in ipairs(relay.queue) do relay.up:write(data) end
        relay.queue = {}
      end
      return relay
    end

    it("writes while a TLS 1.2 renegotiation waits for the server: the " ..
       "data waits too, then goes, in order", aspec.async(with(function()
      local port, server = await(peers.s_server{"-tls1_2"})
      local relay = relay_to(port)
      local r, w = connect(relay.port)
      w:write("before\n")
      await(w:drain())
      assert.equal("before\n", peers.read_until(server, "^(before\n)$"))
      -- the server asks for a new handshake; the client's answer is held
      relay.hold = true
      server.stdin:write("r\n")
      h.turns_until(function() return relay.held > 0 end)
      -- the TLS layer cannot write until the server answers
      w:write("during\n")
      w:write("and after\n")
      assert.equal(17, w.transport:get_write_buffer_size()) -- both lines
      relay.release()
      await(w:drain())
      assert.equal("during\n", peers.read_until(server, "^(during\n)$"))
      assert.equal("and after\n", peers.read_until(server, "^(and after\n)$"))
      assert.equal(0, w.transport:get_write_buffer_size())
      -- the connection goes on both ways
      server.stdin:write("from the server\n")
      assert.equal("from the server\n", await(r:readline()))
      close(w)
      stop_server(relay.srv)
    end)))

    local failures = {
      {"an unknown CA", "rogue", 20, "unable to get local issuer certificate"},
      {"a certificate for another host", "wronghost", 62,
       "Hostname mismatch, certificate is not valid for 'localhost'."},
      {"an expired certificate", "expired", 10, "certificate has expired"},
    }
    for _, case in ipairs(failures) do
      local what, name, code, message = case[1], case[2], case[3], case[4]
      it("refuses " .. what .. " (" .. code .. ")",
         aspec.async(with(function()
        local port = await(peers.s_server({"-rev"}, name .. ".pem",
                                          name .. ".key"))
        local e = h.await_error(asyncio.open_connection("127.0.0.1", port,
          {ssl = client_ctx(), server_hostname = "localhost"}))
        assert.is_true(iserror(e, ssl.SSLCertVerificationError),
                       tostring(e))
        assert.is_true(iserror(e, ssl.SSLError))
        assert.is_true(iserror(e, asyncio.OSError))
        assert.is_true(iserror(e, asyncio.ValueError))
        assert.equal(code, e.verify_code)
        assert.equal(message, e.verify_message)
        assert.equal("SSL", e.library)
        assert.equal("CERTIFICATE_VERIFY_FAILED", e.reason)
        assert.equal("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                     .. "failed: " .. message, e.message)
      end)))
    end

    it("ssl = true uses the system's CA store (which does not know the " ..
       "test CA)", aspec.async(with(function()
      local port = await(peers.s_server{"-rev"})
      local e = h.await_error(asyncio.open_connection("127.0.0.1", port,
        {ssl = true, server_hostname = "localhost"}))
      assert.equal(20, e.verify_code)
    end)))

    it("presents a client certificate when the server requires one",
       aspec.async(with(function()
      local args = {"-rev", "-Verify", "1", "-verify_return_error",
                    "-CAfile", certs.path("ca.pem")}
      local port = await(peers.s_server(args))
      local r, w = connect(port, client_ctx{cert = "client"})
      w:write("mutual\n")
      assert.equal("lautum\n", await(r:readline()))
      close(w)
      await(peers.stop())
      -- without one, TLS 1.3 tells the client after its handshake
      port = await(peers.s_server(args))
      r, w = connect(port)
      w:write("x\n")
      local e = h.await_error(r:readline())
      assert.is_true(iserror(e, ssl.SSLError), tostring(e))
      assert.equal("TLSV13_ALERT_CERTIFICATE_REQUIRED", e.reason)
      w:close()
    end)))
  end)

  describe("luaio's client against Python's ssl", function()
    it("carries 1 MiB each way intact, written in random sizes",
       aspec.async(with(function()
      local port, p = await(peers.py_server{"--cert",
        certs.path("server.pem"), "--key", certs.path("server.key")})
      local r, w = connect(port)
      local parts = {}
      for i = 0, 255 do parts[#parts + 1] = string.char(i) end
      local block = table.concat(parts):rep(4096)
      local rng = 4242
      local writer = asyncio.create_task(async(function()
        local pos = 1
        while pos <= #block do
          rng = (rng * 1103515245 + 12345) % 2147483648
          local n = 1 + rng % 50000
          w:write(block:sub(pos, pos + n - 1))
          await(w:drain())
          pos = pos + n
        end
      end)())
      local got = await(r:readexactly(#block))
      await(writer)
      assert.is_true(got == block, "the echo differs")
      close(w)
      assert.equal("SNI localhost\n", await(p.stdout:readline()))
      assert.equal("PEER -\n", await(p.stdout:readline()))
    end)))

    it("is known by its certificate to a server that requires one; no " ..
       "SNI for an address",
       aspec.async(with(function()
      local args = {"--cert", certs.path("server.pem"), "--key",
                    certs.path("server.key"), "--cafile", certs.path("ca.pem")}
      local port, p = await(peers.py_server(args))
      -- an address is checked, but never sent as the server's name
      local r, w = connect(port, client_ctx{cert = "client"}, "127.0.0.1")
      w:write("ping")
      assert.equal("ping", await(r:readexactly(4)))
      close(w)
      assert.equal("SNI -\n", await(p.stdout:readline()))
      assert.equal("PEER luaio client\n", await(p.stdout:readline()))
    end)))
  end)

  describe("luaio's server", function()
    it("serves openssl s_client", aspec.async(with(function()
      local srv, port = echo_server()
      local out = await(peers.run({"openssl", "s_client", "-connect",
        "127.0.0.1:" .. port, "-CAfile", certs.path("ca.pem"),
        "-servername", "localhost", "-verify_hostname", "localhost",
        "-verify_return_error", "-ign_eof"}, "over s_client\n"))
      assert.matches("Verify return code: 0 %(ok%)", out)
      assert.matches("New, TLSv1.3, Cipher is TLS_", out)
      assert.matches("echo: over s_client\n", out, 1, true)
      stop_server(srv)
    end)))

    it("serves curl", aspec.async(with(function()
      local srv = await(asyncio.start_server(async(function(r, w)
        repeat local line = await(r:readline())
        until line == "\r\n" or line == ""
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"
                .. "Connection: close\r\n\r\nhello, curl\n")
        await(w:drain())
        close(w)
      end), "127.0.0.1", 0, {ssl = server_ctx()}))
      local port = srv.sockets[1].port
      local out, err, code = await(peers.run{"curl", "-sS", "--cacert",
        certs.path("ca.pem"), "--resolve", "localhost:" .. port
        .. ":127.0.0.1", "https://localhost:" .. port .. "/"})
      assert.equal(0, code, err)
      assert.equal("hello, curl\n", out)
      stop_server(srv)
    end)))

    it("serves Python's ssl, asking for its certificate",
       aspec.async(with(function()
      local srv, port, seen = echo_server(server_ctx{
        verify = ssl.CERT_REQUIRED})
      local out, err, code = await(peers.py_client(port, "client"))
      assert.equal(0, code, out .. err)
      assert.equal("VERSION TLSv1.3\n", out:match("VERSION[^\n]*\n"))
      assert.equal("PEERCN localhost\n", out:match("PEERCN[^\n]*\n"))
      assert.equal("GOT echo: hello\n", out:match("GOT.*"))
      assert.same({{{"organizationName", "luaio"}},
                   {{"commonName", "luaio client"}}}, seen[1].subject)
      stop_server(srv)
    end)))

    it("CERT_OPTIONAL takes a client without a certificate",
       aspec.async(with(function()
      local srv, port, seen = echo_server(server_ctx{
        verify = ssl.CERT_OPTIONAL})
      local out, err, code = await(peers.py_client(port))
      assert.equal(0, code, out .. err)
      assert.equal("GOT echo: hello\n", out:match("GOT.*"))
      assert.same({false}, seen)
      stop_server(srv)
    end)))

    it("CERT_REQUIRED turns away a client without one, reporting it and " ..
       "serving on", aspec.async(with(function()
      local loop = asyncio.get_running_loop()
      local reported = loop:create_future()
      loop:set_exception_handler(function(_, ctx)
        reported:set_result(ctx)
      end)
      local srv, port, seen = echo_server(server_ctx{
        verify = ssl.CERT_REQUIRED})
      local out, _, code = await(peers.py_client(port))
      assert.equal(1, code)
      assert.matches("^VERSION.*ERROR SSLError.*CERTIFICATE_REQUIRED", out)
      local ctx = await(reported)
      assert.equal("Error on transport creation for incoming connection",
                   ctx.message)
      assert.equal("PEER_DID_NOT_RETURN_A_CERTIFICATE", ctx.exception.reason)
      assert.same({}, seen)
      -- the next client is served
      out = await(peers.py_client(port, "client"))
      assert.equal("GOT echo: hello\n", out:match("GOT.*"))
      stop_server(srv)
    end)))
  end)
end)
