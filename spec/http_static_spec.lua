-- spec/http_static_spec.lua: web's router:add_static, files served from
-- a directory: content types and lengths, HEAD, 404 and 403, path
-- traversal (plain and percent-encoded, sent as is by curl
-- --path-as-is and raw sockets), symlinks leaving the directory,
-- If-Modified-Since, and a large file streamed without being read whole.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local web = require "asyncio.http.web"
local http = require "asyncio.http"
local peers = dofile("spec/fixtures/http_peers.lua")
local tmp = dofile("spec/fixtures/fsdir.lua")("luaio-static", before_each,
                                               after_each)
local async, await = asyncio.async, asyncio.await

--- A server with dir/public at /static (opts for add_static): runner,
-- base URL, port.
local function start(opts)
  os.execute("mkdir -p " .. tmp.path("public/sub"))
  local app = web.Application()
  app.router:add_static("/static/", tmp.path("public"), opts)
  app.router:add_get("/", async(function()
    return web.Response{text = "root"}
  end))
  local runner, port = await(peers.serve(app))
  return runner, "http://127.0.0.1:" .. port, port
end

--- The status line of a raw request for target.
local function raw_status(port, target)
  local r, w = await(asyncio.open_connection("127.0.0.1", port))
  w:write("GET " .. target .. " HTTP/1.1\r\nHost: x\r\n"
          .. "Connection: close\r\n\r\n")
  local line = await(asyncio.wait_for(r:readline(), 5))
  w:close()
  return tonumber(line:match("^HTTP/1%.1 (%d+)"))
end

