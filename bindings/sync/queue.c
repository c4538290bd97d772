/*
 * queue.c - Queue, LifoQueue and PriorityQueue.
 *
 * One C type with three orders: a ring (FIFO), a stack (LIFO) and a
 * binary heap (priority: an item's key is item[1] when the item is a
 * table, the Python tuple idiom {priority, data}, else the item itself;
 * equal keys come out in insertion order). Items live in user-value
 * tables, so any Lua value may be queued, nil included.
 *
 * Waiting follows asyncio exactly: a blocked get() or put() waits on a
 * future of its own in FIFO order; put_nowait()/get_nowait() only wake the
 * next waiter, which then takes the item (or the slot) itself when it
 * runs. A waiter cancelled after being woken takes nothing and wakes the
 * next one instead, so no item and no slot is lost.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define AIO_QUEUE_MT "asyncio.Queue"

enum { Q_FIFO, Q_LIFO, Q_PRIORITY };

enum {
  Q_UV_ITEMS = 1,
  Q_UV_KEYS,    /* priority: the heap's keys */
  Q_UV_SEQS,    /* priority: insertion numbers */
  Q_UV_LOOP,
  Q_UV_GET,     /* the kept get() and put() operations (aio_ccoro_kept) */
  Q_UV_PUT,
  Q_UV_COUNT = Q_UV_PUT
};

typedef struct aio_queue {
  const char *tag;       /* &queue_tag (aio_checktagged) */
  aio_loop *loop;
  aio_taskq getters, putters, joiners; /* the tasks waiting to get, to
                                          put, for join() (no Future) */
  double maxsize;        /* <= 0 or NaN: unbounded; +inf: never full */
  lua_Integer imaxsize;  /* maxsize as given, when an integer */
  unsigned char int_max; /* maxsize was given as an integer */
  unsigned head, count, cap;
  lua_Integer unfinished;
  lua_Integer seq;
  aio_fast_op *getop, *putop; /* the kept operations (aio_fast_op_kept) */
  aio_fast_op *spec;     /* NULL, or putop armed, whose item waits in the
                            ring's push slot (push_slot) */
  unsigned char kind, shut;
} aio_queue;

static const char *const kind_names[] = {"Queue", "LifoQueue",
                                         "PriorityQueue"};

static const char queue_tag = 0;

/* inlined: q:get() and q:put(x) run it once per item */
static inline __attribute__((always_inline)) aio_queue *
check_queue(lua_State *L, int idx) {
  return aio_checktagged(L, idx, sizeof(aio_queue), &queue_tag, AIO_K_QUEUE,
                         AIO_QUEUE_MT);
}

/* Pushes maxsize as given: an integer stays one, a float one too
 * (Queue(5.0).maxsize is 5.0, as Python's). */
static void push_maxsize(lua_State *L, aio_queue *q) {
  if (q->int_max)
    lua_pushinteger(L, q->imaxsize);
  else
    lua_pushnumber(L, q->maxsize);
}

static int is_full(aio_queue *q) {
  return q->maxsize > 0 && q->maxsize <= (double)q->count;
}

/* ------------------------------------------------------------------ */
/* Storage                                                             */

/* Doubles the ring of the full FIFO queue at index 1. The table keeps
 * its slots: when the ring wraps (head > 0), the `head` entries of its
 * start move to just after the old end, where the order continues; Lua
 * grows the table's array part itself as the new slots are filled.
 * They are all copied before any is cleared, and the copies are the
 * only writes that may allocate: a memory error leaves the ring as it
 * was (with stray copies past its end, which later growth overwrites). */
static void ring_grow(lua_State *L, aio_queue *q) {
  unsigned ncap = q->cap ? q->cap * 2 : 16, i;
  if (q->head > 0) {
    lua_getiuservalue(L, 1, Q_UV_ITEMS);
    for (i = 0; i < q->head; i++) {
      lua_rawgeti(L, -1, i + 1);
      lua_rawseti(L, -2, q->cap + i + 1);
    }
    for (i = 0; i < q->head; i++) {
      lua_pushnil(L);
      lua_rawseti(L, -2, i + 1);
    }
    lua_pop(L, 1);
  }
  q->cap = ncap;
}

