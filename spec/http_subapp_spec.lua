-- spec/http_subapp_spec.lua: sub-applications (aiohttp's add_subapp):
-- routes under a prefix, request.app and config_dict, middlewares inside
-- the parent's, signals and cleanup_ctx run by the parent's, frozen
-- routers. Driven by our client.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local web = require "asyncio.http.web"
local http = require "asyncio.http"
local peers = dofile("spec/fixtures/http_peers.lua")
local async, await = asyncio.async, asyncio.await


--- {status, body} of a request (our client)
local function answer(method, url)
  local s <close> = http.ClientSession()
  local r = await(s:request(method, url))
  return {r.status, await(r:text())}
end

--- A handler answering the name of request.app, config_dict.who and the
-- match_info id.
local whoami = async(function(request)
  return web.Response{text = ("%s %s %s"):format(request.app.name,
    request.config_dict.who, request.match_info.id)}
end)

describe("add_subapp", function()
  it("serves the sub-application's routes under its prefix, with its "
     .. "own request.app and a chained config_dict", aspec.async(function()
    local root, admin = web.Application(), web.Application()
    root.name, root.who, root.only_root = "root", "root's", true
    admin.name, admin.who = "admin", "admin's"
    root.router:add_get("/{id}", whoami)
    admin.router:add_get("/users/{id}", whoami, {name = "user"})
    admin.router:add_get("/", whoami)
    assert.equal(admin, root:add_subapp("/admin/", admin))
    local runner, base = await(peers.start(root))
    assert.same({200, "root root's 1"}, answer("GET", base .. "/1"))
    assert.same({200, "admin admin's 7"},
                answer("GET", base .. "/admin/users/7"))
    assert.same({200, "admin admin's nil"}, answer("GET", base .. "/admin/"))
    assert.same({404, "404: Not Found"},
                answer("GET", base .. "/admin/nope/x"))
    -- the parent's state shows through; config_dict is read-only
    local seen
    admin.router.named.user.handler = function(request)
      seen = {request.config_dict.only_root, request.config_dict.missing,
              pcall(function() request.config_dict.x = 1 end)}
      return web.Response{text = "ok"}
    end
    assert.same({200, "ok"}, answer("GET", base .. "/admin/users/1"))
    assert.same({true, nil, false}, {seen[1], seen[2], seen[3]})
    assert.equal("/admin/users/42",
                 admin.router.named.user:url_for{id = "42"})
    await(runner:cleanup())
  end))

  it("answers 405 with the sub-application's methods", aspec.async(
     function()
    local root, api = web.Application(), web.Application()
    api.router:add_post("/items", whoami)
    api.router:add_put("/items", whoami)
    root:add_subapp("/api", api)
    local runner, base = await(peers.start(root))
    local s <close> = http.ClientSession()
    local r = await(s:get(base .. "/api/items"))
    assert.equal(405, r.status)
    assert.equal("POST,PUT", r.headers["allow"]:gsub("%s", ""))
    await(runner:cleanup())
  end))

  it("runs the parent's middlewares around the sub-application's, and "
     .. "only the parent's for its 404", aspec.async(function()
    local log = {}
    local function mw(name)
      return async(function(req, handler)
        log[#log + 1] = name .. ">"
        local ok, r = pcall(await, handler(req))
        log[#log + 1] = "<" .. name
        if not ok then error(r, 0) end
        return r
      end)
    end
    local root = web.Application{middlewares = {mw("r1"), mw("r2")}}
    local sub = web.Application{middlewares = {mw("s1")}}
    local inner = web.Application{middlewares = {mw("i1")}}
    root.name, sub.name, inner.name = "root", "sub", "inner"
    inner.router:add_get("/x/{id}", whoami)
    sub:add_subapp("/b", inner)
    sub.router:add_get("/x/{id}", whoami)
    root:add_subapp("/a", sub)
    local runner, base = await(peers.start(root))
    assert.same({200, "inner nil 1"}, answer("GET", base .. "/a/b/x/1"))
    assert.same({"r1>", "r2>", "s1>", "i1>", "<i1", "<s1", "<r2", "<r1"},
                log)
    log = {}
    assert.same({200, "sub nil 2"}, answer("GET", base .. "/a/x/2"))
    assert.same({"r1>", "r2>", "s1>", "<s1", "<r2", "<r1"}, log)
    log = {}
    assert.equal(404, answer("GET", base .. "/a/b/none")[1])
    assert.same({"r1>", "r2>", "<r2", "<r1"}, log)
    await(runner:cleanup())
  end))

  it("runs the sub-application's cleanup_ctx and signals from the "
     .. "parent's, in order", aspec.async(function()
    local log = {}
    local function note(what) return function() log[#log + 1] = what end end
    local root, sub = web.Application(), web.Application()
    root.cleanup_ctx[1] = function()
      log[#log + 1] = "root ctx up"
      return note("root ctx down")
    end
    root.on_startup[1] = note("root startup")
    sub.cleanup_ctx[1] = function(app)
      log[#log + 1] = "sub ctx up " .. tostring(app == sub)
      return note("sub ctx down")
    end
    sub.on_startup[1] = note("sub startup")
    sub.on_shutdown[1] = note("sub shutdown")
    sub.on_cleanup[1] = note("sub cleanup")
    root:add_subapp("/sub", sub)
    root.on_startup[#root.on_startup + 1] = note("root startup 2")
    root.on_shutdown[#root.on_shutdown + 1] = note("root shutdown")
    root.on_cleanup[#root.on_cleanup + 1] = note("root cleanup")
    local runner = await(peers.start(root))
    assert.same({"root ctx up", "root startup", "sub ctx up true",
                 "sub startup", "root startup 2"}, log)
    log = {}
    await(runner:cleanup())
    assert.same({"sub shutdown", "root shutdown", "root ctx down",
                 "sub ctx down", "sub cleanup", "root cleanup"}, log)
  end))

  it("refuses a bad prefix, a frozen application and late routes",
     function()
    local root, sub = web.Application(), web.Application()
    local ok, e = pcall(root.add_subapp, root, "/", sub)
    assert.is_false(ok)
    assert.is_true(asyncio.iserror(e, asyncio.ValueError))
    assert.equal("Prefix cannot be empty", e.message)
    ok, e = pcall(root.add_subapp, root, 5, sub)
    assert.is_true(asyncio.iserror(e, asyncio.TypeError))
    assert.has_error(function() root:add_subapp("/x", {}) end,
      "bad argument #2 to 'add_subapp' (web.Application expected, got "
      .. "table)")
    root:add_subapp("/x", sub)
    ok, e = pcall(root.add_subapp, root, "/y", sub)
    assert.is_true(asyncio.iserror(e, asyncio.RuntimeError))
    assert.equal("Cannot add frozen application", e.message)
    ok, e = pcall(sub.router.add_get, sub.router, "/late", whoami)
    assert.is_true(asyncio.iserror(e, asyncio.RuntimeError))
    assert.equal("Cannot register a resource into frozen router.",
                 e.message)
  end)

  it("cannot be added once the parent runs", aspec.async(function()
    local root = web.Application()
    local runner = await(peers.start(root))
    local ok, e = pcall(root.add_subapp, root, "/late", web.Application())
    assert.is_true(asyncio.iserror(e, asyncio.RuntimeError))
    assert.equal("Cannot add sub application to frozen application",
                 e.message)
    await(runner:cleanup())
  end))
end)
