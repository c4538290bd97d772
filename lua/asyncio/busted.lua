--- asyncio.busted: run busted test bodies as asyncio tasks.
--
--   local aspec = require "asyncio.busted"
--   it("sleeps", aspec.async({clock = "virtual"}, function()
--     await(asyncio.sleep(10))
--   end))
--
-- Each body runs as a task on a fresh loop (virtual clock on request) that
-- is the current loop while it runs. The test fails when the body raises
-- (with the raising task's traceback; a failed assertion stays busted's
-- failure),
-- when a task is still pending at its end (such tasks are cancelled and
-- awaited first, so nothing leaks into the next test), when the loop's
-- exception handler was called (a callback error, a task exception nobody
-- retrieved), or when the closed loop still holds handles. A failed task
-- the test keeps (in an upvalue, a global) is reported on stderr when it
-- is collected, as it would be without busted.
local asyncio = require "asyncio"
local errors = require "asyncio.errors"
local check = require "asyncio.check"
local core = require "asyncio.core"

local M = {}

local function describe_reports(reports)
  local out = {}
  for i, ctx in ipairs(reports) do
    out[i] = errors.format_context(ctx)
  end
  return table.concat(out, "\n---\n")
end

--- Cancels the loop's pending tasks and runs it until they are done;
-- returns them.
local function finish_pending(loop)
  local left = asyncio.all_tasks(loop)
  if #left == 0 then return left end
  for _, t in ipairs(left) do t:cancel() end
  loop:run_until_complete(asyncio.wait(left))
  return left
end

--- Raises the body's error err as busted should see it, with the
-- traceback of the task that raised it (tb: kept for a string error): a
-- failed assertion or pending() stays busted's own object (a failure or
-- a pending test, not an error), a failure's message followed by the
-- traceback when it is a string; any other error becomes its text and
-- traceback.
local function raise_body_error(err, tb)
  if type(err) == "table" then
    tb = err.traceback
    local mt = getmetatable(err)
    local kind = type(mt) == "table" and rawget(mt, "__type") or nil
    if kind ~= nil then
      if kind == "failure" and tb and type(err.message) == "string" then
        err.message = err.message .. "\n" .. tostring(tb)
      end
      error(err, 0)
    end
  end
  if errors.iserror(err, errors.BaseExceptionGroup) then
    -- each of its exceptions with its traceback (a failed assertion in a
    -- TaskGroup's child too)
    error(errors.format_exception(err), 0)
  end
  if tb then error(tostring(err) .. "\n" .. tostring(tb), 0) end
  error(err, 0)
end

-- The options of async: new_event_loop's.
local OPTIONS = check.option_set({"clock", "debug"})

--- async([opts,] fn) -> a function for busted's `it`.
function M.async(opts, fn)
  if fn == nil then fn, opts = opts, nil end
  assert(type(fn) == "function", "asyncio.busted.async: function expected")
  check.options(opts, 1, "async", OPTIONS)
  return function(...)
    local loop = asyncio.new_event_loop(opts)
    asyncio.set_event_loop(loop)
    local reports = {}
    loop:set_exception_handler(function(_, ctx)
      reports[#reports + 1] = ctx
    end)
    local ok, err = pcall(loop.run_until_complete, loop,
                          asyncio.async(fn)(...))
    local tb = not ok and core._traceback_of(err) or nil
    local left = finish_pending(loop)
    collectgarbage()
    collectgarbage()
    local counts_before_close = loop:_counts()
    loop:close()
    require("asyncio.core")._unset_event_loop()
    collectgarbage()
    collectgarbage()
    -- what the test kept is reported when collected, after the test: on
    -- stderr, by the default handler, not into this finished list
    loop:set_exception_handler(nil)
    if not ok then raise_body_error(err, tb) end
    if #left > 0 then
      error(("%d task(s) still pending at the end of the test, first: %s")
            :format(#left, tostring(left[1])), 0)
    end
    if #reports > 0 then
      error("the loop's exception handler was called:\n" ..
            describe_reports(reports), 0)
    end
    local counts = loop:_counts()
    if counts.handles ~= 0 or counts.ready ~= 0 or counts.timers ~= 0 then
      error(("the closed loop still holds %d handle(s), %d ready "
             .. "callback(s), %d timer(s)"):format(counts.handles,
             counts.ready, counts.timers), 0)
    end
    return counts_before_close
  end
end

return M
