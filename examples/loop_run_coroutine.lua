-- loop_run_coroutine.lua: hand a coroutine straight to run_until_complete.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "传入loop的方法 / 直接传入协程"
-- (passing work to the loop: a coroutine directly). It prints nothing.
-- Python -> Lua: `async def read(): pass` -> async(function() end).
local asyncio = require "asyncio"
local async = asyncio.async

local read = async(function() end)
local write = async(function() end)

local loop = asyncio.get_event_loop()
loop:run_until_complete(write())
