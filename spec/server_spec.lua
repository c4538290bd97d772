-- spec/server_spec.lua: start_server and the Server object
-- (bindings/io/stream.c, lua/asyncio/streams.lua): accepting, the client
-- callback, close / wait_closed, serve_forever, to-be-closed servers.
--
-- Real clock, local servers on 127.0.0.1 port 0; time only for order.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local iserror = asyncio.iserror

local h = dofile("spec/helpers.lua")
local raises = h.error_of

local spawn = h.spawn

local function port_of(srv)
  return srv.sockets[1].port
end

--- Connects, sends `line`, returns the answer up to the end.
local function ask(port, line)
  local r, w = await(asyncio.open_connection("127.0.0.1", port))
  w:write(line)
  local answer = await(r:read())
  w:close()
  return answer
end

local upper_echo = async(function(r, w)
  local line = await(r:readline())
  w:write(line:upper())
  await(w:drain())
  w:close()
end)

describe("start_server", function()
  it("listens on the port the system chose; sockets give the address",
     aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
    assert.equal("asyncio.Server", getmetatable(srv).__name)
    local s = srv.sockets[1]
    assert.equal(1, #srv.sockets)
    assert.equal("127.0.0.1", s.host)
    assert.is_true(s.port > 0)
    assert.equal(asyncio.AF_INET, s.family)
    assert.same({"127.0.0.1", s.port}, s:getsockname())
    assert.is_true(srv:is_serving())
    assert.equal(asyncio.get_running_loop(), srv:get_loop())
    assert.equal(("<Server sockets=(<socket 127.0.0.1:%d>)>"):format(s.port),
                 tostring(srv))
    srv:close()
    await(srv:wait_closed())
  end))

  it("runs a coroutine-function callback as a task per connection",
     aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
    assert.equal("HELLO\n", ask(port_of(srv), "hello\n"))
    srv:close()
    await(srv:wait_closed())
  end))

  it("calls a plain-function callback with the reader and the writer",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got = loop:create_future()
    local srv = await(asyncio.start_server(function(r, w)
      got:set_result(getmetatable(r).__name .. " " ..
                     getmetatable(w).__name)
      w:write("hi")
      w:close()
    end, "127.0.0.1", 0))
    assert.equal("hi", ask(port_of(srv), ""))
    assert.equal("asyncio.StreamReader asyncio.StreamWriter", await(got))
    srv:close()
  end))

  it("serves 100 concurrent connections", aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
    local port = port_of(srv)
    local tasks = {}
    for i = 1, 100 do
      tasks[i] = spawn(ask, port, "n" .. i .. "\n")
    end
    local answers = await(asyncio.gather(table.unpack(tasks)))
    for i = 1, 100 do assert.equal("N" .. i .. "\n", answers[i]) end
    srv:close()
    await(srv:wait_closed())
  end))

  it("nil or '' as host listens on every interface", aspec.async(function()
    for _, host in ipairs{false, ""} do
      local srv = await(asyncio.start_server(upper_echo, host or nil, 0))
      local port -- of the IPv4 wildcard socket
      for _, s in ipairs(srv.sockets) do
        if s.host == "0.0.0.0" then port = s.port end
      end
      assert.equal("ANY\n", ask(port, "any\n"))
      srv:close()
      await(srv:wait_closed())
    end
  end))

  it("accepts a list of hosts and options backlog and limit",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local got = loop:create_future()
    local srv = await(asyncio.start_server(async(function(r, w)
      local ok, err = pcall(await, r:readline())
      got:set_result(ok and "line" or getmetatable(err).__name)
      w:close()
    end), {"127.0.0.1"}, 0, {backlog = 5, limit = 8}))
    assert.equal(1, #srv.sockets)
    local _, w = await(asyncio.open_connection("127.0.0.1", port_of(srv)))
    w:write(string.rep("x", 100) .. "\n")
    assert.equal("ValueError", await(got)) -- readline past the limit
    w:close()
    srv:close()
  end))

  it("a failing client task is reported to the exception handler and its "
     .. "connection closed", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local reported = loop:create_future()
    loop:set_exception_handler(function(_, ctx)
      reported:set_result(ctx)
    end)
    local srv = await(asyncio.start_server(async(function()
      error(asyncio.ValueError("handler broke"))
    end), "127.0.0.1", 0))
    local r, w = await(asyncio.open_connection("127.0.0.1", port_of(srv)))
    local ctx = await(reported)
    assert.equal("Unhandled exception in client_connected_cb", ctx.message)
    assert.is_true(iserror(ctx.exception, asyncio.ValueError))
    assert.equal("asyncio.Transport", getmetatable(ctx.transport).__name)
    assert.equal("", await(r:read()))
    w:close()
    srv:close()
  end))

  it("close stops accepting: a new connection is refused",
     aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
    local port = port_of(srv)
    srv:close()
    assert.is_false(srv:is_serving())
    assert.same({}, srv.sockets)
    local err = raises(function()
      return await(asyncio.open_connection("127.0.0.1", port))
    end)
    assert.is_true(iserror(err, asyncio.ConnectionRefusedError))
    srv:close() -- idempotent
  end))

  it("wait_closed waits for the accepted connections to close (Python "
     .. "3.12+)", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local server_writer = loop:create_future()
    local srv = await(asyncio.start_server(function(_, w)
      server_writer:set_result(w)
    end, "127.0.0.1", 0))
    local _, w = await(asyncio.open_connection("127.0.0.1", port_of(srv)))
    local sw = await(server_writer)
    srv:close()
    local order = {}
    local t = spawn(function()
      await(srv:wait_closed())
      order[#order + 1] = "wait_closed returned"
    end)
    await(asyncio.sleep(0.01))
    assert.is_false(t:done())
    order[#order + 1] = "connection closed"
    sw:close()
    await(t)
    assert.same({"connection closed", "wait_closed returned"}, order)
    w:close()
  end))

  it("start_serving = false binds without listening until start_serving()",
     aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0,
                                           {start_serving = false}))
    local port = port_of(srv)
    assert.is_false(srv:is_serving())
    local err = raises(function()
      return await(asyncio.open_connection("127.0.0.1", port))
    end)
    assert.is_true(iserror(err, asyncio.ConnectionRefusedError))
    srv:start_serving()
    assert.is_true(srv:is_serving())
    assert.equal("LATE\n", ask(port, "late\n"))
    srv:close()
    await(srv:wait_closed())
    -- awaited, as Python's coroutine: `await server.start_serving()`
    srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0,
                                     {start_serving = false}))
    assert.is_nil(await(srv:start_serving()))
    assert.is_true(srv:is_serving())
    assert.equal("AWAITED\n", ask(port_of(srv), "awaited\n"))
    srv:close()
    await(srv:wait_closed())
  end))

  it("wait_closed on an open server waits for close(), as Python 3.12.1+",
     aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
    local waiter = asyncio.create_task(srv:wait_closed())
    for _ = 1, 3 do await(asyncio.sleep(0)) end
    assert.is_false(waiter:done())
    srv:close()
    assert.is_nil(await(asyncio.wait_for(waiter, 10)))
  end))

  it("binding a port in use raises an OSError named EADDRINUSE",
     aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
    local err = raises(function()
      return await(asyncio.start_server(upper_echo, "127.0.0.1",
                                        port_of(srv)))
    end)
    assert.is_true(iserror(err, asyncio.OSError))
    assert.equal("EADDRINUSE", err.name)
    srv:close()
  end))
