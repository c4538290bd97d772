/*
 * sslobj.c - SSLObject: one TLS connection run in memory, the engine
 * under asyncio.sslproto's transport (Python's ssl.SSLObject over a pair
 * of MemoryBIOs, with the hot path folded into two calls).
 *
 * The SSL reads and writes ciphertext through a BIO of our own: reads
 * come straight out of the string the caller feeds, after what an earlier
 * call left over (kept in `ibuf`: usually the start of a record; all of a
 * feed made while reading is paused), writes append
 * to `obuf`, which each call hands back as one string. So a chunk off the
 * socket costs one call, feed(), which runs the handshake or reads all
 * the plaintext available into one string; a write costs one call,
 * write(), which encrypts all of it. Errors of the TLS layer are returned
 * as error objects, not raised, so the protocol needs no pcall on its
 * hot path:
 *
 *   plain, out, events, err[, sink_err] = obj:feed(ciphertext, read, sink)
 *   out, written, err      = obj:write(plaintext [, transport])
 *   done, out, err         = obj:shutdown()
 *
 * Given a transport of the core (a TCP, Unix or pipe one), write() hands
 * the ciphertext to it directly, through the entries its metatable
 * publishes (AIO_TRANSPORT_VT), and returns no string: the bulk of a
 * connection's output never becomes a Lua string. Given as its sink a
 * C protocol whose entries serve transports written in Lua (the stream
 * reader's: AIO_PROTO_VT, lua_transports), feed() decrypts into the
 * protocol's own buffer: the bulk of the input never becomes one either.
 *
 * The userdata keeps its context (user value 1) and server_hostname
 * (user value 2); the SSL keeps its own reference to the SSL_CTX.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls.h"

/* feed()'s event bits */
#define EV_HANDSHAKE 1 /* the handshake completed in this call */
#define EV_EOF 2       /* the peer's close_notify arrived */

/* The entries a metatable publishes, kept for the last metatable asked:
 * a connection writes to one transport and feeds one sink, whose
 * metatables (kept by the registry, so unique) are then recognised by
 * their address alone. */
typedef struct vt_cache {
  const void *mt;
  const void *vt;
} vt_cache;

typedef struct tls_obj {
  const char *tag;        /* &obj_tag: a tls_obj, known without a look-up */
  SSL *ssl;               /* NULL once collected */
  const char *in;         /* ciphertext the BIO reads next, */
  size_t inlen;
  const char *in2;        /* then this: the data of a feed that found */
  size_t in2len;          /* ciphertext kept (in then reads ibuf) */
  char *ibuf;             /* ciphertext kept between calls (malloc'd) */
  size_t ibuf_len, ibuf_cap;
  char *obuf;             /* ciphertext written, not yet handed back */
  size_t olen, ocap;
  char *pbuf;             /* plaintext read by feed (malloc'd, reused) */
  size_t pcap;
  vt_cache tcache;        /* the last transport written to's entries */
  vt_cache scache;        /* the last sink fed's (a C protocol's) */
  unsigned char server_side, handshake_done, nomem;
  unsigned char in_kept;  /* in points into ibuf */
} tls_obj;

/* ------------------------------------------------------------------ */
/* The BIO                                                             */

static int bio_write(BIO *b, const char *data, int len) {
  tls_obj *o = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (len <= 0)
    return 0;
  if (o->olen + (size_t)len > o->ocap) {
    size_t cap = o->ocap ? o->ocap : 4096;
    char *p;
    while (cap < o->olen + (size_t)len)
      cap *= 2;
    if (!(p = realloc(o->obuf, cap))) {
      o->nomem = 1;
      return -1;
    }
    o->obuf = p;
    o->ocap = cap;
  }
  memcpy(o->obuf + o->olen, data, (size_t)len);
  o->olen += (size_t)len;
  return len;
}

