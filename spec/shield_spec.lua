-- spec/shield_spec.lua: asyncio.shield (lua/asyncio/combinators.lua),
-- semantics section K.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await
local h = dofile("spec/helpers.lua")
local await_error, vspec = h.await_error, h.vspec

local iserror, CancelledError = asyncio.iserror, asyncio.CancelledError
local sleep, shield = asyncio.sleep, asyncio.shield

describe("shield", function()
  it("K144 the shield resolves with the inner result", vspec(function()
    local inner = asyncio.Future()
    local outer = shield(inner)
    assert.is_true(asyncio.isfuture(outer))
    assert.are_not.equal(inner, outer)
    inner:set_result(42, "more")
    local a, b = await(outer)
    assert.same({42, "more"}, {a, b})
  end))

  it("K144 the shield fails with the inner error", vspec(function()
    local inner = asyncio.Future()
    local outer = shield(inner)
    local err = asyncio.ValueError("inner")
    inner:set_exception(err)
    assert.equal(err, await_error(outer))
  end))

  it("K144 a cancelled inner cancels the shield", vspec(function()
    local inner = asyncio.Future()
    local outer = shield(inner)
    inner:cancel()
    assert.is_true(iserror(await_error(outer), CancelledError))
    assert.is_true(outer:cancelled())
  end))

  it("K145 cancelling the task that awaits a shield leaves the inner "
     .. "running", vspec(function()
    local proof = 0
    local waiter = asyncio.Future()
    local inner = async(function()
      await(waiter)
      proof = proof + 1
    end)
    local outer = asyncio.create_task(async(function()
      await(shield(inner()))
      proof = proof + 100
    end)())
    await(sleep(0))
    outer:cancel()
    assert.is_true(iserror(await_error(outer), CancelledError))
    waiter:set_result()
    await(sleep(0))
    await(sleep(0))
    assert.equal(1, proof)
  end))

  it("K146 cancelling the shield leaves the inner alone and detaches from "
     .. "it", vspec(function()
    local inner = asyncio.Future()
    local outer = shield(inner)
    await(sleep(0))
    assert.matches("cb=%[", tostring(inner))
    outer:cancel()
    await(sleep(0))
    assert.is_true(outer:cancelled())
    assert.is_false(inner:cancelled())
    assert.is_nil(tostring(inner):find("cb=", 1, true))
    inner:set_result(1)
  end))

  it("K147 the shield of a done future is that future", vspec(function()
    local fut = asyncio.Future()
    fut:set_result(42)
    assert.equal(fut, shield(fut))
  end))

  it("K148 cancelling shield(gather(...)) leaves the gather running",
     vspec(function()
    local child1, child2 = asyncio.Future(), asyncio.Future()
    local parent = asyncio.gather(child1, child2)
    local outer = shield(parent)
    await(sleep(0))
    outer:cancel()
    await(sleep(0))
    assert.is_true(outer:cancelled())
    child1:set_result(1)
    child2:set_result(2)
    assert.same({1, 2}, await(parent))
  end))

  it("K148 cancelling gather(shield(a), shield(b)) cancels the shields, not "
     .. "a and b", vspec(function()
    local child1, child2 = asyncio.Future(), asyncio.Future()
    local inner1, inner2 = shield(child1), shield(child2)
    local parent = asyncio.gather(inner1, inner2)
    await(sleep(0))
    parent:cancel()
    await(sleep(0))
    assert.is_true(iserror(await_error(parent), CancelledError))
    assert.is_true(inner1:cancelled())
    assert.is_true(inner2:cancelled())
    assert.is_false(child1:done())
    child1:set_result(1)
    child2:set_result(2)
    await(sleep(0))
    assert.equal(1, child1:result())
  end))

  it("K shields Coroutine objects and __await values", vspec(function()
    local log = {}
    local work = async(function()
      await(sleep(1))
      log[#log + 1] = "work finished"
      return "w"
    end)
    local waiting = asyncio.create_task(async(function()
      return await(shield(work()))
    end)())
    await(sleep(0.5))
    waiting:cancel()
    assert.is_true(iserror(await_error(waiting), CancelledError))
    await(sleep(1))
    assert.same({"work finished"}, log)
    local obj = setmetatable({}, {__await = function()
      return sleep(0.1, "obj")
    end})
    assert.equal("obj", await(shield(obj)))
  end))
end)
