--- asyncio.ssl: Python's ssl module in the shape asyncio uses it, on
-- OpenSSL 3 (the C half is asyncio._ssl, bindings/tls/).
--
--   local ssl = require "asyncio.ssl"
--   local ctx = ssl.create_default_context()          -- a client's
--   ctx:load_verify_locations{cafile = "ca.pem"}
--   local reader, writer = await(asyncio.open_connection("example.org",
--     443, {ssl = ctx}))
--
-- Contexts (ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)) have Python's
-- methods and its settings as plain fields (ctx.check_hostname = false,
-- ctx.verify_mode = ssl.CERT_NONE, ctx.minimum_version =
-- ssl.TLSVersion.TLSv1_3). Failures raise ssl.SSLError (an
-- asyncio.OSError) and its subclasses, with Python's messages and
-- fields. The TLS transport itself is asyncio.sslproto.

local C = require "asyncio._ssl"
local check = require "asyncio.check"
local errors = require "asyncio.errors"

local error, pairs, tostring, type = error, pairs, tostring, type

local M = {}

-- Errors ----------------------------------------------------------------

local SSLError = errors.OSError:subclass("SSLError")
M.SSLError = SSLError
M.SSLZeroReturnError = SSLError:subclass("SSLZeroReturnError")
M.SSLWantReadError = SSLError:subclass("SSLWantReadError")
M.SSLWantWriteError = SSLError:subclass("SSLWantWriteError")
M.SSLSyscallError = SSLError:subclass("SSLSyscallError")
M.SSLEOFError = SSLError:subclass("SSLEOFError")
-- also a ValueError, as in Python
M.SSLCertVerificationError = SSLError:subclass("SSLCertVerificationError")
errors.add_base(M.SSLCertVerificationError, errors.ValueError)
M.CertificateError = M.SSLCertVerificationError

C._set_classes{
  SSLError = SSLError,
  SSLZeroReturnError = M.SSLZeroReturnError,
  SSLWantReadError = M.SSLWantReadError,
  SSLWantWriteError = M.SSLWantWriteError,
  SSLSyscallError = M.SSLSyscallError,
  SSLEOFError = M.SSLEOFError,
  SSLCertVerificationError = M.SSLCertVerificationError,
  ValueError = errors.ValueError,
  TypeError = errors.TypeError,
  OSError = errors.OSError,
  FileNotFoundError = errors.FileNotFoundError,
  PermissionError = errors.PermissionError,
  IsADirectoryError = errors.IsADirectoryError,
  NotADirectoryError = errors.NotADirectoryError,
  repr = errors.repr, -- quotes file names in OSError messages
}

-- Constants -------------------------------------------------------------

M.PROTOCOL_TLS = 2
M.PROTOCOL_SSLv23 = 2
M.PROTOCOL_TLS_CLIENT = 16
M.PROTOCOL_TLS_SERVER = 17

M.CERT_NONE, M.CERT_OPTIONAL, M.CERT_REQUIRED = 0, 1, 2
M.VerifyMode = {CERT_NONE = 0, CERT_OPTIONAL = 1, CERT_REQUIRED = 2}

M.TLSVersion = {
  MINIMUM_SUPPORTED = -2, MAXIMUM_SUPPORTED = -1,
  SSLv3 = 0x300, TLSv1 = 0x301, TLSv1_1 = 0x302, TLSv1_2 = 0x303,
  TLSv1_3 = 0x304,
}

M.Options, M.VerifyFlags = {}, {}
for k, v in pairs(C) do
  if type(v) == "number" and k:match("^OP_") then
    M[k], M.Options[k] = v, v
  elseif type(v) == "number" and k:match("^VERIFY_") then
    M[k], M.VerifyFlags[k] = v, v
  end
end
M.OPENSSL_VERSION = C.OPENSSL_VERSION
M.OPENSSL_VERSION_NUMBER = C.OPENSSL_VERSION_NUMBER
M.HAS_SNI, M.HAS_ALPN, M.HAS_ECDH = true, true, true
M.HAS_TLSv1_2, M.HAS_TLSv1_3 = true, true
M.HAS_NEVER_CHECK_COMMON_NAME = true

--- Purpose.SERVER_AUTH (a client's context: it authenticates servers)
-- and Purpose.CLIENT_AUTH (a server's), as Python's _ASN1Objects.
M.Purpose = {
  SERVER_AUTH = {nid = 129, shortname = "serverAuth",
                 longname = "TLS Web Server Authentication",
                 oid = "1.3.6.1.5.5.7.3.1"},
  CLIENT_AUTH = {nid = 130, shortname = "clientAuth",
                 longname = "TLS Web Client Authentication",
                 oid = "1.3.6.1.5.5.7.3.2"},
}
local function check_purpose(purpose, fname)
  if purpose ~= M.Purpose.SERVER_AUTH and purpose ~= M.Purpose.CLIENT_AUTH
  then
    error(errors.TypeError(("%s: purpose must be ssl.Purpose.SERVER_AUTH "
                            .. "or ssl.Purpose.CLIENT_AUTH"):format(fname)),
          3)
  end
end

-- Contexts --------------------------------------------------------------

local methods = C.context_methods
local c_load_verify_locations = methods.load_verify_locations

--- Raises Lua's "bad argument" error for argument n of fname (self is
-- #0) unless it is of type want (or nil, with optional).
local function check_arg(v, n, fname, want, optional)
  if type(v) == want or (optional and v == nil) then return end
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname,
        want, type(v)), 3)
