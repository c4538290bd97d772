-- spec/loop_spec.lua: the event loop (bindings/loop.c), semantics section A.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

describe("event loop", function()
  local loop
  before_each(function() loop = asyncio.new_event_loop{clock = "virtual"} end)
  after_each(function()
    if not loop:is_closed() then loop:close() end
    assert.same(0, loop:_counts().handles)
  end)

  it("A1 call_soon runs the callback once, later, with its arguments", function()
    local calls = {}
    loop:call_soon(function(a, b) calls[#calls + 1] = {a, b} end, 1, 2)
    assert.same({}, calls)
    loop:call_soon(loop.stop, loop)
    loop:run_forever()
    assert.same({{1, 2}}, calls)
  end)

  it("A3 callbacks scheduled while an iteration runs wait for the next one", function()
    local log = {}
    loop:call_soon(function()
      log[#log + 1] = "A"
      loop:call_soon(function() log[#log + 1] = "B" end)
    end)
    loop:call_soon(loop.stop, loop)
    loop:run_forever()
    assert.same({"A"}, log)
    loop:stop()
    loop:run_forever()
    assert.same({"A", "B"}, log)
  end)
end)

describe("asyncio.busted", function()
  it("runs the body as a task on a fresh loop", aspec.async(function()
    assert.is_not_nil(asyncio.current_task())
    assert.equal("virtual-free", (await(asyncio.sleep(0, "virtual-free"))))
  end))
end)
