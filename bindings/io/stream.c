/*
 * stream.c - the streams: StreamReader, StreamReaderProtocol (the stream
 * protocol) and StreamWriter, as asyncio's streams.py, on any transport.
 * The Lua facade (open_connection, start_server...) is
 * lua/asyncio/streams.lua; the transports are transport.c's.
 *
 * The StreamReaderProtocol is a C protocol (an AIO_PROTO_VT in its
 * metatable): on a C transport, data is read straight into its reader's
 * buffer and reading tasks wake with no Lua call. On any other transport
 * (one written in Lua, as TLS's), the transport calls its Lua methods
 * (data_received...). A StreamWriter writes through its transport: C
 * calls for a C transport, method calls for any other.
 *
 * The protocol holds its reader strongly only when it has a
 * client_connected_cb (servers), else by a C pointer the reader's __gc
 * clears (asyncio's weak reference): an abandoned client stream can be
 * collected, and a collected StreamWriter closes its transport.
 *
 * Flow control follows asyncio: reading stops once the buffer holds more
 * than twice `limit` bytes (64 KiB by default) and starts again once
 * reads drain it to `limit` or a reader waits for more; drain() waits
 * while the transport has paused the protocol (more than its high-water
 * mark queued), until it resumes it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

#define DEFAULT_LIMIT 65536

typedef struct aio_reader aio_reader;
typedef struct srp srp;

struct aio_reader {
  const char *tag;     /* &reader_tag (aio_checktagged) */
  srp *proto;          /* the protocol feeding it, or NULL */
  aio_transport *t;    /* its transport when a C one, else NULL */
  aio_loop *loop;      /* bound loop (also user value R_UV_LOOP) */
  char *buf;
  size_t off, len, cap;
  size_t limit;
  size_t want;         /* the waiting task wakes once len >= want (or
                          at the end of the stream) */
  aio_task *wtask;     /* the task waiting for data (a wait without a
                          Future: aio_task_wait_prim), or NULL; cleared by
                          its wake-up or by its continuation, so valid
                          while the loop is open (the reader keeps its
                          loop: R_UV_LOOP) */
  unsigned char eof, paused, has_exc;
  unsigned char chunked; /* begin_http_chunk_receiving was called */
  /* HTTP chunk ends (aiohttp's readchunk): positions, counted in bytes
   * fed since the start, where a chunk of a chunked body ended; ring of
   * nends from ends[ehead], none behind what was read (reader_consume
   * drops those) */
  uint64_t fed;        /* bytes fed since the start */
  uint64_t last_end;   /* the last chunk end recorded, read or not */
  uint64_t *ends;
  unsigned ehead, nends, ecap;
  /* read(n)'s kept operation (R_UV_READ) takes no argument: its n is
   * read_n, which changes only while no operation armed with it is
   * still to run (read_armed counts those: armed, minus bodies run) */
  lua_Integer read_n;
  size_t read_armed;
  aio_fast_op *read_op; /* the operation in R_UV_READ (aio_fast_op_kept) */
};

enum {
  R_UV_LOOP = 1, R_UV_EXC, R_UV_TRANSPORT, R_UV_PROTO,
  /* the kept operations (aio_ccoro_kept): a reading loop allocates no
   * Coroutine object. read(n) and readline have a slot each; readexactly,
   * readuntil, readchunk and read(n) with an n other than read_n
   * ([reader, n]) share one, which keeps the last of them made (a loop
   * that mixes them makes one each time, a reader is 48 bytes smaller) */
  R_UV_READ, R_UV_READLINE, R_UV_READ_OTHER,
  R_UV_COUNT = R_UV_READ_OTHER
};

/* The stream protocol. */
struct srp {
  aio_reader *reader;  /* NULL once collected */
  aio_transport *t;    /* its transport when a C one, else NULL */
  aio_loop *loop;
  unsigned char has_transport, paused, lost, over_ssl;
  char drain_key, closed_key; /* addresses: keys of waiting futures */
};

enum {
  P_UV_READER = 1,     /* the reader, when held strongly */
  P_UV_CB,             /* client_connected_cb or nil */
  P_UV_TRANSPORT,
  P_UV_WRITER,         /* the writer made for client_connected_cb */
  P_UV_LOOP,
  P_UV_EXC,            /* what connection_lost got */
  P_UV_COUNT = P_UV_EXC
};

typedef struct aio_writer {
  const char *tag;     /* &writer_tag (aio_checktagged) */
  aio_transport *t;    /* its transport when a C one, else NULL */
  const aio_lua_transport_vt *lvt; /* else its C entries, if any */
  srp *proto;          /* its protocol when a StreamReaderProtocol */
  aio_reader *reader;  /* its reader (user value W_UV_READER), or NULL */
  aio_fast_op *drain_op; /* the one in W_UV_DRAIN (aio_fast_op_kept) */
  unsigned char closed; /* close() was called */
} aio_writer;

enum {
  W_UV_TRANSPORT = 1, W_UV_PROTO, W_UV_READER, W_UV_LOOP,
  W_UV_DRAIN, /* the kept drain() operation (aio_ccoro_kept) */
  W_UV_COUNT = W_UV_DRAIN
};

static const aio_proto_vt srp_vt;

/* ------------------------------------------------------------------ */
/* Calling transports                                                  */

/* transport:name() for the transport in user value `uv` of the object at
 * idx; nres results are left. */
static void call_transport(lua_State *L, int idx, int uv, const char *name,
                           int nargs, int nres) {
  int base = lua_gettop(L) - nargs;
  lua_getiuservalue(L, idx, uv);
  lua_getfield(L, -1, name);
  lua_insert(L, base + 1);
  lua_insert(L, base + 2); /* [fn, transport, args...] */
  lua_call(L, nargs + 1, nres);
}

/* ------------------------------------------------------------------ */
/* StreamReader                                                        */

/* Stops reading while the buffer is over the limit (the reader at ridx,
 * or ridx 0 from C context: a C transport only). */
static void reader_pause(lua_State *L, aio_reader *r, int ridx) {
  if (r->paused)
    return;
  if (r->t) {
    aio_transport_pause_reading(r->t);
    r->paused = 1;
  } else if (ridx && L) {
    ridx = lua_absindex(L, ridx);
    if (lua_getiuservalue(L, ridx, R_UV_TRANSPORT) != LUA_TNIL) {
      lua_pop(L, 1);
      call_transport(L, ridx, R_UV_TRANSPORT, "pause_reading", 0, 0);
      r->paused = 1;
    } else
      lua_pop(L, 1);
  }
}

static void reader_resume(lua_State *L, aio_reader *r, int ridx) {
  if (!r->paused)
    return;
  r->paused = 0;
  if (r->t)
    aio_transport_resume_reading(r->t);
  else {
    ridx = lua_absindex(L, ridx);
    if (lua_getiuservalue(L, ridx, R_UV_TRANSPORT) != LUA_TNIL) {
      lua_pop(L, 1);
      call_transport(L, ridx, R_UV_TRANSPORT, "resume_reading", 0, 0);
    } else
      lua_pop(L, 1);
  }
}

static int reader_make_room(aio_reader *r, size_t n);

/* Makes room for n more bytes after the buffered ones: moves them to the
 * start of the buffer, else grows it (at least doubling). Returns 0, or
 * -1 when memory is short. */
static inline int reader_reserve(aio_reader *r, size_t n) {
  return r->cap - r->off - r->len >= n ? 0 : reader_make_room(r, n);
}

/* reader_reserve when the room after the buffered bytes is short. */
static int reader_make_room(aio_reader *r, size_t n) {
  size_t ncap;
  char *nb;
  if (r->off > 0) {
    memmove(r->buf, r->buf + r->off, r->len);
    r->off = 0;
    if (r->cap - r->len >= n)
      return 0;
  }
  ncap = aio_grown_cap(r->cap, r->len + n);
  nb = realloc(r->buf, ncap);
  if (nb == NULL)
    return -1;
  r->buf = nb;
  r->cap = ncap;
  return 0;
}

/* Is the task waiting for data still in that wait (not cancelled)? Only
 * while the loop is open: a closed loop's tasks may be collected. */
static int reader_wait_pending(aio_reader *r) {
  aio_task *t = r->wtask;
  return t != NULL && r->loop != NULL && !r->loop->closed &&
         t->fut.state == AIO_PENDING && t->wait_kind == AIO_WAIT_PRIM &&
         t->wstate == AIO_TW_PENDING;
}

/* wake_reader from a uv callback (no Lua): returns 0, changing nothing,
 * when the wake-up needs Lua context. */
