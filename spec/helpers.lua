-- spec/helpers.lua: small helpers the specs share.
--   local h = dofile("spec/helpers.lua")
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local assert = require "luassert"

local M = {}

--- A test body run as a task on a virtual-clock loop.
function M.vspec(fn)
  return aspec.async({clock = "virtual"}, fn)
end

--- Awaits aw, which must fail; returns its error.
function M.await_error(aw)
  local ok, err = pcall(asyncio.await, aw)
  assert.is_false(ok, "expected an error")
  return err
end

--- Calls fn(...), which must raise an error of class cls; returns it.
function M.raises(cls, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(asyncio.iserror(err, cls), tostring(err))
  return err
end

return M
