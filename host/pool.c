/*
 * pool.c - the allocator of the Lua states the luaio hosts create (the
 * CLI's, and an embedding host's own when it is not given one).
 *
 * Lua tells its allocator the size of every block it frees or resizes,
 * so a small block needs no header: a block of n <= POOL_MAX bytes takes
 * n rounded up to 16 bytes of a chunk, a 256 KiB mapping (malloc: n + 8
 * rounded up to 16, at least 32), and a freed block goes on the free
 * list of its size class, to be handed out again, last freed first, in
 * a few instructions. A task's Lua thread, its stack, its call frames, its
 * Task and Coroutine objects are all such blocks. Larger blocks go to
 * malloc.
 *
 * The pool keeps its chunks until the state is closed (luaio_pool_close):
 * a program's peak of small objects stays allocated to it, to be reused
 * by any later small object of the same size class.
 *
 * A pool serves one state, which one thread uses at a time: no locks.
 * Builds that check memory (the sanitizers, valgrind) define
 * LUAIO_SYSTEM_ALLOC and get lauxlib's allocator, so that every block is
 * theirs to watch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pool.h"

#include <lauxlib.h>

#ifdef LUAIO_SYSTEM_ALLOC

lua_State *luaio_pool_newstate(void) {
  return luaL_newstate();
}

void luaio_pool_close(lua_State *L) {
  lua_close(L);
}

#else

#define POOL_MAX 1024         /* the largest block served from chunks */
#define POOL_CLASSES (POOL_MAX / 16)
#define CHUNK_SIZE (256 * 1024)

typedef struct pool {
  void *free[POOL_CLASSES + 1]; /* class c: blocks of 16 * c bytes */
  char *next, *end;             /* the unused part of the newest chunk */
  void *chunks;                 /* linked through their first block */
  int warn_on, warn_cont;       /* the warning function's state */
} pool;

static unsigned size_class(size_t n) {
  return (unsigned)((n + 15) >> 4);
}

/* Chunks are mapped with their pages already in place (MAP_POPULATE):
 * the pool carves a chunk front to back soon after mapping it, and a
 * program that makes 200,000 tasks would otherwise take one page fault
 * per 4 KiB of them in the middle of its work (w1 ran 12 % faster). A
 * chunk is small enough that the pages the kernel zeroes are still in
 * the cache when Lua writes them: larger chunks were slower. */
#ifndef MAP_POPULATE
#define MAP_POPULATE 0
#endif

/* A new chunk; what was left of the last one goes to its free list. */
static int pool_grow(pool *p) {
  char *c = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  size_t left = (size_t)(p->end - p->next);
  if (c == MAP_FAILED)
    return 0;
  if (left >= 16) {
    unsigned k = (unsigned)(left >> 4);
    *(void **)p->next = p->free[k];
    p->free[k] = p->next;
  }
  *(void **)c = p->chunks;
  p->chunks = c;
  p->next = c + 16;
  p->end = c + CHUNK_SIZE;
  return 1;
}

static void *pool_take(pool *p, size_t n) {
  unsigned k = size_class(n);
  void *b = p->free[k];
  if (b != NULL) {
    p->free[k] = *(void **)b;
    return b;
  }
  if ((size_t)(p->end - p->next) < (size_t)k * 16 && !pool_grow(p))
    return NULL;
  b = p->next;
  p->next += (size_t)k * 16;
  return b;
}

static void pool_give(pool *p, void *b, size_t n) {
  unsigned k = size_class(n);
  *(void **)b = p->free[k];
  p->free[k] = b;
}

/* lua_Alloc: as Lua's contract says, on failure the old block stays, and
 * a shrink never fails. When no memory is left for the smaller block, the
 * old one is kept: freed later with its new size, it joins that size's
 * free list, a block larger than its class needs, which is safe (a
 * malloc'd one is then never given back to malloc: only when memory ran
 * out). */
static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  pool *p = ud;
  void *nb;
  if (nsize == 0) { /* a free (of NULL too: an empty array) */
    if (ptr == NULL)
      return NULL;
    if (osize <= POOL_MAX)
      pool_give(p, ptr, osize);
    else
      free(ptr);
    return NULL;
  }
  if (ptr == NULL) /* osize is then the kind of object: not a size */
    return nsize <= POOL_MAX ? pool_take(p, nsize) : malloc(nsize);
  if (osize > POOL_MAX && nsize > POOL_MAX)
    return realloc(ptr, nsize);
  if (osize <= POOL_MAX && nsize <= POOL_MAX &&
      size_class(osize) == size_class(nsize))
    return ptr;
  nb = nsize <= POOL_MAX ? pool_take(p, nsize) : malloc(nsize);
  if (nb == NULL) /* Lua assumes a shrink never fails: the block stays, */
    return nsize < osize ? ptr : NULL; /* served later as a smaller one */
  memcpy(nb, ptr, osize < nsize ? osize : nsize);
  if (osize <= POOL_MAX)
    pool_give(p, ptr, osize);
  else
    free(ptr);
  return nb;
}

/* ------------------------------------------------------------------ */
/* What luaL_newstate sets besides the allocator                       */

static int pool_panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
          msg != NULL ? msg : "error object is not a string");
  fflush(stderr);
  return 0; /* Lua then aborts */
}

/* Lua's warning protocol, as lauxlib's: off until "@on"; a message in
 * pieces (tocont) is printed as one line. */
static void pool_warn(void *ud, const char *msg, int tocont) {
  pool *p = ud;
  if (!p->warn_cont && msg[0] == '@') { /* a control message */
    if (strcmp(msg, "@off") == 0)
      p->warn_on = 0;
    else if (strcmp(msg, "@on") == 0)
      p->warn_on = 1;
    return;
  }
  if (p->warn_on) {
    if (!p->warn_cont)
      fputs("Lua warning: ", stderr);
    fputs(msg, stderr);
    if (!tocont)
      fputs("\n", stderr);
    fflush(stderr);
  }
  p->warn_cont = tocont;
}

/* ------------------------------------------------------------------ */
/* States                                                              */

static void pool_free(pool *p) {
  while (p->chunks != NULL) {
    void *c = p->chunks;
    p->chunks = *(void **)c;
    munmap(c, CHUNK_SIZE);
  }
  free(p);
}

lua_State *luaio_pool_newstate(void) {
  pool *p = calloc(1, sizeof *p);
  lua_State *L;
  if (p == NULL)
    return NULL;
  L = lua_newstate(pool_alloc, p);
  if (L == NULL) {
    pool_free(p);
    return NULL;
  }
  lua_atpanic(L, pool_panic);
  lua_setwarnf(L, pool_warn, p);
  return L;
}

void luaio_pool_close(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  lua_close(L);
  if (f == pool_alloc)
    pool_free(ud);
}

#endif
