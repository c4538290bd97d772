/*
 * loop.c - the event loop: ready queue, iterations, run/stop/close, the
 * clock, and the exception-handler funnel.
 *
 * One iteration follows Python's BaseEventLoop._run_once exactly:
 *   1. poll for I/O, with a zero timeout when something is ready or a stop
 *      is pending, else until the next timer (forever when there is none);
 *   2. move every due timer to the END of the ready queue;
 *   3. run exactly the entries that are in the ready queue now (a
 *      snapshot): whatever they schedule runs in the next iteration.
 * The ready queue is ours (not libuv's phases), so callbacks, task steps,
 * done-callbacks and thread-safe submissions share one FIFO order.
 *
 * Polling when something is ready costs a syscall; when no user I/O handle
 * is alive there is nothing to poll for, so such polls are skipped, except
 * one in every POLL_EVERY iterations so that signals and closing handles
 * are still serviced.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* An empty poll costs about a microsecond, an iteration that only steps a
 * task a few hundred nanoseconds: skipping 255 polls in 256 keeps that cost
 * under 1% (64 left it at 7% of w5_lock's time), and a signal still waits
 * at most 256 such iterations, tens of microseconds. */
#define POLL_EVERY 256
#define READY_MIN 64

const char aio_key_running = 0;
const char aio_key_current = 0;

/* The loop running on this OS thread (nested runs of other states' loops
 * save and restore it). */
static _Thread_local aio_loop *tl_running;

/* Debug mode of new loops: --debug or LUAIO_DEBUG=1 in the environment
 * (Python's PYTHONASYNCIODEBUG). Every thread's states read it (loops
 * and tracebacks made in executor workers and loop threads): atomic, set
 * once from the environment unless --debug set it first. */
static atomic_int default_debug = -1;

int aio_debug_default(void) {
  int v = atomic_load_explicit(&default_debug, memory_order_relaxed);
  if (v < 0) {
    const char *env = getenv("LUAIO_DEBUG");
    int expected = -1;
    v = env != NULL && env[0] != '\0' && env[0] != '0';
    if (!atomic_compare_exchange_strong(&default_debug, &expected, v))
      v = expected; /* another thread, or --debug, got there first */
  }
  return v;
}

/* ------------------------------------------------------------------ */
/* Lifetime                                                            */

static void on_handle_closed(uv_handle_t *h) {
  aio_loop *loop = h->data;
  if (loop != NULL)
    loop->handles_open--;
  free(h);
}

void aio_loop_close_handle(aio_loop *loop, uv_handle_t *h) {
  (void)loop;
  if (h && !uv_is_closing(h))
    uv_close(h, on_handle_closed);
}

void aio_io_close_for_loop(uv_handle_t *h) {
  aio_io *io = h->data;
  if (io != NULL && io->close != NULL)
    io->close(h);
  else
    uv_close(h, NULL);
}

static void on_noop_timer(uv_timer_t *t) {
  (void)t;
}

/* The queue is drained by the iteration; the count lets a step tell a
 * poll that only took this wake-up (a post's, when an iteration ran the
 * post without polling) from one that brought something. */
static void on_wakeup(uv_async_t *a) {
  aio_loop *loop = a->data;
  if (loop != NULL)
    loop->wakeups++;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */

aio_loop *aio_test_loop(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  /* the running loop (loop:create_future() in a task) by its address: a
   * full userdata whose block is the running loop's is that loop */
  if (p != NULL && p == (void *)tl_running && lua_type(L, idx) == LUA_TUSERDATA)
    return p;
  return aio_kindof(L, idx) == AIO_K_LOOP ? p : NULL;
}

aio_loop *aio_check_loop_any(lua_State *L, int idx) {
  aio_loop *loop = aio_test_loop(L, idx);
  if (loop == NULL)
    luaL_typeerror(L, idx, AIO_LOOP_MT);
  return loop;
}

void aio_check_open(lua_State *L, aio_loop *loop) {
  if (loop->closed)
    aio_raisef(L, AIO_E_RUNTIME, "Event loop is closed");
}

aio_loop *aio_check_loop(lua_State *L, int idx) {
  aio_loop *loop = aio_check_loop_any(L, idx);
  aio_check_open(L, loop);
  return loop;
}

/* The slots SELF to TASKS (the first ones) live in loop->hot. */
static int hot_index(int slot) {
  return slot <= AIO_ENV_HOT ? slot - 1 : -1;
}

void aio_push_env_cold(lua_State *L, aio_loop *loop, int slot) {
  int h = hot_index(slot);
  if (loop->env == LUA_NOREF) {
    lua_pushnil(L);
    return;
  }
  if (h >= 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->hot[h]);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->env);
  lua_rawgeti(L, -1, slot);
  lua_remove(L, -2);
}

/* Sets env slot `slot` to the value on top (popped); a hot slot takes
 * only tables. */
static void set_env(lua_State *L, aio_loop *loop, int slot) {
  int h = hot_index(slot);
  if (h >= 0) {
    lua_rawseti(L, LUA_REGISTRYINDEX, loop->hot[h]);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->env);
  lua_insert(L, -2);
  lua_rawseti(L, -2, slot);
  lua_pop(L, 1);
}

void aio_set_env(lua_State *L, aio_loop *loop, int slot) {
  set_env(L, loop, slot);
}

void aio_push_env_table(lua_State *L, aio_loop *loop, int slot) {
  aio_push_env(L, loop, slot);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    set_env(L, loop, slot);
  }
}

void aio_push_loop(lua_State *L, aio_loop *loop) {
  if (loop->env == LUA_NOREF) {
    lua_pushnil(L);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->hot[AIO_ENV_SELF - 1]);
  lua_rawgeti(L, -1, 1);
  lua_replace(L, -2);
}

/* ------------------------------------------------------------------ */
/* Clock                                                               */

double aio_loop_time(aio_loop *loop) {
  switch (loop->clock) {
  case AIO_CLOCK_VIRTUAL:
    return loop->vnow;
  case AIO_CLOCK_HOST:
    return loop->host_clock(loop->host_clock_ud);
  case AIO_CLOCK_LUA:
    return loop->lua_now;
  default:
    return (double)uv_hrtime() / 1e9;
  }
}

