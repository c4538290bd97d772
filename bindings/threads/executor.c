/*
 * executor.c - ThreadPoolExecutor: worker threads, each with a Lua state
 * of its own (standard libraries, asyncio available, the creator's
 * package.path and cpath), running submitted functions.
 *
 * submit(fn, ...) packs fn and its arguments (transfer.c), queues the job
 * and returns a concurrent future (cfuture.c) that the worker completes
 * with the packed results or error. Workers are started on demand, up to
 * max_workers (Python's default: min(32, CPUs + 4)); an idle worker is
 * reused before a new one is started. The executor is shareable: several
 * loop threads may submit to one pool.
 *
 * loop:run_in_executor(nil | executor, fn, ...) submits and returns a loop
 * Future (wrap_future of the concurrent one); the loop's default executor
 * is created on first use and shut down by asyncio.run (waiting) or by
 * loop:close() (not waiting).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AIO_EXECUTOR_MT "asyncio.ThreadPoolExecutor"

typedef struct job {
  struct job *next;
  aio_msg *msg; /* fn, args */
  aio_cfuture *cf;
} job;

typedef struct worker {
  struct worker *next;
  uv_thread_t tid;
} worker;

typedef struct aio_executor {
  uv_mutex_t mu;
  uv_cond_t cond;
  atomic_int refs;
  job *head, *tail;
  worker *workers;
  int max_workers, nworkers, idle;
  int queued; /* jobs not yet taken by a worker */
  int shutdown;
  int freed_by_worker; /* the last reference went in one of the workers,
                          which frees the pool when it ends */
  aio_state_cfg *cfg;
} aio_executor;

/* ------------------------------------------------------------------ */
/* Workers                                                             */

