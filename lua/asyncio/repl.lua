--- asyncio.repl: the luaio REPL, as `python -m asyncio`. Each input runs
-- as a task of one asyncio.Runner, so `await(...)` works at top level;
-- `asyncio`, `async` and `await` are ready as globals. An input's values
-- are shown with tostring (tables in a short readable form); an input
-- whose values are all nil shows nothing. On a terminal, line editing and
-- history come from readline (asyncio._term, in the CLI), the history is
-- kept in ~/.luaio_history, and Ctrl-C cancels the running input (or drops
-- the line being typed) instead of leaving the REPL. `exit()` or the end
-- of input leaves; the tasks still pending are then cancelled.
-- The module returns the function that runs the REPL.
local asyncio = require "asyncio"
local errors = require "asyncio.errors"
local core = require "asyncio.core"

local MAX_ITEMS = 10 -- entries a table shows before "..."

local function compile(src)
  local fn = load("return " .. src, "=stdin", "t")
  if fn then return fn end
  return load(src, "=stdin", "t")
end

local function incomplete(err)
  return err ~= nil and err:find("<eof>", 1, true) ~= nil
end

--- A short readable form of a value: tostring, except for plain tables
-- (no __tostring, no __name), shown as `{1, 2, x = 3, ...}` one level deep.
local function short(v)
  if type(v) ~= "table" then return tostring(v) end
  local mt = getmetatable(v)
  if mt ~= nil and (mt.__tostring or mt.__name) then return tostring(v) end
  local parts, n = {}, 0
  local len = #v
  for i = 1, len do
    n = n + 1
    if n > MAX_ITEMS then break end
    local x = v[i]
    parts[n] = type(x) == "string" and ("%q"):format(x) or tostring(x)
  end
  for k, x in next, v do
    if not (math.type(k) == "integer" and k >= 1 and k <= len) then
      n = n + 1
      if n > MAX_ITEMS then break end
      local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k
                  or "[" .. tostring(k) .. "]"
      parts[n] = key .. " = " ..
                 (type(x) == "string" and ("%q"):format(x) or tostring(x))
    end
  end
  if n > MAX_ITEMS then parts[MAX_ITEMS + 1] = "..." end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function show(n, ...)
  local out, any = {}, false
  for i = 1, n do
    local v = select(i, ...)
    if v ~= nil then any = true end
    out[i] = short(v)
  end
  if any then print(table.concat(out, "\t")) end
end

--- The text lua's REPL shows for an error value: strings and numbers as
-- they are, else __tostring's string, else "(error object is a ... value)".
local function message(e)
  if type(e) == "string" or type(e) == "number" then return tostring(e) end
  local mt = getmetatable(e)
  if type(mt) == "table" and mt.__tostring then
    local s = tostring(e)
    if type(s) == "string" then return s end
  end
  return ("(error object is a %s value)"):format(type(e))
end

--- Shows an input's error with its traceback, as lua and python do: the
-- one the error object carries, else the failed task's.
local function report(e)
  if errors.iserror(e, errors.KeyboardInterrupt) then
    io.stderr:write("KeyboardInterrupt\n")
    return
  end
  local tb = type(e) == "table" and rawget(e, "traceback")
  if type(tb) ~= "string" then tb = core._traceback_of(e) end
  io.stderr:write(message(e), "\n")
  if type(tb) == "string" then io.stderr:write(tb, "\n") end
end

--- The input: readline on a terminal (nil at the end, false after
-- Ctrl-C), else lines of stdin.
local function reader()
  local ok, term = pcall(require, "asyncio._term")
  if ok and term.isatty(0) and term.isatty(1) then
    local home = os.getenv("HOME")
    local histfile = home and home .. "/.luaio_history"
    if histfile then term.load_history(histfile) end
    return function(prompt)
      local line = term.readline(prompt)
      return line and line .. "\n" or line
    end, function()
      if histfile then term.save_history(histfile) end
    end
  end
  return function(prompt)
    io.stdout:write(prompt)
    io.stdout:flush()
    return io.read("L")
  end, function() end
end

--- Reads one input, more lines while it is incomplete. Returns the
-- compiled function, or nil and a message, or false after Ctrl-C, or
-- nothing at the end of input.
local function read_input(input)
  local src = input("> ")
  if not src then return src end
  -- lua 5.4's REPL still reads "=exp" as "return exp"
  src = src:gsub("^=", "return ", 1)
  local fn, err = compile(src)
  while not fn and incomplete(err) do
    local more = input(">> ")
    if more == false then return false end
    if more == nil then break end
    src = src .. more
    fn, err = compile(src)
  end
  return fn, err
end

local function repl()
  for name, v in pairs{asyncio = asyncio, async = asyncio.async,
                       await = asyncio.await} do
    if rawget(_G, name) == nil then _G[name] = v end
  end
  local runner = asyncio.Runner()
  local running, status = true, nil
  -- exit([status]): as Python's, an integer is the exit status, another
  -- value is printed and the status is 1
  _G.exit = function(code)
    running, status = false, code
  end
  local input, done = reader()
  while running do
    local fn, err = read_input(input)
    if fn == nil and err == nil then break end
    if fn == false then
      io.stderr:write("KeyboardInterrupt\n")
    elseif not fn then
      io.stderr:write(err, "\n")
    else
      local r = table.pack(pcall(runner.run, runner, asyncio.async(fn)))
      if r[1] then show(r.n - 1, table.unpack(r, 2, r.n))
      else report(r[2]) end
    end
  end
  io.stdout:write("\n")
  done()
  runner:close()
  if status ~= nil then
    if math.type(status) ~= "integer" then
      io.stderr:write(tostring(status), "\n")
      status = 1
    end
    os.exit(status, true)
  end
end

return repl