describe("web static files", function()
  teardown(function() peers.stop() end)

  it("serves files with their type and length", aspec.async(function()
    local runner, base = start()
    tmp.put("public/index.html", "<p>hi</p>")
    tmp.put("public/sub/style.css", "p {}")
    local png = "\137PNG\r\n\26\n" .. ("\0\1\2\255"):rep(100)
    tmp.put("public/sub/img.PNG", png)
    tmp.put("public/data.bin", "\0\1")
    local s <close> = http.ClientSession{base_url = base}
    local want = {
      {"/static/index.html", "text/html", "<p>hi</p>"},
      {"/static/sub/style.css", "text/css", "p {}"},
      {"/static/sub/img.PNG", "image/png", png},
      {"/static/data.bin", "application/octet-stream", "\0\1"},
      {"/static/sub/%73tyle.css?v=2", "text/css", "p {}"},
    }
    for _, w in ipairs(want) do
      local r <close> = await(s:get(w[1]))
      assert.equal(200, r.status)
      assert.equal(w[2], r.headers["Content-Type"])
      assert.equal(tostring(#w[3]), r.headers["Content-Length"])
      assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$",
                     r.headers["Last-Modified"])
      assert.equal(w[3], await(r:read()))
    end
    -- curl agrees
    local out, code = await(peers.run{"curl", "-s", base ..
                                      "/static/index.html"})
    assert.equal(0, code)
    assert.equal("<p>hi</p>", out)
    await(runner:cleanup())
  end))

  it("serves byte ranges as aiohttp's FileResponse: 206 with "
     .. "Content-Range, 416 for one it cannot serve, the whole file when "
     .. "If-Range is older than it", aspec.async(function()
    local runner, base = start()
    local data = "0123456789abcdefghij" -- 20 bytes
    tmp.put("public/r.txt", data)
    local s <close> = http.ClientSession{base_url = base}
    local function get(range, extra)
      local headers = {Range = range}
      for k, v in pairs(extra or {}) do headers[k] = v end
      local r <close> = await(s:get("/static/r.txt", {headers = headers}))
      assert.equal("bytes", r.headers["Accept-Ranges"])
      return {r.status, await(r:read()), r.headers["Content-Range"]}
    end
    assert.same({206, "2345", "bytes 2-5/20"}, get("bytes=2-5"))
    assert.same({206, "fghij", "bytes 15-19/20"}, get("bytes=15-"))
    assert.same({206, "hij", "bytes 17-19/20"}, get("bytes=-3"))
    assert.same({206, data, "bytes 0-19/20"}, get("bytes=-50"))
    assert.same({206, "j", "bytes 19-19/20"}, get("bytes=19-100"))
    assert.same({206, data, "bytes 0-19/20"},
                get("bytes=0-9223372036854775807"))
    assert.same({206, data, "bytes 0-19/20"},
                get("bytes=0-99999999999999999999"))
    assert.same({416, "", "bytes */20"}, get("bytes=20-"))
    assert.same({416, "", "bytes */20"}, get("bytes=5-2"))
    assert.same({416, "", "bytes */20"}, get("bytes=1-2,4-5"))
    assert.same({416, "", "bytes */20"}, get("lines=1-2"))
    assert.same({200, data}, get(nil))
    assert.same({200, data}, get("bytes=2-5",
      {["If-Range"] = "Thu, 01 Jan 1970 00:00:00 GMT"}))
    assert.same({206, "2345", "bytes 2-5/20"}, get("bytes=2-5",
      {["If-Range"] = "Fri, 01 Jan 2100 00:00:00 GMT"}))
    -- curl agrees
    local out, code = await(peers.run{"curl", "-s", "-r", "3-6", base ..
                                      "/static/r.txt"})
    assert.equal(0, code)
    assert.equal("3456", out)
    await(runner:cleanup())
  end))

  it("answers HEAD with the head only", aspec.async(function()
    local runner, base = start()
    tmp.put("public/a.txt", ("x"):rep(1000))
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:head("/static/a.txt"))
    assert.equal(200, r.status)
    assert.equal("1000", r.headers["Content-Length"])
    assert.equal("text/plain", r.headers["Content-Type"])
    assert.equal("", await(r:read()))
    -- the connection stays in step: the next request on it is answered
    local r2 <close> = await(s:get("/static/a.txt"))
    assert.equal(1000, #await(r2:read()))
    await(runner:cleanup())
  end))

  it("answers 404 for a missing file and 403 for a directory",
     aspec.async(function()
    local runner, base = start()
    local s <close> = http.ClientSession{base_url = base}
    assert.equal(404, await(s:get("/static/nope.txt")).status)
    assert.equal(404, await(s:get("/static/sub/nope/x")).status)
    assert.equal(403, await(s:get("/static/sub")).status)
    assert.equal(403, await(s:get("/static/")).status)
    assert.equal(200, await(s:get("/")).status) -- the server goes on
    await(runner:cleanup())
  end))

  it("refuses .. and its encodings, NUL and symlinks out of the directory",
     aspec.async(function()
    local runner, base, port = start()
    tmp.put("secret.txt", "do not serve")
    tmp.put("public/ok.txt", "fine")
    os.execute(("ln -s %s %s"):format(tmp.path("secret.txt"),
                                      tmp.path("public/link.txt")))
    os.execute(("ln -s %s %s"):format(tmp.path("public/ok.txt"),
                                      tmp.path("public/inside.txt")))
    for _, target in ipairs{"/static/../secret.txt",
        "/static/sub/../../secret.txt", "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt", "/static/sub/%2e%2e%2f%2e%2e/secret.txt",
        "/static/..%2fsecret.txt", "/static/..%2Fsecret.txt"} do
      local out, code = await(peers.run{"curl", "-s", "--path-as-is",
        "-o", "/dev/null", "-w", "%{http_code}", base .. target})
      assert.equal(0, code)
      assert.equal("403", out, target)
      assert.equal(403, raw_status(port, target), target)
    end
    assert.equal(404, raw_status(port, "/static/ok.txt%00.png"))
    assert.equal(404, raw_status(port, "/static/link.txt"))
    -- a link that stays inside is served
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:get("/static/inside.txt"))
    assert.equal("fine", await(r:read()))
    await(runner:cleanup())
  end))

  it("follows links out of the directory only when asked",
     aspec.async(function()
    local runner, base, port = start{follow_symlinks = true}
    tmp.put("elsewhere.txt", "linked")
    os.execute(("ln -s %s %s"):format(tmp.path("elsewhere.txt"),
                                      tmp.path("public/link.txt")))
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:get("/static/link.txt"))
    assert.equal("linked", await(r:read()))
    assert.equal(403, raw_status(port, "/static/../elsewhere.txt"))
    await(runner:cleanup())
  end))

  it("answers If-Modified-Since with 304", aspec.async(function()
    local runner, base = start()
    tmp.put("public/a.txt", "abc")
    local s <close> = http.ClientSession{base_url = base}
    local r = await(s:get("/static/a.txt"))
    await(r:read())
    local last = r.headers["Last-Modified"]
    local r2 <close> = await(s:get("/static/a.txt",
      {headers = {["If-Modified-Since"] = last}}))
    assert.equal(304, r2.status)
    assert.equal("", await(r2:read()))
    local r3 <close> = await(s:get("/static/a.txt",
      {headers = {["If-Modified-Since"] = "Thu, 01 Jan 1970 00:00:00 GMT"}}))
    assert.equal(200, r3.status)
    assert.equal("abc", await(r3:read()))
    await(runner:cleanup())
  end))

  it("streams a large file in pieces, never holding it whole",
     aspec.async(function()
    local runner, base = start{chunk_size = 65536}
    local size = 16 * 1024 * 1024
    local data = {}
    for i = 1, size // 4096 do
      data[i] = string.char(i % 251) .. ("%08d"):format(i) ..
        ("x"):rep(4087)
    end
    data = table.concat(data)
    tmp.put("public/big.bin", data)
    collectgarbage()
    local before = collectgarbage("count") * 1024
    local peak = 0
    local s <close> = http.ClientSession{base_url = base}
    local r <close> = await(s:get("/static/big.bin"))
    assert.equal(tostring(size), r.headers["Content-Length"])
    local got, pieces = 0, 0
    for piece in r.content:iter_any() do
      assert.is_true(piece == data:sub(got + 1, got + #piece),
                     "bytes differ after " .. got)
      got = got + #piece
      pieces = pieces + 1
      if pieces % 16 == 0 then -- what is alive now, garbage collected
        collectgarbage()
        peak = math.max(peak, collectgarbage("count") * 1024 - before)
      end
    end
    assert.equal(size, got)
    assert.is_true(pieces > 16)
    -- both ends in this Lua state: far less than the file is alive at
    -- any time
    assert.is_true(peak < size / 8, ("peak %d bytes"):format(peak))
    await(runner:cleanup())
  end))

  it("checks its arguments", function()
    local app = web.Application()
    assert.has_error(function() app.router:add_static(1, "/tmp") end,
      "bad argument #1 to 'add_static' (string expected, got number)")
    assert.has_error(function() app.router:add_static("/s", nil) end,
      "bad argument #2 to 'add_static' (string expected, got nil)")
    assert.has_error(function() app.router:add_static("/s", "/tmp", 3) end,
      "bad argument #3 to 'add_static' (table expected, got number)")
  end)
end)
