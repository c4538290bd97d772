/*
 * cfuture.c - concurrent futures: the thread-side future of
 * run_coroutine_threadsafe and of executors.
 *
 * A concurrent future is a reference-counted C object any thread may hold
 * (it is shareable, so it can be sent). Its outcome is a message (packed
 * values or a packed error), so it can be read from any Lua state:
 *   - cf:result([timeout]) blocks a plain thread (TimeoutError on time-out);
 *   - await(cf) in a task does not block its loop: the task waits on a
 *     loop Future that the completing thread fills through the loop's
 *     post queue (asyncio.wrap_future);
 *   - cf:cancel() cancels a future that has not started; for
 *     run_coroutine_threadsafe it then cancels the task on its loop.
 * States follow concurrent.futures: PENDING, RUNNING, CANCELLED, FINISHED.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AIO_CFUTURE_MT "asyncio.ConcurrentFuture"

enum { CF_PENDING, CF_RUNNING, CF_CANCELLED, CF_FINISHED };

static int is_done(int state) {
  return state == CF_CANCELLED || state == CF_FINISHED;
}

/* A loop Future waiting for the cf (asyncio.wrap_future). Once the cf is
 * done, the waiter itself is posted to that loop, which fills the Future. */
typedef struct cf_waiter {
  aio_post node;
  struct cf_waiter *next; /* in cf->waiters */
  aio_cfuture *cf;        /* set (a reference) when posted */
  aio_remote *r;          /* the loop of the waiting future */
  int futref;             /* the loop Future, in that loop's state registry */
} cf_waiter;

struct aio_cfuture {
  uv_mutex_t mu;
  uv_cond_t cond;
  atomic_int refs;
  int state;
  int is_exc;
  aio_msg *value;        /* FINISHED: results or the error */
  cf_waiter *waiters;
  aio_remote *task_r;    /* run_coroutine_threadsafe: the task's loop */
  lua_Integer task_id;   /* and the task (0 until it exists) */
};

/* ------------------------------------------------------------------ */
/* The C object                                                        */

aio_cfuture *aio_cfuture_new(void) {
  aio_cfuture *cf = calloc(1, sizeof *cf);
  if (cf == NULL)
    return NULL;
  if (uv_mutex_init(&cf->mu) != 0) {
    free(cf);
    return NULL;
  }
  if (uv_cond_init(&cf->cond) != 0) {
    uv_mutex_destroy(&cf->mu);
    free(cf);
    return NULL;
  }
  atomic_init(&cf->refs, 1);
  return cf;
}

void aio_cfuture_retain(aio_cfuture *cf) {
  atomic_fetch_add(&cf->refs, 1);
}

void aio_cfuture_release(aio_cfuture *cf) {
  if (cf && atomic_fetch_sub(&cf->refs, 1) == 1) {
    cf_waiter *w, *next;
    for (w = cf->waiters; w; w = next) { /* never notified: loops closed */
      next = w->next;
      aio_remote_release(w->r);
      free(w);
    }
    aio_msg_free(cf->value);
    if (cf->task_r)
      aio_remote_release(cf->task_r);
    uv_cond_destroy(&cf->cond);
    uv_mutex_destroy(&cf->mu);
    free(cf);
  }
}

/* Completes the pending loop Future at fidx, the top of the stack, with
 * the outcome of cf, which is done. */
static void fill_future(lua_State *L, int fidx, aio_cfuture *cf) {
  if (cf->state == CF_CANCELLED) {
    lua_pushnil(L);
    aio_future_cancel(L, fidx);
  } else if (cf->is_exc) {
    aio_msg_unpack(L, cf->value);
    lua_settop(L, fidx + 1);
    aio_future_set_exception(L, fidx);
  } else
    aio_future_set_result(L, fidx, aio_msg_unpack(L, cf->value));
}

static int notify_protected(lua_State *L) {
  cf_waiter *w = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, w->futref);
  if (((aio_future *)lua_touserdata(L, 1))->state == AIO_PENDING)
    fill_future(L, 1, w->cf); /* else it was cancelled meanwhile */
  return 0;
}

