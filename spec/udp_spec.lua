-- spec/udp_spec.lua: UDP endpoints (bindings/io/udp.c, asyncio.open_udp):
-- sendto / recvfrom, addresses, waiting, cancellation, closing.
--
-- Real clock, endpoints on 127.0.0.1 port 0; time only for order.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local iserror = asyncio.iserror

local h = dofile("spec/helpers.lua")
local raises = h.error_of

local spawn = h.spawn

local function open()
  local ep = await(asyncio.open_udp("127.0.0.1", 0))
  return ep, ep:getsockname()[2]
end

describe("open_udp", function()
  it("binds a port the system chose; getsockname gives {host, port}",
     aspec.async(function()
    local ep, port = open()
    assert.equal("asyncio.DatagramEndpoint", getmetatable(ep).__name)
    assert.equal("127.0.0.1", ep:getsockname()[1])
    assert.is_true(port > 0)
    assert.equal(("<DatagramEndpoint 127.0.0.1:%d>"):format(port),
                 tostring(ep))
    ep:close()
  end))

  it("recvfrom returns the datagram, the sender's host and port",
     aspec.async(function()
    local a, aport = open()
    local b, bport = open()
    a:sendto("ping", "127.0.0.1", bport)
    local data, host, port = await(b:recvfrom())
    assert.equal("ping", data)
    assert.equal("127.0.0.1", host)
    assert.equal(aport, port)
    b:sendto("pong", host, port)
    assert.equal("pong", (await(a:recvfrom())))
    a:close()
    b:close()
  end))

  it("datagrams keep their boundaries and order", aspec.async(function()
    local a = open()
    local b, bport = open()
    for i = 1, 5 do a:sendto(("d%d"):format(i), "127.0.0.1", bport) end
    a:sendto("", "127.0.0.1", bport)
    for i = 1, 5 do assert.equal(("d%d"):format(i), (await(b:recvfrom()))) end
    assert.equal("", (await(b:recvfrom())))
    a:close()
    b:close()
  end))

  it("recvfrom waits until a datagram arrives", aspec.async(function()
    local a = open()
    local b, bport = open()
    local order = {}
    local t = spawn(function()
      local d = await(b:recvfrom())
      order[#order + 1] = "received " .. d
    end)
    await(asyncio.sleep(0.01))
    assert.is_false(t:done())
    order[#order + 1] = "sent"
    a:sendto("x", "127.0.0.1", bport)
    await(t)
    assert.same({"sent", "received x"}, order)
    a:close()
    b:close()
  end))

  it("a cancelled recvfrom takes nothing: the next one gets the datagram",
     aspec.async(function()
    local a = open()
    local b, bport = open()
    local t = spawn(function() return await(b:recvfrom()) end)
    await(asyncio.sleep(0))
    t:cancel()
    assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
    a:sendto("kept", "127.0.0.1", bport)
    assert.equal("kept", (await(b:recvfrom())))
    a:close()
    b:close()
  end))

  it("wait_for(recvfrom) raises TimeoutError when nothing comes",
     aspec.async(function()
    local b = open()
    local err = raises(function()
      return await(asyncio.wait_for(b:recvfrom(), 0.02))
    end)
    assert.is_true(iserror(err, asyncio.TimeoutError))
    b:close()
  end))

  it("two tasks in recvfrom at once: the second raises RuntimeError",
     aspec.async(function()
    local a = open()
    local b, bport = open()
    local t = spawn(function() return await(b:recvfrom()) end)
    await(asyncio.sleep(0))
    assert.is_true(iserror(raises(function() return await(b:recvfrom()) end),
                           asyncio.RuntimeError))
    a:sendto("one", "127.0.0.1", bport)
    assert.equal("one", (await(t)))
    a:close()
    b:close()
  end))

  it("a receiver woken for a datagram another task took does not "
     .. "unregister the task that began waiting meanwhile",
     aspec.async(function()
    local a = open()
    local b, bport = open()
    local woken = spawn(function() return await(b:recvfrom()) end)
    await(asyncio.sleep(0)) -- woken waits
    a:sendto("one", "127.0.0.1", bport)
    -- both steps run before woken's: taker takes "one", waiter waits
    local taker = asyncio.create_task(b:recvfrom())
    local waiter = asyncio.create_task(b:recvfrom())
    assert.equal("one", (await(taker)))
    -- woken found nothing and waiter is the one waiting now
    local err = raises(await, asyncio.wait_for(woken, 5))
    assert.is_true(iserror(err, asyncio.RuntimeError), tostring(err))
    a:sendto("two", "127.0.0.1", bport)
    assert.equal("two", (await(asyncio.wait_for(waiter, 5))))
    a:close()
    b:close()
  end))

  it("an endpoint with a remote address sends without one",
     aspec.async(function()
    local b, bport = open()
    local a = await(asyncio.open_udp("127.0.0.1", 0,
                    {remote_host = "127.0.0.1", remote_port = bport}))
    a:sendto("connected")
    a:send("again")
    assert.equal("connected", (await(b:recvfrom())))
    assert.equal("again", (await(b:recvfrom())))
    a:close()
    b:close()
  end))

  it("an unknown option raises a bad-argument error (argument #3); the "
     .. "documented options are taken", aspec.async(function()
    for name, v in pairs{limt = 10, remote_addr = {"127.0.0.1", 9},
                         reuse_port = true} do
      assert.equal("bad argument #3 to 'open_udp' (unknown option '"
                   .. name .. "')", h.await_error(
                     asyncio.open_udp("127.0.0.1", 0, {[name] = v})))
    end
    local a, aport = open()
    local b = await(asyncio.open_udp("127.0.0.1", 0,
      {limit = 10, broadcast = true, remote_host = "127.0.0.1",
       remote_port = aport}))
    b:send("hi")
    assert.equal("hi", (await(a:recvfrom())))
    a:close()
    b:close()
  end))

  it("resolves a local host name", aspec.async(function()
    local ep = await(asyncio.open_udp("localhost", 0))
    assert.equal("127.0.0.1", ep:getsockname()[1])
    ep:close()
  end))

  it("sendto needs a numeric address", aspec.async(function()
    local a = open()
    local err = raises(function() a:sendto("x", "not an address", 9) end)
    assert.matches("bad argument #2 to 'sendto' %(numeric address expected%)",
                   tostring(err))
    a:close()
  end))

  it("close ends a waiting recvfrom; a closed endpoint raises on use",
     aspec.async(function()
    local b = open()
    local t = spawn(function() return await(b:recvfrom()) end)
    await(asyncio.sleep(0))
    b:close()
    assert.is_true(b:is_closing())
    local err = raises(await, t)
    assert.matches("attempt to use a closed asyncio.DatagramEndpoint",
                   tostring(err))
    err = raises(b.sendto, b, "x", "127.0.0.1", 9)
    assert.matches("attempt to use a closed", tostring(err))
    b:close() -- idempotent
    assert.equal("<DatagramEndpoint closed>", tostring(b))
  end))

  it("closing the loop closes its endpoints", function()
    local loop = asyncio.new_event_loop()
    local ep = loop:run_until_complete(async(function()
      return (open())
    end)())
    assert.is_true(loop:_counts().handles >= 1)
    loop:close()
    assert.is_true(ep:is_closing())
    assert.equal(0, loop:_counts().handles)
  end)
end)
