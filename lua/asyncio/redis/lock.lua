--- asyncio.redis.lock: redis-py's Lock, a lock shared through Redis by
-- any number of processes: r:lock(name [, opts]) makes one.
--
--   local lock = r:lock("report", {timeout = 30, blocking_timeout = 5})
--   do
--     local _ <close> = await(lock)    -- async with lock:
--     ...                              -- released however the block ends
--   end
--
-- The lock is the key `name` holding a random token of its holder, set
-- with SET NX (PX timeout when the lock has a timeout, after which Redis
-- drops it); release, extend and reacquire run Lua scripts that act only
-- while the key still holds this holder's token (redis-py's scripts), so
-- a holder whose lock expired and was taken by another cannot release or
-- extend the other's.
local asyncio = require "asyncio"
local check = require "asyncio.check"

local async, await = asyncio.async, asyncio.await

local M = {}

local RELEASE = [[
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
return 1]]

local EXTEND = [[
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then return 0 end
local expiration = redis.call('pttl', KEYS[1])
if not expiration then expiration = 0 end
if expiration < 0 then return 0 end
local newttl = ARGV[2]
if ARGV[3] == "0" then newttl = ARGV[2] + expiration end
redis.call('pexpire', KEYS[1], newttl)
return 1]]

local REACQUIRE = [[
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then return 0 end
redis.call('pexpire', KEYS[1], ARGV[2])
return 1]]

local Lock = {__name = "redis.Lock"}
Lock.__index = Lock
M.Lock = Lock

local LOCK_OPTS = check.option_set{"timeout", "sleep", "blocking",
                                   "blocking_timeout"}
local ACQUIRE_OPTS = check.option_set{"blocking", "blocking_timeout",
                                      "token"}
local EXTEND_OPTS = check.option_set{"replace_ttl"}

--- A random token: 32 hex digits from /dev/urandom (uuid1's role in
-- redis-py), else from math.random.
local function new_token()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(16)
  if f then f:close() end
  if bytes and #bytes == 16 then
    return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
  end
  return ("%08x%08x%08x%08x"):format(math.random(0, 0xffffffff),
    math.random(0, 0xffffffff), math.random(0, 0xffffffff),
    math.random(0, 0xffffffff))
end

