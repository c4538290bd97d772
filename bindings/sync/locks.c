/*
 * locks.c - Lock, Event, Semaphore and BoundedSemaphore, and the FIFO
 * waiter queue they share with the queues (queue.c).
 *
 * Each blocked operation waits in FIFO order, as on a Future of its own
 * in asyncio: a Lock or Semaphore queues the waiting task itself
 * (aio_taskq: nothing is allocated, a wake-up schedules the task), an
 * Event or a queue the Future its task keeps for such waits (aio_waitq).
 * Waking a waiter only ends its wait; the waiter takes the lock, permit
 * or item itself when its task runs. So a waiter cancelled after being
 * woken never takes anything with it: its continuation sees the
 * cancellation and passes the wake-up on.
 *
 * Primitives are created without a loop and bind to the loop of the first
 * task that waits on them; using one from another loop raises
 * RuntimeError (asyncio's "is bound to a different event loop").
 *
 * Python's coroutine methods (acquire, wait) return Coroutine objects here
 * too, to be awaited. `await(lock)` (and semaphores) acquires and returns
 * the primitive itself, whose __close releases it:
 *     local _ <close> = await(lock)
 */
#include <string.h>

#include "internal.h"

#define AIO_LOCK_MT "asyncio.Lock"
#define AIO_EVENT_MT "asyncio.Event"
#define AIO_SEMAPHORE_MT "asyncio.Semaphore"
#define AIO_BSEMAPHORE_MT "asyncio.BoundedSemaphore"

/* ------------------------------------------------------------------ */
/* The waiter queue                                                    */

/* The queue's futures live in a Lua table (a user value of the owner) as
 * a ring; removed entries become false and are skipped. Each waiting
 * future remembers its slot (aio_future.wq_slot) for O(1) removal. */

static void wq_grow(lua_State *L, aio_waitq *q, int tidx) {
  unsigned ncap = q->cap ? q->cap * 2 : 8, i, mask = q->cap - 1;
  lua_createtable(L, (int)ncap, 0);
  for (i = 0; i < q->count; i++) {
    /* positions are unchanged, so the futures' wq_slot stay valid */
    lua_rawgeti(L, tidx, ((q->head + i) & mask) + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, tidx);
  q->cap = ncap;
  q->head = 0;
}

void aio_wq_push(lua_State *L, aio_waitq *q, int owner, int uv, int fidx) {
  unsigned slot;
  fidx = lua_absindex(L, fidx);
  lua_getiuservalue(L, owner, uv);
  if (q->count == q->cap) {
    wq_grow(L, q, lua_gettop(L));
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, owner, uv);
  }
  slot = (q->head + q->count) & (q->cap - 1);
  ((aio_future *)lua_touserdata(L, fidx))->wq_slot = q->base + q->count;
  lua_pushvalue(L, fidx);
  lua_rawseti(L, -2, slot + 1);
  lua_pop(L, 1);
  q->count++;
  q->live++;
}

/* Drops removed entries from the head. The table is on top. Removed
 * entries are count - live: with none, there is nothing to look at. */
