/*
 * luaio.c - the embedding API (see luaio.h).
 *
 * A host is a lua_State (its own or the embedder's) with asyncio opened
 * and one event loop (on its own libuv loop or the embedder's), which is
 * the state's current loop. Every call into Lua goes through lua_pcall;
 * errors are kept for luaio_last_error() or, for errors inside the loop,
 * go to the host's error handler.
 *
 * Posters and futures hold a reference to the loop's remote part (the
 * thread-safe queue of threads.c), never to the host: using one after the
 * host closed fails with LUAIO_CLOSED instead of touching freed memory.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "internal.h"
#include "luaio.h"
#include "luaio_sources.h"
#include "pool.h"

struct luaio_host {
  lua_State *L;
  int own_L;
  aio_loop *loop;
  int loopref;           /* the loop userdata, in the registry */
  aio_remote *remote;
  luaio_error_fn on_error;
  void *on_error_ud;
  luaio_host **box;      /* the host as its handler sees it: NULL once
                            closed (the handler may outlive the host) */
  int boxref;            /* the box, in the registry */
  luaio_clock_fn clock;
  void *clock_ud;
  char *last_error;
};

struct luaio_poster {
  aio_remote *r;
};

/* Completing the handle posts it to the loop, which completes the Future
 * and frees it. */
struct luaio_future {
  aio_post node;
  aio_remote *r;
  int futref;            /* the Future, in the loop state's registry */
  int how;               /* COMPLETE_*, set when completed */
  luaio_push_fn push;    /* COMPLETE_VALUES */
  void *ud;
  char *message;         /* COMPLETE_ERROR */
};

enum { COMPLETE_VALUES, COMPLETE_ERROR, COMPLETE_CANCEL };

/* ------------------------------------------------------------------ */
/* Embedded sources                                                    */

/* package.preload loader of an embedded module: its source is upvalue 1. */
static int load_embedded(lua_State *L) {
  const luaio_source *s = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, s->code, s->len, s->chunkname) != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, s->module);
  lua_call(L, 1, 1);
  return 1;
}

/* the batteries built (asyncio._ssl, ...), listed by the Makefile */
#define LUAIO_BATTERY(sym, name) int luaopen_##sym(lua_State *L);
#include "luaio_batteries.h"
#undef LUAIO_BATTERY

void luaio_openlibs(lua_State *L) {
  const luaio_source *s;
  /* the Lua states of threads get the same modules */
  aio_set_state_hook(luaio_openlibs);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_asyncio_core);
  lua_setfield(L, -2, "asyncio.core");
#define LUAIO_BATTERY(sym, name) \
  lua_pushcfunction(L, luaopen_##sym); \
  lua_setfield(L, -2, name);
#include "luaio_batteries.h"
#undef LUAIO_BATTERY
  for (s = luaio_sources; s->module != NULL; s++) {
    lua_pushlightuserdata(L, (void *)s);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, s->module);
  }
  lua_pop(L, 1);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

static void set_error(luaio_host *h, const char *msg) {
  free(h->last_error);
  h->last_error = strdup(msg ? msg : "(error object is not a string)");
}

static int tostring_body(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Takes the error on top of the stack (popped) as the last error. Its
 * __tostring runs protected: one that raises (or runs out of memory)
 * leaves a message saying so instead of a panic. */
static int take_error(luaio_host *h) {
  lua_State *L = h->L;
  lua_pushcfunction(L, tostring_body);
  lua_pushvalue(L, -2);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK)
    set_error(h, lua_tostring(L, -1));
  else
    set_error(h, "(error object cannot be converted to a string)");
  lua_pop(L, 2);
  return LUAIO_ERROR;
}

const char *luaio_last_error(luaio_host *h) {
  return h->last_error ? h->last_error : "";
}

/* The loop's exception handler when the host has one: formats the
 * context as the default handler would and hands the text over. Its
 * upvalue is the host's box: a report made after luaio_host_close (a
 * failed task the state's owner kept, collected later) is printed on
 * stderr, as the default handler would. */
