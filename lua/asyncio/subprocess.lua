--- asyncio.subprocess: create_subprocess_exec, create_subprocess_shell
-- and Process:communicate.
--
-- The Process object, its pipes (StreamWriter stdin, StreamReader stdout
-- and stderr), wait(), send_signal(), terminate() and kill() are C
-- (bindings/io/process.c); asyncio.PIPE, STDOUT and DEVNULL come from there.
--
--   local p = await(asyncio.create_subprocess_exec("ls", "-l",
--                   {stdout = asyncio.PIPE}))
--   local out, err = await(p:communicate())

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local combinators = require "asyncio.combinators"

local async, await, iserror = core.async, core.await, core.iserror
local getmetatable, pcall, select, tostring, type =
  getmetatable, pcall, select, tostring, type

local M = {}

local function is_options(v)
  return type(v) == "table" and getmetatable(v) == nil
end

--- create_subprocess_exec(program, arg..., [{stdin =, stdout =, stderr =,
-- cwd =, env =, limit =, start_new_session =}]) -> Process. Standard
-- streams default to the parent's; asyncio.PIPE makes a stream,
-- asyncio.DEVNULL discards, stderr = asyncio.STDOUT joins stdout. env
-- replaces the whole environment.
M.create_subprocess_exec = async(function(program, ...)
  local n, opts = select("#", ...), nil
  local argv = {tostring(program)}
  for i = 1, n do
    local a = select(i, ...)
    if i == n and (a == nil or is_options(a)) then
      opts = a
    elseif type(a) == "string" or type(a) == "number" then
      argv[#argv + 1] = tostring(a)
    else
      error(("bad argument #%d to 'create_subprocess_exec' (string "
             .. "expected, got %s)"):format(i + 1, type(a)), 2)
    end
  end
  return core._spawn(tostring(program), argv, opts)
end)

--- create_subprocess_shell(cmd [, opts]) -> Process running
-- /bin/sh -c cmd.
M.create_subprocess_shell = async(function(cmd, opts)
  if type(cmd) ~= "string" then
    error("bad argument #1 to 'create_subprocess_shell' (string expected)",
          2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to 'create_subprocess_shell' (table expected, "
           .. "got %s)"):format(type(opts)), 2)
  end
  return core._spawn("/bin/sh", {"/bin/sh", "-c", cmd}, opts)
end)

--- Writes input (if any) to stdin and closes it; a child that exited
-- without reading is not an error, as in asyncio.
local feed_stdin = async(function(stdin, input)
  if input ~= nil then
    stdin:write(input)
    local ok, err = pcall(await, stdin:drain())
    if not ok and not (iserror(err, errors.BrokenPipeError) or
                       iserror(err, errors.ConnectionResetError)) then
      error(err, 0)
    end
  end
  stdin:close()
end)

local nothing = async(function() end)

--- process:communicate([input]) -> stdout data, stderr data (nil for a
-- stream that is not a pipe): sends input, closes stdin, reads both
-- streams to their end and waits for the exit.
core._Process.communicate = async(function(self, input)
  local stdin, stdout, stderr = self.stdin, self.stdout, self.stderr
  if input ~= nil and stdin == nil then
    error(errors.ValueError("communicate(input) needs stdin = asyncio.PIPE"),
          0)
  end
  local res = await(combinators.gather(
    stdin and feed_stdin(stdin, input) or nothing(),
    stdout and stdout:read() or nothing(),
    stderr and stderr:read() or nothing()))
  await(self:wait())
  return res[2], res[3]
end)

return M
