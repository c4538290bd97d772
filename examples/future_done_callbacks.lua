-- future_done_callbacks.lua: two done callbacks on one Future, each given
-- an extra argument, run in the order they were added once the result is
-- set.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the third Future program
-- (register_callbacks with functools.partial(callback, n=1)).
-- Python -> Lua: `functools.partial(callback, n=1)` -> a closure that calls
-- callback(future, 1).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function callback(future, n)
  print(string.format("%s: future done: %s", n, future:result()))
end

local register_callbacks = async(function(all_done)
  print("registering callbacks on future")
  all_done:add_done_callback(function(future) callback(future, 1) end)
  all_done:add_done_callback(function(future) callback(future, 2) end)
end)

local main = async(function(all_done)
  await(register_callbacks(all_done))
  print("setting result of future")
  all_done:set_result("the result")
end)

local event_loop = asyncio.get_event_loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  local all_done = asyncio.Future()
  event_loop:run_until_complete(main(all_done))
end