static int host_handler(lua_State *L) {
  luaio_host *h = *(luaio_host **)lua_touserdata(L, lua_upvalueindex(1));
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  lua_getfield(L, -1, "format_context");
  lua_pushvalue(L, 2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    /* an error object whose __tostring raises: the report still goes to
     * the host, with what can be said */
    lua_getfield(L, 2, "message");
    lua_pushfstring(L, "%s (its error cannot be converted to a string)",
                    lua_isstring(L, -1) ? lua_tostring(L, -1)
                                        : "an error was reported");
  }
  if (h != NULL && h->on_error)
    h->on_error(h, lua_tostring(L, -1), h->on_error_ud);
  else if (h == NULL) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    fflush(stderr);
  }
  return 0;
}

static int install_handler(lua_State *L) {
  luaio_host *h = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->loopref);
  lua_getfield(L, -1, "set_exception_handler");
  lua_insert(L, -2);
  if (h->on_error) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->boxref);
    lua_pushcclosure(L, host_handler, 1);
  } else
    lua_pushnil(L);
  lua_call(L, 2, 0);
  return 0;
}

void luaio_set_error_handler(luaio_host *h, luaio_error_fn fn, void *ud) {
  h->on_error = fn;
  h->on_error_ud = ud;
  lua_pushcfunction(h->L, install_handler);
  lua_pushlightuserdata(h->L, h);
  if (lua_pcall(h->L, 1, 0, 0) != LUA_OK)
    take_error(h);
}

/* ------------------------------------------------------------------ */
/* Creation and closing                                                */

static double host_clock(void *ud) {
  luaio_host *h = ud;
  return h->clock(h->clock_ud);
}

void luaio_set_clock(luaio_host *h, luaio_clock_fn clock, void *ud) {
  h->clock = clock;
  h->clock_ud = ud;
  if (clock) {
    h->loop->host_clock = host_clock;
    h->loop->host_clock_ud = h;
    h->loop->clock = AIO_CLOCK_HOST;
  } else
    h->loop->clock = AIO_CLOCK_REAL;
}

static int setup_host(lua_State *L) {
  luaio_host *h = lua_touserdata(L, 1);
  uv_loop_t *uv = lua_touserdata(L, 2);
  if (h->own_L)
    luaL_openlibs(L);
  luaio_openlibs(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "asyncio");
  lua_call(L, 1, 0);
  h->box = lua_newuserdatauv(L, sizeof *h->box, 0);
  *h->box = h;
  h->boxref = luaL_ref(L, LUA_REGISTRYINDEX);
  h->loop = aio_loop_new(L, uv, AIO_CLOCK_REAL);
  h->loop->watch_sigint = 0;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_current);
  h->loopref = luaL_ref(L, LUA_REGISTRYINDEX);
  h->remote = h->loop->remote;
  aio_remote_retain(h->remote);
  return 0;
}

luaio_host *luaio_host_new(const luaio_config *cfg) {
  luaio_config none;
  luaio_host *h = calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  if (cfg == NULL) {
    memset(&none, 0, sizeof none);
    cfg = &none;
  }
  h->loopref = LUA_NOREF;
  h->boxref = LUA_NOREF;
  h->L = cfg->L;
  if (h->L == NULL) {
    h->L = luaio_pool_newstate();
    h->own_L = 1;
    if (h->L == NULL) {
      free(h);
      return NULL;
    }
  }
  lua_pushcfunction(h->L, setup_host);
  lua_pushlightuserdata(h->L, h);
  lua_pushlightuserdata(h->L, cfg->uv_loop);
  if (lua_pcall(h->L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "luaio: cannot create a host: %s\n",
            lua_tostring(h->L, -1));
    lua_pop(h->L, 1);
    if (h->own_L)
      luaio_pool_close(h->L);
    else if (h->boxref != LUA_NOREF) {
      *h->box = NULL;
      luaL_unref(h->L, LUA_REGISTRYINDEX, h->boxref);
    }
    free(h);
    return NULL;
  }
  h->loop->watch_sigint = (unsigned char)(cfg->watch_sigint != 0);
  if (cfg->clock)
    luaio_set_clock(h, cfg->clock, cfg->clock_ud);
  if (cfg->on_error)
    luaio_set_error_handler(h, cfg->on_error, cfg->on_error_ud);
  return h;
}