static int bio_read(BIO *b, char *out, int len) {
  tls_obj *o = BIO_get_data(b);
  size_t n;
  BIO_clear_retry_flags(b);
  if (o->inlen == 0) {
    if (o->in2len == 0) {
      BIO_set_retry_read(b);
      return -1;
    }
    o->in = o->in2; /* the kept ciphertext is read: on to the feed's */
    o->inlen = o->in2len;
    o->in2len = 0;
    o->in_kept = 0;
  }
  n = (size_t)len < o->inlen ? (size_t)len : o->inlen;
  memcpy(out, o->in, n);
  o->in += n;
  o->inlen -= n;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  tls_obj *o = BIO_get_data(b);
  (void)num;
  (void)ptr;
  switch (cmd) {
  case BIO_CTRL_FLUSH: return 1;
  case BIO_CTRL_PENDING: return (long)(o->inlen + o->in2len);
  case BIO_CTRL_WPENDING: return (long)o->olen;
  default: return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *bio_method;
static CRYPTO_ONCE bio_once = CRYPTO_ONCE_STATIC_INIT;

static void bio_method_init(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                               "luaio memory");
  if (!m)
    return;
  BIO_meth_set_write(m, bio_write);
  BIO_meth_set_read(m, bio_read);
  BIO_meth_set_ctrl(m, bio_ctrl);
  BIO_meth_set_create(m, bio_create);
  bio_method = m;
}

/* Points the BIO at the kept ciphertext, then at data (read in place:
 * not copied). */
static void in_begin(tls_obj *o, const char *data, size_t len) {
  if (o->ibuf_len == 0) {
    o->in = data;
    o->inlen = len;
    o->in2len = 0;
    o->in_kept = 0;
  } else {
    o->in = o->ibuf;
    o->inlen = o->ibuf_len;
    o->in2 = data;
    o->in2len = len;
    o->in_kept = 1;
  }
}

/* Makes ibuf hold at least n bytes, keeping its contents. Returns 0 when
 * out of memory. */
static int ibuf_room(tls_obj *o, size_t n) {
  size_t cap = o->ibuf_cap ? o->ibuf_cap : 4096;
  char *p;
  if (n <= o->ibuf_cap)
    return 1;
  while (cap < n)
    cap *= 2;
  if (!(p = realloc(o->ibuf, cap)))
    return 0;
  o->ibuf = p;
  o->ibuf_cap = cap;
  return 1;
}

/* Keeps what the SSL did not read for the next call: usually the start
 * of a record, all that is copied of a feed. Returns 0 when out of
 * memory (the rest is then lost: the caller fails the connection). */
static int in_end(tls_obj *o) {
  size_t keep = o->inlen + o->in2len;
  int ok = 1;
  if (keep == 0) {
    o->ibuf_len = 0;
  } else if (o->in_kept) { /* the kept part, then all of the feed */
    memmove(o->ibuf, o->in, o->inlen);
    ok = ibuf_room(o, keep);
    if (ok && o->in2len)
      memcpy(o->ibuf + o->inlen, o->in2, o->in2len);
  } else { /* the end of the feed */
    ok = ibuf_room(o, keep);
    if (ok)
      memcpy(o->ibuf, o->in, o->inlen);
  }
  o->ibuf_len = ok ? keep : 0;
  o->in = o->in2 = NULL;
  o->inlen = o->in2len = 0;
  o->in_kept = 0;
  return ok;
}

/* Forgets the ciphertext handed out; a big buffer is given back to the
 * allocator. */
static void out_done(tls_obj *o) {
  o->olen = 0;
  if (o->ocap > 256 * 1024) {
    free(o->obuf);
    o->obuf = NULL;
    o->ocap = 0;
  }
}

/* Pushes the ciphertext written since the last call (nil if none) and
 * forgets it. */
static void push_out(lua_State *L, tls_obj *o) {
  if (o->olen == 0) {
    lua_pushnil(L);
    return;
  }
  lua_pushlstring(L, o->obuf, o->olen);
  out_done(o);
}

/* The entries `name` of the metatable of the userdata at idx (NULL for
 * another value, or none), through the cache c. */
static const void *cached_vt(lua_State *L, vt_cache *c, int idx,
                             const char *name) {
  const void *mt;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return NULL;
  mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  if (mt != c->mt) {
    c->mt = mt;
    c->vt = aio_metafield_ptr(L, idx, name);
  }
  return c->vt;
}

/* The core's entries for the transport at idx, or NULL when the value
 * is no core transport (a transport written in Lua, TLS's own: only the
 * core's Transport metatable publishes AIO_TRANSPORT_VT). */
static const aio_transport_vt *transport_vt(lua_State *L, tls_obj *o,
                                            int idx) {
  return cached_vt(L, &o->tcache, idx, AIO_TRANSPORT_VT);
}

/* Writes the ciphertext written since the last call to the core
 * transport at tidx, pushing nil, or pushes it as push_out does when
 * tvt is NULL. The buffer is emptied first: what the transport raises
 * leaves nothing to send twice. */
static void send_out(lua_State *L, tls_obj *o, const aio_transport_vt *tvt,
                     int tidx) {
  size_t n = o->olen;
  if (tvt == NULL) {
    push_out(L, o);
    return;
  }
  o->olen = 0;
  if (n > 0)
    tvt->write(L, lua_touserdata(L, tidx), o->obuf, n);
  out_done(o);
  lua_pushnil(L);
}

/* Calls the method `name` of the value at idx (absolute) with the nargs
 * values on top (popped). */
static void call_method(lua_State *L, int idx, const char *name,
                        int nargs) {
  lua_getfield(L, idx, name);
  lua_pushvalue(L, idx);
  lua_rotate(L, -nargs - 2, 2);
  lua_call(L, nargs + 1, 0);
}

/* Hands the ciphertext written since the last call to the transport at
 * tidx (absolute): from C to a core transport, else by its write
 * method. */
static void send_to(lua_State *L, tls_obj *o, int tidx) {
  send_out(L, o, transport_vt(L, o, tidx), tidx);
  if (lua_isnil(L, -1))
    lua_pop(L, 1);
  else
    call_method(L, tidx, "write", 1);
}

/* ------------------------------------------------------------------ */
/* The object                                                          */

/* A tls_obj's block starts with &obj_tag, which only tls_wrap_bio
 * writes (aio_testtagged: known without the metatable's look-up). */
static const char obj_tag = 0;

static tls_obj *check_obj(lua_State *L, int idx) {
  tls_obj *o = aio_testtagged(L, idx, sizeof *o, &obj_tag);
  if (o == NULL)
    o = luaL_checkudata(L, idx, TLS_OBJECT_MT);
  if (!o->ssl)
    luaL_error(L, "attempt to use a closed %s", TLS_OBJECT_MT);
  return o;
}

/* The server_hostname of the object at idx, or NULL. */
static const char *hostname_of(lua_State *L, int idx) {
  const char *h;
  lua_getiuservalue(L, idx, 2);
  h = lua_tostring(L, -1); /* anchored by the userdata */
  lua_pop(L, 1);
  return h;
}

/* Pushes the error object for SSL_get_error code `code`. */
static void push_error(lua_State *L, tls_obj *o, int idx, int code) {
  if (o->nomem) {
    ERR_clear_error();
    tls_push_error(L, "SSLError", SSL_ERROR_SSL, "not enough memory");
    return;
  }
  tls_push_ssl_error(L, o->ssl, code, hostname_of(L, idx));
}

/* Empties the thread's OpenSSL error queue before an operation whose
 * failure SSL_get_error reads from it; emptying it costs a walk of every
 * slot, so an empty one is only looked at. */
static void clear_errors(void) {
  if (ERR_peek_error() != 0)
    ERR_clear_error();
}

static int is_want(int code) {
  return code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE;
}

/* What stopped SSL_read after it returned n <= 0: 0 for "no more data
 * for now" and for the peer's close_notify (which sets EV_EOF in *ev),
 * else the SSL_get_error code of a failure. */
static int read_stopped(tls_obj *o, int n, int *ev) {
  int code = SSL_get_error(o->ssl, n);
  if (code == SSL_ERROR_ZERO_RETURN) {
    *ev |= EV_EOF;
    return 0;
  }
  return is_want(code) ? 0 : code;
}

/* Makes room in pbuf for `want` more bytes after its first len ones,
 * growing it by doubling. Returns 0 when out of memory. */
static int plain_room(tls_obj *o, size_t len, size_t want) {
  size_t cap = o->pcap ? o->pcap : 16384;
  char *p;
  if (o->pcap - len >= want)
    return 1;
  while (cap - len < want)
    cap *= 2;
  if (len == 0) { /* nothing to keep: no copy of the old contents */
    free(o->pbuf);
    o->pbuf = NULL;
    o->pcap = 0;
  }
  if (!(p = realloc(o->pbuf, cap)))
    return 0;
  o->pbuf = p;
  o->pcap = cap;
  return 1;
}

/* Reads every plaintext byte available into the reused buffer pbuf,
 * setting *plen to their number (push_plain makes them a string). The
 * buffer is sized once for all there can be: the
 * ciphertext at hand, what is decrypted already and one record (16 KiB)
 * that OpenSSL's read-ahead may hold from an earlier call (a record's
 * plaintext is never longer than the record); should a record give more
 * (compression), it grows once full. Returns the SSL error code that
 * stopped it, 0 for "no more data for now"; sets EV_EOF on
 * close_notify. */
static int read_all(tls_obj *o, int *ev, size_t *plen) {
  size_t len = 0,
         want = o->inlen + o->in2len + (size_t)SSL_pending(o->ssl) + 16384;
  int n, code = 0;
  for (;;) {
    if (!plain_room(o, len, want)) {
      o->nomem = 1;
      code = SSL_ERROR_SSL;
      break;
    }
    n = SSL_read(o->ssl, o->pbuf + len, (int)(o->pcap - len));
    if (n > 0) {
      len += (size_t)n;
      /* nothing left to decrypt: spare the call that would say so */
      if (o->inlen + o->in2len == 0 && !SSL_has_pending(o->ssl))
        break;
      want = 1; /* from now on, only room at all */
      continue;
    }
    code = read_stopped(o, n, ev);
    break;
  }
  *plen = len;
  return code;
}

/* The entries of the C protocol at idx when feed() may decrypt into its
 * buffer (AIO_PROTO_VT with lua_transports), else NULL. */
static const aio_proto_vt *sink_vt(lua_State *L, tls_obj *o, int idx) {
  const aio_proto_vt *vt = cached_vt(L, &o->scache, idx, AIO_PROTO_VT);
  return vt != NULL && vt->lua_transports ? vt : NULL;
}

/* read_all into the sink p (entries vt): the plaintext lands in the
 * room its get_buffer makes, sized by the ciphertext at hand (a record's
 * plaintext is never longer than the record) and grown while SSL_read
 * fills it. Sets *wake when a buffer_updated asked for vt->wake. Returns
 * -1, having read nothing more, when the sink has no room (its reader
 * is gone, or memory is short): read_all then takes the rest. */
static int read_into(tls_obj *o, const aio_proto_vt *vt, void *p, int *ev,
                     int *wake) {
  size_t want = o->inlen + o->in2len + (size_t)SSL_pending(o->ssl);
  for (;;) {
    uv_buf_t b;
    int n;
    vt->get_buffer(p, want < 4096 ? 4096 : want, &b);
    if (b.len == 0)
      return -1;
    n = SSL_read(o->ssl, b.base, b.len > INT_MAX ? INT_MAX : (int)b.len);
    if (n <= 0)
      return read_stopped(o, n, ev);
    if (vt->buffer_updated(p, (size_t)n))
      *wake = 1;
    if (o->inlen + o->in2len == 0 && !SSL_has_pending(o->ssl))
      return 0;
    want = o->inlen + o->in2len + (size_t)SSL_pending(o->ssl);
  }
}

/* Pushes the first len bytes of pbuf as a string (nil when none), then
 * gives a big pbuf back to the allocator. Called once the ciphertext
 * state is settled (in_end): the push may raise. */
static void push_plain(lua_State *L, tls_obj *o, size_t len) {
  if (len == 0)
    lua_pushnil(L);
  else
    lua_pushlstring(L, o->pbuf, len);
  if (o->pcap > 256 * 1024) {
    free(o->pbuf);
    o->pbuf = NULL;
    o->pcap = 0;
  }
}

/* Calls the sink's wake: [sink, vt] -> (). */
static int l_sink_wake(lua_State *L) {
  const aio_proto_vt *vt = lua_touserdata(L, 2);
  vt->wake(L, lua_touserdata(L, 1));
  return 0;
}

/* Wakes the sink at sidx (entries vt) in protected mode; an error it
 * raises is left on top (returns 1), as a Lua data_received's pcall
 * would give it. */
static int wake_sink(lua_State *L, const aio_proto_vt *vt, int sidx) {
  sidx = lua_absindex(L, sidx);
  lua_pushcfunction(L, l_sink_wake);
  lua_pushvalue(L, sidx);
  lua_pushlightuserdata(L, (void *)vt);
  return lua_pcall(L, 2, 0, 0) != LUA_OK;
}

/* What a feed did: plaintext bytes left in pbuf, its event bits, the SSL
 * error code that stopped it (0: none), whether the sink wants its
 * wake. */
typedef struct feed_res {
  size_t plen;
  int ev, code, wake;
} feed_res;

/* The work of feed(), with no Lua: takes in the ciphertext data,
 * advances the handshake and, if `read`, reads all the plaintext there
 * is, into the sink p (entries svt) when there is one with room, else
 * into pbuf. */
static void feed_run(tls_obj *o, const char *data, size_t len, int read,
                     const aio_proto_vt *svt, void *p, feed_res *r) {
  r->plen = 0;
  r->ev = r->code = r->wake = 0;
  clear_errors();
  in_begin(o, data, len);
  if (!o->handshake_done) {
    int n = SSL_do_handshake(o->ssl);
    if (n == 1) {
      o->handshake_done = 1;
      r->ev |= EV_HANDSHAKE;
    } else {
      r->code = SSL_get_error(o->ssl, n);
      if (is_want(r->code))
        r->code = 0; /* the handshake waits for the peer */
    }
  }
  if (!r->code && o->handshake_done && read) {
    r->code = svt ? read_into(o, svt, p, &r->ev, &r->wake) : -1;
    if (r->code < 0) /* no sink, or one with no room: a string */
      r->code = read_all(o, &r->ev, &r->plen);
  }
  if (!in_end(o)) {
    o->nomem = 1;
    if (!r->code)
      r->code = SSL_ERROR_SSL;
  }
}

/* obj:feed([ciphertext [, read [, sink]]]) -> plaintext|nil, out|nil,
 * events [, err [, sink_err]]. Takes in ciphertext from the peer,
 * advances the handshake, and unless `read` is false reads all the
 * plaintext there is: into the buffer of `sink` when that is a C
 * protocol serving transports written in Lua (plaintext is then nil,
 * unless the sink had no room), and its wake runs as its data_received
 * would (sink_err: what it raised; err is then false when the TLS
 * layer had none). */
static int l_obj_feed(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  size_t len = 0;
  const char *data = luaL_optlstring(L, 2, NULL, &len);
  int read = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
  const aio_proto_vt *svt = read ? sink_vt(L, o, 4) : NULL;
  feed_res r;
  feed_run(o, data, len, read, svt, svt ? lua_touserdata(L, 4) : NULL, &r);
  push_plain(L, o, r.plen);
  push_out(L, o);
  lua_pushinteger(L, r.ev);
  if (r.code)
    push_error(L, o, 1, r.code);
  else if (r.wake)
    lua_pushboolean(L, 0);
  if (!r.wake)
    return r.code ? 4 : 3;
  return wake_sink(L, svt, 4) ? 5 : 4;
}

/* Encrypts data as far as the TLS layer lets it (all of it, unless it
 * must first read), setting *done to the bytes taken. Returns the SSL
 * error code that stopped it, 0 when none. */
static int write_run(tls_obj *o, const char *data, size_t len,
                     size_t *done) {
  int code = 0;
  *done = 0;
  clear_errors();
  in_begin(o, NULL, 0);
  while (*done < len) {
    size_t chunk = len - *done > INT_MAX ? INT_MAX : len - *done;
    int n = SSL_write(o->ssl, data + *done, (int)chunk);
    if (n <= 0) {
      code = SSL_get_error(o->ssl, n);
      break;
    }
    *done += (size_t)n;
  }
  (void)in_end(o); /* only kept ciphertext was read: nothing to copy */
  return code;
}

/* Whether write_run's code is an error to report (not "read first"). */
static int write_failed(tls_obj *o, int code) {
  return code && !(is_want(code) && !o->nomem);
}

/* obj:write(plaintext [, transport]) -> out|nil, written [, err].
 * Encrypts all of it, unless the TLS layer must first read (written is
 * then short and err nil: write the rest after the next feed). With a
 * core transport, the ciphertext goes to it and out is nil. */
static int l_obj_write(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  size_t len, done;
  const char *data = luaL_checklstring(L, 2, &len);
  const aio_transport_vt *tvt = transport_vt(L, o, 3);
  int code = write_run(o, data, len, &done);
  send_out(L, o, tvt, 3);
  lua_pushinteger(L, (lua_Integer)done);
  if (!write_failed(o, code))
    return 2;
  push_error(L, o, 1, code);
  return 3;
}

/* ------------------------------------------------------------------ */
/* SSLProtocol's data_received in C                                    */

/* Is the SSLProtocol at pidx WRAPPED (its `_state`)? */
static int is_wrapped(lua_State *L, int pidx) {
  int yes = lua_getfield(L, pidx, "_state") == LUA_TSTRING &&
            strcmp(lua_tostring(L, -1), "WRAPPED") == 0;
  lua_pop(L, 1);
  return yes;
}

/* Is the SSLProtocol at pidx where sslproto.lua's data_received takes
 * its hot path: WRAPPED, the application told of its connection and
 * reading, the raw transport reading, no backlog of writes? */
static int on_hot_path(lua_State *L, int pidx) {
  int hot;
  if (!is_wrapped(L, pidx))
    return 0;
  lua_getfield(L, pidx, "_app_state"); /* APP_CON_MADE */
  lua_getfield(L, pidx, "_app_reading_paused");
  lua_getfield(L, pidx, "_ssl_reading_paused");
  lua_getfield(L, pidx, "_backlog");
  hot = lua_tointeger(L, -4) == 1 && !lua_toboolean(L, -3) &&
        !lua_toboolean(L, -2) && lua_isnil(L, -1);
  lua_pop(L, 4);
  return hot;
}

/* The transports of the core call this for a chunk of ciphertext in
 * place of SSLProtocol's data_received method (AIO_DATA_FN, which
 * asyncio.sslproto gives the class): the same work, with no Lua string
 * and no Lua call on the hot path, where a stream reader's protocol (a
 * sink) gets the plaintext. In any other state, or for an application
 * protocol of Lua, the method runs; what a chunk brings besides
 * plaintext (ciphertext to send, close_notify, an error) goes to the
 * protocol's Lua code as the method hands it on. [protocol at pidx] */
static void ssl_data_received(lua_State *L, int pidx, const char *data,
                              size_t len) {
  int top = lua_gettop(L), obj = top + 1, app = top + 2, raw = top + 3;
  const aio_proto_vt *svt = NULL;
  tls_obj *o = NULL;
  feed_res r;
  int failed = 0;
  pidx = lua_absindex(L, pidx);
  if (on_hot_path(L, pidx)) {
    lua_getfield(L, pidx, "_sslobj");
    lua_getfield(L, pidx, "_app_protocol");
    lua_getfield(L, pidx, "_transport");
    o = aio_testtagged(L, obj, sizeof *o, &obj_tag);
    if (o != NULL && o->ssl != NULL)
      svt = sink_vt(L, o, app);
  }
  if (svt == NULL) { /* the method, with the chunk as a string */
    lua_settop(L, top);
    lua_pushlstring(L, data, len);
    call_method(L, pidx, "data_received", 1);
    return;
  }
  feed_run(o, data, len, 1, svt, lua_touserdata(L, app), &r);
  if (r.wake)
    failed = wake_sink(L, svt, app); /* its error on top */
  if (o->olen > 0) /* what reading made the TLS layer send: an alert */
    send_to(L, o, raw);
  if (failed) { /* as the method: the connection fails */
    call_method(L, pidx, "_app_failed", 1);
    return;
  }
  if (r.plen == 0 && r.ev == 0 && r.code == 0)
    return;
  /* the method's _fed(plain, ev, err, reading) */
  push_plain(L, o, r.plen);
  lua_pushinteger(L, r.ev);
  if (r.code)
    push_error(L, o, obj, r.code);
  else
    lua_pushnil(L);
  lua_pushboolean(L, 1);
  call_method(L, pidx, "_fed", 4);
}

static const aio_data_vt ssl_data_vt = {ssl_data_received};

/* The TLS transport's write for C callers (AIO_LUA_TRANSPORT_VT, which
 * asyncio.sslproto gives _SSLProtocolTransport): on the hot path of its
 * write method (the protocol WRAPPED, no backlog) the string at didx is
 * encrypted straight to the raw transport, as obj:write(data, raw) with
 * what the method does after; anything else is the method's.
 * [transport at tidx] */
static void ssl_transport_write(lua_State *L, int tidx, int didx) {
  int top = lua_gettop(L), p = top + 1, obj = top + 2, raw = top + 3;
  tls_obj *o = NULL;
  size_t len, done;
  const char *data;
  int code, failed;
  tidx = lua_absindex(L, tidx);
  didx = lua_absindex(L, didx);
  data = lua_tolstring(L, didx, &len);
  if (lua_getfield(L, tidx, "_ssl_protocol") == LUA_TTABLE &&
      is_wrapped(L, p) && lua_getfield(L, p, "_backlog") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_getfield(L, p, "_sslobj");
    lua_getfield(L, p, "_transport");
    o = aio_testtagged(L, obj, sizeof *o, &obj_tag);
  }
  if (data == NULL || o == NULL || o->ssl == NULL) { /* the method's */
    lua_settop(L, top);
    lua_pushvalue(L, didx);
    call_method(L, tidx, "write", 1);
    return;
  }
  code = write_run(o, data, len, &done);
  failed = write_failed(o, code);
  send_to(L, o, raw);
  if (failed || done < len) { /* the method's _write_rest */
    lua_pushvalue(L, didx);
    lua_pushinteger(L, (lua_Integer)done);
    if (failed)
      push_error(L, o, obj, code);
    else
      lua_pushnil(L);
    call_method(L, p, "_write_rest", 3);
  }
  lua_settop(L, top);
}

/* The TLS transport's is_closing (its `_closed` field). */
static int ssl_transport_is_closing(lua_State *L, int tidx) {
  int closing;
  lua_getfield(L, tidx, "_closed");
  closing = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return closing;
}

static const aio_lua_transport_vt ssl_transport_vt = {
    ssl_transport_write, ssl_transport_is_closing};

/* obj:shutdown([ciphertext]) -> done, out|nil [, err]: takes in what
 * the peer sent, sends close_notify (once); done once the peer's
 * close_notify arrived too (plaintext arriving meanwhile is dropped, as
 * the connection is closing). */
static int l_obj_shutdown(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  size_t len = 0;
  const char *data = luaL_optlstring(L, 2, NULL, &len);
  int r, code = 0, done = 0;
  ERR_clear_error();
  in_begin(o, data, len);
  /* close_notify goes once; then the peer's is waited for with
   * SSL_read, which drops what data still comes (SSL_shutdown again
   * would fail on it: "application data after close notify") */
  r = (SSL_get_shutdown(o->ssl) & SSL_SENT_SHUTDOWN) ? 0
                                                     : SSL_shutdown(o->ssl);
  if (r == 1) {
    done = 1;
  } else if (r == 0) {
    char sink[4096];
    int ev = 0, n;
    while ((n = SSL_read(o->ssl, sink, (int)sizeof sink)) > 0)
      ;
    code = read_stopped(o, n, &ev);
    done = (ev & EV_EOF) != 0;
  } else if (is_want(code = SSL_get_error(o->ssl, r))) {
    code = 0;
  }
  if (!in_end(o)) {
    o->nomem = 1;
    code = SSL_ERROR_SSL;
  }
  lua_pushboolean(L, done);
  push_out(L, o);
  if (!code)
    return 2;
  push_error(L, o, 1, code);
  return 3;
}

/* obj:pending_in() -> ciphertext bytes kept, not yet read. */
static int l_obj_pending_in(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  lua_pushinteger(L, (lua_Integer)o->ibuf_len);
  return 1;
}

/* obj:pending() -> decrypted bytes buffered by the SSL (Python's). */
static int l_obj_pending(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  lua_pushinteger(L, SSL_pending(o->ssl));
  return 1;
}

static int l_obj_version(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  if (!o->handshake_done)
    lua_pushnil(L);
  else
    lua_pushstring(L, SSL_get_version(o->ssl));
  return 1;
}

/* obj:cipher() -> {name, protocol, bits} (also keyed by those names),
 * or nil before the handshake. */
static int l_obj_cipher(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  const SSL_CIPHER *c = SSL_get_current_cipher(o->ssl);
  if (!c) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 3, 3);
  lua_pushstring(L, SSL_CIPHER_get_name(c));
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, 1);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, SSL_CIPHER_get_version(c));
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, 2);
  lua_setfield(L, -2, "protocol");
  lua_pushinteger(L, SSL_CIPHER_get_bits(c, NULL));
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, 3);
  lua_setfield(L, -2, "bits");
  return 1;
}

