-- call_at.lua: callbacks scheduled at absolute times on the loop's clock.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the call_at program.
-- Python -> Lua: loop.time() -> loop:time(); time.time() -> os.time()
-- (whole seconds in Lua). Takes 1 s.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function callback(n, loop)
  print(string.format("callback %s invoked at %s", n, loop:time()))
end

local main = async(function(loop)
  local now = loop:time()
  print(string.format("clock time: %s", os.time()))
  print(string.format("loop time: %s", now))

  print("registering callbacks")
  loop:call_at(now + 0.2, callback, 1, loop)
  loop:call_at(now + 0.1, callback, 2, loop)
  loop:call_soon(callback, 3, loop)

  await(asyncio.sleep(1))
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