static int reader_try_wake(aio_reader *r) {
  if (reader_wait_pending(r) && !aio_task_try_wake_prim(r->wtask))
    return 0;
  r->wtask = NULL;
  return 1;
}

/* Wakes the task waiting for data, if any, as Python's _wakeup_waiter:
 * the reader forgets it either way. Its loop anchors the task while it
 * is pending; a closed loop wakes nothing. */
static void wake_reader(lua_State *L, aio_reader *r) {
  aio_task *t = r->wtask;
  if (reader_wait_pending(r))
    aio_task_wake_prim(L, t); /* may raise: the reader keeps the task */
  r->wtask = NULL;
}

static void reader_feed_eof(lua_State *L, aio_reader *r) {
  r->eof = 1;
  wake_reader(L, r);
}

/* Sets the exception at eidx on the reader at ridx. */
static void reader_set_exc(lua_State *L, aio_reader *r, int ridx,
                           int eidx) {
  ridx = lua_absindex(L, ridx);
  lua_pushvalue(L, eidx);
  lua_setiuservalue(L, ridx, R_UV_EXC);
  r->has_exc = 1;
  wake_reader(L, r);
}

/* The reader reads the transport at tidx (its set_transport). */
static void reader_set_transport(lua_State *L, aio_reader *r, int ridx,
                                 int tidx) {
  ridx = lua_absindex(L, ridx);
  r->t = aio_test_transport(L, tidx);
  lua_pushvalue(L, tidx);
  lua_setiuservalue(L, ridx, R_UV_TRANSPORT);
}


/* Registry key of the reader metatable (aio_setmt). */
static const char reader_mt = 0;
static const char reader_tag = 0;

static aio_reader *check_reader(lua_State *L, int idx) {
  return aio_checktagged(L, idx, sizeof(aio_reader), &reader_tag,
                         AIO_K_READER, AIO_READER_MT);
}

/* Pushes a new reader (limit 0: the default). */
static aio_reader *reader_new(lua_State *L, size_t limit) {
  aio_reader *r = lua_newuserdatauv(L, sizeof *r, R_UV_COUNT);
  memset(r, 0, sizeof *r);
  r->tag = &reader_tag;
  r->limit = limit ? limit : DEFAULT_LIMIT;
  aio_setmt(L, &reader_mt);
  return r;
}

static void reader_bind(lua_State *L, aio_reader *r, int ridx,
                        aio_loop *loop) {
  r->loop = loop;
  aio_push_loop(L, loop);
  lua_setiuservalue(L, ridx, R_UV_LOOP);
}

/* Is the buffer over the mark at which reading stops: twice the limit,
 * as Python's feed_data (reading starts again at the limit, so a reader
 * draining its buffer does not stop and start the transport at each
 * chunk)? */
static int over_limit(const aio_reader *r) {
  return r->len > r->limit && r->len - r->limit > r->limit;
}

/* Must reading stop now data arrived: over the mark, not yet paused, and
 * no read waiting for more than the buffer holds (Python's feed_data
 * stops after waking the reader; a read that needs more starts reading
 * again, as _wait_for_data does)? */
static int must_pause(const aio_reader *r) {
  return over_limit(r) && !r->paused && !(r->wtask && r->len < r->want);
}

/* Drops the chunk ends behind what was read (a read other than
 * readchunk went past them), as aiohttp does. */
static void drop_passed_ends(aio_reader *r) {
  uint64_t cursor = r->fed - r->len;
  while (r->nends > 0 && r->ends[r->ehead] < cursor) {
    r->ehead = (r->ehead + 1) % r->ecap;
    r->nends--;
  }
}

/* An emptied buffer is given back when it is larger than this and than
 * four times the limit, as a bytearray gives back most of its room when
 * it shrinks below half: a burst (a readexactly of megabytes) does not
 * stay allocated for the rest of the connection, while the buffers of
 * ordinary reads (reading pauses past twice the limit, and a read adds
 * up to a read chunk; the buffer grows by doubling) are kept and
 * reused. */
#define READER_KEEP_CAP (4 * (size_t)AIO_READ_CHUNK)

/* Consumes n bytes of the reader at stack index 1; reading starts
 * again once the buffer is under the limit. */
static inline void reader_consume(lua_State *L, aio_reader *r, size_t n) {
  r->off += n;
  r->len -= n;
  if (r->len == 0) {
    r->off = 0;
    if (r->cap > READER_KEEP_CAP && r->cap / 4 > r->limit) {
      free(r->buf);
      r->buf = NULL;
      r->cap = 0;
    }
  }
  if (r->nends > 0)
    drop_passed_ends(r);
  if (r->paused && r->len <= r->limit)
    reader_resume(L, r, 1);
}

/* Pushes the next n bytes and consumes them (buf may be NULL when
 * n is 0). */
static void push_take(lua_State *L, aio_reader *r, size_t n) {
  lua_pushlstring(L, n ? r->buf + r->off : "", n);
  reader_consume(L, r, n);
}

/* Raises the reader's exception, if any. */
static void reader_check_exc(lua_State *L, aio_reader *r, int ridx) {
  if (r->has_exc) {
    lua_getiuservalue(L, ridx, R_UV_EXC);
    lua_error(L);
  }
}

/* Suspends the task until len >= want or the end of the stream, with
 * continuation k (ctx passed along), which must call reader_resumed
 * first. The reader is at 1, the operation's argument (if it has one)
 * at 2, values above are dropped; no Future is made: the reader wakes
 * the task itself. */
static int reader_wait(lua_State *L, aio_reader *r, const char *what,
                       size_t want, lua_KContext ctx, lua_KFunction k) {
  aio_task *t;
  if (r->wtask)
    return aio_raisef(L, AIO_E_RUNTIME, "%s() called while another "
                      "coroutine is already waiting for incoming data",
                      what);
  t = aio_check_await(L, what);
  if (r->loop == NULL)
    reader_bind(L, r, 1, t->fut.loop);
  else if (r->loop != t->fut.loop)
    return aio_raisef(L, AIO_E_RUNTIME, "StreamReader is bound to a "
                      "different event loop");
  if (lua_gettop(L) > 2)
    lua_settop(L, 2);
  if (r->paused)
    reader_resume(L, r, 1);
  if (!t->must_cancel) { /* else the wait ends at once */
    r->wtask = t;
    r->want = want;
  }
  return aio_task_wait_prim(L, t, ctx, k);
}

/* In a continuation: ends the wait, raising when the task was cancelled
 * or thrown an error. The buffer is left as it is. */
static void reader_resumed(lua_State *L, aio_reader *r) {
  aio_task *t = aio_current_task_of(L);
  /* a wake-up cleared r->wtask, which may be another task's by now */
  if (r->wtask == t)
    r->wtask = NULL;
  if (aio_resume_take_throw(L, t))
    lua_error(L);
}

/* read([n]) -------------------------------------------------------- */

static int read_run_at(lua_State *L, aio_reader *r, lua_Integer n,
                       int nil_at_eof);

static int read_run(lua_State *L, aio_reader *r, lua_Integer n) {
  return read_run_at(L, r, n, 0);
}

/* ctx: n (read_run) */
static int read_k(lua_State *L, int status, lua_KContext ctx) {
  aio_reader *r = lua_touserdata(L, 1);
  (void)status;
  reader_resumed(L, r);
  return read_run(L, r, (lua_Integer)ctx);
}

/* ctx: n, for an iterator (nil at the end) */
static int iter_k(lua_State *L, int status, lua_KContext ctx) {
  aio_reader *r = lua_touserdata(L, 1);
  (void)status;
  reader_resumed(L, r);
  return read_run_at(L, r, (lua_Integer)ctx, 1);
}

/* [reader]: the kept read(n), n being r->read_n */
static int read_kept_body(lua_State *L) {
  aio_reader *r = lua_touserdata(L, 1);
  r->read_armed--;
  return read_run(L, r, r->read_n);
}

/* [reader, n]: the reader and the integer n come from push_read_op */
static int read_body(lua_State *L) {
  return read_run(L, lua_touserdata(L, 1), lua_tointeger(L, 2));
}

/* The reader at 1, its argument at 2; values above them are ignored.
 * read(n): up to n bytes ("" at the end); an iterator's step
 * (nil_at_eof, n > 0) gives nil instead of "". */
