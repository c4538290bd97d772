-- call_later_work.lua: call_later runs a plain function after a delay,
-- counted from when it was scheduled, interleaved with sleeping tasks.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "loop.call_later".
-- Python -> Lua: `loop.call_later(1.2, hello, 'Tom')` ->
-- loop:call_later(1.2, hello, "Tom"). Takes 2 s (LUAIO_EXAMPLE_FAST=1: no
-- waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function hello(name)   -- a plain function
  print(string.format("[hello] Hello, %s", name))
end

local work = async(function(t, name)   -- a coroutine function
  print(string.format("[work%s] start", name))
  await(asyncio.sleep(t))
  print(string.format("[work%s] stop", name))
end)

local function main()
  local loop = example.loop()
  asyncio.ensure_future(work(1, "A"))         -- task 1
  loop:call_later(1.2, hello, "Tom")          -- task 2
  loop:call_soon(hello, "Kitty")              -- task 3
  local task4 = loop:create_task(work(2, "B")) -- task 4
  loop:call_later(1, hello, "Jerry")          -- task 5
  loop:run_until_complete(task4)
end

main()
