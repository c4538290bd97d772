/*
 * udp.c - UDP endpoints: asyncio.open_udp (the C half is _udp_open; the
 * Lua facade resolves names), ep:sendto, await(ep:recvfrom()), close;
 * and asyncio's datagram transport (loop:create_datagram_endpoint, the C
 * half is _dgram_open), whose protocol gets datagram_received(data,
 * addr) and error_received(exc), and whose write buffer limits call its
 * pause_writing and resume_writing.
 *
 * Received datagrams queue in C (each with its sender's address) until
 * recvfrom takes them; past `limit` queued bytes (64 KiB by default)
 * receiving stops and the kernel's buffer takes over (or drops, as UDP
 * may), and it starts again once recvfrom drained the queue. One task at
 * a time may wait in recvfrom. The endpoint userdata points at the C
 * struct that holds the uv handle; closing detaches it at once, and the
 * close callback frees the C side.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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
typedef struct dgt dgt;

typedef struct udp {
  aio_io io;
  uv_udp_t h;
  endpoint *ep;        /* the Lua endpoint, NULL once detached */
  dgt *t;              /* or the Lua datagram transport */
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

enum { EV_RECV = 1, EV_DRAIN = 2 };

/* A datagram transport (userdata AIO_DGT_MT), anchored from its creation
 * until connection_lost was called, as the stream transports. */
struct dgt {
  udp *u;              /* NULL once closed */
  aio_loop *loop;
  struct sockaddr_storage peer; /* remote_addr: where sendto sends */
  size_t high, low;    /* write buffer limits */
  unsigned char started, closing, lost, has_peer;
  unsigned char connected; /* the socket is connected to peer (not with
                              allow_broadcast, as asyncio's) */
  unsigned char wpaused;   /* pause_writing was called */
  int anchor;              /* aio_anchor's, until connection_lost */
};

enum { D_UV_PROTO = 1, D_UV_LOOP, D_UV_EXC, D_UV_COUNT = D_UV_EXC };

static void dgt_dispatch(lua_State *L, udp *u, unsigned ev);

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
  udp *u = (udp *)io;
  if (u->t) { /* a transport of a closing loop: no more callbacks */
    dgt *t = u->t;
    u->t = NULL;
    t->u = NULL;
    t->closing = t->lost = 1;
    aio_unanchor(L, &t->anchor);
  }
  udp_close(L, u);
}

static void udp_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  udp *u = (udp *)io;
  if (u->ep)
    wake_receiver(L, u->ep);
  else if (u->t)
    dgt_dispatch(L, u, ev);
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
  if ((u->ep && u->ep->waiter) || u->t)
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

/* A queued datagram went (or was dropped: a lost datagram is not an
 * error UDP reports). A paused transport may resume. */