static int l_obj_selected_alpn_protocol(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  const unsigned char *p;
  unsigned len;
  SSL_get0_alpn_selected(o->ssl, &p, &len);
  if (!p || !len)
    lua_pushnil(L);
  else
    lua_pushlstring(L, (const char *)p, len);
  return 1;
}

static int l_obj_compression(lua_State *L) {
  check_obj(L, 1);
  lua_pushnil(L); /* compression is always off */
  return 1;
}

static int l_obj_session_reused(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  lua_pushboolean(L, SSL_session_reused(o->ssl));
  return 1;
}

/* obj:getpeercert([binary_form]) -> Python's dict as a table, {} when
 * the certificate was not verified, the DER string with binary_form, or
 * nil without a certificate. Raises ValueError before the handshake. */
static int l_obj_getpeercert(lua_State *L) {
  tls_obj *o = check_obj(L, 1);
  int binary = lua_toboolean(L, 2);
  X509 *cert;
  if (!o->handshake_done)
    return tls_raise(L, "ValueError", "handshake not done yet");
  if (!(cert = SSL_get1_peer_certificate(o->ssl))) {
    lua_pushnil(L);
    return 1;
  }
  if (binary)
    tls_push_cert_der(L, cert);
  else if (!(SSL_get_verify_mode(o->ssl) & SSL_VERIFY_PEER))
    lua_newtable(L);
  else
    tls_push_cert_dict(L, cert);
  X509_free(cert);
  return 1;
}

