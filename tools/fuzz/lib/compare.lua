--- tools/fuzz/lib/compare.lua: what the HTTP fuzz targets share
-- (dofile'd from the repository's root, where make runs them).
local M = {}

--- same(a, b): deep equality of plain values and tables.
function M.same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not M.same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

--- agree(a, b): two runs' errors (nil: none) agree when both failed
-- alike. Not compared: which of two errors comes first when they sit in
-- different layers (the parser's and the decoder's, "decode: ...": a
-- feed that fails returns no events, so the decoder may see a body piece
-- in one run only), and the header and line limits, which the glue
-- checks when a piece is handed over -- at a chunk's end, or only at the
-- next field's ':' (the target's end) when the bytes come whole, after
-- libhttp_parser may have refused a byte further on.
local LIMITS = {HPE_HEADER_OVERFLOW = true, HPE_LINE_TOO_LONG = true}
function M.agree(a, b)
  if a == b then return true end
  if not a or not b then return false end
  return a:find("^decode") ~= nil or b:find("^decode") ~= nil or
    LIMITS[a] or LIMITS[b] or false
end

--- check_failure(events, name, why): raises unless a feed's failure is
-- nil, "HPE_..." name, description.
function M.check_failure(events, name, why)
  if events ~= nil or type(name) ~= "string" or
      not name:find("^HPE_") or type(why) ~= "string" then
    error("bad failure: " .. tostring(name) .. " " .. tostring(why), 0)
  end
end

return M