end)

describe("Server", function()
  it("serve_forever serves until cancelled, then closes the server and "
     .. "raises CancelledError", aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0,
                                           {start_serving = false}))
    local t = spawn(function() await(srv:serve_forever()) end)
    await(asyncio.sleep(0))
    assert.is_true(srv:is_serving())
    assert.equal("ONE\n", ask(port_of(srv), "one\n"))
    t:cancel()
    assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
    assert.is_false(srv:is_serving())
  end))

  it("a cancelled serve_forever waits for the open connections before "
     .. "raising CancelledError (Python 3.12+)", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local server_writer = loop:create_future()
    local srv = await(asyncio.start_server(function(_, w)
      server_writer:set_result(w)
    end, "127.0.0.1", 0))
    local t = spawn(function() await(srv:serve_forever()) end)
    local _, w = await(asyncio.open_connection("127.0.0.1", port_of(srv)))
    local sw = await(server_writer)
    t:cancel()
    await(asyncio.sleep(0.01))
    assert.is_false(t:done())
    assert.is_false(srv:is_serving())
    sw:close()
    assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
    w:close()
  end))

  it("close() from another task ends serve_forever with CancelledError",
     aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
    local t = spawn(function() await(srv:serve_forever()) end)
    await(asyncio.sleep(0))
    srv:close()
    assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
  end))

  it("serve_forever twice at once raises RuntimeError; on a closed server "
     .. "too", aspec.async(function()
    local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
    local t = spawn(function() await(srv:serve_forever()) end)
    await(asyncio.sleep(0))
    local err = raises(function() await(srv:serve_forever()) end)
    assert.is_true(iserror(err, asyncio.RuntimeError))
    t:cancel()
    pcall(await, t)
    err = raises(function() await(srv:serve_forever()) end)
    assert.is_true(iserror(err, asyncio.RuntimeError))
  end))

  it("a to-be-closed server closes and waits for its connections at the "
     .. "end of the scope", aspec.async(function()
    local port
    do
      local srv <close> = await(asyncio.start_server(upper_echo,
                                                     "127.0.0.1", 0))
      port = port_of(srv)
      assert.equal("SCOPE\n", ask(port, "scope\n"))
    end
    local err = raises(function()
      return await(asyncio.open_connection("127.0.0.1", port))
    end)
    assert.is_true(iserror(err, asyncio.ConnectionRefusedError))
  end))

  it("a to-be-closed server waits for an open connection at the end of "
     .. "its scope", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local server_writer = loop:create_future()
    local order = {}
    local w
    do
      local srv <close> = await(asyncio.start_server(function(_, sw)
        server_writer:set_result(sw)
      end, "127.0.0.1", 0))
      _, w = await(asyncio.open_connection("127.0.0.1", port_of(srv)))
      local sw = await(server_writer)
      loop:call_later(0.01, function()
        order[#order + 1] = "connection closed"
        sw:close()
      end)
    end
    order[#order + 1] = "scope left"
    assert.same({"connection closed", "scope left"}, order)
    w:close()
  end))

  it("the loop keeps a serving server alive without other references",
     aspec.async(function()
    local port
    do
      local srv = await(asyncio.start_server(upper_echo, "127.0.0.1", 0))
      port = port_of(srv)
    end
    collectgarbage()
    collectgarbage()
    assert.equal("KEPT\n", ask(port, "kept\n"))
  end))
end)
