-- spec/http_parser_spec.lua: asyncio._http, the libhttp_parser binding
-- and the head/chunk writer: heads, bodies (length, chunked, until close),
-- any split of the input, pipelined messages, upgrades, errors, limits.
local _http = require "asyncio._http"

--- Feeds s to a new parser in pieces of n bytes; returns the events.
local function parse(kind, s, n, eof)
  local p = _http.Parser(kind)
  local all = {}
  for i = 1, #s, n do
    local ev = assert(p:feed(s:sub(i, i + n - 1)))
    for _, e in ipairs(ev) do all[#all + 1] = e end
  end
  if eof then
    for _, e in ipairs(assert(p:feed_eof())) do all[#all + 1] = e end
  end
  return all
end

--- Joins the body pieces following each head: {head, body, head, ...}
local function messages(events)
  local out = {}
  for _, e in ipairs(events) do
    if type(e) == "table" then
      out[#out + 1] = e
      out[#out + 1] = ""
    elseif type(e) == "string" then
      out[#out] = out[#out] .. e
    end
  end
  return out
end

describe("asyncio._http parser", function()
  local REQS = "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\n"
    .. "x-dup: 2\r\n\r\n"
    .. "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    .. "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    .. "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n"

  it("parses pipelined requests the same at every split", function()
    for n = 1, #REQS do
      local m = messages(parse("request", REQS, n))
      assert.equal(6, #m, "split " .. n)
      assert.same({"GET", "/a/b?x=1", 1, 1, true},
        {m[1].method, m[1].url, m[1].major, m[1].minor, m[1].keep_alive})
      assert.same({"Host", "h", "X-Dup", "1", "x-dup", "2",
                   host = "h", ["x-dup"] = "1"}, m[1].headers)
      assert.equal("", m[2])
      assert.same({"POST", 5, false}, {m[3].method, m[3].content_length,
                                       m[3].chunked})
      assert.equal("hello", m[4])
      assert.same({"PUT", true}, {m[5].method, m[5].chunked})
      assert.equal("abcde", m[6])
    end
  end)

  it("marks each message's end, and each chunk's end after its data",
     function()
    local ev = parse("request", REQS, #REQS)
    local kinds = {}
    for _, e in ipairs(ev) do
      kinds[#kinds + 1] = type(e) == "table" and "h" or
        (e == true and "end" or e == false and "chunk" or "b")
    end
    assert.same({"h", "end", "h", "b", "end",
                 "h", "b", "chunk", "b", "chunk", "end"}, kinds)
    -- split at every byte: the same ends, after the same bytes
    for n = 1, #REQS do
      local seq, body = {}, ""
      for _, e in ipairs(parse("request", REQS, n)) do
        if type(e) == "string" then body = body .. e
        elseif e == false then seq[#seq + 1] = body end
      end
      assert.same({"hello" .. "abc", "hello" .. "abcde"}, seq, "split " .. n)
    end
  end)

  it("parses responses: status, reason, bodies to the close", function()
    local m = messages(parse("response",
      "HTTP/1.1 404 Not Here\r\nContent-Length: 2\r\n\r\nno", 3))
    assert.same({404, "Not Here", "no"}, {m[1].status, m[1].reason, m[2]})
    local ev = parse("response", "HTTP/1.0 200 OK\r\n\r\nuntil close", 4,
                     true)
    m = messages(ev)
    assert.same({200, 0, false, "until close"},
                {m[1].status, m[1].minor, m[1].keep_alive, m[2]})
    assert.is_true(ev[#ev])
  end)

  it("skips the body of a HEAD response on request", function()
    local p = _http.Parser("response")
    p:skip_body(true)
    local ev = assert(p:feed("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
      .. "HTTP/1.1 204 No Content\r\n\r\n"))
    assert.equal(4, #ev)
    assert.equal(99, ev[1].content_length)
    assert.is_true(ev[2])
    assert.equal(204, ev[3].status)
  end)

  it("hands over the bytes after an upgrade", function()
    local p = _http.Parser("request")
    local ev, rest = p:feed("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
      .. "Connection: Upgrade\r\n\r\n\129\133frame")
    assert.is_true(ev[1].upgrade)
    assert.equal("\129\133frame", rest)
  end)

  it("reports errors as values and stays failed", function()
    local p = _http.Parser("request")
    local ev, name, desc = p:feed("BAD\r\n\r\n")
    assert.is_nil(ev)
    assert.equal("HPE_INVALID_METHOD", name)
    assert.equal("invalid HTTP method", desc)
    assert.equal("HPE_INVALID_METHOD", select(2, p:feed("GET / HTTP/1.1\r\n")))
    p = _http.Parser("response")
    assert.equal(2, #p:feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"))
    assert.equal("HPE_INVALID_EOF_STATE", select(2, p:feed_eof()))
  end)

  it("gives the messages a feed completed before its error, the error "
     .. "after; idle() is true between messages only", function()
    local p = _http.Parser("response")
    assert.is_true(p:idle())
    local ev = assert(p:feed("HTTP/1.1 204 No Content\r\nContent-Length: 5"
      .. "\r\n\r\nhello"))
    assert.equal(2, #ev)
    assert.equal(204, ev[1].status)
    assert.is_true(ev[2])
    assert.is_false(p:idle())
    local none, name = p:feed("HTTP/1.1 200 OK\r\n\r\n")
    assert.is_nil(none)
    assert.equal("HPE_INVALID_CONSTANT", name)
    p = _http.Parser("response")
    assert.equal(1, #p:feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"))
    assert.is_false(p:idle())
    assert.equal(2, #p:feed("ok"))
    assert.is_true(p:idle())
  end)

  it("limits fields and their number", function()
    local p = _http.Parser("request", {max_field_size = 10})
    assert.equal("HPE_HEADER_OVERFLOW", select(2,
      p:feed("GET / HTTP/1.1\r\nX: 12345678901\r\n\r\n")))
    p = _http.Parser("request", {max_headers = 2})
    assert.equal("HPE_HEADER_OVERFLOW", select(2,
      p:feed("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")))
    assert.has_error(function() _http.Parser("request", {max_headers = 0})
    end)
    assert.has_error(function() _http.Parser("other") end)
  end)

  it("writes heads and chunks, refusing header injection", function()
    assert.equal("HTTP/1.1 200 OK\r\nA: b\r\nN: 3\r\n\r\nbody",
      _http.head("HTTP/1.1 200 OK", {"A", "b", "N", 3}, "body"))
    assert.equal("GET / HTTP/1.1\r\n\r\n", _http.head("GET / HTTP/1.1", {}))
    assert.has_error(function() _http.head("x", {"A", "b\r\nEvil: 1"}) end,
                     "invalid character in header value")
    assert.has_error(function() _http.head("x", {"A:B", "v"}) end,
                     "invalid character in header name")
    assert.has_error(function() _http.head("x\n", {}) end)
    assert.equal("a\r\n0123456789\r\n", _http.chunk("0123456789"))
    assert.equal("0\r\n\r\n", _http.chunk(""))
  end)

  -- found by tools/fuzz/http_request.lua: the upgrade took effect at the
  -- head when a chunk ended there, before the request's body
  it("switches protocols after the body of an upgrade request, however "
     .. "split", function()
    local req = "PUT /x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: "
      .. "Upgrade\r\nContent-Length: 3\r\n\r\nabcRAW"
    for n = 1, #req do
      local p = _http.Parser("request")
      local body, rest, done = "", nil, false
      for i = 1, #req, n do
        local ev, r = assert(p:feed(req:sub(i, i + n - 1)))
        for _, e in ipairs(ev) do
          if type(e) == "string" then body = body .. e end
          if e == true then done = true end
        end
        if r then rest = r .. req:sub(i + n) break end
      end
      assert.same({"abc", true, "RAW"}, {body, done, rest}, "split " .. n)
    end
  end)

  -- found by tools/fuzz/http_response.lua (UBSan: memcpy from NULL)
  it("takes an empty reason phrase", function()
    local m = messages(parse("response",
      "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 64))
    assert.same({200, ""}, {m[1].status, m[1].reason})
  end)

  -- found by tools/fuzz/http_response.lua: a raw deflate body fed a byte
  -- at a time was taken for a broken zlib stream
  it("decodes zlib and raw deflate bodies fed in any pieces", function()
    -- "hello hello hello" as a zlib stream and as raw deflate
    local zlib = "\x78\x9c\xcb\x48\xcd\xc9\xc9\x57\xc8\x40\x90\x00" ..
      "\x3a\x2e\x06\x7d"
    local raw = zlib:sub(3, -5)
    for _, stream in ipairs{zlib, raw} do
      for n = 1, #stream do
        local z = _http.Inflater("deflate")
        local out = {}
        for i = 1, #stream, n do
          out[#out + 1] = z:feed(stream:sub(i, i + n - 1))
        end
        assert.equal("hello hello hello", table.concat(out))
        assert.is_true(z:finish())
      end
    end
  end)
end)
