--- asyncio.workqueue: a reliable job queue on Redis that any number of
-- worker processes, on any number of machines, share.
--
--   local wq = require "asyncio.workqueue"
--   local q = wq.Queue("thumbs", {redis = "redis://host:6379/0"})
--   local job = await(q:enqueue("resize", {path = "a.png"}, {retries = 3}))
--   print(await(job:result{timeout = 60}))
--   -- a worker process:
--   await(wq.Worker(q, {functions = {resize = resize}}):run())
--
-- Keys, under "wq:<name>:" (P):
--   P.."queue"       list of ready job ids (enqueue LPUSHes, workers take
--                    from the right)
--   P.."proc:"..W    list of the ids worker W holds (BLMOVE / LMOVE from
--                    the queue: an id is always in some list)
--   P.."workers"     sorted set: worker id -> lease deadline (Redis time);
--                    each worker renews its own, which renews the leases
--                    of every job it holds (and keeps it one lease more
--                    when it stops)
--   P.."delayed"     sorted set: id -> due time (delay =, retry backoff)
--   P.."dead"        list of the ids of dead jobs (dead letters), the
--                    latest at the left; an id whose record expired
--                    leaves it (ticks prune it from the old end on,
--                    dead_letters() any it finds)
--   P.."dead_cursor" how many dead letters from the old end the ticks'
--                    pruning passed (their records stay); no key: none
--   P.."job:"..id    hash: fn, args, state, attempts, failures, retries,
--                    timeout, retry_delay, ttl, result, error,
--                    traceback, ...; it expires ttl seconds (result_ttl)
--                    after the job ended, done or dead
--   P.."notify:"..id list holding one element once the job finished
--                    (waiters BLMOVE it onto itself, so all of them wake)
--   P.."stats"       hash: done, dead counters
-- Every state change is one Lua script run with EVALSHA (atomic), and
-- reads the time from Redis (TIME), so the machines' clocks do not
-- matter. A worker whose lease expired (it died, even by kill -9, or
-- stalled) has its jobs put back at the head of the queue by the next
-- worker's periodic tick: delivery is at least once.
--
-- Payloads (args and results) use a versioned binary encoding (below,
-- "WQ1"): nil, booleans, integers, floats, strings and nested tables;
-- decoding never runs code, and a malformed payload fails its job.

local asyncio = require "asyncio"
local check = require "asyncio.check"
local redis = require "asyncio.redis"

local async, await, iserror = asyncio.async, asyncio.await, asyncio.iserror
local spack, sunpack = string.pack, string.unpack
local concat, pack, unpack = table.concat, table.pack, table.unpack

local M = {}

M.WorkQueueError = asyncio.Exception:subclass("workqueue.WorkQueueError")
M.JobError = M.WorkQueueError:subclass("workqueue.JobError")
M.PayloadError = M.WorkQueueError:subclass("workqueue.PayloadError")

---------------------------------------------------------------------------
-- Options: every table of options is checked whole, so that a misspelt
-- name or a value of the wrong kind raises instead of being ignored.

local function finite(v)
  return type(v) == "number" and v == v and v ~= math.huge
    and v ~= -math.huge
end

-- v as an integer when it is a number with an integer value, else nil.
local function int(v)
  return math.type(v) and math.tointeger(v)
end

-- "what expected, got ..." naming v's type, or v itself when it is a
-- number out of range and `value` is set.
local function expected(what, v, value)
  return ("%s expected, got %s")
    :format(what, value and type(v) == "number" and tostring(v) or type(v))
end

-- Each kind of option value: a function of the value returning nil when
-- it is good, else why not.
local KINDS = {
  seconds = function(v)
    if not (finite(v) and v >= 0) then
      return expected("non-negative number", v, true)
    end
  end,
  lease = function(v)
    if not (finite(v) and v > 0) then
      return expected("positive number", v, true)
    end
  end,
  timeout = function(v)
    if type(v) ~= "number" or v ~= v then return expected("number", v, true) end
  end,
  count = function(v)
    if not (int(v) and v >= 0) then
      return expected("non-negative integer", v, true)
    end
  end,
  slots = function(v)
    if not (int(v) and v >= 1) then
      return expected("positive integer", v, true)
    end
  end,
  string = function(v)
    if type(v) ~= "string" then return expected("string", v) end
  end,
  redis = function(v)
    if type(v) ~= "string" and not (type(v) == "table"
        and type(v.register_script) == "function") then
      return expected("Redis URL or client", v)
    end
  end,
  functions = function(v)
    if type(v) ~= "table" then return expected("table", v) end
    for k, f in pairs(v) do
      if not check.is_callable(f) then
        return ("function expected at '%s', got %s"):format(tostring(k),
                                                           type(f))
      end
    end
  end,
}

--- Checks o, argument #n of fname, against known (option name -> kind)
-- and returns a copy (integers as integers), {} for nil. Raises "bad
-- argument #n to 'fname' (unknown option 'x')" or "(field 'x': ...
-- expected, got ...)" at `level`, as the public function would pass it
-- to error (0: no position).
local function check_opts(o, known, n, fname, level)
  local function bad(msg)
    error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg),
          level > 0 and level + 2 or 0)
  end
  if o == nil then return {} end
  if type(o) ~= "table" then bad(expected("table", o)) end
  local out = {}
  for k, v in pairs(o) do
    local kind = known[k]
    if kind == nil then bad(("unknown option '%s'"):format(tostring(k))) end
    local why = KINDS[kind](v)
    if why then bad(("field '%s': %s"):format(k, why)) end
    out[k] = (kind == "count" or kind == "slots") and int(v) or v
  end
  return out
