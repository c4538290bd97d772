/*
 * transport.c - asyncio's stream transport over a uv stream (TCP, Unix
 * socket, pipe), and how it drives its protocol.
 *
 * A transport is two halves: the uv half (aio_stream, malloc'd, an I/O
 * object of its loop, io.c) whose callbacks only record events, and the
 * Lua half (aio_transport, the Transport userdata) that the protocol
 * sees. The Lua half is anchored in the registry from its creation until
 * connection_lost was called, so that a connection nobody references
 * still runs (as asyncio's selector keeps it).
 *
 * The protocol is either a C protocol (its metatable has an
 * AIO_PROTO_VT: the stream protocol of stream.c), driven with no Lua on
 * the data path (data is read straight into its buffer), or any Lua
 * value with the methods asyncio calls (connection_made, data_received,
 * eof_received, connection_lost, pause_writing, resume_writing), called
 * through lua_vt below. An error raised by a protocol callback goes to
 * the loop's exception handler, then the transport is aborted and
 * connection_lost(exc) follows. connection_lost is called exactly once,
 * from the ready queue (asyncio's call_soon), after close() flushed the
 * write buffer, abort(), or a fatal read or write error (an OSError,
 * given to it and not reported, as asyncio does).
 *
 * Flow control: the protocol's pause_writing() is called when the write
 * buffer grows over the high-water mark (64 KiB) and resume_writing()
 * when it falls to the low one (16 KiB); set_write_buffer_limits
 * changes them. pause_reading/resume_reading stop and restart reading.
 *
 * Pipes are asyncio's pipe transports: a read pipe cannot be written, a
 * write pipe's write_eof closes it, and a write pipe watches its reader
 * (aio_hup) so that it is lost when the reader closes its end.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>

#include "transport.h"

#define HIGH_WATER 65536

/* Events of a stream. */
enum {
  EV_CONNECT = 1, /* the connect request completed */
  EV_DATA = 2,    /* data for the protocol (its wake) */
  EV_EOF = 4,     /* end of the stream */
  EV_FATAL = 8,   /* a read or write error: the transport is lost */
  EV_DRAIN = 16,  /* the write buffer fell to the low-water mark */
  EV_FLUSHED = 32, /* a closing transport's writes went out */
  EV_HUP = 64     /* a write pipe's reader closed its end */
};

/* ------------------------------------------------------------------ */
/* The uv half                                                         */

static void stream_dispatch(lua_State *L, aio_io *io, unsigned ev);
static void stream_shut(lua_State *L, aio_io *io);

/* A write pipe's watch on its reader, as asyncio's write pipe transport
 * polls its descriptor for reading: a poll handle on a duplicate of the
 * descriptor (the stream's own polling is libuv's), on which any event
 * means the reader closed its end. An I/O object of its own, freed in its
 * close callback; the duplicate is closed with the handle, so the reader
 * sees the end when the stream closes. */
struct aio_hup {
  aio_io io;
  uv_poll_t h;
  aio_stream *s;          /* NULL once the stream let it go */
  int fd;                 /* the duplicate, -1 once closed */
};

static void on_hup_closed(uv_handle_t *h) {
  aio_io_release((aio_io *)h->data);
}

static void hup_close_hook(uv_handle_t *h) {
  aio_hup *w = h->data;
  if (uv_is_closing(h))
    return;
  uv_close(h, on_hup_closed); /* stops polling: the fd may go */
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
}

/* Detaches the stream's watch and closes it. */
static void hup_stop(aio_stream *s) {
  aio_hup *w = s->hup;
  if (w == NULL)
    return;
  s->hup = NULL;
  w->s = NULL;
  hup_close_hook((uv_handle_t *)&w->h);
}

static void hup_shut(lua_State *L, aio_io *io) {
  aio_hup *w = (aio_hup *)io;
  (void)L;
  if (w->s)
    hup_stop(w->s);
  else
    hup_close_hook((uv_handle_t *)&w->h);
}

/* A pipe's write end polls readable only when its reader is gone; a
 * socket's (a child's stdin is one end of a socket pair) also when the
 * child wrote into its stdin, which nobody reads: that is dropped. */
