--- asyncio.combinators: gather, wait, as_completed, wait_for, shield.
--
-- Built on the core's public API only: Futures from loop:create_future(),
-- done callbacks, Task cancellation. Python 3.13 is the reference for
-- every behaviour (semantics sections F-K).
--
-- Lazy vs eager, as in Python: wait and wait_for return Coroutine objects
-- (nothing runs until they are awaited or wrapped in a task); gather and
-- shield return Futures at once, bound to the loop of their first child
-- (get_event_loop() when called with no running loop).
--
-- None of these swallow a cancellation that is not their own: every pcall
-- below either re-raises what it caught or inspects a future that is
-- already done.

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local timeouts = require "asyncio.timeouts"
local check = require "asyncio.check"

local async, await = core.async, core.await
local ensure_future, isfuture = core.ensure_future, core.isfuture
local succeeded, gather_callback = core._succeeded, core._gather_callback
local gather_watch, gather_results = core._gather_watch,
                                     core._gather_results
local unique, ensure_futures = core._unique, core._ensure_futures
local add_done_callbacks, remove_done_callbacks =
  core._add_done_callbacks, core._remove_done_callbacks
local iscoroutine, iserror = core.iscoroutine, core.iserror
local CancelledError, TimeoutError = errors.CancelledError,
  errors.TimeoutError
local error, getmetatable, pcall, rawget, type =
  error, getmetatable, pcall, rawget, type
local select = select

local M = {}

-- gather's outer future -> its children (what dump_tasks shows as the
-- tasks the awaiting task waits for); weak, so it keeps nothing alive
local gathered = setmetatable({}, {__mode = "k"})
M._gathered = gathered

M.FIRST_COMPLETED = "FIRST_COMPLETED"
M.FIRST_EXCEPTION = "FIRST_EXCEPTION"
M.ALL_COMPLETED = "ALL_COMPLETED"

-- ------------------------------------------------------------------
-- Helpers

--- The CancelledError a cancelled future raises (it carries the cancel
-- message). The future is done: nothing of the caller is swallowed.
local function cancelled_error(fut)
  local ok, err = pcall(fut.result, fut)
  if ok then return CancelledError() end
  return err
end

--- The first result value of a done future, or its error, or the
-- CancelledError it was cancelled with: what gather puts in a child's
-- slot. Marks an exception as retrieved.
local function outcome(fut)
  if fut:cancelled() then return cancelled_error(fut) end
  local exc = fut:exception()
  if exc ~= nil then return exc end
  return (fut:result())
end

--- A value that is an awaitable on its own (future, Coroutine object, or
-- a value whose metatable has __await), as opposed to a list of them.
local function is_awaitable(v)
  if isfuture(v) or iscoroutine(v) then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__await") ~= nil
end

local function type_name(v)
  if isfuture(v) then
    return tostring(v):match("^<(%a+)") or "Future"
  elseif iscoroutine(v) then
    return "coroutine"
  end
  return type(v)
end

