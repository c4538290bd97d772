/*
 * stream.c - TCP and Unix stream transports: StreamReader, StreamWriter,
 * open_connection / start_server (the C halves; the Lua facade is
 * lua/asyncio/streams.lua). Streams are I/O objects of their loop (io.c);
 * process.c uses them for a child's pipes.
 *
 * A connection is one `stream` (the transport: the uv handle and the
 * write queue) shared by a StreamReader and a StreamWriter userdata. The
 * reader owns the read buffer, so that data read before the transport
 * closed can still be read after. Each of them points at the stream and
 * the stream at them; whoever goes first detaches, and the handle closes
 * when the writer closes it, when neither is left, or when the loop
 * closes. Closing detaches both at once: the callbacks that follow only
 * free C memory.
 *
 * Flow control follows asyncio: reading stops while the buffer holds more
 * than `limit` bytes (64 KiB by default) and starts again once a read
 * drains it or a reader waits for more; drain() waits while more than
 * 64 KiB are queued for writing, until 16 KiB are left.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_LIMIT 65536
#define READ_CHUNK 65536
#define HIGH_WATER 65536
#define LOW_WATER 16384

/* ------------------------------------------------------------------ */
/* Types                                                               */

typedef struct aio_reader aio_reader;
typedef struct aio_writer aio_writer;
typedef struct srvcore srvcore;

enum { K_TCP, K_PIPE };

/* Events of a stream. */
enum {
  EV_CONNECT = 1, /* the connect request completed */
  EV_READ = 2,    /* data, end of file or a read error for a waiter */
  EV_EOF = 4,     /* end of file */
  EV_FATAL = 8,   /* a read or write error: the transport is lost */
  EV_DRAIN = 16   /* the write queue fell to the low-water mark */
};

struct aio_stream {
  aio_io io;
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  uv_connect_t creq;
  uv_shutdown_t sreq;
  aio_reader *reader;  /* attached reader or NULL */
  aio_writer *writer;  /* attached writer or NULL */
  srvcore *srv;        /* the server that accepted it, or NULL */
  struct aio_stream *next_accepted; /* in its listener's queue */
  size_t wbytes;       /* bytes queued in write requests */
  int cstatus;         /* connect result */
  int err;             /* the read or write error that lost it */
  unsigned char kind, connecting, closing, eof_sent, shutting;
  unsigned char wpaused; /* over the high-water mark */
  unsigned char reading;
};
typedef struct aio_stream stream;

/* A queued write: its data follows. */
typedef struct wreq {
  uv_write_t req;
  size_t len;
} wreq;

struct aio_reader {
  stream *s;           /* NULL when standalone or once the transport closed */
  aio_loop *loop;      /* bound loop (also user value R_UV_LOOP) */
  char *buf;
  size_t off, len, cap;
  size_t limit;
  size_t want;         /* the waiter wakes once len >= want (or eof) */
  aio_future *waiter;  /* the future a reading task waits on (registered
                          under the reader's address), or NULL */
  int err;             /* read error (libuv code) */
  unsigned char eof, paused, has_exc;
};

enum { R_UV_LOOP = 1, R_UV_EXC, R_UV_COUNT = R_UV_EXC };

struct aio_writer {
  stream *s;           /* NULL once closed */
  aio_loop *loop;
  struct sockaddr_storage sock, peer;
  int err;             /* the error that lost the transport */
  unsigned char closed, kind, has_sock, has_peer;
  char drain_key, closed_key; /* addresses: keys of the waiting futures */
};

enum { W_UV_READER = 1, W_UV_LOOP, W_UV_COUNT = W_UV_LOOP };

/* ------------------------------------------------------------------ */
/* Transports                                                          */

static void stream_dispatch(lua_State *L, aio_io *io, unsigned ev);
static void stream_shut(lua_State *L, aio_io *io);
static void stream_close(lua_State *L, stream *s, int graceful);

static void on_stream_closed(uv_handle_t *h) {
  aio_io_release((aio_io *)h->data);
}

/* The `close` hook of aio_io for loop.c's last-resort walk. */
static void stream_close_hook(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_stream_closed);
}

