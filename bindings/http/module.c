/*
 * module.c - the entry point of asyncio._http: the C side of asyncio.http
 * (the parser binding on libhttp_parser, head writing and chunk framing,
 * gzip/deflate decoding and encoding on zlib, the WebSocket frame codec,
 * the server protocol). Nothing here touches the event loop directly: the server
 * protocol is driven by the core's transports through the protocol
 * vtable, and calls transports through their Lua methods.
 */
#include "internal.h"
#include "http.h"

AIO_EXPORT int luaopen_asyncio__http(lua_State *L);

int aio_http_class(lua_State *L, const char *name, const luaL_Reg *methods,
                   lua_CFunction gc, lua_CFunction ctor,
                   const char *ctor_name) {
  int made;
  lua_pushcfunction(L, ctor);
  lua_setfield(L, -2, ctor_name);
  made = luaL_newmetatable(L, name);
  if (made) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  return made;
}

/* Pushes the module table. */
AIO_EXPORT int luaopen_asyncio__http(lua_State *L) {
  lua_newtable(L);
  aio_http_open_parser(L);
  aio_http_open_writer(L);
  aio_http_open_inflate(L);
  aio_http_open_deflate(L);
  aio_http_open_ws(L);
  aio_http_open_server(L);
  /* JSON's null as lua-cjson decodes it (a NULL light userdata, equal to
   * cjson.null), for http.null without loading lua-cjson */
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