lua_State *luaio_state(luaio_host *h) {
  return h->L;
}

/* How long luaio_host_close lets cancelled tasks clean up (real time). */
#define CLOSE_GRACE_NS UINT64_C(1000000000)

/* Cancels the pending tasks, lets them finish, shuts the executors down
 * and closes the loop (asyncio.run's ending). */
static int close_host(lua_State *L) {
  luaio_host *h = lua_touserdata(L, 1);
  aio_loop *loop = h->loop;
  uint64_t deadline;
  int i, n;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "asyncio");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "all_tasks");
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->loopref);
  lua_call(L, 1, 1);
  n = (int)luaL_len(L, -1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    aio_task_cancel(L, lua_gettop(L), 0);
    lua_pop(L, 1);
  }
  /* let them run their cleanup, waiting for the timers and I/O it
   * awaits as asyncio.run does, but for CLOSE_GRACE_NS of real time at
   * most: a task may refuse to end, or sleep on a host clock that stands
   * still (those left are then reported as destroyed while pending) */
  deadline = uv_hrtime() + CLOSE_GRACE_NS;
  while (loop->npending > 0 || loop->rcount > 0) {
    uint64_t now = uv_hrtime();
    if (now >= deadline)
      break;
    if (aio_loop_step(L, loop,
                      loop->rcount > 0 ? 0 : (double)(deadline - now) / 1e9))
      lua_pop(L, 1); /* a fatal error while closing: nothing to do */
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->loopref);
  lua_getfield(L, -1, "shutdown_default_executor");
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "close");
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  return 0;
}

void luaio_host_close(luaio_host *h) {
  lua_State *L;
  if (h == NULL)
    return;
  L = h->L;
  lua_pushcfunction(L, close_host);
  lua_pushlightuserdata(L, h);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "luaio: error closing the host: %s\n",
            lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_current);
  luaL_unref(L, LUA_REGISTRYINDEX, h->loopref);
  aio_remote_release(h->remote);
  if (h->own_L)
    luaio_pool_close(L);
  else {
    lua_gc(L, LUA_GCCOLLECT);
    *h->box = NULL; /* the state lives on, and so may the handler */
    luaL_unref(L, LUA_REGISTRYINDEX, h->boxref);
  }
  free(h->last_error);
  free(h);
}

/* ------------------------------------------------------------------ */
/* Running code                                                        */

int luaio_dostring(luaio_host *h, const char *code, const char *name) {
  lua_State *L = h->L;
  if (luaL_loadbuffer(L, code, strlen(code), name ? name : "=luaio") !=
          LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK)
    return take_error(h);
  return LUAIO_OK;
}

int luaio_dofile(luaio_host *h, const char *path) {
  lua_State *L = h->L;
  if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK)
    return take_error(h);
  return LUAIO_OK;
}

/* A spawned chunk's failure is reported at once (nobody awaits it), with
 * the traceback of the task where it was raised, as the report of a task
 * exception nobody retrieved has it. */
static int report_spawned(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  if (f->state == AIO_FINISHED && f->has_exc)
    aio_report_exception(L, 1, "Exception in spawned task", "task");
  return 0;
}

static int spawn(lua_State *L) {
  luaio_host *h = lua_touserdata(L, 1);
  int t;
  lua_settop(L, 2); /* [h, chunk] */
  aio_coro_new(L, 0);
  aio_task_new(L, h->loop, 2, 0);
  t = lua_gettop(L);
  lua_pushcfunction(L, report_spawned);
  aio_future_add_callback(L, t);
  return 0;
}

/* LUAIO_CLOSED, with Python's message, for a loop closed from Lua. */
static int refuse_closed(luaio_host *h) {
  set_error(h, "Event loop is closed");
  return LUAIO_CLOSED;
}

int luaio_spawn(luaio_host *h, const char *code, const char *name) {
  lua_State *L = h->L;
  if (h->loop->closed) /* as luaio_post and luaio_step */
    return refuse_closed(h);
  lua_pushcfunction(L, spawn);
  lua_pushlightuserdata(L, h);
  if (luaL_loadbuffer(L, code, strlen(code), name ? name : "=luaio") !=
      LUA_OK) {
    lua_remove(L, -2);
    lua_remove(L, -2);
    return take_error(h);
  }
  if (lua_pcall(L, 2, 0, 0) != LUA_OK)
    return take_error(h);
  return LUAIO_OK;
}

