/*
 * threads.c - the part of a loop other threads may touch, and the Lua
 * side of it: loop references, call_soon_threadsafe from other threads,
 * asyncio.threadsafe(fn), loop threads, and the creation of the Lua
 * states other threads run.
 *
 * The remote part of a loop is a queue of posted C callbacks and the
 * wake-up that interrupts a blocking poll.
 *
 * uv_async_send coalesces wake-ups, so posts are kept in our own queue:
 * none is merged or lost. The loop drains the whole queue at the start of
 * each iteration, after each poll, and before every push to its ready
 * queue (aio_ready_push), so that a post that happened before a call_soon
 * runs before it: a post is visible as soon as it is linked in `inbox`,
 * and the link happens-before anything the poster does afterwards.
 *
 * Posting takes no lock. `inbox` is a stack of posts, newest first: a
 * poster links its post with one compare-and-swap, and the loop takes
 * the whole stack with one exchange and reverses it, so that each
 * poster's posts run in the order they were made. With a mutex, a poster
 * and a loop on two cores met in the lock thousands of times per 200,000
 * posts, each a futex sleep and wake-up (w6 ran at a third of its speed
 * in such runs, see bench/README.md). Only the post that finds
 * the inbox empty wakes the loop: a post linked after it is taken with
 * it. That wake-up happens under the mutex, while `loop` is set: the
 * loop's wake-up handle is closed only after aio_remote_close cleared
 * `loop` and sealed the inbox (CLOSED), so a poster never wakes a closed
 * handle and no post is linked after the close took the inbox. Once
 * linked, a post may run before its poster returns, and release the only
 * reference to the remote the poster had (a channel's waiter holds one):
 * the post that wakes the loop holds a reference of its own (push).
 *
 * The struct is reference counted: the loop holds one reference, and every
 * loop reference in another thread holds one, so posting to a loop that
 * has closed (or been freed) fails cleanly instead of touching freed
 * memory. The mutex guards `loop`, the marks (aio_gate) and the loop
 * thread's fields; Lua is never called with it held.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "internal.h"

typedef aio_post post;

/* The inbox apart from the rest: posters write it, and the loop's reads
 * of it should not pull the mutex and the marks along (fields CACHE_LINE
 * bytes apart are on different cache lines). */
#define CACHE_LINE 64

/* The inbox of a closed loop: a post finding it fails. */
static post closed_inbox;
#define CLOSED (&closed_inbox)

struct aio_remote {
  _Atomic(post *) inbox; /* posts not taken yet, newest first, or CLOSED */
  post *backlog;       /* taken by the loop, in order, not yet run (loop
                          thread only) */
  char apart[CACHE_LINE];
  uv_mutex_t mu;
  atomic_int refs;
  aio_loop *loop;      /* NULL once the loop closed */
  uv_async_t *wakeup;  /* valid while loop != NULL */
  uv_thread_t tid;     /* the loop thread running it (start_loop_thread) */
  uv_thread_t owner;   /* the thread that made the loop: it never waits */
  aio_gate gate;       /* the loop-wide mark (limit 0: none) */
  aio_gate *gates;     /* every gate on this remote, the loop's included */
  atomic_int owner_blocked; /* the owner thread is in a blocking wait */
  struct aio_remote *owned_next; /* the owner thread's open loops */
  unsigned char has_thread, joined;
};

/* The remotes of the open loops this thread made (owner only). */
static _Thread_local aio_remote *tl_owned;

aio_remote *aio_remote_new(lua_State *L, aio_loop *loop) {
  aio_remote *r = calloc(1, sizeof *r);
  if (r == NULL || uv_mutex_init(&r->mu) != 0) {
    free(r);
    luaL_error(L, "not enough memory");
  }
  if (aio_gate_init(r, &r->gate, 0) != 0) {
    uv_mutex_destroy(&r->mu);
    free(r);
    luaL_error(L, "not enough memory");
  }
  atomic_init(&r->refs, 1);
  atomic_init(&r->inbox, NULL);
  r->loop = loop;
  r->wakeup = loop->wakeup;
  r->owner = uv_thread_self();
  atomic_init(&r->owner_blocked, 0);
  r->owned_next = tl_owned;
  tl_owned = r;
  return r;
}

/* Takes r off its owner's list (called on the owner thread). */
static void disown(aio_remote *r) {
  aio_remote **pp;
  for (pp = &tl_owned; *pp; pp = &(*pp)->owned_next)
    if (*pp == r) {
      *pp = r->owned_next;
      return;
    }
}

void aio_remote_retain(aio_remote *r) {
  atomic_fetch_add(&r->refs, 1);
}

void aio_remote_release(aio_remote *r) {
  if (atomic_fetch_sub(&r->refs, 1) == 1) {
    if (r->has_thread && !r->joined)
      pthread_detach(r->tid); /* nobody will join it: let it go */
    aio_gate_destroy(&r->gate);
    uv_mutex_destroy(&r->mu);
    free(r);
  }
}

int aio_remote_closed(aio_remote *r) {
  int closed;
  uv_mutex_lock(&r->mu);
  closed = r->loop == NULL;
  uv_mutex_unlock(&r->mu);
  return closed;
}

/* ------------------------------------------------------------------ */
/* High-water marks                                                    */

int aio_gate_init(aio_remote *r, aio_gate *g, unsigned limit) {
  int err;
  memset(g, 0, sizeof *g);
  err = uv_cond_init(&g->room);
  if (err != 0)
    return err;
  g->r = r;
  g->limit = limit;
  uv_mutex_lock(&r->mu);
  g->next = r->gates;
  r->gates = g;
  uv_mutex_unlock(&r->mu);
  return 0;
}