/* Heap helpers: entries are (KEYS[i], SEQS[i], ITEMS[i]), 1-based; the
 * three tables are at k, s, it. Comparisons call user code (__lt) that
 * may raise: every operation first finds where entries go by comparing
 * only, then moves them, so that a failing comparison leaves the heap as
 * it was. */

/* Python compares tuples element by element: after equal keys, the
 * items' next elements decide, while both are numbers or both strings
 * (an item that is a prefix of the other comes first). Returns <0, 0 or
 * >0; 0 also for any other pair of elements (Python would raise
 * TypeError there), leaving the order to insertion. Never raises: no
 * metamethod is called. */
static int rest_order(lua_State *L, int ia, int ib) {
  lua_Integer i, na, nb;
  if (lua_type(L, ia) != LUA_TTABLE || lua_type(L, ib) != LUA_TTABLE)
    return 0;
  ia = lua_absindex(L, ia);
  ib = lua_absindex(L, ib);
  na = (lua_Integer)lua_rawlen(L, ia);
  nb = (lua_Integer)lua_rawlen(L, ib);
  for (i = 2; i <= na && i <= nb; i++) {
    int ta = lua_rawgeti(L, ia, i), tb = lua_rawgeti(L, ib, i), r = 0;
    int comparable = ta == tb && (ta == LUA_TNUMBER || ta == LUA_TSTRING);
    if (comparable && lua_compare(L, -2, -1, LUA_OPLT))
      r = -1;
    else if (comparable && lua_compare(L, -1, -2, LUA_OPLT))
      r = 1;
    lua_pop(L, 2);
    if (!comparable || r != 0)
      return r;
  }
  return na < nb ? -1 : na > nb;
}

/* Is the entry (key at ka, item at ia, seq sa) before the entry (kb, ib,
 * sb)? Smaller key first; equal keys: the rest of the items (rest_order),
 * then insertion order. */
static int entry_less(lua_State *L, int ka, int ia, lua_Integer sa, int kb,
                      int ib, lua_Integer sb) {
  int r;
  if (lua_compare(L, ka, kb, LUA_OPLT))
    return 1;
  if (lua_compare(L, kb, ka, LUA_OPLT))
    return 0;
  r = rest_order(L, ia, ib);
  return r != 0 ? r < 0 : sa < sb;
}

/* Pushes the key, then the item of heap entry i (the pending entry when
 * i is 0: key at pk, item at pit), and returns its seq (ps for the
 * pending one). */
static lua_Integer push_entry(lua_State *L, int k, int s, int it,
                              lua_Integer i, int pk, int pit,
                              lua_Integer ps) {
  lua_Integer seq;
  if (i == 0) {
    lua_pushvalue(L, pk);
    lua_pushvalue(L, pit);
    return ps;
  }
  lua_rawgeti(L, k, i);
  lua_rawgeti(L, s, i);
  seq = lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_rawgeti(L, it, i);
  return seq;
}

/* entry_less for heap entries a and b (or the pending entry when an index
 * is 0: its key at pk, its item at pit, its seq ps). */
static int heap_less(lua_State *L, int k, int s, int it, lua_Integer a,
                     lua_Integer b, int pk, int pit, lua_Integer ps) {
  lua_Integer sa = push_entry(L, k, s, it, a, pk, pit, ps);
  lua_Integer sb = push_entry(L, k, s, it, b, pk, pit, ps);
  int r = entry_less(L, -4, -3, sa, -2, -1, sb);
  lua_pop(L, 4);
  return r;
}

/* Copies entry `from` to slot `to` (0: the pending entry, whose key,
 * seq and item are at pk, ps, pit). */
static void heap_move(lua_State *L, int k, int s, int it, lua_Integer from,
                      lua_Integer to, int pk, lua_Integer ps, int pit) {
  if (from) {
    lua_rawgeti(L, k, from);
    lua_rawseti(L, k, to);
    lua_rawgeti(L, s, from);
    lua_rawseti(L, s, to);
    lua_rawgeti(L, it, from);
    lua_rawseti(L, it, to);
  } else {
    lua_pushvalue(L, pk);
    lua_rawseti(L, k, to);
    lua_pushinteger(L, ps);
    lua_rawseti(L, s, to);
    lua_pushvalue(L, pit);
    lua_rawseti(L, it, to);
  }
}