/* A posted waiter, on its loop's thread (or L == NULL: the loop closed). */
static void notify_run(aio_loop *loop, lua_State *L, void *p) {
  cf_waiter *w = p;
  if (L != NULL) {
    aio_run_posted(loop, L, notify_protected, w,
                   "error delivering a concurrent future");
    luaL_unref(L, LUA_REGISTRYINDEX, w->futref);
  }
  aio_cfuture_release(w->cf);
  aio_remote_release(w->r);
  free(w);
}

/* The waiters in the order they came (cf->waiters holds the newest
 * first). */
static cf_waiter *oldest_first(cf_waiter *w) {
  cf_waiter *out = NULL;
  while (w) {
    cf_waiter *next = w->next;
    w->next = out;
    out = w;
    w = next;
  }
  return out;
}

/* Posts the waiters taken from cf once it is done (without the mutex), in
 * the order they came: the Futures of one loop complete in that order. */
static void notify(aio_cfuture *cf, cf_waiter *w) {
  w = oldest_first(w);
  while (w) {
    cf_waiter *next = w->next;
    aio_cfuture_retain(cf);
    w->cf = cf;
    w->node.fn = notify_run;
    w->node.data = w;
    if (aio_remote_post_node(w->r, &w->node) != 0)
      notify_run(NULL, NULL, w);
    w = next;
  }
}

/* Completes cf with `value` (taken over). Returns 0 if cf was already
 * done (value freed). Any thread. */
int aio_cfuture_set(aio_cfuture *cf, aio_msg *value, int is_exc) {
  cf_waiter *w;
  uv_mutex_lock(&cf->mu);
  if (is_done(cf->state)) {
    uv_mutex_unlock(&cf->mu);
    aio_msg_free(value);
    return 0;
  }
  cf->state = CF_FINISHED;
  cf->value = value;
  cf->is_exc = is_exc;
  w = cf->waiters;
  cf->waiters = NULL;
  uv_cond_broadcast(&cf->cond);
  uv_mutex_unlock(&cf->mu);
  notify(cf, w);
  return 1;
}

static int pack_protected(lua_State *L) {
  aio_msg **out = lua_touserdata(L, 1);
  *out = aio_msg_pack(L, 2, lua_gettop(L) - 1, 0);
  return 0;
}

/* Packs the n values on top (popped) into *out; returns 0, or the status
 * of the failure with the error left on top instead. */
static int pack_top(lua_State *L, int n, aio_msg **out) {
  lua_pushcfunction(L, pack_protected);
  lua_pushlightuserdata(L, out);
  lua_rotate(L, -n - 2, 2);
  return lua_pcall(L, n + 1, 0, 0);
}

void aio_cfuture_set_from(lua_State *L, aio_cfuture *cf, int base,
                          int is_exc) {
  aio_msg *out = NULL;
  luaL_checkstack(L, 2, NULL);
  if (pack_top(L, lua_gettop(L) - base, &out) != LUA_OK) {
    /* the values cannot be sent: the SendError goes instead */
    is_exc = 1;
    if (pack_top(L, 1, &out) != LUA_OK)
      lua_pop(L, 1); /* out of memory: completes with no value */
  }
  aio_cfuture_set(cf, out, is_exc);
}

/* PENDING -> RUNNING; returns 0 if it was cancelled (the job must not
 * run). */
int aio_cfuture_set_running(aio_cfuture *cf) {
  int ok;
  uv_mutex_lock(&cf->mu);
  ok = cf->state == CF_PENDING;
  if (ok)
    cf->state = CF_RUNNING;
  uv_mutex_unlock(&cf->mu);
  return ok;
}

static void cancel_task_job(aio_loop *loop, lua_State *L, void *p) {
  lua_Integer id = (lua_Integer)(intptr_t)p;
  if (L == NULL)
    return;
  aio_push_env(L, loop, AIO_ENV_TASKS);
  if (lua_rawgeti(L, -1, id) != LUA_TNIL)
    aio_task_cancel(L, lua_gettop(L), 0);
  lua_pop(L, 2);
}

