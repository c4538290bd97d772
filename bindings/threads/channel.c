/*
 * channel.c - Channel(maxsize): a queue between threads, shared by
 * reference (send it to another thread and both ends see one channel).
 *
 * Values are packed on the way in and unpacked on the way out
 * (transfer.c), so any sendable value crosses, nil included. Plain threads
 * block: ch:put(v [, timeout]) while full, ch:get([timeout]) while empty
 * (TimeoutError when the time-out expires). Tasks await instead, without
 * blocking their loop: await(ch:aput(v)), await(ch:aget()); a task that
 * must wait parks a loop Future with the channel, which the thread that
 * changes the channel wakes through the loop's post queue; the task then
 * tries again. Each item added (or slot freed) wakes one blocked thread
 * and one parked task: either may take it, the other waits again.
 * ch:close() wakes everybody: put raises, get drains what is left and
 * then raises (QueueShutDown "Channel is closed").
 *
 * No Lua function is called with the mutex held.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AIO_CHANNEL_MT "asyncio.Channel"

/* A parked task: the Future it awaits, woken through its loop. */
typedef struct ch_waiter {
  aio_post node;          /* posted to the task's loop to wake it */
  struct ch_waiter *next; /* in ch->getters or ch->putters */
  aio_remote *r;          /* the task's loop */
  int futref;             /* the Future, in that loop's state registry */
} ch_waiter;

typedef struct aio_channel {
  uv_mutex_t mu;
  uv_cond_t readable, writable; /* blocked threads: an item, a free slot */
  atomic_int refs;
  aio_msg **ring;
  unsigned cap, head, count;
  lua_Integer maxsize; /* <= 0: unbounded */
  int closed;
  ch_waiter *getters, *putters; /* parked tasks, in the order they parked */
} aio_channel;

/* Outcomes of one attempt at an operation. */
enum { CH_DONE, CH_WAIT, CH_CLOSED, CH_TIMEOUT, CH_NOMEM };

/* ------------------------------------------------------------------ */
/* Parked tasks                                                        */

/* Frees a waiter; L is its loop's state, or NULL once that loop closed. */
static void waiter_free(lua_State *L, ch_waiter *w) {
  if (L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, w->futref);
  aio_remote_release(w->r);
  free(w);
}

