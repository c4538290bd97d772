-- spec/embed_sdl_spec.lua: examples/embed/sdl_game.c, luaio inside a real
-- SDL2 frame loop, run headless (SDL's dummy video driver: a window
-- surface in memory) with its --report, which prints one line per frame:
--   frame N time T paused 0|1 step_ms MS cpu_ms MS npcs X,Y X,Y X,Y
-- a line "pause frame N time T npcs ..." when P pauses the game and one
-- "resume ..." when it resumes, then a summary (budget, fetched data). The program is built only where
-- SDL2 is installed (libsdl2-dev, in the Makefile's PKGS): without it
-- these tests fail and say so.
--
-- Under make check-valgrind (LUAIO_VALGRIND=1) the program itself also
-- runs under valgrind's memcheck, which must find no leak and no error.
local proc = dofile("spec/fixtures/proc.lua")

local GAME = proc.build .. "/examples/embed/sdl_game"
local FRAMES, PAUSE, RESUME, BUDGET = 240, 60, 120, 4
-- The step's contract: it returns once its budget (waiting included) is
-- spent, after at most one more iteration of ready work. The program
-- reports each step's CPU time (the Lua work and the loop's, which no
-- other job on the machine inflates) and its wall-clock time (which a
-- preempted process sees grow). Every frame's CPU time must stay within
-- the budget plus a small margin; the wall-clock time, which includes
-- waiting the whole budget for I/O in about half the frames, is checked
-- on the median frame, which a few frames preempted by other jobs do not
-- move.
local CPU_MARGIN, MEDIAN_MARGIN = 2, 3

local function installed()
  local f = io.open(GAME, "rb")
  if f then f:close() return end
  error(GAME .. " was not built: SDL2 is missing (pkg-config sdl2). " ..
        "Run `make test` as root: it installs the Makefile's PKGS, " ..
        "libsdl2-dev among them.", 0)
end