static int read_run_at(lua_State *L, aio_reader *r, lua_Integer n,
                       int nil_at_eof) {
  reader_check_exc(L, r, 1);
  if (n == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (n < 0) {
    if (!r->eof)
      return reader_wait(L, r, "read", (size_t)-1, (lua_KContext)n, read_k);
    push_take(L, r, r->len);
    return 1;
  }
  if (r->len == 0) {
    if (r->eof) {
      if (nil_at_eof)
        lua_pushnil(L);
      else
        lua_pushliteral(L, "");
      return 1;
    }
    return reader_wait(L, r, "read", 1, (lua_KContext)n,
                       nil_at_eof ? iter_k : read_k);
  }
  push_take(L, r, r->len < (size_t)n ? r->len : (size_t)n);
  return 1;
}

/* The operation of read(n) (n < 0: to the end): the kept one of no
 * argument when n is read_n or may become it, else one of [reader, n]. */
static int push_read_op(lua_State *L, aio_reader *r, lua_Integer n) {
  /* n travels in the continuation's context: a read of more than it
   * holds reads what the buffer has, as n does */
  if (n > INTPTR_MAX)
    n = INTPTR_MAX;
  if (r->read_armed == 0 || r->read_n == n) {
    r->read_n = n;
    aio_fast_op_kept(L, &r->read_op, 1, read_kept_body, R_UV_READ, NULL, 0);
    r->read_armed++; /* once armed: a memory error arms nothing */
    return 1;
  }
  lua_settop(L, 1);
  lua_pushinteger(L, n);
  return aio_ccoro_kept(L, 2, read_body, R_UV_READ_OTHER);
}

static int l_reader_read(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  int isnum;
  lua_Integer n = lua_tointegerx(L, 2, &isnum);
  if (!isnum) {
    if (!lua_isnoneornil(L, 2))
      luaL_checkinteger(L, 2); /* raises: it does not convert */
    n = -1;
  }
  return push_read_op(L, r, n);
}

/* The most an iterator step or readany() takes: what is buffered. */
#define READ_ANY ((lua_Integer)(INTPTR_MAX / 2))

/* readany(): what is buffered once something is ("" at the end), as
 * aiohttp's StreamReader.readany. */
static int l_reader_readany(lua_State *L) {
  return push_read_op(L, check_reader(L, 1), READ_ANY);
}

/* The iterator of iter_chunked(n) and iter_any() (upvalue 1: n): awaits
 * the next piece inside the task; nil at the end. */
static int l_reader_iter_next(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  lua_Integer n = lua_tointeger(L, lua_upvalueindex(1));
  lua_settop(L, 1);
  lua_pushinteger(L, n); /* [reader, n], as a read's body sees them */
  return read_run_at(L, r, n, 1);
}

static int push_iterator(lua_State *L, lua_Integer n) {
  lua_pushinteger(L, n);
  lua_pushcclosure(L, l_reader_iter_next, 1);
  lua_pushvalue(L, 1);
  return 2;
}

/* for chunk in reader:iter_chunked(n) do: pieces of at most n bytes
 * until the end (aiohttp's iter_chunked). */
static int l_reader_iter_chunked(lua_State *L) {
  lua_Integer n;
  check_reader(L, 1);
  n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "positive integer expected");
  return push_iterator(L, n < READ_ANY ? n : READ_ANY);
}

/* for chunk in reader:iter_any() do: what is buffered each time data
 * arrived, until the end (aiohttp's iter_any). */
static int l_reader_iter_any(lua_State *L) {
  check_reader(L, 1);
  return push_iterator(L, READ_ANY);
}

/* read_nowait([n]): up to n bytes of what is buffered (all of it without
 * n), "" when nothing is, without waiting; RuntimeError while a read is
 * waiting (aiohttp's read_nowait). */
static int l_reader_read_nowait(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  lua_Integer n = luaL_optinteger(L, 2, -1);
  reader_check_exc(L, r, 1);
  if (r->wtask)
    return aio_raisef(L, AIO_E_RUNTIME, "Called while some coroutine is "
                      "waiting for incoming data.");
  lua_settop(L, 1);
  push_take(L, r, n < 0 || (size_t)n > r->len ? r->len : (size_t)n);
  return 1;
}

/* readchunk(), iter_chunks(): HTTP chunks -------------------------- */

static int reader_feed(lua_State *L, aio_reader *r, const char *data,
                       size_t len);

/* begin_http_chunk_receiving(): the body fed from now on is chunked (the
 * HTTP parser calls it before the first byte), as aiohttp's. */
static int l_reader_begin_http_chunk(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  if (!r->chunked && r->fed > 0)
    return aio_raisef(L, AIO_E_RUNTIME, "Called begin_http_chunk_receiving "
                      "when some data was already fed");
  r->chunked = 1;
  return 0;
}

/* The most chunk ends a reader keeps unread: past it, the ends of more
 * chunks are not recorded (their bytes are read as one piece), so that
 * a body of tiny chunks nobody reads costs no more than its bytes. */
#define MAX_CHUNK_ENDS 65536

/* Records a chunk end at `end` (bytes fed since the start), unless no
 * byte came since the last one (a chunk that decoded to nothing, the
 * last chunk of size 0) or MAX_CHUNK_ENDS wait unread. */
static void add_chunk_end(lua_State *L, aio_reader *r, uint64_t end) {
  if (end <= r->last_end || r->nends >= MAX_CHUNK_ENDS)
    return;
  if (r->nends == r->ecap) { /* grow the ring, unwrapped into the front */
    unsigned ncap = r->ecap ? r->ecap * 2 : 4, i;
    uint64_t *ne = malloc(ncap * sizeof *ne);
    if (ne == NULL) {
      luaL_error(L, "not enough memory");
      return;
    }
    for (i = 0; i < r->nends; i++)
      ne[i] = r->ends[(r->ehead + i) % r->ecap];
    free(r->ends);
    r->ends = ne;
    r->ecap = ncap;
    r->ehead = 0;
  }
  r->ends[(r->ehead + r->nends) % r->ecap] = end;
  r->nends++;
  r->last_end = end;
}

/* end_http_chunk_receiving(): a chunk of the body ended with the last
 * byte fed (see add_chunk_end). */
static int l_reader_end_http_chunk(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  if (!r->chunked)
    return aio_raisef(L, AIO_E_RUNTIME, "Called end_chunk_receiving "
                      "without calling begin_chunk_receiving first");
  add_chunk_end(L, r, r->fed);
  return 0;
}

/* _feed_http(data, ends): feed_data(data) for the HTTP server, with the
 * ends of the chunks that ended in data: offsets in it packed as native
 * uint32 (bindings/http/server.c), each an end_http_chunk_receiving. */
static int l_reader__feed_http(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  size_t len, elen, i;
  const char *data = luaL_checklstring(L, 2, &len);
  const char *ends = luaL_checklstring(L, 3, &elen);
  uint64_t base = r->fed;
  int pause = 0;
  if (r->eof)
    return aio_raisef(L, AIO_E_RUNTIME, "feed_data after feed_eof");
  luaL_argcheck(L, elen % sizeof(uint32_t) == 0, 3, "packed offsets "
                "expected");
  r->chunked = 1;
  if (len > 0)
    pause = reader_feed(L, r, data, len);
  for (i = 0; i < elen; i += sizeof(uint32_t)) {
    uint32_t off;
    memcpy(&off, ends + i, sizeof off);
    if (off <= len)
      add_chunk_end(L, r, base + off);
  }
  if (pause)
    reader_pause(L, r, 1);
  return 0;
}

static int readchunk_run(lua_State *L, aio_reader *r, int iter);

/* ctx: iter (readchunk_run) */
static int readchunk_k(lua_State *L, int status, lua_KContext ctx) {
  aio_reader *r = lua_touserdata(L, 1);
  (void)status;
  reader_resumed(L, r);
  return readchunk_run(L, r, (int)ctx);
}

/* The reader at 1. readchunk(): data, end_of_http_chunk: the body up to
 * the next chunk end and true; else what is buffered and false; "",
 * false at the end. An iterator's step (iter) gives nil at the end. */
static int readchunk_run(lua_State *L, aio_reader *r, int iter) {
  reader_check_exc(L, r, 1);
  if (r->nends > 0) { /* never behind the cursor: reader_consume */
    uint64_t end = r->ends[r->ehead];
    r->ehead = (r->ehead + 1) % r->ecap;
    r->nends--;
    push_take(L, r, (size_t)(end - (r->fed - r->len)));
    lua_pushboolean(L, 1);
    return 2;
  }
  if (r->len > 0) {
    push_take(L, r, r->len);
    lua_pushboolean(L, 0);
    return 2;
  }
  if (r->eof) {
    if (iter) {
      lua_pushnil(L);
      return 1;
    }
    lua_pushliteral(L, "");
    lua_pushboolean(L, 0);
    return 2;
  }
  return reader_wait(L, r, "readchunk", 1, (lua_KContext)iter,
                     readchunk_k);
}

/* [reader] */
static int readchunk_body(lua_State *L) {
  return readchunk_run(L, lua_touserdata(L, 1), 0);
}

