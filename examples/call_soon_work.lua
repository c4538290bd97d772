-- call_soon_work.lua: call_soon puts a plain function into the ready queue
-- between tasks; everything runs in the order it was scheduled.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "loop.call_soon".
-- Python -> Lua: `loop.call_soon(hello, 'Tom')` -> loop:call_soon(hello,
-- "Tom"); `'{}'.format(x)` -> string.format("%s", x); `if __name__ ==
-- '__main__': main()` -> main(). Takes 3 s (LUAIO_EXAMPLE_FAST=1: no
-- waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function hello(name)   -- a plain function
  print(string.format("[hello] Hello, %s", name))
end

local work = async(function(t, name)   -- a coroutine function
  print("[work ] start", name)
  await(asyncio.sleep(t))
  print(string.format("[work ] %s after %ss stop", name, t))
end)

local function main()
  local loop = example.loop()
  -- add a task to the loop
  asyncio.ensure_future(work(1, "A"))   -- runs 1st
  -- call_soon queues a plain function; its arguments follow it
  loop:call_soon(hello, "Tom")          -- runs 2nd
  -- add another task
  loop:create_task(work(2, "B"))        -- runs 3rd
  -- run the loop until one more task is done
  loop:run_until_complete(work(3, "C")) -- runs 4th
end

main()