static void on_hup(uv_poll_t *h, int status, int events) {
  aio_hup *w = h->data;
  char buf[4096];
  int i;
  (void)events;
  for (i = 0; status == 0 && i < 16; i++) {
    ssize_t n = recv(w->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return; /* the reader is still there */
    break;    /* the end, or an error: a pipe's ENOTSOCK */
  }
  if (i == 16)
    return;   /* still more: the next poll goes on */
  uv_poll_stop(h);
  if (w->s)
    aio_io_notify(&w->s->io, EV_HUP);
}

/* Starts watching the reader of the write pipe s. Without the watch (no
 * memory, no descriptor), a closed reader is learnt at the next write. */
static void hup_start(aio_stream *s) {
  aio_loop *loop = s->io.loop;
  uv_os_fd_t fd;
  aio_hup *w;
  if (s->hup || s->killed || loop == NULL || uv_fileno(&s->u.h, &fd) != 0)
    return;
  w = calloc(1, sizeof *w);
  if (w == NULL)
    return;
  w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (w->fd < 0 || uv_poll_init(loop->uv, &w->h, w->fd) != 0) {
    if (w->fd >= 0)
      close(w->fd);
    free(w);
    return;
  }
  w->io.close = hup_close_hook;
  w->io.shut = hup_shut;
  aio_io_link(loop, &w->io, (uv_handle_t *)&w->h);
  w->s = s;
  s->hup = w;
  if (uv_poll_start(&w->h, UV_READABLE | UV_DISCONNECT, on_hup) != 0)
    hup_stop(s);
}

static void on_stream_closed(uv_handle_t *h) {
  aio_stream *s = h->data;
  if (s->t)
    s->t->s = NULL;
  free(s->rbuf);
  aio_io_release(&s->io);
}

/* The `close` hook of aio_io for loop.c's last-resort walk. */
static void stream_close_hook(uv_handle_t *h) {
  hup_stop(h->data);
  if (!uv_is_closing(h))
    uv_close(h, on_stream_closed);
}

/* Closes the handle now: pending writes are dropped. */
static void stream_kill(aio_stream *s) {
  s->killed = 1;
  s->reading = 0;
  stream_close_hook(&s->u.h);
}

static aio_stream *stream_alloc(aio_loop *loop, int kind, int *err) {
  aio_stream *s = calloc(1, sizeof *s);
  if (s == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = kind == AIO_SK_TCP ? uv_tcp_init(loop->uv, &s->u.tcp)
                            : uv_pipe_init(loop->uv, &s->u.pipe, 0);
  if (*err != 0) {
    free(s);
    return NULL;
  }
  s->kind = (unsigned char)kind;
  s->io.close = stream_close_hook;
  s->io.shut = stream_shut;
  s->io.dispatch = stream_dispatch;
  aio_io_link(loop, &s->io, &s->u.h);
  return s;
}

aio_stream *aio_stream_new(lua_State *L, aio_loop *loop, int kind) {
  int err;
  aio_stream *s = stream_alloc(loop, kind, &err);
  if (s == NULL)
    aio_raise_uv(L, err, "socket");
  aio_io_ignore_sigpipe();
  return s;
}

/* For server.c's accept: a new stream or NULL (never raises). */
aio_stream *aio_stream_alloc(aio_loop *loop, int kind) {
  int err;
  return stream_alloc(loop, kind, &err);
}

uv_stream_t *aio_stream_uv(aio_stream *s) {
  return &s->u.s;
}

void aio_stream_abort(aio_stream *s) {
  stream_kill(s);
}

/* ------------------------------------------------------------------ */
/* Anchoring and the protocol's vtable                                 */

/* Pushes the transport's userdata; returns 0 (pushing nothing) once it
 * is no longer anchored. */
static int push_self(lua_State *L, aio_transport *t) {
  if (aio_anchored(L, t->anchor) == LUA_TUSERDATA)
    return 1;
  lua_pop(L, 1);
  return 0;
}

/* Starts or stops reading as the state asks. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);

static void update_reading(aio_transport *t) {
  aio_stream *s = t->s;
  int want = t->started && !t->closing && !t->rpaused && !t->eof &&
             !t->writeonly && t->vt != NULL;
  if (s == NULL || s->killed)
    return;
  if (want && !s->reading) {
    if (uv_read_start(&s->u.s, on_alloc, on_read) == 0)
      s->reading = 1;
  } else if (!want && s->reading) {
    uv_read_stop(&s->u.s);
    s->reading = 0;
  }
}

/* [resultp, proto, name, args...]: proto:name(args...), a missing method
 * doing nothing; the result's truth goes to *resultp. */
static int l_call_method(lua_State *L) {
  int *res = lua_touserdata(L, 1), n = lua_gettop(L);
  lua_getfield(L, 2, lua_tostring(L, 3));
  if (lua_isnil(L, -1))
    return 0;
  lua_replace(L, 3); /* [resultp, proto, fn, args...] */
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_replace(L, 2);
  lua_replace(L, 3); /* [resultp, fn, proto, args...] */
  lua_call(L, n - 2, 1);
  *res = lua_toboolean(L, -1);
  return 0;
}

/* Calls the method `name` of the Lua protocol at pidx with the nargs
 * values on top (popped). Returns LUA_OK (with *res the result's truth)
 * or an error status with the error on top. */
static int lua_method(lua_State *L, int pidx, const char *name, int nargs,
                      int *res) {
  int base = lua_gettop(L) - nargs + 1;
  *res = 0;
  pidx = lua_absindex(L, pidx);
  lua_pushcfunction(L, l_call_method);
  lua_pushlightuserdata(L, res);
  lua_pushvalue(L, pidx);
  lua_pushstring(L, name);
  lua_rotate(L, base, 4);
  return aio_pcall(L, nargs + 3);
}

/* The vtable of Lua protocols: p is the transport. Data lands in the
 * stream's rbuf; wake delivers it with data_received. */
static void lua_get_buffer(void *p, size_t want, uv_buf_t *buf) {
  aio_stream *s = ((aio_transport *)p)->s;
  buf->base = NULL;
  buf->len = 0;
  if (s->rcap - s->rlen < want) {
    size_t ncap = aio_grown_cap(s->rcap, s->rlen + want);
    char *nb = realloc(s->rbuf, ncap);
    if (nb == NULL)
      return;
    s->rbuf = nb;
    s->rcap = ncap;
  }
  if (s->rbuf != NULL) {
    buf->base = s->rbuf + s->rlen;
    buf->len = s->rcap - s->rlen;
  }
}

static int lua_buffer_updated(void *p, size_t n) {
  ((aio_transport *)p)->s->rlen += n;
  return 1;
}

static void fatal_error(lua_State *L, aio_transport *t, int eidx,
                        const char *msg);

/* [dvt, proto, data, len]: the protocol's data_received in C. */
static int l_call_data(lua_State *L) {
  const aio_data_vt *dvt = lua_touserdata(L, 1);
  dvt->data_received(L, 2, lua_touserdata(L, 3),
                     (size_t)lua_tointeger(L, 4));
  return 0;
}

/* Calls data_received with what rbuf holds: the protocol's entry in C
 * (AIO_DATA_FN) reads it in place; the method gets a string. */
static void lua_wake(lua_State *L, void *p) {
  aio_transport *t = p;
  aio_stream *s = t->s;
  int res, status, top = lua_gettop(L);
  size_t n;
  if (s == NULL || s->rlen == 0 || !push_self(L, t))
    return;
  lua_getiuservalue(L, top + 1, T_UV_PROTO);
  n = s->rlen;
  s->rlen = 0; /* rbuf stays as it is until the next read */
  if (t->dvt != NULL) {
    lua_pushcfunction(L, l_call_data);
    lua_pushlightuserdata(L, (void *)t->dvt);
    lua_pushvalue(L, top + 2);
    lua_pushlightuserdata(L, s->rbuf);
    lua_pushinteger(L, (lua_Integer)n);
    status = aio_pcall(L, 4);
  } else {
    lua_pushlstring(L, s->rbuf, n);
    status = lua_method(L, top + 2, "data_received", 1, &res);
  }
  if (status != LUA_OK)
    fatal_error(L, t, -1, "Fatal error: protocol.data_received() call "
                "failed.");
  lua_settop(L, top);
}

/* The other entries raise what the method raised. */
static void lua_call_or_raise(lua_State *L, int pidx, const char *name,
                              int nargs, int *res) {
  if (lua_method(L, pidx, name, nargs, res) != LUA_OK)
    lua_error(L);
}

static void lua_connection_made(lua_State *L, void *p, int pidx, int tidx) {
  int res;
  (void)p;
  lua_pushvalue(L, tidx);
  lua_call_or_raise(L, pidx, "connection_made", 1, &res);
}

static int lua_eof_received(lua_State *L, void *p, int pidx) {
  int res;
  (void)p;
  lua_call_or_raise(L, pidx, "eof_received", 0, &res);
  return res;
}

static void lua_connection_lost(lua_State *L, void *p, int pidx, int eidx) {
  int res;
  (void)p;
  lua_pushvalue(L, eidx);
  lua_call_or_raise(L, pidx, "connection_lost", 1, &res);
}

static void lua_pause_writing(lua_State *L, void *p, int pidx) {
  int res;
  (void)p;
  lua_call_or_raise(L, pidx, "pause_writing", 0, &res);
}

static void lua_resume_writing(lua_State *L, void *p, int pidx) {
  int res;
  (void)p;
  lua_call_or_raise(L, pidx, "resume_writing", 0, &res);
}

static const aio_proto_vt lua_vt = {
    lua_get_buffer,      lua_buffer_updated, lua_wake,
    lua_connection_made, lua_eof_received,   lua_connection_lost,
    lua_pause_writing,   lua_resume_writing, 0};

/* Takes the protocol at pidx as the transport's (at tidx). */
static void set_protocol(lua_State *L, aio_transport *t, int tidx,
                         int pidx) {
  const aio_proto_vt *vt = aio_metafield_ptr(L, pidx, AIO_PROTO_VT);
  const aio_data_vt *dvt = NULL;
  void *proto = t;
  if (vt != NULL)
    proto = lua_touserdata(L, pidx);
  else {
    vt = &lua_vt;
    dvt = aio_metafield_ptr(L, pidx, AIO_DATA_FN);
  }
  if (t->s && t->s->reading && vt != t->vt && t->vt == &lua_vt &&
      t->s->rlen > 0)
    lua_wake(L, t); /* what the old protocol was given, it gets */
  lua_pushvalue(L, pidx);
  lua_setiuservalue(L, tidx, T_UV_PROTO);
  t->vt = vt;
  t->proto = proto;
  t->dvt = dvt;
}

/* Calls one of the protocol's Lua-context entries in protected mode:
 * fn(L, p, pidx) with the protocol pushed; an error is reported with
 * `msg` and aborts the transport (report = 2) or is only reported
 * (report = 1). Returns what the entry returned (eof_received). */
typedef struct pcall_req {
  aio_transport *t;
  int which;
  int result;
} pcall_req;

enum { P_PAUSE, P_RESUME, P_EOF };

static int l_proto_entry(lua_State *L) {
  pcall_req *rq = lua_touserdata(L, 1);
  aio_transport *t = rq->t;
  if (!push_self(L, t))
    return 0;
  lua_getiuservalue(L, 2, T_UV_PROTO); /* [rq, self, proto] */
  switch (rq->which) {
  case P_PAUSE:
    if (t->vt->pause_writing)
      t->vt->pause_writing(L, t->proto, 3);
    break;
  case P_RESUME:
    if (t->vt->resume_writing)
      t->vt->resume_writing(L, t->proto, 3);
    break;
  case P_EOF:
    rq->result = t->vt->eof_received ? t->vt->eof_received(L, t->proto, 3)
                                     : 0;
    break;
  }
  return 0;
}

static int proto_entry(lua_State *L, aio_transport *t, int which,
                       const char *msg, int abort) {
  pcall_req rq;
  rq.t = t;
  rq.which = which;
  rq.result = 0;
  if (t->vt == NULL)
    return 0;
  lua_pushcfunction(L, l_proto_entry);
  lua_pushlightuserdata(L, &rq);
  if (aio_pcall(L, 1) != LUA_OK) {
    if (abort)
      fatal_error(L, t, -1, msg);
    else {
      if (aio_isfatal(L, -1))
        lua_error(L);
      aio_report_error(L, t->loop, msg, -1, NULL, 0);
    }
    lua_pop(L, 1);
  }
  return rq.result;
}

/* ------------------------------------------------------------------ */
/* Closing and connection_lost                                         */

/* The ready-queue entry calling connection_lost (the transport on top
 * of the stack). */
static int l_lost_body(lua_State *L) {
  aio_transport *t = lua_touserdata(L, 1);
  if (!push_self(L, t))
    return 0;
  aio_unanchor(L, &t->anchor); /* [t, self] */
  lua_getiuservalue(L, 2, T_UV_PROTO);
  lua_getiuservalue(L, 2, T_UV_EXC);  /* [t, self, proto, exc] */
  if (t->srv) {
    aio_srvcore *c = t->srv;
    t->srv = NULL;
    aio_srvcore_detach(L, c, t);
  }
  if (lua_getiuservalue(L, 2, T_UV_EXTRA) == LUA_TUSERDATA &&
      luaL_testudata(L, -1, LUA_FILEHANDLE)) { /* an owned pipe file */
    lua_getfield(L, -1, "close");
    lua_insert(L, -2);
    lua_pcall(L, 1, 0, 0); /* a failure to close is no news here */
  }
  lua_settop(L, 4);
  if (t->vt && t->vt->connection_lost)
    t->vt->connection_lost(L, t->proto, 3, 4);
  return 0;
}

static void call_lost(aio_loop *loop, lua_State *L, void *p) {
  if (L != NULL)
    aio_run_posted(loop, L, l_lost_body, p, "Exception in callback "
                   "protocol.connection_lost()");
}

/* Schedules connection_lost(exc) once; exc at eidx (0: nil). */
static void schedule_lost(lua_State *L, aio_transport *t, int eidx) {
  int top = lua_gettop(L);
  if (t->lost)
    return;
  eidx = eidx ? lua_absindex(L, eidx) : 0;
  t->lost = 1;
  if (!push_self(L, t))
    return;
  if (eidx) {
    lua_pushvalue(L, eidx);
    lua_setiuservalue(L, top + 1, T_UV_EXC);
  }
  if (t->loop->closed) {
    aio_unanchor(L, &t->anchor);
    lua_settop(L, top);
    return;
  }
  aio_ready_push(L, t->loop, AIO_R_CFUNC, t, 0, call_lost, 1);
  lua_settop(L, top);
}

/* abort(), and the end of a failed transport: closes the handle now and
 * schedules connection_lost(exc at eidx, 0: nil). */
static void force_close(lua_State *L, aio_transport *t, int eidx) {
  t->closing = 1;
  if (t->s && !t->s->killed)
    stream_kill(t->s);
  schedule_lost(L, t, eidx);
}

/* A failure: reported (unless msg is NULL or it is an OSError, as
 * asyncio's _fatal_error), then the transport is aborted with it. A
 * KeyboardInterrupt or SystemExit propagates after the abort. */
static void fatal_error(lua_State *L, aio_transport *t, int eidx,
                        const char *msg) {
  int top = lua_gettop(L);
  eidx = lua_absindex(L, eidx);
  if (msg && !aio_isfatal(L, eidx) && !aio_iserror_named(L, eidx,
                                                          "OSError")) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, eidx);
    lua_setfield(L, -2, "exception");
    if (push_self(L, t)) {
      lua_getiuservalue(L, -1, T_UV_PROTO);
      lua_setfield(L, -3, "protocol");
      lua_setfield(L, -2, "transport");
    }
    aio_report(L, t->loop);
  }
  force_close(L, t, eidx);
  if (aio_isfatal(L, eidx)) {
    lua_pushvalue(L, eidx);
    lua_error(L);
  }
  lua_settop(L, top);
}