static int l_reader_readchunk(lua_State *L) {
  check_reader(L, 1);
  return aio_ccoro_kept(L, 1, readchunk_body, R_UV_READ_OTHER);
}

/* The iterator of iter_chunks(): awaits the next (data, end_of_chunk)
 * inside the task; nil at the end. */
static int l_reader_iter_chunks_next(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  lua_settop(L, 1);
  return readchunk_run(L, r, 1);
}

/* for data, end_of_chunk in reader:iter_chunks() do: readchunk()'s pairs
 * until the end (aiohttp's iter_chunks). */
static int l_reader_iter_chunks(lua_State *L) {
  check_reader(L, 1);
  lua_pushcfunction(L, l_reader_iter_chunks_next);
  lua_pushvalue(L, 1);
  return 2;
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
  aio_reader *r = lua_touserdata(L, 1); /* checked by the method */
  lua_Integer n = lua_tointeger(L, 2);
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
  return aio_ccoro_kept(L, 2, readexactly_body, R_UV_READ_OTHER);
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

/* asyncio's words for an overrun of the limit (st: U_OVER_*). */
static const char *overrun_message(int st) {
  return st == U_OVER_FOUND
             ? "Separator is found, but chunk is longer than limit"
             : "Separator is not found, and chunk exceed the limit";
}

static int raise_overrun(lua_State *L, int st, size_t consumed) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  lua_getfield(L, -1, "LimitOverrunError");
  lua_pushstring(L, overrun_message(st));
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

/* scan_until for the list of separators at sidx (Python 3.13's tuple):
 * the match that ends first wins. */
static int scan_until_any(lua_State *L, aio_reader *r, int sidx,
                          size_t *offset, size_t *pos) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, sidx);
  size_t minlen = (size_t)-1, maxlen = 0, len, start = 0, end = (size_t)-1;
  const char *base = r->buf + r->off;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, sidx, i);
    len = lua_rawlen(L, -1);
    lua_pop(L, 1);
    minlen = len < minlen ? len : minlen;
    maxlen = len > maxlen ? len : maxlen;
  }
  if (r->len >= minlen && r->len - *offset >= minlen) {
    for (i = 1; i <= n; i++) {
      const char *sep, *hit;
      lua_rawgeti(L, sidx, i);
      sep = lua_tolstring(L, -1, &len);
      hit = memmem(base + *offset, r->len - *offset, sep, len);
      lua_pop(L, 1);
      /* on a tie, the shorter separator (Python sorts them by length) */
      if (hit != NULL && ((size_t)(hit - base) + len < end ||
                          ((size_t)(hit - base) + len == end &&
                           (size_t)(hit - base) > start))) {
        start = (size_t)(hit - base);
        end = start + len;
      }
    }
    if (end != (size_t)-1) {
      *pos = start > r->limit ? start : end;
      return start > r->limit ? U_OVER_FOUND : U_FOUND;
    }
    *offset = r->len + 1 > maxlen ? r->len + 1 - maxlen : 0;
    if (*offset > r->limit) {
      *pos = *offset;
      return U_OVER_NOTFOUND;
    }
  }
  return r->eof ? U_EOF : U_WAIT;
}

static int readuntil_run(lua_State *L, size_t offset) {
  aio_reader *r = lua_touserdata(L, 1);
  size_t seplen, pos;
  int st;
  reader_check_exc(L, r, 1);
  if (lua_type(L, 2) == LUA_TTABLE)
    st = scan_until_any(L, r, 2, &offset, &pos);
  else {
    const char *sep = lua_tolstring(L, 2, &seplen);
    st = scan_until(r, sep, seplen, &offset, &pos);
  }
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

/* Checks readuntil's separator argument: a string or a list of them
 * (Python 3.13's tuple). */
static void check_separators(lua_State *L, int idx) {
  lua_Integer i, n;
  if (lua_type(L, idx) != LUA_TTABLE) {
    luaL_checkstring(L, idx);
    return;
  }
  n = (lua_Integer)lua_rawlen(L, idx);
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
      luaL_error(L, "bad separator #%d to 'readuntil' (string expected, "
                 "got %s)", (int)i, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
}

/* [reader, sep] */
static int readuntil_body(lua_State *L) {
  lua_Integer i, n;
  check_reader(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushliteral(L, "\n");
  }
  lua_settop(L, 2);
  check_separators(L, 2);
  if (lua_type(L, 2) != LUA_TTABLE)
    n = lua_rawlen(L, 2) == 0 ? 0 : -1;
  else if ((n = (lua_Integer)lua_rawlen(L, 2)) == 0)
    return aio_raisef(L, AIO_E_VALUE,
                      "Separator should contain at least one element");
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (lua_rawlen(L, -1) == 0)
      n = 0;
    lua_pop(L, 1);
  }
  if (n == 0)
    return aio_raisef(L, AIO_E_VALUE,
                      "Separator should be at least one-byte string");
  return readuntil_run(L, 0);
}

static int l_reader_readuntil(lua_State *L) {
  check_reader(L, 1);
  if (!lua_isnoneornil(L, 2))
    check_separators(L, 2);
  return aio_ccoro_kept(L, 2, readuntil_body, R_UV_READ_OTHER);
}

/* readline: a line with its "\n"; at the end, what is left (maybe "").
 * Past the limit it drops the long line (through its newline when it
 * arrived) and raises ValueError with LimitOverrunError's message, as
 * asyncio does. `nil_at_eof`: the lines() iterator ends with nil. */
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
  default: /* as asyncio's readline: the line dropped, ValueError */
    if (st == U_OVER_FOUND)
      reader_consume(L, r, pos + 1);
    else
      reader_consume(L, r, r->len);
    return aio_raisef(L, AIO_E_VALUE, "%s", overrun_message(st));
  }
}

static int readline_body(lua_State *L) {
  lua_settop(L, 1); /* the reader, checked by the method */
  return readline_run(L, 0, 0);
}