double aio_loop_now(lua_State *L, aio_loop *loop) {
  double now;
  if (loop->clock != AIO_CLOCK_LUA)
    return aio_loop_time(loop);
  luaL_checkstack(L, 2, NULL);
  aio_push_env(L, loop, AIO_ENV_CLOCK);
  lua_call(L, 0, 1);
  now = lua_tonumber(L, -1);
  if (lua_type(L, -1) != LUA_TNUMBER || now != now) { /* or NaN */
    aio_pushrepr(L, -1);
    aio_raisef(L, AIO_E_TYPE, "the loop's clock returned %s, not a number",
               lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  loop->lua_now = now;
  return now;
}

/* ------------------------------------------------------------------ */
/* The ready queue                                                     */

/* Whether other threads posted callbacks not drained yet (one load). */
static inline int has_posts(const aio_loop *loop) {
  return loop->remote != NULL && aio_remote_has_posts(loop->remote);
}

/* Makes room for n more entries in the ring; returns 0 (changing
 * nothing) when out of memory. Never raises. */
int aio_ready_fit(aio_loop *loop, unsigned n) {
  unsigned ncap = loop->rcap ? loop->rcap : READY_MIN;
  unsigned mask = loop->rcap - 1, i;
  aio_ready *nr;
  if (loop->rcount + n <= loop->rcap)
    return 1;
  while (ncap < loop->rcount + n)
    ncap *= 2;
  nr = malloc(ncap * sizeof *nr);
  if (nr == NULL)
    return 0;
  for (i = 0; i < loop->rcount; i++)
    nr[i] = loop->ready[(loop->rhead + i) & mask];
  free(loop->ready);
  loop->ready = nr;
  loop->rcap = ncap;
  loop->rhead = 0;
  return 1;
}

void aio_ready_reserve(lua_State *L, aio_loop *loop, unsigned n) {
  if (has_posts(loop))
    aio_remote_drain(L, loop);
  if (!aio_ready_fit(loop, n))
    luaL_error(L, "not enough memory");
}

/* Makes room for n more values in the values ring. The table keeps its
 * slots: when the ring wraps, its first entries move to just after the
 * old end, where the order continues (Lua grows the array part itself),
 * so growing costs the wrapped entries only, not the whole ring. */
static void values_reserve(lua_State *L, aio_loop *loop, unsigned n) {
  unsigned ncap = loop->vcap ? loop->vcap : READY_MIN, wrapped = 0, i;
  if (loop->vcount + n <= loop->vcap)
    return;
  while (ncap < loop->vcount + n)
    ncap *= 2;
  if (loop->vcap == 0) {
    lua_createtable(L, (int)ncap, 0);
    set_env(L, loop, AIO_ENV_READY);
    loop->vhead = 0;
  } else if (loop->vhead + loop->vcount > loop->vcap)
    wrapped = loop->vhead + loop->vcount - loop->vcap;
  if (wrapped > 0) {
    aio_push_env(L, loop, AIO_ENV_READY);
    for (i = 0; i < wrapped; i++) {
      lua_rawgeti(L, -1, i + 1);
      lua_rawseti(L, -2, loop->vcap + i + 1);
      lua_pushnil(L);
      lua_rawseti(L, -2, i + 1);
    }
    lua_pop(L, 1);
  }
  loop->vcap = ncap;
}

void aio_ready_push(lua_State *L, aio_loop *loop, aio_ready_kind kind,
                    void *p, unsigned n, aio_cfunc cfn, int nvals) {
  /* posts from other threads that happened before this push go first */
  if (has_posts(loop))
    aio_remote_drain(L, loop);
  aio_ready_push_raw(L, loop, kind, p, n, cfn, nvals);
}

void aio_ready_push_raw(lua_State *L, aio_loop *loop, aio_ready_kind kind,
                        void *p, unsigned n, aio_cfunc cfn, int nvals) {
  aio_ready *e;
  if (loop->closed) {
    lua_pop(L, nvals);
    aio_raisef(L, AIO_E_RUNTIME, "Event loop is closed");
  }
  if (loop->rcount == loop->rcap && !aio_ready_fit(loop, 1)) {
    lua_pop(L, nvals);
    luaL_error(L, "not enough memory");
  }
  if (nvals > 0) {
    int k, t;
    values_reserve(L, loop, (unsigned)nvals);
    aio_push_env(L, loop, AIO_ENV_READY);
    lua_insert(L, -1 - nvals); /* [vals, v1 .. vn] */
    t = lua_absindex(L, -1 - nvals);
    for (k = nvals; k >= 1; k--) /* the last value is on top */
      lua_rawseti(L, t, ((loop->vhead + loop->vcount + (unsigned)k - 1) &
                         (loop->vcap - 1)) + 1);
    lua_pop(L, 1);
    loop->vcount += (unsigned)nvals;
  }
  e = &loop->ready[(loop->rhead + loop->rcount) & (loop->rcap - 1)];
  e->kind = (unsigned char)kind;
  e->nvals = (unsigned char)nvals;
  e->n = n;
  e->p = p;
  e->cfn = cfn;
  loop->rcount++;
}

void aio_schedule_step(lua_State *L, aio_loop *loop, aio_task *t) {
  aio_ready_push(L, loop, AIO_R_STEP, t, 0, NULL, 0);
}

int aio_try_schedule_step(aio_loop *loop, aio_task *t) {
  aio_ready *e;
  if (loop->closed || loop->Lrun == NULL ||
      has_posts(loop) ||
      (loop->rcount == loop->rcap && !aio_ready_fit(loop, 1)))
    return 0;
  e = &loop->ready[(loop->rhead + loop->rcount) & (loop->rcap - 1)];
  e->kind = AIO_R_STEP;
  e->nvals = 0;
  e->n = 0;
  e->p = t;
  e->cfn = NULL;
  loop->rcount++;
  return 1;
}

/* Pops the head entry into *e and pushes its Lua values. */
static void ready_pop(lua_State *L, aio_loop *loop, aio_ready *e) {
  unsigned k;
  int vals;
  *e = loop->ready[loop->rhead];
  loop->rhead = (loop->rhead + 1) & (loop->rcap - 1);
  loop->rcount--;
  if (e->nvals == 0) /* task steps and sleeps: the common case */
    return;
  aio_push_env(L, loop, AIO_ENV_READY);
  vals = lua_gettop(L);
  for (k = 0; k < e->nvals; k++) {
    lua_rawgeti(L, vals, loop->vhead + 1);
    lua_pushnil(L);
    lua_rawseti(L, vals, loop->vhead + 1);
    loop->vhead = (loop->vhead + 1) & (loop->vcap - 1);
    loop->vcount--;
  }
  lua_remove(L, vals);
}

/* ------------------------------------------------------------------ */
/* Reporting errors                                                    */

static const char aio_key_lasttb = 0;

/* Message handler: error objects get their traceback; for other values
 * the traceback is stashed for the reporter. */
int aio_msgh(lua_State *L) {
  aio_traceback(L, L, 1);
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "traceback") == LUA_TNIL) {
      lua_pushvalue(L, -2);
      lua_setfield(L, 1, "traceback");
    }
    lua_pop(L, 1);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_lasttb);
  lua_settop(L, 1);
  return 1;
}