static void on_sent(uv_udp_send_t *req, int status) {
  udp *u = req->handle->data;
  free(req);
  if (status != UV_ECANCELED && u->t && u->t->wpaused &&
      u->h.send_queue_size <= u->t->low)
    aio_io_notify(&u->io, EV_DRAIN);
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

/* A new socket record on loop, its handle of `family` (AF_UNSPEC: made
 * when bound) linked to the loop's I/O, receiving up to `limit` bytes
 * before it pauses; raises on failure, leaving nothing behind. */
static udp *udp_new(lua_State *L, aio_loop *loop, unsigned family,
                    size_t limit) {
  int r;
  udp *u = calloc(1, sizeof *u);
  if (u == NULL || (u->rbuf = malloc(RECV_BUF)) == NULL) {
    free(u);
    luaL_error(L, "not enough memory");
  }
  u->tail = &u->head;
  u->limit = limit;
  r = uv_udp_init_ex(loop->uv, &u->h, family);
  if (r != 0) {
    free(u->rbuf);
    free(u);
    aio_raise_uv(L, r, "socket");
  }
  u->io.close = udp_close_hook;
  u->io.shut = udp_shut;
  u->io.dispatch = udp_dispatch;
  aio_io_link(loop, &u->io, (uv_handle_t *)&u->h);
  return u;
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
  size_t limit;
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
  limit = aio_opt_limit(L, 3);
  u = udp_new(L, loop, AF_UNSPEC, limit != 0 ? limit : DEFAULT_LIMIT);
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

/* ------------------------------------------------------------------ */
/* The datagram transport                                              */

/* Pushes the transport's userdata; 0 (nothing pushed) once let go. */
static int dgt_push(lua_State *L, dgt *t) {
  if (aio_anchored(L, t->anchor) == LUA_TUSERDATA)
    return 1;
  lua_pop(L, 1);
  return 0;
}

/* [t, proto, name, args...]: proto:name(args...); a missing method does
 * nothing. */
static int l_dgt_call(lua_State *L) {
  int n = lua_gettop(L);
  lua_getfield(L, 2, lua_tostring(L, 3));
  if (lua_isnil(L, -1))
    return 0;
  lua_replace(L, 3);    /* [t, proto, fn, args...] */
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 2);
  lua_replace(L, 3);
  lua_replace(L, 2);    /* [t, fn, proto, args...] */
  lua_call(L, n - 2, 0);
  return 0;
}

static void dgt_force_close(lua_State *L, dgt *t, int eidx);

/* Calls the protocol's method `name` with the nargs values on top
 * (popped), the transport at tidx. An error is reported and aborts the
 * transport (connection_lost gets it), or with `soft` (pause_writing,
 * resume_writing) is only reported, as asyncio's. Returns 0 on error. */
static int dgt_call_aux(lua_State *L, dgt *t, int tidx, const char *name,
                        int nargs, int soft) {
  int base = lua_gettop(L) - nargs + 1;
  lua_pushcfunction(L, l_dgt_call);
  lua_pushvalue(L, tidx);
  lua_getiuservalue(L, tidx, D_UV_PROTO);
  lua_pushstring(L, name);
  lua_rotate(L, base, 4);
  if (aio_pcall(L, nargs + 3) == LUA_OK)
    return 1;
  if (aio_isfatal(L, -1)) {
    dgt_force_close(L, t, -1);
    lua_error(L);
  }
  lua_createtable(L, 0, 4);
  if (soft)
    lua_pushfstring(L, "protocol.%s() failed", name);
  else
    lua_pushfstring(L, "Fatal error: protocol.%s() call failed.", name);
  lua_setfield(L, -2, "message");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "exception");
  lua_pushvalue(L, tidx);
  lua_setfield(L, -2, "transport");
  lua_getiuservalue(L, tidx, D_UV_PROTO);
  lua_setfield(L, -2, "protocol");
  aio_report(L, t->loop);
  if (!soft)
    dgt_force_close(L, t, -1);
  lua_pop(L, 1);
  return 0;
}

static int dgt_call(lua_State *L, dgt *t, int tidx, const char *name,
                    int nargs) {
  return dgt_call_aux(L, t, tidx, name, nargs, 0);
}

/* Flow control, as asyncio's: pause_writing once the queue of datagrams
 * libuv could not send at once grows over the high-water mark,
 * resume_writing once it fell to the low one (the transport at tidx). */
static void dgt_maybe_pause(lua_State *L, dgt *t, int tidx) {
  if (t->wpaused || t->u == NULL || t->u->h.send_queue_size <= t->high)
    return;
  t->wpaused = 1;
  dgt_call_aux(L, t, tidx, "pause_writing", 0, 1);
}

static void dgt_maybe_resume(lua_State *L, dgt *t, int tidx) {
  if (!t->wpaused || (t->u && t->u->h.send_queue_size > t->low))
    return;
  t->wpaused = 0;
  dgt_call_aux(L, t, tidx, "resume_writing", 0, 1);
}

/* [t]: connection_lost(exc) from the ready queue, when a protocol was
 * given (a factory that failed gave none); lets the transport go. */
static int l_dgt_lost_body(lua_State *L) {
  dgt *t = lua_touserdata(L, 1);
  if (!dgt_push(L, t))
    return 0;
  aio_unanchor(L, &t->anchor); /* [t, self] */
  if (!t->started)
    return 0;
  lua_getiuservalue(L, 2, D_UV_EXC);
  dgt_call(L, t, 2, "connection_lost", 1);
  return 0;
}

static void dgt_call_lost(aio_loop *loop, lua_State *L, void *p) {
  if (L != NULL)
    aio_run_posted(loop, L, l_dgt_lost_body, p, "Exception in callback "
                   "protocol.connection_lost()");
}

/* Closes the socket and schedules connection_lost(exc at eidx, 0: nil)
 * once. */
static void dgt_force_close(lua_State *L, dgt *t, int eidx) {
  int top = lua_gettop(L);
  eidx = eidx ? lua_absindex(L, eidx) : 0;
  t->closing = 1;
  if (t->u) {
    udp *u = t->u;
    u->t = NULL;
    t->u = NULL;
    udp_close_hook((uv_handle_t *)&u->h);
  }
  if (t->lost || !dgt_push(L, t))
    return;
  t->lost = 1;
  if (eidx) {
    lua_pushvalue(L, eidx);
    lua_setiuservalue(L, top + 1, D_UV_EXC);
  }
  aio_ready_push(L, t->loop, AIO_R_CFUNC, t, 0, dgt_call_lost, 1);
  lua_settop(L, top);
}

