-- queue_consumers_starting.lua: a producer feeds two consumers through a
-- Queue of size 2, then puts one nil per consumer as its stop signal and
-- waits with join() until every item was marked done.
-- Tutorial: seeds/002_f7ad8b285a9c02a2.txt, program 22 (Queue): the
-- program of queue_consumers.lua (seed 001), whose consumers print
-- "consumer n: starting" first.
-- Python -> Lua: asyncio.Queue(maxsize=n) -> asyncio.Queue(n); None, the
-- stop signal, -> nil (a queue holds nil like any other value; it prints
-- as nil); `break` out of `while True` -> break out of `while true`.
-- Takes 0.06 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local consumer = async(function(n, q)
  print(string.format("consumer %d: starting", n))
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
  -- Add some numbers to the queue to simulate jobs
  for i = 0, num_workers * 3 - 1 do
    await(q:put(i))
    print(string.format("producer: added task %d to the queue", i))
  end
  -- Add nil entries in the queue to signal the consumers to exit
  print("producer: adding stop signals to the queue")
  for _ = 1, num_workers do
    await(q:put(nil))
  end
  print("producer: waiting for queue to empty")
  await(q:join())
  print("producer: ending")
end)

local main = async(function(loop, num_consumers)
  -- Create the queue with a fixed size so the producer will block until
  -- the consumers pull some items out.
  local q = asyncio.Queue(num_consumers)
  -- Schedule the consumer tasks.
  local tasks = {}
  for i = 0, num_consumers - 1 do
    tasks[#tasks + 1] = loop:create_task(consumer(i, q))
  end
  -- Schedule the producer task.
  tasks[#tasks + 1] = loop:create_task(producer(q, num_consumers))
  -- Wait for all of the coroutines to finish.
  await(asyncio.wait(tasks))
end)

local event_loop = example.loop()
do
  local _ <close> = example.finally(function() event_loop:close() end)
  event_loop:run_until_complete(main(event_loop, 2))
end