void aio_gate_destroy(aio_gate *g) {
  aio_remote *r = g->r;
  aio_gate **pp;
  if (r == NULL)
    return;
  uv_mutex_lock(&r->mu);
  for (pp = &r->gates; *pp; pp = &(*pp)->next)
    if (*pp == g) {
      *pp = g->next;
      break;
    }
  uv_mutex_unlock(&r->mu);
  uv_cond_destroy(&g->room);
  g->r = NULL;
}

/* Takes a place in g for a post (mu held). When g is full: without
 * `wait` returns UV_EAGAIN; with it, a foreign thread waits for room and
 * the loop's own thread goes beyond the mark. Returns 0 (counted),
 * UV_EAGAIN (full, no wait) or UV_ECANCELED (the loop closed). */
static int gate_enter(aio_remote *r, aio_gate *g, int wait) {
  if (g->limit != 0 && g->count >= g->limit && r->loop != NULL) {
    uv_thread_t self = uv_thread_self();
    if (!wait) {
      g->waited++;
      return UV_EAGAIN;
    }
    if (!uv_thread_equal(&self, &r->owner)) { /* the loop's: beyond */
      g->waited++;
      g->waiters++;
      while (g->limit != 0 && g->count >= g->limit && r->loop != NULL &&
             atomic_load(&r->owner_blocked) == 0)
        uv_cond_wait(&g->room, &r->mu);
      g->waiters--;
    }
  }
  if (r->loop == NULL)
    return UV_ECANCELED;
  if (++g->count > g->peak)
    g->peak = g->count;
  return 0;
}

void aio_gate_leave(aio_gate *g) {
  if (g == NULL)
    return;
  uv_mutex_lock(&g->r->mu);
  g->count--;
  /* posters are let through in batches, once the queue is down to half
   * the mark: one wake-up per call would cost a thread switch each */
  if (g->waiters && g->count <= g->limit / 2)
    uv_cond_broadcast(&g->room);
  uv_mutex_unlock(&g->r->mu);
}

void aio_gate_get_stats(aio_gate *g, aio_gate_stats *st) {
  uv_mutex_lock(&g->r->mu);
  st->limit = g->limit;
  st->count = g->count;
  st->peak = g->peak;
  st->waited = g->waited;
  uv_mutex_unlock(&g->r->mu);
}

aio_gate *aio_remote_gate(aio_remote *r) {
  return &r->gate;
}

void aio_remote_set_limit(aio_remote *r, unsigned limit) {
  uv_mutex_lock(&r->mu);
  r->gate.limit = limit;
  uv_cond_broadcast(&r->gate.room); /* a higher mark makes room */
  uv_mutex_unlock(&r->mu);
}

/* Wakes every waiting poster: the loop closed, or its thread blocks
 * (mu held). */
static void wake_gates(aio_remote *r) {
  aio_gate *g;
  for (g = r->gates; g; g = g->next)
    uv_cond_broadcast(&g->room);
}

/* While a thread blocks (cf:result, Channel put/get, joining workers or
 * a loop thread), the loops it made cannot run their queues: posters
 * waiting at their marks would wait for it while it waits for them. So
 * the marks of its loops are lifted (posts go beyond them, counted) until
 * aio_blocking_end. Takes no lock of the caller's: call it with none. */
void aio_blocking_begin(void) {
  aio_remote *r;
  for (r = tl_owned; r; r = r->owned_next) {
    atomic_fetch_add(&r->owner_blocked, 1);
    uv_mutex_lock(&r->mu);
    wake_gates(r);
    uv_mutex_unlock(&r->mu);
  }
}

void aio_blocking_end(void) {
  aio_remote *r;
  for (r = tl_owned; r; r = r->owned_next)
    atomic_fetch_sub(&r->owner_blocked, 1);
}

/* ------------------------------------------------------------------ */
/* The queue of posts                                                  */

/* Links p into the inbox and, when it was empty, wakes the loop; fails
 * with UV_ECANCELED once the loop closed. p is the loop's once linked:
 * it may run, and release the only reference to r a poster had (a
 * channel's or a concurrent future's waiter holds it), before the wake-up.
 * So the post that may have to wake the loop holds a reference of its
 * own, taken before the link. */
static int push(aio_remote *r, post *p) {
  post *head = atomic_load_explicit(&r->inbox, memory_order_relaxed);
  int held = 0;
  do {
    if (head == CLOSED) {
      if (held)
        aio_remote_release(r);
      return UV_ECANCELED;
    }
    if (head == NULL && !held) {
      aio_remote_retain(r);
      held = 1;
    }
    p->next = head;
  } while (!atomic_compare_exchange_weak_explicit(
      &r->inbox, &head, p, memory_order_release, memory_order_relaxed));
  if (head == NULL) {
    uv_mutex_lock(&r->mu);
    if (r->loop != NULL) /* else closing: it takes the inbox itself */
      uv_async_send(r->wakeup);
    uv_mutex_unlock(&r->mu);
  }
  if (held)
    aio_remote_release(r); /* the last one frees r: fine on any thread */
  return 0;
}

/* Queues p and wakes the loop; through gate g (NULL: none) as
 * aio_remote_post_gated says. On failure nothing stays counted. */
