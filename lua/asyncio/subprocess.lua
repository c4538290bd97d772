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
local check = require "asyncio.check"

local async, await, iserror = core.async, core.await, core.iserror
local getmetatable, pcall, select, tostring, type =
  getmetatable, pcall, select, tostring, type

local M = {}

local function is_options(v)
  return type(v) == "table" and getmetatable(v) == nil
end

-- The options of every function here (Python's keyword arguments that
-- are implemented); any other name raises "unknown option".
local OPTIONS = check.option_set{"stdin", "stdout", "stderr", "cwd", "env",
                                 "limit", "start_new_session"}

--- Raises "bad argument #n to 'name' (string expected, got <type>)"
-- unless v is a string or a number, `level` frames above the caller.
local function check_word(v, n, name, level)
  if type(v) ~= "string" and type(v) ~= "number" then
    error(("bad argument #%d to '%s' (string expected, got %s)")
          :format(n, name, type(v)), level + 1)
  end
end

--- The argv list and options of program, ... for function `name`, and
-- the argument number of the options (program is argument `first`).
local function exec_args(name, first, program, ...)
  check_word(program, first, name, 3)
  local n, opts = select("#", ...), nil
  local argv = {tostring(program)}
  for i = 1, n do
    local a = select(i, ...)
    if i == n and (a == nil or is_options(a)) then
      opts = a
    else
      check_word(a, first + i, name, 3)
      argv[#argv + 1] = tostring(a)
    end
  end
  return argv, opts, first + n
end

--- create_subprocess_exec(program, arg..., [{stdin =, stdout =, stderr =,
-- cwd =, env =, limit =, start_new_session =}]) -> Process. Standard
-- streams default to the parent's; asyncio.PIPE makes a stream,
-- asyncio.DEVNULL discards, stderr = asyncio.STDOUT joins stdout. env
-- replaces the whole environment.
M.create_subprocess_exec = async(function(program, ...)
  local argv, opts, n = exec_args("create_subprocess_exec", 1, program,
                                  ...)
  check.options(opts, n, "create_subprocess_exec", OPTIONS)
  return core._spawn(tostring(program), argv, opts)
end)

--- create_subprocess_shell(cmd [, opts]) -> Process running
-- /bin/sh -c cmd.
M.create_subprocess_shell = async(function(cmd, opts)
  check.type(cmd, 1, "create_subprocess_shell", "string")
  check.options(opts, 2, "create_subprocess_shell", OPTIONS)
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

-- ------------------------------------------------------------------
-- loop:subprocess_exec / subprocess_shell: the subprocess transport and
-- SubprocessProtocol (pipe_data_received(fd, data),
-- pipe_connection_lost(fd, exc), process_exited(), connection_made,
-- connection_lost), as asyncio's base_subprocess: the child's pipes are
-- pipe transports (process.c's raw mode) whose protocols pass what
-- happens on to the subprocess protocol; a task waits for the exit.
-- connection_lost follows once the child exited and every pipe was lost.

local SubprocessTransport = {}
SubprocessTransport.__index = SubprocessTransport
SubprocessTransport.__name = "asyncio.SubprocessTransport"

function SubprocessTransport:get_pid() return self._pid end
function SubprocessTransport:get_returncode() return self._returncode end
--- true once close() was called (not when the child merely ended), as
-- asyncio's.
function SubprocessTransport:is_closing() return self._closed end
function SubprocessTransport:get_protocol() return self._protocol end
function SubprocessTransport:set_protocol(p) self._protocol = p end

--- get_extra_info(name [, default]): "subprocess" is the Process (whose
-- stdin, stdout and stderr are the pipe transports).
function SubprocessTransport:get_extra_info(name, default)
  if name == "subprocess" then return self._proc end
  return default
end

--- get_pipe_transport(fd): the transport of the child's stdin (0),
-- stdout (1) or stderr (2), or nil when that stream is not a pipe.
function SubprocessTransport:get_pipe_transport(fd)
  local pp = self._pipes[fd]
  return pp and pp.pipe
end

function SubprocessTransport:send_signal(sig) self._proc:send_signal(sig) end
function SubprocessTransport:terminate() self._proc:terminate() end
function SubprocessTransport:kill() self._proc:kill() end

--- close(): closes the pipes and kills a child still running, as
-- asyncio's.
function SubprocessTransport:close()
  if self._closed then return end
  self._closed = true
  for fd = 0, 2 do
    local pp = self._pipes[fd]
    if pp then pp.pipe:close() end
  end
  local p = self._proc
  if self._returncode == nil and p.returncode == nil then pcall(p.kill, p) end
end

SubprocessTransport.__tostring = function(self)
  local rc = self._returncode
  return ("<SubprocessTransport pid=%d%s%s>"):format(self._pid,
    self._closed and " closed" or "",
    rc and " returncode=" .. rc or " running")
end

--- Calls proto:name(...) if it has it; an error goes to the exception
-- handler (a BaseException that is no Exception goes through).
local function notify(loop, transport, proto, name, ...)
  local ok, err = pcall(function(...)
    local fn = proto[name]
    if fn ~= nil then fn(proto, ...) end
  end, ...)
  if not ok then
    if iserror(err) and not iserror(err, errors.Exception) then
      error(err, 0)
    end
    loop:call_exception_handler{
      message = "Exception in callback protocol." .. name .. "()",
      exception = err, transport = transport, protocol = proto}
  end
end

--- Calls the protocol's method `name`, or queues the call until its
-- connection_made ran.
function SubprocessTransport:_call(name, ...)
  local pending = self._pending
  if pending then
    pending[#pending + 1] = table.pack(name, ...)
  else
    notify(self._loop, self, self._protocol, name, ...)
  end
end

--- connection_lost(nil), once the child exited and every pipe was lost.
function SubprocessTransport:_try_finish()
  if self._finished or self._returncode == nil then return end
  for fd = 0, 2 do
    local pp = self._pipes[fd]
    if pp and not pp.disconnected then return end
  end
  self._finished = true
  self:_call("connection_lost", nil)
end

--- The protocol of a pipe transport of the child (asyncio's
-- ReadSubprocessPipeProto / WriteSubprocessPipeProto).
local PipeProto = {}
PipeProto.__index = PipeProto

function PipeProto:data_received(data)
  self.proc:_call("pipe_data_received", self.fd, data)
end

function PipeProto:connection_lost(exc)
  self.disconnected = true
  self.proc:_call("pipe_connection_lost", self.fd, exc)
  self.proc:_try_finish()
end

function PipeProto:pause_writing() self.proc:_call("pause_writing") end
function PipeProto:resume_writing() self.proc:_call("resume_writing") end

local watch = async(function(t)
  t._returncode = await(t._proc:wait())
  t:_call("process_exited")
  t:_try_finish()
end)

local check_factory = check.factory

local function subprocess(loop, factory, file, argv, opts)
  local o = {stdin = core.PIPE, stdout = core.PIPE, stderr = core.PIPE}
  for k, v in pairs(opts or {}) do o[k] = v end
  local proto = factory()
  local p = core._spawn(file, argv, o, true)
  local t = setmetatable({_proc = p, _pid = p.pid, _protocol = proto,
                          _loop = loop, _closed = false, _finished = false,
                          _pipes = {}, _pending = {}}, SubprocessTransport)
  local pipes = {[0] = p.stdin, p.stdout, p.stderr}
  for fd = 0, 2 do
    local pipe = pipes[fd]
    if pipe ~= nil then
      local pp = setmetatable({proc = t, fd = fd, pipe = pipe,
                               disconnected = false}, PipeProto)
      t._pipes[fd] = pp
      pipe:_start(pp)
    end
  end
  t._watch = core.create_task(watch(t))
  -- the pipes' connection_made run first (from the ready queue), then
  -- the protocol's, then what happened meanwhile
  local ok, err = pcall(await, core.sleep(0))
  if not ok then
    t:close()
    error(err, 0)
  end
  local pending = t._pending
  t._pending = nil
  notify(loop, t, proto, "connection_made", t)
  for _, c in ipairs(pending) do t:_call(table.unpack(c, 1, c.n)) end
  return t, proto
end

--- loop:subprocess_exec(factory, program, arg... [, opts]) -> transport,
-- protocol. stdin, stdout and stderr default to asyncio.PIPE; the other
-- options are create_subprocess_exec's.
M.subprocess_exec = async(function(loop, factory, program, ...)
  factory = check_factory(factory, "subprocess_exec")
  local argv, opts, n = exec_args("subprocess_exec", 2, program, ...)
  check.options(opts, n, "subprocess_exec", OPTIONS)
  return subprocess(loop, factory, tostring(program), argv, opts)
end)

--- loop:subprocess_shell(factory, cmd [, opts]) -> transport, protocol
M.subprocess_shell = async(function(loop, factory, cmd, opts)
  factory = check_factory(factory, "subprocess_shell")
  check.type(cmd, 2, "subprocess_shell", "string")
  check.options(opts, 3, "subprocess_shell", OPTIONS)
  return subprocess(loop, factory, "/bin/sh", {"/bin/sh", "-c", cmd}, opts)
end)

core._EventLoop.subprocess_exec = M.subprocess_exec
core._EventLoop.subprocess_shell = M.subprocess_shell
M.subprocess_exec, M.subprocess_shell = nil, nil

return M
