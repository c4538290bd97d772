--- examples/lib/sms.lua: finds the tutorial's "SMS service" (the HTTP
-- server of examples/sms_server.lua) for the examples that call it.
--
--   local sms = require "lib.sms"
--   local url, server = await(sms.start())   -- "http://127.0.0.1:PORT"
--   ...
--   await(sms.stop(server))
--
-- With SMS_URL set in the environment, that server is used. Otherwise
-- sms_server.lua is started as a child process (the same interpreter as
-- the running script) on a free port, which it prints on its first line;
-- stop() terminates it.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local M = {}

local here = arg and arg[0] and arg[0]:match("^(.*)/") or "."

M.start = async(function()
  local url = os.getenv("SMS_URL")
  if url and url ~= "" then return url end
  local server = await(asyncio.create_subprocess_exec(arg[-1] or "luaio",
    here .. "/sms_server.lua", 0, {stdout = asyncio.PIPE}))
  local line = await(server.stdout:readline())
  local port = line:match("http://127%.0%.0%.1:(%d+)/")
  if not port then
    server:kill()
    await(server:wait())
    error("sms_server.lua did not start: " .. line, 0)
  end
  return "http://127.0.0.1:" .. port, server
end)

M.stop = async(function(server)
  if server then
    server:terminate()
    await(server:wait())
  end
end)

return M
