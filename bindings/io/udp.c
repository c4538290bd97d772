/*
 * udp.c - UDP endpoints: asyncio.open_udp (the C half is _udp_open; the
 * Lua facade resolves names), ep:sendto, await(ep:recvfrom()), close.
 *
 * Received datagrams queue in C (each with its sender's address) until
 * recvfrom takes them; past `limit` queued bytes (64 KiB by default)
 * receiving stops and the kernel's buffer takes over (or drops, as UDP
 * may), and it starts again once recvfrom drained the queue. One task at
 * a time may wait in recvfrom. The endpoint userdata points at the C
 * struct that holds the uv handle; closing detaches it at once, and the
 * close callback frees the C side.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DEFAULT_LIMIT 65536
#define RECV_BUF 65536

typedef struct dgram {
  struct dgram *next;
  size_t len;
  struct sockaddr_storage from;
  char data[];
} dgram;

typedef struct endpoint endpoint;

typedef struct udp {
  aio_io io;
  uv_udp_t h;
  endpoint *ep;        /* the Lua endpoint, NULL once detached */
  char *rbuf;          /* the receive buffer */
  dgram *head, **tail; /* received, not yet taken */
  size_t queued;
  size_t limit;
  int err;             /* a receive error not yet reported */
  unsigned char receiving, connected;
} udp;

struct endpoint {
  udp *u;              /* NULL once closed */
  aio_future *waiter;  /* the future a task in recvfrom waits on
                          (registered under the endpoint's address), or
                          NULL */
};

enum { EP_UV_LOOP = 1, EP_UV_COUNT = EP_UV_LOOP };

enum { EV_RECV = 1 };

static void on_udp_closed(uv_handle_t *h) {
  udp *u = h->data;
  dgram *d, *next;
  for (d = u->head; d; d = next) {
    next = d->next;
    free(d);
  }
  free(u->rbuf);
  aio_io_release(&u->io);
}

static void udp_close_hook(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_udp_closed);
}

static void wake_receiver(lua_State *L, endpoint *ep) {
  if (ep->waiter == NULL)
    return;
  ep->waiter = NULL;
  aio_waiters_wake(L, ep);
}

/* Detaches the endpoint (waking its receiver) and closes the handle. */
static void udp_close(lua_State *L, udp *u) {
  endpoint *ep = u->ep;
  if (ep) {
    u->ep = NULL;
    ep->u = NULL;
    wake_receiver(L, ep);
  }
  udp_close_hook((uv_handle_t *)&u->h);
}

static void udp_shut(lua_State *L, aio_io *io) {
  udp_close(L, (udp *)io);
}

static void udp_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  udp *u = (udp *)io;
  (void)ev;
  if (u->ep)
    wake_receiver(L, u->ep);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  udp *u = h->data;
  (void)suggested;
  buf->base = u->rbuf;
  buf->len = RECV_BUF;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  udp *u = h->data;
  dgram *d;
  (void)flags;
  if (nread < 0) {
    u->err = (int)nread;
  } else {
    if (addr == NULL)
      return; /* nothing more to read now */
    d = malloc(sizeof *d + (size_t)nread);
    if (d == NULL)
      return; /* dropped, as the kernel would */
    d->next = NULL;
    d->len = (size_t)nread;
    memcpy(&d->from, addr, addr->sa_family == AF_INET6
                               ? sizeof(struct sockaddr_in6)
                               : sizeof(struct sockaddr_in));
    memcpy(d->data, buf->base, (size_t)nread);
    *u->tail = d;
    u->tail = &d->next;
    u->queued += (size_t)nread + 1;
    if (u->queued > u->limit && u->receiving) {
      uv_udp_recv_stop(h);
      u->receiving = 0;
    }
  }
  if (u->ep && u->ep->waiter)
    aio_io_notify(&u->io, EV_RECV);
}

static void start_receiving(udp *u) {
  if (!u->receiving && u->queued <= u->limit &&
      uv_udp_recv_start(&u->h, on_alloc, on_recv) == 0)
    u->receiving = 1;
}

/* ------------------------------------------------------------------ */
/* Lua methods                                                         */

static endpoint *test_ep(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, AIO_UDP_MT);
}

static udp *check_ep(lua_State *L, int idx) {
  endpoint *ep = test_ep(L, idx);
  if (ep->u == NULL)
    luaL_error(L, "attempt to use a closed " AIO_UDP_MT);
  return ep->u;
}

static int recvfrom_body(lua_State *L);