static int enqueue(aio_remote *r, post *p, aio_gate *g, int wait,
                   int batch) {
  int err;
  p->next = NULL;
  p->gate = NULL;
  p->batch = (unsigned char)batch;
  if (g != NULL && g->limit != 0) {
    uv_mutex_lock(&r->mu);
    err = gate_enter(r, g, wait);
    uv_mutex_unlock(&r->mu);
    if (err != 0)
      return err;
    p->gate = g;
  }
  err = push(r, p);
  if (err != 0 && p->gate != NULL) { /* closed after the gate let it in */
    aio_gate_leave(p->gate);
    p->gate = NULL;
  }
  return err;
}

/* A post of aio_remote_post is a block of blocks.c: made in one thread,
 * freed in the loop's. */
_Static_assert(sizeof(post) <= AIO_BLOCK_SIZE, "a post fits in a block");

int aio_remote_post(aio_remote *r, aio_cfunc fn, void *data) {
  post *p = aio_block_alloc();
  int err;
  if (p == NULL)
    return UV_ENOMEM;
  p->fn = fn;
  p->data = data;
  p->owned = 1;
  err = enqueue(r, p, NULL, 0, 0);
  if (err != 0)
    aio_block_free(p);
  return err;
}

int aio_remote_post_node(aio_remote *r, aio_post *p) {
  p->owned = 0;
  return enqueue(r, p, NULL, 0, 0);
}

int aio_remote_post_gated(aio_remote *r, aio_post *p, aio_gate *g,
                          int wait) {
  p->owned = 0;
  return enqueue(r, p, g, wait, 0);
}

int aio_remote_post_batched(aio_remote *r, aio_post *p, aio_gate *g,
                            int wait) {
  p->owned = 0;
  return enqueue(r, p, g, wait, 1);
}

/* Takes the whole queue, in the order posted: the backlog, then the
 * inbox reversed, leaving `rest` (NULL, or CLOSED) in the inbox (loop
 * thread only). */
static post *take_all(aio_remote *r, post *rest) {
  post *list = atomic_exchange_explicit(&r->inbox, rest,
                                        memory_order_acquire);
  post *fifo = NULL, **end;
  if (list == CLOSED)
    list = NULL;
  while (list != NULL) {
    post *next = list->next;
    list->next = fifo;
    fifo = list;
    list = next;
  }
  for (end = &r->backlog; *end != NULL; end = &(*end)->next)
    ;
  *end = fifo;
  list = r->backlog;
  r->backlog = NULL;
  return list;
}

int aio_remote_has_posts(aio_remote *r) {
  post *head = atomic_load_explicit(&r->inbox, memory_order_relaxed);
  return r->backlog != NULL || (head != NULL && head != CLOSED);
}

void aio_remote_drain(lua_State *L, aio_loop *loop) {
  post *list, *p, *next;
  unsigned n = 0;
  if (loop->remote == NULL || !aio_remote_has_posts(loop->remote))
    return;
  list = take_all(loop->remote, NULL);
  for (p = list; p; p = p->next)
    n++;
  if (!aio_ready_fit(loop, n)) { /* the posts wait, first in line */
    loop->remote->backlog = list;
    luaL_error(L, "not enough memory");
  }
  for (p = list; p; p = next) {
    next = p->next;
    if (p->batch) { /* the run of batched posts of this fn: one entry */
      post *last = p;
      while (next != NULL && next->batch && next->fn == p->fn) {
        last = next;
        next = next->next;
      }
      last->next = NULL;
    }
    aio_ready_push_raw(L, loop, AIO_R_CFUNC, p->data, 0, p->fn, 0);
    if (p->owned)
      aio_block_free(p);
  }
}

void aio_remote_close(aio_remote *r) {
  post *p, *next;
  aio_loop *loop;
  uv_mutex_lock(&r->mu);
  loop = r->loop;
  r->loop = NULL;
  wake_gates(r);
  uv_mutex_unlock(&r->mu);
  disown(r);
  for (p = take_all(r, CLOSED); p; p = next) {
    int owned = p->owned;
    next = p->next;
    p->next = NULL; /* a batched post is disposed of alone */
    p->fn(loop, NULL, p->data);
    if (owned)
      aio_block_free(p);
  }
}

/* A posted call failed with the error on top: a fatal one leaves the
 * run with it (left on top), any other goes to the exception handler as
 * `what` (popped). */
static void posted_failed(aio_loop *loop, lua_State *L, const char *what) {
  if (aio_isfatal(L, -1))
    loop->propagate = 1; /* leaves the run with it, left on top */
  else {
    aio_report_error(L, loop, what, -1, NULL, 0);
    lua_pop(L, 1);
  }
}

void aio_run_posted(aio_loop *loop, lua_State *L, lua_CFunction body,
                    void *data, const char *what) {
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, data);
  if (aio_pcall(L, 1) != LUA_OK)
    posted_failed(loop, L, what);
}

/* ------------------------------------------------------------------ */
/* Blocking waits of plain threads                                     */

uint64_t aio_deadline_arg(lua_State *L, int idx) {
  double t;
  if (lua_isnoneornil(L, idx))
    return 0;
  t = luaL_checknumber(L, idx);
  if (!(t > 0))
    t = 0; /* negative or NaN */
  if (t > 1e9)
    return 0; /* over thirty years: no deadline */
  return uv_hrtime() + (uint64_t)(t * 1e9) + 1;
}

