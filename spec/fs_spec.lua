-- spec/fs_spec.lua: asyncio.fs on paths (lua/asyncio/fs.lua on
-- bindings/io/fs.c): stat, lstat, exists, scandir, listdir, mkdir, rmdir,
-- unlink, rename, copyfile, readfile, writefile, mkdtemp, realpath,
-- readlink, chmod; their OSError kin, shaped as Python's, and their bad
-- arguments.
-- asyncio.File is in spec/fs_file_spec.lua.
--
-- Each test works in a fresh directory under /tmp, removed afterwards.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local fs = require "asyncio.fs"
local h = dofile("spec/helpers.lua")
local await, iserror = asyncio.await, asyncio.iserror

local ROOT = io.popen("id -u"):read("l") == "0"
local proc = dofile("spec/fixtures/proc.lua")

local tmp = dofile("spec/fixtures/fsdir.lua")("luaio-fs", before_each,
                                                after_each)
local path, put, get = tmp.path, tmp.put, tmp.get

--- Awaits aw, which must raise an error of class cls with errno; returns
-- the error.
local function fails(cls, errno, aw)
  local e = h.await_error(aw)
  assert.is_true(iserror(e, cls), tostring(e))
  assert.equal(errno, e.errno)
  return e
end

it("asyncio.fs is require 'asyncio.fs'; the other batteries are fields "
   .. "of asyncio the same way", function()
  assert.equal(fs, asyncio.fs)
  for _, name in ipairs{"ssl", "http", "redis", "workqueue", "staggered"} do
    assert.equal(require("asyncio." .. name), asyncio[name], name)
  end
  assert.is_nil(asyncio.nosuchmodule)
end)

describe("fs.stat and fs.lstat", function()
  it("give size, times, mode and type of a file and a directory",
     aspec.async(function()
    put("a", "12345")
    local st = await(fs.stat(path("a")))
    assert.equal(5, st.size)
    assert.equal("file", st.type)
    assert.equal(tonumber("100000", 8), st.mode & tonumber("170000", 8))
    for _, k in ipairs{"mtime", "atime", "ctime"} do
      assert.equal("number", type(st[k]))
      assert.is_true(math.abs(st[k] - os.time()) < 60, k)
    end
    assert.equal("directory", await(fs.stat(tmp.dir())).type)
  end))

  it("tell links, fifos, sockets and character devices apart",
     aspec.async(function()
    put("target", "x")
    assert.is_true(os.execute("ln -s " .. path("target") .. " "
                              .. path("link")))
    assert.is_true(os.execute("mkfifo " .. path("fifo")))
    local srv = await(asyncio.start_unix_server(function() end,
                                                path("sock")))
    assert.equal("link", await(fs.lstat(path("link"))).type)
    assert.equal("file", await(fs.stat(path("link"))).type)
    assert.equal("fifo", await(fs.stat(path("fifo"))).type)
    assert.equal("socket", await(fs.stat(path("sock"))).type)
    assert.equal("char", await(fs.stat("/dev/null")).type)
    srv:close()
    await(srv:wait_closed())
  end))

  it("a missing path raises FileNotFoundError with the filename",
     aspec.async(function()
    local e = fails(asyncio.FileNotFoundError, 2, fs.stat(path("none")))
    assert.equal(path("none"), e.filename)
    assert.equal("FileNotFoundError: [Errno 2] No such file or directory: '"
                 .. path("none") .. "'", tostring(e))
    fails(asyncio.FileNotFoundError, 2, fs.lstat(path("none")))
    put("f", "")
    fails(asyncio.NotADirectoryError, 20, fs.stat(path("f/x")))
  end))
end)

