-- spec/ssl_context_spec.lua: asyncio.ssl's contexts, certificates and
-- errors (bindings/tls/context.c, x509.c, errors.c, lua/asyncio/ssl.lua),
-- and the SSLObject engine (sslobj.c) driven by hand: two engines
-- handshaking and exchanging data through memory.
local asyncio = require "asyncio"
local ssl = require "asyncio.ssl"
local iserror = asyncio.iserror

local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local h = dofile("spec/helpers.lua")
local certs = dofile("spec/fixtures/certs.lua")

local server_ctx, client_ctx = certs.server_ctx, certs.client_ctx

--- Runs the handshake of two engines through memory; returns the
-- client's error and the server's (nil when fine).
local function pump(c, s)
  local to_server, cerr, serr
  for _ = 1, 10 do
    local _, out, _, e = c:feed(nil)
    cerr = cerr or e
    to_server = out
    if not to_server then break end
    local _, back, _, e2 = s:feed(to_server)
    serr = serr or e2
    if back then
      local _, out2, _, e3 = c:feed(back)
      cerr = cerr or e3
      if out2 then
        local _, tickets, _, e4 = s:feed(out2)
        serr = serr or e4
        if tickets then -- TLS 1.3's session tickets, after the handshake
          local _, _, _, e5 = c:feed(tickets)
          cerr = cerr or e5
        end
      end
    end
    if cerr or serr or (c:version() and s:version()) then break end
  end
  return cerr, serr
end

