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
 * tries again. ch:close() wakes everybody: put raises, get drains what is
 * left and then raises (QueueShutDown "Channel is closed").
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AIO_CHANNEL_MT "asyncio.Channel"

typedef struct ch_waiter {
  struct ch_waiter *next;
  aio_remote *r;
  int futref;
} ch_waiter;

typedef struct aio_channel {
  uv_mutex_t mu;
  uv_cond_t cond;
  atomic_int refs;
  aio_msg **ring;
  unsigned cap, head, count;
  lua_Integer maxsize; /* <= 0: unbounded */
  int closed;
  ch_waiter *getters, *putters; /* parked tasks */
} aio_channel;

/* ------------------------------------------------------------------ */
/* The C object                                                        */

static void ch_retain(void *o) {
  atomic_fetch_add(&((aio_channel *)o)->refs, 1);
}

static void free_waiters(ch_waiter *w) {
  while (w) {
    ch_waiter *next = w->next;
    aio_remote_release(w->r);
    free(w);
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
    uv_cond_destroy(&ch->cond);
    uv_mutex_destroy(&ch->mu);
    free(ch);
  }
}

static int is_full(aio_channel *ch) {
  return ch->maxsize > 0 && (lua_Integer)ch->count >= ch->maxsize;
}

static void wake_job(aio_loop *loop, lua_State *L, void *p) {
  ch_waiter *w = p;
  (void)loop;
  if (L != NULL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->futref);
    if (((aio_future *)lua_touserdata(L, -1))->state == AIO_PENDING) {
      lua_pushboolean(L, 1);
      aio_future_set_result(L, lua_gettop(L) - 1, 1);
    }
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, w->futref);
  }
  aio_remote_release(w->r);
  free(w);
}

