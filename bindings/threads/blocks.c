/*
 * blocks.c - small blocks recycled between threads.
 *
 * A message from one thread to another (a thread-safe call, an executor
 * job, a channel item) is allocated by the sender and freed by the
 * receiver. With malloc, every such free is a free into another thread's
 * arena, under that arena's lock, on cache lines the sender is writing:
 * in w6 it cost more than the rest of the post. Blocks of up to
 * AIO_BLOCK_SIZE bytes come from here instead:
 *
 *   - a thread frees into a list of its own (no lock); a full list of
 *     CHAIN_LEN blocks goes to the shared pool as one chain (one lock per
 *     CHAIN_LEN frees);
 *   - a thread allocates from its own list of taken blocks, then from its
 *     own freed ones, then takes a whole chain from the pool (one lock per
 *     CHAIN_LEN allocations), and only then calls malloc.
 *
 * The pool keeps at most MAX_CHAINS chains (2 MiB of blocks); a chain
 * beyond them is given back to malloc. A burst leaves many blocks in
 * flight: in w6 a poster runs ahead of the loop, which then frees the
 * backlog; with 32 chains most of those frees went to malloc's free, on
 * the loop's side, and the run was 10-15% slower. A thread's lists are
 * given back when it exits (a thread-specific key's destructor), and the
 * pool and the unloading thread's lists when the library is unloaded.
 *
 * Builds for ASan and valgrind (LUAIO_SYSTEM_ALLOC without TSan), and a
 * harness that replaced aio_mem (tools/alloc counts every block), get
 * each block from aio_mem and give it back at once, so that they see
 * every one; TSan checks the pool itself.
 */
#define AIO_MEM_IMPL /* malloc and free are libc's here */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

#if defined(LUAIO_SYSTEM_ALLOC) && !defined(__SANITIZE_THREAD__)

static int pooled(void) {
  return 0;
}

#else

static int pooled(void) {
  return aio_mem.release == free;
}

#endif

#define CHAIN_LEN 32
#define MAX_CHAINS (AIO_BLOCK_POOL_MAX / CHAIN_LEN)

typedef struct block {
  struct block *next;
} block;

/* A thread's own blocks. */
typedef struct cache {
  block *taken;   /* from a chain of the pool, not yet handed out */
  block *freed;   /* freed by this thread, fewer than CHAIN_LEN */
  int nfreed;
  int registered; /* the key's destructor will give them back */
} cache;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static block *pool[MAX_CHAINS]; /* chains of CHAIN_LEN blocks */
static int npool;

static _Thread_local cache tl_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static atomic_int cache_key_made; /* 0 again once the library unloads */

static void free_list(block *b) {
  while (b != NULL) {
    block *next = b->next;
    free(b);
    b = next;
  }
}

/* Gives back the blocks of a thread's cache (its key's destructor). */
static void drop_cache(void *p) {
  cache *c = p;
  free_list(c->taken);
  free_list(c->freed);
  c->taken = c->freed = NULL;
  c->nfreed = 0;
  c->registered = 0;
}

static void make_cache_key(void) {
  atomic_store(&cache_key_made,
               pthread_key_create(&cache_key, drop_cache) == 0);
}

/* Starts moving the next block to be handed out into this thread's cache,
 * owned for writing: a recycled block was last written by the thread that
 * freed it, on another core, and the poster's store of its post then
 * waited for that line (two lines: a post of w6 is about 100 bytes). */
static inline void prefetch_for_write(block *b) {
  if (b == NULL)
    return;
#if defined(__x86_64__) && defined(__GNUC__)
  __asm__ volatile("prefetchw %0" : : "m"(*(const char *)b));
  __asm__ volatile("prefetchw %0" : : "m"(*((const char *)b + 64)));
#else
  __builtin_prefetch(b, 1);
  __builtin_prefetch((const char *)b + 64, 1);
#endif
}

/* Makes sure the calling thread's blocks are given back when it exits;
 * returns 0 when they could not be (then it keeps none). */
static int register_cache(cache *c) {
  if (c->registered)
    return 1;
  pthread_once(&cache_key_once, make_cache_key);
  if (!atomic_load(&cache_key_made) ||
      pthread_setspecific(cache_key, c) != 0)
    return 0;
  c->registered = 1;
  return 1;
}

static block *take_chain(void) {
  block *chain = NULL;
  pthread_mutex_lock(&pool_mu);
  if (npool > 0)
    chain = pool[--npool];
  pthread_mutex_unlock(&pool_mu);
  return chain;
}

static void give_chain(block *chain) {
  pthread_mutex_lock(&pool_mu);
  if (npool < MAX_CHAINS) {
    pool[npool++] = chain;
    chain = NULL;
  }
  pthread_mutex_unlock(&pool_mu);
  free_list(chain); /* the pool is full */
}

void *aio_block_alloc(void) {
  cache *c = &tl_cache;
  block *b = c->taken;
  if (!pooled())
    return aio_mem.alloc(AIO_BLOCK_SIZE);
  if (b == NULL && c->freed != NULL) { /* reuse this thread's own */
    b = c->taken = c->freed;
    c->freed = NULL;
    c->nfreed = 0;
  }
  if (b == NULL && register_cache(c))
    b = c->taken = take_chain();
  if (b == NULL)
    return malloc(AIO_BLOCK_SIZE);
  c->taken = b->next;
  prefetch_for_write(c->taken);
  return b;
}

void aio_block_free(void *p) {
  cache *c = &tl_cache;
  block *b = p;
  if (b == NULL)
    return;
  if (!pooled()) {
    aio_mem.release(b);
    return;
  }
  if (!register_cache(c)) {
    free(b);
    return;
  }
  b->next = c->freed;
  c->freed = b;
  if (++c->nfreed == CHAIN_LEN) {
    give_chain(c->freed);
    c->freed = NULL;
    c->nfreed = 0;
  }
}

unsigned aio_block_pool_size(void) {
  unsigned n;
  pthread_mutex_lock(&pool_mu);
  n = (unsigned)npool * CHAIN_LEN;
  pthread_mutex_unlock(&pool_mu);
  return n;
}

/* When the library is unloaded (or the process exits): the pool and the
 * unloading thread's blocks go back to malloc, and no thread that exits
 * later calls into unloaded code. */
__attribute__((destructor)) static void drop_pool(void) {
  drop_cache(&tl_cache);
  pthread_mutex_lock(&pool_mu);
  while (npool > 0)
    free_list(pool[--npool]);
  pthread_mutex_unlock(&pool_mu);
  if (atomic_exchange(&cache_key_made, 0))
    pthread_key_delete(cache_key);
}
