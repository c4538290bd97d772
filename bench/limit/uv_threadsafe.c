/*
 * uv_threadsafe.c - the limit of w6: another OS thread posts N callbacks
 * (a malloc'd node each, carrying its number) to a libuv loop through a
 * mutex-guarded list and uv_async_send; the loop runs each and checks
 * the sum. What a plain C program pays for luaio's thread-safe posts.
 *
 *   uv_threadsafe [N]
 */
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

typedef struct post {
  struct post *next;
  void (*fn)(long);
  long arg;
} post;

static uv_mutex_t mu;
static post *head, *tail;
static uv_async_t async;
static long n, count, sum;
static uint64_t t0;

static void on_call(long i) {
  count++;
  sum += i;
}

static void drain(uv_async_t *a) {
  post *p;
  uv_mutex_lock(&mu);
  p = head;
  head = tail = NULL;
  uv_mutex_unlock(&mu);
  while (p != NULL) {
    post *next = p->next;
    p->fn(p->arg);
    free(p);
    p = next;
  }
  if (count == n)
    uv_close((uv_handle_t *)a, NULL);
}

static void poster(void *arg) {
  long i;
  (void)arg;
  for (i = 1; i <= n; i++) {
    post *p = malloc(sizeof *p);
    if (p == NULL)
      abort();
    p->next = NULL;
    p->fn = on_call;
    p->arg = i;
    uv_mutex_lock(&mu);
    if (tail)
      tail->next = p;
    else
      head = p;
    tail = p;
    uv_mutex_unlock(&mu);
    uv_async_send(&async);
  }
}

int main(int argc, char **argv) {
  uv_thread_t th;
  double seconds;
  n = argc > 1 ? atol(argv[1]) : 200000;
  if (n <= 0)
    n = 200000;
  uv_mutex_init(&mu);
  uv_async_init(uv_default_loop(), &async, drain);
  t0 = uv_hrtime();
  uv_thread_create(&th, poster, NULL);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  seconds = (uv_hrtime() - t0) / 1e9;
  uv_thread_join(&th);
  if (count != n || sum != n * (n + 1) / 2) {
    fprintf(stderr, "uv_threadsafe: %ld calls, sum %ld\n", count, sum);
    return 1;
  }
  printf("limit/w6_threadsafe %ld %.4f %.0f\n", n, seconds, n / seconds);
  return 0;
}