end

local function check_self(ctx, fname)
  if not C.is_context(ctx) then
    error(("calling '%s' on bad self (asyncio.ssl.SSLContext expected, "
           .. "got %s)"):format(fname, type(ctx)), 3)
  end
end

-- Python's keyword arguments naming the CAs to trust; a misspelt one
-- must not leave the system's CA store in use.
local CA_OPTS = check.option_set{"cafile", "capath", "cadata"}

--- ctx:load_verify_locations(cafile) or
-- ctx:load_verify_locations{cafile =, capath =, cadata =} (also
-- positionally: cafile, capath, cadata). cadata is PEM text or DER.
function methods.load_verify_locations(ctx, cafile, capath, cadata)
  local fname = "load_verify_locations"
  check_self(ctx, fname)
  if type(cafile) == "table" then
    check.options(cafile, 2, fname, CA_OPTS)
    local o = cafile
    cafile, capath, cadata = o.cafile, o.capath, o.cadata
  end
  check_arg(cafile, 1, fname, "string", true)
  check_arg(capath, 2, fname, "string", true)
  check_arg(cadata, 3, fname, "string", true)
  c_load_verify_locations(ctx, cafile, capath, cadata)
end

--- ctx:load_default_certs([purpose]): the system's CA store.
function methods.load_default_certs(ctx, purpose)
  check_self(ctx, "load_default_certs")
  check_purpose(purpose or M.Purpose.SERVER_AUTH, "load_default_certs")
  ctx:set_default_verify_paths()
end

--- SSLContext([protocol]) -> a context; PROTOCOL_TLS_CLIENT checks
-- hostnames and requires a certificate, PROTOCOL_TLS_SERVER does not.
function M.SSLContext(protocol)
  return C.SSLContext(protocol or M.PROTOCOL_TLS)
end

--- is_context(v) -> whether v is an SSLContext.
M.is_context = C.is_context

--- create_default_context([purpose [, {cafile =, capath =, cadata =}]])
-- -> Python's secure defaults: for Purpose.SERVER_AUTH (the default) a
-- client context checking the server's certificate and hostname against
-- the system's CA store (or the given ones); for Purpose.CLIENT_AUTH a
-- server context.
function M.create_default_context(purpose, opts)
  local n = 2
  if type(purpose) == "table" and purpose.nid == nil and opts == nil then
    purpose, opts, n = nil, purpose, 1
  end
  opts = check.options(opts, n, "create_default_context", CA_OPTS) or {}
  purpose = purpose or M.Purpose.SERVER_AUTH
  local ctx
  if type(purpose) ~= "table" or purpose.nid == nil then -- not a Purpose
    -- Python's TypeError, with a message that says what was expected
    error(errors.TypeError(("create_default_context: purpose must be "
      .. "ssl.Purpose.SERVER_AUTH or ssl.Purpose.CLIENT_AUTH, got %s")
      :format(check.typename(purpose))), 2)
  elseif purpose == M.Purpose.SERVER_AUTH then
    ctx = C.SSLContext(M.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = M.CERT_REQUIRED
    ctx.check_hostname = true
  elseif purpose == M.Purpose.CLIENT_AUTH then
    ctx = C.SSLContext(M.PROTOCOL_TLS_SERVER)
  else
    error(errors.ValueError(tostring(purpose)), 2)
  end
  ctx.verify_flags = ctx.verify_flags | M.VERIFY_X509_PARTIAL_CHAIN
                     | M.VERIFY_X509_STRICT
  if opts.cafile or opts.capath or opts.cadata then
    ctx:load_verify_locations(opts.cafile, opts.capath, opts.cadata)
  elseif ctx.verify_mode ~= M.CERT_NONE then
    ctx:load_default_certs(purpose)
  end
  return ctx
end

--- The context asyncio makes for `ssl = true` (Python's
-- sslproto._create_transport_context): a default client context, not
-- checking the hostname when none is known.
function M._create_transport_context(server_side, server_hostname)
  if server_side then
    error(errors.ValueError("Server side SSL needs a valid SSLContext"), 3)
  end
  local ctx = M.create_default_context()
  if not server_hostname then ctx.check_hostname = false end
  return ctx
end

--- _test_decode_cert(path) -> the getpeercert() table of a PEM file.
M._test_decode_cert = C._test_decode_cert

-- loop:start_tls and the TLS transport; the engine runs their hot paths
-- in C: SSLProtocol's data_received for the transports of the core
-- (AIO_DATA_FN), its transport's write and is_closing for the stream
-- writer (AIO_LUA_TRANSPORT_VT)
local sslproto = require "asyncio.sslproto"
sslproto._SSLProtocol.__aio_data_received = C._data_received
sslproto._SSLProtocolTransport.__aio_lua_transport = C._transport_write

return M
