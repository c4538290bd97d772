--- examples/lib/example.lua: what the translated tutorial examples share.
--
-- An example finds this file from its own location:
--
--   package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;"
--     .. package.path
--   local example = require "lib.example"
--
-- example.loop() stands in for asyncio.get_event_loop(). With the
-- environment variable LUAIO_EXAMPLE_FAST=1 it instead makes a loop on the
-- virtual clock (time starts at 0 and jumps to the next timer when idle)
-- and sets it as the current loop, so a tutorial that sleeps for seconds
-- prints the same lines at once. Every call returns the same loop.
local asyncio = require "asyncio"

local M = {}

M.fast = os.getenv("LUAIO_EXAMPLE_FAST") == "1"

local virtual  -- the virtual-clock loop, made on first use in fast mode

--- loop() -> the current event loop (virtual clock in fast mode).
function M.loop()
  if not M.fast then return asyncio.get_event_loop() end
  if not virtual then
    virtual = asyncio.new_event_loop{clock = "virtual"}
    asyncio.set_event_loop(virtual)
  end
  return virtual
end

--- now() -> seconds, a float: Python's time.time() for measuring elapsed
-- time, read from the loop's clock (virtual in fast mode).
function M.now()
  return M.loop():time()
end

--- repr(v) -> Python's repr() of v: strings in single quotes, everything
-- else as tostring() shows it (so None appears as nil).
function M.repr(v)
  if type(v) ~= "string" then return tostring(v) end
  local body = v:gsub("[\\'\n]", {
    ["\\"] = "\\\\", ["'"] = "\\'", ["\n"] = "\\n",
  })
  return "'" .. body .. "'"
end

--- finally(fn) -> a value for a to-be-closed variable that calls fn() when
-- its scope ends, normally or by an error: Python's `try: ... finally:`.
--
--   do
--     local _ <close> = example.finally(function() loop:close() end)
--     ...   -- the try block
--   end
local closer = {__close = function(self) self.fn() end}
function M.finally(fn)
  return setmetatable({fn = fn}, closer)
end

return M
