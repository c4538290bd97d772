-- spec/resp_spec.lua: the RESP reader and command encoder of
-- asyncio._redis (bindings/redis/resp.c), fed bytes directly: whole,
-- split at every byte, malformed.
local _redis = require "asyncio._redis"

local function errobj(msg) return {err = msg} end

--- Feeds s to a new Protocol and returns every reply as {ok, value}.
local function replies(s, step)
  local p = _redis.Protocol(errobj)
  local out = {}
  step = step or #s
  for i = 1, #s, step do
    p:feed(s:sub(i, i + step - 1))
    while true do
      local ok, v = p:get()
      if ok == nil then break end
      out[#out + 1] = {ok, v}
    end
  end
  p:close()
  return out
end

local STREAM = "+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*3\r\n$1\r\na\r\n$-1\r\n"
  .. ":-7\r\n*2\r\n*1\r\n+x\r\n*0\r\n-ERR bad thing\r\n*-1\r\n$0\r\n\r\n"
  .. "*2\r\n-WRONGTYPE no\r\n:1\r\n"

local function check_stream(out)
  assert.same(11, #out)
  assert.same({true, "OK"}, out[1])
  assert.same({true, 42}, out[2])
  assert.is_true(math.type(out[2][2]) == "integer")
  assert.same({true, "hello"}, out[3])
  assert.same({true, nil}, {out[4][1], out[4][2]})
  assert.same({"a", nil, -7, n = 3}, out[5][2])
  assert.same({{"x", n = 1}, {n = 0}, n = 2}, out[6][2])
  assert.same({false, {err = "ERR bad thing"}}, out[7])
  assert.is_true(out[8][1]); assert.is_nil(out[8][2])
  assert.same({true, ""}, out[9])
  assert.same({{err = "WRONGTYPE no"}, 1, n = 2}, out[10][2])
end

describe("asyncio._redis Protocol", function()
  it("reads every RESP2 type, whole or split at each byte", function()
    local out = replies(STREAM .. "+last\r\n")
    check_stream(out)
    assert.same({true, "last"}, out[11])
    for step = 1, 7 do
      out = replies(STREAM .. "+last\r\n", step)
      check_stream(out)
    end
  end)

  it("keeps binary bulk strings whole", function()
    local bin = "a\0b\r\nc\255"
    local out = replies("$" .. #bin .. "\r\n" .. bin .. "\r\n", 1)
    assert.same({{true, bin}}, out)
  end)

  it("returns nothing until a reply is complete", function()
    local p <close> = _redis.Protocol(errobj)
    p:feed("*2\r\n$3\r\nfoo\r\n")
    assert.is_nil((p:get()))
    p:feed("$3\r\nba")
    assert.is_nil((p:get()))
    p:feed("r\r\n")
    local ok, v = p:get()
    assert.is_true(ok)
    assert.same({"foo", "bar", n = 2}, v)
  end)

  it("raises a clean protocol error on malformed input, and keeps "
     .. "raising", function()
    for _, bad in ipairs{"?what\r\n", ":12x\r\n", "*1\r\n!x\r\n",
                         "$abc\r\n", "*2\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n"
                         .. "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"} do
      local p <close> = _redis.Protocol(errobj)
      p:feed(bad)
      local ok, err = pcall(p.get, p)
      assert.is_false(ok, bad)
      assert.matches("^protocol error: ", err)
      ok = pcall(p.get, p)
      assert.is_false(ok)
    end
  end)

  it("survives random garbage without crashing", function()
    math.randomseed(7)
    for _ = 1, 200 do
      local p <close> = _redis.Protocol(errobj)
      local parts = {}
      for i = 1, math.random(1, 60) do
        parts[i] = string.char(math.random(0, 255))
        if math.random() < 0.3 then
          parts[i] = ({"*", "$", ":", "+", "-", "\r\n", "1", "-1"})[
            math.random(8)]
        end
      end
      p:feed(table.concat(parts))
      for _ = 1, 10 do
        local ok, v = pcall(p.get, p)
        if not ok then assert.matches("^protocol error", v) break end
        if v == nil then break end
      end
    end
  end)

  it("takes an array header's count on trust only once its elements "
     .. "come", function()
    -- a malformed or hostile header announcing 2^31-1 or 5e7 elements
    -- must not make the reader allocate for them up front
    for _, count in ipairs{2147483647, 50000000} do
      collectgarbage()
      local before = collectgarbage("count")
      local p <close> = _redis.Protocol(errobj)
      p:feed("*" .. count .. "\r\n:1\r\n:2\r\n")
      assert.same({}, {p:get()})             -- incomplete: nothing yet
      assert.is_true(collectgarbage("count") - before < 1024,
                     "KiB allocated for *" .. count)
    end
    -- a real array still reads whole, however long
    local parts = {"*3000\r\n"}
    for i = 1, 3000 do parts[#parts + 1] = ":" .. i .. "\r\n" end
    local out = replies(table.concat(parts), 1000)
    assert.equal(1, #out)
    assert.equal(3000, out[1][2].n)
    assert.equal(3000, #out[1][2])
    assert.equal(2999, out[1][2][2999])
  end)

  it("uses the error factory's value, or the message if it fails",
     function()
    local p <close> = _redis.Protocol(function() error("boom") end)
    p:feed("*1\r\n-ERR x\r\n-ERR y\r\n")
    assert.same({"ERR x", n = 1}, select(2, p:get()))
    assert.same({false, "ERR y"}, {p:get()})
  end)

  it("encodes commands as RESP arrays of bulk strings", function()
    local p <close> = _redis.Protocol(errobj)
    p:command("SET", "k", 12)
    p:command_list({"GET", "k", n = 2})
    p:command("INCRBYFLOAT", "f", 0.1, 1e300, -2.5)
    local want = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"
      .. "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
      .. "*5\r\n$11\r\nINCRBYFLOAT\r\n$1\r\nf\r\n$3\r\n0.1\r\n"
      .. "$6\r\n1e+300\r\n$4\r\n-2.5\r\n"
    assert.equal(#want, p:pending())
    assert.equal(want, p:take())
    assert.equal("", p:take())
    assert.equal("*1\r\n$4\r\nPING\r\n", _redis.encode("PING"))
  end)

  it("encodes a whole float with .0 after it, as Python's repr",
     function()
    local function arg(v) return _redis.encode(v):match("\n([^\r]*)\r\n$") end
    assert.equal("2.0", arg(2.0))
    assert.equal("-3.0", arg(-3.0))
    assert.equal("-0.0", arg(-0.0))
    assert.equal("123456789012345.0", arg(123456789012345.0))
    assert.equal("9007199254740992.0", arg(2.0 ^ 53))
    assert.equal("2", arg(2))
    assert.equal("1e+16", arg(1e16))
    assert.equal("1e-05", arg(1e-5))
    assert.equal("inf", arg(math.huge))
    assert.equal("-inf", arg(-math.huge))
    local p <close> = _redis.Protocol(errobj)
    p:command_list({"SET", "k", 4.0, n = 3})
    assert.equal("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n4.0\r\n",
                 p:take())
  end)

  it("refuses what Redis cannot take, leaving the buffer as it was",
     function()
    local p <close> = _redis.Protocol(errobj)
    p:command("PING")
    assert.matches("bad argument #3 to 'command' %(string or number "
      .. "expected, got boolean%)", select(2, pcall(function()
      p:command("SET", "k", true) end)))
    assert.matches("NaN", select(2, pcall(function()
      p:command("SET", "k", 0 / 0) end)))
    assert.matches("bad argument #2 to 'command'", select(2, pcall(
      p.command_list, p, {"SET", {}, "v"})))
    assert.matches("bad argument #2 to '[%w_.]*encode'", select(2, pcall(
      _redis.encode, "GET", nil)))
    assert.equal("*1\r\n$4\r\nPING\r\n", p:take())
  end)

  it("is unusable once closed, and close is idempotent", function()
    local p = _redis.Protocol(errobj)
    p:close()
    p:close()
    assert.matches("attempt to use a closed asyncio.redis.Protocol",
                   select(2, pcall(p.feed, p, "x")))
    assert.matches("closed", tostring(p))
  end)
end)