static int recvfrom_k(lua_State *L, int status, lua_KContext ctx) {
  endpoint *ep = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  /* a wake-up cleared ep->waiter, which may hold another task's future
   * by now */
  if (ep->waiter == lua_touserdata(L, 2))
    ep->waiter = NULL;
  aio_waiters_resumed(L, ep, 2);
  lua_settop(L, 1);
  return recvfrom_body(L);
}

/* [ep] -> data, host, port */
static int recvfrom_body(lua_State *L) {
  udp *u = check_ep(L, 1);
  endpoint *ep = lua_touserdata(L, 1);
  aio_task *t;
  dgram *d = u->head;
  lua_settop(L, 1);
  if (u->err) {
    int err = u->err;
    u->err = 0;
    return aio_raise_uv(L, err, "recvfrom");
  }
  if (d != NULL) {
    u->head = d->next;
    if (u->head == NULL)
      u->tail = &u->head;
    u->queued -= d->len + 1;
    lua_pushlstring(L, d->data, d->len);
    aio_push_sockaddr(L, (struct sockaddr *)&d->from);
    free(d);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lua_remove(L, -3);
    start_receiving(u);
    return 3;
  }
  if (ep->waiter)
    return aio_raisef(L, AIO_E_RUNTIME, "recvfrom() called while another "
                      "coroutine is already waiting for a datagram");
  t = aio_check_await(L, "recvfrom");
  if (t->fut.loop != u->io.loop)
    return aio_raisef(L, AIO_E_RUNTIME, "the endpoint belongs to another "
                      "event loop");
  ep->waiter = aio_future_new(L, t->fut.loop);
  start_receiving(u);
  return aio_waiters_await(L, t, ep, 0, recvfrom_k);
}

static int l_ep_recvfrom(lua_State *L) {
  test_ep(L, 1);
  return aio_ccoro_method(L, 1, recvfrom_body);
}

static void on_sent(uv_udp_send_t *req, int status) {
  (void)status; /* a lost datagram is not an error UDP reports */
  free(req);
}

static int send_to(lua_State *L, udp *u, const char *data, size_t len,
                   const struct sockaddr *sa) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  uv_udp_send_t *req; /* its data follows */
  int r = uv_udp_try_send(&u->h, &b, 1, sa);
  if (r >= 0)
    return 0;
  if (r != UV_EAGAIN && r != UV_ENOSYS)
    return aio_raise_uv(L, r, "sendto");
  req = malloc(sizeof *req + len);
  if (req == NULL)
    return luaL_error(L, "not enough memory");
  memcpy(req + 1, data, len);
  b = uv_buf_init((char *)(req + 1), (unsigned)len);
  r = uv_udp_send(req, &u->h, &b, 1, sa, on_sent);
  if (r != 0) {
    free(req);
    return aio_raise_uv(L, r, "sendto");
  }
  return 0;
}

/* ep:sendto(data, host, port); host and port are omitted on an endpoint
 * opened with a remote address. */
static int l_ep_sendto(lua_State *L) {
  udp *u = check_ep(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  struct sockaddr_storage ss;
  int r;
  if (lua_isnoneornil(L, 3) && u->connected)
    return send_to(L, u, data, len, NULL);
  r = aio_sockaddr_parse(luaL_checkstring(L, 3), (int)luaL_checkinteger(L, 4),
                         &ss);
  if (r != 0)
    return luaL_argerror(L, 3, "numeric address expected");
  return send_to(L, u, data, len, (struct sockaddr *)&ss);
}

static int l_ep_getsockname(lua_State *L) {
  udp *u = check_ep(L, 1);
  struct sockaddr_storage ss;
  int n = sizeof ss, r = uv_udp_getsockname(&u->h, (struct sockaddr *)&ss,
                                            &n);
  if (r != 0)
    return aio_raise_uv(L, r, "getsockname");
  aio_push_sockaddr(L, (struct sockaddr *)&ss);
  return 1;
}

static int l_ep_close(lua_State *L) {
  endpoint *ep = test_ep(L, 1);
  if (ep->u)
    udp_close(L, ep->u);
  return 0;
}

static int l_ep_is_closing(lua_State *L) {
  lua_pushboolean(L, test_ep(L, 1)->u == NULL);
  return 1;
}

static int l_ep__gc(lua_State *L) {
  endpoint *ep = lua_touserdata(L, 1);
  if (ep->waiter)
    aio_waiter_drop(L, ep);
  if (ep->u) {
    ep->waiter = NULL;
    ep->u->ep = NULL;
    udp_close_hook((uv_handle_t *)&ep->u->h);
    ep->u = NULL;
  }
  return 0;
}

static int l_ep__tostring(lua_State *L) {
  endpoint *ep = test_ep(L, 1);
  if (ep->u == NULL) {
    lua_pushliteral(L, "<DatagramEndpoint closed>");
    return 1;
  }
  lua_pushliteral(L, "<DatagramEndpoint ");
  lua_pushcfunction(L, l_ep_getsockname);
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lua_pushfstring(L, "%s:%s>", lua_tostring(L, -2), lua_tostring(L, -1));
    lua_replace(L, -4);
    lua_pop(L, 2);
  } else {
    lua_pop(L, 1);
    lua_pushliteral(L, ">");
  }
  lua_concat(L, 2);
  return 1;
}

