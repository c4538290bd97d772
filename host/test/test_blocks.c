/*
 * test_blocks.c - the blocks one thread allocates and another frees
 * (bindings/threads/blocks.c), run by `make test` and by `make check`
 * (under TSan the pool itself is checked; under ASan and valgrind the
 * blocks go straight to malloc and the checkers see each one).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "internal.h"

/* Whether blocks.c recycles (else each block is malloc's). */
#if defined(LUAIO_SYSTEM_ALLOC) && !defined(__SANITIZE_THREAD__)
#define POOLED 0
#else
#define POOLED 1
#endif

#define NBLOCKS 64 /* two chains of the pool */

/* A block is AIO_BLOCK_SIZE writable bytes; freeing NULL does nothing. */
static void test_contract(void) {
  unsigned char *b = aio_block_alloc();
  CHECK(b != NULL);
  memset(b, 0xa5, AIO_BLOCK_SIZE);
  CHECK(b[0] == 0xa5 && b[AIO_BLOCK_SIZE - 1] == 0xa5);
  aio_block_free(b);
  aio_block_free(NULL);
}

static void *free_all(void *p) {
  void **blocks = p;
  int i;
  for (i = 0; i < NBLOCKS; i++)
    aio_block_free(blocks[i]);
  return NULL;
}

/* Blocks another thread freed are handed out again here: the freeing
 * thread gave them to the shared pool in chains, and this one takes
 * them from there. */
static void test_recycled_across_threads(void) {
  void *first[NBLOCKS], *again[NBLOCKS];
  pthread_t tid;
  int i, j, reused = 0;
  CHECK(aio_block_pool_size() == 0);
  for (i = 0; i < NBLOCKS; i++)
    first[i] = aio_block_alloc();
  CHECK(pthread_create(&tid, NULL, free_all, first) == 0);
  pthread_join(tid, NULL);
  CHECK(aio_block_pool_size() == (POOLED ? NBLOCKS : 0));
  for (i = 0; i < NBLOCKS; i++) {
    again[i] = aio_block_alloc();
    for (j = 0; j < NBLOCKS; j++)
      reused += again[i] == first[j];
  }
  CHECK(aio_block_pool_size() == 0);
  if (POOLED) /* else malloc's blocks, which it may or may not reuse */
    CHECK(reused == NBLOCKS);
  for (i = 0; i < NBLOCKS; i++)
    aio_block_free(again[i]);
}

/* The pool keeps a bounded number of blocks: a thread that frees many
 * more gives the rest back to malloc. */
static void *free_many(void *p) {
  int i, n = *(int *)p;
  void **blocks = malloc(n * sizeof *blocks);
  for (i = 0; i < n; i++)
    blocks[i] = aio_block_alloc();
  for (i = 0; i < n; i++)
    aio_block_free(blocks[i]);
  free(blocks);
  return NULL;
}

static void test_pool_bounded(void) {
  pthread_t tid;
  int n = 3 * AIO_BLOCK_POOL_MAX;
  CHECK(pthread_create(&tid, NULL, free_many, &n) == 0);
  pthread_join(tid, NULL);
  CHECK(aio_block_pool_size() == (POOLED ? AIO_BLOCK_POOL_MAX : 0));
}

/* A producer thread allocates and fills blocks, a consumer checks and
 * frees them, through a small ring under a mutex: every block arrives
 * intact, whichever thread's pool it went through. */
#define ROUNDS 100000
#define RING 128

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  unsigned char *ring[RING];
  unsigned head, count;
} chan = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0};

static void chan_put(unsigned char *b) {
  pthread_mutex_lock(&chan.mu);
  while (chan.count == RING)
    pthread_cond_wait(&chan.cond, &chan.mu);
  chan.ring[(chan.head + chan.count++) % RING] = b;
  pthread_cond_broadcast(&chan.cond);
  pthread_mutex_unlock(&chan.mu);
}

static unsigned char *chan_get(void) {
  unsigned char *b;
  pthread_mutex_lock(&chan.mu);
  while (chan.count == 0)
    pthread_cond_wait(&chan.cond, &chan.mu);
  b = chan.ring[chan.head];
  chan.head = (chan.head + 1) % RING;
  chan.count--;
  pthread_cond_broadcast(&chan.cond);
  pthread_mutex_unlock(&chan.mu);
  return b;
}

static void *produce(void *unused) {
  uint32_t i;
  (void)unused;
  for (i = 0; i < ROUNDS; i++) {
    unsigned char *b = aio_block_alloc();
    memset(b, (int)(i & 0xff), AIO_BLOCK_SIZE);
    memcpy(b, &i, sizeof i);
    chan_put(b);
  }
  return NULL;
}

static void test_producer_consumer(void) {
  pthread_t tid;
  uint32_t i, seen;
  int bad = 0;
  CHECK(pthread_create(&tid, NULL, produce, NULL) == 0);
  for (i = 0; i < ROUNDS; i++) {
    unsigned char *b = chan_get();
    memcpy(&seen, b, sizeof seen);
    bad += seen != i || b[AIO_BLOCK_SIZE - 1] != (unsigned char)(i & 0xff);
    aio_block_free(b);
  }
  pthread_join(tid, NULL);
  CHECK(bad == 0);
}

int main(void) {
  test_contract();
  test_recycled_across_threads();
  test_pool_bounded();
  test_producer_consumer();
  if (failures) {
    fprintf(stderr, "test_blocks: %d failures\n", failures);
    return 1;
  }
  printf("test_blocks: ok\n");
  return 0;
}
