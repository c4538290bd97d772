-- thread_local.lua: two threads count a million each in a thread-local
-- value; the main thread's own value is untouched.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用ThreadLocal" (thread-local
-- data); no asyncio in it.
-- Python -> Lua: threading.local() -> nothing to make: each thread here
-- has a Lua state of its own, so a global set in one thread is that
-- thread's alone (`local.num` -> the global table data). The threads are
-- executor workers (asyncio.ThreadPoolExecutor(2), the closest thing here
-- to threading.Thread): submit starts one, result() joins it. fun goes to
-- the workers' states; print -> io.write of the whole line (print writes
-- a line in pieces, which the other thread's line could split).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local asyncio = require "asyncio"

local function fun(num)
  data = {num = num} -- this thread's own global
  for _ = 1, 1000000 do
    data.num = data.num + 1
  end
  io.write(("----- %d\n"):format(data.num))
end

local num = 0
local threads = asyncio.ThreadPoolExecutor(2)
local t1 = threads:submit(fun, num)
local t2 = threads:submit(fun, num)
t1:result()
t2:result()
threads:shutdown()
print("-----", num)
