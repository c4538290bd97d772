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
    local lines, scout, guard_done = {}, {}, nil
    for line in out:gmatch("[^\n]+") do
      -- the path comes from a worker thread: it arrives after a number of
      -- frames that depends on the real clock, so the scout's lines are
      -- checked apart from the rest, which game time fixes
      if line:find("scout got path", 1, true) or
         line:find("scout's result", 1, true) then
        scout[#scout + 1] = line
      elseif line:find("guard done", 1, true) then
        guard_done = line
      else
        lines[#lines + 1] = line
      end
    end
    assert.same({
      "[frame   1] guard walks to post 1",
      "[frame  32] scout asks for a path",
      "[frame  61] guard walks to post 2",
      "[frame 182] guard walks to post 1",
      "[frame 243] guard walks to post 2",
      "[frame 304] guard ends the patrol",
      "frames: 360, game time: 5.00 s",
    }, lines)
    -- a done-callback runs right after its task, in the same step or,
    -- when that step's 2 ms ran out (a slowed-down build), the next one
    local done_at = assert(guard_done and
      guard_done:match("^%[frame +(%d+)%] guard done$"))
    assert.is_true(tonumber(done_at) == 304 or tonumber(done_at) == 305)
    assert.equal(2, #scout)
    local got = assert(scout[1]:match(
      "^%[frame +(%d+)%] scout got path 3%-4%-5%-6%-7$"))
    -- the scout's done-callback, likewise
    local result_at = assert(scout[2]:match(
      "^%[frame +(%d+)%] scout's result: 3%-4%-5%-6%-7$"))
    assert.is_true(tonumber(got) >= 32)
    assert.is_true(tonumber(result_at) >= tonumber(got))
  end)

  -- Under make check-valgrind (LUAIO_VALGRIND=1) the game runs under its
  -- own memcheck, which must find no error and no leak (exit 99 if it
  -- does); the frames its slowed-down steps reach are not compared.
  it("exits cleanly with every frame played" ..
     (os.getenv("LUAIO_VALGRIND") == "1" and " (under valgrind)" or ""),
     function()
    local wrap = ""
    if os.getenv("LUAIO_VALGRIND") == "1" then
      wrap = "valgrind --error-exitcode=99 --leak-check=full " ..
             "--errors-for-leak-kinds=definite,indirect " ..
             "--show-leak-kinds=definite,indirect --quiet "
    end
    local out, status = run(wrap .. build .. "/examples/embed/game")
    assert.equal(0, status, out)
    assert.truthy(out:find("frames: 360, game time: 5.00 s", 1, true), out)
    assert.falsy(out:find("Task was destroyed", 1, true), out)
    assert.truthy(out:find("scout's result: 3-4-5-6-7", 1, true), out)
  end)
end)
