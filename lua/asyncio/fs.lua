--- asyncio.fs: files and directories that never block the loop.
--
-- Every operation that touches the disk is one of libuv's file requests
-- (bindings/io/fs.c), run on libuv's thread pool while the loop goes on;
-- each function here returns a Coroutine object to await, as the rest of
-- the API does:
--
--   local fs = require "asyncio.fs"
--   local f <close> = await(fs.open("notes.txt", "r"))
--   for line in f:lines() do print(line) end      -- the iterator awaits
--   local st = await(fs.stat("notes.txt"))        -- st.size, st.type ...
--
-- An asyncio.File reads and writes at a position it keeps itself (pread
-- and pwrite), so a cancelled read or write leaves it usable: the
-- position only moves when a request's answer is taken. Reads go through
-- a buffer in the File (lines cost no request most of the time); small
-- writes gather in another until flush (or a read, seek, sync, close).
-- The operations of one File run one at a time (a lock in the File orders
-- tasks that share it, in the order they called). Once closed, every
-- method but close raises Python's ValueError.

local core = require "asyncio.core"
local check = require "asyncio.check"
local errors = require "asyncio.errors"

local async, await, iserror = core.async, core.await, core.iserror
local c_open, c_close, c_read, c_write = core._fs_open, core._fs_close,
  core._fs_read, core._fs_write
local c_fstat, c_fsync, c_ftruncate = core._fs_fstat, core._fs_fsync,
  core._fs_ftruncate
local oserror = core._fs_oserror
local error, getmetatable, setmetatable, select, tostring, type, pcall =
  error, getmetatable, setmetatable, select, tostring, type, pcall
local find, sub, match, format, gmatch = string.find, string.sub,
  string.match, string.format, string.gmatch
local concat, pack, unpack = table.concat, table.pack, table.unpack
local tointeger, max, min = math.tointeger, math.max, math.min
local ipairs, tonumber, mtype = ipairs, tonumber, math.type
local getinfo = debug.getinfo

local M = {}

local CHUNK = 65536            -- a read of the buffer asks at least this
local MAX_READ = 64 * 1048576  -- a read-ahead asks at most this at once
local MAX_REQUEST = 0x7fffffff -- a read request asks at most this
local MAX_WRITE = 1073741824   -- a write request carries at most this
local WBUF = 65536             -- small writes gather up to this

--- The type of argument i of a call with n arguments, as luaL_typeerror
-- names it: "no value" only past the last argument given (a nil given
-- is "nil"); without n, a nil is "no value".
local function typename(v, i, n)
  if v == nil and (n == nil or i > n) then return "no value" end
  return type(v)
end

--- Raises "bad argument #i to 'fname' (msg)" at the line that called the
-- public function; `depth` counts the helpers between it and here.
local function argerror(i, fname, msg, depth)
  error(format("bad argument #%d to '%s' (%s)", i, fname, msg),
        3 + (depth or 0))
end

--- v, argument i of a call with n arguments, as a string: a number is
-- taken as its string, as luaL_checkstring (hence Lua's io) takes it.
-- `depth` counts the helpers between the public function and here.
local function check_string(v, i, n, fname, depth)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
  argerror(i, fname, "string expected, got " .. typename(v, i, n),
           depth + 1)
end

--- Argument i of the call (...) as a string (check_string).
local function string_arg(i, fname, ...)
  local s = check_string((select(i, ...)), i, select("#", ...), fname, 1)
  return s
end

--- Argument i of the call (...) as a path: a string as string_arg
-- takes it, without a zero byte.
local function path_arg(i, fname, ...)
  local p = check_string((select(i, ...)), i, select("#", ...), fname, 1)
  if find(p, "\0", 1, true) then -- the system would cut the path there
    argerror(i, fname, "path contains a zero byte", 1)
  end
  return p
end

--- An integer argument; a numeric string is taken as Lua's io takes it.
local function check_int(v, i, fname)
  if tointeger(v) == nil then
    argerror(i, fname, type(v) == "number"
             and "number has no integer representation"
             or "number expected, got " .. typename(v), 1)
  end
  return tointeger(v)
end

--- v as io's write writes it: a string, or a number (integers in
-- decimal, floats with "%.14g"); nil for anything else.
local function bytes_of(v)
  if type(v) == "string" then return v end
  if type(v) ~= "number" then return nil end
  return mtype(v) == "integer" and tostring(v) or format("%.14g", v)
end

-- ----------------------------------------------------------------------
-- The File

local File = {__name = "asyncio.File"}
File.__index = File
M.File = File

--- Raises Python's ValueError for any use of a closed file but close().
local function closed_error()
  error(errors.ValueError("I/O operation on closed file."), 0)
end

local function check_file(self, fname)
  if getmetatable(self) ~= File then
    error(format("bad argument #1 to '%s' (asyncio.File expected, got %s)",
                 fname, typename(self)), 3)
  end
  if self.closed then closed_error() end
end

--- Whether an operation runs or a task waits for the file: then the
-- lock-free paths (a buffered line or write, a flush with nothing
-- buffered) are not taken, so that a task never overtakes one that
-- called before it. locked() alone is false right after a release while
-- the waiter it woke is still queued.
local function busy(self)
  return self._lock:_would_wait()
end

--- Raises when the file was closed while its task waited for the lock.
local function still_open(self)
  if self.closed then closed_error() end
end

local function avail(self)
  return #self._buf - self._bpos + 1
end

--- The read offset of the next request: after the buffered bytes, or -1
-- (the descriptor's own offset) for a pipe or a character device.
local function raw_offset(self)
  if not self._seekable then return -1 end
  return self._pos + avail(self)
end

--- Reads at least `want` more bytes' worth (CHUNK at least, MAX_READ at
-- most) into the buffer. Returns false at the end of the file, else true
-- and whether the answer was short (the end of a regular file). The
-- buffer changes only once the answer is in: a cancellation loses nothing.
local function fill(self, want)
  local n = min(max(want or CHUNK, CHUNK), MAX_READ)
  local chunk = await(c_read(self._fd, n, raw_offset(self)))
  if #chunk == 0 then return false end
  if avail(self) == 0 then
    self._buf, self._bpos = chunk, 1
  else
    self._buf, self._bpos = sub(self._buf, self._bpos) .. chunk, 1
  end
  return true, self._seekable and #chunk < n
