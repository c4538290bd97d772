/*
 * core.c - the "asyncio.core" module: registers every concept's functions
 * and metatables in one table. The public facade is lua/asyncio/init.lua.
 */
#include <string.h>

#include "internal.h"

const char aio_kind_tags[AIO_K_COUNT];

#ifndef LUAIO_VERSION
#define LUAIO_VERSION "0.0.0"
#endif

const char aio_mt_future, aio_mt_task, aio_mt_coro, aio_mt_ccoro,
    aio_mt_handle, aio_mt_timerhandle;

void aio_cache_mt(lua_State *L, const char *name, const void *key) {
  luaL_getmetatable(L, name);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void aio_setmt(lua_State *L, const void *key) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  lua_setmetatable(L, -2);
}

void *aio_checkkind(lua_State *L, int idx, aio_kind kind, const char *tname) {
  if (aio_kindof(L, idx) != kind)
    luaL_typeerror(L, idx, tname);
  return lua_touserdata(L, idx);
}

int aio_check_options(lua_State *L, int idx, const char *const known[]) {
  int i;
  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (i = 0; known[i] != NULL && strcmp(known[i], k) != 0; i++)
        ;
      if (known[i] != NULL)
        continue;
    }
    luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'",
                                          luaL_tolstring(L, -1, NULL)));
  }
  return 1;
}

void aio_push_weak_registry_table(lua_State *L, const void *key,
                                  const char *mode) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_newtable(L);
  if (mode != NULL) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

aio_kind aio_kindof(lua_State *L, int idx) {
  aio_kind kind;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return AIO_K_NONE;
  kind = aio_running_mt_kind(lua_topointer(L, -1));
  if (kind != AIO_K_NONE) {
    lua_pop(L, 1);
    return kind;
  }
  /* mt[AIO_KIND_KEY] is a light userdata tag: an integer key keeps the
   * look-up in the array part; decoded against this metatable it proves
   * it is ours (any other value gives an address outside the tags) */
  kind = aio_mt_kind(L, -1);
  lua_pop(L, 1);
  return kind;
}

/* The number of functions in r. */
static int count_regs(const luaL_Reg *r) {
  int n = 0;
  while (r[n].name != NULL)
    n++;
  return n;
}

void aio_newclass(lua_State *L, const char *name, aio_kind kind,
                  const luaL_Reg *methods, const luaL_Reg *metamethods) {
  /* as luaL_newmetatable, but with an array slot for the kind tag, so
   * that aio_kindof's look-up never hashes.  A second opening of the
   * module in the same state (busted drops package.loaded between spec
   * files) keeps the metatable its live objects carry: their __gc finds
   * them by this name.
   * Both tables get twice the hash slots their entries need: `obj:method`
   * looks up "__index" in the metatable and the name in the methods on
   * every call, and Lua's string hashes are seeded per run, so in a dense
   * table a hot name often lands behind another one in its chain (w3's
   * instructions per item moved by 5 % from run to run; at half load they
   * keep to the lower end). It costs about 10 KiB in all. */
  if (luaL_getmetatable(L, name) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 1, 2 * (count_regs(metamethods) + 4));
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, name);
  }
  luaL_setfuncs(L, metamethods, 0);
  /* a second opening keeps the methods table too (kept as __methods,
   * since some classes wrap __index in a function): methods the Lua side
   * added to it (asyncio.transports' loop methods, Process:communicate)
   * stay */
  if (lua_getfield(L, -1, "__methods") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2 * count_regs(methods));
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__methods");
  }
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  aio_set_mt_kind(L, -1, kind);
  lua_pop(L, 1);
}

/* _unknown_option(opts, set) -> the first key of the table opts that is
 * not a key of the table set, or nothing: the loop of
 * asyncio.check.options, in C because some functions that take options
 * run once per request (a web.Response, a Redis command). */
static int l_unknown_option(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 2) == LUA_TNIL) {
      lua_pop(L, 1);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

LUAMOD_API int luaopen_asyncio_core(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, l_unknown_option);
  lua_setfield(L, -2, "_unknown_option");
  aio_open_errors(L);
  aio_open_loop(L);
  aio_open_handle(L);
  aio_open_timer(L);
  aio_open_future(L);
  aio_open_coro(L);
  aio_open_signal(L);
  aio_open_dump(L);
  aio_open_locks(L);
  aio_open_queue(L);
  aio_open_transport(L);
  aio_open_server(L);
  aio_open_stream(L);
  aio_open_udp(L);
  aio_open_process(L);
  aio_open_dns(L);
  aio_open_fs(L);
  aio_open_threads(L);
  aio_open_cfuture(L);
  aio_open_executor(L);
  aio_open_channel(L);
  lua_pushliteral(L, LUAIO_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
