-- spec/embed_spec.lua: the embedding API as a game uses it
-- (examples/embed/game.c driving examples/embed/game.lua). The C tests of
-- the API itself are host/test/test_embed.c (make test-c).
local build = os.getenv("LUAIO_BUILD") or "build"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, status = p:close()
  return out, ok and 0 or status
end

describe("the embedding API in a game-shaped program", function()
  it("runs scripts across frames on game time, with a worker's result",
     function()
    local out, status = run(build .. "/examples/embed/game")
    assert.equal(0, status)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    -- everything but the frame at which the worker's path arrives is
    -- fixed by game time: the patrol pauses with the game (frames
    -- 120..179 stand still)
    assert.same({
      "[frame   1] guard walks to post 1",
      "[frame  32] scout asks for a path",
    }, {lines[1], lines[2]})
    local got = assert(lines[3]:match("^%[frame +(%d+)%] scout got path 3%-4%-5%-6%-7$"))
    assert.is_true(tonumber(got) >= 32 and tonumber(got) < 61)
    -- the task's done-callback runs right after it, in the same step or,
    -- when that step's budget ran out, the next one
    local result_at = assert(lines[4]:match(
      "^%[frame +(%d+)%] scout's result: 3%-4%-5%-6%-7$"))
    assert.is_true(tonumber(result_at) >= tonumber(got) and
                   tonumber(result_at) < 61)
    assert.same({
      "[frame  61] guard walks to post 2",
      "[frame 182] guard walks to post 1",
      "[frame 243] guard walks to post 2",
      "[frame 304] guard ends the patrol",
      "[frame 304] guard done",
      "frames: 360, game time: 5.00 s",
    }, {table.unpack(lines, 5)})
  end)
end)
