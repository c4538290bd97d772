-- spec/http_client_wire_spec.lua: asyncio.http's ClientSession where a
-- second audit against aiohttp 3.8 found it differed on the wire:
-- redirects (head(), other schemes, the URI field, a POST turned into a
-- GET), answers without a body (204, 304, HEAD) and the reuse of their
-- connection, the content's readany / readuntil / is_eof / exception,
-- the default Content-Type and Content-Length of requests,
-- skip_auto_headers, force_close, the timeout subclasses and the retry of
-- an idempotent request on a kept connection the server closed; and
-- where a third one found it differed: stray bytes after a response, a
-- body that does not decode, an empty Location, a redirect's body and a
-- request header given more than once. The peers are asyncio.http.web
-- and scripted raw sockets.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror

local err_of = dofile("spec/helpers.lua").await_error

-- /echo answers {method, target, headers = {{name, value}...}, body};
-- /r302 a 302 to /echo.
local serve = async(function()
  local app = web.Application()
  app.router:add_route("*", "/echo", peers.echo)
  app.router:add_route("*", "/r302", async(function()
    return web.Response{status = 302, headers = {Location = "/echo"}}
  end))
  local runner, port = await(peers.serve(app))
  return "http://127.0.0.1:" .. port, runner
end)

local received = peers.received

--- Reads one request from r: its head (a string, nil at the end of the
-- stream), its target and its body (Content-Length or chunked).
local function read_request(r)
  local ok, head = pcall(await, r:readuntil("\r\n\r\n"))
  if not ok then return nil end
  local target = head:match("^%u+ (%S+)")
  local n = head:lower():match("\r\ncontent%-length: *(%d+)")
  local body = ""
  if n then
    body = await(r:readexactly(tonumber(n)))
  elseif head:lower():find("\r\ntransfer%-encoding: *chunked") then
    local parts = {}
    repeat
      local size = tonumber(await(r:readline()):match("%x+"), 16)
      parts[#parts + 1] = await(r:readexactly(size + 2)):sub(1, size)
    until size == 0
    body = table.concat(parts)
  end
  return head, target, body
end

--- scripted(handler) -> base URL, server, stats: a raw server running
-- handler(r, w, n) for its n-th connection, the connection closed after;
-- stats.connections counts them.
local scripted = async(function(handler)
  local stats = {connections = 0}
  local srv = await(asyncio.start_server(async(function(r, w)
    stats.connections = stats.connections + 1
    pcall(handler, r, w, stats.connections)
    w:close()
  end), "127.0.0.1", 0))
  return "http://127.0.0.1:" .. srv.sockets[1].port, srv, stats
end)

--- A keep-alive raw server answering each request with answer(target,
-- head, body) (the bytes of a whole response).
local function keep_alive(answer)
  return scripted(function(r, w)
    while true do
      local head, target, body = read_request(r)
      if not head then return end
      w:write(answer(target, head, body))
      await(w:drain())
    end
  end)
end

local function ok_answer(body)
  return ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"):format(#body,
                                                                   body)
end