describe("fs.exists", function()
  it("is true for what exists and false otherwise, never raising",
     aspec.async(function()
    put("a", "")
    assert.is_true(await(fs.exists(path("a"))))
    assert.is_true(await(fs.exists(tmp.dir())))
    assert.is_false(await(fs.exists(path("missing"))))
    assert.is_false(await(fs.exists(path("a/below"))))
    assert.is_false(await(fs.exists("")))
    -- a zero byte: no such path (os.path.exists gives False)
    assert.is_false(await(fs.exists(path("a") .. "\0b")))
    assert.is_false(await(fs.exists("\0")))
  end))
end)

describe("fs.scandir and fs.listdir", function()
  it("scandir iterates {name, type, path} entries, awaiting inside",
     aspec.async(function()
    put("b.txt", "")
    assert.is_true(os.execute("mkdir " .. path("sub")))
    assert.is_true(os.execute("ln -s b.txt " .. path("ln")))
    local seen = {}
    for e in fs.scandir(tmp.dir()) do
      seen[e.name] = e.type
      assert.equal(path(e.name), e.path)
    end
    assert.same({["b.txt"] = "file", sub = "directory", ln = "link"}, seen)
  end))

  it("listdir gives the names, sorted (libuv's scandir sorts them)",
     aspec.async(function()
    for _, n in ipairs{"c", "a", "B", "b"} do put(n, "") end
    assert.same({"B", "a", "b", "c"}, await(fs.listdir(tmp.dir())))
    await(fs.mkdir(path("empty")))
    assert.same({}, await(fs.listdir(path("empty"))))
  end))

  it("a missing directory raises FileNotFoundError, a file "
     .. "NotADirectoryError", aspec.async(function()
    local e = fails(asyncio.FileNotFoundError, 2, fs.listdir(path("none")))
    assert.equal(path("none"), e.filename)
    local it = fs.scandir(path("none"))
    e = h.error_of(it)
    assert.is_true(iserror(e, asyncio.FileNotFoundError))
    put("f", "")
    fails(asyncio.NotADirectoryError, 20, fs.listdir(path("f")))
  end))
end)

