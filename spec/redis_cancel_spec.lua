-- spec/redis_cancel_spec.lua: cancelling asyncio.redis commands never
-- loses an item nor desynchronises a connection. 100 tasks block in
-- BRPOP or BLMOVE while a producer pushes items; tasks are cancelled at
-- random (fixed seed) and replaced; at the end every item is exactly
-- once in a consumer's hands, in the BLMOVE processing list, or still in
-- the queue.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local redis = require "asyncio.redis"
local servers = dofile("spec/fixtures/servers.lua")
local async, await = asyncio.async, asyncio.await

local ITEMS, CONSUMERS, CANCELS = 600, 100, 150

describe("asyncio.redis cancellation", function()
  teardown(servers.stop)

  it("loses no item when blocked pops are cancelled at random",
     aspec.async(function()
    math.randomseed(1234)
    local url = await(servers.redis_url(8))
    local r = await(redis.from_url(url, {pool_size = 2 * CONSUMERS}))
    await(r:flushdb())
    local popped, moved = {}, {}
    -- a consumer returns when it takes "end"; the last one sets all_ended
    local ended, all_ended = 0, asyncio.Event()
    local consumer = async(function(kind)
      while true do
        local v
        if kind == "brpop" then
          v = select(2, await(r:brpop({"q"}, 0)))
          if v ~= "end" then popped[#popped + 1] = v end
        else
          v = await(r:blmove("q", "processing", 0, "RIGHT", "LEFT"))
          if v ~= "end" then moved[#moved + 1] = v end
        end
        if v == "end" then
          ended = ended + 1
          if ended == CONSUMERS then all_ended:set() end
          return
        end
      end
    end)
    local tasks = {}
    for i = 1, CONSUMERS do
      tasks[i] = asyncio.create_task(consumer(i % 2 == 0 and "brpop"
                                                          or "blmove"))
    end
    local producer = asyncio.create_task(async(function()
      for i = 1, ITEMS, 6 do
        await(r:lpush("q", i, i + 1, i + 2, i + 3, i + 4, i + 5))
        await(asyncio.sleep(0))
      end
    end)())
    for _ = 1, CANCELS do
      for _ = 1, math.random(0, 3) do await(asyncio.sleep(0)) end
      if math.random() < 0.3 then await(asyncio.sleep(0.001)) end
      local i = math.random(CONSUMERS)
      tasks[i]:cancel()
      tasks[i] = asyncio.create_task(consumer(i % 2 == 0 and "brpop"
                                                          or "blmove"))
    end
    await(producer)
    -- the consumers take what is left, then an "end" each: the queue
    -- is served from the right, so the items go first. A cancelled BLMOVE
    -- may still take one "end" (into "processing") before Redis unblocks
    -- it, hence CANCELS more.
    local ends = {}
    for i = 1, CONSUMERS + CANCELS do ends[i] = "end" end
    await(r:lpush("q", table.unpack(ends)))
    await(asyncio.wait_for(all_ended:wait(), 10))
    await(asyncio.wait(tasks))
    local r2 = await(redis.from_url(url))
    await(r:close())   -- waits for the cancelled pops to be put back
    local left = await(r2:lrange("q", 0, -1))
    local processing = await(r2:lrange("processing", 0, -1))
    await(r2:close())
    local count = {}
    local function add(list, what)
      for _, v in ipairs(list) do
        if v ~= "end" then
          v = tonumber(v)
          assert(count[v] == nil, ("item %d twice (%s)"):format(v, what))
          count[v] = what
        end
      end
    end
    add(popped, "popped")
    add(processing, "processing")
    add(left, "left")
    for i = 1, ITEMS do
      assert(count[i], ("item %d lost"):format(i))
    end
    -- what BLMOVE returned is in the processing list
    local inproc = {}
    for _, v in ipairs(processing) do inproc[v] = true end
    for _, v in ipairs(moved) do assert.is_true(inproc[v]) end
    assert.is_true(#popped > 0 and #moved > 0)
  end))
end)