/* Delivers the queued datagrams and a receive error; resumes writing. */
static void dgt_dispatch(lua_State *L, udp *u, unsigned ev) {
  dgt *t = u->t;
  int top = lua_gettop(L);
  if (!t->started || !dgt_push(L, t))
    return;
  if (ev & EV_DRAIN)
    dgt_maybe_resume(L, t, top + 1);
  while (u->head != NULL && t->u == u) {
    dgram *d = u->head;
    u->head = d->next;
    if (u->head == NULL)
      u->tail = &u->head;
    u->queued -= d->len + 1;
    lua_pushlstring(L, d->data, d->len);
    aio_push_sockaddr(L, (struct sockaddr *)&d->from);
    free(d);
    if (!dgt_call(L, t, top + 1, "datagram_received", 2))
      break;
  }
  if (t->u == u && u->err) {
    int err = u->err;
    u->err = 0;
    aio_push_uverror(L, err, "recvfrom");
    dgt_call(L, t, top + 1, "error_received", 1);
  }
  if (t->u == u)
    start_receiving(u);
  lua_settop(L, top);
}

static dgt *check_dgt(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, AIO_DGT_MT);
}

/* Whether a and b are the same IPv4 or IPv6 address and port. */
static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return 0;
}

/* sendto(data [, addr]): addr is {host, port} (numeric), nil on a
 * transport made with remote_addr. A failure goes to the protocol's
 * error_received, as asyncio's; a closing transport drops the data. */
static int l_dgt_sendto(lua_State *L) {
  dgt *t = check_dgt(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  struct sockaddr_storage ss;
  const struct sockaddr *sa = NULL;
  int r;
  uv_buf_t b;
  uv_udp_send_t *req;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_rawgeti(L, 3, 1);
    lua_rawgeti(L, 3, 2);
    r = aio_sockaddr_parse(luaL_checkstring(L, -2),
                           (int)luaL_checkinteger(L, -1), &ss);
    lua_pop(L, 2);
    if (r != 0)
      return luaL_argerror(L, 3, "numeric {host, port} expected");
    if (t->has_peer && !same_addr(&ss, &t->peer))
      return aio_raisef(L, AIO_E_VALUE, "Invalid address: must be None "
                        "or the remote address");
    sa = (struct sockaddr *)&ss;
  } else if (!t->has_peer)
    return luaL_argerror(L, 3, "address expected (no remote_addr)");
  if (t->has_peer) /* to remote_addr: the connected socket's own peer */
    sa = t->connected ? NULL : (struct sockaddr *)&t->peer;
  if (t->u == NULL || t->closing)
    return 0;
  b = uv_buf_init((char *)data, (unsigned)len);
  r = uv_udp_try_send(&t->u->h, &b, 1, sa);
  if (r == UV_EAGAIN || r == UV_ENOSYS) {
    req = malloc(sizeof *req + len);
    if (req == NULL)
      return luaL_error(L, "not enough memory");
    memcpy(req + 1, data, len);
    b = uv_buf_init((char *)(req + 1), (unsigned)len);
    r = uv_udp_send(req, &t->u->h, &b, 1, sa, on_sent);
    if (r != 0)
      free(req);
    else {
      lua_settop(L, 1);
      dgt_maybe_pause(L, t, 1);
    }
  }
  if (r < 0) {
    lua_settop(L, 1);
    aio_push_uverror(L, r, "sendto");
    dgt_call(L, t, 1, "error_received", 1);
  }
  return 0;
}

/* set_write_buffer_limits([high [, low]]), as the stream transports'. */
static int l_dgt_set_write_buffer_limits(lua_State *L) {
  dgt *t = check_dgt(L, 1);
  aio_check_write_limits(L, DEFAULT_LIMIT, &t->high, &t->low);
  lua_settop(L, 1);
  dgt_maybe_pause(L, t, 1);
  return 0;
}

static int l_dgt_get_write_buffer_limits(lua_State *L) {
  dgt *t = check_dgt(L, 1);
  lua_pushinteger(L, (lua_Integer)t->low);
  lua_pushinteger(L, (lua_Integer)t->high);
  return 2;
}

static int l_dgt_close(lua_State *L) {
  dgt *t = check_dgt(L, 1);
  if (!t->closing)
    dgt_force_close(L, t, 0);
  return 0;
}

