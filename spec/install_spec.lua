-- spec/install_spec.lua: what a user installs. `make install` (staged with
-- DESTDIR) and `make uninstall`; the shared library and luaio.pc used by a
-- C host; `luarocks make` into a clean tree and the packed rock installed
-- into another (offline); luaio-busted; the module refusing Lua 5.1.
local proc = dofile("spec/fixtures/proc.lua")

local function sh(cmd, opts)
  local r = proc.run({"sh", "-c", cmd}, opts)
  assert(r.status == 0, ("%s\nexit %s\n%s%s"):format(cmd, tostring(r.status),
                                                    r.stdout, r.stderr))
  return r.stdout
end

local tempdir, rm = proc.tempdir, proc.rmdir

local q = proc.quote

-- under make check-asan, programs that load the instrumented library or
-- modules without being instrumented themselves (lua5.4, the C host) need
-- the sanitizer runtime first, as spec/fixtures/proc.lua gives lua5.4
local preload = os.getenv("LUAIO_LUA_PRELOAD")
local LD = (preload and preload ~= "") and
           "LD_PRELOAD=" .. q(preload) .. " " or ""
local make = "make --no-print-directory BUILD=" .. q(proc.build)

describe("make install", function()
  local stage, prefix = nil, "/usr/local"
  setup(function() stage = tempdir() end)
  teardown(function() rm(stage) end)

  it("stages the CLI, both libraries with the soname links, the header, "
     .. "luaio.pc, the man page, the docs and the Lua module", function()
    sh(make .. " install DESTDIR=" .. q(stage))
    local root = stage .. prefix
    for _, f in ipairs{"bin/luaio", "bin/luaio-busted", "lib/libluaio.a",
                       "lib/libluaio.so.0.1.0", "include/luaio.h",
                       "lib/pkgconfig/luaio.pc", "share/man/man1/luaio.1",
                       "share/doc/luaio/api.md", "share/doc/luaio/README.md",
                       "share/lua/5.4/asyncio/init.lua",
                       "lib/lua/5.4/asyncio/core.so"} do
      assert.equal(0, proc.run{"test", "-f", root .. "/" .. f}.status, f)
    end
    assert.equal("libluaio.so.0.1.0\n",
                 sh("readlink " .. q(root .. "/lib/libluaio.so.0")))
    assert.equal("libluaio.so.0\n",
                 sh("readlink " .. q(root .. "/lib/libluaio.so")))
    local dyn = sh("readelf -d " .. q(root .. "/lib/libluaio.so.0.1.0"))
    assert.truthy(dyn:find("Library soname: [libluaio.so.0]", 1, true), dyn)
    -- the README's links reach the docs installed next to it
    local docdir = root .. "/share/doc/luaio/"
    local links = 0
    for target in proc.slurp(docdir .. "README.md"):gmatch("%]%(([^)#]+)") do
      if not target:match("^%a+:") then
        links = links + 1
        assert.equal(0, proc.run{"test", "-f", docdir .. target}.status,
                     target)
      end
    end
    assert.is_true(links > 0)
    local pc = proc.slurp(root .. "/lib/pkgconfig/luaio.pc")
    assert.truthy(pc:find("Libs: -L${libdir} -lluaio", 1, true), pc)
  end)

  it("the shared library serves a C host built with luaio.pc", function()
    local root = stage .. prefix
    local pcdir = root .. "/lib/pkgconfig"
    -- the staged tree first, then what luaio.pc says (it names the final
    -- prefix, and Requires lua5.4 and libuv)
    local flags = ("-I%s -L%s "):format(q(root .. "/include"),
                                        q(root .. "/lib")) ..
      sh(("PKG_CONFIG_PATH=%s pkg-config --cflags --libs luaio"):format(
        q(pcdir)))
    local exe = stage .. "/so_host"
    sh(("cc -o %s %s %s"):format(q(exe), q(proc.fixture("so_host.c")),
                                 flags:gsub("\n", "")))
    local needed = sh("readelf -d " .. q(exe))
    assert.truthy(needed:find("[libluaio.so.0]", 1, true), needed)
    local out = sh((LD .. "LD_LIBRARY_PATH=%s LUA_PATH=%s %s"):format(
      q(root .. "/lib"),
      q(root .. "/share/lua/5.4/?.lua;" .. root .. "/share/lua/5.4/?/init.lua;;"),
      q(exe)))
    assert.equal("task ran on Lua 5.4\n", out)
  end)

  it("uninstall removes every file it installed", function()
    sh(make .. " uninstall DESTDIR=" .. q(stage))
    assert.equal("", sh("find " .. q(stage .. prefix) .. " -type f -o -type l"))
  end)
end)

