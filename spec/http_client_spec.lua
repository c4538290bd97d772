-- spec/http_client_spec.lua: asyncio.http's ClientSession against a real
-- aiohttp server (spec/fixtures/aiohttp_peer.py under Debian's Python)
-- and Python's http.server: methods, params, bodies, headers, keep-alive,
-- errors, timeouts, cancellation.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local http = require "asyncio.http"
local cjson = require "cjson"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await

local err_of = dofile("spec/helpers.lua").await_error

local function pairs_to_map(list)
  local m = {}
  for _, kv in ipairs(list) do m[kv[1]:lower()] = kv[2] end
  return m
end

describe("asyncio.http client", function()
  teardown(peers.stop)

  it("gets a page: status, reason, headers, text", aspec.async(function()
    local base = await(peers.aiohttp())
    local s <close> = http.ClientSession()
    local r <close> = await(s:get(base .. "/hello"))
    assert.equal(200, r.status)
    assert.equal("OK", r.reason)
    assert.equal(base .. "/hello", r.url)
    assert.equal("text/plain; charset=utf-8", r.headers["Content-Type"])
    assert.equal("text/plain; charset=utf-8", r.headers["content-type"])
    assert.equal("12", r.headers:get("CONTENT-LENGTH"))
    assert.equal("Hello, world", await(r:text()))
    assert.equal("Hello, world", await(r:read())) -- kept
  end))

  it("keeps every value of a repeated header", aspec.async(function()
    local s <close> = http.ClientSession{
      base_url = await(peers.aiohttp())}
    local r <close> = await(s:get("/multi"))
    assert.same({"one", "two"}, r.headers:getall("x-multi"))
    assert.equal("one", r.headers["X-Multi"])
    assert.same({}, r.headers:getall("x-none", {}))
    await(r:read())
  end))

  it("sends params, headers, form, json and string bodies",
     aspec.async(function()
    local s <close> = http.ClientSession{base_url = await(peers.aiohttp()),
      headers = {["X-Session"] = "s1"}}
    local r = await(s:get("/echo?a=0", {params = {b = "x y", c = "é&"},
      headers = {["X-Req"] = "r1"}}))
    local v = await(r:json())
    assert.equal("GET", v.method)
    assert.same({{"a", "0"}, {"b", "x y"}, {"c", "é&"}}, v.query)
    local h = pairs_to_map(v.headers)
    assert.equal("s1", h["x-session"])
    assert.equal("r1", h["x-req"])
    r = await(s:post("/echo", {data = {name = "bob", n = 3}}))
    v = await(r:json())
    assert.equal("n=3&name=bob", v.body)
    assert.equal("application/x-www-form-urlencoded",
                 pairs_to_map(v.headers)["content-type"])
    r = await(s:put("/echo", {json = {k = {1, 2}}}))
    v = await(r:json())
    assert.equal("PUT", v.method)
    assert.same({k = {1, 2}}, cjson.decode(v.body))
    assert.equal("application/json", pairs_to_map(v.headers)["content-type"])
    for _, m in ipairs{"patch", "delete", "options"} do
      r = await(s[m](s, "/echo", {data = "raw " .. m}))
      v = await(r:json())
      assert.equal(m:upper(), v.method)
      assert.equal("raw " .. m, v.body)
    end
    r = await(s:head("/hello"))
    assert.equal(200, r.status)
    assert.equal("", await(r:read()))
  end))

  it("JSON null is http.null; json{loads =} decodes with a function of "
     .. "the caller's, on both sides, as aiohttp's loads; content_length",
     aspec.async(function()
    local web = require "asyncio.http.web"
    local app = web.Application()
    app.router:add_post("/j", async(function(request)
      local v = await(request:json())
      local raw = await(request:json{loads = function(t) return "raw:" .. t
      end})
      return web.json_response({next = v.next, is_null = v.next == web.null,
                                raw = raw})
    end))
    local runner, port = await(peers.serve(app))
    local s <close> = http.ClientSession()
    local url = "http://127.0.0.1:" .. port .. "/j"
    local r <close> = await(s:post(url, {data = '{"next": null}',
      headers = {["Content-Type"] = "application/json"}}))
    local v = await(r:json())
    assert.equal(http.null, v.next)
    assert.equal(cjson.null, v.next)
    assert.is_true(v.is_null)
    assert.equal('raw:{"next": null}', v.raw)
    assert.equal(#await(r:read()), r.content_length)
    local seen
    local got = await(r:json{loads = function(text)
      seen = text
      return "mine"
    end})
    assert.equal("mine", got)
    assert.equal(await(r:read()), seen)
    local ok, e = pcall(r.json, r, {loads = 5})
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'json' %(option 'loads': function "
                   .. "expected, got number%)", tostring(e))
    -- a method call counts as Lua does, self left out (as for an unknown
    -- option of the same call)
    ok, e = pcall(function() local x = r:json{loads = 5} return x end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'json' %(option 'loads': function "
                   .. "expected, got number%)", tostring(e))
    ok, e = pcall(function() local x = r:json{loadz = 5} return x end)
    assert.matches("bad argument #1 to 'json' %(unknown option 'loadz'%)",
                   tostring(e))
    local bad <close> = await(s:post(url, {data = "{nope"}))
    assert.equal(400, bad.status)
    await(runner:cleanup())
  end))

  it("sends a FormData, or a data table holding a file, as "
     .. "multipart/form-data, the file read as it is sent (aiohttp's)",
     aspec.async(function()
    local web = require "asyncio.http.web"
    local fs = require "asyncio.fs"
    local app = web.Application()
    app.router:add_post("/form", async(function(request)
      local form = await(request:post())
      local out = {ctype = request.content_type,
                   length = request.content_length,
                   te = request.headers["transfer-encoding"] or false}
      for k, v in pairs(form) do
        if type(v) == "table" then
          out[k] = {v.filename, v.content_type, v.body}
        else
          out[k] = v
        end
      end
      out.all_tags = form:getall("tag", {})
      return web.json_response(out)
    end))
    local runner, port = await(peers.serve(app))
    local url = "http://127.0.0.1:" .. port .. "/form"
    local path = os.tmpname()
    local content = string.rep("file bytes\0\r\n", 10000) -- 120 KB
    local w = assert(io.open(path, "wb")); w:write(content); w:close()
    local s <close> = http.ClientSession()
    local form = http.FormData()
    form:add_field("title", 'a "quoted"\r\nname')
    form:add_field("tag", "one")
    form:add_field("tag", 2)
    local f = await(fs.open(path, "rb"))
    form:add_field("upload", f, {content_type = "application/x-test"})
    form:add_field("note", "as text", {filename = "note.txt"})
    local r <close> = await(s:post(url, {data = form}))
    local v = await(r:json())
    assert.equal("multipart/form-data", v.ctype)
    -- the files' lengths are known: a Content-Length, as aiohttp's
    assert.is_false(v.te)
    assert.is_true(math.type(v.length) == "integer" and
                   v.length > #content + 200)
    assert.equal('a "quoted"\r\nname', v.title)
    assert.same({"one", "2"}, v.all_tags)
    assert.same({path:match("[^/]*$"), "application/x-test", content},
                v.upload)
    assert.same({"note.txt", "application/octet-stream", "as text"},
                v.note)
    await(f:close())
    -- a plain data table holding a file goes as multipart too
    local g = await(fs.open(path, "rb"))
    local r2 <close> = await(s:post(url, {data = {name = "x", doc = g}}))
    local v2 = await(r2:json())
    assert.equal("x", v2.name)
    assert.equal(content, v2.doc[3])
    await(g:close())
    local g2 = await(fs.open(path, "rb")) -- a file in a list value too
    local r2b <close> = await(s:post(url, {data = {docs = {g2}}}))
    assert.equal(content, await(r2b:json()).docs[3])
    await(g2:close())
    -- a file's type comes from its name, as aiohttp's (mimetypes)
    local png = path .. ".png"
    w = assert(io.open(png, "wb")); w:write("\x89PNG"); w:close()
    local p1 = await(fs.open(png, "rb"))
    local r2c <close> = await(s:post(url, {data = {pic = p1}}))
    assert.same({png:match("[^/]*$"), "image/png", "\x89PNG"},
                await(r2c:json()).pic)
    await(p1:close())
    local p2 = await(fs.open(png, "rb")) -- a whole body
    local r2d <close> = await(s:post(url, {data = p2}))
    assert.equal("image/png", await(r2d:json()).ctype)
    await(p2:close())
    os.remove(png)
    -- only strings: urlencoded, as aiohttp's
    local plain = http.FormData{b = "2", a = "1"}
    local r3 <close> = await(s:post(url, {data = plain}))
    local v3 = await(r3:json())
    assert.same({"application/x-www-form-urlencoded", "1", "2"},
                {v3.ctype, v3.a, v3.b})
    os.remove(path)
    assert.is_false(pcall(form.add_field, form, 1, "x"))
    assert.is_false(pcall(form.add_field, form, "x", true))
    assert.is_false(pcall(form.add_field, form, "x", "y", {filname = "z"}))
    await(runner:cleanup())
  end))

  it("streams a request body from a function (chunked)",
     aspec.async(function()
    local s <close> = http.ClientSession{base_url = await(peers.aiohttp())}
    local n = 0
    local r = await(s:post("/echo", {data = function()
      n = n + 1
      await(asyncio.sleep(0))
      if n <= 3 then return "part" .. n .. ";" end
    end}))
    local v = await(r:json())
    assert.equal("part1;part2;part3;", v.body)
    assert.equal("chunked", pairs_to_map(v.headers)["transfer-encoding"])
  end))

  it("sends an async file as the body with its length, byte for byte",
     aspec.async(function()
    local fs = require "asyncio.fs"
    local web = require "asyncio.http.web"
    local path = os.tmpname()
    local block = {}
    for i = 0, 255 do block[#block + 1] = string.char(i) end
    block = table.concat(block)
    local data = block:rep(3 * 4096) .. "tail" -- 3 MiB and 4 bytes
    local out = assert(io.open(path, "wb"))
    out:write(data)
    out:close()
    local sum = await(peers.run{"sha256sum", path}):match("^(%x+)")
    local s <close> = http.ClientSession()
    -- to Python's aiohttp, which hashes what it receives
    local base = await(peers.aiohttp())
    do
      local f <close> = await(fs.open(path, "rb"))
      local v = await(await(s:post(base .. "/digest", {data = f})):json())
      -- as aiohttp: a file that can seek is sent with Content-Length
      assert.same({#data, sum, tostring(#data)},
                  {v.length, v.sha256, v.content_length})
      assert.equal(cjson.null, v.transfer_encoding)
    end
    do -- from where the file stands
      local f <close> = await(fs.open(path, "rb"))
      await(f:seek("set", #data - 10))
      local v = await(await(s:post(base .. "/digest", {data = f})):json())
      assert.same({10, "10"}, {v.length, v.content_length})
    end
    -- to our own server
    local app = web.Application{client_max_size = 8 * 1024 * 1024}
    app.router:add_post("/echo", async(function(request)
      return web.Response{body = await(request:read()), headers = {
        ["X-CL"] = request.headers["Content-Length"]}}
    end))
    local runner, port = await(peers.serve(app))
    do
      local f <close> = await(fs.open(path, "rb"))
      local r <close> = await(s:post(("http://127.0.0.1:%d/echo")
                                     :format(port), {data = f}))
      assert.equal(tostring(#data), r.headers["X-CL"])
      assert.is_true(data == await(r:read()), "the body differs")
    end
    await(runner:cleanup())
    os.remove(path)
  end))

  it("sends an async file that cannot seek (a FIFO) chunked",
     aspec.async(function()
    local fs = require "asyncio.fs"
    local dir = await(fs.mkdtemp("/tmp/luaio-fifo-XXXXXX"))
    local fifo = dir .. "/f"
    local _, made = await(peers.run{"mkfifo", fifo})
    assert.equal(0, made)
    -- a writer on the other end: 200 KB, then its end closes
    local writer = await(asyncio.create_subprocess_exec("sh", "-c",
      "head -c 200000 /dev/zero | tr '\\0' 'z' > " .. fifo))
    local f <close> = await(fs.open(fifo, "rb"))
    local s <close> = http.ClientSession()
    local v = await(await(s:post(await(peers.aiohttp()) .. "/digest",
                                 {data = f})):json())
    assert.same({200000, "chunked", cjson.null},
                {v.length, v.transfer_encoding, v.content_length})
    assert.equal(0, await(writer:wait()))
    await(fs.unlink(fifo))
    await(fs.rmdir(dir))
  end))

  it("raises ClientPayloadError when a file ends short of its length",
     aspec.async(function()
    -- an async file (as asyncio.fs's) that says it holds 100 bytes and
    -- gives 10
    local File, given = {}, false
    local fake = setmetatable({}, {__index = File})
    function File:seek(whence)
      return async(function() return whence == "end" and 100 or 0 end)()
    end
    function File:read()
      return async(function()
        if given then return nil end
        given = true
        return ("x"):rep(10)
      end)()
    end
    local s <close> = http.ClientSession{base_url = await(peers.aiohttp())}
    local e = err_of(s:post("/digest", {data = fake}))
    assert.is_true(asyncio.iserror(e, http.ClientPayloadError), tostring(e))
    assert.matches("90 bytes short", e.message)
    -- the session goes on, on another connection
    assert.equal("Hello, world", await(await(s:get("/hello")):text()))
  end))

  it("reuses a kept-alive connection, and opens another after a close",
     aspec.async(function()
    local s <close> = http.ClientSession{base_url = await(peers.aiohttp())}
    local p1 = await(await(s:get("/peer")):text())
    local p2 = await(await(s:get("/peer")):text())
    assert.equal(p1, p2)
    assert.equal("bye", await(await(s:get("/close")):text()))
    local p3 = await(await(s:get("/peer")):text())
    assert.are_not.equal(p1, p3)
    -- a response closed unread while its body is still coming gives its
    -- connection up
    r = await(s:get("/drip"))
    r:close()
    local p4 = await(await(s:get("/peer")):text())
    assert.are_not.equal(p3, p4)
  end))

  it("reads a chunked body piece by piece", aspec.async(function()
    local s <close> = http.ClientSession{base_url = await(peers.aiohttp())}
    local r <close> = await(s:get("/chunked", {params = {n = 4}}))
    local got = {}
    for chunk in r.content:iter_chunked(4) do got[#got + 1] = chunk end
    assert.equal("chunk0;chunk1;chunk2;chunk3;", table.concat(got))
    for _, c in ipairs(got) do assert.is_true(#c <= 4) end
    local r2 <close> = await(s:get("/chunked", {params = {n = 2}}))
    assert.equal("chunk0;chu", await(r2.content:readexactly(10)))
    assert.equal("nk1;", await(r2.content:read()))
    assert.is_true(r2.content:at_eof())
  end))

  it("raises ClientResponseError from raise_for_status",
     aspec.async(function()
    local s <close> = http.ClientSession{base_url = await(peers.aiohttp())}
    local r = await(s:get("/status/404"))
    assert.equal(404, r.status)
    local ok, e = pcall(r.raise_for_status, r)
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, http.ClientResponseError))
    assert.is_true(asyncio.iserror(e, http.ClientError))
    assert.equal(404, e.status)
    local s2 <close> = http.ClientSession{base_url = await(peers.aiohttp()),
      raise_for_status = true}
    e = err_of(s2:get("/status/503"))
    assert.equal(503, e.status)
    assert.equal(200, await(s2:get("/status/200")).status)
  end))

  it("raises ClientConnectorError when nobody listens",
     aspec.async(function()
    local srv = await(asyncio.start_server(function() end, "127.0.0.1", 0))
    local port = srv.sockets[1].port
    srv:close()
    await(srv:wait_closed())
    local s <close> = http.ClientSession()
    local e = err_of(s:get("http://127.0.0.1:" .. port .. "/"))
    assert.is_true(asyncio.iserror(e, http.ClientConnectorError))
    assert.is_true(asyncio.iserror(e, http.ClientConnectionError))
    -- aiohttp's words: ssl:default when no ssl was given, the OSError's
    -- strerror in brackets
    assert.equal(("Cannot connect to host 127.0.0.1:%d ssl:default "
      .. "[Connect call failed ('127.0.0.1', %d)]"):format(port, port),
      e.message)
    assert.is_true(asyncio.iserror(e.os_error,
                                   asyncio.ConnectionRefusedError))
    -- as aiohttp's ClientOSError, an OSError with the errno of the
    -- failure
    assert.is_true(asyncio.iserror(e, http.ClientOSError))
    assert.is_true(asyncio.iserror(e, asyncio.OSError))
    assert.equal(e.os_error.errno, e.errno)
    assert.equal(("Connect call failed ('127.0.0.1', %d)"):format(port),
                 e.strerror)
    assert.is_true(asyncio.iserror(http.ClientOSError("x"), asyncio.OSError))
    e = err_of(s:get("http://127.0.0.1:" .. port .. "/", {ssl = false}))
    assert.matches("^Cannot connect to host 127%.0%.0%.1:%d+ ssl:False %[",
                   e.message)
  end))

  it("raises InvalidURL", aspec.async(function()
    local s <close> = http.ClientSession()
    for _, u in ipairs{"nope", "ftp://x/", "http://", "/relative",
                       "http://a b/"} do
      local e = err_of(s:get(u))
      assert.is_true(asyncio.iserror(e, http.InvalidURL), u)
      -- also a ValueError, as aiohttp's
      assert.is_true(asyncio.iserror(e, asyncio.ValueError), u)
    end
  end))

  it("raises ServerDisconnectedError when the server closes mid-head",
     aspec.async(function()
    local srv = await(asyncio.start_server(async(function(r, w)
      await(r:readuntil("\r\n\r\n"))
      w:write("HTTP/1.1 200 OK\r\nContent-")
      await(w:drain())
      w:close()
    end), "127.0.0.1", 0))
    local s <close> = http.ClientSession()
    local e = err_of(s:get("http://127.0.0.1:" .. srv.sockets[1].port))
    assert.is_true(asyncio.iserror(e, http.ServerDisconnectedError))
    srv:close()
  end))

  it("raises ClientPayloadError on a truncated body", aspec.async(function()
    local srv = await(asyncio.start_server(async(function(r, w)
      await(r:readuntil("\r\n\r\n"))
      w:write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
      await(w:drain())
      w:close()
    end), "127.0.0.1", 0))
    local s <close> = http.ClientSession()
    local r = await(s:get("http://127.0.0.1:" .. srv.sockets[1].port))
    local e = err_of(r:read())
    assert.is_true(asyncio.iserror(e, http.ClientPayloadError))
    srv:close()
  end))

  it("bounds a request by its timeouts", aspec.async(function()
    local base = await(peers.aiohttp())
    local s <close> = http.ClientSession{base_url = base,
      timeout = http.ClientTimeout{total = 0.2}}
    local e = err_of(s:get("/slow", {params = {s = 5}}))
    assert.is_true(asyncio.iserror(e, asyncio.TimeoutError))
    e = err_of(s:get("/slow", {params = {s = 5},
      timeout = http.ClientTimeout{sock_read = 0.1}}))
    assert.is_true(asyncio.iserror(e, asyncio.TimeoutError))
    -- the session still works, on a fresh connection
    assert.equal("Hello, world", await(await(s:get("/hello")):text()))
  end))

  it("closes the connection of a cancelled request", aspec.async(function()
    -- /slow never answers: the server shows when its request arrived and
    -- what it then read until the client closed (EOF: "")
    local arrived, closed = asyncio.Future(), asyncio.Future()
    local srv = await(asyncio.start_server(async(function(r, w)
      local head = await(r:readuntil("\r\n\r\n"))
      if head:match("^GET /slow ") then
        arrived:set_result(true)
        local ok, rest = pcall(await, r:read())
        closed:set_result(ok and rest or tostring(rest))
      else
        w:write("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"
          .. "Hello, world")
        await(w:drain())
      end
      w:close()
    end), "127.0.0.1", 0))
    local s <close> = http.ClientSession{
      base_url = "http://127.0.0.1:" .. srv.sockets[1].port}
    local t = asyncio.create_task(s:get("/slow"))
    await(asyncio.wait_for(arrived, 10)) -- the request is on the wire
    t:cancel()
    assert.is_false(pcall(await, t))
    assert.is_true(t:cancelled())
    assert.equal("", await(asyncio.wait_for(closed, 10)))
    local idle = 0
    for _, list in pairs(s._pool) do idle = idle + #list end
    assert.equal(0, idle)
    assert.equal("Hello, world", await(await(s:get("/hello")):text()))
    srv:close()
  end))

  it("talks HTTP/1.0 with python -m http.server", aspec.async(function()
    -- port 0: it listens on a free port, then prints "Serving HTTP on
    -- 127.0.0.1 port N (http://127.0.0.1:N/) ..."
    local p = await(asyncio.create_subprocess_exec(peers.PYTHON, "-u", "-m",
      "http.server", "0", "--bind", "127.0.0.1", "--directory", "spec",
      {stdout = asyncio.PIPE, stderr = asyncio.PIPE}))
    local _ <close> = setmetatable({}, {__close = function() -- on failure
      if p.returncode == nil then p:kill() end
    end})
    local line = await(asyncio.wait_for(p.stdout:readline(), 10))
    local port = assert(line:match("^Serving HTTP on [%d.]+ port (%d+)"),
                        "http.server: " .. line)
    local s <close> = http.ClientSession()
    local r = await(s:get(("http://127.0.0.1:%d/http_client_spec.lua")
      :format(port)))
    local f <close> = io.open("spec/http_client_spec.lua", "rb")
    assert.equal(200, r.status)
    assert.equal(f:read("a"), await(r:text()))
    p:kill()
    await(p:wait())
  end))

  it("follows redirects, keeping the history", aspec.async(function()
    local base = await(peers.aiohttp())
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:get("/redirect/3"))
    assert.equal(200, r.status)
    assert.equal("landed", await(r:text()))
    assert.equal(base .. "/redirect/0", r.url)
    assert.equal(3, #r.history)
    assert.same({302, base .. "/redirect/3"},
                {r.history[1].status, r.history[1].url})
    local e = err_of(s:get("/redirect/3", {max_redirects = 2}))
    assert.is_true(asyncio.iserror(e, http.TooManyRedirects))
    assert.is_true(asyncio.iserror(e, http.ClientResponseError))
    local r2 <close> = await(s:get("/redirect/1", {allow_redirects = false}))
    assert.equal(302, r2.status)
    assert.equal("/redirect/0", r2.headers["Location"])
    assert.same({}, r2.history)
    -- 303 after a POST: a GET without the body
    local r3 <close> = await(s:post("/see-other", {data = "payload"}))
    local v = await(r3:json())
    assert.same({"GET", ""}, {v.method, v.body})
  end))

  it("keeps cookies per session; bare-IP hosts only when unsafe",
     aspec.async(function()
    local base = await(peers.aiohttp())
    local s <close> = http.ClientSession{base_url = base}
    await(await(s:get("/setcookie")):read())
    assert.same({}, await(await(s:get("/cookies")):json()))
    local s2 <close> = http.ClientSession{base_url = base,
      cookie_jar = http.CookieJar{unsafe = true}}
    await(await(s2:get("/setcookie")):read())
    assert.same({session = "abc123"}, await(await(s2:get("/cookies")):json()))
    assert.equal(1, s2.cookie_jar:len())
    local s3 <close> = http.ClientSession{base_url = base}
    assert.same({}, await(await(s3:get("/cookies")):json()))
  end))

  it("matches cookies by domain, path, security and age", function()
    local url = http.URL
    local jar = http.CookieJar()
    local u = url.parse("http://www.example.com/app/page")
    jar:update_cookies({"a=1", "b=2; Path=/; Domain=example.com",
      "c=3; Path=/other", "d=4; Secure", "e=5; Max-Age=0",
      "f=6; Domain=evil.org", "g=7; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
      "h=8; Expires=Fri, 01 Jan 2100 00:00:00 GMT"}, u)
    assert.equal("a=1; b=2; h=8",
      jar:filter_cookies(url.parse("http://www.example.com/app/x")))
    assert.equal("b=2",
      jar:filter_cookies(url.parse("http://api.example.com/")))
    assert.equal("a=1; b=2; d=4; h=8",
      jar:filter_cookies(url.parse("https://www.example.com/app/")))
    assert.equal("", jar:filter_cookies(url.parse("http://evil.org/")))
    jar:update_cookies({"a=gone; Max-Age=0"}, u)
    assert.equal("b=2; h=8",
      jar:filter_cookies(url.parse("http://www.example.com/app/x")))
    jar:clear()
    assert.equal(0, jar:len())
  end)

  it("decodes gzip and deflate bodies", aspec.async(function()
    local s <close> = http.ClientSession{base_url = await(peers.aiohttp())}
    local r <close> = await(s:get("/gzip"))
    assert.equal("gzip", r.headers["Content-Encoding"])
    assert.equal(string.rep("compressed ", 100), await(r:text()))
    local r2 <close> = await(s:get("/deflate"))
    assert.equal("deflate", r2.headers["Content-Encoding"])
    assert.equal(string.rep("deflated ", 100), await(r2:text()))
  end))

  it("reads a gzip body whose first chunk decodes to nothing (the gzip "
     .. "header alone) to its end", aspec.async(function()
    local text = string.rep("hello gzip ", 20)
    local gz = assert(io.popen("printf '" .. text .. "' | gzip -c")):read("a")
    local function chunk(b) return ("%x\r\n%s\r\n"):format(#b, b) end
    local srv = await(asyncio.start_server(async(function(r, w)
      for _ = 1, 2 do
        await(r:readuntil("\r\n\r\n"))
        w:write("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
          .. "Transfer-Encoding: chunked\r\n\r\n" .. chunk(gz:sub(1, 10))
          .. chunk(gz:sub(11, 12)) .. chunk(gz:sub(13)) .. "0\r\n\r\n")
        await(w:drain())
      end
      w:close()
    end), "127.0.0.1", 0))
    local s <close> = http.ClientSession()
    local url = "http://127.0.0.1:" .. srv.sockets[1].port
    local r <close> = await(s:get(url))
    assert.equal(text, await(r:text()))
    local r2 <close> = await(s:get(url)) -- the same connection, read whole
    local pieces = {}
    for p in r2.content:iter_any() do pieces[#pieces + 1] = p end
    assert.equal(text, table.concat(pieces))
    srv:close()
  end))

  it("content:readchunk() and iter_chunks() give each HTTP chunk with "
     .. "true, as aiohttp's; an end parsed after its bytes comes as \"\", "
     .. "true", aspec.async(function()
    local first_read = asyncio.Event()
    local function chunk(b) return ("%x\r\n%s\r\n"):format(#b, b) end
    local srv = await(asyncio.start_server(async(function(r, w)
      local head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      await(r:readuntil("\r\n\r\n"))
      w:write(head .. chunk("abc") .. chunk("de") .. chunk("f")
              .. "0\r\n\r\n")
      await(r:readuntil("\r\n\r\n"))
      w:write(head .. chunk("abc") .. chunk("de") .. "0\r\n\r\n")
      await(r:readuntil("\r\n\r\n"))
      w:write(head .. chunk("abc") .. chunk("de") .. "0\r\n\r\n")
      await(r:readuntil("\r\n\r\n"))
      w:write(head .. "3\r\nxyz")
      await(w:drain())
      await(first_read:wait())
      w:write("\r\n0\r\n\r\n")
      await(w:drain())
      w:close()
    end), "127.0.0.1", 0))
    local s <close> = http.ClientSession()
    local url = "http://127.0.0.1:" .. srv.sockets[1].port
    local r1 <close> = await(s:get(url))
    local got = {}
    for data, ends in r1.content:iter_chunks() do
      got[#got + 1] = data .. (ends and "|" or "~")
    end
    assert.same({"abc|", "de|", "f|"}, got)
    assert.same({"", false}, {await(r1.content:readchunk())})
    local r2 <close> = await(s:get(url))
    assert.equal("ab", await(r2.content:read(2)))
    assert.same({"c", true}, {await(r2.content:readchunk())})
    assert.same({"de", true}, {await(r2.content:readchunk())})
    assert.same({"", false}, {await(r2.content:readchunk())})
    -- a read up to a chunk end leaves it for readchunk: "", true
    local r4 <close> = await(s:get(url))
    assert.equal("abc", await(r4.content:read(3)))
    assert.same({"", true}, {await(r4.content:readchunk())})
    assert.same({"de", true}, {await(r4.content:readchunk())})
    assert.same({"", false}, {await(r4.content:readchunk())})
    local r3 <close> = await(s:get(url))
    assert.same({"xyz", false}, {await(r3.content:readchunk())})
    first_read:set()
    assert.same({"", true}, {await(r3.content:readchunk())})
    assert.same({"", false}, {await(r3.content:readchunk())})
    srv:close()
  end))

  it("raises ClientPayloadError on a corrupt gzip body",
     aspec.async(function()
    local srv = await(asyncio.start_server(async(function(r, w)
      await(r:readuntil("\r\n\r\n"))
      w:write("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
        .. "Content-Length: 9\r\n\r\nnot gzip!")
      await(w:drain())
      w:close()
    end), "127.0.0.1", 0))
    local s <close> = http.ClientSession()
    local r <close> = await(s:get("http://127.0.0.1:" .. srv.sockets[1].port))
    local e = err_of(r:read())
    assert.is_true(asyncio.iserror(e, http.ClientPayloadError))
    srv:close()
  end))

  it("checks its arguments", function()
    local s = http.ClientSession()
    assert.has_error(function() s:request(1, "http://x/") end,
      "bad argument #1 to 'request' (string expected, got number)")
    assert.has_error(function() s:get(nil) end,
      "bad argument #1 to 'get' (string expected, got nil)")
    assert.has_error(function() s:request("GET", nil) end,
      "bad argument #2 to 'request' (string expected, got nil)")
    assert.has_error(function() http.ClientTimeout{total = "x"} end)
  end)
end)