int aio_cond_wait_until(uv_cond_t *cond, uv_mutex_t *mu, uint64_t deadline) {
  uint64_t now;
  if (deadline == 0) {
    uv_cond_wait(cond, mu);
    return 1;
  }
  now = uv_hrtime();
  if (now >= deadline)
    return 0;
  (void)uv_cond_timedwait(cond, mu, deadline - now);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Lua states for other threads                                        */

/* Set by luaio_openlibs when the library is linked into a program: new
 * states then get the embedded Lua sources too. */
typedef void (*state_hook_fn)(lua_State *L);
static _Atomic(state_hook_fn) state_hook;

void aio_set_state_hook(void (*hook)(lua_State *L)) {
  if (atomic_load(&state_hook) != hook)
    atomic_store(&state_hook, hook);
}

/* When the core is a loadable module, threads run its code: it must stay
 * mapped even if the state that loaded it closes first. */
static void pin_module(void) {
  static atomic_int pinned;
  Dl_info info;
  if (atomic_exchange(&pinned, 1))
    return;
  if (dladdr((void *)luaopen_asyncio_core, &info) && info.dli_fname) {
    size_t n = strlen(info.dli_fname);
    if (n > 3 && strcmp(info.dli_fname + n - 3, ".so") == 0)
      (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
  }
}

/* A malloc'd copy of s (NULL stays NULL); *failed is set when out of
 * memory. */
static char *copy_string(const char *s, int *failed) {
  char *c;
  if (s == NULL)
    return NULL;
  c = malloc(strlen(s) + 1);
  if (c == NULL)
    *failed = 1;
  else
    strcpy(c, s);
  return c;
}

aio_state_cfg *aio_state_cfg_new(lua_State *L) {
  aio_state_cfg *cfg;
  const char *path = NULL, *cpath = NULL;
  int failed = 0, top = lua_gettop(L);
  /* the Lua look-ups (which may raise) before any C allocation */
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "path");
    lua_getfield(L, -2, "cpath");
    path = lua_tostring(L, -2);
    cpath = lua_tostring(L, -1);
  }
  cfg = calloc(1, sizeof *cfg);
  if (cfg != NULL) {
    cfg->path = copy_string(path, &failed);
    cfg->cpath = copy_string(cpath, &failed);
  }
  if (cfg == NULL || failed) {
    aio_state_cfg_free(cfg);
    luaL_error(L, "not enough memory");
  }
  lua_settop(L, top);
  pin_module();
  return cfg;
}

void aio_state_cfg_free(aio_state_cfg *cfg) {
  if (cfg) {
    free(cfg->path);
    free(cfg->cpath);
    free(cfg);
  }
}

static int setup_state(lua_State *L) {
  aio_state_cfg *cfg = lua_touserdata(L, 1);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  if (cfg->path) {
    lua_pushstring(L, cfg->path);
    lua_setfield(L, -2, "path");
  }
  if (cfg->cpath) {
    lua_pushstring(L, cfg->cpath);
    lua_setfield(L, -2, "cpath");
  }
  lua_pop(L, 1);
  {
    state_hook_fn hook = atomic_load(&state_hook);
    if (hook)
      hook(L);
  }
  return 0;
}

lua_State *aio_state_new(aio_state_cfg *cfg) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return NULL;
  lua_pushcfunction(L, setup_state);
  lua_pushlightuserdata(L, cfg);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "asyncio: cannot set up a thread's Lua state: %s\n",
            lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

/* ------------------------------------------------------------------ */
/* Loop references                                                     */

#define AIO_LOOPREF_MT "asyncio.LoopRef"
#define AIO_TSHANDLE_MT "asyncio.ThreadsafeHandle"

typedef struct loopref {
  aio_remote *r;
} loopref;

static void *loopref_test(lua_State *L, int idx) {
  loopref *ref = luaL_testudata(L, idx, AIO_LOOPREF_MT);
  aio_loop *loop;
  if (ref)
    return ref->r;
  loop = aio_test_loop(L, idx); /* a loop travels as a reference */
  return loop ? loop->remote : NULL;
}

static void loopref_retain(void *o) {
  aio_remote_retain(o);
}

static void loopref_release(void *o) {
  aio_remote_release(o);
}

static void loopref_push(lua_State *L, void *o) {
  loopref *ref = lua_newuserdatauv(L, sizeof *ref, 0);
  ref->r = NULL;
  luaL_setmetatable(L, AIO_LOOPREF_MT);
  aio_remote_retain(o);
  ref->r = o;
}

static const aio_shared_type loopref_type = {
    "asyncio.LoopRef", loopref_test, loopref_retain, loopref_release,
    loopref_push};

/* The remote of a loop or loop reference at idx (raising otherwise). */
aio_remote *aio_check_remote(lua_State *L, int idx) {
  aio_remote *r = loopref_test(L, idx);
  if (r == NULL)
    luaL_typeerror(L, idx, "asyncio.EventLoop or asyncio.LoopRef");
  return r;
}

/* A call posted by ref:call_soon_threadsafe; the handle returned to the
 * caller (a userdata pointing at it) shares it. */
typedef struct call_job {
  aio_post node;
  aio_msg *msg;    /* fn, args...; freed once run */
  atomic_int refs; /* the post and the handle */
  atomic_int cancelled;
} call_job;

static void call_job_release(call_job *job) {
  if (job && atomic_fetch_sub(&job->refs, 1) == 1) {
    aio_msg_free(job->msg);
    free(job);
  }
}