static int l_reader_readline(lua_State *L) {
  check_reader(L, 1);
  return aio_ccoro_kept(L, 1, readline_body, R_UV_READLINE);
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

/* is_eof(): whether the end arrived (some data may wait to be read), as
 * aiohttp's. */
static int l_reader_is_eof(lua_State *L) {
  lua_pushboolean(L, check_reader(L, 1)->eof);
  return 1;
}

static int l_reader_exception(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  if (r->has_exc)
    lua_getiuservalue(L, 1, R_UV_EXC);
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

/* Appends data fed from Lua to the buffer of r and wakes a read it
 * satisfies; returns whether reading must now stop (must_pause: the
 * caller pauses, as Python's feed_data does after the wake-up). Raises
 * on memory, before anything changed. */
static int reader_feed(lua_State *L, aio_reader *r, const char *data,
                       size_t len) {
  if (reader_reserve(r, len) != 0)
    luaL_error(L, "not enough memory");
  memcpy(r->buf + r->off + r->len, data, len);
  r->len += len;
  r->fed += len;
  if (r->wtask && r->len >= r->want)
    wake_reader(L, r);
  return must_pause(r);
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
  if (reader_feed(L, r, data, len))
    reader_pause(L, r, 1);
  return 0;
}

static int l_reader_feed_eof(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  r->eof = 1;
  wake_reader(L, r);
  return 0;
}

/* reader:_buffered() -> the number of bytes read from the transport and
 * not yet taken (asyncio's len(reader._buffer)), without a table. */
static int l_reader__buffered(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  lua_pushinteger(L, (lua_Integer)r->len);
  return 1;
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

/* <StreamReader 5 bytes eof limit=10 exception=... waiter=<Future
 * pending> transport=<...> paused>, as asyncio's repr. */
static int l_reader__tostring(lua_State *L) {
  aio_reader *r = check_reader(L, 1);
  luaL_Buffer b;
  lua_settop(L, 1);
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
  if (reader_wait_pending(r)) /* the Future Python's reader waits on */
    luaL_addstring(&b, " waiter=" AIO_PRIM_WAIT_REPR);
  else if (r->wtask && !r->loop->closed) /* cancelled, not yet resumed */
    luaL_addstring(&b, " waiter=<Future cancelled>");
  if (r->has_exc) {
    luaL_addstring(&b, " exception=");
    lua_getiuservalue(L, 1, R_UV_EXC);
    aio_pushrepr(L, -1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  if (lua_getiuservalue(L, 1, R_UV_TRANSPORT) != LUA_TNIL) {
    luaL_addstring(&b, " transport=");
    aio_pushrepr(L, -1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  } else
    lua_pop(L, 1);
  if (r->paused)
    luaL_addstring(&b, " paused");
  luaL_addchar(&b, '>');
  luaL_pushresult(&b);
  return 1;
}

/* _get_transport(): the transport the reader reads, or nil. */
static int l_reader_get_transport(lua_State *L) {
  check_reader(L, 1);
  lua_getiuservalue(L, 1, R_UV_TRANSPORT);
  return 1;
}

/* A collected reader no longer reads: its C transport stops (a read-only
 * pipe closes), as nothing could read what came. */
static int l_reader__gc(lua_State *L) {
  aio_reader *r = lua_touserdata(L, 1);
  r->wtask = NULL; /* its task went with it */
  r->read_op = NULL; /* it may go with it */
  if (r->proto && r->proto->reader == r)
    r->proto->reader = NULL;
  if (r->t) {
    if (r->t->readonly)
      aio_transport_close(L, r->t);
    else
      aio_transport_pause_reading(r->t);
    r->t = NULL;
  }
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = r->off = 0;
  free(r->ends);
  r->ends = NULL;
  r->nends = r->ecap = 0;
  return 0;
}

static const char *const reader_options[] = {"limit", NULL};

/* asyncio.StreamReader([{limit =}]): a reader fed by feed_data (or by a
 * StreamReaderProtocol). Another option name raises. */
static int l_reader_new(lua_State *L) {
  size_t limit;
  if (!lua_isnoneornil(L, 1) && !lua_istable(L, 1))
    return luaL_typeerror(L, 1, "table of options or nil");
  aio_check_options(L, 1, reader_options);
  limit = aio_opt_limit(L, 1);
  reader_new(L, limit);
  return 1;
}

/* ------------------------------------------------------------------ */
/* StreamReaderProtocol                                                */

/* A registry table of the readers protocols hold weakly: address ->
 * reader. */
static const char key_readers = 0;

static void push_weak_readers(lua_State *L) {
  aio_push_weak_registry_table(L, &key_readers, "v");
}

/* Pushes the protocol's reader, or nil. */
static aio_reader *push_reader(lua_State *L, srp *pr) {
  if (pr->reader == NULL) {
    lua_pushnil(L);
    return NULL;
  }
  push_weak_readers(L);
  lua_rawgetp(L, -1, pr->reader);
  lua_remove(L, -2);
  return pr->reader;
}

static srp *check_srp(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, AIO_SRP_MT);
}

/* Pushes a new protocol for the reader at ridx (0: none) and the
 * client_connected_cb at cbidx (0: none). */
static srp *srp_new(lua_State *L, int ridx, int cbidx, aio_loop *loop) {
  srp *pr;
  ridx = ridx ? lua_absindex(L, ridx) : 0;
  cbidx = cbidx ? lua_absindex(L, cbidx) : 0;
  pr = lua_newuserdatauv(L, sizeof *pr, P_UV_COUNT);
  memset(pr, 0, sizeof *pr);
  pr->loop = loop;
  luaL_setmetatable(L, AIO_SRP_MT);
  aio_push_loop(L, loop);
  lua_setiuservalue(L, -2, P_UV_LOOP);
  if (ridx) {
    aio_reader *r = lua_touserdata(L, ridx);
    pr->reader = r;
    r->proto = pr;
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, ridx, R_UV_PROTO);
    push_weak_readers(L);
    lua_pushvalue(L, ridx);
    lua_rawsetp(L, -2, r);
    lua_pop(L, 1);
    if (r->loop == NULL) {
      r->loop = loop;
      aio_push_loop(L, loop);
      lua_setiuservalue(L, ridx, R_UV_LOOP);
    }
  }
  if (cbidx && !lua_isnil(L, cbidx)) {
    lua_pushvalue(L, cbidx);
    lua_setiuservalue(L, -2, P_UV_CB);
    if (ridx) { /* a server's: held strongly */
      lua_pushvalue(L, ridx);
      lua_setiuservalue(L, -2, P_UV_READER);
    }
  }
  return pr;
}

/* Closes the transport in user value `uv` of the object at idx (C
 * transport t, or through its close method). */
static void close_transport(lua_State *L, int idx, int uv, aio_transport *t) {
  if (t)
    aio_transport_close(L, t);
  else if (lua_getiuservalue(L, idx, uv) != LUA_TNIL) {
    lua_pop(L, 1);
    call_transport(L, idx, uv, "close", 0, 0);
  } else
    lua_pop(L, 1);
}

/* The done callback of a client_connected_cb task (upvalue 1: the
 * protocol): as asyncio, a failure is reported and closes the
 * transport, and so does a cancellation. */
static int l_client_task_done(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  srp *pr = lua_touserdata(L, lua_upvalueindex(1));
  int report = 0;
  if (f->state == AIO_FINISHED && f->has_exc) {
    lua_getfield(L, 1, "exception");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1); /* [task, exc] */
    report = 1;
  }
  if (report || f->state == AIO_CANCELLED) {
    if (report) {
      lua_getiuservalue(L, lua_upvalueindex(1), P_UV_TRANSPORT);
      aio_report_error(L, f->loop, "Unhandled exception in "
                       "client_connected_cb", 2, "transport", 3);
    }
    close_transport(L, lua_upvalueindex(1), P_UV_TRANSPORT, pr->t);
  }
  return 0;
}

static aio_writer *writer_new(lua_State *L, int tidx, int pidx, int ridx,
                              aio_loop *loop);

static void srp_connection_made(lua_State *L, void *p, int pidx, int tidx) {
  srp *pr = p;
  aio_reader *r;
  int top = lua_gettop(L);
  pidx = lua_absindex(L, pidx);
  tidx = lua_absindex(L, tidx);
  lua_pushvalue(L, tidx);
  lua_setiuservalue(L, pidx, P_UV_TRANSPORT);
  pr->t = aio_test_transport(L, tidx);
  pr->has_transport = 1;
  if (pr->t == NULL) { /* over TLS? (asyncio's _over_ssl) */
    lua_getfield(L, tidx, "get_extra_info");
    lua_pushvalue(L, tidx);
    lua_pushliteral(L, "sslcontext");
    lua_call(L, 2, 1);
    pr->over_ssl = !lua_isnil(L, -1);
    lua_pop(L, 1);
  }
  r = push_reader(L, pr); /* [reader] */
  if (r)
    reader_set_transport(L, r, -1, tidx);
  if (lua_getiuservalue(L, pidx, P_UV_CB) == LUA_TNIL) {
    lua_settop(L, top);
    return;
  }
  /* [reader, cb]: cb(reader, writer), a task for the coroutine it gives */
  writer_new(L, tidx, pidx, top + 1, pr->loop);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, pidx, P_UV_WRITER);
  lua_pushvalue(L, top + 1);
  lua_insert(L, -2); /* [reader, cb, reader, writer] */
  lua_call(L, 2, 1);
  if (aio_test_coro(L, -1) != NULL) {
    aio_ensure_future(L, -1, pr->loop); /* [reader, coro, task] */
    lua_pushvalue(L, pidx);
    lua_pushcclosure(L, l_client_task_done, 1);
    aio_future_add_callback(L, -2);
  }
  lua_settop(L, top);
}

static void srp_get_buffer(void *p, size_t want, uv_buf_t *buf) {
  aio_reader *r = ((srp *)p)->reader;
  buf->base = NULL;
  buf->len = 0;
  if (r == NULL || reader_reserve(r, want) != 0 || r->buf == NULL)
    return; /* the read fails with UV_ENOBUFS */
  buf->base = r->buf + r->off + r->len;
  buf->len = r->cap - r->off - r->len;
}

/* A transport written in Lua (TLS's) is paused from srp_wake, which
 * has Lua. */
static int srp_buffer_updated(void *p, size_t n) {
  aio_reader *r = ((srp *)p)->reader;
  int lua_pause = 0;
  r->len += n;
  r->fed += n;
  if (must_pause(r)) {
    if (r->t)
      reader_pause(NULL, r, 0);
    else
      lua_pause = 1;
  }
  /* the waiting task wakes from here when it can, else from srp_wake */
  return (r->wtask && r->len >= r->want && !reader_try_wake(r)) ||
         lua_pause;
}

static void srp_wake(lua_State *L, void *p) {
  srp *pr = p;
  aio_reader *r = pr->reader;
  if (r == NULL)
    return;
  wake_reader(L, r);
  if (r->t == NULL && must_pause(r)) { /* as l_srp_data_received */
    push_reader(L, pr);
    reader_pause(L, r, -1);
    lua_pop(L, 1);
  }
}

static int srp_eof_received(lua_State *L, void *p, int pidx) {
  srp *pr = p;
  (void)pidx;
  if (pr->reader)
    reader_feed_eof(L, pr->reader);
  return !pr->over_ssl;
}

static void srp_connection_lost(lua_State *L, void *p, int pidx, int eidx) {
  srp *pr = p;
  aio_reader *r;
  pidx = lua_absindex(L, pidx);
  eidx = lua_absindex(L, eidx);
  pr->lost = 1;
  r = push_reader(L, pr);
  if (r) {
    if (lua_isnil(L, eidx))
      reader_feed_eof(L, r);
    else
      reader_set_exc(L, r, -1, eidx);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, eidx);
  lua_setiuservalue(L, pidx, P_UV_EXC);
  aio_waiters_wake(L, &pr->closed_key);
  aio_waiters_wake(L, &pr->drain_key);
}

static void srp_pause_writing(lua_State *L, void *p, int pidx) {
  (void)L;
  (void)pidx;
  ((srp *)p)->paused = 1;
}

static void srp_resume_writing(lua_State *L, void *p, int pidx) {
  srp *pr = p;
  (void)pidx;
  pr->paused = 0;
  aio_waiters_wake(L, &pr->drain_key);
}

static const aio_proto_vt srp_vt = {
    srp_get_buffer,      srp_buffer_updated, srp_wake,
    srp_connection_made, srp_eof_received,   srp_connection_lost,
    srp_pause_writing,   srp_resume_writing, 1};

/* The Lua methods, for transports that are not C ones. */
static int l_srp_connection_made(lua_State *L) {
  srp *pr = check_srp(L, 1);
  luaL_checkany(L, 2);
  srp_connection_made(L, pr, 1, 2);
  return 0;
}

static int l_srp_data_received(lua_State *L) {
  srp *pr = check_srp(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  aio_reader *r = pr->reader;
  if (r == NULL || len == 0)
    return 0;
  if (reader_feed(L, r, data, len)) {
    push_reader(L, pr);
    reader_pause(L, r, -1);
  }
  return 0;
}

static int l_srp_eof_received(lua_State *L) {
  lua_pushboolean(L, srp_eof_received(L, check_srp(L, 1), 1));
  return 1;
}

static int l_srp_connection_lost(lua_State *L) {
  srp *pr = check_srp(L, 1);
  lua_settop(L, 2);
  if (!pr->lost)
    srp_connection_lost(L, pr, 1, 2);
  return 0;
}

static int l_srp_pause_writing(lua_State *L) {
  srp_pause_writing(L, check_srp(L, 1), 1);
  return 0;
}

static int l_srp_resume_writing(lua_State *L) {
  srp_resume_writing(L, check_srp(L, 1), 1);
  return 0;
}

/* _replace_transport(t): writes and closes go to t from now on (the
 * upgrade of start_tls). */
static int l_srp_replace_transport(lua_State *L) {
  srp *pr = check_srp(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, P_UV_TRANSPORT);
  lua_getiuservalue(L, 1, P_UV_TRANSPORT);
  pr->t = aio_test_transport(L, 2);
  pr->over_ssl = pr->t == NULL;
  return 0;
}

/* _server_side() -> whether the protocol serves a client_connected_cb
 * (start_server's), as Python's StreamWriter.start_tls tells the side. */
static int l_srp_server_side(lua_State *L) {
  check_srp(L, 1);
  lua_pushboolean(L, lua_getiuservalue(L, 1, P_UV_CB) != LUA_TNIL);
  return 1;
}

static int l_srp__tostring(lua_State *L) {
  srp *pr = check_srp(L, 1);
  lua_pushfstring(L, "<StreamReaderProtocol%s%s>",
                  pr->lost ? " lost" : pr->has_transport ? " connected" : "",
                  pr->paused ? " paused" : "");
  return 1;
}

/* asyncio.StreamReaderProtocol(reader [, client_connected_cb]) */
static int l_srp_new(lua_State *L) {
  aio_reader *r = luaL_checkudata(L, 1, AIO_READER_MT);
  aio_loop *loop = r->loop ? r->loop : aio_get_event_loop(L);
  lua_settop(L, 2);
  srp_new(L, 1, 2, loop);
  return 1;
}

/* [limit, cb] upvalues: the protocol factory of start_server. */
static int l_stream_factory_call(lua_State *L) {
  size_t limit = (size_t)lua_tointeger(L, lua_upvalueindex(1));
  aio_reader *r = reader_new(L, limit);
  (void)r;
  srp_new(L, -1, lua_upvalueindex(2), aio_get_event_loop(L));
  return 1;
}

/* _stream_factory(limit, client_connected_cb) */
static int l_stream_factory(lua_State *L) {
  luaL_checkinteger(L, 1);
  lua_settop(L, 2);
  lua_pushcclosure(L, l_stream_factory_call, 2);
  return 1;
}

/* ------------------------------------------------------------------ */
/* StreamWriter                                                        */

/* Each writer has a metatable of its own, so that `writer.transport` is
 * a plain field while method look-ups stay table look-ups (an __index
 * function would cost every writer:write). It holds the class's kind tag
 * (in its array part) and metamethods (CLASS_KEYS), __index (itself),
 * the transport and the methods a writing loop calls (HOT_METHODS, as
 * the methods table had them when the writer was made: one look-up
 * each); its own metatable (registry[&writer_methods_mt]) sends the rest
 * to the methods. Eight keys fill a hash part of 8 slots: 264 bytes in
 * all, where a copy of the whole class metatable took 456. The keys are
 * Lua strings kept in registry[&writer_keys] (WK_*), so that making the
 * table interns no string. */
static const char writer_methods_mt = 0;
static const char writer_keys = 0;
static const char writer_tag = 0;
static const char *const CLASS_KEYS[] = {"__gc", "__close", "__tostring",
                                         "__name"};
static const char *const HOT_METHODS[] = {"write", "drain"};
#define N_CLASS_KEYS (sizeof CLASS_KEYS / sizeof *CLASS_KEYS)
#define N_HOT_METHODS (sizeof HOT_METHODS / sizeof *HOT_METHODS)
#define WRITER_MT_KEYS 8 /* CLASS_KEYS, HOT_METHODS, __index, transport */
/* registry[&writer_keys]: the class metatable, its methods table, then
 * the key strings: CLASS_KEYS, HOT_METHODS, "__index", "transport" */
enum { WK_CLASS = 1, WK_METHODS, WK_FIRST_KEY };
#define WK_INDEX (WK_FIRST_KEY + N_CLASS_KEYS + N_HOT_METHODS)
#define WK_TRANSPORT (WK_INDEX + 1)

static aio_writer *test_writer(lua_State *L, int idx) {
  return aio_checktagged(L, idx, sizeof(aio_writer), &writer_tag,
                         AIO_K_WRITER, AIO_WRITER_MT);
}

/* Makes registry[&writer_keys] from the class metatable on top. */
static void writer_keys_new(lua_State *L) {
  size_t i;
  int n = WK_FIRST_KEY;
  lua_createtable(L, WK_TRANSPORT, 0);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, WK_CLASS);
  lua_getfield(L, -2, "__index");
  lua_rawseti(L, -2, WK_METHODS);
  for (i = 0; i < N_CLASS_KEYS; i++, n++) {
    lua_pushstring(L, CLASS_KEYS[i]);
    lua_rawseti(L, -2, n);
  }
  for (i = 0; i < N_HOT_METHODS; i++, n++) {
    lua_pushstring(L, HOT_METHODS[i]);
    lua_rawseti(L, -2, n);
  }
  lua_pushliteral(L, "__index");
  lua_rawseti(L, -2, WK_INDEX);
  lua_pushliteral(L, "transport");
  lua_rawseti(L, -2, WK_TRANSPORT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &writer_keys);
}

/* Copies src[keys[i]] to the table mt for the n keys from keys[first]
 * (raw reads and writes): [..., mt, keys, src] -> same. */
static void copy_fields(lua_State *L, int first, int n) {
  int i;
  for (i = first; i < first + n; i++) {
    lua_rawgeti(L, -2, i);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    lua_rawset(L, -5);
  }
}

/* Sets the writer metatable with the transport at tidx on the writer on
 * top. */
static void writer_setmt(lua_State *L, int tidx) {
  lua_createtable(L, 1, WRITER_MT_KEYS); /* [w, mt] */
  aio_set_mt_kind(L, -1, AIO_K_WRITER);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &writer_keys); /* [w, mt, keys] */
  lua_rawgeti(L, -1, WK_CLASS);
  copy_fields(L, WK_FIRST_KEY, N_CLASS_KEYS);
  lua_pop(L, 1);
  lua_rawgeti(L, -1, WK_METHODS);
  copy_fields(L, WK_FIRST_KEY + N_CLASS_KEYS, N_HOT_METHODS);
  lua_pop(L, 1);
  lua_rawgeti(L, -1, WK_INDEX);
  lua_pushvalue(L, -3);
  lua_rawset(L, -4);
  lua_rawgeti(L, -1, WK_TRANSPORT);
  lua_pushvalue(L, tidx);
  lua_rawset(L, -4);
  lua_pop(L, 1); /* [w, mt] */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &writer_methods_mt);
  lua_setmetatable(L, -2);
  lua_setmetatable(L, -2);
}

