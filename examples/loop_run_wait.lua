-- loop_run_wait.lua: hand a list of coroutines to run_until_complete
-- through asyncio.wait.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "传入loop的方法 / 使用asyncio.wait
-- 传入协程列表" (passing work to the loop: a list of coroutines through
-- asyncio.wait). It prints nothing.
-- Python -> Lua: `async def coro1(): pass` -> async(function() end);
-- asyncio.wait takes the coroutine objects and wraps them in tasks, as
-- the tutorial's Python did (3.11 refuses them).
local asyncio = require "asyncio"
local async = asyncio.async

local coro1 = async(function() end)
local coro2 = async(function() end)

local loop = asyncio.get_event_loop()
loop:run_until_complete(asyncio.wait({
  coro1(),
  coro2(),
}))
