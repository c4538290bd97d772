/*
 * server.c - asyncio's Server: listening TCP and Unix sockets whose
 * accepted connections become transports (transport.c) with the
 * protocol a factory makes (loop:create_server, create_unix_server; the
 * streams' start_server gives the stream protocol's factory). The Lua
 * facade is lua/asyncio/transports.lua.
 *
 * The server userdata is anchored while it serves (the loop keeps it,
 * as asyncio's does). Each listener is an I/O object of the loop; its
 * uv callback accepts into a C queue that dispatch hands to Lua. What
 * the server shares with its connections, which may outlive it, is the
 * counted aio_srvcore: it tracks the live ones for wait_closed (Python
 * 3.12+) and close_clients / abort_clients (3.13).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport.h"

typedef aio_stream stream;

/* ------------------------------------------------------------------ */
/* Servers                                                             */

/* What a server shares with the connections it accepted, which may
 * outlive its userdata: counted references. Its address is the key of
 * the wait_closed() futures. */
typedef struct aio_srvcore srvcore;
struct aio_srvcore {
  int refs;
  int active;          /* accepted connections not yet lost */
  aio_transport *clients; /* those connections */
  unsigned char closed;
};

static void srvcore_release(srvcore *c) {
  if (--c->refs == 0)
    free(c);
}

/* A connection's connection_lost was called (or it was collected). */
void aio_srvcore_detach(lua_State *L, aio_srvcore *c, aio_transport *t) {
  aio_transport_unlink_client(&c->clients, t);
  c->active--;
  if (c->closed && c->active == 0 && L)
    aio_waiters_wake(L, c);
  srvcore_release(c);
}

typedef struct aio_server aio_server;

/* One listening handle; accepted connections wait in `accepted` (C only)
 * until dispatch gives them to Lua. */
typedef struct listener {
  aio_io io;
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  aio_server *srv;     /* NULL once the server let it go */
  stream *accepted, **tail; /* not yet given to Lua (next_accepted) */
} listener;

struct aio_server {
  aio_loop *loop;
  srvcore *core;
  listener **ls;
  int nls;
  int backlog;
  unsigned char kind, serving, closed, unlink_path;
  dev_t dev;
  ino_t ino;
  int anchor;          /* aio_anchor's while it serves, else LUA_NOREF */
  char forever_key;    /* address: key of serve_forever()'s future */
};

enum {
  S_UV_CB = 1, S_UV_LOOP, S_UV_PATH, S_UV_COUNT = S_UV_PATH
};

enum { EV_ACCEPT = 1 };

static void on_listener_closed(uv_handle_t *h) {
  listener *l = h->data;
  stream *s, *next;
  for (s = l->accepted; s; s = next) { /* never handed to Lua */
    next = s->next_accepted;
    aio_stream_abort(s);
  }
  aio_io_release(&l->io);
}

static void listener_close_hook(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_listener_closed);
}

static void server_close(lua_State *L, aio_server *srv);

static void listener_shut(lua_State *L, aio_io *io) {
  listener *l = (listener *)io;
  if (l->srv)
    server_close(L, l->srv);
  listener_close_hook(&l->u.h);
}

static void on_connection(uv_stream_t *h, int status) {
  listener *l = h->data;
  aio_loop *loop = l->io.loop;
  stream *s;
  if (status < 0 || loop == NULL || l->srv == NULL)
    return; /* asyncio logs accept errors and goes on */
  s = aio_stream_alloc(loop, l->srv->kind);
  if (s == NULL) {
    /* out of memory: drop this connection (the peer sees it closed);
     * left pending, libuv would stop accepting altogether */
    if (h->accepted_fd >= 0) {
      close(h->accepted_fd);
      h->accepted_fd = -1;
    }
    return;
  }
  if (uv_accept(h, &s->u.s) != 0) {
    aio_stream_abort(s);
    return;
  }
  *l->tail = s;
  l->tail = &s->next_accepted;
  aio_io_notify(&l->io, EV_ACCEPT);
}

/* [transport, factory]: the protocol factory() makes for a new
 * connection goes in the transport's protocol slot. */
