-- spec/examples_tls_spec.lua: examples/tls_server.lua and tls_fetch.lua,
-- run as a user would (the CLI, subprocesses), with the certificates of
-- spec/fixtures/certs.lua; and their entries in examples/README.md.
local asyncio = require "asyncio"
local aspec = require "asyncio.busted"
local async, await = asyncio.async, asyncio.await

local h = dofile("spec/helpers.lua")
local certs = dofile("spec/fixtures/certs.lua")
local proc = dofile("spec/fixtures/proc.lua")

local PIPE = asyncio.PIPE

local run = async(function(...)
  local argv = {proc.luaio, ...}
  argv[#argv + 1] = {stdout = PIPE, stderr = PIPE}
  local p = await(asyncio.create_subprocess_exec(table.unpack(argv)))
  local out, err = await(p:communicate())
  return out, err, p.returncode
end)

describe("the TLS examples", function()
  it("tls_fetch.lua fetches a page from tls_server.lua",
     aspec.async(function()
    local server = await(asyncio.create_subprocess_exec(proc.luaio,
      "examples/tls_server.lua", certs.path("server.pem"),
      certs.path("server.key"), "0", {stdout = PIPE, stderr = PIPE}))
    local ok, err = pcall(function()
      local line = await(server.stdout:readline())
      local port = assert(line:match(
        "^Serving TLS on https://localhost:(%d+)/ %(Press CTRL%+C to "
        .. "quit%)\n$"), line)
      local url = "https://localhost:" .. port .. "/hello"
      local out, stderr, code = await(run("examples/tls_fetch.lua", url,
                                          certs.path("ca.pem")))
      assert.equal(0, code, stderr)
      assert.same({
        "TLS: TLSv1.3 TLS_AES_256_GCM_SHA384",
        "server: organizationName=luaio, commonName=localhost",
        "status: HTTP/1.1 200 OK",
        "hello over TLSv1.3 (TLS_AES_256_GCM_SHA384), you asked for /hello",
      }, h.example_lines(out))
      -- without the test CA the certificate does not verify
      out, stderr, code = await(run("examples/tls_fetch.lua", url))
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("SSLCertVerificationError: %[SSL: "
                     .. "CERTIFICATE_VERIFY_FAILED%] certificate verify "
                     .. "failed: unable to get local issuer certificate",
                     stderr)
    end)
    server:send_signal("SIGTERM")
    local _, serr = await(server:communicate())
    assert.is_true(ok, tostring(err))
    assert.equal(0, server.returncode, serr)
    -- the server reported the client that gave up on it, and went on
    assert.matches("Error on transport creation for incoming connection",
                   serr)
  end))

  it("are listed in examples/README.md", function()
    h.assert_mapped{{file = "tls_server.lua"}, {file = "tls_fetch.lua"}}
  end)
end)
