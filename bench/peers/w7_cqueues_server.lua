--- w7 tcp on cqueues: an echo server on 127.0.0.1:PORT, one cqueues
-- coroutine per connection reading what arrived and writing it back,
-- exiting once CONNS connections have closed.
--   lua5.4 bench/peers/w7_cqueues_server.lua N PORT CONNS
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local PORT = tonumber(arg[2]) or 8888
local CONNS = tonumber(arg[3]) or 50

local cq = cqueues.new()
local srv = socket.listen{host = "127.0.0.1", port = PORT, reuseaddr = true}
cq:wrap(function()
  for _ = 1, CONNS do
    local con = assert(srv:accept())
    con:setmode("b", "bn") -- binary, no output buffering
    cq:wrap(function()
      while true do
        local data = con:read(-65536)
        if not data then break end
        con:write(data)
      end
      con:close()
    end)
  end
  srv:close()
end)
assert(cq:loop())