/* __index: methods, then server_hostname, server_side, context. */
static int l_obj__index(lua_State *L) {
  tls_obj *o = luaL_checkudata(L, 1, TLS_OBJECT_MT);
  const char *k = luaL_checkstring(L, 2);
  if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL)
    return 1;
  if (strcmp(k, "server_hostname") == 0)
    lua_getiuservalue(L, 1, 2);
  else if (strcmp(k, "context") == 0)
    lua_getiuservalue(L, 1, 1);
  else if (strcmp(k, "server_side") == 0)
    lua_pushboolean(L, o->server_side);
  else
    lua_pushnil(L);
  return 1;
}

static int l_obj__gc(lua_State *L) {
  tls_obj *o = luaL_checkudata(L, 1, TLS_OBJECT_MT);
  if (o->ssl) {
    SSL_free(o->ssl); /* frees the BIO */
    o->ssl = NULL;
  }
  free(o->ibuf);
  free(o->obuf);
  free(o->pbuf);
  o->ibuf = o->obuf = o->pbuf = NULL;
  o->ibuf_len = o->ibuf_cap = o->olen = o->ocap = o->pcap = 0;
  return 0;
}

static int l_obj__tostring(lua_State *L) {
  tls_obj *o = luaL_checkudata(L, 1, TLS_OBJECT_MT);
  lua_pushfstring(L, "<SSLObject %s at %p>",
                  o->server_side ? "server" : "client", (void *)o);
  return 1;
}

