/*
 * test_embed.c - tests of the embedding API (host/luaio.h), run by
 * `make test`. Each test counts what it expects to have happened.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "luaio.h"


/* Reads global `name` of the host's state as an integer. */
static long long global_int(luaio_host *h, const char *name) {
  lua_State *L = luaio_state(h);
  long long v;
  lua_getglobal(L, name);
  v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The length of the table in global `name`. */
static size_t global_len(luaio_host *h, const char *name) {
  lua_State *L = luaio_state(h);
  size_t n;
  lua_getglobal(L, name);
  n = lua_rawlen(L, -1);
  lua_pop(L, 1);
  return n;
}

static const char *global_str(luaio_host *h, const char *name) {
  lua_State *L = luaio_state(h);
  const char *s;
  lua_getglobal(L, name);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s; /* kept alive by the global */
}

/* ------------------------------------------------------------------ */

static void test_run_to_completion(void) {
  luaio_host *h = luaio_host_new(NULL);
  CHECK(h != NULL);
  CHECK(luaio_dostring(h, "asyncio = require 'asyncio'\n"
                          "order = ''\n"
                          "local loop = asyncio.get_event_loop()\n"
                          "loop:create_task(asyncio.async(function()\n"
                          "  asyncio.await(asyncio.sleep(0.01))\n"
                          "  order = order .. 'b'\n"
                          "end)())\n"
                          "loop:call_soon(function() order = order .. 'a' end)",
                          "=test") == LUAIO_OK);
  CHECK(luaio_run(h) == LUAIO_OK);
  CHECK(strcmp(global_str(h, "order"), "ab") == 0);
  CHECK(luaio_dostring(h, "error('boom')", "=test") == LUAIO_ERROR);
  CHECK(strstr(luaio_last_error(h), "boom") != NULL);
  luaio_host_close(h);
}

/* A loop that Lua closed runs nothing more: luaio_run says LUAIO_CLOSED,
 * luaio_step LUAIO_CLOSED - 1, each with the loop's message. */
static void test_loop_closed_from_lua(void) {
  luaio_host *h = luaio_host_new(NULL);
  CHECK(luaio_dostring(h, "local asyncio = require 'asyncio'\n"
                          "local loop = asyncio.get_event_loop()\n"
                          "ran = 0\n"
                          "loop:call_soon(function() ran = ran + 1 end)\n"
                          "loop:run_until_complete(asyncio.sleep(0))\n"
                          "loop:call_soon(function() ran = ran + 1 end)\n"
                          "loop:close()",
                          "=test") == LUAIO_OK);
  CHECK(global_int(h, "ran") == 1);
  CHECK(luaio_run(h) == LUAIO_CLOSED);
  CHECK(strstr(luaio_last_error(h), "closed") != NULL);
  CHECK(luaio_step(h, 0) == LUAIO_CLOSED - 1);
  CHECK(luaio_spawn(h, "ran = 2", "=late") == LUAIO_CLOSED);
  CHECK(global_int(h, "ran") == 1);
  luaio_host_close(h);
}

/* A host clock that the test moves by hand. */
static double fake_now;
static double fake_clock(void *ud) {
  (void)ud;
  return fake_now;
}

static void test_step_with_host_clock(void) {
  luaio_config cfg;
  luaio_host *h;
  double next;
  memset(&cfg, 0, sizeof cfg);
  cfg.clock = fake_clock;
  fake_now = 100.0;
  h = luaio_host_new(&cfg);
  CHECK(h != NULL);
  CHECK(luaio_spawn(h, "local asyncio = require 'asyncio'\n"
                       "ticks = 0\n"
                       "for i = 1, 3 do\n"
                       "  asyncio.await(asyncio.sleep(1))\n"
                       "  ticks = ticks + 1\n"
                       "end", "=ticker") == LUAIO_OK);
  next = luaio_step(h, 50); /* the task starts and sleeps for 1 s */
  CHECK(global_int(h, "ticks") == 0);
  CHECK(next > 999 && next <= 1000);
  fake_now += 0.5; /* half a second of game time: nothing due */
  next = luaio_step(h, 0);
  CHECK(global_int(h, "ticks") == 0);
  CHECK(next > 499 && next <= 500);
  fake_now += 0.5; /* due now: the wake-up and the step both run */
  luaio_step(h, 1000);
  CHECK(global_int(h, "ticks") == 1);
  /* the clock pauses: however often we step, nothing more happens */
  luaio_step(h, 1);
  luaio_step(h, 1);
  CHECK(global_int(h, "ticks") == 1);
  fake_now += 2; /* a jump of two seconds: the next tick only, whose
                   * sleep then starts at the new time */
  luaio_step(h, 1000);
  CHECK(global_int(h, "ticks") == 2);
  fake_now += 1;
  luaio_step(h, 1000);
  CHECK(global_int(h, "ticks") == 3);
  CHECK(luaio_step(h, 0) == -1); /* nothing scheduled any more */
  luaio_host_close(h);
}

/* A positive budget bounds a step's run of ready work, not only its
 * wait: 100 ready tasks of 1 ms of CPU each overrun a 5 ms budget, so a
 * step runs some of them and leaves the rest, in their order, to the
 * next steps. */
static void test_step_budget_bounds_ready_work(void) {
  luaio_host *h = luaio_host_new(NULL);
  double r;
  int steps = 1;
  CHECK(h != NULL);
  CHECK(luaio_spawn(h, "local asyncio = require 'asyncio'\n"
                       "order = {}\n"
                       "for i = 1, 100 do\n"
                       "  asyncio.create_task(asyncio.async(function()\n"
                       "    local t = os.clock()\n"
                       "    repeat until os.clock() - t >= 0.001\n"
                       "    order[#order + 1] = i\n"
                       "  end)())\n"
                       "end", "=spawner") == LUAIO_OK);
  /* a budget of 0: the spawner's whole iteration, however slow (under
   * valgrind too); its 100 tasks are then ready */
  CHECK(luaio_step(h, 0) == 0);
  CHECK(global_len(h, "order") == 0);
  r = luaio_step(h, 5);
  CHECK(r == 0); /* work is ready still */
  CHECK(global_len(h, "order") > 0 && global_len(h, "order") < 100);
  while (luaio_step(h, 5) == 0 && steps < 1000)
    steps++;
  CHECK(steps > 1);
  CHECK(luaio_dostring(h, "for i = 1, 100 do\n"
                          "  assert(order[i] == i, 'out of order at ' .. i)\n"
                          "end\n"
                          "assert(#order == 100)", "=order") == LUAIO_OK);
  luaio_host_close(h);
}

/* Posts from another thread: all arrive, in order. */
typedef struct post_arg {
  luaio_poster *poster;
  int n;
} post_arg;

static void count_post(lua_State *L, void *ud) {
  long i = (long)(intptr_t)ud;
  if (L == NULL)
    return;
  lua_getglobal(L, "posts");
  lua_getglobal(L, "last");
  if (lua_tointeger(L, -1) + 1 != i)
    lua_pushboolean(L, 1), lua_setglobal(L, "out_of_order");
  lua_pushinteger(L, i);
  lua_setglobal(L, "last");
  lua_pushinteger(L, lua_tointeger(L, -2) + 1);
  lua_setglobal(L, "posts");
  lua_pop(L, 2);
}

static void *poster_thread(void *p) {
  post_arg *a = p;
  long i;
  for (i = 1; i <= a->n; i++)
    if (luaio_poster_post(a->poster, count_post, (void *)(intptr_t)i) != 0)
      break;
  return NULL;
}

static void test_posts_from_thread(void) {
  luaio_host *h = luaio_host_new(NULL);
  pthread_t tid;
  post_arg a;
  int spins = 0;
  luaio_dostring(h, "posts, last = 0, 0", "=test");
  a.poster = luaio_poster_new(h);
  a.n = 20000;
  pthread_create(&tid, NULL, poster_thread, &a);
  while (global_int(h, "posts") < a.n && spins++ < 100000)
    luaio_step(h, 10);
  pthread_join(tid, NULL);
  CHECK(global_int(h, "posts") == a.n);
  CHECK(global_int(h, "out_of_order") == 0);
  luaio_host_close(h);
  /* the poster outlives its host: posting fails cleanly */
  CHECK(luaio_poster_post(a.poster, count_post, NULL) == LUAIO_CLOSED);
  luaio_poster_free(a.poster);
}

/* A step with nothing to do waits within its budget for an event. A post
 * wakes the loop; a step that finds the post ready runs it without
 * polling, and the wake-up stays signalled: the next step must not take
 * that stale wake-up for an event. Counted, not timed: a timer due 30
 * ms on runs within the next step's 200 ms budget only if that step goes
 * on waiting (it returned at once). Then a step whose wait a post ends
 * returns without waiting out its budget: a timer due 3 s on has not run
 * in a step of 5 s. */
static int waited_posts;
static void note_post(lua_State *L, void *ud) {
  (void)ud;
  if (L != NULL)
    waited_posts++;
}

static void *post_once(void *p) {
  luaio_poster_post(p, note_post, NULL);
  return NULL;
}

static void *post_later(void *p) {
  usleep(20000); /* most likely while the step waits; if not, it finds
                    the post ready: either way it returns at once */
  return post_once(p);
}

/* Schedules global `ticks` to count one more after `seconds`; the
 * handle goes to global `tick_handle`. */
static void tick_after(luaio_host *h, const char *seconds) {
  char code[160];
  snprintf(code, sizeof code,
           "tick_handle = require('asyncio').get_event_loop():call_later("
           "%s, function() ticks = ticks + 1 end)", seconds);
  CHECK(luaio_dostring(h, code, "=tick") == LUAIO_OK);
}

static void test_step_waits_after_post(void) {
  luaio_host *h = luaio_host_new(NULL);
  luaio_poster *p = luaio_poster_new(h);
  pthread_t tid;
  int i;
  CHECK(luaio_dostring(h, "ticks = 0", "=ticks") == LUAIO_OK);
  for (i = 1; i <= 3; i++) { /* the wake-up of each post left pending */
    pthread_create(&tid, NULL, post_once, p);
    pthread_join(tid, NULL);
    CHECK(luaio_step(h, 50) == -1); /* runs it: it was ready */
    CHECK(waited_posts == i);
    tick_after(h, "0.03");
    luaio_step(h, 200); /* nothing ready: waits, and the timer runs */
    CHECK(global_int(h, "ticks") == i);
    CHECK(waited_posts == i);
  }
  tick_after(h, "3");
  pthread_create(&tid, NULL, post_later, p);
  luaio_step(h, 5000); /* ended by the post it ran */
  pthread_join(tid, NULL);
  CHECK(waited_posts == 4);
  CHECK(global_int(h, "ticks") == 3); /* the step did not wait on */
  CHECK(luaio_dostring(h, "tick_handle:cancel()", "=cancel") == LUAIO_OK);
  luaio_poster_free(p);
  luaio_host_close(h);
}

/* A future created from C, awaited by a task, resolved by a thread. */
static void *resolver_thread(void *p) {
  luaio_future *f = p;
  luaio_future_resolve_string(f, "from the worker");
  return NULL;
}

static void test_future_from_thread(void) {
  luaio_host *h = luaio_host_new(NULL);
  lua_State *L = luaio_state(h);
  luaio_future *f, *g, *k;
  pthread_t tid;
  int spins = 0;
  f = luaio_future_new(h, NULL);
  lua_setglobal(L, "fut");
  g = luaio_future_new(h, NULL);
  lua_setglobal(L, "fut2");
  k = luaio_future_new(h, NULL);
  lua_setglobal(L, "fut3");
  CHECK(luaio_spawn(h, "local asyncio = require 'asyncio'\n"
                       "got = asyncio.await(fut)\n"
                       "local ok, e = pcall(asyncio.await, fut2)\n"
                       "err = tostring(e)\n"
                       "local ok3, e3 = pcall(asyncio.await, fut3)\n"
                       "cancelled = asyncio.iserror(e3, asyncio.CancelledError)",
                    "=waiter") == LUAIO_OK);
  luaio_step(h, 0);
  pthread_create(&tid, NULL, resolver_thread, f);
  pthread_join(tid, NULL);
  CHECK(luaio_future_reject(g, "bad luck") == LUAIO_OK);
  CHECK(luaio_future_cancel(k) == LUAIO_OK);
  while (global_str(h, "err") == NULL && spins++ < 1000)
    luaio_step(h, 10);
  luaio_run(h);
  CHECK(global_str(h, "got") && strcmp(global_str(h, "got"), "from the worker") == 0);
  CHECK(global_str(h, "err") && strstr(global_str(h, "err"), "RuntimeError: bad luck"));
  lua_getglobal(L, "cancelled");
  CHECK(lua_toboolean(L, -1));
  lua_pop(L, 1);
  luaio_host_close(h);
}

/* A future handle outlives its host: completing it fails cleanly, and
 * the push function still gets to release its data. */
static int pushed, released;
static void push_one(lua_State *L, void *ud) {
  (void)ud;
  if (L == NULL)
    released++;
  else {
    lua_pushinteger(L, 1);
    pushed++;
  }
}

static void test_future_after_close(void) {
  luaio_host *h = luaio_host_new(NULL);
  luaio_future *f = luaio_future_new(h, NULL);
  CHECK(f != NULL);
  lua_pop(luaio_state(h), 1);
  luaio_host_close(h);
  CHECK(luaio_future_resolve(f, push_one, NULL) == LUAIO_CLOSED);
  CHECK(pushed == 0 && released == 1);
}

/* The error handler receives callback errors; the loop goes on. */
static int handled;
static char handled_text[512];
static void on_error(luaio_host *h, const char *text, void *ud) {
  (void)h;
  (void)ud;
  handled++;
  snprintf(handled_text, sizeof handled_text, "%s", text);
}

static void test_error_handler(void) {
  luaio_config cfg;
  luaio_host *h;
  memset(&cfg, 0, sizeof cfg);
  cfg.on_error = on_error;
  h = luaio_host_new(&cfg);
  luaio_dostring(h, "local loop = require('asyncio').get_event_loop()\n"
                    "after = 0\n"
                    "loop:call_soon(function() error('callback failed') end)\n"
                    "loop:call_soon(function() after = 1 end)", "=test");
  luaio_run(h);
  CHECK(handled == 1);
  CHECK(strstr(handled_text, "Exception in callback") != NULL);
  CHECK(strstr(handled_text, "callback failed") != NULL);
  CHECK(global_int(h, "after") == 1);
  luaio_spawn(h, "error('task failed')", "=failing");
  luaio_run(h);
  CHECK(handled == 2);
  CHECK(strstr(handled_text, "task failed") != NULL);
  /* the text has the traceback of the task where the error was raised */
  CHECK(strstr(handled_text, "stack traceback of task") != NULL);
  CHECK(strstr(handled_text, "failing:1: in main chunk") != NULL);
  luaio_host_close(h);
}

/* Closing cancels pending tasks and lets them clean up. */
static void test_close_cancels(void) {
  lua_State *L = luaL_newstate();
  luaio_config cfg;
  luaio_host *h;
  luaL_openlibs(L);
  memset(&cfg, 0, sizeof cfg);
  cfg.L = L; /* attached: the state stays ours */
  h = luaio_host_new(&cfg);
  luaio_spawn(h, "local asyncio = require 'asyncio'\n"
                 "local ok, e = pcall(asyncio.await, asyncio.sleep(3600))\n"
                 "cleaned = asyncio.iserror(e, asyncio.CancelledError)",
              "=sleeper");
  luaio_step(h, 0);
  luaio_host_close(h);
  lua_getglobal(L, "cleaned");
  CHECK(lua_toboolean(L, -1));
  lua_pop(L, 1);
  lua_close(L);
}

/* Closing runs the loop until the cancelled tasks are done, as
 * asyncio.run does: a cleanup that awaits a timer finishes before
 * luaio_host_close returns. */
static void test_close_awaits_cleanup(void) {
  lua_State *L = luaL_newstate();
  luaio_config cfg;
  luaio_host *h;
  luaL_openlibs(L);
  memset(&cfg, 0, sizeof cfg);
  cfg.L = L; /* attached: the state stays ours to look at */
  h = luaio_host_new(&cfg);
  luaio_spawn(h, "local asyncio = require 'asyncio'\n"
                 "pcall(asyncio.await, asyncio.sleep(3600))\n"
                 "asyncio.await(asyncio.sleep(0.05))\n"
                 "cleaned = 'after the timer'",
              "=sleeper");
  luaio_step(h, 0);
  luaio_host_close(h);
  lua_getglobal(L, "cleaned");
  CHECK(lua_isstring(L, -1) &&
        strcmp(lua_tostring(L, -1), "after the timer") == 0);
  lua_pop(L, 1);
  lua_close(L);
}

/* The error handler is called only while its host is open: a failed
 * task the state's owner kept, collected after the host closed, is
 * reported on stderr, not to the handler of a freed host. */
static void test_handler_after_close(void) {
  lua_State *L = luaL_newstate();
  luaio_config cfg;
  luaio_host *h;
  FILE *out = tmpfile(); /* stderr while the task is collected */
  char text[2048];
  size_t n;
  int saved;
  CHECK(out != NULL);
  luaL_openlibs(L);
  memset(&cfg, 0, sizeof cfg);
  cfg.L = L;
  cfg.on_error = on_error;
  h = luaio_host_new(&cfg);
  CHECK(luaio_dostring(h, "local asyncio = require 'asyncio'\n"
                          "kept = asyncio.get_event_loop():create_task(\n"
                          "  asyncio.async(function() error('kept') end)())",
                          "=test") == LUAIO_OK);
  CHECK(luaio_run(h) == LUAIO_OK);
  handled = 0;
  luaio_host_close(h);
  CHECK(handled == 0); /* still referenced: not reported yet */
  fflush(stderr);
  saved = dup(2);
  CHECK(saved >= 0 && dup2(fileno(out), 2) == 2);
  CHECK(luaL_dostring(L, "kept = nil collectgarbage() collectgarbage()") ==
        LUA_OK);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  CHECK(handled == 0);
  rewind(out);
  n = fread(text, 1, sizeof text - 1, out);
  text[n] = '\0';
  fclose(out);
  CHECK(strstr(text, "Task exception was never retrieved") != NULL);
  CHECK(strstr(text, "kept") != NULL);
  lua_close(L);
}

/* Futures completed with NULL: a NULL handle does nothing (and leaks
 * nothing), a NULL string resolves with nil, a NULL message rejects with
 * a RuntimeError without a message. */
static void test_future_null_arguments(void) {
  luaio_host *h = luaio_host_new(NULL);
  lua_State *L = luaio_state(h);
  luaio_future *f, *g;
  CHECK(luaio_future_resolve_string(NULL, "x") == LUAIO_ERROR);
  CHECK(luaio_future_resolve_number(NULL, 1) == LUAIO_ERROR);
  CHECK(luaio_future_resolve(NULL, push_one, NULL) == LUAIO_ERROR);
  CHECK(luaio_future_reject(NULL, "x") == LUAIO_ERROR);
  CHECK(luaio_future_cancel(NULL) == LUAIO_ERROR);
  f = luaio_future_new(h, NULL);
  lua_setglobal(L, "fnil");
  g = luaio_future_new(h, NULL);
  lua_setglobal(L, "frej");
  CHECK(luaio_future_resolve_string(f, NULL) == LUAIO_OK);
  CHECK(luaio_future_reject(g, NULL) == LUAIO_OK);
  CHECK(luaio_spawn(h, "local asyncio = require 'asyncio'\n"
                       "local n = select('#', asyncio.await(fnil))\n"
                       "nil_got = n .. ' ' .. tostring(asyncio.await(fnil))\n"
                       "local ok, e = pcall(asyncio.await, frej)\n"
                       "rej_got = tostring(e)", "=nulls") == LUAIO_OK);
  CHECK(luaio_run(h) == LUAIO_OK);
  CHECK(global_str(h, "nil_got") &&
        strcmp(global_str(h, "nil_got"), "1 nil") == 0);
  CHECK(global_str(h, "rej_got") &&
        strcmp(global_str(h, "rej_got"), "RuntimeError") == 0);
  luaio_host_close(h);
}

/* Errors whose __tostring raises: a clean LUAIO_ERROR and message, a
 * report to on_error; never a panic. */
static void test_unprintable_errors(void) {
  luaio_config cfg;
  luaio_host *h;
  const char *bad = "setmetatable({message = 'odd'}, {__tostring = "
                    "function() error('in tostring') end})";
  char code[256];
  memset(&cfg, 0, sizeof cfg);
  cfg.on_error = on_error;
  h = luaio_host_new(&cfg);
  CHECK(h != NULL);
  snprintf(code, sizeof code, "error(%s)", bad);
  CHECK(luaio_dostring(h, code, "=bad") == LUAIO_ERROR);
  CHECK(strcmp(luaio_last_error(h),
               "(error object cannot be converted to a string)") == 0);
  handled = 0;
  snprintf(code, sizeof code,
           "require('asyncio').get_event_loop():call_soon(function() "
           "error(%s) end)", bad);
  CHECK(luaio_dostring(h, code, "=bad") == LUAIO_OK);
  CHECK(luaio_run(h) == LUAIO_OK);
  CHECK(handled == 1);
  CHECK(strstr(handled_text, "cannot be converted to a string") != NULL);
  CHECK(luaio_dostring(h, "ok = 1", "=after") == LUAIO_OK); /* usable */
  CHECK(global_int(h, "ok") == 1);
  luaio_host_close(h);
}

/* Stepping or running from inside the loop is refused, as run_forever
 * raises; a post without a function is refused. */
static int inner_step, inner_run;
static char inner_error[128];
static void step_inside(lua_State *L, void *ud) {
  luaio_host *h = ud;
  if (L == NULL)
    return;
  inner_step = (int)luaio_step(h, 0);
  inner_run = luaio_run(h);
  snprintf(inner_error, sizeof inner_error, "%s", luaio_last_error(h));
}

static void test_reentry_refused(void) {
  luaio_config cfg;
  luaio_host *h;
  memset(&cfg, 0, sizeof cfg);
  h = luaio_host_new(&cfg);
  CHECK(h != NULL);
  CHECK(luaio_post(h, step_inside, h) == LUAIO_OK);
  CHECK(luaio_run(h) == LUAIO_OK);
  CHECK(inner_step == LUAIO_ERROR - 1);
  CHECK(inner_run == LUAIO_ERROR);
  CHECK(strcmp(inner_error, "This event loop is already running") == 0);
  CHECK(luaio_post(h, NULL, NULL) == LUAIO_ERROR);
  CHECK(luaio_step(h, 0) == -1); /* nothing was queued */
  luaio_host_close(h);
}

int main(void) {
  test_run_to_completion();
  test_loop_closed_from_lua();
  test_step_with_host_clock();
  test_step_budget_bounds_ready_work();
  test_posts_from_thread();
  test_step_waits_after_post();
  test_future_from_thread();
  test_future_after_close();
  test_error_handler();
  test_close_cancels();
  test_close_awaits_cleanup();
  test_handler_after_close();
  test_future_null_arguments();
  test_unprintable_errors();
  test_reentry_refused();
  if (failures) {
    fprintf(stderr, "test_embed: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test_embed: ok\n");
  return 0;
}