--- Raises unless v is nil or a number >= 0 (option name of argument n
-- of fname), at `level` (3: the caller of check_seconds's caller).
local function check_seconds(v, name, fname, n, level)
  if v ~= nil and (type(v) ~= "number" or v ~= v or v < 0) then
    error(("bad argument #%d to '%s' (option '%s': non-negative number "
           .. "expected, got %s)"):format(n, fname, name, tostring(v)),
          level or 3)
  end
end

--- new(redis_module, client, name [, opts]): see Redis:lock.
function M.new(redis, client, name, opts)
  if type(name) ~= "string" then -- errors name r:lock's caller
    error("bad argument #1 to 'lock' (string expected, got " .. type(name)
          .. ")", 3)
  end
  opts = check.options(opts, 3, "lock", LOCK_OPTS, 2) or {}
  check_seconds(opts.timeout, "timeout", "lock", 2, 4)
  check_seconds(opts.sleep, "sleep", "lock", 2, 4)
  check_seconds(opts.blocking_timeout, "blocking_timeout", "lock", 2, 4)
  local blocking = opts.blocking
  if blocking == nil then blocking = true end
  local timeout = opts.timeout
  if timeout == 0 then timeout = nil end -- no expiry, as redis-py's
  return setmetatable({redis = client, name = name, timeout = timeout,
    sleep = opts.sleep or 0.1, blocking = blocking,
    blocking_timeout = opts.blocking_timeout, token = nil,
    _errors = {redis.LockError, redis.LockNotOwnedError},
    _release = client:register_script(RELEASE),
    _extend = client:register_script(EXTEND),
    _reacquire = client:register_script(REACQUIRE)}, Lock)
end

function Lock:__tostring()
  return ("<redis.Lock name=%q %s>"):format(self.name,
    self.token and "held" or "not held")
end

local acquire = async(function(self, blocking, blocking_timeout, token)
  local loop = asyncio.get_running_loop()
  local stop_at = blocking_timeout and loop:time() + blocking_timeout
  local px = self.timeout and math.max(1, math.floor(self.timeout * 1000))
  while true do
    if await(self.redis:set(self.name, token, {nx = true, px = px})) then
      self.token = token
      return true
    end
    if not blocking then return false end
    local next_try = loop:time() + self.sleep
    if stop_at and next_try > stop_at then return false end
    await(asyncio.sleep(self.sleep))
  end
end)

--- acquire([{blocking =, blocking_timeout =, token =}]) -> Coroutine ->
-- true once held; false when not blocking, or past blocking_timeout
-- seconds (the lock's options by default), as redis-py's.
function Lock:acquire(opts)
  opts = check.options(opts, 2, "acquire", ACQUIRE_OPTS) or {}
  check_seconds(opts.blocking_timeout, "blocking_timeout", "acquire", 1)
  local blocking = opts.blocking
  if blocking == nil then blocking = self.blocking end
  local bt = opts.blocking_timeout
  if bt == nil then bt = self.blocking_timeout end
  local token = opts.token
  if token ~= nil and type(token) ~= "string" then
    error("bad argument #1 to 'acquire' (option 'token': string expected, "
          .. "got " .. type(token) .. ")", 2)
  end
  return acquire(self, blocking, bt, token or new_token())
end

--- locked() -> Coroutine -> whether anyone holds the lock
Lock.locked = async(function(self)
  return await(self.redis:get(self.name)) ~= nil
end)

--- owned() -> Coroutine -> whether this holder holds it still
Lock.owned = async(function(self)
  return self.token ~= nil and await(self.redis:get(self.name)) == self.token
end)

--- Runs a token-checking script; raises LockNotOwnedError naming the
-- method `what` unless the script found the lock still held here. Returns
-- true, as redis-py's extend and reacquire do.
local run_owned = async(function(self, script, args, what)
  local ok = await(script({self.name}, args))
  if ok ~= 1 then
    error(self._errors[2](("Cannot %s a lock that's no longer owned")
      :format(what)), 0)
  end
  return true
end)

--- release's script, returning nothing (redis-py's release gives None).
local release_owned = async(function(self, token)
  await(run_owned(self, self._release, {token}, "release"))
end)

--- release() -> Coroutine: lets the lock go; LockError when it is not
-- held here, LockNotOwnedError when it expired and another took it.
function Lock:release()
  local token = self.token
  if token == nil then
    error(self._errors[1]("Cannot release an unlocked lock"), 2)
  end
  self.token = nil
  return release_owned(self, token)
end

--- Raises LockError, naming the caller of the method `what`, unless the
-- lock is held here and has a timeout.
local function check_renewable(self, what)
  if self.token == nil then
    error(self._errors[1](("Cannot %s an unlocked lock"):format(what)), 3)
  end
  if self.timeout == nil then
    error(self._errors[1](("Cannot %s a lock with no timeout")
      :format(what)), 3)
  end
end

--- extend(seconds [, {replace_ttl = false}]) -> Coroutine: adds seconds
-- to the lock's time to live (or sets it to that); true.
function Lock:extend(additional, opts)
  opts = check.options(opts, 3, "extend", EXTEND_OPTS) or {}
  if type(additional) ~= "number" then
    error("bad argument #1 to 'extend' (number expected, got "
          .. type(additional) .. ")", 2)
  end
  check_renewable(self, "extend")
  return run_owned(self, self._extend, {self.token,
    math.floor(additional * 1000), opts.replace_ttl and "1" or "0"},
    "extend")
end

--- reacquire() -> Coroutine: resets the time to live to the timeout;
-- true.
function Lock:reacquire()
  check_renewable(self, "reacquire")
  return run_owned(self, self._reacquire, {self.token,
    math.floor(self.timeout * 1000)}, "reacquire")
end

--- await(lock) acquires it (async with lock:), raising LockError when it
-- could not be had in time; the block's <close> releases it.
Lock.__await = async(function(self)
  if not await(self:acquire()) then
    error(self._errors[1]("Unable to acquire lock within the time "
      .. "specified"), 0)
  end
  return self
end)

--- The end of the block releases the lock, as async with's __aexit__:
-- LockError when it was released inside already.
function Lock:__close()
  await(self:release())
end

return M
