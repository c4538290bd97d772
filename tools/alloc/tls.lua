-- tools/alloc/tls.lua: two TLS engines (asyncio.ssl's SSLObject, the
-- engine under asyncio.sslproto) through memory: the handshake, records
-- cut across feeds (ciphertext kept between calls), records decrypted
-- into a stream reader's buffer, a feed kept whole
-- while reading is paused, close_notify. The server's certificate is
-- made once, with the openssl CLI, in $TMPDIR/luaio-alloc-tls.
local h = dofile("tools/alloc/harness.lua")
local asyncio = require "asyncio"
local ssl = require "asyncio.ssl"

local dir = (os.getenv("TMPDIR") or "/tmp") .. "/luaio-alloc-tls"
local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
local f = io.open(key)
if f then
  f:close()
else -- the key appears last: with it, the certificate is whole
  assert(os.execute("mkdir -p " .. dir .. " && openssl req -x509 -newkey"
    .. " ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " .. key
    .. ".tmp -out " .. cert .. " -days 3650 -subj /CN=localhost"
    .. " >/dev/null 2>&1 && mv " .. key .. ".tmp " .. key))
end

--- feed's and write's error object (the engine returns them), and what
-- feed's sink raised: raised.
local function ok(...)
  local n = select("#", ...)
  local err = n >= 4 and select(4, ...) or nil
  if err then error(err, 0) end
  if n >= 5 then error(select(5, ...), 0) end -- what the sink raised
  return ...
end

local sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
sctx:load_cert_chain(cert, key)
local cctx = ssl.create_default_context()
cctx.check_hostname = false
cctx.verify_mode = ssl.CERT_NONE
local c = cctx:wrap_bio(false, "localhost")
local s = sctx:wrap_bio(true)

-- the handshake, and TLS 1.3's session tickets after it
local _, hello = ok(c:feed(nil))
local _, back = ok(s:feed(hello))
local _, fin = ok(c:feed(back))
local _, tickets = ok(s:feed(fin))
if tickets then ok(c:feed(tickets)) end

-- three records cut into pieces of 7 bytes, then of 5000
local sent = {("a"):rep(20000), ("b"):rep(300), ("c"):rep(17000)}
local cipher = {}
for i, text in ipairs(sent) do
  local out, n, err = c:write(text)
  if err then error(err, 0) end
  h.check(n == #text, "written")
  cipher[i] = out
end
cipher = table.concat(cipher)
local got, at = {}, 1
for _, size in ipairs({7, 7, 5000, 5000}) do
  got[#got + 1] = ok(s:feed(cipher:sub(at, at + size - 1)))
  at = at + size
end
got[#got + 1] = ok(s:feed(cipher:sub(at)))
h.check(table.concat(got) == table.concat(sent), "plaintext")

-- records decrypted into a stream reader's buffer (feed's sink)
local reader = asyncio.StreamReader()
local proto = asyncio.StreamReaderProtocol(reader)
local into, back = c:write(("d"):rep(30000)), 0
for at = 1, #into, 9000 do
  -- a reader that cannot grow leaves the rest to a string
  back = back + #(ok(s:feed(into:sub(at, at + 8999), true, proto)) or "")
end
h.check(tostring(reader) == ("<StreamReader %d bytes>"):format(30000 - back)
        or (back == 30000 and tostring(reader) == "<StreamReader>"),
        "in the reader")

-- a feed kept whole while reading is paused, then read
local later = c:write("later")
h.check(ok(s:feed(later:sub(1, 4), false)) == nil, "paused")
h.check(ok(s:feed(later:sub(5), false)) == nil, "paused")
h.check(ok(s:feed()) == "later", "kept")

-- close_notify both ways
local done, notify = c:shutdown()
h.check(not done and notify, "client's close_notify")
local sdone, answer = s:shutdown(notify)
h.check(sdone and answer, "server's close_notify")
h.check(c:shutdown(answer), "shut down")
