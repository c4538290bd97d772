-- spec/websocket_spec.lua: WebSockets both ways against aiohttp (its
-- server with asyncio.http's ws_connect, its client with
-- web.WebSocketResponse), and the frame codec of asyncio._http.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local _http = require "asyncio._http"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await
local T = http.WSMsgType

describe("WebSockets", function()
  teardown(peers.stop)

  it("builds, parses and checks frames in C", function()
    assert.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                 _http.ws_accept("dGhlIHNhbXBsZSBub25jZQ=="))
    for _, n in ipairs{0, 5, 125, 126, 65535, 65536, 70000} do
      local payload = string.rep("p", n)
      local f = _http.ws_build(2, payload, {mask = true})
      local fin, op, got, nxt = _http.ws_parse(f, 1, {masked = true})
      assert.same({true, 2, payload, #f + 1}, {fin, op, got, nxt})
      -- every proper prefix asks for more
      for cut = 0, math.min(#f - 1, 20) do
        assert.is_nil(_http.ws_parse(f:sub(1, cut)))
      end
      assert.is_nil(_http.ws_parse(f:sub(1, #f - 1)))
    end
    local f = _http.ws_build(1, "hi", {fin = false})
    assert.same({false, 1, "hi", #f + 1},
                {_http.ws_parse(f, 1, {masked = false})})
    assert.same({false, 1002, "unmasked frame from the client"},
                {_http.ws_parse(f, 1, {masked = true})})
    assert.same({false, 1002, "reserved bits set"},
                {_http.ws_parse("\xf1\x00")})
    assert.same({false, 1002, "invalid opcode"}, {_http.ws_parse("\x83\x00")})
    assert.same({false, 1002, "invalid control frame"},
                {_http.ws_parse("\x09\x00")})
    assert.same({false, 1009, "frame too large"},
      {_http.ws_parse(_http.ws_build(2, string.rep("x", 100)), 1,
                      {max_size = 10})})
    assert.has_error(function() _http.ws_build(9, string.rep("x", 126)) end)
    assert.is_true(_http.utf8_valid("h\xc3\xa9 \xf0\x9f\x98\x80"))
    for _, bad in ipairs{"\xc3", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80",
                         "\xff"} do
      assert.is_false(_http.utf8_valid(bad))
    end
  end)

  it("talks to aiohttp's server with ws_connect", aspec.async(function()
    local base = await(peers.aiohttp())
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(base:gsub("^http", "ws") .. "/ws"))
    await(ws:send_str("hello"))
    local m = await(ws:receive())
    assert.same({T.TEXT, "echo:hello"}, {m.type, m.data})
    await(ws:send_bytes("\1\2\3"))
    m = await(ws:receive())
    assert.same({T.BINARY, "\3\2\1"}, {m.type, m.data})
    await(ws:send_json({a = 1}))
    assert.equal('echo:{"a":1}', await(ws:receive_str()))
    await(ws:ping("p"))
    await(ws:send_str("close"))
    m = await(ws:receive())
    assert.same({T.CLOSE, 4000, "bye"}, {m.type, m.data, m.extra})
    assert.is_true(ws.closed)
    assert.equal(4000, ws.close_code)
    assert.equal(T.CLOSED, await(ws:receive()).type)
  end))

  it("closes with a handshake from the client side", aspec.async(function()
    local base = await(peers.aiohttp())
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(base .. "/ws"))
    await(ws:send_str("x"))
    assert.equal("echo:x", await(ws:receive_str()))
    assert.is_true(await(ws:close{code = 1000}))
    assert.is_true(ws.closed)
    assert.is_false(await(ws:close()))
  end))

  it("refuses a server that does not upgrade", aspec.async(function()
    local base = await(peers.aiohttp())
    local s <close> = http.ClientSession()
    local ok, e = pcall(await, s:ws_connect(base .. "/hello"))
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, http.WSServerHandshakeError))
    assert.equal(200, e.status)
  end))

  local function ws_app(log)
    local app = web.Application()
    app.router:add_get("/ws", async(function(request)
      local ws = web.WebSocketResponse()
      await(ws:prepare(request))
      for m in ws:iter() do
        log[#log + 1] = m.type .. ":" .. m.data
        if m.type == T.TEXT then
          if m.data == "bye" then
            await(ws:close{code = 4001, message = "done"})
          else
            await(ws:send_str("got " .. m.data))
          end
        else
          await(ws:send_bytes(m.data:reverse()))
        end
      end
      log[#log + 1] = "end " .. tostring(ws.close_code)
      return ws
    end))
    return app
  end

  it("serves aiohttp's client with WebSocketResponse",
     aspec.async(function()
    local log = {}
    local runner = web.AppRunner(ws_app(log))
    await(runner:setup())
    local site = web.TCPSite(runner, "127.0.0.1", 0)
    await(site:start())
    local code = [[
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(sys.argv[1]) as ws:
            await ws.send_str("one")
            print((await ws.receive()).data)
            await ws.send_bytes(b"abc")
            print((await ws.receive()).data)
            big = "x" * 100000
            await ws.send_str(big)
            print(len((await ws.receive()).data))
            await ws.send_str("bye")
            m = await ws.receive()
            print(m.type.name, m.data, m.extra)
            print(ws.closed, ws.close_code)
asyncio.run(main())
]]
    local out, st, err = await(peers.python(code,
      "http://127.0.0.1:" .. site.port .. "/ws"))
    assert.equal(0, st, err)
    assert.equal("got one\nb'cba'\n100004\nCLOSE 4001 done\nTrue 4001\n",
                 out)
    assert.same({"1:one", "2:abc", "1:" .. string.rep("x", 100000), "1:bye",
                 "end 4001"}, log)
    await(runner:cleanup())
  end))

  it("speaks to itself, and rejects a plain GET on a ws route",
     aspec.async(function()
    local log = {}
    local runner = web.AppRunner(ws_app(log))
    await(runner:setup())
    local site = web.TCPSite(runner, "127.0.0.1", 0)
    await(site:start())
    local url = "http://127.0.0.1:" .. site.port .. "/ws"
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(url))
    await(ws:send_str("a"))
    assert.equal("got a", await(ws:receive_str()))
    await(ws:send_bytes("xyz"))
    assert.equal("zyx", await(ws:receive_bytes()))
    await(ws:close())
    local r = await(s:get(url))
    assert.equal(400, r.status)
    assert.matches("No WebSocket UPGRADE", await(r:text()))
    -- a client sending bad UTF-8 text is closed with 1007
    local rd, w = await(asyncio.open_connection("127.0.0.1", site.port))
    w:write("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
      .. _http.ws_build(1, "\xff\xfe", {mask = true}))
    local head = await(rd:readuntil("\r\n\r\n"))
    assert.matches("^HTTP/1.1 101 ", head)
    assert.matches("Sec%-WebSocket%-Accept: s3pPLMBiTxaQ9kYGzzhZRbK%+xOo=",
                   head)
    local rest = await(asyncio.wait_for(rd:read(), 5))
    local fin, op, payload = _http.ws_parse(rest, 1, {masked = false})
    assert.same({true, 8, 1007},
                {fin, op, (string.unpack(">I2", payload))})
    w:close()
    await(runner:cleanup())
  end))
end)