/* One iteration in protected mode; wait: seconds (< 0 unbounded). */
static int step_protected(lua_State *L) {
  luaio_host *h = lua_touserdata(L, 1);
  double wait = lua_tonumber(L, 2);
  lua_settop(L, 0);
  if (aio_loop_step(L, h->loop, wait))
    return lua_error(L);
  return 0;
}


static int step_once(luaio_host *h, double wait) {
  lua_State *L = h->L;
  if (h->loop->closed)
    return refuse_closed(h);
  if (h->loop->running) { /* from a callback or a task of this loop */
    set_error(h, "This event loop is already running");
    return LUAIO_ERROR;
  }
  lua_pushcfunction(L, step_protected);
  lua_pushlightuserdata(L, h);
  lua_pushnumber(L, wait);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK)
    return take_error(h);
  return LUAIO_OK;
}

/* Work to run now: ready callbacks, or posts not drained yet. */
static int has_ready(luaio_host *h) {
  return h->loop->rcount > 0 || aio_remote_has_posts(h->remote);
}

static int has_due_timer(luaio_host *h, double *next) {
  if (!aio_timers_next(h->L, h->loop, next))
    return 0;
  return *next <= aio_loop_time(h->loop);
}

/* The first iteration of a step with nothing to do: it waits up to the
 * budget (seconds, from t0) for an event. Each post that finds the inbox
 * empty signals the loop's wake-up, which only a poll takes: a post run
 * by an iteration that did not poll leaves it signalled, and the next
 * poll returns at once for it. An iteration whose poll took a wake-up
 * and which ran nothing (no ready entry, no I/O dispatch) saw no event:
 * it is repeated for the rest of the budget. One that ran anything, or
 * whose poll ended without a wake-up (the budget, the host's own
 * handles on a shared loop), ends the wait as it is. */
static int wait_step(luaio_host *h, double budget, uint64_t t0) {
  aio_loop *loop = h->loop;
  double left = budget, next;
  for (;;) {
    unsigned long ran = loop->progress + loop->dispatches;
    unsigned long woke = loop->wakeups;
    int r = step_once(h, left);
    if (r != LUAIO_OK || loop->wakeups == woke ||
        loop->progress + loop->dispatches != ran || has_ready(h) ||
        has_due_timer(h, &next))
      return r;
    left = budget - (double)(uv_hrtime() - t0) / 1e9;
    if (left <= 0)
      return r;
  }
}

/* The iterations of a step (see luaio_step), with the loop's deadline
 * set: an iteration past it leaves the rest of its ready work for the
 * next step. */
static double step_within(luaio_host *h, uint64_t t0, double budget) {
  aio_loop *loop = h->loop;
  double next;
  int r;
  /* at least one iteration; it waits only when there is nothing to do */
  if (!has_ready(h) && !has_due_timer(h, &next))
    r = wait_step(h, budget, t0);
  else
    r = step_once(h, 0);
  if (r != LUAIO_OK)
    return r - 1;
  while ((has_ready(h) || has_due_timer(h, &next)) &&
         (double)(uv_hrtime() - t0) / 1e9 <= budget) {
    r = step_once(h, 0);
    if (r != LUAIO_OK)
      return r - 1;
  }
  if (has_ready(h))
    return 0;
  if (!aio_timers_next(h->L, loop, &next))
    return -1;
  next = (next - aio_loop_time(loop)) * 1000.0;
  return next > 0 ? next : 0;
}

/* One bounded step: at least one iteration, which may wait up to the
 * budget for an event (I/O, a post, a timer) only when nothing is ready
 * or due (wait_step); then more iterations, without waiting, while work
 * is ready or a timer is due and the budget is not spent. A positive
 * budget also bounds an iteration's run of its ready work (looked at
 * every few entries); a budget of 0 runs one whole iteration. */
