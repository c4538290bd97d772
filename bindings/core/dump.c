/*
 * dump.c - what asyncio.dump_tasks needs from the core, and the two
 * triggers with which the CLI prints it while a loop runs.
 *
 *   _loops()            -> {loop = n} for the state's open loops, n
 *                          counting loops in order of creation
 *   _task_awaits(task)  -> id, state, awaited future or nil, object it waits
 *                          through (a Lock, Queue, StreamReader...) or nil,
 *                          wake-up time of a sleep or nil
 *   _set_dump_triggers(on_sigquit, hang_seconds)
 *                       -> loops started from now on print the dump
 *                          (require "asyncio".dump_tasks(io.stderr)) on
 *                          SIGQUIT, and when no callback or task step ran
 *                          for hang_seconds (0: never)
 *
 * Both triggers only count in their uv callbacks; aio_dump_dispatch,
 * called after each poll, prints. A script's own SIGQUIT handler
 * (add_signal_handler) replaces the SIGQUIT trigger, as for SIGINT.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

static const char key_loops = 0;
/* stamps of loops, process-wide: loops are made in every thread */
static atomic_llong loops_made = 0;
static int dump_on_sigquit = 0;
static double dump_hang = 0;

/* Adds the loop userdata on top (left there) to the weak list of loops. */
void aio_dump_register_loop(lua_State *L) {
  aio_push_weak_registry_table(L, &key_loops, "k");
  lua_pushvalue(L, -2);
  lua_pushinteger(L, (lua_Integer)atomic_fetch_add(&loops_made, 1) + 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* _loops() -> {loop = creation stamp} for the open loops of this state */
static int l__loops(lua_State *L) {
  lua_newtable(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_loops) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* [result, loops, loop, stamp] */
      aio_loop *loop = lua_touserdata(L, -2);
      if (loop != NULL && !loop->closed) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
      } else
        lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return 1;
}

/* The wake-up time of sleeping task t (its live timer entry), or -1. */
static double sleep_when(aio_task *t) {
  aio_loop *loop = t->fut.loop;
  unsigned i;
  for (i = 0; i < loop->hcount; i++) {
    aio_timer *e = &loop->heap[i];
    if (e->kind == AIO_R_SLEEP && e->p == t && e->gen == t->sleep_gen)
      return e->when;
  }
  return -1;
}

/* Pushes the future t waits on and the object it waits through (nil if
 * none): the C function that suspended the task keeps that object
 * (lock:acquire's lock, reader:read's reader) at index 1 of its frame. */
static void push_via(lua_State *L, aio_task *t) {
  if (lua_gettop(t->co) >= 1) {
    lua_checkstack(t->co, 1);
    lua_pushvalue(t->co, 1);
    lua_xmove(t->co, L, 1);
    if (!lua_isuserdata(L, -1) && !lua_istable(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
  } else
    lua_pushnil(L);
}

static void push_waiting(lua_State *L, aio_task *t) {
  aio_push_waiter(L, t);
  if (t->waiter_idx != 1)
    push_via(L, t);
  else
    lua_pushnil(L);
}

/* _task_awaits(task) -> id, state, future|nil, via|nil, when|nil; state
 * is "running", "ready", "waiting", "sleeping" or "done". */
static int l__task_awaits(lua_State *L) {
  aio_task *t = aio_check_task(L, 1);
  double when;
  lua_pushinteger(L, t->id);
  if (t->fut.state != AIO_PENDING)
    lua_pushliteral(L, "done");
  else if (t->fut.loop->current == t)
    lua_pushliteral(L, "running");
  else if (t->wait_kind == AIO_WAIT_FUTURE) {
    lua_pushliteral(L, "waiting");
    push_waiting(L, t);
    return 4;
  } else if (t->wait_kind == AIO_WAIT_PRIM) {
    /* no Future: its repr stands for it, the primitive is at index 1 of
     * the suspended C function (aio_tq_wait) */
    lua_pushliteral(L, "waiting");
    lua_pushliteral(L, AIO_PRIM_WAIT_REPR);
    push_via(L, t);
    return 4;
  } else if (t->wait_kind == AIO_WAIT_SLEEP) {
    lua_pushliteral(L, "sleeping");
    lua_pushnil(L);
    lua_pushnil(L);
    when = sleep_when(t);
    if (when >= 0)
      lua_pushnumber(L, when);
    else
      lua_pushnil(L);
    return 5;
  } else
    lua_pushliteral(L, "ready");
  return 2;
}

static int l__set_dump_triggers(lua_State *L) {
  dump_on_sigquit = lua_toboolean(L, 1);
  dump_hang = luaL_optnumber(L, 2, 0);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Triggers                                                            */

static void on_sigquit(uv_signal_t *h, int signum) {
  aio_loop *loop = h->data;
  (void)signum;
  loop->quits++;
}

static void on_hang_tick(uv_timer_t *h) {
  aio_loop *loop = h->data;
  loop->hang_tick = 1;
}

static void start_sigquit(aio_loop *loop) {
  if (dump_on_sigquit && loop->sigquit == NULL)
    loop->sigquit = aio_default_watch(loop, SIGQUIT, on_sigquit);
}

static void start_hang_watch(aio_loop *loop) {
  uint64_t every;
  if (dump_hang <= 0 || loop->hang_timer)
    return;
  loop->hang_timer = calloc(1, sizeof *loop->hang_timer);
  if (loop->hang_timer == NULL)
    return;
  uv_timer_init(loop->uv, loop->hang_timer);
  loop->hang_timer->data = loop;
  loop->handles_open++;
  /* ticks at a quarter of the period: a hang is seen within 1.25 of it */
  every = (uint64_t)(dump_hang * 250);
  if (every < 1)
    every = 1;
  uv_timer_start(loop->hang_timer, on_hang_tick, every, every);
  uv_unref((uv_handle_t *)loop->hang_timer);
  loop->hang_progress = loop->progress;
  loop->hang_since = uv_hrtime();
  loop->hang_dumped = 0;
}

void aio_dump_loop_started(aio_loop *loop) {
  start_sigquit(loop);
  start_hang_watch(loop);
}

void aio_dump_sigquit_taken(aio_loop *loop) {
  if (loop->sigquit) {
    aio_loop_close_handle(loop, (uv_handle_t *)loop->sigquit);
    loop->sigquit = NULL;
  }
}

void aio_dump_loop_stopped(aio_loop *loop) {
  aio_dump_sigquit_taken(loop);
  if (loop->hang_timer) {
    aio_loop_close_handle(loop, (uv_handle_t *)loop->hang_timer);
    loop->hang_timer = NULL;
  }
}

/* Prints the dump on stderr; an error in it is printed, not raised. */
static void print_dump(lua_State *L, const char *why) {
  int top = lua_gettop(L);
  fprintf(stderr, "%s\n", why);
  fflush(stderr);
  luaL_checkstack(L, 4, NULL);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "asyncio");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK &&
      lua_getfield(L, -1, "dump_tasks") == LUA_TFUNCTION) {
    if (lua_pcall(L, 0, 0, 0) != LUA_OK)
      fprintf(stderr, "dump_tasks failed: %s\n", lua_tostring(L, -1));
  } else if (lua_type(L, -1) == LUA_TSTRING)
    fprintf(stderr, "dump_tasks failed: %s\n", lua_tostring(L, -1));
  fflush(stderr);
  lua_settop(L, top);
}

void aio_dump_dispatch(lua_State *L, aio_loop *loop) {
  if (loop->quits != loop->quits_seen) {
    loop->quits_seen = loop->quits;
    print_dump(L, "SIGQUIT: the tasks of every loop (the program goes on)");
  }
  if (loop->hang_tick) {
    uint64_t now = uv_hrtime();
    loop->hang_tick = 0;
    if (loop->progress != loop->hang_progress) {
      loop->hang_progress = loop->progress;
      loop->hang_since = now;
      loop->hang_dumped = 0;
    } else if (!loop->hang_dumped &&
               (double)(now - loop->hang_since) / 1e9 >= dump_hang) {
      char why[96];
      loop->hang_dumped = 1;
      snprintf(why, sizeof why, "no progress for %g seconds: the tasks of "
               "every loop", dump_hang);
      print_dump(L, why);
    }
  }
}

static const luaL_Reg dump_funcs[] = {
    {"_loops", l__loops},
    {"_task_awaits", l__task_awaits},
    {"_set_dump_triggers", l__set_dump_triggers},
    {NULL, NULL}};

void aio_open_dump(lua_State *L) {
  luaL_setfuncs(L, dump_funcs, 0);
}
