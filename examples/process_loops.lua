-- process_loops.lua: a hundred names shared out to ten processes, ten
-- each; every process runs its own event loop, where a coroutine per name
-- prints a greeting with the process id, sleeps a second and says goodbye.
-- Tutorial: seeds/003_8e0f6095b614971a.txt, "3. 多进程+asyncio" (several
-- processes, an asyncio loop in each).
-- Python -> Lua: multiprocessing.Process(target=process_start, args=lst)
-- -> asyncio.create_subprocess_exec running this script again with the
-- names as arguments (`if __name__ == '__main__'` -> "no arguments"); the
-- children write to the parent's standard output. os.getpid() -> read from
-- /proc/self/stat (Linux); threading.current_thread() -> the Lua state's
-- main thread, coroutine.running() at the top of the script (the same in
-- every line of a process). Python's parent waits for its children when
-- it exits; here it waits for them explicitly. Takes 1 s
-- (LUAIO_EXAMPLE_FAST=1: the children inherit it, no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local main_thread = coroutine.running()

local function getpid()
  local stat <close> = assert(io.open("/proc/self/stat"))
  return stat:read("n")
end

local hello = async(function(name)
  print(("hello %s %d**********%s"):format(name, getpid(), main_thread))
  await(asyncio.sleep(1))
  print(("end:%s  %d"):format(name, getpid()))
end)

--- Runs in a child process: a task per name, on this process's loop.
local function process_start(...)
  local tasks = {}
  local loop = example.loop()
  for _, name in ipairs{...} do
    tasks[#tasks + 1] = asyncio.ensure_future(hello(name))
  end
  loop:run_until_complete(asyncio.wait(tasks))
end

--- Starts a process for every ten names, taken from the end of the list.
local function task_start(namelist)
  local loop = asyncio.get_event_loop()
  local processes = {}
  local i, lst, flag = 0, {}, 10
  while #namelist > 0 do
    i = i + 1
    lst[#lst + 1] = table.remove(namelist)
    if i == flag then
      processes[#processes + 1] = loop:run_until_complete(
        asyncio.create_subprocess_exec(arg[-1], arg[0], table.unpack(lst)))
      lst, i = {}, 0
    end
  end
  return processes
end

if #arg > 0 then
  process_start(...)
else
  -- test: several processes, one loop each
  local namelist = {}
  for _ = 1, 10 do
    for c in ("0123456789"):gmatch(".") do namelist[#namelist + 1] = c end
  end
  local items = {}
  for i, name in ipairs(namelist) do items[i] = example.repr(name) end
  print("[" .. table.concat(items, ", ") .. "]")
  local loop = asyncio.get_event_loop()
  for _, p in ipairs(task_start(namelist)) do
    loop:run_until_complete(p:wait())
  end
  loop:close()
end
