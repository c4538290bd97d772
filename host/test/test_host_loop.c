/*
 * test_host_loop.c - luaio embedded in a host that owns its uv_loop_t and
 * its own libuv handles (a repeating timer and a TCP server), while Lua
 * tasks do stream I/O on the same loop: they read the host server's
 * greeting and echo through a server of their own. Closing the luaio host
 * closes only what luaio opened: the host's handles stay active, and once
 * the host closes them uv_loop_close succeeds (nothing of luaio's left).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <uv.h>

#include "check.h"
#include "luaio.h"


static const char greeting[] = "hello from the host\n";
static int ticks, accepted;

static void on_tick(uv_timer_t *t) {
  (void)t;
  ticks++;
}

static void on_client_closed(uv_handle_t *h) {
  free(h);
}

/* The host's server: greets each client and closes it. */
static void on_connection(uv_stream_t *server, int status) {
  uv_tcp_t *c;
  uv_buf_t buf = uv_buf_init((char *)greeting, sizeof greeting - 1);
  if (status != 0)
    return;
  c = malloc(sizeof *c);
  uv_tcp_init(server->loop, c);
  c->data = NULL;
  if (uv_accept(server, (uv_stream_t *)c) == 0) {
    accepted++;
    CHECK(uv_try_write((uv_stream_t *)c, &buf, 1) ==
          (int)(sizeof greeting - 1));
  }
  uv_close((uv_handle_t *)c, on_client_closed);
}

static const char *script =
    "local asyncio = require 'asyncio'\n"
    "local await, async = asyncio.await, asyncio.async\n"
    "local port = ...\n"
    "-- the host's server\n"
    "local r, w = await(asyncio.open_connection('127.0.0.1', port))\n"
    "got = await(r:readline())\n"
    "w:close(); await(w:wait_closed())\n"
    "-- a server of luaio's own on the same loop, and a client\n"
    "local srv = await(asyncio.start_server(async(function(r2, w2)\n"
    "  w2:write(await(r2:readline())); await(w2:drain()); w2:close()\n"
    "end), '127.0.0.1', 0))\n"
    "local p = srv.sockets[1]:getsockname()[2]\n"
    "local r3, w3 = await(asyncio.open_connection('127.0.0.1', p))\n"
    "w3:write('echo\\n')\n"
    "echoed = await(r3:readline())\n"
    "w3:close(); await(w3:wait_closed())\n"
    "-- left open on purpose: closing the host closes them\n"
    "leftover = srv\n"
    "done = true\n";

static const char *global_str(lua_State *L, const char *name) {
  const char *s;
  lua_getglobal(L, name);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s;
}

int main(void) {
  uv_loop_t loop;
  uv_timer_t timer;
  uv_tcp_t server;
  struct sockaddr_in addr;
  int namelen = sizeof addr, i, before;
  luaio_config cfg;
  luaio_host *h;
  lua_State *L;
  char code[64];

  CHECK(uv_loop_init(&loop) == 0);
  uv_timer_init(&loop, &timer);
  timer.data = NULL; /* libuv leaves data unset; luaio's close reads it */
  uv_timer_start(&timer, on_tick, 1, 1);
  uv_tcp_init(&loop, &server);
  server.data = NULL;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  CHECK(uv_tcp_bind(&server, (struct sockaddr *)&addr, 0) == 0);
  CHECK(uv_listen((uv_stream_t *)&server, 8, on_connection) == 0);
  uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &namelen);

  memset(&cfg, 0, sizeof cfg);
  cfg.uv_loop = &loop;
  h = luaio_host_new(&cfg);
  CHECK(h != NULL);
  L = luaio_state(h);
  /* the script runs as a task, with the port as its argument */
  lua_pushstring(L, script);
  lua_setglobal(L, "main_src");
  snprintf(code, sizeof code, "assert(load(main_src))(%d)",
           ntohs(addr.sin_port));
  CHECK(luaio_spawn(h, code, "=main") == LUAIO_OK);

  /* the host's frame loop: luaio steps on the host's loop */
  for (i = 0; i < 2000; i++) {
    lua_getglobal(L, "done");
    if (lua_toboolean(L, -1)) {
      lua_pop(L, 1);
      break;
    }
    lua_pop(L, 1);
    CHECK(luaio_step(h, 5) >= -1);
  }
  CHECK(strcmp(global_str(L, "got") ? global_str(L, "got") : "",
               "hello from the host\n") == 0);
  CHECK(strcmp(global_str(L, "echoed") ? global_str(L, "echoed") : "",
               "echo\n") == 0);
  CHECK(accepted == 1);
  CHECK(ticks > 0); /* the host's timer ran while luaio stepped */

  luaio_host_close(h);
  /* the host's handles are untouched and still work */
  CHECK(uv_is_active((uv_handle_t *)&timer));
  CHECK(!uv_is_closing((uv_handle_t *)&timer));
  CHECK(uv_is_active((uv_handle_t *)&server));
  CHECK(!uv_is_closing((uv_handle_t *)&server));
  before = ticks;
  while (ticks == before)
    uv_run(&loop, UV_RUN_ONCE);
  CHECK(ticks > before);

  uv_close((uv_handle_t *)&timer, NULL);
  uv_close((uv_handle_t *)&server, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* UV_EBUSY here would mean a handle of luaio's was left open */
  CHECK(uv_loop_close(&loop) == 0);
  if (failures) {
    fprintf(stderr, "test_host_loop: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_host_loop: ok\n");
  return 0;
}