/* A libuv error lost the transport. */
static void fatal_uv(lua_State *L, aio_transport *t, int err,
                     const char *what) {
  aio_push_uverror(L, err, what);
  fatal_error(L, t, -1, NULL);
  lua_pop(L, 1);
}

void aio_transport_close(lua_State *L, aio_transport *t) {
  if (t->closing)
    return;
  t->closing = 1;
  update_reading(t);
  if (t->s == NULL || t->s->wbytes == 0)
    force_close(L, t, 0);
  /* else the last write's completion (EV_FLUSHED) ends it */
}

void aio_transport_abort(lua_State *L, aio_transport *t) {
  force_close(L, t, 0);
}

int aio_transport_is_closing(aio_transport *t) {
  return t->closing;
}

static void stream_shut(lua_State *L, aio_io *io) {
  aio_stream *s = (aio_stream *)io;
  aio_transport *t = s->t;
  if (s->connecting)
    aio_waiter_drop(L, &s->creq); /* the task is never resumed */
  stream_kill(s);
  if (t == NULL || t->lost)
    return;
  t->closing = 1;
  t->lost = 1;
  /* a C protocol still learns the end (a stream's reader sees its end
   * of file); Lua code does not run inside loop:close() */
  if (t->vt != NULL && t->vt != &lua_vt) {
    lua_pushcfunction(L, l_lost_body);
    lua_pushlightuserdata(L, t);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
      lua_pop(L, 1);
  }
  aio_unanchor(L, &t->anchor);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

/* A read lands in the protocol's own room when it has AIO_READ_CHUNK of
 * it, else in the loop's scratch buffer (on_read copies it over). */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  aio_stream *s = h->data;
  aio_transport *t = s->t;
  aio_loop *loop = s->io.loop;
  (void)suggested;
  buf->base = NULL;
  buf->len = 0;
  if (t == NULL || t->vt == NULL)
    return; /* len 0: read_cb gets ENOBUFS */
  t->vt->get_buffer(t->proto, 0, buf);
  if (buf->len >= AIO_READ_CHUNK || loop == NULL)
    return;
  if (loop->read_scratch == NULL &&
      (loop->read_scratch = malloc(AIO_READ_CHUNK)) == NULL)
    return; /* memory is short: the protocol's own room, if any */
  s->room = *buf; /* nothing runs before on_read: still the room then */
  buf->base = loop->read_scratch;
  buf->len = AIO_READ_CHUNK;
}