static int run_call_job(lua_State *L) {
  call_job *job = lua_touserdata(L, 1);
  int n;
  lua_settop(L, 0);
  n = aio_msg_unpack(L, job->msg);
  lua_call(L, n - 1, 0);
  return 0;
}

static void call_job_run(aio_loop *loop, lua_State *L, void *p) {
  call_job *job = p;
  aio_gate_leave(job->node.gate);
  if (L != NULL && !atomic_load(&job->cancelled))
    aio_run_posted(loop, L, run_call_job, job,
                   "Exception in callback (threadsafe call)");
  aio_msg_free(job->msg);
  job->msg = NULL;
  call_job_release(job);
}

/* Posts fn(args) (n values from stack index first) to r and pushes its
 * handle; raises (closed loop: RuntimeError; SendError). Waits while the
 * loop's post limit is reached (not in the loop's own thread). */
static void post_call(lua_State *L, aio_remote *r, int first, int n) {
  call_job *job, **hud = lua_newuserdatauv(L, sizeof *hud, 0);
  aio_msg *msg;
  *hud = NULL;
  luaL_setmetatable(L, AIO_TSHANDLE_MT);
  msg = aio_msg_pack(L, first, n, 1);
  job = malloc(sizeof *job);
  if (job == NULL) {
    aio_msg_free(msg);
    luaL_error(L, "not enough memory");
  }
  job->node.fn = call_job_run;
  job->node.data = job;
  job->msg = msg;
  atomic_init(&job->refs, 2);
  atomic_init(&job->cancelled, 0);
  *hud = job;
  if (aio_remote_post_gated(r, &job->node, aio_remote_gate(r), 1) != 0) {
    call_job_run(NULL, NULL, job);
    aio_raisef(L, AIO_E_RUNTIME, "Event loop is closed");
  }
}