/* ------------------------------------------------------------------ */
/* wrap_bio                                                            */

/* Sets SNI and the name to verify for a client connecting to host. */
static int set_hostname(SSL *ssl, const char *host, int check) {
  unsigned char ip[16];
  size_t iplen = 0;
  if (inet_pton(AF_INET, host, ip) == 1)
    iplen = 4;
  else if (inet_pton(AF_INET6, host, ip) == 1)
    iplen = 16;
  /* SNI names hosts, never addresses (RFC 6066) */
  if (!iplen && !SSL_set_tlsext_host_name(ssl, host))
    return 0;
  if (check) {
    X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
    if (iplen ? !X509_VERIFY_PARAM_set1_ip(p, ip, iplen)
              : !X509_VERIFY_PARAM_set1_host(p, host, 0))
      return 0;
  }
  return 1;
}

int tls_wrap_bio(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  int server = lua_toboolean(L, 2);
  size_t hlen = 0;
  const char *host = luaL_optlstring(L, 3, NULL, &hlen);
  tls_obj *o;
  BIO *bio;
  if (server && host)
    return tls_raise(L, "ValueError", "server_hostname can only be "
                     "specified in client mode");
  /* a context of the other side: SSLError with errno 0, as _ssl's */
  if (server && c->protocol == TLS_PROTOCOL_TLS_CLIENT) {
    tls_push_error(L, "SSLError", 0, "Cannot create a server socket "
                   "with a PROTOCOL_TLS_CLIENT context");
    return lua_error(L);
  }
  if (!server && c->protocol == TLS_PROTOCOL_TLS_SERVER) {
    tls_push_error(L, "SSLError", 0, "Cannot create a client socket "
                   "with a PROTOCOL_TLS_SERVER context");
    return lua_error(L);
  }
  if (!server && c->check_hostname && !host)
    return tls_raise(L, "ValueError", "check_hostname requires "
                     "server_hostname");
  if (host && (hlen == 0 || host[0] == '.' || strlen(host) != hlen))
    return tls_raise(L, "ValueError", "server_hostname cannot be an empty "
                     "string or start with a leading dot.");
  CRYPTO_THREAD_run_once(&bio_once, bio_method_init);
  if (!bio_method)
    return luaL_error(L, "not enough memory");
  lua_settop(L, 3);
  o = lua_newuserdatauv(L, sizeof *o, 2);
  memset(o, 0, sizeof *o);
  o->tag = &obj_tag;
  luaL_setmetatable(L, TLS_OBJECT_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, 2);
  ERR_clear_error();
  if (!(o->ssl = SSL_new(c->ctx)))
    return tls_raise_ssl(L);
  if (!(bio = BIO_new(bio_method)))
    return tls_raise_ssl(L);
  BIO_set_data(bio, o);
  SSL_set_bio(o->ssl, bio, bio);
  /* each call hands over all the ciphertext there is: let OpenSSL take
   * it in one read instead of a record header and a body at a time */
  SSL_set_read_ahead(o->ssl, 1);
  o->server_side = (unsigned char)server;
  if (server)
    SSL_set_accept_state(o->ssl);
  else
    SSL_set_connect_state(o->ssl);
  if (host && !set_hostname(o->ssl, host, c->check_hostname))
    return tls_raise_ssl(L);
  return 1;
}