static int run_job(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  int n;
  lua_settop(L, 0);
  n = aio_msg_unpack(L, j->msg);
  lua_call(L, n - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int msgh(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "traceback") == LUA_TNIL) {
      aio_traceback(L, L, 1);
      lua_setfield(L, 1, "traceback");
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  return 1;
}

static void do_job(lua_State *L, job *j) {
  int base = lua_gettop(L), is_exc = 0;
  lua_pushcfunction(L, msgh);
  lua_pushcfunction(L, run_job);
  lua_pushlightuserdata(L, j);
  if (lua_pcall(L, 1, LUA_MULTRET, base + 1) != LUA_OK)
    is_exc = 1;
  lua_remove(L, base + 1);
  aio_cfuture_set_from(L, j->cf, base, is_exc);
}

static void executor_free(aio_executor *ex) {
  aio_state_cfg_free(ex->cfg);
  uv_cond_destroy(&ex->cond);
  uv_mutex_destroy(&ex->mu);
  free(ex);
}

static void worker_main(void *arg) {
  aio_executor *ex = arg;
  lua_State *L = aio_state_new(ex->cfg);
  for (;;) {
    job *j;
    int last; /* the queue is empty after j */
    uv_mutex_lock(&ex->mu);
    while (ex->head == NULL && !ex->shutdown) {
      ex->idle++;
      uv_cond_wait(&ex->cond, &ex->mu);
      ex->idle--;
    }
    j = ex->head;
    if (j == NULL) { /* shut down and nothing left */
      uv_mutex_unlock(&ex->mu);
      break;
    }
    ex->queued--;
    ex->head = j->next;
    if (ex->head == NULL)
      ex->tail = NULL;
    last = ex->head == NULL;
    uv_mutex_unlock(&ex->mu);
    if (L == NULL)
      aio_cfuture_cancel(j->cf); /* no state to run it in */
    else if (aio_cfuture_set_running(j->cf))
      do_job(L, j);
    aio_msg_free(j->msg);
    aio_cfuture_release(j->cf);
    free(j);
    /* a step of the collector when the queue runs empty, so that an idle
     * worker lets go of what its jobs left (shared objects among it);
     * while jobs are queued, their own allocations pace the collector
     * (a forced step after each job cost more than a small job) */
    if (L != NULL && last)
      lua_gc(L, LUA_GCSTEP, 0);
  }
  if (L != NULL)
    lua_close(L);
  if (ex->freed_by_worker)
    executor_free(ex);
}

/* ------------------------------------------------------------------ */
/* The C object                                                        */

static void executor_retain(void *o) {
  atomic_fetch_add(&((aio_executor *)o)->refs, 1);
}

/* Joins the workers; a worker releasing the last reference to its own
 * pool (from its Lua state) cannot join itself: it is detached, and 1 is
 * returned. */
static int join_workers(aio_executor *ex) {
  worker *w, *next;
  uv_thread_t self = uv_thread_self();
  int in_worker = 0;
  uv_mutex_lock(&ex->mu);
  w = ex->workers;
  ex->workers = NULL;
  uv_mutex_unlock(&ex->mu);
  aio_blocking_begin();
  for (; w; w = next) {
    next = w->next;
    if (uv_thread_equal(&w->tid, &self)) {
      pthread_detach(w->tid);
      in_worker = 1;
    } else
      uv_thread_join(&w->tid);
    free(w);
  }
  aio_blocking_end();
  return in_worker;
}

/* Stops accepting jobs; with `wait`, joins the workers once they have run
 * every queued job (returns what join_workers does). */
static int executor_shutdown(aio_executor *ex, int wait) {
  uv_mutex_lock(&ex->mu);
  ex->shutdown = 1;
  uv_cond_broadcast(&ex->cond);
  uv_mutex_unlock(&ex->mu);
  return wait ? join_workers(ex) : 0;
}

static void executor_release(void *o) {
  aio_executor *ex = o;
  if (atomic_fetch_sub(&ex->refs, 1) == 1) {
    /* nobody can submit any more: let the workers finish, then go (a
     * worker still uses the pool until it ends) */
    if (executor_shutdown(ex, 1))
      ex->freed_by_worker = 1;
    else
      executor_free(ex);
  }
}

/* Queues a job; returns 0 or an error message (shut down, no thread). */
static const char *executor_submit(aio_executor *ex, aio_msg *msg,
                                   aio_cfuture *cf) {
  job *j = malloc(sizeof *j);
  const char *err = NULL;
  if (j == NULL)
    return "not enough memory";
  j->next = NULL;
  j->msg = msg;
  j->cf = cf;
  uv_mutex_lock(&ex->mu);
  if (ex->shutdown) {
    err = "cannot schedule new futures after shutdown";
    goto out;
  }
  /* every queued job needs a worker of its own: an idle worker counts
   * once, even if it has not woken up yet to take a job */
  if (ex->queued + 1 > ex->idle && ex->nworkers < ex->max_workers) {
    worker *w = malloc(sizeof *w);
    if (w == NULL || uv_thread_create(&w->tid, worker_main, ex) != 0) {
      int nomem = w == NULL;
      free(w);
      if (ex->nworkers == 0) {
        err = nomem ? "not enough memory" : "cannot start a worker thread";
        goto out;
      }
    } else {
      w->next = ex->workers;
      ex->workers = w;
      ex->nworkers++;
    }
  }
  aio_cfuture_retain(cf);
  ex->queued++;
  if (ex->tail)
    ex->tail->next = j;
  else
    ex->head = j;
  ex->tail = j;
  uv_cond_signal(&ex->cond);
out:
  uv_mutex_unlock(&ex->mu);
  if (err)
    free(j);
  return err;
}

/* ------------------------------------------------------------------ */
/* Lua side                                                            */

typedef struct ex_ud {
  aio_executor *ex;
} ex_ud;

static void *executor_test(lua_State *L, int idx) {
  ex_ud *ud = luaL_testudata(L, idx, AIO_EXECUTOR_MT);
  return ud ? ud->ex : NULL;
}

static void executor_push(lua_State *L, void *o) {
  ex_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->ex = NULL;
  luaL_setmetatable(L, AIO_EXECUTOR_MT);
  executor_retain(o);
  ud->ex = o;
}

static const aio_shared_type executor_type = {
    "asyncio.ThreadPoolExecutor", executor_test, executor_retain,
    executor_release, executor_push};

/* The executor at idx. One already finalized (only another finalizer
 * of a closing state can still reach it) has let its workers go: it is
 * shut down for good. */
static aio_executor *check_executor(lua_State *L, int idx) {
  ex_ud *ud = luaL_checkudata(L, idx, AIO_EXECUTOR_MT);
  if (ud->ex == NULL)
    aio_raisef(L, AIO_E_RUNTIME, "the ThreadPoolExecutor was finalized");
  return ud->ex;
}

static int default_workers(void) {
  uv_cpu_info_t *cpus;
  int n = 1;
  if (uv_cpu_info(&cpus, &n) == 0)
    uv_free_cpu_info(cpus, n);
  n += 4;
  return n > 32 ? 32 : n;
}

/* ThreadPoolExecutor([max_workers]) */
static int l_executor_new(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, default_workers());
  aio_executor *ex;
  aio_state_cfg *cfg;
  ex_ud *ud;
  if (n <= 0)
    return aio_raisef(L, AIO_E_VALUE, "max_workers must be greater than 0");
  /* the userdata first, then the C parts: a memory error leaks nothing */
  ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->ex = NULL;
  luaL_setmetatable(L, AIO_EXECUTOR_MT);
  cfg = aio_state_cfg_new(L);
  ex = calloc(1, sizeof *ex);
  if (ex == NULL || uv_mutex_init(&ex->mu) != 0) {
    free(ex);
    aio_state_cfg_free(cfg);
    return luaL_error(L, "not enough memory");
  }
  if (uv_cond_init(&ex->cond) != 0) {
    uv_mutex_destroy(&ex->mu);
    free(ex);
    aio_state_cfg_free(cfg);
    return luaL_error(L, "not enough memory");
  }
  atomic_init(&ex->refs, 1);
  ex->max_workers = (int)n;
  ex->cfg = cfg;
  ud->ex = ex;
  return 1;
}