describe("fs.mkdir and fs.rmdir", function()
  it("makes a directory with a mode; rmdir removes it",
     aspec.async(function()
    await(fs.mkdir(path("d")))
    assert.equal("directory", await(fs.stat(path("d"))).type)
    await(fs.mkdir(path("m"), {mode = tonumber("700", 8)}))
    assert.equal(tonumber("700", 8),
                 await(fs.stat(path("m"))).mode & tonumber("777", 8))
    await(fs.rmdir(path("d")))
    assert.is_false(await(fs.exists(path("d"))))
  end))

  it("an existing path raises FileExistsError; a missing parent "
     .. "FileNotFoundError", aspec.async(function()
    await(fs.mkdir(path("d")))
    local e = fails(asyncio.FileExistsError, 17, fs.mkdir(path("d")))
    assert.equal("FileExistsError: [Errno 17] File exists: '" .. path("d")
                 .. "'", tostring(e))
    fails(asyncio.FileNotFoundError, 2, fs.mkdir(path("x/y")))
  end))

  it("parents makes the missing parents; exist_ok accepts a directory, "
     .. "not a file", aspec.async(function()
    await(fs.mkdir(path("a/b/c/"), {parents = true}))
    assert.equal("directory", await(fs.stat(path("a/b/c"))).type)
    fails(asyncio.FileExistsError, 17, fs.mkdir(path("a/b"),
                                                  {parents = true}))
    await(fs.mkdir(path("a/b"), {exist_ok = true}))
    await(fs.mkdir(path("a/b/c"), {parents = true, exist_ok = true}))
    put("file", "")
    fails(asyncio.FileExistsError, 17, fs.mkdir(path("file"),
                                                  {exist_ok = true}))
    fails(asyncio.NotADirectoryError, 20,
          fs.mkdir(path("file/x/y"), {parents = true}))
    -- the mode is the last directory's; the parents get the default
    -- (0777 less the umask), as os.makedirs gives them
    local umask = tonumber(io.popen("umask"):read("l"), 8)
    await(fs.mkdir(path("m/n/o"), {parents = true, mode = tonumber("700", 8)}))
    local function mode(p) return await(fs.stat(path(p))).mode & 511 end
    assert.same({511 & ~umask, 511 & ~umask, tonumber("700", 8) & ~umask},
                {mode("m"), mode("m/n"), mode("m/n/o")})
  end))

  it("an unknown option raises at the call; every documented one is "
     .. "taken", aspec.async(function()
    assert.has_error(function() fs.mkdir(path("d"), {parent = true}) end,
      "bad argument #2 to 'mkdir' (unknown option 'parent')")
    assert.has_error(function() fs.mkdir(path("d"), {exists_ok = true}) end,
      "bad argument #2 to 'mkdir' (unknown option 'exists_ok')")
    assert.is_false(await(fs.exists(path("d"))))
    await(fs.mkdir(path("d/e"), {parents = true, exist_ok = true,
                                 mode = tonumber("750", 8)}))
    assert.equal("directory", await(fs.stat(path("d/e"))).type)
  end))

  it(ROOT and "as root, mkdir in a read-only directory succeeds (root is "
     .. "not refused; this run is root)"
     or "mkdir in a read-only directory raises PermissionError",
     aspec.async(function()
    await(fs.mkdir(path("ro"), {mode = tonumber("555", 8)}))
    if ROOT then
      await(fs.mkdir(path("ro/x")))
      assert.is_true(await(fs.exists(path("ro/x"))))
    else
      local e = fails(asyncio.PermissionError, 13, fs.mkdir(path("ro/x")))
      assert.equal(path("ro/x"), e.filename)
    end
  end))

  it("rmdir of a non-empty directory raises OSError ENOTEMPTY, of a file "
     .. "NotADirectoryError", aspec.async(function()
    await(fs.mkdir(path("d/e"), {parents = true}))
    local e = fails(asyncio.OSError, 39, fs.rmdir(path("d")))
    assert.equal("ENOTEMPTY", e.name)
    assert.equal("OSError: [Errno 39] Directory not empty: '" .. path("d")
                 .. "'", tostring(e))
    put("f", "")
    fails(asyncio.NotADirectoryError, 20, fs.rmdir(path("f")))
    fails(asyncio.FileNotFoundError, 2, fs.rmdir(path("none")))
  end))
end)

