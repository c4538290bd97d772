-- spec/redis_commands_spec.lua: asyncio.redis's commands beyond the
-- common ones. On a fake server, what a cancelled BLMPOP or BZMPOP
-- popped goes back where it came from.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await

local err_of = dofile("spec/helpers.lua").await_error

describe("asyncio.redis commands", function()
  teardown(servers.stop)

  --- A fake Redis for the pops of a cancelled BLMPOP or BZMPOP: it
  -- blocks them, answers CLIENT UNBLOCK with 1 and then sends the
  -- blocked command `popped` (elements Redis popped just before), and
  -- records the commands that put things back. -> {port, blocked (an
  -- Event), restored (a list of argv), close}.
  local function fake_redis(popped)
    local srv = {blocked = asyncio.Event(), restored = {}}
    local writers, nconns = {}, 0
    local function encode(v)
      if math.type(v) == "integer" then return ":" .. v .. "\r\n" end
      if type(v) == "string" then
        return "$" .. #v .. "\r\n" .. v .. "\r\n"
      end
      local out = {"*" .. #v .. "\r\n"}
      for _, x in ipairs(v) do out[#out + 1] = encode(x) end
      return table.concat(out)
    end
    local read_command = async(function(rd)
      local line = await(rd:readline())
      if line == "" then return nil end
      local argv = {}
      for i = 1, tonumber(line:match("^%*(%d+)")) do
        local len = tonumber(await(rd:readline()):match("^%$(%d+)"))
        argv[i] = await(rd:readexactly(len + 2)):sub(1, len)
      end
      return argv
    end)
    local server = await(asyncio.start_server(async(function(rd, wr)
      nconns = nconns + 1
      local id = nconns
      writers[id] = wr
      while true do
        local argv = await(read_command(rd))
        if argv == nil then break end
        local name = argv[1]:upper()
        if name == "CLIENT" and argv[2]:upper() == "ID" then
          wr:write(encode(id))
        elseif name == "CLIENT" and argv[2]:upper() == "UNBLOCK" then
          wr:write(encode(1))
          writers[tonumber(argv[3])]:write(encode(popped))
        elseif name == "BLMPOP" or name == "BZMPOP" then
          srv.blocked:set()
        elseif name == "LPUSH" or name == "RPUSH" or name == "ZADD" then
          srv.restored[#srv.restored + 1] = argv
          wr:write(encode(#argv - 2))
        else
          wr:write("+PONG\r\n")
        end
      end
      wr:close()
    end), "127.0.0.1", 0))
    srv.port = server.sockets[1].port
    srv.close = async(function()
      server:close()
      await(server:wait_closed())
    end)
    return srv
  end

  it("a cancelled BLMPOP or BZMPOP puts back what Redis popped for it, "
     .. "in order, at the end it came from", aspec.async(function()
    for _, case in ipairs{
        {{"BLMPOP", 0, 2, "none", "q", "LEFT", "COUNT", 2},
         {"q", {"x", "y"}}, {"LPUSH", "q", "y", "x"}},
        {{"blmpop", 0, 1, "q", "right", "COUNT", 3},
         {"q", {"z", "y", "x"}}, {"RPUSH", "q", "x", "y", "z"}},
        {{"BZMPOP", 0, 1, "z", "MIN", "COUNT", 2},
         {"z", {{"m1", "1"}, {"m2", "2.5"}}},
         {"ZADD", "z", "1", "m1", "2.5", "m2"}}} do
      for _, in_pipeline in ipairs{false, true} do
        local srv = fake_redis(case[2])
        local r = redis.Redis{port = srv.port}
        assert.is_true(await(r:ping())) -- CLIENT UNBLOCK goes there
        local aw
        if in_pipeline then
          aw = r:pipeline(false):execute_command(table.unpack(case[1]))
                :execute()
        else
          aw = r:execute_command(table.unpack(case[1]))
        end
        local t = asyncio.create_task(aw)
        await(asyncio.wait_for(srv.blocked:wait(), 10))
        t:cancel()
        assert.is_true(asyncio.iserror(err_of(t), asyncio.CancelledError))
        await(r:close()) -- waits until it is put back
        assert.same({case[3]}, srv.restored)
        await(srv.close())
      end
    end
  end))
end)