static int l_dgt_is_closing(lua_State *L) {
  lua_pushboolean(L, check_dgt(L, 1)->closing);
  return 1;
}

static int l_dgt_get_write_buffer_size(lua_State *L) {
  dgt *t = check_dgt(L, 1);
  lua_pushinteger(L, t->u ? (lua_Integer)t->u->h.send_queue_size : 0);
  return 1;
}

/* get_extra_info(name [, default]): "sockname", "peername", "socket". */
static int l_dgt_get_extra_info(lua_State *L) {
  dgt *t = check_dgt(L, 1);
  const char *name = luaL_checkstring(L, 2);
  struct sockaddr_storage ss;
  int n = sizeof ss;
  lua_settop(L, 3);
  if (strcmp(name, "peername") == 0 && t->connected)
    aio_push_sockaddr(L, (struct sockaddr *)&t->peer);
  else if (t->u && (strcmp(name, "sockname") == 0 ||
                    strcmp(name, "socket") == 0) &&
           uv_udp_getsockname(&t->u->h, (struct sockaddr *)&ss, &n) == 0) {
    if (name[1] == 'o') { /* sockname */
      aio_push_sockaddr(L, (struct sockaddr *)&ss);
      return 1;
    }
    lua_createtable(L, 0, 2);
    {
      uv_os_fd_t fd = -1;
      uv_fileno((uv_handle_t *)&t->u->h, &fd);
      lua_pushinteger(L, fd);
    }
    lua_setfield(L, -2, "fd");
    lua_pushinteger(L, ss.ss_family);
    lua_setfield(L, -2, "family");
  }
  return 1;
}

static int l_dgt_get_protocol(lua_State *L) {
  check_dgt(L, 1);
  lua_getiuservalue(L, 1, D_UV_PROTO);
  return 1;
}

static int l_dgt_set_protocol(lua_State *L) {
  check_dgt(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, D_UV_PROTO);
  return 0;
}

/* connection_made from the ready queue, then receiving. */
static int l_dgt_start_body(lua_State *L) {
  dgt *t = lua_touserdata(L, 1);
  if (!dgt_push(L, t) || t->closing)
    return 0;
  lua_pushvalue(L, 2);
  if (dgt_call(L, t, 2, "connection_made", 1)) {
    t->started = 1;
    if (t->u) {
      start_receiving(t->u);
      if (t->u->head)
        aio_io_notify(&t->u->io, EV_RECV);
    }
  }
  return 0;
}

static void dgt_start_soon(aio_loop *loop, lua_State *L, void *p) {
  if (L != NULL)
    aio_run_posted(loop, L, l_dgt_start_body, p, "Exception in callback "
                   "protocol.connection_made()");
}

/* _start(protocol) (create_datagram_endpoint). */
static int l_dgt__start(lua_State *L) {
  dgt *t = check_dgt(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, D_UV_PROTO);
  aio_ready_push(L, t->loop, AIO_R_CFUNC, t, 0, dgt_start_soon, 1);
  return 0;
}

static int l_dgt__tostring(lua_State *L) {
  dgt *t = check_dgt(L, 1);
  lua_pushfstring(L, "<DatagramTransport%s>",
                  t->u == NULL ? " closed" : t->closing ? " closing" : "");
  return 1;
}

static int l_dgt__gc(lua_State *L) {
  dgt *t = lua_touserdata(L, 1);
  if (t->u) {
    t->u->t = NULL;
    udp_close_hook((uv_handle_t *)&t->u->h);
    t->u = NULL;
  }
  return 0;
}

/* _dgram_open(local {host, port} or nil, remote {host, port} or nil [,
 * {reuse_port =, allow_broadcast =}]): numeric hosts; one of the two
 * given. The socket is connected to remote, except with allow_broadcast
 * (asyncio's: remote is then only sendto's default). Returns a
 * DatagramTransport with no protocol yet. */
