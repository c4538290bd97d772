-- call_later.lua: callbacks delayed with call_later run in the order of
-- their deadlines, after one scheduled with call_soon.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the call_later program.
-- Python -> Lua: loop.call_later(0.2, callback, 1) -> loop:call_later(0.2,
-- callback, 1). Takes 0.4 s.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function callback(n)
  print(string.format("callback %s invoked", n))
end

local main = async(function(loop)
  print("registering callbacks")
  loop:call_later(0.2, callback, 1)
  loop:call_later(0.1, callback, 2)
  loop:call_soon(callback, 3)

  await(asyncio.sleep(0.4))
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function()
    print("closing event loop")
    event_loop:close()
  end)
  print("entering event loop")
  event_loop:run_until_complete(main(event_loop))
end