describe("asyncio.ssl", function()
  it("is also asyncio.ssl", function()
    assert.equal(ssl, asyncio.ssl)
  end)

  describe("SSLContext", function()
    it("PROTOCOL_TLS_CLIENT checks hostnames and requires a certificate",
       function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      assert.is_true(ctx.check_hostname)
      assert.equal(ssl.CERT_REQUIRED, ctx.verify_mode)
      assert.equal(ssl.PROTOCOL_TLS_CLIENT, ctx.protocol)
      assert.equal(ssl.TLSVersion.TLSv1_2, ctx.minimum_version)
      assert.equal(ssl.TLSVersion.MAXIMUM_SUPPORTED, ctx.maximum_version)
      assert.is_true(ctx.options & ssl.OP_NO_COMPRESSION ~= 0)
      assert.matches("^<SSLContext PROTOCOL_TLS_CLIENT at ", tostring(ctx))
    end)

    it("PROTOCOL_TLS_SERVER does not", function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
      assert.is_false(ctx.check_hostname)
      assert.equal(ssl.CERT_NONE, ctx.verify_mode)
    end)

    it("every context starts with Python's verify_flags, " ..
       "VERIFY_X509_TRUSTED_FIRST", function()
      for _, p in ipairs{ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS_SERVER,
                         ssl.PROTOCOL_TLS} do
        assert.equal(ssl.VERIFY_X509_TRUSTED_FIRST,
                     ssl.SSLContext(p).verify_flags)
      end
      -- create_default_context adds Python 3.13's strict checks to it
      assert.equal(ssl.VERIFY_X509_TRUSTED_FIRST | ssl.VERIFY_X509_STRICT
                   | ssl.VERIFY_X509_PARTIAL_CHAIN,
                   ssl.create_default_context().verify_flags)
    end)

    it("create_default_context: a client's by default, a server's for " ..
       "CLIENT_AUTH, strict X.509 checks", function()
      local c = ssl.create_default_context()
      assert.equal(ssl.PROTOCOL_TLS_CLIENT, c.protocol)
      assert.is_true(c.check_hostname)
      assert.equal(ssl.CERT_REQUIRED, c.verify_mode)
      assert.is_true(c.verify_flags & ssl.VERIFY_X509_STRICT ~= 0)
      assert.is_true(c.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN ~= 0)
      local s = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
      assert.equal(ssl.PROTOCOL_TLS_SERVER, s.protocol)
      assert.equal(ssl.CERT_NONE, s.verify_mode)
      local e = h.raises(asyncio.ValueError, ssl.create_default_context,
                         {nid = 1})
      assert.is_not_nil(e)
      -- not a Purpose at all: TypeError, as Python's, saying what it wants
      e = h.raises(asyncio.TypeError, ssl.create_default_context, "x")
      assert.equal("create_default_context: purpose must be ssl.Purpose."
        .. "SERVER_AUTH or ssl.Purpose.CLIENT_AUTH, got string", e.message)
      -- a misspelt option must not fall back to the system's CAs
      e = h.error_of(ssl.create_default_context, {cafil = "ca.pem"})
      assert.matches("bad argument #1 to 'create_default_context' "
                     .. "%(unknown option 'cafil'%)", e)
      -- cafile/capath/cadata replace the system store
      local one = ssl.create_default_context{cadata = certs.read("ca.pem")}
      assert.same({x509 = 1, crl = 0, x509_ca = 1}, one:cert_store_stats())
    end)

    it("keeps Python's rule between check_hostname and verify_mode",
       function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      local e = h.raises(asyncio.ValueError, function()
        ctx.verify_mode = ssl.CERT_NONE
      end)
      assert.equal("Cannot set verify_mode to CERT_NONE when check_hostname "
                   .. "is enabled.", e.message)
      ctx.check_hostname = false
      ctx.verify_mode = ssl.CERT_NONE
      assert.equal(ssl.CERT_NONE, ctx.verify_mode)
      -- turning hostname checks on requires certificates again
      ctx.check_hostname = true
      assert.equal(ssl.CERT_REQUIRED, ctx.verify_mode)
      ctx.verify_mode = ssl.CERT_OPTIONAL
      assert.equal(ssl.CERT_OPTIONAL, ctx.verify_mode)
      h.raises(asyncio.ValueError, function() ctx.verify_mode = 7 end)
      assert.matches("SSLContext has no field 'verfiy_mode'",
                     h.error_of(function() ctx.verfiy_mode = 1 end))
      -- a value of the wrong type names the field
      assert.matches("bad value for SSLContext field 'verify_mode' "
                     .. "%(integer expected, got string%)",
                     h.error_of(function() ctx.verify_mode = "2" end))
      assert.matches("bad value for SSLContext field 'minimum_version' "
                     .. "%(number has no integer representation%)",
                     h.error_of(function() ctx.minimum_version = 1.5 end))
      assert.matches("bad value for SSLContext field 'options' %(integer "
                     .. "expected, got nil%)",
                     h.error_of(function() ctx.options = nil end))
      -- reading a misspelt field raises too (Python's AttributeError)
      assert.matches("SSLContext has no field 'check_hostnme'",
                     h.error_of(function() return ctx.check_hostnme end))
      assert.matches("read%-only",
                     h.error_of(function() ctx.protocol = 17 end))
    end)

    it("a boolean field takes true or false only", function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      for _, field in ipairs{"check_hostname",
                             "hostname_checks_common_name"} do
        for _, v in ipairs{0, "yes", {}} do
          assert.equal(("bad value for SSLContext field '%s' (boolean "
                        .. "expected, got %s)"):format(field, type(v)),
                       h.error_of(function() ctx[field] = v end)
                         :match("bad value.*"))
        end
        assert.equal("bad value for SSLContext field '" .. field
                     .. "' (boolean expected, got nil)",
                     h.error_of(function() ctx[field] = nil end)
                       :match("bad value.*"))
        -- refused values change nothing
        assert.is_true(ctx[field])
        ctx[field] = false
        assert.is_false(ctx[field])
        ctx[field] = true
        assert.is_true(ctx[field])
      end
    end)

    it("options and verify_flags: a negative options is refused, "
       .. "as Python's", function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      local before = ctx.options
      local e = h.raises(asyncio.ValueError, function() ctx.options = -1 end)
      assert.equal("can't convert negative int to unsigned", e.message)
      assert.equal(before, ctx.options)
      ctx.options = before | ssl.OP_NO_TICKET
      assert.equal(before | ssl.OP_NO_TICKET, ctx.options)
    end)

    it("sets protocol versions, and refuses unknown ones", function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      ctx.minimum_version = ssl.TLSVersion.TLSv1_3
      ctx.maximum_version = ssl.TLSVersion.TLSv1_3
      assert.equal(ssl.TLSVersion.TLSv1_3, ctx.minimum_version)
      assert.equal(ssl.TLSVersion.TLSv1_3, ctx.maximum_version)
      ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
      assert.equal(ssl.TLSVersion.MINIMUM_SUPPORTED, ctx.minimum_version)
      -- the other field's bound is emulated as Python's: the lowest (or
      -- highest) protocol the build has
      ctx.maximum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
      assert.equal(ssl.TLSVersion.TLSv1, ctx.maximum_version)
      ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
      assert.equal(ssl.TLSVersion.MAXIMUM_SUPPORTED, ctx.maximum_version)
      ctx.minimum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
      assert.equal(ssl.TLSVersion.TLSv1_3, ctx.minimum_version)
      local e = h.raises(asyncio.ValueError, function()
        ctx.maximum_version = 0x999
      end)
      assert.equal("Unsupported TLS/SSL version 0x999", e.message)
    end)

    it("load_cert_chain: files, keys that do not match, passwords",
       function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
      ctx:load_cert_chain(certs.path("server_chain.pem"),
                          certs.path("server.key"))
      local e = h.raises(asyncio.FileNotFoundError, ctx.load_cert_chain,
                         ctx, "/nonexistent/cert.pem")
      assert.equal(2, e.errno)
      assert.equal("/nonexistent/cert.pem", e.filename)
      -- Python's OSError message, as asyncio.fs's
      assert.equal("No such file or directory", e.strerror)
      assert.equal("FileNotFoundError: [Errno 2] No such file or directory: "
                   .. "'/nonexistent/cert.pem'", tostring(e))
      e = h.raises(ssl.SSLError, ctx.load_cert_chain, ctx,
                   certs.path("server.pem"), certs.path("client.key"))
      assert.equal("KEY_VALUES_MISMATCH", e.reason)
      assert.equal("[X509: KEY_VALUES_MISMATCH] key values mismatch",
                   e.message)
      -- errno: OpenSSL's reason code, as Python's (it was always 1),
      -- and the same in args
      assert.equal(116, e.errno) -- X509_R_KEY_VALUES_MISMATCH
      assert.same({116, "[X509: KEY_VALUES_MISMATCH] key values mismatch"},
                  {e.args[1], e.args[2]})
      -- an encrypted key: a string, a function, never a prompt
      local enc = certs.path("server_enc.key")
      ctx:load_cert_chain(certs.path("server.pem"), enc, "secret")
      local calls = 0
      ctx:load_cert_chain(certs.path("server.pem"), enc, function()
        calls = calls + 1
        return "secret"
      end)
      assert.equal(1, calls)
      h.raises(ssl.SSLError, ctx.load_cert_chain, ctx,
               certs.path("server.pem"), enc, "wrong")
      h.raises(ssl.SSLError, ctx.load_cert_chain, ctx,
               certs.path("server.pem"), enc)
      local boom = h.error_of(ctx.load_cert_chain, ctx,
        certs.path("server.pem"), enc, function() error("no password") end)
      assert.matches("no password", boom)
      e = h.raises(asyncio.TypeError, ctx.load_cert_chain, ctx,
        certs.path("server.pem"), enc, function() return 42 end)
      assert.equal("password callback must return a string", e.message)
      assert.matches("bad argument #3 to 'load_cert_chain' %(string or "
        .. "function expected%)", h.error_of(function()
          ctx:load_cert_chain(certs.path("server.pem"), enc, true)
        end))
      -- numbers are not taken for strings
      assert.matches("bad argument #3 to 'load_cert_chain' %(string or "
        .. "function expected%)", h.error_of(function()
          ctx:load_cert_chain(certs.path("server.pem"), enc, 42)
        end))
      assert.matches("bad argument #1 to 'load_cert_chain' %(string "
        .. "expected, got number%)", h.error_of(function()
          ctx:load_cert_chain(42)
        end))
      -- a directory: IsADirectoryError naming it, as Python's open
      e = h.raises(asyncio.IsADirectoryError, ctx.load_cert_chain, ctx,
                   "/tmp")
      assert.equal(21, e.errno)
    end)

    it("an OpenSSL reason Python's table does not name has no .reason "
       .. "and only the library in brackets", function()
      local junk = os.tmpname()
      local f = assert(io.open(junk, "w"))
      f:write("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
      f:close()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
      -- OpenSSL's common reason "PEM lib" (code 9 with the common flag)
      local e = h.raises(ssl.SSLError, ctx.load_cert_chain, ctx,
                         certs.path("server.pem"), junk)
      assert.equal("[SSL] PEM lib", e.message)
      assert.is_nil(e.reason)
      assert.equal("SSL", e.library)
      assert.same({524297, 524297}, {e.errno, e.args[1]})
      e = h.raises(ssl.SSLError, ctx.load_verify_locations, ctx, junk)
      assert.equal("[X509] PEM lib", e.message)
      assert.is_nil(e.reason)
      assert.equal("X509", e.library)
      os.remove(junk)
    end)

    it("_test_decode_cert fails as Python's: SSLError with no errno",
       function()
      local e = h.raises(ssl.SSLError, ssl._test_decode_cert,
                         "/nonexistent/cert.pem")
      assert.equal("Can't open file", e.message)
      assert.is_nil(e.errno)
      e = h.raises(ssl.SSLError, ssl._test_decode_cert,
                   certs.path("server.key"))
      assert.equal("Error decoding PEM-encoded file", e.message)
      assert.is_nil(e.errno)
    end)

    it("a path with a NUL byte raises ValueError, as Python's",
       function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
      local ca, pem, key = certs.path("ca.pem"), certs.path("server.pem"),
                           certs.path("server.key")
      local calls = {
        function() ctx:load_verify_locations(ca .. "\0junk") end,
        function() ctx:load_verify_locations{capath = certs.dir() .. "\0x"}
        end,
        function() ctx:load_cert_chain(pem .. "\0junk", key) end,
        function() ctx:load_cert_chain(pem, key .. "\0junk") end,
        function() ssl._test_decode_cert(pem .. "\0junk") end,
      }
      for _, call in ipairs(calls) do
        local e = h.raises(asyncio.ValueError, call)
        assert.equal("embedded null byte", e.message)
      end
      assert.same({x509 = 0, crl = 0, x509_ca = 0}, ctx:cert_store_stats())
    end)

    it("load_verify_locations: cafile, capath, cadata (PEM or DER)",
       function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      ctx:load_verify_locations(certs.path("ca.pem"))
      ctx:load_verify_locations{cadata = certs.read("ca.pem")
                                       .. certs.read("rogue_ca.pem")}
      assert.equal(2, ctx:cert_store_stats().x509_ca)
      ctx:load_verify_locations{capath = certs.dir()}
      local der = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      local p = io.popen("openssl x509 -in " .. certs.path("ca.pem")
                         .. " -outform DER")
      local bytes = p:read("a")
      p:close()
      der:load_verify_locations{cadata = bytes}
      assert.equal(1, der:cert_store_stats().x509)
      local e = h.raises(asyncio.TypeError, ctx.load_verify_locations, ctx,
                         {})
      assert.equal("cafile, capath and cadata cannot be all omitted",
                   e.message)
      e = h.raises(asyncio.FileNotFoundError, ctx.load_verify_locations,
                   ctx, "/nonexistent/ca.pem")
      assert.equal("[Errno 2] No such file or directory: "
                   .. "'/nonexistent/ca.pem'", e.message)
    end)

    -- regressions (TLS audit): load_verify_locations raised SSLError
    -- NO_CERTIFICATE_OR_CRL_FOUND for a directory as cafile, an SSLError
    -- for empty cadata, read text that is not PEM as DER, took DER with
    -- trailing junk, and raised FileNotFoundError for a missing capath.
    -- The classes and messages below are Python's ssl's.
    local function lvl_fails(ctx, cls, ...)
      local e = h.raises(cls, ctx.load_verify_locations, ctx, ...)
      return e.message, e
    end

    it("load_verify_locations: a directory as cafile is an "
       .. "IsADirectoryError", function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      -- as Python's (and load_cert_chain's), naming it
      local msg, e = lvl_fails(ctx, asyncio.IsADirectoryError,
                               {cafile = certs.dir()})
      assert.equal(21, e.errno)
      assert.equal(certs.dir(), e.filename)
      assert.equal("[Errno 21] Is a directory: '" .. certs.dir() .. "'", msg)
      assert.is_false(iserror(e, ssl.SSLError))
      lvl_fails(ctx, asyncio.IsADirectoryError, certs.dir())
    end)

    it("load_verify_locations: cadata errors are Python's", function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      -- empty: a ValueError, not an SSLError
      local msg, e = lvl_fails(ctx, asyncio.ValueError, {cadata = ""})
      assert.equal("Empty certificate data", msg)
      assert.is_false(iserror(e, ssl.SSLError))
      -- text is PEM (Python's str), with or without armour
      local no_start = "no start line: cadata does not contain a certificate"
      local function pem_fails(data)
        assert.equal(no_start, lvl_fails(ctx, ssl.SSLError, {cadata = data}))
      end
      pem_fails("junk")
      assert.equal(0, select(2, lvl_fails(ctx, ssl.SSLError,
                                          {cadata = "junk"})).errno)
      pem_fails(" \n")
      pem_fails(certs.read("ca.key"))
      pem_fails("-----BEGIN CERTIFICATE-----\nAAAA\n"
                .. "-----END CERTIFICATE-----\n")
      -- binary data is DER (Python's bytes)
      local p = io.popen("openssl x509 -in " .. certs.path("ca.pem")
                         .. " -outform DER")
      local der = p:read("a")
      p:close()
      local not_enough =
        "not enough data: cadata does not contain a certificate"
      assert.equal(not_enough,
                   lvl_fails(ctx, ssl.SSLError, {cadata = "\0\1\255"}))
      assert.equal(not_enough,
                   lvl_fails(ctx, ssl.SSLError, {cadata = der:sub(1, 50)}))
      assert.equal(0, ctx:cert_store_stats().x509)
      -- DER followed by what is not a certificate fails, after loading
      -- the certificate before it
      msg, e = lvl_fails(ctx, ssl.SSLError, {cadata = der .. "junk"})
      assert.equal("[ASN1: NOT_ENOUGH_DATA] not enough data", msg)
      assert.equal("ASN1", e.library)
      assert.equal("NOT_ENOUGH_DATA", e.reason)
      assert.equal(1, ctx:cert_store_stats().x509)
    end)

    it("load_verify_locations: a missing capath is taken, and verifies "
       .. "nothing", function()
      -- OpenSSL looks in a capath only when verifying
      local missing = certs.dir() .. "/nodir"
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      ctx:load_verify_locations{capath = missing}
      ctx:load_verify_locations(nil, missing)
      assert.equal(0, ctx:cert_store_stats().x509)
      local cerr = pump(ctx:wrap_bio(false, "localhost"),
                        server_ctx():wrap_bio(true))
      assert.is_true(iserror(cerr, ssl.SSLCertVerificationError))
      assert.equal(20, cerr.verify_code)
      -- an empty one is no directory at all, as in Python
      local msg, e = lvl_fails(ctx, ssl.SSLError, {capath = ""})
      assert.equal("[X509: INVALID_DIRECTORY] invalid directory", msg)
      assert.equal("INVALID_DIRECTORY", e.reason)
    end)

    it("an unknown option of create_default_context or "
       .. "load_verify_locations raises, naming it", function()
      assert.has_error(function()
        ssl.create_default_context{cafile = certs.path("ca.pem"),
                                   ca_file = "x"}
      end, "bad argument #1 to 'create_default_context' (unknown option "
        .. "'ca_file')")
      assert.has_error(function()
        ssl.create_default_context(ssl.Purpose.SERVER_AUTH, {capth = "/"})
      end, "bad argument #2 to 'create_default_context' (unknown option "
        .. "'capth')")
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      assert.has_error(function()
        ctx:load_verify_locations{cafil = certs.path("ca.pem")}
      end, "bad argument #1 to 'load_verify_locations' (unknown option "
        .. "'cafil')")
      assert.equal(0, ctx:cert_store_stats().x509)
      -- every documented option is taken
      ctx:load_verify_locations{cafile = certs.path("ca.pem"),
        capath = certs.dir(), cadata = certs.read("rogue_ca.pem")}
      assert.equal(2, ctx:cert_store_stats().x509_ca)
      local c = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
        {cafile = certs.path("ca.pem"), capath = certs.dir(),
         cadata = certs.read("rogue_ca.pem")})
      assert.equal(2, c:cert_store_stats().x509_ca)
    end)

    it("set_ciphers and set_alpn_protocols check what they get", function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      ctx:set_ciphers("ECDHE+AESGCM")
      local e = h.raises(ssl.SSLError, ctx.set_ciphers, ctx, "NOTHING")
      assert.equal("No cipher can be selected.", e.message)
      assert.is_nil(e.errno) -- Python's SSLError(message) alone
      ctx:set_alpn_protocols{"h2", "http/1.1"}
      e = h.raises(ssl.SSLError, ctx.set_alpn_protocols, ctx, {""})
      assert.equal("ALPN protocols must be 1 to 255 in length", e.message)
      assert.is_nil(e.errno)
      assert.matches("list of strings expected",
                     h.error_of(ctx.set_alpn_protocols, ctx, {1}))
    end)

    it("load_default_certs loads the system's store", function()
      local ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
      ctx:load_default_certs()
      ctx:load_default_certs(ssl.Purpose.SERVER_AUTH)
      h.raises(asyncio.TypeError, ctx.load_default_certs, ctx, "server")
    end)
  end)

  describe("certificates", function()
    it("decode as Python's getpeercert() dict", function()
      local cert = ssl._test_decode_cert(certs.path("server.pem"))
      assert.same({{{"organizationName", "luaio"}},
                   {{"commonName", "localhost"}}}, cert.subject)
      assert.same({{{"commonName", "luaio test CA"}}}, cert.issuer)
      assert.equal(3, cert.version)
      assert.matches("^%x+$", cert.serialNumber)
      assert.equal(cert.serialNumber:upper(), cert.serialNumber)
      assert.matches("GMT$", cert.notBefore)
      assert.same({{"DNS", "localhost"}, {"IP Address", "127.0.0.1"},
                   {"IP Address", "0:0:0:0:0:0:0:1"}}, cert.subjectAltName)
      assert.same({"http://ocsp.example/"}, cert.OCSP)
      assert.same({"http://ca.example/ca.pem"}, cert.caIssuers)
      assert.same({"http://crl.example/ca.crl"}, cert.crlDistributionPoints)
      local expired = ssl._test_decode_cert(certs.path("expired.pem"))
      assert.equal("Jan  1 00:00:00 2020 GMT", expired.notBefore)
      assert.equal("Feb  1 00:00:00 2020 GMT", expired.notAfter)
      local ca = ssl._test_decode_cert(certs.path("ca.pem"))
      assert.is_nil(ca.subjectAltName)
      assert.is_nil(ca.OCSP)
      assert.is_nil(ca.crlDistributionPoints)
    end)

    it("decode exactly as Python's ssl does", function()
      local cjson = require "cjson"
      for _, name in ipairs{"server.pem", "client.pem", "ca.pem",
                            "expired.pem"} do
        local path = certs.path(name)
        local p = io.popen("python3 -c 'import json, ssl, sys; print(json."
          .. "dumps(ssl._ssl._test_decode_cert(sys.argv[1])))' " .. path)
        local python = cjson.decode(p:read("a"))
        p:close()
        assert.same(python, ssl._test_decode_cert(path), name)
      end
    end)
  end)

  describe("SSLObject, two engines through memory", function()
    it("handshake, data both ways, close_notify", function()
      local c = client_ctx():wrap_bio(false, "localhost")
      local s = server_ctx():wrap_bio(true)
      assert.is_nil(c:version())
      assert.is_nil(c:cipher())
      h.raises(asyncio.ValueError, c.getpeercert, c)
      assert.is_nil(pump(c, s))
      assert.equal("TLSv1.3", c:version())
      assert.equal("TLSv1.3", s:version())
      assert.equal(c:cipher().name, s:cipher().name)
      assert.equal("localhost", c.server_hostname)
      assert.is_true(s.server_side)
      assert.is_nil(s:getpeercert())
      assert.is_string(c:getpeercert(true))
      local der = io.popen("openssl x509 -outform DER -in "
                           .. certs.path("server.pem"))
      assert.equal(der:read("a"), c:getpeercert(true))
      der:close()
      -- one write of 100 kB is one string of ciphertext, and one feed
      -- gives all of it back as one string
      local out, n = c:write(("a"):rep(100000))
      assert.equal(100000, n)
      local plain, back, ev = s:feed(out)
      assert.equal(("a"):rep(100000), plain)
      assert.equal(0, ev)
      assert.is_nil(back)
      -- a record cut in two: nothing, then everything
      out = s:write("split record")
      assert.is_nil((c:feed(out:sub(1, 10))))
      assert.equal("split record", (c:feed(out:sub(11))))
      -- close_notify: the server sees EOF (event 2), answers, done
      local done, notify = c:shutdown()
      assert.is_false(done)
      local p2, _, ev2 = s:feed(notify)
      assert.is_nil(p2)
      assert.equal(2, ev2)
      local sdone, answer = s:shutdown()
      assert.is_true(sdone)
      assert.is_true((c:shutdown(answer)))
    end)

    it("write(data, transport) hands the ciphertext to a core transport",
       aspec.async(function()
      local c = client_ctx():wrap_bio(false, "localhost")
      local s = server_ctx():wrap_bio(true)
      pump(c, s)
      local loop = asyncio.get_running_loop()
      local received, lost = loop:create_future(), loop:create_future()
      local srv = await(asyncio.start_server(async(function(r, w)
        received:set_result(await(r:read()))
        w:close()
      end), "127.0.0.1", 0))
      local t = await(loop:create_connection(function()
        return {connection_lost = function() lost:set_result(true) end}
      end, "127.0.0.1", srv.sockets[1].port))
      -- a core transport: no string comes back, the bytes went out
      local out, n, err = c:write(("b"):rep(70000), t)
      assert.is_nil(out)
      assert.equal(70000, n)
      assert.is_nil(err)
      -- a transport written in Lua (a table): the string comes back
      local out2, n2 = c:write("tail", {write = error})
      assert.equal(4, n2)
      t:write(out2)
      t:write_eof()
      -- what the transport raises, write raises; its ciphertext is not
      -- kept to come back with the next write's: 4 bytes of plaintext
      -- make one record, as long as tail's
      h.raises(asyncio.RuntimeError, c.write, c, "late", t)
      assert.equal(#out2, #c:write("next", {}))
      local got = await(asyncio.wait_for(received, 10))
      assert.equal(("b"):rep(70000) .. "tail", (s:feed(got)))
      t:close()
      srv:close()
      await(srv:wait_closed())
      assert.is_true(await(asyncio.wait_for(lost, 10)))
    end))

    it("paused reading keeps the ciphertext until asked", function()
      local c = client_ctx():wrap_bio(false, "localhost")
      local s = server_ctx():wrap_bio(true)
      pump(c, s)
      local out = c:write("later")
      local plain = s:feed(out, false)
      assert.is_nil(plain)
      assert.equal(#out, s:pending_in())
      assert.equal("later", (s:feed()))
      assert.equal(0, s:pending_in())
    end)

    it("ciphertext cut anywhere: every byte once, in order", function()
      local c = client_ctx():wrap_bio(false, "localhost")
      local s = server_ctx():wrap_bio(true)
      pump(c, s)
      -- 40 records of distinct bytes, fed in pieces that end inside a
      -- record's header, inside its body and on its boundary
      local parts = {}
      for i = 1, 40 do
        parts[i] = string.format("%05d", i):rep(1000 + 37 * i)
      end
      local want = table.concat(parts)
      local cipher = {}
      for i = 1, #parts do cipher[i] = (c:write(parts[i])) end
      cipher = table.concat(cipher)
      local sizes, got, at, feeds = {1, 2, 5, 4000, 16401, 3, 70000}, {}, 1, 0
      while at <= #cipher do
        local n = sizes[feeds % #sizes + 1]
        local plain, back, ev, err = s:feed(cipher:sub(at, at + n - 1))
        assert.is_nil(err)
        assert.is_nil(back)
        assert.equal(0, ev)
        got[#got + 1] = plain
        at, feeds = at + n, feeds + 1
        assert.is_true(s:pending_in() < 16384 + 5 + 256)
      end
      assert.equal(0, s:pending_in())
      assert.equal(#want, #table.concat(got))
      assert.is_true(want == table.concat(got))
      -- pieces fed with reading paused are kept whole, then read
      local out = c:write("after")
      assert.is_nil((s:feed(out:sub(1, 3), false)))
      assert.equal(3, s:pending_in())
      assert.is_nil((s:feed(out:sub(4), false)))
      assert.equal(#out, s:pending_in())
      assert.equal("after", (s:feed()))
    end)

    it("feed into a stream reader's protocol: the plaintext lands in its " ..
       "reader, none comes back", function()
      local c = client_ctx():wrap_bio(false, "localhost")
      local s = server_ctx():wrap_bio(true)
      pump(c, s)
      local reader = asyncio.StreamReader()
      local proto = asyncio.StreamReaderProtocol(reader)
      local parts = {}
      for i = 1, 12 do parts[i] = string.format("%03d", i):rep(700 * i) end
      local want = table.concat(parts)
      local cipher = {}
      for i = 1, #parts do cipher[i] = (c:write(parts[i])) end
      cipher = table.concat(cipher)
      -- pieces ending inside headers, bodies and on boundaries
      local sizes, at, feeds = {3, 9000, 1, 20000, 77}, 1, 0
      while at <= #cipher do
        local n = sizes[feeds % #sizes + 1]
        local plain, back, ev, err, app_err =
          s:feed(cipher:sub(at, at + n - 1), true, proto)
        assert.is_nil(plain)
        assert.is_nil(back)
        assert.equal(0, ev)
        assert.is_falsy(err)
        assert.is_nil(app_err)
        at, feeds = at + n, feeds + 1
      end
      -- any other sink (a Lua protocol) gets a string, as with none
      assert.equal("as ever", (s:feed((c:write("as ever")), true, {})))
      reader:feed_eof()
      local got = asyncio.run(asyncio.async(function()
        return asyncio.await(reader:read())
      end)())
      assert.equal(#want, #got)
      assert.is_true(want == got)
    end)

    local failures = {
      {"an unknown CA", "rogue", "localhost", 20,
       "unable to get local issuer certificate"},
      {"another host's certificate", "wronghost", "localhost", 62,
       "Hostname mismatch, certificate is not valid for 'localhost'."},
      {"an expired certificate", "expired", "localhost", 10,
       "certificate has expired"},
      {"a wrong address", "server", "10.0.0.1", 64,
       "IP address mismatch, certificate is not valid for '10.0.0.1'."},
    }
    for _, case in ipairs(failures) do
      it("fails verification of " .. case[1] .. " (" .. case[4] .. ")",
         function()
        local sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx:load_cert_chain(certs.path(case[2] .. ".pem"),
                             certs.path(case[2] .. ".key"))
        local c = client_ctx():wrap_bio(false, case[3])
        local cerr, serr = pump(c, sctx:wrap_bio(true))
        assert.is_true(iserror(cerr, ssl.SSLCertVerificationError))
        assert.equal(case[4], cerr.verify_code)
        assert.equal(case[5], cerr.verify_message)
        assert.equal(1, cerr.errno)
        assert.equal("SSLCertVerificationError: [SSL: "
                     .. "CERTIFICATE_VERIFY_FAILED] certificate verify "
                     .. "failed: " .. case[5], tostring(cerr))
        -- the server gets the client's alert
        assert.is_true(iserror(serr, ssl.SSLError))
        assert.is_false(iserror(serr, ssl.SSLCertVerificationError))
      end)
    end

    it("without hostname checks, verifies the chain only", function()
      local ctx = client_ctx()
      ctx.check_hostname = false
      local sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
      sctx:load_cert_chain(certs.path("wronghost.pem"),
                           certs.path("wronghost.key"))
      local c = ctx:wrap_bio(false, "localhost")
      assert.is_nil(pump(c, sctx:wrap_bio(true)))
      ctx.verify_mode = ssl.CERT_NONE
      c = ctx:wrap_bio(false)
      local s = sctx:wrap_bio(true)
      assert.is_nil(pump(c, s))
      -- an unverified certificate gives an empty dict, as in Python
      assert.same({}, c:getpeercert())
    end)

    it("hostname_checks_common_name: a certificate naming its host in "
       .. "the CN only", function()
      local sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
      sctx:load_cert_chain(certs.path("nosan.pem"), certs.path("nosan.key"))
      local ctx = client_ctx()
      assert.is_true(ctx.hostname_checks_common_name) -- Python's default
      assert.is_nil(pump(ctx:wrap_bio(false, "localhost"),
                         sctx:wrap_bio(true)))
      ctx.hostname_checks_common_name = false
      assert.is_false(ctx.hostname_checks_common_name)
      local cerr = pump(ctx:wrap_bio(false, "localhost"), sctx:wrap_bio(true))
      assert.is_true(iserror(cerr, ssl.SSLCertVerificationError))
      assert.equal(62, cerr.verify_code)
      ctx.hostname_checks_common_name = true
      assert.is_nil(pump(ctx:wrap_bio(false, "localhost"),
                         sctx:wrap_bio(true)))
    end)

    it("wrap_bio checks the sides and the hostname as Python does",
       function()
      local c, s = client_ctx(), server_ctx()
      local function msg(...) return h.raises(asyncio.ValueError, ...)
        .message end
      assert.equal("check_hostname requires server_hostname",
                   msg(c.wrap_bio, c, false))
      assert.equal("server_hostname can only be specified in client mode",
                   msg(s.wrap_bio, s, true, "x"))
      -- a context of the other side: ssl.SSLError, errno 0
      local function ssl_error(...)
        local e = h.raises(ssl.SSLError, ...)
        assert.equal(0, e.errno)
        return e.message
      end
      assert.equal("Cannot create a server socket with a "
                   .. "PROTOCOL_TLS_CLIENT context",
                   ssl_error(c.wrap_bio, c, true))
      assert.equal("Cannot create a client socket with a "
                   .. "PROTOCOL_TLS_SERVER context",
                   ssl_error(s.wrap_bio, s, false))
      assert.equal("server_hostname cannot be an empty string or start "
                   .. "with a leading dot.", msg(c.wrap_bio, c, false, ".x"))
    end)

    it("ALPN: the server's first choice among the client's", function()
      local cctx, sctx = client_ctx(), server_ctx()
      cctx:set_alpn_protocols{"spam", "http/1.1", "h2"}
      sctx:set_alpn_protocols{"h2", "http/1.1"}
      local c, s = cctx:wrap_bio(false, "localhost"), sctx:wrap_bio(true)
      pump(c, s)
      assert.equal("h2", c:selected_alpn_protocol())
      assert.equal("h2", s:selected_alpn_protocol())
      sctx:set_alpn_protocols{"imap"}
      c, s = cctx:wrap_bio(false, "localhost"), sctx:wrap_bio(true)
      assert.is_nil(pump(c, s))
      assert.is_nil(c:selected_alpn_protocol())
    end)

    it("a garbage peer is an SSLError, not a crash", function()
      local s = server_ctx():wrap_bio(true)
      local _, _, _, err = s:feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.is_true(iserror(err, ssl.SSLError))
      assert.is_true(iserror(err, asyncio.OSError))
      assert.equal("SSL", err.library)
      assert.is_string(err.reason)
    end)
  end)
end)
