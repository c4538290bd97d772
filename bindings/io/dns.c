/*
 * dns.c - addresses: asyncio.getaddrinfo / loop:getaddrinfo and
 * asyncio.getnameinfo / loop:getnameinfo on libuv's thread pool, the
 * socket constants (asyncio.AF_INET, ...), and the conversions between
 * numeric hosts, sockaddrs and {host, port} tables that the other I/O
 * files share.
 *
 * A lookup is an I/O object without a handle (aio_io with handle NULL) in
 * the loop's list, so that closing the loop cancels it. Whoever finishes
 * last frees it: the awaiting task after reading the answer, or the uv
 * callback when the task went away first (cancelled, or its loop closed).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "internal.h"

int aio_sockaddr_parse(const char *host, int port,
                       struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (port < 0 || port > 65535)
    return UV_EINVAL;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  memset(ss, 0, sizeof *ss);
  return UV_EINVAL;
}

/* Pushes {host, port}. */
static void push_host_port(lua_State *L, const char *host, int port) {
  lua_createtable(L, 2, 0);
  lua_pushstring(L, host);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, port);
  lua_rawseti(L, -2, 2);
}

void aio_push_sockaddr(lua_State *L, const struct sockaddr *sa) {
  char name[64];
  switch (sa->sa_family) {
  case AF_INET: {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uv_ip4_name(in, name, sizeof name);
    push_host_port(L, name, ntohs(in->sin_port));
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, name, sizeof name);
    push_host_port(L, name, ntohs(in6->sin6_port));
    break;
  }
  case AF_UNIX: {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    lua_pushlstring(L, un->sun_path, strnlen(un->sun_path,
                                             sizeof un->sun_path));
    break;
  }
  default:
    lua_pushnil(L);
  }
}

/* _ip_family(host) -> AF_INET, AF_INET6, or nil when host is not a
 * numeric address. */
static int l_ip_family(lua_State *L) {
  struct sockaddr_storage ss;
  const char *host = luaL_checkstring(L, 1);
  if (aio_sockaddr_parse(host, 0, &ss) == 0)
    lua_pushinteger(L, ss.ss_family);
  else
    lua_pushnil(L);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Look-ups: getaddrinfo and getnameinfo                               */

/* One request on libuv's thread pool, of either kind. */
typedef struct lookup {
  aio_io io;
  union {
    uv_req_t any;
    uv_getaddrinfo_t addr;
    uv_getnameinfo_t name; /* its answer stays in req.name.host/service */
  } req;
  struct addrinfo *res; /* getaddrinfo's answers */
  int status;
  unsigned char done, abandoned;
} lookup;

static void lookup_free(lookup *g) {
  if (g->res)
    uv_freeaddrinfo(g->res);
  g->res = NULL;
  aio_io_release(&g->io);
}

/* The request finished: wakes the task, or frees it if nobody waits. */
static void lookup_done(lookup *g, int status) {
  g->done = 1;
  g->status = status;
  if (g->abandoned)
    lookup_free(g);
  else
    aio_io_notify(&g->io, 1);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  lookup *g = req->data;
  g->res = res;
  lookup_done(g, status);
}

static void on_named(uv_getnameinfo_t *req, int status, const char *host,
                     const char *service) {
  (void)host; /* the same as req->host */
  (void)service;
  lookup_done(req->data, status);
}

static void lookup_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  (void)ev;
  aio_waiters_wake(L, io);
}

/* Gives the request up (the task is leaving): the callback frees it. */
static void lookup_abandon(lookup *g) {
  g->abandoned = 1;
  if (g->done)
    lookup_free(g);
  else
    uv_cancel(&g->req.any);
}

/* The loop closes: the task will never read the answer. */
static void lookup_shut(lua_State *L, aio_io *io) {
  aio_waiter_drop(L, io);
  lookup_abandon((lookup *)io);
}

/* A lookup linked to t's loop, with its request's data set. */
static lookup *lookup_new(lua_State *L, aio_task *t) {
  lookup *g = calloc(1, sizeof *g);
  if (g == NULL)
    luaL_error(L, "not enough memory");
  g->req.any.data = g;
  g->io.shut = lookup_shut;
  g->io.dispatch = lookup_dispatch;
  aio_io_link(t->fut.loop, &g->io, NULL);
  return g;
}

/* Pushes the list of answers. */
static void push_answers(lua_State *L, struct addrinfo *res) {
  struct addrinfo *ai;
  int i = 0;
  lua_newtable(L);
  for (ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, ai->ai_family);
    lua_setfield(L, -2, "family");
    lua_pushinteger(L, ai->ai_socktype);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, ai->ai_protocol);
    lua_setfield(L, -2, "proto");
    if (ai->ai_canonname) {
      lua_pushstring(L, ai->ai_canonname);
      lua_setfield(L, -2, "canonname");
    }
    aio_push_sockaddr(L, ai->ai_addr);
    lua_rawgeti(L, -1, 1);
    lua_setfield(L, -3, "addr");
    lua_rawgeti(L, -1, 2);
    lua_setfield(L, -3, "port");
    lua_pop(L, 1);
    lua_rawseti(L, -2, ++i);
  }
}

