/*
 * test_post_limit.c - the post limit of the embedding API
 * (luaio_set_post_limit, luaio_poster_trypost, luaio_get_post_stats), run
 * by `make test` and under TSan and valgrind by `make check`. Each test
 * counts what it expects to have happened.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "luaio.h"


/* Fewer posts under valgrind, which runs one thread at a time. */
static int shrink(void) {
  const char *v = getenv("LUAIO_VALGRIND");
  return v && v[0] == '1' ? 50 : 1;
}

static void pause_ms(int ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits (10 s at most) until `n` posts found the limit reached. */
static int wait_for_waited(luaio_host *h, unsigned long n) {
  luaio_post_stats st;
  int i;
  for (i = 0; i < 10000; i++) {
    luaio_get_post_stats(h, &st);
    if (st.waited >= n)
      return 1;
    pause_ms(1);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Many threads through a small limit                                   */

#define THREADS 8

typedef struct counts {
  long seen, bad, over, closed;
  long last[THREADS];
  luaio_host *h;
  size_t limit;
} counts;

static counts C;

/* Runs on the loop thread: ud is thread << 24 | sequence number. */
static void arrive(lua_State *L, void *ud) {
  uintptr_t v = (uintptr_t)ud;
  int t = (int)(v >> 24);
  long i = (long)(v & 0xffffff);
  luaio_post_stats st;
  if (L == NULL) {
    C.closed++;
    return;
  }
  if (i != C.last[t] + 1)
    C.bad++;
  C.last[t] = i;
  C.seen++;
  luaio_get_post_stats(C.h, &st);
  if (st.queued > C.limit)
    C.over++;
}

typedef struct poster_arg {
  luaio_poster *p;
  int id;
  long n;
  int failed;
} poster_arg;

static void *poster_main(void *arg) {
  poster_arg *a = arg;
  long i;
  for (i = 1; i <= a->n; i++)
    if (luaio_poster_post(a->p, arrive,
                          (void *)((uintptr_t)a->id << 24 | (uintptr_t)i))
        != LUAIO_OK)
      a->failed++;
  return NULL;
}

static void test_threads_through_limit(void) {
  luaio_host *h = luaio_host_new(NULL);
  pthread_t tid[THREADS];
  poster_arg a[THREADS];
  long per = 20000 / shrink();
  luaio_post_stats st;
  int t, steps = 0;
  CHECK(h != NULL);
  C = (counts){0};
  C.h = h;
  C.limit = 100;
  luaio_set_post_limit(h, C.limit);
  for (t = 0; t < THREADS; t++) {
    a[t] = (poster_arg){luaio_poster_new(h), t, per, 0};
    pthread_create(&tid[t], NULL, poster_main, &a[t]);
  }
  while (C.seen < per * THREADS && steps++ < 1000000)
    luaio_step(h, 10);
  for (t = 0; t < THREADS; t++) {
    pthread_join(tid[t], NULL);
    CHECK(a[t].failed == 0);
    CHECK(C.last[t] == per);
    luaio_poster_free(a[t].p);
  }
  CHECK(C.seen == per * THREADS);
  CHECK(C.bad == 0);
  CHECK(C.over == 0);
  luaio_get_post_stats(h, &st);
  CHECK(st.maxsize == 100);
  CHECK(st.queued == 0);
  CHECK(st.peak > 0 && st.peak <= 100);
  CHECK(st.waited > 0); /* the limit was reached */
  luaio_host_close(h);
  CHECK(C.closed == 0);
}

/* ------------------------------------------------------------------ */
/* trypost, the loop's own thread, raising the limit, closing           */

static void *trypost_main(void *arg) {
  poster_arg *a = arg;
  int i;
  for (i = 1; i <= 3; i++) {
    int r = luaio_poster_trypost(a->p, arrive, (void *)(uintptr_t)i);
    if (r != LUAIO_OK)
      a->failed = r;
  }
  return NULL;
}

static void test_trypost_and_own_thread(void) {
  luaio_host *h = luaio_host_new(NULL);
  poster_arg a;
  pthread_t tid;
  luaio_post_stats st;
  C = (counts){0};
  C.h = h;
  C.limit = 1000; /* the `over` check is not the point here */
  luaio_set_post_limit(h, 2);
  a = (poster_arg){luaio_poster_new(h), 0, 0, 0};
  pthread_create(&tid, NULL, trypost_main, &a);
  pthread_join(tid, NULL);
  CHECK(a.failed == LUAIO_FULL); /* the third found it full */
  /* the loop's own thread: trypost refuses, post goes beyond the limit */
  CHECK(luaio_poster_trypost(a.p, arrive, (void *)3) == LUAIO_FULL);
  CHECK(luaio_post(h, arrive, (void *)3) == LUAIO_OK);
  luaio_get_post_stats(h, &st);
  CHECK(st.queued == 3 && st.peak == 3 && st.waited == 2);
  CHECK(C.seen == 0);
  luaio_step(h, 0);
  CHECK(C.seen == 3 && C.bad == 0);
  luaio_get_post_stats(h, &st);
  CHECK(st.queued == 0);
  luaio_poster_free(a.p);
  luaio_host_close(h);
}

static void *one_post_main(void *arg) {
  poster_arg *a = arg;
  a->failed = luaio_poster_post(a->p, arrive, (void *)(uintptr_t)a->n);
  return NULL;
}

/* A host with a limit of 1, reached from its own thread, and a thread
 * (*tid, posting 2 through a->p) waiting for room. */
static luaio_host *host_with_waiter(poster_arg *a, pthread_t *tid) {
  luaio_host *h = luaio_host_new(NULL);
  C = (counts){0};
  C.h = h;
  C.limit = 1000;
  luaio_set_post_limit(h, 1);
  CHECK(luaio_post(h, arrive, (void *)1) == LUAIO_OK);
  *a = (poster_arg){luaio_poster_new(h), 0, 2, -100};
  pthread_create(tid, NULL, one_post_main, a);
  CHECK(wait_for_waited(h, 1));
  return h;
}

/* A poster waiting for room goes on when the limit is lifted. */
static void test_lifting_the_limit(void) {
  poster_arg a;
  pthread_t tid;
  luaio_host *h = host_with_waiter(&a, &tid);
  luaio_set_post_limit(h, 0);
  pthread_join(tid, NULL);
  CHECK(a.failed == LUAIO_OK);
  luaio_step(h, 0);
  CHECK(C.seen == 2 && C.bad == 0 && C.last[0] == 2);
  luaio_poster_free(a.p);
  luaio_host_close(h);
}

/* Closing the host wakes a waiting poster with LUAIO_CLOSED; the queued
 * callback is called with L == NULL. */
static void test_close_wakes_poster(void) {
  poster_arg a;
  pthread_t tid;
  luaio_host *h = host_with_waiter(&a, &tid);
  luaio_host_close(h);
  pthread_join(tid, NULL);
  CHECK(a.failed == LUAIO_CLOSED);
  CHECK(C.seen == 0 && C.closed == 1);
  /* the poster outlives its host */
  CHECK(luaio_poster_post(a.p, arrive, (void *)3) == LUAIO_CLOSED);
  CHECK(luaio_poster_trypost(a.p, arrive, (void *)3) == LUAIO_CLOSED);
  luaio_poster_free(a.p);
}

int main(void) {
  test_threads_through_limit();
  test_trypost_and_own_thread();
  test_lifting_the_limit();
  test_close_wakes_poster();
  if (failures) {
    fprintf(stderr, "test_post_limit: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test_post_limit: ok\n");
  return 0;
}