/* Copies n bytes read into the loop's scratch buffer into the room the
 * protocol had, or made for them. Returns 0 when memory is short. */
static int take_scratch(aio_stream *s, const char *data, size_t n) {
  aio_transport *t = s->t;
  if (s->room.len < n)
    t->vt->get_buffer(t->proto, n, &s->room);
  if (s->room.len < n)
    return 0;
  memcpy(s->room.base, data, n);
  return 1;
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  aio_stream *s = h->data;
  aio_transport *t = s->t;
  unsigned ev = 0;
  if (t == NULL || t->vt == NULL) {
    uv_read_stop(h);
    s->reading = 0;
    return;
  }
  if (nread > 0 && s->io.loop && buf->base == s->io.loop->read_scratch &&
      !take_scratch(s, buf->base, (size_t)nread))
    nread = UV_ENOBUFS;
  if (nread > 0) {
    if (t->vt->buffer_updated(t->proto, (size_t)nread))
      ev = EV_DATA;
  } else if (nread < 0) {
    uv_read_stop(h);
    s->reading = 0;
    if (nread == UV_EOF) {
      t->eof = 1;
      ev = EV_EOF;
    } else {
      s->err = (int)nread;
      ev = EV_FATAL;
    }
  }
  if (ev)
    aio_io_notify(&s->io, ev);
}

void aio_transport_pause_reading(aio_transport *t) {
  if (t->closing || t->rpaused)
    return;
  t->rpaused = 1;
  update_reading(t);
}

void aio_transport_resume_reading(aio_transport *t) {
  if (t->closing || !t->rpaused)
    return;
  t->rpaused = 0;
  update_reading(t);
}

