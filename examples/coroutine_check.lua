-- coroutine_check.lua: a coroutine function, and the coroutine object that
-- calling it returns without running it.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.1. 定义协程" and "1.2. 运行
-- 协程" (iscoroutinefunction, iscoroutine).
-- Python -> Lua: True -> true. As in Python, the coroutine object that is
-- never awaited is reported on stderr ("... was never awaited") when it is
-- collected.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
end)

print(asyncio.iscoroutinefunction(do_some_work))  -- true

print(asyncio.iscoroutine(do_some_work(3)))  -- true
