-- spec/doctest_spec.lua: every Lua example of the docs runs (doc tests).
--
-- The pages are README.md and docs/*.md. Their fenced code blocks whose
-- info string starts with `lua` are examples, read as follows (the same
-- convention is written for authors in docs/index.md):
--
--   ```lua               a whole program: it runs as it stands, in a
--                        fresh `luaio` process whose working directory is
--                        an empty temporary directory, and must exit 0
--                        within 20 seconds without a "never awaited" or
--                        "Task was destroyed" report on stderr.
--   ```lua norun         a fragment that cannot run alone (it uses names
--                        the text around it introduces, or talks to a
--                        service that is not there): it must compile, and
--                        each field it names of the library's modules
--                        (asyncio.X, http.X, web.X, ssl.X, redis.X, wq.X,
--                        fs.X, outside strings and comments) must exist.
--   ```lua prelude       the page's "every example starts with" block
--                        (the `require` lines): it is put before each
--                        later example of the page, run or compiled.
--   ```lua needs=redis   runs with a redis-server the spec starts on a
--                        free port: the block writes Redis's address with
--                        the default port, 6379, which the spec replaces
--                        by its server's port.
--   -- doctest: continue as the first line of a block joins it to the
--                        page's previous example: they run as one
--                        program, with the first block's tags.
--
-- Every program is started at once (eight at a time), so the spec takes
-- as long as the slowest example; one test per example reports its page
-- and line.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local proc = dofile("spec/fixtures/proc.lua")
local servers = dofile("spec/fixtures/servers.lua")

-- seconds, per example, and examples run at once: under valgrind (make
-- check) each is many times slower, so fewer run at once, for longer
local VALGRIND = os.getenv("LUAIO_VALGRIND") == "1"
local TIMEOUT = VALGRIND and 120 or 20
local AT_ONCE = VALGRIND and 2 or 8

local function pages()
  local list = {"README.md"}
  local p = assert(io.popen("ls docs/*.md"))
  for path in p:lines() do list[#list + 1] = path end
  p:close()
  return list
end

--- examples(path) -> an array of {page =, line =, code =, norun =,
-- needs =}: the page's Lua examples, continued blocks joined.
local function examples(path)
  local list, block, prelude = {}, nil, ""
  local n = 0
  for line in (proc.slurp(path) .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if block then
      if line:match("^```%s*$") then
        local code = table.concat(block.lines, "\n") .. "\n"
        if code:match("^%-%- doctest: continue\n") and #list > 0 then
          local prev = list[#list]
          prev.code = prev.code .. code
          prev.needs = prev.needs or block.needs
        elseif block.lua and block.prelude then
          prelude = prelude .. code
        elseif block.lua then
          list[#list + 1] = {page = path, line = block.line,
                             code = prelude .. code, norun = block.norun,
                             needs = block.needs}
        end
        block = nil
      else
        block.lines[#block.lines + 1] = line
      end
    else
      local info = line:match("^```(.*)$")
      if info then
        local words = {}
        for w in info:gmatch("%S+") do words[w] = true end
        block = {line = n, lines = {}, lua = info:match("^lua%f[%s%z]"),
                 norun = words.norun, prelude = words.prelude,
                 needs = info:match("needs=(%w+)")}
      end
    end
  end
  assert(block == nil, path .. ": a code block is not closed")
  return list
end

-- the names a fragment may use for the library's modules
local MODULES = {asyncio = "asyncio", http = "asyncio.http",
                 web = "asyncio.http.web", ssl = "asyncio.ssl",
                 redis = "asyncio.redis", wq = "asyncio.workqueue",
                 fs = "asyncio.fs"}

--- names(code) -> an array of the "module.field" names the code uses
-- (strings and comments left out; a name the code binds to something
-- else than the module is not one).
local function names(code)
  code = code:gsub("%[(=*)%[.-%]%1%]", ""):gsub("%-%-[^\n]*", "")
             :gsub('"[^"\n]*"', '""'):gsub("'[^'\n]*'", "''")
  local list = {}
  for alias, field in code:gmatch("%f[%w_.]([%a_][%w_]*)%.([%a_][%w_]*)") do
    local bound = code:match("local%s+" .. alias .. "%s*=%s*([^\n]*)")
    if MODULES[alias] and (bound == nil or bound:find("require", 1, true))
    then
      list[#list + 1] = alias .. "." .. field
    end
  end
  return list
end

--- absent(list) -> the set of the "module.field" names of list that do
-- not exist, looked up by a luaio process: loading the modules here
-- would leave copies of them behind, which busted unloads after this
-- file while asyncio, which stays, remembers their error classes.
local function absent(list)
  local modules = {}
  for alias, mod in pairs(MODULES) do
    modules[#modules + 1] = ("%s = %q"):format(alias, mod)
  end
  local checker = "local MODULES = {" .. table.concat(modules, ", ") ..
                  "}\n" .. [[
    for line in io.lines() do
      local alias, field = line:match("^(.-)%.(.*)$")
      if require(MODULES[alias])[field] == nil then print(line) end
    end]]
  local r = proc.run({proc.luaio, "-e", checker},
                     {stdin = table.concat(list, "\n") .. "\n"})
  assert(r.status == 0, r.stderr)
  local set = {}
  for name in r.stdout:gmatch("[^\n]+") do set[name] = true end
  return set
end

--- run(ex, redis_port) -> {status =, stdout =, stderr =} of the example
-- run as a program in a temporary directory; status "timeout" when it
-- ran past TIMEOUT (it is killed).
local run = async(function(ex, redis_port)
  local code = ex.code
  if ex.needs == "redis" then code = code:gsub("6379", redis_port) end
  local dir = proc.tempdir()
  local f = assert(io.open(dir .. "/example.lua", "w"))
  f:write(code)
  f:close()
  local p = await(asyncio.create_subprocess_exec(proc.luaio, "example.lua",
    {cwd = dir, stdin = asyncio.DEVNULL, stdout = asyncio.PIPE,
     stderr = asyncio.PIPE}))
  local ok, out, err = pcall(await, asyncio.wait_for(p:communicate(),
                                                      TIMEOUT))
  local status = p.returncode
  if not ok then
    if p.returncode == nil then p:kill() end
    await(p:wait())
    out, err, status = "", tostring(out), "timeout"
  end
  proc.rmdir(dir)
  return {status = status, stdout = out, stderr = err}
end)

local all = {}
for _, page in ipairs(pages()) do
  for _, ex in ipairs(examples(page)) do all[#all + 1] = ex end
end

describe("the docs' Lua examples", function()
  local missing
  setup(function()
    local used = {}
    for _, ex in ipairs(all) do
      if ex.norun then
        for _, name in ipairs(names(ex.code)) do used[#used + 1] = name end
      end
    end
    missing = absent(used)
    asyncio.run(async(function()
      local port
      for _, ex in ipairs(all) do
        if ex.needs == "redis" and not ex.norun then
          port = port or await(servers.redis_port())
        end
      end
      local sem = asyncio.Semaphore(AT_ONCE)
      local jobs = {}
      for _, ex in ipairs(all) do
        if not ex.norun then
          jobs[#jobs + 1] = asyncio.create_task(async(function()
            local _ <close> = await(sem)
            ex.result = await(run(ex, port))
          end)())
        end
      end
      if #jobs > 0 then await(asyncio.gather(table.unpack(jobs))) end
    end)())
  end)
  teardown(servers.stop)

  it("are found on the pages", function()
    assert.is_true(#all > 50, "only " .. #all .. " examples found")
  end)

  for _, ex in ipairs(all) do
    local where = ("%s:%d"):format(ex.page, ex.line)
    if ex.norun then
      it(where .. " (norun) compiles and names what exists", function()
        local fn, err = load(ex.code, "=" .. where, "t")
        assert(fn, err)
        local bad = {}
        for _, name in ipairs(names(ex.code)) do
          if missing[name] then bad[#bad + 1] = name end
        end
        assert.same({}, bad, where .. " uses names that do not exist")
      end)
    else
      it(where .. " runs" .. (ex.needs and " with " .. ex.needs or ""),
         function()
        local r = assert(ex.result, "not run")
        local report = ("%s: exit %s\n--- stdout\n%s--- stderr\n%s")
          :format(where, tostring(r.status), r.stdout, r.stderr)
        assert(r.status == 0, report)
        assert(not r.stderr:find("never awaited", 1, true), report)
        assert(not r.stderr:find("Task was destroyed", 1, true), report)
      end)
    end
  end
end)
