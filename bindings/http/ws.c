/*
 * ws.c - the WebSocket frame codec (RFC 6455) for asyncio.http.
 *
 *   _http.ws_build(opcode, payload [, {fin = true, mask = false}]) -> bytes
 *     one frame; mask = true masks it with a fresh random key (clients
 *     must). Raises for a control frame over 125 bytes or a bad opcode.
 *   _http.ws_parse(buf [, pos [, {masked =, max_size =}]])
 *     -> fin, opcode, payload, next_pos   a whole frame at pos (1 default),
 *        its payload unmasked (fin a boolean: false for a fragment that
 *        more follow); next_pos is where the following frame starts
 *     -> nil                              more bytes are needed, the
 *        frame's header is not whole yet
 *     -> nil, nil, need                   more bytes are needed: the
 *        frame is need bytes long from pos (wait for that much)
 *     -> nil, code, reason                a protocol error: code is the
 *        close code to send (1002 protocol, 1009 over max_size)
 *     masked = true requires masked frames (a server's input), false
 *     requires unmasked ones (a client's), nil accepts both; max_size
 *     (default 4 MiB, 0 none) bounds one frame's payload: it must be
 *     shorter, as aiohttp's reader wants a message.
 *   _http.utf8_valid(s) -> boolean: strict UTF-8 (no surrogates, no
 *     overlong forms, nothing above U+10FFFF).
 *   _http.ws_accept(key) -> the Sec-WebSocket-Accept value of a key.
 */
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "internal.h"
#include "http.h"

static int valid_opcode(int op) {
  return op == 0 || op == 1 || op == 2 || (op >= 8 && op <= 10);
}

static void random_key(unsigned char key[4]) {
  if (getrandom(key, 4, 0) != 4) {
    /* getrandom cannot fail for 4 bytes once the pool is ready */
    uint32_t x = (uint32_t)(uintptr_t)key ^ 0x9e3779b9u;
    memcpy(key, &x, 4);
  }
}

/* ws_build(opcode, payload [, opts]) -> frame */
static int l_build(lua_State *L) {
  lua_Integer op = luaL_checkinteger(L, 1);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  int fin = 1, mask = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "fin") != LUA_TNIL) fin = lua_toboolean(L, -1);
    if (lua_getfield(L, 3, "mask") != LUA_TNIL) mask = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  luaL_argcheck(L, op >= 0 && op <= 15 && valid_opcode((int)op), 1,
                "invalid opcode");
  luaL_argcheck(L, op < 8 || (n <= 125 && fin), 2,
                "control frames are unfragmented, at most 125 bytes");
  unsigned char head[14];
  size_t h = 0;
  head[h++] = (unsigned char)((fin ? 0x80 : 0) | op);
  unsigned char m = mask ? 0x80 : 0;
  if (n < 126) {
    head[h++] = (unsigned char)(m | n);
  } else if (n <= 0xffff) {
    head[h++] = m | 126;
    head[h++] = (unsigned char)(n >> 8);
    head[h++] = (unsigned char)n;
  } else {
    head[h++] = m | 127;
    for (int i = 7; i >= 0; i--)
      head[h++] = (unsigned char)((uint64_t)n >> (8 * i));
  }
  unsigned char key[4];
  if (mask) {
    random_key(key);
    memcpy(head + h, key, 4);
    h += 4;
  }
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, h + n);
  memcpy(out, head, h);
  if (mask) {
    for (size_t i = 0; i < n; i++) out[h + i] = (char)(p[i] ^ key[i & 3]);
  } else {
    memcpy(out + h, p, n);
  }
  luaL_pushresultsize(&b, h + n);
  return 1;
}

static int parse_error(lua_State *L, int code, const char *why) {
  lua_pushnil(L);
  lua_pushinteger(L, code);
  lua_pushstring(L, why);
  return 3;
}

