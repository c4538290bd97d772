--- w6 threadsafe on a Lua peer: another OS thread posts N callbacks to
-- the loop's thread, which runs each one, counts them and checks their
-- sum (as bench/w6_threadsafe.lua and bench/py/w6_threadsafe.py).
--   lua5.4 bench/peers/w6_threadsafe.lua [N] [luv|cqueues]
--
-- Neither library has a thread-safe call queue, so each twin carries the
-- posts the way a user of that library would, one record per post:
--  luv      uv.new_thread; the thread writes each post as a 4-byte record
--           with one uv.fs_write to a pipe (uv.pipe), and the loop reads
--           the pipe (a uv pipe handle) and runs the callback per record.
--           uv.new_async is not usable for this: libuv coalesces sends
--           made before the loop wakes, and luv keeps one argument slot
--           per async handle, so posts (and their arguments) are lost.
--  cqueues  cqueues.thread.start; the thread writes each record to the
--           socket pair it is given (unbuffered: one send per post), a
--           task of the controller reads them and runs the callback.
-- The thread is started before the clock and waits for a go byte.
local here = arg[0]:match("^(.*/)") or "./"
local bench = dofile(here .. "../common.lua")
local which = arg[2] or "luv"
local S = dofile(here .. which .. ".lua")
local N = bench.count(200000)

local count, sum = 0, 0
local done = S.future()
local function on(i)
  count = count + 1
  sum = sum + i
  if count == N then S.set_result(done, true) end
end

local unpack = string.unpack

-- luv: the poster thread and the pipe reader; returns the go function
-- and the join function.
local function start_luv()
  local uv = S.uv
  local data, go = uv.pipe(), uv.pipe()
  local thread = uv.new_thread(function(wfd, gofd, n)
    local uv = require "luv"
    -- numbers reach the thread as floats
    wfd, gofd, n = math.tointeger(wfd), math.tointeger(gofd),
      math.tointeger(n)
    uv.fs_read(gofd, 1, -1)
    local pack = string.pack
    for i = 1, n do
      assert(uv.fs_write(wfd, pack("<I4", i), -1) == 4)
    end
  end, data.write, go.read, N)
  local pipe = uv.new_pipe()
  pipe:open(data.read)
  local rest = ""
  pipe:read_start(function(err, chunk)
    assert(not err, err)
    if not chunk then return end
    if #rest > 0 then chunk, rest = rest .. chunk, "" end
    local len, pos = #chunk, 1
    while pos + 3 <= len do
      on((unpack("<I4", chunk, pos)))
      pos = pos + 4
    end
    if pos <= len then rest = chunk:sub(pos) end
  end)
  -- (the pipe is closed after S.run, outside any task: luv 1.44 crashes
  -- running a close callback of a handle closed from a coroutine)
  return function() uv.fs_write(go.write, "g", -1) end, function()
    thread:join()
    pipe:read_stop()
    uv.fs_close(data.write)
    uv.fs_close(go.read)
    uv.fs_close(go.write)
    return function() pipe:close(); uv.run() end
  end
end

-- cqueues: the poster thread and a reader task; same returns.
local function start_cqueues()
  local thread = require "cqueues.thread"
  local thr, con = assert(thread.start(function(con, n)
    n = tonumber(n)
    con:setmode("bn", "bn")
    assert(con:read(1) == "g")
    local pack = string.pack
    for i = 1, n do assert(con:write(pack("<I4", i))) end
    con:flush()
  end, N))
  con:setmode("bn", "bn")
  S.spawn(function()
    for _ = 1, N do
      local rec = assert(con:read(4), "w6_threadsafe: the poster stopped")
      on((unpack("<I4", rec)))
    end
  end)
  return function() assert(con:write("g")); con:flush() end, function()
    assert(thr:join())
    con:close()
  end
end

local cleanup
S.run(function()
  local go, join
  if which == "luv" then go, join = start_luv()
  else go, join = start_cqueues() end
  local t0 = S.now()
  go()
  S.await(done)
  local seconds = S.now() - t0
  cleanup = join()
  if count ~= N or sum ~= N * (N + 1) // 2 then
    error(string.format("w6_threadsafe: %d calls, sum %d; expected %d, %d",
                        count, sum, N, N * (N + 1) // 2))
  end
  bench.report("w6_threadsafe", N, seconds, nil, S.name)
end)
if cleanup then cleanup() end
