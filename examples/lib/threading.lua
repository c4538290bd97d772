--- examples/lib/threading.lua: the examples' stand-in for Python's
-- threading module (Lock, RLock, Semaphore, Event, Condition, Barrier)
-- and for a global variable that several threads change (Value).
--
-- Threads here share no Lua values: each runs in a Lua state of its own
-- and values cross between them as copies. What they can share is an
-- asyncio.Channel, a queue sent by reference. So each object made here is
-- a plain table of channels and methods: sent to another thread (as an
-- argument of ThreadPoolExecutor:submit, say), the table arrives as a
-- copy, its channels are the same ones, and its methods (functions with
-- no upvalue, sent as bytecode) work there as here:
--
--   local threading = require "lib.threading"
--   local lock = threading.Lock()
--   do local _ <close> = lock:acquire()   -- with lock:
--     ...
--   end                                   -- released here
--
-- acquire() returns a guard whose closing releases, as await(lock) does
-- for asyncio's Lock; release() is also there for the explicit form.
-- Each waiter blocks its own OS thread (as Python's threading does), so
-- these are for plain threads (executor workers), never for a loop's
-- tasks.
local asyncio = require "asyncio"

local M = {}

-- The methods below are sent to other threads with their objects: they
-- use only their arguments and globals (no upvalue but _ENV).

--- Takes a token from self.token, blocking until there is one; returns a
-- guard for a to-be-closed variable that gives it back.
local function token_acquire(self)
  self.token:get()
  return setmetatable({}, {__close = function() self:release() end})
end

local function token_release(self)
  self.token:put(true)
end

--- A Channel holding n tokens.
local function tokens(n)
  local ch = asyncio.Channel()
  for _ = 1, n do ch:put(true) end
  return ch
end

--- Lock() -> threading.Lock(): one token.
function M.Lock()
  return {token = tokens(1), acquire = token_acquire,
          release = token_release}
end

--- Semaphore(n) -> threading.Semaphore(n): n tokens.
function M.Semaphore(n)
  return {token = tokens(n), acquire = token_acquire,
          release = token_release}
end

--- RLock() -> threading.RLock(): the thread that holds it may acquire it
-- again; it is free once released as many times. The count of holds is
-- kept in the thread's own copy of the table, so send an RLock to a
-- thread before any thread acquires it.
function M.RLock()
  return {token = tokens(1), depth = 0,
    acquire = function(self)
      if self.depth == 0 then self.token:get() end
      self.depth = self.depth + 1
      return setmetatable({}, {__close = function() self:release() end})
    end,
    release = function(self)
      self.depth = self.depth - 1
      if self.depth == 0 then self.token:put(true) end
    end}
end

--- A Channel holding the single value v: a shared state that a thread
-- takes out (so that no other thread can) and puts back.
local function cell(v)
  local ch = asyncio.Channel(1)
  ch:put(v)
  return ch
end

--- Value(v) -> a variable shared by threads (a global in the Python
-- programs): value:get() reads it, value:set(v) writes it. Each is one
-- step no other thread cuts into; `num += 1` is a get then a set, between
-- which another thread may write, as in Python.
function M.Value(v)
  return {cell = cell(v),
    get = function(self)
      local v = self.cell:get()
      self.cell:put(v)
      return v
    end,
    set = function(self, v)
      self.cell:get()
      self.cell:put(v)
    end}
end

--- Event() -> threading.Event(): set(), clear(), is_set(), and wait(),
-- which blocks until the flag is set.
function M.Event()
  return {state = cell({flag = false, waiters = {}}),
    set = function(self)
      local s = self.state:get()
      s.flag = true
      for _, waiter in ipairs(s.waiters) do waiter:put(true) end
      s.waiters = {}
      self.state:put(s)
    end,
    clear = function(self)
      local s = self.state:get()
      s.flag = false
      self.state:put(s)
    end,
    is_set = function(self)
      local s = self.state:get()
      self.state:put(s)
      return s.flag
    end,
    wait = function(self)
      local s = self.state:get()
      if s.flag then
        self.state:put(s)
        return true
      end
      local wake = require("asyncio").Channel(1)
      s.waiters[#s.waiters + 1] = wake
      self.state:put(s)
      wake:get()
      return true
    end}
end

--- Condition() -> threading.Condition() (on a Lock of its own):
-- acquire() / release() as the lock's; wait() releases the lock, blocks
-- until notified, then takes the lock again; notify(n) wakes the n
-- longest waiting (default 1), notify_all() every one. wait and notify
-- are called holding the lock, as in Python.
-- One difference: a notify() that finds no thread waiting is kept, and
-- the next wait() of another thread returns at once (Python drops it).
-- Under Python's GIL a thread runs on until it blocks, so a thread that
-- notifies, then waits, is waiting before the thread it woke can notify
-- back; threads here run side by side, and the notify back may come
-- first. Keeping it makes such programs take turns as they do in Python
-- instead of both waiting forever.
function M.Condition()
  return {lock = M.Lock(), state = cell({waiters = {}}),
    acquire = function(self)
      self.lock:acquire()
      return setmetatable({}, {__close = function() self:release() end})
    end,
    release = function(self)
      self.lock:release()
    end,
    wait = function(self)
      local me = tostring(coroutine.running()) -- this thread
      local s = self.state:get()
      if s.kept and s.kept ~= me then
        s.kept = nil
        self.state:put(s)
        return true
      end
      local wake = require("asyncio").Channel(1)
      s.waiters[#s.waiters + 1] = wake
      self.state:put(s)
      self.lock:release()
      wake:get()
      self.lock:acquire()
      return true
    end,
    notify = function(self, n)
      local s = self.state:get()
      n = n or 1
      if #s.waiters == 0 and n == 1 then
        s.kept = tostring(coroutine.running())
      end
      for _ = 1, math.min(n, #s.waiters) do
        table.remove(s.waiters, 1):put(true)
      end
      self.state:put(s)
    end,
    notify_all = function(self)
      self:notify(math.huge)
    end}
end

--- Barrier(parties) -> threading.Barrier(parties): wait() blocks until
-- `parties` threads wait, then lets them all go and starts over.
function M.Barrier(parties)
  return {parties = parties, state = cell({count = 0, waiters = {}}),
    wait = function(self)
      local s = self.state:get()
      s.count = s.count + 1
      if s.count == self.parties then
        for _, waiter in ipairs(s.waiters) do waiter:put(true) end
        s.count, s.waiters = 0, {}
        self.state:put(s)
        return
      end
      local wake = require("asyncio").Channel(1)
      s.waiters[#s.waiters + 1] = wake
      self.state:put(s)
      wake:get()
    end}
end

return M
