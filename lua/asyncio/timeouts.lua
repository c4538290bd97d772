--- asyncio.timeouts: timeout(delay), timeout_at(when) and the Timeout
-- scope behind them, with Python 3.13's semantics.
--
--   do
--     local cm <close> = asyncio.timeout(2)   -- async with timeout(2) as cm:
--     await(slow())
--   end                                       -- TimeoutError raised here
--
-- A timeout is entered when it is made inside a task (the common case
-- above); one made elsewhere, or with asyncio.Timeout(when), is entered
-- later by `local cm <close> = await(cm)` inside a task.
--
-- When the deadline passes, the task that entered the scope is cancelled;
-- on leaving the scope, that cancellation -- and only that one -- becomes
-- a TimeoutError whose `.cause` is the CancelledError. "Only that one" is
-- judged by counts: the scope converts when, after withdrawing its own
-- request with task:uncancel(), no more cancel requests are pending than
-- when it was entered. Any other error passes through unchanged.

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local check = require "asyncio.check"

local iserror = core.iserror
local CancelledError, RuntimeError, TimeoutError = errors.CancelledError,
  errors.RuntimeError, errors.TimeoutError

local M = {}

-- States, named as Python names them in messages.
local CREATED, ENTERED, EXPIRING, EXPIRED, EXITED =
  "created", "active", "expiring", "expired", "finished"

local Timeout = {}
Timeout.__index = Timeout
Timeout.__name = "asyncio.Timeout"

local function on_timeout(self)
  -- where the task waits: the frames its TimeoutError is raised from,
  -- gone by the time __close raises it
  self._traceback = core._suspended_traceback(self._task)
  self._task:cancel()
  self._state = EXPIRING
  self._handle = nil
end

--- cm:when() -> the deadline (loop time), or nil when there is none.
function Timeout:when()
  check.self(self, Timeout, "when")
  return self._when
end

--- cm:reschedule(when): moves the deadline (nil: no deadline). Raises
-- RuntimeError unless the scope is entered and has not expired.
function Timeout:reschedule(when)
  check.self(self, Timeout, "reschedule")
  check.number(when, 2, "reschedule", true)
  if self._state ~= ENTERED then
    if self._state == CREATED then
      error(RuntimeError("Timeout has not been entered"), 2)
    end
    error(RuntimeError(("Cannot change state of %s Timeout")
                       :format(self._state)), 2)
  end
  self._when = when
  if self._handle ~= nil then self._handle:cancel() end
  if when == nil then
    self._handle = nil
    return
  end
  local loop = self._loop
  if when <= loop:time() then
    self._handle = loop:call_soon(on_timeout, self)
  else
    self._handle = loop:call_at(when, on_timeout, self)
  end
end

--- cm:expired() -> true once the deadline has passed and the scope
-- cancelled its task.
function Timeout:expired()
  check.self(self, Timeout, "expired")
  return self._state == EXPIRING or self._state == EXPIRED
end

--- The running loop and the task running the caller (nil, nil outside
-- a loop; loop, nil in a callback).
local function running_task()
  local loop = core._get_running_loop()
  return loop, loop and core.current_task(loop)
end

--- Enters the scope in `task`, running on `loop`.
local function enter_in(self, loop, task)
  self._state = ENTERED
  self._loop = loop
  self._task = task
  self._cancelling = task:cancelling()
  self:reschedule(self._when)
end

--- Enters the scope in the running task. Raises RuntimeError when entered
-- before or when not called from a task.
local function enter(self)
  if self._state ~= CREATED then
    error(RuntimeError("Timeout has already been entered"), 3)
  end
  local loop, task = running_task()
  if task == nil then
    error(RuntimeError("Timeout should be used inside a task"), 3)
  end
  enter_in(self, loop, task)
end

local identity = core.async(function(v) return v end)

--- await(cm) enters a scope that was made outside a task and returns it.
function Timeout:__await()
  enter(self)
  return identity(self)
end

--- Leaving the scope: `err` is the error leaving it (nil on a normal
-- exit). Raises TimeoutError in place of the CancelledError this scope
-- caused; returns (letting err go on) in every other case.
function Timeout:__close(err)
  local state = self._state
  if state ~= ENTERED and state ~= EXPIRING then return end
  if self._handle ~= nil then
    self._handle:cancel()
    self._handle = nil
  end
  if state == ENTERED then
    self._state = EXITED
    return
  end
  self._state = EXPIRED
  if self._task:uncancel() <= self._cancelling and err ~= nil and
     iserror(err, CancelledError) then
    local te = TimeoutError()
    te.cause = err
    te.traceback = self._traceback or te.traceback
    error(te, 0)
  end
end

--- tostring(cm): "<Timeout [active] when=12.5>" while entered, else
-- "<Timeout [expired]>" and so on, as Python's repr.
function Timeout:__tostring()
  local info = ""
  if self._state == ENTERED then
    local when = self._when
    if when ~= nil then when = math.floor(when * 1000 + 0.5) / 1000 end
    info = " when=" .. tostring(when)
  end
  return ("<Timeout [%s]%s>"):format(self._state, info)
end

--- Timeout(when) -> a scope not yet entered (enter it with await(cm)).
local function new(when)
  check.number(when, 1, "Timeout", true)
  return setmetatable({_state = CREATED, _when = when}, Timeout)
end
M.Timeout = new

--- A scope with deadline `when`, entered at once when made inside a task.
local function open(when)
  local cm = new(when)
  local loop, task = running_task()
  if task ~= nil then enter_in(cm, loop, task) end
  return cm
end

--- timeout_at(when) -> a scope with an absolute deadline (loop time; nil
-- for none), entered at once when made inside a task.
function M.timeout_at(when)
  check.number(when, 1, "timeout_at", true)
  return open(when)
end

--- timeout(delay) -> a scope whose deadline is `delay` seconds from now
-- (nil for none), entered at once when made inside a task. Needs a
-- running loop.
function M.timeout(delay)
  check.number(delay, 1, "timeout", true)
  if delay == nil then return open(nil) end
  return open(core.get_running_loop():time() + delay)
end

return M
