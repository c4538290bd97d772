-- thread_rlock.lua: a thread takes a reentrant lock, and again while it
-- holds it, ten thousand times: it counts, then prints the count.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用RLock" (a reentrant
-- lock); no asyncio in it.
-- Python -> Lua: threading.RLock() -> threading.RLock() of
-- lib/threading.lua; `with lock:` -> `local _ <close> = lock:acquire()`
-- in a do-block; the global num -> threading.Value(0), `num += 1` ->
-- num:set(num:get() + 1). Thread(target=fun).start() -> an executor
-- worker (asyncio.ThreadPoolExecutor(1)) given fun; Python's program
-- ends when that thread does: here the main thread waits for it.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local threading = require "lib.threading"
local asyncio = require "asyncio"

local function fun(num, lock)
  for _ = 1, 10000 do
    local _ <close> = lock:acquire()
    num:set(num:get() + 1)
    do
      local _ <close> = lock:acquire()
      print(num:get())
    end
  end
end

local lock = threading.RLock()
local num = threading.Value(0)

local threads = asyncio.ThreadPoolExecutor(1)
threads:submit(fun, num, lock)
threads:shutdown()
