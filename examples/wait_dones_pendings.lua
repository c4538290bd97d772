-- wait_dones_pendings.lua: asyncio.wait returns the done and the pending
-- tasks; the script prints both sets, then the results.
-- Tutorial: seeds/004_d4f6bba75a86f4a7.txt, "進階例子" (a further example).
-- Python -> Lua: `print(dones, pendings)` prints two sets; here the
-- arrays are printed in Python's set notation ({...}, set() when empty).
-- Takes 4 s (LUAIO_EXAMPLE_FAST=1: no waiting).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local now = example.now

local function set_repr(list)
  if #list == 0 then return "set()" end
  local items = {}
  for i, v in ipairs(list) do items[i] = tostring(v) end
  return "{" .. table.concat(items, ", ") .. "}"
end

local do_some_work = async(function(x)
  print("waiting:", x)
  await(asyncio.sleep(x))
  return string.format("Done after %ss", x)
end)

local main = async(function(loop)
  local coroutine1 = do_some_work(1)
  local coroutine2 = do_some_work(2)
  local coroutine3 = do_some_work(4)
  local tasks = {
    asyncio.ensure_future(coroutine1),
    asyncio.ensure_future(coroutine2),
    asyncio.ensure_future(coroutine3),
  }
  local dones, pendings = await(asyncio.wait(tasks))
  print(set_repr(dones), set_repr(pendings))
  for _, task in ipairs(dones) do
    print("Task ret:", task:result())
  end
end)

local start = now()
local loop = example.loop()
loop:run_until_complete(main(loop))
print("Time:", now() - start)