static int l_make_protocol(lua_State *L) {
  lua_call(L, 0, 1);
  lua_setiuservalue(L, 1, T_UV_PROTO);
  return 0;
}

static void listener_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  listener *l = (listener *)io;
  aio_server *srv = l->srv;
  (void)ev;
  while (l->accepted) {
    stream *s = l->accepted;
    aio_transport *t;
    int top = lua_gettop(L);
    l->accepted = s->next_accepted;
    if (l->accepted == NULL)
      l->tail = &l->accepted;
    if (srv == NULL || srv->closed) {
      aio_stream_abort(s);
      continue;
    }
    /* the server userdata is anchored while it serves */
    t = aio_transport_push(L, s, 0, 0); /* [t] */
    lua_pushcfunction(L, l_make_protocol);
    lua_pushvalue(L, top + 1);
    aio_anchored(L, srv->anchor);
    lua_getiuservalue(L, -1, S_UV_CB);
    lua_replace(L, -2);
    if (aio_pcall(L, 2) != LUA_OK) { /* as asyncio, the server goes on */
      aio_report_error(L, srv->loop, "Error on transport creation for "
                       "incoming connection", -1, "transport", top + 1);
      aio_transport_abort(L, t);
      lua_settop(L, top);
      continue;
    }
    lua_getiuservalue(L, top + 1, T_UV_PROTO); /* [t, protocol] */
    aio_transport_set_server(t, srv->core);
    aio_transport_link_client(&srv->core->clients, t);
    srv->core->refs++;
    srv->core->active++;
    aio_transport_start(L, top + 1, top + 2, 0);
    lua_settop(L, top);
  }
}

static aio_server *check_server(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, AIO_SERVER_MT);
}

static void unlink_socket_path(lua_State *L, aio_server *srv, int sidx) {
  struct stat st;
  const char *path;
  if (!srv->unlink_path)
    return;
  srv->unlink_path = 0;
  lua_getiuservalue(L, sidx, S_UV_PATH);
  path = lua_tostring(L, -1);
  if (path && stat(path, &st) == 0 && st.st_dev == srv->dev &&
      st.st_ino == srv->ino)
    unlink(path);
  lua_pop(L, 1);
}

/* Stops listening; the server stays usable for wait_closed. Callable
 * from loop close (the userdata may not be on the stack). */
static void server_close(lua_State *L, aio_server *srv) {
  int i;
  if (srv->closed)
    return;
  srv->closed = 1;
  srv->serving = 0;
  srv->core->closed = 1;
  for (i = 0; i < srv->nls; i++) {
    listener *l = srv->ls[i];
    l->srv = NULL;
    listener_close_hook(&l->u.h);
  }
  srv->nls = 0; /* their close callbacks free them */
  /* serve_forever() ends */
  if (aio_waiter_take(L, &srv->forever_key)) {
    aio_future *f = lua_touserdata(L, -1);
    if (f->state == AIO_PENDING && !f->loop->closed) {
      lua_pushnil(L);
      aio_future_cancel(L, -2);
    }
    lua_pop(L, 1);
  }
  /* the anchor: pushes the userdata (for the socket path) and drops it */
  if (aio_anchored(L, srv->anchor) != LUA_TNIL) {
    aio_unanchor(L, &srv->anchor);
    unlink_socket_path(L, srv, lua_gettop(L));
  }
  lua_pop(L, 1);
  if (srv->core->active == 0)
    aio_waiters_wake(L, srv->core);
}

static int l_server_close(lua_State *L) {
  server_close(L, check_server(L, 1));
  return 0;
}

/* close_clients() / abort_clients() (Python 3.13): closes (aborts) the
 * connections the server accepted that are still open, so that
 * wait_closed() and serve_forever() can end. */
static int server_clients(lua_State *L, int abort) {
  aio_server *srv = check_server(L, 1);
  aio_transport *t;
  for (t = srv->core->clients; t; t = aio_transport_next_client(t)) {
    if (abort)
      aio_transport_abort(L, t);
    else
      aio_transport_close(L, t);
  }
  return 0;
}

static int l_server_close_clients(lua_State *L) {
  return server_clients(L, 0);
}

