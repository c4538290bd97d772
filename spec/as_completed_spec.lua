-- spec/as_completed_spec.lua: asyncio.as_completed
-- (lua/asyncio/combinators.lua), semantics section H.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local vspec = h.vspec

local iserror, TimeoutError = asyncio.iserror, asyncio.TimeoutError
local sleep, as_completed, create_task = asyncio.sleep,
  asyncio.as_completed, asyncio.create_task

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

describe("as_completed", function()
  it("H110 a generic for gives the results in completion order", vspec(
    function()
      local loop = asyncio.get_running_loop()
      local a, b, c = sleep(0.05, "a"), sleep(0.10, "b"), sleep(0.15, "c")
      local values, times = {}, {}
      for fut in as_completed({b, c, a}) do
        values[#values + 1] = await(fut)
        times[#times + 1] = loop:time()
      end
      assert.same({"a", "b", "c"}, values)
      assert.same({0.05, 0.10, 0.15}, times)
    end))

  it("H110 plain iteration yields one awaitable per input, resolving in "
     .. "completion order", vspec(function()
    local loop = asyncio.get_running_loop()
    local a, b, c = sleep(0.05, "a"), sleep(0.10, "b"), sleep(0.15, "c")
    local values = {}
    for aw in as_completed({b, c, a}):awaitables() do
      assert.is_true(asyncio.iscoroutine(aw))
      values[#values + 1] = await(aw)
    end
    assert.same({"a", "b", "c"}, values)
    assert.equal(0.15, loop:time())
  end))

  it("H111 the k-th awaitable resolves to the k-th completion, whichever "
     .. "is awaited first", vspec(function()
    local loop = asyncio.get_running_loop()
    local a, b = sleep(0.05, "a"), sleep(0.10, "b")
    local futs = {}
    for aw in as_completed({a, b}):awaitables() do futs[#futs + 1] = aw end
    assert.equal(2, #futs)
    assert.equal("a", await(futs[2]))
    assert.equal(0.05, loop:time())
    assert.equal("b", await(futs[1]))
    assert.equal(0.10, loop:time())
  end))

  it("H112 the generic for yields the original futures, and the tasks made "
     .. "for Coroutine objects", vspec(function()
    local t = create_task(sleep(0.02, "task"))
    local f = asyncio.Future()
    asyncio.get_running_loop():call_later(0.03, function()
      f:set_result("future")
    end)
    local c = sleep(0.01, "coro")
    local got = {}
    for fut in as_completed({t, f, c}) do got[#got + 1] = fut end
    assert.equal(3, #got)
    assert.is_true(asyncio.isfuture(got[1]))
    assert.are_not.equal(c, got[1])
    assert.equal("coro", got[1]:result())
    assert.equal(t, got[2])
    assert.equal(f, got[3])
  end))

  it("H113 a timeout raises TimeoutError for what is left, when awaited "
     .. "(plain iteration)", vspec(function()
    local loop = asyncio.get_running_loop()
    local a = create_task(sleep(0.1, "a"))
    local b = create_task(sleep(0.15, "b"))
    local values = {}
    for aw in as_completed({a, b}, {timeout = 0.12}):awaitables() do
      local ok, v = pcall(await, aw)
      values[#values + 1] = {ok, ok and v or iserror(v, TimeoutError)}
    end
    assert.same({{true, "a"}, {false, true}}, values)
    assert.equal(0.12, loop:time())
    await(b)
  end))

  it("H113 a timeout raises TimeoutError from the step of a generic for",
     vspec(function()
    local loop = asyncio.get_running_loop()
    local a = create_task(sleep(0.1, "a"))
    local b = create_task(sleep(0.15, "b"))
    local values = {}
    local it = as_completed({a, b}, {timeout = 0.12})
    local ok, err = pcall(function()
      for fut in it do values[#values + 1] = await(fut) end
    end)
    assert.is_false(ok)
    assert.is_true(iserror(err, TimeoutError))
    assert.same({"a"}, values)
    assert.equal(0.12, loop:time())
    assert.is_nil(it()) -- every input was produced
    assert.is_false(b:cancelled())
    await(b)
  end))

  it("H113 an unused timeout changes nothing and leaves no timer", vspec(
    function()
      local loop = asyncio.get_running_loop()
      local values = {}
      for fut in as_completed({sleep(0.1, "a"), sleep(0.2, "b")},
                              {timeout = 10}) do
        values[#values + 1] = await(fut)
      end
      assert.same({"a", "b"}, values)
      assert.equal(0.2, loop:time())
      assert.equal(0, loop:_counts().timers)
    end))

  it("H114 the iteration can stop early and resume later", vspec(function()
    local it = as_completed({sleep(0.1, "a"), sleep(0.2, "b"),
                             sleep(0.3, "c")})
    local first = {}
    for fut in it do
      first[#first + 1] = await(fut)
      break
    end
    assert.same({"a"}, first)
    local rest = {}
    for fut in it do rest[#rest + 1] = await(fut) end
    assert.same({"b", "c"}, rest)
    assert.is_nil(it())
  end))

  it("H115 duplicates collapse", vspec(function()
    local c = sleep(0.01, "c")
    local n = 0
    for fut in as_completed({c, c}) do
      n = n + 1
      assert.equal("c", await(fut))
    end
    assert.equal(1, n)
  end))

  it("H115 a single future or coroutine raises TypeError", vspec(function()
    local f = asyncio.Future()
    local ok, e = pcall(as_completed, f)
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.TypeError))
    -- Python 3.13's words (3.12 said "expect an iterable of futures")
    assert.equal("expects an iterable of awaitables, not Future", e.message)
    local c = sleep(0)
    ok, e = pcall(as_completed, c)
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.TypeError))
    assert.equal("expects an iterable of awaitables, not coroutine",
                 e.message)
    c:close()
  end))

  it("H115 the yielded awaitables may be awaited concurrently", vspec(
    function()
      local futs = {}
      for aw in as_completed({sleep(0.05, "a"), sleep(0.05, "b")})
                :awaitables() do
        futs[#futs + 1] = create_task(aw)
      end
      local done, pending = await(asyncio.wait(futs))
      assert.same({}, pending)
      local results = {}
      for _, t in ipairs(done) do results[#results + 1] = t:result() end
      assert.same(set{"a", "b"}, set(results))
    end))

  it("H cancelling the iterating task raises CancelledError there; the "
     .. "inputs go on", vspec(function()
    local a = create_task(sleep(0.5, "a"))
    local obj = setmetatable({}, {__await = function()
      return sleep(0.2, "obj")
    end})
    local seen = {}
    local iterating = create_task(async(function()
      for fut in as_completed({a, obj}) do seen[#seen + 1] = await(fut) end
    end)())
    await(sleep(0.3))
    iterating:cancel()
    local ok, e = pcall(await, iterating)
    assert.is_false(ok)
    assert.is_true(iserror(e, asyncio.CancelledError))
    assert.same({"obj"}, seen)
    assert.equal("a", await(a))
  end))

  it("H a cancelled getter leaves the completion to the next one", vspec(
    function()
      local b = create_task(sleep(0.2, "b"))
      local it = as_completed({sleep(0.1, "a"), b})
      local aws = {}
      for aw in it:awaitables() do aws[#aws + 1] = aw end
      local t1 = create_task(aws[1])
      local t2 = create_task(aws[2])
      await(sleep(0.05))
      t1:cancel()
      assert.is_false(pcall(await, t1))
      assert.equal("a", await(t2))
      assert.equal("b", await(b))
    end))

  it("an unknown option raises when the call is made; timeout is taken",
     vspec(function()
    local f = asyncio.Future()
    local e = h.error_of(function()
      asyncio.as_completed({f}, {timout = 1})
    end)
    assert.equal("bad argument #2 to 'as_completed' (unknown option "
                 .. "'timout')", h.message(e))
    f:set_result(1)
    local got = {}
    for fut in asyncio.as_completed({f}, {timeout = 10}) do
      got[#got + 1] = await(fut)
    end
    assert.same({1}, got)
    local loop = asyncio.get_running_loop()
    local t0 = loop:time()
    local never = asyncio.Future()
    local e2 = h.error_of(function()
      for fut in asyncio.as_completed({never}, {timeout = 10}) do
        await(fut)
      end
    end)
    assert.is_true(iserror(e2, asyncio.TimeoutError))
    assert.equal(10, loop:time() - t0)
  end))
end)
