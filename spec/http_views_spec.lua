-- spec/http_views_spec.lua: class-based views (aiohttp's web.View and
-- add_view), driven by curl and our client.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local web = require "asyncio.http.web"
local http = require "asyncio.http"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await


--- method url [, body] -> status, body, headers (our client)
local function call(method, url, body)
  local s <close> = http.ClientSession()
  local r = await(s:request(method, url, {data = body}))
  return r.status, await(r:text()), r.headers
end

--- {status, body} of call(...)
local function answer(...)
  local status, body = call(...)
  return {status, body}
end

-- a view with a plain method and a coroutine one, both reading self
local Item = web.View{
  get = function(self)
    return web.Response{text = "item " .. self.request.match_info.id}
  end,
  post = async(function(self)
    return web.Response{status = 201,
      text = "stored " .. await(self.request:text())}
  end),
}

describe("web.View", function()
  teardown(peers.stop)

  it("answers each method with the view's method of that name",
     aspec.async(function()
    local app = web.Application()
    local route = app.router:add_view("/items/{id}", Item)
    assert.equal("*", route.method)
    assert.equal(Item, route.handler)
    local runner, base = await(peers.start(app))
    assert.same({200, "item 7"}, answer("GET", base .. "/items/7"))
    assert.same({201, "stored abc"},
                answer("POST", base .. "/items/7", "abc"))
    local out = await(peers.run{"curl", "-s", "-X", "PUT", base ..
                                "/items/7"})
    assert.equal("405: Method Not Allowed", out)
    await(runner:cleanup())
  end))

  it("answers 405 naming the methods it has, HEAD included",
     aspec.async(function()
    local app = web.Application()
    app.router:add_view("/items/{id}", Item)
    local runner, base = await(peers.start(app))
    for _, m in ipairs{"DELETE", "HEAD", "PATCH", "OPTIONS"} do
      local status, _, headers = call(m, base .. "/items/1")
      assert.equal(405, status, m)
      assert.equal("GET,POST", headers["allow"]:gsub("%s", ""), m)
    end
    await(runner:cleanup())
  end))

  it("is a handler for middlewares, RouteTableDef and web.view",
     aspec.async(function()
    local seen = {}
    local app = web.Application{middlewares = {
      async(function(req, handler)
        seen[#seen + 1] = req.method .. " " .. req.path
        local r = await(handler(req))
        r.headers:set("X-Seen", #seen)
        return r
      end)}}
    local routes = web.RouteTableDef()
    assert.equal(Item, routes:view("/a/{id}")(Item))
    routes:view("/b/{id}", Item, {name = "b"})
    app.router:add_routes(routes)
    app.router:add_routes{web.view("/c/{id}", Item)}
    local runner, base = await(peers.start(app))
    for i, p in ipairs{"a", "b", "c"} do
      local status, body, headers = call("GET", base .. "/" .. p .. "/" .. i)
      assert.same({200, "item " .. i, tostring(i)},
                  {status, body, headers["x-seen"]})
    end
    assert.same({"GET /a/1", "GET /b/2", "GET /c/3"}, seen)
    assert.equal("/b/9", app.router.named.b:url_for{id = "9"})
    await(runner:cleanup())
  end))

  it("inherits the methods of a base view through its methods table",
     aspec.async(function()
    local Child = web.View(setmetatable({
      delete = function(self)
        return web.Response{text = "deleted " .. self.request.path}
      end,
    }, {__index = Item.methods}))
    local app = web.Application()
    app.router:add_view("/items/{id}", Child)
    local runner, base = await(peers.start(app))
    assert.same({200, "item 3"}, answer("GET", base .. "/items/3"))
    assert.same({200, "deleted /items/3"},
                answer("DELETE", base .. "/items/3"))
    local _, _, headers = call("PUT", base .. "/items/3")
    assert.equal("DELETE,GET,POST", headers["allow"]:gsub("%s", ""))
    await(runner:cleanup())
  end))

  it("makes an instance per request, awaitable as aiohttp's",
     aspec.async(function()
    local req = {method = "GET", match_info = {id = "5"}}
    local v = Item(req)
    assert.equal(req, v.request)
    assert.are_not.equal(v, Item(req))
    assert.equal("item 5", await(v).text)
    assert.has_error(function() web.View(5) end,
      "bad argument #1 to 'View' (table expected, got number)")
    local router = web.Application().router
    assert.has_error(function() router:add_view("x", Item) end,
      "bad argument #1 to 'add_view' (path starting with / expected)")
  end))
end)