int aio_pcall(lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs, st;
  lua_pushcfunction(L, aio_msgh);
  lua_insert(L, base);
  st = lua_pcall(L, nargs, 0, base);
  lua_remove(L, base);
  return st;
}

/* The default exception handler: the context on top (popped) is
 * formatted by errors.format_context and written to stderr with stdio, so
 * that it still works while the state closes (io.stderr may be gone).
 * Never raises. */
static void default_handler(lua_State *L) {
  int ctx = lua_absindex(L, -1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  if (lua_type(L, -1) == LUA_TTABLE)
    lua_getfield(L, -1, "format_context");
  else
    lua_pushnil(L);
  lua_remove(L, -2);
  lua_pushvalue(L, ctx);
  if (lua_type(L, -2) == LUA_TFUNCTION && lua_pcall(L, 1, 1, 0) == LUA_OK &&
      lua_type(L, -1) == LUA_TSTRING) {
    fputs(lua_tostring(L, -1), stderr);
    fputc('\n', stderr);
  } else {
    const char *msg = NULL;
    if (lua_getfield(L, ctx, "message") == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    fprintf(stderr, "%s\n", msg ? msg : "Unhandled exception in event loop");
  }
  fflush(stderr);
  lua_settop(L, ctx - 1);
}

void aio_report(lua_State *L, aio_loop *loop) {
  int ctx = lua_absindex(L, -1);
  luaL_checkstack(L, 8, NULL);
  if (loop != NULL && !loop->finalized)
    aio_push_env(L, loop, AIO_ENV_HANDLER);
  else
    lua_pushnil(L);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushvalue(L, ctx);
    default_handler(L);
  } else {
    aio_push_loop(L, loop);
    lua_pushvalue(L, ctx);
    if (aio_pcall(L, 2) != LUA_OK) {
      int err = lua_absindex(L, -1);
      lua_createtable(L, 0, 3);
      lua_pushliteral(L, "Unhandled error in exception handler");
      lua_setfield(L, -2, "message");
      lua_pushvalue(L, err);
      lua_setfield(L, -2, "exception");
      lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_lasttb);
      lua_setfield(L, -2, "traceback");
      lua_pushvalue(L, ctx);
      lua_setfield(L, -2, "context");
      default_handler(L);
    }
  }
  lua_settop(L, ctx - 1);
}

/* Whether the error at idx carries its own traceback: a table holding a
 * string "traceback" (an error object, or any table with a metatable,
 * which aio_msgh gives one). */
static int carries_traceback(lua_State *L, int idx) {
  int t;
  if (lua_type(L, idx) != LUA_TTABLE)
    return 0;
  lua_pushliteral(L, "traceback");
  t = lua_rawget(L, idx);
  lua_pop(L, 1);
  return t == LUA_TSTRING;
}

void aio_report_error(lua_State *L, aio_loop *loop, const char *msg,
                      int exc_idx, const char *key, int key_idx) {
  exc_idx = exc_idx ? lua_absindex(L, exc_idx) : 0;
  key_idx = key_idx ? lua_absindex(L, key_idx) : 0;
  luaL_checkstack(L, 8, NULL);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  if (exc_idx) {
    lua_pushvalue(L, exc_idx);
    lua_setfield(L, -2, "exception");
    if (!carries_traceback(L, exc_idx)) {
      lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_lasttb);
      lua_setfield(L, -2, "traceback");
    }
  }
  if (key && key_idx) {
    lua_pushvalue(L, key_idx);
    lua_setfield(L, -2, key);
  }
  aio_report(L, loop);
}

/* Reports the error on top (popped) raised by the callback at `obj`. */
static void report_entry_error(lua_State *L, aio_loop *loop, int obj) {
  int err = lua_absindex(L, -1);
  obj = lua_absindex(L, obj);
  lua_pushliteral(L, "Exception in callback ");
  aio_pushfuncname(L, obj);
  lua_pushliteral(L, "()");
  lua_concat(L, 3);
  aio_report_error(L, loop, lua_tostring(L, -1), err, "handle", obj);
  lua_settop(L, err - 1);
}

/* ------------------------------------------------------------------ */
/* Running                                                             */

aio_kind aio_running_mt_kind(const void *mt) {
  static const aio_kind kinds[AIO_MT_PTR_COUNT] = {
      [AIO_MT_FUTURE] = AIO_K_FUTURE, [AIO_MT_TASK] = AIO_K_TASK,
      [AIO_MT_CORO] = AIO_K_CORO, [AIO_MT_CCORO] = AIO_K_CORO};
  aio_loop *loop = tl_running;
  int i;
  if (loop != NULL)
    /* Futures and Tasks first: await knows a Coroutine by its tag */
    for (i = 0; i < AIO_MT_PTR_COUNT; i++)
      if (mt == loop->mt_ptr[i])
        return kinds[i];
  return AIO_K_NONE;
}

aio_loop *aio_running_loop(lua_State *L) {
  aio_loop *loop = tl_running;
  lua_State *main;
  if (loop == NULL)
    return NULL;
  /* the loop's own thread or its running task's: surely its state */
  if (L == loop->L || (loop->current != NULL && loop->current->co == L))
    return loop;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  return main == loop->L ? loop : NULL;
}

aio_task *aio_current_task_of(lua_State *L) {
  aio_loop *loop = tl_running;
  if (loop && loop->current && loop->current->co == L)
    return loop->current;
  return NULL;
}

/* Raises if the loop cannot start running now. */
static void check_runnable(lua_State *L, aio_loop *loop) {
  aio_check_open(L, loop);
  if (loop->running)
    aio_raisef(L, AIO_E_RUNTIME, "This event loop is already running");
  if (aio_running_loop(L) != NULL)
    aio_raisef(L, AIO_E_RUNTIME,
               "Cannot run the event loop while another loop is running");
}

typedef struct run_state {
  aio_loop *prev;
} run_state;

static void run_begin(lua_State *L, aio_loop *loop, run_state *rs) {
  rs->prev = tl_running;
  aio_push_loop(L, loop);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_running);
  /* published once nothing above can fail on memory: the type checks
   * trust the running loop's addresses (aio_running_mt_kind) */
  tl_running = loop;
  loop->running = 1;
  loop->Lrun = L;
  aio_signal_loop_started(L, loop);
}