static int l_server_abort_clients(lua_State *L) {
  return server_clients(L, 1);
}

static int l_server_is_serving(lua_State *L) {
  lua_pushboolean(L, check_server(L, 1)->serving);
  return 1;
}

static int l_server_get_loop(lua_State *L) {
  check_server(L, 1);
  lua_getiuservalue(L, 1, S_UV_LOOP);
  return 1;
}

/* Starts accepting (start_server does it; a server made with
 * start_serving = false starts here). */
static int server_start(lua_State *L, aio_server *srv) {
  int i, r;
  if (srv->serving || srv->closed)
    return 0;
  for (i = 0; i < srv->nls; i++) {
    r = uv_listen(&srv->ls[i]->u.s, srv->backlog, on_connection);
    if (r != 0) {
      server_close(L, srv);
      return aio_raise_uv(L, r, "listen");
    }
  }
  srv->serving = 1;
  return 0;
}

/* start_serving() starts accepting at once and returns a Coroutine
 * object that, awaited, gives the loop one turn (Python's is a coroutine
 * function: `await server.start_serving()`); called alone it still
 * starts, as luaio's callers did before it could be awaited. */
static int l_server_start_serving(lua_State *L) {
  aio_server *srv = check_server(L, 1);
  lua_settop(L, 1);
  server_start(L, srv);
  lua_settop(L, 0);
  lua_pushinteger(L, 0); /* sleep(0) */
  return aio_ccoro_method(L, 1, aio_sleep_body);
}

/* wait_closed(): once the server is closed and the last accepted
 * connection closed, in either order (Python 3.12.1+): an open server
 * makes it wait too. */
static int server_wait_closed_k(lua_State *L, int status, lua_KContext ctx) {
  aio_server *srv = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  aio_waiters_resumed(L, srv->core, 2);
  return 0;
}

static int server_wait_closed_body(lua_State *L) {
  aio_server *srv = check_server(L, 1);
  aio_task *t;
  lua_settop(L, 1);
  if (srv->closed && srv->core->active == 0)
    return 0;
  t = aio_check_await(L, "wait_closed");
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, srv->core, 0, server_wait_closed_k);
}

static int l_server_wait_closed(lua_State *L) {
  check_server(L, 1);
  return aio_ccoro_method(L, 1, server_wait_closed_body);
}

/* serve_forever(): serves until cancelled; then closes the server and
 * waits for it as asyncio does, and raises the cancellation. close()
 * from elsewhere ends it with CancelledError too. */
static int future_result(lua_State *L) {
  return aio_future_push_result(L, 1);
}

/* [server, fut, err, waiter] (+ a thrown error) */
static int serve_forever_k2(lua_State *L, int status, lua_KContext ctx) {
  aio_server *srv = lua_touserdata(L, 1);
  int threw = aio_resume_take_throw(L, aio_current_task_of(L));
  (void)status;
  (void)ctx;
  aio_waiters_remove(L, srv->core, 4);
  if (!threw)
    lua_settop(L, 3);
  return lua_error(L);
}

/* [server, fut] (+ a thrown error) */
static int serve_forever_k(lua_State *L, int status, lua_KContext ctx) {
  aio_server *srv = lua_touserdata(L, 1);
  aio_task *t = aio_current_task_of(L);
  (void)status;
  (void)ctx;
  if (!aio_resume_take_throw(L, t)) {
    lua_settop(L, 2);
    if (((aio_future *)lua_touserdata(L, 2))->state != AIO_CANCELLED)
      return 0;
    lua_pushcfunction(L, future_result);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) /* leaves the CancelledError */
      return 0;
  }
  lua_settop(L, 3); /* [server, fut, err] */
  aio_waiter_drop(L, &srv->forever_key);
  server_close(L, srv);
  if (srv->core->active == 0)
    return lua_error(L);
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, srv->core, 0, serve_forever_k2);
}

static int serve_forever_body(lua_State *L) {
  aio_server *srv = check_server(L, 1);
  aio_task *t;
  lua_settop(L, 1);
  if (srv->closed)
    return aio_raisef(L, AIO_E_RUNTIME, "server is closed");
  if (aio_waiter_get(L, &srv->forever_key) != LUA_TNIL)
    return aio_raisef(L, AIO_E_RUNTIME, "server is already being awaited "
                      "on serve_forever()");
  lua_settop(L, 1);
  t = aio_check_await(L, "serve_forever");
  server_start(L, srv);
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &srv->forever_key, 0, serve_forever_k);
}