-- luarocks builds as a user's shell does: without the variables a make
-- running this suite exports (make check-asan's command line puts OPT
-- and LDFLAGS in the environment and MAKEFLAGS), which otherwise left
-- sanitizer objects in build-rock that a later plain run linked without
-- the runtime
local NOMAKE = {unset = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                         "MAKEOVERRIDES", "OPT", "LDFLAGS", "CC", "BUILD",
                         "SHIM_OBJ", "CLI_WRAP"}}

describe("luarocks", function()
  it("make builds and installs into a clean tree; the packed rock installs "
     .. "into another and runs", function()
    local tree, tree2, packdir = tempdir(), tempdir(), tempdir()
    sh("luarocks make --tree=" .. q(tree) .. " --lua-version=5.4 "
       .. "luaio-0.1.0-1.rockspec", NOMAKE)
    local dyn = sh("readelf -d " .. q(tree .. "/bin/luaio"))
    assert.falsy(dyn:find("libasan", 1, true), dyn)
    sh(("cd %s && luarocks pack luaio --tree=%s --lua-version=5.4"):format(
      q(packdir), q(tree)), NOMAKE)
    local rock = sh("ls " .. q(packdir)):gsub("%s+$", "")
    assert.truthy(rock:match("^luaio%-0%.1%.0%-1%..+%.rock$"), rock)
    sh(("luarocks install --tree=%s --lua-version=5.4 --deps-mode=none %s")
       :format(q(tree2), q(packdir .. "/" .. rock)), NOMAKE)
    local out = sh(q(tree2 .. "/bin/luaio") .. " -e " .. q(
      "local a = require 'asyncio' print(a.run(a.sleep(0, 'ran')))"))
    assert.equal("ran\n", out)
    local lpath = tree2 .. "/share/lua/5.4/?.lua;" .. tree2 ..
                  "/share/lua/5.4/?/init.lua;;"
    out = sh((LD .. "LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s"):format(
      q(lpath), q(tree2 .. "/lib/lua/5.4/?.so;;"),
      q("local a = require 'asyncio' print(a.run(a.sleep(0, 'from lua5.4')), "
        .. "package.searchpath('asyncio.core', package.cpath):find("
        .. q(tree2) .. ", 1, true) == 1)")))
    assert.equal("from lua5.4\ttrue\n", out)
    rm(tree); rm(tree2); rm(packdir)
  end)
end)

describe("running a user's suite and scripts", function()
  it("luaio-busted runs a suite from any directory", function()
    local dir = tempdir()
    sh("mkdir -p " .. q(dir .. "/spec"))
    local f = assert(io.open(dir .. "/spec/clock_spec.lua", "w"))
    f:write([[
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
describe("user suite", function()
  it("awaits", aspec.async({clock = "virtual"}, function()
    assert.equal("yes", asyncio.await(asyncio.sleep(5, "yes")))
  end))
end)
]])
    f:close()
    -- the .busted the docs show for the busted command names lua5.4:
    -- luaio-busted stays in luaio all the same
    f = assert(io.open(dir .. "/.busted", "w"))
    f:write('return {default = {lua = "lua5.4", ROOT = {"spec"}}}\n')
    f:close()
    local r = proc.run({proc.luaio, proc.root .. "/tools/luaio-busted",
                        "-o", "TAP"}, {cwd = dir})
    rm(dir)
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.truthy(r.stdout:find("ok 1 - user suite awaits", 1, true),
                  r.stdout)
  end)

  it("the README's LUA_PATH and LUA_CPATH work from any directory", function()
    local root = proc.root
    local out = sh(("cd /tmp && " .. LD ..
                    "LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s"):format(
      q(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"),
      q(proc.build .. "/?.so;;"),
      q("local a = require 'asyncio' print(a.run(a.sleep(0, 'ok')))")))
    assert.equal("ok\n", out)
  end)

  it("another Lua than 5.4 is told what to run instead of failing in the "
     .. "C module's loader", function()
    local r = proc.run{proc.luaio, "-e",
                       "_VERSION = 'Lua 5.1' require 'asyncio'"}
    assert.equal(1, r.status)
    assert.truthy(r.stderr:find(
      "luaio needs Lua 5.4, not Lua 5.1: run scripts with lua5.4 or luaio, "
      .. "and busted as 'busted --lua=lua5.4' or 'luaio-busted'", 1, true),
      r.stderr)
  end)
end)