describe("fs.unlink, fs.rename and fs.copyfile", function()
  it("unlink removes a file; a missing one raises FileNotFoundError, a "
     .. "directory IsADirectoryError", aspec.async(function()
    put("a", "")
    await(fs.unlink(path("a")))
    assert.is_false(await(fs.exists(path("a"))))
    fails(asyncio.FileNotFoundError, 2, fs.unlink(path("a")))
    fails(asyncio.IsADirectoryError, 21, fs.unlink(tmp.dir()))
  end))

  it("rename moves and replaces; failures name both paths",
     aspec.async(function()
    put("a", "A")
    put("b", "B")
    await(fs.rename(path("a"), path("b")))
    assert.equal("A", get("b"))
    assert.is_false(await(fs.exists(path("a"))))
    local e = fails(asyncio.FileNotFoundError, 2,
                    fs.rename(path("a"), path("c")))
    assert.equal(path("a"), e.filename)
    assert.equal(path("c"), e.filename2)
    assert.equal("FileNotFoundError: [Errno 2] No such file or directory: '"
                 .. path("a") .. "' -> '" .. path("c") .. "'", tostring(e))
    await(fs.mkdir(path("d")))
    fails(asyncio.IsADirectoryError, 21, fs.rename(path("b"), path("d")))
  end))

  it("copyfile copies the data, replacing the target", aspec.async(function()
    local data = string.rep("\0\1abc", 50000)
    put("a", data)
    put("b", "old")
    await(fs.copyfile(path("a"), path("b")))
    assert.equal(data, get("b"))
    -- each error names the path whose open failed, as shutil's: src
    -- first, then dst
    local e = fails(asyncio.FileNotFoundError, 2,
                    fs.copyfile(path("none"), path("c")))
    assert.equal(path("none"), e.filename)
    assert.is_nil(e.filename2)
    e = fails(asyncio.FileNotFoundError, 2,
              fs.copyfile(path("a"), path("nodir/c")))
    assert.same({path("nodir/c"), nil}, {e.filename, e.filename2})
    assert.equal(("[Errno 2] No such file or directory: '%s'")
                 :format(path("nodir/c")), e.message)
  end))

  it("copyfile from a file that does not open names src, whose open "
     .. "failed, not dst, as shutil's (run as nobody when this run is "
     .. "root, whom nothing refuses)", aspec.async(function()
    put("src", "secret")
    await(fs.chmod(path("src"), 0))
    await(fs.chmod(tmp.dir(), tonumber("777", 8)))
    put("copy.lua", [[
      local asyncio = require "asyncio"
      local fs = require "asyncio.fs"
      asyncio.run(asyncio.async(function()
        local _, e = pcall(asyncio.await, fs.copyfile(arg[1], arg[2]))
        print(asyncio.iserror(e, asyncio.PermissionError), e.errno,
              e.filename, e.filename2, e.message)
      end))]])
    local argv = {proc.luaio, path("copy.lua"), path("src"), path("dst")}
    if ROOT then
      argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
              table.unpack(argv)}
    end
    local r = proc.run(argv, {timeout = 60})
    assert.equal("", r.stderr)
    assert.equal(("true\t13\t%s\tnil\t[Errno 13] Permission denied: "
                  .. "'%s'\n"):format(path("src"), path("src")), r.stdout)
    assert.is_false(await(fs.exists(path("dst"))))
  end))

  it("copyfile to a path with a trailing slash that is no directory "
     .. "raises FileNotFoundError 'Directory does not exist', as shutil's",
     aspec.async(function()
    put("a", "data")
    put("empty", "") -- copied by reads: the same error
    await(fs.mkdir(path("dir")))
    for _, args in ipairs{{"a", "nodir/"}, {"a", "a/"}, {"empty", "nodir/"},
                          {"a", "empty/"}} do
      local dst = path(args[2])
      local ok, e = pcall(await, fs.copyfile(path(args[1]), dst))
      assert.is_false(ok)
      assert.is_true(iserror(e, asyncio.FileNotFoundError), tostring(e))
      assert.equal("FileNotFoundError: Directory does not exist: " .. dst,
                   tostring(e))
      assert.same({nil, nil, nil}, {e.errno, e.strerror, e.filename})
      assert.is_true(iserror(e.cause, asyncio.IsADirectoryError))
    end
    -- an existing directory stays an IsADirectoryError naming it
    local e = fails(asyncio.IsADirectoryError, 21,
                    fs.copyfile(path("a"), path("dir")))
    assert.equal(path("dir"), e.filename)
    assert.equal("data", get("a"))
  end))

  it("copyfile from a directory raises IsADirectoryError and leaves an "
     .. "existing target; a named pipe is a SpecialFileError; a /proc file "
     .. "is copied whole", aspec.async(function()
    assert.is_true(os.execute("mkdir " .. path("dir") .. " && mkfifo "
                              .. path("pipe")))
    put("keep", "kept")
    local e = fails(asyncio.IsADirectoryError, 21,
                    fs.copyfile(path("dir"), path("keep")))
    assert.equal(path("dir"), e.filename)
    assert.equal("kept", get("keep"))
    for _, args in ipairs{{path("pipe"), path("out")},
                          {path("keep"), path("pipe")}} do
      local ok, se = pcall(await, fs.copyfile(args[1], args[2]))
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(se, fs.SpecialFileError))
      assert.is_true(asyncio.iserror(se, asyncio.OSError))
      assert.equal(("`%s` is a named pipe"):format(path("pipe")), se.message)
    end
    assert.equal("kept", get("keep"))
    -- /proc/self/status says it is empty, as libuv's copy believed
    await(fs.copyfile("/proc/self/status", path("status")))
    assert.matches("^Name:", get("status"))
  end))

  --- A character device like /dev/<name> (major 1, minor) to copy onto:
  -- as root a node of its own in the test's directory (a copy that
  -- removes its dst must not remove /dev/null), else /dev/<name>; nil
  -- when root cannot make one.
  local function device(name, minor)
    if not ROOT then return "/dev/" .. name end
    if os.execute(("mknod %s c 1 %d"):format(path(name), minor)) then
      return path(name)
    end
  end

  it("copyfile onto a character device writes to it and leaves it, as "
     .. "shutil's (libuv's copy truncated it, failed with EINVAL and "
     .. "removed it: /dev/null, for root)", aspec.async(function()
    local null = device("null", 3)
    if not null then return pending("mknod refused") end
    put("a", "data")
    local mode = await(fs.stat(null)).mode
    await(fs.copyfile(path("a"), null))
    local st = await(fs.stat(null))
    assert.equal("char", st.type)
    assert.equal(mode, st.mode) -- src's mode is for a file it makes
  end))

  it("a copy that fails midway names the side that failed: src for a "
     .. "read, dst for a write, as shutil names a failed open (it named "
     .. "dst); what was written stays, as shutil's", aspec.async(function()
    put("a", "data")
    -- /proc/self/mem fails to read at 0 (nothing is mapped there)
    local e = fails(asyncio.OSError, 5,
                    fs.copyfile("/proc/self/mem", path("out")))
    assert.same({"/proc/self/mem", nil}, {e.filename, e.filename2})
    assert.equal("[Errno 5] Input/output error: '/proc/self/mem'",
                 e.message)
    assert.equal("", get("out"))
    local full = device("full", 7)
    if not full then return pending("mknod refused") end
    e = fails(asyncio.OSError, 28, fs.copyfile(path("a"), full))
    assert.same({full, nil}, {e.filename, e.filename2})
    assert.equal(("[Errno 28] No space left on device: '%s'"):format(full),
                 e.message)
    assert.equal("char", await(fs.stat(full)).type)
  end))

  it("a copy in the kernel that fails midway names src and dst, as "
     .. "shutil's sendfile copy: the system does not tell which side "
     .. "failed (it named dst, and removed it)", aspec.async(function()
    local data = string.rep("0123456789abcdef", 8192) -- 128 KiB
    put("src", data)
    put("copy.lua", [[
      local asyncio = require "asyncio"
      local fs = require "asyncio.fs"
      asyncio.run(asyncio.async(function()
        local _, e = pcall(asyncio.await, fs.copyfile(arg[1], arg[2]))
        print(e.errno, e.filename, e.filename2, e.message)
      end))]])
    -- a file size limit of 40 blocks: writing past it fails with EFBIG
    local r = proc.run({"sh", "-c", [[trap '' XFSZ; ulimit -f 40; exec "$@"]],
                        "sh", proc.luaio, path("copy.lua"), path("src"),
                        path("dst")}, {timeout = 60})
    assert.equal("", r.stderr)
    assert.equal(("27\t%s\t%s\t[Errno 27] File too large: '%s' -> '%s'\n")
                 :format(path("src"), path("dst"), path("src"),
                         path("dst")), r.stdout)
    local left = get("dst")
    assert.is_true(#left > 0 and #left < #data, tostring(#left))
    assert.equal(data:sub(1, #left), left)
  end))

  it("copyfile onto its own source, or a link to it, raises "
     .. "SameFileError and leaves the file", aspec.async(function()
    put("same", "keep")
    assert.is_true(os.execute("ln -s same " .. path("same_ln")))
    for _, dst in ipairs{path("same"), path("same_ln")} do
      local ok, e = pcall(await, fs.copyfile(path("same"), dst))
      assert.is_false(ok)
      assert.is_true(asyncio.iserror(e, fs.SameFileError))
      assert.is_true(asyncio.iserror(e, asyncio.OSError))
      assert.equal(("'%s' and '%s' are the same file"):format(path("same"),
                                                               dst), e.message)
    end
    assert.equal("keep", get("same"))
  end))
end)

describe("fs.readfile and fs.writefile", function()
  it("round-trip binary data and replace the content",
     aspec.async(function()
    local data = string.rep("\0\r\n\255", 100000)
    assert.equal(#data, await(fs.writefile(path("a"), data)))
    assert.equal(data, get("a"))
    assert.equal(data, await(fs.readfile(path("a"))))
    await(fs.writefile(path("a"), "short"))
    assert.equal("short", await(fs.readfile(path("a"))))
    await(fs.writefile(path("e"), ""))
    assert.equal("", await(fs.readfile(path("e"))))
  end))

  it("raise the OSError kin of open", aspec.async(function()
    local e = fails(asyncio.FileNotFoundError, 2, fs.readfile(path("n")))
    assert.equal(path("n"), e.filename)
    fails(asyncio.IsADirectoryError, 21, fs.readfile(tmp.dir()))
    fails(asyncio.IsADirectoryError, 21, fs.writefile(tmp.dir(), "x"))
    fails(asyncio.FileNotFoundError, 2, fs.writefile(path("n/x"), "x"))
  end))
end)

describe("fs.mkdtemp, fs.realpath and fs.chmod", function()
  it("mkdtemp makes a new private directory from the template",
     aspec.async(function()
    local a = await(fs.mkdtemp(path("tmp-XXXXXX")))
    local b = await(fs.mkdtemp(path("tmp-XXXXXX")))
    assert.matches("^" .. tmp.dir():gsub("%p", "%%%0") .. "/tmp%-......$", a)
    assert.not_equal(a, b)
    local st = await(fs.stat(a))
    assert.equal("directory", st.type)
    assert.equal(tonumber("700", 8), st.mode & tonumber("777", 8))
    fails(asyncio.FileNotFoundError, 2, fs.mkdtemp(path("no/XXXXXX")))
    assert.matches("bad argument #1 to 'mkdtemp' %(template must end in "
                   .. "'XXXXXX'%)", h.error_of(fs.mkdtemp, path("tmp")))
  end))

  it("realpath resolves links and dots; chmod sets the mode",
     aspec.async(function()
    put("a", "")
    assert.is_true(os.execute("ln -s a " .. path("l")))
    local real = await(fs.realpath(tmp.dir()))
    assert.equal(real .. "/a", await(fs.realpath(path("./l"))))
    assert.equal(real .. "/a", await(fs.realpath(tmp.dir() .. "/../"
                                                 .. real:match("[^/]+$")
                                                 .. "/a")))
    fails(asyncio.FileNotFoundError, 2,
          fs.realpath(path("none"), {strict = true}))
    await(fs.chmod(path("a"), tonumber("640", 8)))
    assert.equal(tonumber("640", 8),
                 await(fs.stat(path("a"))).mode & tonumber("777", 8))
    fails(asyncio.FileNotFoundError, 2, fs.chmod(path("none"), 0))
  end))

  it("realpath with strict names the first component that does not "
     .. "resolve, as an absolute path, as os.path.realpath(p, strict=True)",
     aspec.async(function()
    put("a", "")
    await(fs.mkdir(path("dir")))
    assert.is_true(os.execute("ln -s dir " .. path("ldir")))
    local real = await(fs.realpath(tmp.dir()))
    for _, case in ipairs{
      {"none", asyncio.FileNotFoundError, "/none"},
      {"nodir/x/y", asyncio.FileNotFoundError, "/nodir"},
      {"ldir/none", asyncio.FileNotFoundError, "/dir/none"},
      {"./ldir/../dir//x/", asyncio.FileNotFoundError, "/dir/x"},
      {"a/x", asyncio.NotADirectoryError, "/a/x"},
    } do
      local ok, e = pcall(await, fs.realpath(path(case[1]), {strict = true}))
      assert.is_false(ok)
      assert.is_true(iserror(e, case[2]), tostring(e))
      assert.equal(real .. case[3], e.filename)
      assert.equal(("[Errno %d] %s: '%s%s'"):format(e.errno, e.strerror,
                                                    real, case[3]),
                   e.message)
    end
    -- a relative path is named under the working directory's real path
    local e = fails(asyncio.FileNotFoundError, 2,
                    fs.realpath("spec/no-such-file", {strict = true}))
    assert.equal(await(fs.realpath("spec")) .. "/no-such-file", e.filename)
  end))

  it("realpath follows links to nowhere to where they point and keeps "
     .. "what does not resolve, as os.path.realpath (it raised); with "
     .. "strict, the error names where the link points (it named the "
     .. "link)", aspec.async(function()
    put("f", "")
    await(fs.mkdir(path("d")))
    for link, target in pairs{["d/dang"] = "nowhere", ["d/chain"] = "dang",
                              ["d/abs"] = "/nonexistent-luaio/x",
                              ["d/up"] = "../d", ["d/loop"] = "loop",
                              ["d/viafile"] = "f/x"} do
      assert.is_true(os.execute(("ln -s %s %s"):format(target, path(link))))
    end
    local real = await(fs.realpath(tmp.dir()))
    -- os.path.realpath's answers (Python 3.13), under the real directory
    for _, case in ipairs{
      {"d/dang", "/d/nowhere"}, {"d/chain", "/d/nowhere"},
      {"d/dang/x", "/d/nowhere/x"}, {"d/up/up/dang", "/d/nowhere"},
      {"d/dang/../y", "/d/y"}, {"d/chain/..", "/d"},
      {"missing/x", "/missing/x"}, {"f/x", "/f/x"},
      {"d/viafile", "/d/f/x"}, {"d/loop", "/d/loop"}, {"f/..", ""},
    } do
      assert.equal(real .. case[2], await(fs.realpath(path(case[1]))),
                   case[1])
    end
    assert.equal("/nonexistent-luaio/x", await(fs.realpath(path("d/abs"))))
    for _, case in ipairs{
      {"d/dang", asyncio.FileNotFoundError, real .. "/d/nowhere"},
      {"d/chain/x", asyncio.FileNotFoundError, real .. "/d/nowhere"},
      {"d/abs", asyncio.FileNotFoundError, "/nonexistent-luaio"},
      {"d/viafile", asyncio.FileNotFoundError, real .. "/d/f"},
      {"d/loop", asyncio.OSError, real .. "/d/loop"}, -- ELOOP
    } do
      local e = h.await_error(fs.realpath(path(case[1]), {strict = true}))
      assert.is_true(iserror(e, case[2]), tostring(e))
      assert.equal(case[3], e.filename, case[1])
      assert.equal(("[Errno %d] %s: '%s'"):format(e.errno, e.strerror,
                                                  case[3]), e.message)
    end
    assert.equal(40, h.await_error(fs.realpath(path("d/loop"),
                                               {strict = true})).errno)
    -- as Python's, the empty path is the working directory
    assert.equal(await(fs.realpath(".")), await(fs.realpath("")))
    assert.matches("bad argument #2 to 'realpath' %(unknown option "
                   .. "'strcit'%)", h.error_of(fs.realpath, "x",
                                               {strcit = true}))
  end))

  it("readlink gives the path a link holds, as os.readlink (new)",
     aspec.async(function()
    put("f", "")
    assert.is_true(os.execute("ln -s nowhere " .. path("dang")))
    assert.is_true(os.execute("ln -s ../x/./y " .. path("rel")))
    assert.equal("nowhere", await(fs.readlink(path("dang"))))
    assert.equal("../x/./y", await(fs.readlink(path("rel"))))
    -- not a link: EINVAL, as Python's OSError
    local e = fails(asyncio.OSError, 22, fs.readlink(path("f")))
    assert.equal(("[Errno 22] Invalid argument: '%s'"):format(path("f")),
                 e.message)
    assert.equal(path("f"), e.filename)
    e = fails(asyncio.FileNotFoundError, 2, fs.readlink(path("none")))
    assert.equal(path("none"), e.filename)
  end))
end)

describe("bad arguments", function()
  it("raise at the call, naming the function", function()
    for _, name in ipairs{"stat", "lstat", "exists", "listdir", "scandir",
                          "mkdir", "rmdir", "unlink", "readfile",
                          "writefile", "mkdtemp", "realpath", "chmod",
                          "readlink", "open"} do
      assert.matches("bad argument #1 to '" .. name
                     .. "' %(string expected, got boolean%)",
                     h.error_of(fs[name], true))
      -- as luaL_typeerror: a nil given is "nil", a missing one "no value"
      assert.matches("bad argument #1 to '" .. name
                     .. "' %(string expected, got nil%)",
                     h.error_of(fs[name], nil))
      assert.matches("bad argument #1 to '" .. name
                     .. "' %(string expected, got no value%)",
                     h.error_of(fs[name]))
    end
    for _, name in ipairs{"rename", "copyfile"} do
      assert.matches("bad argument #2 to '" .. name
                     .. "' %(string expected, got no value%)",
                     h.error_of(fs[name], "a"))
      assert.matches("bad argument #2 to '" .. name
                     .. "' %(string expected, got nil%)",
                     h.error_of(fs[name], "a", nil))
    end
    assert.matches("bad argument #1 to 'unlink' %(path contains a zero "
                   .. "byte%)", h.error_of(fs.unlink, "a\0b"))
    assert.matches("bad argument #2 to 'rename' %(path contains a zero "
                   .. "byte%)", h.error_of(fs.rename, "a", "b\0"))
    assert.matches("bad argument #2 to 'mkdir' %(table expected, got "
                   .. "string%)", h.error_of(fs.mkdir, "a", "p"))
    assert.matches("bad argument #2 to 'chmod' %(number expected, got "
                   .. "string%)", h.error_of(fs.chmod, "a", "rw"))
    -- a numeric string is no mode: "644" would be decimal 644 (0o1204,
    -- the sticky bit); Python raises TypeError
    assert.matches("bad argument #2 to 'chmod' %(number expected, got "
                   .. "string%)", h.error_of(fs.chmod, "a", "644"))
    assert.matches("bad argument #2 to 'mkdir' %(number expected, got "
                   .. "string%)", h.error_of(fs.mkdir, "a", {mode = "755"}))
    assert.matches("bad argument #2 to 'writefile' %(string expected, got "
                   .. "no value%)", h.error_of(fs.writefile, "a"))
    assert.matches("bad argument #2 to 'writefile' %(string expected, got "
                   .. "nil%)", h.error_of(fs.writefile, "a", nil))
  end)

  it("a number is taken as its string, as Lua's io takes one: a path, "
     .. "writefile's data", aspec.async(function()
    local e = fails(asyncio.FileNotFoundError, 2, fs.stat(404))
    assert.equal("404", e.filename)
    e = fails(asyncio.FileNotFoundError, 2, fs.rename(path("none"), 1.5))
    assert.same({path("none"), "1.5"}, {e.filename, e.filename2})
    -- data as f:write (and io's write) writes it
    assert.equal(2, await(fs.writefile(path("n"), 12)))
    assert.equal("12", get("n"))
    await(fs.writefile(path("n"), 3.0))
    assert.equal("3", get("n"))
  end))
end)

it("UnsupportedOperation is an OSError and a ValueError, as Python's",
   function()
  local e = asyncio.UnsupportedOperation("not readable")
  assert.is_true(iserror(e, asyncio.OSError))
  assert.is_true(iserror(e, asyncio.ValueError))
  assert.equal("UnsupportedOperation: not readable", tostring(e))
end)
