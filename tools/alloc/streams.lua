-- tools/alloc/streams.lua: a TCP echo server and client on 127.0.0.1,
-- the same over a Unix socket (its addresses are strings the transport
-- keeps), readline/readexactly/readuntil.
local h = dofile("tools/alloc/harness.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

--- Writes line through writer and reads back #line bytes from reader;
-- raises a memory error when the server dropped the connection.
local function echo_of(reader, writer, line)
  writer:write(line)
  local ok, echo = pcall(await, reader:readexactly(#line))
  if not ok and (asyncio.iserror(echo, asyncio.IncompleteReadError) or
                 asyncio.iserror(echo, asyncio.ConnectionError)) then
    -- the server could not allocate for the connection and dropped it:
    -- the read ends early, or the write met the closed socket (EPIPE,
    -- ECONNRESET)
    error("not enough memory (the server dropped the connection)", 0)
  elseif not ok then
    error(echo, 0)
  end
  return echo
end

local serve = async(function(reader, writer)
  local line = await(reader:readline())
  writer:write(line)
  await(writer:drain())
  writer:close()
end)

--- An echo over a Unix socket at a fresh path (removed after, whatever
-- happened); returns the echo and the client's peername.
local function unix_echo()
  local path = os.tmpname()
  os.remove(path)
  local ok, echo, peer = pcall(function()
    local server = await(asyncio.start_unix_server(serve, path))
    local reader, writer = await(asyncio.open_unix_connection(path))
    local peer = writer:get_extra_info("peername")
    local echo = echo_of(reader, writer, "unix\n")
    writer:close()
    server:close()
    await(server:wait_closed())
    return echo, peer
  end)
  os.remove(path)
  if not ok then error(echo, 0) end
  h.check(peer == path, "peername")
  return echo
end

local r = h.run(function()
  local server = await(asyncio.start_server(serve, "127.0.0.1", 0))
  local port = server.sockets[1].port or server.sockets[1][2]
  local reader, writer = await(asyncio.open_connection("127.0.0.1", port))
  local echo = echo_of(reader, writer, "hello\n")
  writer:close()
  server:close()
  await(server:wait_closed())
  echo = echo .. unix_echo()
  local sr = asyncio.StreamReader()
  sr:feed_data("a,b;c")
  sr:feed_eof()
  local part = await(sr:readuntil(";"))
  return echo .. part
end)
h.check(r == "hello\nunix\na,b;", "echo")