static void wq_trim(lua_State *L, aio_waitq *q) {
  while (q->count > q->live) {
    if (lua_rawgeti(L, -1, q->head + 1) != LUA_TBOOLEAN) {
      lua_pop(L, 1);
      return;
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawseti(L, -2, q->head + 1);
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->base++;
  }
  if (q->count == 0)
    q->head = 0;
}

int aio_wq_remove(lua_State *L, aio_waitq *q, int owner, int uv, int fidx) {
  aio_future *f;
  unsigned pos, slot;
  fidx = lua_absindex(L, fidx);
  f = lua_touserdata(L, fidx);
  pos = f->wq_slot - q->base; /* position from the head */
  if (q->count == 0 || pos >= q->count)
    return 0;
  slot = (q->head + pos) & (q->cap - 1);
  lua_getiuservalue(L, owner, uv);
  lua_rawgeti(L, -1, slot + 1);
  if (lua_touserdata(L, -1) != (void *)f) { /* the entry is another's */
    lua_pop(L, 2);
    return 0;
  }
  lua_pop(L, 1);
  q->live--;
  if (pos == 0) { /* the head (FIFO hand-offs): it leaves the ring */
    lua_pushnil(L);
    lua_rawseti(L, -2, slot + 1);
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->base++;
  } else {
    lua_pushboolean(L, 0);
    lua_rawseti(L, -2, slot + 1);
  }
  wq_trim(L, q);
  lua_pop(L, 1);
  return 1;
}

int aio_wq_first(lua_State *L, aio_waitq *q, int owner, int uv) {
  if (q->live == 0)
    return 0;
  lua_getiuservalue(L, owner, uv);
  wq_trim(L, q);
  lua_rawgeti(L, -1, q->head + 1);
  lua_replace(L, -2);
  return 1;
}

int aio_wq_popleft(lua_State *L, aio_waitq *q, int owner, int uv) {
  if (!aio_wq_first(L, q, owner, uv))
    return 0;
  aio_wq_remove(L, q, owner, uv, -1);
  return 1;
}

/* Calls fn(L, fidx, ud) on each waiting future, in order, until it
 * returns non-zero; returns that value (0 if it never did). The queue
 * must not change meanwhile. */
int aio_wq_each(lua_State *L, aio_waitq *q, int owner, int uv,
                int (*fn)(lua_State *L, int fidx, void *ud), void *ud) {
  unsigned i;
  int r = 0;
  if (q->live == 0)
    return 0;
  lua_getiuservalue(L, owner, uv);
  for (i = 0; i < q->count && r == 0; i++) {
    if (lua_rawgeti(L, -1, ((q->head + i) & (q->cap - 1)) + 1) !=
        LUA_TBOOLEAN)
      r = fn(L, lua_gettop(L), ud);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return r;
}

/* ------------------------------------------------------------------ */
/* The task queue (aio_taskq)                                          */

aio_taskq *aio_tq_open(aio_taskq *q, aio_loop *loop) {
  if (loop != NULL && loop->closed) {
    /* its tasks are no longer anchored: forget them unread */
    q->head = q->tail = NULL;
    q->count = 0;
  }
  return q;
}

void aio_tq_remove(aio_taskq *q, aio_task *t) {
  aio_task *prev = NULL, *p = q->head;
  while (p != NULL && p != t) {
    prev = p;
    p = p->wnext;
  }
  if (p == NULL)
    return;
  if (prev == NULL)
    q->head = t->wnext;
  else
    prev->wnext = t->wnext;
  if (q->tail == t)
    q->tail = prev;
  t->wnext = NULL;
  q->count--;
}

int aio_tq_wait(lua_State *L, aio_task *t, aio_taskq *q, lua_KContext ctx,
                lua_KFunction k) {
  t->wnext = NULL;
  if (!t->must_cancel) { /* else the wait ends at once, unlinked */
    if (q->tail != NULL)
      q->tail->wnext = t;
    else
      q->head = t;
    q->tail = t;
    q->count++;
  }
  return aio_task_wait_prim(L, t, ctx, k);
}

/* ------------------------------------------------------------------ */
/* Binding to a loop                                                   */

aio_task *aio_prim_enter(lua_State *L, aio_loop **bound, int uvloop,
                         const char *what) {
  aio_task *t = aio_check_await(L, what);
  aio_loop *loop = t->fut.loop;
  if (*bound == NULL) {
    *bound = loop;
    aio_push_loop(L, loop); /* keeps the loop alive as long as we are */
    lua_setiuservalue(L, 1, uvloop);
  } else if (*bound != loop) {
    luaL_tolstring(L, 1, NULL);
    aio_raisef(L, AIO_E_RUNTIME, "%s is bound to a different event loop",
               lua_tostring(L, -1));
  }
  return t;
}

int aio_prim_wait(lua_State *L, aio_task *t, aio_waitq *q, int uv,
                  lua_KContext ctx, lua_KFunction k) {
  int fidx;
  aio_task_wait_future(L, t);
  fidx = lua_gettop(L);
  aio_wq_push(L, q, 1, uv, fidx);
  return aio_await_future(L, t, fidx, ctx, k);
}

/* Completes the future at fidx unless it is done. Its value is never
 * read (the waiter looks at its state only), so it has none: storing one
 * would cost a user value write per wake-up. */
static int wake(lua_State *L, int fidx) {
  aio_future *f = lua_touserdata(L, fidx);
  if (f->state != AIO_PENDING)
    return 0;
  aio_future_set_result(L, fidx, 0);
  return 1;
}

/* Raises what the task got instead of its wake-up: the thrown error (on
 * top) or the CancelledError of its cancelled waiter at fidx. */
static int raise_cancelled(lua_State *L, int threw, int fidx) {
  if (threw)
    return lua_error(L);
  return aio_future_push_result(L, fidx); /* raises CancelledError */
}

/* The result of an acquire of the primitive at index 1: true, or for
 * `await(prim)` (guard) the primitive itself, whose __close releases. */
static int acquired(lua_State *L, int guard) {
  if (guard)
    lua_settop(L, 1);
  else
    lua_pushboolean(L, 1);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Lock                                                                */

enum { LOCK_UV_LOOP = 1, LOCK_UV_OP, LOCK_UV_COUNT };

/* Its waiters are the tasks themselves (aio_taskq), not futures: a Lock
 * is the primitive of hand-offs under contention (w5). */
typedef struct aio_lock {
  const char *tag;  /* &lock_tag (aio_checktagged) */
  aio_loop *loop;
  aio_taskq waiters;
  int locked;
} aio_lock;

static const char lock_tag = 0;

static aio_lock *check_lock(lua_State *L, int idx) {
  return aio_checktagged(L, idx, sizeof(aio_lock), &lock_tag, AIO_K_LOCK, AIO_LOCK_MT);
}

static aio_taskq *lock_waiters(aio_lock *lk) {
  return aio_tq_open(&lk->waiters, lk->loop);
}

/* Python's `any(not w.cancelled() for w in self._waiters)`. */
static int any_waiter_not_cancelled(aio_lock *lk) {
  aio_task *t;
  for (t = lock_waiters(lk)->head; t != NULL; t = t->wnext)
    if (t->wstate != AIO_TW_CANCELLED)
      return 1;
  return 0;
}

/* Python's _wake_up_first: the first waiter, unless its wait is over. */
static void lock_wake_first(lua_State *L, aio_lock *lk) {
  aio_task *t = lock_waiters(lk)->head;
  if (t != NULL && t->wstate == AIO_TW_PENDING)
    aio_task_wake_prim(L, t);
}

/* ctx: the guard flag of acquired() */
static int lock_acquire_k(lua_State *L, int status, lua_KContext ctx) {
  aio_lock *lk = lua_touserdata(L, 1);
  aio_task *t = aio_current_task_of(L);
  int threw = aio_resume_take_throw(L, t);
  (void)status;
  aio_tq_remove(lock_waiters(lk), t);
  if (threw) {
    /* whoever woke us expected us to take the lock: pass it on */
    if (!lk->locked)
      lock_wake_first(L, lk);
    return lua_error(L);
  }
  lk->locked = 1;
  return acquired(L, (int)ctx);
}

/* Acquires the lock at index 1 (checked by the method that made the
 * coroutine), awaited inline. As in Python, the lock binds to a loop
 * only when a task has to wait on it. */
static int lock_acquire(lua_State *L, int guard) {
  aio_lock *lk = lua_touserdata(L, 1);
  aio_task *t;
  lua_settop(L, 1);
  if (!lk->locked && !any_waiter_not_cancelled(lk)) {
    lk->locked = 1;
    return acquired(L, guard);
  }
  t = aio_prim_enter(L, &lk->loop, LOCK_UV_LOOP, "acquire");
  return aio_tq_wait(L, t, lock_waiters(lk), guard, lock_acquire_k);
}

/* lock:acquire() */
static int lock_acquire_body(lua_State *L) {
  return lock_acquire(L, 0);
}

/* await(lock) */
int aio_lock_guard_body(lua_State *L) {
  return lock_acquire(L, 1);
}

/* The fast path of lock:acquire() awaited (aio_fast_op): a free lock
 * nobody is queued for is taken at once. */
static int lock_acquire_fast(lua_State *L, aio_fast_op *op) {
  aio_lock *lk = op->owner;
  if (lk->locked || lk->waiters.head != NULL)
    return -1;
  lk->locked = 1;
  lua_pushboolean(L, 1);
  return 1;
}

static int l_lock_acquire(lua_State *L) {
  check_lock(L, 1);
  return aio_ccoro_kept_fast(L, 1, lock_acquire_body, LOCK_UV_OP,
                             lock_acquire_fast, 0);
}

static int l_lock__await(lua_State *L) {
  check_lock(L, 1);
  return aio_ccoro_method(L, 1, aio_lock_guard_body);
}

static int l_lock_release(lua_State *L) {
  aio_lock *lk = check_lock(L, 1);
  if (!lk->locked)
    return aio_raisef(L, AIO_E_RUNTIME, "Lock is not acquired.");
  lock_wake_first(L, lk); /* raises before anything changed */
  lk->locked = 0;
  return 0;
}

static int l_lock_locked(lua_State *L) {
  lua_pushboolean(L, check_lock(L, 1)->locked);
  return 1;
}

/* lock:_would_wait(): whether an acquire() now would wait: the lock is
 * held, or a live waiter is queued (one that release() woke but that has
 * not run yet included), as Semaphore's locked(). locked() alone is false
 * right after a release that woke a waiter. Internal (Python's Lock has
 * no such method): asyncio.File takes its lock-free paths only when this
 * is false, so that they never overtake a queued task. */
static int l_lock_would_wait(lua_State *L) {
  aio_lock *lk = check_lock(L, 1);
  lua_pushboolean(L, lk->locked || any_waiter_not_cancelled(lk));
  return 1;
}

static int l_lock__tostring(lua_State *L) {
  aio_lock *lk = check_lock(L, 1);
  unsigned waiters = lock_waiters(lk)->count;
  if (waiters)
    lua_pushfstring(L, "<asyncio.Lock [%s, waiters:%d]>",
                    lk->locked ? "locked" : "unlocked", (int)waiters);
  else
    lua_pushfstring(L, "<asyncio.Lock [%s]>",
                    lk->locked ? "locked" : "unlocked");
  return 1;
}

static int l_lock_new(lua_State *L) {
  aio_lock *lk = lua_newuserdatauv(L, sizeof *lk, LOCK_UV_COUNT - 1);
  memset(lk, 0, sizeof *lk);
  lk->tag = &lock_tag;
  luaL_setmetatable(L, AIO_LOCK_MT);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Event                                                               */

enum { EVENT_UV_WAITERS = 1, EVENT_UV_LOOP, EVENT_UV_OP, EVENT_UV_COUNT };

typedef struct aio_event {
  const char *tag;  /* &event_tag (aio_checktagged) */
  aio_loop *loop;
  aio_waitq waiters;
  int value;
} aio_event;

static const char event_tag = 0;

static aio_event *check_event(lua_State *L, int idx) {
  return aio_checktagged(L, idx, sizeof(aio_event), &event_tag, AIO_K_EVENT, AIO_EVENT_MT);
}

static int event_wait_k(lua_State *L, int status, lua_KContext ctx) {
  aio_event *ev = lua_touserdata(L, 1);
  aio_future *f = lua_touserdata(L, 2);
  int threw = aio_resume_take_throw(L, aio_current_task_of(L));
  (void)status;
  (void)ctx;
  aio_wq_remove(L, &ev->waiters, 1, EVENT_UV_WAITERS, 2);
  if (threw || f->state == AIO_CANCELLED)
    return raise_cancelled(L, threw, 2);
  lua_pushboolean(L, 1);
  return 1;
}

static int event_wait_body(lua_State *L) {
  aio_event *ev = lua_touserdata(L, 1); /* checked by ev:wait() */
  aio_task *t;
  lua_settop(L, 1);
  if (ev->value) {
    lua_pushboolean(L, 1);
    return 1;
  }
  t = aio_prim_enter(L, &ev->loop, EVENT_UV_LOOP, "wait");
  return aio_prim_wait(L, t, &ev->waiters, EVENT_UV_WAITERS, 0,
                       event_wait_k);
}

/* The fast path of ev:wait() awaited (aio_fast_op): a set event. */
static int event_wait_fast(lua_State *L, aio_fast_op *op) {
  if (!((aio_event *)op->owner)->value)
    return -1;
  lua_pushboolean(L, 1);
  return 1;
}

static int l_event_wait(lua_State *L) {
  check_event(L, 1);
  return aio_ccoro_kept_fast(L, 1, event_wait_body, EVENT_UV_OP,
                             event_wait_fast, 0);
}

static int wake_each(lua_State *L, int fidx, void *ud) {
  (void)ud;
  wake(L, fidx);
  return 0;
}

static int l_event_set(lua_State *L) {
  aio_event *ev = check_event(L, 1);
  if (!ev->value) {
    ev->value = 1;
    /* waking is decided now: a clear() before they run changes nothing */
    aio_wq_each(L, &ev->waiters, 1, EVENT_UV_WAITERS, wake_each, NULL);
  }
  return 0;
}

static int l_event_clear(lua_State *L) {
  check_event(L, 1)->value = 0;
  return 0;
}

static int l_event_is_set(lua_State *L) {
  lua_pushboolean(L, check_event(L, 1)->value);
  return 1;
}

static int l_event__tostring(lua_State *L) {
  aio_event *ev = check_event(L, 1);
  if (ev->waiters.live)
    lua_pushfstring(L, "<asyncio.Event [%s, waiters:%d]>",
                    ev->value ? "set" : "unset", (int)ev->waiters.live);
  else
    lua_pushfstring(L, "<asyncio.Event [%s]>", ev->value ? "set" : "unset");
  return 1;
}

static int l_event_new(lua_State *L) {
  aio_event *ev = lua_newuserdatauv(L, sizeof *ev, EVENT_UV_COUNT - 1);
  memset(ev, 0, sizeof *ev);
  ev->tag = &event_tag;
  lua_newtable(L);
  lua_setiuservalue(L, -2, EVENT_UV_WAITERS);
  luaL_setmetatable(L, AIO_EVENT_MT);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Semaphore and BoundedSemaphore                                      */

enum { SEM_UV_LOOP = 1, SEM_UV_OP, SEM_UV_COUNT };

/* Its waiters are the tasks themselves (aio_taskq), as a Lock's. */
typedef struct aio_sem {
  const char *tag;  /* &sem_tag (aio_checktagged) */
  aio_loop *loop;
  aio_taskq waiters;
  lua_Integer value;
  lua_Integer bound; /* BoundedSemaphore: the initial value; else -1 */
} aio_sem;

static const char sem_tag = 0;

static aio_sem *check_sem(lua_State *L, int idx) {
  return aio_checktagged(L, idx, sizeof(aio_sem), &sem_tag, AIO_K_SEMAPHORE, AIO_SEMAPHORE_MT);
}

static aio_taskq *sem_waiters(aio_sem *s) {
  return aio_tq_open(&s->waiters, s->loop);
}

/* locked(): no permit, or a live waiter queued (a newcomer must not
 * overtake queued tasks even when a permit is free). */
static int sem_locked(aio_sem *s) {
  aio_task *t;
  if (s->value == 0)
    return 1;
  for (t = sem_waiters(s)->head; t != NULL; t = t->wnext)
    if (t->wstate != AIO_TW_CANCELLED)
      return 1;
  return 0;
}

/* Wakes the first waiter not yet woken (Python's _wake_up_next); the
 * caller hands it a permit when this returns 1. Returns 0 when no task
 * waits. A wake-up that raises (memory) changes nothing. */
static int sem_wake_next(lua_State *L, aio_sem *s) {
  aio_task *t;
  for (t = sem_waiters(s)->head; t != NULL; t = t->wnext)
    if (t->wstate == AIO_TW_PENDING) {
      aio_task_wake_prim(L, t);
      return 1;
    }
  return 0;
}

static void sem_wake_while_free(lua_State *L, aio_sem *s) {
  while (s->value > 0 && sem_wake_next(L, s))
    s->value--;
}

/* ctx: the guard flag of acquired() */
static int sem_acquire_k(lua_State *L, int status, lua_KContext ctx) {
  aio_sem *s = lua_touserdata(L, 1);
  aio_task *t = aio_current_task_of(L);
  int threw = aio_resume_take_throw(L, t);
  (void)status;
  aio_tq_remove(sem_waiters(s), t);
  if (threw && t->wstate == AIO_TW_WOKEN)
    s->value++; /* woken with a permit we will not use: give it back */
  sem_wake_while_free(L, s);
  if (threw)
    return lua_error(L);
  return acquired(L, (int)ctx);
}

/* Acquires the semaphore at index 1 (checked by the method that made the
 * coroutine), awaited inline. */
static int sem_acquire(lua_State *L, int guard) {
  aio_sem *s = lua_touserdata(L, 1);
  aio_task *t;
  lua_settop(L, 1);
  if (!sem_locked(s)) {
    s->value--;
    return acquired(L, guard);
  }
  t = aio_prim_enter(L, &s->loop, SEM_UV_LOOP, "acquire");
  return aio_tq_wait(L, t, sem_waiters(s), guard, sem_acquire_k);
}

/* sem:acquire() */
static int sem_acquire_body(lua_State *L) {
  return sem_acquire(L, 0);
}

/* await(sem) */
int aio_sem_guard_body(lua_State *L) {
  return sem_acquire(L, 1);
}

/* The guard body for the userdata p of len bytes when it is a Lock or a
 * Semaphore (their tags), else NULL: await's dispatch, without the
 * metatable look-up of aio_kindof. */
lua_CFunction aio_guard_body_of(const void *p, size_t len) {
  if (len == sizeof(aio_lock) && *(const char *const *)p == &lock_tag)
    return aio_lock_guard_body;
  if (len == sizeof(aio_sem) && *(const char *const *)p == &sem_tag)
    return aio_sem_guard_body;
  return NULL;
}

/* The fast path of sem:acquire() awaited (aio_fast_op): a permit left
 * and nobody queued. */
static int sem_acquire_fast(lua_State *L, aio_fast_op *op) {
  aio_sem *s = op->owner;
  if (s->value == 0 || s->waiters.head != NULL)
    return -1;
  s->value--;
  lua_pushboolean(L, 1);
  return 1;
}

static int l_sem_acquire(lua_State *L) {
  check_sem(L, 1);
  return aio_ccoro_kept_fast(L, 1, sem_acquire_body, SEM_UV_OP,
                             sem_acquire_fast, 0);
}

static int l_sem__await(lua_State *L) {
  check_sem(L, 1);
  return aio_ccoro_method(L, 1, aio_sem_guard_body);
}

static int l_sem_release(lua_State *L) {
  aio_sem *s = check_sem(L, 1);
  if (s->bound >= 0 && s->value >= s->bound)
    return aio_raisef(L, AIO_E_VALUE,
                      "BoundedSemaphore released too many times");
  if (!sem_wake_next(L, s)) /* else the permit goes to the woken task */
    s->value++;
  return 0;
}

static int l_sem_locked(lua_State *L) {
  aio_sem *s = check_sem(L, 1);
  lua_pushboolean(L, sem_locked(s));
  return 1;
}

static int l_sem__tostring(lua_State *L) {
  aio_sem *s = check_sem(L, 1);
  const char *name = s->bound >= 0 ? "BoundedSemaphore" : "Semaphore";
  unsigned waiters = sem_waiters(s)->count;
  if (sem_locked(s))
    lua_pushfstring(L, "<asyncio.%s [locked", name);
  else
    lua_pushfstring(L, "<asyncio.%s [unlocked, value:%I", name, s->value);
  if (waiters)
    lua_pushfstring(L, ", waiters:%d]>", (int)waiters);
  else
    lua_pushliteral(L, "]>");
  lua_concat(L, 2);
  return 1;
}

static int sem_new(lua_State *L, int bounded) {
  lua_Integer value = luaL_optinteger(L, 1, 1);
  aio_sem *s;
  if (value < 0)
    return aio_raisef(L, AIO_E_VALUE,
                      "Semaphore initial value must be >= 0");
  s = lua_newuserdatauv(L, sizeof *s, SEM_UV_COUNT - 1);
  memset(s, 0, sizeof *s);
  s->tag = &sem_tag;
  s->value = value;
  s->bound = bounded ? value : -1;
  luaL_setmetatable(L, bounded ? AIO_BSEMAPHORE_MT : AIO_SEMAPHORE_MT);
  return 1;
}

static int l_sem_new(lua_State *L) {
  return sem_new(L, 0);
}

static int l_bsem_new(lua_State *L) {
  return sem_new(L, 1);
}

/* sem._value: the permit count, for introspection (Python's _value) */
static int l_sem_value(lua_State *L) {
  lua_pushinteger(L, check_sem(L, 1)->value);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Registration                                                        */

static const luaL_Reg lock_methods[] = {
    {"acquire", l_lock_acquire},
    {"release", l_lock_release},
    {"locked", l_lock_locked},
    {"_would_wait", l_lock_would_wait},
    {NULL, NULL}};

static const luaL_Reg lock_metamethods[] = {
    {"__await", l_lock__await},
    {"__close", l_lock_release},
    {"__tostring", l_lock__tostring},
    {NULL, NULL}};

static const luaL_Reg event_methods[] = {
    {"wait", l_event_wait},
    {"set", l_event_set},
    {"clear", l_event_clear},
    {"is_set", l_event_is_set},
    {NULL, NULL}};

static const luaL_Reg event_metamethods[] = {
    {"__tostring", l_event__tostring},
    {NULL, NULL}};

static const luaL_Reg sem_methods[] = {
    {"acquire", l_sem_acquire},
    {"release", l_sem_release},
    {"locked", l_sem_locked},
    {"_get_value", l_sem_value},
    {NULL, NULL}};

static const luaL_Reg sem_metamethods[] = {
    {"__await", l_sem__await},
    {"__close", l_sem_release},
    {"__tostring", l_sem__tostring},
    {NULL, NULL}};

static const luaL_Reg locks_funcs[] = {
    {"Lock", l_lock_new},
    {"Event", l_event_new},
    {"Semaphore", l_sem_new},
    {"BoundedSemaphore", l_bsem_new},
    {NULL, NULL}};

/* Names of the C operations in reprs (aio_name_ops). */
static const aio_op_name op_names[] = {
    {lock_acquire_body, "Lock.acquire"},
    {aio_lock_guard_body, "Lock.__aenter__"},
    {event_wait_body, "Event.wait"},
    {sem_acquire_body, "Semaphore.acquire"},
    {aio_sem_guard_body, "Semaphore.__aenter__"},
    {NULL, NULL}};

void aio_open_locks(lua_State *L) {
  aio_name_ops(L, op_names);
  aio_newclass(L, AIO_LOCK_MT, AIO_K_LOCK, lock_methods, lock_metamethods);
  aio_newclass(L, AIO_EVENT_MT, AIO_K_EVENT, event_methods,
               event_metamethods);
  aio_newclass(L, AIO_SEMAPHORE_MT, AIO_K_SEMAPHORE, sem_methods,
               sem_metamethods);
  aio_newclass(L, AIO_BSEMAPHORE_MT, AIO_K_SEMAPHORE, sem_methods,
               sem_metamethods);
  luaL_setfuncs(L, locks_funcs, 0);
}
