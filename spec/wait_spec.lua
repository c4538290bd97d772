-- spec/wait_spec.lua: asyncio.wait (lua/asyncio/combinators.lua),
-- semantics section G.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, vspec = h.await_error, h.vspec

local iserror, CancelledError = asyncio.iserror, asyncio.CancelledError
local sleep, wait, create_task = asyncio.sleep, asyncio.wait,
  asyncio.create_task

-- done/pending arrays compared as sets: a set of their elements.
local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local fail_after = async(function(delay, err)
  await(sleep(delay))
  error(err, 0)
end)

describe("wait and as_completed with a hole in their list", function()
  it("raise ensure_future's TypeError, naming nil", vspec(function()
    local a = create_task(sleep(0))
    for _, f in ipairs{function() return await(wait({a, nil, a})) end,
                       function() return asyncio.as_completed({a, nil, a}) end}
    do
      local ok, e = pcall(f)
      assert.is_false(ok)
      assert.is_true(iserror(e, asyncio.TypeError), tostring(e))
      assert.equal("An asyncio.Future, a coroutine or an awaitable is "
                   .. "required, got nil", e.message)
    end
    await(a)
  end))
end)

describe("wait", function()
  it("G97 ALL_COMPLETED returns once every awaitable is done", vspec(
    function()
      local loop = asyncio.get_running_loop()
      local a, b = create_task(sleep(0.1)), create_task(sleep(0.15))
      local done, pending = await(wait({b, a}))
      assert.same(set{a, b}, set(done))
      assert.same({}, pending)
      assert.equal(0.15, loop:time())
    end))

  it("G98 waiting on awaitables already done takes no time", vspec(
    function()
      local loop = asyncio.get_running_loop()
      local a, b = create_task(sleep(0.1)), create_task(sleep(0.15))
      await(wait({a, b}))
      local done, pending = await(wait({a, b}))
      assert.same(set{a, b}, set(done))
      assert.same({}, pending)
      assert.equal(0.15, loop:time())
    end))

  it("G99 FIRST_COMPLETED returns when one finishes; the other is left "
     .. "running", vspec(function()
    local loop = asyncio.get_running_loop()
    local a, b = create_task(sleep(10)), create_task(sleep(0.1))
    local done, pending = await(wait({b, a},
                                     {return_when = asyncio.FIRST_COMPLETED}))
    assert.same({b}, done)
    assert.same({a}, pending)
    assert.is_false(a:done())
    assert.is_false(a:cancelled())
    assert.equal(0.1, loop:time())
    a:cancel()
    await_error(a)
  end))

  it("G100 done holds everything done when wait wakes up, so "
     .. "FIRST_COMPLETED may return several", vspec(function()
    local a, b = create_task(sleep(0)), create_task(sleep(0))
    local done, pending = await(wait({a, b},
                                     {return_when = asyncio.FIRST_COMPLETED}))
    assert.same(set{a, b}, set(done))
    assert.same({}, pending)
  end))

  it("G101 FIRST_EXCEPTION returns at once if one already failed",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local a = create_task(sleep(10))
    local b = create_task(fail_after(0, asyncio.ValueError("z")))
    await(sleep(0))
    await(sleep(0))
    assert.is_true(b:done())
    local done, pending = await(wait({b, a},
                                     {return_when = asyncio.FIRST_EXCEPTION}))
    assert.same({b}, done)
    assert.same({a}, pending)
    assert.equal(0, loop:time())
    a:cancel()
    await_error(a)
  end))

  it("G101 FIRST_EXCEPTION returns as soon as one fails", vspec(function()
    local loop = asyncio.get_running_loop()
    local a = create_task(sleep(20))
    local b = create_task(fail_after(0.01, asyncio.ValueError("z")))
    local done, pending = await(wait({b, a},
                                     {return_when = asyncio.FIRST_EXCEPTION}))
    assert.same({b}, done)
    assert.same({a}, pending)
    assert.equal(0.01, loop:time())
    assert.is_true(iserror(b:exception(), asyncio.ValueError))
    a:cancel()
    await_error(a)
  end))

  it("G102 FIRST_EXCEPTION ignores cancellations and otherwise waits for "
     .. "all", vspec(function()
    local loop = asyncio.get_running_loop()
    local a, b = asyncio.Future(), create_task(sleep(0.5, "b"))
    loop:call_later(0.1, function() a:cancel() end)
    local done, pending = await(wait({a, b},
                                     {return_when = asyncio.FIRST_EXCEPTION}))
    assert.same(set{a, b}, set(done))
    assert.same({}, pending)
    assert.equal(0.5, loop:time())
  end))

  it("G103 wait never raises the children's errors", vspec(function()
    local err = asyncio.ValueError("child")
    local a = create_task(fail_after(0.1, err))
    local b = create_task(sleep(0.2, "b"))
    local done, pending = await(wait({a, b}))
    assert.same(set{a, b}, set(done))
    assert.same({}, pending)
    assert.equal(err, a:exception())
    assert.equal("b", b:result())
  end))

  it("G104 a timeout splits done and pending; nothing is raised or "
     .. "cancelled", vspec(function()
    local loop = asyncio.get_running_loop()
    local a, b = create_task(sleep(0.1)), create_task(sleep(0.15))
    local done, pending = await(wait({a, b}, {timeout = 0.11}))
    assert.same({a}, done)
    assert.same({b}, pending)
    assert.equal(0.11, loop:time())
    assert.is_false(b:cancelled())
    await(b)
    assert.equal(0.15, loop:time())
  end))

  it("G105 a task finishing at the instant of the timeout is done",
     vspec(function()
    -- as in the tutorials, the waiting task starts after the child, so
    -- the child's timer is first among equal deadlines (A7)
    local a = create_task(sleep(0.1))
    local done, pending = await(create_task(wait({a}, {timeout = 0.1})))
    assert.same({a}, done)
    assert.same({}, pending)
  end))

  it("G106 cancelling the waiting task raises there and leaves the "
     .. "awaited tasks running", vspec(function()
    local loop = asyncio.get_running_loop()
    local a, b = create_task(sleep(0.3, "a")), create_task(sleep(0.1, "b"))
    local waiter = create_task(wait({a, b}))
    await(sleep(0.05))
    waiter:cancel()
    assert.is_true(iserror(await_error(waiter), CancelledError))
    assert.equal(0.05, loop:time())
    assert.is_false(a:done())
    assert.equal("a", await(a))
    assert.equal("b", b:result())
  end))

  it("G106 wait takes its callback off every child when it returns and "
     .. "when its task is cancelled", vspec(function()
    local a, b = create_task(sleep(0.3, "a")), create_task(sleep(0.1, "b"))
    local done, pending = await(wait({a, b},
                                     {return_when = asyncio.FIRST_COMPLETED}))
    assert.same({b}, done)
    assert.same({a}, pending)
    -- a's own done callbacks: the cb= of its repr after its wait_for=
    -- (the sleep it waits on has a callback of its own)
    local function callbacks(t)
      return (tostring(t):gsub(" wait_for=<Future pending cb=%b[]>", ""))
        :match(" cb=%[")
    end
    assert.is_nil(callbacks(a)) -- pending, no callback left
    local waiter = create_task(wait({a}))
    await(sleep(0.05))
    assert.is_not_nil(callbacks(a))
    waiter:cancel()
    assert.is_true(iserror(await_error(waiter), CancelledError))
    assert.is_nil(callbacks(a))
    assert.equal("a", await(a))
  end))

  it("G109 a list object with __len and __index is read as Lua reads it",
     vspec(function()
    local f, g = asyncio.Future(), asyncio.Future()
    f:set_result(1)
    local items = {f, g, f}
    local reads = 0
    local proxy = setmetatable({}, {
      __len = function() return #items end,
      __index = function(_, i) reads = reads + 1; return items[i] end})
    local done, pending = await(wait(proxy, {timeout = 0}))
    assert.equal(3, reads)
    assert.same({f}, done)
    assert.same({g}, pending)
  end))

  it("a __len claiming more values than there are sizes nothing by "
     .. "it: the read stops at the first error", vspec(function()
    local f = asyncio.Future()
    f:set_result(1)
    local reads = 0
    local liar = setmetatable({}, {
      __len = function() return 2 ^ 30 end,
      __index = function(_, i)
        reads = reads + 1
        if i > 1 then error("no value " .. i) end
        return f
      end})
    local e = await_error(wait(liar))
    assert.matches("no value 2", tostring(e))
    assert.equal(2, reads)
  end))

  it("G107 argument errors: empty list, bad return_when, a single "
     .. "awaitable", vspec(function()
    local e = await_error(wait({}))
    assert.is_true(iserror(e, asyncio.ValueError))
    local f = asyncio.Future()
    f:set_result(1)
    e = await_error(wait({f}, {return_when = -1}))
    assert.is_true(iserror(e, asyncio.ValueError))
    assert.matches("return_when", e.message)
    e = await_error(wait(f))
    assert.is_true(iserror(e, asyncio.TypeError))
    assert.equal("expect a list of futures, not Future", e.message)
    local c = sleep(0)
    e = await_error(wait(c))
    assert.is_true(iserror(e, asyncio.TypeError))
    assert.equal("expect a list of futures, not coroutine", e.message)
    c:close()
  end))

  it("an unknown option raises when the call is made, before the "
     .. "Coroutine object exists; timeout and return_when are taken",
     vspec(function()
    local f = asyncio.Future()
    local e = h.error_of(function() wait({f}, {retrun_when = "x"}) end)
    assert.equal("bad argument #2 to 'wait' (unknown option 'retrun_when')",
                 h.message(e))
    e = h.error_of(function() wait({f}, 5) end)
    assert.equal("bad argument #2 to 'wait' (table expected, got number)",
                 h.message(e))
    local c = wait({f}, {timeout = 0.1, return_when = asyncio.ALL_COMPLETED})
    assert.is_true(asyncio.iscoroutine(c))
    local done, pending = await(c)
    assert.same({{}, {f}}, {done, pending})
  end))

  it("a bad timeout raises, naming wait and the argument, before any "
     .. "Coroutine object is wrapped in a task", vspec(function()
    local n = #asyncio.all_tasks()
    local c = sleep(0)
    local e = await_error(wait({c}, {timeout = "soon"}))
    assert.equal("bad argument #2 to 'wait' (number expected, got string)",
                 h.message(e))
    e = await_error(wait({c}, {timeout = 0 / 0}))
    assert.equal("bad argument #2 to 'wait' (number is NaN)", h.message(e))
    assert.equal(n, #asyncio.all_tasks())
    c:close()
  end))

  it("G108 (DESIGN) Coroutine objects are wrapped in tasks, in array order",
     vspec(function()
    local log = {}
    local step = async(function(name, delay)
      log[#log + 1] = name
      await(sleep(delay))
      return name
    end)
    local done, pending = await(wait({step("a", 0.2), step("b", 0.1)},
                                     {return_when = asyncio.FIRST_COMPLETED}))
    assert.same({"a", "b"}, log)
    assert.equal(1, #done)
    assert.equal("b", done[1]:result())
    assert.equal(1, #pending)
    assert.is_not_nil(tostring(pending[1]):match("^<Task"))
    assert.equal("a", await(pending[1]))
  end))

  it("G109 duplicates collapse and any iterator is accepted", vspec(
    function()
      local c = sleep(0.01, "c")
      local d = sleep(0.02, "d")
      local done, pending = await(wait({c, c, d}))
      assert.equal(2, #done)
      assert.same({}, pending)
      local a, b = create_task(sleep(0.01)), create_task(sleep(0.02))
      local i, list = 0, {a, b, a}
      done = await(wait(function()
        i = i + 1
        return list[i]
      end))
      assert.same(set{a, b}, set(done))
      assert.equal(2, #done)
    end))

  it("G accepts Futures and __await values, and keeps array order",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local f = asyncio.Future()
    loop:call_later(0.05, function() f:set_result("f") end)
    local obj = setmetatable({}, {__await = function()
      return sleep(0.01, "obj")
    end})
    local done, pending = await(wait({f, obj}))
    assert.equal(2, #done)
    assert.equal(f, done[1])
    assert.equal("obj", done[2]:result())
    assert.same({}, pending)
  end))

  it("G returns from run_until_complete as done, pending", function()
    local loop = asyncio.new_event_loop{clock = "virtual"}
    asyncio.set_event_loop(loop)
    local done, pending = loop:run_until_complete(
      wait({sleep(1, 1), sleep(2, 2)}, {timeout = 1.5}))
    assert.equal(1, #done)
    assert.equal(1, done[1]:result())
    assert.equal(1, #pending)
    pending[1]:cancel()
    pcall(loop.run_until_complete, loop, pending[1])
    require("asyncio.core")._unset_event_loop()
    loop:close()
  end)
end)