enum { LOOKUP_ADDR, LOOKUP_NAME };

/* [arg1, arg2, arg3, g, fut]; ctx is LOOKUP_ADDR or LOOKUP_NAME. */
static int lookup_k(lua_State *L, int status, lua_KContext ctx) {
  lookup *g = lua_touserdata(L, 4);
  aio_future *f = lua_touserdata(L, 5);
  int threw = aio_resume_take_throw(L, aio_current_task_of(L));
  (void)status;
  if (threw || f->state == AIO_CANCELLED || !g->done) {
    aio_waiter_drop(L, &g->io);
    lookup_abandon(g);
    if (threw)
      return lua_error(L);
    return aio_future_push_result(L, 5);
  }
  if (g->status < 0) {
    int err = g->status;
    lookup_free(g);
    return aio_raise_uv(L, err, ctx == LOOKUP_ADDR ? "getaddrinfo"
                                                   : "getnameinfo");
  }
  lua_settop(L, 3);
  if (ctx == LOOKUP_NAME) {
    lua_pushstring(L, g->req.name.host);
    lua_pushstring(L, g->req.name.service);
  } else {
    push_answers(L, g->res);
  }
  lookup_free(g);
  return ctx == LOOKUP_NAME ? 2 : 1;
}

/* Suspends t on the lookup g started: [arg1, arg2, arg3] become
 * [arg1, arg2, arg3, g, fut] for lookup_k. */
static int lookup_await(lua_State *L, aio_task *t, lookup *g, int kind) {
  lua_settop(L, 3);
  lua_pushlightuserdata(L, g);
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &g->io, kind, lookup_k);
}

/* ------------------------------------------------------------------ */
/* getaddrinfo                                                         */