static int l_dgram_open(lua_State *L) {
  struct sockaddr_storage ls, rs;
  aio_loop *loop;
  dgt *t;
  udp *u;
  int r, broadcast = 0, has_local = !lua_isnoneornil(L, 1),
      has_remote = !lua_isnoneornil(L, 2);
  lua_settop(L, 3);
  if (has_remote) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_rawgeti(L, 2, 1);
    lua_rawgeti(L, 2, 2);
    r = aio_sockaddr_parse(luaL_checkstring(L, -2),
                           (int)luaL_checkinteger(L, -1), &rs);
    lua_pop(L, 2);
    if (r != 0)
      return luaL_argerror(L, 2, "numeric {host, port} expected");
  }
  if (has_local) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_rawgeti(L, 1, 1);
    lua_rawgeti(L, 1, 2);
    r = aio_sockaddr_parse(luaL_checkstring(L, -2),
                           (int)luaL_optinteger(L, -1, 0), &ls);
    lua_pop(L, 2);
    if (r != 0)
      return luaL_argerror(L, 1, "numeric {host, port} expected");
  } else if (has_remote)
    aio_sockaddr_parse(rs.ss_family == AF_INET6 ? "::" : "0.0.0.0", 0, &ls);
  else
    return aio_raisef(L, AIO_E_VALUE, "unexpected address family");
  loop = aio_get_event_loop(L);
  aio_check_open(L, loop);
  t = lua_newuserdatauv(L, sizeof *t, D_UV_COUNT); /* 4 */
  memset(t, 0, sizeof *t);
  t->anchor = LUA_NOREF;
  t->loop = loop;
  t->high = DEFAULT_LIMIT;
  t->low = DEFAULT_LIMIT / 4;
  luaL_setmetatable(L, AIO_DGT_MT);
  aio_push_loop(L, loop);
  lua_setiuservalue(L, 4, D_UV_LOOP);
  u = udp_new(L, loop, ls.ss_family, DEFAULT_LIMIT);
  u->t = t;
  t->u = u;
  aio_anchor(L, &t->anchor, 4);
  r = 0;
  if (lua_istable(L, 3)) {
    if (lua_getfield(L, 3, "reuse_port") != LUA_TNIL && lua_toboolean(L, -1))
      r = aio_set_reuse_port((uv_handle_t *)&u->h);
    lua_pop(L, 1);
  }
  if (r == 0)
    r = uv_udp_bind(&u->h, (struct sockaddr *)&ls, 0);
  if (r == 0 && lua_istable(L, 3)) {
    broadcast = lua_getfield(L, 3, "allow_broadcast") != LUA_TNIL &&
                lua_toboolean(L, -1);
    if (broadcast)
      r = uv_udp_set_broadcast(&u->h, 1);
    lua_pop(L, 1);
  }
  if (r == 0 && has_remote) {
    /* with allow_broadcast, asyncio does not connect: remote_addr is only
     * where sendto sends, and datagrams come from anyone */
    if (!broadcast) {
      r = uv_udp_connect(&u->h, (struct sockaddr *)&rs);
      t->connected = 1;
    }
    memcpy(&t->peer, &rs, sizeof rs);
    t->has_peer = 1;
  }
  if (r != 0) {
    t->lost = 1; /* never started: nothing to tell */
    aio_unanchor(L, &t->anchor);
    dgt_force_close(L, t, 0);
    return aio_raise_uv(L, r, has_remote ? "connect" : "bind");
  }
  lua_settop(L, 4);
  return 1;
}

static const luaL_Reg dgt_methods[] = {
    {"sendto", l_dgt_sendto},
    {"close", l_dgt_close},
    {"abort", l_dgt_close},
    {"is_closing", l_dgt_is_closing},
    {"get_extra_info", l_dgt_get_extra_info},
    {"get_write_buffer_size", l_dgt_get_write_buffer_size},
    {"set_write_buffer_limits", l_dgt_set_write_buffer_limits},
    {"get_write_buffer_limits", l_dgt_get_write_buffer_limits},
    {"get_protocol", l_dgt_get_protocol},
    {"set_protocol", l_dgt_set_protocol},
    {"_start", l_dgt__start},
    {NULL, NULL}};

static const luaL_Reg dgt_metamethods[] = {
    {"__gc", l_dgt__gc},
    {"__tostring", l_dgt__tostring},
    {NULL, NULL}};

static const luaL_Reg udp_funcs[] = {
    {"_udp_open", l_udp_open},
    {"_dgram_open", l_dgram_open},
    {NULL, NULL}};

/* Names of the C operations in reprs (aio_name_ops). */
static const aio_op_name op_names[] = {
    {recvfrom_body, "DatagramEndpoint.recvfrom"},
    {NULL, NULL}};

void aio_open_udp(lua_State *L) {
  aio_name_ops(L, op_names);
  aio_newclass(L, AIO_UDP_MT, AIO_K_OTHER, ep_methods, ep_metamethods);
  aio_newclass(L, AIO_DGT_MT, AIO_K_OTHER, dgt_methods, dgt_metamethods);
  luaL_setfuncs(L, udp_funcs, 0);
}
