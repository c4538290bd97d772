/*
 * luaio.c - the embedding API (see luaio.h).
 */
#include <lauxlib.h>
#include <lualib.h>

#include "luaio.h"
#include "luaio_sources.h"

/* from the core: new Lua states of threads call this hook */
void aio_set_state_hook(void (*hook)(lua_State *L));

/* package.preload loader of an embedded module: its source is upvalue 1. */
static int load_embedded(lua_State *L) {
  const luaio_source *s = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, s->code, s->len, s->chunkname) != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, s->module);
  lua_call(L, 1, 1);
  return 1;
}

void luaio_openlibs(lua_State *L) {
  aio_set_state_hook(luaio_openlibs);
  const luaio_source *s;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_asyncio_core);
  lua_setfield(L, -2, "asyncio.core");
  for (s = luaio_sources; s->module != NULL; s++) {
    lua_pushlightuserdata(L, (void *)s);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, s->module);
  }
  lua_pop(L, 1);
}
