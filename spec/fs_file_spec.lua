-- spec/fs_file_spec.lua: asyncio.File (lua/asyncio/fs.lua on
-- bindings/io/fs.c): open's modes, io's read formats and their values at
-- the end of a file, write, seek, append, lines, the order of tasks that
-- share a File, <close> and the errors of a closed File, cancellation of
-- a pending request, the loop going on during large reads and writes, and
-- StreamWriter:sendfile over a real TCP connection.
--
-- Each test works in a fresh directory under /tmp, removed afterwards.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local fs = require "asyncio.fs"
local h = dofile("spec/helpers.lua")
local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror

local ROOT = io.popen("id -u"):read("l") == "0"

local tmp = dofile("spec/fixtures/fsdir.lua")("luaio-fs-file", before_each,
                                                after_each)
local path, put, get = tmp.path, tmp.put, tmp.get

local function await_error(aw) return h.await_error(aw) end

--- e is Python's error for an operation on a closed file: an
-- asyncio.ValueError object, not a string.
local function assert_closed_error(e)
  assert.is_true(iserror(e, asyncio.ValueError), tostring(e))
  assert.equal("I/O operation on closed file.", e.message)
  assert.equal("ValueError: I/O operation on closed file.",
               tostring(e):match("^[^\n]*"))
end

