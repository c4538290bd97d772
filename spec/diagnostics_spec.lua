-- spec/diagnostics_spec.lua: error reporting (semantics section V and the
-- exception handler of bindings/core/loop.c): nothing fails silently.
local asyncio = require "asyncio"
local proc = dofile("spec/fixtures/proc.lua")
local async, await = asyncio.async, asyncio.await

local h = dofile("spec/helpers.lua")
local raised, has = h.error_of, h.has

local function collect()
  collectgarbage()
  collectgarbage()
end

--- Runs spec/fixtures/handler.lua in `mode`.
local function handler_fixture(mode)
  return proc.run{proc.luaio, proc.fixture("handler.lua"), mode}
end

describe("diagnostics", function()
  local loop, reports
  h.each_reporting_loop(function(l, r) loop, reports = l, r end)

  it("V249 a failed task nobody asked is reported when collected",
     function()
    local err = asyncio.ValueError("lost")
    do
      local task = loop:create_task(async(function()
        await(asyncio.sleep(1))
        error(err)
      end)())
      loop:run_until_complete(asyncio.sleep(2))
      assert.is_true(task:done())
    end
    collect()
    assert.equal(1, #reports)
    assert.equal("Task exception was never retrieved", reports[1].message)
    assert.equal(err, reports[1].exception)
    assert.matches("^<Task finished ", tostring(reports[1].future))
  end)

  it("V249 a retrieved task error is not reported", function()
    local gone = setmetatable({}, {__mode = "v"})
    do
      local task = loop:create_task(async(function()
        error(asyncio.ValueError("seen"))
      end)())
      loop:run_until_complete(asyncio.sleep(1))
      assert.is_true(asyncio.iserror(task:exception(), asyncio.ValueError))
      gone[1] = task
    end
    do
      local awaited = loop:create_task(async(function()
        error(asyncio.ValueError("awaited"))
      end)())
      assert.is_false(pcall(loop.run_until_complete, loop, awaited))
      gone[2] = awaited
    end
    collect()
    assert.is_nil(next(gone)) -- both were collected
    assert.equal(0, #reports)
  end)

  it("V249 a future's unretrieved error is reported too", function()
    do
      local fut = loop:create_future()
      fut:set_exception(asyncio.RuntimeError("nobody looked"))
    end
    collect()
    assert.equal(1, #reports)
    assert.equal("Future exception was never retrieved", reports[1].message)
    assert.is_true(asyncio.iserror(reports[1].exception,
                                   asyncio.RuntimeError))
    assert.is_not_nil(reports[1].future)
  end)

  it("V250 a pending task collected after close is reported", function()
    local never = loop:create_future()
    do
      loop:create_task(async(function() await(never) end)(),
                       {name = "stuck"})
      loop:run_until_complete(asyncio.sleep(0))
      assert.equal(1, #asyncio.all_tasks(loop))
    end
    collect()
    assert.equal(0, #reports) -- the loop holds its pending tasks
    loop:close()
    assert.equal(0, #asyncio.all_tasks(loop))
    collect()
    assert.equal(1, #reports)
    assert.equal("Task was destroyed but it is pending!", reports[1].message)
    assert.matches("^<Task pending name='stuck'", tostring(reports[1].task))
  end)

  it("A12 the context of a callback error has message, exception, handle",
     function()
    local err = asyncio.ValueError("in callback")
    local h = loop:call_soon(error, err)
    loop:call_soon(loop.stop, loop)
    loop:run_forever()
    assert.equal(1, #reports)
    assert.matches("^Exception in callback ", reports[1].message)
    assert.equal(err, reports[1].exception)
    assert.equal(h, reports[1].handle)
  end)

  it("call_exception_handler passes the context to the handler", function()
    local ctx = {message = "mine", exception = asyncio.ValueError("v"),
                 extra = 1}
    loop:call_exception_handler(ctx)
    assert.equal(1, #reports)
    assert.equal(ctx, reports[1])
  end)

  it("A13 get_exception_handler returns the handler, nil by default",
     function()
    local handler = loop:get_exception_handler()
    assert.is_function(handler)
    loop:set_exception_handler(nil)
    assert.is_nil(loop:get_exception_handler())
    local fresh = asyncio.new_event_loop()
    assert.is_nil(fresh:get_exception_handler())
    fresh:close()
  end)

  it("A13 set_exception_handler rejects what cannot be called", function()
    local before = loop:get_exception_handler()
    for _, bad in ipairs{42, "fn", {}, false} do
      local e = raised(loop.set_exception_handler, loop, bad)
      assert.is_true(asyncio.iserror(e, asyncio.TypeError), tostring(e))
    end
    assert.equal(before, loop:get_exception_handler())
  end)
end)

describe("the default exception handler", function()
  it("A12 writes a callback error and its traceback to stderr", function()
    local r = handler_fixture("callback")
    assert.equal(0, r.status)
    assert.equal("loop went on\n", r.stdout)
    has(r.stderr, "Exception in callback ")
    has(r.stderr, "ValueError: callback failed")
    has(r.stderr, "stack traceback:")
    has(r.stderr, "handler.lua:21:")
  end)

  it("V249 writes an unretrieved task error with the task's traceback",
     function()
    local r = handler_fixture("task")
    assert.equal(0, r.status)
    assert.equal("true\ncollected\n", r.stdout)
    has(r.stderr, "Task exception was never retrieved")
    has(r.stderr, "future: <Task finished name='Task-1'")
    has(r.stderr, "ValueError: lost")
    has(r.stderr, "handler.lua:31:")
  end)

  it("A13 reports a failing custom handler; the loop goes on", function()
    local r = handler_fixture("broken")
    assert.equal(0, r.status)
    assert.equal("loop went on\n", r.stdout)
    has(r.stderr, "Unhandled error in exception handler")
    has(r.stderr, "handler broke")
  end)

  it("A13 takes over again once the custom handler is unset", function()
    local r = handler_fixture("restore")
    assert.equal(0, r.status)
    assert.equal("nil\n", r.stdout)
    has(r.stderr, "Exception in callback ")
    has(r.stderr, "ValueError: callback failed")
  end)

  it("writes a context given to call_exception_handler", function()
    local r = handler_fixture("call")
    assert.equal(0, r.status)
    assert.equal("called\n", r.stdout)
    local lines = proc.lines(r.stderr)
    assert.equal("something odd", lines[1])
    has(r.stderr, "detail: 'extra key'")
    has(r.stderr, "RuntimeError: odd")
  end)
end)

describe("what diagnostics name", function()
  local failing = [[
local asyncio = require "asyncio"
local M = {}
function M.handler(x) error("boom " .. x) end
local function work(n) M.handler(n) end
asyncio.run(asyncio.async(function()
  local t = asyncio.create_task(asyncio.async(function() work(1) end)(),
                                {name = "worker-1"})
  asyncio.await(t)
end))
]]

  it("a task's traceback names the task, its frames by their names, and "
     .. "leaves out the library's frames unless --debug", function()
    local r = proc.run({proc.luaio, "-"}, {stdin = failing})
    assert.equal(1, r.status)
    has(r.stderr, "stack traceback of task 'worker-1':")
    has(r.stderr, "stdin:3: in field 'handler'")
    has(r.stderr, "stdin:4: in upvalue 'work'")
    has(r.stderr, "(awaited from)\nstack traceback of task 'Task-1':")
    assert.is_nil(r.stderr:find("asyncio/", 1, true), r.stderr)
    assert.is_nil(r.stderr:find("[C]: in ?", 1, true), r.stderr)
    local d = proc.run({proc.luaio, "--debug", "-"}, {stdin = failing})
    assert.equal(1, d.status)
    has(d.stderr, "stack traceback of task 'worker-1':")
    assert.truthy(d.stderr:find("asyncio/[%w_]+%.lua:%d+:") or
                  d.stderr:find("[C]: in ?", 1, true), d.stderr)
  end)

  it("the slow-step warning names the task and where it resumed",
     function()
    local r = proc.run{proc.luaio, "--debug", "-e", [[
      local asyncio = require "asyncio"
      -- each step spins for 0.15 s of CPU time, past the 0.1 s threshold
      local function spin()
        local t0 = os.clock()
        while os.clock() - t0 < 0.15 do end
      end
      asyncio.run(asyncio.async(function()
        local t = asyncio.create_task(asyncio.async(function()
          spin() asyncio.await(asyncio.sleep(0)) spin()
        end)(), {name = "slowpoke"})
        asyncio.await(t)
      end))
    ]]}
    assert.equal(0, r.status, r.stderr)
    has(r.stderr, "asyncio: executing a step of task 'slowpoke' (first step)"
                  .. " took ")
    has(r.stderr, "asyncio: executing a step of task 'slowpoke' resumed at "
                  .. "(command line):9 took ")
  end)

  it("the never-awaited warning says how to see the coroutine's origin",
     function()
    local code = [[
      local asyncio = require "asyncio"
      asyncio.async(function() end)()
      collectgarbage() collectgarbage()
    ]]
    local r = proc.run{proc.luaio, "-e", code}
    assert.equal("RuntimeWarning: coroutine 'function <(command line):2>' "
                 .. "was never awaited\n(run with --debug or LUAIO_DEBUG=1 "
                 .. "to see where it was created)\n", r.stderr)
    local d = proc.run{proc.luaio, "--debug", "-e", code}
    has(d.stderr, "Coroutine created at")
    assert.is_nil(d.stderr:find("run with --debug", 1, true))
  end)
end)
