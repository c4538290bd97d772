-- spec/stream_chunking_spec.lua: readline, readuntil and readexactly give
-- the same results whatever chunks the bytes arrive in (bindings/io/stream.c).
--
-- A script of reads is generated with the bytes each one must return
-- (lines, records ending in a two-byte separator, binary blocks holding
-- newlines and separators). The byte stream is then fed in one piece, one
-- byte at a time, and in random chunkings (seeded, so failures repeat),
-- with a loop iteration between chunks so that reads wait mid-record and
-- mid-separator; every read must return exactly its expected bytes.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local SEP = "\r\n"

--- A random string of n bytes drawn from `alphabet`.
local function random_bytes(n, alphabet)
  local out = {}
  for i = 1, n do
    local k = math.random(#alphabet)
    out[i] = alphabet:sub(k, k)
  end
  return table.concat(out)
end

local TEXT = "abcdefghij klmnopqrstuvwxyz0123456789\r"
local BINARY = TEXT .. "\n\0\255"

--- Generates {ops = {{kind, arg, expect}}, data = string} from a seed.
local function make_script(seed, n)
  math.randomseed(seed)
  local ops, parts = {}, {}
  for i = 1, n do
    local kind, arg, expect
    local r = math.random(3)
    if r == 1 then
      kind, expect = "readline", random_bytes(math.random(0, 80), TEXT) .. "\n"
    elseif r == 2 then
      -- no "\r\n" inside: the text alphabet has "\r" but never "\n"
      local body = random_bytes(math.random(0, 80), TEXT):gsub("\r$", "")
      kind, arg, expect = "readuntil", SEP, body .. SEP
    else
      expect = random_bytes(math.random(0, 300), BINARY)
      kind, arg = "readexactly", #expect
    end
    ops[i] = {kind, arg, expect}
    parts[i] = expect
  end
  -- a last line without its newline, then the end
  ops[#ops + 1] = {"readline", nil, "tail"}
  ops[#ops + 1] = {"readline", nil, ""}
  parts[#parts + 1] = "tail"
  return {ops = ops, data = table.concat(parts)}
end

--- Runs the script's reads; returns the list of results.
local function run_reads(reader, ops)
  local results = {}
  for i, op in ipairs(ops) do
    results[i] = await(reader[op[1]](reader, op[2]))
  end
  return results
end

local function expected(ops)
  local out = {}
  for i, op in ipairs(ops) do out[i] = op[3] end
  return out
end

--- Chunk sizes: a function returning the next size.
local chunkings = {
  whole = function() return math.huge end,
  bytes = function() return 1 end,
  small = function() return math.random(1, 7) end,
  medium = function() return math.random(1, 100) end,
  large = function() return math.random(1, 5000) end,
}

--- Feeds data to a standalone reader in chunks, one iteration apart.
local feed = async(function(reader, data, size)
  local pos = 1
  while pos <= #data do
    local n = math.min(size(), #data - pos + 1)
    reader:feed_data(data:sub(pos, pos + n - 1))
    pos = pos + n
    await(asyncio.sleep(0))
  end
  reader:feed_eof()
end)

--- Feeds and reads at once; returns the reads' results.
local function feed_and_read(script, size)
  local reader = asyncio.StreamReader()
  local feeder = asyncio.create_task(feed(reader, script.data, size))
  local results = run_reads(reader, script.ops)
  await(feeder)
  return results
end

describe("stream chunking", function()
  for _, name in ipairs{"whole", "bytes", "small", "medium", "large"} do
    it("a fed StreamReader reads the same records in " .. name .. " chunks",
       aspec.async({clock = "virtual"}, function()
      local script = make_script(1000 + #name, 150)
      math.randomseed(7)
      assert.same(expected(script.ops),
                  feed_and_read(script, chunkings[name]))
    end))
  end

  it("fifty random chunkings of fifty scripts all read the same records",
     aspec.async({clock = "virtual"}, function()
    for seed = 1, 50 do
      local script = make_script(seed, 40)
      local want = expected(script.ops)
      math.randomseed(seed * 31)
      local size = seed % 2 == 0 and chunkings.small or chunkings.medium
      assert.same(want, feed_and_read(script, size))
    end
  end))

  it("a separator split between two chunks is still found",
     aspec.async({clock = "virtual"}, function()
    local reader = asyncio.StreamReader()
    local t = asyncio.create_task(reader:readuntil("<END>"))
    for _, chunk in ipairs{"abc<", "E", "N", "D", ">rest"} do
      reader:feed_data(chunk)
      await(asyncio.sleep(0))
    end
    assert.equal("abc<END>", await(t))
    reader:feed_eof()
    assert.equal("rest", await(reader:read()))
  end))

  it("a TCP stream written in random chunks reads the same records",
     aspec.async(function()
    local script = make_script(4242, 200)
    local loop = asyncio.get_running_loop()
    local got = loop:create_future()
    local srv = await(asyncio.start_server(async(function(r, w)
      got:set_result(run_reads(r, script.ops))
      w:close()
    end), "127.0.0.1", 0))
    local _, w = await(asyncio.open_connection("127.0.0.1",
                                               srv.sockets[1].port))
    math.randomseed(99)
    local data, pos = script.data, 1
    while pos <= #data do
      local n = math.random(1, 200)
      w:write(data:sub(pos, pos + n - 1))
      pos = pos + n
      await(w:drain())
      if math.random(4) == 1 then await(asyncio.sleep(0.001)) end
    end
    w:close()
    assert.same(expected(script.ops), await(got))
    srv:close()
    await(srv:wait_closed())
  end))
end)
