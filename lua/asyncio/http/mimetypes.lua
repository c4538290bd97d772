--- asyncio.http.mimetypes: the media type of a file from its name, as
-- Python's mimetypes.guess_type for the common extensions. The server's
-- FileResponse and the client's file bodies (aiohttp guesses both) use it.
--
--   guess_type(name) -> "image/png", or nil for an unknown extension

local M = {}

local TYPES = {html = "text/html", htm = "text/html", txt = "text/plain",
  css = "text/css", js = "text/javascript", mjs = "text/javascript",
  json = "application/json", xml = "application/xml",
  csv = "text/csv", md = "text/markdown", pdf = "application/pdf",
  wasm = "application/wasm", zip = "application/zip",
  gz = "application/gzip", png = "image/png", jpg = "image/jpeg",
  jpeg = "image/jpeg", gif = "image/gif", svg = "image/svg+xml",
  webp = "image/webp", ico = "image/vnd.microsoft.icon",
  woff = "font/woff", woff2 = "font/woff2", mp4 = "video/mp4",
  mp3 = "audio/mpeg"}

function M.guess_type(name)
  local ext = name:match("%.(%w+)$")
  return ext and TYPES[ext:lower()] or nil
end

return M