/* ref:call_soon_threadsafe(fn, ...) -> handle */
static int l_loopref_call_soon_threadsafe(lua_State *L) {
  aio_remote *r = aio_check_remote(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  post_call(L, r, 2, lua_gettop(L) - 1);
  return 1;
}

static void stop_job(aio_loop *loop, lua_State *L, void *p) {
  (void)p;
  if (L != NULL)
    loop->stopping = 1;
}

static int l_loopref_stop(lua_State *L) {
  aio_remote *r = aio_check_remote(L, 1);
  if (aio_remote_post(r, stop_job, NULL) != 0)
    return aio_raisef(L, AIO_E_RUNTIME, "Event loop is closed");
  return 0;
}

static int l_loopref_is_closed(lua_State *L) {
  lua_pushboolean(L, aio_remote_closed(aio_check_remote(L, 1)));
  return 1;
}

/* ref:join(): waits until the loop thread ended (after stop()). */
static int l_loopref_join(lua_State *L) {
  aio_remote *r = aio_check_remote(L, 1);
  uv_thread_t self = uv_thread_self();
  int can;
  uv_mutex_lock(&r->mu);
  can = r->has_thread && !r->joined && !uv_thread_equal(&self, &r->tid);
  if (can)
    r->joined = 1;
  uv_mutex_unlock(&r->mu);
  if (!can)
    return aio_raisef(L, AIO_E_RUNTIME, "cannot join this loop: not a loop "
                      "thread, already joined, or its own thread");
  aio_blocking_begin();
  uv_thread_join(&r->tid);
  aio_blocking_end();
  return 0;
}

static int l_loopref__gc(lua_State *L) {
  loopref *ref = luaL_checkudata(L, 1, AIO_LOOPREF_MT);
  if (ref->r) {
    aio_remote_release(ref->r);
    ref->r = NULL;
  }
  return 0;
}

static int l_loopref__tostring(lua_State *L) {
  aio_remote *r = aio_check_remote(L, 1);
  lua_pushfstring(L, "<LoopRef %p%s>", (void *)r,
                  aio_remote_closed(r) ? " closed" : "");
  return 1;
}

static call_job *check_tshandle(lua_State *L) {
  call_job *job = *(call_job **)luaL_checkudata(L, 1, AIO_TSHANDLE_MT);
  luaL_argcheck(L, job != NULL, 1, "released handle");
  return job;
}

static int l_tshandle_cancel(lua_State *L) {
  atomic_store(&check_tshandle(L)->cancelled, 1);
  return 0;
}

static int l_tshandle_cancelled(lua_State *L) {
  lua_pushboolean(L, atomic_load(&check_tshandle(L)->cancelled));
  return 1;
}

static int l_tshandle__gc(lua_State *L) {
  call_job **h = luaL_checkudata(L, 1, AIO_TSHANDLE_MT);
  call_job_release(*h);
  *h = NULL;
  return 0;
}

/* ------------------------------------------------------------------ */
/* asyncio.threadsafe(fn)                                              */

#define AIO_TSFN_MT "asyncio.ThreadsafeFunction"

typedef struct tsfn {
  atomic_int refs;
  aio_remote *r;
  int fnref; /* in the loop's env THREADSAFE table: the function goes
                with the loop, also when the loop closed before this */
  aio_gate *gate; /* &mark with a maxsize, else NULL */
  aio_gate mark;
} tsfn;

typedef struct tsfn_job {
  aio_post node; /* the queue node; the job itself lives in the block of
                    its message (one allocation per call) */
  tsfn *fn;
  aio_msg *args;
} tsfn_job;

/* Pushes the loop's table of thread-safe functions (made on demand). */
static void push_tsfn_table(lua_State *L, aio_loop *loop) {
  aio_push_env_table(L, loop, AIO_ENV_THREADSAFE);
}

static void tsfn_unref_job(aio_loop *loop, lua_State *L, void *p) {
  if (L != NULL) {
    push_tsfn_table(L, loop);
    luaL_unref(L, -1, (int)(intptr_t)p);
    lua_pop(L, 1);
  }
}

static void tsfn_retain(void *o) {
  atomic_fetch_add(&((tsfn *)o)->refs, 1);
}

/* Drops n references at once. */
static void tsfn_release_n(tsfn *f, int n) {
  if (atomic_fetch_sub(&f->refs, n) == n) {
    /* the function lives in the loop's state: release it there */
    aio_remote_post(f->r, tsfn_unref_job, (void *)(intptr_t)f->fnref);
    if (f->gate)
      aio_gate_destroy(f->gate);
    aio_remote_release(f->r);
    free(f);
  }
}

static void tsfn_release(void *o) {
  tsfn_release_n(o, 1);
}

/* The userdata of a thread-safe function: a reference to the shared
 * part, after a tag that tells it from other userdata without a look-up
 * of its metatable by name (every call checks it). Each call's job holds
 * a reference; the userdata takes them TSFN_CREDIT at a time, so that a
 * poster does not write the shared count on every call (the loop, which
 * writes it when it releases them, would take its cache line back each
 * time). */
static const char tsfn_tag = 0;

#define TSFN_CREDIT 64

typedef struct tsfn_ud {
  const char *tag; /* &tsfn_tag */
  tsfn *f;         /* NULL once released */
  int credit;      /* references held for calls to come */
} tsfn_ud;

static tsfn_ud *test_tsfn_ud(lua_State *L, int idx) {
  tsfn_ud *u = lua_touserdata(L, idx);
  if (u != NULL && lua_rawlen(L, idx) == sizeof *u && u->tag == &tsfn_tag)
    return u;
  return luaL_testudata(L, idx, AIO_TSFN_MT);
}

static tsfn_ud *check_tsfn_ud(lua_State *L, int idx) {
  tsfn_ud *u = test_tsfn_ud(L, idx);
  if (u == NULL)
    luaL_typeerror(L, idx, AIO_TSFN_MT);
  return u;
}

/* Pushes a new userdata (raises before it refers to anything). */
static tsfn_ud *new_tsfn_ud(lua_State *L) {
  tsfn_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->tag = &tsfn_tag;
  u->f = NULL;
  u->credit = 0;
  luaL_setmetatable(L, AIO_TSFN_MT);
  return u;
}

static void *tsfn_test(lua_State *L, int idx) {
  tsfn_ud *u = test_tsfn_ud(L, idx);
  return u ? u->f : NULL;
}

static void tsfn_push(lua_State *L, void *o) {
  tsfn_ud *u = new_tsfn_ud(L);
  tsfn_retain(o);
  u->f = o;
}

static const aio_shared_type tsfn_type = {"asyncio.ThreadsafeFunction",
                                          tsfn_test, tsfn_retain,
                                          tsfn_release, tsfn_push};

/* Releases a job (and what it holds) once its call is on the stack; the
 * job lives in the allocation of its message (aio_msg_pack_room). */
static void tsfn_job_free(tsfn_job *job) {
  tsfn *f = job->fn;
  aio_msg_free(job->args);
  tsfn_release(f);
}

/* The jobs of one ready entry: consecutive calls posted with
 * aio_remote_post_batched, linked by node.next. The references of the
 * jobs already called are released together, per run of jobs of one
 * function (held, nheld), when the chain ends or another function's job
 * comes. */
typedef struct tsfn_chain {
  tsfn_job *next;    /* the next job to call, or NULL */
  tsfn_job *taking;  /* the job being unpacked (freed if that raises) */
  tsfn *held;        /* the function of the references held, or NULL */
  int nheld;
} tsfn_chain;

static void chain_release_held(tsfn_chain *c) {
  if (c->held != NULL)
    tsfn_release_n(c->held, c->nheld);
  c->held = NULL;
  c->nheld = 0;
}

/* Frees a job whose call is on the stack; its reference joins the held
 * ones. */
static void chain_job_done(tsfn_chain *c, tsfn_job *job) {
  tsfn *f = job->fn;
  aio_msg_free(job->args);
  if (f != c->held)
    chain_release_held(c);
  c->held = f;
  c->nheld++;
}

/* [chain, functions table]: calls the chain's jobs in order, in one
 * protected call: a call that raises leaves the rest of the chain for
 * the next protected call (see tsfn_job_run). */
static int tsfn_chain_body(lua_State *L) {
  tsfn_chain *c = lua_touserdata(L, 1);
  while (c->next != NULL) {
    tsfn_job *job = c->next;
    int n;
    c->next = job->node.next ? job->node.next->data : NULL;
    c->taking = job;
    aio_gate_leave(job->node.gate);
    lua_rawgeti(L, 2, job->fn->fnref);
    n = aio_msg_unpack(L, job->args); /* raises only for memory */
    c->taking = NULL;
    chain_job_done(c, job);
    lua_call(L, n, 0);
  }
  return 0;
}

/* Calls each job of the chain starting at p with its arguments, in the
 * order posted, all in one protected call (one per error): the hot path
 * of w6 costs one lua_call per call. An error goes to the exception
 * handler and the chain goes on; a fatal one (KeyboardInterrupt,
 * SystemExit) leaves the run with it, and the calls after it go back to
 * the ready queue (at its end: after what was queued meanwhile). */
static void tsfn_job_run(aio_loop *loop, lua_State *L, void *p) {
  tsfn_chain c;
  c.next = p;
  c.taking = NULL;
  c.held = NULL;
  c.nheld = 0;
  if (L == NULL) { /* the loop closed: dispose of them */
    while (c.next != NULL) {
      tsfn_job *job = c.next;
      c.next = job->node.next ? job->node.next->data : NULL;
      aio_gate_leave(job->node.gate);
      tsfn_job_free(job);
    }
    return;
  }
  while (c.next != NULL) {
    int base = lua_gettop(L);
    lua_pushcfunction(L, aio_msgh);
    lua_pushcfunction(L, tsfn_chain_body);
    lua_pushlightuserdata(L, &c);
    push_tsfn_table(L, loop);
    if (lua_pcall(L, 2, 0, base + 1) != LUA_OK) {
      if (c.taking != NULL) {
        tsfn_job_free(c.taking);
        c.taking = NULL;
      }
      chain_release_held(&c);
      posted_failed(loop, L, "Exception in threadsafe function");
      if (loop->propagate) {
        if (c.next != NULL && aio_ready_fit(loop, 1))
          aio_ready_push_raw(L, loop, AIO_R_CFUNC, c.next, 0, tsfn_job_run,
                             0);
        else if (c.next != NULL) /* no memory for the entry: dropped */
          tsfn_job_run(loop, NULL, c.next);
        return; /* the error stays on top */
      }
    }
    lua_settop(L, base);
  }
  chain_release_held(&c);
}

/* Calling the function from any thread schedules fn(args) on its loop;
 * with a maxsize, another thread waits while maxsize calls are queued. */
static int l_tsfn__call(lua_State *L) {
  tsfn_ud *u = check_tsfn_ud(L, 1);
  tsfn *f = u->f;
  void *room;
  tsfn_job *job;
  aio_msg *args = aio_msg_pack_room(L, 2, lua_gettop(L) - 1, 0, sizeof *job,
                                    &room);
  job = room;
  job->fn = f;
  job->args = args;
  job->node.fn = tsfn_job_run;
  job->node.data = job;
  if (u->credit == 0) {
    atomic_fetch_add(&f->refs, TSFN_CREDIT);
    u->credit = TSFN_CREDIT;
  }
  u->credit--; /* the job's reference */
  if (aio_remote_post_batched(f->r, &job->node, f->gate, 1) != 0) {
    tsfn_job_run(NULL, NULL, job);
    return aio_raisef(L, AIO_E_RUNTIME, "Event loop is closed");
  }
  return 0;
}

static int l_tsfn__gc(lua_State *L) {
  tsfn_ud *u = check_tsfn_ud(L, 1);
  if (u->f)
    tsfn_release_n(u->f, 1 + u->credit);
  u->f = NULL;
  u->credit = 0;
  return 0;
}

/* tf:stats() -> {maxsize =, qsize =, peak =, waited =} */
static int l_tsfn_stats(lua_State *L) {
  tsfn *f = check_tsfn_ud(L, 1)->f;
  aio_gate_stats st = {0, 0, 0, 0};
  if (f->gate)
    aio_gate_get_stats(f->gate, &st);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, st.limit);
  lua_setfield(L, -2, "maxsize");
  lua_pushinteger(L, st.count);
  lua_setfield(L, -2, "qsize");
  lua_pushinteger(L, st.peak);
  lua_setfield(L, -2, "peak");
  lua_pushinteger(L, (lua_Integer)st.waited);
  lua_setfield(L, -2, "waited");
  return 1;
}