static int l_server_serve_forever(lua_State *L) {
  check_server(L, 1);
  return aio_ccoro_method(L, 1, serve_forever_body);
}

/* __close: close(), then (inside a task) wait_closed(), as `async with
 * server:`. */
static int l_server__close(lua_State *L) {
  aio_server *srv = check_server(L, 1);
  aio_task *t = aio_current_task_of(L);
  lua_settop(L, 1);
  server_close(L, srv);
  if (t == NULL || srv->core->active == 0 || !lua_isyieldable(L))
    return 0;
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, srv->core, 0, server_wait_closed_k);
}

/* The socket list (Python's server.sockets): one table per listener,
 * {family =, host =, port =} or {family =, path =}, with getsockname(). */
static int l_sockinfo_getsockname(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getfield(L, 1, "path") != LUA_TNIL)
    return 1;
  lua_createtable(L, 2, 0);
  lua_getfield(L, 1, "host");
  lua_rawseti(L, -2, 1);
  lua_getfield(L, 1, "port");
  lua_rawseti(L, -2, 2);
  return 1;
}

static void push_sockets(lua_State *L, aio_server *srv, int sidx) {
  int i;
  lua_createtable(L, srv->nls, 0);
  if (srv->closed)
    return;
  for (i = 0; i < srv->nls; i++) {
    listener *l = srv->ls[i];
    struct sockaddr_storage ss;
    int n = sizeof ss;
    lua_createtable(L, 0, 4);
    if (srv->kind == AIO_SK_TCP) {
      if (uv_tcp_getsockname(&l->u.tcp, (struct sockaddr *)&ss, &n) == 0) {
        lua_pushinteger(L, ss.ss_family);
        lua_setfield(L, -2, "family");
        aio_push_sockaddr(L, (struct sockaddr *)&ss);
        lua_rawgeti(L, -1, 1);
        lua_setfield(L, -3, "host");
        lua_rawgeti(L, -1, 2);
        lua_setfield(L, -3, "port");
        lua_pop(L, 1);
      }
    } else {
      lua_pushinteger(L, AF_UNIX);
      lua_setfield(L, -2, "family");
      lua_getiuservalue(L, sidx, S_UV_PATH);
      lua_setfield(L, -2, "path");
    }
    lua_pushcfunction(L, l_sockinfo_getsockname);
    lua_setfield(L, -2, "getsockname");
    lua_rawseti(L, -2, i + 1);
  }
}

/* Fields (server.sockets) after methods. */
static int l_server__index(lua_State *L) {
  aio_server *srv = check_server(L, 1);
  const char *key;
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1;
  key = lua_tostring(L, 2);
  if (key && strcmp(key, "sockets") == 0) {
    push_sockets(L, srv, 1);
    return 1;
  }
  return 0;
}

/* Pushes "<socket host:port>, <socket path>, ..." for the server's
 * sockets. */
static void push_sockets_repr(lua_State *L, aio_server *srv) {
  int i, n;
  push_sockets(L, srv, 1);
  n = (int)lua_rawlen(L, -1);
  luaL_checkstack(L, n + 4, NULL);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -i, i); /* the table, below the i - 1 pieces */
    if (lua_getfield(L, -1, "path") == LUA_TSTRING)
      lua_pushfstring(L, "%s<socket %s>", i > 1 ? ", " : "",
                      lua_tostring(L, -1));
    else {
      lua_getfield(L, -2, "host");
      lua_getfield(L, -3, "port");
      lua_pushfstring(L, "%s<socket %s:%s>", i > 1 ? ", " : "",
                      lua_tostring(L, -2), lua_tostring(L, -1));
      lua_replace(L, -3);
      lua_pop(L, 1);
    }
    lua_replace(L, -3); /* over the socket */
    lua_pop(L, 1);
  }
  lua_concat(L, n);
  lua_remove(L, -2);
}

