-- process_pool.lua: a pool of ten processes runs func(n) for n = 0..9;
-- func prints 0 to n-1, one number a second.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Pool" (a process pool);
-- no asyncio in it.
-- Python -> Lua: Pool(10) -> at most ten child processes at a time
-- (asyncio.Semaphore(10)), each this script run again with n as its
-- argument, which then runs func (a script run with no argument is the
-- main process); p.apply_async(func, args=(n,)) -> a task that takes a
-- place in the pool and runs such a child; p.close(); p.join() -> wait
-- for every task. The children write to the parent's standard output.
-- time.sleep -> lib/blocking.lua. Takes 9 s (LUAIO_EXAMPLE_FAST=1: the
-- children inherit it, a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function func(num)
  for n = 0, num - 1 do
    print(n)
    blocking.sleep(1)
  end
end

--- apply_async(pool, n): runs func(n) in a child process once the pool
-- has room.
local apply_async = async(function(pool, n)
  local _ <close> = await(pool)
  local p = await(asyncio.create_subprocess_exec(arg[-1], arg[0], n))
  await(p:wait())
end)

if arg[1] then
  func(tonumber(arg[1]))
else
  asyncio.run(async(function()
    local p = asyncio.Semaphore(10)
    local jobs = {}
    for n = 0, 9 do
      jobs[#jobs + 1] = asyncio.create_task(apply_async(p, n))
    end
    await(asyncio.gather(table.unpack(jobs)))
  end))
end
