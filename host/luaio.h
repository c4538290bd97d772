/*
 * luaio.h - the embedding API of luaio: asyncio for Lua 5.4 on libuv.
 *
 * A host program links libluaio (plus liblua5.4 and libuv) and either
 * opens the library in a lua_State of its own making:
 *
 *     lua_State *L = luaL_newstate();
 *     luaL_openlibs(L);
 *     luaio_openlibs(L);       -- require "asyncio" now works
 *
 * or uses the host functions below, which own (or attach to) a lua_State
 * and a loop and let the host drive it to completion or one bounded step
 * per frame.
 */
#ifndef LUAIO_H
#define LUAIO_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUAIO_API __attribute__((visibility("default")))

#define LUAIO_VERSION_STRING "0.1.0"

/* Makes require "asyncio" (and its submodules) available in L without any
 * file on disk: the C core is registered in package.preload and the Lua
 * sources are embedded. Leaves the stack unchanged. */
LUAIO_API void luaio_openlibs(lua_State *L);

/* The C core's opener, for hosts that prefer their own preloading. */
LUAIO_API int luaopen_asyncio_core(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
