-- spec/http_tls_spec.lua: asyncio.http over TLS: the client fetching
-- https:// from our own web server (TCPSite with ssl_context) and from
-- Python's aiohttp on Python's ssl, certificates verified by default
-- (an untrusted or misnamed one fails with aiohttp's error classes),
-- `ssl = false` and unverifying contexts, curl against our https server,
-- and WebSockets over wss://. Certificates: spec/fixtures/certs.lua (a
-- test CA, a server certificate for 127.0.0.1 and localhost, one for
-- another host).
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local ssl = require "asyncio.ssl"
local certs = dofile("spec/fixtures/certs.lua")
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await

local function app_under_test()
  local app = web.Application()
  app.router:add_get("/hello", async(function(request)
    return web.Response{text = "hi over " .. request.scheme}
  end))
  app.router:add_post("/echo", async(function(request)
    return web.Response{body = await(request:read())}
  end))
  app.router:add_get("/ws", async(function(request)
    local ws = web.WebSocketResponse()
    await(ws:prepare(request))
    for msg in ws:iter() do
      if msg.type == http.WSMsgType.TEXT then
        await(ws:send_str("echo:" .. msg.data))
      end
    end
    return ws
  end))
  return app
end

--- Our web server on a free port with TLS from ctx: runner, base URL.
local function start(ctx)
  local runner, port = await(peers.serve(app_under_test(), nil,
                                        {ssl_context = ctx}))
  return runner, "https://127.0.0.1:" .. port
end

--- A server context holding the certificate `name` (.pem, .key).
local function server_ctx(name)
  local ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
  ctx:load_cert_chain(certs.path(name .. ".pem"), certs.path(name .. ".key"))
  return ctx
end

--- The error a GET of url raises (it must raise).
local function get_error(session, url, opts)
  local ok, e = pcall(await, session:get(url, opts))
  assert.is_false(ok, "the request succeeded")
  return e
end

local function assert_cert_error(e, code)
  assert.is_true(asyncio.iserror(e, http.ClientConnectorCertificateError),
                 tostring(e))
  -- aiohttp's tree: a ClientSSLError, a ClientConnectorError, and an
  -- ssl.SSLCertVerificationError (ssl.CertificateError)
  assert.is_true(asyncio.iserror(e, http.ClientSSLError))
  assert.is_true(asyncio.iserror(e, http.ClientConnectorError))
  assert.is_true(asyncio.iserror(e, ssl.SSLCertVerificationError))
  assert.is_true(asyncio.iserror(e, ssl.SSLError))
  assert.is_true(asyncio.iserror(e, asyncio.OSError))
  assert.is_true(asyncio.iserror(e.certificate_error,
                                 ssl.SSLCertVerificationError))
  assert.equal(code, e.certificate_error.verify_code)
  assert.equal(e.certificate_error, e.os_error)
end