end

--- Takes the next n buffered bytes (n <= avail).
local function take(self, n)
  local buf, b = self._buf, self._bpos
  local s
  if b == 1 and n >= #buf then
    s = buf
  else
    s = sub(buf, b, b + n - 1)
  end
  self._pos = self._pos + #s
  if b + #s > #buf then
    self._buf, self._bpos = "", 1
  else
    self._bpos = b + #s
  end
  return s
end

local function drop_buffer(self)
  self._buf, self._bpos = "", 1
end

--- Reads until `need` more bytes past the buffer came in (or the end of
-- the file), asking `want` bytes at a time (CHUNK at least, more as they
-- come); returns the chunks and their size. Large reads are one request
-- of the size asked (a regular file gives it all) and no copy. After an
-- error (a cancellation) what came in waits in the buffer: nothing is
-- lost.
local function gather(self, need, want, sized)
  local parts, got = {}, 0
  local base = raw_offset(self)
  local ok, err = pcall(function()
    while got < need do
      local n = min(max(min(need - got, want), CHUNK), MAX_REQUEST)
      local chunk = await(c_read(self._fd, n,
                                 self._seekable and base + got or -1))
      -- an empty read is the end; a short one is not, even from a
      -- regular file (/proc and /sys give a page at a time, FUSE and
      -- network file systems what they have), as Python reads on, unless
      -- it stops short of the size asked by read_all (`sized`)
      if #chunk == 0 then break end
      parts[#parts + 1] = chunk
      got = got + #chunk
      if sized and #chunk < n then break end
      want = max(want, got)
    end
  end)
  if not ok or got > 0 then -- into the buffer, in one string
    if avail(self) == 0 and #parts == 1 then
      self._buf = parts[1]
    elseif got > 0 then
      self._buf = sub(self._buf, self._bpos) .. concat(parts)
    end
    self._bpos = 1
  end
  if not ok then error(err, 0) end
  return got
end

local function read_count(self, n)
  if n == 0 then -- "" unless at the end of the file, as io's read(0)
    if avail(self) > 0 or fill(self) then return "" end
    return nil
  end
  local a = avail(self)
  if a < n then gather(self, n - a, n - a) end
  a = avail(self)
  if a == 0 then return nil end
  return take(self, min(n, a))
end

--- The next line, with its end of line if keep; nil at the end.
local function read_line(self, keep)
  local from = self._bpos
  while true do
    local e = find(self._buf, "\n", from, true)
    if e then
      local b = self._bpos
      local line = sub(self._buf, b, keep and e or e - 1)
      self._pos = self._pos + (e - b + 1)
      if e == #self._buf then
        drop_buffer(self)
      else
        self._bpos = e + 1
      end
      return line
    end
    from = avail(self) + 1 -- where the unsearched part starts after fill
    if not fill(self, avail(self)) then
      if avail(self) == 0 then return nil end
      return take(self, avail(self))
    end
  end
end

local function read_all(self)
  local want, sized = CHUNK, false
  if self._seekable then -- one request of the size left (and one more)
    local size = await(c_fstat(self._fd)).size
    -- a file of size 0 may still give bytes (/proc): read to an empty read
    sized = size > 0
    want = max(size - raw_offset(self), 0) + 1
  end
  gather(self, math.huge, want, sized)
  return take(self, avail(self))
end

local MAXLENNUM = 200 -- liolib's L_MAXLENNUM: a numeral's longest

-- The classes read_number tests a character against.
local SIGN, ZERO, X, POINT = "^[%+%-]", "^0", "^[xX]", "^%."
local DIGIT, XDIGIT, EXP, XEXP = "^%d", "^%x", "^[eE]", "^[pP]"

--- A numeral, as io's read("n") (liolib's read_number, step by step):
-- after blanks, the characters that may make one are taken, at most
-- MAXLENNUM of them; nil when they do not make a number, or when there
-- were more (the first MAXLENNUM are taken all the same).
local function read_number(self)
  while true do
    local s = find(self._buf, "[^ \t\n\r\f\v]", self._bpos)
    if s then
      take(self, s - self._bpos)
      break
    end
    take(self, avail(self))
    if not fill(self) then return nil end
  end
  -- the numeral and the character after it (io's look-ahead)
  while avail(self) <= MAXLENNUM and fill(self) do end
  local buf, b = self._buf, self._bpos
  local p, overflow = b, false -- p: the look-ahead
  local function test(class) -- takes the look-ahead if in class
    if not find(buf, class, p) then return false end
    if p - b >= MAXLENNUM then overflow = true return false end
    p = p + 1
    return true
  end
  local function digits(class)
    local count = 0
    while test(class) do count = count + 1 end
    return count
  end
  test(SIGN)
  local count, hex = 0, false
  if test(ZERO) then
    if test(X) then hex = true else count = 1 end
  end
  count = count + digits(hex and XDIGIT or DIGIT)
  if test(POINT) then count = count + digits(hex and XDIGIT or DIGIT) end
  if count > 0 and test(hex and XEXP or EXP) then -- an exponent
    test(SIGN)
    digits(DIGIT)
  end
  local numeral = take(self, p - b)
  if overflow then return nil end
  return tonumber(numeral)
end

--- The reader for one format (as format_of gives it).
local function read_one(self, fmt)
  if type(fmt) == "number" then return read_count(self, fmt) end
  if fmt == "l" then return read_line(self, false) end
  if fmt == "L" then return read_line(self, true) end
  if fmt == "a" then return read_all(self) end
  return read_number(self)
end

-- What io's read raises for a negative count: it asks a buffer of that
-- many bytes as a size_t (2^64 less a little), which no allocation
-- gives; lauxlib raises the message alone, without a position.
local NOMEM = "not enough memory"

--- Format f, argument i of read's n: a count (an integer) or the letter
-- of a string format, checked as liolib's g_read checks it: a number
-- must be an integer (NOMEM when negative), anything else a string (a
-- numeral string is no count) whose letter, after an optional '*', is n,
-- l, L or a. Nil and the message of io's error when it is not one. A
-- format it gives is one too (it is checked again at no cost).
local function format_of(f, i, n)
  if type(f) == "number" then
    local count = tointeger(f)
    if count == nil then return nil, "number has no integer representation" end
    if count < 0 then return nil, NOMEM end
    return count
  end
  if type(f) ~= "string" then
    return nil, "string expected, got " .. typename(f, i, n)
  end
  local c = match(f, "^%*?([nlLa])")
  if c == nil then return nil, "invalid format" end
  return c
end

--- Raises io's error for a bad format, argument i of fname: "bad
-- argument" with msg (as format_of gives it) at `level` (error's, from
-- the caller; 0: no position), or NOMEM alone.
local function format_error(i, fname, msg, level)
  if msg == NOMEM then error(NOMEM, 0) end
  error(format("bad argument #%d to '%s' (%s)", i, fname, msg),
        level > 0 and level + 1 or 0)
