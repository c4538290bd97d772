-- call_soon.lua: call_soon with arguments, and with a partial function
-- that fixes a keyword argument.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the call_soon program.
-- Python -> Lua: the keyword-only argument `*, kwarg='default'` -> an
-- options table as the last argument; `functools.partial(callback,
-- kwarg='not default')` -> a closure. Takes 0.1 s.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function callback(arg, opts)
  local kwarg = opts and opts.kwarg or "default"
  print(string.format("callback invoked with %s and %s", arg, kwarg))
end

local main = async(function(loop)
  print("registering callbacks")
  loop:call_soon(callback, 1)
  local wrapped = function(arg)
    return callback(arg, {kwarg = "not default"})
  end
  loop:call_soon(wrapped, 2)

  await(asyncio.sleep(0.1))
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
