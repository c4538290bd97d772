-- process_queue.lua: a writer puts a number a second on a queue, a reader
-- prints what it gets; after five seconds the main program ends both.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "使用Queue" (a queue between
-- processes); no asyncio in it.
-- Python -> Lua: the two processes -> two executor workers
-- (asyncio.ThreadPoolExecutor(2)): each runs in a Lua state of its own
-- and shares nothing with the others, as a process would; the
-- multiprocessing Queue -> an asyncio.Channel, shared by reference.
-- terminate() -> closing the channel: both end at their next put or get
-- (the reader first prints what is still queued), and the main thread
-- waits for that before it prints. time.sleep -> lib/blocking.lua.
-- Takes 5 s (LUAIO_EXAMPLE_FAST=1: a tutorial second lasts 50 ms).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local blocking = require "lib.blocking"
local asyncio = require "asyncio"

local function read(q)
  local sleep = require("lib.blocking").sleep
  while true do
    local ok, res = pcall(q.get, q)
    if not ok then return end -- closed: terminated
    print(res)
    sleep(1)
  end
end

local function write(q)
  local sleep = require("lib.blocking").sleep
  local num = 0
  while true do
    num = num + 1
    if not pcall(q.put, q, num) then return end -- closed: terminated
    sleep(1)
  end
end

local q = asyncio.Channel()
local processes = asyncio.ThreadPoolExecutor(2)
local w = processes:submit(write, q)
local r = processes:submit(read, q)
blocking.sleep(5)
-- terminate both
q:close()
w:result()
r:result()
processes:shutdown()
print("强制结束")
