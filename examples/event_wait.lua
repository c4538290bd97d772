-- event_wait.lua: two coroutines wait for an Event that a call_later
-- callback sets; set() releases both.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, section asyncio.Event (also
-- seeds/002_f7ad8b285a9c02a2.txt, program 20, the same program).
-- Python -> Lua: functools.partial(set_event, event) -> call_later's
-- extra argument; False/True print as false/true.
-- Takes 0.1 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function set_event(event)
  print("setting event in callback")
  event:set()
end

local coro1 = async(function(event)
  print("coro1 waiting for event")
  await(event:wait())
  print("coro1 triggered")
end)

local coro2 = async(function(event)
  print("coro2 waiting for event")
  await(event:wait())
  print("coro2 triggered")
end)

local main = async(function(loop)
  local event = asyncio.Event()
  print(string.format("event start state: %s", event:is_set()))
  loop:call_later(0.1, set_event, event)
  await(asyncio.wait({coro1(event), coro2(event)}))
  print(string.format("event end state: %s", event:is_set()))
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop))
end