/* ws_parse(buf [, pos [, opts]]) -> see the file comment */
static int l_parse(lua_State *L) {
  size_t len;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1,
                                                                    &len);
  lua_Integer pos = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= len + 1, 2, "out of range");
  int want_mask = -1;
  lua_Integer max_size = 4 * 1024 * 1024;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    if (lua_getfield(L, 3, "masked") != LUA_TNIL)
      want_mask = lua_toboolean(L, -1);
    if (lua_getfield(L, 3, "max_size") != LUA_TNIL)
      max_size = luaL_checkinteger(L, -1);
    lua_pop(L, 2);
  }
  const unsigned char *p = s + pos - 1;
  size_t avail = len - (size_t)(pos - 1);
  if (avail < 2) { lua_pushnil(L); return 1; }
  int fin = p[0] & 0x80, rsv = p[0] & 0x70, op = p[0] & 0x0f;
  int masked = (p[1] & 0x80) != 0;
  uint64_t n = p[1] & 0x7f;
  size_t h = 2;
  if (rsv) return parse_error(L, 1002, "reserved bits set");
  if (!valid_opcode(op)) return parse_error(L, 1002, "invalid opcode");
  if (op >= 8 && (!fin || n > 125))
    return parse_error(L, 1002, "invalid control frame");
  if (want_mask >= 0 && masked != want_mask)
    return parse_error(L, 1002, masked ? "masked frame from the server"
                                       : "unmasked frame from the client");
  if (n == 126) {
    if (avail < 4) { lua_pushnil(L); return 1; }
    n = ((uint64_t)p[2] << 8) | p[3];
    h = 4;
  } else if (n == 127) {
    if (avail < 10) { lua_pushnil(L); return 1; }
    n = 0;
    for (int i = 0; i < 8; i++) n = (n << 8) | p[2 + i];
    h = 10;
    if (n >> 63) return parse_error(L, 1002, "invalid frame length");
  }
  if (max_size > 0 && n >= (uint64_t)max_size) { /* aiohttp's >= */
    lua_pushnil(L);
    lua_pushinteger(L, 1009);
    lua_pushfstring(L, "Message size %I exceeds limit %I",
                    (lua_Integer)(n > LUA_MAXINTEGER ? LUA_MAXINTEGER : n),
                    (lua_Integer)max_size);
    return 3;
  }
  size_t keyat = h;
  if (masked) h += 4;
  if (avail < h || avail - h < n) {
    lua_pushnil(L);
    if ((uint64_t)h + n > (uint64_t)LUA_MAXINTEGER) return 1;
    lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)(h + n));
    return 3;
  }
  lua_pushboolean(L, fin);
  lua_pushinteger(L, op);
  if (masked) {
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, (size_t)n);
    const unsigned char *key = p + keyat;
    for (size_t i = 0; i < n; i++)
      out[i] = (char)(p[h + i] ^ key[i & 3]);
    luaL_pushresultsize(&b, (size_t)n);
  } else {
    lua_pushlstring(L, (const char *)p + h, (size_t)n);
  }
  lua_pushinteger(L, pos + (lua_Integer)(h + n));
  return 4;
}

/* Strict UTF-8 (RFC 3629). */
static int utf8_ok(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t need;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) { need = 1; cp = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { need = 2; cp = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { need = 3; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n - i <= need) return 0;
    for (size_t k = 1; k <= need; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += need + 1;
  }
  return 1;
}

static int l_utf8_valid(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, utf8_ok((const unsigned char *)s, n));
  return 1;
}

/* Pushes the base64 form (RFC 4648, padded) of b[0..n). */
static void push_b64(lua_State *L, const unsigned char *b, size_t n) {
  static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)b[i] << 16;
    char *out = luaL_prepbuffsize(&buf, 4);
    if (i + 1 < n) v |= (uint32_t)b[i + 1] << 8;
    if (i + 2 < n) v |= b[i + 2];
    out[0] = b64[(v >> 18) & 63];
    out[1] = b64[(v >> 12) & 63];
    out[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
    out[3] = i + 2 < n ? b64[v & 63] : '=';
    luaL_addsize(&buf, 4);
  }
  luaL_pushresult(&buf);
}

/* base64(s) -> s in base64 (the client's BasicAuth) */
static int l_base64(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  push_b64(L, (const unsigned char *)s, n);
  return 1;
}

/* ws_key() -> a fresh Sec-WebSocket-Key (16 random bytes, base64) */
static int l_key(lua_State *L) {
  unsigned char k[16];
  for (int i = 0; i < 16; i += 4) random_key(k + i);
  push_b64(L, k, 16);
  return 1;
}

/* ws_accept(key) -> base64(SHA-1(key .. GUID)) */
static int l_accept(lua_State *L) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  size_t n;
  const char *key = luaL_checklstring(L, 1, &n);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
      !EVP_DigestUpdate(ctx, key, n) ||
      !EVP_DigestUpdate(ctx, guid, sizeof guid - 1) ||
      !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 20) {
    EVP_MD_CTX_free(ctx);
    return luaL_error(L, "SHA-1 failed");
  }
  EVP_MD_CTX_free(ctx);
  push_b64(L, md, 20);
  return 1;
}

static const luaL_Reg ws_functions[] = {
  {"ws_build", l_build},
  {"ws_parse", l_parse},
  {"utf8_valid", l_utf8_valid},
  {"ws_accept", l_accept},
  {"ws_key", l_key},
  {"base64", l_base64},
  {NULL, NULL}
};

void aio_http_open_ws(lua_State *L) {
  luaL_setfuncs(L, ws_functions, 0);
}
