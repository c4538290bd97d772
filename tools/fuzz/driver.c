/*
 * driver.c - the libFuzzer driver of luaio's fuzz targets.
 *
 * A target is a Lua file under tools/fuzz/ returning a function
 * f(data): it feeds the bytes to the code under test and raises only when
 * an invariant breaks (a wrong result, an error of an unexpected kind).
 * The driver loads the target named by LUAIO_FUZZ_TARGET (a path) once,
 * calls f for each input, and aborts on an error, which libFuzzer then
 * reports as a crash with the input that caused it. Crashes inside C
 * (ASan, UBSan) are reported by the sanitizers as usual.
 *
 * libFuzzer sees the coverage of the C code only. A target whose code
 * under test is Lua returns a second value {lua_coverage = true}: the
 * driver then counts, with a line hook, each pair of consecutive Lua
 * lines run (AFL's edges, hashed) in libFuzzer's extra counters, so
 * inputs that take new paths in the Lua code are kept too. The hook is
 * set on the main state before the first input; coroutines inherit it
 * when created (a hook luaio arms itself on a thread, for SIGINT or a
 * bad yield, replaces it there).
 *
 *   LUAIO_FUZZ_TARGET=tools/fuzz/stream.lua build-fuzz/tools/fuzz \
 *     tools/fuzz/corpus/stream
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "luaio.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int target = LUA_NOREF;

/* The Lua edges counted by line_hook, read by libFuzzer after each input
 * as if they were its own coverage counters (it clears them before). */
#define NCOUNTERS (1 << 16)
__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_counters[NCOUNTERS];
static uintptr_t prev_line; /* the hash of the line run before */

/* Counts the edge from the line run before to this one: a line is its
 * chunk's source string (stable: the chunks are loaded once) and its
 * number. */
static void line_hook(lua_State *L1, lua_Debug *ar) {
  uintptr_t cur;
  if (!lua_getinfo(L1, "S", ar))
    return;
  cur = ((uintptr_t)ar->source >> 4) * 0x9E3779B1u ^
        (uintptr_t)ar->currentline * 0x85EBCA6Bu;
  cur ^= cur >> 15;
  lua_counters[(cur ^ prev_line) & (NCOUNTERS - 1)]++;
  prev_line = cur >> 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *path = getenv("LUAIO_FUZZ_TARGET");
  (void)argc;
  (void)argv;
  if (path == NULL) {
    fprintf(stderr, "fuzz: set LUAIO_FUZZ_TARGET to a tools/fuzz/*.lua\n");
    exit(2);
  }
  L = luaL_newstate();
  luaL_openlibs(L);
  luaio_openlibs(L);
  if (luaL_dofile(L, path) != LUA_OK || !lua_isfunction(L, 1)) {
    fprintf(stderr, "fuzz: %s: %s\n", path,
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "not a function");
    exit(2);
  }
  /* [f, options?] */
  if (lua_istable(L, 2) && lua_getfield(L, 2, "lua_coverage") != LUA_TNIL &&
      lua_toboolean(L, -1))
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  lua_settop(L, 1);
  target = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int msgh(lua_State *L1) {
  luaL_traceback(L1, L1, luaL_tolstring(L1, 1, NULL), 1);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_settop(L, 0);
  prev_line = 0;
  lua_pushcfunction(L, msgh);
  lua_rawgeti(L, LUA_REGISTRYINDEX, target);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    fprintf(stderr, "fuzz: invariant broken: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  return 0;
}
