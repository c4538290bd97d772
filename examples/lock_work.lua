-- lock_work.lua: a Lock guards a shared list; the second task finds the
-- work already done once it gets the lock.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, section asyncio.lock.
-- Python -> Lua: `async with lock:` -> `local _ <close> = await(lock)` in
-- a do-block (released at its end, also by the `return` inside it);
-- `'x' in l` -> a loop over the list; asyncio.wait([one(), two()]) takes
-- the coroutine objects and runs them as tasks in list order.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local l = {}
local lock = asyncio.Lock()  -- the coroutines' lock

local function contains(list, value)
  for _, v in ipairs(list) do
    if v == value then return true end
  end
  return false
end

local work = async(function(name)
  print([[\\\\\\\\\\\\]], name)  -- shows where the lock starts to matter
  do
    local _ <close> = await(lock)
    print(string.format("%s start", name))
    if contains(l, "x") then
      return name
    end
    print("++++++++++", name)
    await(asyncio.sleep(0))  -- sleep(0) also switches coroutines
    print("----------", name)
    l[#l + 1] = "x"
    print(string.format("%s end", name))
    return name
  end
end)

local one = async(function()
  local name = await(work("one"))
  print(string.format("%s ok", name))
end)

local two = async(function()
  print("///////////")
  local name = await(work("two"))
  print(string.format("%s ok", name))
end)

local function main()
  local loop = example.loop()
  local tasks = asyncio.wait({one(), two()})
  loop:run_until_complete(tasks)
end

main()
