-- spec/stream_spec.lua: StreamReader and StreamWriter over TCP and Unix
-- sockets (bindings/io/stream.c, lua/asyncio/streams.lua): reads, writes,
-- flow control, closing, errors, cancellation.
--
-- Every test runs on the real clock (I/O needs it) against local servers
-- on 127.0.0.1, port 0; time is only ever checked for order.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local iserror = asyncio.iserror

local h = dofile("spec/helpers.lua")
local raises = h.error_of

--- A connected pair: the client's reader and writer (cr, cw), the
-- server side's (sr, sw) and the server. opts go to both ends.
local function pair(opts)
  local loop = asyncio.get_running_loop()
  local got = loop:create_future()
  local srv = await(asyncio.start_server(function(r, w)
    if not got:done() then got:set_result({r, w}) end
  end, "127.0.0.1", 0, opts))
  local cr, cw = await(asyncio.open_connection("127.0.0.1",
                                               srv.sockets[1].port, opts))
  local s = await(got)
  return {cr = cr, cw = cw, sr = s[1], sw = s[2], srv = srv}
end

local function close_pair(p)
  p.cw:close()
  p.sw:close()
  p.srv:close()
  await(p.srv:wait_closed())
end

local spawn = h.spawn

describe("streams", function()
  describe("open_connection", function()
    it("a port outside 0-65535 raises a bad-argument error naming the "
       .. "function and the argument (Python raises OverflowError)",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local factory = function() return {} end
      local cases = {
        {"bad argument #2 to 'open_connection' (port must be 0-65535)",
         function() return asyncio.open_connection("127.0.0.1", 70000) end},
        {"bad argument #2 to 'open_connection' (port must be 0-65535)",
         function() return asyncio.open_connection("127.0.0.1", -1) end},
        {"bad argument #3 to 'start_server' (port must be 0-65535)",
         function()
           return asyncio.start_server(factory, "127.0.0.1", 65536)
         end},
        {"bad argument #3 to 'create_connection' (port must be 0-65535)",
         function()
           return loop:create_connection(factory, "127.0.0.1", 70000)
         end},
        {"bad argument #3 to 'create_server' (port must be 0-65535)",
         function()
           return loop:create_server(factory, "127.0.0.1", 70000)
         end},
        {"bad argument #2 to 'open_udp' (port must be 0-65535)",
         function() return asyncio.open_udp("127.0.0.1", 70000) end},
      }
      for _, case in ipairs(cases) do
        assert.equal(case[1], raises(function() return await(case[2]()) end))
      end
    end))

    it("returns a reader and a writer connected to the server",
       aspec.async(function()
      local p = pair()
      assert.equal("asyncio.StreamReader", getmetatable(p.cr).__name)
      assert.equal("asyncio.StreamWriter", getmetatable(p.cw).__name)
      p.cw:write("ping")
      assert.equal("ping", await(p.sr:readexactly(4)))
      p.sw:write("pong")
      assert.equal("pong", await(p.cr:readexactly(4)))
      close_pair(p)
    end))

    it("resolves a host name (localhost)", aspec.async(function()
      local srv = await(asyncio.start_server(function(_, w) w:close() end,
                                             "127.0.0.1", 0))
      local r, w = await(asyncio.open_connection("localhost",
                                                 srv.sockets[1].port))
      assert.equal("", await(r:read()))
      w:close()
      srv:close()
    end))

    it("raises ConnectionRefusedError (an OSError with errno and name) "
       .. "when nobody listens", aspec.async(function()
      local srv = await(asyncio.start_server(function() end, "127.0.0.1", 0))
      local port = srv.sockets[1].port
      srv:close()
      await(srv:wait_closed())
      local err = raises(function()
        return await(asyncio.open_connection("127.0.0.1", port))
      end)
      assert.is_true(iserror(err, asyncio.ConnectionRefusedError))
      assert.is_true(iserror(err, asyncio.ConnectionError))
      assert.is_true(iserror(err, asyncio.OSError))
      assert.equal("ECONNREFUSED", err.name)
      assert.is_true(err.errno > 0)
      assert.matches("^ConnectionRefusedError: ECONNREFUSED", tostring(err))
    end))

    it("get_extra_info gives peername and sockname as {host, port}",
       aspec.async(function()
      local p = pair()
      local port = p.srv.sockets[1].port
      local peer = p.cw:get_extra_info("peername")
      assert.same({"127.0.0.1", port}, peer)
      local sock = p.cw:get_extra_info("sockname")
      assert.equal("127.0.0.1", sock[1])
      assert.same(sock, p.sw:get_extra_info("peername"))
      assert.is_nil(p.cw:get_extra_info("nosuchinfo"))
      assert.equal("dflt", p.cw:get_extra_info("nosuchinfo", "dflt"))
      close_pair(p)
      assert.same(peer, p.cw:get_extra_info("peername"))
    end))

    it("binds the local address given as local_addr", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local got = loop:create_future()
      local srv = await(asyncio.start_server(function(_, w)
        got:set_result(w:get_extra_info("peername"))
        w:close()
      end, "127.0.0.1", 0))
      local _, w = await(asyncio.open_connection("127.0.0.1",
        srv.sockets[1].port, {local_addr = {"127.0.0.1", 0}}))
      local peer = await(got)
      assert.same(w:get_extra_info("sockname"), peer)
      w:close()
      srv:close()
    end))

    it("a cancelled connect raises CancelledError and closes its socket",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local accepted, arrived = {}, asyncio.Event()
      local srv = await(asyncio.start_server(function(r, w)
        accepted[#accepted + 1] = {r = r, w = w,
                                   peer = w:get_extra_info("peername")}
        arrived:set()
      end, "127.0.0.1", 0))
      local port = srv.sockets[1].port
      local before = loop:_counts().handles
      local t = spawn(function()
        return await(asyncio.open_connection("127.0.0.1", port))
      end)
      -- runs right after the task's first step, which started the connect
      loop:call_soon(function() t:cancel() end)
      local err = raises(await, t)
      assert.is_true(iserror(err, asyncio.CancelledError))
      -- The cancel may come before or after the handshake, so the server
      -- may or may not accept that socket. A second connection settles
      -- it: the server accepts in order, so once it has accepted this
      -- one, it has accepted the cancelled one if it ever will.
      local _, sw = await(asyncio.open_connection("127.0.0.1", port))
      local me = sw:get_extra_info("sockname")
      local function accepted_me()
        local last = accepted[#accepted]
        return last and last.peer[1] == me[1] and last.peer[2] == me[2]
      end
      await(asyncio.wait_for(async(function()
        while not accepted_me() do
          arrived:clear()
          await(arrived:wait())
        end
      end)(), 10))
      assert.is_true(#accepted <= 2)
      for i = 1, #accepted - 1 do -- the server saw the cancelled socket close
        local ok, data = pcall(await,
                               asyncio.wait_for(accepted[i].r:read(), 10))
        assert.is_true(not ok and iserror(data, asyncio.ConnectionError)
                       or data == "", tostring(data))
      end
      sw:close()
      await(sw:wait_closed())
      for _, a in ipairs(accepted) do
        a.w:close()
        pcall(await, a.w:wait_closed()) -- raises if the peer reset
      end
      -- no socket of the cancelled connect is left open
      assert.equal(before, loop:_counts().handles)
      srv:close()
      await(srv:wait_closed())
    end))

    it("composes with wait_for: a connect in time returns reader and writer",
       aspec.async(function()
      local srv = await(asyncio.start_server(function(_, w) w:close() end,
                                             "127.0.0.1", 0))
      local r, w = await(asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", srv.sockets[1].port), 5))
      assert.equal("", await(r:read()))
      w:close()
      srv:close()
      await(srv:wait_closed())
    end))
  end)

  describe("StreamReader", function()
    it("read(n) returns at most n bytes of what arrived",
       aspec.async(function()
      local p = pair()
      p.sw:write("hello world")
      await(p.cr:readexactly(1))
      assert.equal("ello", await(p.cr:read(4)))
      assert.equal(" world", await(p.cr:read(100)))
      close_pair(p)
    end))

    it("read(0) returns an empty string at once", aspec.async(function()
      local r = asyncio.StreamReader()
      assert.equal("", await(r:read(0)))
    end))

    it("read() reads everything up to the end of the stream",
       aspec.async(function()
      local p = pair()
      local t = spawn(function() return await(p.cr:read()) end)
      for i = 1, 5 do
        p.sw:write(("chunk%d;"):format(i))
        await(asyncio.sleep(0.001))
      end
      p.sw:close()
      assert.equal("chunk1;chunk2;chunk3;chunk4;chunk5;", await(t))
      assert.equal("", await(p.cr:read()))
      close_pair(p)
    end))

    it("read(n) waits for data and returns an empty string at the end",
       aspec.async(function()
      local p = pair()
      local order = {}
      local t = spawn(function()
        local d = await(p.cr:read(10))
        order[#order + 1] = "read"
        return d
      end)
      await(asyncio.sleep(0.01))
      order[#order + 1] = "write"
      p.sw:write("late")
      assert.equal("late", await(t))
      assert.same({"write", "read"}, order)
      p.sw:close()
      assert.equal("", await(p.cr:read(10)))
      assert.is_true(p.cr:at_eof())
      close_pair(p)
    end))

    it("read(n) that waited returns at most n bytes of what then arrived",
       aspec.async(function()
      local r = asyncio.StreamReader()
      local t = spawn(function() return await(r:read(3)) end)
      await(asyncio.sleep(0))
      r:feed_data("hello")
      assert.equal("hel", await(t))
      assert.equal("lo", await(r:read(10)))
    end))

    it("readline returns lines with their newline, then the rest, then ''",
       aspec.async(function()
      local p = pair()
      p.sw:write("one\ntwo\nthree")
      p.sw:close()
      assert.equal("one\n", await(p.cr:readline()))
      assert.equal("two\n", await(p.cr:readline()))
      assert.equal("three", await(p.cr:readline()))
      assert.equal("", await(p.cr:readline()))
      close_pair(p)
    end))

    it("readexactly returns exactly n bytes across several writes",
       aspec.async(function()
      local r = asyncio.StreamReader()
      local t = spawn(function() return await(r:readexactly(10)) end)
      await(asyncio.sleep(0)) -- the read waits
      r:feed_data("12345")
      await(asyncio.sleep(0)) -- a read woken by it would have run
      assert.equal(5, r:_buffer().len)
      assert.equal(5, r:_buffered())
      assert.is_false(t:done())
      r:feed_data("67890abc")
      assert.equal("1234567890", await(t))
      assert.equal(3, r:_buffered())
      assert.equal("abc", await(r:readexactly(3)))
      assert.equal(0, r:_buffered())
    end))

    it("readexactly at the end raises IncompleteReadError with the partial "
       .. "data", aspec.async(function()
      local r = asyncio.StreamReader()
      r:feed_data("abc")
      r:feed_eof()
      local err = raises(function() return await(r:readexactly(5)) end)
      assert.is_true(iserror(err, asyncio.IncompleteReadError))
      assert.is_true(iserror(err, asyncio.EOFError))
      assert.equal("abc", err.partial)
      assert.equal(5, err.expected)
      assert.equal("", await(r:read()))
    end))

    it("readexactly(0) returns '' and a negative size raises ValueError",
       aspec.async(function()
      local r = asyncio.StreamReader()
      assert.equal("", await(r:readexactly(0)))
      local err = raises(function() return await(r:readexactly(-1)) end)
      assert.is_true(iserror(err, asyncio.ValueError))
    end))

    it("readuntil(sep) returns the data through a multi-byte separator",
       aspec.async(function()
      local r = asyncio.StreamReader()
      local t = spawn(function() return await(r:readuntil("\r\n")) end)
      await(asyncio.sleep(0)) -- the read waits
      r:feed_data("GET / HTTP/1.1\r") -- half the separator
      await(asyncio.sleep(0)) -- a read woken by it would have run
      assert.equal(15, r:_buffer().len)
      assert.is_false(t:done())
      r:feed_data("\nHost: x\r\n")
      assert.equal("GET / HTTP/1.1\r\n", await(t))
      assert.equal("Host: x\r\n", await(r:readuntil("\r\n")))
    end))

    it("readuntil at the end raises IncompleteReadError(partial, nil)",
       aspec.async(function()
      local r = asyncio.StreamReader()
      r:feed_data("no separator")
      r:feed_eof()
      local err = raises(function() return await(r:readuntil("|")) end)
      assert.is_true(iserror(err, asyncio.IncompleteReadError))
      assert.equal("no separator", err.partial)
      assert.is_nil(err.expected)
    end))

    it("readuntil with an empty separator raises ValueError",
       aspec.async(function()
      local r = asyncio.StreamReader()
      local err = raises(function() return await(r:readuntil("")) end)
      assert.is_true(iserror(err, asyncio.ValueError))
    end))

    it("for line in reader:lines() iterates the lines, awaiting each",
       aspec.async(function()
      local p = pair()
      spawn(function()
        for i = 1, 3 do
          p.sw:write("line " .. i .. "\n")
          await(asyncio.sleep(0.001))
        end
        p.sw:write("tail")
        p.sw:close()
      end)
      local lines = {}
      for line in p.cr:lines() do lines[#lines + 1] = line end
      assert.same({"line 1\n", "line 2\n", "line 3\n", "tail"}, lines)
      close_pair(p)
    end))

    it("a generic for over the reader itself iterates lines",
       aspec.async(function()
      local r = asyncio.StreamReader()
      r:feed_data("a\nb\n")
      r:feed_eof()
      local lines = {}
      for line in r do lines[#lines + 1] = line end
      assert.same({"a\n", "b\n"}, lines)
    end))

    it("at_eof is true only once the end arrived and the buffer is empty",
       aspec.async(function()
      local r = asyncio.StreamReader()
      assert.is_false(r:at_eof())
      r:feed_data("x")
      r:feed_eof()
      assert.is_false(r:at_eof())
      assert.equal("x", await(r:read(1)))
      assert.is_true(r:at_eof())
    end))

    it("two tasks reading at once: the second raises RuntimeError",
       aspec.async(function()
      local r = asyncio.StreamReader()
      local t = spawn(function() return await(r:read(1)) end)
      await(asyncio.sleep(0))
      local err = raises(function() return await(r:readline()) end)
      assert.is_true(iserror(err, asyncio.RuntimeError))
      assert.matches("readline%(%) called while another coroutine", err.message)
      r:feed_data("z")
      assert.equal("z", await(t))
    end))

    it("set_exception makes every read raise that error",
       aspec.async(function()
      local r = asyncio.StreamReader()
      local t = spawn(function() return await(r:read(1)) end)
      await(asyncio.sleep(0))
      local e = asyncio.ValueError("broken")
      r:set_exception(e)
      assert.equal(e, raises(await, t))
      assert.equal(e, raises(function() return await(r:readline()) end))
      assert.equal(e, r:exception())
    end))

    it("feed_data after feed_eof raises", aspec.async(function()
      local r = asyncio.StreamReader()
      r:feed_eof()
      assert.is_true(iserror(raises(r.feed_data, r, "x"),
                             asyncio.RuntimeError))
    end))

    it("reading outside a task raises", function()
      local r = asyncio.StreamReader()
      local coro = r:read(1) -- runs only when awaited, in a task
      local err = raises(await, coro)
      assert.matches("outside a task", tostring(err))
      coro:close()
    end)

    it("a cancelled read leaves the buffer intact", aspec.async(function()
      local r = asyncio.StreamReader()
      local t = spawn(function() return await(r:readexactly(10)) end)
      await(asyncio.sleep(0)) -- the read waits
      r:feed_data("12345") -- not enough: the read waits on
      await(asyncio.sleep(0))
      assert.is_false(t:done())
      t:cancel()
      assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
      r:feed_eof() -- what the buffer holds, without waiting for more
      assert.equal("12345", await(r:read()))
    end))

    it("a read cancelled after its data arrived leaves the data",
       aspec.async(function()
      local r = asyncio.StreamReader()
      local t = spawn(function() return await(r:readline()) end)
      await(asyncio.sleep(0))
      r:feed_data("line\n") -- wakes the reader: its step is queued
      t:cancel()
      assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
      assert.equal("line\n", await(r:readline()))
    end))

    it("a read entered with a cancellation requested while the task ran "
       .. "ends at once, and leaves the reader free", aspec.async(function()
      local r = asyncio.StreamReader()
      local reached = 0
      local t = spawn(function()
        asyncio.current_task():cancel("enough")
        reached = reached + 1
        local data = await(r:read(5))
        reached = reached + 1
        return data
      end)
      local err = raises(await, t)
      assert.is_true(iserror(err, asyncio.CancelledError))
      assert.equal("enough", err.message)
      assert.equal(1, reached)
      assert.equal("<StreamReader>", tostring(r))
      local other = asyncio.create_task(r:read(5))
      await(asyncio.sleep(0))
      r:feed_data("abc")
      assert.equal("abc", await(other))
    end))

    it("a cancelled read not yet resumed still holds the reader, as "
       .. "Python's cancelled waiter does", aspec.async(function()
      local r = asyncio.StreamReader()
      local t = asyncio.create_task(r:read(5))
      await(asyncio.sleep(0))
      t:cancel()
      assert.equal("<StreamReader waiter=<Future cancelled>>", tostring(r))
      local err = raises(function() return await(r:read(5)) end)
      assert.is_true(iserror(err, asyncio.RuntimeError))
      assert.equal("read() called while another coroutine is already "
                   .. "waiting for incoming data", err.message)
      assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
      assert.equal("<StreamReader>", tostring(r))
      r:feed_data("abc")
      assert.equal("abc", await(r:read(5)))
    end))

    it("a reader woken with its data does not unregister a task that "
       .. "began waiting before it ran", aspec.async(function()
      local r = asyncio.StreamReader()
      local first = asyncio.create_task(r:readline())
      await(asyncio.sleep(0)) -- first waits
      local second = asyncio.create_task(r:readexactly(8))
      r:feed_data("line\n") -- wakes first; second's step runs before it
      assert.equal("line\n", await(first))
      assert.is_false(second:done()) -- waiting for its 8 bytes
      r:feed_data("12345678")
      assert.equal("12345678", await(asyncio.wait_for(second, 5)))
    end))

    it("wait_for(readline) times out and the line is read later",
       aspec.async(function()
      local p = pair()
      local err = raises(function()
        return await(asyncio.wait_for(p.cr:readline(), 0.02))
      end)
      assert.is_true(iserror(err, asyncio.TimeoutError))
      p.sw:write("late line\n")
      assert.equal("late line\n", await(p.cr:readline()))
      close_pair(p)
    end))

    it("a timeout scope around a read raises TimeoutError at its exit",
       aspec.async(function()
      local p = pair()
      local err = raises(function()
        local _ <close> = asyncio.timeout(0.02)
        await(p.cr:read(1))
      end)
      assert.is_true(iserror(err, asyncio.TimeoutError))
      close_pair(p)
    end))

    it("tostring shows the buffered bytes and the end",
       aspec.async(function()
      local r = asyncio.StreamReader({limit = 10})
      r:feed_data("abc")
      r:feed_eof()
      assert.equal("<StreamReader 3 bytes eof limit=10>", tostring(r))
    end))
  end)

  describe("StreamWriter", function()
    it("writelines writes the strings in order", aspec.async(function()
      local p = pair()
      p.cw:writelines({"a", "bc", "", "d\n"})
      assert.equal("abcd\n", await(p.sr:readline()))
      close_pair(p)
    end))

    it("write_eof half-closes: the peer reads the end and can still answer",
       aspec.async(function()
      local p = pair()
      assert.is_true(p.cw:can_write_eof())
      p.cw:write("question")
      p.cw:write_eof()
      assert.equal("question", await(p.sr:read()))
      assert.is_true(p.sr:at_eof())
      p.sw:write("answer")
      p.sw:close()
      assert.equal("answer", await(p.cr:read()))
      local err = raises(p.cw.write, p.cw, "more")
      assert.is_true(iserror(err, asyncio.RuntimeError))
      close_pair(p)
    end))

    it("drain returns at once under the high-water mark",
       aspec.async(function()
      local p = pair()
      p.cw:write("small")
      assert.is_nil(await(p.cw:drain()))
      close_pair(p)
    end))

    it("drain waits while the write buffer is above the high-water mark, "
       .. "until the peer reads", aspec.async(function()
      local p = pair()
      local big = string.rep("0123456789abcdef", 1 << 20) -- 16 MiB
      p.cw:write(big)
      assert.is_true(p.cw:get_write_buffer_size() > 65536)
      local order = {}
      local t = spawn(function()
        await(p.cw:drain())
        order[#order + 1] = "drained"
      end)
      await(asyncio.sleep(0.02))
      order[#order + 1] = "reading"
      local n = 0
      while n < #big do
        n = n + #await(p.sr:read(1 << 20))
      end
      await(t)
      assert.same({"reading", "drained"}, order)
      assert.is_true(p.cw:get_write_buffer_size() <= 16384)
      close_pair(p)
    end))

    it("a drain that times out (wait_for) raises TimeoutError and keeps the "
       .. "queued data", aspec.async(function()
      local p = pair()
      local big = string.rep("w", 16 << 20)
      p.cw:write(big)
      local err = raises(function()
        return await(asyncio.wait_for(p.cw:drain(), 0.01))
      end)
      assert.is_true(iserror(err, asyncio.TimeoutError))
      local n = 0
      while n < #big do n = n + #await(p.sr:read(1 << 20)) end
      assert.equal(#big, n)
      await(p.cw:drain())
      close_pair(p)
    end))

    it("close flushes queued data before the peer sees the end",
       aspec.async(function()
      local p = pair()
      local big = string.rep("z", 4 << 20)
      p.cw:write(big)
      p.cw:close()
      assert.is_true(p.cw:is_closing())
      local got = await(p.sr:read())
      assert.equal(#big, #got)
      close_pair(p)
    end))

    it("close, is_closing, wait_closed; using a closed writer raises",
       aspec.async(function()
      local p = pair()
      assert.is_false(p.cw:is_closing())
      p.cw:close()
      assert.is_true(p.cw:is_closing())
      await(p.cw:wait_closed())
      p.cw:close() -- idempotent
      local err = raises(p.cw.write, p.cw, "x")
      assert.matches("attempt to use a closed asyncio.StreamWriter",
                     tostring(err))
      assert.equal("", await(p.sr:read()))
      close_pair(p)
    end))

    it("wait_closed waits until another task closes the writer",
       aspec.async(function()
      local p = pair()
      local order = {}
      local t = spawn(function()
        await(p.cw:wait_closed())
        order[#order + 1] = "closed"
      end)
      await(asyncio.sleep(0.005))
      order[#order + 1] = "closing"
      p.cw:close()
      await(t)
      assert.same({"closing", "closed"}, order)
      close_pair(p)
    end))

    it("drain raises the exception of the writer's reader",
       aspec.async(function()
      local p = pair()
      local e = asyncio.ValueError("reader broke")
      p.cr:set_exception(e)
      assert.equal(e, raises(function() return await(p.cw:drain()) end))
      close_pair(p)
    end))

    it("drain on a closed writer raises ConnectionResetError",
       aspec.async(function()
      local p = pair()
      p.cw:close()
      local err = raises(function() return await(p.cw:drain()) end)
      assert.is_true(iserror(err, asyncio.ConnectionResetError))
      close_pair(p)
    end))

    it("writing to a peer that reset the connection makes drain raise an "
       .. "OSError", aspec.async(function()
      -- (the first drain to fail raises ConnectionResetError('Connection
      -- lost') or the write's own error, whichever comes first)
      local p = pair()
      p.sw:write("unread")
      await(asyncio.sleep(0.01))
      p.cw:close() -- unread data: the kernel answers with a reset
      local err
      for _ = 1, 100 do
        local ok, e = pcall(function()
          p.sw:write(string.rep("x", 65536))
          await(p.sw:drain())
          await(asyncio.sleep(0.001))
        end)
        if not ok then err = e break end
      end
      assert.is_true(iserror(err, asyncio.OSError))
      assert.is_true(iserror(err, asyncio.ConnectionError))
      assert.is_true(p.sw:is_closing())
      p.sw:write("dropped") -- the transport is lost: writes are dropped
      -- as asyncio: the drain that finds the connection lost raises
      -- ConnectionResetError('Connection lost'); the error that lost it
      -- (EPIPE or ECONNRESET) went to the reader, which the next raises
      local again = raises(function() return await(p.sw:drain()) end)
      assert.is_true(iserror(again, asyncio.ConnectionError))
      assert.is_true(again.name == "EPIPE" or again.name == "ECONNRESET",
                     tostring(again.name))
      close_pair(p)
    end))

    it("a writer's reader still returns the data that arrived before close",
       aspec.async(function()
      local p = pair()
      p.sw:write("!buffered")
      assert.equal("!", await(p.cr:readexactly(1))) -- proof it arrived
      assert.equal(8, p.cr:_buffer().len) -- in the same read
      p.cw:close()
      assert.equal("buffered", await(p.cr:read()))
      assert.equal("", await(p.cr:read()))
      close_pair(p)
    end))

    it("a to-be-closed writer closes at the end of its scope",
       aspec.async(function()
      local p = pair()
      do
        local w <close> = p.cw
        w:write("bye")
      end
      assert.is_true(p.cw:is_closing())
      assert.equal("bye", await(p.sr:read()))
      close_pair(p)
    end))
  end)

  describe("flow control", function()
    it("reading pauses when the buffer is over the limit and resumes when "
       .. "drained", aspec.async(function()
      local p = pair({limit = 1024})
      local data = string.rep("y", 1 << 20)
      p.sw:write(data)
      local b
      h.turns_until(function()
        b = p.cr:_buffer()
        return b.paused
      end)
      assert.is_true(b.len > 1024)
      assert.is_true(b.len < 1024 + 65536 + 1)
      local n = 0
      while n < #data do n = n + #await(p.cr:read(4096)) end
      assert.equal(#data, n)
      assert.is_false(p.cr:_buffer().paused)
      close_pair(p)
    end))

    it("readexactly beyond the limit still completes",
       aspec.async(function()
      local p = pair({limit = 100})
      local data = string.rep("q", 5000)
      p.sw:write(data)
      assert.equal(data, await(p.cr:readexactly(5000)))
      close_pair(p)
    end))

    it("a buffer a read beyond the limit grew is given back once read; "
       .. "one within the limit's reach is kept", aspec.async(function()
      local p = pair()
      local big = string.rep("z", 4 << 20)
      p.sw:write(big)
      assert.equal(big, await(p.cr:readexactly(#big)))
      assert.equal(0, p.cr:_buffer().cap)
      p.sw:write("line\n")
      assert.equal("line\n", await(p.cr:readline()))
      local b = p.cr:_buffer()
      assert.equal(0, b.len)
      assert.is_true(b.cap >= 5, "kept for the next reads")
      -- with a limit of 1 MiB, 1.5 MiB is an ordinary buffer
      local q = pair({limit = 1 << 20})
      local mid = string.rep("m", 3 << 19)
      q.sw:write(mid)
      assert.equal(mid, await(q.cr:readexactly(#mid)))
      assert.is_true(q.cr:_buffer().cap >= #mid)
      close_pair(p)
      close_pair(q)
    end))
  end)

  describe("lifetime", function()
    it("closing the loop closes every stream and server it owns", function()
      local loop = asyncio.new_event_loop()
      local p
      loop:run_until_complete(async(function() p = pair() end)())
      assert.is_true(loop:_counts().handles >= 3)
      loop:close()
      assert.equal(0, loop:_counts().handles)
      assert.is_true(p.cw:is_closing())
      assert.is_true(p.cr:at_eof())
      assert.is_false(p.srv:is_serving())
    end)

    it("a loop closed while a task connects can be collected",
       function()
      -- the task starts connecting, then the loop stops before polling
      h.assert_loop_collected(function()
        return asyncio.open_connection("127.0.0.1", 9)
      end)
    end)

    it("collecting an unclosed reader and writer closes the connection",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local got = loop:create_future()
      local srv = await(asyncio.start_server(async(function(r, w)
        got:set_result(await(r:read()))
        w:close()
      end), "127.0.0.1", 0))
      do
        local _, w = await(asyncio.open_connection("127.0.0.1",
                                                   srv.sockets[1].port))
        w:write("last words")
      end
      collectgarbage()
      collectgarbage()
      assert.equal("last words", await(got))
      srv:close()
      await(srv:wait_closed())
    end))
  end)

  describe("Unix sockets", function()
    local sockpath = h.sockpath

    it("open_unix_connection talks to start_unix_server",
       aspec.async(function()
      local path = sockpath()
      local served = {}
      local srv = await(asyncio.start_unix_server(async(function(r, w)
        local line = await(r:readline())
        w:write(line:upper())
        await(w:drain())
        w:close()
        -- as Python's: kept from when the transport was made
        served.sockname = w:get_extra_info("sockname")
        served.peername = w:get_extra_info("peername")
      end), path))
      assert.equal(path, srv.sockets[1].path)
      assert.equal(path, srv.sockets[1]:getsockname())
      local r, w = await(asyncio.open_unix_connection(path))
      assert.equal(path, w:get_extra_info("peername"))
      assert.equal("", w:get_extra_info("sockname")) -- an unbound client
      w:write("over unix\n")
      assert.equal("OVER UNIX\n", await(r:readline()))
      assert.equal("", await(r:read()))
      assert.same({sockname = path, peername = ""}, served)
      w:close()
      assert.equal(path, w:get_extra_info("peername"))
      assert.equal(1, w:get_extra_info("socket").family) -- AF_UNIX
      srv:close()
      await(srv:wait_closed())
    end))

    it("the socket file is removed when the server closes",
       aspec.async(function()
      local path = sockpath()
      local srv = await(asyncio.start_unix_server(function() end, path))
      assert.is_not_nil(io.open(path, "r") or
                        os.rename(path, path)) -- exists
      srv:close()
      assert.is_nil((os.rename(path, path)))
    end))

    it("connecting to a missing path raises FileNotFoundError",
       aspec.async(function()
      local err = raises(function()
        return await(asyncio.open_unix_connection(sockpath()))
      end)
      assert.is_true(iserror(err, asyncio.FileNotFoundError))
      assert.equal("ENOENT", err.name)
    end))

    it("an OSError for a socket path names it, in Python's words",
       aspec.async(function()
      local path = os.tmpname() .. ".d/x.sock" -- in no directory
      local err = raises(function()
        return await(asyncio.open_unix_connection(path))
      end)
      assert.equal(path, err.filename)
      assert.equal(2, err.errno)
      assert.equal("FileNotFoundError: [Errno 2] No such file or "
                   .. "directory: '" .. path .. "'", tostring(err))
      err = raises(function()
        return await(asyncio.start_unix_server(function() end, path))
      end)
      assert.is_true(iserror(err, asyncio.FileNotFoundError))
      assert.equal(path, err.filename)
    end))

    it("a path longer than a socket address raises OSError and leaves no "
       .. "file", aspec.async(function()
      local long = os.tmpname() .. string.rep("y", 110) .. ".sock"
      for _, aw in ipairs{asyncio.start_unix_server(function() end, long),
                          asyncio.open_unix_connection(long)} do
        local err = raises(await, aw)
        assert.is_true(iserror(err, asyncio.OSError))
        assert.equal("OSError: AF_UNIX path too long", tostring(err))
        assert.equal(long, err.filename)
      end
      assert.is_nil(io.open(long))
    end))
  end)

  describe("readuntil with a list of separators (Python 3.13)", function()
    -- the cases of CPython 3.13's test_streams
    it("the match that ends first wins", aspec.async(function()
      local r = asyncio.StreamReader()
      r:feed_data("line 1\nline 2\r")
      assert.equal("line 1\n", await(r:readuntil({"\r", "\n"})))
      assert.equal("line 2\r", await(r:readuntil({"\r", "\n"})))
      assert.equal(0, r:_buffer().len)
      r:feed_data("ABCDEFG")
      assert.equal("ABCDE", await(r:readuntil({"DEF", "BCDE"})))
      assert.equal("FG", await(r:read(2)))
    end))

    it("over the limit: LimitOverrunError, the buffer kept",
       aspec.async(function()
      local r = asyncio.StreamReader{limit = 3}
      r:feed_data("some dataA")
      local err = raises(await, r:readuntil({"A", "ome dataA"}))
      assert.is_true(iserror(err, asyncio.LimitOverrunError))
      assert.matches("is found", tostring(err))
      assert.equal(9, err.consumed)
      assert.equal(10, r:_buffer().len)
    end))

    it("waits across chunks without a negative offset",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local r = asyncio.StreamReader()
      r:feed_data("data")
      local t = asyncio.create_task(r:readuntil({"A", "long sep"}))
      loop:call_soon(r.feed_data, r, "Z")
      loop:call_soon(r.feed_data, r, "Aaaa")
      assert.equal("dataZA", await(t))
      assert.equal("aaa", await(r:read(3)))
    end))

    it("an empty list or separator raises ValueError; the end of the "
       .. "stream IncompleteReadError", aspec.async(function()
      local r = asyncio.StreamReader()
      local err = raises(await, r:readuntil({}))
      assert.equal("ValueError: Separator should contain at least one "
                   .. "element", tostring(err))
      err = raises(await, r:readuntil({"a", ""}))
      assert.equal("ValueError: Separator should be at least one-byte "
                   .. "string", tostring(err))
      assert.matches("bad separator #2 to 'readuntil' %(string expected, "
                     .. "got number%)", raises(r.readuntil, r, {"a", 5}))
      r:feed_data("Xccc")
      r:feed_eof()
      err = raises(await, r:readuntil({"zz", "q"}))
      assert.is_true(iserror(err, asyncio.IncompleteReadError))
      assert.equal("Xccc", err.partial)
    end))
  end)

  describe("StreamReader", function()
    it("repr shows the exception and the waiter, as Python 3.13's",
       aspec.async(function()
      local r = asyncio.StreamReader{limit = 10}
      assert.equal("<StreamReader limit=10>", tostring(r))
      local t = asyncio.create_task(r:read(5))
      await(asyncio.sleep(0))
      assert.equal("<StreamReader limit=10 waiter=<Future pending "
                   .. "cb=[Task.task_wakeup()]>>", tostring(r))
      r:feed_data("abc")
      assert.equal("abc", await(t))
      r:set_exception(asyncio.ValueError("x"))
      assert.equal("<StreamReader limit=10 exception=ValueError('x')>",
                   tostring(r))
    end))

    it("iter_chunked(n) and iter_any() iterate the pieces, awaiting "
       .. "each, until the end (aiohttp's)", aspec.async(function()
      local r = asyncio.StreamReader()
      local got, steps = {}, 0
      local t = h.spawn(function()
        for chunk in r:iter_chunked(4) do
          steps = steps + 1
          got[#got + 1] = chunk
        end
        return "end"
      end)
      r:feed_data("abcdef")
      await(asyncio.sleep(0))
      assert.same({"abcd", "ef"}, got) -- what was buffered, 4 at most
      r:feed_data("gh")
      r:feed_eof()
      assert.equal("end", await(t))
      assert.same({"abcd", "ef", "gh"}, got)
      assert.equal(3, steps)

      local any = asyncio.StreamReader()
      local pieces = {}
      local ta = h.spawn(function()
        for piece in any:iter_any() do pieces[#pieces + 1] = piece end
      end)
      any:feed_data("one")
      any:feed_data("two") -- both buffered before the task runs: one piece
      await(asyncio.sleep(0))
      any:feed_data("three")
      await(asyncio.sleep(0))
      any:feed_eof()
      await(ta)
      assert.same({"onetwo", "three"}, pieces)
      assert.matches("positive integer expected",
                     raises(r.iter_chunked, r, 0))
      assert.matches("number expected", raises(r.iter_chunked, r, "x"))
    end))

    it("an iterator raises the reader's exception; outside a task it "
       .. "raises as await does", aspec.async(function()
      local r = asyncio.StreamReader()
      r:feed_data("ab")
      r:set_exception(asyncio.ValueError("broken"))
      local e = h.await_error(h.spawn(function()
        for _ in r:iter_any() do end
      end))
      assert.is_true(iserror(e, asyncio.ValueError))
      local plain = asyncio.StreamReader()
      local ok, err = coroutine.resume(coroutine.create(function()
        for _ in plain:iter_chunked(2) do end
      end))
      assert.is_false(ok)
      assert.matches("read", tostring(err))
    end))

    it("readany() awaits what is buffered; read_nowait([n]) takes it "
       .. "without waiting; is_eof() tells the end arrived",
       aspec.async(function()
      local r = asyncio.StreamReader()
      assert.equal("", r:read_nowait())
      local t = asyncio.create_task(r:readany())
      await(asyncio.sleep(0))
      assert.is_false(t:done())
      local e = h.error_of(r.read_nowait, r)
      assert.matches("Called while some coroutine is waiting", tostring(e))
      r:feed_data("hello")
      r:feed_data(" world")
      assert.equal("hello world", await(t))
      r:feed_data("abcdef")
      assert.equal("ab", r:read_nowait(2))
      assert.is_false(r:is_eof())
      r:feed_eof()
      assert.is_true(r:is_eof())
      assert.is_false(r:at_eof()) -- "cdef" waits to be read
      assert.equal("cdef", r:read_nowait())
      assert.is_true(r:at_eof())
      assert.equal("", await(r:readany()))
    end))

    it("readchunk() gives the body up to each HTTP chunk end with true, "
       .. "what is buffered with false, then \"\", false (aiohttp's)",
       aspec.async(function()
      local r = asyncio.StreamReader()
      r:begin_http_chunk_receiving()
      r:begin_http_chunk_receiving() -- again: nothing
      r:feed_data("abc")
      r:end_http_chunk_receiving()
      r:feed_data("de")
      r:feed_data("f")
      r:end_http_chunk_receiving()
      r:end_http_chunk_receiving() -- no byte since the last end: none
      r:feed_data("gh")
      assert.same({"abc", true}, {await(r:readchunk())})
      assert.same({"def", true}, {await(r:readchunk())})
      assert.same({"gh", false}, {await(r:readchunk())})
      -- a read past a chunk end takes the end with it
      r:feed_data("ijk")
      r:end_http_chunk_receiving()
      r:feed_data("lm")
      r:end_http_chunk_receiving()
      assert.equal("ijkl", await(r:read(4)))
      assert.same({"m", true}, {await(r:readchunk())})
      -- a read up to a chunk end leaves it: "", true
      r:feed_data("no")
      r:end_http_chunk_receiving()
      assert.equal("no", await(r:readexactly(2)))
      assert.same({"", true}, {await(r:readchunk())})
      -- a waiting readchunk wakes with the data
      local t = asyncio.create_task(r:readchunk())
      await(asyncio.sleep(0))
      assert.is_false(t:done())
      r:feed_data("pq")
      r:end_http_chunk_receiving()
      assert.same({"pq", true}, {await(t)})
      r:feed_eof()
      assert.same({"", false}, {await(r:readchunk())})
      -- a reader never told of chunks: what is buffered, false
      local plain = asyncio.StreamReader()
      plain:feed_data("xy")
      assert.same({"xy", false}, {await(plain:readchunk())})
    end))

    it("_feed_http(data, ends) feeds the server's bytes with the chunk "
       .. "ends among them; past 65536 unread ends no more are kept",
       aspec.async(function()
      local r = asyncio.StreamReader()
      r:_feed_http("abcdef", string.pack("=I4I4", 3, 6))
      r:_feed_http("", string.pack("=I4", 0)) -- no byte since: no end
      r:_feed_http("gh", "")
      assert.same({"abc", true}, {await(r:readchunk())})
      assert.same({"def", true}, {await(r:readchunk())})
      assert.same({"gh", false}, {await(r:readchunk())})
      assert.matches("packed offsets expected",
                     tostring(h.error_of(r._feed_http, r, "x", "abc")))
      local many = asyncio.StreamReader()
      local n = 70000
      local offs = {}
      for i = 1, n do offs[i] = string.pack("=I4", i) end
      many:_feed_http(string.rep("x", n), table.concat(offs))
      many:feed_eof()
      local ends, pieces, bytes = 0, 0, 0
      for data, e in many:iter_chunks() do
        pieces, bytes = pieces + 1, bytes + #data
        if e then ends = ends + 1 end
      end
      assert.equal(65536, ends)
      assert.equal(65537, pieces) -- the rest in one piece
      assert.equal(n, bytes)
    end))

    it("iter_chunks() iterates readchunk()'s pairs until the end; the "
       .. "chunk calls check their order, as aiohttp's",
       aspec.async(function()
      local r = asyncio.StreamReader()
      r:begin_http_chunk_receiving()
      local got = {}
      local t = h.spawn(function()
        for data, ends in r:iter_chunks() do
          got[#got + 1] = data .. (ends and "|" or "~")
        end
        return "end"
      end)
      r:feed_data("ab")
      r:end_http_chunk_receiving()
      r:feed_data("cd")
      await(asyncio.sleep(0))
      r:feed_data("e")
      r:end_http_chunk_receiving()
      r:feed_eof()
      assert.equal("end", await(t))
      assert.same({"ab|", "cd~", "e|"}, got)
      local fed = asyncio.StreamReader()
      fed:feed_data("x")
      assert.matches("Called begin_http_chunk_receiving when some data was "
                     .. "already fed", tostring(h.error_of(
                       fed.begin_http_chunk_receiving, fed)))
      local e = h.error_of(fed.end_http_chunk_receiving, fed)
      assert.is_true(iserror(e, asyncio.RuntimeError))
      assert.equal("Called end_chunk_receiving without calling "
                   .. "begin_chunk_receiving first", e.message)
      local broken = asyncio.StreamReader()
      broken:set_exception(asyncio.ValueError("cut"))
      assert.is_true(iserror(h.await_error(broken:readchunk()),
                             asyncio.ValueError))
    end))

    it("a bad argument to StreamReader raises a bad-argument error",
       function()
      for _, bad in ipairs{5, "limit", true} do
        assert.matches("bad argument #1 to '[%w.]*StreamReader' %(table "
                       .. "of options or nil expected",
                       raises(asyncio.StreamReader, bad))
      end
      assert.matches("bad option 'limit'",
                     raises(asyncio.StreamReader, {limit = "x"}))
    end)
  end)

  describe("on a transport written in Lua", function()
    --- A transport recording what it is asked: writes, closes, pauses.
    local function lua_transport()
      local t = {written = {}, paused = 0, resumed = 0, closing = false}
      function t:write(d) self.written[#self.written + 1] = d end
      function t:write_eof() self.eof = true end
      function t:can_write_eof() return true end
      function t:close() self.closing = true end
      function t:is_closing() return self.closing end
      function t:pause_reading() self.paused = self.paused + 1 end
      function t:resume_reading() self.resumed = self.resumed + 1 end
      function t:get_write_buffer_size() return 7 end
      function t:get_extra_info(name, default)
        if name == "peername" then return {"lua", 1} end
        return default
      end
      return t
    end

    --- A reader of limit 8 fed by a protocol connected to the transport t.
    local function limited_reader(t)
      local r = asyncio.StreamReader{limit = 8}
      local p = asyncio.StreamReaderProtocol(r)
      p:connection_made(t)
      return r, p
    end

    it("reading stops past twice the limit and starts again at the "
       .. "limit, as Python's StreamReader", aspec.async(function()
      local t = lua_transport()
      local r, p = limited_reader(t)
      p:data_received(string.rep("a", 16)) -- 16: not over 2 x 8
      assert.equal(0, t.paused)
      p:data_received("b") -- 17
      assert.equal(1, t.paused)
      p:data_received(string.rep("c", 10)) -- already paused: once
      assert.equal(1, t.paused)
      assert.equal(string.rep("a", 16), await(r:readexactly(16)))
      assert.equal(0, t.resumed) -- 11 left, over the limit
      assert.equal("bcc", await(r:readexactly(3)))
      assert.equal(1, t.resumed) -- 8 left
      assert.equal(string.rep("c", 8), await(r:read(100)))
      assert.equal(1, t.resumed)
      assert.equal(1, t.paused)
    end))

    it("data past twice the limit that wakes a waiting read also stops "
       .. "reading, as Python's feed_data", aspec.async(function()
      local t = lua_transport()
      local r, p = limited_reader(t)
      local reader = asyncio.create_task(r:read(4))
      await(asyncio.sleep(0)) -- the read waits
      p:data_received(string.rep("x", 20))
      assert.equal(1, t.paused)
      assert.equal("xxxx", await(reader))
      assert.equal(0, t.resumed) -- 16 left, over the limit
      -- the same through feed_data on the reader itself
      local t2 = lua_transport()
      local r2 = limited_reader(t2)
      local reader2 = asyncio.create_task(r2:readexactly(2))
      await(asyncio.sleep(0))
      r2:feed_data(string.rep("y", 17))
      assert.equal(1, t2.paused)
      assert.equal("yy", await(reader2))
    end))

    it("StreamReaderProtocol feeds the reader, StreamWriter writes "
       .. "through the transport", aspec.async(function()
      local loop = asyncio.get_running_loop()
      local t = lua_transport()
      local r, p = limited_reader(t)
      local w = asyncio.StreamWriter(t, p, r, loop)
      assert.equal(t, w.transport)
      assert.equal(r, w:get_reader())
      -- no transport or no protocol: refused at the call
      assert.matches("bad argument #1 to '[%w.]*StreamWriter' %(transport "
                     .. "expected, got nil%)",
                     h.error_of(asyncio.StreamWriter, nil, p, r, loop))
      assert.matches("bad argument #2 to '[%w.]*StreamWriter' %(protocol "
                     .. "expected, got string%)",
                     h.error_of(asyncio.StreamWriter, t, "x", r, loop))
      p:data_received("hello\n")
      assert.equal("hello\n", await(r:readline()))
      -- over the limit the transport is asked to pause, then resume
      p:data_received(string.rep("z", 20))
      assert.equal(1, t.paused)
      assert.equal(string.rep("z", 20), await(r:read(100)))
      assert.equal(1, t.resumed)
      w:write("a")
      w:writelines({"b", "c"})
      assert.same({"a", "bc"}, t.written)
      assert.same({"lua", 1}, w:get_extra_info("peername"))
      assert.equal("d", w:get_extra_info("nothing", "d"))
      assert.equal(7, w:get_write_buffer_size())
      assert.is_true(w:can_write_eof())
      w:write_eof()
      assert.is_true(t.eof)
      -- drain waits while the protocol is paused
      p:pause_writing()
      local drained = asyncio.create_task(w:drain())
      await(asyncio.sleep(0))
      assert.is_false(drained:done())
      p:resume_writing()
      await(drained)
      assert.is_true(p:eof_received())
      assert.equal("", await(r:read()))
      local closed = asyncio.create_task(w:wait_closed())
      w:close()
      assert.is_true(t.closing)
      assert.is_true(w:is_closing())
      await(asyncio.sleep(0))
      assert.is_false(closed:done()) -- until connection_lost
      p:connection_lost(nil)
      await(closed)
    end))

    it("connection_lost(exc): reads and drain raise it, wait_closed too",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local t = lua_transport()
      local r = asyncio.StreamReader()
      local p = asyncio.StreamReaderProtocol(r)
      p:connection_made(t)
      local w = asyncio.StreamWriter(t, p, r, loop)
      local reading = asyncio.create_task(r:read(10))
      p:pause_writing()
      local draining = asyncio.create_task(w:drain())
      await(asyncio.sleep(0))
      local exc = asyncio.ConnectionResetError("gone")
      p:connection_lost(exc)
      assert.equal(exc, raises(await, reading))
      assert.equal(exc, raises(await, draining))
      assert.equal(exc, raises(await, w:wait_closed()))
    end))

    it("a server's client_connected_cb gets a writer on the transport",
       aspec.async(function()
      local loop = asyncio.get_running_loop()
      local got = loop:create_future()
      local r = asyncio.StreamReader()
      local p = asyncio.StreamReaderProtocol(r, function(reader, writer)
        got:set_result({reader, writer})
      end)
      local t = lua_transport()
      p:connection_made(t)
      local pair_ = await(got)
      assert.equal(r, pair_[1])
      assert.equal(t, pair_[2].transport)
      pair_[2]:write("hi")
      assert.same({"hi"}, t.written)
    end))
  end)

  describe("options", function()
    local unknown = h.unknown_option
    --- Awaits aw, which must fail with ValueError "<name> is only
    -- meaningful with ssl": the option was taken, not rejected.
    local function ssl_only(name, aw)
      local e = h.await_error(aw)
      assert.equal(name .. " is only meaningful with ssl", e.message)
    end
    local function stop(srv)
      srv:close()
      await(srv:wait_closed())
    end

    it("an unknown option raises a bad-argument error naming the "
       .. "function and argument, before anything is opened",
       aspec.async(function()
      local accepted = 0
      local srv = await(asyncio.start_server(function(_, w)
        accepted = accepted + 1
        w:close()
      end, "127.0.0.1", 0))
      local port = srv.sockets[1].port
      unknown(4, "start_server", "backlogg", asyncio.start_server(
        function() end, "127.0.0.1", 0, {backlogg = 1}))
      unknown(3, "open_connection", "limt",
              asyncio.open_connection("127.0.0.1", port, {limt = 10}))
      -- a server's option is not a client's, and the other way round,
      -- as in Python
      unknown(3, "open_connection", "backlog",
              asyncio.open_connection("127.0.0.1", port, {backlog = 1}))
      unknown(4, "start_server", "server_hostname", asyncio.start_server(
        function() end, "127.0.0.1", 0, {server_hostname = "x"}))
      unknown(4, "start_server", "local_addr", asyncio.start_server(
        function() end, "127.0.0.1", 0, {local_addr = {"127.0.0.1", 0}}))
      unknown(3, "open_connection", "1",
              asyncio.open_connection("127.0.0.1", port, {10}))
      local path = h.sockpath()
      unknown(3, "start_unix_server", "reuse_port", asyncio.start_unix_server(
        function() end, path, {reuse_port = true}))
      assert.is_nil(io.open(path), "the socket file was made")
      unknown(2, "open_unix_connection", "local_addr",
              asyncio.open_unix_connection(path, {local_addr = {"x", 1}}))
      -- a bad limit names its function too
      for fname, aw in pairs{
        open_connection = asyncio.open_connection("127.0.0.1", port,
                                                  {limit = "x"}),
        start_server = asyncio.start_server(function() end, "127.0.0.1", 0,
                                            {limit = 1.5}),
      } do
        assert.equal(("bad option 'limit' to '%s' (integer expected)")
                     :format(fname), h.await_error(aw))
      end
      local e = h.await_error(asyncio.open_connection("127.0.0.1", port,
                                                      {limit = 0}))
      assert.is_true(asyncio.iserror(e, asyncio.ValueError), tostring(e))
      assert.equal("Limit cannot be <= 0", e.message)
      -- nothing connected: the server's first connection is this one
      -- (accepted in order; its handler counts it, then closes it)
      local r, w = await(asyncio.open_connection("127.0.0.1", port))
      assert.equal("", await(r:read()))
      w:close()
      assert.equal(1, accepted)
      stop(srv)
    end))

    it("open_connection and start_server take their documented options "
       .. "(limit and loop:create_connection's or create_server's)",
       aspec.async(function()
      local lines = {}
      local srv = await(asyncio.start_server(async(function(r, w)
        lines[#lines + 1] = await(r:readline())
        w:close()
      end), "127.0.0.1", 0, {limit = 100, backlog = 10,
                            start_serving = true, family = asyncio.AF_INET,
                            reuse_port = true, reuse_address = true,
                            ssl = false}))
      local port = srv.sockets[1].port
      local r, w = await(asyncio.open_connection("127.0.0.1", port,
        {limit = 10, local_addr = {"127.0.0.1", 0},
         family = asyncio.AF_INET, happy_eyeballs_delay = 0.25,
         interleave = 1, ssl = false}))
      w:write("a line\n")
      assert.equal("", await(r:read()))
      w:close()
      assert.same({"a line\n"}, lines)
      -- the TLS options are taken, and refused without ssl as asyncio's
      for _, name in ipairs{"server_hostname", "ssl_handshake_timeout",
                            "ssl_shutdown_timeout"} do
        ssl_only(name, asyncio.open_connection("127.0.0.1", port,
          {[name] = name == "server_hostname" and "x" or 1}))
      end
      for _, name in ipairs{"ssl_handshake_timeout",
                            "ssl_shutdown_timeout"} do
        ssl_only(name, asyncio.start_server(function() end, "127.0.0.1", 0,
                                            {[name] = 1}))
      end
      stop(srv)
    end))

    it("the Unix-socket twins take their documented options",
       aspec.async(function()
      local path = h.sockpath()
      local srv = await(asyncio.start_unix_server(function(_, w)
        w:write("hi")
        w:close()
      end, path, {limit = 100, backlog = 10, start_serving = true,
                  ssl = false}))
      local r, w = await(asyncio.open_unix_connection(path,
                                                      {limit = 10,
                                                       ssl = false}))
      assert.equal("hi", await(r:read()))
      w:close()
      for _, name in ipairs{"server_hostname", "ssl_handshake_timeout",
                            "ssl_shutdown_timeout"} do
        ssl_only(name, asyncio.open_unix_connection(path,
          {[name] = name == "server_hostname" and "x" or 1}))
      end
      for _, name in ipairs{"ssl_handshake_timeout",
                            "ssl_shutdown_timeout"} do
        ssl_only(name, asyncio.start_unix_server(function() end,
                                                 h.sockpath(), {[name] = 1}))
      end
      stop(srv)
    end))

    it("writer:start_tls rejects an unknown option (argument #2) and "
       .. "passes its own on to loop:start_tls", aspec.async(function()
      local srv = await(asyncio.start_server(function(_, w) w:close() end,
                                             "127.0.0.1", 0))
      local _, w = await(asyncio.open_connection("127.0.0.1",
                                                 srv.sockets[1].port))
      local Loop = asyncio._core._EventLoop
      local saved, got = Loop.start_tls, nil
      Loop.start_tls = async(function(_, _, _, _, opts)
        got = opts
        error("stand-in", 0)
      end)
      local ok, err = pcall(function()
        -- server_side is loop:start_tls's, not the writer's
        unknown(2, "start_tls", "server_side",
                w:start_tls({}, {server_side = true}))
        assert.is_nil(got)
        assert.equal("stand-in", h.await_error(w:start_tls({},
          {server_hostname = "h", ssl_handshake_timeout = 1,
           ssl_shutdown_timeout = 2})))
        assert.same({server_side = false, server_hostname = "h",
                     ssl_handshake_timeout = 1, ssl_shutdown_timeout = 2},
                    got)
      end)
      Loop.start_tls = saved
      assert(ok, err)
      w:close()
      stop(srv)
    end))

    it("StreamReader rejects an unknown option and takes limit", function()
      assert.matches("^bad argument #1 to '[%w.]*StreamReader' %(unknown "
                     .. "option 'limt'%)$",
                     raises(asyncio.StreamReader, {limt = 10}))
      assert.matches("limit=10", tostring(asyncio.StreamReader{limit = 10}))
    end)
  end)
end)
