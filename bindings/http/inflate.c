/*
 * inflate.c - gzip and deflate content decoding on zlib, for the client's
 * Content-Encoding.
 *
 *   local z = _http.Inflater("gzip" | "deflate")
 *   local out = z:feed(piece)     -- the bytes decoded so far ("" maybe)
 *   z:finish()                    -- true when the stream ended cleanly
 *
 * feed raises "invalid compressed data" on a corrupt stream, and a
 * stream may not decode to more than 1 GiB in all (a zip bomb bound).
 * "deflate" takes a zlib stream, or a raw deflate stream as some servers
 * send (tried when the zlib header is wrong). The zlib state is freed by
 * the garbage collector or once the stream ended.
 */
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
  int raw_tried; /* deflate: a raw stream was tried */
  int started;   /* some input was decoded */
  int gzip;
  size_t total;
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

/* z:feed(data) -> decoded string; raises on corrupt data */
static int l_feed(lua_State *L) {
  inflater *f = luaL_checkudata(L, 1, INFLATER_MT);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (f->ended || n == 0) { lua_pushliteral(L, ""); return 1; }
  if (!f->live) return luaL_error(L, "invalid compressed data");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  f->z.next_in = (Bytef *)s;
  f->z.avail_in = (uInt)n;
  while (f->z.avail_in > 0 && !f->ended) {
    char *out = luaL_prepbuffer(&b);
    f->z.next_out = (Bytef *)out;
    f->z.avail_out = LUAL_BUFFERSIZE;
    int rc = inflate(&f->z, Z_NO_FLUSH);
    size_t got = LUAL_BUFFERSIZE - f->z.avail_out;
    if (rc == Z_DATA_ERROR && !f->gzip && !f->raw_tried && !f->started) {
      /* not a zlib stream: try raw deflate from the start */
      close_stream(f);
      f->raw_tried = 1;
      if (open_stream(f, -MAX_WBITS)) return luaL_error(L, "out of memory");
      f->z.next_in = (Bytef *)s;
      f->z.avail_in = (uInt)n;
      continue;
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      close_stream(f);
      return luaL_error(L, "invalid compressed data");
    }
    f->started = 1;
    f->total += got;
    if (f->total > MAX_OUTPUT) {
      close_stream(f);
      return luaL_error(L, "decoded body too large");
    }
    luaL_addsize(&b, got);
    if (rc == Z_STREAM_END) {
      f->ended = 1;
      close_stream(f);
    } else if (rc == Z_BUF_ERROR && got == 0) {
      break;
    }
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

static int l_gc(lua_State *L) {
  close_stream(luaL_checkudata(L, 1, INFLATER_MT));
  return 0;
}

/* Inflater(kind) -> a decoder of a "gzip" or "deflate" stream */
static int l_new(lua_State *L) {
  static const char *const kinds[] = {"gzip", "deflate", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  inflater *f = lua_newuserdatauv(L, sizeof *f, 0);
  memset(f, 0, sizeof *f);
  luaL_setmetatable(L, INFLATER_MT);
  f->gzip = kind == 0;
  if (open_stream(f, kind == 0 ? 16 + MAX_WBITS : MAX_WBITS))
    return luaL_error(L, "out of memory");
  return 1;
}

static const luaL_Reg inflater_methods[] = {
  {"feed", l_feed},
  {"finish", l_finish},
  {NULL, NULL}
};

void aio_http_open_inflate(lua_State *L) {
  if (luaL_newmetatable(L, INFLATER_MT)) {
    luaL_newlib(L, inflater_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "Inflater");
}