--- play(args [, wrap]) -> the report parsed: {frames = {[n] = {time =,
-- paused =, ms =, npcs = "x,y x,y ..."}}, lines =, stdout =, stderr =,
-- status =}.
local function play(args, wrap)
  installed()
  local argv = {}
  for _, a in ipairs(wrap or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = GAME
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "--report"
  local r = proc.run(argv, {env = {SDL_VIDEODRIVER = "dummy",
                                   SDL_AUDIODRIVER = "dummy"}})
  r.frames, r.lines = {}, {}
  for line in r.stdout:gmatch("[^\n]+") do
    local n, t, p, ms, cpu, npcs = line:match(
      "^frame (%d+) time ([%d.]+) paused ([01]) step_ms ([%d.]+) " ..
      "cpu_ms ([%d.]+) npcs (.*)$")
    if n then
      r.frames[tonumber(n)] = {time = tonumber(t), paused = p == "1",
                               ms = tonumber(ms), cpu = tonumber(cpu),
                               npcs = npcs}
    else
      r.lines[#r.lines + 1] = line
    end
  end
  return r
end

local function clean_exit(r)
  local report = ("exit %s\n%s%s"):format(tostring(r.status),
                                          table.concat(r.lines, "\n"),
                                          r.stderr)
  assert(r.status == 0, report)
  assert(not r.stderr:find("Task was destroyed", 1, true), report)
  assert(not r.stderr:find("script error", 1, true), report)
  assert(not r.stderr:find("never awaited", 1, true), report)
end

local function has_line(r, pattern)
  for _, line in ipairs(r.lines) do
    if line:match(pattern) then return line end
  end
  error(("no line matching %q in:\n%s"):format(pattern,
                                               table.concat(r.lines, "\n")))
end

describe("the SDL2 game (examples/embed/sdl_game)", function()
  local shot = os.tmpname()
  local r
  setup(function()
    r = play{"--frames", FRAMES, "--fps", 0, "--budget", BUDGET,
             "--pause-at", PAUSE, "--resume-at", RESUME,
             "--screenshot", shot}
  end)
  teardown(function() os.remove(shot) end)

  it("plays every frame and exits cleanly, no task left destroyed",
     function()
    clean_exit(r)
    for n = 1, FRAMES do assert(r.frames[n], "frame " .. n .. " missing") end
    has_line(r, "^closing at game time ")
  end)

  it("keeps each frame's luaio_step within its budget", function()
    local line = has_line(r, "^budget_ms ")
    assert.equal(BUDGET, tonumber(line:match("^budget_ms ([%d.]+)")))
    local times, max_cpu = {}, 0
    for n = 1, FRAMES do
      local f = r.frames[n]
      times[n], max_cpu = f.ms, math.max(max_cpu, f.cpu)
      assert(f.cpu <= BUDGET + CPU_MARGIN,
             ("frame %d: luaio_step used %.3f ms of CPU, budget %d ms")
               :format(n, f.cpu, BUDGET))
    end
    table.sort(times)
    local median = times[FRAMES // 2]
    assert(median <= BUDGET + MEDIAN_MARGIN,
           ("median luaio_step %.3f ms, budget %d ms"):format(median, BUDGET))
    -- the report's own maxima are the largest frame's
    assert.near(times[FRAMES],
                tonumber(line:match("max_step_ms ([%d.]+)")), 0.001)
    assert.near(max_cpu, tonumber(line:match("max_cpu_ms ([%d.]+)")), 0.001)
  end)

  it("freezes the NPC tasks while game time is paused, and they move on "
     .. "after", function()
    local before, first = r.frames[PAUSE - 1], r.frames[PAUSE]
    assert.is_false(before.paused)
    -- they moved before the pause
    assert.are_not.equal(r.frames[1].npcs, before.npcs)
    for n = PAUSE, RESUME - 1 do
      local f = r.frames[n]
      assert.is_true(f.paused, "frame " .. n)
      assert.equal(first.time, f.time)
      assert.equal(first.npcs, f.npcs, "frame " .. n)
    end
    assert.equal(before.time, first.time)
    -- the report's pause and resume lines: same time, same places
    local pause = has_line(r, "^pause frame ")
    local resume = has_line(r, "^resume frame ")
    assert.equal(PAUSE, tonumber(pause:match("^pause frame (%d+)")))
    assert.equal(RESUME, tonumber(resume:match("^resume frame (%d+)")))
    assert.equal(pause:match(" time (.*)$"), resume:match(" time (.*)$"))
    assert.equal(first.npcs, pause:match(" npcs (.*)$"))
    local after = r.frames[RESUME + 10]
    assert.is_false(r.frames[RESUME].paused)
    assert.near(first.time + 11 / 60, after.time, 1e-5)
    assert.are_not.equal(first.npcs, after.npcs)
  end)

  it("scales the NPCs' game time with the speed", function()
    -- at speed 2, frame 29 is game time 29/30, frame 58's at speed 1:
    -- the NPCs stand where they stood then. Both runs get a budget of
    -- 20 ms: a step cut short by the budget (a process preempted longer
    -- than it) leaves a wake-up to the next frame, whose later game time
    -- the NPC's next sleep starts from, which would move it apart
    local slow = play{"--frames", 58, "--fps", 0, "--budget", 20}
    local fast = play{"--frames", 30, "--fps", 0, "--speed", 2,
                      "--budget", 20}
    clean_exit(slow)
    clean_exit(fast)
    assert.near(29 / 30, fast.frames[29].time, 1e-5)
    assert.near(29 / 30, slow.frames[58].time, 1e-5)
    assert.equal(slow.frames[58].npcs, fast.frames[29].npcs)
    assert.near(1.0, fast.frames[30].time, 1e-5)
  end)

  it("fetched the scores over HTTP in the background", function()
    has_line(r, "^%[frame %d+%] fetched 8 scores %(HTTP 200%)$")
    assert.equal("fetched 8 bars 12 40 33 75 58 90 64 21",
                 has_line(r, "^fetched "))
  end)

  it("wrote the last frame as a BMP of the window's size", function()
    local bmp = proc.slurp(shot)
    assert.equal("BM", bmp:sub(1, 2))
    local size, offset = string.unpack("<I4", bmp, 3),
                         string.unpack("<I4", bmp, 11)
    local w, h, _, bpp = string.unpack("<i4i4I2I2", bmp, 19)
    assert.same({640, 360}, {w, h})
    assert.equal(#bmp, size)
    assert.equal(#bmp, offset + 640 * 360 * bpp // 8)
  end)

  it("leaks nothing" .. (os.getenv("LUAIO_VALGRIND") == "1"
                         and " (under valgrind)" or ""), function()
    if os.getenv("LUAIO_VALGRIND") ~= "1" then
      -- the clean exit above: every task was cancelled and collected
      clean_exit(r)
      return
    end
    local v = play({"--frames", 60, "--fps", 0, "--pause-at", 20,
                    "--resume-at", 40},
                   {"valgrind", "--error-exitcode=99", "--leak-check=full",
                    "--errors-for-leak-kinds=definite,indirect",
                    "--show-leak-kinds=definite,indirect", "--quiet"})
    clean_exit(v)
    has_line(v, "^fetched 8 bars")
  end)
end)
