--- tools/alloc/harness.lua: what the allocation-failure scripts share.
-- run(main [, opts]) runs main as asyncio.run does, with an exception
-- handler that stops the loop at the first report: a memory error that
-- reached the handler then raises "not enough memory" from run; any
-- other report is raised as it is (and fails the harness). Otherwise
-- run returns main's values.
local asyncio = require "asyncio"

local M = {}

local function text(ctx)
  return tostring(ctx.message) .. ": " .. tostring(ctx.exception)
end

function M.run(main, opts)
  local reported
  local function handler(loop, ctx)
    if reported == nil then reported = text(ctx) end
    loop:stop()
  end
  local res = table.pack(pcall(asyncio.run, asyncio.async(function()
    asyncio.get_running_loop():set_exception_handler(handler)
    return main()
  end), opts))
  if reported then
    if reported:find("not enough memory", 1, true) or
       reported:find("ENOBUFS", 1, true) then
      error("not enough memory (reported: " .. reported .. ")", 0)
    end
    error("reported: " .. reported, 0)
  end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- check(cond, what): a wrong result is an error the harness reports.
function M.check(cond, what)
  if not cond then error("wrong result: " .. what, 2) end
end

return M
