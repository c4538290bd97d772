--- A minimal asyncio-like layer on cqueues, for the cqueues twins of the
-- workloads: tasks are coroutines of one cqueues controller (cq:wrap),
-- sleep is cqueues.sleep, and futures, queues and locks wait on cqueues
-- condition variables. The same API as luv.lua; no error classes.
-- Cancellation (for w8), the smallest that works: only a sleep made with
-- cancellable_sleep can be cancelled; it waits on a condition of its own
-- with the sleep as timeout (cqueues.poll), and cancel(task) signals it
-- so that the sleep returns M.CANCELLED, which the task returns.
-- wait_first(tasks) polls the tasks' done conditions at once
-- (cqueues.poll takes many).

local cqueues = require "cqueues"
local condition = require "cqueues.condition"

local M = {name = "cqueues"}
local cq

--- spawn(fn, arg) -> task
function M.spawn(fn, arg)
  local t = {done = false, cond = condition.new()}
  cq:wrap(function()
    t.co = coroutine.running()
    local r = fn(arg)
    t.done, t.value = true, r
    t.cond:signal()
  end)
  return t
end

function M.await(t)
  while not t.done do t.cond:wait() end
  return t.value
end

M.future = function() return {done = false, cond = condition.new()} end

function M.set_result(f, v)
  f.done, f.value = true, v
  f.cond:signal()
end

M.sleep = cqueues.sleep

M.CANCELLED = setmetatable({}, {__name = "CANCELLED"})
local sleepers = {}  -- coroutine -> condition of its cancellable sleep
local poll = cqueues.poll

--- cancellable_sleep(s) -> nil, or M.CANCELLED when cancelled.
function M.cancellable_sleep(s)
  local co = coroutine.running()
  local c = condition.new()
  sleepers[co] = c
  poll(c, s)
  if sleepers[co] == c then
    sleepers[co] = nil
    return nil
  end
  return M.CANCELLED
end

--- cancel(task) -> whether it was in a cancellable sleep.
function M.cancel(t)
  local c = t.co and sleepers[t.co]
  if not c then return false end
  sleepers[t.co] = nil
  c:signal()
  return true
end

--- wait_first(tasks) -> the first of tasks found done.
function M.wait_first(tasks)
  local conds = {}
  while true do
    for i = 1, #tasks do
      if tasks[i].done then return tasks[i] end
      conds[i] = tasks[i].cond
    end
    poll(table.unpack(conds))
  end
end

function M.queue()
  return {items = {}, ih = 1, it = 0, cond = condition.new()}
end

function M.put(q, v)
  q.it = q.it + 1
  q.items[q.it] = v
  q.cond:signal(1)
end

function M.get(q)
  while q.ih > q.it do q.cond:wait() end
  local v = q.items[q.ih]
  q.items[q.ih] = nil
  q.ih = q.ih + 1
  return v
end

--- A lock with FIFO hand-off: release passes it to the longest waiter,
-- as asyncio's Lock does; each blocked acquire waits on a condition of
-- its own (signal() would wake every waiter).
function M.lock()
  return {locked = false, w = {}, wh = 1, wt = 0}
end

function M.acquire(l)
  if not l.locked then l.locked = true; return end
  local c = condition.new()
  l.wt = l.wt + 1
  l.w[l.wt] = c
  c:wait()
end

function M.release(l)
  if l.wh <= l.wt then
    local c = l.w[l.wh]
    l.w[l.wh] = nil
    l.wh = l.wh + 1
    c:signal()
  else
    l.locked = false
  end
end

function M.run(fn, arg)
  cq = cqueues.new()
  local main = M.spawn(fn, arg)
  assert(cq:loop())
  assert(main.done, "the main task did not finish")
  return main.value
end

M.now = cqueues.monotime

return M