double luaio_step(luaio_host *h, double budget_ms) {
  uint64_t t0 = uv_hrtime();
  double budget = budget_ms > 0 ? budget_ms / 1000.0 : 0, r;
  if (h->loop->running) /* refused: the running iteration keeps its own */
    return step_within(h, t0, budget);
  h->loop->deadline = budget > 0 ? t0 + (uint64_t)(budget * 1e9) : 0;
  r = step_within(h, t0, budget);
  h->loop->deadline = 0;
  return r;
}

int luaio_run(luaio_host *h) {
  aio_loop *loop = h->loop;
  double next;
  if (loop->closed) /* as luaio_step: closed from Lua, say so */
    return refuse_closed(h);
  if (loop->running) {
    set_error(h, "This event loop is already running");
    return LUAIO_ERROR;
  }
  while (loop->npending > 0 || has_ready(h) ||
         aio_timers_next(h->L, loop, &next)) {
    int r = step_once(h, -1);
    if (r != LUAIO_OK)
      return r;
  }
  return LUAIO_OK;
}

/* ------------------------------------------------------------------ */
/* Posting from any thread                                             */

typedef struct post_job {
  aio_post node;
  luaio_callback fn;
  void *ud;
} post_job;

static int run_post(lua_State *L) {
  post_job *job = lua_touserdata(L, 1);
  lua_settop(L, 0);
  job->fn(L, job->ud);
  return 0;
}

static void post_run(aio_loop *loop, lua_State *L, void *p) {
  post_job *job = p;
  aio_gate_leave(job->node.gate);
  if (L == NULL)
    job->fn(NULL, job->ud);
  else
    aio_run_posted(loop, L, run_post, job, "Exception in posted callback");
  free(job);
}

/* Posts through the loop's mark: `wait` makes a foreign thread wait for
 * room, else a full mark returns LUAIO_FULL. */
static int post_to(aio_remote *r, luaio_callback fn, void *ud, int wait) {
  post_job *job;
  int err;
  if (fn == NULL)
    return LUAIO_ERROR;
  job = malloc(sizeof *job);
  if (job == NULL)
    return LUAIO_NOMEM;
  job->node.fn = post_run;
  job->node.data = job;
  job->fn = fn;
  job->ud = ud;
  err = aio_remote_post_gated(r, &job->node, aio_remote_gate(r), wait);
  if (err != 0) {
    free(job);
    return err == UV_EAGAIN ? LUAIO_FULL : LUAIO_CLOSED;
  }
  return LUAIO_OK;
}

luaio_poster *luaio_poster_new(luaio_host *h) {
  luaio_poster *p = malloc(sizeof *p);
  if (p == NULL)
    return NULL;
  p->r = h->remote;
  aio_remote_retain(p->r);
  return p;
}

int luaio_poster_post(luaio_poster *p, luaio_callback fn, void *ud) {
  return post_to(p->r, fn, ud, 1);
}

int luaio_poster_trypost(luaio_poster *p, luaio_callback fn, void *ud) {
  return post_to(p->r, fn, ud, 0);
}

void luaio_poster_free(luaio_poster *p) {
  if (p) {
    aio_remote_release(p->r);
    free(p);
  }
}

int luaio_post(luaio_host *h, luaio_callback fn, void *ud) {
  return post_to(h->remote, fn, ud, 1);
}

void luaio_set_post_limit(luaio_host *h, size_t maxsize) {
  aio_remote_set_limit(h->remote,
                       maxsize > UINT_MAX ? UINT_MAX : (unsigned)maxsize);
}

void luaio_get_post_stats(luaio_host *h, luaio_post_stats *st) {
  aio_gate_stats g;
  aio_gate_get_stats(aio_remote_gate(h->remote), &g);
  st->maxsize = g.limit;
  st->queued = g.count;
  st->peak = g.peak;
  st->waited = g.waited;
}

/* ------------------------------------------------------------------ */
/* Futures completed from any thread                                   */

