-- sdl_game.lua: the level script of examples/embed/sdl_game.c. It runs
-- once as plain Lua and starts tasks that live across the frames:
--   - three NPC behaviours (a guard on patrol, a wanderer, a dog that
--     follows the guard), each a task that moves its rectangle one tick
--     at a time and sleeps in game time: the loop's clock is the game's,
--     so pausing the game freezes them and the speed key scales them;
--   - a background fetch: a small HTTP server started here on 127.0.0.1
--     (a port the system picks) serves the day's scores, a client task
--     fetches them while the NPCs move, and the host draws them as bars.
-- `game` comes from the host: game.spawn, game.move, game.bars,
-- game.frame, game.width, game.height.
local asyncio = require "asyncio"
local http = require "asyncio.http"
local web = require "asyncio.http.web"
local async, await = asyncio.async, asyncio.await

local TICK = 1 / 30                   -- seconds of game time per move
local GROUND = game.height - 40

local function log(fmt, ...)
  print(("[frame %d] " .. fmt):format(game.frame(), ...))
end

--- An NPC: its rectangle in the host, its position here.
local function npc(w, h, r, g, b, x, y)
  local self = {id = game.spawn(w, h, r, g, b), x = x, y = y}
  game.move(self.id, x, y)
  return self
end

--- walk(n, tx, ty, speed): moves n to (tx, ty) at speed pixels per
-- second of game time, one step per tick.
local walk = async(function(n, tx, ty, speed)
  while true do
    local dx, dy = tx - n.x, ty - n.y
    local d, step = math.sqrt(dx * dx + dy * dy), speed * TICK
    if d <= step then
      n.x, n.y = tx, ty
      game.move(n.id, n.x, n.y)
      return
    end
    n.x, n.y = n.x + dx / d * step, n.y + dy / d * step
    game.move(n.id, n.x, n.y)
    await(asyncio.sleep(TICK))
  end
end)

local guard = npc(20, 40, 80, 140, 230, 60, GROUND - 40)
local wanderer = npc(24, 24, 230, 120, 60, 320, 150)
local dog = npc(16, 12, 200, 200, 200, 20, GROUND - 12)

local patrol = async(function()
  local posts = {60, 560}
  while true do
    for _, x in ipairs(posts) do
      await(walk(guard, x, guard.y, 120))
      await(asyncio.sleep(0.5))       -- looks around
    end
  end
end)

local wander = async(function()
  local seed = 7                      -- a fixed walk: a small LCG
  local function rand(n)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  end
  while true do
    await(walk(wanderer, 40 + rand(560), 80 + rand(160), 90))
    await(asyncio.sleep(0.3))
  end
end)

local follow = async(function()
  while true do
    local tx = guard.x - 24
    local dx = tx - dog.x
    if math.abs(dx) > 2 then
      dog.x = dog.x + (dx > 0 and 1 or -1) * math.min(math.abs(dx), 5)
      game.move(dog.id, dog.x, dog.y)
    end
    await(asyncio.sleep(TICK))
  end
end)

-- the background fetch, against a server of the game's own
local scores = {12, 40, 33, 75, 58, 90, 64, 21}

local fetch = async(function()
  local app = web.Application()
  app.router:add_get("/scores", async(function()
    return web.json_response({scores = scores})
  end))
  local runner = web.AppRunner(app)
  await(runner:setup())
  local site = web.TCPSite(runner, "127.0.0.1", 0)
  await(site:start())
  await(asyncio.sleep(0.2))           -- the level has started
  log("fetching the scores")
  do
    local session <close> = http.ClientSession()
    local resp <close> = await(session:get(
      ("http://127.0.0.1:%d/scores"):format(site.port)))
    local data = await(resp:json())
    game.bars(data.scores)
    log("fetched %d scores (HTTP %d)", #data.scores, resp.status)
  end
  await(runner:cleanup())
end)

local loop = asyncio.get_event_loop()
loop:create_task(patrol(), {name = "guard"})
loop:create_task(wander(), {name = "wanderer"})
loop:create_task(follow(), {name = "dog"})
loop:create_task(fetch(), {name = "fetch"})
