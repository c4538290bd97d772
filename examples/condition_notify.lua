-- condition_notify.lua: five consumers wait on a Condition; it notifies
-- one, then two, then all the rest.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, section asyncio.condition
-- (seeds/002_f7ad8b285a9c02a2.txt, program 21, condition_consumers.lua, is
-- the same program without the '----' lines).
-- Python -> Lua: `async with condition:` -> `local _ <close> =
-- await(condition)` in a do-block; condition.notify(n=i) ->
-- condition:notify(i). asyncio.wait runs the consumers as tasks in list
-- order, so they wait (and are notified) in the order 0..4, where the
-- tutorial's order came from a set.
-- Takes 0.3 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local consumer = async(function(condition, n)
  print("----")
  do
    local _ <close> = await(condition)
    print(string.format("consumer %d is waiting", n))
    await(condition:wait())
    print(string.format("consumer %d triggered", n))
  end
  print(string.format("ending consumer %d", n))
end)

local manipulate_condition = async(function(condition)
  print("starting manipulate_condition")
  await(asyncio.sleep(0.1))  -- let the consumers start
  for i = 1, 2 do
    do
      local _ <close> = await(condition)
      print(string.format("notifying %d consumers", i))
      condition:notify(i)
    end
    await(asyncio.sleep(0.1))
  end
  do
    local _ <close> = await(condition)
    print("notifying remaining consumers")
    condition:notify_all()
  end
  print("ending manipulate_condition")
end)

local main = async(function(loop)
  local condition = asyncio.Condition()
  local consumers = {}
  for i = 0, 4 do consumers[#consumers + 1] = consumer(condition, i) end
  loop:create_task(manipulate_condition(condition))
  await(asyncio.wait(consumers))
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop))
end
