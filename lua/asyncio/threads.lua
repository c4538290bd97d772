--- asyncio.threads: the Lua side of threads (the C side is in
-- bindings/threads/threads.c, cfuture.c, executor.c, channel.c and transfer.c).

local core = require "asyncio.core"
local check = require "asyncio.check"

local M = {}

--- to_thread(fn, ...): a coroutine that runs fn(...) in the running
-- loop's default executor and returns its results. fn and the arguments
-- are sent to a worker's Lua state (see transfer.c for what can be sent).
M.to_thread = core.async(function(fn, ...)
  check.callable(fn, 1, "to_thread")
  local loop = core.get_running_loop()
  return core.await(loop:run_in_executor(nil, fn, ...))
end)

return M
