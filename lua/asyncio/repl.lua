--- asyncio.repl: the luaio REPL. Each input runs as a task on one event
-- loop, so `await(...)` works at top level, as in `python -m asyncio`.
-- An expression's values are printed; `exit()` or end-of-file leaves.
-- The module returns the function that runs the REPL.
local asyncio = require "asyncio"

local function compile(src)
  local fn, err = load("return " .. src, "=stdin", "t")
  if fn then return fn end
  return load(src, "=stdin", "t")
end

local function incomplete(err)
  return err and err:find("<eof>", 1, true) ~= nil
end

local function show(ok, ...)
  if not ok then
    io.stderr:write(tostring((...)), "\n")
  elseif select("#", ...) > 0 then
    local out = {}
    for i = 1, select("#", ...) do out[i] = tostring((select(i, ...))) end
    print(table.concat(out, "\t"))
  end
end

local function repl()
  local loop = asyncio.new_event_loop()
  asyncio.set_event_loop(loop)
  local running = true
  _G.exit = function() running = false end
  while running do
    io.stdout:write("> ")
    io.stdout:flush()
    local src = io.read("L")
    if src == nil then break end
    local fn, err = compile(src)
    while not fn and incomplete(err) do
      io.stdout:write(">> ")
      io.stdout:flush()
      local more = io.read("L")
      if more == nil then break end
      src = src .. more
      fn, err = compile(src)
    end
    if not fn then
      io.stderr:write(err, "\n")
    else
      show(pcall(loop.run_until_complete, loop, asyncio.async(fn)()))
    end
  end
  io.stdout:write("\n")
  loop:close()
  asyncio.set_event_loop(nil)
end

return repl
