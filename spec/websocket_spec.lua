-- spec/websocket_spec.lua: WebSockets both ways against aiohttp (its
-- server with asyncio.http's ws_connect, its client with
-- web.WebSocketResponse; spec/fixtures/aiohttp_ws_peer.py), raw sockets
-- for what aiohttp cannot send. The frame codec is ws_frame_spec's.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local _http = require "asyncio._http"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await
local T = http.WSMsgType
local cjson = require "cjson"

describe("WebSockets", function()
  teardown(peers.stop)

  -- Serves app; returns its runner, a session and that session's
  -- websocket to app's /ws.
  local function serve_and_connect(app)
    local runner, port = await(peers.serve(app))
    local s = http.ClientSession()
    return runner, s, await(s:ws_connect("http://127.0.0.1:" .. port .. "/ws"))
  end

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
    m = await(ws:receive())
    assert.equal('echo:{"a":1}', m.data)
    assert.is_false(pcall(m.json, m)) -- "echo:" is not JSON
    local function after_echo(t) return cjson.decode(t:sub(6)) end
    assert.same({a = 1}, m:json{loads = after_echo})
    await(ws:send_str("[1, null]"))
    m = await(ws:receive())
    assert.same({1, http.null}, m:json{loads = after_echo})
    await(ws:ping("p"))
    await(ws:send_str("close"))
    m = await(ws:receive())
    assert.same({T.CLOSE, 4000, "bye"}, {m.type, m.data, m.extra})
    assert.is_true(ws.closed)
    assert.equal(4000, ws.close_code)
    assert.equal(T.CLOSED, await(ws:receive()).type)
  end))

  it("ws_connect takes params, auth and method, as aiohttp's",
     aspec.async(function()
    local app = web.Application()
    app.router:add_route("*", "/who", async(function(request)
      local ws = web.WebSocketResponse()
      await(ws:prepare(request))
      await(ws:send_str(request.method .. " " .. tostring(request.query.q)
        .. " " .. tostring(request.headers["Authorization"])))
      await(ws:close())
      return ws
    end))
    local runner, port = await(peers.serve(app))
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect("http://127.0.0.1:" .. port .. "/who",
      {params = {q = "x y"}, auth = http.BasicAuth("u", "p")}))
    assert.equal("GET x y Basic dTpw", await(ws:receive_str()))
    await(ws:close())
    assert.matches("field 'method': string expected", tostring(select(2,
      pcall(s.ws_connect, s, "http://127.0.0.1:1/", {method = 1}))))
    await(runner:cleanup())
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
        log[#log + 1] = m.type .. ":" .. tostring(m.data)
        if m.type == T.ERROR then
          log[#log + 1] = "error " .. m.data.code
        elseif m.type == T.TEXT then
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
    local runner, port = await(peers.serve(ws_app(log)))
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
      "http://127.0.0.1:" .. port .. "/ws"))
    assert.equal(0, st, err)
    assert.equal("got one\nb'cba'\n100004\nCLOSE 4001 done\nTrue 4001\n",
                 out)
    -- close_code is the code of the peer's answer (aiohttp answers 1000)
    assert.same({"1:one", "2:abc", "1:" .. string.rep("x", 100000), "1:bye",
                 "end 1000"}, log)
    await(runner:cleanup())
  end))

  it("a WebSocketResponse before prepare: its methods raise "
     .. "RuntimeError, as aiohttp's; after: its own and the WebSocket's",
     aspec.async(function()
    local seen = {}
    local app = web.Application()
    app.router:add_get("/ws", async(function(request)
      local ws = web.WebSocketResponse()
      assert.is_false(ws.closed)
      assert.is_false(ws.prepared)
      local ok, e = pcall(ws.send_str, ws, "early")
      seen.early = not ok and asyncio.iserror(e, asyncio.RuntimeError) and
        e.message
      seen.name = tostring(ws):match("^[^:]+")
      await(ws:prepare(request))
      seen.prepared = ws.prepared
      seen.name_after = tostring(ws):match("^[^:]+")
      -- its own method still: aiohttp's can_prepare refuses now
      local cok, ce = pcall(ws.can_prepare, ws, request)
      seen.can = not cok and ce.message
      await(ws:send_str("hi " .. await(ws:receive_str())))
      await(ws:close())
      return ws
    end))
    local runner, s <close>, ws = serve_and_connect(app)
    await(ws:send_str("there"))
    assert.equal("hi there", await(ws:receive_str()))
    assert.equal(T.CLOSE, await(ws:receive()).type)
    assert.same({early = "Call .prepare() first",
      name = "web.WebSocketResponse", prepared = true,
      name_after = "web.WebSocketResponse", can = "Already started"}, seen)
    await(runner:cleanup())
  end))

  it("speaks to itself, and rejects a plain GET on a ws route",
     aspec.async(function()
    local log = {}
    local runner, port = await(peers.serve(ws_app(log)))
    local url = "http://127.0.0.1:" .. port .. "/ws"
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
    local rd, w = await(asyncio.open_connection("127.0.0.1", port))
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

  -----------------------------------------------------------------------
  -- aiohttp's options: heartbeat, protocols, timeouts, max_msg_size,
  -- autoclose, close() from another task

  local PEER = "spec/fixtures/aiohttp_ws_peer.py"
  -- heartbeats, in seconds: a pong must come within half of one, so
  -- under valgrind (fifty times slower) they are longer
  local SLOW = os.getenv("LUAIO_VALGRIND") == "1"
  local HB = SLOW and 2 or 0.1        -- ours
  local PEER_HB = SLOW and 2 or 0.2   -- aiohttp's
  local ws_peer -- "127.0.0.1:PORT" of the aiohttp ws server, started once
  local function aiohttp_ws()
    if ws_peer then return ws_peer.url end
    local p = await(asyncio.create_subprocess_exec(peers.PYTHON, PEER,
      "server", tostring(PEER_HB), {stdout = asyncio.PIPE}))
    ws_peer = {pid = p.pid}
    local line = await(p.stdout:readline())
    ws_peer.url = "ws://127.0.0.1:" .. assert(line:match("^PORT (%d+)"),
                                               line)
    return ws_peer.url
  end
  teardown(function()
    if ws_peer then os.execute("kill " .. ws_peer.pid) end
  end)
  -- a bound on waits that should end by themselves: a hang fails
  local function bounded(aw)
    return await(asyncio.wait_for(aw, SLOW and 60 or 5))
  end
  -- what the aiohttp handlers saw, once key is there: the peer answers
  -- /last?key= when its handler recorded key (after its connection
  -- ended, which may be after ours did)
  local function peer_seen(s, key)
    local r <close> = bounded(s:get((aiohttp_ws():gsub("^ws", "http")) ..
                                    "/last", {params = {key = key}}))
    local seen = await(r:json())
    assert.is_not_nil(seen[key], "the aiohttp peer never recorded " .. key)
    return seen
  end

  it("heartbeat: a peer that never answers pings is closed with 1006",
     aspec.async(function()
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(aiohttp_ws() .. "/deaf",
      {heartbeat = HB}))
    local m = bounded(ws:receive())
    assert.equal(T.ERROR, m.type)
    assert.is_true(asyncio.iserror(m.data, asyncio.TimeoutError))
    assert.equal(m.data, ws:exception())
    assert.equal(1006, ws.close_code)
    assert.is_true(ws.closed)
    assert.same({type = T.CLOSED}, await(ws:receive()))
    assert.is_false(await(ws:close()))
    -- the peer saw one ping, unanswered, then the end
    assert.equal(1, peer_seen(s, "deaf_pings").deaf_pings)
  end))

  it("answers aiohttp's heartbeat pings while receiving",
     aspec.async(function()
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(aiohttp_ws() .. "/hb"))
    -- the peer sends "3 pongs" once three of its pings were answered
    assert.same({type = T.TEXT, data = "3 pongs", extra = ""},
                bounded(ws:receive()))
    assert.same({type = T.CLOSE, data = 4003, extra = ""},
                bounded(ws:receive()))
    assert.equal(4003, ws.close_code)
    assert.is_nil(ws:exception())
  end))

  it("negotiates a subprotocol with aiohttp's server (match, no match)",
     aspec.async(function()
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(aiohttp_ws() .. "/proto",
      {protocols = {"x", "chat"}}))
    assert.equal("chat", ws.protocol)
    assert.equal("chat", await(ws:receive_str()))
    await(ws:close())
    ws = await(s:ws_connect(aiohttp_ws() .. "/proto",
      {protocols = {"nope"}}))
    assert.is_nil(ws.protocol)
    assert.equal("None", await(ws:receive_str()))
    await(ws:close())
  end))

  it("receive(timeout) and receive_timeout raise TimeoutError and keep "
     .. "the connection", aspec.async(function()
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(aiohttp_ws() .. "/ws",
      {receive_timeout = 0.05}))
    for _, call in ipairs{function() return ws:receive(0.05) end,
                          function() return ws:receive() end,
                          function() return ws:receive_str() end} do
      local ok, e = pcall(await, call())
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, asyncio.TimeoutError))
      assert.equal(1006, ws.close_code)
      assert.is_false(ws.closed)
    end
    -- a message split over the timeout is not lost
    await(ws:send_str("big:300000"))
    assert.equal(300000, #await(ws:receive_str(5)))
    await(ws:send_str("after"))
    assert.equal("after", await(ws:receive_str(5)))
    assert.is_true(await(ws:close()))
    assert.equal(1000, ws.close_code)
  end))

  it("a receive timed out between fragments or inside a frame loses "
     .. "nothing (raw server)", aspec.async(function()
    local go = {asyncio.Event(), asyncio.Event()}
    local server = await(asyncio.start_server(async(function(r, w)
      local head = await(r:readuntil("\r\n\r\n"))
      local key = head:match("[Ss]ec%-[Ww]eb[Ss]ocket%-[Kk]ey: (%S+)")
      local frame = _http.ws_build(0, "-end", {fin = true})
      w:write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        .. "Connection: Upgrade\r\nSec-WebSocket-Accept: " ..
        _http.ws_accept(key) .. "\r\n\r\n" ..
        _http.ws_build(1, "start", {fin = false}) .. frame:sub(1, 3))
      await(go[1]:wait())
      w:write(frame:sub(4, 5))
      await(go[2]:wait())
      w:write(frame:sub(6) .. _http.ws_build(8, string.pack(">I2", 1000)))
      await(r:read())
      w:close()
    end), "127.0.0.1", 0))
    local port = server.sockets[1]:getsockname()[2]
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect("ws://127.0.0.1:" .. port .. "/"))
    for i = 1, 2 do
      local ok, e = pcall(await, ws:receive(0.02))
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, asyncio.TimeoutError))
      go[i]:set()
    end
    assert.same({type = T.TEXT, data = "start-end", extra = ""},
                bounded(ws:receive()))
    assert.same({type = T.CLOSE, data = 1000, extra = ""},
                bounded(ws:receive()))
    server:close()
    await(server:wait_closed())
  end))

  it("max_msg_size: a message of that size or more closes with 1009 "
     .. "both ways (aiohttp's >=)", aspec.async(function()
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(aiohttp_ws() .. "/ws?tag=big",
      {max_msg_size = 1000}))
    await(ws:send_str("big:999"))
    assert.equal(999, #await(ws:receive_str()))
    await(ws:send_str("big:1000"))
    local m = bounded(ws:receive())
    assert.equal(T.ERROR, m.type)
    assert.is_true(asyncio.iserror(m.data, http.WebSocketError))
    assert.equal(1009, m.data.code)
    assert.equal("Message size 1000 exceeds limit 1000", m.data.message)
    -- as aiohttp: the frame sent says 1009, close_code ends 1006 (the
    -- close found the stream broken), exception() is the error
    assert.equal(1006, ws.close_code)
    assert.equal(m.data, ws:exception())
    assert.equal(T.CLOSED, await(ws:receive()).type)
    -- the other way: aiohttp's max_msg_size
    ws = await(s:ws_connect(aiohttp_ws() .. "/small"))
    await(ws:send_str(("y"):rep(1001)))
    assert.same({type = T.CLOSE, data = 1009, extra = ""},
                bounded(ws:receive()))
    -- the aiohttp server saw our close frame's 1009
    assert.equal(1009, peer_seen(s, "big").big)
  end))

  it("close() from another task: the receiver gets CLOSING; closed "
     .. "receives give CLOSED", aspec.async(function()
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(aiohttp_ws() .. "/ws?tag=later"))
    local got, first = {}, asyncio.Event()
    local reader = asyncio.create_task(async(function()
      for m in ws:iter() do
        got[#got + 1] = m.data
        first:set()
      end
      got[#got + 1] = "end"
    end)())
    await(ws:send_str("one"))
    bounded(first:wait()) -- the reader is in receive() again
    assert.is_true(await(ws:close{code = 4005, message = "later"}))
    bounded(reader)
    assert.same({"one", "end"}, got)
    assert.equal(1000, ws.close_code) -- aiohttp answers with 1000
    assert.is_false(await(ws:close()))
    assert.same({type = T.CLOSED}, await(ws:receive()))
    assert.equal(4005, peer_seen(s, "later").later)
  end))

  it("<close> on a client websocket sends a close frame and closes",
     aspec.async(function()
    local s <close> = http.ClientSession()
    local kept
    do
      local ws <close> = await(s:ws_connect(aiohttp_ws() .. "/ws?tag=scope"))
      await(ws:send_str("in scope"))
      assert.equal("in scope", await(ws:receive_str()))
      kept = ws
    end
    assert.is_true(kept.closed)
    assert.equal(1000, kept.close_code)
    assert.same({type = T.CLOSED}, await(kept:receive()))
    assert.equal(1000, peer_seen(s, "scope").scope)
  end))

  it("autoclose = false: CLOSE, then close() answers it; or the next "
     .. "receive does, giving CLOSED, as aiohttp's client",
     aspec.async(function()
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(aiohttp_ws() .. "/ws",
      {autoclose = false, autoping = false}))
    await(ws:send_str("ping"))
    assert.same({type = T.PING, data = "srv", extra = ""},
                bounded(ws:receive()))
    await(ws:send_str("close"))
    assert.same({type = T.CLOSE, data = 4001, extra = "server bye"},
                bounded(ws:receive()))
    assert.is_false(ws.closed)
    assert.is_true(await(ws:close()))
    assert.is_true(ws.closed)
    assert.equal(4001, ws.close_code)
    -- the next receive answers the close itself
    ws = await(s:ws_connect(aiohttp_ws() .. "/ws", {autoclose = false}))
    await(ws:send_str("close"))
    assert.same({type = T.CLOSE, data = 4001, extra = "server bye"},
                bounded(ws:receive()))
    assert.same({type = T.CLOSED}, bounded(ws:receive()))
    assert.is_true(ws.closed)
    assert.equal(4001, ws.close_code)
    assert.is_false(await(ws:close()))
    assert.same({type = T.CLOSED}, await(ws:receive()))
  end))

  -- luaio's server, driven by aiohttp's client (the scenarios of
  -- aiohttp_ws_peer.py)
  it("serves aiohttp's client: heartbeat, protocols, timeouts, "
     .. "max_msg_size", aspec.async(function()
    local log = {}
    local app = web.Application()
    app.router:add_get("/proto", async(function(request)
      local ws = web.WebSocketResponse{protocols = {"chat", "superchat"}}
      await(ws:prepare(request))
      await(ws:send_str(ws.ws_protocol or "None"))
      for _ in ws:iter() do end
      return ws
    end))
    app.router:add_get("/hb", async(function(request)
      local ws = web.WebSocketResponse{heartbeat = HB}
      await(ws:prepare(request))
      local m = await(ws:receive())
      log.hb = {m.type, asyncio.iserror(m.data, asyncio.TimeoutError),
                ws.close_code, ws:exception() == m.data}
      return ws
    end))
    app.router:add_get("/pings", async(function(request)
      local ws = web.WebSocketResponse{autoping = false}
      await(ws:prepare(request))
      local n = 0
      for m in ws:iter() do
        if m.type == T.PING then
          n = n + 1
          await(ws:pong(m.data))
          if n == 3 then
            await(ws:send_str("3 pings"))
            log.pings_close = await(ws:close{code = 4003})
          end
        end
      end
      return ws
    end))
    app.router:add_get("/small", async(function(request)
      local ws = web.WebSocketResponse{max_msg_size = 1000}
      await(ws:prepare(request))
      for m in ws:iter() do
        if m.type == T.TEXT then await(ws:send_str(m.data))
        elseif m.type == T.ERROR then log.small = m.data.code end
      end
      return ws
    end))
    app.router:add_get("/timeout", async(function(request)
      local ws = web.WebSocketResponse{receive_timeout = 0.05}
      await(ws:prepare(request))
      local ok, e = pcall(await, ws:receive())
      log.timeout = {ok, asyncio.iserror(e, asyncio.TimeoutError)}
      await(ws:send_str("timed out"))
      return ws -- the server closes it (write_eof)
    end))
    local runner, port = await(peers.serve(app))
    local out, st, err = await(peers.run{peers.PYTHON, PEER, "client",
      tostring(PEER_HB), "http://127.0.0.1:" .. port, "protocols",
      "deaf", "heartbeat", "too_big", "silent"})
    await(runner:cleanup())
    assert.equal(0, st, err)
    local v = cjson.decode(out)
    assert.same({match = "superchat", match_msg = "superchat",
                 none = cjson.null, none_msg = "None"}, v.protocols)
    -- our heartbeat pinged the deaf client once, then closed with 1006
    assert.same({T.PING, ""}, v.deaf.got[1])
    assert.equal(2, #v.deaf.got)
    assert.same({T.ERROR, true, 1006, true}, log.hb)
    -- aiohttp's heartbeat pings reached the handler (autoping off)
    assert.same({{T.TEXT, "3 pings"}, {T.CLOSE, 4003}}, v.heartbeat.got)
    assert.is_true(log.pings_close)
    assert.equal(999, v.too_big.first)
    assert.same({{T.CLOSE, 1009}}, v.too_big.got)
    assert.equal(1009, log.small)
    assert.same({{T.TEXT, "timed out"}, {T.CLOSE, 1000}}, v.silent.got)
    assert.same({false, true}, log.timeout)
  end))

  it("a server handler receiving after the end gets CLOSED, then "
     .. "RuntimeError the fifth time", aspec.async(function()
    local seen, done = {}, asyncio.Event()
    local app = web.Application()
    app.router:add_get("/ws", async(function(request)
      local ws = web.WebSocketResponse()
      await(ws:prepare(request))
      for _ in ws:iter() do end
      for _ = 1, 5 do
        local ok, m = pcall(await, ws:receive())
        seen[#seen + 1] = ok and m.type or tostring(m)
      end
      done:set()
      return ws
    end))
    local runner, port = await(peers.serve(app))
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect("ws://127.0.0.1:" .. port .. "/ws"))
    assert.is_true(await(ws:close()))
    bounded(done:wait())
    await(runner:cleanup())
    assert.same({T.CLOSED, T.CLOSED, T.CLOSED, T.CLOSED,
                 "RuntimeError: WebSocket connection is closed."}, seen)
  end))

  it("raises bad arguments for wrong options", aspec.async(function()
    local s <close> = http.ClientSession()
    assert.has_error(function() web.WebSocketResponse{heartbeat = "x"} end,
      "bad argument #1 to 'WebSocketResponse' (field 'heartbeat': a "
      .. "number >= 0 expected, got x)")
    assert.has_error(function() web.WebSocketResponse{protocols = "a"} end,
      "bad argument #1 to 'WebSocketResponse' (field 'protocols': table "
      .. "expected, got string)")
    assert.has_error(function()
      web.WebSocketResponse{protocols = {"a b"}}
    end, "bad argument #1 to 'WebSocketResponse' (protocols[1]: a token "
      .. "expected)")
    -- raised at the call, before any connection
    assert.has_error(function()
      s:ws_connect("ws://127.0.0.1:1/ws", {receive_timeout = -1})
    end, "bad argument #2 to 'ws_connect' (field 'receive_timeout': a "
      .. "number >= 0 expected, got -1)")
  end))

  it("refuses unknown options at the call; takes every documented one",
     aspec.async(function()
    assert.has_error(function() web.WebSocketResponse{heartbeet = 1} end,
      "bad argument #1 to 'WebSocketResponse' (unknown option 'heartbeet')")
    -- aiohttp's, which luaio does not have
    assert.has_error(function() web.WebSocketResponse{compress = 15} end,
      "bad argument #1 to 'WebSocketResponse' (unknown option 'compress')")
    local s <close> = http.ClientSession()
    assert.has_error(function()
      s:ws_connect("ws://127.0.0.1:1/ws", {protocol = {"chat"}})
    end, "bad argument #2 to 'ws_connect' (unknown option 'protocol')")
    web.WebSocketResponse{protocols = {"chat"}, heartbeat = 5,
      autoping = true, autoclose = true, receive_timeout = 5,
      max_msg_size = 1024, timeout = 5}
    local ws = await(s:ws_connect(aiohttp_ws() .. "/ws", {
      headers = {["X-A"] = "1"}, protocols = {"chat"}, heartbeat = 30,
      autoping = true, autoclose = true, receive_timeout = 5,
      max_msg_size = 65536, timeout = 5, origin = "http://x",
      ssl = false}))
    await(ws:send_str("hi"))
    assert.equal("hi", await(ws:receive_str()))
    assert.has_error(function() ws:close{cod = 4000} end,
      "bad argument #1 to 'close' (unknown option 'cod')")
    assert.has_error(function() ws:close{drain = false} end,
      "bad argument #1 to 'close' (unknown option 'drain')")
    assert.is_false(ws.closed)
    assert.is_true(await(ws:close{code = 4000, message = "bye",
                                  timeout = 5}))
    assert.equal(1000, ws.close_code)
  end))

  -----------------------------------------------------------------------
  -- raw peers: what aiohttp does not send

  -- a luaio echo server recording what its handler saw
  local function echo_server(seen)
    local app = web.Application()
    app.router:add_get("/echo", async(function(request)
      local ws = web.WebSocketResponse()
      await(ws:prepare(request))
      for m in ws:iter() do
        if m.type == T.ERROR then seen.error = m.data
        elseif m.type == T.TEXT then await(ws:send_str(m.data)) end
      end
      seen.close_code = ws.close_code
      return ws
    end))
    return await(peers.serve(app))
  end

  -- a raw client: the handshake by hand; frames() reads server frames
  local function raw_client(port)
    local r, w = await(asyncio.open_connection("127.0.0.1", port))
    w:write("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert.matches("^HTTP/1.1 101 ", bounded(r:readuntil("\r\n\r\n")))
    local buf = ""
    local function frame()
      while true do
        local fin, op, payload, nxt = _http.ws_parse(buf, 1,
                                                     {masked = false})
        if fin ~= nil then
          buf = buf:sub(nxt)
          return fin, op, payload
        end
        local data = bounded(r:read(65536))
        if data == "" then return nil end
        buf = buf .. data
      end
    end
    return w, frame
  end

  local function masked(op, payload, fin)
    return _http.ws_build(op, payload, {mask = true, fin = fin})
  end

  it("a send once the peer ended the stream raises ConnectionResetError, "
     .. "as aiohttp's closing transport (raw client)", aspec.async(function()
    local results = {}
    local app = web.Application()
    app.router:add_get("/echo", async(function(request)
      local ws = web.WebSocketResponse()
      await(ws:prepare(request))
      -- until the end of the stream reached the reader (nothing reads)
      await(asyncio.wait_for(async(function()
        while not ws._reader:is_eof() do await(asyncio.sleep(0)) end
      end)(), 5))
      for i = 1, 2 do
        local ok, e = pcall(await, ws:send_str("hello"))
        results[i] = not ok and asyncio.iserror(e,
          asyncio.ConnectionResetError) and e.message
      end
      return ws
    end))
    local runner, port = await(peers.serve(app))
    local w = raw_client(port)
    w:close() -- no close frame: the socket is gone
    await(asyncio.wait_for(async(function()
      while #results < 2 do await(asyncio.sleep(0)) end
    end)(), 5))
    assert.same({"Cannot write to closing transport",
                 "Cannot write to closing transport"}, results)
    await(runner:cleanup())
  end))

  it("a server's close() takes the peer's next frame for its answer: "
     .. "one that is not a close ends it with 1006, as aiohttp's",
     aspec.async(function()
    local seen = {}
    local app = web.Application()
    app.router:add_get("/echo", async(function(request)
      local ws = web.WebSocketResponse()
      await(ws:prepare(request))
      seen.closed = await(ws:close())
      seen.code, seen.exc = ws.close_code, ws:exception()
      return ws
    end))
    local runner, port = await(peers.serve(app))
    local w, frame = raw_client(port)
    w:write(masked(1, "still talking"))
    local fin, op, data = frame()
    assert.same({true, 8, 1000}, {fin, op, (string.unpack(">I2", data))})
    await(asyncio.wait_for(async(function()
      while seen.closed == nil do await(asyncio.sleep(0)) end
    end)(), 5))
    assert.is_true(seen.closed)
    assert.equal(1006, seen.code)
    assert.is_true(asyncio.iserror(seen.exc, asyncio.TimeoutError))
    w:close()
    await(runner:cleanup())
  end))

  it("reassembles fragments with a ping between them (raw client)",
     aspec.async(function()
    local seen = {}
    local runner, port = echo_server(seen)
    local w, frame = raw_client(port)
    w:write(masked(1, "h\xc3", false) .. masked(9, "mid"))
    await(w:drain())
    w:write(masked(0, "\xa9l", false) .. masked(0, "lo"))
    assert.same({true, 10, "mid"}, {frame()}) -- the automatic pong
    assert.same({true, 1, "h\xc3\xa9llo"}, {frame()}) -- é split
    w:write(masked(8, string.pack(">I2", 1000)))
    assert.same({true, 8, string.pack(">I2", 1000)}, {frame()})
    assert.is_nil(frame()) -- then the server closes the transport
    w:close()
    await(runner:cleanup())
    assert.equal(1000, seen.close_code)
    assert.is_nil(seen.error)
  end))

  for _, case in ipairs{
    {"an unmasked frame", _http.ws_build(1, "x"), 1002},
    {"a reserved bit", "\xc1\x80abcd", 1002},
    {"an unknown opcode", "\x83\x80abcd", 1002},
    {"a continuation without a start", masked(0, "x"), 1002},
    {"a new message inside a fragmented one",
     masked(1, "a", false) .. masked(1, "b"), 1002},
    {"a close code out of range", masked(8, string.pack(">I2", 999)), 1002},
    {"bad UTF-8 in a close reason",
     masked(8, string.pack(">I2", 1000) .. "\xff"), 1007},
    {"bad UTF-8 in a fragmented text message",
     masked(1, "ok", false) .. masked(0, "\xff"), 1007},
    {"a message over max_msg_size in fragments",
     masked(2, ("x"):rep(3000000), false) .. masked(0, ("x"):rep(2000000)),
     1009},
  } do
    it("closes with " .. case[3] .. " on " .. case[1] .. " (raw client)",
       aspec.async(function()
      local seen = {}
      local runner, port = echo_server(seen)
      local w, frame = raw_client(port)
      w:write(case[2])
      local fin, op, data = frame()
      -- the code alone, no reason, as aiohttp's close(code=exc.code)
      assert.same({true, 8, 2, case[3]}, {fin, op, #data,
        (string.unpack(">I2", data))})
      assert.is_nil(frame())
      w:close()
      await(runner:cleanup())
      assert.equal(1006, seen.close_code)
      assert.is_true(asyncio.iserror(seen.error, http.WebSocketError))
      assert.equal(case[3], seen.error.code)
    end))
  end

  it("receive_json and msg:json raise http.JSONDecodeError on invalid "
     .. "JSON, as resp:json", aspec.async(function()
    local seen
    local app = web.Application()
    app.router:add_get("/ws", asyncio.async(function(req)
      local ws = web.WebSocketResponse()
      await(ws:prepare(req))
      await(ws:send_str("{bad"))
      await(ws:send_str("[1"))
      seen = select(2, pcall(await, ws:receive_json()))
      await(ws:close())
      return ws
    end))
    app.router:add_post("/json", asyncio.async(function(req)
      return web.json_response(await(req:json()))
    end))
    local runner, port = await(peers.serve(app))
    local base = "http://127.0.0.1:" .. port
    local s <close> = http.ClientSession()
    local ws = await(s:ws_connect(base .. "/ws"))
    local ok, e = pcall(await, ws:receive_json())
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, http.JSONDecodeError), tostring(e))
    assert.is_true(asyncio.iserror(e, asyncio.ValueError))
    assert.matches("^http.JSONDecodeError: Expected", tostring(e))
    local m = await(ws:receive())
    ok, e = pcall(m.json, m)
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, http.JSONDecodeError), tostring(e))
    await(ws:send_str("nope"))
    assert.equal(T.CLOSE, await(ws:receive()).type)
    assert.is_true(asyncio.iserror(seen, http.JSONDecodeError),
                   tostring(seen))
    -- the server's 400 for a request's invalid JSON says why, no more
    local r = await(s:post(base .. "/json", {data = "{bad"}))
    assert.equal(400, r.status)
    assert.matches("^Invalid JSON: Expected [^\n]*$", await(r:text()))
    await(runner:cleanup())
  end))

  it("send_json takes dumps and receive_json loads and timeout, as "
     .. "aiohttp's keywords", aspec.async(function()
    local got = {}
    local app = web.Application()
    app.router:add_get("/ws", asyncio.async(function(req)
      local ws = web.WebSocketResponse()
      await(ws:prepare(req))
      await(ws:send_json({a = 1}, {dumps = function(v)
        return '{"d":' .. v.a .. '}'
      end}))
      got[#got + 1] = await(ws:receive_json{loads = function(text)
        return "L:" .. text
      end})
      got[#got + 1] = await(ws:receive_json{timeout = 5})[1]
      await(ws:close())
      return ws
    end))
    local runner, s <close>, ws = serve_and_connect(app)
    assert.same({d = 1}, await(ws:receive_json()))
    -- what Python's json.dumps raises
    local ok, e = pcall(ws.send_json, ws, {f = print})
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, asyncio.TypeError), tostring(e))
    assert.equal("Object of type function is not JSON serializable",
                 e.message)
    ok, e = pcall(ws.send_json, ws, {0 / 0})
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
    assert.error_matches(function() local x = ws:send_json(1, {dumps = 5})
      return x end, "bad argument #2 to 'send_json' %(option 'dumps': "
      .. "function expected, got number%)")
    assert.error_matches(function() local x = ws:receive_json{tmeout = 1}
      return x end, "bad argument #1 to 'receive_json' %(unknown option "
      .. "'tmeout'%)")
    await(ws:send_json("x"))
    await(ws:send_json({7}))
    assert.equal(T.CLOSE, await(ws:receive()).type)
    assert.same({'L:"x"', 7}, got)
    await(runner:cleanup())
  end))

  it("can_prepare tells a handshake from a plain request, as aiohttp's",
     aspec.async(function()
    local readies, again = {}, nil
    local app = web.Application()
    app.router:add_get("/both", asyncio.async(function(req)
      local ws = web.WebSocketResponse{protocols = {"chat"}}
      local ready = ws:can_prepare(req)
      readies[#readies + 1] = ready
      if not ready.ok then return web.Response{text = "plain"} end
      await(ws:prepare(req))
      again = select(2, pcall(ws.can_prepare, ws, req))
      await(ws:send_str("ws:" .. tostring(ws.ws_protocol)))
      await(ws:close())
      return ws
    end))
    local runner, port = await(peers.serve(app))
    local url = "http://127.0.0.1:" .. port .. "/both"
    local s <close> = http.ClientSession()
    local r = await(s:get(url))
    assert.equal("plain", await(r:text()))
    local ws = await(s:ws_connect(url, {protocols = {"x", "chat"}}))
    assert.equal("ws:chat", await(ws:receive_str()))
    assert.equal(T.CLOSE, await(ws:receive()).type)
    assert.same({{ok = false}, {ok = true, protocol = "chat"}}, readies)
    assert.is_true(asyncio.iserror(again, asyncio.RuntimeError))
    await(runner:cleanup())
  end))

  it("refuses a control frame's payload over 125 bytes at the call",
     aspec.async(function()
    local got = {}
    local app = web.Application()
    app.router:add_get("/ws", asyncio.async(function(req)
      local ws = web.WebSocketResponse{autoping = false}
      await(ws:prepare(req))
      for m in ws:iter() do got[#got + 1] = {m.type, #m.data} end
      got[#got + 1] = {ws.close_code}
      return ws
    end))
    local runner, s <close>, ws = serve_and_connect(app)
    local x126 = ("x"):rep(126)
    assert.error_matches(function() local r = ws:ping(x126); return r end,
      "bad argument #1 to 'ping' %(at most 125 bytes expected, got 126%)")
    assert.error_matches(function() local r = ws:pong(x126); return r end,
      "bad argument #1 to 'pong' %(at most 125 bytes expected, got 126%)")
    -- the error points at the caller's line
    local _, e = pcall(function() local r = ws:ping({}); return r end)
    assert.matches("^spec/websocket_spec.lua:%d+: bad argument #1 to " ..
      "'ping' %(string expected, got table%)", e)
    assert.error_matches(function()
      local r = ws:close{message = ("x"):rep(124)}; return r
    end, "bad argument #1 to 'close' %(field 'message': at most 123 bytes")
    await(ws:ping(("x"):rep(125)))
    -- 61 two-byte characters: 122 bytes, sent whole (no cut character)
    assert.is_true(await(ws:close{code = 4001, message = ("é"):rep(61)}))
    assert.equal(1000, ws.close_code)
    assert.same({{T.PING, 125}, {4001}}, got)
    await(runner:cleanup())
  end))

  it("answers Sec-WebSocket-Version 13, 8 and 7, as aiohttp; refuses "
     .. "others, and bad Upgrade, Connection and key headers, with its 400 "
     .. "texts", aspec.async(function()
    local app = web.Application()
    local readies = {}
    app.router:add_get("/v", asyncio.async(function(req)
      local ws = web.WebSocketResponse()
      readies[#readies + 1] = ws:can_prepare(req).ok
      await(ws:prepare(req))
      await(ws:close())
      return ws
    end))
    local runner, port = await(peers.serve(app))
    -- the answer's head (101), or all of it (an error);
    -- o.upgrade, o.connection, o.key replace those headers (false: left
    -- out)
    local function handshake(version, o)
      o = o or {}
      local function field(name, v, default)
        if v == false then return "" end
        return name .. ": " .. (v or default) .. "\r\n"
      end
      local r, w = await(asyncio.open_connection("127.0.0.1", port))
      w:write("GET /v HTTP/1.1\r\nHost: x\r\n"
        .. field("Upgrade", o.upgrade, "websocket")
        .. field("Connection", o.connection, "Upgrade")
        .. (version and "Sec-WebSocket-Version: " .. version .. "\r\n"
            or "")
        .. field("Sec-WebSocket-Key", o.key, "dGhlIHNhbXBsZSBub25jZQ==")
        .. "\r\n")
      local out = bounded(r:readuntil("\r\n\r\n"))
      if not out:match("^HTTP/1.1 101 ") then -- the 400's body
        local n = tonumber(out:match("\r\nContent%-Length: (%d+)\r\n"))
        out = out .. bounded(r:readexactly(n))
      end
      w:close()
      return out
    end
    for _, v in ipairs{"13", "8", "7"} do
      local out = handshake(v)
      assert.matches("^HTTP/1.1 101 ", out)
      assert.matches("Sec%-WebSocket%-Accept: s3pPLMBiTxaQ9kYGzzhZRbK%+xOo=",
                     out)
    end
    -- an Upgrade value with spaces around it is taken, as aiohttp strips
    assert.matches("^HTTP/1.1 101 ", handshake("13", {upgrade = " websocket"}))
    for _, case in ipairs{{"6", "Unsupported version: 6"},
                          {"14", "Unsupported version: 14"},
                          {nil, "Unsupported version: "},
                          {"13", "No WebSocket UPGRADE hdr: h2c\n Can "
                             .. '"Upgrade" only to "WebSocket".',
                           {upgrade = "h2c"}},
                          {"13", "No WebSocket UPGRADE hdr: nil\n Can "
                             .. '"Upgrade" only to "WebSocket".',
                           {upgrade = false}},
                          {"13", "No CONNECTION upgrade hdr: keep-alive",
                           {connection = "keep-alive"}},
                          {"13", "Handshake error: 'c2hvcnQ='",
                           {key = "c2hvcnQ="}},
                          {"13", "Handshake error: nil", {key = false}}} do
      local out = handshake(case[1], case[3])
      assert.matches("^HTTP/1.1 400 Bad Request\r\n", out)
      assert.equal(case[2], out:match("\r\n\r\n(.*)$"))
    end
    assert.same({true, true, true, true, false, false, false, false, false,
                 false, false, false}, readies)
    await(runner:cleanup())
  end))

  it("counts the arguments of a WebSocketResponse's methods as a "
     .. "client websocket's (bad options)", aspec.async(function()
    -- each call raises at once; the error names the caller's line
    local calls = {
      function(ws) local r = ws:close{cod = 4000}; return r end,
      function(ws) local r = ws:receive_json{timout = 1}; return r end,
      function(ws) local r = ws:receive_json("x"); return r end,
      function(ws) local r = ws:send_json(1, {dump = 1}); return r end,
      function(ws)
        local r = ws:send_json(1, {dumps = function() return 1 end})
        return r
      end,
    }
    local function errors(ws)
      local out = {}
      for i, call in ipairs(calls) do
        local ok, e = pcall(call, ws)
        assert.is_false(ok)
        out[i] = tostring(e):gsub("^spec/websocket_spec.lua:%d+: ", "")
      end
      return out
    end
    local server_errors
    local app = web.Application()
    app.router:add_get("/ws", asyncio.async(function(req)
      local ws = web.WebSocketResponse()
      await(ws:prepare(req))
      server_errors = errors(ws)
      await(ws:send_str("done"))
      await(ws:close())
      return ws
    end))
    local runner, s <close>, ws = serve_and_connect(app)
    assert.equal("done", await(ws:receive_str()))
    local expected = {
      "bad argument #1 to 'close' (unknown option 'cod')",
      "bad argument #1 to 'receive_json' (unknown option 'timout')",
      "bad argument #1 to 'receive_json' (number or table expected, got "
        .. "string)",
      "bad argument #2 to 'send_json' (unknown option 'dump')",
      "bad argument #2 to 'send_json' (option 'dumps': returned number, "
        .. "not a string)",
    }
    assert.same(expected, server_errors)
    assert.same(expected, errors(ws))
    assert.equal(T.CLOSE, await(ws:receive()).type)
    await(runner:cleanup())
  end))
end)
