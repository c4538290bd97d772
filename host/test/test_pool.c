/*
 * test_pool.c - the allocator of the states the hosts create (host/pool.c),
 * run by `make test` and, built with the system allocator, under the
 * sanitizers and valgrind by `make check`. Each test counts what it
 * expects to have happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "pool.h"

/* Fills n bytes with a pattern of seed; checks it. */
static void fill(unsigned char *b, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++)
    b[i] = (unsigned char)(seed + i * 7);
}

static int intact(const unsigned char *b, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++)
    if (b[i] != (unsigned char)(seed + i * 7))
      return 0;
  return 1;
}

/* Lua's allocator contract, called directly: resizing keeps the
 * contents across size classes and across the small/large boundary; a
 * free of NULL is a no-op; a freed small block is handed out again. */
static void test_contract(void) {
  lua_State *L = luaio_pool_newstate();
  void *ud;
  lua_Alloc f;
  unsigned char *a, *b;
  CHECK(L != NULL);
  f = lua_getallocf(L, &ud);
  CHECK(f(ud, NULL, 0, 0) == NULL);
  a = f(ud, NULL, LUA_TSTRING, 100);
  CHECK(a != NULL);
  fill(a, 100, 1);
  a = f(ud, a, 100, 110); /* the same class of 112 bytes */
  CHECK(intact(a, 100, 1));
  fill(a, 110, 2);
  a = f(ud, a, 110, 3000); /* a large block now */
  CHECK(a != NULL && intact(a, 110, 2));
  fill(a, 3000, 3);
  a = f(ud, a, 3000, 5000);
  CHECK(a != NULL && intact(a, 3000, 3));
  a = f(ud, a, 5000, 40); /* small again */
  CHECK(a != NULL && intact(a, 40, 3));
  b = f(ud, NULL, LUA_TTABLE, 40);
  CHECK(b != NULL && b != a);
  fill(b, 40, 4);
  CHECK(intact(a, 40, 3)); /* blocks do not overlap */
  CHECK(f(ud, a, 40, 0) == NULL);
#ifndef LUAIO_SYSTEM_ALLOC
  CHECK(f(ud, NULL, LUA_TSTRING, 33) == a); /* 48 bytes: a's class */
#else
  a = f(ud, NULL, LUA_TSTRING, 33);
#endif
  CHECK(f(ud, a, 33, 0) == NULL);
  CHECK(f(ud, b, 40, 0) == NULL);
  luaio_pool_close(L);
}

#ifndef LUAIO_SYSTEM_ALLOC
/* The process's address space now (VmSize), in bytes, or 0. */
static rlim_t address_space(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f == NULL)
    return 0;
  if (fscanf(f, "%lu", &pages) != 1)
    pages = 0;
  fclose(f);
  return (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE);
}

/* Lua assumes a shrink never fails. With no memory left for a new chunk
 * (the address space capped where it is, and the pool's last chunk used
 * up), a large block and a small one shrink to smaller classes (whose
 * free lists a fresh state leaves empty): each keeps its contents, and
 * allocating still fails cleanly. */
static void test_shrink_without_memory(void) {
  lua_State *L = luaio_pool_newstate();
  struct rlimit old, cap;
  void *ud;
  lua_Alloc f;
  unsigned char *big, *small, *b;
  long taken = 0;
  CHECK(L != NULL);
  f = lua_getallocf(L, &ud);
  big = f(ud, NULL, LUA_TSTRING, 3000);
  small = f(ud, NULL, LUA_TSTRING, 1000);
  CHECK(big != NULL && small != NULL);
  fill(big, 3000, 5);
  fill(small, 1000, 6);
  CHECK(getrlimit(RLIMIT_AS, &old) == 0);
  cap = old;
  cap.rlim_cur = address_space();
  CHECK(cap.rlim_cur > 0 && setrlimit(RLIMIT_AS, &cap) == 0);
  while (f(ud, NULL, LUA_TSTRING, 16) != NULL && taken < 100000000)
    taken++; /* the last chunk's room, and any the cap still allows */
  b = f(ud, big, 3000, 1000 - 16); /* to the class below small's */
  CHECK(b != NULL && intact(b, 1000 - 16, 5));
  small = f(ud, small, 1000, 1000 - 32);
  CHECK(small != NULL && intact(small, 1000 - 32, 6));
  CHECK(f(ud, NULL, LUA_TSTRING, 16) == NULL);
  setrlimit(RLIMIT_AS, &old);
  CHECK(taken > 0);
  luaio_pool_close(L); /* big's malloc'd block stays with the pool */
}
#endif