static void on_eof(lua_State *L, aio_transport *t) {
  int keep;
  if (t->closing)
    return;
  keep = proto_entry(L, t, P_EOF, "Fatal error: protocol.eof_received() "
                     "call failed.", 1);
  if (!keep || t->readonly)
    aio_transport_close(L, t);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

typedef struct wreq {
  uv_write_t req;
  size_t len;
} wreq;

static void on_write(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  aio_stream *s = req->handle->data;
  aio_transport *t = s->t;
  unsigned ev = 0;
  s->wbytes -= w->len;
  free(w);
  if (status == UV_ECANCELED || t == NULL)
    return;
  if (status < 0) {
    if (s->err == 0)
      s->err = status;
    ev = EV_FATAL;
  } else {
    if (t->wpaused && s->wbytes <= t->low)
      ev |= EV_DRAIN;
    if (t->closing && s->wbytes == 0)
      ev |= EV_FLUSHED;
  }
  if (ev)
    aio_io_notify(&s->io, ev);
}

/* Writes at once what the socket takes of data (nothing while writes are
 * queued): returns the bytes written, or a libuv error (UV_EAGAIN: none
 * taken). */
static int stream_try_write(aio_stream *s, const char *data, size_t len) {
  uv_buf_t b;
  if (s->wbytes != 0)
    return UV_EAGAIN;
  b.base = (char *)data;
  b.len = len;
  return uv_try_write(&s->u.s, &b, 1);
}

/* Queues a copy of data. Returns 0 or a libuv error. */
static int stream_queue(aio_stream *s, const char *data, size_t len) {
  uv_buf_t b;
  wreq *w;
  int r;
  w = malloc(sizeof *w + len);
  if (w == NULL)
    return UV_ENOMEM;
  memcpy(w + 1, data, len);
  w->len = len;
  b.base = (char *)(w + 1);
  b.len = len;
  r = uv_write(&w->req, &s->u.s, &b, 1, on_write);
  if (r != 0) {
    free(w);
    return r;
  }
  s->wbytes += len;
  return 0;
}

/* Calls pause_writing when the buffer went over the high-water mark. */
static void maybe_pause(lua_State *L, aio_transport *t) {
  if (t->wpaused || t->s == NULL || t->s->wbytes <= t->high)
    return;
  t->wpaused = 1;
  proto_entry(L, t, P_PAUSE, "protocol.pause_writing() failed", 0);
}

static void maybe_resume(lua_State *L, aio_transport *t) {
  size_t n = t->s ? t->s->wbytes : 0;
  if (!t->wpaused || n > t->low)
    return;
  t->wpaused = 0;
  proto_entry(L, t, P_RESUME, "protocol.resume_writing() failed", 0);
}

/* Raises for writing to a read pipe (asyncio's has no write methods). */
static void check_writable(lua_State *L, aio_transport *t, const char *what) {
  if (t->readonly)
    luaL_error(L, "attempt to call '%s' on a read pipe transport", what);
}

/* The rest of aio_transport_write once `tried` (0, or the result of
 * stream_try_write) left data to queue or an error. */
static void __attribute__((noinline))
write_rest(lua_State *L, aio_transport *t, const char *data, size_t len,
           int tried) {
  int r = tried;
  if (r >= 0) {
    data += r;
    len -= (size_t)r;
    r = stream_queue(t->s, data, len);
  } else if (r == UV_EAGAIN || r == UV_ENOSYS)
    r = stream_queue(t->s, data, len);
  if (r != 0)
    fatal_uv(L, t, r, "write");
  else if (t->s->wbytes > t->high)
    maybe_pause(L, t);
}

/* aio_transport_write with every check, for any transport. */
static void __attribute__((noinline))
write_checked(lua_State *L, aio_transport *t, const char *data, size_t len) {
  int r;
  check_writable(L, t, "write");
  if (t->eof_sent)
    aio_raisef(L, AIO_E_RUNTIME, "Cannot call write() after write_eof()");
  /* asyncio drops writes once the connection is gone (closed, aborted,
   * lost); a closing transport still flushing its buffer takes them */
  if (len == 0 || t->s == NULL || t->s->killed)
    return;
  r = stream_try_write(t->s, data, len);
  if (r < 0 || (size_t)r != len)
    write_rest(L, t, data, len, r);
}

/* The common case inline: an open, writable transport with nothing
 * queued, whose socket takes the whole of data (the buffer stays empty,
 * so under any high-water mark). */
void aio_transport_write(lua_State *L, aio_transport *t, const char *data,
                         size_t len) {
  aio_stream *s = t->s;
  int r;
  if (t->readonly || t->eof_sent || len == 0 || t->closing || s == NULL ||
      s->wbytes != 0) {
    write_checked(L, t, data, len);
    return;
  }
  r = stream_try_write(s, data, len);
  if (r < 0 || (size_t)r != len)
    write_rest(L, t, data, len, r);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

/* write_eof(): a socket shuts its writing side down once the buffer went
 * out; a write pipe has no half-close and closes, as asyncio's (its
 * reader then sees the end). */
void aio_transport_write_eof(lua_State *L, aio_transport *t) {
  int r;
  check_writable(L, t, "write_eof");
  if (t->writeonly) {
    aio_transport_close(L, t);
    return;
  }
  if (t->closing || t->eof_sent)
    return;
  t->eof_sent = 1;
  if (t->s == NULL)
    return;
  r = uv_shutdown(&t->s->sreq, &t->s->u.s, on_shutdown);
  if (r != 0)
    fatal_uv(L, t, r, "shutdown");
}

/* What waits to be written; 0 once aborted (what was queued is
 * discarded, as asyncio's _force_close clears its buffer). */
size_t aio_transport_buffer_size(aio_transport *t) {
  return t->s && !t->s->killed ? t->s->wbytes : 0;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

static void stream_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  aio_stream *s = (aio_stream *)io;
  aio_transport *t = s->t;
  if (ev & EV_CONNECT)
    aio_waiters_wake(L, &s->creq);
  if (t == NULL || t->vt == NULL)
    return;
  if ((ev & EV_DATA) && t->vt->wake)
    t->vt->wake(L, t->proto);
  if (ev & EV_EOF)
    on_eof(L, t);
  if ((ev & EV_FATAL) && !t->lost)
    fatal_uv(L, t, s->err, "read");
  if ((ev & EV_HUP) && !t->lost) { /* asyncio: lost, "broken" if data waits */
    if (s->wbytes > 0)
      fatal_uv(L, t, UV_EPIPE, "write");
    else
      force_close(L, t, 0);
  }
  if (ev & EV_DRAIN)
    maybe_resume(L, t);
  if ((ev & EV_FLUSHED) && t->closing)
    force_close(L, t, 0);
}

/* ------------------------------------------------------------------ */
/* Making transports                                                   */

/* Pushes the path uv_pipe_getsockname or uv_pipe_getpeername (get)
 * gives, or false; returns whether it gave one. */
static int push_unix_path(lua_State *L, aio_stream *s,
                          int (*get)(const uv_pipe_t *, char *, size_t *)) {
  /* zeroed: libuv reads path[0] even when it copied no name (unbound) */
  char path[sizeof ((struct sockaddr_un *)NULL)->sun_path] = {0};
  size_t len = sizeof path - 1;
  if (get(&s->u.pipe, path, &len) != 0) {
    lua_pushboolean(L, 0);
    return 0;
  }
  lua_pushlstring(L, path, strnlen(path, len));
  return 1;
}

/* The addresses of the transport t on top, kept as asyncio keeps its
 * extra info: from when it was made. */
static void fill_addresses(lua_State *L, aio_transport *t, aio_stream *s) {
  int n;
  uv_os_fd_t fd;
  if (uv_fileno(&s->u.h, &fd) == 0)
    t->fd = fd;
  if (s->kind == AIO_SK_TCP) {
    n = sizeof t->sock;
    t->has_sock = uv_tcp_getsockname(&s->u.tcp, &t->sock.sa, &n) == 0;
    n = sizeof t->peer;
    t->has_peer = uv_tcp_getpeername(&s->u.tcp, &t->peer.sa, &n) == 0;
  } else if (s->kind == AIO_SK_UNIX) {
    lua_createtable(L, 2, 0);
    t->has_sock = (unsigned char)push_unix_path(L, s, uv_pipe_getsockname);
    lua_rawseti(L, -2, 1);
    t->has_peer = (unsigned char)push_unix_path(L, s, uv_pipe_getpeername);
    lua_rawseti(L, -2, 2);
    lua_setiuservalue(L, -2, T_UV_EXTRA);
  }
}

aio_transport *aio_transport_push(lua_State *L, aio_stream *s, int ro,
                                  int wo) {
  aio_loop *loop = s->io.loop;
  aio_transport *t = lua_newuserdatauv(L, sizeof *t, T_UV_COUNT);
  memset(t, 0, sizeof *t);
  t->anchor = LUA_NOREF;
  t->s = s;
  t->loop = loop;
  t->kind = s->kind;
  t->fd = -1;
  t->readonly = (unsigned char)ro;
  t->writeonly = (unsigned char)wo;
  t->high = HIGH_WATER;
  t->low = HIGH_WATER / 4;
  s->t = t;
  if (s->kind == AIO_SK_TCP)
    uv_tcp_nodelay(&s->u.tcp, 1);
  luaL_setmetatable(L, AIO_TRANSPORT_MT); /* its __gc closes s from now */
  fill_addresses(L, t, s); /* a Unix socket's may raise (memory) */
  aio_push_loop(L, loop);
  lua_setiuservalue(L, -2, T_UV_LOOP);
  aio_anchor(L, &t->anchor, -1);
  return t;
}

/* [t]: connection_made(t), then reading. */
static int l_start_body(lua_State *L) {
  aio_transport *t = lua_touserdata(L, 1);
  if (!push_self(L, t) || t->vt == NULL)
    return 0;
  lua_getiuservalue(L, 2, T_UV_PROTO); /* [t, self, proto] */
  if (!t->closing && t->vt->connection_made)
    t->vt->connection_made(L, t->proto, 3, 2);
  update_reading(t);
  if (t->writeonly && t->kind == AIO_SK_PIPE && !t->closing && t->s)
    hup_start(t->s);
  return 0;
}

/* As l_start_body, reporting and aborting on error. */
static void start_now(lua_State *L, aio_transport *t) {
  lua_pushcfunction(L, l_start_body);
  lua_pushlightuserdata(L, t);
  if (aio_pcall(L, 1) != LUA_OK) {
    fatal_error(L, t, -1, "Exception in protocol.connection_made()");
    lua_pop(L, 1);
  }
}

static void start_soon(aio_loop *loop, lua_State *L, void *p) {
  (void)loop;
  if (L != NULL)
    start_now(L, p);
}

void aio_transport_start(lua_State *L, int tidx, int pidx, int now) {
  aio_transport *t = lua_touserdata(L, tidx);
  set_protocol(L, t, tidx, pidx);
  t->started = 1;
  if (now)
    start_now(L, t);
  else {
    lua_pushvalue(L, tidx);
    aio_ready_push(L, t->loop, AIO_R_CFUNC, t, 0, start_soon, 1);
  }
}

void aio_transport_set_server(aio_transport *t, aio_srvcore *c) {
  t->srv = c;
}

aio_transport *aio_transport_next_client(aio_transport *t) {
  return t->cnext;
}

void aio_transport_link_client(aio_transport **head, aio_transport *t) {
  t->cprev = NULL;
  t->cnext = *head;
  if (*head)
    (*head)->cprev = t;
  *head = t;
}

void aio_transport_unlink_client(aio_transport **head, aio_transport *t) {
  if (t->cprev)
    t->cprev->cnext = t->cnext;
  else if (*head == t)
    *head = t->cnext;
  if (t->cnext)
    t->cnext->cprev = t->cprev;
  t->cnext = t->cprev = NULL;
}

const char *aio_transport_kind(aio_transport *t) {
  switch (t->kind) {
  case AIO_SK_TCP: return "tcp";
  case AIO_SK_UNIX: return "unix";
  default: return "pipe";
  }
}

/* ------------------------------------------------------------------ */
/* Lua methods                                                         */

aio_transport *aio_test_transport(lua_State *L, int idx) {
  return luaL_testudata(L, idx, AIO_TRANSPORT_MT);
}

static aio_transport *check_transport(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, AIO_TRANSPORT_MT);
}

static int l_write(lua_State *L) {
  size_t len;
  aio_transport *t = check_transport(L, 1);
  const char *data = luaL_checklstring(L, 2, &len);
  aio_transport_write(L, t, data, len);
  return 0;
}

/* writelines(list): one write of the strings joined. */
static int l_writelines(lua_State *L) {
  check_transport(L, 1);
  aio_join_list(L, 2);
  return l_write(L);
}

void aio_join_list(lua_State *L, int idx) {
  luaL_Buffer b;
  lua_Integer i, n;
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_settop(L, idx);
  n = luaL_len(L, idx);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    if (!lua_isstring(L, -1)) /* a number is written as Lua writes it */
      luaL_error(L, "bad item #%d to 'writelines' (string expected, got "
                 "%s)", (int)i, luaL_typename(L, -1));
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_replace(L, idx);
}

static int l_write_eof(lua_State *L) {
  aio_transport_write_eof(L, check_transport(L, 1));
  return 0;
}

static int l_can_write_eof(lua_State *L) {
  aio_transport *t = check_transport(L, 1);
  lua_pushboolean(L, !t->readonly);
  return 1;
}

static int l_close(lua_State *L) {
  aio_transport_close(L, check_transport(L, 1));
  return 0;
}

static int l_abort(lua_State *L) {
  aio_transport_abort(L, check_transport(L, 1));
  return 0;
}

static int l_is_closing(lua_State *L) {
  lua_pushboolean(L, check_transport(L, 1)->closing);
  return 1;
}

static int l_pause_reading(lua_State *L) {
  aio_transport_pause_reading(check_transport(L, 1));
  return 0;
}

static int l_resume_reading(lua_State *L) {
  aio_transport_resume_reading(check_transport(L, 1));
  return 0;
}

static int l_is_reading(lua_State *L) {
  aio_transport *t = check_transport(L, 1);
  lua_pushboolean(L, !t->closing && !t->rpaused && !t->writeonly);
  return 1;
}

void aio_check_write_limits(lua_State *L, lua_Integer def_high,
                            size_t *high_out, size_t *low_out) {
  lua_Integer high, low;
  if (lua_isnoneornil(L, 2))
    high = lua_isnoneornil(L, 3) ? def_high : 4 * luaL_checkinteger(L, 3);
  else
    high = luaL_checkinteger(L, 2);
  low = lua_isnoneornil(L, 3) ? (high >= 0 ? high / 4 : -((3 - high) / 4))
                              : luaL_checkinteger(L, 3); /* high // 4 */
  if (!(high >= low && low >= 0))
    aio_raisef(L, AIO_E_VALUE, "high (%I) must be >= low (%I) must be >= 0",
               high, low);
  *high_out = (size_t)high;
  *low_out = (size_t)low;
}

/* set_write_buffer_limits([high [, low]]), as asyncio's: high defaults
 * to 64 KiB. */
static int l_set_write_buffer_limits(lua_State *L) {
  aio_transport *t = check_transport(L, 1);
  aio_check_write_limits(L, HIGH_WATER, &t->high, &t->low);
  maybe_pause(L, t);
  return 0;
}

static int l_get_write_buffer_limits(lua_State *L) {
  aio_transport *t = check_transport(L, 1);
  lua_pushinteger(L, (lua_Integer)t->low);
  lua_pushinteger(L, (lua_Integer)t->high);
  return 2;
}

static int l_get_write_buffer_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)aio_transport_buffer_size(
                         check_transport(L, 1)));
  return 1;
}

