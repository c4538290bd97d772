-- gather_coroutines.lua: asyncio.gather hands several coroutines (or
-- futures) to the loop as one future; they run concurrently.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "1.4. 多个协程" (several
-- coroutines): gather of coroutines, of a list of coroutines, of futures,
-- and `results = await asyncio.gather(*futus)` inside a coroutine.
-- Python -> Lua: `asyncio.gather(*coros)` ->
-- `asyncio.gather(table.unpack(coros))`; `print(str(results))` prints the
-- list as Python would ([nil, nil]: do_some_work returns nothing).
-- Takes 4 x 3 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local do_some_work = async(function(x)
  print("Waiting " .. tostring(x))
  await(asyncio.sleep(x))
  print("Done")
end)

local loop = example.loop()

loop:run_until_complete(asyncio.gather(do_some_work(1), do_some_work(3)))

local coros = {do_some_work(1), do_some_work(3)}
loop:run_until_complete(asyncio.gather(table.unpack(coros)))

local futus = {asyncio.ensure_future(do_some_work(1)),
               asyncio.ensure_future(do_some_work(3))}
loop:run_until_complete(asyncio.gather(table.unpack(futus)))

local main = async(function()
  local futus = {asyncio.ensure_future(do_some_work(1)),
                 asyncio.ensure_future(do_some_work(3))}
  local results = await(asyncio.gather(table.unpack(futus)))
  local items = {}
  for i = 1, #futus do items[i] = example.repr(results[i]) end
  print("[" .. table.concat(items, ", ") .. "]")
end)
loop:run_until_complete(main())
