/*
 * deflate.c - gzip and deflate content encoding on zlib, for compressed
 * responses (enable_compression) and request bodies (compress =).
 *
 *   local z = _http.Deflater("gzip" | "deflate" [, level [, strategy]])
 *   local out = z:feed(piece)     -- the bytes encoded so far ("" maybe)
 *   local tail = z:finish()       -- the rest; the stream is then ended
 *   z:size()                      -- the bytes encoded in all
 *
 * "deflate" makes a zlib stream (RFC 1950), as aiohttp and browsers take
 * it; "gzip" a gzip member (RFC 1952). level is zlib's, -1 (its default)
 * or 0..9; strategy one of zlib's Z_DEFAULT_STRATEGY (0), Z_FILTERED,
 * Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED (4). feed holds back what zlib has not
 * emitted yet, so a short piece often encodes to ""; finish flushes all.
 * feed or finish after finish raise "compression finished". The zlib
 * state is freed by finish or by the garbage collector.
 */
#include <stdint.h>
#include <string.h>

#include <zlib.h>

#include "internal.h"
#include "http.h"

#define DEFLATER_MT "asyncio.http.Deflater"

typedef struct deflater {
  z_stream z;
  int live;      /* z holds zlib state */
  int finished;  /* finish() was called */
  size_t total;  /* bytes emitted */
} deflater;

static void close_stream(deflater *d) {
  if (d->live) deflateEnd(&d->z);
  d->live = 0;
}

/* Encodes s[0..n) with zlib's flush mode into the buffer b (on the stack
 * top), until zlib has taken all of it and, for Z_FINISH, ended the
 * stream. */
static void encode(lua_State *L, deflater *d, luaL_Buffer *b,
                   const unsigned char *s, size_t n, int flush) {
  int rc;
  d->z.next_in = (Bytef *)s;
  d->z.avail_in = (uInt)n;
  do {
    char *out = luaL_prepbuffer(b);
    size_t got;
    d->z.next_out = (Bytef *)out;
    d->z.avail_out = LUAL_BUFFERSIZE;
    rc = deflate(&d->z, flush);
    got = LUAL_BUFFERSIZE - d->z.avail_out;
    if (rc == Z_STREAM_ERROR) {
      close_stream(d);
      luaL_error(L, "compression failed");
    }
    d->total += got;
    luaL_addsize(b, got);
  } while (d->z.avail_out == 0 || d->z.avail_in > 0 ||
           (flush == Z_FINISH && rc != Z_STREAM_END));
}

/* encode for all of s[0..n), in slices of what zlib's uInt counts; the
 * last one with flush (and none for an empty piece with Z_NO_FLUSH). */
static void encode_all(lua_State *L, deflater *d, luaL_Buffer *b,
                       const unsigned char *s, size_t n, int flush) {
  const size_t most = (size_t)UINT32_MAX / 2;
  while (n > most) {
    encode(L, d, b, s, most, Z_NO_FLUSH);
    s += most;
    n -= most;
  }
  if (n > 0 || flush != Z_NO_FLUSH) encode(L, d, b, s, n, flush);
}

/* Checks that z (at 1) can take more, and returns it with its piece (at
 * 2, or "" when opt and none is given) in *s, *n. */
static deflater *check_open(lua_State *L, const unsigned char **s,
                            size_t *n, int opt) {
  deflater *d = luaL_checkudata(L, 1, DEFLATER_MT);
  *s = (const unsigned char *)(opt ? luaL_optlstring(L, 2, "", n)
                                   : luaL_checklstring(L, 2, n));
  if (d->finished) luaL_error(L, "compression finished");
  return d;
}

/* z:feed(data) -> the encoded bytes zlib emitted for it ("" maybe) */
static int l_feed(lua_State *L) {
  const unsigned char *s;
  size_t n;
  deflater *d = check_open(L, &s, &n, 0);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  encode_all(L, d, &b, s, n, Z_NO_FLUSH);
  luaL_pushresult(&b);
  return 1;
}

/* z:finish([data]) -> the rest of the stream (data encoded first) */
static int l_finish(lua_State *L) {
  const unsigned char *s;
  size_t n;
  deflater *d = check_open(L, &s, &n, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  encode_all(L, d, &b, s, n, Z_FINISH);
  d->finished = 1;
  close_stream(d);
  luaL_pushresult(&b);
  return 1;
}

/* z:size() -> the bytes encoded in all */
static int l_size(lua_State *L) {
  deflater *d = luaL_checkudata(L, 1, DEFLATER_MT);
  lua_pushinteger(L, (lua_Integer)d->total);
  return 1;
}

static int l_gc(lua_State *L) {
  close_stream(luaL_checkudata(L, 1, DEFLATER_MT));
  return 0;
}

/* Deflater(kind [, level [, strategy]]) -> an encoder of a "gzip" or
 * "deflate" stream */
static int l_new(lua_State *L) {
  static const char *const kinds[] = {"gzip", "deflate", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  lua_Integer level = luaL_optinteger(L, 2, Z_DEFAULT_COMPRESSION);
  lua_Integer strategy = luaL_optinteger(L, 3, Z_DEFAULT_STRATEGY);
  deflater *d;
  int rc;
  luaL_argcheck(L, level >= -1 && level <= 9, 2, "-1..9 expected");
  luaL_argcheck(L, strategy >= 0 && strategy <= Z_FIXED, 3,
                "0..4 expected");
  d = lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, DEFLATER_MT);
  rc = deflateInit2(&d->z, (int)level, Z_DEFLATED,
                    kind == 0 ? 16 + MAX_WBITS : MAX_WBITS, 8,
                    (int)strategy);
  if (rc != Z_OK) return luaL_error(L, "out of memory");
  d->live = 1;
  return 1;
}

static const luaL_Reg deflater_methods[] = {
  {"feed", l_feed},
  {"finish", l_finish},
  {"size", l_size},
  {NULL, NULL}
};

void aio_http_open_deflate(lua_State *L) {
  aio_http_class(L, DEFLATER_MT, deflater_methods, l_gc, l_new, "Deflater");
  lua_pop(L, 1);
}
