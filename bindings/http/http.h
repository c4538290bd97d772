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
void aio_http_open_ws(lua_State *L);

#endif