/* A new linked stream, or NULL with *err set. Never raises. */
static stream *stream_alloc(aio_loop *loop, int kind, int *err) {
  stream *s = calloc(1, sizeof *s);
  if (s == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = kind == K_TCP ? uv_tcp_init(loop->uv, &s->u.tcp)
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

static stream *stream_new(lua_State *L, aio_loop *loop, int kind) {
  int err;
  stream *s = stream_alloc(loop, kind, &err);
  if (s == NULL)
    aio_raise_uv(L, err, "socket");
  aio_io_ignore_sigpipe();
  return s;
}

aio_stream *aio_stream_new_pipe(lua_State *L, aio_loop *loop) {
  return stream_new(L, loop, K_PIPE);
}

uv_stream_t *aio_stream_uv(aio_stream *s) {
  return &s->u.s;
}

/* Closes the handle now: pending writes are dropped. */
static void stream_kill(stream *s) {
  if (!uv_is_closing(&s->u.h))
    uv_close(&s->u.h, on_stream_closed);
}

void aio_stream_abort(aio_stream *s) {
  s->closing = 1;
  stream_kill(s);
}

static void stream_shut(lua_State *L, aio_io *io) {
  stream *s = (stream *)io;
  if (s->connecting)
    aio_waiter_drop(L, &s->creq); /* the task is never resumed */
  if (s->reader || s->writer)
    stream_close(L, s, 0);
  else {
    s->closing = 1;
    stream_kill(s);
  }
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

/* Makes room for n more bytes after the buffered ones: moves them to the
 * start of the buffer, else grows it (at least doubling). Returns 0, or
 * -1 when memory is short. */
static int reader_reserve(aio_reader *r, size_t n) {
  size_t ncap;
  char *nb;
  if (r->cap - r->off - r->len >= n)
    return 0;
  if (r->off > 0) {
    memmove(r->buf, r->buf + r->off, r->len);
    r->off = 0;
    if (r->cap - r->len >= n)
      return 0;
  }
  ncap = r->cap * 2;
  if (ncap < r->len + n)
    ncap = r->len + n;
  nb = realloc(r->buf, ncap);
  if (nb == NULL)
    return -1;
  r->buf = nb;
  r->cap = ncap;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  stream *s = h->data;
  aio_reader *r = s->reader;
  (void)suggested;
  buf->base = NULL;
  buf->len = 0;
  if (r == NULL || reader_reserve(r, READ_CHUNK) != 0)
    return; /* read_cb gets UV_ENOBUFS */
  buf->base = r->buf + r->off + r->len;
  buf->len = r->cap - r->off - r->len;
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);

static void reader_pause(aio_reader *r) {
  stream *s = r->s;
  if (s && s->reading) {
    uv_read_stop(&s->u.s);
    s->reading = 0;
    r->paused = 1;
  }
}

/* Starts reading again unless the transport is gone or at its end. */
static void reader_resume(aio_reader *r) {
  stream *s = r->s;
  r->paused = 0;
  if (s && !s->reading && !s->closing && !r->eof) {
    if (uv_read_start(&s->u.s, on_alloc, on_read) == 0)
      s->reading = 1;
  }
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  stream *s = h->data;
  aio_reader *r = s->reader;
  unsigned ev = 0;
  (void)buf;
  if (r == NULL) {
    uv_read_stop(h);
    s->reading = 0;
    return;
  }
  if (nread > 0) {
    r->len += (size_t)nread;
    if (r->len > r->limit && !(r->waiter && r->len < r->want))
      reader_pause(r);
    if (r->waiter && r->len >= r->want)
      ev = EV_READ;
  } else if (nread < 0) {
    uv_read_stop(h);
    s->reading = 0;
    r->eof = 1;
    ev = EV_READ | EV_EOF;
    if (nread != UV_EOF) {
      r->err = (int)nread;
      s->err = (int)nread;
      ev |= EV_FATAL;
    }
  }
  if (ev)
    aio_io_notify(&s->io, ev);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

static void writer_drained(stream *s) {
  if (s->wpaused && s->wbytes <= LOW_WATER) {
    s->wpaused = 0;
    aio_io_notify(&s->io, EV_DRAIN);
  }
}

static void on_write(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  stream *s = req->handle->data;
  s->wbytes -= w->len;
  free(w);
  if (status == UV_ECANCELED)
    return;
  if (status < 0) {
    if (s->err == 0)
      s->err = status;
    aio_io_notify(&s->io, EV_FATAL);
    return;
  }
  writer_drained(s);
}

/* Writes or queues a copy of data. Returns 0 or a libuv error (the
 * transport is then lost; the caller reports it). */
static int stream_write(stream *s, const char *data, size_t len) {
  uv_buf_t b;
  wreq *w;
  int r;
  if (len == 0)
    return 0;
  if (s->wbytes == 0) {
    b = uv_buf_init((char *)data, (unsigned)len);
    r = uv_try_write(&s->u.s, &b, 1);
    if (r >= 0) {
      if ((size_t)r == len)
        return 0;
      data += r;
      len -= (size_t)r;
    } else if (r != UV_EAGAIN && r != UV_ENOSYS)
      return r;
  }
  w = malloc(sizeof *w + len);
  if (w == NULL)
    return UV_ENOMEM;
  memcpy(w + 1, data, len);
  w->len = len;
  b = uv_buf_init((char *)(w + 1), (unsigned)len);
  r = uv_write(&w->req, &s->u.s, &b, 1, on_write);
  if (r != 0) {
    free(w);
    return r;
  }
  s->wbytes += len;
  if (s->wbytes > HIGH_WATER)
    s->wpaused = 1;
  return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  stream *s = req->handle->data;
  (void)status;
  s->shutting = 0;
  if (s->closing)
    stream_kill(s);
}

/* ------------------------------------------------------------------ */
/* Closing                                                             */

static void srvcore_conn_closed(lua_State *L, srvcore *c);

static void wake_reader(lua_State *L, aio_reader *r) {
  if (r->waiter == NULL)
    return;
  r->waiter = NULL;
  aio_waiters_wake(L, r);
}

/* Detaches the reader and writer (waking their waiters) and closes the
 * handle: at once, or (graceful) once the queued writes went out. */
static void stream_close(lua_State *L, stream *s, int graceful) {
  aio_reader *r = s->reader;
  aio_writer *w = s->writer;
  if (s->closing && r == NULL && w == NULL)
    return;
  s->closing = 1;
  if (s->reading) {
    uv_read_stop(&s->u.s);
    s->reading = 0;
  }
  if (r) {
    r->eof = 1;
    r->s = NULL;
    s->reader = NULL;
    wake_reader(L, r);
  }
  if (w) {
    w->s = NULL;
    if (w->err == 0)
      w->err = s->err;
    s->writer = NULL;
    aio_waiters_wake(L, &w->drain_key);
    aio_waiters_wake(L, &w->closed_key);
  }
  if (s->srv) {
    srvcore *c = s->srv;
    s->srv = NULL;
    srvcore_conn_closed(L, c);
  }
  if (graceful && s->wbytes > 0 && s->err == 0) {
    if (!s->shutting) {
      if (uv_shutdown(&s->sreq, &s->u.s, on_shutdown) == 0)
        s->shutting = 1;
      else
        stream_kill(s);
    }
    /* else on_shutdown closes it */
  } else
    stream_kill(s);
}

static void stream_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  stream *s = (stream *)io;
  if (ev & EV_CONNECT)
    aio_waiters_wake(L, &s->creq);
  if ((ev & EV_READ) && s->reader)
    wake_reader(L, s->reader);
  if (ev & EV_FATAL)
    stream_close(L, s, 0);
  else if ((ev & EV_EOF) && s->writer == NULL && s->kind == K_PIPE &&
           !s->closing)
    stream_close(L, s, 1); /* a read-only pipe is done at its end */
  if ((ev & EV_DRAIN) && s->writer)
    aio_waiters_wake(L, &s->writer->drain_key);
}

/* ------------------------------------------------------------------ */
/* StreamReader                                                        */

static aio_reader *check_reader(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, AIO_READER_MT);
}

/* Pushes a new reader (limit 0: the default). */
static aio_reader *reader_new(lua_State *L, size_t limit) {
  aio_reader *r = lua_newuserdatauv(L, sizeof *r, R_UV_COUNT);
  memset(r, 0, sizeof *r);
  r->limit = limit ? limit : DEFAULT_LIMIT;
  luaL_setmetatable(L, AIO_READER_MT);
  return r;
}

static void reader_bind(lua_State *L, aio_reader *r, int ridx,
                        aio_loop *loop) {
  r->loop = loop;
  aio_push_loop(L, loop);
  lua_setiuservalue(L, ridx, R_UV_LOOP);
}

void aio_stream_push_reader(lua_State *L, aio_stream *s, size_t limit) {
  aio_reader *r = reader_new(L, limit);
  reader_bind(L, r, lua_gettop(L), s->io.loop);
  r->s = s;
  s->reader = r;
  reader_resume(r);
}

/* Consumes n bytes; reading starts again once the buffer is under the
 * limit. */
static void reader_consume(aio_reader *r, size_t n) {
  r->off += n;
  r->len -= n;
  if (r->len == 0)
    r->off = 0;
  if (r->paused && r->len <= r->limit)
    reader_resume(r);
}

static void push_take(lua_State *L, aio_reader *r, size_t n) {
  lua_pushlstring(L, r->buf + r->off, n);
  reader_consume(r, n);
}

/* Raises the reader's exception, if any. */
static void reader_check_exc(lua_State *L, aio_reader *r, int ridx) {
  if (r->has_exc) {
    lua_getiuservalue(L, ridx, R_UV_EXC);
    lua_error(L);
  }
  if (r->err)
    aio_raise_uv(L, r->err, "read");
}

/* Where a reading operation's wait keeps its future: the reader is at
 * 1, the operation's argument (or nil) at 2. */
#define READ_FIDX 3

/* Suspends the task until len >= want or the end of the stream, with
 * continuation k (ctx passed along). */
static int reader_wait(lua_State *L, aio_reader *r, const char *what,
                       size_t want, lua_KContext ctx, lua_KFunction k) {
  aio_task *t;
  if (r->waiter)
    return aio_raisef(L, AIO_E_RUNTIME, "%s() called while another "
                      "coroutine is already waiting for incoming data",
                      what);
  t = aio_check_await(L, what);
  if (r->loop == NULL)
    reader_bind(L, r, 1, t->fut.loop);
  else if (r->loop != t->fut.loop)
    return aio_raisef(L, AIO_E_RUNTIME, "StreamReader is bound to a "
                      "different event loop");
  lua_settop(L, READ_FIDX - 1);
  r->waiter = aio_future_new(L, t->fut.loop);
  r->want = want;
  if (r->paused || (r->s && !r->s->reading))
    reader_resume(r);
  return aio_waiters_await(L, t, r, ctx, k);
}

/* In a continuation: ends the wait, raising when the task was cancelled
 * or thrown an error; else pops the future. The buffer is left as it
 * is. */
static void reader_resumed(lua_State *L, aio_reader *r) {
  /* a wake-up cleared r->waiter, which may hold another task's future
   * by now */
  if (r->waiter == lua_touserdata(L, READ_FIDX))
    r->waiter = NULL;
  aio_waiters_resumed(L, r, READ_FIDX);
  lua_settop(L, READ_FIDX - 1);
}

/* read([n]) -------------------------------------------------------- */

static int read_body(lua_State *L);

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  reader_resumed(L, lua_touserdata(L, 1));
  return read_body(L);
}

/* [reader, n] */
static int read_body(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  lua_Integer n = luaL_optinteger(L, 2, -1);
  lua_settop(L, 2);
  reader_check_exc(L, r, 1);
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (n < 0) {
    if (!r->eof)
      return reader_wait(L, r, "read", (size_t)-1, 0, read_k);
    push_take(L, r, r->len);
    return 1;
  }
  if (r->len == 0) {
    if (r->eof) {
      lua_pushliteral(L, "");
      return 1;
    }
    return reader_wait(L, r, "read", 1, 0, read_k);
  }
  push_take(L, r, r->len < (size_t)n ? r->len : (size_t)n);
  return 1;
}

static int l_reader_read(lua_State *L) {
  check_reader(L, 1);
  luaL_optinteger(L, 2, -1);
  return aio_ccoro_method(L, 2, read_body);
}

/* readexactly(n) --------------------------------------------------- */

/* Pushes IncompleteReadError(partial, expected) where expected < 0 means
 * none, and raises it. */
static int raise_incomplete(lua_State *L, aio_reader *r, lua_Integer exp) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  lua_getfield(L, -1, "IncompleteReadError");
  push_take(L, r, r->len);
  if (exp < 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, exp);
  lua_call(L, 2, 1);
  return lua_error(L);
}

