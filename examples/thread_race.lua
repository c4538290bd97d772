-- thread_race.lua: two threads each add one to a shared number a million
-- times, with nothing to keep them apart: an addition can be lost when
-- both threads read the same value and each writes it back plus one.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "编写一个资源抢占的多线程"
-- (threads racing for a resource); no asyncio in it.
-- Python -> Lua: the global num -> threading.Value(0) (lib/threading.lua:
-- threads here share no Lua values, so the number lives in a Channel
-- they share), `num += 1` -> num:set(num:get() + 1), a read then a
-- write, as Python's is. The threads are executor workers
-- (asyncio.ThreadPoolExecutor(2), the closest thing here to
-- threading.Thread): submit starts one, result() joins it. It prints at
-- most 2000000, less when additions were lost (CPython 3.10 and later
-- switch threads only between whole additions and print 2000000; the
-- tutorial's Python, like this, loses some).
-- luaio examples/thread_race.lua [N]: N additions per thread (the tutorial's
-- million by default).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local threading = require "lib.threading"
local asyncio = require "asyncio"

local N = math.tointeger(tonumber(arg[1])) or 1000000

local function func(num, n)
  for _ = 1, n do
    num:set(num:get() + 1)
  end
end

local num = threading.Value(0)

local threads = asyncio.ThreadPoolExecutor(2)
local t1 = threads:submit(func, num, N)
local t2 = threads:submit(func, num, N)

t1:result()
t2:result()
threads:shutdown()
print(num:get())
