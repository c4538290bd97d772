--- A minimal asyncio-like scheduler on luv (libuv for Lua), for the luv
-- twins of the workloads: tasks are Lua coroutines, a FIFO ready queue
-- runs what was ready when an iteration began (as asyncio does), timers
-- are libuv timers, and futures, queues and locks hand values and
-- ownership straight to their first waiter. Deliberately lean: no
-- error classes, one waiter per future; the fairest (fastest) shape a
-- luv user would write for these workloads. Cancellation (for w8) is
-- the smallest that works: only a sleep made with cancellable_sleep can
-- be cancelled; cancel(task) stops its timer and resumes the task with
-- M.CANCELLED, which the task returns (its coroutine runs to its end, as
-- a cancelled asyncio task unwinds). wait_first(tasks) suspends until
-- the first of the tasks is done (a shared waiter set on each task and
-- taken off again, as asyncio.wait adds and removes done-callbacks).

local uv = require "luv"
local create, resume, yield, running =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.running

local M = {uv = uv, name = "luv"}

-- the ready queue: coroutine and the value it is resumed with
local rq_co, rq_val, head, tail = {}, {}, 1, 0

local function wake(co, v)
  tail = tail + 1
  rq_co[tail], rq_val[tail] = co, v
end
M.wake = wake

local function trampoline(t)
  local r = t.fn(t.arg)
  t.done, t.value = true, r
  local w = t.waiter
  if w then wake(w, r) end
  local g = t.group
  if g and g.co then
    local co = g.co
    g.co = nil
    wake(co, t)
  end
end

--- spawn(fn, arg) -> task; fn(arg) runs from the next iteration.
function M.spawn(fn, arg)
  local co = create(trampoline)
  local t = {fn = fn, arg = arg, done = false, co = co}
  wake(co, t)
  return t
end

--- await(task or future) -> its value (one waiter at a time).
function M.await(t)
  if t.done then return t.value end
  t.waiter = running()
  return yield()
end

function M.future()
  return {done = false}
end

function M.set_result(f, v)
  f.done, f.value = true, v
  local w = f.waiter
  if w then f.waiter = nil; wake(w, v) end
end

--- sleep(s): s == 0 yields one iteration; else a libuv timer, due s
-- after now. libuv counts a timer from the loop's time, cached when the
-- iteration began: refreshed first, so that a sleep started late in a
-- long iteration lasts s, as asyncio's call_later reads the clock.
function M.sleep(s)
  local co = running()
  if s <= 0 then
    wake(co)
    return yield()
  end
  local timer = uv.new_timer()
  uv.update_time()
  timer:start(math.floor(s * 1000 + 0.5), 0, function()
    timer:close()
    wake(co)
  end)
  return yield()
end

M.CANCELLED = setmetatable({}, {__name = "CANCELLED"})
local sleepers = {}  -- coroutine -> timer of its cancellable sleep

--- cancellable_sleep(s) -> nil, or M.CANCELLED when cancelled.
function M.cancellable_sleep(s)
  local co = running()
  local timer = uv.new_timer()
  sleepers[co] = timer
  uv.update_time() -- as in sleep
  timer:start(math.floor(s * 1000 + 0.5), 0, function()
    sleepers[co] = nil
    timer:close()
    wake(co)
  end)
  return yield()
end

--- cancel(task) -> whether it was in a cancellable sleep (and is now
-- resumed with M.CANCELLED at the next iteration).
function M.cancel(t)
  local co = t.co
  local timer = sleepers[co]
  if not timer then return false end
  sleepers[co] = nil
  timer:stop()
  timer:close()
  wake(co, M.CANCELLED)
  return true
end

--- wait_first(tasks) -> the first of tasks to be done.
function M.wait_first(tasks)
  for i = 1, #tasks do
    if tasks[i].done then return tasks[i] end
  end
  local g = {co = running()}
  for i = 1, #tasks do tasks[i].group = g end
  local first = yield()
  for i = 1, #tasks do tasks[i].group = nil end
  return first
end

--- FIFO queue: get hands an item straight to the first blocked getter.
function M.queue()
  return {items = {}, ih = 1, it = 0, getters = {}, gh = 1, gt = 0}
end

function M.put(q, v)
  if q.gh <= q.gt then
    local co = q.getters[q.gh]
    q.getters[q.gh] = nil
    q.gh = q.gh + 1
    wake(co, v)
  else
    q.it = q.it + 1
    q.items[q.it] = v
  end
end

function M.get(q)
  if q.ih <= q.it then
    local v = q.items[q.ih]
    q.items[q.ih] = nil
    q.ih = q.ih + 1
    return v
  end
  q.gt = q.gt + 1
  q.getters[q.gt] = running()
  return yield()
end

--- Lock with FIFO hand-off: release passes the lock to the first waiter.
function M.lock()
  return {locked = false, w = {}, wh = 1, wt = 0}
end

function M.acquire(l)
  if not l.locked then l.locked = true; return end
  l.wt = l.wt + 1
  l.w[l.wt] = running()
  return yield()
end

function M.release(l)
  if l.wh <= l.wt then
    local co = l.w[l.wh]
    l.w[l.wh] = nil
    l.wh = l.wh + 1
    wake(co)
  else
    l.locked = false
  end
end

--- run(fn, arg): runs fn(arg) as the main task until it returns.
function M.run(fn, arg)
  local main = M.spawn(fn, arg)
  while not main.done do
    local stop = tail
    while head <= stop do
      local co, v = rq_co[head], rq_val[head]
      rq_co[head], rq_val[head] = nil, nil
      head = head + 1
      local ok, err = resume(co, v)
      if not ok then error(debug.traceback(co, err), 0) end
    end
    if main.done then break end
    uv.run(head > tail and "once" or "nowait")
  end
  return main.value
end

function M.now() return uv.hrtime() / 1e9 end

return M
