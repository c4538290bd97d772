-- gather_groups.lua: a gather of gathers: three groups built at the top
-- level, run as one future.
-- Tutorial: seeds/001_06256a0f1b3d8a40.txt, "传入loop的方法:
-- asyncio.gather". The tutorial leaves func undefined; here it prints its
-- arguments and returns them joined, and the script prints the results.
-- Python -> Lua: `asyncio.gather(*[func("A", i) for i in range(1, 3)])` ->
-- a loop filling an array, then asyncio.gather(table.unpack(array)).
-- gather made with no running loop binds to the current event loop, as in
-- Python.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local func = async(function(name, i)
  print(name, i)
  await(asyncio.sleep(0.1 * i))
  return name .. i
end)

local function group(name, last)
  local coros = {}
  for i = 1, last - 1 do coros[#coros + 1] = func(name, i) end
  return asyncio.gather(table.unpack(coros))
end

local function list_repr(list)
  local items = {}
  for i, v in ipairs(list) do
    items[i] = type(v) == "table" and list_repr(v) or example.repr(v)
  end
  return "[" .. table.concat(items, ", ") .. "]"
end

local loop = example.loop()

local group1 = group("A", 3)
local group2 = group("B", 5)
local group3 = group("B", 7)

local results = loop:run_until_complete(asyncio.gather(group1, group2, group3))
print(list_repr(results))