end

---------------------------------------------------------------------------
-- Payload encoding, version 1: "WQ1" then one value:
--   "n" nil | "t" true | "f" false | "i" int64 (LE) | "d" double (LE)
--   | "s" u32 length (LE) + bytes
--   | "T" u32 count (LE) + count pairs of (key value), keys never nil
-- Tables nest at most 100 deep; shared or cyclic tables are refused.

local MAXDEPTH = 100

local function enc(v, out, depth, seen)
  local t = type(v)
  if t == "nil" then out[#out + 1] = "n"
  elseif t == "boolean" then out[#out + 1] = v and "t" or "f"
  elseif t == "number" then
    if math.type(v) == "integer" then out[#out + 1] = spack("<c1j", "i", v)
    else out[#out + 1] = spack("<c1d", "d", v) end
  elseif t == "string" then out[#out + 1] = spack("<c1s4", "s", v)
  elseif t == "table" then
    if depth >= MAXDEPTH then
      error(M.PayloadError("payload nests deeper than 100 tables"), 0)
    end
    if seen[v] then
      error(M.PayloadError("payload holds a table twice (or a cycle)"), 0)
    end
    seen[v] = true
    local n, at = 0, #out + 1
    out[at] = false
    for k, x in pairs(v) do
      enc(k, out, depth + 1, seen)
      enc(x, out, depth + 1, seen)
      n = n + 1
    end
    out[at] = spack("<c1I4", "T", n)
  else
    error(M.PayloadError("cannot encode a " .. t .. " in a job payload"), 0)
  end
end

--- encode(v) -> the payload string of v.
function M.encode(v)
  local out = {"WQ1"}
  enc(v, out, 0, {})
  return concat(out)
end

local function dec(s, pos, depth)
  local tag = s:sub(pos, pos)
  pos = pos + 1
  if tag == "n" then return nil, pos
  elseif tag == "t" then return true, pos
  elseif tag == "f" then return false, pos
  elseif tag == "i" then return sunpack("<j", s, pos)
  elseif tag == "d" then return sunpack("<d", s, pos)
  elseif tag == "s" then return sunpack("<s4", s, pos)
  elseif tag == "T" then
    if depth >= MAXDEPTH then error("nested too deep", 0) end
    local n
    n, pos = sunpack("<I4", s, pos)
    if n > #s then error("bad table size", 0) end
    local t = {}
    for _ = 1, n do
      local k, v
      k, pos = dec(s, pos, depth + 1)
      if k == nil or k ~= k then error("bad table key", 0) end
      v, pos = dec(s, pos, depth + 1)
      t[k] = v
    end
    return t, pos
  end
  error(("bad tag at byte %d"):format(pos - 1), 0)
end

--- decode(s) -> the value; raises workqueue.PayloadError for anything
-- that is not a whole version-1 payload.
function M.decode(s)
  if type(s) ~= "string" or s:sub(1, 3) ~= "WQ1" then
    error(M.PayloadError("malformed payload: not a WQ1 payload"), 0)
  end
  local ok, v, pos = pcall(dec, s, 4, 0)
  if not ok then
    error(M.PayloadError("malformed payload: " .. tostring(v)
                         :gsub("^.-:%d+: ", "")), 0)
  end
  if pos ~= #s + 1 then
    error(M.PayloadError("malformed payload: trailing bytes"), 0)
  end
  return v
end

---------------------------------------------------------------------------
-- The scripts (KEYS[1] is always the prefix's queue; ARGV[1] the prefix)

local NOW = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
]]

local ENQUEUE = [[
local P, id = ARGV[1], ARGV[2]
local jk = P .. 'job:' .. id
if redis.call('HSETNX', jk, 'fn', ARGV[3]) == 0 then return 0 end
local delay = tonumber(ARGV[7])
redis.call('HSET', jk, 'args', ARGV[4], 'retries', ARGV[5],
  'timeout', ARGV[6], 'retry_delay', ARGV[8], 'ttl', ARGV[9],
  'attempts', 0, 'failures', 0,
  'state', delay > 0 and 'deferred' or 'queued')
if delay > 0 then
  ]] .. NOW .. [[
  redis.call('ZADD', P .. 'delayed', now + delay, id)
else
  redis.call('LPUSH', P .. 'queue', id)
end
return 1
]]

-- Wakes the waiters of a finished job (those of job:result, which set
-- its field 'waited' first); counts a dead letter.
local NOTIFY = [[
local function notify(P, id, jk, ttl, what)
  if redis.call('HGET', jk, 'waited') then
    local nk = P .. 'notify:' .. id
    redis.call('DEL', nk)
    redis.call('LPUSH', nk, what)
    if ttl and ttl > 0 then redis.call('EXPIRE', nk, ttl) end
  end
end
-- The end of job id, done or dead (`what`): its record expires after
-- ttl seconds (none or 0: never), its waiters wake.
local function ended(P, id, jk, ttl, what)
  if ttl and ttl > 0 then redis.call('EXPIRE', jk, ttl) end
  notify(P, id, jk, ttl, what)
end
-- Counts id among the dead letters.
local function dead_letter(P, id)
  redis.call('LPUSH', P .. 'dead', id)
  redis.call('HINCRBY', P .. 'stats', 'dead', 1)
end
]]

-- Marks the record jk of a job put back in the queue 'queued' again,
-- only when it is the hash of a job not ended: a missing record (it
-- expired or was removed) is not made again, a done or dead job keeps
-- its end (a stalled worker finished it after its lease), a record that
-- is no hash is left for CLAIM to bury. CLAIM drops such ids.
local MARK_QUEUED = [[
local function mark_queued(jk)
  if redis.call('TYPE', jk).ok ~= 'hash' then return end
  local state = redis.call('HGET', jk, 'state')
  if state == 'done' or state == 'dead' then return end
  redis.call('HSET', jk, 'state', 'queued')
  redis.call('HDEL', jk, 'worker')
end
]]

-- ARGV: P, worker, n, lease, an id already moved into the worker's list
-- (or ''). Takes up to n ready jobs, or that id if it is still in the
-- worker's list (a claim of it that went unanswered may have run, and
-- a tick put it back in the queue since); returns {id, fn, args,
-- attempts, timeout} for each.
local CLAIM = NOW .. NOTIFY .. [[
local P, W, n, lease, first = ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5]
local proc = P .. 'proc:' .. W
redis.call('ZADD', P .. 'workers', now + lease, W)
local out = {}
-- a job whose record cannot be run (not a hash, no function or
-- arguments, attempts not an integer) is a dead letter at once, with a
-- JobError saying why: it must neither stop the worker nor come back
local function bury(id, jk, why)
  redis.call('LREM', proc, 1, id)
  dead_letter(P, id)
  if redis.call('TYPE', jk).ok == 'hash' then
    redis.call('HSET', jk, 'state', 'dead', 'error_class',
      'workqueue.JobError', 'error', 'malformed job: ' .. why,
      'traceback', '', 'worker', '')
    ended(P, id, jk, tonumber(redis.call('HGET', jk, 'ttl')), 'dead')
  end
end
-- an id whose record is gone (it expired or was removed) or whose job
-- already ended (it came back after a stalled worker finished it) is
-- dropped: not run again, no dead letter, no count
local function start(id)
  local jk = P .. 'job:' .. id
  if redis.call('EXISTS', jk) == 0 then
    redis.call('LREM', proc, 1, id)
    return
  end
  local f = redis.pcall('HMGET', jk, 'fn', 'args', 'timeout', 'state')
  if not f.err and (f[4] == 'done' or f[4] == 'dead') then
    redis.call('LREM', proc, 1, id)
    return
  end
  if f.err or not f[1] or not f[2] then
    return bury(id, jk, 'no function or arguments')
  end
  local a = redis.pcall('HINCRBY', jk, 'attempts', 1)
  if type(a) ~= 'number' then
    return bury(id, jk, 'attempts is not an integer')
  end
  redis.call('HSET', jk, 'state', 'running', 'worker', W)
  out[#out + 1] = {id, f[1], f[2], a, f[3]}
end
if first ~= '' then
  if redis.call('LPOS', proc, first) then start(first) end
else
  for _ = 1, n do
    local id = redis.call('LMOVE', P .. 'queue', proc, 'RIGHT', 'LEFT')
    if not id then break end
    start(id)
  end
end
return out
]]

-- ARGV: P, worker, id, result payload
local FINISH = NOTIFY .. [[
local P, W, id = ARGV[1], ARGV[2], ARGV[3]
local jk = P .. 'job:' .. id
redis.call('LREM', P .. 'proc:' .. W, 1, id)
if redis.call('TYPE', jk).ok ~= 'hash' then return 0 end
local f = redis.call('HMGET', jk, 'state', 'ttl')
-- a job that ended meanwhile (another worker ran it after this one's
-- lease expired) keeps its end
if not f[1] or f[1] == 'done' or f[1] == 'dead' then return 0 end
redis.call('HSET', jk, 'state', 'done', 'result', ARGV[4], 'worker', '')
-- a job back in the queue, or waiting for its retry, leaves there (the
-- queue's scan only when its state says it is in it: a running job,
-- the usual case, is not)
if f[1] == 'queued' then
  redis.call('LREM', P .. 'queue', 0, id)
elseif f[1] ~= 'running' then
  redis.call('ZREM', P .. 'delayed', id)
end
ended(P, id, jk, tonumber(f[2]), 'done')
redis.call('HINCRBY', P .. 'stats', 'done', 1)
return 1
]]

-- ARGV: P, worker, id, error class, message, traceback, the run's
-- attempt (CLAIM's)
local FAIL = NOW .. NOTIFY .. [[
local P, W, id = ARGV[1], ARGV[2], ARGV[3]
local jk = P .. 'job:' .. id
local proc = P .. 'proc:' .. W
if redis.call('TYPE', jk).ok ~= 'hash' then
  redis.call('LREM', proc, 1, id)
  if redis.call('EXISTS', jk) == 1 then -- no hash: a dead letter
    dead_letter(P, id)
  end
  return 0
end
-- a failure of a job that ended meanwhile does not count
local held = redis.call('HMGET', jk, 'state', 'worker', 'attempts')
if held[1] == 'done' or held[1] == 'dead' then
  redis.call('LREM', proc, 1, id)
  return 0
end
-- nor one of a run that lost the job (its worker's lease expired: the
-- job went back to the queue, and another worker, or this one again,
-- may run it): the job's id in the worker's list, if there, is the
-- current run's
if held[2] ~= W or tonumber(held[3]) ~= tonumber(ARGV[7]) then return 0 end
redis.call('LREM', proc, 1, id)
-- fields that are not numbers (a record changed by hand) make the job
-- dead rather than raise here, after the LREM: it would be in no list
local failures = redis.pcall('HINCRBY', jk, 'failures', 1)
local f = redis.call('HMGET', jk, 'retries', 'retry_delay', 'ttl')
redis.call('HSET', jk, 'error_class', ARGV[4], 'error', ARGV[5],
  'traceback', ARGV[6], 'worker', '')
local retries, retry_delay = tonumber(f[1]), tonumber(f[2])
if type(failures) == 'number' and retries and retry_delay and
    failures <= retries then
  local delay = retry_delay * 2 ^ (failures - 1)
  redis.call('HSET', jk, 'state', 'failed')
  redis.call('ZADD', P .. 'delayed', now + delay, id)
  return 1
end
redis.call('HSET', jk, 'state', 'dead')
dead_letter(P, id)
ended(P, id, jk, tonumber(f[3]), 'dead')
return 2
]]

-- ARGV: P, id. For job:result: marks the job as waited for (so that its
-- end pushes to its notify list) and returns its state, result, error
-- class, error, traceback and attempts ({} for no such job).
local WATCH = [[
local jk = ARGV[1] .. 'job:' .. ARGV[2]
if redis.call('EXISTS', jk) == 0 then return {} end
redis.call('HSET', jk, 'waited', 1)
return redis.call('HMGET', jk, 'state', 'result', 'error_class', 'error',
  'traceback', 'attempts')
]]

-- ARGV: P, worker ('' for none), lease. Renews the worker's lease, moves
-- the due delayed jobs to the queue, and puts back at the head of the
-- queue the jobs of workers whose lease expired, and drops from the
-- old end of the dead-letter list the few ids whose record expired.
-- Returns {promoted, requeued, seconds until the next delayed job or
-- -1}.
local TICK = NOW .. MARK_QUEUED .. [[
local PRUNED = 10 -- dead letters looked at per tick
local P, W, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
if W ~= '' then redis.call('ZADD', P .. 'workers', now + lease, W) end
local q = P .. 'queue'
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now,
  'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', P .. 'delayed', id)
  mark_queued(P .. 'job:' .. id)
  redis.call('LPUSH', q, id)
end
local requeued = 0
local gone = redis.call('ZRANGEBYSCORE', P .. 'workers', '-inf', now,
  'LIMIT', 0, 100)
for _, w in ipairs(gone) do
  local proc = P .. 'proc:' .. w
  while true do
    local id = redis.call('LMOVE', proc, q, 'RIGHT', 'RIGHT')
    if not id then break end
    mark_queued(P .. 'job:' .. id)
    requeued = requeued + 1
  end
  redis.call('ZREM', P .. 'workers', w)
end
-- the dead letters from the old end on, PRUNED a tick: those whose
-- record is gone leave, the others are passed (the cursor counts them),
-- so that letters which stay (no ttl) do not hide those behind them
local dead, cursor, kept = P .. 'dead', P .. 'dead_cursor', 0
local at = tonumber(redis.call('GET', cursor)) or 0
local ids = redis.call('LRANGE', dead, -(at + PRUNED), -(at + 1))
for _, id in ipairs(ids) do
  if redis.call('EXISTS', P .. 'job:' .. id) == 0 then
    redis.call('LREM', dead, -1, id)
  else
    kept = kept + 1
  end
end
-- written only when it moves; no key at 0
if #ids < PRUNED then
  redis.call('DEL', cursor)
elseif kept > 0 then
  redis.call('SET', cursor, at + kept)
end
local nxt = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then wait = math.max(0, tonumber(nxt[2]) - now) end
return {#due, requeued, tostring(wait)}
]]

-- ARGV: P, worker, lease. A worker leaving, or starting (what a run()
-- cancelled earlier left): what it holds and does not run goes back to
-- the head of the queue. Its lease is kept `lease` seconds more, so that
-- the ticks of the other workers still reap its list: its last BLMOVE,
-- cancelled, may reach Redis after this script and take a job there.
local LEAVE = NOW .. MARK_QUEUED .. [[
local P, W, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
local proc = P .. 'proc:' .. W
local n = 0
while true do
  local id = redis.call('LMOVE', proc, P .. 'queue', 'RIGHT', 'RIGHT')
  if not id then break end
  mark_queued(P .. 'job:' .. id)
  n = n + 1
end
redis.call('ZADD', P .. 'workers', now + lease, W)
return n
]]

-- ARGV: P, ids. Drops from the dead-letter list each of the ids whose
-- record is gone (it expired, or was deleted); returns how many. The
-- ticks' pruning then starts again from the old end: a letter removed
-- among those it passed would make it skip one it has not seen.
local PRUNE = [[
local P, n = ARGV[1], 0
for i = 2, #ARGV do
  if redis.call('EXISTS', P .. 'job:' .. ARGV[i]) == 0 then
    n = n + redis.call('LREM', P .. 'dead', 0, ARGV[i])
  end
end
if n > 0 then redis.call('DEL', P .. 'dead_cursor') end
return n
]]

---------------------------------------------------------------------------
-- Queue

local Queue = {}
Queue.__index = Queue

local Job = {}
Job.__index = Job

local QUEUE_OPTS = {redis = "redis", lease = "lease", retry_delay = "seconds",
                    result_ttl = "count", retries = "count"}

--- Queue(name, {redis = url or client, lease = 30, retry_delay = 1,
-- result_ttl = 3600, retries = 0})
function M.Queue(name, opts)
  if type(name) ~= "string" then
    error("bad argument #1 to 'Queue' (string expected, got "
          .. type(name) .. ")", 2)
  end
  opts = check_opts(opts, QUEUE_OPTS, 2, "Queue", 2)
  local r = opts.redis or "redis://127.0.0.1:6379/0"
  local own = type(r) == "string"
  if own then r = redis.from_url(r) end
  local q = setmetatable({name = name, redis = r, prefix = "wq:" .. name
                          .. ":", lease = opts.lease or 30,
                          retry_delay = opts.retry_delay or 1,
                          result_ttl = opts.result_ttl or 3600,
                          retries = opts.retries or 0, own_redis = own},
                         Queue)
  q.scripts = {}
  for k, src in pairs{enqueue = ENQUEUE, claim = CLAIM, finish = FINISH,
                      fail = FAIL, tick = TICK, leave = LEAVE,
                      watch = WATCH, prune = PRUNE} do
    q.scripts[k] = r:register_script(src)
  end
  return q
end

--- 16 hex digits unique to this process: /dev/urandom's (math.random's
-- seed may repeat in processes started together), else the pid and time.
local function process_token()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(8)
  if f then f:close() end
  if bytes and #bytes == 8 then
    return (bytes:gsub(".", function(c)
      return ("%02x"):format(c:byte())
    end))
  end
  local st = io.open("/proc/self/stat")
  local pid = st and st:read("n") or 0
  if st then st:close() end
  return ("%08x%08x"):format(pid & 0xffffffff, os.time() & 0xffffffff)
end

local TOKEN = process_token()
local counter = 0

--- A job id: this process's token and a counter (unique across
-- processes and machines without coordination).
local function new_id()
  counter = counter + 1
  return ("%s%x"):format(TOKEN, counter)
end

local function job_of(q, id, fields)
  return setmetatable({id = id, queue = q, fn = fields and fields.fn,
                       attempts = fields and fields.attempts or 0}, Job)
end

local RESULT_OPTS = {timeout = "timeout"}
local ENQUEUE_OPTS = {retries = "count", timeout = "seconds",
                      job_id = "string", delay = "seconds",
                      retry_delay = "seconds"}

local enqueue = async(function(self, fn, payload, o)
  local id = o.job_id or new_id()
  await(self.scripts.enqueue({}, {self.prefix, id, fn, payload,
    o.retries or self.retries, o.timeout or 0, o.delay or 0,
    o.retry_delay or self.retry_delay, self.result_ttl}))
  return job_of(self, id, {fn = fn})
end)

--- await(q:enqueue(fn_name, args [, {retries =, timeout =, job_id =,
-- delay =, retry_delay =}])) -> Job. With a job_id already queued, the
-- job is not enqueued twice (the Job of that id is returned). The
-- arguments are checked, and args encoded, when the call is made: a
-- bad option raises "bad argument", args that cannot be sent (a
-- function, a cycle ...) workqueue.PayloadError, and nothing is written.
function Queue:enqueue(fn, args, o)
  if type(fn) ~= "string" then
    error("bad argument #1 to 'enqueue' (string expected, got "
          .. type(fn) .. ")", 2)
  end
  o = check_opts(o, ENQUEUE_OPTS, 3, "enqueue", 2)
  return enqueue(self, fn, M.encode(args), o)
end

--- await(q:job(id)) -> the Job of an id (nil if Redis has no such job).
Queue.job = async(function(self, id)
  if type(id) ~= "string" then
    error("bad argument #1 to 'job' (string expected, got "
          .. type(id) .. ")", 0)
  end
  local j = job_of(self, id)
  if not await(j:refresh()) then return nil end
  return j
end)

--- await(q:dead_letters()) -> list of {id, fn, args, error, traceback,
-- attempts} of the dead jobs, the latest first. The ids whose record
-- expired (result_ttl after the job died) or was deleted are dropped
-- from the dead-letter list.
Queue.dead_letters = async(function(self)
  local r, P = self.redis, self.prefix
  local ids = await(r:lrange(P .. "dead", 0, -1))
  local p = r:pipeline(false)
  for _, id in ipairs(ids) do p:hgetall(P .. "job:" .. id) end
  local hs = await(p:execute(false))
  local out, gone = {}, {P}
  for i, id in ipairs(ids) do
    local h = hs[i]
    if iserror(h) then -- a record that is no hash: buried as malformed
      out[#out + 1] = {id = id, error_class = "workqueue.JobError",
                       error = "malformed job: no hash"}
    elseif next(h) == nil then -- expired or deleted
      gone[#gone + 1] = id
    else
      local okd, args = pcall(M.decode, h.args)
      out[#out + 1] = {id = id, fn = h.fn, args = okd and args or nil,
                       error = h.error,
                       error_class = h.error_class ~= "" and h.error_class
                         or nil, -- "": a plain value raised
                       traceback = h.traceback,
                       attempts = tonumber(h.attempts)}
    end
  end
  if #gone > 1 then await(self.scripts.prune({}, gone)) end
  return out
end)

--- await(q:counts()) -> {queued, deferred, running, done, dead}
Queue.counts = async(function(self)
  local r, P = self.redis, self.prefix
  local p = r:pipeline(false)
  p:llen(P .. "queue"):zcard(P .. "delayed"):hgetall(P .. "stats")
  p:zrange(P .. "workers", 0, -1)
  local res = await(p:execute())
  local running = 0
  if #res[4] > 0 then
    local p2 = r:pipeline(false)
    for _, w in ipairs(res[4]) do p2:llen(P .. "proc:" .. w) end
    for _, n in ipairs(await(p2:execute())) do running = running + n end
  end
  return {queued = res[1], deferred = res[2], running = running,
          done = tonumber(res[3].done) or 0,
          dead = tonumber(res[3].dead) or 0}
end)

--- await(q:close()): closes the client the queue made from a URL (a
-- client given as the option redis stays open: it is its owner's).
Queue.close = async(function(self)
  if self.own_redis then await(self.redis:close()) end
end)

---------------------------------------------------------------------------
-- Job

--- await(job:refresh()) -> true if the job exists; updates job.attempts,
-- job.fn, job.state.
Job.refresh = async(function(self)
  local q = self.queue
  local h = await(q.redis:hmget(q.prefix .. "job:" .. self.id,
                                {"state", "attempts", "fn"}))
  if h[1] == nil then return false end
  self.state, self.attempts, self.fn = h[1], tonumber(h[2]), h[3]
  return true
end)

--- await(job:status()) -> "queued" | "deferred" | "running" | "done" |
-- "failed" | "dead", or nil for an unknown (or expired) job.
Job.status = async(function(self)
  local q = self.queue
  return await(q.redis:hget(q.prefix .. "job:" .. self.id, "state"))
end)

--- The error a failed job raises where its result is awaited: its class
-- when asyncio knows the name (asyncio.ValueError ...) and it is an
-- Exception, else JobError (a remote CancelledError must not cancel the
-- task that waits); the traceback is the remote one.
-- This module's own classes by name, looked up first: errors[] keeps the
-- first class registered under a name, which may be another loading's of
-- this module (busted reloads modules between spec files).
local OWN_CLASSES = {["workqueue.JobError"] = M.JobError,
                     ["workqueue.PayloadError"] = M.PayloadError,
                     ["workqueue.WorkQueueError"] = M.WorkQueueError}

local function job_error(cls, msg, tb)
  local errors = require "asyncio.errors"
  local c = cls and (OWN_CLASSES[cls] or errors[cls])
  if type(c) ~= "table" or type(rawget(c, "__is")) ~= "table"
     or not c.__is[asyncio.Exception] then
    c = M.JobError
    if msg == nil or msg == "" then msg = cls end
  end
  local e = c(msg)
  e.traceback = tb
  e.remote_class = cls ~= "" and cls or nil -- "": a plain value raised
  return e
end

-- the states of a job that is not finished yet
local WAITING_STATES = {queued = true, deferred = true, running = true,
                        failed = true}

local result = async(function(self, o)
  local q = self.queue
  local r = q.redis
  local loop = asyncio.get_running_loop()
  local deadline = o.timeout and loop:time() + o.timeout
  while true do
    local h = await(q.scripts.watch({}, {q.prefix, self.id}))
    local state = h[1]
    if state == nil then
      error(M.WorkQueueError("no job " .. self.id .. " (expired?)"), 0)
    end
    self.attempts = tonumber(h[6])
    if state == "done" then
      -- a result the worker wrote is a list of values; anything else (a
      -- record changed by hand) is a PayloadError, not a Lua error here
      local ok, v = pcall(M.decode, h[2])
      if not ok or type(v) ~= "table" or math.type(v.n) ~= "integer" then
        error(M.PayloadError(("job %s: its result is not one a worker "
          .. "wrote"):format(self.id)), 0)
      end
      return unpack(v, 1, v.n)
    elseif state == "dead" then
      error(job_error(h[3], h[4], h[5]), 0)
    elseif not WAITING_STATES[state] then
      error(M.WorkQueueError(("job %s has an unknown state '%s'")
        :format(self.id, tostring(state))), 0)
    end
    local wait = 1
    if deadline then
      local left = deadline - loop:time()
      if left <= 0 then
        error(asyncio.TimeoutError("job " .. self.id .. " not finished"), 0)
      end
      wait = math.min(wait, left)
    end
    local nk = q.prefix .. "notify:" .. self.id
    await(r:blmove(nk, nk, math.max(wait, 0.01), "RIGHT", "LEFT"))
  end
end)

--- await(job:result{timeout =}) -> the values the function returned.
-- Waits (as long as it takes without a timeout) while the job is not
-- done or dead; raises the job's error if it is dead, asyncio's
-- TimeoutError when the timeout passes first. The options are checked
-- when the call is made.
function Job:result(o)
  return result(self, check_opts(o, RESULT_OPTS, 1, "result", 2))
end

function Job:__tostring()
  return ("<Job %s %s>"):format(self.id, tostring(self.fn))
end

---------------------------------------------------------------------------
-- Worker

local Worker = {}
Worker.__index = Worker

--- The machine's name (for worker ids), or "host".
local function hostname()
  local f = io.open("/etc/hostname")
  local name = f and f:read("l")
  if f then f:close() end
  return name and name:match("^[%w.-]+$") or "host"
end

local WORKER_OPTS = {functions = "functions", concurrency = "slots",
                     lease = "lease"}

--- Worker(q, {functions = {name = fn}, concurrency = 10, lease =})
function M.Worker(q, opts)
  if getmetatable(q) ~= Queue then
    error("bad argument #1 to 'Worker' (workqueue.Queue expected)", 2)
  end
  opts = check_opts(opts, WORKER_OPTS, 2, "Worker", 2)
  return setmetatable({queue = q, functions = opts.functions or {},
                       concurrency = opts.concurrency or 10,
                       lease = opts.lease or q.lease,
                       id = ("%s-%s"):format(hostname(), new_id()),
                       running = {}, nrunning = 0, stopping = false},
                      Worker)
end

--- -> class name, message and traceback of what a job raised; tb is the
-- traceback taken where a value that is not an error object was raised.
local function error_parts(e, tb)
  if iserror(e) then
    local cls = getmetatable(e)
    return rawget(cls, "__name") or "Exception", tostring(e.message),
      tostring(rawget(e, "traceback") or "")
  end
  return "", tostring(e), tb or ""
end

--- Reports err, which the worker outlives, to the loop's exception
-- handler.
local function report(self, what, err)
  asyncio.get_running_loop():call_exception_handler{
    message = ("workqueue worker %s %s"):format(self.id, what),
    exception = err}
end

--- Runs script (finish or fail) until Redis takes it: while Redis cannot
-- be reached or refuses it (any redis.RedisError: a dropped connection,
-- READONLY after a failover, BUSY while a script runs, OOM), the job's
-- outcome is only here (and the job stays with this worker, whose lease
-- the ticker renews once Redis is back). The first failure of a streak
-- is reported; the wait between tries doubles up to lease / 3. A worker
-- stopping gives up once a lease has passed since the first failure (an
-- error Redis keeps giving would hold its stop for ever), and reports
-- it: the job stays in the worker's list, which the LEAVE of run()'s
-- end puts back in the queue if Redis takes it, else the lease's expiry
-- does; the job runs again.
local settle = async(function(self, script, argv)
  local loop = asyncio.get_running_loop()
  local delay, first = 0.05, nil
  while true do
    local ok, e = asyncio.pcall(await, script({}, argv))
    if ok then return end
    if not iserror(e, redis.RedisError) then error(e, 0) end
    if first == nil then -- the streak's first failure
      first = loop:time()
      report(self, "cannot record the end of a job (retrying)", e)
    elseif self.stopping and loop:time() >= first + self.lease then
      report(self, "gives up recording the end of a job", e)
      return
    end
    await(asyncio.sleep(delay))
    delay = math.min(delay * 2, self.lease / 3)
  end
end)

--- Runs one job in its own task: finish or fail it in Redis. A
-- CancelledError that the worker did not ask for (the function awaited
-- something cancelled) fails the job like any error; the worker's own
-- cancellation propagates, leaving the job to its lease.
local run_job = async(function(self, j)
  local q = self.queue
  local id, fname, payload, attempts, timeout =
    j[1], j[2], j[3], tonumber(j[4]), tonumber(j[5]) or 0
  local job = job_of(q, id, {fn = fname, attempts = attempts})
  local tb
  local function note(e)
    if not iserror(e) then
      tb = debug.traceback(nil, 2)
    elseif rawget(e, "traceback") == nil then
      e.traceback = debug.traceback(nil, 2)
    end
    return e
  end
  local started = asyncio.get_running_loop():time()
  local res = pack(xpcall(function()
    local fn = self.functions[fname]
    if fn == nil then
      error(M.JobError("no function '" .. tostring(fname)
                       .. "' in this worker"), 0)
    end
    local args = M.decode(payload)
    local call = async(function()
      local out = pack(fn(args, job))
      if out.n >= 1 and asyncio.iscoroutine(out[1]) then
        return await(out[1])
      end
      return unpack(out, 1, out.n)
    end)
    if timeout > 0 then
      return await(asyncio.wait_for(call(), timeout))
    end
    return await(call())
  end, note))
  local e = res[2]
  if not res[1] and timeout > 0 and iserror(e, asyncio.TimeoutError)
     and e.message == "" and
     asyncio.get_running_loop():time() >= started + timeout then
    -- (the sum wait_for's deadline is: a difference may round below)
    -- wait_for's own TimeoutError has no message: the dead letter says why
    e.message = ("job exceeded its timeout of %g s"):format(timeout)
  end
  if not res[1] and iserror(e) and not iserror(e, asyncio.Exception)
     and not (iserror(e, asyncio.CancelledError)
              and asyncio.current_task():cancelling() == 0) then
    error(e, 0)
  end
  if res[1] then
    local okp, payload_out = pcall(M.encode, pack(unpack(res, 2, res.n)))
    if okp then
      await(settle(self, q.scripts.finish, {q.prefix, self.id, id,
                                            payload_out}))
      return
    end
    res = {false, payload_out}
  end
  local cls, msg, trace = error_parts(res[2], tb)
  await(settle(self, q.scripts.fail, {q.prefix, self.id, id, cls, msg,
                                      trace, attempts}))
end)

--- The periodic tick: renews this worker's lease, promotes due delayed
-- jobs, requeues the jobs of dead workers. A failed tick is reported
-- (once until one succeeds) and tried again: the renewals must go on.
local ticker = async(function(self)
  local q = self.queue
  local failing = false
  while true do
    local wait = math.min(self.lease / 3, 0.1)
    local ok, res = asyncio.pcall(await, q.scripts.tick({}, {q.prefix,
                                                            self.id,
                                                            self.lease}))
    if ok then
      failing = false
      local nxt = tonumber(res[3])
      if nxt and nxt >= 0 then
        wait = math.max(0.001, math.min(wait, nxt))
      end
    elseif not failing then
      failing = true
      report(self, "cannot renew its lease (retrying)", res)
    end
    await(asyncio.sleep(wait))
  end
end)

--- Claims the job id, which BLMOVE put in the worker's list: until a
-- claim of it returns, it stays to claim (self.unclaimed), so that a
-- claim Redis did not answer leaves no job stranded in that list.
local function claim_moved(self, q, P, id)
  self.unclaimed = id
  local jobs = await(q.scripts.claim({}, {P, self.id, 1, self.lease, id}))
  self.unclaimed = nil
  return jobs
end

--- Takes up to free jobs for worker self (waiting up to a second for
-- one when none is ready): their claims. Raises what Redis raises, and
-- CancelledError when stop() cancels the wait.
local function fetch(self, q, r, P, free)
  if self.unclaimed then return claim_moved(self, q, P, self.unclaimed) end
  local jobs = await(q.scripts.claim({}, {P, self.id, free, self.lease, ""}))
  if #jobs > 0 then return jobs end
  self.fetch = asyncio.create_task(r:blmove(P .. "queue", P .. "proc:"
    .. self.id, 1, "RIGHT", "LEFT"))
  local ok, id = pcall(await, self.fetch)
  self.fetch = nil
  if not ok then error(id, 0) end
  if not id then return jobs end
  return claim_moved(self, q, P, id)
end

local function spawn(self, j)
  local t = asyncio.create_task(run_job(self, j))
  self.running[t] = true
  self.nrunning = self.nrunning + 1
  t:add_done_callback(function(f)
    self.running[f] = nil
    self.nrunning = self.nrunning - 1
    if not f:cancelled() and f:exception() then
      io.stderr:write("workqueue: ", tostring(f:exception()), "\n")
    end
    local w = self.slot
    if w and not w:done() then w:set_result(true) end
  end)
end

-- loop -> {workers = set of the workers running on it, sig = whether
-- their SIGTERM handler is installed}: one handler stops them all.
local on_loop = setmetatable({}, {__mode = "k"})

--- await(w:run()): takes jobs until w:stop() or SIGTERM, then waits for
-- the running ones and returns. Cancelling it cancels the running jobs
-- (their lease then expires and they are delivered again; a run() of
-- the same worker, which would renew that lease, first puts them back
-- in the queue). A run() while another run() of the same worker is
-- going raises asyncio.RuntimeError and touches nothing in Redis (its
-- start-up would put the other's running jobs back in the queue).
Worker.run = async(function(self)
  if self.in_run then
    error(asyncio.RuntimeError("this worker is already running"), 0)
  end
  self.in_run = true
  local q = self.queue
  local r, P = q.redis, q.prefix
  local loop = asyncio.get_running_loop()
  local mine = on_loop[loop]
  if mine == nil then
    local workers = {}
    mine = {workers = workers}
    mine.sig = pcall(loop.add_signal_handler, loop, "SIGTERM", function()
      for w in pairs(workers) do w:stop() end
    end)
    on_loop[loop] = mine
  end
  mine.workers[self] = true
  local tick = asyncio.create_task(ticker(self))
  local delay = 0.05 -- the wait before taking jobs again after a failure
  local ok, err = pcall(function()
    -- what this worker holds is left from a cancelled run()
    await(q.scripts.leave({}, {P, self.id, self.lease}))
    while not self.stopping do
      local free = self.concurrency - self.nrunning
      if free <= 0 then
        self.slot = loop:create_future()
        await(self.slot)
        self.slot = nil
      else
        local okr, jobs = pcall(fetch, self, q, r, P, free)
        if okr then
          delay = 0.05
          for _, j in ipairs(jobs) do spawn(self, j) end
        elseif not (self.stopping and iserror(jobs, asyncio.CancelledError))
        then
          -- Redis lost or refusing (a restart, a failover, out of
          -- memory): reported once, tried again, the running jobs kept
          -- (their leases are the ticker's); anything else ends run()
          if not iserror(jobs, redis.RedisError) then error(jobs, 0) end
          if delay == 0.05 then
            report(self, "cannot take jobs (retrying)", jobs)
          end
          await(asyncio.sleep(delay))
          delay = math.min(delay * 2, self.lease / 3)
        end
      end
    end
    -- drain: the running jobs finish
    while self.nrunning > 0 do
      self.slot = loop:create_future()
      await(self.slot)
      self.slot = nil
    end
    await(q.scripts.leave({}, {P, self.id, self.lease}))
  end)
  tick:cancel()
  self.stopping = false -- a stop() before run() is not lost; after, reset
  self.in_run = false
  mine.workers[self] = nil
  if next(mine.workers) == nil then
    on_loop[loop] = nil
    if mine.sig then pcall(loop.remove_signal_handler, loop, "SIGTERM") end
  end
  if not ok then
    for t in pairs(self.running) do t:cancel() end
    error(err, 0)
  end
end)

--- w:stop(): stop taking jobs; run() returns once the running ones end.
function Worker:stop()
  self.stopping = true
  if self.fetch then self.fetch:cancel() end
  local w = self.slot
  if w and not w:done() then w:set_result(true) end
end

M._Queue, M._Job, M._Worker = Queue, Job, Worker
return M
