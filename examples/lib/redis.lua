--- examples/lib/redis.lua: a minimal Redis client (RESP2) on asyncio's
-- streams, standing in for redis-py in the tutorials.
--
--   local redis = require "lib.redis"
--   local conn = await(redis.connect("127.0.0.1", 6379))
--   await(conn:call("LPUSH", "queue", 5))       --> 1
--   local v = await(conn:call("RPOP", "queue"))  --> "5" (nil when empty)
--   local r = await(conn:call("BRPOP", "queue", 0)) --> {"queue", "5"}
--   local replies = await(conn:pipeline{{"SET", "a", 1}, {"GET", "a"}})
--   await(conn:close())
--
-- conn:call writes its command at once and returns a Future of the reply:
-- commands go out in call order and a reader task matches the replies to
-- them in that order, so calls from several tasks pipeline naturally
-- (BRPOP holds the connection until it answers, as in Redis itself).
-- Replies: simple strings and bulk strings are Lua strings, integers are
-- integers, a null is nil, arrays are lists (with n = their length). An
-- error reply makes the Future fail with redis.RedisError; a lost
-- connection fails every waiting call with ConnectionResetError.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local M = {}

M.RedisError = asyncio.Exception:subclass("RedisError")

local Conn = {}
Conn.__index = Conn

--- The RESP encoding of a command (its words as bulk strings).
local function encode(words)
  local out = {"*" .. #words .. "\r\n"}
  for _, w in ipairs(words) do
    w = tostring(w)
    out[#out + 1] = "$" .. #w .. "\r\n" .. w .. "\r\n"
  end
  return table.concat(out)
end

--- Reads one reply: value, or nil and a RedisError for an error reply.
local read_reply
read_reply = async(function(reader)
  local line = await(reader:readuntil("\r\n"))
  local kind, rest = line:sub(1, 1), line:sub(2, -3)
  if kind == "+" then
    return rest
  elseif kind == "-" then
    return nil, M.RedisError(rest)
  elseif kind == ":" then
    return math.tointeger(tonumber(rest))
  elseif kind == "$" then
    local n = tonumber(rest)
    if n < 0 then return nil end
    return (await(reader:readexactly(n + 2)):sub(1, n))
  elseif kind == "*" then
    local n = tonumber(rest)
    if n < 0 then return nil end
    local list = {n = n}
    for i = 1, n do list[i] = await(read_reply(reader)) end
    return list
  end
  error(M.RedisError("protocol error: " .. ("%q"):format(line)), 0)
end)

--- The reader task: completes the waiting calls in order until the
-- connection ends, then fails the ones left.
local read_replies = async(function(conn)
  local ok, err = pcall(function()
    while true do
      local value, rerr = await(read_reply(conn.reader))
      local fut = table.remove(conn.waiting, 1)
      if fut and not fut:done() then
        if rerr then fut:set_exception(rerr) else fut:set_result(value) end
      end
    end
  end)
  conn.closed = true
  local lost = asyncio.ConnectionResetError("connection to Redis lost")
  for _, fut in ipairs(conn.waiting) do
    if not fut:done() then fut:set_exception(lost) end
  end
  conn.waiting = {}
  -- the end of the stream is the normal way out; a cancellation goes on
  if not ok and not asyncio.iserror(err, asyncio.IncompleteReadError) then
    error(err, 0)
  end
end)

--- connect([host [, port [, {db =}]]]) -> a connection
M.connect = async(function(host, port, opts)
  local reader, writer = await(asyncio.open_connection(host or "127.0.0.1",
                                                       port or 6379))
  local conn = setmetatable({reader = reader, writer = writer,
                             waiting = {}}, Conn)
  conn.task = asyncio.create_task(read_replies(conn))
  if opts and opts.db then await(conn:call("SELECT", opts.db)) end
  return conn
end)

--- conn:call(command, arg...) -> a Future of the reply
function Conn:call(...)
  local fut = asyncio.get_running_loop():create_future()
  if self.closed then
    fut:set_exception(asyncio.ConnectionResetError("connection closed"))
    return fut
  end
  self.writer:write(encode({...}))
  self.waiting[#self.waiting + 1] = fut
  return fut
end

--- conn:pipeline({{command, arg...}, ...}) -> a Future of the list of
-- replies, all commands written at once.
function Conn:pipeline(commands)
  local futs = {}
  for i, words in ipairs(commands) do
    futs[i] = self:call(table.unpack(words))
  end
  return asyncio.gather(table.unpack(futs))
end

--- conn:close(): closes the connection and waits for the reader task.
Conn.close = async(function(self)
  self.writer:close()
  pcall(await, self.task)
end)

return M