static void run_end(lua_State *L, aio_loop *loop, run_state *rs) {
  aio_signal_loop_stopped(L, loop);
  loop->stopping = 0;
  loop->running = 0;
  loop->Lrun = NULL;
  tl_running = rs->prev;
  if (rs->prev && rs->prev->L == loop->L)
    aio_push_loop(L, rs->prev);
  else
    lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_running);
}

/* Polls libuv: timeout < 0 blocks until an event, 0 only polls. */
static void poll_io(aio_loop *loop, double timeout) {
  if (timeout == 0) {
    if (uv_loop_alive(loop->uv)) {
      loop->polls_skipped = 0;
      uv_run(loop->uv, UV_RUN_NOWAIT);
    } else if (++loop->polls_skipped >= POLL_EVERY) {
      /* uv_run does not poll a loop with no referenced handle: make it,
       * so that signals and closing handles are serviced */
      loop->polls_skipped = 0;
      uv_ref((uv_handle_t *)loop->wakeup);
      uv_run(loop->uv, UV_RUN_NOWAIT);
      uv_unref((uv_handle_t *)loop->wakeup);
    }
    return;
  }
  loop->polls_skipped = 0;
  if (timeout > 0) {
    /* it repeats: libuv runs due timers before it polls, and a timer
     * that fired there would leave the poll without a deadline */
    double ms = ceil(timeout * 1000.0);
    uint64_t t = ms > 1e15 ? (uint64_t)1e15 : (uint64_t)ms;
    uv_update_time(loop->uv);
    uv_timer_start(loop->poll_timer, on_noop_timer, t, t);
  }
  uv_ref((uv_handle_t *)loop->wakeup);
  uv_run(loop->uv, UV_RUN_ONCE);
  uv_unref((uv_handle_t *)loop->wakeup);
  if (timeout > 0)
    uv_timer_stop(loop->poll_timer);
}

/* Runs the entry `e` (its Lua values on top when it has them). Returns 1
 * when an error must propagate out of the loop (the error is left on the
 * stack), else 0. */
static int run_entry(lua_State *L, aio_loop *loop, aio_ready *e) {
  switch (e->kind) {
  case AIO_R_HANDLE:
    aio_handle_run(L, loop);
    break;
  case AIO_R_STEP:
    aio_task_step(L, loop, e->p);
    break;
  case AIO_R_SLEEP:
    aio_task_sleep_done(L, loop, e->p, e->n);
    break;
  case AIO_R_FUTCB: /* [cb, fut] */
    lua_pushvalue(L, -2);
    lua_insert(L, -3); /* [cb, cb, fut] */
    if (aio_pcall(L, 1) != LUA_OK)
      report_entry_error(L, loop, -2);
    lua_pop(L, 1);
    break;
  case AIO_R_CFUNC: {
    /* the callback sees the entry's value on top; a fatal error it lets
     * out is left above it */
    int below = lua_gettop(L) - (e->nvals ? 1 : 0);
    if (e->nvals == 0)
      lua_pushnil(L);
    e->cfn(loop, L, e->p);
    if (loop->propagate) {
      lua_replace(L, below + 1);
      lua_settop(L, below + 1);
    } else
      lua_settop(L, below);
    break;
  }
  }
  if (loop->propagate) {
    /* a BaseException (KeyboardInterrupt...) escaped a task or callback:
     * it is on the stack, above what the entry left */
    loop->propagate = 0;
    return 1;
  }
  return 0;
}

/* Debug mode: warns about an entry that ran longer than slow_callback;
 * `task` describes the task of a step (aio_task_describe), else "". */
static void check_slow(aio_loop *loop, const char *task, uint64_t t0) {
  double took = (double)(uv_hrtime() - t0) / 1e9;
  if (took < loop->slow_callback)
    return;
  if (*task)
    fprintf(stderr, "asyncio: executing a step of %s took %.3f seconds\n",
            task, took);
  else
    fprintf(stderr, "asyncio: executing a callback took %.3f seconds\n",
            took);
}

/* How many entries run between two looks at the clock of a bounded
 * step (a power of two). */
#define DEADLINE_EVERY 16

/* Whether a bounded step is past its deadline, looked at after each
 * DEADLINE_EVERY entries (`ran` counts them), so that a step always runs
 * some of its snapshot. */
static int past_deadline(aio_loop *loop, unsigned ran) {
  return loop->deadline != 0 && ran % DEADLINE_EVERY == 0 &&
         uv_hrtime() >= loop->deadline;
}

/* Runs the snapshot of ready entries, or, past the loop's deadline, its
 * first entries: the rest stay at the front of the queue, in their order
 * and ahead of everything scheduled since, for the next iteration.
 * Returns 1 if an error propagates (left on the stack). */
static int run_ready(lua_State *L, aio_loop *loop) {
  unsigned n = loop->rcount, ran = 0;
  int base = lua_gettop(L);
  /* every entry starts at base (or just above, with its values) */
  luaL_checkstack(L, AIO_STEP_ROOM, NULL);
  while (n-- > 0 && loop->rcount > 0) {
    aio_ready e;
    uint64_t t0 = 0;
    char task[256];
    int prop;
    task[0] = '\0';
    ready_pop(L, loop, &e);
    if (loop->debug) {
      if (e.kind == AIO_R_STEP || e.kind == AIO_R_SLEEP)
        aio_task_describe(L, e.p, task, sizeof task);
      t0 = uv_hrtime();
    }
    loop->progress++;
    prop = run_entry(L, loop, &e);
    if (loop->debug)
      check_slow(loop, task, t0);
    if (prop) {
      /* the error is on top: keep it alone above base */
      if (lua_gettop(L) > base + 1)
        lua_replace(L, base + 1);
      lua_settop(L, base + 1);
      return 1;
    }
    if (lua_gettop(L) != base)
      lua_settop(L, base);
    if (past_deadline(loop, ++ran))
      break;
  }
  return 0;
}

/* One iteration; `max_wait` bounds the poll (seconds, < 0 = unbounded).
 * Returns 1 if an error propagates (left on the stack). */
int aio_run_once(lua_State *L, aio_loop *loop, double max_wait) {
  double timeout;
  if (has_posts(loop))
    aio_remote_drain(L, loop);
  if (loop->rcount > 0 || loop->stopping)
    timeout = 0;
  else {
    double next;
    if (!aio_timers_next(L, loop, &next))
      timeout = -1;
    else if (loop->clock == AIO_CLOCK_VIRTUAL) {
      if (next > loop->vnow)
        loop->vnow = next; /* nothing to do until then: jump */
      timeout = 0;
    } else {
      timeout = next - aio_loop_now(L, loop);
      if (timeout < 0)
        timeout = 0;
    }
  }
  if (max_wait >= 0 && (timeout < 0 || timeout > max_wait))
    timeout = max_wait;
  poll_io(loop, timeout);
  if (has_posts(loop))
    aio_remote_drain(L, loop);
  aio_signal_dispatch(L, loop);
  if (loop->interrupted) {
    loop->interrupted = 0;
    aio_pusherror(L, AIO_E_KEYBOARD_INTERRUPT, 0);
    return 1;
  }
  if (loop->hcount > 0)
    aio_timers_run_due(L, loop, aio_loop_now(L, loop));
  return run_ready(L, loop);
}