static int l_set_protocol(lua_State *L) {
  aio_transport *t = check_transport(L, 1);
  luaL_checkany(L, 2);
  set_protocol(L, t, 1, 2);
  update_reading(t);
  return 0;
}

static int l_get_protocol(lua_State *L) {
  check_transport(L, 1);
  lua_getiuservalue(L, 1, T_UV_PROTO);
  return 1;
}

static int l_get_loop(lua_State *L) {
  check_transport(L, 1);
  lua_getiuservalue(L, 1, T_UV_LOOP);
  return 1;
}

/* get_extra_info(name [, default]): "peername" and "sockname" ({host,
 * port}, or the path of a Unix socket), "socket" ({fd =, family =}),
 * "pipe" (the file a pipe transport owns). */
static int l_get_extra_info(lua_State *L) {
  aio_transport *t = check_transport(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int peer = strcmp(name, "peername") == 0;
  lua_settop(L, 3);
  if ((peer && t->has_peer) ||
      (!peer && strcmp(name, "sockname") == 0 && t->has_sock)) {
    if (t->kind == AIO_SK_TCP)
      aio_push_sockaddr(L, peer ? &t->peer.sa : &t->sock.sa);
    else { /* a Unix socket's path */
      lua_getiuservalue(L, 1, T_UV_EXTRA);
      lua_rawgeti(L, -1, peer ? 2 : 1);
    }
    return 1;
  }
  if (strcmp(name, "socket") == 0 && t->kind != AIO_SK_PIPE) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, t->fd);
    lua_setfield(L, -2, "fd");
    lua_pushinteger(L, t->kind == AIO_SK_TCP ? t->sock.sa.sa_family : AF_UNIX);
    lua_setfield(L, -2, "family");
    return 1;
  } else if (strcmp(name, "pipe") == 0 && t->kind == AIO_SK_PIPE) {
    if (lua_getiuservalue(L, 1, T_UV_EXTRA) == LUA_TNIL)
      lua_pushinteger(L, t->fd);
    return 1;
  }
  return 1; /* the default */
}

