/*
 * head.c - a message head collected from libhttp_parser's callbacks into
 * a Lua table, shared by the message parser (parser.c) and the server
 * protocol (server.c).
 *
 * The start-line piece (url or reason) and each field name + value are
 * accumulated in a malloc'd buffer, then moved into the head table:
 * head.url (or head.reason), and under head.headers every field in
 * arrival order as a flat list {name1, value1, ...} (names as sent) and,
 * under each lower-cased name, the first value. Fields longer than
 * max_field or more than max_headers fields are the error
 * "HPE_HEADER_OVERFLOW" (own_err).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "http.h"

/* Appends to the buffer; returns 0, or -1 (own_err set) when over the
 * field limit or out of memory. No Lua. */
int aio_http_acc_add(aio_http_acc *a, const char *at, size_t n) {
  if (n == 0) return 0; /* a->buf may be NULL yet */
  if (a->state == AIO_ACC_START && a->len + n > a->max_field) {
    a->own_err = "HPE_LINE_TOO_LONG"; /* aiohttp's max_line_size: a 400 */
    return -1;
  }
  if (a->len + n > a->max_field * 2 + 2) {
    a->own_err = "HPE_HEADER_OVERFLOW";
    return -1;
  }
  if (a->len + n > a->cap) {
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + n) cap *= 2;
    char *b = realloc(a->buf, cap);
    if (!b) { a->own_err = "HPE_OUT_OF_MEMORY"; return -1; }
    a->buf = b;
    a->cap = cap;
  }
  memcpy(a->buf + a->len, at, n);
  a->len += n;
  return 0;
}

/* Moves what the buffer holds into the head table at hidx (an absolute
 * index; its "headers" field a table): the start-line piece under
 * start_key, or one header field. Returns 0 or -1 (a limit). Leaves the
 * stack as it found it; raises only on memory errors. */
/* Is s[0..n), trimmed of spaces and tabs, "chunked" in any case? */
static int is_chunked(const char *s, size_t n) {
  while (n > 0 && (*s == ' ' || *s == '\t')) { s++; n--; }
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  return n == 7 && strncasecmp(s, "chunked", 7) == 0;
}

/* Notes the framing facts of the field in buf: its lower-cased name of
 * flen bytes, then its value. */
static void note_framing(aio_http_acc *a, size_t flen) {
  const char *v = a->buf + flen, *c;
  size_t vn = a->len - flen;
  if (memchr(a->buf, ' ', flen) || memchr(a->buf, '\t', flen))
    a->spaced_name = 1;
  if (flen == 4 && memcmp(a->buf, "host", 4) == 0)
    a->hosts++;
  else if (flen == 17 && memcmp(a->buf, "transfer-encoding", 17) == 0) {
    const char *last = v;
    while ((c = memchr(last, ',', vn - (size_t)(last - v))) != NULL) {
      a->chunkeds += is_chunked(last, (size_t)(c - last));
      last = c + 1;
    }
    a->te = 1;
    a->te_chunked = is_chunked(last, vn - (size_t)(last - v));
    a->chunkeds += a->te_chunked;
  }
}

int aio_http_acc_flush(lua_State *L, aio_http_acc *a, int hidx,
                       const char *start_key) {
  if (a->state == AIO_ACC_START) {
    lua_pushlstring(L, a->buf, a->len);
    lua_setfield(L, hidx, start_key);
  } else if (a->state == AIO_ACC_VALUE || a->state == AIO_ACC_FIELD) {
    size_t flen = a->state == AIO_ACC_FIELD ? a->len : a->field_len;
    if (flen > a->max_field || a->len - flen > a->max_field ||
        a->nheaders >= a->max_headers) {
      a->own_err = "HPE_HEADER_OVERFLOW";
      return -1;
    }
    lua_getfield(L, hidx, "headers");                 /* [h] */
    int n = a->nheaders++;
    lua_pushlstring(L, a->buf, flen);
    lua_rawseti(L, -2, 2 * n + 1);
    lua_pushlstring(L, a->buf + flen, a->len - flen);  /* [h, value] */
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, 2 * n + 2);
    for (size_t i = 0; i < flen; i++)
      a->buf[i] = (char)tolower((unsigned char)a->buf[i]);
    note_framing(a, flen);
    lua_pushlstring(L, a->buf, flen);             /* [h, value, lname] */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -4) == LUA_TNIL) { /* the first of its name */
      lua_pop(L, 1);
      lua_insert(L, -2);                          /* [h, lname, value] */
      lua_rawset(L, -3);
      lua_pop(L, 1);
    } else
      lua_pop(L, 4);
  }
  a->len = a->field_len = 0;
  a->state = AIO_ACC_NONE;
  return 0;
}

/* Reads the limits of the options table at idx (none or nil: the
 * defaults, 8190 and 128) into a: max_field_size, max_headers. Raises
 * "bad argument #idx" for a bad table or a limit out of range. */
void aio_http_acc_options(lua_State *L, int idx, aio_http_acc *a) {
  lua_Integer max_field = 8190, max_headers = 128;
  if (!lua_isnoneornil(L, idx)) {
    luaL_checktype(L, idx, LUA_TTABLE);
    if (lua_getfield(L, idx, "max_field_size") != LUA_TNIL)
      max_field = luaL_checkinteger(L, -1);
    if (lua_getfield(L, idx, "max_headers") != LUA_TNIL)
      max_headers = luaL_checkinteger(L, -1);
    lua_pop(L, 2);
    luaL_argcheck(L, max_field > 0 && max_field < (1 << 24) &&
                  max_headers > 0 && max_headers < (1 << 16), idx,
                  "limits out of range");
  }
  a->max_field = (size_t)max_field;
  a->max_headers = (int)max_headers;
}

/* A new message: nothing accumulated, no field counted. */
void aio_http_acc_reset(aio_http_acc *a) {
  a->len = a->field_len = 0;
  a->nheaders = a->hosts = a->chunkeds = 0;
  a->te = a->te_chunked = a->spaced_name = 0;
  a->state = AIO_ACC_NONE;
}

/* on_url / on_status */
int aio_http_acc_start(aio_http_acc *a, const char *at, size_t n) {
  a->state = AIO_ACC_START;
  return aio_http_acc_add(a, at, n);
}

/* on_header_field: a new field flushes the previous one first. */
int aio_http_acc_field(lua_State *L, aio_http_acc *a, int hidx,
                       const char *start_key, const char *at, size_t n) {
  if (a->state != AIO_ACC_FIELD) {
    if (aio_http_acc_flush(L, a, hidx, start_key)) return -1;
    a->state = AIO_ACC_FIELD;
  }
  return aio_http_acc_add(a, at, n);
}

/* on_header_value */
int aio_http_acc_value(aio_http_acc *a, const char *at, size_t n) {
  if (a->state == AIO_ACC_FIELD) {
    a->field_len = a->len;
    a->state = AIO_ACC_VALUE;
  }
  return aio_http_acc_add(a, at, n);
}

void aio_http_acc_free(aio_http_acc *a) {
  free(a->buf);
  a->buf = NULL;
  a->len = a->cap = 0;
}