/* Pushes a writer of the transport at tidx, protocol at pidx, reader at
 * ridx (0: none). */
static aio_writer *writer_new(lua_State *L, int tidx, int pidx, int ridx,
                              aio_loop *loop) {
  aio_writer *w;
  tidx = lua_absindex(L, tidx);
  pidx = lua_absindex(L, pidx);
  ridx = ridx ? lua_absindex(L, ridx) : 0;
  w = lua_newuserdatauv(L, sizeof *w, W_UV_COUNT);
  memset(w, 0, sizeof *w);
  w->tag = &writer_tag;
  w->t = aio_test_transport(L, tidx);
  w->lvt = w->t ? NULL : aio_metafield_ptr(L, tidx, AIO_LUA_TRANSPORT_VT);
  w->proto = luaL_testudata(L, pidx, AIO_SRP_MT);
  writer_setmt(L, tidx);
  lua_pushvalue(L, tidx);
  lua_setiuservalue(L, -2, W_UV_TRANSPORT);
  lua_pushvalue(L, pidx);
  lua_setiuservalue(L, -2, W_UV_PROTO);
  if (ridx) {
    w->reader = lua_touserdata(L, ridx);
    lua_pushvalue(L, ridx);
    lua_setiuservalue(L, -2, W_UV_READER);
  }
  aio_push_loop(L, loop);
  lua_setiuservalue(L, -2, W_UV_LOOP);
  return w;
}