/* _start(protocol): sets it; connection_made follows from the ready
 * queue, then reading (the loop's create_* methods). */
static int l__start(lua_State *L) {
  aio_transport *t = check_transport(L, 1);
  luaL_checkany(L, 2);
  if (t->started)
    return luaL_error(L, "transport already started");
  aio_transport_start(L, 1, 2, 0);
  return 0;
}

static int l__tostring(lua_State *L) {
  aio_transport *t = check_transport(L, 1);
  const char *state = t->s == NULL ? " closed"
                      : t->closing ? " closing" : "";
  lua_pushfstring(L, "<Transport %s fd=%d%s%s bufsize=%I>",
                  aio_transport_kind(t), t->fd, state,
                  t->rpaused ? " paused" : "",
                  (lua_Integer)aio_transport_buffer_size(t));
  return 1;
}

/* Only a transport nothing anchors any more is collected: one whose
 * connection_lost was called, never started, or of a closed loop. */
static int l__gc(lua_State *L) {
  aio_transport *t = lua_touserdata(L, 1);
  aio_stream *s = t->s;
  if (s) {
    s->t = NULL;
    t->s = NULL;
    if (!s->killed)
      stream_kill(s);
  }
  if (t->srv) {
    aio_srvcore *c = t->srv;
    t->srv = NULL;
    aio_srvcore_detach(L, c, t);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

static void on_connect(uv_connect_t *req, int status) {
  aio_stream *s = req->handle->data;
  s->connecting = 0;
  s->cstatus = status;
  aio_io_notify(&s->io, EV_CONNECT);
}

/* [.., s, fut] with the stream at sidx: returns the Transport. */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  int sidx = (int)ctx, fidx = sidx + 1, threw;
  aio_stream *s = lua_touserdata(L, sidx);
  aio_future *f = lua_touserdata(L, fidx);
  (void)status;
  threw = aio_resume_take_throw(L, aio_current_task_of(L));
  if (threw || f->state == AIO_CANCELLED || s->connecting) {
    aio_waiter_drop(L, &s->creq);
    aio_stream_abort(s);
    if (threw)
      return lua_error(L);
    return aio_future_push_result(L, fidx);
  }
  if (s->cstatus < 0) {
    int err = s->cstatus;
    aio_stream_abort(s);
    if (s->kind == AIO_SK_UNIX) /* the path is at 1 */
      aio_push_path_error(L, err, "connect", 1, 0);
    else
      aio_push_uverror(L, err, "connect");
    return lua_error(L);
  }
  aio_transport_push(L, s, 0, 0);
  return 1;
}

static int connect_wait(lua_State *L, aio_task *t, aio_stream *s) {
  int sidx;
  lua_pushlightuserdata(L, s);
  sidx = lua_gettop(L);
  s->connecting = 1;
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &s->creq, sidx, connect_k);
}

/* Parses the {host, port} table at idx (host defaulting to the wildcard
 * of `family`) into *ss. Returns a libuv error code. */
static int parse_addr(lua_State *L, int idx, int family,
                      struct sockaddr_storage *ss) {
  const char *h;
  int r;
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, idx, 1);
  lua_rawgeti(L, idx, 2);
  h = luaL_optstring(L, -2, family == AF_INET6 ? "::" : "0.0.0.0");
  r = aio_sockaddr_parse(h, (int)luaL_optinteger(L, -1, 0), ss);
  lua_pop(L, 2);
  return r;
}

/* _tcp_connect(host, port [, {local_addr = {host, port}}]): host is a
 * numeric address. Returns a Transport with no protocol yet. */
