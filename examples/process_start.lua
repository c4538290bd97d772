-- process_start.lua: ten processes; process n prints 0 to n-1, one number
-- a second.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Process类" (the Process
-- class); no asyncio in it.
-- Python -> Lua: Process(target=func, args=(each,)).start() ->
-- asyncio.create_subprocess_exec running this script again with `each`
-- as its argument, which then runs func (a script run with no argument
-- is the main process); the children write to the parent's standard
-- output. time.sleep -> lib/blocking.lua. Python's main process waits
-- for its children when it exits; here it waits for them explicitly.
-- Takes 9 s (LUAIO_EXAMPLE_FAST=1: the children inherit it, a tutorial
-- second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local asyncio = require "asyncio"

local function func(num)
  for n = 0, num - 1 do
    print(n)
    blocking.sleep(1)
  end
end

if arg[1] then
  func(tonumber(arg[1]))
else
  local loop = asyncio.get_event_loop()
  local processes = {}
  for each = 0, 9 do
    processes[#processes + 1] = loop:run_until_complete(
      asyncio.create_subprocess_exec(arg[-1], arg[0], each))
  end
  for _, p in ipairs(processes) do loop:run_until_complete(p:wait()) end
  loop:close()
end