/* The maxsize of threadsafe's options at idx (0: unbounded); raises
 * "bad argument" for options that are not a table, hold another key, or
 * a maxsize that is not an integer. */
static unsigned tsfn_maxsize(lua_State *L, int idx) {
  static const char *const options[] = {"maxsize", NULL};
  lua_Integer n;
  int isnum;
  if (!aio_check_options(L, idx, options))
    return 0;
  lua_getfield(L, idx, "maxsize");
  n = lua_tointegerx(L, -1, &isnum);
  if (!isnum && !lua_isnil(L, -1))
    luaL_argerror(L, idx, "maxsize must be an integer");
  lua_pop(L, 1);
  if (n > (lua_Integer)UINT_MAX)
    luaL_argerror(L, idx, "maxsize is too large");
  return n > 0 ? (unsigned)n : 0; /* 0 or negative: unbounded */
}

/* threadsafe(fn [, {maxsize =}]) -> a shareable callable bound to the
 * current loop */
static int l_threadsafe(lua_State *L) {
  aio_loop *loop;
  tsfn *f;
  tsfn_ud *ud;
  int fnref;
  unsigned maxsize;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  maxsize = tsfn_maxsize(L, 2);
  loop = aio_get_event_loop(L);
  aio_check_open(L, loop);
  ud = new_tsfn_ud(L); /* first: it may raise */
  push_tsfn_table(L, loop);
  lua_pushvalue(L, 1);
  fnref = luaL_ref(L, -2);
  f = malloc(sizeof *f);
  if (f != NULL) {
    f->gate = NULL;
    if (maxsize > 0 && aio_gate_init(loop->remote, &f->mark, maxsize) == 0)
      f->gate = &f->mark;
    else if (maxsize > 0) {
      free(f);
      f = NULL;
    }
  }
  if (f == NULL) {
    luaL_unref(L, -1, fnref);
    return luaL_error(L, "not enough memory");
  }
  lua_pop(L, 1); /* the table: the userdata is on top */
  atomic_init(&f->refs, 1);
  f->r = loop->remote;
  aio_remote_retain(f->r);
  f->fnref = fnref;
  ud->f = f;
  return 1;
}

