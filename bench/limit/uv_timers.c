/*
 * uv_timers.c - the limit of w4: N libuv timers firing at
 * (i * 7919 % 100000) / 100000 s, each with the smallest record a
 * sleeping task could have (its timer and its index, in one malloc).
 * Prints `limit/w4_timers N seconds ops overhead= rss_per_task=`: the
 * wall time minus 1 s, and the growth of VmRSS once every timer is set.
 *
 *   uv_timers [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

typedef struct sleeper {
  uv_timer_t timer;
  long index;
} sleeper;

static long fired, sum;

static long rss(void) {
  char line[256];
  long kb = 0;
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb * 1024;
}

static void on_closed(uv_handle_t *h) {
  free(h);
}

static void on_timer(uv_timer_t *t) {
  sleeper *s = (sleeper *)t;
  fired++;
  sum += s->index;
  uv_close((uv_handle_t *)t, on_closed);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000, i, rss0, rss1;
  uint64_t t0;
  double seconds;
  uv_loop_t *loop = uv_default_loop();
  if (n <= 0)
    n = 100000;
  rss0 = rss();
  t0 = uv_hrtime();
  for (i = 1; i <= n; i++) {
    sleeper *s = malloc(sizeof *s);
    if (s == NULL)
      return 1;
    s->index = i;
    uv_timer_init(loop, &s->timer);
    uv_timer_start(&s->timer, on_timer,
                   (uint64_t)(i * 7919 % 100000 + 99) / 100,
                   0);
  }
  rss1 = rss();
  uv_run(loop, UV_RUN_DEFAULT);
  seconds = (uv_hrtime() - t0) / 1e9;
  if (fired != n || sum != n * (n + 1) / 2) {
    fprintf(stderr, "uv_timers: %ld fired, sum %ld\n", fired, sum);
    return 1;
  }
  printf("limit/w4_timers %ld %.4f %.0f overhead=%.3f rss_per_task=%.0f\n", n,
         seconds, n / seconds, seconds - 1, (double)(rss1 - rss0) / n);
  return uv_loop_close(loop) != 0;
}