/* Submits fn(args) (from stack index first, n values with fn) and pushes
 * the concurrent future. */
static void submit(lua_State *L, aio_executor *ex, int first, int n) {
  aio_msg *msg;
  aio_cfuture *cf;
  const char *err;
  first = lua_absindex(L, first);
  luaL_checktype(L, first, LUA_TFUNCTION);
  cf = aio_cfuture_push_new(L);
  msg = aio_msg_pack(L, first, n, 1);
  err = executor_submit(ex, msg, cf);
  if (err != NULL) {
    aio_msg_free(msg);
    aio_raisef(L, AIO_E_RUNTIME, "%s", err);
  }
}

/* ex:submit(fn, ...) -> concurrent future */
static int l_executor_submit(lua_State *L) {
  aio_executor *ex = check_executor(L, 1);
  submit(L, ex, 2, lua_gettop(L) - 1);
  return 1;
}

/* ex:map(fn, list) -> list of the results, in order (blocks) */
static int l_executor_map(lua_State *L) {
  aio_executor *ex = check_executor(L, 1);
  lua_Integer i, n;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TTABLE);
  n = luaL_len(L, 3);
  lua_settop(L, 3);
  lua_createtable(L, (int)n, 0); /* 4: the futures */
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, 2);
    lua_geti(L, 3, i);
    submit(L, ex, -2, 2);
    lua_rawseti(L, 4, i);
    lua_pop(L, 2);
  }
  lua_createtable(L, (int)n, 0); /* 5: the results */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 4, i);
    lua_getfield(L, -1, "result");
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    lua_rawseti(L, 5, i);
  }
  return 1;
}

/* ex:shutdown([wait = true]); as Python's, again and again: once
 * finalized too (a loop collected when the state closes shuts its
 * default executor down, which may have been finalized first). */
static int l_executor_shutdown(lua_State *L) {
  ex_ud *ud = luaL_checkudata(L, 1, AIO_EXECUTOR_MT);
  if (ud->ex != NULL)
    executor_shutdown(ud->ex, lua_isnoneornil(L, 2) || lua_toboolean(L, 2));
  return 0;
}

