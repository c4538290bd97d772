-- loop:create_datagram_endpoint: the datagram transport and its protocol
-- (datagram_received, error_received, connection_made, connection_lost),
-- against a Python UDP peer where a real peer is needed.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"
local h = dofile("spec/helpers.lua")

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror

--- A protocol logging its callbacks; `got` is a future of the first n
-- datagrams, `lost` of connection_lost.
local function recorder(n)
  local loop = asyncio.get_running_loop()
  local p = {log = {}, datagrams = {}, errors = {},
             got = loop:create_future(), lost = loop:create_future()}
  function p:connection_made(t)
    self.transport = t
    self.log[#self.log + 1] = "connection_made"
  end
  function p:datagram_received(data, addr)
    self.log[#self.log + 1] = "datagram_received"
    self.datagrams[#self.datagrams + 1] = {data, addr}
    if #self.datagrams == n then self.got:set_result(self.datagrams) end
  end
  function p:error_received(exc)
    self.log[#self.log + 1] = "error_received"
    self.errors[#self.errors + 1] = exc
  end
  function p:connection_lost(exc)
    self.log[#self.log + 1] = "connection_lost"
    self.lost:set_result(exc)
  end
  return p
end

describe("create_datagram_endpoint", function()
  it("two endpoints exchange datagrams with their addresses",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local a, pa = await(loop:create_datagram_endpoint(function()
      return recorder(2)
    end, {local_addr = {"127.0.0.1", 0}}))
    local addr_a = a:get_extra_info("sockname")
    local b, pb = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {remote_addr = addr_a}))
    assert.equal("asyncio.DatagramTransport", getmetatable(a).__name)
    assert.same(addr_a, b:get_extra_info("peername"))
    assert.same({"connection_made"}, pb.log)
    b:sendto("one")
    b:sendto("two")
    local got = await(pa.got)
    local addr_b = b:get_extra_info("sockname")
    assert.same({{"one", addr_b}, {"two", addr_b}}, got)
    a:sendto("back", addr_b)
    assert.same({{"back", addr_a}}, await(pb.got))
    -- a connected endpoint refuses another address
    assert.is_true(iserror(h.error_of(b.sendto, b, "x", {"127.0.0.1", 9}),
                           asyncio.ValueError))
    a:close()
    b:close()
    assert.is_true(a:is_closing())
    assert.is_nil(await(pa.lost))
    assert.is_nil(await(pb.lost))
    assert.same({"connection_made", "datagram_received", "datagram_received",
                 "connection_lost"}, pa.log)
    a:sendto("dropped", addr_b) -- a closed transport drops it
    a:close()
    assert.equal(1, #pa.log - 3) -- connection_lost once
  end))

  it("talks to a Python UDP echo peer", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local py = await(asyncio.create_subprocess_exec("python3", "-c", [[
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
data, addr = s.recvfrom(100)
s.sendto(data.upper(), addr)
]], {stdout = asyncio.PIPE}))
    local port = tonumber(await(py.stdout:readline()))
    local t, p = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {remote_addr = {"127.0.0.1", port}}))
    t:sendto("ping")
    assert.same({{"PING", {"127.0.0.1", port}}}, await(p.got))
    assert.equal(0, await(py:wait()))
    t:close()
    await(p.lost)
  end))

  it("a refused connected datagram goes to error_received",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    -- a port nobody listens on: bind one, note it, close it
    local probe = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {local_addr = {"127.0.0.1", 0}}))
    local port = probe:get_extra_info("sockname")[2]
    probe:close()
    local t, p = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {remote_addr = {"127.0.0.1", port}}))
    local seen = loop:create_future()
    local err_received = p.error_received
    function p:error_received(exc)
      err_received(self, exc)
      if not seen:done() then seen:set_result(exc) end
    end
    t:sendto("anyone?")
    t:sendto("anyone?")
    local exc = await(seen)
    assert.is_true(iserror(exc, asyncio.ConnectionRefusedError))
    assert.is_false(t:is_closing()) -- the endpoint goes on
    t:close()
    await(p.lost)
  end))

  it("an error in datagram_received is reported, then connection_lost(exc)",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local ctxs = {}
    loop:set_exception_handler(function(_, ctx) ctxs[#ctxs + 1] = ctx end)
    local a, pa = await(loop:create_datagram_endpoint(function()
      local p = recorder(1)
      function p:datagram_received() error(asyncio.ValueError("bad")) end
      return p
    end, {local_addr = {"127.0.0.1", 0}}))
    local b, pb = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {remote_addr = a:get_extra_info("sockname")}))
    b:sendto("x")
    local exc = await(pa.lost)
    assert.is_true(iserror(exc, asyncio.ValueError))
    assert.equal(1, #ctxs)
    assert.equal("Fatal error: protocol.datagram_received() call failed.",
                 ctxs[1].message)
    assert.equal(a, ctxs[1].transport)
    assert.is_true(a:is_closing())
    b:close()
    await(pb.lost)
  end))

  it("needs an address; bad options raise", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local err = h.await_error(loop:create_datagram_endpoint(function()
      return recorder(1)
    end))
    assert.equal("ValueError: unexpected address family", tostring(err))
    err = h.await_error(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {local_addr = "127.0.0.1"}))
    assert.matches("bad option 'local_addr'", tostring(err))
  end))

  it("an unknown option raises a bad-argument error naming argument #2, "
     .. "before any socket is opened; the documented ones are taken",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local made = 0
    local function factory()
      made = made + 1
      return recorder(1)
    end
    for name, v in pairs{local_adr = {"127.0.0.1", 0}, reuse_address = true,
                         sock = 3, limit = 10} do
      assert.equal("bad argument #2 to 'create_datagram_endpoint' "
                   .. "(unknown option '" .. name .. "')",
                   h.await_error(loop:create_datagram_endpoint(factory,
                     {local_addr = {"127.0.0.1", 0}, [name] = v})))
    end
    assert.equal(0, made)
    local a, pa = await(loop:create_datagram_endpoint(factory,
      {local_addr = {"127.0.0.1", 0}, family = asyncio.AF_INET,
       reuse_port = true, allow_broadcast = false}))
    local b, pb = await(loop:create_datagram_endpoint(factory,
      {remote_addr = a:get_extra_info("sockname"), family = asyncio.AF_INET,
       reuse_port = false, allow_broadcast = false}))
    b:sendto("hi")
    assert.equal("hi", await(asyncio.wait_for(pa.got, 10))[1][1])
    assert.equal(2, made)
    a:close()
    b:close()
    await(pa.lost)
    await(pb.lost)
  end))

  it("allow_broadcast and reuse_port are accepted", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local a, pa = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {local_addr = {"127.0.0.1", 0}, reuse_port = true,
          allow_broadcast = true}))
    local port = a:get_extra_info("sockname")[2]
    local b, pb = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {local_addr = {"127.0.0.1", port}, reuse_port = true}))
    assert.equal(port, b:get_extra_info("sockname")[2])
    a:close()
    b:close()
    await(pa.lost)
    await(pb.lost)
  end))

  it("family alone makes an endpoint of that family that sends anywhere",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local a, pa = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {local_addr = {"127.0.0.1", 0}}))
    local b, pb = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {family = asyncio.AF_INET}))
    assert.equal("0.0.0.0", b:get_extra_info("sockname")[1])
    assert.is_nil(b:get_extra_info("peername"))
    b:sendto("hello", a:get_extra_info("sockname"))
    local got = await(asyncio.wait_for(pa.got, 10))
    assert.equal("hello", got[1][1])
    a:close()
    b:close()
    await(pa.lost)
    await(pb.lost)
  end))

  it("the addresses must share a family, as asyncio's", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local err = h.await_error(loop:create_datagram_endpoint(recorder,
      {local_addr = {"127.0.0.1", 0}, remote_addr = {"::1", 9}}))
    assert.equal("ValueError: can not get address information", tostring(err))
    err = h.await_error(loop:create_datagram_endpoint(recorder,
      {local_addr = {"::1", 0}, family = asyncio.AF_INET}))
    assert.is_true(iserror(err, asyncio.gaierror))
  end))

  it("sendto may name the remote address; another raises ValueError",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local a, pa = await(loop:create_datagram_endpoint(function()
      return recorder(2)
    end, {local_addr = {"127.0.0.1", 0}}))
    local addr = a:get_extra_info("sockname")
    local b, pb = await(loop:create_datagram_endpoint(recorder,
                                                      {remote_addr = addr}))
    b:sendto("named", {addr[1], addr[2]})
    b:sendto("implied")
    local err = h.error_of(b.sendto, b, "x", {"127.0.0.1", addr[2] + 1})
    assert.is_true(iserror(err, asyncio.ValueError))
    local got = await(asyncio.wait_for(pa.got, 10))
    assert.same({"named", "implied"}, {got[1][1], got[2][1]})
    a:close()
    b:close()
    await(pa.lost)
    await(pb.lost)
  end))

  it("allow_broadcast with remote_addr does not connect: datagrams come "
     .. "from anyone", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local a, pa = await(loop:create_datagram_endpoint(function()
      return recorder(1)
    end, {local_addr = {"127.0.0.1", 0}}))
    local b, pb = await(loop:create_datagram_endpoint(function()
      return recorder(2)
    end, {remote_addr = a:get_extra_info("sockname"), allow_broadcast = true}))
    assert.is_nil(b:get_extra_info("peername"))
    b:sendto("to the remote")
    assert.equal("to the remote", await(asyncio.wait_for(pa.got, 10))[1][1])
    local c, pc = await(loop:create_datagram_endpoint(recorder,
      {local_addr = {"127.0.0.1", 0}}))
    local b_addr = {"127.0.0.1", b:get_extra_info("sockname")[2]}
    a:sendto("from the remote", b_addr)
    c:sendto("from another", b_addr)
    local got = await(asyncio.wait_for(pb.got, 10))
    table.sort(got, function(x, y) return x[1] < y[1] end)
    assert.same({"from another", "from the remote"}, {got[1][1], got[2][1]})
    for _, t in ipairs{a, b, c} do t:close() end
    for _, p in ipairs{pa, pb, pc} do await(p.lost) end
  end))

  it("write buffer limits, as asyncio's datagram transport",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local t, p = await(loop:create_datagram_endpoint(recorder,
      {local_addr = {"127.0.0.1", 0}}))
    assert.same({16384, 65536}, {t:get_write_buffer_limits()})
    t:set_write_buffer_limits(nil, 100)
    assert.same({100, 400}, {t:get_write_buffer_limits()})
    t:set_write_buffer_limits(100)
    assert.same({25, 100}, {t:get_write_buffer_limits()})
    assert.equal("ValueError: high (1) must be >= low (2) must be >= 0",
                 tostring(h.error_of(t.set_write_buffer_limits, t, 1, 2)))
    assert.equal(0, t:get_write_buffer_size())
    t:close()
    await(p.lost)
  end))
end)