typedef struct run_args {
  aio_loop *loop;
  double max_wait;
  int once, prop;
} run_args;

/* The iterations, in protected mode: [args] -> the propagating error. */
static int run_protected(lua_State *L) {
  run_args *a = lua_touserdata(L, 1);
  lua_settop(L, 0);
  do
    a->prop = aio_run_once(L, a->loop, a->max_wait);
  while (!a->once && !a->prop && !a->loop->stopping);
  return a->prop ? 1 : 0;
}

/* Runs iterations until stop() (once: one iteration). Returns 1 when an
 * error propagates (a KeyboardInterrupt-class error, left on the stack).
 * The loop always leaves its running state, even when something in the
 * iteration itself raises (that error is raised again afterwards). */
static int run_loop(lua_State *L, aio_loop *loop, double max_wait, int once) {
  run_state rs;
  run_args a;
  int st;
  a.loop = loop;
  a.max_wait = max_wait;
  a.once = once;
  a.prop = 0;
  run_begin(L, loop, &rs);
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &a);
  st = lua_pcall(L, 1, 1, 0);
  run_end(L, loop, &rs);
  if (st != LUA_OK) {
    if (loop->starting != NULL) {
      /* a first step could not make the task's thread (memory): the
       * task stays pending and not started, its step queued again (at
       * the end of the queue). The step that failed left its entry's
       * room: the raw push neither allocates nor drains posts. */
      aio_task *t = loop->starting;
      loop->starting = NULL;
      aio_ready_push_raw(L, loop, AIO_R_STEP, t, 0, NULL, 0);
    }
    lua_error(L);
  }
  if (a.prop)
    return 1;
  lua_pop(L, 1);
  return 0;
}

static int run_forever(lua_State *L, aio_loop *loop) {
  return run_loop(L, loop, -1, 0);
}

static int l_loop_run_forever(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  check_runnable(L, loop);
  lua_settop(L, 1);
  if (run_forever(L, loop))
    return lua_error(L);
  return 0;
}

/* The done-callback of run_until_complete: stops the future's loop,
 * unless a KeyboardInterrupt-class error already ends run_forever. */
static int l_stop_cb(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  if (f->state == AIO_FINISHED && f->has_exc) {
    lua_getiuservalue(L, 1, AIO_FU_VALUE);
    if (aio_isfatal(L, -1))
      return 0; /* run_forever is already leaving with it */
  }
  f->loop->stopping = 1;
  return 0;
}

static int l_loop_run_until_complete(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  aio_future *f;
  int prop, fidx = 3;
  check_runnable(L, loop);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  aio_ensure_future(L, 2, loop); /* [loop, aw, fut] */
  f = aio_test_future(L, fidx);
  aio_push_env(L, loop, AIO_ENV_STOPCB);
  aio_future_add_callback(L, fidx);
  prop = run_forever(L, loop); /* [loop, aw, fut, (err)] */
  if (f->state == AIO_PENDING) {
    /* remove our done-callback so a later completion does not stop an
     * unrelated run */
    lua_getfield(L, fidx, "remove_done_callback");
    lua_pushvalue(L, fidx);
    aio_push_env(L, loop, AIO_ENV_STOPCB);
    lua_call(L, 2, 0);
  }
  if (prop) {
    /* the future's own fatal error leaves through us: it is retrieved */
    if (f->state == AIO_FINISHED)
      f->log_tb = 0;
    return lua_error(L);
  }
  if (f->state == AIO_PENDING)
    return aio_raisef(L, AIO_E_RUNTIME,
                      "Event loop stopped before Future completed.");
  return aio_future_push_result(L, fidx);
}

/* Runs one bounded step for embedders: ready work, due timers, a poll of
 * at most max_wait seconds. Returns 1 if an error propagates. */
int aio_loop_step(lua_State *L, aio_loop *loop, double max_wait) {
  return run_loop(L, loop, max_wait, 1);
}

static int l_loop_stop(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  loop->stopping = 1;
  return 0;
}

static int l_loop_is_running(lua_State *L) {
  lua_pushboolean(L, aio_check_loop_any(L, 1)->running);
  return 1;
}

static int l_loop_is_closed(lua_State *L) {
  lua_pushboolean(L, aio_check_loop_any(L, 1)->closed);
  return 1;
}

static int l_loop_time(lua_State *L) {
  lua_pushnumber(L, aio_loop_now(L, aio_check_loop_any(L, 1)));
  return 1;
}

/* ------------------------------------------------------------------ */
/* Closing                                                             */

static void detach_walk(uv_handle_t *h, void *arg) {
  if (h->data == arg && uv_is_closing(h))
    h->data = NULL;
}

static void close_walk(uv_handle_t *h, void *arg) {
  aio_loop *loop = arg;
  if (uv_is_closing(h))
    return;
  if (h == (uv_handle_t *)loop->poll_timer ||
      h == (uv_handle_t *)loop->wakeup || h == (uv_handle_t *)loop->sigint)
    return;
  aio_io_close_for_loop(h);
}

/* The loop is being collected with tasks still pending: they are
 * unreachable too (each refers to the loop), so report them now. Lua does
 * not accept new finalizers while the state closes, so they cannot report
 * themselves. */
