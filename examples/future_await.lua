-- future_await.lua: a coroutine awaits a Future that a callback completes.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, the second Future program
-- (await all_done inside main).
-- Python -> Lua: `result = await all_done` -> `local result =
-- await(all_done)`; `{!r}` -> example.repr.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local repr = example.repr

local function mark_done(future, result)
  print(string.format("setting future result to %s", repr(result)))
  future:set_result(result)
end

local main = async(function(loop)
  local all_done = asyncio.Future()

  print("scheduling mark_done")
  loop:call_soon(mark_done, all_done, "the result")

  local result = await(all_done)
  print(string.format("returned result: %s", repr(result)))
end)

local event_loop = asyncio.get_event_loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop))
end
