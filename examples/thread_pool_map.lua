-- thread_pool_map.lua: a pool of three threads maps a blocking function
-- over ten numbers, three at a time.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用ThreadPoolExecutor"
-- (using ThreadPoolExecutor); no asyncio in it.
-- Python -> Lua: concurrent.futures.ThreadPoolExecutor(3) ->
-- asyncio.ThreadPoolExecutor(3); `with ... as e:` -> a to-be-closed
-- variable (shut down, waiting, at the end of the block); e.map(func,
-- range(10)) -> e:map(func, {0, ..., 9}), which also waits for the
-- results. func runs in the workers' Lua states, so it requires what it
-- uses; time.sleep -> lib/blocking.lua. print('---', num) from several
-- threads at once -> io.write of the whole line: print writes a line in
-- pieces, which the other threads' lines could split. Takes 4 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"

local function func(num)
  io.write("--- " .. num .. "\n")
  require("lib.blocking").sleep(1)
end

do
  local e <close> = asyncio.ThreadPoolExecutor(3)
  local range = {}
  for i = 0, 9 do range[#range + 1] = i end
  e:map(func, range)
end
