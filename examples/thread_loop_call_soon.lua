-- thread_loop_call_soon.lua: a loop running in another thread, fed with
-- call_soon_threadsafe; the blocking calls run there one after another.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "不同線程的事件循環" (an
-- event loop in a different thread); the same program in seed 001
-- ("动态注册协程: 同步") and seed 004 ("動態添加協程: 同步方式").
-- Python -> Lua: `new_loop = asyncio.new_event_loop()` plus
-- `Thread(target=start_loop, args=(new_loop,)).start()` is one call,
-- asyncio.start_loop_thread(): a new OS thread with its own Lua state
-- running a new loop forever; it returns a reference to that loop.
-- more_work is sent there as bytecode, so it requires what it uses;
-- time.sleep -> lib/blocking.lua. Python's program never ends (its loop
-- thread runs forever); here the main thread stops the loop after the two
-- calls (stop is queued behind them) and joins the thread. Takes 9 s
-- (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local asyncio = require "asyncio"

local now = blocking.now

local function more_work(x)
  print(string.format("More work %s", x))
  require("lib.blocking").sleep(x)
  print(string.format("Finished more work %s", x))
end

local start = now()
local new_loop = asyncio.start_loop_thread()
print(string.format("TIME: %s", now() - start))

new_loop:call_soon_threadsafe(more_work, 6)
new_loop:call_soon_threadsafe(more_work, 3)

new_loop:stop()
new_loop:join()
