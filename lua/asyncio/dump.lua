--- asyncio.dump: dump_tasks([file]), the state of every task of every
-- loop of this Lua state, for debugging a program that hangs.
--
-- For each loop (oldest first): each pending task with its name, state, what it awaits
-- (the Future or Task, and the object it waits through: a Lock, a Queue,
-- a StreamReader...) and its Lua stack; then the await tree (who awaits
-- whom, as Python 3.14's `python -m asyncio pstree`): a task's children
-- are the tasks it awaits, directly or through gather.

local core = require "asyncio.core"
local gathered = require("asyncio.combinators")._gathered

local M = {}

local function name_of(t)
  return "'" .. tostring(t:get_name()) .. "'"
end

local function label(t)
  local id, state = core._task_awaits(t)
  return string.format("%s (id %d, %s)", name_of(t), id, state)
end

-- The tasks a task waits for: the awaited task, or a gather's children.
local function awaited_tasks(fut)
  if fut == nil then return {} end
  if core.isfuture(fut) and fut.get_coro then return {fut} end
  local children = gathered[fut]
  local list = {}
  if children then
    for _, c in ipairs(children) do
      if c.get_coro and not c:done() then list[#list + 1] = c end
    end
  end
  return list
end

local function describe(loop, t, out)
  local id, state, fut, via, when = core._task_awaits(t)
  local line = string.format("  Task %s (id %d) %s", name_of(t), id, state)
  if state == "waiting" then
    if fut.get_coro then
      line = line .. " on Task " .. name_of(fut)
    elseif gathered[fut] then
      line = line .. " on gather(" .. #gathered[fut] .. " children)"
    else
      line = line .. " on " .. tostring(fut)
    end
    if via ~= nil then line = line .. " via " .. tostring(via) end
  elseif state == "sleeping" and when then
    line = line .. string.format(" (wakes in %.3f s)", when - loop:time())
  end
  out[#out + 1] = line
  local stack = t:get_stack()
  if #stack > 0 then
    out[#out + 1] = "    stack (most recent call last):"
    for _, frame in ipairs(stack) do out[#out + 1] = "      " .. frame end
  end
  return fut
end

-- The await tree: roots are the tasks no task awaits.
local function tree(tasks, awaits, out)
  local awaited = {}
  for _, t in ipairs(tasks) do
    for _, c in ipairs(awaits[t]) do awaited[c] = true end
  end
  local seen = {}
  local function walk(t, prefix, last, top)
    local branch = top and "" or (last and "└── " or "├── ")
    if seen[t] then
      out[#out + 1] = prefix .. branch .. label(t) .. " (cycle)"
      return
    end
    seen[t] = true
    out[#out + 1] = prefix .. branch .. label(t)
    local kids = awaits[t] or {}
    local next_prefix = top and prefix or
                        prefix .. (last and "    " or "│   ")
    for i, c in ipairs(kids) do walk(c, next_prefix, i == #kids, false) end
  end
  for _, t in ipairs(tasks) do
    if not awaited[t] then walk(t, "  ", true, true) end
  end
  for _, t in ipairs(tasks) do -- tasks on a cycle have no root
    if not seen[t] then walk(t, "  ", true, true) end
  end
end

local function by_id(a, b)
  return (core._task_awaits(a)) < (core._task_awaits(b))
end

--- dump_tasks([file]): writes the dump to file (any object with :write;
-- io.stderr by default). Returns nothing.
function M.dump_tasks(file)
  file = file or io.stderr
  local ok, write = pcall(function() return file.write end)
  if not ok or write == nil then
    error("bad argument #1 to 'dump_tasks' (file expected, got " ..
          type(file) .. ")", 2)
  end
  local out = {}
  local stamps, loops = core._loops(), {}
  for loop in pairs(stamps) do loops[#loops + 1] = loop end
  table.sort(loops, function(a, b) return stamps[a] < stamps[b] end)
  for i, loop in ipairs(loops) do
    local tasks = core.all_tasks(loop)
    table.sort(tasks, by_id)
    out[#out + 1] = string.format("Loop %d of %d: %s, %d pending task%s",
      i, #loops, tostring(loop), #tasks, #tasks == 1 and "" or "s")
    local awaits = {}
    for _, t in ipairs(tasks) do
      awaits[t] = awaited_tasks(describe(loop, t, out))
    end
    if #tasks > 0 then
      out[#out + 1] = "  Await tree (a task above the tasks it awaits):"
      tree(tasks, awaits, out)
    end
  end
  if #loops == 0 then out[#out + 1] = "No event loop." end
  out[#out + 1] = ""
  file:write(table.concat(out, "\n"))
  if file.flush then file:flush() end
end

return M
