/*
 * timer.c - the timer heap, call_later/call_at and sleep.
 *
 * One binary heap per loop, ordered by (deadline, sequence number): equal
 * deadlines fire in registration order. Deletion is lazy, as in asyncio:
 * a cancelled TimerHandle (or a sleep whose task was cancelled) stays in
 * the heap until it reaches the top or the heap is compacted, which
 * happens when more than half of it (and over 100 entries) is dead. The
 * TimerHandle of each entry is anchored in the loop's timer table under
 * its sequence number until the entry leaves the heap.
 *
 * A sleep does not allocate a Future, a TimerHandle or an anchor: its
 * heap entry points at the task with the task's sleep generation;
 * cancelling the task bumps the generation, which kills the entry. A
 * pending task is anchored by its loop anyway; the task counts the
 * entries pointing at it (timer_refs), and one that retires while some
 * are left is anchored in the timer table under its address until the
 * last one leaves the heap.
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define COMPACT_MIN 100

static int earlier(const aio_timer *a, const aio_timer *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void sift_up(aio_timer *h, unsigned i) {
  aio_timer e = h[i];
  while (i > 0) {
    unsigned parent = (i - 1) / 2;
    if (!earlier(&e, &h[parent]))
      break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = e;
}

static void sift_down(aio_timer *h, unsigned n, unsigned i) {
  aio_timer e = h[i];
  for (;;) {
    unsigned c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && earlier(&h[c + 1], &h[c]))
      c++;
    if (!earlier(&h[c], &e))
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = e;
}

/* Is the entry dead (cancelled handle, stale sleep)? Its object is
 * anchored, so p is valid. */
static int is_dead(const aio_timer *e) {
  if (e->kind == AIO_R_HANDLE)
    return ((aio_handle *)e->p)->cancelled;
  else {
    aio_task *t = e->p;
    return t->sleep_gen != e->gen || t->wait_kind != AIO_WAIT_SLEEP;
  }
}

static void unanchor(lua_State *L, aio_loop *loop, uint64_t seq) {
  aio_push_env(L, loop, AIO_ENV_TIMERS);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)seq);
  lua_pop(L, 1);
}

/* A sleep entry of task t left the heap. */
static void sleep_entry_gone(lua_State *L, aio_loop *loop, aio_task *t) {
  if (--t->timer_refs == 0 && t->fut.state != AIO_PENDING) {
    aio_push_env(L, loop, AIO_ENV_TIMERS);
    lua_pushnil(L);
    lua_rawsetp(L, -2, t);
    lua_pop(L, 1);
  }
}

/* An entry left the heap: lets go of what kept its object. */
static void entry_gone(lua_State *L, aio_loop *loop, const aio_timer *e) {
  if (e->kind == AIO_R_SLEEP)
    sleep_entry_gone(L, loop, e->p);
  else
    unanchor(L, loop, e->seq);
}

void aio_timer_task_retired(lua_State *L, aio_loop *loop, int tidx) {
  aio_task *t = lua_touserdata(L, tidx);
  if (t->timer_refs == 0 || loop->env == LUA_NOREF || loop->closed)
    return;
  tidx = lua_absindex(L, tidx);
  aio_push_env(L, loop, AIO_ENV_TIMERS);
  lua_pushvalue(L, tidx);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
}

static aio_timer heap_pop(aio_loop *loop) {
  aio_timer top = loop->heap[0];
  loop->hcount--;
  if (loop->hcount > 0) {
    loop->heap[0] = loop->heap[loop->hcount];
    sift_down(loop->heap, loop->hcount, 0);
  }
  return top;
}

void aio_timer_push(lua_State *L, aio_loop *loop, double when, int kind,
                    void *p, unsigned gen) {
  aio_timer *e;
  if (loop->hcount == loop->hcap) {
    unsigned ncap = loop->hcap ? loop->hcap * 2 : 64;
    aio_timer *nh = realloc(loop->heap, ncap * sizeof *nh);
    if (nh == NULL) {
      lua_pop(L, 1);
      luaL_error(L, "not enough memory");
    }
    loop->heap = nh;
    loop->hcap = ncap;
  }
  e = &loop->heap[loop->hcount];
  e->when = when;
  e->seq = ++loop->hseq;
  e->kind = (unsigned char)kind;
  e->gen = gen;
  e->p = p;
  if (kind == AIO_R_SLEEP)
    ((aio_task *)p)->timer_refs++;
  else {
    aio_push_env(L, loop, AIO_ENV_TIMERS);
    lua_insert(L, -2);
    lua_rawseti(L, -2, (lua_Integer)e->seq);
    lua_pop(L, 1);
  }
  sift_up(loop->heap, loop->hcount++);
}

/* Rebuilds the heap without its dead entries. */
static void compact(lua_State *L, aio_loop *loop) {
  unsigned i, kept = 0;
  for (i = 0; i < loop->hcount; i++) {
    if (is_dead(&loop->heap[i]))
      entry_gone(L, loop, &loop->heap[i]);
    else
      loop->heap[kept++] = loop->heap[i];
  }
  loop->hcount = kept;
  loop->hcancelled = 0;
  for (i = kept / 2; i-- > 0;)
    sift_down(loop->heap, kept, i);
}

void aio_timers_cancelled(lua_State *L, aio_loop *loop) {
  loop->hcancelled++;
  if (loop->hcancelled > COMPACT_MIN && 2 * loop->hcancelled > loop->hcount)
    compact(L, loop);
}