static int readexactly_body(lua_State *L);

static int readexactly_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  reader_resumed(L, lua_touserdata(L, 1));
  return readexactly_body(L);
}

/* [reader, n] */
static int readexactly_body(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_settop(L, 2);
  if (n < 0)
    return aio_raisef(L, AIO_E_VALUE,
                      "readexactly size can not be less than zero");
  reader_check_exc(L, r, 1);
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (r->len < (size_t)n) {
    if (r->eof)
      return raise_incomplete(L, r, n);
    return reader_wait(L, r, "readexactly", (size_t)n, 0, readexactly_k);
  }
  push_take(L, r, (size_t)n);
  return 1;
}

static int l_reader_readexactly(lua_State *L) {
  check_reader(L, 1);
  luaL_checkinteger(L, 2);
  return aio_ccoro_method(L, 2, readexactly_body);
}

/* readuntil(sep) / readline() --------------------------------------- */

enum { U_FOUND, U_WAIT, U_EOF, U_OVER_NOTFOUND, U_OVER_FOUND };

/* One scan for sep from *offset (kept across waits, as asyncio does).
 * U_FOUND: *pos = bytes up to and including sep; U_OVER_*: *pos =
 * Python's `consumed`. */
static int scan_until(aio_reader *r, const char *sep, size_t seplen,
                      size_t *offset, size_t *pos) {
  if (r->len >= seplen && r->len - *offset >= seplen) {
    const char *base = r->buf + r->off;
    const char *hit = memmem(base + *offset, r->len - *offset, sep, seplen);
    if (hit != NULL) {
      size_t isep = (size_t)(hit - base);
      if (isep > r->limit) {
        *pos = isep;
        return U_OVER_FOUND;
      }
      *pos = isep + seplen;
      return U_FOUND;
    }
    *offset = r->len + 1 - seplen;
    if (*offset > r->limit) {
      *pos = *offset;
      return U_OVER_NOTFOUND;
    }
  }
  return r->eof ? U_EOF : U_WAIT;
}