/* A state on the pool runs Lua whose strings and tables take every size
 * class, grow past the small blocks and are collected, many times over:
 * what Lua reads back is what it wrote. */
static void test_lua_churn(void) {
  static const char code[] =
      "local sum, keep = 0, {}\n"
      "for round = 1, 20 do\n"
      "  local t = {}\n"
      "  for n = 1, 1500, 7 do\n"
      "    local s = string.rep(string.char(65 + n % 26), n)\n"
      "    t[#t + 1] = s\n"
      "    local h = {}\n"
      "    for i = 1, n % 300 do h[i] = i end\n"
      "    for i = 1, n % 40 do h['k' .. i] = i end\n"
      "    sum = sum + #h\n"
      "  end\n"
      "  for i, s in ipairs(t) do\n"
      "    local n = 1 + (i - 1) * 7\n"
      "    assert(#s == n and s == string.rep(string.char(65 + n % 26), n))\n"
      "  end\n"
      "  keep[round % 3] = t\n"
      "  collectgarbage()\n"
      "end\n"
      "return sum\n";
  lua_State *L = luaio_pool_newstate();
  CHECK(L != NULL);
  luaL_openlibs(L);
  CHECK(luaL_loadstring(L, code) == LUA_OK);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "test_lua_churn: %s\n", lua_tostring(L, -1));
    CHECK(0);
  } else {
    /* the sum over n = 1, 8, ..., 1499 of n % 300, twenty rounds */
    lua_Integer want = 0, n;
    for (n = 1; n <= 1500; n += 7)
      want += n % 300;
    CHECK(lua_tointeger(L, -1) == want * 20);
  }
  luaio_pool_close(L);
}

/* Reads what the test wrote to stderr since `from`. */
static void stderr_since(FILE *tmp, long from, char *buf, size_t size) {
  size_t n;
  fflush(stderr);
  fseek(tmp, from, SEEK_SET);
  n = fread(buf, 1, size - 1, tmp);
  buf[n] = '\0';
}

/* Warnings behave as under luaL_newstate: off until "@on", a message in
 * pieces printed as one line, "@off" silences them again. */
static void test_warnings(void) {
  lua_State *L = luaio_pool_newstate();
  FILE *tmp = tmpfile();
  int saved = dup(2);
  char out[256];
  CHECK(L != NULL && tmp != NULL && saved >= 0);
  fflush(stderr);
  dup2(fileno(tmp), 2);
  lua_warning(L, "before", 0);
  lua_warning(L, "@on", 0);
  lua_warning(L, "one ", 1);
  lua_warning(L, "@two", 1); /* a piece, not a control message */
  lua_warning(L, "", 0);
  lua_warning(L, "@off", 0);
  lua_warning(L, "after", 0);
  stderr_since(tmp, 0, out, sizeof out);
  dup2(saved, 2);
  close(saved);
  CHECK(strcmp(out, "Lua warning: one @two\n") == 0);
  if (strcmp(out, "Lua warning: one @two\n") != 0)
    fprintf(stderr, "test_warnings: got [%s]\n", out);
  fclose(tmp);
  luaio_pool_close(L);
}

int main(void) {
  test_contract();
  test_lua_churn();
  test_warnings();
#ifndef LUAIO_SYSTEM_ALLOC
  test_shrink_without_memory();
#endif
  if (failures) {
    fprintf(stderr, "test_pool: %d failures\n", failures);
    return 1;
  }
  printf("test_pool: ok\n");
  return 0;
}
