-- game.lua: the level script of examples/embed/game.c. It runs as plain
-- Lua once, starting tasks that live across the game's frames. Game time
-- is the loop's clock: sleeps count frames, and stop while the game is
-- paused. find_path() and frame() come from the host program.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local function log(fmt, ...)
  print(("[frame %3d] " .. fmt):format(frame(), ...))
end

local guard = async(function(name, posts)
  for round = 1, 2 do
    for _, post in ipairs(posts) do
      log("%s walks to post %d", name, post)
      await(asyncio.sleep(1))
    end
  end
  log("%s ends the patrol", name)
end)

local scout = async(function()
  await(asyncio.sleep(0.5))
  log("scout asks for a path")
  local path = await(find_path(3, 7)) -- computed on a worker thread
  log("scout got path %s", path)
  return path
end)

local loop = asyncio.get_event_loop()
local g = loop:create_task(guard("guard", {1, 2}), {name = "guard"})
local s = loop:create_task(scout(), {name = "scout"})
g:add_done_callback(function() log("%s done", g:get_name()) end)
s:add_done_callback(function(t) log("scout's result: %s", t:result()) end)
