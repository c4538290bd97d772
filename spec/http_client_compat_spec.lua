-- spec/http_client_compat_spec.lua: asyncio.http's ClientSession where an
-- audit against aiohttp 3.8 found it differed: credentials across
-- redirects, BasicAuth, cookies and option checks, reads after release,
-- max_redirects, ClientResponseError, ServerTimeoutError, json(), the
-- response's attributes, params quoting, the total timeout, URL
-- requoting and methods that are no token. The server is
-- asyncio.http.web (an echo of what it received) and raw sockets for
-- malformed answers.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror

local err_of = dofile("spec/helpers.lua").await_error

-- The app: /echo answers {method, target, headers = {{name, value}...}};
-- /redir?to=URL a 302 there; /chain/N N redirects; /ct?ct=T&body=B;
-- /slowbody sends 5 bytes, then the rest 2 s later.
local function echo_app()
  local app = web.Application()
  app.router:add_route("*", "/echo", peers.echo)
  app.router:add_get("/redir", async(function(request)
    return web.Response{status = 302,
      headers = {Location = request.query.to}}
  end))
  app.router:add_get("/chain/{n}", async(function(request)
    local n = tonumber(request.match_info.n)
    if n == 0 then return web.Response{text = "end"} end
    return web.Response{status = 302,
      headers = {Location = "/chain/" .. (n - 1)}}
  end))
  app.router:add_get("/ct", async(function(request)
    return web.Response{body = request.query.body or '{"a": 1}',
      headers = {["Content-Type"] = request.query.ct}}
  end))
  app.router:add_get("/status/{n}", async(function(request)
    return web.Response{status = tonumber(request.match_info.n),
      text = "status"}
  end))
  app.router:add_get("/slowbody", async(function(request)
    local resp = web.StreamResponse()
    resp.content_length = 10
    await(resp:prepare(request))
    await(resp:write("12345"))
    await(asyncio.sleep(2))
    await(resp:write("67890"))
    await(resp:write_eof())
    return resp
  end))
  return app
end

-- serve() -> base URL ("http://127.0.0.1:PORT"), runner
local serve = async(function()
  local runner, port = await(peers.serve(echo_app()))
  return "http://127.0.0.1:" .. port, runner, port
end)

local received = peers.received

-- A server answering every request with the bytes `answer`: its base URL
local raw_server = async(function(answer)
  local srv = await(asyncio.start_server(async(function(r, w)
    await(r:readuntil("\r\n\r\n"))
    w:write(answer)
    await(w:drain())
    w:close()
  end), "127.0.0.1", 0))
  return "http://127.0.0.1:" .. srv.sockets[1].port, srv
end)

