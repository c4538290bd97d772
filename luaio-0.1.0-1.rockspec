-- luaio's rockspec: `luarocks make` in a checkout builds the C modules
-- (asyncio.core and the batteries asyncio._ssl, _http, _redis) and the
-- CLI with the Makefile, against Debian's libraries, and installs them
-- with the Lua sources; `luarocks test` runs the busted specs.
rockspec_format = "3.0"
package = "luaio"
version = "0.1.0-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "Python's asyncio for Lua 5.4, on libuv",
  detailed = [[
luaio gives Lua 5.4 the API of Python's asyncio on a libuv event loop:
Tasks on coroutines, gather/wait/TaskGroup, locks and queues, threads,
streams, transports and protocols, TLS on OpenSSL, async files, an
aiohttp-shaped HTTP client and server, a Redis client and a job queue.
It also installs the `luaio` CLI and `luaio-busted`.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  LIBUV = {header = "uv.h", library = "uv"},
  OPENSSL = {header = "openssl/ssl.h", library = "ssl"},
  HTTP_PARSER = {header = "http_parser.h", library = "http_parser"},
  HIREDIS = {header = "hiredis/hiredis.h", library = "hiredis"},
}
build = {
  type = "make",
  build_target = "rock",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    BUILD = "build-rock",
  },
  install_target = "install-lua",
  install_variables = {
    BUILD = "build-rock",
    LUA_CDIR = "$(LIBDIR)",
    LUA_LDIR = "$(LUADIR)",
    BINDIR = "$(BINDIR)",
  },
}
test = {
  type = "command",
  command = "make test-spec BUILD=build-rock",
}
