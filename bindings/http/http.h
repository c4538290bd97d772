/*
 * http.h - what the files of asyncio._http (bindings/http/) share.
 */
#ifndef AIO_HTTP_H
#define AIO_HTTP_H

#include <lua.h>
#include <lauxlib.h>

/* Each registers its functions into the module table at the top of the
 * stack (pops nothing); may raise only on memory errors. */
void aio_http_open_parser(lua_State *L);
void aio_http_open_writer(lua_State *L);
void aio_http_open_inflate(lua_State *L);
void aio_http_open_deflate(lua_State *L);
void aio_http_open_ws(lua_State *L);

/* A head being collected (head.c); the limits are set by the owner. */
enum { AIO_ACC_NONE, AIO_ACC_START, AIO_ACC_FIELD, AIO_ACC_VALUE };
typedef struct aio_http_acc {
  char *buf;           /* the start-line piece or field name + value */
  size_t len, cap, field_len;
  int state;           /* AIO_ACC_* */
  int nheaders;
  size_t max_field;
  int max_headers;
  const char *own_err; /* our own error name (limits), or NULL */
  /* framing facts of the fields flushed so far (the server's request
   * smuggling guards): Host fields, whether a Transfer-Encoding came
   * and the last coding of the last one is "chunked", the "chunked"
   * codings over all of them, and whether a field name held a space or
   * tab ("Transfer-Encoding : chunked", which libhttp_parser still takes
   * as the framing field) */
  int hosts, chunkeds;
  unsigned te : 1, te_chunked : 1, spaced_name : 1;
} aio_http_acc;

int aio_http_acc_add(aio_http_acc *a, const char *at, size_t n);
int aio_http_acc_flush(lua_State *L, aio_http_acc *a, int hidx,
                       const char *start_key);
void aio_http_acc_options(lua_State *L, int idx, aio_http_acc *a);
void aio_http_acc_reset(aio_http_acc *a);
int aio_http_acc_start(aio_http_acc *a, const char *at, size_t n);
int aio_http_acc_field(lua_State *L, aio_http_acc *a, int hidx,
                       const char *start_key, const char *at, size_t n);
int aio_http_acc_value(aio_http_acc *a, const char *at, size_t n);
void aio_http_acc_free(aio_http_acc *a);

/* Raises unless s[0..n) is free of CR, LF and NUL (and, for a name, of
 * ':', spaces and emptiness): header injection (writer.c). */
void aio_http_check_text(lua_State *L, const char *s, size_t n, int name,
                         const char *what);

void aio_http_open_server(lua_State *L);

/* Registers a class of the module (module.c): the metatable `name` with
 * __index = methods and __gc = gc, made once per state, and the
 * constructor ctor as module[ctor_name] (the module table is at -2 on
 * return). Leaves the metatable on top and returns 1 if this call made
 * it (the caller adds what else it needs), 0 if it existed. */
int aio_http_class(lua_State *L, const char *name, const luaL_Reg *methods,
                   lua_CFunction gc, lua_CFunction ctor,
                   const char *ctor_name);

#endif