--- Our server reports each client that gave up on its certificate to
-- the loop's exception handler and serves on (as asyncio in debug mode;
-- see docs/tls.md). Collects those reports: wait(n) waits for the n-th
-- and checks that each is such a handshake failure.
local function handshake_reports()
  local loop = asyncio.get_running_loop()
  local seen, want, done = {}, nil, loop:create_future()
  loop:set_exception_handler(function(_, ctx)
    seen[#seen + 1] = ctx
    if want and #seen >= want and not done:done() then
      done:set_result(true)
    end
  end)
  return {wait = function(n)
    want = n
    if #seen < n then await(asyncio.wait_for(done, 5)) end
    assert.equal(n, #seen)
    for _, ctx in ipairs(seen) do
      assert.equal("Error on transport creation for incoming connection",
                   ctx.message)
      assert.is_true(asyncio.iserror(ctx.exception, ssl.SSLError),
                     tostring(ctx.exception))
    end
  end}
end

describe("asyncio.http over TLS", function()
  teardown(function() peers.stop() end)

  it("gets from our web server over https, trusting its CA",
     aspec.async(function()
    local runner, base = start(certs.server_ctx())
    local s <close> = http.ClientSession{base_url = base}
    local ctx = certs.client_ctx()
    local r <close> = await(s:get("/hello", {ssl = ctx}))
    assert.equal(200, r.status)
    assert.equal("hi over https", await(r:text()))
    local big = ("0123456789abcdef"):rep(20000) -- 320 KB each way
    local r2 <close> = await(s:post("/echo", {data = big, ssl = ctx}))
    assert.equal(big, await(r2:read()))
    await(runner:cleanup())
  end))

  it("verifies certificates by default: an untrusted CA fails with "
     .. "ClientConnectorCertificateError", aspec.async(function()
    local reports = handshake_reports()
    local runner, base = start(certs.server_ctx())
    local s <close> = http.ClientSession()
    -- the system's CAs do not know the test CA: code 20
    assert_cert_error(get_error(s, base .. "/hello"), 20)
    assert_cert_error(get_error(s, base .. "/hello", {ssl = true}), 20)
    -- the server goes on serving
    local r <close> = await(s:get(base .. "/hello",
                                  {ssl = certs.client_ctx()}))
    assert.equal("hi over https", await(r:text()))
    reports.wait(2)
    await(runner:cleanup())
  end))

  it("accepts any certificate with ssl = false or a context that does "
     .. "not verify", aspec.async(function()
    local reports = handshake_reports()
    local runner, base = start(certs.server_ctx())
    local s <close> = http.ClientSession()
    local r <close> = await(s:get(base .. "/hello", {ssl = false}))
    assert.equal("hi over https", await(r:text()))
    local ctx = ssl.create_default_context()
    ctx.check_hostname = false
    ctx.verify_mode = ssl.CERT_NONE
    local r2 <close> = await(s:get(base .. "/hello", {ssl = ctx}))
    assert.equal("hi over https", await(r2:text()))
    -- a connection that was not verified is never given to a request
    -- that verifies
    assert_cert_error(get_error(s, base .. "/hello"), 20)
    reports.wait(1)
    await(runner:cleanup())
  end))

  it("fails on a certificate for another host name", aspec.async(function()
    local reports = handshake_reports()
    local runner, base = start(server_ctx("wronghost"))
    local s <close> = http.ClientSession()
    local e = get_error(s, base .. "/hello", {ssl = certs.client_ctx()})
    -- the URL names an IP address: OpenSSL's code 64, "IP address mismatch"
    assert_cert_error(e, 64)
    assert.matches("IP address mismatch", e.certificate_error.verify_message)
    -- another CA's certificate for the right name fails too
    local runner2, base2 = start(server_ctx("rogue"))
    assert_cert_error(get_error(s, base2 .. "/hello",
                                {ssl = certs.client_ctx()}), 20)
    reports.wait(2)
    await(runner:cleanup())
    await(runner2:cleanup())
  end))

  it("fails with ClientConnectorSSLError, an ssl.SSLError, on a server "
     .. "that does not speak TLS", aspec.async(function()
    local runner, port = await(peers.serve(app_under_test()))
    local s <close> = http.ClientSession()
    local e = get_error(s, "https://127.0.0.1:" .. port .. "/hello",
                        {ssl = certs.client_ctx()})
    assert.is_true(asyncio.iserror(e, http.ClientConnectorSSLError),
                   tostring(e))
    assert.is_true(asyncio.iserror(e, http.ClientSSLError))
    assert.is_true(asyncio.iserror(e, ssl.SSLError))
    assert.is_false(asyncio.iserror(e, ssl.SSLCertVerificationError))
    assert.is_true(asyncio.iserror(e.os_error, ssl.SSLError))
    await(runner:cleanup())
  end))

  it("talks to Python's aiohttp on Python's ssl, keeping the connection",
     aspec.async(function()
    local base = await(peers.aiohttp_tls(certs.path("server.pem"),
                                         certs.path("server.key")))
    local ctx = certs.client_ctx()
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:get("/hello", {ssl = ctx}))
    assert.equal("Hello, world", await(r:text()))
    -- the client's port, twice: one kept TLS connection
    local p1 = await(await(s:get("/peer", {ssl = ctx})):text())
    local p2 = await(await(s:get("/peer", {ssl = ctx})):text())
    assert.equal(p1, p2)
    local v = await(await(s:post("/echo", {json = {a = 1}, ssl = ctx})):json())
    assert.equal("POST", v.method)
    assert.equal('{"a":1}', v.body)
    assert_cert_error(get_error(s, "/hello"), 20)
  end))

  it("serves curl --cacert; curl without the CA refuses", aspec.async(function()
    local reports = handshake_reports()
    local runner, base = start(certs.server_ctx())
    local out, code = await(peers.run{"curl", "-s", "--cacert",
      certs.path("ca.pem"), base .. "/hello"})
    assert.equal(0, code)
    assert.equal("hi over https", out)
    local _, code2 = await(peers.run{"curl", "-s", base .. "/hello"})
    assert.equal(60, code2) -- CURLE_PEER_FAILED_VERIFICATION
    reports.wait(1)
    await(runner:cleanup())
  end))

  it("opens WebSockets over wss://", aspec.async(function()
    local reports = handshake_reports()
    local runner, base = start(certs.server_ctx())
    local s <close> = http.ClientSession()
    local wss = base:gsub("^https", "wss")
    local ws = await(s:ws_connect(wss .. "/ws", {ssl = certs.client_ctx()}))
    await(ws:send_str("one"))
    assert.equal("echo:one", await(ws:receive_str()))
    await(ws:close())
    assert.is_true(ws.closed)
    local ok, e = pcall(await, s:ws_connect(wss .. "/ws"))
    assert.is_false(ok)
    assert_cert_error(e, 20)
    -- and to Python's aiohttp
    local pbase = await(peers.aiohttp_tls(certs.path("server.pem"),
                                          certs.path("server.key")))
    local pws = await(s:ws_connect(pbase:gsub("^https", "wss") .. "/ws",
                                   {ssl = certs.client_ctx()}))
    await(pws:send_str("two"))
    assert.equal("echo:two", await(pws:receive_str()))
    await(pws:close())
    reports.wait(1)
    await(runner:cleanup())
  end))
end)