static int raise_overrun(lua_State *L, int st, size_t consumed) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  lua_getfield(L, -1, "LimitOverrunError");
  lua_pushstring(L, st == U_OVER_FOUND
                        ? "Separator is found, but chunk is longer than "
                          "limit"
                        : "Separator is not found, and chunk exceed the "
                          "limit");
  lua_pushinteger(L, (lua_Integer)consumed);
  lua_call(L, 2, 1);
  return lua_error(L);
}

static int readuntil_body(lua_State *L);
static int readuntil_run(lua_State *L, size_t offset);

static int readuntil_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  reader_resumed(L, lua_touserdata(L, 1));
  return readuntil_run(L, (size_t)ctx);
}

static int readuntil_run(lua_State *L, size_t offset) {
  aio_reader *r = lua_touserdata(L, 1);
  size_t seplen, pos;
  const char *sep = lua_tolstring(L, 2, &seplen);
  int st;
  reader_check_exc(L, r, 1);
  st = scan_until(r, sep, seplen, &offset, &pos);
  switch (st) {
  case U_FOUND:
    push_take(L, r, pos);
    return 1;
  case U_WAIT:
    return reader_wait(L, r, "readuntil", r->len + 1, (lua_KContext)offset,
                       readuntil_k);
  case U_EOF:
    return raise_incomplete(L, r, -1);
  default:
    return raise_overrun(L, st, pos);
  }
}

/* [reader, sep] */
static int readuntil_body(lua_State *L) {
  size_t seplen;
  check_reader(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushliteral(L, "\n");
  }
  luaL_checklstring(L, 2, &seplen);
  lua_settop(L, 2);
  if (seplen == 0)
    return aio_raisef(L, AIO_E_VALUE,
                      "Separator should be at least one-byte string");
  return readuntil_run(L, 0);
}

static int l_reader_readuntil(lua_State *L) {
  check_reader(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_checkstring(L, 2);
  return aio_ccoro_method(L, 2, readuntil_body);
}

/* readline: a line with its "\n"; at the end, what is left (maybe "").
 * Past the limit it raises LimitOverrunError after dropping the long
 * line (through its newline when it arrived), as asyncio does before
 * raising ValueError. `nil_at_eof`: the lines() iterator ends with nil. */
static int readline_run(lua_State *L, size_t offset, int nil_at_eof);

static int readline_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  reader_resumed(L, lua_touserdata(L, 1));
  return readline_run(L, (size_t)ctx >> 1, (int)(ctx & 1));
}

static int readline_run(lua_State *L, size_t offset, int nil_at_eof) {
  aio_reader *r = lua_touserdata(L, 1);
  size_t pos;
  int st;
  reader_check_exc(L, r, 1);
  st = scan_until(r, "\n", 1, &offset, &pos);
  switch (st) {
  case U_FOUND:
    push_take(L, r, pos);
    return 1;
  case U_WAIT:
    return reader_wait(L, r, "readline", r->len + 1,
                       (lua_KContext)((offset << 1) | (size_t)nil_at_eof),
                       readline_k);
  case U_EOF:
    if (r->len == 0 && nil_at_eof) {
      lua_pushnil(L);
      return 1;
    }
    push_take(L, r, r->len);
    return 1;
  default:
    if (st == U_OVER_FOUND)
      reader_consume(r, pos + 1);
    else
      reader_consume(r, r->len);
    return raise_overrun(L, st, pos);
  }
}

static int readline_body(lua_State *L) {
  check_reader(L, 1);
  lua_settop(L, 1);
  return readline_run(L, 0, 0);
}

static int l_reader_readline(lua_State *L) {
  check_reader(L, 1);
  return aio_ccoro_method(L, 1, readline_body);
}

/* The iterator of `for line in reader:lines()` and `for line in reader`:
 * awaits the next line inside the task; nil at the end. */
static int l_reader_lines_next(lua_State *L) {
  check_reader(L, 1);
  lua_settop(L, 1);
  return readline_run(L, 0, 1);
}

static int l_reader_lines(lua_State *L) {
  check_reader(L, 1);
  lua_pushcfunction(L, l_reader_lines_next);
  lua_pushvalue(L, 1);
  return 2;
}

/* Plain methods --------------------------------------------------- */

static int l_reader_at_eof(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  lua_pushboolean(L, r->eof && r->len == 0);
  return 1;
}