/* Raises a bad argument error naming `what` unless the value at idx is
 * an object (a table or userdata) whose methods may be called. */
static void check_object(lua_State *L, int idx, const char *what) {
  int t = lua_type(L, idx);
  if (t != LUA_TTABLE && t != LUA_TUSERDATA)
    luaL_typeerror(L, idx, what);
}

/* asyncio.StreamWriter(transport, protocol, reader, loop) */
static int l_writer_new(lua_State *L) {
  aio_loop *loop;
  check_object(L, 1, "transport");
  check_object(L, 2, "protocol");
  if (!lua_isnoneornil(L, 3))
    luaL_checkudata(L, 3, AIO_READER_MT);
  loop = lua_isnoneornil(L, 4) ? aio_get_event_loop(L)
                               : aio_check_loop(L, 4);
  writer_new(L, 1, 2, lua_isnoneornil(L, 3) ? 0 : 3, loop);
  return 1;
}

/* The writer at idx; raises once close() was called. */
static aio_writer *check_open_writer(lua_State *L, int idx) {
  aio_writer *w = test_writer(L, idx);
  if (w->closed)
    luaL_error(L, "attempt to use a closed " AIO_WRITER_MT);
  return w;
}

static int l_writer_write(lua_State *L) {
  size_t len;
  aio_writer *w = check_open_writer(L, 1);
  const char *data = lua_tolstring(L, 2, &len);
  if (data == NULL)
    data = luaL_checklstring(L, 2, &len); /* raises */
  if (w->t)
    aio_transport_write(L, w->t, data, len);
  else if (w->lvt) { /* data is a string at 2 (a number was converted) */
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, W_UV_TRANSPORT);
    w->lvt->write(L, 3, 2);
  } else {
    lua_settop(L, 2);
    call_transport(L, 1, W_UV_TRANSPORT, "write", 1, 0);
  }
  return 0;
}

/* writelines(list): one write of the strings joined. */
static int l_writer_writelines(lua_State *L) {
  check_open_writer(L, 1);
  aio_join_list(L, 2);
  return l_writer_write(L);
}

static int l_writer_write_eof(lua_State *L) {
  aio_writer *w = check_open_writer(L, 1);
  lua_settop(L, 1);
  if (w->t)
    aio_transport_write_eof(L, w->t);
  else
    call_transport(L, 1, W_UV_TRANSPORT, "write_eof", 0, 0);
  return 0;
}

static int l_writer_can_write_eof(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  lua_settop(L, 1);
  if (w->t)
    lua_pushboolean(L, !w->t->readonly);
  else
    call_transport(L, 1, W_UV_TRANSPORT, "can_write_eof", 0, 1);
  return 1;
}

static int l_writer_close(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  lua_settop(L, 1);
  w->closed = 1;
  close_transport(L, 1, W_UV_TRANSPORT, w->t);
  return 0;
}

static int writer_is_closing(lua_State *L, aio_writer *w, int widx) {
  int r;
  if (w->t)
    return aio_transport_is_closing(w->t);
  if (w->lvt) {
    lua_getiuservalue(L, widx, W_UV_TRANSPORT);
    r = w->lvt->is_closing(L, lua_gettop(L));
    lua_pop(L, 1);
    return r;
  }
  call_transport(L, widx, W_UV_TRANSPORT, "is_closing", 0, 1);
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

static int l_writer_is_closing(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  lua_settop(L, 1);
  lua_pushboolean(L, w->closed || writer_is_closing(L, w, 1));
  return 1;
}

/* Raises what drain() raises once the connection is lost, as asyncio's
 * _drain_helper: ConnectionResetError('Connection lost'), whatever lost
 * it (that error reaches the reader, whose exception the next drain
 * raises first). */
static int raise_lost(lua_State *L) {
  aio_push_error_named(L, "ConnectionResetError", "Connection lost");
  return lua_error(L);
}

static int drain_body(lua_State *L);
static int drain_open(lua_State *L, aio_writer *w);

/* After the turn of the loop drain gives a closing transport: raises if
 * the connection was lost meanwhile, else goes on as for an open one. */
static int drain_closing_k(lua_State *L, int status, lua_KContext ctx) {
  aio_writer *w = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  aio_resume_check(L, aio_current_task_of(L));
  lua_settop(L, 1);
  if (w->proto && w->proto->lost)
    return raise_lost(L);
  return drain_open(L, w);
}

static int drain_k(lua_State *L, int status, lua_KContext ctx) {
  aio_writer *w = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  aio_waiters_resumed(L, &w->proto->drain_key, 2);
  lua_settop(L, 1);
  return drain_body(L);
}

/* Waits while the protocol is paused (asyncio's _drain_helper, once not
 * lost). [writer] */
static int drain_open(lua_State *L, aio_writer *w) {
  srp *pr = w->proto;
  aio_task *t;
  if (pr == NULL || !pr->paused)
    return 0;
  t = aio_check_await(L, "drain");
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &pr->drain_key, 0, drain_k);
}

/* As asyncio's StreamWriter.drain: the reader's exception; a lost
 * connection raises; a closing transport first gives the loop one turn,
 * so that its connection_lost may run (a TLS transport's reaches the
 * protocol a few callbacks after the socket closed), and raises only if
 * it did. [writer] */
static int drain_body(lua_State *L) {
  aio_writer *w = lua_touserdata(L, 1); /* checked by the method */
  srp *pr = w->proto;
  if (w->reader && w->reader->has_exc) { /* raises its exception */
    lua_getiuservalue(L, 1, W_UV_READER);
    reader_check_exc(L, w->reader, -1);
  }
  if (pr && pr->lost)
    return raise_lost(L);
  if (writer_is_closing(L, w, 1)) {
    aio_task *t = aio_check_await(L, "drain");
    t->wait_kind = AIO_WAIT_YIELD;
    aio_schedule_step(L, t->fut.loop, t);
    return aio_task_suspend(L, t, 0, drain_closing_k);
  }
  return drain_open(L, w);
}

/* The fast path of writer:drain() awaited (aio_fast_op): a writer on a
 * core transport, or one written in Lua with an is_closing entry, that
 * is open, not lost and not paused has nothing to wait for and nothing
 * to raise. [op, whose user value 2 is the writer] */
static int drain_fast(lua_State *L, aio_fast_op *op) {
  aio_writer *w = op->owner;
  srp *pr = w->proto;
  int closing;
  if ((w->t == NULL && w->lvt == NULL) ||
      (w->reader && w->reader->has_exc) || (pr && (pr->lost || pr->paused)))
    return -1;
  if (w->t)
    closing = aio_transport_is_closing(w->t);
  else {
    lua_getiuservalue(L, 1, 2);
    closing = writer_is_closing(L, w, lua_gettop(L));
    lua_pop(L, 1);
  }
  return closing ? -1 : 0;
}