static int l_executor__gc(lua_State *L) {
  ex_ud *ud = luaL_checkudata(L, 1, AIO_EXECUTOR_MT);
  if (ud->ex)
    executor_release(ud->ex);
  ud->ex = NULL;
  return 0;
}

static int l_executor__close(lua_State *L) {
  executor_shutdown(check_executor(L, 1), 1);
  return 0;
}

static int l_executor__tostring(lua_State *L) {
  aio_executor *ex = check_executor(L, 1);
  uv_mutex_lock(&ex->mu);
  lua_pushfstring(L, "<ThreadPoolExecutor max_workers=%d workers=%d%s>",
                  ex->max_workers, ex->nworkers,
                  ex->shutdown ? " shutdown" : "");
  uv_mutex_unlock(&ex->mu);
  return 1;
}

/* Pushes the loop's default executor, creating it on first use. */
static void push_default_executor(lua_State *L, aio_loop *loop) {
  aio_push_env(L, loop, AIO_ENV_EXECUTOR);
  if (!lua_isnil(L, -1))
    return;
  lua_pop(L, 1);
  lua_pushcfunction(L, l_executor_new);
  lua_call(L, 0, 1);
  lua_pushvalue(L, -1);
  aio_set_env(L, loop, AIO_ENV_EXECUTOR);
}

/* loop:run_in_executor(executor | nil, fn, ...) -> Future */
static int l_loop_run_in_executor(lua_State *L) {
  aio_loop *loop = aio_check_loop(L, 1);
  aio_executor *ex;
  if (lua_isnil(L, 2)) {
    if (loop->executor_shutdown)
      return aio_raisef(L, AIO_E_RUNTIME,
                        "Executor shutdown has been called");
    push_default_executor(L, loop);
    lua_replace(L, 2);
  }
  ex = check_executor(L, 2);
  submit(L, ex, 3, lua_gettop(L) - 2);
  return aio_cfuture_wrap(L, -1, loop);
}

/* loop:shutdown_default_executor() -> a done Future: waits for the
 * workers (blocking), then returns a Future already completed, so that
 * Python's `await loop.shutdown_default_executor()` reads
 * `await(loop:shutdown_default_executor())` here too. */
static int l_loop_shutdown_default_executor(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  loop->executor_shutdown = 1;
  aio_push_env(L, loop, AIO_ENV_EXECUTOR);
  if (!lua_isnil(L, -1))
    executor_shutdown(check_executor(L, -1), 1);
  lua_settop(L, 1);
  aio_future_new(L, loop);
  aio_future_set_result(L, 2, 0);
  return 1;
}

/* loop:set_default_executor(executor) */
static int l_loop_set_default_executor(lua_State *L) {
  aio_loop *loop = aio_check_loop(L, 1);
  if (executor_test(L, 2) == NULL)
    return aio_raisef(L, AIO_E_TYPE, "executor must be ThreadPoolExecutor");
  lua_settop(L, 2);
  aio_set_env(L, loop, AIO_ENV_EXECUTOR);
  return 0;
}

static const luaL_Reg executor_methods[] = {
    {"submit", l_executor_submit},
    {"map", l_executor_map},
    {"shutdown", l_executor_shutdown},
    {NULL, NULL}};

static const luaL_Reg executor_metamethods[] = {
    {"__gc", l_executor__gc},
    {"__close", l_executor__close},
    {"__tostring", l_executor__tostring},
    {NULL, NULL}};

void aio_open_executor(lua_State *L) {
  aio_newclass(L, AIO_EXECUTOR_MT, AIO_K_OTHER, executor_methods,
               executor_metamethods);
  aio_shared_register(&executor_type);
  lua_pushcfunction(L, l_executor_new);
  lua_setfield(L, -2, "ThreadPoolExecutor");
  luaL_getmetatable(L, AIO_LOOP_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, l_loop_run_in_executor);
  lua_setfield(L, -2, "run_in_executor");
  lua_pushcfunction(L, l_loop_shutdown_default_executor);
  lua_setfield(L, -2, "shutdown_default_executor");
  lua_pushcfunction(L, l_loop_set_default_executor);
  lua_setfield(L, -2, "set_default_executor");
  lua_pop(L, 2);
}