static void report_destroyed_tasks(lua_State *L, aio_loop *loop) {
  aio_push_env(L, loop, AIO_ENV_TASKS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    aio_report_error(L, loop, "Task was destroyed but it is pending!", 0,
                     "task", -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* The libuv loops of abandoned loops, linked through their `data`:
 * kept, and reachable, until the process ends (loop_abandon,
 * leave_to_endless). */
static _Atomic(uv_loop_t *) abandoned_uv;

static void keep_uv(uv_loop_t *uv) {
  uv_loop_t *head = atomic_load(&abandoned_uv);
  do
    uv->data = head;
  while (!atomic_compare_exchange_weak(&abandoned_uv, &head, uv));
}

/* Are file requests that may never end all that keeps the closing
 * loop's libuv loop alive? */
static int only_endless_left(aio_loop *loop) {
  uv_loop_t *uv = loop->uv;
  return loop->endless_reqs > 0 && uv->active_handles == 0 &&
         uv->active_reqs.count == loop->endless_reqs &&
         uv_backend_timeout(uv) == -1;
}

/* Runs the closing loop's own libuv loop until nothing is left in it;
 * returns 0 instead when all that keeps it alive are file requests that
 * may never end (a read of a FIFO nobody writes: libuv cannot stop a
 * request its pool runs). The other requests end, handles close and
 * borrowed strings are let go before that. */
static int run_to_end(aio_loop *loop) {
  uv_loop_t *uv = loop->uv;
  while (uv_loop_alive(uv)) {
    if (only_endless_left(loop)) {
      uv_run(uv, UV_RUN_NOWAIT); /* delivers one that ended meanwhile */
      if (only_endless_left(loop))
        return 0;
      continue;
    }
    uv_run(uv, UV_RUN_ONCE);
  }
  return 1;
}

/* Leaves the closing loop's libuv loop to its requests that may never
 * end: never run nor freed again (a request that ends signals it; the
 * process's exit does not wait for them, see fs.c's end_process). */
static void leave_to_endless(aio_loop *loop) {
  loop->uv_abandoned = 1;
  keep_uv(loop->uv);
}

/* Closes everything the loop owns. Never raises except on memory errors;
 * the caller has checked the loop is not running. `collected`: called by
 * the finalizer of the loop. */
static void loop_close(lua_State *L, aio_loop *loop, int collected) {
  if (loop->closed)
    return;
  loop->closed = 1;
  if (loop->remote)
    aio_remote_close(loop->remote);
  aio_executor_shutdown_default(L, loop);
  aio_signal_close_all(L, loop);
  aio_io_close_all(L, loop);
  /* drop queued work: it never runs; posted C callbacks release their
   * data */
  while (loop->rcount > 0) {
    aio_ready *e = &loop->ready[loop->rhead];
    if (e->kind == AIO_R_CFUNC)
      e->cfn(loop, NULL, e->p);
    loop->rhead = (loop->rhead + 1) & (loop->rcap - 1);
    loop->rcount--;
  }
  loop->vcount = loop->vhead = 0;
  lua_newtable(L);
  set_env(L, loop, AIO_ENV_READY);
  loop->rcount = loop->rhead = 0;
  aio_timers_clear(L, loop);
  /* pending tasks are no longer anchored: when collected they report
   * "Task was destroyed but it is pending!" */
  if (collected)
    report_destroyed_tasks(L, loop);
  else
    aio_tasks_orphaned(L, loop);
  lua_newtable(L);
  set_env(L, loop, AIO_ENV_TASKS);
  loop->npending = 0;
  if (loop->own_uv)
    uv_walk(loop->uv, close_walk, loop);
  aio_loop_close_handle(loop, (uv_handle_t *)loop->poll_timer);
  aio_loop_close_handle(loop, (uv_handle_t *)loop->wakeup);
  if (loop->own_uv) {
    if (run_to_end(loop))
      uv_loop_close(loop->uv);
    else
      leave_to_endless(loop);
    lua_pushnil(L); /* the requests that read them ended */
    set_env(L, loop, AIO_ENV_ANCHORS);
  } else {
    /* the host's loop finishes the closes later: the callbacks must not
     * touch this loop then */
    uv_walk(loop->uv, detach_walk, loop);
    loop->handles_open = 0;
  }
}

void aio_executor_shutdown_default(lua_State *L, aio_loop *loop) {
  aio_push_env(L, loop, AIO_ENV_EXECUTOR);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, "shutdown");
  lua_insert(L, -2);
  lua_pushboolean(L, 0);
  if (aio_pcall(L, 2) != LUA_OK) {
    aio_report_error(L, loop, "error shutting down the default executor",
                     -1, NULL, 0);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  set_env(L, loop, AIO_ENV_EXECUTOR);
}

static int l_loop_close(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  if (loop->running)
    return aio_raisef(L, AIO_E_RUNTIME, "Cannot close a running event loop");
  loop_close(L, loop, 0);
  return 0;
}

/* The state closes under its running loop (os.exit(code, true) from a
 * task or a callback, below which the loop's run and maybe libuv's are
 * still on the C stack): the loop never runs again, and closing it would
 * run libuv inside itself. Other threads stop posting to it (its remote
 * leaves this thread's list of loops), its default executor shuts down,
 * and its libuv loop and handles stay allocated, never freed: a request
 * still running on libuv's thread pool signals that loop when it ends,
 * up to the process's exit. */
static void loop_abandon(lua_State *L, aio_loop *loop) {
  loop->closed = 1;
  if (loop->remote)
    aio_remote_close(loop->remote);
  aio_executor_shutdown_default(L, loop);
  if (loop->own_uv)
    keep_uv(loop->uv);
}

/* Objects finalized in the same collection may still see the loop's
 * memory: `finalized` tells them it is gone. */
static int l_loop__gc(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  int i, abandoned = !loop->closed && loop->running;
  if (loop->finalized)
    return 0;
  if (abandoned)
    loop_abandon(L, loop);
  else
    loop_close(L, loop, 1); /* nothing to do once closed */
  if (loop->uv == NULL) { /* its creation failed: the handles never met
                             libuv */
    free(loop->poll_timer);
    free(loop->wakeup);
    if (loop->remote) /* off its thread's list of open loops */
      aio_remote_close(loop->remote);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, loop->env);
  loop->env = LUA_NOREF;
  loop->cancelled_cls = NULL; /* no longer kept */
  for (i = 0; i < AIO_ENV_HOT; i++) {
    luaL_unref(L, LUA_REGISTRYINDEX, loop->hot[i]);
    loop->hot[i] = LUA_NOREF;
  }
  for (i = 0; i < AIO_MT_PTR_COUNT; i++) {
    luaL_unref(L, LUA_REGISTRYINDEX, loop->mt_ref[i]);
    loop->mt_ref[i] = LUA_NOREF;
  }
  loop->finalized = 1;
  if (loop->remote)
    aio_remote_release(loop->remote);
  loop->remote = NULL;
  free(loop->ready);
  free(loop->heap);
  free(loop->read_scratch);
  loop->ready = NULL;
  loop->heap = NULL;
  loop->read_scratch = NULL;
  if (loop->own_uv && !abandoned && !loop->uv_abandoned)
    free(loop->uv); /* closed: uv_loop_close is done */
  return 0;
}

static int l_loop__tostring(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  lua_pushfstring(L, "<EventLoop running=%s closed=%s debug=%s>",
                  loop->running ? "true" : "false",
                  loop->closed ? "true" : "false",
                  loop->debug ? "true" : "false");
  return 1;
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */

static uv_handle_t *new_handle(lua_State *L, aio_loop *loop, size_t size) {
  uv_handle_t *h = calloc(1, size);
  if (h == NULL)
    luaL_error(L, "not enough memory");
  h->data = loop;
  loop->handles_open++;
  return h;
}

/* The registry keeps these metatables for the life of the state. */
static void keep_mts(lua_State *L, aio_loop *loop) {
  static const char *const keys[AIO_MT_PTR_COUNT] = {
      [AIO_MT_FUTURE] = &aio_mt_future, [AIO_MT_TASK] = &aio_mt_task,
      [AIO_MT_CORO] = &aio_mt_coro, [AIO_MT_CCORO] = &aio_mt_ccoro};
  int i;
  for (i = 0; i < AIO_MT_PTR_COUNT; i++) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, keys[i]);
    loop->mt_ptr[i] = lua_topointer(L, -1);
    loop->mt_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

/* Pushes a new loop userdata. `uv` is the host's libuv loop or NULL for
 * a loop of its own. */
aio_loop *aio_loop_new(lua_State *L, uv_loop_t *uv, aio_clock_kind clock) {
  aio_loop *loop;
  uv_loop_t *own = NULL; /* a libuv loop of its own, when uv is NULL */
  int r, i;
  loop = lua_newuserdatauv(L, sizeof *loop, 0);
  memset(loop, 0, sizeof *loop);
  loop->env = LUA_NOREF;
  for (i = 0; i < AIO_ENV_HOT; i++)
    loop->hot[i] = LUA_NOREF;
  for (i = 0; i < AIO_MT_PTR_COUNT; i++)
    loop->mt_ref[i] = LUA_NOREF;
  loop->closed = 1; /* until it is set up: __gc must not close it */
  luaL_setmetatable(L, AIO_LOOP_MT);
  loop->slow_callback = 0.1;
  loop->watch_sigint = 1;
  loop->debug = (unsigned char)aio_debug_default();
  loop->clock = clock;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  loop->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_createtable(L, AIO_ENV_COUNT, 0);
  lua_newtable(L);
  lua_rawseti(L, -2, AIO_ENV_SIGNALS);
  lua_pushcfunction(L, l_stop_cb);
  lua_rawseti(L, -2, AIO_ENV_STOPCB);
  loop->env = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_createtable(L, 1, 1); /* SELF: the weak table holding the loop */
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 1);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  loop->hot[AIO_ENV_SELF - 1] = luaL_ref(L, LUA_REGISTRYINDEX);
  for (i = AIO_ENV_SELF; i < AIO_ENV_HOT; i++) { /* READY ... THREADSAFE */
    lua_newtable(L);
    loop->hot[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  keep_mts(L, loop);
  aio_push_error_class(L, AIO_E_CANCELLED);
  loop->cancelled_cls = lua_topointer(L, -1);
  set_env(L, loop, AIO_ENV_CANCELLED);
  /* Everything that can fail comes before the libuv loop exists: until
   * loop->uv is set, __gc frees the handles' memory (never initialized)
   * and the remote part. */
  loop->poll_timer =
      (uv_timer_t *)new_handle(L, loop, sizeof *loop->poll_timer);
  loop->wakeup = (uv_async_t *)new_handle(L, loop, sizeof *loop->wakeup);
  loop->remote = aio_remote_new(L, loop);
  if (uv == NULL) {
    own = malloc(sizeof *own);
    if (own == NULL)
      luaL_error(L, "not enough memory");
    r = uv_loop_init(own);
    if (r != 0) {
      free(own);
      aio_raise_uv(L, r, "uv_loop_init");
    }
  }
  r = uv_async_init(own ? own : uv, loop->wakeup, on_wakeup);
  if (r != 0) {
    if (own != NULL) {
      uv_loop_close(own); /* holds no handle yet */
      free(own);
    }
    aio_raise_uv(L, r, "uv_async_init");
  }
  loop->uv = own ? own : uv;
  loop->own_uv = own != NULL;
  uv_unref((uv_handle_t *)loop->wakeup);
  uv_timer_init(loop->uv, loop->poll_timer);
  uv_unref((uv_handle_t *)loop->poll_timer);
  loop->closed = 0;
  aio_dump_register_loop(L);
  return loop;
}

static const char *const loop_options[] = {"clock", "debug", NULL};

/* The clock option at idx: "real", "virtual", or a function (or a
 * callable) that returns the time in seconds. */
static aio_clock_kind clock_option(lua_State *L, int idx) {
  const char *c;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return AIO_CLOCK_REAL;
  case LUA_TSTRING:
    c = lua_tostring(L, idx);
    if (strcmp(c, "virtual") == 0)
      return AIO_CLOCK_VIRTUAL;
    if (strcmp(c, "real") == 0)
      return AIO_CLOCK_REAL;
    break;
  case LUA_TFUNCTION:
    return AIO_CLOCK_LUA;
  default:
    if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL) {
      lua_pop(L, 1);
      return AIO_CLOCK_LUA;
    }
  }
  aio_pushrepr(L, idx);
  return luaL_error(L, "bad clock %s to 'new_event_loop' (expected 'real', "
                    "'virtual' or a function)", lua_tostring(L, -1));
}

/* new_event_loop([{clock = "virtual"|"real"|fn, debug = bool}]) */
static int l_new_event_loop(lua_State *L) {
  aio_clock_kind clock = AIO_CLOCK_REAL;
  int debug = -1;
  aio_loop *loop;
  lua_settop(L, 1);
  if (aio_check_options(L, 1, loop_options)) {
    lua_getfield(L, 1, "clock"); /* 2 */
    clock = clock_option(L, 2);
    if (lua_getfield(L, 1, "debug") != LUA_TNIL)
      debug = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  loop = aio_loop_new(L, NULL, clock);
  if (debug >= 0)
    loop->debug = (unsigned char)debug;
  if (clock == AIO_CLOCK_LUA) {
    lua_pushvalue(L, 2);
    set_env(L, loop, AIO_ENV_CLOCK);
    aio_loop_now(L, loop); /* a first reading: what it raises, raises */
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* Current and running loops                                           */

/* Set (true in the registry) by an explicit set_event_loop(nil): as in
 * CPython, get_event_loop() then raises instead of making a loop. */
static const char key_unset = 0;

aio_loop *aio_get_event_loop(lua_State *L) {
  aio_loop *loop = aio_running_loop(L);
  if (loop)
    return loop;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_current);
  loop = aio_test_loop(L, -1);
  lua_pop(L, 1);
  if (loop == NULL) {
    int unset = lua_rawgetp(L, LUA_REGISTRYINDEX, &key_unset) != LUA_TNIL;
    lua_pop(L, 1);
    if (unset)
      aio_raisef(L, AIO_E_RUNTIME, "There is no current event loop");
    loop = aio_loop_new(L, NULL, AIO_CLOCK_REAL);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_current);
  }
  return loop;
}

static int l_get_event_loop(lua_State *L) {
  aio_push_loop(L, aio_get_event_loop(L));
  return 1;
}

/* set_event_loop(loop | nil): nil makes get_event_loop() raise until a
 * loop is set again (CPython's policy once set_event_loop was called). */
static int l_set_event_loop(lua_State *L) {
  if (!lua_isnoneornil(L, 1))
    aio_check_loop_any(L, 1);
  lua_settop(L, 1);
  if (lua_isnil(L, 1))
    lua_pushboolean(L, 1);
  else
    lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_unset);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_current);
  return 0;
}

/* _unset_event_loop(): no current loop, and get_event_loop() makes a new
 * one on demand (the teardown of asyncio.run, a Runner, asyncio.busted:
 * DESIGN's "a later get_event_loop() makes a fresh one"). */
static int l__unset_event_loop(lua_State *L) {
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_unset);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_current);
  return 0;
}

