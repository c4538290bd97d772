--- asyncio: Python's asyncio for Lua 5.4, on libuv.
--
-- This facade gathers the C core (asyncio.core: loop, Future, Task,
-- await, sleep, ...), the error classes (asyncio.errors) and the parts
-- written in Lua (asyncio.run, asyncio.pcall, and the modules listed in
-- `parts` below), into one table.

local core = require "asyncio.core"
local errors = require "asyncio.errors"

local M = {}

for k, v in pairs(core) do
  if type(k) == "string" and k:sub(1, 1) ~= "_" then M[k] = v end
end
for k, v in pairs(errors) do
  if type(v) == "table" and rawget(v, "__is") then M[k] = v end
end

local iserror, Exception = core.iserror, errors.Exception
local async, iscoroutine = core.async, core.iscoroutine

--- pcall(fn, ...): Python's `except Exception`. Returns true and fn's
-- results, or false and the error for ordinary errors; a CancelledError,
-- KeyboardInterrupt or any other BaseException-only error propagates.
local function add_traceback(e)
  if iserror(e, Exception) and rawget(e, "traceback") == nil then
    e.traceback = debug.traceback(nil, 2)
  end
  return e
end

local function pass(ok, ...)
  if not ok then
    local e = ...
    if iserror(e) and not iserror(e, Exception) then error(e, 0) end
  end
  return ok, ...
end

function M.pcall(fn, ...)
  return pass(xpcall(fn, add_traceback, ...))
end

--- Completes when every task of the list is done (their outcomes stay
-- in the tasks).
local function all_done(loop, tasks)
  local fut = loop:create_future()
  local left = #tasks
  local function one_done()
    left = left - 1
    if left == 0 and not fut:done() then fut:set_result() end
  end
  for _, t in ipairs(tasks) do t:add_done_callback(one_done) end
  if left == 0 then fut:set_result() end
  return fut
end

local function cancel_all_tasks(loop)
  local tasks = core.all_tasks(loop)
  if #tasks == 0 then return end
  for _, t in ipairs(tasks) do t:cancel() end
  loop:run_until_complete(all_done(loop, tasks))
  for _, t in ipairs(tasks) do
    if not t:cancelled() and t:exception() ~= nil then
      loop:call_exception_handler{
        message = "unhandled exception during asyncio.run() shutdown",
        exception = t:exception(), task = t}
    end
  end
end

local function to_coroutine(main)
  if iscoroutine(main) then return main end
  local callable = type(main) == "function" or
    (type(main) == "table" and (getmetatable(main) or {}).__call)
  if callable then
    return (core.iscoroutinefunction(main) and main or async(main))()
  end
  error(errors.ValueError("a coroutine was expected, got " ..
                          core.repr(main)), 3)
end

--- run(main [, {debug =, clock =}]): runs main (a Coroutine object, a
-- coroutine function or a plain function run as a task) on a new loop,
-- then cancels what is left, shuts the default executor down, closes the
-- loop and unsets it. Returns main's values or raises its error. The
-- first Ctrl-C cancels main; if main then ends cancelled, KeyboardInterrupt
-- is raised.
function M.run(main, opts)
  if core._get_running_loop() ~= nil then
    error(errors.RuntimeError(
      "asyncio.run() cannot be called from a running event loop"), 2)
  end
  local coro = to_coroutine(main)
  local loop = core.new_event_loop(opts)
  local made, task = pcall(loop.create_task, loop, coro)
  if not made then
    loop:close()
    error(task, 2)
  end
  core.set_event_loop(loop)
  loop:_set_interrupt_task(task)
  local res = table.pack(pcall(loop.run_until_complete, loop, task))
  local interrupts = loop:_set_interrupt_task(nil)
  -- a KeyboardInterrupt during the shutdown leaves the rest of it undone;
  -- the loop is closed anyway
  pcall(cancel_all_tasks, loop)
  pcall(loop.shutdown_default_executor, loop)
  core.set_event_loop(nil)
  loop:close()
  if not res[1] then
    local e = res[2]
    if interrupts > 0 and iserror(e, errors.CancelledError) and
       task:uncancel() == 0 then
      error(errors.KeyboardInterrupt(), 0)
    end
    error(e, 0)
  end
  return table.unpack(res, 2, res.n)
end

--- Parts of the API written in Lua; each returns a table merged here.
for _, name in ipairs{"combinators", "taskgroup", "timeouts", "locks",
                      "threads", "streams", "subprocess"} do
  for k, v in pairs(require("asyncio." .. name)) do M[k] = v end
end

M._core = core
return M
