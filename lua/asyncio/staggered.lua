--- asyncio.staggered: staggered_race, Python's asyncio.staggered: run
-- coroutines with staggered start times and take the first to succeed.
-- loop:create_connection races a host's addresses with it when given
-- happy_eyeballs_delay (RFC 8305's "Happy Eyeballs").
--
--   local staggered = require "asyncio.staggered"
--   local conn, i, errs = await(staggered.staggered_race({
--     function() return connect(a) end,
--     function() return connect(b) end,
--   }, 0.25))
--
-- The attempts are children of a TaskGroup, as in Python 3.13: the first
-- that returns cancels the others (each sees a CancelledError at its
-- await and should undo what it did, then raise), and the race returns
-- once every started attempt has finished.

local core = require "asyncio.core"
local errors = require "asyncio.errors"
local check = require "asyncio.check"
local taskgroup = require "asyncio.taskgroup"
local combinators = require "asyncio.combinators"

local async, await, iserror = core.async, core.await, core.iserror
local error, ipairs, pairs, pcall, rawequal, setmetatable =
  error, ipairs, pairs, pcall, rawequal, setmetatable

local M = {}

--- What a winner raises to end the group (Python's private _Done): a
-- plain table, which the TaskGroup treats as an ordinary failure.
local DONE = setmetatable({}, {__tostring = function()
  return "staggered_race: a winner"
end, __name = "asyncio.staggered._Done"})

--- True when err is an ExceptionGroup holding nothing but DONE.
local function only_done(err)
  if not iserror(err, errors.BaseExceptionGroup) then return false end
  for _, e in ipairs(err.exceptions) do
    if not rawequal(e, DONE) then return false end
  end
  return true
end

--- Runs the attempt `fn` as attempt i of `race`: a failure (any error,
-- a cancellation included) is kept in race.exceptions[i] and starts the
-- next attempt at once; the first success is the race's result. It
-- cancels the other attempts at once, not when the group learns of it
-- (a done callback, one loop iteration later): an attempt whose await
-- finished in the same iteration then sees the cancellation instead of
-- returning too, and can undo its work (a connection is closed).
local run_one = async(function(race, i, fn, failed)
  local ok, res = pcall(function() return await(fn()) end)
  if ok then
    if race.index ~= nil then return end -- it swallowed its cancellation
    race.index, race.result = i, res
    for j, task in pairs(race.tasks) do
      if j ~= i then task:cancel() end
    end
    error(DONE, 0)
  end
  if iserror(res, errors.KeyboardInterrupt) or
     iserror(res, errors.SystemExit) then
    error(res, 0)
  end
  race.exceptions[i] = res
  failed:set()
end)

--- Starts the attempts one after another inside the group tg: the next
-- when the one before it failed or `delay` seconds after it started
-- (delay nil: only when it failed).
local function start_all(tg, race, coro_fns, delay)
  local wait_for, Event = combinators.wait_for, core.Event
  for i, fn in ipairs(coro_fns) do
    local failed = Event()
    race.exceptions.n = i
    race.tasks[i] = tg:create_task(run_one(race, i, fn, failed))
    local ok, err = pcall(await, wait_for(failed:wait(), delay))
    if not ok and not iserror(err, errors.TimeoutError) then
      error(err, 0)
    end
  end
end

--- staggered_race(coro_fns, delay) -> Coroutine object; awaited:
-- winner_result, winner_index, exceptions.
--
-- coro_fns is a list of functions, each called with no arguments when
-- its turn comes and returning an awaitable (a coroutine function is
-- one). The first starts at once; the next when the one before it
-- fails or after `delay` seconds (nil: the attempts run one at a time).
-- The first to return wins and the others are cancelled; an attempt
-- must let its CancelledError through (one that returns anyway after
-- the winner is ignored, with its result).
-- winner_result is the winner's first value and winner_index its
-- position in coro_fns, both nil when every attempt failed;
-- exceptions[i] is what attempt i raised (nil for the winner), and
-- exceptions.n the number of attempts started.
M.staggered_race = async(function(coro_fns, delay)
  check.type(coro_fns, 1, "staggered_race", "table")
  check.number(delay, 2, "staggered_race", true)
  for i, fn in ipairs(coro_fns) do
    if not check.is_callable(fn) then
      check.argerror(1, "staggered_race", ("function expected at "
        .. "coro_fns[%d], got %s"):format(i, check.typename(fn)))
    end
  end
  local race = {exceptions = {n = 0}, tasks = {}}
  local ok, err = pcall(function()
    local tg <close> = taskgroup.TaskGroup()
    start_all(tg, race, coro_fns, delay)
  end)
  if not ok and not only_done(err) then error(err, 0) end
  return race.result, race.index, race.exceptions
end)

return M
