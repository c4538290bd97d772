-- spec/http_server_compat_spec.lua: asyncio.http.web where an aiohttp
-- audit found it apart (middlewares and the router's 404/405, cookie
-- quoting, Transfer-Encoding smuggling, CR/LF in responses, static
-- If-Modified-Since, closed WebSocket sends, %2F in {name}, request
-- fields, multipart forms, response defaults, the exception classes,
-- RouteTableDef and FileResponse, queries split at '&' only, a
-- StreamResponse's body within its Content-Length, set_status, response
-- bodies that are no string, HTTP exceptions' headers, field names with
-- whitespace, getone, route checks, errors after a head went out,
-- json_response's text and body, BasicAuth.decode, content_length,
-- query_string decoded, HTTP/1.0 answers); and what a third audit
-- found (absolute-form targets, no Host, keep_alive, returned
-- exceptions, the 405 and 413 constructors, Expect, chunked twice, long
-- targets). Each case names its audit item.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local web = require "asyncio.http.web"
local http = require "asyncio.http"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await

local logged

--- A started runner on a free port for app: runner, base URL, port.
local function start(app)
  local runner, port = await(peers.serve(app))
  return runner, "http://127.0.0.1:" .. port, port
end

--- Sends raw bytes, returns what the server sends until it closes (or
-- nil, "timeout" when it keeps the connection open 1 s).
local function raw(port, data)
  local r, w = await(asyncio.open_connection("127.0.0.1", port))
  w:write(data)
  local ok, out = pcall(await, asyncio.wait_for(r:read(), 1))
  w:close()
  if not ok then return nil, "timeout" end
  return out
end

local function get(url, opts)
  local s <close> = http.ClientSession()
  local r = await(s:get(url, opts))
  local body = await(r:text())
  return r, body
end