/* Pops dead entries off the top. */
static void drop_dead_top(lua_State *L, aio_loop *loop) {
  while (loop->hcount > 0 && is_dead(&loop->heap[0])) {
    aio_timer e = heap_pop(loop);
    loop->hcancelled--;
    entry_gone(L, loop, &e);
  }
}

int aio_timers_next(lua_State *L, aio_loop *loop, double *when) {
  drop_dead_top(L, loop);
  if (loop->hcount == 0 || loop->heap[0].when == HUGE_VAL)
    return 0;
  *when = loop->heap[0].when;
  return 1;
}

void aio_timers_run_due(lua_State *L, aio_loop *loop, double now) {
  while (loop->hcount > 0 && loop->heap[0].when <= now) {
    aio_timer e = heap_pop(loop);
    if (is_dead(&e)) {
      loop->hcancelled--;
      entry_gone(L, loop, &e);
      continue;
    }
    if (e.kind == AIO_R_HANDLE) {
      ((aio_handle *)e.p)->scheduled = 0;
      aio_push_env(L, loop, AIO_ENV_TIMERS);
      lua_rawgeti(L, -1, (lua_Integer)e.seq);
      lua_pushnil(L);
      lua_rawseti(L, -3, (lua_Integer)e.seq);
      lua_remove(L, -2);
      aio_ready_push(L, loop, AIO_R_HANDLE, NULL, 0, NULL, 1);
    } else {
      ((aio_task *)e.p)->sleep_in_heap = 0;
      /* the task is pending (live sleep), so anchored by the loop */
      ((aio_task *)e.p)->timer_refs--;
      aio_ready_push(L, loop, AIO_R_SLEEP, e.p, e.gen, NULL, 0);
    }
  }
}

unsigned aio_timers_live(lua_State *L, aio_loop *loop) {
  (void)L;
  return loop->hcount - loop->hcancelled;
}

void aio_timers_clear(lua_State *L, aio_loop *loop) {
  unsigned i;
  for (i = 0; i < loop->hcount; i++) {
    aio_timer *e = &loop->heap[i];
    if (e->kind == AIO_R_HANDLE)
      ((aio_handle *)e->p)->scheduled = 0;
    else {
      ((aio_task *)e->p)->sleep_in_heap = 0;
      ((aio_task *)e->p)->timer_refs = 0;
    }
  }
  loop->hcount = loop->hcancelled = 0;
  lua_newtable(L);
  aio_set_env(L, loop, AIO_ENV_TIMERS);
}

/* ------------------------------------------------------------------ */
/* call_later / call_at                                                */

static int schedule_at(lua_State *L, aio_loop *loop, double when,
                       const char *what) {
  aio_handle *h;
  int n = lua_gettop(L);
  aio_check_open(L, loop);
  if (when != when)
    return aio_raisef(L, AIO_E_VALUE, "Invalid delay: NaN (not a number)");
  h = aio_handle_new(L, loop, 3, n - 3, 1, when, what);
  if (when != HUGE_VAL) {
    lua_pushvalue(L, -1);
    aio_timer_push(L, loop, when, AIO_R_HANDLE, h, 0);
    h->scheduled = 1;
  }
  return 1;
}

static double check_time(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    aio_raisef(L, AIO_E_TYPE, "'%s' must be a number, got %s", what,
               luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

/* loop:call_later(delay, fn, ...) -> TimerHandle */
static int l_loop_call_later(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  double delay = check_time(L, 2, "delay");
  return schedule_at(L, loop, aio_loop_now(L, loop) + delay, "call_later");
}

/* loop:call_at(when, fn, ...) -> TimerHandle */
static int l_loop_call_at(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  return schedule_at(L, loop, check_time(L, 2, "when"), "call_at");
}

/* ------------------------------------------------------------------ */
/* sleep                                                               */

/* The stack is [delay, result] as aio_sleep_body left it: a resume
 * that is not a throw passes nothing. */
static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  aio_resume_check(L, aio_current_task_of(L));
  return 1;
}

/* The body of sleep(delay [, result]), run inline by await with the
 * stack [delay, result]. */
int aio_sleep_body(lua_State *L) {
  aio_task *t = aio_check_await(L, "sleep");
  aio_loop *loop = t->fut.loop;
  lua_Number delay;
  if (lua_type(L, 1) != LUA_TNUMBER)
    return aio_raisef(L, AIO_E_TYPE, "'delay' must be a number, got %s",
                      luaL_typename(L, 1));
  delay = lua_tonumber(L, 1);
  if (delay != delay)
    return aio_raisef(L, AIO_E_VALUE, "Invalid delay: NaN (not a number)");
  if (lua_gettop(L) == 1) /* sleep(delay), the usual call */
    lua_pushnil(L);
  else
    lua_settop(L, 2);
  if (delay <= 0 || t->must_cancel) {
    /* yield for exactly one iteration (a pending cancellation is then
     * delivered by the step) */
    t->wait_kind = AIO_WAIT_YIELD;
    aio_schedule_step(L, loop, t);
  } else {
    double when = aio_loop_now(L, loop) + delay;
    t->sleep_gen++;
    t->wait_kind = AIO_WAIT_SLEEP;
    if (when != HUGE_VAL) {
      aio_timer_push(L, loop, when, AIO_R_SLEEP, t, t->sleep_gen);
      t->sleep_in_heap = 1;
    }
  }
  return aio_task_suspend(L, t, 0, sleep_k);
}

void aio_open_timer(lua_State *L) {
  luaL_getmetatable(L, AIO_LOOP_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, l_loop_call_later);
  lua_setfield(L, -2, "call_later");
  lua_pushcfunction(L, l_loop_call_at);
  lua_setfield(L, -2, "call_at");
  lua_pop(L, 2);
}
