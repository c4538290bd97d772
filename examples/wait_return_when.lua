-- wait_return_when.lua: asyncio.wait in three rounds over ten coroutines
-- with random sleeps: FIRST_COMPLETED, then a 2 s timeout, then the rest.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "asyncio.wait 帶有控制功能"
-- (asyncio.wait with control).
-- Python -> Lua: `return_when=asyncio.FIRST_COMPLETED` -> {return_when =
-- asyncio.FIRST_COMPLETED}; `timeout=2` -> {timeout = 2};
-- random.uniform(0.5, 5) -> 0.5 + 4.5 * math.random(). The rounds reuse
-- the tasks the first wait made for the coroutines. As in Python, when
-- every task ended within the 2 s (rarely), the last wait has none left
-- and raises ValueError "Set of Tasks/Futures is empty.", which ends the
-- program. Takes up to 5 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local coro = async(function(tag)
  print(">", tag)
  await(asyncio.sleep(0.5 + 4.5 * math.random()))
  print("<", tag)
  return tag
end)

local loop = example.loop()

local tasks = {}
for i = 1, 10 do tasks[#tasks + 1] = coro(i) end

-- first wait: return when the first task is done
print("Get first result:")
local finished, unfinished = loop:run_until_complete(
  asyncio.wait(tasks, {return_when = asyncio.FIRST_COMPLETED}))

for _, task in ipairs(finished) do
  print(task:result())
end
print("unfinished:", #unfinished)

-- go on with what the first wait left: return after 2 s
print("Get more results in 2 seconds:")
local finished2, unfinished2 = loop:run_until_complete(
  asyncio.wait(unfinished, {timeout = 2}))

for _, task in ipairs(finished2) do
  print(task:result())
end
print("unfinished2:", #unfinished2)

-- go on with what is left: ALL_COMPLETED (the default). When the 2 s
-- round took everything, there is nothing left to wait for (wait raises
-- ValueError for an empty list, in Python too).
print("Get all other results:")
local finished3 = loop:run_until_complete(asyncio.wait(unfinished2))
for _, task in ipairs(finished3) do
  print(task:result())
end

loop:close()
