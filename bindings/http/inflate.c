/*
 * inflate.c - gzip and deflate content decoding on zlib, for the client's
 * Content-Encoding.
 *
 *   local z = _http.Inflater("gzip" | "deflate" [, max_output])
 *   local out = z:feed(piece [, max]) -- the bytes decoded so far ("" maybe);
 *                                     -- nil past max bytes
 *   z:finish()                    -- true when the stream ended cleanly
 *   z:size()                      -- the bytes decoded in all
 *
 * feed raises "invalid compressed data" on a corrupt stream, and "decoded
 * body too large" as soon as the stream decodes to more than max_output
 * bytes in all (default and most: 1 GiB; a zip bomb bound: at most one
 * more buffer of output is made past it); one feed that decodes to more
 * than its max bytes gives nil instead, the stream closed.
 * "deflate" takes a zlib stream, or a raw deflate stream as some servers
 * send: its first two bytes decide (a valid zlib header or not), however
 * the stream is cut into pieces. The zlib state is freed by the garbage
 * collector or once the stream ended.
 */
#include <stdint.h>
#include <string.h>

#include <zlib.h>

#include "internal.h"
#include "http.h"

#define INFLATER_MT "asyncio.http.Inflater"
#define MAX_OUTPUT ((size_t)1 << 30)

typedef struct inflater {
  z_stream z;
  int live;      /* z holds zlib state */
  int ended;     /* Z_STREAM_END seen */
  int decided;   /* gzip, or deflate whose header was read */
  int nhead;     /* deflate: bytes kept in head until decided */
  unsigned char head[2];
  int gzip;
  size_t total;
  size_t max;    /* the most total may reach */
} inflater;

static int open_stream(inflater *f, int window) {
  memset(&f->z, 0, sizeof f->z);
  if (inflateInit2(&f->z, window) != Z_OK) return -1;
  f->live = 1;
  return 0;
}

static void close_stream(inflater *f) {
  if (f->live) inflateEnd(&f->z);
  f->live = 0;
}

/* Decodes s[0..n) into the buffer b (on the stack top), while the
 * total stays at most end; raises on corrupt data (after freeing the
 * zlib state). Returns 0, or -1 past end (the zlib state freed). */
static int decode(lua_State *L, inflater *f, luaL_Buffer *b,
                  const unsigned char *s, size_t n, size_t end) {
  f->z.next_in = (Bytef *)s;
  f->z.avail_in = (uInt)n;
  while (f->z.avail_in > 0 && !f->ended) {
    char *out = luaL_prepbuffer(b);
    f->z.next_out = (Bytef *)out;
    f->z.avail_out = LUAL_BUFFERSIZE;
    int rc = inflate(&f->z, Z_NO_FLUSH);
    size_t got = LUAL_BUFFERSIZE - f->z.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      close_stream(f);
      luaL_error(L, "invalid compressed data");
    }
    f->total += got;
    if (f->total > f->max) {
      close_stream(f);
      luaL_error(L, "decoded body too large");
    }
    if (f->total > end) {
      close_stream(f);
      return -1;
    }
    luaL_addsize(b, got);
    if (rc == Z_STREAM_END) {
      f->ended = 1;
      close_stream(f);
    } else if (rc == Z_BUF_ERROR && got == 0) {
      break;
    }
  }
  return 0;
}

/* A zlib header (RFC 1950): deflate method, a window up to 32K, and the
 * check bits. */
static int zlib_header(const unsigned char h[2]) {
  return (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 &&
         ((h[0] << 8) | h[1]) % 31 == 0;
}

/* deflate: keeps the first two bytes of s[0..*n) until both came, then
 * opens a raw stream if they are no zlib header. Advances *s and *n past
 * what it kept; returns 0 while undecided. */
static int decide(lua_State *L, inflater *f, const unsigned char **s,
                  size_t *n) {
  while (f->nhead < 2 && *n > 0) {
    f->head[f->nhead++] = **s;
    (*s)++;
    (*n)--;
  }
  if (f->nhead < 2) return 0;
  f->decided = 1;
  if (!zlib_header(f->head)) {
    close_stream(f);
    if (open_stream(f, -MAX_WBITS)) luaL_error(L, "out of memory");
  }
  return 1;
}

/* z:feed(data [, max]) -> decoded string; raises on corrupt data; nil
 * when data decodes to more than max bytes (none: no bound of its own) */
static int l_feed(lua_State *L) {
  inflater *f = luaL_checkudata(L, 1, INFLATER_MT);
  size_t n;
  const unsigned char *s =
    (const unsigned char *)luaL_checklstring(L, 2, &n);
  lua_Integer max = luaL_optinteger(L, 3, (lua_Integer)MAX_OUTPUT);
  size_t end;
  luaL_argcheck(L, max >= 0, 3, "non-negative integer expected");
  end = f->total + (size_t)max;
  if (f->ended || n == 0) { lua_pushliteral(L, ""); return 1; }
  if (!f->live) return luaL_error(L, "invalid compressed data");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (!f->decided) {
    if (!decide(L, f, &s, &n)) { luaL_pushresult(&b); return 1; }
    if (decode(L, f, &b, f->head, 2, end) < 0) { lua_pushnil(L); return 1; }
  }
  if (n > 0 && !f->ended && decode(L, f, &b, s, n, end) < 0) {
    lua_pushnil(L);
    return 1;
  }
  luaL_pushresult(&b);
  return 1;
}

/* z:finish() -> true when the compressed stream ended */
static int l_finish(lua_State *L) {
  inflater *f = luaL_checkudata(L, 1, INFLATER_MT);
  lua_pushboolean(L, f->ended);
  close_stream(f);
  return 1;
}

/* z:size() -> the bytes decoded in all */
static int l_size(lua_State *L) {
  inflater *f = luaL_checkudata(L, 1, INFLATER_MT);
  lua_pushinteger(L, (lua_Integer)f->total);
  return 1;
}

static int l_gc(lua_State *L) {
  close_stream(luaL_checkudata(L, 1, INFLATER_MT));
  return 0;
}

/* Inflater(kind [, max_output]) -> a decoder of a "gzip" or "deflate"
 * stream */
static int l_new(lua_State *L) {
  static const char *const kinds[] = {"gzip", "deflate", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  lua_Integer max = luaL_optinteger(L, 2, (lua_Integer)MAX_OUTPUT);
  inflater *f;
  luaL_argcheck(L, max > 0, 2, "positive integer expected");
  f = lua_newuserdatauv(L, sizeof *f, 0);
  memset(f, 0, sizeof *f);
  f->max = (uint64_t)max < MAX_OUTPUT ? (size_t)max : MAX_OUTPUT;
  luaL_setmetatable(L, INFLATER_MT);
  f->gzip = kind == 0;
  f->decided = f->gzip;
  if (open_stream(f, kind == 0 ? 16 + MAX_WBITS : MAX_WBITS))
    return luaL_error(L, "out of memory");
  return 1;
}

static const luaL_Reg inflater_methods[] = {
  {"feed", l_feed},
  {"finish", l_finish},
  {"size", l_size},
  {NULL, NULL}
};

void aio_http_open_inflate(lua_State *L) {
  aio_http_class(L, INFLATER_MT, inflater_methods, l_gc, l_new, "Inflater");
  lua_pop(L, 1);
}
