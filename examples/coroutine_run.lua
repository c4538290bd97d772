-- coroutine_run.lua: define a coroutine and run it with run_until_complete.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "定義一個協程" (define a
-- coroutine).
-- Python -> Lua: `async def f(x):` -> `local f = async(function(x) ... end)`;
-- `now = lambda: time.time()` -> example.now (the loop's clock); Lua's print
-- separates its arguments with a tab where Python's uses a space.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async = asyncio.async

local now = example.now

local do_some_work = async(function(x)
  print("Waiting: ", x)
end)

local start = now()

local coroutine = do_some_work(2)
local loop = example.loop()
loop:run_until_complete(coroutine)

print("TIME: ", now() - start)