/* ------------------------------------------------------------------ */
/* Loop threads                                                        */

/* On the starter's stack: valid until `ready` is posted. */
typedef struct loop_start {
  aio_state_cfg *cfg;
  aio_remote *r; /* out: the new loop's remote, retained for the caller */
  uv_sem_t ready;
} loop_start;

/* [start, handed_over]: runs the loop thread's loop; *handed_over is set
 * once the starter was released. */
static int run_loop_thread(lua_State *L) {
  loop_start *st = lua_touserdata(L, 1);
  int *handed_over = lua_touserdata(L, 2);
  aio_loop *loop;
  lua_getglobal(L, "require"); /* the Lua facade, as a user would have */
  lua_pushliteral(L, "asyncio");
  lua_call(L, 1, 0);
  loop = aio_loop_new(L, NULL, AIO_CLOCK_REAL);
  loop->watch_sigint = 0;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_current);
  aio_remote_retain(loop->remote);
  st->r = loop->remote;
  *handed_over = 1;
  uv_sem_post(&st->ready); /* st is gone after this */
  lua_getfield(L, -1, "run_forever");
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "close");
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  return 0;
}

static void loop_thread_main(void *arg) {
  loop_start *st = arg;
  lua_State *L = aio_state_new(st->cfg);
  int handed_over = 0;
  if (L == NULL) {
    uv_sem_post(&st->ready);
    return;
  }
  lua_pushcfunction(L, run_loop_thread);
  lua_pushlightuserdata(L, st);
  lua_pushlightuserdata(L, &handed_over);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    if (!aio_iserror(L, -1, AIO_E_SYSTEM_EXIT)) /* that one ends quietly */
      fprintf(stderr, "asyncio: loop thread failed: %s\n",
              luaL_tolstring(L, -1, NULL));
    if (!handed_over) /* the starter still waits */
      uv_sem_post(&st->ready);
  }
  lua_close(L);
}

/* start_loop_thread() -> a loop reference to a new OS thread running its
 * own Lua state and loop until ref:stop(); ref:join() waits for it. */
static int l_start_loop_thread(lua_State *L) {
  loop_start st;
  uv_thread_t tid;
  memset(&st, 0, sizeof st);
  st.cfg = aio_state_cfg_new(L);
  if (uv_sem_init(&st.ready, 0) != 0) {
    aio_state_cfg_free(st.cfg);
    return luaL_error(L, "not enough memory");
  }
  if (uv_thread_create(&tid, loop_thread_main, &st) != 0) {
    uv_sem_destroy(&st.ready);
    aio_state_cfg_free(st.cfg);
    return aio_raisef(L, AIO_E_RUNTIME, "cannot start a thread");
  }
  uv_sem_wait(&st.ready);
  uv_sem_destroy(&st.ready);
  aio_state_cfg_free(st.cfg);
  if (st.r == NULL) {
    uv_thread_join(&tid);
    return aio_raisef(L, AIO_E_RUNTIME, "the loop thread failed to start");
  }
  uv_mutex_lock(&st.r->mu);
  st.r->tid = tid;
  st.r->has_thread = 1;
  uv_mutex_unlock(&st.r->mu);
  loopref_push(L, st.r);
  aio_remote_release(st.r); /* loopref_push took its own */
  return 1;
}

/* ------------------------------------------------------------------ */
/* Registration                                                        */

static const luaL_Reg loopref_methods[] = {
    {"call_soon_threadsafe", l_loopref_call_soon_threadsafe},
    {"stop", l_loopref_stop},
    {"is_closed", l_loopref_is_closed},
    {"join", l_loopref_join},
    {NULL, NULL}};

static const luaL_Reg loopref_metamethods[] = {
    {"__gc", l_loopref__gc},
    {"__tostring", l_loopref__tostring},
    {NULL, NULL}};

static const luaL_Reg tshandle_methods[] = {
    {"cancel", l_tshandle_cancel},
    {"cancelled", l_tshandle_cancelled},
    {NULL, NULL}};

static const luaL_Reg tshandle_metamethods[] = {
    {"__gc", l_tshandle__gc},
    {NULL, NULL}};

static const luaL_Reg tsfn_methods[] = {
    {"stats", l_tsfn_stats},
    {NULL, NULL}};

static const luaL_Reg tsfn_metamethods[] = {
    {"__call", l_tsfn__call},
    {"__gc", l_tsfn__gc},
    {NULL, NULL}};

static const luaL_Reg threads_funcs[] = {
    {"threadsafe", l_threadsafe},
    {"start_loop_thread", l_start_loop_thread},
    {NULL, NULL}};

void aio_open_threads(lua_State *L) {
  aio_newclass(L, AIO_LOOPREF_MT, AIO_K_OTHER, loopref_methods,
               loopref_metamethods);
  aio_newclass(L, AIO_TSHANDLE_MT, AIO_K_OTHER, tshandle_methods,
               tshandle_metamethods);
  aio_newclass(L, AIO_TSFN_MT, AIO_K_OTHER, tsfn_methods, tsfn_metamethods);
  aio_shared_register(&loopref_type);
  aio_shared_register(&tsfn_type);
  luaL_setfuncs(L, threads_funcs, 0);
}
