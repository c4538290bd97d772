--- asyncio.runners: Runner and asyncio.run, with Python 3.13's semantics.
--
--   do
--     local runner <close> = asyncio.Runner{clock = "virtual"}
--     runner:run(first())          -- one loop for several runs
--     runner:run(second())
--   end                            -- leftovers cancelled, loop closed
--
-- A Runner makes its loop on first use (run or get_loop) and sets it as
-- the current loop (unless the loop came from opts.loop_factory). Each
-- run(main) runs main as a task to its end; the first Ctrl-C meanwhile
-- cancels that task, and if it then ends cancelled run raises
-- KeyboardInterrupt. close() cancels the tasks still pending and waits for
-- them, shuts the default executor down and closes the loop.

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local check = require "asyncio.check"

local iserror = core.iserror
local RuntimeError, ValueError = errors.RuntimeError, errors.ValueError

local M = {}

--- Completes when every task of the list is done (their outcomes stay
-- in the tasks).
local function all_done(loop, tasks)
  local fut = loop:create_future()
  local left = #tasks
  local function one_done()
    left = left - 1
    if left == 0 then fut:set_result() end
  end
  for _, t in ipairs(tasks) do t:add_done_callback(one_done) end
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

--- main as a Coroutine object: itself, or the call of a coroutine
-- function or of a plain function (run as a coroutine). Anything else
-- raises ValueError at the caller's caller.
local function to_coroutine(main)
  if core.iscoroutine(main) then return main end
  local callable = type(main) == "function" or
    (type(main) == "table" and (getmetatable(main) or {}).__call)
  if callable then
    return (core.iscoroutinefunction(main) and main or core.async(main))()
  end
  error(ValueError("a coroutine was expected, got " .. core.repr(main)), 3)
end

local Runner = {}
Runner.__index = Runner
Runner.__name = "asyncio.Runner"

-- States, named as Python names them.
local CREATED, INITIALIZED, CLOSED = "created", "initialized", "closed"

local function check_open(self)
  if self._state == CLOSED then
    error(RuntimeError("Runner is closed"), 3)
  end
end

local function lazy_init(self)
  check_open(self)
  if self._loop then return self._loop end
  local opts = self._opts
  if opts.loop_factory then
    self._loop = opts.loop_factory()
  else
    self._loop = core.new_event_loop{clock = opts.clock, debug = opts.debug}
    core.set_event_loop(self._loop)
    self._set_loop = true
  end
  self._state = INITIALIZED
  return self._loop
end

-- The options of Runner and run: new_event_loop's, and loop_factory.
local RUNNER_OPTIONS = check.option_set({"clock", "debug", "loop_factory"})

--- Runner([opts]): opts as new_event_loop's ({clock =, debug =}), plus
-- loop_factory, a function returning the loop to use. The options are
-- copied: changing the table afterwards changes nothing.
function M.Runner(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(errors.TypeError("Runner: 'opts' must be a table, got " ..
                           type(opts)), 2)
  end
  check.options(opts, 1, "Runner", RUNNER_OPTIONS)
  opts = opts or {}
  return setmetatable({_opts = {clock = opts.clock, debug = opts.debug,
                                loop_factory = opts.loop_factory},
                       _state = CREATED}, Runner)
end

--- runner:get_loop(): the runner's loop, made on first use.
function Runner:get_loop()
  check.self(self, Runner, "get_loop")
  return lazy_init(self)
end

local function finish(task, interrupts, ok, ...)
  if ok then return ... end
  local e = ...
  if interrupts > 0 and iserror(e, errors.CancelledError) and
     task:uncancel() == 0 then
    error(errors.KeyboardInterrupt(), 0)
  end
  error(e, 0)
end

--- runner:run(main): runs main (a Coroutine object, a coroutine function
-- or a plain function) as a task on the runner's loop; returns its values
-- or raises its error.
function Runner:run(main)
  check.self(self, Runner, "run")
  check_open(self)
  if core._get_running_loop() ~= nil then
    error(RuntimeError(
      "Runner.run() cannot be called from a running event loop"), 2)
  end
  local coro = to_coroutine(main)
  local loop = lazy_init(self)
  local task = loop:create_task(coro)
  loop:_set_interrupt_task(task)
  local function interrupts(...)
    return loop:_set_interrupt_task(nil), ...
  end
  return finish(task, interrupts(pcall(loop.run_until_complete, loop, task)))
end

--- runner:close(): cancels what is left, shuts the default executor
-- down, closes the loop (and unsets it). A second close does nothing,
-- and so does closing a runner that never made its loop: as Python's,
-- it can still run afterwards.
function Runner:close()
  check.self(self, Runner, "close")
  if self._state ~= INITIALIZED then return end
  local loop = self._loop
  self._state = CLOSED
  -- a KeyboardInterrupt during the shutdown leaves the rest of it undone;
  -- the loop is closed anyway
  pcall(cancel_all_tasks, loop)
  pcall(loop.shutdown_default_executor, loop)
  if self._set_loop then core._unset_event_loop() end
  loop:close()
  self._loop = nil
end

Runner.__close = Runner.close

function Runner:__tostring()
  return ("<asyncio.Runner %s>"):format(self._state)
end

--- run(main [, opts]): main run by a fresh Runner, which is then closed;
-- opts as Runner's.
function M.run(main, opts)
  if type(opts) == "table" then
    check.options(opts, 2, "run", RUNNER_OPTIONS)
  end
  if core._get_running_loop() ~= nil then
    error(RuntimeError(
      "asyncio.run() cannot be called from a running event loop"), 2)
  end
  local runner <close> = M.Runner(opts)
  return runner:run(main)
end

return M
