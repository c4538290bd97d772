-- tools/alloc/files.lua: asyncio.fs under memory pressure: a small and a
-- large write (the large one writes the Lua string itself, anchored while
-- the request runs), reads, stat, a listing, a copy in the kernel (a
-- request holding two files), a link read and resolved, removal.
local h = dofile("tools/alloc/harness.lua")
local asyncio = require "asyncio"
local fs = require "asyncio.fs"
local await = asyncio.await

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir " .. dir .. " && ln -s nowhere " .. dir .. "/dang")

local ok, r = pcall(h.run, function()
  local path = dir .. "/f"
  local f = await(fs.open(path, "w"))
  await(f:write("head "))
  await(f:write(string.rep("x", 8192)))
  await(f:close())
  local st = await(fs.stat(path))
  local g = await(fs.open(path, "r"))
  local head = await(g:read(5))
  local rest = await(g:read("a"))
  await(g:close())
  await(fs.copyfile(path, dir .. "/copy"))
  local copied = await(fs.stat(dir .. "/copy")).size
  local target = await(fs.readlink(dir .. "/dang"))
  local real = await(fs.realpath(dir .. "/dang")):match("[^/]+$")
  local names = await(fs.listdir(dir))
  return head .. #rest .. ":" .. st.size .. ":" .. #names .. ":" .. copied
         .. ":" .. target .. ":" .. real
end)
for _, name in ipairs{"f", "copy", "dang"} do os.remove(dir .. "/" .. name) end
os.remove(dir)
if not ok then error(r, 0) end
h.check(r == "head 8192:8197:3:8197:nowhere:nowhere", "files: " .. tostring(r))
