-- Reads of every size on one connection: a read lands in the protocol's
-- own buffer when it has 64 KiB of room, else in the loop's scratch
-- buffer, copied into a buffer of the data's size (transport.c). Small
-- pieces, bursts far over 64 KiB and small pieces again must arrive
-- whole and in order, through a Lua protocol and through streams, on
-- many connections of one loop at once.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"

local async, await = asyncio.async, asyncio.await

--- The pieces each connection sends: sizes around 64 KiB and far above,
-- each piece of distinct bytes (its index and the connection's).
local SIZES = {1, 10, 64, 1000, 65535, 65536, 65537, 300000, 3, 200000, 7}

local function pieces(conn)
  local out = {}
  for i, n in ipairs(SIZES) do
    local unit = string.format("<%d.%d>", conn, i)
    out[i] = unit:rep(n // #unit + 1):sub(1, n)
  end
  return out
end

--- Sends connection conn's number on a line, then its pieces, each
-- drained and followed by a pause (a read of its own), then EOF.
local function send_pieces(w, conn)
  w:write(conn .. "\n")
  for _, piece in ipairs(pieces(conn)) do
    w:write(piece)
    await(w:drain())
    await(asyncio.sleep(0.001))
  end
  w:write_eof()
end

describe("reads of every size", function()
  it("through a Lua protocol: every byte, in order, on 8 connections",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got, calls, done = {}, {}, {}
    local srv = await(loop:create_server(function()
      local p = {data = "", calls = 0}
      function p:data_received(d)
        self.data = self.data .. d
        self.calls = self.calls + 1
      end
      function p:eof_received()
        local id, rest = self.data:match("^(%d+)\n(.*)$")
        id = tonumber(id)
        got[id], calls[id] = rest, self.calls
        done[id]:set_result(true)
      end
      return p
    end, "127.0.0.1", 0))
    local port = srv.sockets[1].port
    local senders = {}
    for conn = 1, 8 do
      done[conn] = loop:create_future()
      senders[conn] = asyncio.create_task(async(function()
        local _, w = await(asyncio.open_connection("127.0.0.1", port))
        send_pieces(w, conn)
        await(done[conn])
        w:close()
      end)())
    end
    await(asyncio.gather(table.unpack(senders)))
    for conn = 1, 8 do
      local want = table.concat(pieces(conn))
      assert.equal(#want, #got[conn])
      assert.is_true(want == got[conn], "connection " .. conn)
      assert.is_true(calls[conn] >= #SIZES // 2) -- pieces, not one read
    end
    srv:close()
    await(srv:wait_closed())
  end))

  it("through streams: readexactly of each piece, on 8 connections",
     aspec.async(function()
    local matched = {}
    local srv = await(asyncio.start_server(async(function(r, w)
      local id = tonumber(await(r:readline()))
      local n = 0
      for _, want in ipairs(pieces(id)) do
        if await(r:readexactly(#want)) == want then n = n + 1 end
      end
      if await(r:read()) == "" then matched[id] = n end
      w:close()
    end), "127.0.0.1", 0))
    local port = srv.sockets[1]:getsockname()[2]
    local clients = {}
    for conn = 1, 8 do
      clients[conn] = asyncio.create_task(async(function()
        local r, w = await(asyncio.open_connection("127.0.0.1", port))
        send_pieces(w, conn)
        assert.equal("", await(r:read()))
        w:close()
      end)())
    end
    await(asyncio.gather(table.unpack(clients)))
    srv:close()
    await(srv:wait_closed())
    for conn = 1, 8 do assert.equal(#SIZES, matched[conn]) end
  end))
end)
