-- thread_loop_coroutine.lua: coroutines submitted to a loop running in
-- another thread with run_coroutine_threadsafe; there they overlap, so
-- 6 s and 4 s of sleeping take about 6 s in all.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "新線程協程" (coroutines in
-- a new thread); the same program in seed 004 ("動態添加協程: 異步方式").
-- Python -> Lua: the loop thread as in thread_loop_call_soon.lua
-- (asyncio.start_loop_thread() for new_event_loop + Thread(start_loop)).
-- The coroutine object is sent to the loop's thread, so do_some_work
-- requires what it uses there. Python's program never ends; here the main
-- thread waits for both results (future.result()), then stops the loop
-- and joins its thread. Takes 6 s (LUAIO_EXAMPLE_FAST=1: a tutorial
-- second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local asyncio = require "asyncio"
local async = asyncio.async

local now = blocking.now

local do_some_work = async(function(x)
  local aio = require "asyncio"
  print(string.format("Waiting %s", x))
  aio.await(aio.sleep(require("lib.blocking").seconds(x)))
  print(string.format("Done after %ss", x))
end)

local start = now()
local new_loop = asyncio.start_loop_thread()
print(string.format("TIME: %s", now() - start))

local f1 = asyncio.run_coroutine_threadsafe(do_some_work(6), new_loop)
local f2 = asyncio.run_coroutine_threadsafe(do_some_work(4), new_loop)

f1:result()
f2:result()
new_loop:stop()
new_loop:join()
