--- A minimal asyncio-like scheduler on luv (libuv for Lua), for the luv
-- twins of the workloads: tasks are Lua coroutines, a FIFO ready queue
-- runs what was ready when an iteration began (as asyncio does), timers
-- are libuv timers, and futures, queues and locks hand values and
-- ownership straight to their first waiter. Deliberately lean: no
-- cancellation, no error classes, one waiter per future; the fairest
-- (fastest) shape a luv user would write for these workloads.

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
end

--- spawn(fn, arg) -> task; fn(arg) runs from the next iteration.
function M.spawn(fn, arg)
  local t = {fn = fn, arg = arg, done = false}
  wake(create(trampoline), t)
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

--- sleep(s): s == 0 yields one iteration; else a libuv timer.
function M.sleep(s)
  local co = running()
  if s <= 0 then
    wake(co)
    return yield()
  end
  local timer = uv.new_timer()
  timer:start(math.floor(s * 1000 + 0.5), 0, function()
    timer:close()
    wake(co)
  end)
  return yield()
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