static int l_reader_exception(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  if (r->has_exc)
    lua_getiuservalue(L, 1, R_UV_EXC);
  else if (r->err)
    aio_push_uverror(L, r->err, "read");
  else
    lua_pushnil(L);
  return 1;
}

static int l_reader_set_exception(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, R_UV_EXC);
  r->has_exc = 1;
  wake_reader(L, r);
  return 0;
}

/* feed_data(data): appends to the buffer of a reader (normally one with
 * no transport, as asyncio's StreamReader() in tests). */
static int l_reader_feed_data(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (r->eof)
    return aio_raisef(L, AIO_E_RUNTIME, "feed_data after feed_eof");
  if (len == 0)
    return 0;
  if (reader_reserve(r, len) != 0)
    return luaL_error(L, "not enough memory");
  memcpy(r->buf + r->off + r->len, data, len);
  r->len += len;
  if (r->waiter && r->len >= r->want)
    wake_reader(L, r);
  return 0;
}

static int l_reader_feed_eof(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  r->eof = 1;
  wake_reader(L, r);
  return 0;
}

/* reader:_buffer() -> {len=, cap=, paused=}: for the specs. */
static int l_reader__buffer(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)r->len);
  lua_setfield(L, -2, "len");
  lua_pushinteger(L, (lua_Integer)r->cap);
  lua_setfield(L, -2, "cap");
  lua_pushboolean(L, r->paused);
  lua_setfield(L, -2, "paused");
  return 1;
}

static int l_reader__tostring(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "<StreamReader");
  if (r->len) {
    lua_pushfstring(L, " %I bytes", (lua_Integer)r->len);
    luaL_addvalue(&b);
  }
  if (r->eof)
    luaL_addstring(&b, " eof");
  if (r->limit != DEFAULT_LIMIT) {
    lua_pushfstring(L, " limit=%I", (lua_Integer)r->limit);
    luaL_addvalue(&b);
  }
  if (r->waiter)
    luaL_addstring(&b, " waiter");
  if (r->has_exc || r->err)
    luaL_addstring(&b, " exception");
  if (r->s)
    luaL_addstring(&b, r->s->kind == K_TCP ? " transport=tcp"
                                           : " transport=pipe");
  if (r->paused)
    luaL_addstring(&b, " paused");
  luaL_addchar(&b, '>');
  luaL_pushresult(&b);
  return 1;
}

static int l_reader__gc(lua_State *L) {
  aio_reader *r = lua_touserdata(L, 1);
  stream *s = r->s;
  if (r->waiter)
    aio_waiter_drop(L, r); /* its task went with it */
  if (s) {
    r->s = NULL;
    s->reader = NULL;
    if (s->reading) {
      uv_read_stop(&s->u.s);
      s->reading = 0;
    }
    if (s->writer == NULL && !s->closing)
      stream_close(L, s, 1);
  }
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = r->off = 0;
  return 0;
}

/* asyncio.StreamReader([{limit =}]): a reader fed by feed_data. */
static int l_reader_new(lua_State *L) {
  size_t limit = aio_opt_limit(L, 1);
  reader_new(L, limit);
  return 1;
}

/* ------------------------------------------------------------------ */
/* StreamWriter                                                        */

static aio_writer *test_writer(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, AIO_WRITER_MT);
}

/* The writer at idx and its transport: raises when the writer was
 * closed; NULL when the transport was lost (the peer reset it...): then
 * writes are dropped, as asyncio's, and drain() reports the loss. */
static stream *check_open_writer(lua_State *L, int idx, aio_writer **wp) {
  aio_writer *w = test_writer(L, idx);
  if (w->closed)
    luaL_error(L, "attempt to use a closed " AIO_WRITER_MT);
  if (wp)
    *wp = w;
  return w->s;
}

static void fill_addresses(aio_writer *w, stream *s) {
  int n;
  if (s->kind == K_TCP) {
    n = sizeof w->sock;
    w->has_sock = uv_tcp_getsockname(&s->u.tcp, (struct sockaddr *)&w->sock,
                                     &n) == 0;
    n = sizeof w->peer;
    w->has_peer = uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&w->peer,
                                     &n) == 0;
  } else {
    struct sockaddr_un *un;
    size_t len;
    un = (struct sockaddr_un *)&w->sock;
    len = sizeof un->sun_path - 1;
    if (uv_pipe_getsockname(&s->u.pipe, un->sun_path, &len) == 0) {
      un->sun_family = AF_UNIX;
      w->has_sock = 1;
    }
    un = (struct sockaddr_un *)&w->peer;
    len = sizeof un->sun_path - 1;
    if (uv_pipe_getpeername(&s->u.pipe, un->sun_path, &len) == 0) {
      un->sun_family = AF_UNIX;
      w->has_peer = 1;
    }
  }
}

void aio_stream_push_writer(lua_State *L, aio_stream *s, int ridx) {
  aio_writer *w;
  ridx = ridx ? lua_absindex(L, ridx) : 0;
  w = lua_newuserdatauv(L, sizeof *w, W_UV_COUNT);
  memset(w, 0, sizeof *w);
  w->s = s;
  w->loop = s->io.loop;
  w->kind = s->kind;
  luaL_setmetatable(L, AIO_WRITER_MT);
  if (ridx) {
    lua_pushvalue(L, ridx);
    lua_setiuservalue(L, -2, W_UV_READER);
  }
  aio_push_loop(L, w->loop);
  lua_setiuservalue(L, -2, W_UV_LOOP);
  s->writer = w;
  fill_addresses(w, s);
}

/* Pushes the reader and writer of a connected stream. */
static void stream_attach(lua_State *L, stream *s, size_t limit) {
  aio_stream_push_reader(L, s, limit);
  aio_stream_push_writer(L, s, -1);
}

