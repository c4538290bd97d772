/*
 * writer.c - HTTP/1.1 heads and chunk framing, built in one string.
 *
 *   _http.head(start_line, fields [, body]) -> string
 *     fields is a flat list {name1, value1, name2, value2, ...}; values
 *     may be strings or numbers. The result is start_line CRLF, each
 *     "name: value" CRLF, CRLF, then body when given: one write. A CR or
 *     LF (or NUL) in the start line, a name or a value raises (header
 *     injection), as does a name that is empty or holds ':' or a space.
 *   _http.chunk(data) -> the chunk framing of data (hex size CRLF data
 *     CRLF); "" gives the last chunk "0\r\n\r\n".
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "http.h"

/* Raises unless s[0..n) is free of CR, LF and NUL (and, for a name, of
 * ':', spaces and emptiness). */
void aio_http_check_text(lua_State *L, const char *s, size_t n, int name,
                         const char *what) {
  if (name && n == 0) luaL_error(L, "empty header name");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r' || c == '\n' || c == 0 ||
        (name && (c == ':' || c == ' ' || c == '\t')))
      luaL_error(L, "invalid character in %s", what);
  }
}

/* Pushes field i of the list at index 2 (name, value); raises unless
 * both are strings (or numbers) free of injected lines. */
static void field(lua_State *L, lua_Integer i, const char **k, size_t *kn,
                  const char **v, size_t *vn) {
  lua_rawgeti(L, 2, i);
  lua_rawgeti(L, 2, i + 1);
  *k = lua_tolstring(L, -2, kn);
  *v = lua_tolstring(L, -1, vn);
  if (!*k || !*v)
    luaL_error(L, "header %d is not a string", (int)(i / 2 + 1));
}

/* head(start_line, fields [, body]) -> string. Two passes over the
 * fields: the first checks them and sums their sizes, the second copies
 * them into a buffer of that size (no string made per field). */
static int l_head(lua_State *L) {
  size_t n, bn = 0, kn, vn, total;
  const char *line = luaL_checklstring(L, 1, &n), *k, *v;
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *body = luaL_optlstring(L, 3, NULL, &bn);
  lua_settop(L, 3); /* the buffer's slots come after */
  aio_http_check_text(L, line, n, 0, "start line");
  lua_Integer count = (lua_Integer)lua_rawlen(L, 2);
  total = n + 2 + 2 + bn;
  for (lua_Integer i = 1; i + 1 <= count; i += 2) {
    field(L, i, &k, &kn, &v, &vn);
    aio_http_check_text(L, k, kn, 1, "header name");
    aio_http_check_text(L, v, vn, 0, "header value");
    total += kn + 2 + vn + 2;
    lua_pop(L, 2);
  }
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, total);
  memcpy(p, line, n);
  p += n;
  memcpy(p, "\r\n", 2);
  p += 2;
  /* balanced pushes above the buffer, no buffer call in between */
  for (lua_Integer i = 1; i + 1 <= count; i += 2) {
    field(L, i, &k, &kn, &v, &vn);
    memcpy(p, k, kn);
    p += kn;
    memcpy(p, ": ", 2);
    p += 2;
    memcpy(p, v, vn);
    p += vn;
    memcpy(p, "\r\n", 2);
    p += 2;
    lua_pop(L, 2);
  }
  memcpy(p, "\r\n", 2);
  p += 2;
  if (body) memcpy(p, body, bn);
  luaL_pushresultsize(&b, total);
  return 1;
}

/* chunk(data) -> framed string */
static int l_chunk(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (n == 0) {
    lua_pushliteral(L, "0\r\n\r\n");
    return 1;
  }
  char size[32];
  int sn = snprintf(size, sizeof size, "%zx\r\n", n);
  luaL_Buffer b;
  luaL_buffinitsize(L, &b, n + (size_t)sn + 2);
  luaL_addlstring(&b, size, (size_t)sn);
  luaL_addlstring(&b, s, n);
  luaL_addlstring(&b, "\r\n", 2);
  luaL_pushresult(&b);
  return 1;
}

static const luaL_Reg writer_functions[] = {
  {"head", l_head},
  {"chunk", l_chunk},
  {NULL, NULL}
};

void aio_http_open_writer(lua_State *L) {
  luaL_setfuncs(L, writer_functions, 0);
}