/* _udp_open(host, port [, {limit =, remote_host =, remote_port =,
 * broadcast =}]): numeric hosts. */
static int l_udp_open(lua_State *L) {
  struct sockaddr_storage ss;
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2), r;
  aio_loop *loop;
  endpoint *ep;
  udp *u;
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  r = aio_sockaddr_parse(host, port, &ss);
  if (r != 0)
    return luaL_argerror(L, 1, "numeric address expected");
  loop = aio_get_event_loop(L);
  aio_check_open(L, loop);
  ep = lua_newuserdatauv(L, sizeof *ep, EP_UV_COUNT); /* 4 */
  memset(ep, 0, sizeof *ep);
  luaL_setmetatable(L, AIO_UDP_MT);
  aio_push_loop(L, loop);
  lua_setiuservalue(L, 4, EP_UV_LOOP);
  u = calloc(1, sizeof *u);
  if (u == NULL || (u->rbuf = malloc(RECV_BUF)) == NULL) {
    free(u);
    return luaL_error(L, "not enough memory");
  }
  u->tail = &u->head;
  u->limit = aio_opt_limit(L, 3);
  if (u->limit == 0)
    u->limit = DEFAULT_LIMIT;
  r = uv_udp_init(loop->uv, &u->h);
  if (r != 0) {
    free(u->rbuf);
    free(u);
    return aio_raise_uv(L, r, "socket");
  }
  u->io.close = udp_close_hook;
  u->io.shut = udp_shut;
  u->io.dispatch = udp_dispatch;
  aio_io_link(loop, &u->io, (uv_handle_t *)&u->h);
  u->ep = ep;
  ep->u = u;
  r = uv_udp_bind(&u->h, (struct sockaddr *)&ss, 0);
  if (r != 0) {
    udp_close(L, u);
    return aio_raise_uv(L, r, "bind");
  }
  if (lua_istable(L, 3)) {
    if (lua_getfield(L, 3, "broadcast") != LUA_TNIL && lua_toboolean(L, -1))
      uv_udp_set_broadcast(&u->h, 1);
    if (lua_getfield(L, 3, "remote_host") != LUA_TNIL) {
      struct sockaddr_storage rs;
      lua_getfield(L, 3, "remote_port");
      r = aio_sockaddr_parse(luaL_checkstring(L, -2),
                             (int)luaL_checkinteger(L, -1), &rs);
      if (r == 0)
        r = uv_udp_connect(&u->h, (struct sockaddr *)&rs);
      if (r != 0) {
        udp_close(L, u);
        return aio_raise_uv(L, r, "connect");
      }
      u->connected = 1;
    }
  }
  lua_settop(L, 4);
  start_receiving(u);
  return 1;
}

static const luaL_Reg ep_methods[] = {
    {"sendto", l_ep_sendto},
    {"send", l_ep_sendto},
    {"recvfrom", l_ep_recvfrom},
    {"getsockname", l_ep_getsockname},
    {"close", l_ep_close},
    {"is_closing", l_ep_is_closing},
    {NULL, NULL}};

static const luaL_Reg ep_metamethods[] = {
    {"__gc", l_ep__gc},
    {"__close", l_ep_close},
    {"__tostring", l_ep__tostring},
    {NULL, NULL}};

static const luaL_Reg udp_funcs[] = {
    {"_udp_open", l_udp_open},
    {NULL, NULL}};

void aio_open_udp(lua_State *L) {
  aio_newclass(L, AIO_UDP_MT, AIO_K_OTHER, ep_methods, ep_metamethods);
  luaL_setfuncs(L, udp_funcs, 0);
}
