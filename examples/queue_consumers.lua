-- queue_consumers.lua: a producer feeds two consumers through a Queue of
-- size 2, then puts one nil per consumer as its stop signal and waits
-- with join() until every item was marked done.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, section asyncio.Queue
-- (seeds/002_f7ad8b285a9c02a2.txt, program 22, queue_consumers_starting.lua,
-- is the same program printing "consumer n: starting" as its first line).
-- Python -> Lua: asyncio.Queue(maxsize=n) -> asyncio.Queue(n); None, the
-- stop signal, -> nil (a queue holds nil like any other value; it prints
-- as nil); `break` out of `while True` -> break out of `while true`.
-- Takes 0.06 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local consumer = async(function(n, q)
  print(string.format("consumer %d: waiting for item", n))
  while true do
    print(string.format("consumer %d: waiting for item", n))
    local item = await(q:get())
    print(string.format("consumer %d: has item %s", n, item))
    if item == nil then  -- nil is the signal to stop
      q:task_done()
      break
    else
      await(asyncio.sleep(0.01 * item))
      q:task_done()
    end
  end
  print(string.format("consumer %d: ending", n))
end)

local producer = async(function(q, num_workers)
  print("producer: starting")
  -- Add some numbers to the queue to simulate jobs; with a queue of two,
  -- the third put waits.
  for i = 0, num_workers * 3 - 1 do
    await(q:put(i))
    print(string.format("producer: added task %d to the queue", i))
  end
  -- One nil per consumer tells them to stop.
  print("producer: adding stop signals to the queue")
  for _ = 1, num_workers do
    await(q:put(nil))
  end
  print("producer: waiting for queue to empty")
  await(q:join())
  print("producer: ending")
end)

local main = async(function(loop, num_consumers)
  -- A bounded queue: the producer waits until consumers take items out.
  local q = asyncio.Queue(num_consumers)
  local tasks = {}
  for i = 0, num_consumers - 1 do
    tasks[#tasks + 1] = loop:create_task(consumer(i, q))
  end
  tasks[#tasks + 1] = loop:create_task(producer(q, num_consumers))
  await(asyncio.wait(tasks))
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop, 2))
end
