-- coroutine_object.lua: calling a coroutine function runs nothing; the
-- body runs once the loop runs the coroutine object.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "簡單例子" (a simple example).
-- Python -> Lua: print('Coroutine:', coroutine) -> print("Coroutine:",
-- coroutine); a coroutine object prints as <coroutine object execute> (no
-- address, unlike Python's "at 0x...").
local asyncio = require "asyncio"
local async = asyncio.async

local execute = async(function(x)
  print("Number:", x)
end)

local coroutine = execute(1)
print("Coroutine:", coroutine)
print("After calling execute")

local loop = asyncio.get_event_loop()
loop:run_until_complete(coroutine)
print("After calling loop")
