/* luaio_sources.h - the Lua sources of lua/asyncio embedded in the
 * binary (generated into build/gen/luaio_sources.c by tools/embed.lua). */
#ifndef LUAIO_SOURCES_H
#define LUAIO_SOURCES_H

#include <stddef.h>

typedef struct luaio_source {
  const char *module;   /* "asyncio", "asyncio.errors", ... */
  const char *chunkname;
  const char *code;
  size_t len;
} luaio_source;

extern const luaio_source luaio_sources[];

#endif
