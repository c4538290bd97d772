-- spec/http_fuzz_spec.lua: random input never crashes or hangs the HTTP
-- code (fixed seeds, bounded counts): the C parser and frame codec fed
-- random bytes, the server fed random bytes and random splits of valid
-- pipelined requests, the client fed random responses.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local _http = require "asyncio._http"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

-- random bytes biased towards HTTP's own tokens
local TOKENS = {"GET ", "POST ", "/", " HTTP/1.1", "\r\n", "\r\n\r\n", ": ",
  "Content-Length: ", "Transfer-Encoding: chunked", "0", "9", "ffff", ";",
  "Host: x", "\n", " ", "\0", "Connection: close", "Upgrade: websocket"}
local function random_http(n)
  local t = {}
  for i = 1, n do
    if math.random() < 0.6 then
      t[i] = TOKENS[math.random(#TOKENS)]
    else
      t[i] = random_bytes(math.random(1, 4))
    end
  end
  return table.concat(t)
end

describe("HTTP fuzzing", function()
  it("feeds the parsers and the frame codec random bytes", function()
    math.randomseed(1)
    for i = 1, 3000 do
      local p = _http.Parser(i % 2 == 0 and "request" or "response")
      local data = i % 3 == 0 and random_bytes(math.random(1, 300))
        or random_http(math.random(1, 40))
      local pos = 1
      while pos <= #data do
        local n = math.random(1, 50)
        local ev, err = p:feed(data:sub(pos, pos + n - 1))
        assert.is_true(ev ~= nil or type(err) == "string")
        if ev == nil or type(err) == "string" then break end
        pos = pos + n
      end
      p:feed_eof()
      local ws = random_bytes(math.random(0, 40))
      local fin, op = _http.ws_parse(ws, 1, {max_size = 1000})
      assert.is_true(fin == nil or fin == false or fin == true)
      if fin ~= nil then assert.equal("integer", math.type(op)) end
      assert.is_boolean(_http.utf8_valid(ws))
    end
  end)

  it("answers random bytes with a 4xx or a close, and goes on",
     aspec.async(function()
    math.randomseed(2)
    local app = web.Application()
    app.router:add_get("/", async(function()
      return web.Response{text = "ok"}
    end))
    app.router:add_post("/", async(function(request)
      return web.Response{body = await(request:read())}
    end))
    local runner, port = await(peers.serve(app, {header_timeout = 2}))
    local errors_logged = 0
    web.log_error = function() errors_logged = errors_logged + 1 end
    for i = 1, 120 do
      local r, w = await(asyncio.open_connection("127.0.0.1", port))
      local data = i % 2 == 0 and random_bytes(math.random(1, 2000))
        or random_http(math.random(1, 60))
      w:write(data)
      w:write_eof()
      local out = await(asyncio.wait_for(r:read(), 5))
      assert.is_true(out == "" or out:match("^HTTP/1%.1 %d%d%d ") ~= nil,
                     out:sub(1, 40))
      w:close()
    end
    assert.equal(0, errors_logged)
    -- valid pipelined requests split at random points still answer in
    -- order
    local reqs = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
      .. "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
      .. "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for _ = 1, 40 do
      local r, w = await(asyncio.open_connection("127.0.0.1", port))
      local pos = 1
      while pos <= #reqs do
        local n = math.random(1, 30)
        w:write(reqs:sub(pos, pos + n - 1))
        await(w:drain())
        await(asyncio.sleep(0))
        pos = pos + n
      end
      local out = await(asyncio.wait_for(r:read(), 5))
      local bodies = {}
      for body in out:gmatch("\r\n\r\n(%l+)") do bodies[#bodies + 1] = body end
      assert.same({"ok", "abcdefg", "hi", "ok"}, bodies)
      w:close()
    end
    await(runner:cleanup())
  end))

  it("raises only ClientErrors on random responses", aspec.async(function()
    math.randomseed(3)
    local answer
    local srv = await(asyncio.start_server(async(function(r, w)
      pcall(await, r:readuntil("\r\n\r\n"))
      w:write(answer)
      pcall(await, w:drain())
      w:close()
    end), "127.0.0.1", 0))
    local url = "http://127.0.0.1:" .. srv.sockets[1].port .. "/"
    local s <close> = http.ClientSession{
      timeout = http.ClientTimeout{total = 5}}
    for i = 1, 60 do
      answer = (i % 3 == 0 and "HTTP/1.1 200 OK\r\n" or "")
        .. (i % 2 == 0 and random_bytes(math.random(1, 500))
            or random_http(math.random(1, 40)))
      local ok, e = pcall(function()
        local resp = await(s:get(url))
        await(resp:read())
      end)
      if not ok then
        assert.is_true(asyncio.iserror(e, http.ClientError), tostring(e))
      end
    end
    srv:close()
  end))
end)