static void push_heap_tables(lua_State *L) {
  lua_getiuservalue(L, 1, Q_UV_KEYS);
  lua_getiuservalue(L, 1, Q_UV_SEQS);
  lua_getiuservalue(L, 1, Q_UV_ITEMS);
}

/* Adds the item at iidx to the heap. */
static void heap_push(lua_State *L, aio_queue *q, int iidx) {
  int top = lua_gettop(L), k = top + 1, s = top + 2, it = top + 3, pk;
  lua_Integer n = q->count + 1, pos = n, seq = q->seq + 1;
  push_heap_tables(L);
  if (lua_type(L, iidx) == LUA_TTABLE)
    lua_rawgeti(L, iidx, 1);
  else
    lua_pushvalue(L, iidx);
  pk = lua_gettop(L);
  /* where the new entry goes: comparisons only */
  while (pos > 1 && heap_less(L, k, s, it, 0, pos / 2, pk, iidx, seq))
    pos /= 2;
  /* then the moves */
  for (; n > pos; n /= 2)
    heap_move(L, k, s, it, n / 2, n, 0, 0, 0);
  heap_move(L, k, s, it, 0, pos, pk, seq, iidx);
  q->seq = seq;
  lua_settop(L, top);
}

/* Removes the first entry of the heap and pushes its item. */
static void heap_pop(lua_State *L, aio_queue *q) {
  int top = lua_gettop(L), k = top + 1, s = top + 2, it = top + 3, pk, pit;
  lua_Integer n = q->count, pos = 1, ps, path[64];
  int depth = 0, i;
  push_heap_tables(L);
  lua_rawgeti(L, it, 1); /* the result */
  lua_rawgeti(L, k, n);  /* the last entry, to sift down from the root */
  pk = lua_gettop(L);
  lua_rawgeti(L, s, n);
  ps = lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_rawgeti(L, it, n);
  pit = lua_gettop(L);
  n--; /* the heap without its last entry */
  for (;;) { /* where the last entry goes: comparisons only */
    lua_Integer c = 2 * pos;
    if (c > n)
      break;
    if (c + 1 <= n && heap_less(L, k, s, it, c + 1, c, pk, pit, ps))
      c++;
    if (!heap_less(L, k, s, it, c, 0, pk, pit, ps))
      break;
    path[depth++] = c;
    pos = c;
  }
  /* then the moves: each child on the path goes up one level */
  pos = 1;
  for (i = 0; i < depth; i++) {
    heap_move(L, k, s, it, path[i], pos, 0, 0, 0);
    pos = path[i];
  }
  if (n > 0)
    heap_move(L, k, s, it, 0, pos, pk, ps, pit);
  for (i = 0; i < 3; i++) { /* free the old last slot */
    lua_pushnil(L);
    lua_rawseti(L, k + i, n + 1);
  }
  lua_pushvalue(L, top + 4);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* FIFO and LIFO storage, the items table under the top. store_top
 * stores the item on top (popped) as the queue's last one (a FIFO
 * queue's ring has room); take_top pushes the next item out of a
 * non-empty queue and clears its slot if the item is collectable (a
 * number, a boolean or a light userdata left in a free slot holds
 * nothing alive; the slot is written before it is read again). */
static void store_top(lua_State *L, aio_queue *q) {
  lua_rawseti(L, -2, q->kind == Q_FIFO
                         ? ((q->head + q->count) & (q->cap - 1)) + 1
                         : q->count + 1);
  q->count++;
}

static inline void take_top(lua_State *L, aio_queue *q) {
  lua_Integer k = q->kind == Q_FIFO ? q->head + 1 : q->count;
  if (lua_rawgeti(L, -1, k) > LUA_TNUMBER) {
    lua_pushnil(L);
    lua_seti(L, -3, k);
  }
  if (q->kind == Q_FIFO)
    q->head = (q->head + 1) & (q->cap - 1);
  q->count--;
}

/* A FIFO queue's kept put operation, armed again by q:put(x) while the
 * ring has room, puts x in the slot x takes once the operation is
 * awaited, the push slot (the queue's `spec`): awaiting it then only
 * counts the item, and a q:put(x) never awaited puts nothing (the count
 * is the same).
 * The slot stays the push slot while no item is added: a get moves the
 * head and the count, not their sum. So whatever adds an item, or makes
 * another put operation, first ends the speculation (unspec): x goes
 * back to the operation's uservalue 3, where a put operation not kept
 * in the push slot has its argument. */

/* The push slot of a FIFO queue with room. */
static lua_Integer push_slot(aio_queue *q) {
  return ((q->head + q->count) & (q->cap - 1)) + 1;
}

/* Ends the speculation of q, whose operation is at the absolute index
 * opidx: its item goes back to it unless `keep` is 0 (it will never
 * run). Allocates nothing: the slots exist. */
static void unspec(lua_State *L, aio_queue *q, int opidx, int keep) {
  lua_Integer k = push_slot(q);
  lua_getiuservalue(L, opidx, 1); /* the items */
  if (keep) {
    lua_rawgeti(L, -1, k);
    lua_setiuservalue(L, opidx, 3);
  }
  lua_pushnil(L);
  lua_rawseti(L, -2, k);
  lua_pop(L, 1);
  q->spec = NULL;
}

/* unspec, the queue at index 1: the operation is its kept one. One
 * closed (coro:close(), started without running) never runs. */
static void unspec_queue(lua_State *L, aio_queue *q) {
  lua_getiuservalue(L, 1, Q_UV_PUT);
  unspec(L, q, lua_gettop(L), q->spec->c.state != AIO_CORO_STARTED);
  lua_pop(L, 1);
}

/* The put operation's settle (aio_fast_op): it is about to run. */
static void queue_put_settle(lua_State *L, aio_fast_op *op, int idx) {
  aio_queue *q = op->owner;
  if (q->spec == op)
    unspec(L, q, idx, 1);
}

/* Adds the item at iidx (a positive index). The queue is at index 1. */
static void store_item(lua_State *L, aio_queue *q, int iidx) {
  if (q->spec != NULL)
    unspec_queue(L, q);
  if (q->kind == Q_PRIORITY) {
    heap_push(L, q, iidx);
    q->count++;
    return;
  }
  if (q->kind == Q_FIFO && q->count == q->cap)
    ring_grow(L, q);
  lua_getiuservalue(L, 1, Q_UV_ITEMS);
  lua_pushvalue(L, iidx);
  store_top(L, q);
  lua_pop(L, 1);
}

/* Removes the next item and pushes it on top. The queue is at index 1. A
 * FIFO or LIFO queue leaves its items table under the item (the callers
 * return the top value, or reset the stack). */
static void take_item(lua_State *L, aio_queue *q) {
  if (q->kind == Q_PRIORITY) {
    heap_pop(L, q);
    q->count--;
    return;
  }
  lua_getiuservalue(L, 1, Q_UV_ITEMS);
  take_top(L, q);
}

/* ------------------------------------------------------------------ */
/* Waking                                                              */

/* The list w of q, emptied first if q's loop is closed. */
static aio_taskq *waiters(aio_queue *q, aio_taskq *w) {
  return aio_tq_open(w, q->loop);
}

/* Takes waiters off the front of w until one whose wait is pending, and
 * wakes it (Python's _wakeup_next); returns 0 when none was left. A task
 * leaves the list only once woken: if waking raises (memory), it stays
 * queued and pending. */
static int wakeup_next(lua_State *L, aio_queue *q, aio_taskq *w) {
  aio_task *t;
  w = waiters(q, w);
  while ((t = w->head) != NULL) {
    if (t->wstate == AIO_TW_PENDING) {
      aio_task_wake_prim(L, t);
      aio_tq_remove(w, t);
      return 1;
    }
    aio_tq_remove(w, t); /* cancelled: its continuation ends it */
  }
  return 0;
}

static void wake_all(lua_State *L, aio_queue *q, aio_taskq *w) {
  while (wakeup_next(L, q, w))
    ;
}

/* The tasks of w still waiting (not cancelled), for the repr. */
static unsigned live_waiters(aio_queue *q, aio_taskq *w) {
  aio_task *t;
  unsigned n = 0;
  for (t = waiters(q, w)->head; t != NULL; t = t->wnext)
    if (t->wstate == AIO_TW_PENDING)
      n++;
  return n;
}

/* ------------------------------------------------------------------ */
/* Non-blocking operations                                             */

/* put_nowait with the raise-or-report policy of STYLE 14: returns 0 when
 * it cannot put (raising if `raise`). */
static int put_aux(lua_State *L, aio_queue *q, int iidx, int raise) {
  if (q->shut) {
    if (raise)
      aio_raisef(L, AIO_E_QUEUE_SHUTDOWN, "Queue is shut down");
    return 0;
  }
  if (is_full(q)) {
    if (raise)
      aio_raisef(L, AIO_E_QUEUE_FULL, "Queue is full");
    return 0;
  }
  /* the getter woken first: a wake-up that raises (memory) leaves the
   * queue as it was, and a store that raises (memory, a priority's
   * comparison) leaves the getter to find the queue empty and wait
   * again, as Python's getters loop */
  wakeup_next(L, q, &q->getters);
  store_item(L, q, iidx);
  q->unfinished++;
  return 1;
}

/* get_nowait: pushes the item (on top, as take_item), or returns 0
 * (raising if `raise`). */
static int get_aux(lua_State *L, aio_queue *q, int raise) {
  if (q->count == 0) {
    if (raise) {
      if (q->shut)
        aio_raisef(L, AIO_E_QUEUE_SHUTDOWN, "Queue is shut down");
      aio_raisef(L, AIO_E_QUEUE_EMPTY, "Queue is empty");
    }
    return 0;
  }
  wakeup_next(L, q, &q->putters); /* first, as in put_aux */
  take_item(L, q);
  return 1;
}

static int l_queue_put_nowait(lua_State *L) {
  aio_queue *q = check_queue(L, 1);
  lua_settop(L, 2);
  put_aux(L, q, 2, 1);
  return 0;
}

static int l_queue_get_nowait(lua_State *L) {
  aio_queue *q = check_queue(L, 1);
  lua_settop(L, 1);
  get_aux(L, q, 1);
  return 1;
}

/* ------------------------------------------------------------------ */
/* get / put                                                           */

/* In the continuation of a wait in w: the task leaves w (a cancelled
 * wait is still in it) and returns for its normal wake-up; else (the
 * error on top: cancelled) a wake-up it got and will not use goes to the
 * next waiter, as Python's get and put pass it on, and it raises. */
static void end_wait(lua_State *L, aio_queue *q, aio_taskq *w,
                     int (*can_pass)(aio_queue *)) {
  aio_task *t = aio_current_task_of(L);
  int threw = aio_resume_take_throw(L, t);
  if (t->wstate != AIO_TW_WOKEN) /* a woken task left w as it woke */
    aio_tq_remove(waiters(q, w), t);
  if (!threw)
    return;
  if (t->wstate == AIO_TW_WOKEN && can_pass(q))
    wakeup_next(L, q, w);
  lua_error(L);
}

static int can_get(aio_queue *q) {
  return q->count > 0;
}

static int can_put(aio_queue *q) {
  return !is_full(q);
}

static int queue_get_body(lua_State *L);

/* [queue]: gets again unless it raises */
static int queue_get_k(lua_State *L, int status, lua_KContext ctx) {
  aio_queue *q = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  end_wait(L, q, &q->getters, can_get);
  lua_settop(L, 1);
  return queue_get_body(L);
}

/* The body of q:get(), awaited inline: [queue] (checked by q:get(); the
 * operation's stack is exactly that) */
static int queue_get_body(lua_State *L) {
  aio_queue *q = lua_touserdata(L, 1);
  aio_task *t;
  if (get_aux(L, q, 0))
    return 1;
  if (q->shut)
    return aio_raisef(L, AIO_E_QUEUE_SHUTDOWN, "Queue is shut down");
  t = aio_prim_enter(L, &q->loop, Q_UV_LOOP, "get");
  return aio_tq_wait(L, t, waiters(q, &q->getters), 0, queue_get_k);
}

static int queue_put_body(lua_State *L);

/* [queue, item]: puts again unless it raises */
static int queue_put_k(lua_State *L, int status, lua_KContext ctx) {
  aio_queue *q = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  end_wait(L, q, &q->putters, can_put);
  lua_settop(L, 2);
  return queue_put_body(L);
}

/* The body of q:put(item), awaited inline: [queue, item] (checked by
 * q:put(); the operation's stack is exactly that) */
static int queue_put_body(lua_State *L) {
  aio_queue *q = lua_touserdata(L, 1);
  aio_task *t;
  if (!is_full(q) || q->shut) {
    put_aux(L, q, 2, 1);
    return 0;
  }
  t = aio_prim_enter(L, &q->loop, Q_UV_LOOP, "put");
  return aio_tq_wait(L, t, waiters(q, &q->putters), 0, queue_put_k);
}

/* The fast paths of q:get() and q:put(item) awaited (aio_fast_op): the
 * operation's uservalue 1 is the queue's items table. A FIFO or LIFO
 * queue takes or stores the item right there when nobody waits to be
 * woken by it and the ring has room; anything else (a priority queue, a
 * wait, a wake-up, growth, shutdown) is left to the body. */
static int queue_get_fast(lua_State *L, aio_fast_op *op) {
  aio_queue *q = op->owner;
  if (q->count == 0 || q->kind == Q_PRIORITY || q->putters.head != NULL)
    return -1;
  lua_getiuservalue(L, 1, 1);
  take_top(L, q);
  return 1;
}

/* queue_put_fast for an operation holding its item (uservalue 3) */
static int put_fast_held(lua_State *L, aio_queue *q) {
  if (q->kind == Q_PRIORITY || q->spec != NULL ||
      (q->kind == Q_FIFO && q->count == q->cap))
    return -1;
  lua_getiuservalue(L, 1, 1);
  lua_getiuservalue(L, 1, 3);
  store_top(L, q);
  lua_pushnil(L); /* a kept operation lets go of its argument */
  lua_setiuservalue(L, 1, 3);
  q->unfinished++;
  return 0;
}

static int queue_put_fast(lua_State *L, aio_fast_op *op) {
  aio_queue *q = op->owner;
  if (q->shut || is_full(q) || q->getters.head != NULL)
    return -1;
  if (q->spec != op)
    return put_fast_held(L, q);
  q->spec = NULL; /* its item is in the push slot */
  q->count++;
  q->unfinished++;
  return 0;
}

static int l_queue_get(lua_State *L) {
  aio_queue *q = check_queue(L, 1);
  aio_fast_op *op = q->getop;
  if (op != NULL && op->c.state == AIO_CORO_STARTED) { /* arm it again */
    op->c.state = AIO_CORO_NEW;
    lua_getiuservalue(L, 1, Q_UV_GET);
    return 1;
  }
  return aio_fast_op_kept(L, &q->getop, 1, queue_get_body, Q_UV_GET,
                          queue_get_fast, Q_UV_ITEMS);
}

/* Arms the kept put operation op of the FIFO queue q, whose ring has
 * room, again, with the item at index 2 in the push slot (where the item
 * of op closed may be). */
static int arm_spec(lua_State *L, aio_queue *q, aio_fast_op *op) {
  lua_getiuservalue(L, 1, Q_UV_ITEMS);
  lua_pushvalue(L, 2); /* nil when absent */
  lua_rawseti(L, -2, push_slot(q));
  op->c.state = AIO_CORO_NEW;
  q->spec = op;
  lua_getiuservalue(L, 1, Q_UV_PUT);
  return 1;
}

static int l_queue_put(lua_State *L) {
  aio_queue *q = check_queue(L, 1);
  aio_fast_op *op = q->putop;
  if (op != NULL && op->c.state == AIO_CORO_STARTED && q->kind == Q_FIFO &&
      q->count < q->cap) /* a full ring grows when an item is added */
    return arm_spec(L, q, op);
  if (q->spec != NULL) /* armed and not run: a new operation */
    unspec_queue(L, q);
  aio_fast_op_kept(L, &q->putop, 2, queue_put_body, Q_UV_PUT,
                   queue_put_fast, Q_UV_ITEMS);
  q->putop->settle = queue_put_settle;
  return 1;
}

/* ------------------------------------------------------------------ */
/* task_done / join / shutdown                                         */

static int l_queue_task_done(lua_State *L) {
  aio_queue *q = check_queue(L, 1);
  if (q->unfinished <= 0)
    return aio_raisef(L, AIO_E_VALUE, "task_done() called too many times");
  if (--q->unfinished == 0)
    wake_all(L, q, &q->joiners);
  return 0;
}

/* [queue]: the join is over, unless it raises */
static int queue_join_k(lua_State *L, int status, lua_KContext ctx) {
  aio_queue *q = lua_touserdata(L, 1);
  aio_task *t = aio_current_task_of(L);
  int threw = aio_resume_take_throw(L, t);
  (void)status;
  (void)ctx;
  if (t->wstate != AIO_TW_WOKEN) /* a woken task left the list */
    aio_tq_remove(waiters(q, &q->joiners), t);
  if (threw)
    return lua_error(L);
  return 0;
}

static int queue_join_body(lua_State *L) {
  aio_queue *q = lua_touserdata(L, 1); /* checked by q:join() */
  aio_task *t;
  lua_settop(L, 1);
  if (q->unfinished == 0)
    return 0;
  t = aio_prim_enter(L, &q->loop, Q_UV_LOOP, "join");
  return aio_tq_wait(L, t, waiters(q, &q->joiners), 0, queue_join_k);
}

static int l_queue_join(lua_State *L) {
  check_queue(L, 1);
  return aio_ccoro_method(L, 1, queue_join_body);
}

/* shutdown([immediate]) */
static int l_queue_shutdown(lua_State *L) {
  aio_queue *q = check_queue(L, 1);
  int immediate = lua_toboolean(L, 2);
  lua_settop(L, 1);
  q->shut = 1;
  if (immediate) {
    while (q->count > 0) {
      take_item(L, q);
      lua_settop(L, 1);
      if (q->unfinished > 0)
        q->unfinished--;
    }
    if (q->unfinished == 0)
      wake_all(L, q, &q->joiners);
  }
  wake_all(L, q, &q->getters);
  wake_all(L, q, &q->putters);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Introspection                                                       */

static int l_queue_qsize(lua_State *L) {
  lua_pushinteger(L, check_queue(L, 1)->count);
  return 1;
}

static int l_queue_empty(lua_State *L) {
  lua_pushboolean(L, check_queue(L, 1)->count == 0);
  return 1;
}

static int l_queue_full(lua_State *L) {
  lua_pushboolean(L, is_full(check_queue(L, 1)));
  return 1;
}

static int l_queue__tostring(lua_State *L) {
  aio_queue *q = check_queue(L, 1);
  unsigned n;
  push_maxsize(L, q);
  lua_pushfstring(L, "<asyncio.%s maxsize=%s qsize=%d tasks=%I",
                  kind_names[q->kind], lua_tostring(L, -1), (int)q->count,
                  q->unfinished);
  if ((n = live_waiters(q, &q->getters)) > 0)
    lua_pushfstring(L, " getters[%d]", (int)n);
  else
    lua_pushliteral(L, "");
  if ((n = live_waiters(q, &q->putters)) > 0)
    lua_pushfstring(L, " putters[%d]", (int)n);
  else
    lua_pushliteral(L, "");
  lua_pushstring(L, q->shut ? " shutdown>" : ">");
  lua_concat(L, 4);
  return 1;
}

/* Metatables. q.maxsize is a field, as the other methods are: a queue's
 * metatable has as __index a table {maxsize = m} whose own metatable is
 * the class (AIO_QUEUE_MT, whose __index is the methods table). So a
 * method look-up (every q:get()) is two table look-ups in the VM and no
 * call of a function. The methods table holds maxsize = 0 itself, which
 * the {maxsize = m} tables hide: an unbounded queue (maxsize 0, the
 * default) has it as __index, one look-up. Queues of the same maxsize
 * share that metatable:
 * they are kept in a weak-valued registry table keyed by maxsize, so
 * there are as many as distinct maxsizes in use. */
static const char key_mts = 0;

/* Pushes q's key in that registry table: its maxsize; a string for NaN
 * (which no table takes as a key) and for a float of integral value
 * (which a table key would turn into the integer, sharing its maxsize). */
static void push_mt_key(lua_State *L, aio_queue *q) {
  if (q->maxsize != q->maxsize)
    lua_pushliteral(L, "nan");
  else if (!q->int_max && q->maxsize == floor(q->maxsize)) {
    lua_pushnumber(L, q->maxsize);
    lua_tostring(L, -1); /* "5.0", "inf" */
  } else
    push_maxsize(L, q);
}

/* Pushes the metatable of queues of q's maxsize, making it if needed. */
static void push_queue_mt(lua_State *L, aio_queue *q) {
  int cache;
  aio_push_weak_registry_table(L, &key_mts, "v");
  cache = lua_gettop(L);
  push_mt_key(L, q);
  if (lua_rawget(L, cache) == LUA_TTABLE) {
    lua_remove(L, cache);
    return;
  }
  lua_pop(L, 1);
  luaL_getmetatable(L, AIO_QUEUE_MT);            /* [cache, class] */
  lua_createtable(L, 1, 4);                      /* the metatable */
  aio_set_mt_kind(L, -1, AIO_K_QUEUE);
  lua_getfield(L, cache + 1, "__name");
  lua_setfield(L, -2, "__name");
  lua_getfield(L, cache + 1, "__tostring");
  lua_setfield(L, -2, "__tostring");
  if (q->maxsize == 0 && q->int_max) /* __index: the methods (maxsize 0) */
    lua_getfield(L, cache + 1, "__index");
  else {
    lua_createtable(L, 0, 1);                    /* its __index */
    push_maxsize(L, q);
    lua_setfield(L, -2, "maxsize");
    lua_pushvalue(L, cache + 1);
    lua_setmetatable(L, -2);
  }
  lua_setfield(L, -2, "__index");
  push_mt_key(L, q);
  lua_pushvalue(L, -2);
  lua_rawset(L, cache);                          /* cache[maxsize] = mt */
  lua_replace(L, cache);
  lua_settop(L, cache);
}

/* Queue([maxsize]), LifoQueue([maxsize]), PriorityQueue([maxsize]) */
static int queue_new(lua_State *L, int kind) {
  aio_queue *q;
  double maxsize = luaL_optnumber(L, 1, 0);
  int int_max = lua_isnoneornil(L, 1) || lua_isinteger(L, 1);
  q = lua_newuserdatauv(L, sizeof *q, Q_UV_COUNT);
  memset(q, 0, sizeof *q);
  q->tag = &queue_tag;
  q->kind = (unsigned char)kind;
  q->maxsize = maxsize; /* math.huge, -math.huge, NaN: as Python's inf, nan */
  q->int_max = (unsigned char)int_max;
  q->imaxsize = int_max ? lua_tointeger(L, 1) : 0;
  push_queue_mt(L, q);
  lua_setmetatable(L, -2);
  lua_newtable(L);
  lua_setiuservalue(L, -2, Q_UV_ITEMS);
  if (kind == Q_PRIORITY) {
    lua_newtable(L);
    lua_setiuservalue(L, -2, Q_UV_KEYS);
    lua_newtable(L);
    lua_setiuservalue(L, -2, Q_UV_SEQS);
  }
  return 1;
}

static int l_queue_new(lua_State *L) {
  return queue_new(L, Q_FIFO);
}

static int l_lifoqueue_new(lua_State *L) {
  return queue_new(L, Q_LIFO);
}

static int l_priorityqueue_new(lua_State *L) {
  return queue_new(L, Q_PRIORITY);
}

static const luaL_Reg queue_methods[] = {
    {"put", l_queue_put},
    {"get", l_queue_get},
    {"put_nowait", l_queue_put_nowait},
    {"get_nowait", l_queue_get_nowait},
    {"task_done", l_queue_task_done},
    {"join", l_queue_join},
    {"qsize", l_queue_qsize},
    {"empty", l_queue_empty},
    {"full", l_queue_full},
    {"shutdown", l_queue_shutdown},
    {NULL, NULL}};

static const luaL_Reg queue_funcs[] = {
    {"Queue", l_queue_new},
    {"LifoQueue", l_lifoqueue_new},
    {"PriorityQueue", l_priorityqueue_new},
    {NULL, NULL}};

/* Names of the C operations in reprs (aio_name_ops). */
static const aio_op_name op_names[] = {
    {queue_get_body, "Queue.get"},
    {queue_put_body, "Queue.put"},
    {queue_join_body, "Queue.join"},
    {NULL, NULL}};

void aio_open_queue(lua_State *L) {
  static const luaL_Reg none[] = {{NULL, NULL}};
  aio_name_ops(L, op_names);
  aio_newclass(L, AIO_QUEUE_MT, AIO_K_QUEUE, queue_methods, none);
  luaL_getmetatable(L, AIO_QUEUE_MT);
  lua_getfield(L, -1, "__index"); /* q.maxsize of unbounded queues */
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "maxsize");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_queue__tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, queue_funcs, 0);
}