static int l_server__tostring(lua_State *L) {
  aio_server *srv = check_server(L, 1);
  push_sockets_repr(L, srv);
  lua_pushfstring(L, "<Server sockets=(%s)>", lua_tostring(L, -1));
  return 1;
}

/* A server is anchored until closed: only one whose creation failed
 * midway is still open here. */
static int l_server__gc(lua_State *L) {
  aio_server *srv = lua_touserdata(L, 1);
  if (srv->ls == NULL)
    return 0;
  server_close(L, srv);
  if (srv->core->refs == 1)
    aio_waiter_drop(L, srv->core);
  srvcore_release(srv->core);
  free(srv->ls);
  srv->ls = NULL;
  return 0;
}

/* Pushes a new server userdata for n listeners of kind `kind`. */
static aio_server *server_new(lua_State *L, aio_loop *loop, int kind,
                              int cbidx, int oidx, int n) {
  aio_server *srv = lua_newuserdatauv(L, sizeof *srv, S_UV_COUNT);
  memset(srv, 0, sizeof *srv);
  srv->anchor = LUA_NOREF;
  srv->loop = loop;
  srv->kind = (unsigned char)kind;
  srv->backlog = 100;
  if (lua_type(L, oidx) == LUA_TTABLE) {
    if (lua_getfield(L, oidx, "backlog") != LUA_TNIL)
      srv->backlog = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  srv->core = calloc(1, sizeof *srv->core);
  srv->ls = calloc((size_t)(n > 0 ? n : 1), sizeof *srv->ls);
  if (srv->core == NULL || srv->ls == NULL) {
    free(srv->core);
    free(srv->ls);
    srv->ls = NULL;
    luaL_error(L, "not enough memory");
  }
  srv->core->refs = 1;
  aio_io_ignore_sigpipe();
  luaL_setmetatable(L, AIO_SERVER_MT);
  lua_pushvalue(L, cbidx);
  lua_setiuservalue(L, -2, S_UV_CB);
  aio_push_loop(L, loop);
  lua_setiuservalue(L, -2, S_UV_LOOP);
  return srv;
}

/* A new listener of the server (of address family `family` for TCP). */
static listener *listener_new(lua_State *L, aio_server *srv, int family) {
  listener *l = calloc(1, sizeof *l);
  int r;
  if (l == NULL)
    luaL_error(L, "not enough memory");
  r = srv->kind == AIO_SK_TCP
          ? uv_tcp_init_ex(srv->loop->uv, &l->u.tcp, (unsigned)family)
          : uv_pipe_init(srv->loop->uv, &l->u.pipe, 0);
  if (r != 0) {
    free(l);
    aio_raise_uv(L, r, "socket");
  }
  l->io.close = listener_close_hook;
  l->io.shut = listener_shut;
  l->io.dispatch = listener_dispatch;
  l->tail = &l->accepted;
  l->srv = srv;
  aio_io_link(srv->loop, &l->io, &l->u.h);
  srv->ls[srv->nls++] = l;
  return l;
}

/* Anchors the serving server (the loop keeps it, as asyncio's does) and
 * starts it unless start_serving = false. [.. server] on top. */
static void server_open(lua_State *L, aio_server *srv, int oidx) {
  int sidx = lua_gettop(L), start = 1;
  aio_anchor(L, &srv->anchor, sidx);
  if (lua_type(L, oidx) == LUA_TTABLE) {
    if (lua_getfield(L, oidx, "start_serving") != LUA_TNIL)
      start = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (start)
    server_start(L, srv);
}

static int opt_flag(lua_State *L, int oidx, const char *name) {
  int v = 0;
  if (lua_type(L, oidx) == LUA_TTABLE) {
    lua_getfield(L, oidx, name);
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return v;
}

/* _tcp_server(factory, addrs, opts): addrs is a list of {host, port}
 * with numeric hosts; one listener each. opts: backlog, reuse_port,
 * start_serving (reuse_address is always on: libuv's bind sets it). */
static int l_tcp_server(lua_State *L) {
  aio_loop *loop;
  aio_server *srv;
  int i, n, r, sidx;
  luaL_checkany(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  loop = aio_get_event_loop(L);
  aio_check_open(L, loop);
  n = (int)lua_rawlen(L, 2);
  srv = server_new(L, loop, AIO_SK_TCP, 1, 3, n);
  sidx = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    struct sockaddr_storage ss;
    listener *l;
    lua_rawgeti(L, 2, i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    r = aio_sockaddr_parse(luaL_checkstring(L, -2),
                           (int)luaL_checkinteger(L, -1), &ss);
    lua_pop(L, 3);
    if (r != 0) {
      server_close(L, srv);
      return aio_raise_uv(L, r, "bind");
    }
    l = listener_new(L, srv, ss.ss_family);
    r = opt_flag(L, 3, "reuse_port") ? aio_set_reuse_port(&l->u.h) : 0;
    if (r == 0)
      r = uv_tcp_bind(&l->u.tcp, (struct sockaddr *)&ss,
                    ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (r != 0) {
      server_close(L, srv);
      return aio_raise_uv(L, r, "bind");
    }
  }
  server_open(L, srv, 3);
  lua_settop(L, sidx);
  return 1;
}

/* Whether the directory the path would be in does not exist. */
static int missing_dir(const char *path) {
  struct stat st;
  char dir[4096];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  if (slash == NULL || n == 0 || n >= sizeof dir)
    return 0;
  memcpy(dir, path, n);
  dir[n] = '\0';
  return stat(dir, &st) != 0 && errno == ENOENT;
}

/* _unix_server(factory, path, opts) */
static int l_unix_server(lua_State *L) {
  aio_loop *loop;
  aio_server *srv;
  struct stat st;
  const char *path = luaL_checkstring(L, 2);
  listener *l;
  int r, sidx;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  aio_check_unix_path(L, 2);
  loop = aio_get_event_loop(L);
  aio_check_open(L, loop);
  srv = server_new(L, loop, AIO_SK_UNIX, 1, 3, 1);
  sidx = lua_gettop(L);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, sidx, S_UV_PATH);
  /* a stale socket file is removed, as asyncio does */
  if (path[0] != '\0' && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
    unlink(path);
  l = listener_new(L, srv, AF_UNIX);
  r = uv_pipe_bind(&l->u.pipe, path);
  if (r == UV_EACCES && missing_dir(path))
    r = UV_ENOENT; /* libuv reports ENOENT as EACCES; Python does not */
  if (r != 0) {
    server_close(L, srv);
    aio_push_path_error(L, r, "bind", 2, 0);
    return lua_error(L);
  }
  if (path[0] != '\0' && stat(path, &st) == 0) {
    srv->unlink_path = 1;
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;
  }
  server_open(L, srv, 3);
  lua_settop(L, sidx);
  return 1;
}

/* ------------------------------------------------------------------ */
static const luaL_Reg server_methods[] = {
    {"close", l_server_close},
    {"wait_closed", l_server_wait_closed},
    {"serve_forever", l_server_serve_forever},
    {"start_serving", l_server_start_serving},
    {"is_serving", l_server_is_serving},
    {"get_loop", l_server_get_loop},
    {"close_clients", l_server_close_clients},
    {"abort_clients", l_server_abort_clients},
    {NULL, NULL}};

static const luaL_Reg server_metamethods[] = {
    {"__gc", l_server__gc},
    {"__close", l_server__close},
    {"__tostring", l_server__tostring},
    {NULL, NULL}};

static const luaL_Reg server_funcs[] = {
    {"_tcp_server", l_tcp_server},
    {"_unix_server", l_unix_server},
    {NULL, NULL}};

/* Names of the C operations in reprs (aio_name_ops). */
static const aio_op_name op_names[] = {
    {server_wait_closed_body, "Server.wait_closed"},
    {serve_forever_body, "Server.serve_forever"},
    {NULL, NULL}};

void aio_open_server(lua_State *L) {
  aio_name_ops(L, op_names);
  aio_newclass(L, AIO_SERVER_MT, AIO_K_OTHER, server_methods,
               server_metamethods);
  luaL_getmetatable(L, AIO_SERVER_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcclosure(L, l_server__index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_setfuncs(L, server_funcs, 0);
}