/* A write failed at once: the transport is lost, as asyncio's fatal
 * error; drain() reports it. */
static void write_failed(lua_State *L, stream *s, int err) {
  if (s->err == 0)
    s->err = err;
  stream_close(L, s, 0);
}

static int l_writer_write(lua_State *L) {
  size_t len;
  stream *s = check_open_writer(L, 1, NULL);
  const char *data = luaL_checklstring(L, 2, &len);
  int r;
  if (s == NULL)
    return 0;
  if (s->eof_sent)
    return aio_raisef(L, AIO_E_RUNTIME,
                      "Cannot call write() after write_eof()");
  r = stream_write(s, data, len);
  if (r != 0)
    write_failed(L, s, r);
  return 0;
}

/* writelines(list): one write of the strings joined. */
static int l_writer_writelines(lua_State *L) {
  luaL_Buffer b;
  lua_Integer i, n;
  check_open_writer(L, 1, NULL);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  n = luaL_len(L, 2);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "bad item #%d to 'writelines' (string expected, "
                        "got %s)", (int)i, luaL_typename(L, -1));
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_replace(L, 2);
  return l_writer_write(L);
}

static int l_writer_write_eof(lua_State *L) {
  stream *s = check_open_writer(L, 1, NULL);
  int r;
  if (s == NULL || s->eof_sent)
    return 0;
  s->eof_sent = 1;
  r = uv_shutdown(&s->sreq, &s->u.s, on_shutdown);
  if (r != 0)
    write_failed(L, s, r);
  else
    s->shutting = 1;
  return 0;
}

static int l_writer_can_write_eof(lua_State *L) {
  test_writer(L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_writer_close(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  if (w->s)
    stream_close(L, w->s, 1);
  w->closed = 1;
  return 0;
}

static int l_writer_is_closing(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  lua_pushboolean(L, w->closed || w->s == NULL || w->s->closing);
  return 1;
}

/* Raises what drain() raises on a lost or closed transport. */
static int raise_lost(lua_State *L, aio_writer *w) {
  if (w->err)
    return aio_raise_uv(L, w->err, "write");
  aio_push_error_named(L, "ConnectionResetError", "Connection lost");
  return lua_error(L);
}

static int drain_body(lua_State *L);

static int drain_k(lua_State *L, int status, lua_KContext ctx) {
  aio_writer *w = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  aio_waiters_resumed(L, &w->drain_key, 2);
  lua_settop(L, 1);
  return drain_body(L);
}

/* [writer] */
static int drain_body(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  stream *s = w->s;
  aio_task *t;
  lua_settop(L, 1);
  if (lua_getiuservalue(L, 1, W_UV_READER) == LUA_TUSERDATA) {
    aio_reader *r = lua_touserdata(L, -1);
    reader_check_exc(L, r, 2);
  }
  lua_settop(L, 1);
  if (s == NULL || s->closing)
    return raise_lost(L, w);
  if (!s->wpaused)
    return 0;
  t = aio_check_await(L, "drain");
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &w->drain_key, 0, drain_k);
}

static int l_writer_drain(lua_State *L) {
  test_writer(L, 1);
  return aio_ccoro_method(L, 1, drain_body);
}

static int wait_closed_k(lua_State *L, int status, lua_KContext ctx) {
  aio_writer *w = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  aio_waiters_resumed(L, &w->closed_key, 2);
  return 0;
}

static int wait_closed_body(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  aio_task *t;
  lua_settop(L, 1);
  if (w->s == NULL)
    return 0;
  t = aio_check_await(L, "wait_closed");
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &w->closed_key, 0, wait_closed_k);
}

static int l_writer_wait_closed(lua_State *L) {
  test_writer(L, 1);
  return aio_ccoro_method(L, 1, wait_closed_body);
}

/* get_extra_info(name [, default]): "peername", "sockname" ({host, port},
 * or the path of a Unix socket). */
static int l_writer_get_extra_info(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  const char *name = luaL_checkstring(L, 2);
  const struct sockaddr_storage *ss = NULL;
  if (strcmp(name, "peername") == 0 && w->has_peer)
    ss = &w->peer;
  else if (strcmp(name, "sockname") == 0 && w->has_sock)
    ss = &w->sock;
  if (ss == NULL) {
    lua_settop(L, 3);
    return 1;
  }
  aio_push_sockaddr(L, (const struct sockaddr *)ss);
  return 1;
}

/* get_write_buffer_size(): bytes queued, not yet written (asyncio's
 * transport.get_write_buffer_size()). */
static int l_writer_get_write_buffer_size(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  lua_pushinteger(L, w->s ? (lua_Integer)w->s->wbytes : 0);
  return 1;
}

static int l_writer_get_reader(lua_State *L) {
  test_writer(L, 1);
  lua_getiuservalue(L, 1, W_UV_READER);
  return 1;
}

static int l_writer__tostring(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  if (w->s == NULL)
    lua_pushliteral(L, "<StreamWriter closed>");
  else
    lua_pushfstring(L, "<StreamWriter transport=%s%s%s>",
                    w->kind == K_TCP ? "tcp" : "pipe",
                    w->s->closing ? " closing" : "",
                    w->s->wbytes ? " writing" : "");
  return 1;
}

static int l_writer__gc(lua_State *L) {
  aio_writer *w = lua_touserdata(L, 1);
  stream *s = w->s;
  /* waiters' tasks went with it (a closed loop): drop their entries */
  aio_waiter_drop(L, &w->drain_key);
  aio_waiter_drop(L, &w->closed_key);
  if (s) {
    w->s = NULL;
    s->writer = NULL;
    if (s->reader == NULL && !s->closing)
      stream_close(L, s, 1);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

static void on_connect(uv_connect_t *req, int status) {
  stream *s = req->handle->data;
  s->connecting = 0;
  s->cstatus = status;
  aio_io_notify(&s->io, EV_CONNECT);
}

/* [.., opts, s, fut] with the stream at sidx */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  int sidx = (int)ctx, fidx = sidx + 1, threw;
  stream *s = lua_touserdata(L, sidx);
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
    return aio_raise_uv(L, err, "connect");
  }
  if (s->kind == K_TCP)
    uv_tcp_nodelay(&s->u.tcp, 1);
  stream_attach(L, s, aio_opt_limit(L, sidx - 1));
  return 2;
}

