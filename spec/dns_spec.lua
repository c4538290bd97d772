-- spec/dns_spec.lua: asyncio.getaddrinfo / loop:getaddrinfo and
-- asyncio.getnameinfo / loop:getnameinfo (bindings/io/dns.c), on
-- libuv's thread pool.
--
-- Only names every host resolves locally (localhost, numeric addresses)
-- and a reserved name that never resolves (.invalid, RFC 2606).
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local iserror = asyncio.iserror

local h = dofile("spec/helpers.lua")
local raises = h.error_of

describe("getaddrinfo", function()
  it("resolves localhost to loopback entries with family, type, proto, "
     .. "addr and port", aspec.async(function()
    local infos = await(asyncio.getaddrinfo("localhost", 80,
                                            {type = asyncio.SOCK_STREAM}))
    assert.is_true(#infos >= 1)
    local seen = {}
    for _, ai in ipairs(infos) do
      assert.is_true(ai.family == asyncio.AF_INET or
                     ai.family == asyncio.AF_INET6)
      assert.equal(asyncio.SOCK_STREAM, ai.type)
      assert.equal(asyncio.IPPROTO_TCP, ai.proto)
      assert.equal(80, ai.port)
      seen[ai.addr] = true
    end
    assert.is_true(seen["127.0.0.1"] or seen["::1"])
  end))

  it("a numeric host comes back as itself", aspec.async(function()
    local infos = await(asyncio.getaddrinfo("127.0.0.1", 8080,
      {family = asyncio.AF_INET, type = asyncio.SOCK_DGRAM}))
    assert.equal(1, #infos)
    assert.same({family = asyncio.AF_INET, type = asyncio.SOCK_DGRAM,
                 proto = asyncio.IPPROTO_UDP, addr = "127.0.0.1",
                 port = 8080}, infos[1])
  end))

  it("family = AF_INET6 gives IPv6 addresses", aspec.async(function()
    local infos = await(asyncio.getaddrinfo("::1", 0,
      {family = asyncio.AF_INET6, type = asyncio.SOCK_STREAM}))
    assert.equal(1, #infos)
    assert.equal("::1", infos[1].addr)
    assert.equal(asyncio.AF_INET6, infos[1].family)
  end))

  it("a nil host with AI_PASSIVE gives the wildcard address",
     aspec.async(function()
    local infos = await(asyncio.getaddrinfo(nil, 5000,
      {family = asyncio.AF_INET, type = asyncio.SOCK_STREAM,
       flags = asyncio.AI_PASSIVE}))
    assert.equal("0.0.0.0", infos[1].addr)
    assert.equal(5000, infos[1].port)
  end))

  it("a name that does not resolve raises gaierror (an OSError named "
     .. "EAI_...), with Python's errno and text", aspec.async(function()
    local err = raises(function()
      return await(asyncio.getaddrinfo("no-such-host.invalid", 80))
    end)
    assert.is_true(iserror(err, asyncio.gaierror))
    assert.is_true(iserror(err, asyncio.OSError))
    assert.matches("^EAI_", err.name)
    assert.is_true(err.errno < 0, tostring(err.errno)) -- glibc's EAI_*
    if err.name == "EAI_NONAME" then -- no resolver here gives EAI_AGAIN
      assert.equal(-2, err.errno)
      assert.equal("Name or service not known", err.strerror)
    end
    assert.equal(err.name .. ": " .. err.strerror, err.message)
  end))

  it("loop:getaddrinfo is the same lookup", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local infos = await(loop:getaddrinfo("127.0.0.1", 1,
                                         {type = asyncio.SOCK_STREAM}))
    assert.equal("127.0.0.1", infos[1].addr)
    assert.equal(1, infos[1].port)
  end))

  it("does not block the loop: other tasks run while it resolves",
     aspec.async(function()
    local ran = false
    local t = asyncio.create_task(async(function() ran = true end)())
    await(asyncio.getaddrinfo("localhost", 80))
    assert.is_true(ran)
    await(t)
  end))

  it("a cancelled lookup raises CancelledError and leaves nothing behind",
     aspec.async(function()
    local t = asyncio.create_task(asyncio.getaddrinfo("localhost", 80))
    await(asyncio.sleep(0))
    t:cancel()
    assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
    -- the loop still works and resolves again
    local infos = await(asyncio.getaddrinfo("127.0.0.1", 2))
    assert.equal(2, infos[1].port)
  end))

  it("a loop closed during a lookup can be collected", function()
    -- the task starts the lookup, then the loop stops before polling
    h.assert_loop_collected(function()
      return asyncio.getaddrinfo("localhost", 80)
    end)
  end)

  it("an unknown option raises when the call is made, naming the "
     .. "function and the argument; family, type, proto and flags are "
     .. "taken", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local function message_of(fn)
      return h.message(raises(fn))
    end
    assert.equal("bad argument #3 to 'getaddrinfo' (unknown option "
                 .. "'socktype')", message_of(function()
      asyncio.getaddrinfo("127.0.0.1", 80, {socktype = asyncio.SOCK_STREAM})
    end))
    assert.equal("bad argument #3 to 'getaddrinfo' (unknown option "
                 .. "'protocol')", message_of(function()
      loop:getaddrinfo("127.0.0.1", 80, {protocol = 0})
    end))
    local infos = await(loop:getaddrinfo("127.0.0.1", 80, {
      family = asyncio.AF_INET, type = asyncio.SOCK_STREAM,
      proto = asyncio.IPPROTO_TCP, flags = asyncio.AI_NUMERICHOST}))
    assert.equal(1, #infos)
    assert.same({asyncio.AF_INET, asyncio.SOCK_STREAM, asyncio.IPPROTO_TCP,
                 "127.0.0.1", 80}, {infos[1].family, infos[1].type,
                 infos[1].proto, infos[1].addr, infos[1].port})
  end))

  it("bad options raise", aspec.async(function()
    local err = raises(function()
      return await(asyncio.getaddrinfo("localhost", 80, {family = "inet"}))
    end)
    assert.matches("bad option 'family'", tostring(err))
  end))
end)

describe("getnameinfo", function()
  local NUMERIC = asyncio.NI_NUMERICHOST | asyncio.NI_NUMERICSERV

  it("with NI_NUMERICHOST | NI_NUMERICSERV gives the address back as "
     .. "host and service strings", aspec.async(function()
    local loop = asyncio.get_running_loop()
    local host, service = await(loop:getnameinfo({"127.0.0.1", 8080},
                                                  NUMERIC))
    assert.equal("127.0.0.1", host)
    assert.equal("8080", service)
    host, service = await(asyncio.getnameinfo({"::1", 443}, NUMERIC))
    assert.equal("::1", host)
    assert.equal("443", service)
  end))

  it("without flags names the host (loopback has a name in every hosts "
     .. "file)", aspec.async(function()
    local host, service = await(asyncio.getnameinfo({"127.0.0.1", 65000},
                                asyncio.NI_NUMERICSERV))
    assert.equal("string", type(host))
    assert.not_equal("127.0.0.1", host)
    assert.equal("65000", service)
  end))

  it("a host that is not a numeric address raises gaierror EAI_NONAME, "
     .. "as Python's", aspec.async(function()
    local err = raises(function()
      return await(asyncio.getnameinfo({"localhost", 22}))
    end)
    assert.is_true(iserror(err, asyncio.gaierror))
    assert.equal("EAI_NONAME", err.name)
    assert.equal(-2, err.errno)
    assert.equal("getnameinfo", err.op)
  end))

  it("a bad address or flags raise when the call is made, naming the "
     .. "argument", function()
    local loop = asyncio.new_event_loop()
    finally(function() loop:close() end)
    assert.matches("bad argument #2 .*table expected, got string",
                   raises(loop.getnameinfo, loop, "127.0.0.1"))
    assert.matches("bad argument #1 .*host must be a string",
                   raises(asyncio.getnameinfo, {80}))
    assert.matches("bad argument #1 .*port must be an integer",
                   raises(asyncio.getnameinfo, {"127.0.0.1"}))
    assert.matches("bad argument #1 .*port must be 0%-65535",
                   raises(asyncio.getnameinfo, {"127.0.0.1", 70000}))
    assert.matches("bad argument #2 .*number expected",
                   raises(asyncio.getnameinfo, {"127.0.0.1", 1}, "x"))
  end)

  it("a cancelled lookup raises CancelledError and the loop resolves "
     .. "again", aspec.async(function()
    local t = asyncio.create_task(asyncio.getnameinfo({"127.0.0.1", 1}))
    await(asyncio.sleep(0))
    t:cancel()
    assert.is_true(iserror(raises(await, t), asyncio.CancelledError))
    local host, service = await(asyncio.getnameinfo({"127.0.0.1", 2},
                                                    NUMERIC))
    assert.equal("127.0.0.1", host)
    assert.equal("2", service)
  end))

  it("a loop closed during a lookup can be collected", function()
    h.assert_loop_collected(function()
      return asyncio.getnameinfo({"127.0.0.1", 80})
    end)
  end)
end)
