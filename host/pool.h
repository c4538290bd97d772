/*
 * pool.h - the Lua states the luaio hosts create (pool.c): Lua's own
 * allocator contract served by per-size free lists for small blocks.
 */
#ifndef LUAIO_POOL_H
#define LUAIO_POOL_H

#include <lua.h>

/* A new state, as luaL_newstate makes (a panic function, warnings off
 * until "@on"), whose small blocks come from a pool of its own; NULL
 * when memory is short. Close it with luaio_pool_close. */
lua_State *luaio_pool_newstate(void);
/* Closes a state of luaio_pool_newstate and frees its pool (a state
 * whose allocator was replaced since is closed as any other). */
void luaio_pool_close(lua_State *L);

#endif
