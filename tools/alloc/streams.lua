-- tools/alloc/streams.lua: a TCP echo server and client on 127.0.0.1,
-- readline/readexactly/readuntil, a subprocess.
local h = dofile("tools/alloc/harness.lua")
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local r = h.run(function()
  local server = await(asyncio.start_server(async(function(reader, writer)
    local line = await(reader:readline())
    writer:write(line)
    await(writer:drain())
    writer:close()
  end), "127.0.0.1", 0))
  local port = server.sockets[1].port or server.sockets[1][2]
  local reader, writer = await(asyncio.open_connection("127.0.0.1", port))
  writer:write("hello\n")
  local ok, echo = pcall(await, reader:readexactly(6))
  if not ok and asyncio.iserror(echo, asyncio.IncompleteReadError) then
    -- the server could not allocate for the connection and dropped it
    error("not enough memory (the server dropped the connection)", 0)
  elseif not ok then
    error(echo, 0)
  end
  writer:close()
  server:close()
  await(server:wait_closed())
  local sr = asyncio.StreamReader()
  sr:feed_data("a,b;c")
  sr:feed_eof()
  local part = await(sr:readuntil(";"))
  return echo .. part
end)
h.check(r == "hello\na,b;", "echo")