/* Starts waiting for the connect request of s; the options are at 3. */
static int connect_wait(lua_State *L, aio_task *t, stream *s) {
  int sidx;
  lua_settop(L, 3);
  lua_pushlightuserdata(L, s);
  sidx = lua_gettop(L);
  s->connecting = 1;
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &s->creq, sidx, connect_k);
}

/* _tcp_connect(host, port [, {limit =, local_addr = {host, port}}]):
 * host is a numeric address. Returns reader, writer. */
static int tcp_connect_body(lua_State *L) {
  struct sockaddr_storage ss, local;
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2), r;
  aio_task *t;
  stream *s;
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  r = aio_sockaddr_parse(host, port, &ss);
  if (r != 0)
    return aio_raise_uv(L, r, "connect");
  if (lua_istable(L, 3) && lua_getfield(L, 3, "local_addr") == LUA_TTABLE) {
    const char *lh;
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lh = luaL_optstring(L, -2, ss.ss_family == AF_INET6 ? "::" : "0.0.0.0");
    r = aio_sockaddr_parse(lh, (int)luaL_optinteger(L, -1, 0), &local);
    if (r != 0)
      return aio_raise_uv(L, r, "bind");
  } else
    local.ss_family = AF_UNSPEC;
  lua_settop(L, 3);
  t = aio_check_await(L, "open_connection");
  s = stream_new(L, t->fut.loop, K_TCP);
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

/* _pipe_connect(path [, {limit =}]) */
static int pipe_connect_body(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  aio_task *t;
  stream *s;
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushnil(L); /* options at 3, as for TCP */
  lua_insert(L, 2);
  t = aio_check_await(L, "open_unix_connection");
  s = stream_new(L, t->fut.loop, K_PIPE);
  uv_pipe_connect(&s->creq, &s->u.pipe, path, on_connect);
  return connect_wait(L, t, s);
}

static int l_tcp_connect(lua_State *L) {
  return aio_ccoro_method(L, 3, tcp_connect_body);
}

static int l_pipe_connect(lua_State *L) {
  return aio_ccoro_method(L, 2, pipe_connect_body);
}

/* ------------------------------------------------------------------ */
/* Servers                                                             */

/* What a server shares with the connections it accepted, which may
 * outlive its userdata: counted references. Its address is the key of
 * the wait_closed() futures. */
struct srvcore {
  int refs;
  int active;          /* accepted connections not yet closed */
  unsigned char closed;
};

static void srvcore_release(srvcore *c) {
  if (--c->refs == 0)
    free(c);
}

static void srvcore_conn_closed(lua_State *L, srvcore *c) {
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
  size_t limit;
  int backlog;
  unsigned char kind, serving, closed, unlink_path;
  dev_t dev;
  ino_t ino;
  char anchor_key;     /* address: key of the userdata while it serves */
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
  int err;
  if (status < 0 || loop == NULL || l->srv == NULL)
    return; /* asyncio logs accept errors and goes on */
  s = stream_alloc(loop, l->srv->kind, &err);
  if (s == NULL)
    return;
  if (uv_accept(h, &s->u.s) != 0) {
    aio_stream_abort(s);
    return;
  }
  if (s->kind == K_TCP)
    uv_tcp_nodelay(&s->u.tcp, 1);
  *l->tail = s;
  l->tail = &s->next_accepted;
  aio_io_notify(&l->io, EV_ACCEPT);
}

/* The done callback of a client_connected_cb task (upvalue 1: the
 * writer): as asyncio, a failure is reported and closes the connection,
 * and so does a cancellation. */
static int l_client_task_done(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  int report = 0;
  if (f->state == AIO_FINISHED && f->has_exc) {
    lua_getfield(L, 1, "exception");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1); /* [task, exc] */
    report = 1;
  }
  if (report || f->state == AIO_CANCELLED) {
    aio_writer *w = lua_touserdata(L, lua_upvalueindex(1));
    if (report)
      aio_report_error(L, f->loop, "Unhandled exception in "
                       "client_connected_cb", 2, "transport",
                       lua_upvalueindex(1));
    if (w->s)
      stream_close(L, w->s, 0);
    w->closed = 1;
  }
  return 0;
}

/* A ready-queue callback: client_cb(reader, writer), and a task for the
 * Coroutine it returns, as asyncio's StreamReaderProtocol does. */
static int l_client_connected(lua_State *L) {
  aio_loop *loop;
  lua_settop(L, 3);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_call(L, 2, 1);
  if (aio_test_coro(L, 4) == NULL)
    return 0;
  loop = aio_running_loop(L);
  aio_ensure_future(L, 4, loop); /* [cb, r, w, coro, task] */
  lua_pushvalue(L, 3);
  lua_pushcclosure(L, l_client_task_done, 1);
  aio_future_add_callback(L, 5);
  return 0;
}