static const luaL_Reg obj_methods[] = {
    {"feed", l_obj_feed},
    {"write", l_obj_write},
    {"shutdown", l_obj_shutdown},
    {"pending_in", l_obj_pending_in},
    {"pending", l_obj_pending},
    {"version", l_obj_version},
    {"cipher", l_obj_cipher},
    {"selected_alpn_protocol", l_obj_selected_alpn_protocol},
    {"compression", l_obj_compression},
    {"session_reused", l_obj_session_reused},
    {"getpeercert", l_obj_getpeercert},
    {NULL, NULL}};

static const luaL_Reg obj_metamethods[] = {
    {"__gc", l_obj__gc},
    {"__tostring", l_obj__tostring},
    {NULL, NULL}};

void tls_open_sslobj(lua_State *L) {
  luaL_newmetatable(L, TLS_OBJECT_MT);
  luaL_setfuncs(L, obj_metamethods, 0);
  lua_newtable(L);
  luaL_setfuncs(L, obj_methods, 0);
  lua_pushcclosure(L, l_obj__index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  /* SSLProtocol's AIO_DATA_FN and its transport's AIO_LUA_TRANSPORT_VT,
   * for asyncio.sslproto */
  lua_pushlightuserdata(L, (void *)&ssl_data_vt);
  lua_setfield(L, -2, "_data_received");
  lua_pushlightuserdata(L, (void *)&ssl_transport_vt);
  lua_setfield(L, -2, "_transport_write");
}