static int l_writer_drain(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  return aio_fast_op_kept(L, &w->drain_op, 1, drain_body, W_UV_DRAIN,
                          drain_fast, 0);
}

static int wait_closed_body(lua_State *L);

static int wait_closed_k(lua_State *L, int status, lua_KContext ctx) {
  aio_writer *w = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  aio_waiters_resumed(L, &w->proto->closed_key, 2);
  lua_settop(L, 1);
  return wait_closed_body(L);
}

/* wait_closed(): until connection_lost; raises the error it got. */
static int wait_closed_body(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  srp *pr = w->proto;
  aio_task *t;
  lua_settop(L, 1);
  if (pr == NULL)
    return 0;
  if (pr->lost) {
    lua_getiuservalue(L, 1, W_UV_PROTO);
    if (lua_getiuservalue(L, -1, P_UV_EXC) != LUA_TNIL)
      return lua_error(L);
    return 0;
  }
  t = aio_check_await(L, "wait_closed");
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &pr->closed_key, 0, wait_closed_k);
}

static int l_writer_wait_closed(lua_State *L) {
  test_writer(L, 1);
  return aio_ccoro_method(L, 1, wait_closed_body);
}

/* get_extra_info(name [, default]): the transport's. */
static int l_writer_get_extra_info(lua_State *L) {
  test_writer(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  call_transport(L, 1, W_UV_TRANSPORT, "get_extra_info", 2, 1);
  return 1;
}

static int l_writer_get_write_buffer_size(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  lua_settop(L, 1);
  if (w->t)
    lua_pushinteger(L, (lua_Integer)aio_transport_buffer_size(w->t));
  else
    call_transport(L, 1, W_UV_TRANSPORT, "get_write_buffer_size", 0, 1);
  return 1;
}

static int l_writer_get_reader(lua_State *L) {
  test_writer(L, 1);
  lua_getiuservalue(L, 1, W_UV_READER);
  return 1;
}

/* _get_protocol(): the stream protocol (start_tls). */
static int l_writer_get_protocol(lua_State *L) {
  test_writer(L, 1);
  lua_getiuservalue(L, 1, W_UV_PROTO);
  return 1;
}

/* _replace_transport(t) (start_tls). */
static int l_writer_replace_transport(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  w->t = aio_test_transport(L, 2);
  w->lvt = w->t ? NULL : aio_metafield_ptr(L, 2, AIO_LUA_TRANSPORT_VT);
  lua_getmetatable(L, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "transport");
  lua_pop(L, 1);
  lua_setiuservalue(L, 1, W_UV_TRANSPORT);
  return 0;
}

static int l_writer__tostring(lua_State *L) {
  aio_writer *w = test_writer(L, 1);
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, W_UV_TRANSPORT);
  aio_pushrepr(L, -1);
  lua_pushfstring(L, "<StreamWriter transport=%s%s>", lua_tostring(L, -1),
                  w->closed ? " closed" : "");
  return 1;
}

/* A collected writer that was not closed closes its transport, as
 * asyncio's StreamWriter.__del__. */
static int l_writer__gc(lua_State *L) {
  aio_writer *w = lua_touserdata(L, 1);
  w->drain_op = NULL; /* it may go with it */
  if (w->closed)
    return 0;
  w->closed = 1;
  if (w->t)
    aio_transport_close(L, w->t);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Pipes of subprocesses (process.c)                                   */

void aio_stream_push_reader(lua_State *L, aio_stream *s, size_t limit) {
  aio_loop *loop = s->io.loop;
  int top = lua_gettop(L);
  aio_transport_push(L, s, 1, 0);   /* [t] */
  reader_new(L, limit);             /* [t, r] */
  srp_new(L, top + 2, 0, loop);     /* [t, r, p] */
  aio_transport_start(L, top + 1, top + 3, 1);
  lua_settop(L, top + 2);
  lua_remove(L, top + 1);
}

void aio_stream_push_writer(lua_State *L, aio_stream *s) {
  aio_loop *loop = s->io.loop;
  int top = lua_gettop(L);
  aio_transport_push(L, s, 0, 1);   /* [t] */
  srp_new(L, 0, 0, loop);           /* [t, p] */
  aio_transport_start(L, top + 1, top + 2, 1);
  writer_new(L, top + 1, top + 2, 0, loop);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* ------------------------------------------------------------------ */
/* Registration                                                        */

static const luaL_Reg reader_methods[] = {
    {"read", l_reader_read},
    {"readline", l_reader_readline},
    {"readexactly", l_reader_readexactly},
    {"readuntil", l_reader_readuntil},
    {"readany", l_reader_readany},
    {"read_nowait", l_reader_read_nowait},
    {"iter_chunked", l_reader_iter_chunked},
    {"iter_any", l_reader_iter_any},
    {"readchunk", l_reader_readchunk},
    {"iter_chunks", l_reader_iter_chunks},
    {"begin_http_chunk_receiving", l_reader_begin_http_chunk},
    {"end_http_chunk_receiving", l_reader_end_http_chunk},
    {"_feed_http", l_reader__feed_http},
    {"at_eof", l_reader_at_eof},
    {"is_eof", l_reader_is_eof},
    {"lines", l_reader_lines},
    {"exception", l_reader_exception},
    {"set_exception", l_reader_set_exception},
    {"feed_data", l_reader_feed_data},
    {"feed_eof", l_reader_feed_eof},
    {"_buffer", l_reader__buffer},
    {"_buffered", l_reader__buffered},
    {"_get_transport", l_reader_get_transport},
    {NULL, NULL}};

static const luaL_Reg reader_metamethods[] = {
    {"__gc", l_reader__gc},
    {"__call", l_reader_lines_next},
    {"__tostring", l_reader__tostring},
    {NULL, NULL}};

static const luaL_Reg srp_methods[] = {
    {"connection_made", l_srp_connection_made},
    {"data_received", l_srp_data_received},
    {"eof_received", l_srp_eof_received},
    {"connection_lost", l_srp_connection_lost},
    {"pause_writing", l_srp_pause_writing},
    {"resume_writing", l_srp_resume_writing},
    {"_replace_transport", l_srp_replace_transport},
    {"_server_side", l_srp_server_side},
    {NULL, NULL}};

static const luaL_Reg srp_metamethods[] = {
    {"__tostring", l_srp__tostring},
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
    {"_get_protocol", l_writer_get_protocol},
    {"_replace_transport", l_writer_replace_transport},
    {NULL, NULL}};

static const luaL_Reg writer_metamethods[] = {
    {"__gc", l_writer__gc},
    {"__close", l_writer_close},
    {"__tostring", l_writer__tostring},
    {NULL, NULL}};

static const luaL_Reg stream_funcs[] = {
    {"StreamReader", l_reader_new},
    {"StreamReaderProtocol", l_srp_new},
    {"StreamWriter", l_writer_new},
    {"_stream_factory", l_stream_factory},
    {NULL, NULL}};

/* Names of the C operations in reprs (aio_name_ops). */
static const aio_op_name op_names[] = {
    {read_kept_body, "StreamReader.read"},
    {read_body, "StreamReader.read"},
    {readchunk_body, "StreamReader.readchunk"},
    {readexactly_body, "StreamReader.readexactly"},
    {readuntil_body, "StreamReader.readuntil"},
    {readline_body, "StreamReader.readline"},
    {drain_body, "StreamWriter.drain"},
    {wait_closed_body, "StreamWriter.wait_closed"},
    {NULL, NULL}};

void aio_open_stream(lua_State *L) {
  aio_name_ops(L, op_names);
  aio_newclass(L, AIO_READER_MT, AIO_K_READER, reader_methods,
               reader_metamethods);
  aio_cache_mt(L, AIO_READER_MT, &reader_mt);
  aio_newclass(L, AIO_SRP_MT, AIO_K_OTHER, srp_methods, srp_metamethods);
  luaL_getmetatable(L, AIO_SRP_MT);
  lua_pushlightuserdata(L, (void *)&srp_vt);
  lua_setfield(L, -2, AIO_PROTO_VT);
  lua_pop(L, 1);
  aio_newclass(L, AIO_WRITER_MT, AIO_K_WRITER, writer_methods,
               writer_metamethods);
  luaL_getmetatable(L, AIO_WRITER_MT);
  writer_keys_new(L);
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "_StreamWriter"); /* the methods, for streams.lua */
  lua_createtable(L, 0, 1);
  lua_insert(L, -2);
  lua_setfield(L, -2, "__index");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &writer_methods_mt);
  lua_pop(L, 1);
  luaL_setfuncs(L, stream_funcs, 0);
}
