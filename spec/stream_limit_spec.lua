-- spec/stream_limit_spec.lua: the StreamReader buffer limit
-- (bindings/io/stream.c): LimitOverrunError from readuntil, ValueError
-- from readline (as asyncio), what stays in the buffer, and a peer sending
-- an endless line, which must not make the reader's memory grow.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local iserror = asyncio.iserror

local h = dofile("spec/helpers.lua")
local raises = h.error_of

--- The process's resident set size in bytes.
local function rss()
  local f = assert(io.open("/proc/self/status"))
  local kb = f:read("a"):match("VmRSS:%s*(%d+)")
  f:close()
  return tonumber(kb) * 1024
end

local function reader_with(limit, data, eof)
  local r = asyncio.StreamReader({limit = limit})
  r:feed_data(data)
  if eof then r:feed_eof() end
  return r
end

describe("stream limit", function()
  it("a line of exactly limit bytes is read; one more byte raises "
     .. "LimitOverrunError", aspec.async(function()
    local r = reader_with(16, string.rep("a", 16) .. "\n")
    assert.equal(string.rep("a", 16) .. "\n", await(r:readuntil("\n")))
    r = reader_with(16, string.rep("b", 17) .. "\n")
    local err = raises(function() return await(r:readuntil("\n")) end)
    assert.is_true(iserror(err, asyncio.LimitOverrunError))
    assert.equal("Separator is found, but chunk is longer than limit",
                 err.message)
    assert.equal(17, err.consumed)
  end))

  it("readuntil without the separator within the limit raises and leaves "
     .. "the data in the buffer", aspec.async(function()
    local data = string.rep("x", 40)
    local r = reader_with(16, data, true)
    local err = raises(function() return await(r:readuntil("\n")) end)
    assert.is_true(iserror(err, asyncio.LimitOverrunError))
    assert.equal("Separator is not found, and chunk exceed the limit",
                 err.message)
    assert.is_true(err.consumed > 16)
    assert.equal(data, await(r:read()))
  end))

  it("readline past the limit raises ValueError, as asyncio, and drops "
     .. "the long line through its newline", aspec.async(function()
    local r = reader_with(16, string.rep("y", 20) .. "\nnext\n", true)
    local err = raises(function() return await(r:readline()) end)
    assert.is_true(iserror(err, asyncio.ValueError))
    assert.is_false(iserror(err, asyncio.LimitOverrunError))
    assert.equal("Separator is found, but chunk is longer than limit",
                 err.message)
    assert.equal("next\n", await(r:readline()))
    -- no newline within the limit: what was buffered goes
    r = reader_with(16, string.rep("z", 40), true)
    err = raises(function() return await(r:readline()) end)
    assert.is_true(iserror(err, asyncio.ValueError))
    assert.equal("Separator is not found, and chunk exceed the limit",
                 err.message)
    assert.equal("", await(r:read()))
  end))

  it("readline past the limit without a newline drops what it buffered",
     aspec.async(function()
    local r = reader_with(16, string.rep("z", 40))
    raises(function() return await(r:readline()) end)
    assert.equal(0, r:_buffer().len)
    r:feed_data("end\n")
    assert.equal("end\n", await(r:readline()))
  end))

  it("readexactly and read() are not bound by the limit",
     aspec.async(function()
    local data = string.rep("q", 100)
    assert.equal(data, await(reader_with(8, data):readexactly(100)))
    assert.equal(data, await(reader_with(8, data, true):read()))
  end))

  it("the limit must be an integer (a bad option), above 0 (Python's "
     .. "ValueError)", function()
    for _, n in ipairs{0, -1} do
      local e = raises(function() return asyncio.StreamReader({limit = n}) end)
      assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
      assert.equal("Limit cannot be <= 0", e.message)
    end
    assert.matches("bad option 'limit' %(integer expected%)",
                   tostring(raises(function()
      return asyncio.StreamReader({limit = 1.5})
    end)))
  end)

  it("a peer sending an endless line gets ValueError without "
     .. "memory growth", aspec.async(function()
    local limit = 65536
    local total = 64 << 20 -- 64 MiB, never a newline
    local srv = await(asyncio.start_server(async(function(_, w)
      local chunk = string.rep("e", 65536)
      for _ = 1, total // #chunk do
        w:write(chunk)
        local ok = pcall(await, w:drain())
        if not ok then break end
      end
      w:close()
    end), "127.0.0.1", 0))
    local r, w = await(asyncio.open_connection("127.0.0.1",
      srv.sockets[1].port, {limit = limit}))
    collectgarbage()
    local rss0 = rss()
    local overruns, max_cap, tail = 0, 0, nil
    while true do
      local ok, res = pcall(await, r:readline())
      local cap = r:_buffer().cap
      if cap > max_cap then max_cap = cap end
      if ok then
        tail = res
        break
      end
      assert.is_true(iserror(res, asyncio.ValueError))
      overruns = overruns + 1
    end
    -- every limit's worth of the line raised, and what came after the
    -- last overrun is less than a limit
    assert.is_true(overruns >= total // (2 * (limit + 65536)))
    assert.is_true(#tail <= limit)
    assert.is_true(max_cap <= 4 * (limit + 65536))
    collectgarbage()
    assert.is_true(rss() - rss0 < 16 << 20,
                   ("RSS grew by %d bytes"):format(rss() - rss0))
    w:close()
    srv:close()
    await(srv:wait_closed())
  end))

  it("while nobody reads, the reader stops reading at the limit and the "
     .. "peer's writes queue up (drain waits)", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local peer = loop:create_future()
    local srv = await(asyncio.start_server(function(_, w)
      peer:set_result(w)
    end, "127.0.0.1", 0))
    local r, w = await(asyncio.open_connection("127.0.0.1",
      srv.sockets[1].port, {limit = 4096}))
    local pw = await(peer)
    local chunk = string.rep("p", 1 << 20)
    local drained = false
    local t = asyncio.create_task(async(function()
      for _ = 1, 32 do
        pw:write(chunk)
        await(pw:drain())
      end
      drained = true
    end)())
    local b
    h.turns_until(function()
      b = r:_buffer()
      return b.paused
    end)
    assert.is_true(b.len <= 4096 + 65536)
    -- the peer's drains wait: it is far from through its 32 MiB (a drain
    -- that did not wait would have let it write them all in one step)
    assert.is_false(drained)
    -- once the client reads, everything arrives and the drains return
    local n = 0
    while n < 32 << 20 do
      n = n + #await(asyncio.wait_for(r:read(1 << 20), 10))
    end
    await(asyncio.wait_for(t, 10))
    assert.is_true(drained)
    pw:close()
    w:close()
    srv:close()
    await(srv:wait_closed())
  end))
end)
