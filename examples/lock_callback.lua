-- lock_callback.lua: a lock acquired by main is released by a call_later
-- callback; two coroutines wait for it, one with the guard, one with
-- explicit acquire and release.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, program 19 (Lock).
-- Python -> Lua: `async with lock:` -> `local _ <close> = await(lock)` in
-- a do-block; `await lock.acquire()` then `try: ... finally:
-- lock.release()` -> await(lock:acquire()) and example.finally;
-- functools.partial(unlock, lock) -> call_later's extra argument.
-- Takes 0.1 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function unlock(lock)
  print("callback releasing lock")
  lock:release()
end

local coro1 = async(function(lock)
  print("coro1 waiting for the lock")
  do
    local _ <close> = await(lock)
    print("coro1 acquired lock")
  end
  print("coro1 released lock")
end)

local coro2 = async(function(lock)
  print("coro2 waiting for the lock")
  await(lock:acquire())
  local _ <close> = example.finally(function()
    print("coro2 released lock")
    lock:release()
  end)
  print("coro2 acquired lock")
end)

local main = async(function(loop)
  -- Create and acquire a shared lock.
  local lock = asyncio.Lock()
  print("acquiring the lock before starting coroutines")
  await(lock:acquire())
  print(string.format("lock acquired: %s", lock:locked()))
  -- Schedule a callback to unlock the lock.
  loop:call_later(0.1, unlock, lock)
  -- Run the coroutines that want to use the lock.
  print("waiting for coroutines")
  await(asyncio.wait({coro1(lock), coro2(lock)}))
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop))
end