describe("asyncio.http.web (aiohttp audit)", function()
  teardown(peers.stop)
  before_each(function() logged = peers.capture_web_log() end)

  it("lets middlewares catch the router's 404 and 405 (item 1)",
     aspec.async(function()
    local order = {}
    local function mw(name)
      return async(function(req, handler)
        order[#order + 1] = name .. ">"
        local ok, r = pcall(await, handler(req))
        order[#order + 1] = "<" .. name
        if not ok then
          if asyncio.iserror(r, web.HTTPNotFound) then
            return web.Response{status = 404, text = "custom by " .. name}
          end
          error(r, 0)
        end
        return r
      end)
    end
    local app = web.Application{middlewares = {mw("A"), mw("B")}}
    app.router:add_get("/ok", async(function()
      return web.Response{text = "ok"}
    end))
    local runner, base = start(app)
    local r, body = get(base .. "/missing")
    assert.equal(404, r.status)
    assert.equal("custom by B", body)
    assert.equal("A> B> <B <A", table.concat(order, " "))
    local s <close> = http.ClientSession()
    r = await(s:post(base .. "/ok", {data = "x"}))
    assert.equal(405, r.status)
    assert.equal("GET,HEAD", r.headers["Allow"])
    await(runner:cleanup())
  end))

  it("quotes cookie values and refuses bad names and attributes (item 2)",
     function()
    local r = web.Response{text = "x"}
    r:set_cookie("sid", 'v; Domain=evil.com\1"\\\233 ,x')
    r:set_cookie("ok", "abc", {httponly = true, max_age = 5,
                               domain = "d.com"})
    assert.same({'sid="v\\073 Domain=evil.com\\001\\"\\\\\\351 \\054x"; ' ..
                 'Path=/', "ok=abc; Domain=d.com; HttpOnly; Max-Age=5; Path=/"},
                r.headers:getall("Set-Cookie"))
    for _, name in ipairs{"a b", "a;b", "a=b", "a\r\n", ""} do
      local ok, e = pcall(r.set_cookie, r, name, "v")
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, web.CookieError))
      assert.is_true(asyncio.iserror(e, asyncio.ValueError))
    end
    for _, o in ipairs{{path = "/x; Domain=e"}, {domain = "x\r\nY: 1"},
                       {samesite = "Lax\n"}, {expires = "a;b"}} do
      assert.is_false(pcall(r.set_cookie, r, "a", "v", o))
    end
    assert.equal(2, #r.headers:getall("Set-Cookie"))
  end)

  it("answers a Transfer-Encoding not ending in chunked or two Hosts " ..
     "with 400 and a close (item 3)", aspec.async(function()
    local app = web.Application()
    app.router:add_post("/p", async(function(req)
      return web.Response{text = "got[" .. await(req:read()) .. "]"}
    end))
    local runner, _, port = start(app)
    local body = "\r\n3\r\nabc\r\n0\r\n\r\n"
    for _, te in ipairs{"xchunked", "chunked, gzip", "\11chunked",
                        "identity", "chunked\r\nTransfer-Encoding: gzip"} do
      local out = raw(port, "POST /p HTTP/1.1\r\nHost: a\r\n" ..
                      "Transfer-Encoding: " .. te .. "\r\n" .. body)
      assert.matches("^HTTP/1.1 400 Bad Request\r\n", out)
      assert.not_matches("got", out)
    end
    local out = raw(port, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert.matches("^HTTP/1.1 400 Bad Request\r\n", out)
    for _, te in ipairs{"chunked", "CHUNKED", "gzip, chunked",
                        "gzip\r\nTransfer-Encoding: chunked"} do
      out = raw(port, "POST /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                .. "Transfer-Encoding: " .. te .. "\r\n" .. body)
      assert.matches("^HTTP/1.1 200 OK\r\n.*got%[abc%]$", out)
    end
    await(runner:cleanup())
  end))

  it("never drops a response with CR or LF silently (item 4)",
     aspec.async(function()
    local ok, e = pcall(web.Response, {reason = "OK\r\nX-Injected: 1"})
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, asyncio.ValueError))
    local app = web.Application()
    app.router:add_get("/r", async(function(req)
      local k = req.query.k
      if k == "hdr" then
        return web.Response{text = "x", headers = {["X-A"] = "a\r\nX-I: 1"}}
      elseif k == "ct" then
        return web.Response{text = "x", content_type = "text/html\r\nX-I: 1"}
      elseif k == "loc" then
        error(web.HTTPFound{location = "/x\r\nX-I: 1"})
      elseif k == "stream" then
        local resp = web.StreamResponse{headers = {["X-A"] = "a\nb"}}
        await(resp:prepare(req))
      end
    end))
    local runner, base = start(app)
    for i, k in ipairs{"hdr", "ct", "stream"} do
      local r, body = get(base .. "/r?k=" .. k)
      assert.equal(500, r.status)
      assert.not_matches("X%-I", body)
      assert.is_nil(r.headers["X-I"])
      assert.equal(i, #logged)
      assert.matches("invalid character", logged[i])
    end
    -- a Location is requoted as yarl does: CR and LF dropped
    local r = get(base .. "/r?k=loc", {allow_redirects = false})
    assert.equal(302, r.status)
    assert.equal("/xX-I:%201", r.headers["Location"])
    assert.is_nil(r.headers["X-I"])
    assert.equal(3, #logged)
    await(runner:cleanup())
  end))

  it("compares If-Modified-Since as a date (item 5)", aspec.async(function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. " && printf hello > " .. dir ..
                      "/a.txt && touch -d '2020-01-02 03:04:05.5Z' " ..
                      dir .. "/a.txt"))
    assert.equal(1577934246, web._parse_http_date(
      "Thu, 02 Jan 2020 03:04:06 GMT"))
    assert.equal(1577934246, web._parse_http_date(
      "Thursday, 02-Jan-20 03:04:06 GMT"))
    assert.equal(1577934246, web._parse_http_date("Thu Jan  2 03:04:06 2020"))
    assert.is_nil(web._parse_http_date("yesterday"))
    local app = web.Application()
    app.router:add_static("/s", dir)
    local runner, base = start(app)
    local r = get(base .. "/s/a.txt")
    -- rounded up, as aiohttp
    assert.equal("Thu, 02 Jan 2020 03:04:06 GMT", r.headers["Last-Modified"])
    local function status(since)
      return (get(base .. "/s/a.txt",
                  {headers = {["If-Modified-Since"] = since}})).status
    end
    assert.equal(304, status("Thu, 02 Jan 2020 03:04:06 GMT"))
    assert.equal(304, status("Fri, 03 Jan 2020 00:00:00 GMT"))
    assert.equal(304, status("Sat, 01 Jan 2050 00:00:00 GMT"))
    assert.equal(200, status("Thu, 02 Jan 2020 03:04:05 GMT"))
    assert.equal(200, status("not a date"))
    local resp = web.FileResponse(dir .. "/a.txt") -- item 10
    assert.equal("web.FileResponse", getmetatable(resp).__name)
    app = web.Application()
    app.router:add_get("/f", async(function()
      return web.FileResponse(dir .. "/a.txt")
    end))
    await(runner:cleanup())
    runner, base = start(app)
    local body
    r, body = get(base .. "/f")
    assert.equal("hello", body)
    assert.equal("text/plain", r.headers["Content-Type"])
    await(runner:cleanup())
    os.execute("rm -rf " .. dir)
  end))

  it("raises a closed WebSocket's sends when awaited (item 6)",
     aspec.async(function()
    local results
    local app = web.Application()
    app.router:add_get("/ws", async(function(req)
      local ws = web.WebSocketResponse()
      await(ws:prepare(req))
      await(ws:close())
      results = {}
      for _, call in ipairs{function() return ws:send_str("x") end,
          function() return ws:send_bytes("x") end,
          function() return ws:send_json({1}) end,
          function() return ws:ping() end,
          function() return ws:pong() end} do
        local aw = call() -- must not raise here
        local ok, e = pcall(await, aw)
        results[#results + 1] = not ok and
          asyncio.iserror(e, asyncio.ConnectionResetError)
      end
      return ws
    end))
    local runner, base = start(app)
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(base .. "/ws"))
    await(ws:receive())
    await(ws:close())
    await(runner:cleanup())
    assert.same({true, true, true, true, true}, results)
  end))

  it("matches {name} on the raw path, then decodes it (item 7)",
     aspec.async(function()
    local app = web.Application()
    app.router:add_get("/hello/{name}", async(function(req)
      return web.Response{text = "[" .. req.match_info.name .. "]"}
    end))
    local runner, base = start(app)
    local r, body = get(base .. "/hello/a%2Fb%20c")
    assert.equal(200, r.status)
    assert.equal("[a/b c]", body)
    await(runner:cleanup())
  end))

  it("answers a handler's error as aiohttp's handle_error: its 500 text "
     .. "(HTML when accepted) or a 504 for a TimeoutError, and closes",
     aspec.async(function()
    local app = web.Application()
    app.router:add_get("/boom", function() error("kaboom") end)
    app.router:add_get("/late", function() error(asyncio.TimeoutError()) end)
    app.router:add_get("/ok", function() return web.Response{text = "ok"} end)
    local logged = peers.capture_web_log()
    local runner, _, port = start(app)
    local function ask(path, accept) -- then /ok on the same connection
      return raw(port, "GET " .. path .. " HTTP/1.1\r\nHost: x\r\n"
        .. (accept and "Accept: " .. accept .. "\r\n" or "") .. "\r\n"
        .. "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    end
    local out = ask("/boom")
    assert.matches("^HTTP/1%.1 500 Internal Server Error\r\n", out)
    assert.matches("\r\nConnection: close\r\n", out)
    assert.matches("\r\nContent%-Type: text/plain; charset=utf%-8\r\n", out)
    assert.equal("500 Internal Server Error\n\nServer got itself in trouble",
                 out:match("\r\n\r\n(.*)$")) -- and no answer to /ok
    out = ask("/boom", "text/html,*/*")
    assert.matches("\r\nContent%-Type: text/html; charset=utf%-8\r\n", out)
    assert.equal("<html><head><title>500 Internal Server Error</title>"
      .. "</head><body>\n<h1>500 Internal Server Error</h1>\n"
      .. "Server got itself in trouble\n</body></html>\n",
      out:match("\r\n\r\n(.*)$"))
    out = ask("/late")
    assert.matches("^HTTP/1%.1 504 Gateway Timeout\r\n", out)
    assert.matches("\r\nContent%-Length: 0\r\n", out)
    assert.matches("\r\nConnection: close\r\n\r\n$", out)
    assert.equal(3, #logged)
    assert.matches("kaboom", logged[1])
    await(runner:cleanup())
  end))

  it("matches a plain route on the path as sent, as aiohttp's "
     .. "PlainResource: an escaped letter or slash is another path",
     aspec.async(function()
    local app = web.Application()
    local hits = 0
    local function ok() hits = hits + 1; return web.Response{text = "ok"} end
    app.router:add_get("/a/b", ok)
    app.router:add_get("/caf\u{e9} menu", ok) -- as a client sends it
    local sub = web.Application()
    sub.router:add_get("/x", ok)
    app:add_subapp("/\u{e9}t\u{e9}", sub)
    local runner, _, port = start(app)
    local function status(target)
      local out = raw(port, "GET " .. target
        .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      return tonumber(out:match("^HTTP/1%.1 (%d+)"))
    end
    assert.same({200, 404, 404, 404},
                {status("/a/b"), status("/a%2Fb"), status("/%61/b"),
                 status("/a%2fb")})
    assert.equal(200, status("/caf%C3%A9%20menu"))
    assert.equal(200, status("/%C3%A9t%C3%A9/x"))
    assert.equal(3, hits)
    await(runner:cleanup())
  end))

  it("gives request.version .major and .minor, and rel_url (path_qs)",
     aspec.async(function()
    local seen
    local app = web.Application()
    app.router:add_get("/v", function(req)
      seen = {req.version[1], req.version[2], req.version.major,
              req.version.minor, req.rel_url}
      return web.Response{text = "ok"}
    end)
    local runner, _, port = start(app)
    raw(port, "GET /v?q=a%20b HTTP/1.0\r\n\r\n")
    assert.same({1, 0, 1, 0, "/v?q=a%20b"}, seen)
    raw(port, "GET http://h:81/v?x HTTP/1.1\r\nHost: y\r\n"
      .. "Connection: close\r\n\r\n")
    assert.same({1, 1, 1, 1, "/v?x"}, seen)
    await(runner:cleanup())
  end))

  it("has aiohttp's request fields and parses multipart forms (item 8)",
     aspec.async(function()
    local seen
    local app = web.Application()
    app.router:add_route("*", "/info", async(function(req)
      seen = {cookies = req.cookies, content_length = req.content_length,
        can_read_body = req.can_read_body, body_exists = req.body_exists,
        content_type = req.content_type, charset = req.charset,
        secure = req.secure, a = req.query:getall("a", {}), q = req.query.a,
        none = req.query:getall("zz", false)}
      if req.method == "POST" then seen.form = await(req:post()) end
      return web.Response{text = "ok"}
    end))
    local runner, _, port = start(app)
    raw(port, "GET /info?a=1&a=2 HTTP/1.1\r\nHost: x\r\nCookie: a=1; " ..
        'b="q\\073r"\r\nConnection: close\r\n\r\n')
    assert.same({cookies = {a = "1", b = "q;r"}, can_read_body = false,
      body_exists = false, content_type = "application/octet-stream",
      secure = false, a = {"1", "2"}, q = "1", none = false}, seen)
    local mp = "preamble\r\n--B\r\nContent-Disposition: form-data; " ..
      'name="f"\r\n\r\nval\r\n--B\r\nContent-Disposition: form-data; ' ..
      'name="up"; filename="a;b.txt"\r\nContent-Type: text/csv\r\n\r\n' ..
      "file\r\ndata\r\n--B\r\nContent-Disposition: form-data; name=\"f\"" ..
      "\r\n\r\n\r\n--B--\r\n"
    local o1 = raw(port, "POST /info HTTP/1.1\r\nHost: x\r\nContent-Type: " ..
        "multipart/form-data; charset=utf-8; boundary=\"B\"\r\n" ..
        "Content-Length: " .. #mp .. "\r\nConnection: close\r\n\r\n" .. mp)
    assert.matches("^HTTP/1.1 200", o1)
    assert.equal(#mp, seen.content_length)
    assert.is_true(seen.body_exists)
    assert.is_true(seen.can_read_body)
    assert.equal("multipart/form-data", seen.content_type)
    assert.equal("utf-8", seen.charset)
    local form = seen.form
    assert.equal("val", form.f)
    assert.same({"val", ""}, form:getall("f"))
    assert.equal("a;b.txt", form.up.filename)
    assert.equal("text/csv", form.up.content_type)
    assert.equal("file\r\ndata", form.up.body)
    -- a parameter without "=" is read past, as aiohttp's parse_mimetype
    -- (it ended the parameters: no boundary, a 400); of two boundaries
    -- the first, as aiohttp's multipart reader
    for _, params in ipairs{"foo; boundary=B", "boundary=B; boundary=Z"} do
      seen.form = nil
      o1 = raw(port, "POST /info HTTP/1.1\r\nHost: x\r\nContent-Type: " ..
          "multipart/form-data; " .. params .. "\r\n" ..
          "Content-Length: " .. #mp .. "\r\nConnection: close\r\n\r\n" .. mp)
      assert.matches("^HTTP/1.1 200", o1)
      assert.same({"val", ""}, seen.form:getall("f"))
    end
    for _, bad in ipairs{"--B\r\nContent-Disposition: form-data\r\n\r\nx" ..
        "\r\n--B--\r\n", "--B\r\nContent-Disposition: form-data; " ..
        'name="a"\r\n\r\nno end', "no boundary at all"} do
      local out = raw(port, "POST /info HTTP/1.1\r\nHost: x\r\n" ..
        "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: "
        .. #bad .. "\r\nConnection: close\r\n\r\n" .. bad)
      assert.matches("^HTTP/1.1 400 Bad Request\r\n", out)
    end
    await(runner:cleanup())
  end))

  it("sends aiohttp's response defaults (item 9)", aspec.async(function()
    local app = web.Application()
    local r = app.router
    r:add_get("/json", async(function()
      return web.json_response({1}, {dumps = function() return "[ok]" end})
    end))
    r:add_get("/html", async(function()
      return web.Response{text = "x", headers = {["Content-Type"] =
        "text/html"}}
    end))
    r:add_get("/empty", async(function() return web.Response() end))
    r:add_get("/found", async(function() error(web.HTTPFound("/x")) end))
    r:add_get("/teapot", async(function()
      return web.Response{status = 418, text = "t"}
    end))
    r:add_get("/405", async(function()
      error(web.HTTPMethodNotAllowed{method = "patch",
        allowed_methods = {"PUT", "GET"}})
    end))
    local runner, base, port = start(app)
    local resp, body = get(base .. "/json")
    assert.equal("[ok]", body)
    assert.equal("application/json; charset=utf-8",
                 resp.headers["Content-Type"])
    resp = get(base .. "/html")
    assert.equal("text/html; charset=utf-8", resp.headers["Content-Type"])
    resp = get(base .. "/empty")
    assert.equal("application/octet-stream", resp.headers["Content-Type"])
    local out = raw(port, "GET /found HTTP/1.1\r\nHost: x\r\n" ..
                    "Connection: close\r\n\r\n")
    assert.matches("^HTTP/1.1 302 Found\r\n.*Location: /x\r\n", out)
    assert.matches("\r\n\r\n302: Found$", out)
    out = raw(port, "GET /teapot HTTP/1.1\r\nHost: x\r\n" ..
              "Connection: close\r\n\r\n")
    assert.matches("^HTTP/1.1 418 I'm a Teapot\r\n", out)
    resp, body = get(base .. "/405")
    assert.equal(405, resp.status)
    assert.equal("GET,PUT", resp.headers["Allow"])
    await(runner:cleanup())
  end))

  it("has aiohttp's names: HTTPError, every exception class, middleware, "
     .. "RouteTableDef (item 10)", aspec.async(function()
    for _, n in ipairs{"HTTPAccepted", "HTTPPreconditionFailed",
        "HTTPRequestRangeNotSatisfiable", "HTTPRequestURITooLong",
        "HTTPVersionNotSupported", "HTTPExpectationFailed",
        "HTTPMultipleChoices", "HTTPUseProxy", "HTTPPaymentRequired",
        "HTTPMisdirectedRequest", "HTTPFailedDependency",
        "HTTPUpgradeRequired", "HTTPPreconditionRequired",
        "HTTPUnavailableForLegalReasons", "HTTPVariantAlsoNegotiates",
        "HTTPInsufficientStorage", "HTTPNotExtended",
        "HTTPNetworkAuthenticationRequired", "HTTPResetContent",
        "HTTPNonAuthoritativeInformation", "HTTPProxyAuthenticationRequired"}
        do
      assert.is_table(web[n], n)
    end
    assert.is_true(asyncio.iserror(web.HTTPNotFound(), web.HTTPError))
    assert.is_true(asyncio.iserror(web.HTTPBadGateway(), web.HTTPError))
    assert.is_false(asyncio.iserror(web.HTTPOk(), web.HTTPError))
    assert.equal(412, web.HTTPPreconditionFailed().status)
    local f = function() end
    assert.equal(f, web.middleware(f))
    local routes = web.RouteTableDef()
    local h = routes:get("/a")(async(function()
      return web.Response{text = "a"}
    end))
    assert.is_function(h)
    routes:post("/b", async(function() return web.Response{text = "b"} end))
    local app = web.Application()
    app.router:add_routes(routes)
    app.router:add_routes{web.put("/c", async(function()
      return web.Response{text = "c"}
    end))}
    local runner, base = start(app)
    local s <close> = http.ClientSession()
    assert.equal("a", await(await(s:get(base .. "/a")):text()))
    assert.equal("b", await(await(s:post(base .. "/b")):text()))
    assert.equal("c", await(await(s:put(base .. "/c")):text()))
    assert.equal(200, await(s:head(base .. "/a")).status)
    await(runner:cleanup())
  end))

  it("splits a query and a form at '&' only, not ';' (item 11)",
     aspec.async(function()
    local seen = {}
    local app = web.Application()
    app.router:add_route("*", "/q", async(function(req)
      seen[#seen + 1] = req.query:getall("a", {})
      if req.method == "POST" then
        seen[#seen + 1] = await(req:post()):getall("a", {})
      end
      return web.Response{text = "ok"}
    end))
    local runner, _, port = start(app)
    raw(port, "GET /q?a=1;b=2&a=3 HTTP/1.1\r\nHost: x\r\n" ..
        "Connection: close\r\n\r\n")
    raw(port, "POST /q HTTP/1.1\r\nHost: x\r\nContent-Type: " ..
        "application/x-www-form-urlencoded\r\nContent-Length: 7\r\n" ..
        "Connection: close\r\n\r\na=1;b=2")
    assert.same({{"1;b=2", "3"}, {}, {"1;b=2"}}, seen)
    await(runner:cleanup())
  end))

  it("keeps a StreamResponse's body within its Content-Length (item 12)",
     aspec.async(function()
    local app = web.Application()
    local function stream(len, ...)
      local pieces = {...}
      return async(function(req)
        local r = web.StreamResponse()
        r.content_length = len
        await(r:prepare(req))
        for _, p in ipairs(pieces) do await(r:write(p)) end
        await(r:write_eof())
        return r
      end)
    end
    app.router:add_get("/long", stream(2, "abcd", "ef"))
    app.router:add_get("/short", stream(3, "a"))
    app.router:add_get("/next", async(function()
      return web.Response{text = "next"}
    end))
    local runner, _, port = start(app)
    -- the bytes past the length are dropped, as aiohttp: the next
    -- response on the connection is read as itself
    local out = raw(port, "GET /long HTTP/1.1\r\nHost: x\r\n\r\n" ..
      "GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.matches("\r\n\r\nabHTTP/1.1 200 OK\r\n", out)
    assert.matches("\r\n\r\nnext$", out)
    -- a body left short ends with the connection, the next request unread
    out = raw(port, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n" ..
      "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.matches("^HTTP/1.1 200 OK\r\n.*Content%-Length: 3\r\n", out)
    assert.matches("\r\n\r\na$", out)
    await(runner:cleanup())
  end))

  it("has StreamResponse:set_status, as aiohttp (item 13)",
     aspec.async(function()
    local after
    local app = web.Application()
    app.router:add_get("/s", async(function(req)
      local r = web.StreamResponse()
      r:set_status(201, "Made")
      await(r:prepare(req))
      after = select(2, pcall(r.set_status, r, 200))
      return r
    end))
    app.router:add_get("/r", async(function()
      local r = web.Response{text = "x"}
      r:set_status(418)
      return r
    end))
    local runner, _, port = start(app)
    assert.matches("^HTTP/1.1 201 Made\r\n", raw(port, "GET /s HTTP/1.1\r\n"
      .. "Host: x\r\nConnection: close\r\n\r\n"))
    assert.is_true(asyncio.iserror(after, asyncio.RuntimeError))
    assert.matches("^HTTP/1.1 418 I'm a Teapot\r\n", raw(port, "GET /r " ..
      "HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    local r = web.Response()
    assert.error_matches(function() r:set_status("200") end,
      "bad argument #1 to 'set_status' %(integer 100%-999 expected")
    assert.error_matches(function() r:set_status(200, "a\r\nb") end,
      "Reason cannot contain")
    await(runner:cleanup())
  end))

  it("refuses a body that is no string and a Content-Type given twice "
     .. "(item 14)", aspec.async(function()
    assert.error_matches(function() web.Response{text = {}} end,
      "bad argument #1 to 'Response' %(field 'text': string expected, got "
      .. "table%)")
    assert.error_matches(function() web.Response{body = true} end,
      "field 'body': string expected, got boolean")
    assert.error_matches(function() web.HTTPNotFound{text = {}} end,
      "bad argument #1 to 'HTTPNotFound' %(field 'text'")
    assert.equal("5", web.Response{text = 5}.text)
    for _, f in ipairs{
      function() web.Response{text = "x", content_type = "text/html",
        headers = {["content-type"] = "text/plain"}} end,
      function() web.StreamResponse{charset = "latin1",
        headers = {["Content-Type"] = "text/plain"}} end,
      function() web.json_response({}, {headers = {["Content-Type"] =
        "text/x-json"}}) end,
      function() web.HTTPBadRequest{content_type = "text/html",
        headers = {["Content-Type"] = "text/plain"}} end} do
      local ok, e = pcall(f)
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
      assert.matches("passing both Content%-Type header and content_type",
        tostring(e))
    end
    local written
    local app = web.Application()
    app.router:add_get("/w", async(function(req)
      local r = web.StreamResponse()
      await(r:prepare(req))
      written = select(2, pcall(await, r:write({})))
      await(r:write(42))
      return r
    end))
    local runner, base = start(app)
    local _, body = get(base .. "/w")
    assert.equal("42", body)
    assert.matches("bad argument #1 to 'write' %(string expected, got " ..
      "table%)", written)
    await(runner:cleanup())
  end))

  it("gives every HTTP exception its headers, a redirect's Location in "
     .. "them (item 15)", aspec.async(function()
    -- its Location as aiohttp's str(URL(location)); .location as given
    local q = web.HTTPFound("/caf\u{e9} menu?q=a b#f g")
    assert.equal("/caf\u{e9} menu?q=a b#f g", q.location)
    assert.equal("/caf%C3%A9%20menu?q=a+b#f%20g", q.headers["Location"])
    assert.equal("http://h/a/c?x=%25zz",
                 web.HTTPSeeOther("http://h/a/./b/../c?x=%zz").headers
                   ["Location"])
    local f = web.HTTPFound("/x")
    assert.equal("/x", f.headers["Location"])
    assert.equal("/y", web.HTTPSeeOther{location = "/y", headers = {
      ["X-A"] = "1"}}.headers:get("location"))
    local nf = web.HTTPNotFound()
    assert.equal(0, nf.headers:len())
    assert.equal("1", web.HTTPBadRequest{headers = {["X-A"] = "1"}}
      .headers["x-a"])
    -- a middleware reads the Location of a redirect a handler raised
    local app = web.Application{middlewares = {async(function(req, h)
      local ok, e = pcall(await, h(req))
      if ok then return e end
      return web.Response{text = "to " .. e.headers["Location"]}
    end)}}
    app.router:add_get("/r", async(function() error(web.HTTPFound("/z")) end))
    local runner, base = start(app)
    local _, body = get(base .. "/r")
    assert.equal("to /z", body)
    await(runner:cleanup())
  end))

  it("answers a field name holding whitespace with 400 and a close "
     .. "(item 16)", aspec.async(function()
    local app = web.Application()
    app.router:add_post("/p", async(function(req)
      return web.Response{text = "got[" .. await(req:read()) .. "]"}
    end))
    local runner, _, port = start(app)
    -- libhttp_parser takes "Transfer-Encoding :" as the framing field: a
    -- proxy that reads Content-Length instead would see another request
    for _, field in ipairs{"Transfer-Encoding : chunked",
        "Transfer-Encoding\t: chunked", "Content-Length : 3", "X-A b: 1"} do
      local out = raw(port, "POST /p HTTP/1.1\r\nHost: a\r\n" .. field ..
        "\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
      assert.matches("^HTTP/1.1 400 Bad Request\r\n", out)
      assert.not_matches("got", out)
    end
    local out = raw(port, "POST /p HTTP/1.1\r\nHost: a\r\nX-A: b c\r\n" ..
      "Content-Length: 3\r\nConnection: close\r\n\r\nabc")
    assert.matches("^HTTP/1.1 200 OK\r\n.*got%[abc%]$", out)
    await(runner:cleanup())
  end))

  it("has multidict's getone on headers, query and form (item 17)",
     aspec.async(function()
    local seen
    local app = web.Application()
    app.router:add_post("/g", async(function(req)
      local form = await(req:post())
      seen = {req.query:getone("a"), req.query:getone("zz", "d"),
        req.headers:getone("x-b"), form:getone("f"),
        select(2, pcall(req.query.getone, req.query, "zz")),
        select(2, pcall(req.headers.getone, req.headers, "x-zz"))}
      return web.Response{text = "ok"}
    end))
    local runner, _, port = start(app)
    raw(port, "POST /g?a=1&a=2 HTTP/1.1\r\nHost: x\r\nX-B: 3\r\n" ..
      "Content-Type: application/x-www-form-urlencoded\r\n" ..
      "Content-Length: 7\r\nConnection: close\r\n\r\nf=4&f=5")
    assert.same({"1", "d", "3", "4"}, {seen[1], seen[2], seen[3], seen[4]})
    local KeyError = require("asyncio.http.headers").KeyError
    assert.is_true(asyncio.iserror(seen[5], KeyError))
    assert.is_true(asyncio.iserror(seen[6], KeyError))
    await(runner:cleanup())
  end))

  it("refuses a duplicate route name, a repeated {name} and a method that "
     .. "is no token, as aiohttp (item 18)", function()
    local h = async(function() return web.Response{text = "x"} end)
    local router = web.Application().router
    local first = router:add_get("/n", h, {name = "n"})
    for _, f in ipairs{
      function() router:add_post("/n2", h, {name = "n"}) end,
      function() router:add_get("/y/{a}/{a}", h) end,
      function() router:add_route("G ET", "/z", h) end,
      function() router:add_route("", "/z", h) end} do
      local ok, e = pcall(f)
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
    end
    assert.equal(first, router.n)
    assert.equal(first, router.named.n)
    -- a name goes to one route; a method token and "*" are taken
    router:add_route("purge", "/p", h, {name = "p"})
    router:add_route("*", "/any", h)
    assert.equal("PURGE", router.p.method)
  end)

  it("sends no second response when a handler fails after its head went "
     .. "out (item 19)", aspec.async(function()
    local app = web.Application()
    app.router:add_get("/stream", async(function(req)
      local r = web.StreamResponse()
      await(r:prepare(req))
      await(r:write("part"))
      error("boom")
    end))
    app.router:add_get("/ws", async(function(req)
      local ws = web.WebSocketResponse()
      await(ws:prepare(req))
      await(ws:send_str("hi"))
      error(web.HTTPNotFound())
    end))
    local runner, _, port = start(app)
    -- the chunked body stops where the handler failed, then the close
    local out = raw(port, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.matches("^HTTP/1.1 200 OK\r\n.*\r\n\r\n4\r\npart\r\n$", out)
    -- the WebSocket's frames, then the close: no HTTP in the stream
    out = raw(port, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket" ..
      "\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" ..
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert.matches("^HTTP/1.1 101 ", out)
    assert.equal("\x81\x02hi", out:match("\r\n\r\n(.*)$"))
    assert.equal(2, #logged)
    assert.matches("^Error handling request: .*boom", logged[1])
    assert.matches("^Error handling request: web.HTTPNotFound", logged[2])
    await(runner:cleanup())
  end))

  it("json_response takes text or body instead of a value, as aiohttp "
     .. "(item 20)", aspec.async(function()
    local app = web.Application()
    app.router:add_get("/t", async(function()
      return web.json_response(nil, {text = '{"a": 1}', status = 201})
    end))
    app.router:add_get("/b", async(function()
      return web.json_response(nil, {body = "[2]"})
    end))
    local runner, _, port = start(app)
    local out = raw(port, "GET /t HTTP/1.1\r\nHost: x\r\n" ..
      "Connection: close\r\n\r\n")
    assert.matches("^HTTP/1.1 201 Created\r\n", out)
    assert.matches("\r\nContent%-Type: application/json; charset=utf%-8\r\n",
      out)
    assert.matches('\r\n\r\n{"a": 1}$', out)
    out = raw(port, "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.matches("\r\nContent%-Type: application/json\r\n", out)
    assert.matches("\r\n\r\n%[2%]$", out)
    for _, args in ipairs{{{1}, {text = "[1]"}}, {nil, {text = "1",
        body = "1"}}} do
      local ok, e = pcall(web.json_response, args[1], args[2])
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
    end
    await(runner:cleanup())
  end))

  it("a value JSON cannot hold raises what Python's json.dumps raises, "
     .. "from json_response and a client's json =",
     aspec.async(function()
    local cases = {
      {print, asyncio.TypeError,
       "Object of type function is not JSON serializable"},
      {{1, 0 / 0}, asyncio.ValueError,
       "Out of range float values are not JSON compliant"},
      {{[1000] = 1}, asyncio.ValueError,
       "Cannot serialise table: excessively sparse array"},
    }
    local s <close> = http.ClientSession()
    for _, case in ipairs(cases) do
      local e = select(2, pcall(web.json_response, case[1]))
      assert.is_true(asyncio.iserror(e, case[2]), tostring(e))
      assert.equal(case[3], e.message)
      -- the client refuses it before connecting (nothing listens there)
      local ok, ce = pcall(await, s:post("http://127.0.0.1:9/", {
        json = case[1]}))
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(ce, case[2]), tostring(ce))
      assert.equal(case[3], ce.message)
    end
    -- what a custom dumps raises: an error object as it is, else ValueError
    local mine = asyncio.RuntimeError("mine")
    local e = select(2, pcall(web.json_response, 1,
                              {dumps = function() error(mine) end}))
    assert.equal(mine, e)
    e = select(2, pcall(web.json_response, 1,
                        {dumps = function() error("boom") end}))
    assert.is_true(asyncio.iserror(e, asyncio.ValueError))
    assert.equal("boom", e.message)
  end))

  it("has BasicAuth.decode for a request's Authorization, as aiohttp "
     .. "(item 21)", aspec.async(function()
    local app = web.Application()
    app.router:add_get("/a", async(function(req)
      local a = http.BasicAuth.decode(req.headers["Authorization"])
      return web.Response{text = a.login .. "|" .. a.password}
    end))
    local runner, base = start(app)
    local _, body = get(base .. "/a", {auth = http.BasicAuth("jé", "p:w")})
    assert.equal("jé|p:w", body)
    -- aiohttp's errors, all ValueError
    for bad, why in pairs{["Bearer x"] = "Unknown authorization method",
        Basic = "Could not parse", ["Basic !!!!"] = "Invalid base64",
        ["Basic dXNlcjpw=x="] = "Invalid base64",
        ["Basic dXNlcg=="] = "Invalid credentials"} do
      local ok, e = pcall(http.BasicAuth.decode, bad)
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
      assert.matches(why, tostring(e), 1, true)
    end
    local u = http.BasicAuth.decode(http.BasicAuth("jé", "x", "utf-8")
      :encode(), "utf-8")
    assert.same({"jé", "x"}, {u.login, u.password})
    await(runner:cleanup())
  end))

  it("computes a Response's content_length, as aiohttp's property "
     .. "(item 22)", aspec.async(function()
    assert.equal(2, web.Response{text = "hi"}.content_length)
    assert.equal(3, web.Response{body = "abc"}.content_length)
    assert.equal(0, web.Response().content_length)
    assert.equal(7, web.json_response({a = 1}).content_length)
    local r = web.Response{text = "x"}
    r.text = "longer"
    assert.equal(6, r.content_length)
    -- a logging middleware reads it, as with aiohttp
    local sizes = {}
    local app = web.Application{middlewares = {async(function(req, h)
      local resp = await(h(req))
      sizes[#sizes + 1] = resp.content_length
      return resp
    end)}}
    app.router:add_get("/x", async(function()
      return web.Response{text = "hello"}
    end))
    local runner, base = start(app)
    local _, body = get(base .. "/x")
    assert.equal("hello", body)
    assert.same({5}, sizes)
    await(runner:cleanup())
  end))

  it("percent-decodes query_string as yarl, and parses query from the "
     .. "query as sent (item 23)", aspec.async(function()
    local seen
    local app = web.Application()
    app.router:add_get("/q", async(function(req)
      seen = {qs = req.query_string, e = req.query.e, f = req.query.f,
        g = req.query.g, h = req.query.h, path_qs = req.path_qs,
        n = #req.query.all}
      return web.Response{text = "ok"}
    end))
    local runner, _, port = start(app)
    -- aiohttp 3.8's values for this target
    local target = "/q?a=%20b&c=d&e=x%26y&f=1+2&g=%2b&h=%C3%A9%3b&%"
    raw(port, "GET " .. target .. " HTTP/1.1\r\nHost: x\r\n" ..
        "Connection: close\r\n\r\n")
    assert.same({qs = "a= b&c=d&e=x%26y&f=1 2&g=%2B&h=é%3B&%", e = "x&y",
      f = "1 2", g = "+", h = "é;", path_qs = target, n = 7}, seen)
    await(runner:cleanup())
  end))

  it("answers an HTTP/1.0 request in HTTP/1.0 and closes unless it asked "
     .. "for keep-alive (item 24)", aspec.async(function()
    local app = web.Application{client_max_size = 10}
    app.router:add_route("*", "/r", async(function(req)
      return web.Response{text = "ok " .. await(req:text())}
    end))
    app.router:add_get("/s", async(function(req)
      local r = web.StreamResponse()
      await(r:prepare(req))
      await(r:write("ab"))
      await(r:write_eof())
      return r
    end))
    local runner, _, port = start(app)
    -- raw() returns only once the server closes
    local out = raw(port, "GET /r HTTP/1.0\r\n\r\n")
    assert.matches("^HTTP/1.0 200 OK\r\n", out)
    assert.matches("\r\n\r\nok $", out)
    out = raw(port, "GET /r HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" ..
              "GET /missing HTTP/1.0\r\n\r\n")
    local first, second = out:match("^(.-\r\n\r\nok )(.*)$")
    assert.matches("^HTTP/1.0 200 OK\r\n", first)
    assert.matches("\r\nConnection: keep%-alive\r\n", first)
    assert.matches("^HTTP/1.0 404 Not Found\r\n", second)
    -- a stream of unknown length: no chunks in HTTP/1.0, the close ends it
    out = raw(port, "GET /s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert.matches("^HTTP/1.0 200 OK\r\n", out)
    assert.not_matches("Transfer%-Encoding", out)
    assert.matches("\r\n\r\nab$", out)
    -- no interim 100 Continue to an HTTP/1.0 client
    out = raw(port, "POST /r HTTP/1.0\r\nContent-Length: 2\r\n" ..
              "Expect: 100-continue\r\n\r\nhi")
    assert.matches("^HTTP/1.0 200 OK\r\n", out)
    assert.matches("\r\n\r\nok hi$", out)
    out = raw(port, "POST /r HTTP/1.0\r\nContent-Length: 20\r\n\r\n")
    assert.matches("^HTTP/1.0 413 Request Entity Too Large\r\n", out)
    -- HTTP/1.1 as before
    out = raw(port, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
              .. "Expect: 100-continue\r\nConnection: close\r\n\r\nhi")
    assert.matches("^HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
                   out)
    await(runner:cleanup())
  end))

  it("takes url, host and path_qs from an absolute-form target, falls back "
     .. "to the machine's name without Host; keep_alive is a boolean "
     .. "(third audit)", aspec.async(function()
    local app = web.Application()
    app.router:add_get("/info", async(function(req)
      return web.Response{text = ("%s|%s|%s|%s|%s"):format(req.url,
        req.host, req.path_qs, req.path, tostring(req.keep_alive))}
    end))
    local runner, _, port = start(app)
    local out = raw(port, "GET HTTP://Example.COM:81/info?q=1 HTTP/1.1\r\n"
      .. "Host: x\r\nConnection: close\r\n\r\n")
    -- yarl's form: scheme and host in lower case
    assert.matches("\r\n\r\nhttp://example.com:81/info%?q=1|example.com|"
      .. "/info%?q=1|/info|false$", out)
    out = raw(port, "GET /info HTTP/1.0\r\n\r\n")
    local host = require("asyncio.core")._gethostname()
    assert.is_true(#host > 0)
    assert.equal("http://" .. host .. "/info|" .. host .. "|/info|/info|"
      .. "false", out:match("\r\n\r\n(.*)$"))
    local r, body = get(("http://127.0.0.1:%d/info"):format(port))
    assert.equal(200, r.status)
    assert.matches("|true$", body)
    await(runner:cleanup())
  end))

  it("sends a returned HTTPException as a raised one; takes aiohttp's "
     .. "positional 405 and 413 forms; refuses an empty redirect "
     .. "(third audit)", aspec.async(function()
    local e = web.HTTPMethodNotAllowed("post", {"GET", "PUT"})
    assert.same({405, "POST", {"GET", "PUT"}, "GET,PUT"},
                {e.status, e.method, e.allowed_methods, e.headers["Allow"]})
    e = web.HTTPMethodNotAllowed("POST", {"GET"}, {reason = "No"})
    assert.same({"No", "GET"}, {e.reason, e.headers["Allow"]})
    e = web.HTTPRequestEntityTooLarge(100, 200)
    assert.equal("Maximum request body size 100 exceeded, actual body "
                 .. "size 200", e.text)
    e = web.HTTPRequestEntityTooLarge{max_size = 1, actual_size = 2,
                                      headers = {X = "y"}}
    assert.same({413, "Maximum request body size 1 exceeded, actual body "
                 .. "size 2", "y"}, {e.status, e.text, e.headers["X"]})
    local ok, err = pcall(web.HTTPFound, "")
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(err, asyncio.ValueError), tostring(err))
    assert.equal("HTTP redirects need a location to redirect to.",
                 err.message)
    local app = web.Application()
    app.router:add_get("/gone", async(function()
      return web.HTTPGone{text = "bye"}
    end))
    local runner, base = start(app)
    local r, body = get(base .. "/gone")
    assert.same({410, "bye"}, {r.status, body})
    assert.same({}, logged)
    await(runner:cleanup())
  end))

  it("answers an unknown Expect with 417, chunked twice and a target "
     .. "over 8190 bytes with 400 (third audit)", aspec.async(function()
    local handled = 0
    local app = web.Application()
    app.router:add_route("*", "/p", async(function(req)
      handled = handled + 1
      return web.Response{text = "got[" .. await(req:read()) .. "]"}
    end))
    local runner, _, port = start(app)
    local out = raw(port, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3"
      .. "\r\nExpect: foo\r\n\r\nabc")
    assert.matches("^HTTP/1.1 417 Expectation Failed\r\n", out)
    assert.matches("\r\n\r\nUnknown Expect: foo$", out)
    -- HTTP/1.0 knows no Expect: served
    out = raw(port, "POST /p HTTP/1.0\r\nContent-Length: 3\r\n"
      .. "Expect: foo\r\n\r\nabc")
    assert.matches("got%[abc%]$", out)
    for _, te in ipairs{"chunked\r\nTransfer-Encoding: chunked",
                        "chunked, chunked"} do
      out = raw(port, "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
        .. te .. "\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
      assert.matches("^HTTP/1.1 400 Bad Request\r\n", out)
    end
    out = raw(port, "GET /p?" .. ("a"):rep(8190) .. " HTTP/1.1\r\n"
      .. "Host: a\r\n\r\n")
    assert.matches("^HTTP/1.1 400 Bad Request\r\n", out)
    out = raw(port, "GET /p?" .. ("a"):rep(8100) .. " HTTP/1.1\r\n"
      .. "Host: a\r\nConnection: close\r\n\r\n")
    assert.matches("^HTTP/1.1 200 OK\r\n", out)
    assert.equal(2, handled)
    await(runner:cleanup())
  end))

  it("unquotes a cookie's \\ooo as Python's http.cookies: octal 000 to "
     .. "377 only, else \\c is c (a \\9 was a Lua error, a 500)",
     aspec.async(function()
    local seen
    local app = web.Application()
    app.router:add_get("/c", function(req)
      seen = req.cookies
      return web.Response{text = "ok"}
    end)
    local runner, _, port = start(app)
    local out = raw(port, "GET /c HTTP/1.1\r\nHost: x\r\nCookie: "
      .. 'a="\\999"; b="x\\800y"; c="\\477"; d="\\101\\0123"; '
      .. 'e="\\\\101"; f="\\1"\r\nConnection: close\r\n\r\n')
    assert.matches("^HTTP/1.1 200 OK\r\n", out)
    -- what SimpleCookie(raw) gives aiohttp's request.cookies
    assert.same({a = "999", b = "x800y", c = "477", d = "A\n3",
                 e = "\\101", f = "1"}, seen)
    -- a quoted value holds its ";" (it was cut there: '"x'), a later
    -- pair of a name wins (the first did), as aiohttp's dict; a piece
    -- without "=" is skipped
    raw(port, "GET /c HTTP/1.1\r\nHost: x\r\nCookie: "
      .. 'f="x;y"; a=1; b; a=3; g="a\\"b";h=\r\nConnection: close\r\n\r\n')
    assert.same({f = "x;y", a = "3", g = 'a"b', h = ""}, seen)
    assert.same({}, logged)
    await(runner:cleanup())
  end))
end)