/* PENDING -> CANCELLED; returns 1 if it is cancelled now. */
int aio_cfuture_cancel(aio_cfuture *cf) {
  cf_waiter *w;
  aio_remote *task_r;
  lua_Integer task_id;
  uv_mutex_lock(&cf->mu);
  if (cf->state != CF_PENDING) {
    int r = cf->state == CF_CANCELLED;
    uv_mutex_unlock(&cf->mu);
    return r;
  }
  cf->state = CF_CANCELLED;
  w = cf->waiters;
  cf->waiters = NULL;
  task_r = cf->task_r;   /* run_coroutine_threadsafe only */
  task_id = cf->task_id; /* 0 until the task exists */
  uv_cond_broadcast(&cf->cond);
  uv_mutex_unlock(&cf->mu);
  if (task_r != NULL && task_id != 0)
    aio_remote_post(task_r, cancel_task_job, (void *)(intptr_t)task_id);
  notify(cf, w);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Lua side                                                            */

typedef struct cf_ud {
  aio_cfuture *cf;
} cf_ud;

static void *cf_test(lua_State *L, int idx) {
  cf_ud *ud = luaL_testudata(L, idx, AIO_CFUTURE_MT);
  return ud ? ud->cf : NULL;
}

static void cf_retain(void *o) {
  aio_cfuture_retain(o);
}

static void cf_release(void *o) {
  aio_cfuture_release(o);
}

void aio_cfuture_push(lua_State *L, aio_cfuture *cf) {
  cf_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->cf = NULL;
  luaL_setmetatable(L, AIO_CFUTURE_MT);
  aio_cfuture_retain(cf);
  ud->cf = cf;
}

aio_cfuture *aio_cfuture_push_new(lua_State *L) {
  cf_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->cf = NULL;
  luaL_setmetatable(L, AIO_CFUTURE_MT);
  ud->cf = aio_cfuture_new();
  if (ud->cf == NULL)
    luaL_error(L, "not enough memory");
  return ud->cf;
}

static void cf_push(lua_State *L, void *o) {
  aio_cfuture_push(L, o);
}

static const aio_shared_type cf_type = {"asyncio.ConcurrentFuture", cf_test,
                                        cf_retain, cf_release, cf_push};

static aio_cfuture *check_cf(lua_State *L, int idx) {
  aio_cfuture *cf = cf_test(L, idx);
  if (cf == NULL)
    luaL_typeerror(L, idx, AIO_CFUTURE_MT);
  return cf;
}

/* Pushes the outcome: results (returns their number) or raises. */
static int push_outcome(lua_State *L, aio_cfuture *cf, int want_exc) {
  if (cf->state == CF_CANCELLED) {
    aio_pusherror(L, AIO_E_CANCELLED, 0);
    return lua_error(L);
  }
  if (want_exc) {
    if (!cf->is_exc)
      return 0;
    aio_msg_unpack(L, cf->value);
    return 1;
  }
  if (cf->is_exc) {
    aio_msg_unpack(L, cf->value);
    return lua_error(L);
  }
  return aio_msg_unpack(L, cf->value);
}

/* cf:result([timeout]) blocks this thread until done. */
static int cf_result_aux(lua_State *L, int want_exc) {
  aio_cfuture *cf = check_cf(L, 1);
  uint64_t deadline = aio_deadline_arg(L, 2);
  int done;
  aio_blocking_begin();
  uv_mutex_lock(&cf->mu);
  while (!(done = is_done(cf->state)) &&
         aio_cond_wait_until(&cf->cond, &cf->mu, deadline))
    ;
  uv_mutex_unlock(&cf->mu);
  aio_blocking_end();
  if (!done)
    return aio_raisef(L, AIO_E_TIMEOUT, "concurrent future not done "
                      "within the timeout");
  lua_settop(L, 1);
  return push_outcome(L, cf, want_exc);
}

static int l_cf_result(lua_State *L) {
  return cf_result_aux(L, 0);
}

static int l_cf_exception(lua_State *L) {
  return cf_result_aux(L, 1);
}

/* The state, read under the mutex. */
static int state_of(aio_cfuture *cf) {
  int state;
  uv_mutex_lock(&cf->mu);
  state = cf->state;
  uv_mutex_unlock(&cf->mu);
  return state;
}

static int l_cf_done(lua_State *L) {
  lua_pushboolean(L, is_done(state_of(check_cf(L, 1))));
  return 1;
}

static int l_cf_cancelled(lua_State *L) {
  lua_pushboolean(L, state_of(check_cf(L, 1)) == CF_CANCELLED);
  return 1;
}

static int l_cf_running(lua_State *L) {
  lua_pushboolean(L, state_of(check_cf(L, 1)) == CF_RUNNING);
  return 1;
}

static int l_cf_cancel(lua_State *L) {
  lua_pushboolean(L, aio_cfuture_cancel(check_cf(L, 1)));
  return 1;
}

/* The loop Future wrapping cf was cancelled: cancel cf too. */
static int wrapper_done(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  if (f->state == AIO_CANCELLED)
    aio_cfuture_cancel(check_cf(L, lua_upvalueindex(1)));
  return 0;
}

/* Pushes a Future of `loop` (NULL: the running or current loop) that
 * completes with cf: asyncio.wrap_future. */
int aio_cfuture_wrap(lua_State *L, int cfidx, aio_loop *loop) {
  aio_cfuture *cf = check_cf(L, cfidx);
  cf_waiter *w;
  int fidx, futref, parked;
  cfidx = lua_absindex(L, cfidx);
  if (loop == NULL)
    loop = aio_get_event_loop(L);
  aio_check_open(L, loop);
  aio_future_new(L, loop);
  fidx = lua_gettop(L);
  lua_pushvalue(L, cfidx);
  lua_pushcclosure(L, wrapper_done, 1);
  aio_future_add_callback(L, fidx);
  lua_pushvalue(L, fidx);
  futref = luaL_ref(L, LUA_REGISTRYINDEX);
  w = malloc(sizeof *w);
  if (w == NULL) {
    luaL_unref(L, LUA_REGISTRYINDEX, futref);
    return luaL_error(L, "not enough memory");
  }
  w->futref = futref;
  w->r = loop->remote;
  aio_remote_retain(w->r);
  uv_mutex_lock(&cf->mu);
  parked = !is_done(cf->state);
  if (parked) {
    w->next = cf->waiters;
    cf->waiters = w;
  }
  uv_mutex_unlock(&cf->mu);
  if (!parked) { /* done already: filled at a later iteration, as
                    CPython's call_soon_threadsafe does (cancellable) */
    w->next = NULL;
    notify(cf, w);
  }
  lua_settop(L, fidx);
  return 1;
}

static int l_cf__await(lua_State *L) {
  return aio_cfuture_wrap(L, 1, NULL);
}

/* wrap_future(f): a loop Future for a concurrent future (a loop Future is
 * returned unchanged). */
static int l_wrap_future(lua_State *L) {
  if (aio_test_future(L, 1)) {
    lua_settop(L, 1);
    return 1;
  }
  return aio_cfuture_wrap(L, 1, lua_isnoneornil(L, 2)
                                   ? NULL : aio_check_loop(L, 2));
}

/* fn(cf), fn at fidx and cf at cfidx: what fn raises is reported as
 * concurrent.futures logs it, "exception calling callback for <cf>", to
 * the exception handler of loop, or on stderr without one. */
static void call_done_callback(lua_State *L, int fidx, int cfidx,
                               aio_loop *loop) {
  int err;
  lua_pushvalue(L, fidx);
  lua_pushvalue(L, cfidx);
  if (aio_pcall(L, 1) == LUA_OK)
    return;
  err = lua_gettop(L);
  lua_pushliteral(L, "exception calling callback for ");
  luaL_tolstring(L, cfidx, NULL);
  lua_concat(L, 2);
  if (loop != NULL)
    aio_report_error(L, loop, lua_tostring(L, -1), err, "future", cfidx);
  else {
    const char *msg = lua_tostring(L, -1);
    const char *what = luaL_tolstring(L, err, NULL);
    fprintf(stderr, "%s\n%s\n", msg, what);
    fflush(stderr);
  }
  lua_settop(L, err - 1);
}

/* The done-callback of the Future add_done_callback waits on: fn(cf),
 * its upvalues. That Future is nobody's to read: its exception, the
 * cf's, is not reported as never retrieved. */
static int done_callback_run(lua_State *L) {
  aio_future *f = aio_test_future(L, 1);
  if (f != NULL)
    f->log_tb = 0;
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  call_done_callback(L, 1, 2, aio_running_loop(L));
  return 0;
}

/* cf:add_done_callback(fn): fn(cf) once cf is done, in this thread (a
 * Lua function runs in its own state only; concurrent.futures calls it
 * in the thread that completes the future): at once when cf is done,
 * else from this thread's running loop, in an iteration after cf
 * completes, in the order added. */
static int l_cf_add_done_callback(lua_State *L) {
  aio_cfuture *cf = check_cf(L, 1);
  aio_loop *loop = aio_running_loop(L);
  if (lua_type(L, 2) != LUA_TFUNCTION &&
      luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
    return luaL_typeerror(L, 2, "function");
  lua_settop(L, 2);
  if (is_done(state_of(cf))) {
    call_done_callback(L, 2, 1, loop);
    return 0;
  }
  if (loop == NULL)
    return aio_raisef(L, AIO_E_RUNTIME, "no running event loop: the "
                      "callbacks of a pending concurrent future run in the "
                      "loop of the thread that adds them");
  aio_cfuture_wrap(L, 1, loop); /* 3 */
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, done_callback_run, 2);
  aio_future_add_callback(L, 3);
  return 0;
}

static int l_cf__gc(lua_State *L) {
  cf_ud *ud = luaL_checkudata(L, 1, AIO_CFUTURE_MT);
  aio_cfuture_release(ud->cf);
  ud->cf = NULL;
  return 0;
}

static int l_cf__tostring(lua_State *L) {
  static const char *const names[] = {"pending", "running", "cancelled",
                                      "finished"};
  aio_cfuture *cf = check_cf(L, 1);
  int state = state_of(cf);
  lua_pushfstring(L, "<ConcurrentFuture %s%s>", names[state],
                  state == CF_FINISHED && cf->is_exc ? " (exception)" : "");
  return 1;
}

/* ------------------------------------------------------------------ */
/* run_coroutine_threadsafe                                            */

typedef struct create_job {
  aio_post node;
  aio_msg *msg; /* fn, args */
  aio_cfuture *cf;
} create_job;

/* Done-callback of the task: copies its outcome into the cf (upvalue). */
static int task_to_cf(lua_State *L) {
  aio_future *t = aio_check_future(L, 1);
  aio_cfuture *cf = check_cf(L, lua_upvalueindex(1));
  if (t->state == AIO_CANCELLED) {
    aio_cfuture_cancel(cf);
    return 0;
  }
  lua_settop(L, 1);
  if (t->has_exc) {
    lua_getfield(L, 1, "exception");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
  } else
    aio_future_push_result(L, 1);
  aio_cfuture_set_from(L, cf, 1, t->has_exc);
  return 0;
}

static int create_task_protected(lua_State *L) {
  create_job *job = lua_touserdata(L, 1);
  aio_loop *loop = lua_touserdata(L, 2);
  aio_cfuture *cf = job->cf;
  aio_future *f;
  aio_task *t;
  int cancelled;
  lua_settop(L, 0);
  aio_coro_new(L, aio_msg_unpack(L, job->msg) - 1); /* fn, args */
  f = aio_create_task(L, loop, 1, 0);
  if (f == NULL || !f->is_task) {
    aio_pushrepr(L, 2);
    return aio_raisef(L, AIO_E_TYPE,
                      "the task factory returned %s, not a Task",
                      lua_tostring(L, -1));
  }
  t = (aio_task *)f;
  /* from now on cf:cancel() cancels the task; cancelled before, the task
   * never starts */
  uv_mutex_lock(&cf->mu);
  cf->task_id = t->id;
  cancelled = cf->state == CF_CANCELLED;
  uv_mutex_unlock(&cf->mu);
  if (cancelled) {
    aio_task_cancel(L, 2, 0);
    return 0;
  }
  aio_cfuture_push(L, cf);
  lua_pushcclosure(L, task_to_cf, 1);
  aio_future_add_callback(L, 2);
  return 0;
}

static void create_job_run(aio_loop *loop, lua_State *L, void *p) {
  create_job *job = p;
  if (L == NULL)
    aio_cfuture_cancel(job->cf); /* the loop closed first */
  else {
    lua_pushcfunction(L, create_task_protected);
    lua_pushlightuserdata(L, job);
    lua_pushlightuserdata(L, loop);
    if (aio_pcall(L, 2) != LUA_OK) {
      int err = lua_gettop(L);
      /* the cf gets the error, and so does the handler */
      aio_report_error(L, loop, "Exception in run_coroutine_threadsafe", err,
                       NULL, 0);
      aio_cfuture_set_from(L, job->cf, err - 1, 1);
    }
  }
  aio_msg_free(job->msg);
  aio_cfuture_release(job->cf);
  free(job);
}

/* run_coroutine_threadsafe(coro, loop_or_ref) -> concurrent future */
static int l_run_coroutine_threadsafe(lua_State *L) {
  aio_remote *r;
  aio_cfuture *cf;
  create_job *job;
  aio_msg *msg;
  int n;
  if (aio_test_coro(L, 1) == NULL)
    return aio_raisef(L, AIO_E_TYPE, "A coroutine object is required");
  r = aio_check_remote(L, 2);
  lua_settop(L, 2);
  cf = aio_cfuture_push_new(L); /* 3 */
  n = aio_coro_start(L, 1, L); /* [coro, ref, cf, fn, args...] */
  msg = aio_msg_pack(L, 4, n + 1, 1);
  lua_settop(L, 3);
  job = malloc(sizeof *job);
  if (job == NULL) {
    aio_msg_free(msg);
    return luaL_error(L, "not enough memory");
  }
  cf->task_r = r;
  aio_remote_retain(r);
  job->node.fn = create_job_run;
  job->node.data = job;
  job->msg = msg;
  aio_cfuture_retain(cf);
  job->cf = cf; /* the job's own reference */
  if (aio_remote_post_node(r, &job->node) != 0) {
    create_job_run(NULL, NULL, job);
    return aio_raisef(L, AIO_E_RUNTIME, "Event loop is closed");
  }
  return 1;
}

static const luaL_Reg cf_methods[] = {
    {"result", l_cf_result},
    {"exception", l_cf_exception},
    {"done", l_cf_done},
    {"cancelled", l_cf_cancelled},
    {"running", l_cf_running},
    {"cancel", l_cf_cancel},
    {"add_done_callback", l_cf_add_done_callback},
    {NULL, NULL}};

static const luaL_Reg cf_metamethods[] = {
    {"__await", l_cf__await},
    {"__gc", l_cf__gc},
    {"__tostring", l_cf__tostring},
    {NULL, NULL}};

static const luaL_Reg cf_funcs[] = {
    {"run_coroutine_threadsafe", l_run_coroutine_threadsafe},
    {"wrap_future", l_wrap_future},
    {NULL, NULL}};

void aio_open_cfuture(lua_State *L) {
  aio_newclass(L, AIO_CFUTURE_MT, AIO_K_OTHER, cf_methods, cf_metamethods);
  aio_shared_register(&cf_type);
  luaL_setfuncs(L, cf_funcs, 0);
}