static int l_get_running_loop(lua_State *L) {
  aio_loop *loop = aio_running_loop(L);
  if (loop == NULL)
    return aio_raisef(L, AIO_E_RUNTIME, "no running event loop");
  aio_push_loop(L, loop);
  return 1;
}

static int l__get_running_loop(lua_State *L) {
  aio_loop *loop = aio_running_loop(L);
  if (loop == NULL)
    lua_pushnil(L);
  else
    aio_push_loop(L, loop);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Exception handler and debug                                         */

static int l_loop_set_exception_handler(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  if (!lua_isnil(L, 2) && lua_type(L, 2) != LUA_TFUNCTION &&
      !luaL_getmetafield(L, 2, "__call"))
    return aio_raisef(L, AIO_E_TYPE,
                      "A callable object or None is expected, got %s",
                      luaL_typename(L, 2));
  lua_settop(L, 2);
  if (loop->env != LUA_NOREF)
    set_env(L, loop, AIO_ENV_HANDLER);
  return 0;
}

/* loop:set_task_factory(factory | nil): create_task then returns
 * factory(loop, coro, opts) (see aio_create_task). */
static int l_loop_set_task_factory(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  if (!lua_isnil(L, 2) && lua_type(L, 2) != LUA_TFUNCTION &&
      !luaL_getmetafield(L, 2, "__call")) {
    aio_pushrepr(L, 2);
    return aio_raisef(L, AIO_E_TYPE,
                      "task factory must be a callable or None, got %s",
                      lua_tostring(L, -1));
  }
  lua_settop(L, 2);
  loop->task_factory = !lua_isnil(L, 2);
  if (loop->env != LUA_NOREF)
    set_env(L, loop, AIO_ENV_TASK_FACTORY);
  return 0;
}

static int l_loop_get_task_factory(lua_State *L) {
  aio_push_env(L, aio_check_loop_any(L, 1), AIO_ENV_TASK_FACTORY);
  return 1;
}

static int l_loop_get_exception_handler(lua_State *L) {
  aio_push_env(L, aio_check_loop_any(L, 1), AIO_ENV_HANDLER);
  return 1;
}

static int l_loop_call_exception_handler(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  aio_report(L, loop);
  return 0;
}

static int l_loop_default_exception_handler(lua_State *L) {
  aio_check_loop_any(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  default_handler(L);
  return 0;
}

static int l_loop_set_debug(lua_State *L) {
  aio_check_loop_any(L, 1)->debug = (unsigned char)lua_toboolean(L, 2);
  return 0;
}

static int l_loop_get_debug(lua_State *L) {
  lua_pushboolean(L, aio_check_loop_any(L, 1)->debug);
  return 1;
}

/* loop:_counts() -> {ready=, timers=, tasks=, handles=}: what the loop
 * still holds, for the specs' leak checks. */
static int l_loop__counts(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, loop->rcount);
  lua_setfield(L, -2, "ready");
  lua_pushinteger(L, aio_timers_live(L, loop));
  lua_setfield(L, -2, "timers");
  lua_pushinteger(L, loop->npending);
  lua_setfield(L, -2, "tasks");
  lua_pushinteger(L, loop->handles_open);
  lua_setfield(L, -2, "handles");
  return 1;
}

static const luaL_Reg loop_methods[] = {
    {"run_forever", l_loop_run_forever},
    {"run_until_complete", l_loop_run_until_complete},
    {"stop", l_loop_stop},
    {"is_running", l_loop_is_running},
    {"is_closed", l_loop_is_closed},
    {"close", l_loop_close},
    {"time", l_loop_time},
    {"set_task_factory", l_loop_set_task_factory},
    {"get_task_factory", l_loop_get_task_factory},
    {"set_exception_handler", l_loop_set_exception_handler},
    {"get_exception_handler", l_loop_get_exception_handler},
    {"call_exception_handler", l_loop_call_exception_handler},
    {"default_exception_handler", l_loop_default_exception_handler},
    {"set_debug", l_loop_set_debug},
    {"get_debug", l_loop_get_debug},
    {"_counts", l_loop__counts},
    {NULL, NULL}};

static const luaL_Reg loop_metamethods[] = {
    {"__gc", l_loop__gc},
    {"__close", l_loop_close},
    {"__tostring", l_loop__tostring},
    {NULL, NULL}};

int aio_debug_mode(lua_State *L) {
  aio_loop *loop = aio_running_loop(L);
  return loop ? loop->debug : aio_debug_default();
}

static int l__set_default_debug(lua_State *L) {
  atomic_store(&default_debug, lua_toboolean(L, 1));
  return 0;
}

static const luaL_Reg loop_funcs[] = {
    {"_set_default_debug", l__set_default_debug},
    {"new_event_loop", l_new_event_loop},
    {"get_event_loop", l_get_event_loop},
    {"set_event_loop", l_set_event_loop},
    {"_unset_event_loop", l__unset_event_loop},
    {"get_running_loop", l_get_running_loop},
    {"_get_running_loop", l__get_running_loop},
    {NULL, NULL}};

void aio_open_loop(lua_State *L) {
  aio_newclass(L, AIO_LOOP_MT, AIO_K_LOOP, loop_methods, loop_metamethods);
  luaL_setfuncs(L, loop_funcs, 0);
}
