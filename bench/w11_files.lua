--- w11 files: copies an N MiB file (made at run time in /tmp with a
-- non-zero pattern, deleted after) through asyncio.fs, 1 MiB reads and
-- writes, while a second task ticks every millisecond and records the
-- longest gap between two of its ticks: the loop must never stall on the
-- disk. ops_per_sec is MiB/s; worst_gap_ms= is the longest gap (the 1 ms
-- sleep included), ticks= their number, idle_gap_ms= the longest gap of
-- the same ticker during half a second before the copy, with nothing
-- else running (the machine's own scheduling jitter, for comparison).
-- With --copyfile the copy is one fs.copyfile (uv_fs_sendfile requests:
-- copy_file_range or sendfile in the kernel) instead of the read/write
-- loop.
--
--   luaio bench/w11_files.lua [N] [--copyfile]     (N defaults to 1024)

local bench = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local asyncio = require "asyncio"
local fs = require "asyncio.fs"
local async, await = asyncio.async, asyncio.await

local N = bench.count(1024)
local COPYFILE = arg[2] == "--copyfile"
local MiB = 1048576
local gc = bench.setup_gc()

local src = os.tmpname()
local dst = src .. ".copy"

-- the source, outside the measurement: N MiB of a non-zero pattern
do
  local block = {}
  for i = 1, MiB // 64 do
    block[i] = string.format("%063d\n", i)
  end
  block = table.concat(block)
  local f = assert(io.open(src, "wb"))
  for _ = 1, N do f:write(block) end
  f:close()
end

local main = async(function()
  local running, ticks, worst = true, 0, 0
  local loop = asyncio.get_running_loop()
  local ticker = asyncio.create_task(async(function()
    local last = loop:time()
    while running do
      await(asyncio.sleep(0.001))
      local now = loop:time()
      if now - last > worst then worst = now - last end
      last = now
      ticks = ticks + 1
    end
  end)())
  -- the same ticker with nothing else to do: the machine's own jitter
  await(asyncio.sleep(0.5))
  local idle = worst
  worst = 0
  local t0, c0 = loop:time(), os.clock()
  if COPYFILE then
    await(fs.copyfile(src, dst))
  else
    local from <close> = await(fs.open(src, "rb"))
    local to <close> = await(fs.open(dst, "wb"))
    while true do
      local chunk = await(from:read(MiB))
      if chunk == nil then break end
      await(to:write(chunk))
    end
    await(to:close())
  end
  local seconds, cpu = loop:time() - t0, os.clock() - c0
  running = false
  await(ticker)
  local size = await(fs.stat(dst)).size
  assert(size == N * MiB, "copy has " .. size .. " bytes")
  await(fs.unlink(dst))
  return seconds, cpu, worst, ticks, idle
end)

local ok, seconds, cpu, worst, ticks, idle = pcall(asyncio.run, main())
os.remove(src)
os.remove(dst)
if not ok then error(seconds, 0) end
bench.report(COPYFILE and "w11_copyfile" or "w11_files", N, seconds,
             string.format("worst_gap_ms=%.2f idle_gap_ms=%.2f ticks=%d "
                           .. "cpu=%.3f gc=%s", worst * 1000, idle * 1000,
                           ticks, cpu, gc))
