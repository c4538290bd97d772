--- Shared helpers of the Lua workloads: the GC setting, the process's
-- resident memory, and the result line.
--
-- Each workload loads this file with dofile next to itself, so it runs
-- the same under build/luaio and under lua5.4 with the C module.
--
-- LUAIO_BENCH_GC selects the collector before the workload starts:
--   inc[,pause[,stepmul[,stepsize]]]   incremental (0 or empty = default)
--   gen[,minormul[,majormul]]          generational
-- Unset: whatever the host chose (the luaio CLI and lua5.4 both choose
-- generational).

local M = {}

local function params(spec)
  local out = {}
  for field in spec:gmatch("[^,]+") do
    out[#out + 1] = tonumber(field) or 0
  end
  return out
end

--- Applies LUAIO_BENCH_GC; returns the collector mode now in force.
function M.setup_gc()
  local spec = os.getenv("LUAIO_BENCH_GC")
  if spec and spec ~= "" then
    local mode, rest = spec:match("^(%a+),?(.*)$")
    local p = params(rest or "")
    if mode == "inc" then
      collectgarbage("incremental", p[1] or 0, p[2] or 0, p[3] or 0)
    elseif mode == "gen" then
      collectgarbage("generational", p[1] or 0, p[2] or 0)
    else
      error("LUAIO_BENCH_GC: expected inc[,...] or gen[,...], got " .. spec)
    end
  end
  -- asking for a mode returns the previous one; ask twice to restore it
  local mode = collectgarbage("incremental")
  collectgarbage(mode)
  return mode
end

--- The process's resident set size in bytes (VmRSS), or nil off Linux.
function M.rss()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local kb = text:match("VmRSS:%s*(%d+)%s*kB")
  return kb and tonumber(kb) * 1024
end

--- N from the first argument, or the default.
function M.count(default)
  local n = tonumber(arg and arg[1]) or default
  return math.tointeger(n) or error("N must be an integer")
end

--- The process's VmRSS and the Lua heap, in bytes, after a full
-- collection.
function M.memory()
  collectgarbage()
  collectgarbage()
  return M.rss(), collectgarbage("count") * 1024
end

--- The growth of VmRSS and of the Lua heap per item, over n items made
-- since bench.memory() gave rss0 and heap0, as the result line's fields
-- "bytes_per_<what>=... heap_per_<what>=...".
function M.memory_per(n, what, rss0, heap0)
  local rss1, heap1 = M.memory()
  return string.format("bytes_per_%s=%d heap_per_%s=%d", what,
                       (rss1 - rss0) // n, what, (heap1 - heap0) // n)
end

--- Prints the one result line: `<impl>/<name> N seconds ops_per_sec ...`
-- (impl defaults to luaio; the luv and cqueues twins name themselves).
function M.report(name, n, seconds, extra, impl)
  io.write(string.format("%s/%s %d %.4f %.0f%s\n", impl or "luaio", name,
                         n, seconds, n / seconds,
                         extra and " " .. extra or ""))
end

return M
