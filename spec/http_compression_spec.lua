-- spec/http_compression_spec.lua: compressed HTTP bodies. The Deflater
-- (checked by Python's zlib), responses with enable_compression (read
-- by curl, Python's aiohttp and our client) and requests with compress=
-- (read by Python's aiohttp server and ours).
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local web = require "asyncio.http.web"
local http = require "asyncio.http"
local _http = require "asyncio._http"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await

local TEXT = ("compress me, "):rep(200)


--- curl's answer to a GET of url with the extra arguments: head, body.
local function curl(url, ...)
  local out, st = await(peers.run{"curl", "-s", "-i", url, ...})
  assert.equal(0, st)
  local head, body = out:match("^(.-\r\n)\r\n(.*)$")
  return head, body
end

local function header(head, name)
  local pat = name:lower():gsub("%-", "%%-")
  return head:lower():match("\n" .. pat .. ":%s*([^\r]*)")
end

--- An app whose /text answers TEXT compressed as enable(resp) says, and
-- whose /stream writes TEXT in 3 pieces as a compressed StreamResponse.
local function app_of(enable)
  local app = web.Application()
  app.router:add_get("/text", function()
    local r = web.Response{text = TEXT}
    enable(r)
    return r
  end)
  app.router:add_get("/stream", async(function(req)
    local r = web.StreamResponse()
    enable(r)
    await(r:prepare(req))
    for i = 1, 3 do
      await(r:write(TEXT:sub((i - 1) * 1000 + 1, i * 1000)))
    end
    await(r:write(TEXT:sub(3001)))
    await(r:write_eof())
    return r
  end))
  app.router:add_get("/nothing", function()
    local r = web.Response{status = 204}
    enable(r)
    return r
  end)
  return app
end

describe("HTTP compression", function()
  teardown(peers.stop)

  describe("the Deflater", function()
    it("makes gzip and zlib streams Python's zlib decodes", aspec.async(
       function()
      for _, kind in ipairs{"gzip", "deflate"} do
        local z = _http.Deflater(kind)
        local a = z:feed(TEXT)
        local b = z:finish("tail")
        assert.equal(#a + #b, z:size())
        assert.is_true(#a + #b < #TEXT // 10)
        local out, st = await(peers.run({peers.PYTHON, "-c",
          "import sys, zlib; d = sys.stdin.buffer.read(); " ..
          "sys.stdout.buffer.write(zlib.decompress(d, " ..
          (kind == "gzip" and "31" or "15") .. "))"}, a .. b))
        assert.equal(0, st)
        assert.equal(TEXT .. "tail", out)
      end
    end))

    it("holds back what zlib has not emitted, and ends once", function()
      local z = _http.Deflater("deflate", 9, 1)
      local head = z:feed("a")
      assert.is_true(#head <= 2) -- the zlib header at most: "a" is held
      local rest = z:finish()
      assert.equal(#head + #rest, z:size())
      local i = _http.Inflater("deflate")
      assert.equal("a", i:feed(head .. rest))
      assert.is_true(i:finish())
      assert.has_error(function() z:feed("x") end, "compression finished")
      assert.has_error(function() z:finish() end, "compression finished")
    end)

    it("checks its arguments", function()
      assert.has_error(function() _http.Deflater("br") end)
      assert.has_error(function() _http.Deflater("gzip", 10) end)
      assert.has_error(function() _http.Deflater("gzip", -1, 5) end)
      assert.has_error(function() _http.Deflater("gzip"):feed({}) end)
    end)
  end)

  describe("enable_compression", function()
    it("sends a Response deflated to curl, with its compressed length",
       aspec.async(function()
      local runner, base = await(peers.start(app_of(function(r)
        assert.is_false(r.compression)
        r:enable_compression()
        assert.is_true(r.compression)
      end)))
      -- curl --compressed asks for deflate and gzip: aiohttp's order
      -- picks deflate
      local head, body = curl(base .. "/text", "--compressed")
      assert.equal("deflate", header(head, "Content-Encoding"))
      assert.equal(TEXT, body)
      local raw_head, raw = curl(base .. "/text", "-H",
                                 "Accept-Encoding: deflate")
      assert.equal(tostring(#raw), header(raw_head, "Content-Length"))
      assert.equal(TEXT, _http.Inflater("deflate"):feed(raw))
      await(runner:cleanup())
    end))

    it("picks gzip when only gzip is accepted, and nothing when none is",
       aspec.async(function()
      local runner, base = await(peers.start(app_of(function(r)
        r:enable_compression()
      end)))
      for _, case in ipairs{
          {"gzip", "gzip"}, {"deflate;q=0, gzip;q=0.5", "gzip"},
          {"GZIP", "gzip"}, {"br", nil}, {"identity", nil},
          {"deflate;q=0", nil}} do
        local head, body = curl(base .. "/text", "-H",
                                "Accept-Encoding: " .. case[1])
        assert.equal(case[2], header(head, "Content-Encoding"), case[1])
        if case[2] then
          assert.equal(TEXT, _http.Inflater(case[2]):feed(body))
        else
          assert.equal(TEXT, body)
          assert.equal(tostring(#TEXT), header(head, "Content-Length"))
        end
      end
      local head, body = curl(base .. "/text")
      assert.is_nil(header(head, "Content-Encoding"))
      assert.equal(TEXT, body)
      await(runner:cleanup())
    end))

    it("streams a StreamResponse forced to gzip, chunked, to aiohttp",
       aspec.async(function()
      local runner, base = await(peers.start(app_of(function(r)
        r:enable_compression("gzip")
      end)))
      local out, st = await(peers.python([[
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession() as s:
        h = {"Accept-Encoding": "br"}
        async with s.get(sys.argv[1], headers=h) as r:
            body = await r.text()
            print(r.headers["Content-Encoding"],
                  r.headers["Transfer-Encoding"],
                  "Content-Length" in r.headers, len(body),
                  body == sys.argv[2])
asyncio.run(main())
]], base .. "/stream", TEXT))
      assert.equal(0, st)
      assert.equal("gzip chunked False " .. #TEXT .. " True\n", out)
      await(runner:cleanup())
    end))

    it("leaves identity, 204 and HEAD bodies alone", aspec.async(function()
      local runner, base = await(peers.start(app_of(function(r)
        r:enable_compression(web.ContentCoding.identity)
      end)))
      local head, body = curl(base .. "/text", "--compressed")
      assert.is_nil(header(head, "Content-Encoding"))
      assert.equal(TEXT, body)
      await(runner:cleanup())
      runner, base = await(peers.start(app_of(function(r)
        r:enable_compression(true)
      end)))
      head = curl(base .. "/nothing", "--compressed")
      assert.truthy(head:match("^HTTP/1.1 204"))
      assert.is_nil(header(head, "Content-Encoding"))
      -- HEAD: the head a GET would get, no body
      head, body = curl(base .. "/text", "-I")
      assert.equal("deflate", header(head, "Content-Encoding"))
      assert.equal(#_http.Deflater("deflate"):finish(TEXT),
                   tonumber(header(head, "Content-Length")))
      assert.equal("", body)
      await(runner:cleanup())
    end))

    it("compresses a FileResponse", aspec.async(function()
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(TEXT)
      f:close()
      local app = web.Application()
      app.router:add_get("/file", function()
        local r = web.FileResponse(path)
        r:enable_compression("gzip")
        return r
      end)
      local runner, base = await(peers.start(app))
      local s <close> = http.ClientSession()
      local r = await(s:get(base .. "/file"))
      assert.equal("gzip", r.headers["content-encoding"])
      assert.equal(TEXT, await(r:text()))
      await(runner:cleanup())
      os.remove(path)
    end))

    it("raises on a coding or strategy it does not know", function()
      local r = web.Response{text = "x"}
      assert.has_error(function() r:enable_compression("br") end,
        'bad argument #1 to \'enable_compression\' ("deflate", "gzip", ' ..
        '"identity" or boolean expected, got "br")')
      assert.has_error(function() r:enable_compression(nil, 7) end,
        "bad argument #2 to 'enable_compression' (integer 0..4 expected)")
      assert.is_false(r.compression)
      r:enable_compression(nil, 3) -- Z_RLE
      assert.is_true(r.compression)
    end)
  end)

  describe("compress= on requests", function()
    it("sends a deflated, chunked body that aiohttp decodes",
       aspec.async(function()
      local base = await(peers.aiohttp())
      local s <close> = http.ClientSession()
      local r = await(s:post(base .. "/echo", {data = TEXT, compress = true}))
      local v = await(r:json())
      assert.equal(TEXT, v.body)
      assert.equal("deflate", peers.received(v, "Content-Encoding"))
      assert.equal("chunked", peers.received(v, "Transfer-Encoding"))
      assert.is_nil(peers.received(v, "Content-Length"))
    end))

    it("gzips a body made of pieces", aspec.async(function()
      local base = await(peers.aiohttp())
      local s <close> = http.ClientSession()
      local pieces, i = {"one ", "two ", "", "three"}, 0
      local r = await(s:put(base .. "/echo", {compress = "gzip",
        data = function()
          i = i + 1
          return pieces[i]
        end}))
      local v = await(r:json())
      assert.equal("one two three", v.body)
      assert.equal("gzip", peers.received(v, "Content-Encoding"))
    end))

    it("reaches our own server decoded", aspec.async(function()
      local app = web.Application()
      app.router:add_post("/", async(function(req)
        return web.Response{text = req.headers["content-encoding"] .. " " ..
          await(req:text())}
      end))
      local runner, base = await(peers.start(app))
      local s <close> = http.ClientSession()
      local r = await(s:post(base .. "/", {json = {a = TEXT},
                                          compress = "gzip"}))
      assert.equal('gzip {"a":"' .. TEXT .. '"}', await(r:text()))
      await(runner:cleanup())
    end))

    it("sends no body as it is, and refuses a Content-Encoding of the "
       .. "caller's", aspec.async(function()
      local base = await(peers.aiohttp())
      local s <close> = http.ClientSession()
      local v = await((await(s:get(base .. "/echo", {compress = true})))
                      :json())
      assert.is_nil(peers.received(v, "Content-Encoding"))
      local ok, err = pcall(function()
        return await(s:post(base .. "/echo", {data = "x", compress = "gzip",
          headers = {["Content-Encoding"] = "br"}}))
      end)
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(err, asyncio.ValueError))
      assert.equal("compress can not be set if Content-Encoding header is "
                   .. "set", err.message)
      assert.has_error(function()
        s:post(base .. "/echo", {data = "x", compress = "br"})
      end, "bad argument #2 to 'post' (field 'compress': \"deflate\", "
        .. '"gzip" or boolean expected, got string)')
    end))
  end)

  describe("a compressed body that decodes to too much", function()
    --- gzip of n MiB of zero bytes (about n KiB)
    local function zeros_gzip(n)
      local z, parts = _http.Deflater("gzip", 9), {}
      local mib = ("\0"):rep(1 << 20)
      for i = 1, n do parts[i] = z:feed(mib) end
      parts[#parts + 1] = z:finish()
      return table.concat(parts)
    end

    it("Inflater:feed gives nil past the bound given to one feed, and "
       .. "the stream is over", function()
      local bomb = zeros_gzip(2)
      local z = _http.Inflater("gzip")
      assert.is_nil(z:feed(bomb, 1 << 20))
      assert.has_error(function() z:feed(bomb) end,
                       "invalid compressed data")
      assert.equal(2 << 20, #_http.Inflater("gzip"):feed(bomb, 2 << 20))
      assert.equal(2 << 20, #_http.Inflater("gzip"):feed(bomb))
    end)

    it("the client's read of a zip bomb raises ClientPayloadError as "
       .. "aiohttp's DEFAULT_MAX_DECOMPRESS_SIZE", aspec.async(function()
      local bomb = zeros_gzip(128) -- 128 KiB on the wire
      local srv = await(asyncio.start_server(async(function(r, w)
        await(r:readuntil("\r\n\r\n"))
        w:write("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                .. "Content-Length: " .. #bomb .. "\r\n\r\n" .. bomb)
        await(w:drain())
        w:close()
      end), "127.0.0.1", 0))
      local session <close> = http.ClientSession()
      local resp <close> = await(session:get("http://127.0.0.1:"
        .. srv.sockets[1]:getsockname()[2] .. "/"))
      local e = select(2, pcall(await, resp:read()))
      assert.is_true(asyncio.iserror(e, http.ClientPayloadError),
                     tostring(e):sub(1, 200))
      assert.equal("400, message='Decompressed data exceeds the configured "
                   .. "limit of 33554432 bytes'", e.message)
      srv:close()
      await(srv:wait_closed())
    end))
  end)
end)