/* A posted waiter, on its loop's thread: completes its Future. */
static void wake_run(aio_loop *loop, lua_State *L, void *p) {
  ch_waiter *w = p;
  (void)loop;
  if (L != NULL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->futref);
    aio_wake_future(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  waiter_free(L, w);
}

/* Wakes the parked tasks of a list taken from the channel (no mutex). */
static void wake_list(ch_waiter *w) {
  while (w) {
    ch_waiter *next = w->next;
    w->node.fn = wake_run;
    w->node.data = w;
    if (aio_remote_post_node(w->r, &w->node) != 0)
      wake_run(NULL, NULL, w);
    w = next;
  }
}

/* Takes the first waiter of *list (mutex held). */
static ch_waiter *take_one(ch_waiter **list) {
  ch_waiter *w = *list;
  if (w) {
    *list = w->next;
    w->next = NULL;
  }
  return w;
}

/* Pushes a new Future of t's loop and returns a waiter for it. */
static ch_waiter *waiter_new(lua_State *L, aio_task *t) {
  ch_waiter *w;
  int futref;
  aio_future_new(L, t->fut.loop);
  lua_pushvalue(L, -1);
  futref = luaL_ref(L, LUA_REGISTRYINDEX);
  w = malloc(sizeof *w);
  if (w == NULL) {
    luaL_unref(L, LUA_REGISTRYINDEX, futref);
    luaL_error(L, "not enough memory");
  }
  w->futref = futref;
  w->r = t->fut.loop->remote;
  aio_remote_retain(w->r);
  w->next = NULL;
  return w;
}

/* ------------------------------------------------------------------ */
/* The C object                                                        */

static void ch_retain(void *o) {
  atomic_fetch_add(&((aio_channel *)o)->refs, 1);
}

static void free_waiters(ch_waiter *w) {
  while (w) {
    ch_waiter *next = w->next;
    waiter_free(NULL, w);
    w = next;
  }
}

static void ch_release(void *o) {
  aio_channel *ch = o;
  if (atomic_fetch_sub(&ch->refs, 1) == 1) {
    unsigned i;
    for (i = 0; i < ch->count; i++)
      aio_msg_free(ch->ring[(ch->head + i) & (ch->cap - 1)]);
    free(ch->ring);
    free_waiters(ch->getters);
    free_waiters(ch->putters);
    uv_cond_destroy(&ch->readable);
    uv_cond_destroy(&ch->writable);
    uv_mutex_destroy(&ch->mu);
    free(ch);
  }
}

static int is_full(aio_channel *ch) {
  return ch->maxsize > 0 && (lua_Integer)ch->count >= ch->maxsize;
}

/* Doubles the ring (mutex held); 0 when out of memory. */
static int grow(aio_channel *ch) {
  unsigned ncap = ch->cap ? ch->cap * 2 : 16, i;
  aio_msg **nr = malloc(ncap * sizeof *nr);
  if (nr == NULL)
    return 0;
  for (i = 0; i < ch->count; i++)
    nr[i] = ch->ring[(ch->head + i) & (ch->cap - 1)];
  free(ch->ring);
  ch->ring = nr;
  ch->cap = ncap;
  ch->head = 0;
  return 1;
}

/* Adds msg (mutex held): CH_DONE, waking one getter of each kind (the
 * task in *wake, to post once the mutex is released); CH_WAIT while full;
 * CH_CLOSED; CH_NOMEM. */
static int put_locked(aio_channel *ch, aio_msg *msg, ch_waiter **wake) {
  if (ch->closed)
    return CH_CLOSED;
  if (is_full(ch))
    return CH_WAIT;
  if (ch->count == ch->cap && !grow(ch))
    return CH_NOMEM;
  ch->ring[(ch->head + ch->count) & (ch->cap - 1)] = msg;
  ch->count++;
  *wake = take_one(&ch->getters);
  uv_cond_signal(&ch->readable);
  return CH_DONE;
}

/* Takes the oldest item into *out (mutex held): CH_DONE, waking one
 * putter of each kind (the task in *wake); CH_WAIT while empty;
 * CH_CLOSED once closed and drained. */
static int get_locked(aio_channel *ch, aio_msg **out, ch_waiter **wake) {
  if (ch->count == 0)
    return ch->closed ? CH_CLOSED : CH_WAIT;
  *out = ch->ring[ch->head];
  ch->head = (ch->head + 1) & (ch->cap - 1);
  ch->count--;
  *wake = take_one(&ch->putters);
  uv_cond_signal(&ch->writable);
  return CH_DONE;
}

/* ------------------------------------------------------------------ */
/* Lua side                                                            */

typedef struct ch_ud {
  aio_channel *ch;
} ch_ud;

static void *ch_test(lua_State *L, int idx) {
  ch_ud *ud = luaL_testudata(L, idx, AIO_CHANNEL_MT);
  return ud ? ud->ch : NULL;
}

static void ch_push(lua_State *L, void *o) {
  ch_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->ch = NULL;
  luaL_setmetatable(L, AIO_CHANNEL_MT);
  ch_retain(o);
  ud->ch = o;
}

static const aio_shared_type channel_type = {"asyncio.Channel", ch_test,
                                             ch_retain, ch_release, ch_push};

static aio_channel *check_channel(lua_State *L, int idx) {
  aio_channel *ch = ch_test(L, idx);
  if (ch == NULL)
    luaL_typeerror(L, idx, AIO_CHANNEL_MT);
  return ch;
}

/* Raises the error of a failed "put" or "get". */
static int raise_status(lua_State *L, int status, const char *op) {
  if (status == CH_CLOSED)
    return aio_raisef(L, AIO_E_QUEUE_SHUTDOWN, "Channel is closed");
  if (status == CH_TIMEOUT)
    return aio_raisef(L, AIO_E_TIMEOUT, "Channel %s timed out", op);
  return luaL_error(L, "not enough memory");
}

/* ch:put(v [, timeout]) blocks this thread while the channel is full. */
static int l_channel_put(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  uint64_t deadline;
  ch_waiter *wake = NULL;
  aio_msg *msg;
  int st;
  luaL_checkany(L, 2);
  deadline = aio_deadline_arg(L, 3);
  msg = aio_msg_pack(L, 2, 1, 0);
  aio_blocking_begin();
  uv_mutex_lock(&ch->mu);
  while ((st = put_locked(ch, msg, &wake)) == CH_WAIT &&
         aio_cond_wait_until(&ch->writable, &ch->mu, deadline))
    ;
  uv_mutex_unlock(&ch->mu);
  aio_blocking_end();
  wake_list(wake);
  if (st == CH_DONE)
    return 0;
  aio_msg_free(msg);
  return raise_status(L, st == CH_WAIT ? CH_TIMEOUT : st, "put");
}

/* ch:get([timeout]) blocks this thread while the channel is empty. */
static int l_channel_get(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  uint64_t deadline = aio_deadline_arg(L, 2);
  ch_waiter *wake = NULL;
  aio_msg *msg;
  int st, n;
  aio_blocking_begin();
  uv_mutex_lock(&ch->mu);
  while ((st = get_locked(ch, &msg, &wake)) == CH_WAIT &&
         aio_cond_wait_until(&ch->readable, &ch->mu, deadline))
    ;
  uv_mutex_unlock(&ch->mu);
  aio_blocking_end();
  wake_list(wake);
  if (st != CH_DONE)
    return raise_status(L, st == CH_WAIT ? CH_TIMEOUT : st, "get");
  lua_settop(L, 1);
  n = aio_msg_unpack(L, msg);
  aio_msg_free(msg);
  return n;
}

/* One attempt of a task's aput (with *msg) or aget (into *msg). When it
 * must wait, the task is parked with a new Future, pushed, and CH_WAIT
 * returned; the Future is made without the mutex, so the operation is
 * tried again before parking. */
static int try_or_park(lua_State *L, aio_task *t, aio_channel *ch,
                       int for_put, aio_msg **msg) {
  ch_waiter **list = for_put ? &ch->putters : &ch->getters;
  ch_waiter *w = NULL, *wake = NULL;
  int st;
  for (;;) {
    uv_mutex_lock(&ch->mu);
    st = for_put ? put_locked(ch, *msg, &wake) : get_locked(ch, msg, &wake);
    if (st == CH_WAIT && w != NULL) {
      while (*list) /* FIFO: the first parked is the first woken */
        list = &(*list)->next;
      *list = w;
    }
    uv_mutex_unlock(&ch->mu);
    if (st != CH_WAIT || w != NULL)
      break;
    w = waiter_new(L, t);
  }
  if (w != NULL && st != CH_WAIT) { /* not needed after all */
    waiter_free(L, w);
    lua_pop(L, 1);
  }
  wake_list(wake);
  return st;
}

/* Drops the waiter of the Future at fidx if it is still parked. */
static void unpark(lua_State *L, aio_channel *ch, ch_waiter **list,
                   int fidx) {
  ch_waiter **p, *mine = NULL;
  luaL_checkstack(L, 1, NULL);
  uv_mutex_lock(&ch->mu);
  for (p = list; *p; p = &(*p)->next) {
    int found;
    lua_rawgeti(L, LUA_REGISTRYINDEX, (*p)->futref);
    found = lua_rawequal(L, -1, fidx);
    lua_pop(L, 1);
    if (found) {
      mine = *p;
      *p = mine->next;
      break;
    }
  }
  uv_mutex_unlock(&ch->mu);
  if (mine)
    waiter_free(L, mine);
}

/* A cancelled task may have been the one woken for an item (a slot): it
 * will not take it, so wake the next parked one instead. */
static void pass_wakeup(aio_channel *ch, ch_waiter **list, int for_put) {
  ch_waiter *w = NULL;
  uv_mutex_lock(&ch->mu);
  if (for_put ? !is_full(ch) : ch->count > 0)
    w = take_one(list);
  uv_mutex_unlock(&ch->mu);
  wake_list(w);
}

static int aget_body(lua_State *L);
static int aput_body(lua_State *L);

/* A parked aget (for_put 0) or aput (1) woke up, or was cancelled: the
 * stack is [channel, (v,) future] (and a thrown error). */
static int parked_k(lua_State *L, int status, lua_KContext for_put) {
  aio_channel *ch = check_channel(L, 1);
  ch_waiter **list = for_put ? &ch->putters : &ch->getters;
  int fidx = 2 + (int)for_put;
  int threw = aio_resume_take_throw(L, aio_current_task_of(L));
  (void)status;
  unpark(L, ch, list, fidx);
  if (threw || ((aio_future *)lua_touserdata(L, fidx))->state == AIO_CANCELLED) {
    pass_wakeup(ch, list, (int)for_put);
    if (threw)
      return lua_error(L);
    return aio_future_push_result(L, fidx);
  }
  lua_settop(L, fidx - 1);
  return for_put ? aput_body(L) : aget_body(L);
}

/* The body of ch:aget(): [channel] */
static int aget_body(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  aio_task *t = aio_check_await(L, "aget");
  aio_msg *msg;
  int st, n;
  lua_settop(L, 1);
  st = try_or_park(L, t, ch, 0, &msg);
  if (st == CH_WAIT)
    return aio_await_future(L, t, 2, 0, parked_k);
  if (st != CH_DONE)
    return raise_status(L, st, "get");
  n = aio_msg_unpack(L, msg);
  aio_msg_free(msg);
  return n;
}

/* The body of ch:aput(v): [channel, v] */
static int aput_body(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  aio_task *t = aio_check_await(L, "aput");
  aio_msg *msg;
  int st;
  lua_settop(L, 2);
  msg = aio_msg_pack(L, 2, 1, 0);
  st = try_or_park(L, t, ch, 1, &msg);
  if (st == CH_DONE)
    return 0;
  aio_msg_free(msg); /* packed again when the task retries */
  if (st == CH_WAIT)
    return aio_await_future(L, t, 3, 1, parked_k);
  return raise_status(L, st, "put");
}

static int l_channel_aget(lua_State *L) {
  check_channel(L, 1);
  return aio_ccoro_method(L, 1, aget_body);
}

static int l_channel_aput(lua_State *L) {
  check_channel(L, 1);
  luaL_checkany(L, 2);
  return aio_ccoro_method(L, 2, aput_body);
}

static int l_channel_close(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  ch_waiter *g, *p;
  uv_mutex_lock(&ch->mu);
  ch->closed = 1;
  g = ch->getters;
  p = ch->putters;
  ch->getters = ch->putters = NULL;
  uv_cond_broadcast(&ch->readable);
  uv_cond_broadcast(&ch->writable);
  uv_mutex_unlock(&ch->mu);
  wake_list(g);
  wake_list(p);
  return 0;
}

static int l_channel_qsize(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  unsigned n;
  uv_mutex_lock(&ch->mu);
  n = ch->count;
  uv_mutex_unlock(&ch->mu);
  lua_pushinteger(L, n);
  return 1;
}

static int l_channel_is_closed(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  int c;
  uv_mutex_lock(&ch->mu);
  c = ch->closed;
  uv_mutex_unlock(&ch->mu);
  lua_pushboolean(L, c);
  return 1;
}

static int l_channel__gc(lua_State *L) {
  ch_ud *ud = luaL_checkudata(L, 1, AIO_CHANNEL_MT);
  if (ud->ch)
    ch_release(ud->ch);
  ud->ch = NULL;
  return 0;
}

static int l_channel__tostring(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  uv_mutex_lock(&ch->mu);
  lua_pushfstring(L, "<Channel maxsize=%I qsize=%d%s>", ch->maxsize,
                  (int)ch->count, ch->closed ? " closed" : "");
  uv_mutex_unlock(&ch->mu);
  return 1;
}

/* Channel([maxsize]): 0 or none is unbounded */
static int l_channel_new(lua_State *L) {
  lua_Integer maxsize = luaL_optinteger(L, 1, 0);
  ch_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  aio_channel *ch;
  ud->ch = NULL;
  luaL_setmetatable(L, AIO_CHANNEL_MT);
  ch = calloc(1, sizeof *ch);
  if (ch == NULL || uv_mutex_init(&ch->mu) != 0) {
    free(ch);
    return luaL_error(L, "not enough memory");
  }
  uv_cond_init(&ch->readable);
  uv_cond_init(&ch->writable);
  atomic_init(&ch->refs, 1);
  ch->maxsize = maxsize;
  ud->ch = ch; /* the userdata's reference */
  return 1;
}

static const luaL_Reg channel_methods[] = {
    {"put", l_channel_put},
    {"get", l_channel_get},
    {"aput", l_channel_aput},
    {"aget", l_channel_aget},
    {"close", l_channel_close},
    {"qsize", l_channel_qsize},
    {"is_closed", l_channel_is_closed},
    {NULL, NULL}};

static const luaL_Reg channel_metamethods[] = {
    {"__gc", l_channel__gc},
    {"__tostring", l_channel__tostring},
    {NULL, NULL}};

/* Names of the C operations in reprs (aio_name_ops). */
static const aio_op_name op_names[] = {
    {aget_body, "Channel.aget"},
    {aput_body, "Channel.aput"},
    {NULL, NULL}};

void aio_open_channel(lua_State *L) {
  aio_name_ops(L, op_names);
  aio_newclass(L, AIO_CHANNEL_MT, AIO_K_OTHER, channel_methods,
               channel_metamethods);
  aio_shared_register(&channel_type);
  lua_pushcfunction(L, l_channel_new);
  lua_setfield(L, -2, "Channel");
}
