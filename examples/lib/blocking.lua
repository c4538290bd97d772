--- examples/lib/blocking.lua: blocking waits for the thread examples.
--
-- Python's time.sleep(s) blocks the calling OS thread; Lua has no such
-- function, so sleep(s) blocks on an empty Channel: ch:get(s) waits s
-- seconds and raises TimeoutError. A function sent to another thread
-- (a loop thread, an executor worker) requires this module there:
--
--   local function more_work(x)
--     require("lib.blocking").sleep(x)
--   end
--
-- The thread examples run on the real clock in every thread (a loop
-- thread's loop has no virtual clock), so with LUAIO_EXAMPLE_FAST=1 they
-- shrink time instead: a tutorial second lasts M.SCALE seconds. seconds()
-- converts a tutorial duration for asyncio.sleep, now() reads the real
-- clock in tutorial seconds, so the printed times read as in the tutorial.
local asyncio = require "asyncio"

local M = {}

M.fast = os.getenv("LUAIO_EXAMPLE_FAST") == "1"

--- Real seconds per tutorial second.
M.SCALE = M.fast and 0.05 or 1

--- seconds(s) -> the real duration of s tutorial seconds.
function M.seconds(s)
  return s * M.SCALE
end

--- sleep(s): time.sleep(s), blocking this OS thread for s tutorial
-- seconds.
function M.sleep(s)
  local idle = asyncio.Channel()
  local ok, err = pcall(idle.get, idle, M.seconds(s))
  if ok or not asyncio.iserror(err, asyncio.TimeoutError) then
    error(err or "blocking.sleep: the channel was not empty", 2)
  end
end

-- The clock: a loop that never runs, read for its monotonic time.
local clock

--- now() -> time.time() for measuring elapsed time: seconds in tutorial
-- units from an arbitrary origin (the same origin in every thread).
function M.now()
  if not clock then clock = asyncio.new_event_loop() end
  return clock:time() / M.SCALE
end

return M