--- Collects the awaitables of `aws` (an array, or an iterator function
-- returning one awaitable per call and nil at the end) into an array
-- without duplicates, in first-seen order. `what` begins the TypeError:
-- the caller's expectation, in Python's words.
local function collect(aws, what)
  if type(aws) == "function" then
    local list, seen = {}, {}
    for aw in aws do
      if not seen[aw] then
        seen[aw] = true
        list[#list + 1] = aw
      end
    end
    return list
  elseif type(aws) == "table" and not is_awaitable(aws) then
    return unique(aws)
  else
    error(errors.TypeError(("%s, not %s"):format(what, type_name(aws))), 3)
  end
end

local function release_waiter(waiter)
  if not waiter:done() then waiter:set_result() end
end

-- ------------------------------------------------------------------
-- gather

local function is_options(v)
  return type(v) == "table" and getmetatable(v) == nil
end

local GATHER_OPTIONS = check.option_set({"return_exceptions"})

--- gather(aw, ... [, {return_exceptions = bool}]) -> Future of the list
-- of the children's first values, in argument order.
--
-- Coroutine objects and __await values are wrapped in tasks (in argument
-- order); one awaitable passed several times runs once. Without
-- return_exceptions the first error (or a child's cancellation, as a
-- CancelledError) completes the gather and the other children go on;
-- with it, errors are values in their slots. Cancelling the returned
-- future, or the task that awaits it, cancels every child not yet done.
function M.gather(...)
  -- the children, one slot per argument, filled in place of the
  -- arguments (a table constructor: no per-element call as in table.pack)
  local children = {...}
  local n = select("#", ...)
  local return_exceptions = false
  if n > 0 and is_options(children[n]) then
    check.options(children[n], n, "gather", GATHER_OPTIONS)
    return_exceptions = children[n].return_exceptions and true or false
    children[n] = nil
    n = n - 1
  end
  if n == 0 then
    local outer = core.get_event_loop():create_future()
    outer:set_result({})
    return outer
  end

  local nchildren = 0
  local outer -- set once the children are set up
  local cancel_requested = false
  -- nfinished: the children counted by watch, the C done-callback below
  local function on_child_done(fut, nfinished)
    -- a child that succeeded while others still run: nothing to look at
    -- (watch counts most of those in C, without calling this function)
    if nfinished < nchildren and succeeded(fut) then return end
    if outer == nil or outer:done() then
      -- a child failed the gather already, or the gather itself raised
      -- while setting up (an argument that is not awaitable: CPython
      -- issue 46672): nobody will look at this child's error
      if not fut:cancelled() then fut:exception() end
      return
    end
    if not return_exceptions then
      local failed = fut:cancelled() and cancelled_error(fut) or
                     fut:exception()
      if failed ~= nil then
        outer:set_exception(failed)
        return
      end
    end
    if nfinished < nchildren then return end
    local results = {}
    if return_exceptions then
      for i = 1, n do results[i] = outcome(children[i]) end
    else -- every child succeeded
      results = gather_results(children, n)
    end
    if cancel_requested then
      -- cancelled while children were running: the cancellation wins,
      -- even with return_exceptions (with the last child's message, as
      -- Python does)
      local last = children[n]
      outer:set_exception(last:cancelled() and cancelled_error(last) or
                          CancelledError())
    else
      outer:set_result(results)
    end
  end
  local watch = gather_callback(on_child_done)
  -- Each child is ensure_future of its argument, watched by `watch`
  -- unless already done (those are counted below, in order). A future
  -- passed several times is a child several times: each of its callbacks
  -- counts once, which gives the same outcome as counting it once. A
  -- Coroutine object or __await value passed several times runs once.
  local loop, done_futs
  nchildren, loop, done_futs = gather_watch(watch, children, n)
  -- Cancelling the gather (directly, or as the waiter of a cancelled
  -- task) cancels its children instead of the gather itself, which then
  -- completes when they are done (Python's _GatheringFuture.cancel).
  outer = loop:create_future{cancel = function(_, msg)
    local cancelled = false
    for i = 1, n do
      if children[i]:cancel(msg) then cancelled = true end
    end
    if cancelled then cancel_requested = true end
    return cancelled
  end}
  gathered[outer] = children
  if done_futs then
    for i = 1, #done_futs do
      on_child_done(done_futs[i], core._gather_count(watch))
    end
  end
  return outer
end

-- ------------------------------------------------------------------
-- shield

--- shield(aw) -> a Future that resolves as `aw` does, but whose
-- cancellation (or that of a task awaiting it) leaves `aw` running.
-- An already-done future is returned as is.
function M.shield(arg)
  local inner = ensure_future(arg)
  if inner:done() then return inner end
  local outer = inner:get_loop():create_future()
  local function on_inner_done(i)
    if outer:cancelled() then
      if not i:cancelled() then i:exception() end -- mark retrieved
      return
    end
    if i:cancelled() then
      outer:cancel()
    else
      local exc = i:exception()
      if exc ~= nil then
        outer:set_exception(exc)
      else
        outer:set_result(i:result())
      end
    end
  end
  inner:add_done_callback(on_inner_done)
  outer:add_done_callback(function()
    if not inner:done() then inner:remove_done_callback(on_inner_done) end
  end)
  return outer
end

-- ------------------------------------------------------------------
-- wait

local RETURN_WHEN = {FIRST_COMPLETED = true, FIRST_EXCEPTION = true,
                     ALL_COMPLETED = true}

--- Waits until `fs` (an array of futures) satisfy return_when or the
-- timeout elapses; returns the done and pending arrays, in fs order.
local function wait_futures(loop, fs, timeout, return_when)
  local waiter = loop:create_future()
  local handle
  if timeout ~= nil then
    handle = loop:call_later(timeout, release_waiter, waiter)
  end
  local counter = #fs
  local first_completed = return_when == "FIRST_COMPLETED"
  local first_exception = return_when == "FIRST_EXCEPTION"
  local function on_completion(f)
    counter = counter - 1
    if counter <= 0 or first_completed or
       (first_exception and not f:cancelled() and f:exception() ~= nil) then
      if handle then handle:cancel() end
      release_waiter(waiter)
    end
  end
  add_done_callbacks(fs, on_completion)
  local ok, err = pcall(await, waiter)
  if handle then handle:cancel() end
  local done, pending = remove_done_callbacks(fs, on_completion)
  if not ok then error(err, 0) end -- the waiting task was cancelled
  return done, pending
end

--- wait(aws [, {timeout =, return_when =}]) -> Coroutine object; awaited:
-- done, pending (arrays of futures).
--
-- aws is an array (or an iterator function) of awaitables; Coroutine
-- objects and __await values are wrapped in tasks, in array order, and
-- those tasks are what done/pending hold. Never raises the children's
-- errors and never cancels them, not even on timeout. Bad options raise
-- before any awaitable is wrapped.
local wait = async(function(aws, opts)
  local fs = collect(aws, "expect a list of futures")
  if #fs == 0 then
    error(errors.ValueError("Set of Tasks/Futures is empty."), 0)
  end
  local timeout, return_when = nil, "ALL_COMPLETED"
  if opts ~= nil then
    timeout = check.number(opts.timeout, 2, "wait", true)
    if opts.return_when ~= nil then return_when = opts.return_when end
  end
  if not RETURN_WHEN[return_when] then
    error(errors.ValueError("Invalid return_when value: " ..
                            tostring(return_when)), 0)
  end
  local loop = core.get_running_loop()
  ensure_futures(fs, loop)
  return wait_futures(loop, fs, timeout, return_when)
end)

local WAIT_OPTIONS = check.option_set({"timeout", "return_when"})

-- The options are checked when the call is made, as Python checks its
-- keyword arguments; their values and aws when awaited, as Python does.
function M.wait(aws, opts)
  check.options(opts, 2, "wait", WAIT_OPTIONS)
  return (wait(aws, opts)) -- no tail call: it names the Coroutine "wait"
end

-- ------------------------------------------------------------------
-- as_completed

local TIMED_OUT = setmetatable({}, {__name = "as_completed timeout"})

local AsCompleted = {}
AsCompleted.__index = AsCompleted

--- Hands the next done future (or TIMED_OUT) to the first waiting getter.
local function wake_next(self)
  local getters = self._getters
  while #getters > 0 do
    local g = table.remove(getters, 1)
    if not g:done() then
      g:set_result()
      return
    end
  end
end

local function put(self, item)
  local q = self._done
  q[#q + 1] = item
  wake_next(self)
end

--- The next finished future (or TIMED_OUT), waiting for one if needed.
-- Cancellation-safe: a cancelled getter leaves the item in the queue and
-- passes its wake-up on.
local function next_done(self)
  local q = self._done
  while self._head > #q do
    local getter = self._loop:create_future()
    local getters = self._getters
    getters[#getters + 1] = getter
    local ok, err = pcall(await, getter)
    if not ok then
      getter:cancel()
      for i = 1, #getters do
        if getters[i] == getter then
          table.remove(getters, i)
          break
        end
      end
      if self._head <= #q and not getter:cancelled() then
        wake_next(self)
      end
      error(err, 0)
    end
  end
  local item = q[self._head]
  q[self._head] = false
  self._head = self._head + 1
  return item
end

--- The next finished future; TimeoutError once the timeout has elapsed.
local function next_future(self)
  local f = next_done(self)
  if f == TIMED_OUT then error(TimeoutError(), 0) end
  return f
end

local next_result = async(function(self)
  return next_future(self):result()
end)

--- One step of a generic `for`: awaits the next completion and returns
-- that future (the original one, or the task made for a Coroutine), or
-- nil when every input was produced. Raises TimeoutError once the
-- timeout has elapsed, for each input left.
function AsCompleted:__call()
  if self._left == 0 then return nil end
  self._left = self._left - 1
  return next_future(self)
end

--- Plain iteration: returns a generic-for iterator whose k-th item is an
-- awaitable (a Coroutine object) resolving to the result of the k-th
-- completion, or raising its error (TimeoutError once the timeout has
-- elapsed). Needs no running task to produce the items.
function AsCompleted:awaitables()
  return function()
    if self._left == 0 then return nil end
    self._left = self._left - 1
    return next_result(self)
  end
end

function AsCompleted:__tostring()
  return ("<as_completed %d left>"):format(self._left)
end

local AS_COMPLETED_OPTIONS = check.option_set({"timeout"})

--- as_completed(aws [, {timeout =}]) -> an iterator object over the
-- completions of aws (an array or an iterator function of awaitables,
-- duplicates collapsed; Coroutine objects wrapped in tasks at once).
--
--   for fut in asyncio.as_completed(aws) do local r = await(fut) end
--
-- The generic `for` must run in a task: each step awaits the next
-- completion. Leaving the loop early and iterating again later resumes
-- where it stopped. it:awaitables() gives Python's plain iteration.
function M.as_completed(aws, opts)
  check.options(opts, 2, "as_completed", AS_COMPLETED_OPTIONS)
  check.number(opts and opts.timeout, 2, "as_completed", true)
  local list = collect(aws, "expects an iterable of awaitables")
  local timeout = opts and opts.timeout
  local loop = core.get_event_loop()
  local self = setmetatable({
    _loop = loop, _done = {}, _head = 1, _getters = {}, _todo = {},
    _ntodo = 0, _left = 0,
  }, AsCompleted)
  local todo = self._todo
  local handle
  local on_completion
  function on_completion(f)
    if self._ntodo == 0 then return end -- the timeout came first
    todo[f] = nil
    self._ntodo = self._ntodo - 1
    put(self, f)
    if self._ntodo == 0 and handle then handle:cancel() end
  end
  for i = 1, #list do
    local f = ensure_future(list[i], loop)
    if not todo[f] then
      todo[f] = true
      self._ntodo = self._ntodo + 1
      f:add_done_callback(on_completion)
    end
  end
  self._left = self._ntodo
  if self._ntodo > 0 and timeout ~= nil then
    handle = loop:call_later(timeout, function()
      for f in pairs(todo) do
        f:remove_done_callback(on_completion)
        todo[f] = nil
        put(self, TIMED_OUT)
      end
      self._ntodo = 0
    end)
  end
  return self
end

-- ------------------------------------------------------------------
-- wait_for

--- Cancels `fut` and waits until it is done, without awaiting it directly
-- so that the waiting task stays cancellable on its own.
local function cancel_and_wait(loop, fut)
  local waiter = loop:create_future()
  local function cb() release_waiter(waiter) end
  fut:add_done_callback(cb)
  fut:cancel()
  local ok, err = pcall(await, waiter)
  fut:remove_done_callback(cb)
  if not ok then error(err, 0) end
end

--- The values of a successful result() call; else raises its error, a
-- CancelledError becoming a TimeoutError (cause: the CancelledError).
local function result_or_timeout(ok, ...)
  if ok then return ... end
  local err = ...
  if iserror(err, CancelledError) then
    local te = TimeoutError()
    te.cause = err
    err = te
  end
  error(err, 0)
end

--- wait_for(aw, timeout) -> Coroutine object; awaited: aw's values.
--
-- timeout nil: a plain await. Otherwise on expiry aw is cancelled, waited
-- for until it has really finished, and TimeoutError (cause: the
-- CancelledError) is raised -- unless aw produced a value or a different
-- error meanwhile, which wins. A cancellation of the waiting task itself
-- always propagates.
M.wait_for = async(function(aw, timeout)
  check.number(timeout, 2, "wait_for", true)
  if timeout == nil then return await(aw) end
  if timeout <= 0 then
    local loop = core.get_running_loop()
    local fut = ensure_future(aw, loop)
    if fut:done() then return fut:result() end
    cancel_and_wait(loop, fut)
    return result_or_timeout(pcall(fut.result, fut))
  end
  local _ <close> = timeouts.timeout(timeout)
  return await(aw)
end)

return M
