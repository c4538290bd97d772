-- thread_lock.lua: two threads each add one to a shared number a million
-- times, each addition holding a lock: none is lost, the sum is 2000000.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Lock" (using a Lock),
-- the cure for thread_race.lua; no asyncio in it.
-- Python -> Lua: threading.Lock() -> threading.Lock() of
-- lib/threading.lua (a token in a Channel the threads share); `with
-- lock:` -> `local _ <close> = lock:acquire()`, released when the loop's
-- body ends; the global num -> threading.Value(0), `num += 1` ->
-- num:set(num:get() + 1). The threads are executor workers
-- (asyncio.ThreadPoolExecutor(2)): submit starts one, result() joins it.
-- luaio examples/thread_lock.lua [N]: N additions per thread (the tutorial's
-- million by default).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local threading = require "lib.threading"
local asyncio = require "asyncio"

local N = math.tointeger(tonumber(arg[1])) or 1000000

local function run1(num, lock, n)
  for _ = 1, n do
    local _ <close> = lock:acquire()
    num:set(num:get() + 1)
  end
end

local num = threading.Value(0)

local lock = threading.Lock()
local threads = asyncio.ThreadPoolExecutor(2)
local t1 = threads:submit(run1, num, lock, N)
local t2 = threads:submit(run1, num, lock, N)

t1:result()
t2:result()
threads:shutdown()
print(num:get())