static void listener_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  listener *l = (listener *)io;
  aio_server *srv = l->srv;
  (void)ev;
  while (l->accepted) {
    stream *s = l->accepted;
    int top = lua_gettop(L);
    l->accepted = s->next_accepted;
    if (l->accepted == NULL)
      l->tail = &l->accepted;
    if (srv == NULL || srv->closed) {
      aio_stream_abort(s);
      continue;
    }
    /* the server userdata is anchored while it serves */
    lua_pushcfunction(L, l_client_connected);
    aio_waiter_get(L, &srv->anchor_key);
    lua_getiuservalue(L, -1, S_UV_CB);
    lua_replace(L, -2);
    stream_attach(L, s, srv->limit); /* [fn, cb, reader, writer] */
    s->srv = srv->core;
    srv->core->refs++;
    srv->core->active++;
    aio_handle_new(L, srv->loop, top + 1, 3, 0, 0);
    aio_ready_push(L, srv->loop, AIO_R_HANDLE, NULL, 0, NULL, 1);
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
  if (aio_waiter_take(L, &srv->anchor_key)) {
    unlink_socket_path(L, srv, lua_gettop(L));
    lua_pop(L, 1);
  }
  if (srv->core->active == 0)
    aio_waiters_wake(L, srv->core);
}

static int l_server_close(lua_State *L) {
  server_close(L, check_server(L, 1));
  return 0;
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

static int l_server_start_serving(lua_State *L) {
  aio_server *srv = check_server(L, 1);
  lua_settop(L, 1);
  server_start(L, srv);
  return 0;
}

/* wait_closed(): once closed, when the last accepted connection closed
 * (Python 3.12+). */
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
  if (!srv->closed || srv->core->active == 0)
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
    if (srv->kind == K_TCP) {
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
  srv->loop = loop;
  srv->kind = (unsigned char)kind;
  srv->backlog = 100;
  srv->limit = aio_opt_limit(L, oidx);
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

static listener *listener_new(lua_State *L, aio_server *srv) {
  listener *l = calloc(1, sizeof *l);
  int r;
  if (l == NULL)
    luaL_error(L, "not enough memory");
  r = srv->kind == K_TCP ? uv_tcp_init(srv->loop->uv, &l->u.tcp)
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
  aio_waiter_set(L, &srv->anchor_key, sidx);
  if (lua_type(L, oidx) == LUA_TTABLE) {
    if (lua_getfield(L, oidx, "start_serving") != LUA_TNIL)
      start = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (start)
    server_start(L, srv);
}

/* _tcp_server(client_cb, addrs, opts): addrs is a list of {host, port}
 * with numeric hosts; one listener each. */
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
  srv = server_new(L, loop, K_TCP, 1, 3, n);
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
    l = listener_new(L, srv);
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

/* _pipe_server(client_cb, path, opts) */
static int l_pipe_server(lua_State *L) {
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
  loop = aio_get_event_loop(L);
  aio_check_open(L, loop);
  srv = server_new(L, loop, K_PIPE, 1, 3, 1);
  sidx = lua_gettop(L);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, sidx, S_UV_PATH);
  /* a stale socket file is removed, as asyncio does */
  if (path[0] != '\0' && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
    unlink(path);
  l = listener_new(L, srv);
  r = uv_pipe_bind(&l->u.pipe, path);
  if (r != 0) {
    server_close(L, srv);
    return aio_raise_uv(L, r, "bind");
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
/* Registration                                                        */

static const luaL_Reg reader_methods[] = {
    {"read", l_reader_read},
    {"readline", l_reader_readline},
    {"readexactly", l_reader_readexactly},
    {"readuntil", l_reader_readuntil},
    {"at_eof", l_reader_at_eof},
    {"lines", l_reader_lines},
    {"exception", l_reader_exception},
    {"set_exception", l_reader_set_exception},
    {"feed_data", l_reader_feed_data},
    {"feed_eof", l_reader_feed_eof},
    {"_buffer", l_reader__buffer},
    {NULL, NULL}};

static const luaL_Reg reader_metamethods[] = {
    {"__gc", l_reader__gc},
    {"__call", l_reader_lines_next},
    {"__tostring", l_reader__tostring},
    {NULL, NULL}};

static const luaL_Reg writer_methods[] = {
    {"write", l_writer_write},
    {"writelines", l_writer_writelines},
    {"write_eof", l_writer_write_eof},
    {"can_write_eof", l_writer_can_write_eof},
    {"close", l_writer_close},
    {"is_closing", l_writer_is_closing},
    {"wait_closed", l_writer_wait_closed},
    {"drain", l_writer_drain},
    {"get_extra_info", l_writer_get_extra_info},
    {"get_reader", l_writer_get_reader},
    {"get_write_buffer_size", l_writer_get_write_buffer_size},
    {NULL, NULL}};

static const luaL_Reg writer_metamethods[] = {
    {"__gc", l_writer__gc},
    {"__close", l_writer_close},
    {"__tostring", l_writer__tostring},
    {NULL, NULL}};

static const luaL_Reg server_methods[] = {
    {"close", l_server_close},
    {"wait_closed", l_server_wait_closed},
    {"serve_forever", l_server_serve_forever},
    {"start_serving", l_server_start_serving},
    {"is_serving", l_server_is_serving},
    {"get_loop", l_server_get_loop},
    {NULL, NULL}};

static const luaL_Reg server_metamethods[] = {
    {"__gc", l_server__gc},
    {"__close", l_server__close},
    {"__tostring", l_server__tostring},
    {NULL, NULL}};

static const luaL_Reg stream_funcs[] = {
    {"StreamReader", l_reader_new},
    {"_tcp_connect", l_tcp_connect},
    {"_pipe_connect", l_pipe_connect},
    {"_tcp_server", l_tcp_server},
    {"_pipe_server", l_pipe_server},
    {NULL, NULL}};

void aio_open_stream(lua_State *L) {
  aio_newclass(L, AIO_READER_MT, AIO_K_OTHER, reader_methods,
               reader_metamethods);
  aio_newclass(L, AIO_WRITER_MT, AIO_K_OTHER, writer_methods,
               writer_metamethods);
  aio_newclass(L, AIO_SERVER_MT, AIO_K_OTHER, server_methods,
               server_metamethods);
  luaL_getmetatable(L, AIO_SERVER_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcclosure(L, l_server__index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_setfuncs(L, stream_funcs, 0);
}
