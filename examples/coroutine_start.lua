-- coroutine_start.lua: start a coroutine with run_until_complete and close
-- the loop afterwards.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the first program (a coroutine
-- passed straight to run_until_complete).
-- Python -> Lua: `try: ... finally: ...` -> a do block whose to-be-closed
-- variable (example.finally) runs the finally part when the block ends.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async = asyncio.async

local coroutine = async(function()
  print("in coroutine")
end)

local event_loop = asyncio.get_event_loop()
do
  local _ <close> = example.finally(function()
    print("closing event loop")
    event_loop:close()
  end)
  print("starting coroutine")
  local coro = coroutine()
  print("entering event loop")
  event_loop:run_until_complete(coro)
end
