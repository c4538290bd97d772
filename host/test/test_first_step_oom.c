/*
 * test_first_step_oom.c - a task makes its Lua thread at its first step;
 * when that allocation fails, the run raises "not enough memory" and the
 * task stays pending and not started, its step queued again: the next
 * run starts it. Lua retries a failed allocation after an emergency
 * collection, so tools/alloc (one failure at a time) cannot reach this:
 * here the state's allocator refuses every new thread while armed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "luaio.h"

#include <lauxlib.h>
#include <lualib.h>

static int refuse_threads;
static int threads_refused;

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  /* a new object: osize is its type */
  if (ptr == NULL && osize == LUA_TTHREAD && refuse_threads) {
    threads_refused++;
    return NULL;
  }
  return realloc(ptr, nsize);
}

static int l_refuse_threads(lua_State *L) {
  refuse_threads = lua_toboolean(L, 1);
  return 0;
}

static const char script[] =
    "local asyncio = require 'asyncio'\n"
    "local refuse = ...\n"
    "local loop = asyncio.new_event_loop()\n"
    "local steps = 0\n"
    "local work = asyncio.async(function(x)\n"
    "  steps = steps + 1\n"
    "  asyncio.await(asyncio.sleep(0))\n"
    "  return x * 2\n"
    "end)\n"
    "local t = loop:create_task(work(21))\n"
    "refuse(true)\n"
    "local ok, err = pcall(loop.run_until_complete, loop, t)\n"
    "refuse(false)\n"
    "assert(not ok, 'the first run must fail')\n"
    "assert(tostring(err):find('not enough memory', 1, true), tostring(err))\n"
    "assert(steps == 0 and not t:done(), 'the body must not have run')\n"
    "loop:stop()\n"
    "loop:run_forever() -- one iteration: the step queued again runs\n"
    "assert(steps == 1, 'the task must start at the next run')\n"
    "local v = loop:run_until_complete(t)\n"
    "assert(v == 42 and steps == 1, 'the second run starts the task')\n"
    "loop:close()\n"
    "return 'ok'\n";

int main(void) {
  lua_State *L = lua_newstate(alloc, NULL);
  int st;
  luaL_openlibs(L);
  luaio_openlibs(L);
  st = luaL_loadstring(L, script);
  CHECK(st == LUA_OK);
  lua_pushcfunction(L, l_refuse_threads);
  st = lua_pcall(L, 1, 1, 0);
  if (st != LUA_OK)
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
  CHECK(st == LUA_OK);
  CHECK(st == LUA_OK && strcmp(lua_tostring(L, -1), "ok") == 0);
  CHECK(threads_refused > 0);
  lua_close(L);
  if (failures == 0)
    printf("test_first_step_oom: ok\n");
  return failures != 0;
}