describe("asyncio.http client on the wire, as aiohttp", function()
  teardown(peers.stop)

  it("does not follow redirects from head() unless asked",
     aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:head("/r302"))
    assert.equal(302, r.status)
    assert.same({}, r.history)
    local r2 <close> = await(s:head("/r302", {allow_redirects = true}))
    assert.equal(200, r2.status)
    assert.equal(1, #r2.history)
    local r3 <close> = await(s:request("HEAD", "/r302"))
    assert.equal(200, r3.status)
    await(runner:cleanup())
  end))

  it("refuses a Location of another scheme, follows a URI field",
     aspec.async(function()
    local url, srv = await(keep_alive(function(target)
      if target == "/ok" then return ok_answer("ok") end
      local field = ({["/ftp"] = "Location: ftp://127.0.0.1/x",
        ["/mailto"] = "Location: mailto:a@b.c",
        ["/ws"] = "Location: ws://127.0.0.1:1/x",
        ["/uri"] = "URI: /ok"})[target]
      return "HTTP/1.1 302 Found\r\n" .. field ..
        "\r\nContent-Length: 0\r\n\r\n"
    end))
    local s <close> = http.ClientSession()
    for _, path in ipairs{"/ftp", "/mailto", "/ws"} do
      local e = err_of(s:get(url .. path))
      assert.is_true(iserror(e, asyncio.ValueError), tostring(e))
      assert.equal("Can redirect only to http or https", e.message)
    end
    local r <close> = await(s:get(url .. "/uri"))
    assert.equal(200, r.status)
    assert.equal(url .. "/ok", r.url)
    assert.equal("ok", await(r:text()))
    srv:close()
  end))

  it("turns a POST answered by 302 into a GET without body or "
     .. "Content-Length", aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base}
    -- a Content-Length of the caller's would announce a body the GET has
    -- not: the server would wait for it
    local r <close> = await(s:post("/r302", {data = "payload",
      headers = {["Content-Length"] = "7"}, timeout = 5}))
    local v = await(r:json())
    assert.equal("GET", v.method)
    assert.equal("", v.body)
    assert.is_nil(received(v, "Content-Length"))
    assert.is_nil(received(v, "Content-Type"))
    await(runner:cleanup())
  end))

  it("ends 204 and 304 answers at their head, whatever Content-Length "
     .. "says", aspec.async(function()
    local answers = {"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
      "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", ok_answer("ok")}
    local n = 0
    local url, srv, stats = await(keep_alive(function()
      n = n + 1
      return answers[n]
    end))
    local s <close> = http.ClientSession{
      timeout = http.ClientTimeout{sock_read = 5}}
    for _, want in ipairs{{304, ""}, {204, ""}, {200, "ok"}} do
      local r <close> = await(s:get(url))
      assert.equal(want[1], r.status)
      assert.equal(want[2], await(r:read()))
    end
    assert.equal(1, stats.connections)
    srv:close()
  end))

  it("gives back to the pool, at once, a connection whose answer has all "
     .. "arrived; close() closes one whose body is still coming",
     aspec.async(function()
    local url, srv, stats = await(keep_alive(function(target, head)
      if head:find("^HEAD") then
        return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
      elseif target:find("^/partial") then -- 5 bytes of 10, for now
        return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"
      end
      return ok_answer("hello")
    end))
    local s <close> = http.ClientSession()
    do
      local r <close> = await(s:head(url))
      assert.equal("5", r.headers["Content-Length"])
    end
    do
      local r <close> = await(s:get(url)) -- its body unread
      assert.equal(200, r.status)
    end
    local r = await(s:get(url))
    r:release()
    assert.equal(1, stats.connections)
    local e = err_of(r:read())
    assert.is_true(iserror(e, http.ClientConnectionError))
    r = await(s:get(url))
    r:close() -- its answer has all arrived: the connection stays pooled
    r = await(s:get(url))
    assert.equal("hello", await(r:read()))
    assert.equal(1, stats.connections)
    r = await(s:get(url .. "/partial"))
    r:close()
    r = await(s:get(url))
    assert.equal("hello", await(r:read()))
    assert.equal(2, stats.connections)
    srv:close()
  end))

  it("a response left unread holds no connection once its whole message "
     .. "came (with its head, or before the next request), as aiohttp",
     aspec.async(function()
    local go = asyncio.Event()
    local url, srv, stats = await(scripted(function(r, w)
      while true do
        local head, target = read_request(r)
        if not head then return end
        if target == "/split" then -- the head, then the body when told
          w:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
          await(w:drain())
          await(go:wait())
          go:clear()
          w:write("split")
        else
          w:write(ok_answer("hello"))
        end
        await(w:drain())
      end
    end))
    local s <close> = http.ClientSession{limit = 1}
    -- the whole message with its head: the connection is back at once
    local rs = {}
    for i = 1, 3 do rs[i] = await(s:get(url, {timeout = 5})) end
    assert.equal(1, stats.connections)
    -- a body that comes after the head: given back by the next request
    -- once its bytes are here
    local split = await(s:get(url .. "/split", {timeout = 5}))
    go:set()
    await(asyncio.wait_for(async(function()
      while split._conn.reader:_buffered() == 0 do
        await(asyncio.sleep(0))
      end
    end)(), 5))
    local after = await(s:get(url, {timeout = 5}))
    assert.equal(1, stats.connections)
    for i = 1, 3 do assert.equal("hello", await(rs[i]:text())) end
    assert.equal("split", await(split:text()))
    assert.equal("hello", await(after:text()))
    -- read or not, closing such a response leaves its connection pooled
    split = await(s:get(url .. "/split", {timeout = 5}))
    go:set()
    assert.equal("split", await(split:text()))
    rs[1]:close()
    assert.equal("hello", await(await(s:get(url)):text()))
    assert.equal(1, stats.connections)
    srv:close()
  end))

  it("sends one Host field: a session's or a request's replaces the URL's",
     aspec.async(function()
    local heads = {}
    local url, srv = await(keep_alive(function(_, head)
      heads[#heads + 1] = head
      return ok_answer("ok")
    end))
    local s <close> = http.ClientSession{headers = {Host = "api.example",
                                                    ["X-S"] = "1"}}
    await(s:get(url)):release() -- the path without request headers
    await(s:get(url, {headers = {["X-R"] = "2"}})):release()
    await(s:get(url, {headers = {host = "req.example"}})):release()
    local hosts = {}
    for i, head in ipairs(heads) do
      local list = {}
      for v in head:gmatch("\r\n[Hh][Oo][Ss][Tt]: ([^\r]*)") do
        list[#list + 1] = v
      end
      hosts[i] = list
    end
    assert.same({{"api.example"}, {"api.example"}, {"req.example"}}, hosts)
    srv:close()
  end))

  it("with Expect: 100-continue (or expect100) waits for the 100 before "
     .. "the body; a final answer first is the response, the body unsent",
     aspec.async(function()
    local heads, after = {}, nil
    local url, srv = await(scripted(function(r, w, n)
      local head = await(r:readuntil("\r\n\r\n"))
      heads[n] = head
      if n == 1 then -- refused before the body: what came after the head,
        -- up to the client's close, must be nothing
        w:write("HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\n"
                .. "denied")
        await(w:drain())
        after = await(r:read())
        return
      end
      w:write("HTTP/1.1 100 Continue\r\n\r\n")
      local len = tonumber(head:match("\r\n[Cc]ontent%-[Ll]ength: (%d+)"))
      local body = await(r:readexactly(len))
      w:write(ok_answer(#body .. ":" .. body:sub(1, 3)))
      await(w:drain())
    end))
    local s <close> = http.ClientSession()
    local big = ("x"):rep(1024 * 1024)
    local r = await(s:post(url .. "/up", {data = big,
      headers = {Expect = "100-continue"}}))
    assert.same({401, "denied"}, {r.status, await(r:text())})
    -- the connection is not kept (the body was never sent): it closes
    await(asyncio.wait_for(async(function()
      while after == nil do await(asyncio.sleep(0)) end
    end)(), 5))
    assert.equal(0, #after) -- no byte of the body
    r = await(s:post(url .. "/up", {data = "abcdef", expect100 = true}))
    assert.same({200, "6:abc"}, {r.status, await(r:text())})
    assert.matches("\r\nExpect: 100%-continue\r\n", heads[2])
    srv:close()
  end))

  it("reads the content with readany, readuntil; is_eof and exception",
     aspec.async(function()
    -- chunks arrive as pieces of their own: "\r\n" straddles two
    local url, srv = await(keep_alive(function(target)
      if target == "/short" then
        return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
      end
      return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "4\r\none\r\r\n7\r\n\ntwo--t\r\n5\r\nhree!\r\n0\r\n\r\n"
    end))
    local s <close> = http.ClientSession()
    local r <close> = await(s:get(url .. "/chunks"))
    local c = r.content
    assert.is_false(c:at_eof())
    assert.equal("one\r\n", await(c:readuntil("\r\n")))
    assert.equal("two--", await(c:readuntil("--")))
    assert.equal("t", await(c:readany()))
    assert.equal("hree!", await(c:readuntil("?")))
    assert.is_true(c:is_eof())
    assert.is_true(c:at_eof())
    assert.equal("", await(c:readany()))
    assert.is_nil(c:exception())
    local ok, e = pcall(c.readuntil, c, "")
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.ValueError))
    assert.equal("Separator should be at least one-byte string", e.message)
    assert.has_error(function() c:readuntil(1) end,
      "bad argument #1 to 'readuntil' (string expected, got number)")
    srv:close()
    -- a body cut short: the reads raise, exception() keeps the error
    local url2, srv2 = await(scripted(function(r2, w)
      read_request(r2)
      w:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
      await(w:drain())
    end))
    local r2 <close> = await(s:get(url2))
    e = err_of(r2:read())
    assert.is_true(iserror(e, http.ClientPayloadError), tostring(e))
    assert.equal(e, r2.content:exception())
    srv2:close()
  end))

  it("sends aiohttp's Content-Type and Content-Length defaults; "
     .. "skip_auto_headers", aspec.async(function()
    local url, srv = await(keep_alive(function(_, head, body)
      return ok_answer(head .. body)
    end))
    local s <close> = http.ClientSession()
    -- the head a request sent (lower-cased) and its body
    local function sent(method, opts, session)
      local r <close> = await((session or s):request(method, url, opts))
      local text = await(r:text())
      return text:lower():match("^(.-\r\n\r\n)(.*)$")
    end
    local head, body = sent("POST", {data = "hello"})
    assert.matches("\r\ncontent%-type: application/octet%-stream\r\n", head)
    assert.matches("\r\ncontent%-length: 5\r\n", head)
    assert.equal("hello", body)
    local i = 0
    head = sent("PUT", {data = function()
      i = i + 1
      return ({"ab", "cd"})[i]
    end})
    assert.matches("\r\ncontent%-type: application/octet%-stream\r\n", head)
    assert.matches("\r\ntransfer%-encoding: chunked\r\n", head)
    head = sent("POST", {data = "x", headers = {["Content-Type"] = "text/x"}})
    assert.matches("\r\ncontent%-type: text/x\r\n", head)
    assert.not_matches("octet", head)
    -- a POST without a body says so; a DELETE too; a GET does not
    head = sent("POST")
    assert.matches("\r\ncontent%-length: 0\r\n", head)
    assert.matches("\r\ncontent%-type: application/octet%-stream\r\n", head)
    head = sent("DELETE")
    assert.matches("\r\ncontent%-length: 0\r\n", head)
    assert.not_matches("content%-type", head)
    head = sent("GET")
    assert.not_matches("content%-length", head)
    assert.not_matches("content%-type", head)
    -- skip_auto_headers, of a request and of a session
    head = sent("POST", {data = "x",
      skip_auto_headers = {"User-Agent", "content-type"}})
    assert.not_matches("user%-agent", head)
    assert.not_matches("content%-type", head)
    assert.matches("\r\naccept: %*/%*\r\n", head)
    local s2 <close> = http.ClientSession{
      skip_auto_headers = {"Accept-Encoding"}}
    head = sent("GET", nil, s2)
    assert.not_matches("accept%-encoding", head)
    assert.matches("\r\nuser%-agent: ", head)
    head = sent("GET", {skip_auto_headers = {"Accept"}}, s2)
    assert.not_matches("accept", head)
    assert.has_error(function()
      s:get(url, {skip_auto_headers = "User-Agent"})
    end, "bad argument #2 to 'get' (field 'skip_auto_headers': list of "
      .. "strings expected, got string)")
    srv:close()
  end))

  it("closes every connection after its answer with force_close",
     aspec.async(function()
    local url, srv, stats = await(keep_alive(function()
      return ok_answer("ok")
    end))
    local s <close> = http.ClientSession{force_close = true}
    for _ = 1, 3 do
      local r <close> = await(s:get(url))
      assert.equal("ok", await(r:text()))
    end
    assert.equal(3, stats.connections)
    assert.has_error(function() http.ClientSession{force_close = 1} end,
      "bad argument #1 to 'ClientSession' (field 'force_close': boolean "
      .. "expected, got number)")
    srv:close()
  end))

  it("raises ConnectionTimeoutError and SocketTimeoutError, both "
     .. "ServerTimeoutError", aspec.async(function()
    local go = asyncio.Event()
    local url, srv = await(scripted(function(r, w)
      read_request(r)
      w:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
      await(go:wait())
    end))
    local s <close> = http.ClientSession{limit = 1,
      timeout = http.ClientTimeout{sock_read = 0.1, connect = 0.1}}
    local r = await(s:get(url))
    -- the only connection is taken
    local e = err_of(s:get(url))
    assert.equal("http.ConnectionTimeoutError", getmetatable(e).__name)
    assert.is_true(iserror(e, http.ConnectionTimeoutError), tostring(e))
    assert.is_true(iserror(e, http.ServerTimeoutError))
    assert.is_true(iserror(e, asyncio.TimeoutError))
    e = err_of(r:read())
    assert.equal("http.SocketTimeoutError", getmetatable(e).__name)
    assert.is_true(iserror(e, http.SocketTimeoutError), tostring(e))
    assert.is_true(iserror(e, http.ServerTimeoutError))
    assert.is_true(iserror(e, asyncio.TimeoutError))
    go:set()
    srv:close()
  end))

  it("takes a 204 followed by stray bytes, and does not reuse its "
     .. "connection", aspec.async(function()
    local url, srv, stats = await(keep_alive(function(target)
      if target == "/stray" then
        return "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"
      end
      return ok_answer("ok")
    end))
    local s <close> = http.ClientSession()
    local r <close> = await(s:get(url .. "/stray"))
    assert.equal(204, r.status)
    assert.equal("", await(r:read()))
    local r2 <close> = await(s:get(url .. "/ok"))
    assert.equal("ok", await(r2:text()))
    assert.equal(2, stats.connections)
    srv:close()
  end))

  it("does not hand out a kept connection that got bytes while idle",
     aspec.async(function()
    local body_read, late_sent = asyncio.Event(), asyncio.Event()
    local url, srv, stats = await(scripted(function(r, w, n)
      read_request(r)
      if n == 1 then -- the body is 2 bytes long; 3 more come later
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhe")
        await(body_read:wait())
        w:write("llo")
        await(w:drain())
        late_sent:set()
        read_request(r)
        return
      end
      w:write(ok_answer("ok"))
      await(w:drain())
    end))
    local s <close> = http.ClientSession()
    do
      local r <close> = await(s:get(url))
      assert.equal("he", await(r:read()))
    end
    body_read:set()
    await(late_sent:wait())
    -- loopback: the bytes are readable from the next poll on
    await(asyncio.sleep(0))
    await(asyncio.sleep(0))
    local r <close> = await(s:get(url, {timeout = 5}))
    assert.equal("ok", await(r:text()))
    assert.equal(2, stats.connections)
    srv:close()
  end))

  it("frees the connection of a body that does not decode; reading it "
     .. "again raises the same error", aspec.async(function()
    local url, srv = await(keep_alive(function(target)
      if target == "/gz" then
        return "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
          .. "Content-Length: 7\r\n\r\nnotgzip"
      end
      return ok_answer("ok")
    end))
    local s <close> = http.ClientSession{limit = 1}
    local r = await(s:get(url .. "/gz"))
    local e = err_of(r:read())
    assert.is_true(iserror(e, http.ClientPayloadError), tostring(e))
    assert.equal(e, r.content:exception())
    assert.equal(e, err_of(r:read()))
    -- the one permit is free again
    local r2 <close> = await(s:get(url .. "/ok", {timeout = 5}))
    assert.equal("ok", await(r2:text()))
    srv:close()
  end))

  it("takes an empty Location for none; follows a redirect without "
     .. "reading its body", aspec.async(function()
    local url, srv = await(keep_alive(function(target)
      if target == "/empty" then
        return "HTTP/1.1 302 Found\r\nLocation: \r\n"
          .. "Content-Length: 0\r\n\r\n"
      elseif target == "/stalled" then -- 3 bytes of 100, then nothing
        return "HTTP/1.1 302 Found\r\nLocation: /ok\r\n"
          .. "Content-Length: 100\r\n\r\nabc"
      end
      return ok_answer("ok")
    end))
    local s <close> = http.ClientSession()
    local r <close> = await(s:get(url .. "/empty"))
    assert.equal(302, r.status)
    assert.same({}, r.history)
    local r2 <close> = await(s:get(url .. "/stalled", {timeout = 5}))
    assert.equal(200, r2.status)
    assert.equal("ok", await(r2:text()))
    assert.equal(302, r2.history[1].status)
    srv:close()
  end))

  it("sends every value of a request header given more than once, the "
     .. "first in place of the session's", aspec.async(function()
    local base, runner = await(serve())
    local s <close> = http.ClientSession{base_url = base,
                                         headers = {["X-Multi"] = "s"}}
    local r <close> = await(s:get("/echo", {headers = {{"X-Multi", "1"},
                                                       {"x-multi", "2"}}}))
    local v = await(r:json())
    local values = {}
    for _, kv in ipairs(v.headers) do
      if kv[1]:lower() == "x-multi" then values[#values + 1] = kv[2] end
    end
    assert.same({"1", "2"}, values)
    await(runner:cleanup())
  end))

  it("sends an idempotent request again when a kept connection was "
     .. "closed on it; a POST is not", aspec.async(function()
    -- each connection answers its first request, then closes on reading
    -- the next one
    local url, srv, stats = await(scripted(function(r, w)
      read_request(r)
      w:write(ok_answer("first"))
      await(w:drain())
      read_request(r)
    end))
    local s <close> = http.ClientSession()
    for _ = 1, 2 do
      local r <close> = await(s:get(url))
      assert.equal("first", await(r:text()))
    end
    assert.equal(2, stats.connections)
    local e = err_of(s:post(url, {data = "x"}))
    assert.is_true(iserror(e, http.ServerDisconnectedError), tostring(e))
    assert.equal(2, stats.connections)
    srv:close()
  end))
end)