describe("fs.open", function()
  -- /proc/kallsyms has size 0 and gives a page at a time: a short read
  -- is not the end there
  it("reads a kernel file to its end: read('a'), read(n) and readfile "
     .. "go past a short read, as Python's", aspec.async(function()
    local p = "/proc/kallsyms"
    local want = io.open(p, "rb"):read("a")
    assert.is_true(#want > 100000, "a large /proc file")
    local f <close> = await(fs.open(p, "rb"))
    assert.equal(0, await(fs.stat(p)).size)
    assert.is_true(want == await(f:read("a")), "read('a') is short")
    await(f:seek("set", 0))
    assert.is_true(want == await(f:read(#want + 10)), "read(n) is short")
    assert.is_true(want == await(fs.readfile(p)), "readfile is short")
  end))

  it("a flush that fails keeps the data: the next flush and close raise "
     .. "again, as Python's (/dev/full)", aspec.async(function()
    local f = await(fs.open("/dev/full", "w"))
    await(f:write("abc"))
    for _ = 1, 2 do
      local e = await_error(f:flush())
      assert.is_true(iserror(e, asyncio.OSError), tostring(e))
      assert.equal(28, e.errno)
    end
    local e = await_error(f:close())
    assert.equal(28, e.errno)
    assert.is_true(f.closed)
    await(f:close()) -- closed: nothing more to do
  end))

  it("writes a kernel file that refuses a write at an offset (ESPIPE) "
     .. "with write(2), as Python", aspec.async(function()
    local comm = "/proc/self/comm"
    local before = await(fs.readfile(comm))
    await(fs.writefile(comm, "luaio-spec"))
    assert.equal("luaio-spec\n", await(fs.readfile(comm)))
    await(fs.writefile(comm, before:gsub("\n$", "")))
    assert.equal(before, await(fs.readfile(comm)))
  end))

  it("returns an asyncio.File with name and mode; 'r' reads an existing "
     .. "file", aspec.async(function()
    put("a", "abc")
    local f <close> = await(fs.open(path("a")))
    assert.equal(path("a"), f.name)
    assert.equal("r", f.mode)
    assert.is_false(f.closed)
    assert.matches("^<asyncio.File name='.*/a' mode='r'>$", tostring(f))
    assert.equal("abc", await(f:read("a")))
  end))

  it("a missing file raises FileNotFoundError shaped as Python's",
     aspec.async(function()
    local e = await_error(fs.open(path("missing"), "r"))
    assert.is_true(iserror(e, asyncio.FileNotFoundError))
    assert.is_true(iserror(e, asyncio.OSError))
    assert.equal(2, e.errno)
    assert.equal("ENOENT", e.name)
    assert.equal("No such file or directory", e.strerror)
    assert.equal(path("missing"), e.filename)
    assert.equal("FileNotFoundError: [Errno 2] No such file or directory: '"
                 .. path("missing") .. "'", tostring(e))
  end))

  it("a directory raises IsADirectoryError, in every mode",
     aspec.async(function()
    for _, mode in ipairs{"r", "w", "a", "r+"} do
      local e = await_error(fs.open(tmp.dir(), mode))
      assert.is_true(iserror(e, asyncio.IsADirectoryError), mode)
      assert.equal(21, e.errno)
      assert.equal(tmp.dir(), e.filename)
    end
  end))

  it("a path through a regular file raises NotADirectoryError",
     aspec.async(function()
    put("file", "x")
    local e = await_error(fs.open(path("file/inner"), "r"))
    assert.is_true(iserror(e, asyncio.NotADirectoryError))
    assert.equal(20, e.errno)
    assert.equal(path("file/inner"), e.filename)
  end))

  it(ROOT and "as root, a file of mode 000 opens (root is not refused; "
     .. "this run is root)"
     or "a file of mode 000 raises PermissionError", aspec.async(function()
    put("locked", "secret")
    await(fs.chmod(path("locked"), 0))
    if ROOT then
      local f <close> = await(fs.open(path("locked"), "r"))
      assert.equal("secret", await(f:read("a")))
    else
      local e = await_error(fs.open(path("locked"), "r"))
      assert.is_true(iserror(e, asyncio.PermissionError))
      assert.equal(13, e.errno)
      assert.equal(path("locked"), e.filename)
    end
  end))

  it("'w' creates and truncates, 'r+' keeps the content, 'w+' reads back "
     .. "what it wrote", aspec.async(function()
    put("t", "old content")
    local w = await(fs.open(path("t"), "w"))
    await(w:close())
    assert.equal("", get("t"))
    local n = await(fs.open(path("new"), "wb"))
    await(n:write("created"))
    await(n:close())
    assert.equal("created", get("new"))
    put("rp", "0123456789")
    local rp <close> = await(fs.open(path("rp"), "r+"))
    assert.equal("012", await(rp:read(3)))
    await(rp:write("abc"))
    assert.equal("6789", await(rp:read("a")))
    await(rp:close())
    assert.equal("012abc6789", get("rp"))
    local wp <close> = await(fs.open(path("wp"), "w+"))
    await(wp:write("line 1\nline 2\n"))
    assert.equal(0, await(wp:seek("set")))
    assert.equal("line 1", await(wp:read("l")))
  end))

  it("bad arguments raise errors naming 'open'", aspec.async(function()
    local e = h.error_of(fs.open, true)
    assert.matches("bad argument #1 to 'open' %(string expected, got "
                   .. "boolean%)", e)
    -- as luaL_typeerror: a nil given is "nil", a missing one "no value"
    assert.matches("bad argument #1 to 'open' %(string expected, got "
                   .. "nil%)", h.error_of(fs.open, nil))
    assert.matches("bad argument #1 to 'open' %(string expected, got "
                   .. "no value%)", h.error_of(fs.open))
    assert.matches("bad argument #2 to 'open' %(string expected, got "
                   .. "table%)", h.error_of(fs.open, path("a"), {}))
    -- a number is a mode's string, as io.open takes it: "3" is none
    for _, mode in ipairs{"rw", "r+b+", "", 3, "rbt", "rr", "q", "xw"} do
      e = h.error_of(fs.open, path("a"), mode)
      assert.matches("bad argument #2 to 'open' %(invalid mode%)", e)
    end
  end))

  it("takes a number as a path (its string), as io.open does",
     aspec.async(function()
    assert.same({nil, "5: No such file or directory", 2}, {io.open(5)})
    local e = await_error(fs.open(5))
    assert.is_true(iserror(e, asyncio.FileNotFoundError), tostring(e))
    assert.equal("5", e.filename)
    e = await_error(fs.open(1.5, "r"))
    assert.equal("1.5", e.filename)
  end))

  it("takes Python's mode spellings: rb+, br, rt, and x (exclusive "
     .. "creation)", aspec.async(function()
    put("a", "abc")
    local f <close> = await(fs.open(path("a"), "rb+"))
    assert.equal("rb+", f.mode)
    assert.equal("ab", await(f:read(2)))
    await(f:write("Z"))
    await(f:close())
    assert.equal("abZ", get("a"))
    for _, mode in ipairs{"br", "rt", "tr"} do
      local g <close> = await(fs.open(path("a"), mode))
      assert.equal("abZ", await(g:read("a")))
    end
    local x <close> = await(fs.open(path("new"), "x"))
    await(x:write("made"))
    await(x:close())
    assert.equal("made", get("new"))
    local err = h.await_error(fs.open(path("new"), "xb"))
    assert.is_true(asyncio.iserror(err, asyncio.FileExistsError))
    assert.equal(path("new"), err.filename)
    local rw <close> = await(fs.open(path("fresh"), "x+"))
    await(rw:write("12"))
    assert.equal(0, await(rw:seek("set")))
    assert.equal("12", await(rw:read("a")))
  end))

  it("reading a file opened to write raises UnsupportedOperation (an "
     .. "OSError and a ValueError), and writing one opened to read",
     aspec.async(function()
    put("a", "abc")
    local w <close> = await(fs.open(path("w"), "w"))
    local e = await_error(w:read("a"))
    assert.is_true(iserror(e, asyncio.UnsupportedOperation))
    assert.is_true(iserror(e, asyncio.OSError))
    assert.is_true(iserror(e, asyncio.ValueError))
    assert.equal("UnsupportedOperation: not readable", tostring(e))
    local r <close> = await(fs.open(path("a"), "r"))
    e = await_error(r:write("x"))
    assert.equal("UnsupportedOperation: not writable", tostring(e))
    assert.equal("abc", await(r:read("a")))
  end))
end)

describe("File:read", function()
  it("follows io at the end of a file: read(n), 'l' and 'L' give nil, "
     .. "'a' gives '', read(0) gives '' before the end and nil at it",
     aspec.async(function()
    put("a", "xy")
    local f <close> = await(fs.open(path("a")))
    assert.equal("", await(f:read(0)))
    assert.equal("xy", await(f:read(5)))
    assert.is_nil(await(f:read(5)))
    assert.is_nil(await(f:read("l")))
    assert.is_nil(await(f:read("L")))
    assert.equal("", await(f:read("a")))
    assert.is_nil(await(f:read(0)))
    assert.is_nil(await(f:read("n")))
    -- the same file under Lua's io gives the same values
    local g = io.open(path("a"), "rb")
    g:read(5)
    assert.is_nil(g:read(5))
    assert.is_nil(g:read("l"))
    assert.equal("", g:read("a"))
    g:close()
  end))

  it("reads several formats in one call and stops at the first that "
     .. "fails", aspec.async(function()
    put("a", "12 0x1F -3.5e2\nword\nlast")
    local f <close> = await(fs.open(path("a")))
    local a, b, c, rest = await(f:read("n", "n", "n", "l"))
    assert.equal(12, a)
    assert.equal(31, b)
    assert.equal(-350.0, c)
    assert.equal("", rest)
    local r = table.pack(await(f:read("L", "n", "l")))
    assert.equal(2, r.n)
    assert.equal("word\n", r[1])
    assert.is_nil(r[2])
    assert.equal("last", await(f:read("*l"))) -- Lua 5.3's '*' is accepted
    local none = table.pack(await(f:read("l", "a")))
    assert.equal(1, none.n)
    assert.is_nil(none[1])
  end))

  it("read('n') takes what io's takes: an exponent only after a digit",
     aspec.async(function()
    for _, text in ipairs{"e5", ".e5", "0xp1", "1e", "0e2x", "-.5e-1;",
                          "0x1p4", "1.5.3", "0x", "+-1", "0x.8p1"} do
      put("n", text)
      local g = io.open(path("n"), "rb")
      local want, want_rest = g:read("n"), g:read("a")
      g:close()
      local f <close> = await(fs.open(path("n")))
      assert.equal(want, await(f:read("n")), text)
      assert.equal(want_rest, await(f:read("a")), text)
    end
  end))

  it("read('n') takes at most 200 characters, as io's: a longer "
     .. "numeral gives nil and leaves the rest", aspec.async(function()
    local rep = string.rep
    for _, case in ipairs{
      {rep("1", 200) .. " x", tonumber(rep("1", 200)), " x"},
      {rep("1", 201) .. " x", nil, "1 x"},
      {rep("1", 200) .. ".5", nil, ".5"},
      {rep("1", 199) .. "e5 y", nil, "5 y"},
      {"-" .. rep("0", 198) .. "1;", -1, ";"},
    } do
      local text, want, want_rest = case[1], case[2], case[3]
      put("n", text)
      local g = io.open(path("n"), "rb")
      assert.same({want, want_rest}, {g:read("n"), g:read("a")})
      g:close()
      local f <close> = await(fs.open(path("n")))
      assert.same({want, want_rest}, {await(f:read("n")), await(f:read("a"))})
    end
  end))

  it("read() is read('l'); CRLF keeps its CR as io does",
     aspec.async(function()
    put("a", "one\r\ntwo")
    local f <close> = await(fs.open(path("a")))
    assert.equal("one\r", await(f:read()))
    assert.equal("two", await(f:read()))
    assert.is_nil(await(f:read()))
  end))

  it("a bad first format raises at the call with io's message; the file "
     .. "is left as it was", aspec.async(function()
    put("a", "x")
    local f <close> = await(fs.open(path("a")))
    for _, case in ipairs{
      {"x", "invalid format"}, {"10", "invalid format"}, -- no count
      {1.5, "number has no integer representation"},
      {2^63, "number has no integer representation"},
      {nil, "string expected, got nil"}, {{}, "string expected, got table"},
    } do
      local e = h.error_of(f.read, f, case[1])
      assert.equal("bad argument #1 to 'read' (" .. case[2] .. ")",
                   h.message(e), tostring(case[1]))
    end
    assert.equal("x", await(f:read("a")))
  end))

  it("a negative count raises io's 'not enough memory' (io asks a buffer "
     .. "of 2^64 bytes less a little), at the call for the first format, "
     .. "when the read reaches it for a later one (it said 'invalid "
     .. "format')", aspec.async(function()
    -- io's own answers are written out: under the address sanitizer, an
    -- allocation that large aborts the process
    put("a", "x\ny\n")
    local f <close> = await(fs.open(path("a")))
    for _, count in ipairs{-1, math.mininteger} do
      -- a plain message, no position, as lauxlib raises it
      assert.equal("not enough memory", h.error_of(f.read, f, count))
    end
    -- io reads the line, then fails: so does the File
    assert.equal("not enough memory", h.await_error(f:read("l", -1)))
    assert.equal("y\n", await(f:read("L")))
    -- at the end "l" fails first: the count is never looked at
    assert.is_nil(await(f:read("l", -1)))
  end))

  it("a later format is checked when the read reaches it, as io's: "
     .. "never after a format that failed", aspec.async(function()
    put("a", "x\ny\nz\n")
    local f <close> = await(fs.open(path("a")))
    local g = io.open(path("a"))
    --- The error message of g:read(...), or its results packed.
    local function io_read(...)
      local ok, r = pcall(function(...)
        local r = table.pack(g:read(...)) -- no tail call: io names 'read'
        return r
      end, ...)
      return ok and r or h.message(r)
    end
    --- The same of await(f:read(...)).
    local function read(...)
      local ok, r = pcall(function(...)
        return table.pack(await(f:read(...)))
      end, ...)
      return ok and r or h.message(r)
    end
    local bad = "bad argument #%d to 'read' (%s)"
    for _, step in ipairs{
      -- "l" reads x, then the second format raises: x is gone
      {{"l", "q", n = 2}, bad:format(2, "invalid format")},
      {{"l", "l", nil, n = 3}, bad:format(3, "string expected, got nil")},
      -- at the end "l" fails: the format after it is never looked at
      {{"l", nil, n = 2}, {n = 1}},
      {{"l", {}, n = 2}, {n = 1}},
      -- "a" gives "" at the end: 1.5 is then checked
      {{"a", 1.5, n = 2},
       bad:format(2, "number has no integer representation")},
    } do
      local args, want = step[1], step[2]
      assert.same(want, io_read(table.unpack(args, 1, args.n)))
      assert.same(want, read(table.unpack(args, 1, args.n)))
    end
    g:close()
  end))

  it("returns binary data unchanged, lines longer than the read-ahead "
     .. "included", aspec.async(function()
    local long = string.rep("0123456789abcdef", 20000) -- 320000 bytes
    local bin = "\0\1\2\255\r\0"
    put("a", long .. "\n" .. bin .. "\nend")
    local f <close> = await(fs.open(path("a"), "rb"))
    assert.equal(long, await(f:read("l")))
    assert.equal(bin .. "\n", await(f:read("L")))
    assert.equal("end", await(f:read("l")))
    assert.equal(#long + #bin + 5, await(f:seek()))
  end))
end)

describe("File:write and File:seek", function()
  it("write takes strings and numbers as io does and returns the file",
     aspec.async(function()
    local f = await(fs.open(path("a"), "w"))
    local same = await(f:write("a", 1, " ", 2.5, " ", 3.0))
    assert.equal(f, same)
    await(await(f:write("\n")):write("z"))
    await(f:close())
    local g = io.open(path("b"), "w")
    g:write("a", 1, " ", 2.5, " ", 3.0, "\n", "z")
    g:close()
    assert.equal(get("b"), get("a"))
    local c <close> = await(fs.open(path("c"), "w"))
    assert.matches("bad argument #2 to 'write' %(string expected, got "
                   .. "table%)", h.error_of(c.write, c, "x", {}))
    -- a nil given is "nil", as io's write says it
    assert.matches("bad argument #1 to 'write' %(string expected, got "
                   .. "nil%)", h.error_of(c.write, c, nil))
    assert.matches("bad argument #2 to 'write' %(string expected, got "
                   .. "nil%)", h.error_of(c.write, c, 1, nil))
  end))

  it("seek returns the new position for 'set', 'cur' and 'end' and moves "
     .. "reads and writes", aspec.async(function()
    put("a", "0123456789")
    local f <close> = await(fs.open(path("a"), "r+"))
    assert.equal(0, await(f:seek()))
    assert.equal(10, await(f:seek("end")))
    assert.equal(7, await(f:seek("end", -3)))
    assert.equal("789", await(f:read("a")))
    assert.equal(2, await(f:seek("set", 2)))
    assert.equal("23", await(f:read(2)))
    assert.equal(5, await(f:seek("cur", 1)))
    await(f:write("X"))
    assert.equal(6, await(f:seek()))
    assert.equal(12, await(f:seek("set", 12)))
    await(f:write("!"))
    await(f:close())
    assert.equal("01234X6789\0\0!", get("a"))
  end))

  it("truncate resizes to a size or the position, which stays",
     aspec.async(function()
    put("a", "0123456789")
    local f <close> = await(fs.open(path("a"), "r+"))
    assert.equal(4, await(f:seek("set", 4)))
    assert.equal(4, await(f:truncate()))
    assert.equal(4, await(f:seek()))
    assert.equal("", await(f:read("a")))
    await(f:write("xy"))
    assert.equal(8, await(f:truncate(8)))
    assert.equal(0, await(f:seek("set")))
    assert.equal("0123xy\0\0", await(f:read("a")))
    local r <close> = await(fs.open(path("a")))
    local e = h.await_error(r:truncate(0))
    assert.is_true(iserror(e, asyncio.UnsupportedOperation))
    assert.equal("UnsupportedOperation: truncate", tostring(e)) -- Python's
  end))

  it("truncate to a negative size raises OSError EINVAL, as Python's, "
     .. "and leaves the file", aspec.async(function()
    put("a", "0123")
    local f <close> = await(fs.open(path("a"), "r+"))
    local e = await_error(f:truncate(-1))
    assert.is_true(iserror(e, asyncio.OSError), tostring(e))
    assert.equal(22, e.errno)
    assert.equal("OSError: [Errno 22] Invalid argument", tostring(e))
    assert.equal("0123", await(f:read("a")))
  end))

  it("seek before the start raises OSError EINVAL; bad arguments name "
     .. "'seek'", aspec.async(function()
    put("a", "abc")
    local f <close> = await(fs.open(path("a")))
    assert.equal(1, await(f:seek("set", 1)))
    local e = await_error(f:seek("cur", -5))
    assert.is_true(iserror(e, asyncio.OSError))
    assert.equal(22, e.errno)
    assert.equal("OSError: [Errno 22] Invalid argument", tostring(e))
    assert.equal(1, await(f:seek()))
    assert.matches("bad argument #1 to 'seek' %(invalid option 'top'%)",
                   h.error_of(f.seek, f, "top"))
    assert.matches("bad argument #1 to 'seek' %(string expected, got "
                   .. "table%)", h.error_of(f.seek, f, {}))
    assert.matches("bad argument #2 to 'seek' %(number has no integer "
                   .. "representation%)", h.error_of(f.seek, f, "set", 0.5))
  end))

  it("append mode writes at the end whatever the position, as io's "
     .. "(\"a\" starts at the end, \"a+\" reads from the start)",
     aspec.async(function()
    put("a", "start\n")
    local f = await(fs.open(path("a"), "a"))
    local g = io.open(path("a"), "a")
    assert.equal(g:seek(), await(f:seek()))
    g:close()
    await(f:write("one\n"))
    assert.equal(10, await(f:seek()))
    assert.equal(0, await(f:seek("set", 0)))
    await(f:write("two\n"))
    assert.equal(14, await(f:seek()))
    await(f:close())
    assert.equal("start\none\ntwo\n", get("a"))
    local p <close> = await(fs.open(path("a"), "a+"))
    local q = io.open(path("a"), "a+")
    assert.equal(q:seek(), await(p:seek()))
    q:close()
    assert.equal("start", await(p:read("l")))
    await(p:write("three\n"))
    assert.equal(20, await(p:seek()))
    assert.equal(0, await(p:seek("set")))
    assert.equal("start\none\ntwo\nthree\n", await(p:read("a")))
  end))

  it("small writes wait in the file until flush, which returns it; sync "
     .. "flushes and returns it", aspec.async(function()
    local f <close> = await(fs.open(path("a"), "w"))
    await(f:write("data"))
    assert.equal("", get("a"))
    assert.equal(f, await(f:flush()))
    assert.equal("data", get("a"))
    await(f:write("more"))
    assert.equal(f, await(f:sync()))
    assert.equal("datamore", get("a"))
    local big = string.rep("x", 65537) -- larger than the buffer: at once
    await(f:write(big))
    assert.equal(8 + 65537, #get("a"))
  end))

  it("setvbuf('no') writes each write out at once, 'line' at a write "
     .. "holding a newline, 'full' up to its size; each returns true as "
     .. "io's", aspec.async(function()
    local f <close> = await(fs.open(path("a"), "w"))
    local g = io.open(path("io"), "w")
    for _, mode in ipairs{"no", "line", "full"} do
      assert.equal(g:setvbuf(mode), await(f:setvbuf(mode)))
    end
    g:close()
    assert.is_true(await(f:setvbuf("no")))
    await(f:write("a"))
    assert.equal("a", get("a"))
    await(f:write("b", "c"))
    assert.equal("abc", get("a"))
    assert.is_true(await(f:setvbuf("line")))
    await(f:write("d"))
    assert.equal("abc", get("a")) -- no newline: it waits
    await(f:write("e\nf"))
    assert.equal("abcde\nf", get("a")) -- all that waited goes with it
    assert.is_true(await(f:setvbuf("full", 4)))
    await(f:write("ghi"))
    assert.equal("abcde\nf", get("a"))
    await(f:write("jk")) -- past 4 bytes: what waited goes out
    assert.equal("abcde\nfghi", get("a"))
    await(f:write("lmnop")) -- larger than 4 bytes: at once
    assert.equal("abcde\nfghijklmnop", get("a"))
    assert.is_true(await(f:setvbuf("full")))
    await(f:write("\n"))
    assert.equal("abcde\nfghijklmnop", get("a"))
    await(f:close())
    assert.equal("abcde\nfghijklmnop\n", get("a"))
  end))

  it("setvbuf writes out what was buffered first, in order with the "
     .. "writes of other tasks, so that nothing is lost or reordered when "
     .. "a smaller buffer or none follows (it kept it buffered)",
     aspec.async(function()
    local f <close> = await(fs.open(path("a"), "w"))
    await(f:write("a", "b")) -- buffered
    assert.equal("", get("a"))
    assert.is_true(await(f:setvbuf("no")))
    assert.equal("ab", get("a")) -- out, as C's setvbuf flushes
    await(f:write("c"))
    assert.equal("abc", get("a"))
    assert.is_true(await(f:setvbuf("full")))
    await(f:write(string.rep("d", 100)))
    assert.is_true(await(f:setvbuf("full", 10))) -- smaller than what waits
    assert.equal("abc" .. string.rep("d", 100), get("a"))
    -- a task that calls write first is served first, setvbuf's flush next
    await(f:write("e")) -- buffered
    local order = {}
    local a = h.spawn(function()
      local first = f:write(string.rep("F", 70000)) -- a request
      local b = h.spawn(function()
        await(f:setvbuf("no"))
        order[#order + 1] = "setvbuf"
      end)
      await(first)
      order[#order + 1] = "write"
      await(b)
      await(f:write("g")) -- "no": out at once
    end)
    await(a)
    assert.same({"write", "setvbuf"}, order)
    assert.equal("abc" .. string.rep("d", 100) .. "e"
                 .. string.rep("F", 70000) .. "g", get("a"))
  end))

  it("a setvbuf whose flush fails raises as flush does and keeps the "
     .. "data and the mode (it returned true)", aspec.async(function()
    local f = await(fs.open("/dev/full", "w"))
    await(f:write("kept")) -- buffered
    local e = h.await_error(f:setvbuf("no"))
    assert.is_true(iserror(e, asyncio.OSError), tostring(e))
    assert.equal(28, e.errno)
    await(f:write("x")) -- still "full": buffered, no error
    e = h.await_error(f:flush()) -- the data is still there
    assert.equal(28, e.errno)
    e = h.await_error(f:close()) -- and closes all the same
    assert.equal(28, e.errno)
    assert.is_true(f.closed)
  end))

  it("setvbuf's bad arguments are io's", aspec.async(function()
    local f <close> = await(fs.open(path("a"), "w"))
    local g <close> = io.open(path("io"), "w")
    for _, args in ipairs{{"bad", n = 1}, {n = 0}, {nil, n = 1}, {{}, n = 1},
                          {"full", 1.5, n = 2}, {"line", "x", n = 2}} do
      local want = h.message(select(2, pcall(function()
        local _ = g:setvbuf(table.unpack(args, 1, args.n)) -- names setvbuf
      end)))
      assert.equal(want, h.message(h.error_of(f.setvbuf, f,
                                              table.unpack(args, 1, args.n))))
    end
    assert.equal("bad argument #1 to 'setvbuf' (invalid option 'bad')",
                 h.message(h.error_of(f.setvbuf, f, "bad")))
    await(f:close())
    assert.is_true(iserror(h.error_of(f.setvbuf, f, "no"), asyncio.ValueError))
  end))

  it("a read, a seek and close write the buffered data out first; so do "
     .. "<close> and collection, without waiting", function()
    -- its own loop: closing it runs the collected file's requests to
    -- their end, which nothing else can await
    local loop <close> = asyncio.new_event_loop()
    local gone = setmetatable({}, {__mode = "v"})
    loop:run_until_complete(async(function()
      local f = await(fs.open(path("a"), "w+"))
      await(f:write("abc"))
      assert.equal(0, await(f:seek("set")))
      assert.equal("abc", await(f:read("a")))
      await(f:write("def"))
      await(f:close())
      assert.equal("abcdef", get("a"))
      local scoped
      do
        local g <close> = await(fs.open(path("b"), "w"))
        await(g:write("scoped"))
        scoped = g
      end
      await(scoped:close()) -- waits for the write and the close under way
      assert.equal("scoped", get("b"))
      local h2 = await(fs.open(path("c"), "a"))
      await(h2:write("collected"))
      gone[1] = h2
      h2 = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.is_nil(gone[1])
    end)())
    loop:close()
    assert.equal(0, loop:_counts().handles)
    assert.equal("collected", get("c"))
  end)

  it("many small writes become few requests and keep their order",
     aspec.async(function()
    local f <close> = await(fs.open(path("a"), "w"))
    local want = {}
    for i = 1, 20000 do
      await(f:write(i, "\n"))
      want[i] = i .. "\n"
    end
    await(f:close())
    assert.equal(table.concat(want), get("a"))
  end))
end)

describe("devices", function()
  it("a character device is read in order; seeking it raises ESPIPE",
     aspec.async(function()
    local f <close> = await(fs.open("/dev/zero", "rb"))
    assert.equal("\0\0\0", await(f:read(3)))
    assert.equal(string.rep("\0", 70000), await(f:read(70000)))
    local e = h.await_error(f:seek("set", 0))
    assert.is_true(iserror(e, asyncio.OSError))
    assert.equal(29, e.errno)
  end))

  it("a failed flush raises; close still closes and raises",
     aspec.async(function()
    local f = await(fs.open("/dev/full", "w"))
    await(f:write("lost"))
    local e = h.await_error(f:flush())
    assert.is_true(iserror(e, asyncio.OSError))
    assert.equal("OSError: [Errno 28] No space left on device", tostring(e))
    await(f:write("lost again"))
    e = h.await_error(f:close())
    assert.equal(28, e.errno)
    assert.is_true(f.closed)
  end))

  it("a failed write of <close> goes to the exception handler",
     aspec.async(function()
    local loop = asyncio.get_running_loop()
    local reported, calls = loop:create_future(), 0
    loop:set_exception_handler(function(_, ctx)
      calls = calls + 1
      reported:set_result(ctx)
    end)
    do
      local f <close> = await(fs.open("/dev/full", "w"))
      await(f:write("lost"))
    end
    local ctx = await(reported) -- the write ran on the thread pool
    loop:set_exception_handler(nil)
    assert.equal(1, calls)
    assert.equal("asyncio.File lost data written before it closed",
                 ctx.message)
    assert.equal(28, ctx.exception.errno)
  end))
end)

describe("File:lines", function()
  it("iterates the lines (awaiting inside), with formats as io's lines",
     aspec.async(function()
    local text = {}
    for i = 1, 5000 do text[i] = "line " .. i end
    put("a", table.concat(text, "\n") .. "\n")
    local f <close> = await(fs.open(path("a")))
    local n = 0
    for line in f:lines() do
      n = n + 1
      assert.equal(text[n], line)
    end
    assert.equal(5000, n)
    assert.is_nil(await(f:read("l")))
    assert.equal(0, await(f:seek("set")))
    local got = {}
    for l in f:lines("L") do got[#got + 1] = l end
    assert.equal(table.concat(text, "\n") .. "\n", table.concat(got))
    put("b", "1 2\n3")
    local g <close> = await(fs.open(path("b")))
    local nums = {}
    for x in g:lines("n") do nums[#nums + 1] = x end
    assert.same({1, 2, 3}, nums)
  end))

  it("checks its formats at each step, as io's: the call takes any, a "
     .. "step raises io's error naming 'for iterator' (it checked them all "
     .. "at the call)", aspec.async(function()
    put("a", "x\ny\nz\n")
    local f <close> = await(fs.open(path("a")))
    local g <close> = io.open(path("a"))
    --- The message of the error of a for loop over file:lines(...) (its
    -- position cut) and the lines it gave before it.
    local function loop(file, ...)
      local got = {}
      local ok, e = pcall(function(...)
        for l in file:lines(...) do got[#got + 1] = l end
      end, ...)
      assert.is_false(ok)
      return {h.message(e), got}
    end
    for _, args in ipairs{
      {"x", n = 1}, {"l", nil, n = 2}, {"l", {}, n = 2}, {1.5, n = 1},
      {"L", "l", "q", n = 3}, -- two lines read, then the error
    } do
      assert.is_function(f:lines(table.unpack(args, 1, args.n)))
      local want = loop(g, table.unpack(args, 1, args.n))
      assert.same(want, loop(f, table.unpack(args, 1, args.n)))
      g:seek("set")
      await(f:seek("set"))
    end
    assert.same({"bad argument #4 to 'for iterator' (invalid format)",
                 {}}, loop(f, "L", "l", "q"))
    await(f:seek("set"))
    assert.same({"not enough memory", {}}, loop(f, -1)) -- as read(-1)
    -- the position is the for loop's, as io's
    local ok, e = pcall(function()
      for _ in f:lines("z") do end -- this line
    end)
    assert.is_false(ok)
    assert.matches("^spec/fs_file_spec.lua:%d+: bad argument #2 to 'for "
                   .. "iterator' %(invalid format%)$", e)
    -- the count of formats is checked at the call: 250 at most
    local many = {}
    for i = 1, 251 do many[i] = "l" end
    assert.is_function(f:lines(table.unpack(many, 1, 250)))
    assert.equal(select(2, pcall(function()
                   local it = g:lines(table.unpack(many)) -- names 'lines'
                   return it
                 end)):match("bad argument.*"),
                 h.error_of(f.lines, f, table.unpack(many)):match("bad arg.*"))
  end))

  it("a step on a closed file raises ValueError, as Python's (it raised "
     .. "a string)", aspec.async(function()
    put("a", "x\ny\n")
    local f = await(fs.open(path("a")))
    local it = f:lines()
    assert.equal("x", it())
    await(f:close())
    assert_closed_error(h.error_of(it))
  end))
end)

-- The File's lock-free paths (a buffered write, a buffered line, a flush
-- with nothing buffered) took `not lock:locked()` for "nobody is served":
-- right after a release, locked() is false while the waiter it woke is
-- still queued, and the task that released, calling again at once,
-- overtook it. In each spec A holds the File's lock in a request when it
-- starts B, so B queues behind A's operation; A then calls again.
describe("tasks sharing a File (fs audit: queue-jumping fast paths)",
         function()
  it("a write called while another task's write runs is served before "
     .. "that task's next write", aspec.async(function()
    local f <close> = await(fs.open(path("a"), "w"))
    local big = string.rep("A", 70000) -- more than the buffer: a request
    local b
    local a = h.spawn(function()
      local first = f:write(big)
      b = h.spawn(function() await(f:write("B")) end)
      await(first) -- B's step runs while this request is on the pool
      await(f:write("a2"))
    end)
    await(a)
    await(b)
    await(f:close())
    assert.equal(#big + 3, #get("a"))
    assert.equal("Ba2", get("a"):sub(-3))
  end))

  it("a buffered line goes to the task queued first, not to the one that "
     .. "just released the file", aspec.async(function()
    put("a", "l1\nl2\nl3\nl4\n")
    local f <close> = await(fs.open(path("a")))
    local got, b = {}, nil
    local a = h.spawn(function()
      local first = f:read("l") -- nothing buffered yet: a request
      b = h.spawn(function() got.b = await(f:read("l")) end)
      got.a1 = await(first)
      got.a2 = await(f:read("l")) -- buffered, but B called before
    end)
    await(a)
    await(b)
    assert.same({a1 = "l1", b = "l2", a2 = "l3"}, got)
  end))

  it("so does a step of lines()", aspec.async(function()
    put("a", "l1\nl2\nl3\nl4\n")
    local f <close> = await(fs.open(path("a")))
    local got, b = {}, nil
    local a = h.spawn(function()
      local step = f:lines()
      b = h.spawn(function() got.b = await(f:read("l")) end)
      got.a1 = step() -- a request, B's step runs meanwhile
      got.a2 = step()
    end)
    await(a)
    await(b)
    assert.same({a1 = "l1", b = "l2", a2 = "l3"}, got)
  end))

  it("a flush with nothing buffered waits for the operation under way, "
     .. "which may be writing this task's data", aspec.async(function()
    local f <close> = await(fs.open(path("a"), "w"))
    await(f:write("x")) -- buffered
    local order, flushed = {}, nil
    local a = h.spawn(function()
      local seek = f:seek() -- writes "x" out, holding the lock
      h.spawn(function()
        await(f:flush())
        order[#order + 1] = "flush"
        flushed = get("a")
      end)
      await(seek)
      order[#order + 1] = "seek"
    end)
    await(a)
    await(f:flush())
    assert.same({"seek", "flush"}, order)
    assert.equal("x", flushed)
  end))
end)

describe("closing", function()
  local function fd_open(fd)
    return io.open("/proc/self/fd/" .. fd) ~= nil
  end

  it("a <close> variable closes the descriptor at the end of its scope",
     aspec.async(function()
    put("a", "x")
    local file, fd
    do
      local f <close> = await(fs.open(path("a")))
      file, fd = f, f:fileno()
      assert.is_true(fd_open(fd))
    end
    assert.is_true(file.closed)
    assert_closed_error(h.error_of(file.fileno, file)) -- as Python's
    -- the close runs on the thread pool; close() again waits for it
    await(file:close())
    assert.is_false(fd_open(fd))
  end))

  it("closing twice does nothing; other methods of a closed file raise "
     .. "ValueError 'I/O operation on closed file.', as Python's (they "
     .. "raised a string)", aspec.async(function()
    put("a", "x")
    local f = await(fs.open(path("a")))
    local fd = f:fileno()
    await(f:close())
    assert.is_false(fd_open(fd))
    await(f:close())
    f:__close()
    assert.is_true(f.closed)
    assert.matches("<asyncio.File name='.*' mode='r' closed>", tostring(f))
    local n = 0
    for _, m in ipairs{"read", "write", "seek", "flush", "sync", "truncate",
                       "lines", "fileno"} do
      assert_closed_error(h.error_of(f[m], f, m == "write" and "x" or nil))
      n = n + 1
    end
    assert.equal(8, n)
    -- so does the descriptor object under the File, should it be reached
    -- (it raised a string)
    local core = require "asyncio.core"
    assert_closed_error(h.error_of(core._fs_read, f._fd, 1, 0))
    assert_closed_error(h.error_of(core._fs_write, f._fd, "x", 0))
  end))

  it("an operation made before close and awaited after it raises "
     .. "ValueError too, on the lock-free paths as on the others",
     aspec.async(function()
    put("a", "l1\nl2\n")
    local f = await(fs.open(path("a"), "r+"))
    assert.equal("l1", await(f:read("l"))) -- "l2" is buffered now
    -- a buffered line, a read, a buffered write, a flush with nothing
    -- buffered, and operations that always take the lock
    local made = {f:read("l"), f:read(1), f:write("x"), f:flush(),
                  f:seek("set", 0), f:truncate(), f:sync()}
    local step = f:lines()
    await(f:close())
    for _, aw in ipairs(made) do assert_closed_error(await_error(aw)) end
    assert_closed_error(h.error_of(step))
    await(f:close()) -- close() again raises nothing, as Python's
    assert.equal("l1\nl2\n", get("a"))
  end))

  it("a file closed by another task while this one waits for the file "
     .. "raises there", aspec.async(function()
    put("a", string.rep("x", 100))
    local f = await(fs.open(path("a")))
    local first = h.spawn(function() return await(f:read(10)) end)
    local second = h.spawn(function() return await(f:read(10)) end)
    await(asyncio.sleep(0))
    await(f:close())
    assert.equal(string.rep("x", 10), await(first))
    assert_closed_error(await_error(second))
  end))
end)

describe("cancellation", function()
  it("a cancelled pending read leaves the file usable at the same "
     .. "position", aspec.async(function()
    put("a", "0123456789abcdef")
    local f <close> = await(fs.open(path("a")))
    for _ = 1, 20 do
      local t = h.spawn(function() return await(f:read(4)) end)
      await(asyncio.sleep(0)) -- the read's request is on the pool now
      assert.is_false(t:done())
      t:cancel()
      local e = await_error(t)
      assert.is_true(iserror(e, asyncio.CancelledError))
      assert.equal(0, await(f:seek()))
    end
    assert.equal("0123", await(f:read(4)))
    assert.equal("456789abcdef", await(f:read("a")))
  end))

  it("a cancelled write that still runs lands before the next write "
     .. "(which waits for it)", aspec.async(function()
    -- a FIFO nobody drains yet: the first write blocks on the pool, half
    -- done, when it is cancelled
    assert.is_true(os.execute("mkfifo " .. path("fifo")))
    local w <close> = await(fs.open(path("fifo"), "r+"))
    local r <close> = await(fs.open(path("fifo"), "r"))
    local big = string.rep("A", 1048576)
    local t = h.spawn(function() return await(w:write(big)) end)
    local got = {await(r:read(1))} -- the write runs: it cannot be undone
    t:cancel()
    assert.is_true(iserror(h.await_error(t), asyncio.CancelledError))
    local reader = h.spawn(function()
      local n = 1
      repeat
        local chunk = await(r:read(65536))
        got[#got + 1] = chunk
        n = n + #chunk
      until n >= #big + 1
    end)
    await(await(w:write("B")):flush())
    await(reader)
    local data = table.concat(got)
    assert.equal(#big + 1, #data)
    assert.is_true(data == big .. "B", "B came before the end of the "
                   .. "cancelled write")
  end))

  it("a cancelled write that still runs keeps the string it writes, "
     .. "which nothing else holds, until it ends", aspec.async(function()
    -- large writes hand the Lua string itself to the pool: once the task
    -- gave the request up, only the loop keeps that string alive
    assert.is_true(os.execute("mkfifo " .. path("fifo")))
    local w <close> = await(fs.open(path("fifo"), "r+"))
    local r <close> = await(fs.open(path("fifo"), "r"))
    -- 1 + 16 * 65536 bytes: read(n) waits for all of its n bytes
    local function pattern(c)
      return string.rep(c .. "0123456789", 95325) .. "xy"
    end
    local t = h.spawn(function() return await(w:write(pattern("q"))) end)
    local got = {await(r:read(1))} -- the write runs and blocks, half done
    t:cancel()
    assert.is_true(iserror(h.await_error(t), asyncio.CancelledError))
    collectgarbage()
    collectgarbage()
    -- new strings of the same size take whatever memory was freed
    local others = {}
    for i = 1, 4 do others[i] = pattern(tostring(i)) end
    local expected = pattern("q")
    -- bounded: a write from freed memory could also end short
    await(asyncio.wait_for(async(function()
      repeat
        local chunk = await(r:read(65536))
        got[#got + 1] = chunk
      until #table.concat(got) >= #expected
    end)(), 30))
    assert.equal(4, #others)
    assert.is_true(table.concat(got) == expected, "the bytes written are "
                   .. "the string's")
  end))

  it("a cancelled copy between two files (copyfile's) holds both until "
     .. "it ends: closing its source waits for it", aspec.async(function()
    -- a FIFO nobody drains yet as the target: the copy (by reads and
    -- writes on the pool, a FIFO takes no copy_file_range) blocks
    assert.is_true(os.execute("mkfifo " .. path("fifo")))
    local w <close> = await(fs.open(path("fifo"), "r+"))
    local r <close> = await(fs.open(path("fifo"), "r"))
    -- 1 + 16 * 65536 bytes: read(n) waits for all of its n bytes
    local big = "x" .. string.rep("0123456789abcdef", 65536)
    put("src", big)
    local src = await(fs.open(path("src")))
    local fd = src:fileno()
    local t = h.spawn(function()
      return await(require("asyncio.core")._fs_sendfile(w._fd, src._fd, 0,
                                                        #big))
    end)
    local got = {await(r:read(1))} -- the copy runs: it cannot be undone
    t:cancel()
    assert.is_true(iserror(h.await_error(t), asyncio.CancelledError))
    await(src:close()) -- its descriptor closes once the copy ends
    assert.is_true(io.open("/proc/self/fd/" .. fd) ~= nil)
    await(asyncio.wait_for(async(function() -- bounded: a copy cut short
      local n = 1                            -- would leave it waiting
      repeat
        local chunk = await(r:read(65536))
        got[#got + 1] = chunk
        n = n + #chunk
      until n >= #big
    end)(), 30))
    assert.is_true(table.concat(got) == big, "the whole source was read")
    await(src:close()) -- waits for the close under way
    assert.is_nil(io.open("/proc/self/fd/" .. fd))
  end))

  --- How many of this process's descriptors are open on `file`, counted
  -- on a loop of its own.
  local function fds_on(file)
    local counter <close> = asyncio.new_event_loop()
    return counter:run_until_complete(async(function()
      local n = 0
      for _, fd in ipairs(await(fs.listdir("/proc/self/fd"))) do
        local ok, target = pcall(await, fs.readlink("/proc/self/fd/" .. fd))
        if ok and target == file then n = n + 1 end
      end
      return n
    end)())
  end

  --- fds_on(file) once it is 0, or after about 10 s.
  local function fds_left_on(file)
    local n
    for _ = 1, 1000 do -- a pool thread closes them soon after
      n = fds_on(file)
      if n == 0 then break end
      os.execute("sleep 0.01")
    end
    return n
  end

  it("a cancelled open closes the descriptor it may have opened",
     function()
    put("a", "x")
    -- its own loop: an open given up still runs on the pool, then its
    -- descriptor closes, with nothing to await (when its loop has closed
    -- meanwhile, on the pool)
    local loop <close> = asyncio.new_event_loop()
    loop:run_until_complete(async(function()
      for _ = 1, 20 do
        local t = h.spawn(function() return await(fs.open(path("a"))) end)
        await(asyncio.sleep(0))
        t:cancel()
        pcall(await, t)
      end
    end)())
    loop:close()
    assert.equal(0, loop:_counts().handles)
    assert.equal(0, fds_left_on(path("a")))
  end)

  it("a loop closed while an open waits (a FIFO's) leaves it running; "
     .. "what it opens later is closed, not leaked", function()
    local fifo = path("fifo")
    assert.is_true(os.execute("mkfifo " .. fifo))
    local loop = asyncio.new_event_loop()
    loop:run_until_complete(async(function()
      -- waits on the pool for a writer
      local t = h.spawn(function() return await(fs.open(fifo, "r")) end)
      await(asyncio.sleep(0))
      t:cancel()
      assert.is_false(pcall(await, t))
    end)())
    loop:close() -- only that open is left: the loop leaves it
    -- a writer comes (read-write: it never blocks); the open returns on
    -- the pool, which closes its descriptor
    local w = assert(io.open(fifo, "r+"))
    w:close()
    assert.equal(0, fds_left_on(fifo))
  end)
end)

describe("large reads and writes", function()
  it("the loop keeps running a concurrent task during a 64 MiB write and "
     .. "read", aspec.async(function()
    local ticks, running = 0, true
    local ticker = h.spawn(function()
      while running do
        ticks = ticks + 1
        await(asyncio.sleep(0))
      end
    end)
    local data = string.rep("0123456789abcdef", 4 * 1048576) -- 64 MiB
    local f <close> = await(fs.open(path("big"), "w+"))
    await(f:write(data))
    local during_write = ticks
    assert.equal(0, await(f:seek("set")))
    local back = await(f:read(#data))
    running = false
    await(ticker)
    assert.equal(#data, #back)
    assert.is_true(back == data)
    -- each loop iteration gives the ticker one step: a loop blocked for the
    -- whole operation counts at most two, one that goes on counts many
    -- (hundreds on an idle machine, fewer when the cores are busy)
    assert.is_true(during_write > 5, "ticks during write: " .. during_write)
    assert.is_true(ticks - during_write > 5,
                   "ticks during read: " .. (ticks - during_write))
  end))
end)

describe("StreamWriter:sendfile", function()
  local function sha256(file)
    return io.popen("sha256sum " .. file):read("l"):match("^(%x+)")
  end

  -- Python reads everything from our server and prints length and hash.
  local PEER = [[
import hashlib, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
h, n = hashlib.sha256(), 0
while True:
    b = s.recv(65536)
    if not b:
        break
    h.update(b); n += len(b)
print(n, h.hexdigest())
]]

  local serve = async(function(send)
    local srv = await(asyncio.start_server(function(_, writer)
      return async(function()
        send(writer)
        writer:close()
        await(writer:wait_closed())
      end)()
    end, "127.0.0.1", 0))
    local p = await(asyncio.create_subprocess_exec("python3", "-c", PEER,
      tostring(srv.sockets[1].port), {stdout = asyncio.PIPE}))
    local out = await(p.stdout:read())
    assert.equal(0, await(p:wait()))
    srv:close()
    await(srv:wait_closed())
    return out
  end)

  it("sends a whole file over TCP to a Python peer and returns the count",
     aspec.async(function()
    local data = {}
    for i = 1, 300000 do data[i] = string.char(i % 256) end
    put("a", table.concat(data))
    local sent
    local f <close> = await(fs.open(path("a"), "rb"))
    local out = await(serve(function(writer)
      sent = await(writer:sendfile(f))
    end))
    assert.equal(300000, sent)
    assert.equal("300000 " .. sha256(path("a")) .. "\n", out)
    assert.equal(300000, await(f:seek()))
  end))

  it("sends count bytes from offset; the file is left after them",
     aspec.async(function()
    put("a", string.rep("a", 1000) .. string.rep("b", 500000))
    put("part", string.rep("b", 400000))
    local f <close> = await(fs.open(path("a"), "rb"))
    local sent
    local out = await(serve(function(writer)
      sent = await(writer:sendfile(f, 1000, 400000))
    end))
    assert.equal(400000, sent)
    assert.equal("400000 " .. sha256(path("part")) .. "\n", out)
    assert.equal(401000, await(f:seek()))
    assert.equal("bbb", await(f:read(3)))
  end))

  it("a connection lost midway: the error is raised and the file is left "
     .. "after what was sent, as loop.sendfile's", aspec.async(function()
    put("a", string.rep("z", 1000000))
    local f <close> = await(fs.open(path("a"), "rb"))
    -- a writer whose connection is lost at the second drain
    local writes, drains = {}, 0
    local writer = {
      write = function(_, data) writes[#writes + 1] = #data end,
      drain = async(function()
        drains = drains + 1
        if drains == 2 then
          error(asyncio.ConnectionResetError("Connection lost"))
        end
      end)}
    local sendfile = require("asyncio.core")._StreamWriter.sendfile
    local e = h.await_error(sendfile(writer, f, 10))
    assert.is_true(iserror(e, asyncio.ConnectionResetError))
    assert.same({262144, 262144}, writes)
    assert.equal(10 + 2 * 262144, await(f:seek()))
    -- nothing sent: the position does not move
    await(f:seek("set", 5))
    writer.write = function() error(asyncio.BrokenPipeError("gone")) end
    e = h.await_error(sendfile(writer, f, 100))
    assert.is_true(iserror(e, asyncio.BrokenPipeError))
    assert.equal(5, await(f:seek()))
  end))

  it("checks its arguments", aspec.async(function()
    put("a", "x")
    local f = await(fs.open(path("a")))
    local out = await(serve(function(writer)
      assert.matches("bad argument #1 to 'sendfile' %(asyncio.File "
                     .. "expected, got string%)",
                     h.error_of(writer.sendfile, writer, "a"))
      assert.matches("bad argument #3 to 'sendfile' %(count must be a "
                     .. "positive integer%)",
                     h.error_of(writer.sendfile, writer, f, 0, 0))
      await(f:close())
      assert_closed_error(h.error_of(writer.sendfile, writer, f))
    end))
    assert.equal("0 " .. sha256("/dev/null") .. "\n", out)
  end))
end)

describe("a loop closed with a request in flight", function()
  it("lets the request go and the file still closes", function()
    put("a", string.rep("x", 1048576))
    local loop = asyncio.new_event_loop()
    local f = loop:run_until_complete(fs.open(path("a")))
    local t = loop:create_task(async(function()
      return await(f:read("a"))
    end)())
    h.run_once(loop) -- the task's read is on the pool
    assert.is_false(t:done())
    t:cancel() -- cancelled but never stepped again: the close shuts it
    local reports = {}
    loop:set_exception_handler(function(_, ctx)
      reports[#reports + 1] = ctx.message
    end)
    loop:close()
    assert.equal(0, loop:_counts().handles)
    t = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.same({"Task was destroyed but it is pending!"}, reports)
    local fd = f:fileno()
    f:__close()
    assert.is_false((pcall(f.fileno, f)))
    assert.is_nil(io.open("/proc/self/fd/" .. fd))
  end)
end)