describe("asyncio.http client, as aiohttp", function()
  teardown(peers.stop)

  it("drops a session's Authorization on a redirect to another host",
     aspec.async(function()
    local base, runner, port = await(serve())
    local s <close> = http.ClientSession{
      headers = {Authorization = "Bearer sess"}}
    local other = ("http://localhost:%d/echo"):format(port)
    local r <close> = await(s:get(base .. "/redir", {params = {to = other}}))
    local v = await(r:json())
    assert.equal(other, r.url)
    assert.is_nil(received(v, "Authorization"))
    -- the same host keeps it
    local r2 <close> = await(s:get(base .. "/redir",
                                   {params = {to = "/echo"}}))
    assert.equal("Bearer sess", received(await(r2:json()), "Authorization"))
    -- a request's auth and cookies do not follow either
    local r3 <close> = await(s:get(base .. "/redir", {params = {to = other},
      headers = {Authorization = "Bearer req"}, cookies = {c = "1"}}))
    v = await(r3:json())
    assert.is_nil(received(v, "Authorization"))
    assert.is_nil(received(v, "Cookie"))
    await(runner:cleanup())
  end))

  it("sends BasicAuth from auth =, the session and the URL",
     aspec.async(function()
    local base, runner, port = await(serve())
    local a = http.BasicAuth("user", "pa:ss")
    assert.equal("Basic dXNlcjpwYTpzcw==", a:encode())
    assert.equal("Basic dTo=", http.BasicAuth("u"):encode())
    -- latin-1 by default, as aiohttp; utf-8 sends the bytes as they are
    assert.equal("Basic 6To=", http.BasicAuth("\u{e9}"):encode())
    assert.equal("Basic w6k6", http.BasicAuth("\u{e9}", "", "utf-8"):encode())
    local base64 = require("asyncio._http").base64
    assert.same({"", "Zg==", "Zm8=", "Zm9vYmFy"},
                {base64(""), base64("f"), base64("fo"), base64("foobar")})
    local e = select(2, pcall(http.BasicAuth, "a:b"))
    assert.is_true(iserror(e, asyncio.ValueError))
    local fu = http.BasicAuth.from_url("http://us%40r:p%3Aw@h/x")
    assert.same({"us@r", "p:w"}, {fu.login, fu.password})
    assert.is_nil(http.BasicAuth.from_url("http://h/x"))
    local s <close> = http.ClientSession()
    local r <close> = await(s:get(base .. "/echo", {auth = a}))
    assert.equal("Basic dXNlcjpwYTpzcw==",
                 received(await(r:json()), "Authorization"))
    -- credentials in the URL: the header, and not in the target or url
    local r2 <close> = await(s:get(
      ("http://u:p@127.0.0.1:%d/echo?x=1"):format(port)))
    local v = await(r2:json())
    assert.equal("Basic dTpw", received(v, "Authorization"))
    assert.equal("/echo?x=1", v.target)
    assert.equal(base .. "/echo?x=1", r2.url)
    local s2 <close> = http.ClientSession{auth = http.BasicAuth("a", "b")}
    local r3 <close> = await(s2:get(base .. "/echo"))
    assert.equal("Basic YTpi", received(await(r3:json()), "Authorization"))
    -- two sources of credentials: ValueError, as aiohttp
    e = err_of(s:get(("http://u:p@127.0.0.1:%d/echo"):format(port),
                     {auth = a}))
    assert.is_true(iserror(e, asyncio.ValueError))
    assert.matches("Cannot combine AUTH argument", e.message)
    e = err_of(s:get(base .. "/echo", {auth = a,
      headers = {Authorization = "Bearer x"}}))
    assert.is_true(iserror(e, asyncio.ValueError))
    e = err_of(s2:get(base .. "/echo",
      {headers = {Authorization = "Bearer x"}}))
    assert.matches("Cannot combine AUTHORIZATION header", e.message)
    await(runner:cleanup())
  end))

  it("sends cookies of the session and of a request; refuses unknown "
     .. "options", aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{cookies = {sc = "1"}}
    local r <close> = await(s:get(base .. "/echo"))
    assert.equal("sc=1", received(await(r:json()), "Cookie"))
    local r2 <close> = await(s:get(base .. "/echo", {cookies = {c1 = "v1",
      sc = "2"}, headers = {Cookie = "own=x"}}))
    assert.equal("c1=v1; own=x; sc=2", received(await(r2:json()), "Cookie"))
    -- nothing to add: the caller's own field goes as given, as aiohttp's
    local bare <close> = http.ClientSession()
    local own = 'b=2; a=1; flag; d="q"'
    local r3 <close> = await(bare:get(base .. "/echo",
                                      {headers = {Cookie = own}}))
    assert.equal(own, received(await(r3:json()), "Cookie"))
    assert.has_error(function() s:get(base, {alow_redirects = false}) end,
      "bad argument #2 to 'get' (unknown option 'alow_redirects')")
    assert.has_error(function() s:request("GET", base, {nope = 1}) end,
      "bad argument #3 to 'request' (unknown option 'nope')")
    assert.has_error(function() http.ClientSession{limt = 1} end,
      "bad argument #1 to 'ClientSession' (unknown option 'limt')")
    -- every documented option is taken
    local s2 <close> = http.ClientSession{base_url = base, headers = {},
      timeout = http.ClientTimeout{total = 5}, limit = 10,
      limit_per_host = 2, raise_for_status = false,
      cookie_jar = http.CookieJar(), auth = http.BasicAuth("a"),
      cookies = {}, auto_decompress = true}
    local r3 <close> = await(s2:post("/echo", {params = {q = 1},
      headers = {}, data = "x", allow_redirects = true, max_redirects = 5,
      timeout = 5, raise_for_status = true, ssl = false, cookies = {}}))
    assert.equal(200, r3.status)
    await(runner:cleanup())
  end))

  it("ClientTimeout, CookieJar and json() refuse unknown options; "
     .. "request errors count arguments as Lua does", aspec.async(function()
    local base, runner = await(serve())
    assert.has_error(function() http.ClientTimeout{totl = 5} end,
      "bad argument #1 to 'ClientTimeout' (unknown option 'totl')")
    -- aiohttp's, which luaio does not have
    assert.has_error(function() http.ClientTimeout{ceil_threshold = 5} end,
      "bad argument #1 to 'ClientTimeout' (unknown option 'ceil_threshold')")
    assert.has_error(function() http.CookieJar{unsave = true} end,
      "bad argument #1 to 'CookieJar' (unknown option 'unsave')")
    assert.has_error(function() http.CookieJar{quote_cookie = false} end,
      "bad argument #1 to 'CookieJar' (unknown option 'quote_cookie')")
    local t = http.ClientTimeout{total = 5, connect = 4, sock_read = 3,
                                 sock_connect = 2}
    assert.same({5, 4, 3, 2}, {t.total, t.connect, t.sock_read,
                               t.sock_connect})
    assert.is_true(http.CookieJar{unsafe = true}.unsafe)
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:get("/ct", {params = {ct = "text/plain"}}))
    assert.has_error(function() r:json{content_typ = false} end,
      "bad argument #1 to 'json' (unknown option 'content_typ')")
    assert.has_error(function() r:json{loadz = function() end} end,
      "bad argument #1 to 'json' (unknown option 'loadz')")
    assert.same({a = 1}, await(r:json{content_type = false}))
    -- self counts when the call is not a method call, as in Lua's errors
    assert.has_error(function() s.get(s, "/echo", {alow = 1}) end,
      "bad argument #3 to 'get' (unknown option 'alow')")
    assert.has_error(function() s.request(s, "GET", "/echo", {alow = 1}) end,
      "bad argument #4 to 'request' (unknown option 'alow')")
    assert.has_error(function() http.request("GET", base, {alow = 1}) end,
      "bad argument #3 to 'request' (unknown option 'alow')")
    await(runner:cleanup())
  end))

  it("raises ClientConnectionError reading after release or close",
     aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession()
    local r = await(s:get(base .. "/status/200"))
    r:release()
    local e = err_of(r:read())
    assert.is_true(iserror(e, http.ClientConnectionError))
    assert.equal("Connection closed", e.message)
    r = await(s:get(base .. "/status/200"))
    r:close()
    assert.is_true(iserror(err_of(r.content:read()),
                           http.ClientConnectionError))
    r = await(s:get(base .. "/status/200"))
    assert.equal("status", await(r:read()))
    assert.equal("status", await(r:text())) -- kept
    r:release()
    assert.is_true(iserror(err_of(r:read()), http.ClientConnectionError))
    await(runner:cleanup())
  end))

  it("raises TooManyRedirects on reaching max_redirects (0: no limit)",
     aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base}
    local e = err_of(s:get("/chain/3", {max_redirects = 3}))
    assert.is_true(iserror(e, http.TooManyRedirects))
    assert.is_true(iserror(e, http.ClientResponseError))
    assert.same({0, ""}, {e.status, e.message})
    assert.equal(3, #e.history)
    assert.equal(base .. "/chain/3", e.request_info.real_url)
    assert.equal("http.TooManyRedirects: 0, message='', url='" .. base ..
                 "/chain/3'", tostring(e))
    e = err_of(s:get("/chain/5", {max_redirects = 2}))
    assert.equal(2, #e.history)
    local r <close> = await(s:get("/chain/3", {max_redirects = 0}))
    assert.same({200, 3}, {r.status, #r.history})
    local r2 <close> = await(s:get("/chain/3", {max_redirects = 4}))
    assert.equal(200, r2.status)
    await(runner:cleanup())
  end))

  it("fills ClientResponseError as aiohttp; malformed heads are 400",
     aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession()
    local r <close> = await(s:get(base .. "/status/404"))
    local ok, e = pcall(r.raise_for_status, r)
    assert.is_false(ok)
    assert.same({404, "Not Found"}, {e.status, e.message})
    assert.same({"GET", base .. "/status/404", base .. "/status/404"},
      {e.request_info.method, e.request_info.url, e.request_info.real_url})
    assert.equal("*/*", e.request_info.headers["Accept"])
    assert.equal("http.ClientResponseError: 404, message='Not Found', "
                 .. "url='" .. base .. "/status/404'", tostring(e))
    await(runner:cleanup())
    for _, answer in ipairs{"HTTP/1.1 abc OK\r\n\r\n",
                            "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"} do
      local url, srv = await(raw_server(answer))
      e = err_of(s:get(url .. "/x"))
      assert.is_true(iserror(e, http.ClientResponseError), tostring(e))
      assert.equal(400, e.status)
      assert.equal(url .. "/x", e.request_info.url)
      srv:close()
    end
  end))

  it("raises ServerTimeoutError, also an asyncio.TimeoutError, for "
     .. "sock_read and connect", aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base, limit = 1,
      timeout = http.ClientTimeout{sock_read = 0.2, connect = 0.2}}
    local r = await(s:get("/slowbody"))
    -- the only connection is taken: the next request cannot get one
    local e = err_of(s:get("/echo"))
    assert.is_true(iserror(e, http.ServerTimeoutError))
    assert.matches("^Connection timeout to host", e.message)
    e = err_of(r:read())
    assert.is_true(iserror(e, http.ServerTimeoutError))
    assert.is_true(iserror(e, http.ServerConnectionError))
    assert.is_true(iserror(e, http.ClientError))
    assert.is_true(iserror(e, asyncio.TimeoutError))
    assert.equal("Timeout on reading data from socket", e.message)
    assert.is_true(iserror(http.ServerDisconnectedError(),
                           http.ServerConnectionError))
    await(runner:cleanup())
  end))

  it("decodes +json types, raises ValueError for bad JSON and misuse",
     aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:get("/ct", {params = {
      ct = "application/vnd.api+json"}}))
    assert.same({a = 1}, await(r:json()))
    local r2 <close> = await(s:get("/ct", {params = {
      ct = "application/json", body = "{bad}"}}))
    local e = err_of(r2:json())
    assert.is_true(iserror(e, http.JSONDecodeError))
    assert.is_true(iserror(e, asyncio.ValueError))
    assert.not_matches("%.lua:%d+:", e.message)
    local r3 <close> = await(s:get("/ct", {params = {ct = "text/json"}}))
    e = err_of(r3:json())
    assert.is_true(iserror(e, http.ContentTypeError))
    assert.matches("unexpected mimetype: text/json", e.message)
    e = err_of(s:post("/echo", {data = "x", json = {a = 1}}))
    assert.is_true(iserror(e, asyncio.ValueError))
    for _, h in ipairs{{["X-A"] = "v\r\nX-Inj: 1"}, {["X\nB"] = "v"}} do
      e = err_of(s:get("/echo", {headers = h}))
      assert.is_true(iserror(e, asyncio.ValueError), tostring(e))
    end
    await(runner:cleanup())
  end))

  it("has aiohttp's response attributes", aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:get("/ct", {params = {
      ct = 'Text/HTML; Charset="ISO-8859-1"'}}))
    assert.same({true, "text/html", "ISO-8859-1", "iso-8859-1"},
      {r.ok, r.content_type, r.charset, r:get_encoding()})
    assert.same({1, 1, 1, 1}, {r.version.major, r.version.minor,
                               r.version[1], r.version[2]})
    assert.equal(r.url, r.real_url)
    assert.same({"GET", r.url}, {r.request_info.method, r.request_info.url})
    -- real_url keeps the fragment asked for, requoted; url drops it
    local rf <close> = await(s:get("/ct#sec tion"))
    assert.equal(base .. "/ct", rf.url)
    assert.equal(base .. "/ct#sec%20tion", rf.real_url)
    assert.equal(rf.real_url, rf.request_info.real_url)
    assert.same({}, r.cookies)
    local r2 <close> = await(s:get("/status/404"))
    assert.is_false(r2.ok)
    await(runner:cleanup())
    local url, srv = await(raw_server("HTTP/1.1 200 OK\r\nSet-Cookie: a=1"
      .. "\r\nSet-Cookie: b=\"2\"; Path=/\r\nContent-Length: 0\r\n\r\n"))
    local r3 <close> = await(s:get(url))
    assert.same({a = "1", b = "2"}, r3.cookies)
    assert.same({"application/octet-stream", nil, "utf-8"},
                {r3.content_type, r3.charset, r3:get_encoding()})
    srv:close()
  end))

  it("writes JSON numbers exactly, as Python's json: integers of 15 "
     .. "digits and more, floats of 15 to 17 (json=, json_response)",
     aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base}
    local value = {id = 1234567890123456789, n = 100000000000000,
                   f = 0.1 + 0.2, small = {1, 2.5, "x"}}
    local r <close> = await(s:post("/echo", {json = value}))
    local body = await(r:json()).body
    -- the text the server got (cjson's order of keys), and what it said
    -- back through json_response, read as numbers
    for _, want in ipairs{'"id":1234567890123456789',
                          '"n":100000000000000',
                          '"f":0.30000000000000004',
                          '"small":[1,2.5,"x"]'} do
      assert.truthy(body:find(want, 1, true), body)
    end
    local web = require "asyncio.http.web"
    local text = web.json_response({big = -123456789012345678}).text
    assert.equal('{"big":-123456789012345678}', text)
    await(runner:cleanup())
  end))

  it("reads JSON integers of any length up to 64 bits exactly, as "
     .. "Python's int (resp:json, request:json)", aspec.async(function()
    local web = require "asyncio.http.web"
    local app = web.Application()
    local TEXT = '{"id": 1234567890123456789, "f": 0.5, "n": null, '
      .. '"s": "a\\u00e9", "l": [-9007199254740993, 1.0]}'
    app.router:add_get("/big", function()
      return web.Response{text = TEXT, content_type = "application/json"}
    end)
    local seen
    app.router:add_post("/in", async(function(request)
      seen = await(request:json())
      return web.Response{text = "ok"}
    end))
    local runner, port = await(peers.serve(app))
    local base = "http://127.0.0.1:" .. port
    local s <close> = http.ClientSession{base_url = base}
    local v = await(await(s:get("/big")):json())
    assert.same({1234567890123456789, 0.5, true, "a\u{e9}",
                 -9007199254740993, 1},
                {v.id, v.f, v.n == http.null, v.s, v.l[1], v.l[2]})
    assert.equal("integer", math.type(v.l[2]))
    await(s:post("/in", {data = TEXT}))
    assert.equal(1234567890123456789, seen.id)
    assert.equal("integer", math.type(seen.id))
    await(runner:cleanup())
  end))

  it("quotes params as yarl; checks argument types",
     aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base}
    local function target(params)
      local r <close> = await(s:get("/echo", {params = params}))
      return await(r:json()).target
    end
    assert.equal("/echo?x=1&y=a+b", target("x=1&y=a b"))
    assert.equal("/echo?a=1&b=%2520c+d", target("a=1&b=%20c+d"))
    assert.equal("/echo?a=1%0D%0AX:+1", target("a=1\r\nX: 1"))
    assert.equal("/echo?q=%C3%A9&r=a/b?c", target("q=\u{e9}&r=a/b?c"))
    assert.equal("/echo?q=a+b%26c/d?e:f~g%2B", target({q = "a b&c/d?e:f~g+"}))
    assert.has_error(function() s.get(base) end,
      "bad argument #1 to 'get' (http.ClientSession expected, got string)")
    assert.has_error(function() s:get("/echo", {params = 5}) end,
      "bad argument #2 to 'get' (field 'params': string or table "
      .. "expected, got number)")
    assert.has_error(function() s:get("/echo", {max_redirects = "x"}) end,
      "bad argument #2 to 'get' (field 'max_redirects': non-negative "
      .. "integer expected, got string)")
    assert.has_error(function() s:get("/echo", {timeout = "x"}) end,
      "bad argument #2 to 'get' (field 'timeout': ClientTimeout or number "
      .. "expected, got string)")
    assert.has_error(function() http.ClientSession{limit = "x"} end,
      "bad argument #1 to 'ClientSession' (field 'limit': non-negative "
      .. "integer expected, got string)")
    -- a header's value is a string (or a number): a list of values is a
    -- TypeError, as aiohttp's, not the text "table: 0x..."
    for _, v in ipairs{{"1", "2"}, true} do
      local e = err_of(s:get("/echo", {headers = {["X-A"] = v}}))
      assert.is_true(iserror(e, asyncio.TypeError), tostring(e))
      assert.equal("header X-A: a string expected, got " .. type(v),
                   e.message)
    end
    local echoed = await(await(s:get("/echo", {headers = {["X-N"] = 5}}))
      :json())
    local xn
    for _, pair in ipairs(echoed.headers) do
      if pair[1] == "X-N" then xn = pair[2] end
    end
    assert.equal("5", xn)
    -- a number is the total, as aiohttp 3.8 takes it
    local r = await(s:get("/slowbody", {timeout = 0.1}))
    local e = err_of(r:read())
    assert.is_true(iserror(e, asyncio.TimeoutError))
    local s2 <close> = http.ClientSession{base_url = base, timeout = 5}
    assert.equal(5, s2.timeout.total)
    await(runner:cleanup())
  end))

  it("bounds the body's reading by the total timeout",
     aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base,
      timeout = http.ClientTimeout{total = 0.3}}
    -- the head comes at once and the body's end 2 s later: without the
    -- bound the read would return the body
    local r = await(s:get("/slowbody"))
    local e = err_of(r:read())
    assert.is_true(iserror(e, asyncio.TimeoutError))
    assert.is_false(iserror(e, http.ServerTimeoutError))
    await(runner:cleanup())
  end))

  it("requotes a URL's path and query as yarl, and drops dot segments",
     aspec.async(function()
    -- a raw server: records each request line, redirects /go to a
    -- Location holding a space and non-ASCII
    local lines = {}
    local srv = await(asyncio.start_server(async(function(r, w)
      local line = await(r:readuntil("\r\n"))
      await(r:readuntil("\r\n\r\n"))
      lines[#lines + 1] = line:sub(1, -3)
      local extra = line:find("^GET /go ") and "Location: /to é?q=ü\r\n"
        or ""
      w:write((extra ~= "" and "HTTP/1.1 302 Found\r\n" or
        "HTTP/1.1 200 OK\r\n") .. extra .. "Content-Length: 0\r\n" ..
        "Connection: close\r\n\r\n")
      await(w:drain())
      w:close()
    end), "127.0.0.1", 0))
    local base = "http://127.0.0.1:" .. srv.sockets[1]:getsockname()[2]
    local s <close> = http.ClientSession()
    -- the request targets aiohttp 3.8 sends for the same URLs: a query's
    -- space is "+", a %XX of a byte that may go as it is is decoded (%4a
    -- is J, %2e%2e a segment that drops), the other ones upper-cased
    local cases = {
      {"/p a/é?q=a b&x=%zz#frag", "/p%20a/%C3%A9?q=a+b&x=%25zz"},
      {'/a"b<c>d`e{f}g|h^i%zz%4a', "/a%22b%3Cc%3Ed%60e%7Bf%7Dg%7Ch%5Ei"
        .. "%25zzJ"},
      {"/p%2Fq/../r/./s?x=1", "/r/s?x=1"},
      {"/x/y/%2e%2e/z%2f?a=%2f%3d%7e", "/x/z%2F?a=/%3D~"},
    }
    for _, c in ipairs(cases) do
      local r = await(s:get(base .. c[1]))
      assert.equal(base .. c[2], r.url)
      r:close()
    end
    local r = await(s:get(base .. "/go"))
    r:close()
    assert.equal(base .. "/to%20%C3%A9?q=%C3%BC", r.url)
    assert.same({"GET " .. cases[1][2] .. " HTTP/1.1",
      "GET " .. cases[2][2] .. " HTTP/1.1",
      "GET " .. cases[3][2] .. " HTTP/1.1",
      "GET " .. cases[4][2] .. " HTTP/1.1", "GET /go HTTP/1.1",
      "GET /to%20%C3%A9?q=%C3%BC HTTP/1.1"}, lines)
    local e = err_of(s:get(base .. "/a\nb"))
    assert.is_true(iserror(e, http.InvalidURL))
    srv:close()
  end))

  it("refuses a method that is not an HTTP token at the call, as aiohttp "
     .. "3.9", aspec.async(function()
    local s <close> = http.ClientSession()
    for _, m in ipairs{"G ET", "", "GET /x HTTP/1.1\r\nX: y\r\n\r\nGET",
                       "PO\0ST", "GÉT"} do
      local ok, e = pcall(s.request, s, m, "http://127.0.0.1:1/")
      assert.is_false(ok, m)
      assert.is_true(iserror(e, asyncio.ValueError), tostring(e))
      assert.matches("^ValueError: Method cannot contain non%-token " ..
        "characters '[^\r\n]*'$", tostring(e))
    end
    -- a token goes on: here to a port where nothing listens
    local e = err_of(s:request("X-CUSTOM.1~", "http://127.0.0.1:1/"))
    assert.is_true(iserror(e, http.ClientConnectorError), tostring(e))
  end))

  it("quotes cookie values as aiohttp's SimpleCookie, and sends a received "
     .. "one back as it came", aspec.async(function()
    local seen
    local srv = await(asyncio.start_server(async(function(r, w)
      local head = await(r:readuntil("\r\n\r\n"))
      seen = head:match("\r\n[Cc]ookie: ([^\r]*)")
      w:write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" ..
        "Connection: close\r\n\r\n")
      await(w:drain())
      w:close()
    end), "127.0.0.1", 0))
    local base = "http://127.0.0.1:" .. srv.sockets[1]:getsockname()[2]
    local s <close> = http.ClientSession{cookies = {s = "q v", t = "plain"}}
    local r = await(s:get(base .. "/x",
      {cookies = {f = "x y", g = "a;b", h = '"', k = "1"}}))
    r:close()
    -- what aiohttp 3.8 sends for the same values: ';' cannot split one
    assert.equal('f="x y"; g="a\\073b"; h="\\""; k=1; s="q v"; t=plain',
      seen)
    -- a Set-Cookie value goes back as it came, quotes and all
    local jar = http.CookieJar()
    local u = http.URL.parse("http://h.test/")
    jar:update_cookies({'q="x y"; Path=/', "p=1"}, u)
    assert.equal('p=1; q="x y"', jar:filter_cookies(u))
    assert.equal("x y", jar:cookies()[2].value)
    srv:close()
  end))

  it("takes a timeout of 0 as no bound, as aiohttp", aspec.async(function()
    local runner, base = await(peers.start(echo_app()))
    local s <close> = http.ClientSession{timeout = http.ClientTimeout{
      total = 0, connect = 0, sock_read = 0, sock_connect = 0}}
    for _, t in ipairs{false, 0, http.ClientTimeout{total = 0},
        http.ClientTimeout{sock_read = 0, connect = 0, sock_connect = 0}} do
      local r = await(s:get(base .. "/status/200", {timeout = t or nil}))
      assert.equal("status", await(r:text()))
    end
    assert.equal(0, http.ClientTimeout{total = 0}.total) -- kept as given
    await(runner:cleanup())
  end))
end)
