-- spec/ws_frame_spec.lua: the RFC 6455 frame codec of asyncio._http
-- (bindings/http/ws.c: ws_parse, ws_build, utf8_valid, ws_accept,
-- ws_key): lengths, masking, frames over every split point of a stream,
-- each protocol error, UTF-8 and bad arguments.
local _http = require "asyncio._http"
local parse, build = _http.ws_parse, _http.ws_build

-- unmasks a masked frame by hand (the RFC's algorithm), for comparison
local function unmask(f, hl)
  local key = {f:byte(hl - 3, hl)}
  local out = {}
  for i = hl + 1, #f do
    out[#out + 1] = string.char(f:byte(i) ~ key[(i - hl - 1) % 4 + 1])
  end
  return table.concat(out)
end

describe("asyncio._http websocket frames", function()
  it("computes the RFC's Sec-WebSocket-Accept example", function()
    assert.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
      _http.ws_accept("dGhlIHNhbXBsZSBub25jZQ=="))
  end)

  it("makes random 16-byte keys", function()
    local a, b = _http.ws_key(), _http.ws_key()
    assert.equal(24, #a)
    assert.matches("^[A-Za-z0-9+/]+==$", a)
    assert.not_equal(a, b)
  end)

  it("builds the RFC's unmasked examples", function()
    assert.equal("\x81\x05Hello", build(1, "Hello"))
    assert.equal("\x01\x03Hel", build(1, "Hel", {fin = false}))
    assert.equal("\x80\x02lo", build(0, "lo"))
    assert.equal("\x89\x05Hello", build(9, "Hello"))
    assert.equal("\x82\x7e\x01\x00" .. ("x"):rep(256),
                 build(2, ("x"):rep(256)))
    assert.equal("\x82\x7f\0\0\0\0\0\1\0\0" .. ("y"):rep(65536),
                 build(2, ("y"):rep(65536)))
  end)

  it("masks with a fresh key and unmasks to the payload", function()
    for _, n in ipairs{0, 1, 5, 125, 126, 65535, 65536, 70001} do
      local p = {}
      for i = 1, n do p[i] = string.char(i % 256) end
      p = table.concat(p)
      local f = build(2, p, {mask = true})
      local hl = (n < 126 and 2 or n < 65536 and 4 or 10) + 4
      assert.equal(hl + n, #f)
      assert.equal(0x80, f:byte(2) & 0x80)
      assert.equal(p, unmask(f, hl))
      assert.same({true, 2, p, #f + 1},
                  {parse(f, 1, {masked = true, max_size = 0})})
    end
    assert.not_equal(build(1, "same", {mask = true}):sub(3, 6),
                     build(1, "same", {mask = true}):sub(3, 6))
  end)

  it("parses frames from any split of the stream, from any position",
     function()
    local stream = build(1, "hé", {fin = false, mask = true}) ..
      build(9, "p", {mask = true}) .. build(0, ("z"):rep(300),
      {mask = true}) .. build(8, "\3\232", {mask = true})
    local want = {{false, 1, "hé"}, {true, 9, "p"},
      {true, 0, ("z"):rep(300)}, {true, 8, "\3\232"}}
    for cut = 0, #stream do
      -- the first cut bytes arrive, then the rest
      local got, buf, pos, fed = {}, stream:sub(1, cut), 1, false
      while #got < #want do
        local fin, op, payload, nxt = parse(buf, pos, {masked = true})
        if fin == nil then
          assert.is_nil(op)
          assert.is_false(fed, "stuck at cut " .. cut)
          buf, pos, fed = buf:sub(pos) .. stream:sub(cut + 1), 1, true
        else
          got[#got + 1] = {fin, op, payload}
          pos = nxt
        end
      end
      assert.same(want, got)
      assert.equal(#buf + 1, pos)
    end
  end)

  it("says nothing until a header is whole, then the size it needs",
     function()
    assert.equal(1, select("#", parse("")))
    assert.equal(1, select("#", parse("\x82")))
    assert.equal(1, select("#", parse("\x82\x7e\x01")))
    assert.equal(1, select("#", parse("\x82\x7f\0\0\0\0")))
    assert.same({nil, nil, 11}, {parse("\x82\x85ab")})
    assert.same({nil, nil, 7}, {parse("\x82\x05abc")})
    assert.same({nil, nil, 304}, {parse("..\x82\x7e\x01\x2c", 3)})
    assert.same({nil, nil, 10 + 2 ^ 40 // 1},
                {parse("\x82\x7f\0\0\1\0\0\0\0\0", 1, {max_size = 0})})
  end)

  for _, case in ipairs{
    {"a reserved bit (RSV1)", "\xc1\x00", 1002, "reserved bits set"},
    {"a reserved bit (RSV3)", "\x91\x00", 1002, "reserved bits set"},
    {"opcode 3", "\x83\x00", 1002, "invalid opcode"},
    {"opcode 11", "\x8b\x00", 1002, "invalid opcode"},
    {"a fragmented ping", "\x09\x00", 1002, "invalid control frame"},
    {"a close of 126 bytes", "\x88\x7e\x00\x7e", 1002,
     "invalid control frame"},
    {"a 64-bit length with the top bit", "\x82\x7f\x80\0\0\0\0\0\0\0",
     1002, "invalid frame length", {max_size = 0}},
    {"an unmasked frame to a server", "\x81\x00", 1002,
     "unmasked frame from the client", {masked = true}},
    {"a masked frame to a client", "\x81\x80abcd", 1002,
     "masked frame from the server", {masked = false}},
    {"a frame over max_size", "\x82\x7e\x01\x00", 1009,
     "Message size 256 exceeds limit 255", {max_size = 255}},
    -- aiohttp's reader refuses a message of max_size bytes already
    {"a frame of max_size", "\x82\x7e\x00\xff", 1009,
     "Message size 255 exceeds limit 255", {max_size = 255}},
  } do
    it("rejects " .. case[1] .. " with " .. case[3], function()
      assert.same({nil, case[3], case[4]}, {parse(case[2], 1, case[5])})
    end)
  end

  it("accepts a frame of one byte under max_size", function()
    local fin, op, p = parse(build(2, ("m"):rep(254)), 1, {max_size = 255})
    assert.same({true, 2, ("m"):rep(254)}, {fin, op, p})
  end)

  it("validates UTF-8 as RFC 3629", function()
    for _, ok in ipairs{"", "ascii", "é", "€", "\xf0\x9f\x98\x80",
                        "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"} do
      assert.is_true(_http.utf8_valid(ok), ok)
    end
    for _, bad in ipairs{"\xff", "\x80", "\xc0\xaf", "\xc1\xbf",
        "\xe0\x80\xaf", "\xed\xa0\x80", "\xf0\x80\x80\xaf",
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xc3", "\xe2\x82",
        "a\xc3(b"} do
      assert.is_false(_http.utf8_valid(bad), bad)
    end
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() _http.ws_build(3, "x") end,
      "bad argument #1 to 'ws_build' (invalid opcode)")
    assert.has_error(function() _http.ws_build(9, ("x"):rep(126)) end,
      "bad argument #2 to 'ws_build' (control frames are unfragmented, "
      .. "at most 125 bytes)")
    assert.has_error(function() _http.ws_build(8, "", {fin = false}) end,
      "bad argument #2 to 'ws_build' (control frames are unfragmented, "
      .. "at most 125 bytes)")
    assert.has_error(function() _http.ws_build(1, "x", 5) end,
      "bad argument #3 to 'ws_build' (table expected, got number)")
    assert.has_error(function() _http.ws_parse("abc", 5) end,
      "bad argument #2 to 'ws_parse' (out of range)")
    assert.has_error(function() _http.ws_parse({}) end,
      "bad argument #1 to 'ws_parse' (string expected, got table)")
  end)
end)
