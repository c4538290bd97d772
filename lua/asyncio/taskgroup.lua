--- asyncio.taskgroup: TaskGroup, structured concurrency with Python
-- 3.13's semantics.
--
--   do
--     local tg <close> = asyncio.TaskGroup()  -- async with TaskGroup() as tg:
--     tg:create_task(work(1))
--     tg:create_task(work(2))
--   end                                       -- waits for both here
--
-- A group is entered when it is made inside a task; one made elsewhere is
-- entered later by `local tg <close> = await(tg)` inside a task. Leaving
-- the scope waits for every child. The first child failure cancels the
-- other children and the body (the enclosing task); once all children
-- are done the scope raises an ExceptionGroup whose `.exceptions` lists
-- every child error (and the body's, if it failed). KeyboardInterrupt and
-- SystemExit are raised bare. A cancellation from outside the group is
-- never swallowed, and the parent's cancelling() count is restored.

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local check = require "asyncio.check"

local iserror = core.iserror
local CancelledError, RuntimeError = errors.CancelledError,
  errors.RuntimeError
local Exception = errors.Exception

local M = {}

local TaskGroup = {}
TaskGroup.__index = TaskGroup
TaskGroup.__name = "asyncio.TaskGroup"

function TaskGroup:__tostring()
  local info = {""}
  if self._ntasks > 0 then info[#info + 1] = "tasks=" .. self._ntasks end
  if self._errors and #self._errors > 0 then
    info[#info + 1] = "errors=" .. #self._errors
  end
  if self._aborting then
    info[#info + 1] = "cancelling"
  elseif self._entered then
    info[#info + 1] = "entered"
  end
  return "<TaskGroup" .. table.concat(info, " ") .. ">"
end

local function is_base_error(e)
  return iserror(e, errors.KeyboardInterrupt) or
         iserror(e, errors.SystemExit)
end

--- An error that `except Exception` would catch: any value that is not
-- a BaseException-only error object.
local function is_exception(e)
  return not iserror(e) or iserror(e, Exception)
end

--- Cancels every child not yet done.
local function abort(self)
  self._aborting = true
  for t in pairs(self._tasks) do
    if not t:done() then t:cancel() end
  end
end

local function on_task_done(self, task)
  self._tasks[task] = nil
  self._ntasks = self._ntasks - 1
  local waiter = self._on_completed
  if waiter ~= nil and self._ntasks == 0 and not waiter:done() then
    waiter:set_result(true)
  end
  if task:cancelled() then return end
  local exc = task:exception()
  if exc == nil then return end
  local errs = self._errors
  errs[#errs + 1] = exc
  if type(exc) ~= "table" then -- a string keeps no traceback of its own
    self._tracebacks[#errs] = core._failure_traceback(task)
  end
  if is_base_error(exc) and self._base_error == nil then
    self._base_error = exc
  end
  local parent = self._parent_task
  if parent:done() then
    self._loop:call_exception_handler{
      message = ("Task %s has errored out but its parent task %s is "
                 .. "already completed"):format(tostring(task),
                                                tostring(parent)),
      exception = exc, task = task}
    return
  end
  if not self._aborting and not self._parent_cancel_requested then
    -- Interrupt the body: the parent is cancelled now and "uncancelled"
    -- when the scope is left, so the cancellation does not leak out.
    abort(self)
    self._parent_cancel_requested = true
    parent:cancel()
  end
end

--- The running loop and the task running the caller (nil, nil outside
-- a loop; loop, nil in a callback).
local function running_task()
  local loop = core._get_running_loop()
  return loop, loop and core.current_task(loop)
end

--- The error the scope raises for the collected child errors; its
-- `tracebacks` holds those of its string errors, by index (see
-- errors.format_exception).
local function make_group(errs, tracebacks)
  local cls = errors.ExceptionGroup
  for i = 1, #errs do
    if not is_exception(errs[i]) then cls = errors.BaseExceptionGroup end
  end
  local group = cls("unhandled errors in a TaskGroup", errs)
  if next(tracebacks) ~= nil then group.tracebacks = tracebacks end
  return group
end

--- Enters the group in `task` (its parent), running on `loop`. Until
-- the group is exited, the parent's end reports it (never_exited).
local function enter_in(self, loop, task)
  self._loop = loop
  self._parent_task = task
  self._entered = true
  task:add_done_callback(self._on_parent_done)
end

--- Lets go of what an exited group no longer needs.
local function release(self)
  self._parent_task, self._errors, self._base_error = nil, nil, nil
  self._tracebacks = nil
end

--- The parent task ended and the group was never exited: it was not
-- held in a <close> variable (Lua has no `async with` to forget). Its
-- children were never waited for and their errors would be lost: the
-- exception handler gets them, as an ExceptionGroup.
local function never_exited(self, parent)
  if self._exited then return end
  self._exited = true
  local errs = self._errors
  self._loop:call_exception_handler{
    message = ("TaskGroup %s was never exited: hold it in a <close> "
               .. "variable"):format(tostring(self)),
    exception = #errs > 0 and make_group(errs, self._tracebacks) or nil,
    task = parent}
  release(self)
end

--- Enters the group in the running task. Raises RuntimeError when
-- entered before or when not called from a task.
local function enter(self)
  if self._entered then
    error(RuntimeError(("TaskGroup %s has already been entered")
                       :format(tostring(self))), 3)
  end
  local loop, task = running_task()
  if task == nil then
    error(RuntimeError(("TaskGroup %s cannot determine the parent task")
                       :format(tostring(self))), 3)
  end
  enter_in(self, loop, task)
end

local identity = core.async(function(v) return v end)

--- await(tg) enters a group that was made outside a task and returns it.
function TaskGroup:__await()
  enter(self)
  return identity(self)
end

local function dispose(coro)
  if core.iscoroutine(coro) then coro:close() end
end

-- The options of create_task: loop:create_task's.
local CREATE_TASK_OPTIONS = check.option_set({"name"})

--- tg:create_task(coro [, {name =}]) -> the new Task, a child of the
-- group. Raises RuntimeError when the group is not entered, has
-- finished, or is shutting down after a failure (the coroutine is then
-- closed, so it does not report as never awaited).
function TaskGroup:create_task(coro, opts)
  check.self(self, TaskGroup, "create_task")
  check.options(opts, 3, "create_task", CREATE_TASK_OPTIONS)
  if not self._entered then
    dispose(coro)
    error(RuntimeError(("TaskGroup %s has not been entered")
                       :format(tostring(self))), 2)
  end
  if self._exiting and self._ntasks == 0 then
    dispose(coro)
    error(RuntimeError(("TaskGroup %s is finished")
                       :format(tostring(self))), 2)
  end
  if self._aborting then
    dispose(coro)
    error(RuntimeError(("TaskGroup %s is shutting down")
                       :format(tostring(self))), 2)
  end
  local task = self._loop:create_task(coro, opts)
  self._tasks[task] = true
  self._ntasks = self._ntasks + 1
  task:add_done_callback(self._on_task_done)
  return task
end

--- Waits until every child is done. Returns the CancelledError to
-- propagate if the parent task was cancelled meanwhile.
local function wait_children(self, propagate)
  local await = core.await
  while self._ntasks > 0 do
    if self._on_completed == nil then
      self._on_completed = self._loop:create_future()
    end
    local ok, err = pcall(await, self._on_completed)
    if not ok then
      if not iserror(err, CancelledError) then error(err, 0) end
      if not self._aborting then
        -- the parent task is being cancelled while children run
        propagate = err
        abort(self)
      end
    end
    self._on_completed = nil
  end
  return propagate
end

local function aexit(self, err)
  self._exiting = true
  if err ~= nil and is_base_error(err) and self._base_error == nil then
    self._base_error = err
  end
  local cancelled_exit = err ~= nil and iserror(err, CancelledError)
  local propagate = cancelled_exit and err or nil
  if err ~= nil and not self._aborting then
    -- the body failed, or the parent task is being cancelled
    abort(self)
  end
  propagate = wait_children(self, propagate)
  if self._base_error ~= nil then error(self._base_error, 0) end
  local parent, errs = self._parent_task, self._errors
  if self._parent_cancel_requested and parent:uncancel() == 0 then
    -- no cancellation is pending but the one this group requested
    propagate = nil
  end
  if propagate ~= nil and #errs == 0 then error(propagate, 0) end
  if err ~= nil and not cancelled_exit then errs[#errs + 1] = err end
  if #errs > 0 then
    if parent:cancelling() > 0 then
      -- keep an outside cancellation pending, counted once
      parent:uncancel()
      parent:cancel()
    end
    error(make_group(errs, self._tracebacks), 0)
  end
end

--- Leaving the scope (err: the error leaving it, nil on a normal exit):
-- waits for the children, then raises what the group must raise.
function TaskGroup:__close(err)
  if not self._entered or self._exited then return end
  self._exited = true
  self._parent_task:remove_done_callback(self._on_parent_done)
  local ok, raised = pcall(aexit, self, err)
  release(self)
  if not ok then error(raised, 0) end
end

--- TaskGroup() -> a new group, entered at once when made inside a task.
function M.TaskGroup()
  local self = setmetatable({
    _entered = false, _exiting = false, _aborting = false,
    _parent_cancel_requested = false, _tasks = {}, _ntasks = 0,
    _errors = {}, _tracebacks = {},
  }, TaskGroup)
  self._on_task_done = function(task) on_task_done(self, task) end
  self._on_parent_done = function(parent) never_exited(self, parent) end
  local loop, task = running_task()
  if task ~= nil then enter_in(self, loop, task) end
  return self
end

return M
