--- tools/fuzz/http_forms.lua: what asyncio.http.web parses of a request
-- past its head: the query (request.query, query_string), the cookies,
-- the Content-Type and its parameters, the body as a form (post():
-- urlencoded and multipart/form-data), as multipart() parts read as
-- they arrive, as JSON, and a static file's Range and If-Range.
--
-- The request goes through the server as a client's bytes would: the
-- server protocol of an AppRunner's connection on a transport written in
-- Lua (no socket), so web.lua builds the Request itself (handle()) and
-- the body reaches request.content, a StreamReader, through feed_data and
-- feed_eof in the pieces the bytes were cut in, with a task switch
-- between pieces. One real-clock loop serves every input.
--
-- Input: byte 1 the flags, byte 2 the seed of the cuts and read sizes,
-- then five lines (LF-ended, a missing one is empty): the target ("/"
-- when empty), then Content-Type, Cookie, Range and If-Range (each sent
-- only when not empty); the rest is the body. Flags: bits 0-1 what the
-- handler does with the body (0 post(), 1 multipart() read part by part,
-- 2 json(), 3 a FileResponse of this file), bit 2 the body sent chunked
-- (else with Content-Length), bit 3 client_max_size 100 (else 1 MiB),
-- bit 4 the fifth line sent as If-Modified-Since instead.
--
-- Each parse gives a result or raises an error of the class its
-- documentation names (HTTPBadRequest, or HTTPRequestEntityTooLarge for a
-- body over client_max_size); the query, the cookies and the Content-Type
-- never raise. post() of a multipart/form-data body read whole must give
-- the fields multipart() reads from the cut body. The server's answer
-- must come, be one response, and for a file agree with its Range.
local asyncio = require "asyncio"
local web = require "asyncio.http.web"
local async, await = asyncio.async, asyncio.await
local iserror = asyncio.iserror
local MultiDict = web.MultiDict -- a field may hide a method