static int opt_int(lua_State *L, int oidx, const char *name, int def) {
  int v = def;
  if (lua_type(L, oidx) != LUA_TTABLE)
    return def;
  if (lua_getfield(L, oidx, name) != LUA_TNIL) {
    if (!lua_isinteger(L, -1))
      luaL_error(L, "bad option '%s' to 'getaddrinfo' (integer expected, "
                 "got %s)", name, luaL_typename(L, -1));
    v = (int)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* [host, port, opts] */
static int gai_body(lua_State *L) {
  struct addrinfo hints;
  const char *host = luaL_optstring(L, 1, NULL);
  const char *service = NULL;
  aio_task *t;
  lookup *g;
  int r;
  lua_settop(L, 3);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_pushfstring(L, "%d", (int)luaL_checkinteger(L, 2));
    lua_replace(L, 2);
  }
  service = luaL_optstring(L, 2, NULL);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = opt_int(L, 3, "family", AF_UNSPEC);
  hints.ai_socktype = opt_int(L, 3, "type", 0);
  hints.ai_protocol = opt_int(L, 3, "proto", 0);
  hints.ai_flags = opt_int(L, 3, "flags", 0);
  t = aio_check_await(L, "getaddrinfo");
  g = lookup_new(L, t);
  r = uv_getaddrinfo(t->fut.loop->uv, &g->req.addr, on_resolved, host,
                     service, &hints);
  if (r != 0) {
    aio_io_release(&g->io);
    return aio_raise_uv(L, r, "getaddrinfo");
  }
  return lookup_await(L, t, g, LOOKUP_ADDR);
}

/* getaddrinfo(host, port [, {family =, type =, proto =, flags =}]) ->
 * a Coroutine object; awaited, the list of {family =, type =, proto =,
 * addr =, port =} (canonname = with AI_CANONNAME). */
static int l_getaddrinfo(lua_State *L) {
  return aio_ccoro_method(L, 3, gai_body);
}

/* Checks host, port and opts at base.. when the call is made (the body
 * runs later, where an error could not name the function). */
static void check_gai_args(lua_State *L, int base) {
  static const char *const options[] = {"family", "type", "proto", "flags",
                                        NULL};
  luaL_optstring(L, base, NULL);
  if (lua_type(L, base + 1) == LUA_TNUMBER)
    luaL_checkinteger(L, base + 1);
  else
    luaL_optstring(L, base + 1, NULL);
  aio_check_options(L, base + 2, options);
}

static int l_getaddrinfo_fn(lua_State *L) {
  check_gai_args(L, 1);
  return l_getaddrinfo(L);
}

static int l_loop_getaddrinfo(lua_State *L) {
  aio_check_loop(L, 1);
  check_gai_args(L, 2);
  lua_remove(L, 1);
  return l_getaddrinfo(L);
}

/* ------------------------------------------------------------------ */
/* getnameinfo                                                         */

/* [host, port, flags]: the address was checked when the call was made;
 * a host that is not a numeric address fails as Python's does, with
 * gaierror EAI_NONAME. */
static int gni_body(lua_State *L) {
  struct sockaddr_storage ss;
  aio_task *t = aio_check_await(L, "getnameinfo");
  lookup *g;
  int r = aio_sockaddr_parse(lua_tostring(L, 1), (int)lua_tointeger(L, 2),
                             &ss);
  if (r != 0)
    return aio_raise_uv(L, UV_EAI_NONAME, "getnameinfo");
  g = lookup_new(L, t);
  r = uv_getnameinfo(t->fut.loop->uv, &g->req.name, on_named,
                     (const struct sockaddr *)&ss, (int)lua_tointeger(L, 3));
  if (r != 0) {
    aio_io_release(&g->io);
    return aio_raise_uv(L, r, "getnameinfo");
  }
  return lookup_await(L, t, g, LOOKUP_NAME);
}

/* getnameinfo({host, port} [, flags]) -> a Coroutine object; awaited,
 * host, service (Python's tuple as two values). The address at base is
 * checked now and its parts passed on to the body. */
static int getnameinfo_at(lua_State *L, int base) {
  lua_Integer port, flags = luaL_optinteger(L, base + 1, 0);
  luaL_checktype(L, base, LUA_TTABLE);
  if (lua_rawgeti(L, base, 1) != LUA_TSTRING)
    return luaL_argerror(L, base, "{host, port} expected (host must be a "
                         "string)");
  if (lua_rawgeti(L, base, 2) != LUA_TNUMBER || !lua_isinteger(L, -1))
    return luaL_argerror(L, base, "{host, port} expected (port must be an "
                         "integer)");
  port = lua_tointeger(L, -1);
  if (port < 0 || port > 65535)
    return luaL_argerror(L, base, "port must be 0-65535");
  if (flags < INT_MIN || flags > INT_MAX)
    return luaL_argerror(L, base + 1, "flags out of range");
  lua_pushinteger(L, flags); /* [..., host, port, flags] */
  aio_push_ccoro(L, gni_body, 3);
  return 1;
}

static int l_getnameinfo_fn(lua_State *L) {
  return getnameinfo_at(L, 1);
}

static int l_loop_getnameinfo(lua_State *L) {
  aio_check_loop(L, 1);
  return getnameinfo_at(L, 2);
}

static const struct {
  const char *name;
  int value;
} constants[] = {
    {"AF_UNSPEC", AF_UNSPEC},       {"AF_INET", AF_INET},
    {"AF_INET6", AF_INET6},         {"AF_UNIX", AF_UNIX},
    {"SOCK_STREAM", SOCK_STREAM},   {"SOCK_DGRAM", SOCK_DGRAM},
    {"IPPROTO_TCP", IPPROTO_TCP},   {"IPPROTO_UDP", IPPROTO_UDP},
    {"AI_PASSIVE", AI_PASSIVE},     {"AI_CANONNAME", AI_CANONNAME},
    {"AI_NUMERICHOST", AI_NUMERICHOST},
    {"AI_NUMERICSERV", AI_NUMERICSERV},
    {"AI_ADDRCONFIG", AI_ADDRCONFIG},
    {"NI_NUMERICHOST", NI_NUMERICHOST},
    {"NI_NUMERICSERV", NI_NUMERICSERV},
    {"NI_NAMEREQD", NI_NAMEREQD},   {"NI_NOFQDN", NI_NOFQDN},
    {"NI_DGRAM", NI_DGRAM},
    {NULL, 0}};

/* _gethostname() -> the machine's host name (uv_os_gethostname) */
static int l_gethostname(lua_State *L) {
  char name[UV_MAXHOSTNAMESIZE];
  size_t size = sizeof name;
  int r = uv_os_gethostname(name, &size);
  if (r < 0)
    return aio_raise_uv(L, r, "gethostname");
  lua_pushlstring(L, name, size);
  return 1;
}

static const luaL_Reg dns_funcs[] = {
    {"getaddrinfo", l_getaddrinfo_fn},
    {"getnameinfo", l_getnameinfo_fn},
    {"_ip_family", l_ip_family},
    {"_gethostname", l_gethostname},
    {NULL, NULL}};

/* Names of the C operations in reprs (aio_name_ops). */
static const aio_op_name op_names[] = {
    {gai_body, "EventLoop.getaddrinfo"},
    {gni_body, "EventLoop.getnameinfo"},
    {NULL, NULL}};

void aio_open_dns(lua_State *L) {
  int i;
  aio_name_ops(L, op_names);
  luaL_setfuncs(L, dns_funcs, 0);
  for (i = 0; constants[i].name; i++) {
    lua_pushinteger(L, constants[i].value);
    lua_setfield(L, -2, constants[i].name);
  }
  luaL_getmetatable(L, AIO_LOOP_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, l_loop_getaddrinfo);
  lua_setfield(L, -2, "getaddrinfo");
  lua_pushcfunction(L, l_loop_getnameinfo);
  lua_setfield(L, -2, "getnameinfo");
  lua_pop(L, 2);
}
