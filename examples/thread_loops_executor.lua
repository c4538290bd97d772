-- thread_loops_executor.lua: five threads each run an event loop of
-- their own, and all of them hand their blocking work to one shared
-- thread pool.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "在線程或進程池中執行代碼",
-- the program after "在多個線程中跑多個 event loop" (several loops in
-- several threads, one thread pool).
-- Python -> Lua: Python's threading.Thread(target=main, args=(i,)) runs a
-- plain function in a new OS thread; the closest thing here is an
-- executor worker (a plain OS thread with a Lua state of its own), so the
-- five threads are the workers of ThreadPoolExecutor(5):
-- `threads:submit(main, e, i)` starts one and `t:result()` joins it. The
-- shared pool e is sent to them by reference (Python's global). worker
-- and main require what they use in their own states; time.sleep ->
-- lib/blocking.lua, time.strftime('%X') -> os.date("%X"). The threads
-- print at the same time, so each line is one io.write (print writes a
-- line in pieces, which other threads' lines could split). Takes 1 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require "lib.blocking"
local asyncio = require "asyncio"

local e = asyncio.ThreadPoolExecutor()

local function worker(index)
  io.write(string.format("%d before: %s\n", index, os.date("%X")))
  require("lib.blocking").sleep(1)
  io.write(string.format("%d after: %s\n", index, os.date("%X")))
  return index
end

local function main(e, index, worker)
  local aio = require "asyncio"
  local loop = aio.new_event_loop()
  local res = loop:run_until_complete(loop:run_in_executor(e, worker, index))
  io.write(string.format("Thread %d got result %d\n", index, res))
  loop:close()
end

local threads = {}
local pool = asyncio.ThreadPoolExecutor(5)
for i = 0, 4 do
  local t = pool:submit(main, e, i, worker)
  threads[#threads + 1] = t
end
for _, t in ipairs(threads) do
  t:result()
end
