-- future_callback.lua: a Future completed by a plain callback; the loop
-- runs until the future is done and returns its result.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the first Future program
-- (mark_done with run_until_complete(all_done)).
-- Python -> Lua: asyncio.Future() -> asyncio.Future() (bound to the current
-- loop); `{!r}` -> example.repr; try/finally -> a to-be-closed variable.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local repr = example.repr

local function mark_done(future, result)
  print(string.format("setting future result to %s", repr(result)))
  future:set_result(result)
end

local event_loop = asyncio.get_event_loop()
local all_done
do
  local _ <close> = example.finally(function()
    print("closing event loop")
    event_loop:close()
  end)
  all_done = asyncio.Future()

  print("scheduling mark_done")
  event_loop:call_soon(mark_done, all_done, "the result")

  print("entering event loop")
  local result = event_loop:run_until_complete(all_done)
  print(string.format("returned result: %s", repr(result)))
end

print(string.format("future result: %s", repr(all_done:result())))
