-- spec/redis_health_spec.lua: redis-py's health_check_interval (a PING
-- before using a connection that read nothing for that long) and
-- retry_on_timeout (one more try on a new connection), against a real
-- redis-server, stopped with SIGSTOP to stand for a peer that vanished
-- without closing its connections.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await

--- How many times the server ran the command (lower-cased) since its
-- statistics were reset.
local function calls(admin, command)
  local info = await(admin:execute_command("INFO", "commandstats"))
  return tonumber(info:match("cmdstat_" .. command .. ":calls=(%d+)")) or 0
end

local function pings(admin) return calls(admin, "ping") end

-- the loop's clock, moved by the tests: health checks fall due exactly
-- when a test says so
local now = 0
local function clock() return now end

describe("asyncio.redis health checks", function()
  teardown(servers.stop)

  it("PINGs a connection idle past health_check_interval, once for the "
     .. "commands that find it due", aspec.async({clock = clock}, function()
    local url = await(servers.redis_url(3))
    local admin = redis.from_url(url)
    local r = redis.from_url(url, {health_check_interval = 30})
    assert.is_true(await(r:set("k", "v")))
    await(admin:execute_command("CONFIG", "RESETSTAT"))
    now = now + 29 -- read 29 s ago: not due
    assert.equal("v", await(r:get("k")))
    assert.equal(0, pings(admin))
    now = now + 31 -- due: three commands at once share one PING
    assert.same({"v", "v", "v"}, await(asyncio.gather(r:get("k"),
      r:get("k"), r:get("k"))))
    assert.equal(1, pings(admin))
    -- a pipeline and a dedicated connection are checked as they are taken
    now = now + 31
    local p = r:pipeline{transaction = false}
    p:get("k")
    assert.same({"v", n = 1}, await(p:execute()))
    assert.equal(2, pings(admin))
    -- a dedicated connection is checked when it is taken from the pool
    assert.is_nil(await(r:blpop({"l"}, 0.01))) -- a new one: not due
    assert.equal(2, pings(admin))
    now = now + 31
    assert.is_nil(await(r:blpop({"l"}, 0.01))) -- the idle one: due
    assert.equal(3, pings(admin))
    await(r:close())
    await(admin:close())
  end))

  it("raises the failed check's TimeoutError and uses a new connection "
     .. "afterwards", aspec.async(function()
    local srv = await(servers.redis_server())
    local url = ("redis://127.0.0.1:%d"):format(srv.port)
    local admin = redis.from_url(url)
    local r = redis.from_url(url, {health_check_interval = 0.05,
                                   socket_timeout = 1})
    assert.is_true(await(r:set("k", "v")))
    await(admin:execute_command("CONFIG", "RESETSTAT"))
    local first = r.conn
    await(asyncio.sleep(0.1)) -- past the interval
    srv.process:send_signal("SIGSTOP")
    local ok, e = pcall(await, r:get("k"))
    srv.process:send_signal("SIGCONT")
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, redis.TimeoutError), tostring(e))
    assert.is_true(first.closed)
    assert.equal("v", await(r:get("k")))
    assert.are_not.equal(first, r.conn)
    -- the failed check kept the first GET from being sent at all
    assert.equal(1, calls(admin, "get"))
    await(r:close())
    await(admin:close())
    await(servers.kill_server(srv))
  end))

  it("retries once on a new connection with retry_on_timeout",
     aspec.async(function()
    local srv = await(servers.redis_server())
    local url = ("redis://127.0.0.1:%d"):format(srv.port)
    local plain = redis.from_url(url, {socket_timeout = 1})
    local r = redis.from_url(url .. "?retry_on_timeout=true",
                             {socket_timeout = 1})
    assert.is_true(await(r:set("k", "v")))
    assert.is_true(await(plain:set("k", "v")))
    local loop = asyncio.get_running_loop()
    -- stopped past the first try's timeout, running again well before
    -- the second one's
    srv.process:send_signal("SIGSTOP")
    loop:call_later(1.5, function() srv.process:send_signal("SIGCONT") end)
    local without = asyncio.ensure_future(plain:get("k"))
    local with = asyncio.ensure_future(r:get("k"))
    await(asyncio.wait({without, with}))
    assert.is_true(asyncio.iserror(without:exception(), redis.TimeoutError))
    assert.equal("v", with:result())
    await(r:close())
    await(plain:close())
    await(servers.kill_server(srv))
  end))

  -- a proxy passes the first INCR on to the server, then drops the
  -- client's connection before the reply comes back: the server ran it
  it("with retry_on_timeout, a connection lost after the command was sent "
     .. "is not retried: the command runs once", aspec.async(function()
    local srv = await(servers.redis_server())
    local admin = redis.Redis{port = srv.port}
    local conns, dropped = 0, false
    local proxy = await(asyncio.start_server(async(function(cr, cw)
      conns = conns + 1
      local sr, sw = await(asyncio.open_connection("127.0.0.1", srv.port))
      local drop = false -- this connection's INCR is dropped
      local up = asyncio.create_task(async(function()
        while true do
          local data = await(cr:read(65536))
          if data == "" then return end
          drop = not dropped and data:find("INCR", 1, true) ~= nil
          sw:write(data)
          if drop then
            dropped = true
            return
          end
        end
      end)())
      local down = asyncio.create_task(async(function()
        while true do
          local data = await(sr:read(65536))
          if data == "" or drop then return end -- the INCR's reply: dropped
          cw:write(data)
        end
      end)())
      await(asyncio.wait({up, down}, {return_when = asyncio.FIRST_COMPLETED}))
      up:cancel()
      down:cancel()
      cw:close()
      sw:close()
    end), "127.0.0.1", 0))
    local port = proxy.sockets[1]:getsockname()[2]
    local r = redis.Redis{port = port, retry_on_timeout = true}
    await(admin:set("counter", 0))
    local ok, err = asyncio.pcall(await, r:incr("counter"))
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(err, redis.ConnectionError))
    assert.equal("1", await(admin:get("counter")))
    assert.equal(1, conns) -- no second connection for a retry
    assert.equal(2, await(r:incr("counter"))) -- the next one reconnects
    await(r:close())
    await(admin:close())
    proxy:close()
    await(servers.kill_server(srv))
  end))

  it("checks its options", function()
    assert.has_error(function() redis.Redis{health_check_interval = -1} end,
      "bad option 'health_check_interval' to 'Redis' (non-negative number "
      .. "expected)")
    assert.has_error(function() redis.Redis{retry_on_timeout = 1} end,
      "bad option 'retry_on_timeout' to 'Redis' (boolean expected)")
    assert.is_table(redis.from_url("redis://h?health_check_interval=2.5"))
  end)
end)
