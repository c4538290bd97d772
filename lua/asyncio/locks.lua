--- asyncio.locks: Condition and Barrier, in Lua on top of the C Lock.
--
-- Python 3.13 is the reference (semantics sections P and R).
--
-- A Condition shares a Lock (its own when none is given); `await(cond)`
-- acquires it and returns the condition, whose __close releases it:
--
--   local _ <close> = await(cond)     -- async with cond:
--   await(cond:wait_for(function() return #items > 0 end))
--
-- Each wait() parks on a Future of its own, in FIFO order; notify(n) only
-- completes up to n of those futures. A waiter always ends holding the
-- lock, also when it is cancelled (it retries the acquire and raises the
-- CancelledError afterwards); a waiter that leaves with an error passes a
-- notification on, so a notify that races a cancel is never lost.
--
-- A Barrier is a Condition and a state: filling, draining (the last party
-- arrived; the others are leaving), resetting or broken. `b.parties`,
-- `b.n_waiting` and `b.broken` are fields, computed on access.

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local check = require "asyncio.check"

local async, await, iserror = core.async, core.await, core.iserror
local CancelledError, RuntimeError, ValueError, BrokenBarrierError =
  errors.CancelledError, errors.RuntimeError, errors.ValueError,
  errors.BrokenBarrierError
local error, getmetatable, pcall, rawset, setmetatable, tostring =
  error, getmetatable, pcall, rawset, setmetatable, tostring

local LOCK_MT = getmetatable(core.Lock())

local M = {}

-- ------------------------------------------------------------------
-- Condition

local Condition = {}
Condition.__index = Condition
Condition.__name = "asyncio.Condition"

--- Condition([lock]) -> a condition variable sharing `lock` (an
-- asyncio.Lock; a new one when nil).
function M.Condition(lock)
  if lock == nil then
    lock = core.Lock()
  elseif getmetatable(lock) ~= LOCK_MT then
    check.argerror(1, "Condition", ("asyncio.Lock expected, got %s")
                   :format(check.typename(lock)))
  end
  -- The waiters: futures in w[head..tail], removed ones false; pos maps a
  -- waiting future to its index, n counts them.
  return setmetatable({_lock = lock, _w = {}, _pos = {}, _head = 1,
                       _tail = 0, _n = 0}, Condition)
end

local function push_waiter(self, fut)
  local i = self._tail + 1
  self._tail = i
  self._w[i] = fut
  self._pos[fut] = i
  self._n = self._n + 1
end

local function remove_waiter(self, fut)
  local i = self._pos[fut]
  if i == nil then return end
  local w, head, tail = self._w, self._head, self._tail
  self._pos[fut] = nil
  w[i] = false
  self._n = self._n - 1
  while head <= tail and w[head] == false do
    w[head] = nil
    head = head + 1
  end
  self._head = head
end

--- The running loop, binding the condition to it on first use; raises
-- RuntimeError when the condition is bound to another loop.
local function bound_loop(self)
  local loop = core.get_running_loop()
  local bound = self._loop
  if bound == nil then
    self._loop = loop
  elseif bound ~= loop then
    error(RuntimeError(tostring(self) ..
                       " is bound to a different event loop"), 0)
  end
  return loop
end

--- Completes up to n waiting futures that are not done yet, in FIFO
-- order.
local function wake(self, n)
  local w, woken = self._w, 0
  for i = self._head, self._tail do
    if woken >= n then return end
    local fut = w[i]
    if fut and not fut:done() then
      fut:set_result(false)
      woken = woken + 1
    end
  end
end

--- cond:locked() -> whether the shared lock is held.
function Condition:locked()
  check.self(self, Condition, "locked")
  return self._lock:locked()
end

--- cond:acquire() -> a Coroutine object: awaited, acquires the shared lock
-- and returns true.
function Condition:acquire()
  check.self(self, Condition, "acquire")
  return self._lock:acquire()
end

--- cond:release(): releases the shared lock; RuntimeError when unlocked.
function Condition:release()
  check.self(self, Condition, "release")
  return self._lock:release()
end

--- Re-acquires the lock after a wait, whatever happens: a cancellation
-- while acquiring is kept and the acquire retried. Returns the last
-- CancelledError received, or nil. Other errors propagate.
local function reacquire(self)
  local last
  while true do
    local ok, err = pcall(await, self._lock:acquire())
    if ok then return last end
    if not iserror(err, CancelledError) then
      wake(self, 1)
      error(err, 0)
    end
    last = err
  end
end

--- The body of cond:wait(), run in the calling task.
local function wait_notified(self)
  if not self._lock:locked() then
    error(RuntimeError("cannot wait on un-acquired lock"), 0)
  end
  local loop = bound_loop(self)
  self._lock:release()
  local fut = loop:create_future()
  push_waiter(self, fut)
  local ok, err = pcall(await, fut)
  remove_waiter(self, fut)
  local cancelled = reacquire(self)
  err = cancelled or err
  if cancelled or not ok then
    -- we may have been notified already: pass the notification on
    wake(self, 1)
    error(err, 0)
  end
  return true
end

--- cond:wait() -> a Coroutine object: awaited, releases the lock, waits
-- for a notify, re-acquires the lock and returns true. RuntimeError when
-- the lock is not held. When cancelled, re-acquires the lock before
-- raising the CancelledError it received (the same object).
Condition.wait = async(function(self)
  check.self(self, Condition, "wait")
  return wait_notified(self)
end)

--- Waits in the calling task until predicate(...) is truthy; returns its
-- value.
local function wait_until(self, predicate, ...)
  local result = predicate(...)
  while not result do
    wait_notified(self)
    result = predicate(...)
  end
  return result
end

--- cond:wait_for(predicate) -> a Coroutine object: awaited, waits until
-- predicate() is truthy and returns its value. A predicate already truthy
-- returns at once, even without the lock.
Condition.wait_for = async(function(self, predicate, ...)
  check.self(self, Condition, "wait_for")
  check.callable(predicate, 2, "wait_for")
  return wait_until(self, predicate, ...)
end)

--- cond:notify([n]): wakes up to n (default 1) waiters. RuntimeError when
-- the lock is not held.
function Condition:notify(n)
  check.self(self, Condition, "notify")
  check.integer(n, 2, "notify", true)
  if not self._lock:locked() then
    error(RuntimeError("cannot notify on un-acquired lock"), 2)
  end
  wake(self, n or 1)
end

--- cond:notify_all(): wakes every waiter. RuntimeError when the lock is
-- not held.
function Condition:notify_all()
  check.self(self, Condition, "notify_all")
  if not self._lock:locked() then
    error(RuntimeError("cannot notify on un-acquired lock"), 2)
  end
  wake(self, self._n)
end

local guard = async(function(self)
  await(self._lock:acquire())
  return self
end)

--- await(cond): acquires the lock and returns the condition.
function Condition:__await()
  return guard(self)
end

--- The end of `local _ <close> = await(cond)`: releases the lock.
function Condition:__close()
  self._lock:release()
end

--- tostring(cond): "<asyncio.Condition [locked, waiters:2]>".
function Condition:__tostring()
  local extra = self._lock:locked() and "locked" or "unlocked"
  if self._n > 0 then extra = extra .. ", waiters:" .. self._n end
  return "<asyncio.Condition [" .. extra .. "]>"
end

-- ------------------------------------------------------------------
-- Barrier

local FILLING, DRAINING, RESETTING, BROKEN =
  "filling", "draining", "resetting", "broken"

local Barrier = {}
Barrier.__name = "asyncio.Barrier"

local methods = {}

-- Fields computed on access, as Python's properties.
local fields = {
  parties = function(self) return self._parties end,
  n_waiting = function(self)
    return self._state == FILLING and self._count or 0
  end,
  broken = function(self) return self._state == BROKEN end,
}

function Barrier:__index(key)
  local m = methods[key]
  if m ~= nil then return m end
  local f = fields[key]
  if f ~= nil then return f(self) end
  return nil
end

function Barrier:__newindex(key, value)
  if fields[key] then
    error(("attribute '%s' of asyncio.Barrier is read-only")
          :format(tostring(key)), 2)
  end
  rawset(self, key, value)
end

--- Barrier(parties) -> a barrier for `parties` tasks (a number >= 1;
-- ValueError otherwise).
function M.Barrier(parties)
  check.finite(parties, 1, "Barrier")
  if parties < 1 then
    error(ValueError("parties must be > 0"), 2)
  end
  return setmetatable({_cond = M.Condition(), _parties = parties,
                       _state = FILLING, _count = 0}, Barrier)
end

local function not_busy(self)
  return self._state ~= DRAINING and self._state ~= RESETTING
end

local function not_filling(self)
  return self._state ~= FILLING
end

--- Waits, holding the barrier's lock, until it neither drains nor
-- resets; raises BrokenBarrierError when it is broken.
local function block(self)
  wait_until(self._cond, not_busy, self)
  if self._state == BROKEN then
    error(BrokenBarrierError("Barrier aborted"), 0)
  end
end

--- The arrival of party number `index` (0-based): the last one starts the
-- draining, the others wait for it; BrokenBarrierError when the barrier
-- is reset or aborted meanwhile.
local function arrive(self, index)
  if index + 1 == self._parties then
    self._state = DRAINING
    self._cond:notify_all()
    return
  end
  wait_until(self._cond, not_filling, self)
  if self._state == BROKEN or self._state == RESETTING then
    error(BrokenBarrierError("Abort or reset of barrier"), 0)
  end
end

--- A party leaves: the last one out ends the draining or the resetting.
local function leave(self)
  self._count = self._count - 1
  if self._count == 0 then
    if self._state == DRAINING or self._state == RESETTING then
      self._state = FILLING
    end
    self._cond:notify_all()
  end
end

--- b:wait() -> a Coroutine object: awaited, waits until `parties` tasks
-- wait, then returns this task's arrival index (0 .. parties - 1).
-- Raises BrokenBarrierError when the barrier is broken, or is reset or
-- aborted while waiting.
methods.wait = async(function(self)
  check.self(self, Barrier, "wait")
  local _ <close> = await(self._cond)
  block(self)
  local index = self._count
  self._count = index + 1
  local ok, err = pcall(arrive, self, index)
  leave(self)
  if not ok then error(err, 0) end
  return index
end)

--- b:reset() -> a Coroutine object: awaited, returns the barrier to the
-- filling state; tasks waiting get BrokenBarrierError.
methods.reset = async(function(self)
  check.self(self, Barrier, "reset")
  local _ <close> = await(self._cond)
  if self._count > 0 then
    self._state = RESETTING
  else
    self._state = FILLING
  end
  self._cond:notify_all()
end)

--- b:abort() -> a Coroutine object: awaited, breaks the barrier: tasks
-- waiting and later wait() calls get BrokenBarrierError until a reset.
methods.abort = async(function(self)
  check.self(self, Barrier, "abort")
  local _ <close> = await(self._cond)
  self._state = BROKEN
  self._cond:notify_all()
end)

--- tostring(b): "<asyncio.Barrier [filling, waiters:1/3]>", or
-- "<asyncio.Barrier [broken]>".
function Barrier:__tostring()
  local extra = self._state
  if self._state ~= BROKEN then
    extra = ("%s, waiters:%d/%s"):format(extra, self.n_waiting,
                                          tostring(self._parties))
  end
  return "<asyncio.Barrier [" .. extra .. "]>"
end

return M