end

--- Read's formats (from argument 1), packed, "l" when there is none.
-- The first is checked here, at the call; read checks each of the
-- others when it reaches it, as io's read (which stops at the first
-- format that fails before it looks at the next).
local function check_formats(...)
  local fmts = pack(...)
  fmts.fname = "read"
  if fmts.n == 0 then fmts.n, fmts[1] = 1, "l" end
  local fmt, msg = format_of(fmts[1], 1, fmts.n)
  if fmt == nil then format_error(1, "read", msg, 3) end
  fmts[1] = fmt
  return fmts
end

--- Raises the error of format i of a step of lines (bad_step's caller is
-- read_formats, called by the iterator): io's, which checks the formats
-- at each step, counts them from #2 and names the iterator as its caller
-- does ('for iterator' in a generic for, '?' without a name).
local function bad_step(i, msg)
  local ar = getinfo(3, "n")
  if ar.namewhat == "method" then i = i - 1 end
  format_error(i + 1, ar.name or "?", msg, 4)
end

local function unsupported(what)
  error(errors.UnsupportedOperation(what), 0)
end

-- Writes: small writes gather in the File (_wsize bytes at most: WBUF
-- unless setvbuf says otherwise) and go out as one request when it
-- fills, or on flush, seek, a read, sync and close (and at once under
-- setvbuf's "no", or "line" for a write with a newline); a larger write
-- goes out at once. _wbuf holds the pieces, _wlen their size, _wstart
-- the position of the first (the position _pos is after them).

--- The offset of a write request that starts at pos.
local function write_offset(self, pos)
  if self._seekable and not self._append and not self._no_pwrite then
    return pos
  end
  return -1 -- the end (append), a pipe's order, or a stream's (below)
end

local ESPIPE = 29

--- Writes data at position pos; advances _pos. Awaits. When it raises,
-- self._written holds the bytes of data written. A file that refuses a
-- write at an offset (ESPIPE: a kernel file opened as a stream, such as
-- /proc/self/comm) is written with write(2) from then on, as Python does.
local function write_out(self, data, pos)
  local done, len = 0, #data
  while done < len do
    local piece = data
    if done > 0 or len > MAX_WRITE then
      piece = sub(data, done + 1, done + MAX_WRITE)
    end
    local off = write_offset(self, pos + done)
    local ok, n, after = pcall(await, c_write(self._fd, piece, off))
    if not ok then
      if not (off >= 0 and iserror(n, errors.OSError) and n.errno == ESPIPE)
      then
        self._written = done
        error(n, 0)
      end
      self._no_pwrite = true
    else
      done = done + n
      if after and after >= 0 then self._pos = after end -- append
    end
  end
end

--- Writes the buffered pieces out (if any). Awaits. The buffer is handed
-- to the request before it starts: a cancelled flush, as a cancelled
-- write, may or may not have reached the file. A flush that fails keeps
-- what was not written in the buffer, before what was buffered since,
-- as Python's: the next flush (or close) tries it again.
local function flush_writes(self)
  if self._wlen == 0 then return end
  local data, start = concat(self._wbuf), self._wstart
  self._wbuf, self._wlen = {}, 0
  local ok, err = pcall(write_out, self, data, start)
  if ok then return end
  if not iserror(err, errors.CancelledError) then
    local done = self._written or 0
    local rest = sub(data, done + 1)
    table.insert(self._wbuf, 1, rest)
    self._wlen = self._wlen + #rest
    self._wstart = start + done
  end
  error(err, 0)
end

--- Adds data to the write buffer.
local function buffer_write(self, data)
  if self._wlen == 0 then self._wstart = self._pos end
  local wb = self._wbuf
  wb[#wb + 1] = data
  self._wlen = self._wlen + #data
  self._pos = self._pos + #data
end

--- Closes without waiting: what is buffered is written by a detached
-- request, then the descriptor closes (on the thread pool, or at once
-- with no loop running).
local function close_detached(self)
  if self._wlen > 0 then
    local data = concat(self._wbuf)
    local off = write_offset(self, self._wstart)
    self._wbuf, self._wlen = {}, 0
    pcall(self._fd.write_detached, self._fd, data, off)
  end
  self._fd:close_detached()
end

--- Reads the formats in the running task, holding the file's lock; as
-- io's read, stops at the first that fails (nil).
local function read_formats(self, fmts)
  local _ <close> = await(self._lock)
  still_open(self)
  if not self._readable then unsupported("not readable") end
  flush_writes(self)
  local out = {}
  for i = 1, fmts.n do
    local fmt, msg = format_of(fmts[i], i, fmts.n)
    if fmt == nil and fmts.fname then format_error(i, "read", msg, 0) end
    if fmt == nil then bad_step(i, msg) end
    if fmts.n == 1 then return read_one(self, fmt) end
    local v = read_one(self, fmt)
    out[i] = v
    if v == nil then return unpack(out, 1, i) end
  end
  return unpack(out, 1, fmts.n)
end

--- A line ("l", or "L" when keep) when the buffer holds a whole one and
-- the file is not busy: no request, no lock. Else nil.
local function buffered_line(self, keep)
  if self._wlen > 0 or busy(self) then return nil end
  local b = self._bpos
  local e = find(self._buf, "\n", b, true)
  if e == nil then return nil end
  self._pos = self._pos + (e - b + 1)
  local line = sub(self._buf, b, keep and e or e - 1)
  if e == #self._buf then drop_buffer(self) else self._bpos = e + 1 end
  return line
end

local read_coro = async(function(self, fmts)
  local f = fmts[1]
  if fmts.n == 1 and (f == "l" or f == "L") and self._readable and
     not self.closed then
    local line = buffered_line(self, f == "L")
    if line then return line end
  end
  return read_formats(self, fmts)
end)

--- f:read(fmt, ...) -> Coroutine; awaited, what io's read returns: a
-- string of at most n bytes (nil at the end of the file; read(0) is ""
-- unless at the end), "l" a line without its end of line, "L" with it
-- (nil at the end), "a" the rest ("" at the end), "n" a number.
function File:read(...)
  check_file(self, "read")
  return read_coro(self, check_formats(...))
end

local MAXARGLINE = 250 -- liolib's: the most formats lines takes

--- f:lines(fmt, ...) -> an iterator for a generic for, reading the
-- formats ("l" by default) at each step until the first fails; each step
-- awaits, so it runs only inside a task, and raises ValueError once the
-- file is closed. As io's, the formats are checked at each step (the
-- call checks only their count).
function File:lines(...)
  check_file(self, "lines")
  local fmts = pack(...)
  if fmts.n > MAXARGLINE then
    argerror(MAXARGLINE + 1, "lines", "too many arguments")
  end
  if fmts.n == 0 then fmts.n, fmts[1] = 1, "l" end
  local first = fmts.n == 1 and format_of(fmts[1])
  local line_fast = (first == "l" or first == "L") and self._readable
  local keep = first == "L"
  return function()
    if self.closed then closed_error() end
    if line_fast then
      local line = buffered_line(self, keep)
      if line then return line end
    end
    if fmts.n == 1 then -- no tail call: bad_step names this function
      return (read_formats(self, fmts))
    end
    local r = pack(read_formats(self, fmts))
    return unpack(r, 1, r.n)
  end
end

--- Whether a write of data goes out at once, with what is buffered
-- (setvbuf's "no", or "line" and a newline in data).
local function flushes(self, data)
  local mode = self._vbuf
  if mode == "full" then return false end
  return mode == "no" or find(data, "\n", 1, true) ~= nil
end

local write_coro = async(function(self, data)
  local fits = self._wlen + #data <= self._wsize
  local flush = flushes(self, data)
  if fits and not flush and self._writable and not self.closed and
     not busy(self) then
    -- the common case: into the buffer, no request, no lock
    if self._bpos <= #self._buf then drop_buffer(self) end
    buffer_write(self, data)
    return self
  end
  local _ <close> = await(self._lock)
  still_open(self)
  if not self._writable then unsupported("not writable") end
  drop_buffer(self) -- what was read ahead is stale once we write
  if not fits then
    flush_writes(self)
    if #data >= self._wsize then
      local pos = self._pos
      write_out(self, data, pos)
      if not self._append then self._pos = pos + #data end
      return self
    end
  end
  buffer_write(self, data)
  if flush then flush_writes(self) end
  return self
end)

--- f:write(s, ...) -> Coroutine; awaited, writes the strings and numbers
-- (at the end of the file in append mode) and returns the file. Small
-- writes are buffered until flush (or a read, seek, sync, close).
function File:write(...)
  check_file(self, "write")
  local n = select("#", ...)
  local parts = {...}
  for i = 1, n do
    parts[i] = bytes_of(parts[i])
    if parts[i] == nil then
      argerror(i, "write", "string expected, got "
               .. typename(select(i, ...), i, n))
    end
  end
  return write_coro(self, n == 1 and parts[1] or concat(parts, "", 1, n))
end

local seek_coro = async(function(self, whence, offset)
  local _ <close> = await(self._lock)
  still_open(self)
  if not self._seekable then
    error(oserror(29, "seek"), 0) -- ESPIPE: a pipe or a device
  end
  flush_writes(self)
  local base = 0
  if whence == "cur" then
    base = self._pos
  elseif whence == "end" then
    base = await(c_fstat(self._fd)).size
  end
  local pos = base + offset
  if pos < 0 then error(oserror(22, "seek"), 0) end -- EINVAL
  if pos ~= self._pos then
    drop_buffer(self)
    self._pos = pos
  end
  return pos
end)

local whences = {set = true, cur = true, ["end"] = true}

--- f:seek([whence [, offset]]) -> Coroutine; awaited, the new position
-- from the start of the file (whence "set", "cur" (default) or "end").
function File:seek(...)
  check_file(self, "seek")
  local whence, offset = "cur", select(2, ...)
  if ... ~= nil then whence = string_arg(1, "seek", ...) end
  if not whences[whence] then
    argerror(1, "seek", "invalid option '" .. tostring(whence) .. "'")
  end
  offset = offset == nil and 0 or check_int(offset, 2, "seek")
  return seek_coro(self, whence, offset)
end

local flush_coro = async(function(self)
  -- nothing buffered and nothing under way (which may be writing out
  -- this task's data): nothing to wait for
  if self._wlen == 0 and not self.closed and not busy(self) then
    return self
  end
  local _ <close> = await(self._lock)
  still_open(self)
  flush_writes(self)
  return self
end)

--- f:flush() -> Coroutine; awaited, writes what the File buffers out to
-- the OS and returns the file (f:sync() also asks the OS to reach the
-- disk).
function File:flush()
  check_file(self, "flush")
  return flush_coro(self)
end

local sync_coro = async(function(self)
  local _ <close> = await(self._lock)
  still_open(self)
  flush_writes(self)
  await(c_fsync(self._fd))
  return self
end)

--- f:sync() -> Coroutine; awaited, flushes, then fsync(2): the file's
-- data and metadata are on the disk. Returns the file.
function File:sync()
  check_file(self, "sync")
  return sync_coro(self)
end

local truncate_coro = async(function(self, size)
  local _ <close> = await(self._lock)
  still_open(self)
  if not self._writable then unsupported("truncate") end -- as Python's
  flush_writes(self)
  if size == nil then size = self._pos end
  drop_buffer(self) -- what was read ahead may be gone
  await(c_ftruncate(self._fd, size))
  return size
end)

--- f:truncate([size]) -> Coroutine; awaited, resizes the file to size
-- bytes (default: the position), as Python's truncate, and returns the
-- size. The position does not move. A negative size raises the system's
-- OSError (EINVAL), as Python's.
function File:truncate(size)
  check_file(self, "truncate")
  if size ~= nil then size = check_int(size, 1, "truncate") end
  return truncate_coro(self, size)
end

local wait_closed = async(function(self)
  await(core._fs_wait_idle(self._fd))
end)

local function flush_locked(self)
  local _ <close> = await(self._lock)
  flush_writes(self)
end

local close_coro = async(function(self)
  -- the operations that hold the lock finish first, then the buffered
  -- data goes out; if that fails (or this task is cancelled) the file
  -- still closes, and the error is raised
  local ok, err = pcall(flush_locked, self)
  if not ok then
    if not iserror(err, errors.Exception) then
      close_detached(self) -- cancelled: the data still goes out
    else
      self._wbuf, self._wlen = {}, 0
      self._fd:close_detached()
    end
    error(err, 0)
  end
  await(c_close(self._fd))
end)

--- f:close() -> Coroutine; awaited, writes what is buffered out and
-- closes the file (at once for the other methods, which raise ValueError
-- from now on). Closing again waits for a close under way (of a <close>
-- scope) to end, and does nothing more.
function File:close()
  if getmetatable(self) ~= File then check_file(self, "close") end
  if self.closed then return wait_closed(self) end
  self.closed = true
  return close_coro(self)
end

--- The end of a `<close>` scope, and a collected File: closes without
-- waiting (what is buffered is written, then the descriptor closes, on
-- the thread pool).
function File:__close()
  if not self.closed then
    self.closed = true
    close_detached(self)
  end
end
File.__gc = File.__close

function File:__tostring()
  return format("<asyncio.File name=%s mode='%s'%s>", errors.repr(self.name),
                self.mode, self.closed and " closed" or "")
end

local vbuf_modes = {no = true, full = true, line = true}

local setvbuf_coro = async(function(self, mode, size)
  -- nothing buffered and nothing under way: nothing to write out first
  if self._wlen > 0 or self.closed or busy(self) then
    local _ <close> = await(self._lock)
    still_open(self)
    flush_writes(self)
  end
  self._vbuf, self._wsize = mode, size
  return true
end)

--- f:setvbuf(mode [, size]) -> Coroutine; awaited, true, as io's: writes
-- out what is buffered (as flush; a failure raises and leaves the mode
-- as it was), then sets how the writes from then on are buffered. "full"
-- (the default) gathers them up to size bytes (default 64 KiB) until
-- flush (or a read, seek, sync, close); "line" also writes them out with
-- a write that holds a newline; "no" writes each out at once (its await
-- returns once the OS has it). Reads are buffered all the same.
function File:setvbuf(...)
  check_file(self, "setvbuf")
  local mode = string_arg(1, "setvbuf", ...)
  if not vbuf_modes[mode] then
    argerror(1, "setvbuf", "invalid option '" .. mode .. "'")
  end
  local size = select(2, ...)
  size = size == nil and WBUF or check_int(size, 2, "setvbuf")
  return setvbuf_coro(self, mode, size)
end

--- f:fileno() -> the descriptor; ValueError once closed, as Python's.
function File:fileno()
  check_file(self, "fileno")
  return self._fd:fileno()
end

--- The canonical form ("r", "w+", "xb"...) of an open mode, or nil when
-- it is not one: io.open's ("r", "w", "a", "r+", "w+", "a+", with "b"s
-- after them) or Python's (one of r/w/x/a, "+", "b" or "t", each at
-- most once, in any order: "rb+", "br", "rt", "x").
local function canonical_mode(mode)
  if type(mode) ~= "string" then return nil end
  if find(mode, "^[rwa]%+?b*$") then return mode end
  if #mode > 4 or find(mode, "[^rwxab+t]") then return nil end
  local kind, seen = nil, {}
  for c in mode:gmatch(".") do
    if seen[c] then return nil end
    seen[c] = true
    if find(c, "[rwxa]") then
      if kind then return nil end
      kind = c
    end
  end
  if not kind or (seen.b and seen.t) then return nil end
  return kind .. (seen["+"] and "+" or "") .. (seen.b and "b" or "")
end

local Lock = core.Lock

local open_coro = async(function(path, mode, given)
  local fd = await(c_open(path, mode))
  local ok, st = pcall(await, c_fstat(fd))
  if not ok then
    fd:close_detached()
    error(st, 0)
  end
  if st.type == "directory" then -- Python's open refuses a directory
    fd:close_detached()
    error(oserror(21, "open", path), 0)
  end
  local kind, plus = match(mode, "^(.)(%+?)")
  local f = setmetatable({
    name = path, mode = given, closed = false,
    _fd = fd, _pos = 0, _buf = "", _bpos = 1, _lock = Lock(),
    _wbuf = {}, _wlen = 0, _wstart = 0, _vbuf = "full", _wsize = WBUF,
    _readable = kind == "r" or plus == "+",
    _writable = kind ~= "r" or plus == "+",
    _append = kind == "a",
    _seekable = st.type == "file" or st.type == "block",
  }, File)
  -- as C's fopen: "a" starts at the end, "a+" reads from the start
  if kind == "a" and plus == "" and f._seekable then f._pos = st.size end
  return f
end)

--- fs.open(path [, mode]) -> Coroutine; awaited, an asyncio.File. Modes
-- are io.open's: "r" (default), "w", "a", "r+", "w+", "a+", each with an
-- optional "b" (no effect), or Python's spellings of them ("rb+", "rt")
-- and "x" / "x+" (create, failing with FileExistsError if it exists).
function M.open(...)
  local path, mode = path_arg(1, "open", ...), select(2, ...)
  if mode == nil then mode = "r" else mode = string_arg(2, "open", ...) end
  local canonical = canonical_mode(mode)
  if not canonical then argerror(2, "open", "invalid mode") end
  return open_coro(path, canonical, mode)
end

-- ----------------------------------------------------------------------
-- Paths

local function join(dir, name)
  if sub(dir, -1) == "/" then return dir .. name end
  return dir .. "/" .. name
end

local function try(aw)
  return pcall(await, aw)
end

--- fs.stat(path) / fs.lstat(path) -> Coroutine; awaited, {size, mtime,
-- atime, ctime, birthtime, mode, type, ino, dev, nlink, uid, gid}; type is
-- "file", "directory", "link", "fifo", "socket", "char" or "block".
function M.stat(...)
  return core._fs_stat(path_arg(1, "stat", ...))
end

function M.lstat(...)
  return core._fs_lstat(path_arg(1, "lstat", ...))
end

local no_path = async(function() return false end)

--- fs.exists(path) -> Coroutine; awaited, true or false (false for any
-- failure, as os.path.exists: a path with a zero byte in it too).
function M.exists(...)
  local path = string_arg(1, "exists", ...)
  if find(path, "\0", 1, true) then return no_path() end
  return core._fs_exists(path)
end

function M.rmdir(...)
  return core._fs_rmdir(path_arg(1, "rmdir", ...))
end

function M.unlink(...)
  return core._fs_unlink(path_arg(1, "unlink", ...))
end

--- fs.rename(src, dst): replaces dst if it exists (rename(2)).
function M.rename(...)
  local src, dst = path_arg(1, "rename", ...), path_arg(2, "rename", ...)
  return core._fs_rename(src, dst)
end

--- shutil's SameFileError: copyfile's src and dst are one file.
M.SameFileError = errors.OSError:subclass("SameFileError")
--- shutil's SpecialFileError: copyfile's src or dst is a named pipe.
M.SpecialFileError = errors.OSError:subclass("SpecialFileError")

--- e (an OSError) about path, and path2 if given, as Python names them:
-- .filename (.filename2) and the message "[Errno 5] Input/output error:
-- 'src'" ("...: 'src' -> 'dst'").
local function about(e, path, path2)
  if iserror(e, errors.OSError) and e.errno and e.strerror then
    e.filename, e.filename2 = path, path2
    local names = errors.repr(path)
    if path2 then names = names .. " -> " .. errors.repr(path2) end
    e.message = format("[Errno %d] %s: %s", e.errno, e.strerror, names)
  end
  return e
end

--- Awaits aw and returns what it gives; an OSError it raises is about
-- path (and path2).
local function on_path(aw, path, path2)
  local ok, v = pcall(await, aw)
  if not ok then error(about(v, path, path2), 0) end
  return v
end

--- e (an error of opening dst) as shutil.copyfile raises it: an
-- IsADirectoryError for a dst that does not exist (a trailing slash:
-- "d/nodir/", "d/file/") is FileNotFoundError('Directory does not exist:
-- dst'), without errno or filename, its cause the IsADirectoryError;
-- any other names dst.
local function dst_error(e, dst)
  e = about(e, dst)
  if iserror(e, errors.IsADirectoryError) and
     not await(core._fs_exists(dst)) then
    local missing = errors.FileNotFoundError("Directory does not exist: "
                                             .. dst)
    missing.cause = e
    return missing
  end
  return e
end

--- Copies the rest of the File `from` (src) to the File `to` (dst) by
-- reads and writes, to the end of src: a file that says it is empty may
-- not be (/proc, /sys). A failure names the side that failed: src for a
-- read, dst for a write.
local function copy_by_reads(from, to, src, dst)
  while true do
    local chunk = on_path(from:read(CHUNK), src)
    if chunk == nil then return end
    on_path(to:write(chunk), dst)
  end
end

local MIN_SEND = 8388608 -- a kernel copy asks at least 8 MiB (Python's)

--- Copies the File `from` (src, of size bytes) to the start of the new
-- or emptied File `to` (dst) in the kernel (uv_fs_sendfile:
-- copy_file_range(2), else sendfile(2)), until a copy gives nothing (the
-- end of src), as Python's sendfile copy. The system does not say which
-- file a failure comes from: its error names both, as Python's.
local function copy_in_kernel(from, to, size, src, dst)
  local off, want = 0, min(max(size, MIN_SEND), MAX_REQUEST)
  while true do
    local n = on_path(core._fs_sendfile(to._fd, from._fd, off, want),
                      src, dst)
    if n == 0 then return end
    off = off + n
  end
end

--- Raises shutil.copyfile's errors of the checks it makes before it
-- opens anything (a directory src, a named pipe, one file twice); else
-- returns stat(src) and stat(dst) (nil when dst does not exist).
local function copy_checks(src, dst)
  local src_st = await(core._fs_stat(src))
  if src_st.type == "directory" then
    local e = errors.IsADirectoryError(21, "Is a directory")
    e.name = "EISDIR"
    error(about(e, src), 0)
  end
  local dst_is, dst_st = try(core._fs_stat(dst))
  dst_st = dst_is and dst_st or nil
  for _, f in ipairs{{src, src_st}, {dst, dst_st}} do
    if f[2] and f[2].type == "fifo" then
      local e = M.SpecialFileError(("`%s` is a named pipe"):format(f[1]))
      e.filename = f[1]
      error(e, 0)
    end
  end
  if dst_st and src_st.dev == dst_st.dev and src_st.ino == dst_st.ino then
    error(M.SameFileError(("'%s' and '%s' are the same file")
                          :format(src, dst)), 0)
  end
  return src_st, dst_st
end

local copyfile = async(function(src, dst)
  -- src first, as shutil opens it first: a directory or a pipe there
  -- fails before dst is touched
  local src_st, dst_st = copy_checks(src, dst)
  local from <close> = await(M.open(src, "rb"))
  local ok, to = pcall(await, M.open(dst, "wb"))
  if not ok then error(dst_error(to, dst), 0) end
  local to_close <close> = to
  local regular = dst_st == nil or dst_st.type == "file"
  if regular then -- the mode goes too, before the data
    on_path(core._fs_chmod(dst, src_st.mode & 4095), dst)
  end
  if regular and src_st.type == "file" and src_st.size > 0 then
    copy_in_kernel(from, to, src_st.size, src, dst)
  else
    copy_by_reads(from, to, src, dst)
  end
  on_path(to:close(), dst)
end)

--- fs.copyfile(src, dst): copies the data (and the mode), replacing dst,
-- as shutil.copyfile: SameFileError when both name one file (a link of
-- the other too), SpecialFileError for a named pipe, the errors of
-- opening src, then of dst, naming that path (or, for a dst that is no
-- directory and does not exist, "d/nodir/", FileNotFoundError
-- 'Directory does not exist: d/nodir/'); a failure while copying names
-- src for a read, dst for a write, both when the kernel copied.
function M.copyfile(...)
  local src, dst = path_arg(1, "copyfile", ...),
                   path_arg(2, "copyfile", ...)
  return copyfile(src, dst)
end

--- fs.readlink(path) -> Coroutine; awaited, the path a symbolic link
-- holds, as os.readlink (OSError EINVAL when path is no link).
function M.readlink(...)
  return core._fs_readlink(path_arg(1, "readlink", ...))
end

local MARK = {} -- on realpath's stack: the link under it is resolved

--- Pushes the components of path onto the stack rest, the first on top.
local function push_parts(rest, path)
  local parts = {}
  for name in gmatch(path, "[^/]+") do parts[#parts + 1] = name end
  for i = #parts, 1, -1 do rest[#rest + 1] = parts[i] end
end

local ENOMEM = 12

--- An OSError caught while resolving: raised under `strict`; any other
-- error (a cancellation) always, and ENOMEM too: an allocation that
-- failed (in libuv) says nothing of the path (Python's MemoryError is
-- no OSError).
local function resolve_error(e, strict)
  if strict or not iserror(e, errors.OSError) or e.errno == ENOMEM then
    error(e, 0)
  end
end

--- The link newpath seen before: its resolved path; for one still being
-- resolved (a loop), newpath itself, or, under strict, stat's ELOOP.
local function seen_link(seen, newpath, strict)
  if seen[newpath] then return seen[newpath] end
  if strict then await(core._fs_stat(newpath)) end
  return newpath
end

--- One component of realpath: newpath, a name under the resolved path
-- parent. Returns the resolved path after it. A link's target goes onto
-- the stack rest (with newpath and MARK under it) to be resolved in
-- turn. What does not resolve is kept as it is (strict: raises).
local function resolve_step(rest, seen, parent, newpath, strict)
  local ok, st = try(core._fs_lstat(newpath))
  if ok and st.type ~= "link" then return newpath end
  if ok and seen[newpath] ~= nil then
    return seen_link(seen, newpath, strict)
  end
  local target = st
  if ok then ok, target = try(core._fs_readlink(newpath)) end
  if not ok then
    resolve_error(target, strict)
    return newpath
  end
  seen[newpath] = false -- being resolved
  rest[#rest + 1] = newpath
  rest[#rest + 1] = MARK
  push_parts(rest, target)
  return sub(target, 1, 1) == "/" and "/" or parent
end

--- Python 3.13's os.path.realpath(path, strict=strict), step by step:
-- each component is looked at (lstat) under the path resolved so far, a
-- link's target resolved in its place, ".." removes the last component
-- resolved; a link seen twice is resolved once (or is a loop).
local function resolve(path, strict)
  local rest, seen = {}, {}
  push_parts(rest, path)
  local cur = sub(path, 1, 1) == "/" and "/"
              or await(core._fs_realpath("."))
  while #rest > 0 do
    local name = table.remove(rest)
    if name == MARK then
      seen[table.remove(rest)] = cur
    elseif name == ".." then
      cur = match(cur, "^(.*)/")
      if cur == "" then cur = "/" end
    elseif name ~= "." then
      cur = resolve_step(rest, seen, cur, join(cur, name), strict)
    end
  end
  return cur
end

local realpath_coro = async(function(path, strict)
  local ok, real = try(core._fs_realpath(path)) -- one request when it all
  if ok then return real end                    -- resolves
  resolve_error(real, false)
  return resolve(path, strict)
end)

local REALPATH_OPTS = check.option_set{"strict"}

--- fs.realpath(path [, {strict =}]) -> the absolute path without links,
-- "." or "..", as os.path.realpath: what does not resolve (a missing
-- file, a link to nowhere, a loop) is kept as it is, links followed
-- wherever they point; strict raises the first failure instead, naming
-- the absolute path that failed.
function M.realpath(...)
  local path, opts = path_arg(1, "realpath", ...), select(2, ...)
  opts = check.options(opts, 2, "realpath", REALPATH_OPTS) or {}
  return realpath_coro(path, not not opts.strict)
end

--- fs.chmod(path, mode), mode an integer (tonumber("644", 8)).
function M.chmod(...)
  local path, mode = path_arg(1, "chmod", ...), select(2, ...)
  -- strict: "644" would be decimal 644 (0o1204, the sticky bit and no
  -- read for the owner); Python raises TypeError
  return core._fs_chmod(path, check.integer(mode, 2, "chmod"))
end

--- fs.mkdtemp(template) -> the path of a new directory (mode 0700):
-- template ends in "XXXXXX", which mkdtemp(3) replaces.
function M.mkdtemp(...)
  local template = path_arg(1, "mkdtemp", ...)
  if sub(template, -6) ~= "XXXXXX" then
    argerror(1, "mkdtemp", "template must end in 'XXXXXX'")
  end
  return core._fs_mkdtemp(template)
end

local mkdir_coro
mkdir_coro = async(function(path, mode, parents, exist_ok)
  local ok, err = try(core._fs_mkdir(path, mode))
  if ok then return end
  if parents and iserror(err, errors.FileNotFoundError) then
    local parent = match(path, "^(.*[^/])/+[^/]+/*$")
    if parent then -- made with the default mode, as os.makedirs makes them
      await(mkdir_coro(parent, 511, true, true))
      ok, err = try(core._fs_mkdir(path, mode))
      if ok then return end
    end
  end
  if exist_ok and iserror(err, errors.FileExistsError) then
    local is, st = try(core._fs_stat(path))
    if is and st.type == "directory" then return end
  end
  error(err, 0)
end)

local MKDIR_OPTS = check.option_set{"parents", "exist_ok", "mode"}

--- fs.mkdir(path [, {parents =, exist_ok =, mode =}]) -> Coroutine, as
-- pathlib's mkdir: parents makes the missing parents, exist_ok accepts an
-- existing directory; mode (default 0777) is masked by the umask.
function M.mkdir(...)
  local path, opts = path_arg(1, "mkdir", ...), select(2, ...)
  opts = check.options(opts, 2, "mkdir", MKDIR_OPTS) or {}
  local mode = opts.mode == nil and 511
               or check.integer(opts.mode, 2, "mkdir") -- as chmod's
  if not opts.parents and not opts.exist_ok then
    return core._fs_mkdir(path, mode)
  end
  return mkdir_coro(path, mode, opts.parents, opts.exist_ok)
end

local function entries(path)
  local list = await(core._fs_scandir(path))
  for _, e in ipairs(list) do
    e.path = join(path, e.name)
    if e.type == "unknown" then -- a file system without d_type
      local ok, st = try(core._fs_lstat(e.path))
      if ok then e.type = st.type end
    end
  end
  return list
end

--- fs.scandir(path) -> an iterator for a generic for, of {name, type,
-- path} entries (without "." and ".."); the first step awaits the listing
-- (one uv_fs_scandir), so it runs inside a task.
function M.scandir(...)
  local path = path_arg(1, "scandir", ...)
  local list, i = nil, 0
  return function()
    if list == nil then list = entries(path) end
    i = i + 1
    return list[i]
  end
end

local listdir_coro = async(function(path)
  local names = {}
  for i, e in ipairs(await(core._fs_scandir(path))) do names[i] = e.name end
  return names
end)

--- fs.listdir(path) -> Coroutine; awaited, the list of names. libuv's
-- scandir sorts them (byte order), unlike Python's directory order.
function M.listdir(...)
  return listdir_coro(path_arg(1, "listdir", ...))
end

local readfile_coro = async(function(path)
  local f <close> = await(M.open(path, "rb"))
  local data = await(f:read("a"))
  await(f:close())
  return data
end)

--- fs.readfile(path) -> Coroutine; awaited, the whole content.
function M.readfile(...)
  return readfile_coro(path_arg(1, "readfile", ...))
end

local writefile_coro = async(function(path, data)
  local f <close> = await(M.open(path, "wb"))
  await(f:write(data))
  await(f:close())
  return #data
end)

--- fs.writefile(path, data) -> Coroutine; awaited, replaces the content
-- (creating the file) and returns the count of bytes written.
function M.writefile(...)
  local path = path_arg(1, "writefile", ...)
  local data = bytes_of((select(2, ...))) -- as f:write takes it
  if data == nil then
    argerror(2, "writefile", "string expected, got "
             .. typename(select(2, ...), 2, select("#", ...)))
  end
  return writefile_coro(path, data)
end

-- ----------------------------------------------------------------------
-- StreamWriter:sendfile

local SEND_CHUNK = 262144

local sendfile_coro = async(function(writer, file, offset, count)
  local _ <close> = await(file._lock)
  still_open(file)
  if not file._readable then unsupported("not readable") end
  flush_writes(file)
  if not file._seekable then error(oserror(29, "sendfile"), 0) end
  local sent = 0
  local ok, err = pcall(function()
    while count == nil or sent < count do
      local want = SEND_CHUNK
      if count then want = min(want, count - sent) end
      local chunk = await(c_read(file._fd, want, offset + sent))
      if #chunk == 0 then break end
      writer:write(chunk)
      sent = sent + #chunk
      await(writer:drain())
    end
  end)
  -- as loop.sendfile, even when it failed: the file is left after the
  -- data handed to the writer
  if ok or sent > 0 then
    drop_buffer(file)
    file._pos = offset + sent
  end
  if not ok then error(err, 0) end
  return sent
end)

--- writer:sendfile(file [, offset [, count]]) -> Coroutine; awaited,
-- writes count bytes of the asyncio.File (all up to the end by default)
-- from offset (default 0) to the stream, a chunk at a time, awaiting
-- drain after each (CPython's fallback of loop.sendfile), and returns
-- the count sent. The file's position is then offset + that count.
local function sendfile(writer, file, offset, count)
  if getmetatable(file) ~= File then
    argerror(1, "sendfile", "asyncio.File expected, got " .. typename(file))
  end
  if file.closed then closed_error() end
  offset = offset == nil and 0 or check_int(offset, 2, "sendfile")
  if offset < 0 then argerror(2, "sendfile", "offset must be >= 0") end
  if count ~= nil then
    count = check_int(count, 3, "sendfile")
    if count <= 0 then
      argerror(3, "sendfile", "count must be a positive integer")
    end
  end
  return sendfile_coro(writer, file, offset, count)
end
-- the methods of StreamWriter (bindings/io/stream.c)
core._StreamWriter.sendfile = sendfile

return M
