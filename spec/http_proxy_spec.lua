-- spec/http_proxy_spec.lua: the client through an HTTP proxy (Debian's
-- tinyproxy): plain http requests sent to the proxy in absolute form,
-- https and WebSockets through a CONNECT tunnel, proxy credentials, the
-- proxy of the environment (trust_env, no_proxy), and the errors of a
-- proxy that cannot be reached or refuses.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local certs = dofile("spec/fixtures/certs.lua")
local peers = dofile("spec/fixtures/http_peers.lua")
local proc = dofile("spec/fixtures/proc.lua")
local async, await = asyncio.async, asyncio.await

--- GET url through proxy (opts: the request's): the echo peer's answer.
local function echo_via(url, opts)
  local s <close> = http.ClientSession()
  local r = await(s:get(url, opts))
  assert.equal(200, r.status)
  return await(r:json())
end

describe("the client through a proxy", function()
  teardown(peers.stop)

  it("sends plain http requests to the proxy in absolute form",
     aspec.async(function()
    local base = await(peers.aiohttp())
    local proxy = "http://127.0.0.1:" .. await(peers.tinyproxy())
    local v = echo_via(base .. "/echo?q=1", {proxy = proxy})
    assert.equal("/echo", v.path)
    assert.same({{"q", "1"}}, v.query)
    -- tinyproxy says it passed the request on
    assert.truthy((peers.received(v, "Via") or ""):find("tinyproxy", 1,
                                                         true))
    assert.is_nil(peers.received(v, "Proxy-Authorization"))
  end))

  it("tunnels https through CONNECT and verifies the server",
     aspec.async(function()
    local base = await(peers.aiohttp_tls(certs.path("server.pem"),
                                         certs.path("server.key")))
    local proxy = "http://127.0.0.1:" .. await(peers.tinyproxy())
    local s <close> = http.ClientSession{proxy = proxy}
    local r = await(s:get(base .. "/hello", {ssl = certs.client_ctx()}))
    assert.equal("Hello, world", await(r:text()))
    -- inside the tunnel the proxy sees nothing: no Via
    local v = await((await(s:get(base .. "/echo",
                                 {ssl = certs.client_ctx()}))):json())
    assert.is_nil(peers.received(v, "Via"))
    -- the system's CAs do not know the test CA
    local ok, e = pcall(await, s:get(base .. "/hello"))
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, http.ClientConnectorCertificateError),
                   tostring(e))
  end))

  it("sends the proxy's credentials, from proxy_auth or its URL",
     aspec.async(function()
    local base = await(peers.aiohttp())
    local tls = await(peers.aiohttp_tls(certs.path("server.pem"),
                                        certs.path("server.key")))
    local port = await(peers.tinyproxy{user = "ada", password = "s3cret"})
    local proxy = "http://127.0.0.1:" .. port
    local s <close> = http.ClientSession()
    -- none: the proxy answers 407 itself, or refuses the tunnel
    local r = await(s:get(base .. "/echo", {proxy = proxy}))
    assert.equal(407, r.status)
    r:release()
    local ok, e = pcall(await, s:get(tls .. "/hello",
      {proxy = proxy, ssl = certs.client_ctx()}))
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, http.ClientHttpProxyError), tostring(e))
    assert.is_true(asyncio.iserror(e, http.ClientResponseError))
    assert.equal(407, e.status)
    -- given: both work, and the origin never sees them
    local auth = http.BasicAuth("ada", "s3cret")
    local v = echo_via(base .. "/echo", {proxy = proxy, proxy_auth = auth})
    assert.is_nil(peers.received(v, "Proxy-Authorization"))
    v = echo_via(base .. "/echo",
                 {proxy = "http://ada:s3cret@127.0.0.1:" .. port})
    assert.truthy(peers.received(v, "Via"))
    r = await(s:get(tls .. "/hello", {proxy = proxy, proxy_auth = auth,
                                     ssl = certs.client_ctx()}))
    assert.equal("Hello, world", await(r:text()))
  end))

  it("opens WebSockets through a tunnel", aspec.async(function()
    local app = web.Application()
    app.router:add_get("/ws", async(function(request)
      local ws = web.WebSocketResponse()
      await(ws:prepare(request))
      for msg in ws:iter() do await(ws:send_str("echo:" .. msg.data)) end
      return ws
    end))
    local runner, port = await(peers.serve(app))
    local proxy = "http://127.0.0.1:" .. await(peers.tinyproxy())
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect("ws://127.0.0.1:" .. port .. "/ws",
                                  {proxy = proxy}))
    await(ws:send_str("hi"))
    assert.equal("echo:hi", await(ws:receive()).data)
    await(ws:close())
    await(runner:cleanup())
  end))

  it("takes the environment's proxy with trust_env, unless no_proxy "
     .. "names the host", aspec.async(function()
    local base = await(peers.aiohttp())
    local proxy = "http://127.0.0.1:" .. await(peers.tinyproxy())
    local script = [[
      local asyncio = require "asyncio"
      local http = require "asyncio.http"
      asyncio.run(asyncio.async(function()
        for _, trust in ipairs{false, true} do
          local s <close> = http.ClientSession{trust_env = trust}
          local r = asyncio.await(s:get(arg[1] .. "/echo"))
          local via = false
          for _, kv in ipairs(asyncio.await(r:json()).headers) do
            if kv[1] == "Via" then via = true end
          end
          io.write(tostring(via), " ")
        end
      end)())
    ]]
    -- the environment of the spec (a sanitizer's options too), with the
    -- proxy variables this test sets and none of the machine's own
    local function run(no_proxy)
      local argv = {"env", "-u", "http_proxy", "-u", "no_proxy", "-u",
                    "NO_PROXY", "HTTP_PROXY=" .. proxy}
      if no_proxy then argv[#argv + 1] = "NO_PROXY=" .. no_proxy end
      for _, a in ipairs{proc.luaio, "-", base,
                         {stdin = asyncio.PIPE, stdout = asyncio.PIPE}} do
        argv[#argv + 1] = a
      end
      local p = await(asyncio.create_subprocess_exec(table.unpack(argv)))
      local out = await(p:communicate(script))
      assert.equal(0, p.returncode)
      return out
    end
    assert.equal("false true ", run())
    assert.equal("false false ", run("example.org,127.0.0.1"))
    assert.equal("false false ", run("*"))
    -- Python's urllib: an entry ends the host after a "." (so 0.0.1
    -- exempts 127.0.0.1), or names host:port
    assert.equal("false false ", run(".0.0.1"))
    assert.equal("false true ", run("27.0.0.1"))
    assert.equal("false false ", run("x," .. base:match("//(.*)$")))
  end))

  it("times out a proxy that never answers CONNECT as a connection",
     aspec.async(function()
    local srv = await(asyncio.start_server(async(function(r)
      await(r:read()) -- reads the CONNECT, never answers
    end), "127.0.0.1", 0))
    local s <close> = http.ClientSession()
    local ok, e = pcall(await, s:get("https://127.0.0.1:9/x", {
      proxy = "http://127.0.0.1:" .. srv.sockets[1].port,
      timeout = http.ClientTimeout{sock_connect = 0.2}}))
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, http.ConnectionTimeoutError),
                   tostring(e))
    srv:close()
  end))

  it("raises ClientProxyConnectionError for a proxy it cannot reach, "
     .. "and refuses other proxy schemes", aspec.async(function()
    local probe = await(asyncio.start_server(function() end, "127.0.0.1", 0))
    local port = probe.sockets[1].port
    probe:close()
    await(probe:wait_closed())
    local s <close> = http.ClientSession()
    local ok, e = pcall(await, s:get("http://127.0.0.1:9/x",
      {proxy = "http://127.0.0.1:" .. port}))
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, http.ClientProxyConnectionError),
                   tostring(e))
    assert.is_true(asyncio.iserror(e, http.ClientConnectorError))
    assert.equal(port, e.port)
    ok, e = pcall(await, s:get("http://127.0.0.1:9/x",
                               {proxy = "https://127.0.0.1:3128"}))
    assert.is_true(asyncio.iserror(e, asyncio.ValueError))
    assert.equal("Only http proxies are supported", e.message)
    assert.has_error(function() s:get("http://x/", {proxy = 5}) end,
      "bad argument #2 to 'get' (field 'proxy': string expected, got "
      .. "number)")
  end))
end)