static int tcp_connect_body(lua_State *L) {
  struct sockaddr_storage ss, local;
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2), r;
  aio_task *t;
  aio_stream *s;
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  r = aio_sockaddr_parse(host, port, &ss);
  if (r != 0)
    return aio_raise_uv(L, r, "connect");
  local.ss_family = AF_UNSPEC;
  if (lua_istable(L, 3) && lua_getfield(L, 3, "local_addr") == LUA_TTABLE) {
    r = parse_addr(L, -1, ss.ss_family, &local);
    if (r != 0)
      return aio_raise_uv(L, r, "bind");
  }
  lua_settop(L, 3);
  t = aio_check_await(L, "create_connection");
  s = aio_stream_new(L, t->fut.loop, AIO_SK_TCP);
  if (local.ss_family != AF_UNSPEC &&
      (r = uv_tcp_bind(&s->u.tcp, (struct sockaddr *)&local, 0)) != 0) {
    aio_stream_abort(s);
    return aio_raise_uv(L, r, "bind");
  }
  r = uv_tcp_connect(&s->creq, &s->u.tcp, (struct sockaddr *)&ss,
                     on_connect);
  if (r != 0) {
    aio_stream_abort(s);
    return aio_raise_uv(L, r, "connect");
  }
  return connect_wait(L, t, s);
}

static int l_tcp_connect(lua_State *L) {
  return aio_ccoro_method(L, 3, tcp_connect_body);
}

/* Raises OSError "AF_UNIX path too long" (with .filename) for a path a
 * socket address cannot hold, as Python does. */
void aio_check_unix_path(lua_State *L, int idx) {
  struct sockaddr_un un;
  size_t len;
  luaL_checklstring(L, idx, &len);
  if (len < sizeof un.sun_path)
    return;
  aio_push_error_named(L, "OSError", "AF_UNIX path too long");
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "filename");
  lua_error(L);
}

/* _unix_connect(path): a Transport with no protocol yet. */
static int unix_connect_body(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  aio_task *t;
  aio_stream *s;
  lua_settop(L, 1);
  aio_check_unix_path(L, 1);
  t = aio_check_await(L, "create_unix_connection");
  s = aio_stream_new(L, t->fut.loop, AIO_SK_UNIX);
  uv_pipe_connect(&s->creq, &s->u.pipe, path, on_connect);
  return connect_wait(L, t, s);
}

static int l_unix_connect(lua_State *L) {
  luaL_checkstring(L, 1);
  return aio_ccoro_method(L, 1, unix_connect_body);
}

/* Raises ValueError, as asyncio's pipe transports do, unless fd is a
 * pipe, a socket or a terminal: what libuv can poll (a regular file, or
 * a character device such as /dev/null, would abort the loop). */
static void check_pipe_fd(lua_State *L, int fd, int readable) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    aio_raise_uv(L, uv_translate_sys_error(errno), "fstat");
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
      (S_ISCHR(st.st_mode) && isatty(fd)))
    return;
  aio_raisef(L, AIO_E_VALUE, readable
             ? "Pipe transport is for pipes/sockets only."
             : "Pipe transport is only for pipes, sockets and character "
               "devices");
}

/* _pipe_open(pipe, readable): a Transport over a pipe (or any stream
 * fd): pipe is a Lua file, whose descriptor the transport duplicates and
 * which it keeps and closes when lost, or a descriptor it takes
 * (connect_read_pipe / connect_write_pipe). */
static int l_pipe_open(lua_State *L) {
  luaL_Stream *f = luaL_testudata(L, 1, LUA_FILEHANDLE);
  int ro = lua_toboolean(L, 2), fd, r;
  aio_loop *loop = aio_get_event_loop(L);
  aio_stream *s;
  if (f != NULL) {
    if (f->closef == NULL)
      return luaL_argerror(L, 1, "attempt to use a closed file");
    check_pipe_fd(L, fileno(f->f), ro);
    /* no child spawned later may inherit either descriptor: it would
     * keep the pipe open after the transport closed it */
    fcntl(fileno(f->f), F_SETFD, FD_CLOEXEC);
    fd = fcntl(fileno(f->f), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
      return aio_raise_uv(L, uv_translate_sys_error(errno), "dup");
  } else if (lua_isinteger(L, 1)) {
    fd = (int)lua_tointeger(L, 1);
    check_pipe_fd(L, fd, ro);
  } else
    return luaL_typeerror(L, 1, "file or file descriptor");
  aio_check_open(L, loop);
  s = aio_stream_new(L, loop, AIO_SK_PIPE);
  r = uv_pipe_open(&s->u.pipe, fd);
  if (r != 0) {
    aio_stream_abort(s);
    if (f != NULL)
      close(fd);
    return aio_raise_uv(L, r, "pipe");
  }
  aio_transport_push(L, s, ro, !ro);
  if (f != NULL) {
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, T_UV_EXTRA);
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* Registration                                                        */

static const luaL_Reg transport_methods[] = {
    {"write", l_write},
    {"writelines", l_writelines},
    {"write_eof", l_write_eof},
    {"can_write_eof", l_can_write_eof},
    {"close", l_close},
    {"abort", l_abort},
    {"is_closing", l_is_closing},
    {"pause_reading", l_pause_reading},
    {"resume_reading", l_resume_reading},
    {"is_reading", l_is_reading},
    {"set_write_buffer_limits", l_set_write_buffer_limits},
    {"get_write_buffer_limits", l_get_write_buffer_limits},
    {"get_write_buffer_size", l_get_write_buffer_size},
    {"set_protocol", l_set_protocol},
    {"get_protocol", l_get_protocol},
    {"get_extra_info", l_get_extra_info},
    {"get_loop", l_get_loop},
    {"_start", l__start},
    {NULL, NULL}};

static const luaL_Reg transport_metamethods[] = {
    {"__gc", l__gc},
    {"__tostring", l__tostring},
    {NULL, NULL}};

static const luaL_Reg transport_funcs[] = {
    {"_tcp_connect", l_tcp_connect},
    {"_unix_connect", l_unix_connect},
    {"_pipe_open", l_pipe_open},
    {NULL, NULL}};

static const aio_transport_vt transport_vt = {aio_transport_write};

void aio_open_transport(lua_State *L) {
  aio_newclass(L, AIO_TRANSPORT_MT, AIO_K_OTHER, transport_methods,
               transport_metamethods);
  luaL_getmetatable(L, AIO_TRANSPORT_MT);
  lua_pushlightuserdata(L, (void *)&transport_vt);
  lua_setfield(L, -2, AIO_TRANSPORT_VT);
  lua_pop(L, 1);
  luaL_setfuncs(L, transport_funcs, 0);
  luaL_getmetatable(L, AIO_LOOP_MT);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, "_EventLoop"); /* the methods, for transports.lua */
  lua_pop(L, 1);
}
