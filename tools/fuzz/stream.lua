--- tools/fuzz/stream.lua: the StreamReader's line/until/exactly parsing
-- fed arbitrary bytes in arbitrary splits.
--
-- Input: byte 1 picks the limit, byte 2 the separator's length, then the
-- separator, then pairs (op, length) of reads, then the data, cut into
-- chunks whose sizes come from the data itself. What the reads return,
-- followed by what is left, must be the data fed (unless a readline
-- overran the limit: it drops what it read, as Python's does); the errors
-- may only be the documented ones (LimitOverrunError, IncompleteReadError,
-- ValueError), after which the reader must stay usable up to EOF.
local asyncio = require "asyncio"
local await = asyncio.await

local loop = asyncio.new_event_loop{clock = "virtual"}

local allowed = {asyncio.LimitOverrunError, asyncio.IncompleteReadError,
                 asyncio.ValueError}
local function check_error(err)
  for _, cls in ipairs(allowed) do
    if asyncio.iserror(err, cls) then return end
  end
  error("unexpected error: " .. tostring(err), 0)
end

local function run(data)
  if #data < 4 then return end
  local limit = data:byte(1) % 64 + 1
  local seplen = data:byte(2) % 4 + 1
  local sep = data:sub(3, 2 + seplen)
  local pos = 3 + seplen
  local nops = (data:byte(pos) or 0) % 16
  local ops = {}
  for i = 1, nops do
    ops[i] = {data:byte(pos + 2 * i - 1) or 0, data:byte(pos + 2 * i) or 0}
  end
  local body = data:sub(pos + 2 * nops + 1)
  local reader = asyncio.StreamReader{limit = limit}
  -- feed in chunks, with a task switch between them
  local feeder = loop:create_task(asyncio.async(function()
    local i, k = 1, 1
    while i <= #body do
      local n = (body:byte(k) or 1) % 7 + 1
      reader:feed_data(body:sub(i, i + n - 1))
      i, k = i + n, k + 1
      await(asyncio.sleep(0))
    end
    reader:feed_eof()
  end)())
  local out, dropped = {}, false
  local main = asyncio.async(function()
    for _, op in ipairs(ops) do
      local kind, n = op[1] % 5, op[2] % 16
      local ok, r
      if kind == 0 then
        ok, r = pcall(await, reader:readline())
      elseif kind == 1 then
        ok, r = pcall(await, reader:readuntil(sep))
      elseif kind == 2 then
        ok, r = pcall(await, reader:readexactly(n))
      elseif kind == 3 then
        ok, r = pcall(await, reader:read(n))
      else
        ok, r = pcall(await, reader:read(-1))
      end
      if ok then
        out[#out + 1] = r
      else
        check_error(r)
        -- readline drops what overran the limit, as Python's does
        if kind == 0 then dropped = true end
        -- IncompleteReadError consumed what it had: partial is the data
        if asyncio.iserror(r, asyncio.IncompleteReadError) then
          out[#out + 1] = r.partial
        end
      end
    end
    await(feeder)
    out[#out + 1] = await(reader:read(-1))
    if not reader:at_eof() then error("not at EOF after read(-1)", 0) end
  end)
  loop:run_until_complete(main())
  local got = table.concat(out)
  if got ~= body and not dropped then
    error(("bytes lost or invented: fed %q, read %q"):format(body, got), 0)
  end
end

return run