-- the static file served: this one (read again for each check, so that
-- editing it while the fuzzer runs breaks nothing)
local SELF = "tools/fuzz/http_forms.lua"
local function self_bytes()
  local f = assert(io.open(SELF, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
web.log_error = function() end -- a 500 is checked, not printed

local function fail(fmt, ...) error(fmt:format(...), 0) end

-- the only errors a body's parse may raise
local function check_error(what, err)
  if iserror(err, web.HTTPBadRequest) or
      iserror(err, web.HTTPRequestEntityTooLarge) then
    return
  end
  fail("%s raised %s", what, tostring(err))
end

-- calls f(...), true and its result, or false and an error of the
-- documented classes
local function try(what, f, ...)
  local ok, r = pcall(f, ...)
  if not ok then check_error(what, r) end
  return ok, r
end

local function check_multidict(what, md)
  if type(md) ~= "table" then fail("%s is a %s", what, type(md)) end
  local n = 0
  for k, v in MultiDict.items(md) do
    n = n + 1
    if type(k) ~= "string" then fail("%s: a name that is no string", what) end
    if type(v) ~= "string" and type(v) ~= "table" then
      fail("%s: a value that is a %s", what, type(v))
    end
    if rawget(md, k) == nil then fail("%s: %q has no first value", what, k) end
  end
  for k in pairs(md) do
    if #MultiDict.getall(md, k) < 1 then fail("%s: %q has no pair", what, k) end
  end
  return n
end

-- What never raises: the target's parts, the query, the cookies, the
-- Content-Type.
local function check_head(request)
  local ok, err = pcall(function()
    check_multidict("query", request.query)
    for _, k in ipairs{"query_string", "path", "raw_path", "path_qs", "url",
                       "content_type", "host", "scheme"} do
      if type(request[k]) ~= "string" then
        fail("request.%s is a %s", k, type(request[k]))
      end
    end
    local cs = request.charset
    if cs ~= nil and type(cs) ~= "string" then fail("charset: %s", type(cs)) end
    for k, v in pairs(request.cookies) do
      if type(k) ~= "string" or type(v) ~= "string" then
        fail("a cookie that is no string")
      end
    end
    for k, v in pairs(request.match_info) do
      if type(k) ~= "string" or type(v) ~= "string" then
        fail("a match_info that is no string")
      end
    end
    local _ = request.content_length
  end)
  if not ok then fail("the head's parse raised %s", tostring(err)) end
end

-- the fields of a form as a list {name, value or {filename, body}}
local function form_list(md)
  local out = {}
  for k, v in MultiDict.items(md) do
    if type(v) == "table" then
      if type(v.filename) ~= "string" or type(v.body) ~= "string" or
          type(v.content_type) ~= "string" then
        fail("a file field of the wrong shape")
      end
      out[#out + 1] = {k, v.filename, v.body}
    else
      out[#out + 1] = {k, false, v}
    end
  end
  return out
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    for j = 1, 3 do if a[i][j] ~= b[i][j] then return false end end
  end
  return true
end

-- Reads the parts of a multipart() reader, each whole (by read_chunk
-- of sizes the seed gives, when all), else as the seed picks: read(),
-- text(), json(), release(), or not at all. Returns the fields read
-- whole, in post()'s shape; with all, a part without a name fails as
-- post() fails on it.
local function read_parts(mr, seed, all)
  local out, k = {}, 0
  while true do
    local part = await(mr:next())
    if part == nil then return out end
    k = k + 1
    if (part.name ~= nil and type(part.name) ~= "string") or
        type(part.headers) ~= "table" then
      fail("a part with a name that is no string, or without headers")
    end
    if all and part.name == nil then -- post() refuses it so
      error(web.HTTPBadRequest{text = "part without a name"}, 0)
    end
    local op = all and 0 or (seed + k) % 6
    local body
    if op == 0 then
      local buf, n = {}, 0
      while true do
        n = n + 1
        local size = (seed * n + k) % 13 + 1
        local c = await(part:read_chunk(size))
        if c == "" then break end
        if #c > size then fail("read_chunk read too much") end
        buf[#buf + 1] = c
      end
      body = table.concat(buf)
    elseif op == 1 then
      body = await(part:read())
    elseif op == 2 then
      body = await(part:text())
    elseif op == 3 then
      await(part:json())
    elseif op == 4 then
      await(part:release())
    end
    if body then
      if await(part:read_chunk()) ~= "" then
        fail("a part read past its end")
      end
      out[#out + 1] = {part.name, part.filename or false, body}
    end
  end
end

-- per request, what the handler found (set by the middleware)
local seen

local function handler(request)
  check_head(request)
  seen.ctype = request.content_type
  local mode, seed = seen.mode, seen.seed
  if mode == 0 then
    local ok, r = try("post()", function() return await(request:post()) end)
    seen.ok, seen.result = ok, ok and form_list(r) or r
    if ok then check_multidict("post()", r) end
  elseif mode == 1 then
    local ok, r = try("multipart()", function()
      return read_parts(await(request:multipart()), seed, seen.all)
    end)
    seen.ok, seen.result = ok, r
  elseif mode == 2 then
    local ok, r = try("json()", function() return await(request:json()) end)
    seen.ok, seen.result = ok, r
  else
    seen.file = true
    return web.FileResponse(SELF)
  end
  return web.Response{text = "ok"}
end

local function new_runner(max)
  local app = web.Application{client_max_size = max,
    middlewares = {function(request)
      seen.called = true
      -- what breaks an invariant is raised by run, not answered as a 500
      local ok, r = pcall(handler, request)
      if ok then return r end
      seen.broken = tostring(r)
      return web.Response{text = "broken"}
    end}}
  app.router:add_get("/{a}/{b:.*}", function() end)
  app.router:add_route("*", "/x/{a:\\d+}", function() end)
  local runner = web.AppRunner(app)
  loop:run_until_complete(runner:setup())
  runner._loop = loop
  return runner
end
local runners = {[false] = new_runner(), [true] = new_runner(100)}

-- the transport of one connection: keeps what is written, closes once
local Transport = {}
Transport.__index = Transport
function Transport:write(s) self.out[#self.out + 1] = s end
function Transport:close()
  if self.closed then return end
  self.closed = true
  loop:call_soon(function()
    self.proto:connection_lost(nil)
    if not self.done:done() then self.done:set_result(true) end
  end)
end
Transport.abort = Transport.close
function Transport:is_closing() return self.closed end
function Transport:pause_reading() self.paused = true end
function Transport:resume_reading() self.paused = false end
function Transport:get_extra_info() return nil end

-- the request's bytes: its head, then the body (chunked: in chunks of
-- the sizes cut gives)
local function request_bytes(f, body, chunked, cut)
  local h = {("%s %s HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n")
    :format(f.mode == 3 and "GET" or "POST", f.target)}
  for _, p in ipairs{{"Content-Type", f.ctype}, {"Cookie", f.cookie},
      {"Range", f.range},
      {f.since and "If-Modified-Since" or "If-Range", f.if_range}} do
    if p[2] ~= "" then h[#h + 1] = p[1] .. ": " .. p[2] .. "\r\n" end
  end
  if chunked then
    h[#h + 1] = "Transfer-Encoding: chunked\r\n\r\n"
    local i, k = 1, 1
    while i <= #body do
      local n = cut(k)
      local c = body:sub(i, i + n - 1)
      h[#h + 1] = ("%x\r\n%s\r\n"):format(#c, c)
      i, k = i + n, k + 1
    end
    h[#h + 1] = "0\r\n\r\n"
  else
    h[#h + 1] = ("Content-Length: %d\r\n\r\n"):format(#body)
    h[#h + 1] = body
  end
  return table.concat(h)
end

-- Serves the request of f once, its bytes fed in pieces of cut(k) bytes
-- (whole when cut is nil); returns what the handler saw and the answer.
local function serve(f, mode, all, cut)
  seen = {mode = mode, seed = f.seed, all = all}
  local bytes = request_bytes(f, f.body, f.chunked, cut or function(k)
    return (f.body:byte(k) or 1) % 5 + 1
  end)
  local proto = web._conn_factory(runners[f.small])()
  local t = setmetatable({out = {}, closed = false, proto = proto,
                          done = loop:create_future()}, Transport)
  local main = async(function()
    proto:connection_made(t)
    local i, k = 1, 1
    while i <= #bytes and not t.closed do
      local n = cut and cut(k) or #bytes
      proto:data_received(bytes:sub(i, i + n - 1))
      i, k = i + n, k + 1
      await(asyncio.sleep(0))
    end
    await(asyncio.wait_for(t.done, 5))
  end)
  local ok, err = pcall(loop.run_until_complete, loop, main())
  if seen.broken then error(seen.broken, 0) end
  if not ok then
    if iserror(err, asyncio.TimeoutError) then
      fail("no answer within 5 s (the handler %s)",
           seen.called and "ran" or "never ran")
    end
    error(err, 0)
  end
  return seen, table.concat(t.out)
end

-- the status, the headers (lower-cased names) and the body of an answer
local function response(out)
  local head, body = out:match("^(.-)\r\n\r\n(.*)$")
  if not head then fail("a broken answer: %q", out:sub(1, 80)) end
  local status = tonumber(head:match("^HTTP/1%.1 (%d%d%d) "))
  if not status then fail("a broken status line: %q", head:sub(1, 80)) end
  local h = {}
  for k, v in head:gmatch("\r\n([^:]+): ([^\r]*)") do h[k:lower()] = v end
  local cl = tonumber(h["content-length"])
  if cl and #body ~= cl then
    fail("Content-Length %d for a body of %d bytes", cl, #body)
  end
  return status, h, body
end

-- A file's answer: the whole file, a part of it that Content-Range
-- names, or a 416.
local function check_file(status, h, body)
  local FILE = self_bytes()
  local size = #FILE
  if status == 200 then
    if body ~= FILE then fail("a 200 that is not the file") end
  elseif status == 206 then
    local a, b, n = (h["content-range"] or ""):match(
      "^bytes (%d+)-(%d+)/(%d+)$")
    a, b, n = tonumber(a), tonumber(b), tonumber(n)
    if not a or n ~= size or a > b or b >= size then
      fail("a 206 with Content-Range %q", tostring(h["content-range"]))
    end
    if body ~= FILE:sub(a + 1, b + 1) then
      fail("a 206 with the wrong bytes")
    end
  elseif status == 304 then
    if body ~= "" then fail("a 304 with a body") end
  elseif status == 416 then
    if h["content-range"] ~= "bytes */" .. size then
      fail("a 416 with Content-Range %q", tostring(h["content-range"]))
    end
  else
    fail("a file answered %d", status)
  end
end

local function fields(data)
  if #data < 2 then return nil end
  local flags = data:byte(1)
  local f = {seed = data:byte(2), mode = flags & 3,
             chunked = flags & 4 ~= 0, small = flags & 8 ~= 0,
             since = flags & 16 ~= 0}
  local pos, lines = 3, {}
  for i = 1, 5 do
    local e = data:find("\n", pos, true)
    if not e then
      lines[i] = data:sub(pos)
      pos = #data + 1
    else
      lines[i] = data:sub(pos, e - 1)
      pos = e + 1
    end
  end
  f.target = lines[1] ~= "" and lines[1] or "/"
  f.ctype, f.cookie, f.range, f.if_range = lines[2], lines[3], lines[4],
    lines[5]
  f.body = data:sub(pos)
  return f
end

local function run(data)
  local f = fields(data)
  if not f then return end
  local s = f.seed
  local cut = function(k) return (s + k * 7) % (s % 11 + 1) + 1 end
  local got, out = serve(f, f.mode, false, f.mode ~= 0 and cut or nil)
  local status, h, body = response(out)
  if not got.called then
    -- refused before any handler: a 4xx (a bad head, a body too large)
    if status < 400 or status > 499 then
      fail("the head was refused with a %d", status)
    end
    return
  end
  if got.file then return check_file(status, h, body) end
  if status ~= 200 then fail("answered %d (%q)", status, body) end
  -- a multipart/form-data body: post() read whole and multipart() read
  -- as it comes in cut pieces must give the same fields or both fail
  if f.mode == 0 and got.ctype == "multipart/form-data" then
    local got2 = serve(f, 1, true, cut)
    if got.ok ~= got2.ok then
      fail("post() %s but multipart() %s", got.ok and "parsed" or
           tostring(got.result), got2.ok and "parsed" or tostring(got2.result))
    end
    if got.ok and not same_list(got.result, got2.result) then
      fail("post() and multipart() read different fields")
    end
  end
end
return run, {lua_coverage = true}