/* Wakes the parked tasks of a list taken from the channel (no mutex). */
static void wake_list(ch_waiter *w) {
  while (w) {
    ch_waiter *next = w->next;
    if (aio_remote_post(w->r, wake_job, w) != 0) {
      aio_remote_release(w->r);
      free(w);
    }
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

/* Tries to add msg; returns 1 if added (waking one parked getter), 0 if
 * full; -1 if closed. */
static int try_put(aio_channel *ch, aio_msg *msg) {
  ch_waiter *w;
  uv_mutex_lock(&ch->mu);
  if (ch->closed) {
    uv_mutex_unlock(&ch->mu);
    return -1;
  }
  if (is_full(ch)) {
    uv_mutex_unlock(&ch->mu);
    return 0;
  }
  if (ch->count == ch->cap) {
    unsigned ncap = ch->cap ? ch->cap * 2 : 16, i;
    aio_msg **nr = malloc(ncap * sizeof *nr);
    if (nr == NULL) {
      uv_mutex_unlock(&ch->mu);
      return -2;
    }
    for (i = 0; i < ch->count; i++)
      nr[i] = ch->ring[(ch->head + i) & (ch->cap - 1)];
    free(ch->ring);
    ch->ring = nr;
    ch->cap = ncap;
    ch->head = 0;
  }
  ch->ring[(ch->head + ch->count) & (ch->cap - 1)] = msg;
  ch->count++;
  w = take_one(&ch->getters);
  uv_cond_broadcast(&ch->cond);
  uv_mutex_unlock(&ch->mu);
  wake_list(w);
  return 1;
}

/* Tries to take a message: 1 (in *out), 0 if empty, -1 if closed and
 * empty. */
static int try_get(aio_channel *ch, aio_msg **out) {
  ch_waiter *w;
  uv_mutex_lock(&ch->mu);
  if (ch->count == 0) {
    int closed = ch->closed;
    uv_mutex_unlock(&ch->mu);
    return closed ? -1 : 0;
  }
  *out = ch->ring[ch->head];
  ch->head = (ch->head + 1) & (ch->cap - 1);
  ch->count--;
  w = take_one(&ch->putters);
  uv_cond_broadcast(&ch->cond);
  uv_mutex_unlock(&ch->mu);
  wake_list(w);
  return 1;
}

/* Waits for a change, at most until deadline (0: forever). Returns 0 on
 * time-out. Mutex held. */
static int wait_change(aio_channel *ch, uint64_t deadline) {
  uint64_t now;
  if (deadline == 0) {
    uv_cond_wait(&ch->cond, &ch->mu);
    return 1;
  }
  now = uv_hrtime();
  if (now >= deadline)
    return 0;
  return uv_cond_timedwait(&ch->cond, &ch->mu, deadline - now) == 0 ||
         uv_hrtime() < deadline;
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

static uint64_t deadline_of(lua_State *L, int idx) {
  double t;
  if (lua_isnoneornil(L, idx))
    return 0;
  t = luaL_checknumber(L, idx);
  return uv_hrtime() + (uint64_t)((t > 0 ? t : 0) * 1e9) + 1;
}

static int raise_closed(lua_State *L) {
  return aio_raisef(L, AIO_E_QUEUE_SHUTDOWN, "Channel is closed");
}

/* ch:put(v [, timeout]) blocks this thread while the channel is full. */
static int l_channel_put(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  luaL_checkany(L, 2);
  uint64_t deadline = deadline_of(L, 3);
  aio_msg *msg = aio_msg_pack(L, 2, 1, 0);
  for (;;) {
    int r = try_put(ch, msg);
    if (r == 1)
      return 0;
    if (r < 0) {
      aio_msg_free(msg);
      return r == -1 ? raise_closed(L) : luaL_error(L, "not enough memory");
    }
    uv_mutex_lock(&ch->mu);
    r = is_full(ch) && !ch->closed ? wait_change(ch, deadline) : 1;
    uv_mutex_unlock(&ch->mu);
    if (!r) {
      aio_msg_free(msg);
      return aio_raisef(L, AIO_E_TIMEOUT, "Channel put timed out");
    }
  }
}

/* ch:get([timeout]) blocks this thread while the channel is empty. */
static int l_channel_get(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  uint64_t deadline = deadline_of(L, 2);
  aio_msg *msg;
  for (;;) {
    int r = try_get(ch, &msg), n;
    if (r == 1) {
      lua_settop(L, 1);
      n = aio_msg_unpack(L, msg);
      aio_msg_free(msg);
      return n;
    }
    if (r < 0)
      return raise_closed(L);
    uv_mutex_lock(&ch->mu);
    r = ch->count == 0 && !ch->closed ? wait_change(ch, deadline) : 1;
    uv_mutex_unlock(&ch->mu);
    if (!r)
      return aio_raisef(L, AIO_E_TIMEOUT, "Channel get timed out");
  }
}

/* Parks the running task on list (mutex held by the caller, released
 * here) and awaits its future with continuation k. The stack is
 * [channel, ...] with room above. */
static int park(lua_State *L, aio_task *t, aio_channel *ch, ch_waiter **list,
                lua_KFunction k) {
  ch_waiter *w = malloc(sizeof *w);
  int fidx;
  if (w == NULL) {
    uv_mutex_unlock(&ch->mu);
    return luaL_error(L, "not enough memory");
  }
  aio_future_new(L, t->fut.loop);
  fidx = lua_gettop(L);
  lua_pushvalue(L, fidx);
  w->futref = luaL_ref(L, LUA_REGISTRYINDEX);
  w->r = t->fut.loop->remote;
  aio_remote_retain(w->r);
  w->next = NULL;
  while (*list) /* FIFO: the first parked is the first woken */
    list = &(*list)->next;
  *list = w;
  uv_mutex_unlock(&ch->mu);
  return aio_await_future(L, t, fidx, 0, k);
}

/* After waking (or being cancelled): drop our waiter if it is still
 * parked; the future is on top (below a thrown error). */
static void unpark(lua_State *L, aio_channel *ch, ch_waiter **list,
                   int fidx) {
  ch_waiter **p, *mine = NULL;
  uv_mutex_lock(&ch->mu);
  for (p = list; *p; p = &(*p)->next) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, (*p)->futref);
    if (lua_rawequal(L, -1, fidx)) {
      lua_pop(L, 1);
      mine = *p;
      *p = mine->next;
      break;
    }
    lua_pop(L, 1);
  }
  uv_mutex_unlock(&ch->mu);
  if (mine) {
    luaL_unref(L, LUA_REGISTRYINDEX, mine->futref);
    aio_remote_release(mine->r);
    free(mine);
  }
}

static int aget_body(lua_State *L);
static int aput_body(lua_State *L);

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

static int aget_k(lua_State *L, int status, lua_KContext ctx) {
  aio_channel *ch = check_channel(L, 1);
  int threw = aio_resume_take_throw(L, aio_current_task_of(L));
  (void)status;
  (void)ctx;
  unpark(L, ch, &ch->getters, 2);
  if (threw || ((aio_future *)lua_touserdata(L, 2))->state == AIO_CANCELLED) {
    pass_wakeup(ch, &ch->getters, 0);
    if (threw)
      return lua_error(L);
    return aio_future_push_result(L, 2);
  }
  lua_settop(L, 1);
  return aget_body(L);
}

/* The body of ch:aget(): [channel] */
static int aget_body(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  aio_task *t = aio_check_await(L, "aget");
  aio_msg *msg;
  int r;
  lua_settop(L, 1);
  r = try_get(ch, &msg);
  if (r == 1) {
    int n = aio_msg_unpack(L, msg);
    aio_msg_free(msg);
    return n;
  }
  if (r < 0)
    return raise_closed(L);
  uv_mutex_lock(&ch->mu);
  if (ch->count > 0 || ch->closed) { /* changed meanwhile: try again */
    uv_mutex_unlock(&ch->mu);
    return aget_body(L);
  }
  return park(L, t, ch, &ch->getters, aget_k);
}

static int aput_k(lua_State *L, int status, lua_KContext ctx) {
  aio_channel *ch = check_channel(L, 1);
  int threw = aio_resume_take_throw(L, aio_current_task_of(L));
  (void)status;
  (void)ctx;
  unpark(L, ch, &ch->putters, 3);
  if (threw || ((aio_future *)lua_touserdata(L, 3))->state == AIO_CANCELLED) {
    pass_wakeup(ch, &ch->putters, 1);
    if (threw)
      return lua_error(L);
    return aio_future_push_result(L, 3);
  }
  lua_settop(L, 2);
  return aput_body(L);
}

/* The body of ch:aput(v): [channel, v] */
static int aput_body(lua_State *L) {
  aio_channel *ch = check_channel(L, 1);
  aio_task *t = aio_check_await(L, "aput");
  aio_msg *msg;
  int r;
  lua_settop(L, 2);
  msg = aio_msg_pack(L, 2, 1, 0);
  r = try_put(ch, msg);
  if (r == 1)
    return 0;
  aio_msg_free(msg);
  if (r < 0)
    return r == -1 ? raise_closed(L) : luaL_error(L, "not enough memory");
  uv_mutex_lock(&ch->mu);
  if (!is_full(ch) || ch->closed) {
    uv_mutex_unlock(&ch->mu);
    return aput_body(L);
  }
  return park(L, t, ch, &ch->putters, aput_k);
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
  uv_cond_broadcast(&ch->cond);
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
  aio_channel *ch = calloc(1, sizeof *ch);
  if (ch == NULL || uv_mutex_init(&ch->mu) != 0) {
    free(ch);
    return luaL_error(L, "not enough memory");
  }
  uv_cond_init(&ch->cond);
  atomic_init(&ch->refs, 0);
  ch->maxsize = maxsize;
  ch_push(L, ch);
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

void aio_open_channel(lua_State *L) {
  aio_newclass(L, AIO_CHANNEL_MT, AIO_K_OTHER, channel_methods,
               channel_metamethods);
  aio_shared_register(&channel_type);
  lua_pushcfunction(L, l_channel_new);
  lua_setfield(L, -2, "Channel");
}