static int complete_protected(lua_State *L) {
  luaio_future *f = lua_touserdata(L, 1);
  int fidx, top;
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, f->futref);
  fidx = 1;
  if (((aio_future *)lua_touserdata(L, fidx))->state != AIO_PENDING) {
    if (f->push)
      f->push(NULL, f->ud);
    return 0;
  }
  switch (f->how) {
  case COMPLETE_VALUES:
    top = lua_gettop(L);
    if (f->push)
      f->push(L, f->ud);
    aio_future_set_result(L, fidx, lua_gettop(L) - top);
    break;
  case COMPLETE_ERROR:
    if (f->message)
      aio_pusherrorf(L, AIO_E_RUNTIME, "%s", f->message);
    else
      aio_pusherror(L, AIO_E_RUNTIME, 0);
    aio_future_set_exception(L, fidx);
    break;
  default:
    lua_pushnil(L);
    aio_future_cancel(L, fidx);
  }
  return 0;
}

/* A completed handle on the loop's thread (L == NULL: the loop closed). */
static void complete_run(aio_loop *loop, lua_State *L, void *p) {
  luaio_future *f = p;
  if (L == NULL) {
    if (f->push)
      f->push(NULL, f->ud);
  } else {
    aio_run_posted(loop, L, complete_protected, f,
                   "Exception completing a C future");
    luaL_unref(L, LUA_REGISTRYINDEX, f->futref);
  }
  aio_remote_release(f->r);
  free(f->message);
  free(f);
}

static int pushes_future(lua_State *L) {
  luaio_host *h = lua_touserdata(L, 1);
  luaio_future *f = lua_touserdata(L, 2);
  aio_future_new(L, h->loop);
  lua_pushvalue(L, -1);
  f->futref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

luaio_future *luaio_future_new(luaio_host *h, lua_State *L) {
  luaio_future *f = calloc(1, sizeof *f);
  if (f == NULL)
    return NULL;
  if (L == NULL)
    L = h->L;
  lua_pushcfunction(L, pushes_future);
  lua_pushlightuserdata(L, h);
  lua_pushlightuserdata(L, f);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    set_error(h, lua_tostring(L, -1));
    lua_pop(L, 1);
    free(f);
    return NULL;
  }
  f->r = h->remote;
  aio_remote_retain(f->r);
  return f;
}

/* Consumes the handle, unless out of memory. */
static int complete(luaio_future *f, int how, luaio_push_fn push, void *ud,
                    const char *message) {
  if (f == NULL)
    return LUAIO_ERROR;
  if (message != NULL && (f->message = strdup(message)) == NULL)
    return LUAIO_NOMEM;
  f->how = how;
  f->push = push;
  f->ud = ud;
  f->node.fn = complete_run;
  f->node.data = f;
  if (aio_remote_post_node(f->r, &f->node) != 0) {
    complete_run(NULL, NULL, f);
    return LUAIO_CLOSED;
  }
  return LUAIO_OK;
}

int luaio_future_resolve(luaio_future *f, luaio_push_fn push, void *ud) {
  return complete(f, COMPLETE_VALUES, push, ud, NULL);
}

static void push_string(lua_State *L, void *ud) {
  if (L)
    lua_pushstring(L, ud);
  free(ud);
}

int luaio_future_resolve_string(luaio_future *f, const char *s) {
  char *copy;
  if (f == NULL)
    return LUAIO_ERROR;
  copy = s ? strdup(s) : NULL; /* NULL: the value is nil */
  if (s != NULL && copy == NULL)
    return LUAIO_NOMEM;
  return complete(f, COMPLETE_VALUES, push_string, copy, NULL);
}

static void push_number(lua_State *L, void *ud) {
  if (L)
    lua_pushnumber(L, *(double *)ud);
  free(ud);
}

int luaio_future_resolve_number(luaio_future *f, double n) {
  double *copy;
  if (f == NULL)
    return LUAIO_ERROR;
  copy = malloc(sizeof *copy);
  if (copy == NULL)
    return LUAIO_NOMEM;
  *copy = n;
  return complete(f, COMPLETE_VALUES, push_number, copy, NULL);
}

int luaio_future_reject(luaio_future *f, const char *message) {
  return complete(f, COMPLETE_ERROR, NULL, NULL, message);
}

int luaio_future_cancel(luaio_future *f) {
  return complete(f, COMPLETE_CANCEL, NULL, NULL, NULL);
}
