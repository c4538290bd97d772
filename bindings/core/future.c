/*
 * future.c - Future and Task.
 *
 * A Future is a userdata holding its state in C and its values in user
 * values (aio_future, AIO_FU_*). Done-callbacks are never called inline:
 * completing a future appends one ready entry per callback, in
 * registration order. The wakeup of a task awaiting the future is stored
 * among them as a lightuserdata (the task pointer): the task is anchored by
 * its loop while pending, so awaiting allocates nothing.
 *
 * A Task is a Future that runs a Coroutine object on its own Lua thread.
 * The thread's main function is a C trampoline that calls the coroutine's
 * function under lua_pcallk, so that when the body raises, its pending
 * to-be-closed variables are closed during the unwinding *inside* the
 * coroutine, where their __close may still await (TaskGroup, timeout).
 * aio_task_step resumes the thread once, as Python's Task.__step does.
 *
 * Futures only get a finalizer (and then count as a reference to their
 * loop) once they hold an exception: that is the only case in which
 * collecting one reports something. Tasks always have one.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Default task names count across the whole process, as Python's do. */
static atomic_llong task_counter;

#define CHECK_MSG_FUTURE "asyncio.Future"

/* ------------------------------------------------------------------ */
/* Type checks                                                         */

aio_future *aio_test_future(lua_State *L, int idx) {
  aio_kind k = aio_kindof(L, idx);
  if (k == AIO_K_FUTURE || k == AIO_K_TASK)
    return lua_touserdata(L, idx);
  return NULL;
}

aio_future *aio_check_future(lua_State *L, int idx) {
  aio_future *f = aio_test_future(L, idx);
  if (f == NULL)
    luaL_typeerror(L, idx, CHECK_MSG_FUTURE);
  return f;
}

aio_task *aio_test_task(lua_State *L, int idx) {
  return aio_kindof(L, idx) == AIO_K_TASK ? lua_touserdata(L, idx) : NULL;
}

aio_task *aio_check_task(lua_State *L, int idx) {
  aio_task *t = aio_test_task(L, idx);
  if (t == NULL)
    luaL_typeerror(L, idx, AIO_TASK_MT);
  return t;
}

void aio_push_waiter(lua_State *L, aio_task *t) {
  lua_checkstack(t->co, 1);
  lua_pushvalue(t->co, t->waiter_idx);
  lua_xmove(t->co, L, 1);
}

void aio_push_task(lua_State *L, aio_task *t) {
  aio_push_env(L, t->fut.loop, AIO_ENV_TASKS);
  lua_rawgeti(L, -1, t->id);
  lua_replace(L, -2); /* no rotation */
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */

/* Pushes a new pending Future of loop; the loop userdata is at lidx, or
 * lidx is 0. */
static aio_future *future_new(lua_State *L, aio_loop *loop, int lidx) {
  aio_future *f = lua_newuserdatauv(L, sizeof *f, AIO_FU_COUNT);
  memset(f, 0, sizeof *f);
  f->loop = loop;
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->mt_ref[AIO_MT_FUTURE]);
  lua_setmetatable(L, -2);
  if (lidx)
    lua_pushvalue(L, lidx);
  else
    aio_push_loop(L, loop);
  lua_setiuservalue(L, -2, AIO_FU_LOOP);
  return f;
}

aio_future *aio_future_new(lua_State *L, aio_loop *loop) {
  return future_new(L, loop, 0);
}

/* Reporters. A future that holds something to report if it is lost (an
 * exception nobody retrieved, a task still pending when its loop closed)
 * gets a reporter: a small finalizable userdata that refers to the future
 * and that the future keeps (in its CB slot once done; a pending task's
 * EXTRA table), so that both become garbage together and the reporter's
 * finalizer reports. Futures themselves have no finalizer: collecting
 * them stays cheap, and making a *new* object finalizable costs O(1),
 * where giving an old one a finalizer makes Lua search all its objects. */
#define AIO_REPORTER_MT "asyncio.Reporter"

static void push_extra(lua_State *L, int tidx);

/* Pushes the extra table of the task at tidx (it shares the CORO slot
 * with the Coroutine object) and returns LUA_TTABLE, or pushes nil. Any
 * future may be given: a plain one has none. */
static int get_extra(lua_State *L, int tidx) {
  if (lua_getiuservalue(L, tidx, AIO_TU_CORO) == LUA_TTABLE)
    return LUA_TTABLE;
  lua_pop(L, 1);
  lua_pushnil(L);
  return LUA_TNIL;
}

/* The integer keys of a task's extra table: the future it keeps for its
 * waits on primitives (aio_task_wait_future) and the Coroutine object
 * (the slot the table took over held it). */
enum { EXTRA_WAITER = 1, EXTRA_CORO = 2 };

/* Pushes the Coroutine object the task at tidx runs. */
static void push_coro(lua_State *L, int tidx) {
  if (lua_getiuservalue(L, tidx, AIO_TU_CORO) == LUA_TTABLE) {
    lua_rawgeti(L, -1, EXTRA_CORO);
    lua_remove(L, -2);
  }
}

/* Pushes the name of the coroutine the task at tidx runs, as its repr
 * gives it; when ar is not NULL, fills it ("S") with where the
 * coroutine's function is defined. */
static void push_coro_name(lua_State *L, int tidx, lua_Debug *ar) {
  push_coro(L, tidx);
  if (ar != NULL) {
    aio_coro_pushfn(L, -1);
    lua_getinfo(L, ">S", ar); /* pops the function */
  }
  aio_coro_pushname(L, -1);
  lua_remove(L, -2); /* the coroutine object */
}

static void attach_reporter(lua_State *L, int fidx, aio_future *f) {
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, fidx);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, AIO_REPORTER_MT);
  if (f->state == AIO_PENDING) { /* a task orphaned by its loop */
    push_extra(L, fidx);
    lua_insert(L, -2);
    lua_setfield(L, -2, "reporter");
    lua_pop(L, 1);
  } else /* done: the callbacks slot is free for good */
    lua_setiuservalue(L, fidx, AIO_FU_CB);
}

void aio_report_exception(lua_State *L, int fidx, const char *msg,
                          const char *key) {
  aio_future *f = lua_touserdata(L, fidx);
  fidx = lua_absindex(L, fidx);
  f->log_tb = 0;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  lua_getiuservalue(L, fidx, AIO_FU_VALUE);
  lua_setfield(L, -2, "exception");
  lua_pushvalue(L, fidx);
  lua_setfield(L, -2, key);
  if (f->is_task) { /* its extra table keeps where the failure was raised */
    if (get_extra(L, fidx) == LUA_TTABLE) {
      lua_getfield(L, -1, "traceback");
      lua_setfield(L, -3, "traceback");
    }
    lua_pop(L, 1);
  }
  aio_report(L, f->loop);
}

/* The report of a future that was collected (at fidx). */
static void report_lost(lua_State *L, int fidx, aio_future *f) {
  if (f->state == AIO_FINISHED && f->has_exc && f->log_tb)
    aio_report_exception(L, fidx, f->is_task
                                      ? "Task exception was never retrieved"
                                      : "Future exception was never retrieved",
                         "future");
  else if (f->is_task && f->state == AIO_PENDING)
    aio_report_error(L, f->loop, "Task was destroyed but it is pending!", 0,
                     "task", fidx);
}

static int l_reporter__gc(lua_State *L) {
  lua_getiuservalue(L, 1, 1);
  if (aio_test_future(L, -1))
    report_lost(L, lua_gettop(L), lua_touserdata(L, -1));
  return 0;
}

void aio_tasks_orphaned(lua_State *L, aio_loop *loop) {
  aio_push_env(L, loop, AIO_ENV_TASKS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    attach_reporter(L, lua_gettop(L), lua_touserdata(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* ------------------------------------------------------------------ */
/* Completion                                                          */

/* Appends the ready entry of one callback (on top, popped). */
/* gather's children's done-callback and its fast path (see gather_cb) */
static int gather_cb(lua_State *L);
static int gather_fast(lua_State *L, aio_future *f);

/* The callback on top, of Lua type `type`, belongs to the done future f
 * at fidx. */
static void schedule_one(lua_State *L, int fidx, aio_future *f, int type) {
  if (type == LUA_TLIGHTUSERDATA) {
    aio_task *t = lua_touserdata(L, -1);
    lua_pop(L, 1);
    aio_schedule_step(L, f->loop, t);
  } else if (!gather_fast(L, f)) {
    lua_pushvalue(L, fidx);
    aio_ready_push(L, f->loop, AIO_R_FUTCB, NULL, 0, NULL, 2);
  }
}

/* Schedules every done-callback of the (now done) future at fidx. */
static void schedule_callbacks(lua_State *L, int fidx, aio_future *f) {
  unsigned n = f->ncb, i;
  int list = f->cb_list;
  if (n == 0)
    return;
  f->ncb = 0;
  f->cb_list = 0;
  if (!list) {
    /* a task's wake-up (a light userdata, the usual single callback)
     * holds nothing: the slot is left as it is, to be overwritten by
     * the next callback */
    int type = lua_getiuservalue(L, fidx, AIO_FU_CB);
    if (type != LUA_TLIGHTUSERDATA) {
      lua_pushnil(L);
      lua_setiuservalue(L, fidx, AIO_FU_CB);
    }
    schedule_one(L, fidx, f, type);
    return;
  }
  lua_getiuservalue(L, fidx, AIO_FU_CB);
  lua_pushnil(L);
  lua_setiuservalue(L, fidx, AIO_FU_CB);
  for (i = 1; i <= n; i++)
    schedule_one(L, fidx, f, lua_rawgeti(L, -1, i));
  lua_pop(L, 1);
}

/* The task at fidx is done: it leaves its loop's pending set and drops
 * its thread, if it still holds one (t->co set: see task_finished). */
static void task_retire(lua_State *L, int fidx, aio_task *t) {
  aio_loop *loop = t->fut.loop;
  if (loop->env != LUA_NOREF && !loop->closed) {
    aio_push_env(L, loop, AIO_ENV_TASKS);
    lua_pushnil(L);
    lua_rawseti(L, -2, t->id);
    lua_pop(L, 1);
    loop->npending--;
  }
  if (t->timer_refs != 0) /* else no timer entry needs it kept */
    aio_timer_task_retired(L, loop, fidx);
  t->waiter = NULL;
  if (t->co != NULL) {
    aio_push_loop(L, loop); /* the THREAD slot keeps the loop from now on */
    lua_setiuservalue(L, fidx, AIO_TU_THREAD);
    t->co = NULL;
  }
  /* the VALUE slot (AIO_TU_WAITER while pending) holds the outcome */
}

/* Stores n results (popped) and marks the future finished. */
static void store_result(lua_State *L, int fidx, aio_future *f, int n) {
  f->cancel_hook = 0;
  if (n == 0) { /* what the slot held while pending goes */
    lua_pushnil(L);
    lua_setiuservalue(L, fidx, AIO_FU_VALUE);
  } else if (n == 1)
    lua_setiuservalue(L, fidx, AIO_FU_VALUE);
  else if (n > 1) {
    int i;
    lua_createtable(L, n, 0);
    lua_insert(L, -1 - n); /* [t, v1 .. vn] */
    for (i = n; i >= 1; i--)
      lua_rawseti(L, -1 - i, i);
    lua_setiuservalue(L, fidx, AIO_FU_VALUE);
  }
  f->nres = n;
  f->state = AIO_FINISHED;
}

/* Completes the future (or task, internally) at fidx with n results. */
static void finish_result(lua_State *L, int fidx, aio_future *f, int n) {
  store_result(L, fidx, f, n);
  if (f->is_task)
    task_retire(L, fidx, (aio_task *)f);
  schedule_callbacks(L, fidx, f);
}

static void finish_exception(lua_State *L, int fidx, aio_future *f) {
  f->cancel_hook = 0;
  lua_setiuservalue(L, fidx, AIO_FU_VALUE);
  f->state = AIO_FINISHED;
  f->has_exc = 1;
  f->log_tb = 1;
  if (f->is_task)
    task_retire(L, fidx, (aio_task *)f);
  schedule_callbacks(L, fidx, f);
  attach_reporter(L, fidx, f);
}

/* Cancels with the message or CancelledError on top (popped);
 * `is_msg` says which. */
static void finish_cancelled(lua_State *L, int fidx, aio_future *f,
                             int is_msg) {
  f->cancel_hook = 0;
  lua_setiuservalue(L, fidx, AIO_FU_VALUE);
  f->state = AIO_CANCELLED;
  f->cancel_msg = (unsigned char)is_msg;
  f->log_tb = 0;
  if (f->is_task)
    task_retire(L, fidx, (aio_task *)f);
  schedule_callbacks(L, fidx, f);
}

int aio_future_set_result(lua_State *L, int fidx, int n) {
  aio_future *f = lua_touserdata(L, fidx);
  if (f->state != AIO_PENDING) {
    lua_pop(L, n);
    return 0;
  }
  finish_result(L, fidx, f, n);
  return 1;
}

int aio_future_set_exception(lua_State *L, int fidx) {
  aio_future *f = lua_touserdata(L, fidx);
  if (f->state != AIO_PENDING) {
    lua_pop(L, 1);
    return 0;
  }
  finish_exception(L, fidx, f);
  return 1;
}

int aio_future_cancel(lua_State *L, int fidx) {
  aio_future *f;
  fidx = lua_absindex(L, fidx);
  f = lua_touserdata(L, fidx);
  if (f->cancel_hook && f->state == AIO_PENDING) {
    /* the hook decides (Python's method override, e.g. gather's) */
    lua_getiuservalue(L, fidx, AIO_FU_VALUE);
    lua_pushvalue(L, fidx);
    lua_rotate(L, -3, 2); /* [hook, fut, msg] */
    lua_call(L, 2, 1);
    {
      int r = lua_toboolean(L, -1);
      lua_pop(L, 1);
      return r;
    }
  }
  if (f->is_task) {
    int r = aio_task_cancel(L, fidx, -1);
    lua_pop(L, 1);
    return r;
  }
  f->log_tb = 0;
  if (f->state != AIO_PENDING) {
    lua_pop(L, 1);
    return 0;
  }
  finish_cancelled(L, fidx, f, 1);
  return 1;
}

/* Pushes the CancelledError a cancelled future raises. */
static void push_cancelled_error(lua_State *L, int fidx, aio_future *f) {
  lua_getiuservalue(L, fidx, AIO_FU_VALUE);
  if (f->cancel_msg) {
    int nargs = lua_isnil(L, -1) ? 0 : 1;
    if (nargs == 0)
      lua_pop(L, 1);
    aio_pusherror(L, AIO_E_CANCELLED, nargs);
  }
}

/* The traceback of the last task error raised by result()/await, so that
 * a string error reaching the top level still shows where the task
 * failed (see _traceback_of). */
static const char key_last_raised = 0;

static void stash_task_traceback(lua_State *L, int fidx) {
  int err = lua_gettop(L);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, err);
  lua_setfield(L, -2, "err");
  if (get_extra(L, fidx) == LUA_TTABLE)
    lua_getfield(L, -1, "traceback");
  else
    lua_pushnil(L);
  lua_setfield(L, -3, "tb");
  lua_pop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_last_raised);
}

/* _traceback_of(err) -> the traceback of the task that raised err, if it
 * was the last task error re-raised; else nil. */
static int l__traceback_of(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_last_raised) != LUA_TTABLE)
    return 0;
  lua_getfield(L, -1, "err");
  if (!lua_rawequal(L, -1, 1))
    return 0;
  lua_getfield(L, -2, "tb");
  return 1;
}

/* _suspended_traceback(task) -> the traceback of the frames where the
 * task is suspended (library frames left out, as in every traceback), or
 * nil when it is not suspended in an await: what a timeout that expires
 * keeps for the TimeoutError it raises once those frames are gone. */
static int l__suspended_traceback(lua_State *L) {
  aio_task *t = aio_check_task(L, 1);
  if (t->fut.state != AIO_PENDING || !t->started || t->co == NULL ||
      t->co == L || lua_status(t->co) != LUA_YIELD) {
    lua_pushnil(L);
    return 1;
  }
  aio_traceback(L, t->co, 0);
  return 1;
}

/* _failure_traceback(task) -> the traceback kept where the task failed
 * (a string error keeps none of its own: a TaskGroup shows it with the
 * error), or nil. */
static int l__failure_traceback(lua_State *L) {
  aio_check_future(L, 1);
  if (get_extra(L, 1) != LUA_TTABLE)
    return 1;
  lua_getfield(L, -1, "traceback");
  return 1;
}

int aio_future_push_result(lua_State *L, int fidx) {
  aio_future *f = lua_touserdata(L, fidx);
  switch (f->state) {
  case AIO_PENDING:
    return aio_raisef(L, AIO_E_INVALID_STATE, "Result is not set.");
  case AIO_CANCELLED:
    push_cancelled_error(L, fidx, f);
    return lua_error(L);
  default:
    break;
  }
  if (f->has_exc) {
    f->log_tb = 0;
    lua_getiuservalue(L, fidx, AIO_FU_VALUE);
    if (f->is_task)
      stash_task_traceback(L, fidx);
    return lua_error(L);
  }
  if (f->nres == 1)
    lua_getiuservalue(L, fidx, AIO_FU_VALUE);
  else if (f->nres > 1) {
    int i;
    luaL_checkstack(L, f->nres + 1, "too many results");
    lua_getiuservalue(L, fidx, AIO_FU_VALUE);
    for (i = 1; i <= f->nres; i++)
      lua_rawgeti(L, -i, i);
    lua_remove(L, -1 - f->nres);
  }
  return f->nres;
}

/* ------------------------------------------------------------------ */
/* Done callbacks                                                      */

/* aio_future_add_callback for the future f at the absolute index fidx. */
static void add_callback(lua_State *L, int fidx, aio_future *f) {
  if (f->state != AIO_PENDING) {
    schedule_one(L, fidx, f, lua_type(L, -1));
    return;
  }
  if (f->ncb == 0) {
    lua_setiuservalue(L, fidx, AIO_FU_CB);
  } else if (!f->cb_list) {
    lua_createtable(L, 4, 0);
    lua_getiuservalue(L, fidx, AIO_FU_CB);
    lua_rawseti(L, -2, 1);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 2);
    lua_setiuservalue(L, fidx, AIO_FU_CB);
    f->cb_list = 1;
  } else {
    lua_getiuservalue(L, fidx, AIO_FU_CB);
    lua_insert(L, -2);
    lua_rawseti(L, -2, f->ncb + 1);
    lua_pop(L, 1);
  }
  f->ncb++;
}

void aio_future_add_callback(lua_State *L, int fidx) {
  fidx = lua_absindex(L, fidx);
  add_callback(L, fidx, lua_touserdata(L, fidx));
}

/* Removes every callback rawequal to the value at vidx; returns how many
 * were removed. */
static int remove_callbacks(lua_State *L, int fidx, int vidx) {
  aio_future *f = lua_touserdata(L, fidx);
  unsigned i, kept = 0;
  int removed = 0;
  if (f->ncb == 0)
    return 0;
  lua_getiuservalue(L, fidx, AIO_FU_CB);
  if (!f->cb_list) {
    if (lua_rawequal(L, -1, vidx)) {
      lua_pushnil(L);
      lua_setiuservalue(L, fidx, AIO_FU_CB);
      f->ncb = 0;
      removed = 1;
    }
    lua_pop(L, 1);
    return removed;
  }
  for (i = 1; i <= f->ncb; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_rawequal(L, -1, vidx)) {
      lua_pop(L, 1);
      removed++;
    } else
      lua_rawseti(L, -2, ++kept);
  }
  for (i = kept + 1; i <= f->ncb; i++) {
    lua_pushnil(L);
    lua_rawseti(L, -2, i);
  }
  lua_pop(L, 1);
  f->ncb = kept;
  if (kept == 0) { /* the next callback is stored alone again */
    lua_pushnil(L);
    lua_setiuservalue(L, fidx, AIO_FU_CB);
    f->cb_list = 0;
  }
  return removed;
}

/* ------------------------------------------------------------------ */
/* Lua methods of Future                                               */

static void check_callable(lua_State *L, int idx, const char *fname) {
  if (lua_type(L, idx) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL)
      lua_pop(L, 1);
    else {
      lua_pushfstring(L, "bad argument #%d to '%s' (function expected, "
                      "got %s)", idx - 1, fname, luaL_typename(L, idx));
      lua_error(L);
    }
  }
}

static int l_future_result(lua_State *L) {
  aio_check_future(L, 1);
  return aio_future_push_result(L, 1);
}

static int l_future_exception(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  switch (f->state) {
  case AIO_PENDING:
    return aio_raisef(L, AIO_E_INVALID_STATE, "Exception is not set.");
  case AIO_CANCELLED:
    push_cancelled_error(L, 1, f);
    return lua_error(L);
  default:
    break;
  }
  f->log_tb = 0;
  if (!f->has_exc)
    return 0;
  lua_getiuservalue(L, 1, AIO_FU_VALUE);
  return 1;
}

static int l_future_done(lua_State *L) {
  lua_pushboolean(L, aio_check_future(L, 1)->state != AIO_PENDING);
  return 1;
}

static int l_future_cancelled(lua_State *L) {
  lua_pushboolean(L, aio_check_future(L, 1)->state == AIO_CANCELLED);
  return 1;
}

static int l_future_cancel(lua_State *L) {
  aio_check_future(L, 1);
  lua_settop(L, 2);
  lua_pushboolean(L, aio_future_cancel(L, 1));
  return 1;
}

static void check_not_task(lua_State *L, aio_future *f, const char *what) {
  if (f->is_task)
    aio_raisef(L, AIO_E_RUNTIME, "Task does not support %s operation", what);
}

static int l_future_set_result(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  check_not_task(L, f, "set_result");
  if (f->state != AIO_PENDING)
    return aio_raisef(L, AIO_E_INVALID_STATE, "invalid state");
  finish_result(L, 1, f, lua_gettop(L) - 1);
  return 0;
}

static int l_future_set_exception(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  check_not_task(L, f, "set_exception");
  if (lua_isnoneornil(L, 2))
    return luaL_argerror(L, 2, "error value expected, got nil");
  if (f->state != AIO_PENDING)
    return aio_raisef(L, AIO_E_INVALID_STATE, "invalid state");
  lua_settop(L, 2);
  /* a class given for an instance is instantiated, as Python does: a
   * class has its own raw __is set that contains itself */
  if (lua_type(L, 2) == LUA_TTABLE) {
    int is_class = 0;
    lua_pushliteral(L, "__is");
    if (lua_rawget(L, 2) == LUA_TTABLE) {
      lua_pushvalue(L, 2);
      is_class = lua_rawget(L, -2) != LUA_TNIL;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (is_class) {
      lua_pushvalue(L, 2);
      lua_call(L, 0, 1);
      lua_replace(L, 2);
    }
  }
  finish_exception(L, 1, f);
  return 0;
}

static int l_future_add_done_callback(lua_State *L) {
  aio_check_future(L, 1);
  check_callable(L, 2, "add_done_callback");
  lua_settop(L, 2);
  aio_future_add_callback(L, 1);
  return 0;
}

static int l_future_remove_done_callback(lua_State *L) {
  aio_check_future(L, 1);
  luaL_checkany(L, 2);
  lua_pushinteger(L, remove_callbacks(L, 1, 2));
  return 1;
}

static int l_future_get_loop(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  if (f->is_task && ((aio_task *)f)->co != NULL)
    aio_push_loop(L, f->loop); /* its slot holds its thread */
  else
    lua_getiuservalue(L, 1, AIO_FU_LOOP);
  return 1;
}

/* ------------------------------------------------------------------ */
/* repr                                                                */

/* The repr helpers add to a buffer the caller opened: between two
 * additions they leave the stack as they found it, for the buffer's own
 * slot must stay just below each value luaL_addvalue adds. */

/* Pushes the i-th done callback (1-based). */
static void push_callback(lua_State *L, int fidx, aio_future *f, unsigned i) {
  lua_getiuservalue(L, fidx, AIO_FU_CB);
  if (f->cb_list) {
    lua_rawgeti(L, -1, (lua_Integer)i);
    lua_remove(L, -2);
  }
}

static void add_callback_repr(lua_State *L, luaL_Buffer *b, int fidx,
                              aio_future *f, unsigned i) {
  push_callback(L, fidx, f, i);
  if (lua_type(L, -1) == LUA_TLIGHTUSERDATA)
    lua_pushliteral(L, "Task.task_wakeup");
  else if (lua_tocfunction(L, -1) == gather_cb) {
    lua_getupvalue(L, -1, 2); /* gather's Lua callback */
    aio_pushfuncname(L, -1);
    lua_remove(L, -2);
  } else
    aio_pushfuncname(L, -1);
  lua_remove(L, -2);
  luaL_addvalue(b);
  luaL_addstring(b, "()");
}

/* " cb=[a()]", " cb=[a(), b()]", or past two, as base_futures's
 * _format_callbacks: " cb=[a(), <N more>, z()]". */
static void add_callbacks_repr(lua_State *L, luaL_Buffer *b, int fidx,
                               aio_future *f) {
  if (f->ncb == 0)
    return;
  luaL_addstring(b, " cb=[");
  add_callback_repr(L, b, fidx, f, 1);
  if (f->ncb > 2) {
    lua_pushfstring(L, ", <%d more>", (int)(f->ncb - 2));
    luaL_addvalue(b);
  }
  if (f->ncb > 1) {
    luaL_addstring(b, ", ");
    add_callback_repr(L, b, fidx, f, f->ncb);
  }
  luaL_addchar(b, ']');
}

/* Where Python's slice s[from:] of a string of len bytes starts. */
static size_t slice_from(lua_Integer from, size_t len) {
  if (from < 0)
    from += (lua_Integer)len;
  return from < 0 ? 0 : (size_t)from;
}

/* A cut of s before byte i, moved back (or forward, for the start of a
 * tail) out of the middle of a UTF-8 sequence. */
static size_t utf8_back(const char *s, size_t i) {
  while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
    i--;
  return i;
}

static size_t utf8_fwd(const char *s, size_t i, size_t len) {
  while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
    i++;
  return i;
}

/* Pushes s[:head] .. mid .. s[from:], a cut string of len bytes. */
static void push_cut(lua_State *L, const char *s, size_t len, size_t head,
                     const char *mid, lua_Integer from) {
  size_t h = len <= head ? len : utf8_back(s, head);
  size_t f = utf8_fwd(s, slice_from(from, len), len);
  lua_pushlstring(L, s, h);
  lua_pushstring(L, mid);
  lua_pushlstring(L, s + f, len - f);
  lua_concat(L, 3);
}

/* Pushes the repr of the value on top (popped) as Python's Future repr
 * shows a result, with reprlib.repr: a string whose repr is longer than
 * 30 characters is cut in the middle ('abcdefghijkl...nopqrstuvwxyz'),
 * so that a task holding a large body prints on one line. */
static void push_result_repr(lua_State *L) {
  enum { MAX = 30, HEAD = (MAX - 3) / 2, TAIL = MAX - 3 - HEAD };
  size_t len, rlen;
  const char *s, *r;
  if (lua_type(L, -1) != LUA_TSTRING) {
    aio_pushrepr(L, -1);
    lua_remove(L, -2);
    return;
  }
  s = lua_tolstring(L, -1, &len);
  lua_pushlstring(L, s, len <= MAX ? len : utf8_back(s, MAX));
  aio_pushrepr(L, -1); /* [s, s[:30], repr] */
  lua_remove(L, -2);
  if (lua_rawlen(L, -1) <= MAX) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  push_cut(L, s, len, HEAD, "", (lua_Integer)len - TAIL);
  aio_pushrepr(L, -1); /* [s, s[:i] .. s[-j:], repr] */
  r = lua_tolstring(L, -1, &rlen);
  push_cut(L, r, rlen, HEAD, "...", (lua_Integer)rlen - TAIL);
  lua_replace(L, -4);
  lua_pop(L, 2);
}

/* Adds the repr of the future's value (i-th of several when i > 0). */
static void add_value_repr(lua_State *L, luaL_Buffer *b, int fidx, int i,
                           int is_result) {
  lua_getiuservalue(L, fidx, AIO_FU_VALUE);
  if (i > 0) {
    lua_rawgeti(L, -1, i);
    lua_remove(L, -2);
  }
  if (is_result)
    push_result_repr(L);
  else {
    aio_pushrepr(L, -1);
    lua_remove(L, -2);
  }
  luaL_addvalue(b);
}

static void add_outcome_repr(lua_State *L, luaL_Buffer *b, int fidx,
                             aio_future *f) {
  int i;
  if (f->state != AIO_FINISHED)
    return;
  luaL_addstring(b, f->has_exc ? " exception=" : " result=");
  if (f->has_exc || f->nres <= 1) {
    add_value_repr(L, b, fidx, 0, !f->has_exc);
    return;
  }
  for (i = 1; i <= f->nres; i++) {
    if (i > 1)
      luaL_addstring(b, ", ");
    add_value_repr(L, b, fidx, i, 1);
  }
}

static const char *state_name(aio_future *f) {
  switch (f->state) {
  case AIO_PENDING:
    return f->is_task && ((aio_task *)f)->num_cancels > 0 ? "cancelling"
                                                         : "pending";
  case AIO_CANCELLED:
    return "cancelled";
  default:
    return "finished";
  }
}

/* Pushes the task's name. */
static void push_task_name(lua_State *L, int tidx, aio_task *t) {
  if (get_extra(L, tidx) == LUA_TTABLE) {
    if (lua_getfield(L, -1, "name") != LUA_TNIL) {
      lua_remove(L, -2);
      return;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushfstring(L, "Task-%I", t->id);
}

/* Writes "'name' resumed at src:line" (or "'name' starting") into buf,
 * for the slow-step warning of debug mode. Raises only on memory errors. */
void aio_task_describe(lua_State *L, aio_task *t, char *buf, size_t size) {
  lua_Debug ar;
  int level = 0;
  const char *where = NULL;
  aio_push_task(L, t);
  push_task_name(L, -1, t);
  if (t->started && t->co != NULL) {
    /* the innermost Lua frame of the suspended coroutine */
    while (lua_getstack(t->co, level++, &ar)) {
      lua_getinfo(t->co, "Sl", &ar);
      if (*ar.what != 'C' && ar.currentline > 0) {
        where = lua_pushfstring(L, "resumed at %s:%d", ar.short_src,
                                ar.currentline);
        break;
      }
    }
  }
  snprintf(buf, size, "task '%s' %s", lua_tostring(L, where ? -2 : -1),
           where ? where : t->started ? "resumed" : "(first step)");
  lua_pop(L, where ? 3 : 2);
}

/* Adds " coro=<name() running at src:line>" (or done, defined at). */
static void add_coro_repr(lua_State *L, luaL_Buffer *b, int tidx,
                          aio_task *t) {
  lua_Debug ar;
  int level = 0, line = -1;
  luaL_addstring(b, " coro=<");
  push_coro_name(L, tidx, &ar);
  luaL_addvalue(b);
  if (t->co != NULL && t->started) {
    /* the body's frame is the one just above the trampoline */
    lua_Debug fr;
    while (lua_getstack(t->co, level, &fr))
      level++;
    if (level >= 2 && lua_getstack(t->co, level - 2, &fr) &&
        lua_getinfo(t->co, "l", &fr))
      line = fr.currentline;
  }
  luaL_addstring(b, t->fut.state != AIO_PENDING ? "() done, defined at "
                                                 : "() running at ");
  if (*ar.what == 'C') /* a C operation: no line to show */
    lua_pushfstring(L, "%s>", ar.short_src);
  else
    lua_pushfstring(L, "%s:%d>", ar.short_src,
                    line >= 0 ? line : ar.linedefined);
  luaL_addvalue(b);
}

void aio_future_pushrepr(lua_State *L, int idx) {
  aio_future *f;
  luaL_Buffer b;
  idx = lua_absindex(L, idx);
  f = lua_touserdata(L, idx);
  luaL_checkstack(L, 8, NULL);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, f->is_task ? "<Task " : "<Future ");
  luaL_addstring(&b, state_name(f));
  if (f->is_task) {
    aio_task *t = (aio_task *)f;
    luaL_addstring(&b, " name=");
    push_task_name(L, idx, t);
    aio_pushrepr(L, -1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
    add_coro_repr(L, &b, idx, t);
  }
  if (f->is_task && f->state == AIO_PENDING && ((aio_task *)f)->waiter) {
    luaL_addstring(&b, " wait_for=");
    aio_push_waiter(L, (aio_task *)f);
    aio_future_pushrepr(L, -1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  } else if (f->is_task && f->state == AIO_PENDING &&
             (((aio_task *)f)->wait_kind == AIO_WAIT_PRIM ||
              ((aio_task *)f)->wait_kind == AIO_WAIT_SLEEP)) {
    /* no Future: Python's sleep(d > 0) and primitives wait on one */
    luaL_addstring(&b, " wait_for=" AIO_PRIM_WAIT_REPR);
  }
  add_outcome_repr(L, &b, idx, f);
  add_callbacks_repr(L, &b, idx, f);
  luaL_addchar(&b, '>');
  luaL_pushresult(&b);
}

static int l_future__tostring(lua_State *L) {
  aio_check_future(L, 1);
  aio_future_pushrepr(L, 1);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Tasks                                                               */

/* The coroutine's main function, called as (task_msgh, fn, args...):
 * calls the body (fn, args...) under lua_pcallk with that
 * traceback-stashing handler, so that to-be-closed variables are closed
 * inside the coroutine, where __close can yield. */
static int task_body_k(lua_State *L, int status, lua_KContext ctx);

static const char key_task_tb = 0;

/* Replaces the traceback on top ("stack traceback:\n...") with one whose
 * first line names the task: "stack traceback of task 'name':". */
static void name_traceback(lua_State *L, aio_task *t) {
  static const char head[] = "stack traceback:";
  const char *tb = lua_tostring(L, -1);
  if (t == NULL || strncmp(tb, head, sizeof head - 1) != 0)
    return;
  aio_push_task(L, t);
  push_task_name(L, lua_gettop(L), t);
  lua_pushfstring(L, "stack traceback of task '%s':%s", lua_tostring(L, -1),
                  tb + sizeof head - 1);
  lua_replace(L, -4);
  lua_pop(L, 2);
}

static int task_msgh(lua_State *L) {
  /* a cancellation is control flow, not a failure to explain: no
   * traceback (it would cost more than the rest of the cancel) */
  aio_task *t = aio_current_task_of(L);
  if (t != NULL ? aio_loop_iscancelled(L, t->fut.loop, 1)
                : aio_iserror(L, 1, AIO_E_CANCELLED)) {
    lua_settop(L, 1);
    return 1;
  }
  aio_traceback(L, L, 1);
  name_traceback(L, t);
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "traceback") == LUA_TNIL &&
        !aio_iserror(L, 1, AIO_E_CANCELLED)) {
      lua_pushvalue(L, -2);
      lua_setfield(L, 1, "traceback");
    }
    lua_pop(L, 1);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_task_tb);
  lua_settop(L, 1);
  return 1;
}

static int task_body(lua_State *L) {
  int nargs = lua_gettop(L) - 2;
  return task_body_k(L, lua_pcallk(L, nargs, LUA_MULTRET, 1, 0, task_body_k),
                     0);
}

static int task_body_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD)
    return lua_error(L);
  return lua_gettop(L) - 1;
}

aio_task *aio_task_new(lua_State *L, aio_loop *loop, int cidx, int oidx) {
  aio_task *t;
  aio_coro *c;
  int tidx;
  cidx = lua_absindex(L, cidx);
  oidx = oidx ? lua_absindex(L, oidx) : 0;
  if ((c = aio_test_coro(L, cidx)) == NULL) {
    aio_pushrepr(L, cidx);
    aio_raisef(L, AIO_E_TYPE, "a coroutine was expected, got %s",
               lua_tostring(L, -1));
  }
  if (loop->closed) {
    /* dispose of the coroutine so that it does not report */
    lua_pop(L, aio_coro_start(L, cidx, L) + 1);
    aio_raisef(L, AIO_E_RUNTIME, "Event loop is closed");
  }
  t = lua_newuserdatauv(L, sizeof *t, AIO_TU_COUNT);
  tidx = lua_gettop(L);
  memset(t, 0, sizeof *t);
  t->fut.loop = loop;
  t->fut.is_task = 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, loop->mt_ref[AIO_MT_TASK]);
  lua_setmetatable(L, -2);
  /* the thread comes at the first step (task_start): until then the
   * Coroutine object holds the body and its arguments, and a task
   * waiting for its first step costs the collector no thread */
  aio_coro_take(L, cidx, c, loop);
  aio_push_env(L, loop, AIO_ENV_SELF); /* at tidx + 1 until the end */
  lua_rawgeti(L, -1, 1); /* the loop */
  lua_setiuservalue(L, tidx, AIO_TU_THREAD);
  lua_pushvalue(L, cidx);
  lua_setiuservalue(L, tidx, AIO_TU_CORO);
  t->id = (lua_Integer)atomic_fetch_add(&task_counter, 1) + 1;
  if (oidx && lua_istable(L, oidx) &&
      lua_getfield(L, oidx, "name") != LUA_TNIL) {
    luaL_tolstring(L, -1, NULL);
    push_extra(L, tidx);
    lua_insert(L, -2);
    lua_setfield(L, -2, "name");
    lua_pop(L, 2);
  } else if (oidx && lua_istable(L, oidx))
    lua_pop(L, 1);
  /* room for the first step first: once registered as pending, the
   * task must be scheduled (a memory error here leaves nothing behind) */
  aio_ready_reserve(L, loop, 1);
  aio_push_env(L, loop, AIO_ENV_TASKS);
  lua_pushvalue(L, tidx);
  lua_rawseti(L, -2, t->id);
  lua_settop(L, tidx); /* the env tables go */
  loop->npending++;
  aio_ready_push_raw(L, loop, AIO_R_STEP, t, 0, NULL, 0);
  return t;
}

aio_future *aio_create_task(lua_State *L, aio_loop *loop, int cidx,
                            int oidx) {
  if (!loop->task_factory || loop->closed)
    return &aio_task_new(L, loop, cidx, oidx)->fut;
  cidx = lua_absindex(L, cidx);
  oidx = oidx ? lua_absindex(L, oidx) : 0;
  aio_push_env(L, loop, AIO_ENV_TASK_FACTORY);
  aio_push_loop(L, loop);
  lua_pushvalue(L, cidx);
  if (oidx)
    lua_pushvalue(L, oidx);
  else
    lua_pushnil(L);
  lua_call(L, 3, 1);
  return aio_test_future(L, -1);
}

/* As aio_create_task, for callers that go on with the result as a
 * future: raises TypeError when the task factory made something else. */
static aio_future *create_task_future(lua_State *L, aio_loop *loop, int cidx,
                                      int oidx) {
  aio_future *f = aio_create_task(L, loop, cidx, oidx);
  if (f == NULL) {
    aio_pushrepr(L, -1);
    aio_raisef(L, AIO_E_TYPE, "the task factory returned %s, not a Future",
               lua_tostring(L, -1));
  }
  return f;
}

/* Pushes the EXTRA table of the task at tidx, creating it. */
static void push_extra(lua_State *L, int tidx) {
  if (lua_getiuservalue(L, tidx, AIO_TU_CORO) != LUA_TTABLE) {
    lua_createtable(L, 2, 2);
    lua_insert(L, -2);
    lua_rawseti(L, -2, EXTRA_CORO);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, tidx, AIO_TU_CORO);
  }
}

/* Pushes a pending future of t's loop for t to wait on (a lock, a queue,
 * an event): the one the task keeps in its EXTRA table once the wait it
 * served is over (done: no waiter queue holds it any more, and only the
 * task's own wake-up, a light userdata, was ever added to it), reset;
 * else a new one, which the task keeps from now on. */
void aio_task_wait_future(lua_State *L, aio_task *t) {
  int tidx, eidx;
  aio_future *f;
  aio_push_task(L, t);
  tidx = lua_gettop(L);
  push_extra(L, tidx);
  eidx = tidx + 1;
  /* at an integer key of EXTRA: an array slot, no string hashing */
  if (lua_rawgeti(L, eidx, EXTRA_WAITER) == LUA_TUSERDATA &&
      (f = lua_touserdata(L, -1))->state != AIO_PENDING && !f->is_task &&
      f->ncb == 0) {
    /* its callbacks slot was emptied when it completed (unless an
     * exception gave it a reporter); a value it holds is dropped only
     * when it could be big (an error, a message), not the `true` of a
     * wake-up */
    if (f->state == AIO_CANCELLED || f->has_exc) {
      lua_pushnil(L);
      lua_setiuservalue(L, -2, AIO_FU_VALUE);
      lua_pushnil(L);
      lua_setiuservalue(L, -2, AIO_FU_CB);
    }
    memset(f, 0, sizeof *f);
    f->loop = t->fut.loop;
  } else {
    lua_pop(L, 1);
    aio_future_new(L, t->fut.loop);
    lua_pushvalue(L, -1);
    lua_rawseti(L, eidx, EXTRA_WAITER);
  }
  lua_replace(L, tidx);
  lua_settop(L, tidx);
}

/* Pushes the cancel message stored by cancel(msg), or nil. */
static void push_cancel_msg(lua_State *L, int tidx) {
  if (get_extra(L, tidx) == LUA_TTABLE) {
    lua_getfield(L, -1, "cancel_msg");
    lua_remove(L, -2);
  }
}

void aio_task_forward_cancel(lua_State *L, aio_task *t, int fidx) {
  fidx = lua_absindex(L, fidx);
  aio_push_task(L, t);
  lua_pushvalue(L, fidx);
  push_cancel_msg(L, lua_gettop(L) - 1); /* [task, fut, msg] */
  if (aio_future_cancel(L, -2))
    t->must_cancel = 0;
  lua_pop(L, 2);
}

static void set_cancel_msg(lua_State *L, int tidx, int midx) {
  if (midx == 0 || lua_isnil(L, midx)) {
    if (get_extra(L, tidx) == LUA_TTABLE) {
      lua_pushnil(L);
      lua_setfield(L, -2, "cancel_msg");
    }
    lua_pop(L, 1);
    return;
  }
  push_extra(L, tidx);
  lua_pushvalue(L, midx);
  lua_setfield(L, -2, "cancel_msg");
  lua_pop(L, 1);
}

/* Ends a sleep early: its timer entry is dead. */
static void drop_sleep(lua_State *L, aio_task *t) {
  t->sleep_gen++;
  if (t->sleep_in_heap) {
    t->sleep_in_heap = 0;
    aio_timers_cancelled(L, t->fut.loop);
  }
}

/* Ends the wait of the task t at tidx: its next step, scheduled now,
 * raises the error on top (popped). A sleep's timer entry dies; a wait
 * in an aio_taskq ends cancelled, as Python's waiter future would. The
 * step is scheduled first: when that raises (memory), t still waits as
 * it did, and can still be woken or cancelled. */
static void wake_throwing(lua_State *L, int tidx, aio_task *t) {
  aio_schedule_step(L, t->fut.loop, t);
  if (t->wait_kind == AIO_WAIT_SLEEP)
    drop_sleep(L, t);
  else if (t->wait_kind == AIO_WAIT_PRIM)
    t->wstate = AIO_TW_CANCELLED;
  lua_setiuservalue(L, tidx, AIO_TU_WAITER);
  t->throwing = 1;
  t->wait_kind = AIO_WAIT_YIELD;
}

/* Ends the wait t enters because of a cancellation requested while t
 * ran: its next step raises CancelledError with the message cancel()
 * stored. */
static void cancel_prim_wait(lua_State *L, aio_task *t) {
  int tidx;
  aio_push_task(L, t);
  tidx = lua_gettop(L);
  push_cancel_msg(L, tidx);
  aio_pusherror(L, AIO_E_CANCELLED, !lua_isnil(L, -1));
  if (lua_isnil(L, -2))
    lua_remove(L, -2);
  wake_throwing(L, tidx, t);
  t->must_cancel = 0;
  lua_pop(L, 1);
}

int aio_task_wait_prim(lua_State *L, aio_task *t, lua_KContext ctx,
                       lua_KFunction k) {
  if (t->must_cancel) {
    /* requested while it ran: the wait ends cancelled before it starts
     * (not left as an earlier wait ended: a semaphore's continuation
     * gives back the permit of a woken wait) */
    t->wstate = AIO_TW_CANCELLED;
    cancel_prim_wait(L, t);
  } else {
    t->wstate = AIO_TW_PENDING;
    t->wait_kind = AIO_WAIT_PRIM;
  }
  return aio_task_suspend(L, t, ctx, k);
}

void aio_task_wake_prim(lua_State *L, aio_task *t) {
  aio_schedule_step(L, t->fut.loop, t); /* may raise: t still waits */
  t->wstate = AIO_TW_WOKEN;
  t->wait_kind = AIO_WAIT_YIELD; /* a cancel() now is raised by its step */
}

int aio_task_try_wake_prim(aio_task *t) {
  if (!aio_try_schedule_step(t->fut.loop, t))
    return 0;
  t->wstate = AIO_TW_WOKEN;
  t->wait_kind = AIO_WAIT_YIELD;
  return 1;
}

int aio_task_cancel(lua_State *L, int tidx, int midx) {
  aio_task *t = lua_touserdata(L, tidx);
  aio_loop *loop = t->fut.loop;
  tidx = lua_absindex(L, tidx);
  midx = midx ? lua_absindex(L, midx) : 0;
  t->fut.log_tb = 0;
  if (t->fut.state != AIO_PENDING)
    return 0;
  t->num_cancels++;
  if (t->wait_kind == AIO_WAIT_FUTURE && t->waiter != NULL) {
    int r;
    aio_push_waiter(L, t);
    if (midx)
      lua_pushvalue(L, midx);
    else
      lua_pushnil(L);
    r = aio_future_cancel(L, -2);
    lua_pop(L, 1);
    if (r)
      return 1;
  } else if (t->wait_kind == AIO_WAIT_SLEEP ||
             t->wait_kind == AIO_WAIT_PRIM) {
    /* the sleep or the wait is over: the task wakes with
     * CancelledError(msg) */
    aio_check_open(L, loop);
    if (midx && !lua_isnil(L, midx)) {
      lua_pushvalue(L, midx);
      aio_pusherror(L, AIO_E_CANCELLED, 1);
    } else
      aio_pusherror(L, AIO_E_CANCELLED, 0);
    wake_throwing(L, tidx, t);
    return 1;
  }
  t->must_cancel = 1;
  set_cancel_msg(L, tidx, midx);
  return 1;
}

/* Records the failure traceback of the task at tidx (error at eidx). */
static void keep_traceback(lua_State *L, int tidx, int eidx) {
  int top = lua_gettop(L), own = top + 2, last = top + 3;
  if (lua_type(L, eidx) == LUA_TTABLE) {
    int has = lua_getfield(L, eidx, "traceback") != LUA_TNIL;
    lua_pop(L, 1);
    if (has)
      return;
  }
  push_extra(L, tidx);                               /* top + 1 */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_task_tb);   /* own */
  /* the same error re-raised from an awaited task: its traceback first */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_last_raised) == LUA_TTABLE) {
    lua_getfield(L, last, "err");
    lua_getfield(L, last, "tb");
    if (lua_rawequal(L, last + 1, eidx) &&
        lua_type(L, last + 2) == LUA_TSTRING &&
        lua_type(L, own) == LUA_TSTRING) {
      lua_pushvalue(L, last + 2);
      lua_pushliteral(L, "\n(awaited from)\n");
      lua_pushvalue(L, own);
      lua_concat(L, 3);
      lua_replace(L, own);
    }
  }
  lua_settop(L, own);
  lua_setfield(L, top + 1, "traceback");
  lua_settop(L, top);
}

/* Finishes the task at tidx after its coroutine returned `n` values (on
 * top of L, popped). */
static void task_returned(lua_State *L, int tidx, aio_task *t, int n) {
  if (t->must_cancel) {
    /* cancelled right before the coroutine stopped */
    t->must_cancel = 0;
    lua_pop(L, n);
    push_cancel_msg(L, tidx);
    finish_cancelled(L, tidx, &t->fut, 1);
  } else
    finish_result(L, tidx, &t->fut, n);
}

/* Finishes the task at tidx whose coroutine raised the error on top
 * (popped). Returns 1 if that error must leave the loop. */
static int task_raised(lua_State *L, int tidx, aio_task *t) {
  int e = lua_gettop(L);
  if (aio_loop_iscancelled(L, t->fut.loop, e)) {
    finish_cancelled(L, tidx, &t->fut, 0);
    return 0;
  }
  keep_traceback(L, tidx, e);
  if (aio_isfatal(L, e)) {
    lua_pushvalue(L, e);
    finish_exception(L, tidx, &t->fut);
    /* the error stays on the stack for the loop to raise */
    return 1;
  }
  finish_exception(L, tidx, &t->fut);
  return 0;
}

static void bad_yield_hook(lua_State *L, lua_Debug *ar) {
  aio_task *t = aio_current_task_of(L);
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (t == NULL || !t->bad_yield)
    return;
  t->bad_yield = 0;
  aio_push_task(L, t);
  lua_getiuservalue(L, -1, AIO_TU_WAITER);
  lua_pushnil(L);
  lua_setiuservalue(L, -3, AIO_TU_WAITER);
  lua_error(L);
}

/* The coroutine yielded without await (nres values on co): schedule a
 * step that raises RuntimeError at that yield. */
static void task_bad_yield(lua_State *L, int tidx, aio_task *t, int nres) {
  lua_State *co = t->co;
  if (nres > 0) {
    lua_pushvalue(co, -nres); /* the first yielded value */
    lua_xmove(co, L, 1);
    lua_pop(co, nres);
    aio_pushrepr(L, -1);
    lua_remove(L, -2);
  } else
    lua_pushliteral(L, "nil");
  aio_pusherrorf(L, AIO_E_RUNTIME, "Task got bad yield: %s",
                 lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_setiuservalue(L, tidx, AIO_TU_WAITER);
  t->throwing = 1;
  t->bad_yield = 1;
  t->wait_kind = AIO_WAIT_YIELD;
  aio_schedule_step(L, t->fut.loop, t);
}

/* Pushes the error the coming step must raise in the task, or returns 0
 * when it is a plain resume. A requested cancellation is raised as a new
 * CancelledError unless what the task would see anyway already is one
 * (its cancelled waiter, or a pending CancelledError): as in Python's
 * __step, that one keeps its message. */
static int take_throw(lua_State *L, int tidx, aio_task *t) {
  if (t->must_cancel && t->throwing) {
    lua_getiuservalue(L, tidx, AIO_TU_WAITER);
    if (aio_iserror(L, -1, AIO_E_CANCELLED)) {
      t->must_cancel = 0;
      return 1;
    }
    lua_pop(L, 1);
  }
  if (t->must_cancel && !t->throwing && t->waiter != NULL &&
      t->waiter->state == AIO_CANCELLED) {
    t->must_cancel = 0;
    return 0;
  }
  if (t->must_cancel) {
    t->must_cancel = 0;
    push_cancel_msg(L, tidx);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      aio_pusherror(L, AIO_E_CANCELLED, 0);
    } else
      aio_pusherror(L, AIO_E_CANCELLED, 1);
    return 1;
  }
  if (t->throwing) {
    lua_getiuservalue(L, tidx, AIO_TU_WAITER);
    return 1;
  }
  return 0;
}

/* The task object of a step goes at tidx, the slot just above the
 * step's base; a plain resume that ends in an await never needs it, so
 * the step pushes it only when it must: until then nothing else is
 * pushed and the stack ends below tidx. */
static void need_task(lua_State *L, int tidx, aio_task *t) {
  if (lua_gettop(L) < tidx)
    aio_push_task(L, t);
}

/* The first step of the task t (at tidx, or not pushed yet): makes its
 * thread, [loop, task, trampoline, task_msgh, fn, args...], which its
 * THREAD slot holds from now on, and returns the number of values to
 * resume it with. The loop and the task stay at the base of the thread
 * (see task_finished). (A new thread has room for LUA_MINSTACK values;
 * push_body checks for fn and the arguments.) A memory error leaves the
 * task as it was, for the run to schedule the step again
 * (loop->starting). */
static int task_start(lua_State *L, int tidx, aio_task *t) {
  lua_State *co;
  int nargs;
  t->fut.loop->starting = t;
  need_task(L, tidx, t);
  co = lua_newthread(L);
  lua_getiuservalue(L, tidx, AIO_TU_THREAD); /* the loop until now */
  lua_pushvalue(L, tidx);
  lua_xmove(L, co, 2); /* kept by the thread, below its trampoline */
  lua_pushcfunction(co, task_body);
  lua_pushcfunction(co, task_msgh);
  push_coro(L, tidx);
  nargs = aio_coro_start_taken(L, -1, co);
  lua_pop(L, 1);
  lua_setiuservalue(L, tidx, AIO_TU_THREAD);
  t->co = co;
  t->fut.loop->starting = NULL;
  return nargs + 2;
}

/* The thread of t returned nres values, above the loop and the task
 * that task_start put at its base: the task goes to tidx (the step's
 * look-up of it is spared, unless it made one already) with the
 * results above it, and the thread, which is done, is left empty: the
 * THREAD slot keeps the loop instead of it from now on (task_retire
 * looks the loop up only for a thread that did not return). Then the
 * task is finished with those results. */
static void task_finished(lua_State *L, int tidx, aio_task *t, int nres) {
  lua_State *co = t->co;
  /* the task, the results and 4 more for finishing, above at most
   * the task: within AIO_STEP_ROOM for a few results */
  if (nres > AIO_STEP_ROOM - 5)
    luaL_checkstack(L, nres + 4, "too many results");
  if (lua_gettop(L) < tidx)
    lua_xmove(co, L, nres + 1); /* [task, results] */
  else {
    lua_xmove(co, L, nres);
    lua_pop(co, 1); /* the task, at tidx already */
  }
  lua_xmove(co, L, 1);
  lua_setiuservalue(L, tidx, AIO_TU_THREAD);
  t->co = NULL;
  task_returned(L, tidx, t, nres);
}

void aio_task_step(lua_State *L, aio_loop *loop, aio_task *t) {
  int top = lua_gettop(L), tidx = top + 1, nargs = 0, nres = 0, status;
  int throwing, bad_yield;
  lua_State *co = t->co;
  if (t->fut.state != AIO_PENDING)
    return;
  if (t->must_cancel || t->throwing)
    need_task(L, tidx, t);
  bad_yield = t->bad_yield;
  throwing = take_throw(L, tidx, t);
  t->throwing = 0;
  t->waiter = NULL;
  if (throwing) {
    lua_pushnil(L);
    lua_setiuservalue(L, tidx, AIO_TU_WAITER);
  }
  t->wait_kind = AIO_WAIT_NONE;
  if (!t->started) {
    if (throwing) {
      /* cancelled before its first step: the body never runs */
      t->bad_yield = 0;
      task_raised(L, tidx, t);
      lua_settop(L, top);
      return;
    }
    nargs = task_start(L, tidx, t);
    co = t->co;
    t->started = 1;
  } else if (throwing && bad_yield) {
    lua_sethook(co, bad_yield_hook, LUA_MASKCOUNT, 1);
    /* the hook finds the error in the WAITER slot again */
    lua_setiuservalue(L, tidx, AIO_TU_WAITER);
  } else if (throwing) {
    lua_xmove(L, co, 1);
    nargs = 1;
    t->resume_throw = 1;
  }
  loop->current = t;
  t->awaiting = 0;
  status = lua_resume(co, L, nargs, &nres);
  if (status == LUA_OK)
    nres -= 2; /* a finished thread counts its base too (loop, task) */
  loop->current = NULL;
  t->resume_throw = 0;
  if (t->bad_yield && status != LUA_YIELD) {
    /* the hook never fired: the body returned right away */
    lua_sethook(co, NULL, 0, 0);
    t->bad_yield = 0;
    if (status == LUA_OK) {
      lua_pop(co, nres);
      lua_getiuservalue(L, tidx, AIO_TU_WAITER);
      lua_xmove(L, co, 1);
      status = LUA_ERRRUN;
    }
  }
  if (status == LUA_YIELD && t->awaiting) { /* the usual end of a step */
    if (nres > 0) /* suspensions yield nothing */
      lua_pop(co, nres);
    lua_settop(L, top);
    return;
  }
  if (status == LUA_OK) {
    task_finished(L, tidx, t, nres);
    lua_settop(L, top);
    return;
  }
  need_task(L, tidx, t);
  if (status == LUA_YIELD)
    task_bad_yield(L, tidx, t, nres);
  else {
    lua_xmove(co, L, 1);
    if (task_raised(L, tidx, t)) {
      loop->propagate = 1;
      lua_replace(L, tidx);
      lua_settop(L, tidx);
      return;
    }
  }
  lua_settop(L, top);
}

void aio_task_sleep_done(lua_State *L, aio_loop *loop, aio_task *t,
                         unsigned gen) {
  if (t->wait_kind != AIO_WAIT_SLEEP || t->sleep_gen != gen ||
      t->fut.state != AIO_PENDING)
    return; /* cancelled in the meantime */
  t->wait_kind = AIO_WAIT_YIELD;
  aio_schedule_step(L, loop, t);
}

/* ------------------------------------------------------------------ */
/* Lua methods of Task                                                 */

static int l_task_cancel(lua_State *L) {
  aio_check_task(L, 1);
  lua_settop(L, 2);
  lua_pushboolean(L, aio_task_cancel(L, 1, 2));
  return 1;
}

static int l_task_cancelling(lua_State *L) {
  lua_pushinteger(L, aio_check_task(L, 1)->num_cancels);
  return 1;
}

static int l_task_uncancel(lua_State *L) {
  aio_task *t = aio_check_task(L, 1);
  if (t->num_cancels > 0) {
    t->num_cancels--;
    if (t->num_cancels == 0)
      t->must_cancel = 0;
  }
  lua_pushinteger(L, t->num_cancels);
  return 1;
}

static int l_task_get_name(lua_State *L) {
  push_task_name(L, 1, aio_check_task(L, 1));
  return 1;
}

static int l_task_set_name(lua_State *L) {
  aio_check_task(L, 1);
  luaL_checkany(L, 2);
  luaL_tolstring(L, 2, NULL);
  push_extra(L, 1);
  lua_insert(L, -2);
  lua_setfield(L, -2, "name");
  return 0;
}

static int l_task_get_coro(lua_State *L) {
  aio_check_task(L, 1);
  push_coro(L, 1);
  return 1;
}

/* The `limit` of the options table at index idx (or none: -1); raises
 * "bad argument" when it is not an integer. The caller checked that idx
 * holds a table, and its keys. */
static lua_Integer stack_limit(lua_State *L, int idx) {
  lua_Integer limit = -1;
  if (lua_getfield(L, idx, "limit") != LUA_TNIL) {
    if (!lua_isinteger(L, -1))
      luaL_argerror(L, idx, "'limit' must be an integer");
    limit = lua_tointeger(L, -1);
    if (limit < 0)
      limit = 0;
  }
  lua_pop(L, 1);
  return limit;
}

/* Appends to the list on top the frames of the traceback string on top
 * of it (popped): its first block of "\t"-indented lines, oldest first
 * (a Lua traceback lists the newest first), at most `limit` of them (the
 * oldest) unless limit < 0. A failed task's frames, as Python's get_stack
 * takes them from the exception's traceback. */
static void add_traceback_frames(lua_State *L, lua_Integer limit) {
  const char *tb = lua_tostring(L, -1), *line, *eol;
  int list = lua_gettop(L) - 1, n = 0, i;
  line = strchr(tb, '\n'); /* skip the "stack traceback:" line */
  while (line != NULL && line[1] == '\t') {
    line += 2;
    eol = strchr(line, '\n');
    /* "(...tail calls...)", "..." (skipped levels) are no frames */
    if (*line != '(' && *line != '.') {
      luaL_checkstack(L, 1, "too many frames");
      lua_pushlstring(L, line, eol ? (size_t)(eol - line) : strlen(line));
      n++;
    }
    line = eol;
  }
  if (limit >= 0 && n > limit) {
    /* keep the oldest: the last pushed */
    lua_rotate(L, list + 2, (int)limit);
    lua_settop(L, list + 1 + (int)limit);
    n = (int)limit;
  }
  for (i = 1; i <= n; i++) /* the oldest is on top */
    lua_rawseti(L, list, i);
  lua_pop(L, 1);
}

/* Pushes the traceback string of a task that failed (of its error
 * object, or the one kept for an error of another type), or nil. */
static void push_failure_traceback(lua_State *L, int tidx) {
  lua_getiuservalue(L, tidx, AIO_FU_VALUE);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_getfield(L, -1, "traceback");
    lua_remove(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING)
      return;
  }
  lua_pop(L, 1);
  if (get_extra(L, tidx) == LUA_TTABLE) {
    lua_getfield(L, -1, "traceback");
    lua_remove(L, -2);
  }
  if (lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* Pushes "source:line: in name" for a frame at `line` (none when < 0)
 * of the function `ar` describes; `name` NULL: "function". */
static void push_frame(lua_State *L, const lua_Debug *ar, int line,
                       const char *name) {
  if (name == NULL)
    name = "function";
  if (line >= 0)
    lua_pushfstring(L, "%s:%d: in %s", ar->short_src, line, name);
  else
    lua_pushfstring(L, "%s: in %s", ar->short_src, name);
}

/* Pushes the frame of the body of the pending task at tidx before its
 * first step, where its function is defined: Python's get_stack gives a
 * new coroutine's frame at its first line. The frame is named after the
 * coroutine, as the task's repr names it. */
static void push_unstarted_frame(lua_State *L, int tidx) {
  lua_Debug ar;
  push_coro_name(L, tidx, &ar);
  push_frame(L, &ar, ar.linedefined > 0 ? ar.linedefined : -1,
             lua_tostring(L, -1));
  lua_remove(L, -2); /* the name */
}

/* Pushes the list of "source:line: in name" strings of the task t at
 * tidx, outermost frame first (the body, named after the coroutine
 * when Lua knows no name for it), innermost last. A suspended task
 * gives the frames of its coroutine (the newest `limit` unless limit <
 * 0), one not started yet its body's frame; a task that failed, those
 * of its error's traceback (the oldest `limit`); any other task none. */
static void push_stack(lua_State *L, int tidx, aio_task *t,
                       lua_Integer limit) {
  lua_Debug ar;
  int level = 0, n = 0, i;
  tidx = lua_absindex(L, tidx);
  lua_newtable(L);
  if (limit == 0)
    return;
  if (t->fut.state == AIO_FINISHED && t->fut.has_exc) {
    push_failure_traceback(L, tidx);
    if (lua_isnil(L, -1))
      lua_pop(L, 1);
    else
      add_traceback_frames(L, limit);
    return;
  }
  if (t->fut.state == AIO_PENDING && !t->started) {
    push_unstarted_frame(L, tidx);
    lua_rawseti(L, -2, 1);
    return;
  }
  if (t->co == NULL || !t->started || t->co == L)
    return;
  while (lua_getstack(t->co, level, &ar))
    level++;
  /* skip the trampoline (outermost) frame */
  i = level - 2;
  if (limit > 0 && i >= limit)
    i = (int)limit - 1;
  for (; i >= 0; i--) {
    const char *name;
    lua_getstack(t->co, i, &ar);
    lua_getinfo(t->co, "Sln", &ar);
    name = ar.name;
    if (name == NULL && i == level - 2) { /* the body */
      push_coro_name(L, tidx, NULL);
      name = lua_tostring(L, -1);
    }
    push_frame(L, &ar, ar.currentline, name);
    if (name != ar.name)
      lua_remove(L, -2);
    lua_rawseti(L, -2, ++n);
  }
}

/* The options of get_stack and print_stack */
static const char *const get_stack_options[] = {"limit", NULL};
static const char *const print_stack_options[] = {"limit", "file", NULL};

/* get_stack([{limit = n}]) -> list of "source:line: in name" strings (see
 * push_stack). */
static int l_task_get_stack(lua_State *L) {
  aio_task *t = aio_check_task(L, 1);
  lua_Integer limit = -1;
  if (aio_check_options(L, 2, get_stack_options))
    limit = stack_limit(L, 2);
  lua_settop(L, 1);
  push_stack(L, 1, t, limit);
  return 1;
}

/* A file for print_stack: a table, or a userdata with methods, that has
 * a write field. */
static int is_file(lua_State *L, int idx) {
  int t = lua_type(L, idx), r;
  if (t == LUA_TUSERDATA) {
    if (luaL_getmetafield(L, idx, "__index") == LUA_TNIL)
      return 0;
    lua_pop(L, 1);
  } else if (t != LUA_TTABLE)
    return 0;
  r = lua_getfield(L, idx, "write") != LUA_TNIL;
  lua_pop(L, 1);
  return r;
}

/* print_stack([file | {limit =, file =}]): writes, as Python's
 * print_stack, "Stack for <task> (most recent call last):" ("Traceback
 * for" when the task failed, "No stack for <task>" when there are no
 * frames), the frames of get_stack{limit =} and, when the task failed,
 * its error, to file (any object with :write) or to stderr. */
static int l_task_print_stack(lua_State *L) {
  aio_task *t = aio_check_task(L, 1);
  int i, n, failed = t->fut.state == AIO_FINISHED && t->fut.has_exc;
  lua_Integer limit = -1;
  lua_settop(L, 2);
  if (lua_type(L, 2) == LUA_TTABLE && !is_file(L, 2)) {
    aio_check_options(L, 2, print_stack_options);
    limit = stack_limit(L, 2);
    lua_getfield(L, 2, "file");
    lua_replace(L, 2);
    if (!lua_isnil(L, 2) && !is_file(L, 2))
      luaL_argerror(L, 2, "'file' must be a file");
  } else if (!lua_isnil(L, 2) && !is_file(L, 2))
    luaL_typeerror(L, 2, "file");
  push_stack(L, 1, t, limit); /* [task, file, frames] */
  n = (int)luaL_len(L, 3);
  aio_future_pushrepr(L, 1);
  if (n == 0)
    lua_pushfstring(L, "No stack for %s\n", lua_tostring(L, -1));
  else
    lua_pushfstring(L, "%s for %s (most recent call last):\n",
                    failed ? "Traceback" : "Stack", lua_tostring(L, -1));
  lua_remove(L, -2);
  for (i = 1; i <= n; i++) {
    lua_pushliteral(L, "  ");
    lua_rawgeti(L, 3, i);
    lua_pushliteral(L, "\n");
    lua_concat(L, 4);
  }
  if (failed) {
    lua_getiuservalue(L, 1, AIO_FU_VALUE);
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    lua_pushliteral(L, "\n");
    lua_concat(L, 3);
  }
  if (lua_isnil(L, 2)) {
    fputs(lua_tostring(L, -1), stderr);
    fflush(stderr);
    return 0;
  }
  lua_getfield(L, 2, "write");
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -3);
  lua_call(L, 2, 0);
  return 0;
}

static const luaL_Reg future_methods[] = {
    {"result", l_future_result},
    {"exception", l_future_exception},
    {"done", l_future_done},
    {"cancelled", l_future_cancelled},
    {"cancel", l_future_cancel},
    {"set_result", l_future_set_result},
    {"set_exception", l_future_set_exception},
    {"add_done_callback", l_future_add_done_callback},
    {"remove_done_callback", l_future_remove_done_callback},
    {"get_loop", l_future_get_loop},
    {NULL, NULL}};

static const luaL_Reg task_methods[] = {
    {"cancel", l_task_cancel},
    {"cancelling", l_task_cancelling},
    {"uncancel", l_task_uncancel},
    {"get_name", l_task_get_name},
    {"set_name", l_task_set_name},
    {"get_coro", l_task_get_coro},
    {"get_stack", l_task_get_stack},
    {"print_stack", l_task_print_stack},
    {NULL, NULL}};

static const luaL_Reg future_metamethods[] = {
    {"__tostring", l_future__tostring},
    {NULL, NULL}};

static const luaL_Reg no_methods[] = {{NULL, NULL}};

static const luaL_Reg reporter_metamethods[] = {
    {"__gc", l_reporter__gc},
    {NULL, NULL}};

/* future:__await is not needed: await knows futures. */

/* ------------------------------------------------------------------ */
/* Module functions                                                    */

/* Future([loop]) */
static int l_future_new(lua_State *L) {
  aio_loop *loop = lua_isnoneornil(L, 1) ? aio_get_event_loop(L)
                                         : aio_check_loop_any(L, 1);
  aio_future_new(L, loop);
  return 1;
}

/* loop:create_future([{cancel = fn}]): with `cancel`, fut:cancel(msg)
 * (and cancelling a task that waits on it) calls fn(fut, msg) while the
 * future is pending and returns what fn returns; fn decides whether and
 * when the future completes (gather's cancel cancels its children). */
static int l_loop_create_future(lua_State *L) {
  static const char *const options[] = {"cancel", NULL};
  aio_loop *loop = aio_check_loop(L, 1);
  aio_future *f;
  int hook = 0;
  if (aio_check_options(L, 2, options)) {
    hook = lua_getfield(L, 2, "cancel") != LUA_TNIL;
    if (hook)
      luaL_checktype(L, -1, LUA_TFUNCTION);
  }
  f = future_new(L, loop, 1);
  if (hook) {
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, AIO_FU_VALUE);
    f->cancel_hook = 1;
  }
  return 1;
}

/* The options create_task takes when it makes the Task itself (Python's
 * `context` has no counterpart here). */
static const char *const create_task_options[] = {"name", NULL};

/* The index of create_task's options at idx (0 when none): a table, else
 * a "bad argument" error. Without a task factory its keys must be
 * create_task_options; a factory gets the table as it is and decides, as
 * Python 3.13's create_task passes its keyword arguments on to the
 * factory. A hot path: without options it only looks at the type. */
static int check_create_task_options(lua_State *L, int idx,
                                     aio_loop *loop) {
  if (lua_isnoneornil(L, idx))
    return 0;
  if (!loop->task_factory || loop->closed)
    aio_check_options(L, idx, create_task_options);
  else
    luaL_checktype(L, idx, LUA_TTABLE);
  return idx;
}

/* loop:create_task(coro [, {name=}]) */
static int l_loop_create_task(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  luaL_checkany(L, 2);
  aio_create_task(L, loop, 2, check_create_task_options(L, 3, loop));
  return 1;
}

/* create_task(coro [, {name =}]): on the running loop; with none
 * running, on get_event_loop()'s, as gather, shield and ensure_future
 * bind (where Python raises RuntimeError "no running event loop"). */
static int l_create_task(lua_State *L) {
  aio_loop *loop = aio_running_loop(L);
  luaL_checkany(L, 1);
  if (loop == NULL)
    loop = aio_get_event_loop(L);
  aio_create_task(L, loop, 1, check_create_task_options(L, 2, loop));
  return 1;
}

/* Task(coro [, {loop =, name =}]): a Task made directly, never by a task
 * factory (a factory makes its tasks this way); without a loop, on
 * get_event_loop()'s. */
static int l_task_new(lua_State *L) {
  static const char *const options[] = {"loop", "name", NULL};
  aio_loop *loop = NULL;
  luaL_checkany(L, 1);
  if (aio_check_options(L, 2, options)) {
    if (lua_getfield(L, 2, "loop") != LUA_TNIL)
      loop = aio_check_loop_any(L, -1);
    lua_pop(L, 1);
  }
  aio_task_new(L, loop ? loop : aio_get_event_loop(L), 1,
               lua_isnoneornil(L, 2) ? 0 : 2);
  return 1;
}

/* ensure_future's check of a future f given with a loop (NULL: none). */
static void check_future_loop(lua_State *L, aio_future *f, aio_loop *loop) {
  if (loop != NULL && f->loop != loop)
    aio_raisef(L, AIO_E_VALUE, "The future belongs to a different loop "
               "than the one specified as the loop argument");
}

int aio_ensure_future(lua_State *L, int idx, aio_loop *loop) {
  aio_future *f;
  idx = lua_absindex(L, idx);
  f = aio_test_future(L, idx);
  if (f != NULL) {
    check_future_loop(L, f, loop);
    lua_pushvalue(L, idx);
    return 0;
  }
  if (aio_test_coro(L, idx) != NULL) {
    create_task_future(L, loop ? loop : aio_get_event_loop(L), idx, 0);
    return 1;
  }
  if (luaL_getmetafield(L, idx, "__await") != LUA_TNIL) {
    /* wrap the awaitable in a task of its own */
    int made;
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    made = aio_ensure_future(L, -1, loop);
    lua_remove(L, -2);
    return made;
  }
  aio_pushrepr(L, idx);
  return aio_raisef(L, AIO_E_TYPE, "An asyncio.Future, a coroutine or an "
                    "awaitable is required, got %s", lua_tostring(L, -1));
}

/* ensure_future(aw [, loop]) */
static int l_ensure_future(lua_State *L) {
  aio_loop *loop = lua_isnoneornil(L, 2) ? NULL : aio_check_loop_any(L, 2);
  luaL_checkany(L, 1);
  aio_ensure_future(L, 1, loop);
  return 1;
}

static int l_current_task(lua_State *L) {
  aio_loop *loop = lua_isnoneornil(L, 1) ? aio_running_loop(L)
                                         : aio_check_loop_any(L, 1);
  if (loop == NULL)
    return aio_raisef(L, AIO_E_RUNTIME, "no running event loop");
  if (loop->current == NULL || !loop->running)
    lua_pushnil(L);
  else
    aio_push_task(L, loop->current);
  return 1;
}

/* all_tasks([loop]) -> list of the loop's pending tasks */
static int l_all_tasks(lua_State *L) {
  aio_loop *loop = lua_isnoneornil(L, 1) ? aio_running_loop(L)
                                         : aio_check_loop_any(L, 1);
  int n = 0;
  if (loop == NULL)
    return aio_raisef(L, AIO_E_RUNTIME, "no running event loop");
  lua_createtable(L, (int)loop->npending, 0);
  aio_push_env(L, loop, AIO_ENV_TASKS);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 1;
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_rawseti(L, -4, ++n);
  }
  lua_pop(L, 1);
  return 1;
}

static int l_isfuture(lua_State *L) {
  lua_pushboolean(L, aio_test_future(L, 1) != NULL);
  return 1;
}

/* gather's done-callback for its children (combinators.lua): a C closure
 * over a counter and gather's Lua callback, cb(child, nfinished). Python
 * calls gather's callback once per child, from the ready queue; when the
 * child succeeded, others are still running and no earlier call of the
 * gather's callback is still queued, that call has nothing to do but
 * count (and nothing else of the gather can look at the count before it
 * would have run), so the child's completion counts it at once
 * (gather_fast) and queues nothing. Any other completion queues the
 * closure, which counts and calls the Lua callback. */
typedef struct gather_counter {
  unsigned total;    /* children; UINT_MAX until gather sets it */
  unsigned finished; /* children counted */
  unsigned queued;   /* calls of the closure queued and not yet run */
} gather_counter;

static int gather_cb(lua_State *L) {
  gather_counter *c = lua_touserdata(L, lua_upvalueindex(1));
  if (c->queued > 0)
    c->queued--;
  c->finished++;
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_pushinteger(L, c->finished);
  lua_call(L, 2, 0);
  return 0;
}

/* For schedule_one, the callback on top of the done future f: counts a
 * succeeded child at once when gather_cb allows it (returns 1, the
 * callback popped); else returns 0 (the caller queues the call). */
static int gather_fast(lua_State *L, aio_future *f) {
  gather_counter *c;
  if (lua_tocfunction(L, -1) != gather_cb)
    return 0;
  lua_getupvalue(L, -1, 1);
  c = lua_touserdata(L, -1);
  if (c->queued == 0 && f->state == AIO_FINISHED && !f->has_exc &&
      c->finished + 1 < c->total) {
    c->finished++;
    lua_pop(L, 2); /* the counter and the callback */
    return 1;
  }
  lua_pop(L, 1);
  c->queued++;
  return 0;
}

static gather_counter *check_gather_cb(lua_State *L) {
  if (lua_tocfunction(L, 1) != gather_cb)
    luaL_argerror(L, 1, "gather callback expected");
  lua_getupvalue(L, 1, 1);
  return lua_touserdata(L, -1);
}

/* _gather_callback(fn) -> the done-callback for gather's children */
static int l__gather_callback(lua_State *L) {
  gather_counter *c;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  c->total = UINT_MAX;
  c->finished = c->queued = 0;
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, gather_cb, 2);
  return 1;
}

/* _gather_count(cb) -> children counted, after counting one more (a child
 * that was done when gather started) */
static int l__gather_count(lua_State *L) {
  lua_pushinteger(L, ++check_gather_cb(L)->finished);
  return 1;
}

/* _gather_watch's stack: its arguments, then two tables made when
 * needed (nil until then). */
enum { GW_CB = 1, GW_CHILDREN, GW_N,
       GW_WRAPPED, /* awaitable -> the task made for it */
       GW_DONE };  /* the children done at the start, in order */

/* Counts the child f at fidx: lists it in GW_DONE (*ndone entries) when
 * it is done, else adds GW_CB to its done-callbacks. */
static void watch_child(lua_State *L, int fidx, aio_future *f,
                        unsigned *ndone) {
  if (f->state != AIO_PENDING) {
    if (lua_isnil(L, GW_DONE)) {
      lua_newtable(L);
      lua_replace(L, GW_DONE);
    }
    lua_pushvalue(L, fidx);
    lua_rawseti(L, GW_DONE, ++*ndone);
  } else {
    lua_pushvalue(L, GW_CB);
    add_callback(L, fidx, f);
  }
}

/* _gather_watch(cb, children, n) -> nchildren, loop, done|nil: gather's
 * set-up of its children, in argument order. children[i] becomes
 * ensure_future(children[i], loop of the first child), an awaitable given
 * several times wrapping once (its task is a child once; a future given
 * several times is a child each time); cb is added to every child not
 * yet done, and the done ones are listed, in order. cb's total is set
 * last: an argument that raises leaves it unset, the callbacks already
 * added staying (Python does the same). */
static int l__gather_watch(lua_State *L) {
  gather_counter *c = check_gather_cb(L);
  lua_Integer n = luaL_checkinteger(L, GW_N), i;
  unsigned nchildren = 0, ndone = 0;
  aio_loop *loop = NULL;
  luaL_checktype(L, GW_CHILDREN, LUA_TTABLE);
  lua_settop(L, GW_N);
  lua_pushnil(L); /* GW_WRAPPED */
  lua_pushnil(L); /* GW_DONE */
  for (i = 1; i <= n; i++) {
    int arg = GW_DONE + 1;
    aio_future *f;
    lua_rawgeti(L, GW_CHILDREN, i); /* [arg] */
    f = aio_test_future(L, arg);
    if (f != NULL) {
      /* ensure_future(f) is f, already in its slot (never a key of
       * GW_WRAPPED: those are the awaitables that made a task) */
      check_future_loop(L, f, loop);
      loop = f->loop;
      nchildren++;
      watch_child(L, arg, f, &ndone);
      lua_pop(L, 1);
      continue;
    }
    if (!lua_isnil(L, GW_WRAPPED)) {
      lua_pushvalue(L, arg);
      if (lua_rawget(L, GW_WRAPPED) != LUA_TNIL) { /* [arg, its task] */
        lua_rawseti(L, GW_CHILDREN, i);
        lua_pop(L, 1);
        continue;
      }
      lua_pop(L, 1);
    }
    if (aio_ensure_future(L, arg, loop)) { /* [arg, fut]: a new task */
      if (lua_isnil(L, GW_WRAPPED)) {
        lua_newtable(L);
        lua_replace(L, GW_WRAPPED);
      }
      lua_pushvalue(L, arg);
      lua_pushvalue(L, arg + 1);
      lua_rawset(L, GW_WRAPPED);
    }
    f = lua_touserdata(L, arg + 1);
    loop = f->loop;
    nchildren++;
    watch_child(L, arg + 1, f, &ndone);
    lua_rawseti(L, GW_CHILDREN, i);
    lua_pop(L, 1); /* the argument */
  }
  c->total = nchildren;
  lua_pushinteger(L, nchildren);
  if (loop != NULL)
    aio_push_loop(L, loop);
  else
    lua_pushnil(L); /* no children */
  lua_pushvalue(L, GW_DONE);
  return 3;
}

/* Pushes the future list[i] of the list at index 1, raising an argument
 * error when it is not one. */
static aio_future *push_listed_future(lua_State *L, lua_Integer i) {
  aio_future *f;
  lua_rawgeti(L, 1, i);
  f = aio_test_future(L, -1);
  if (f == NULL)
    luaL_argerror(L, 1, lua_pushfstring(L, "asyncio.Future expected at "
                                        "index %I, got %s", i,
                                        luaL_typename(L, -1)));
  return f;
}

/* _gather_results(children, n) -> {the first result of each child}, for
 * a gather whose children all succeeded. */
static int l__gather_results(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2), i;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  lua_createtable(L, n > 0 && n < INT_MAX ? (int)n : 0, 0);
  for (i = 1; i <= n; i++) {
    aio_future *f = push_listed_future(L, i); /* at 4 */
    if (f->state == AIO_FINISHED && !f->has_exc && f->nres == 1)
      lua_getiuservalue(L, 4, AIO_FU_VALUE); /* what push_result pushes */
    else {
      aio_future_push_result(L, 4);
      lua_settop(L, 5); /* its first value */
    }
    lua_rawseti(L, 3, i);
    lua_pop(L, 1);
  }
  return 1;
}

/* wait's helpers (combinators.lua): one call over its list of futures
 * instead of one method call per future. */

/* _unique(aws) -> the values aws[1..#aws] without repeats, in first-seen
 * order (as indexing and # do: metamethods apply). */
static int l__unique(lua_State *L) {
  lua_Integer n, i, k = 0, size;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 0 && n < INT_MAX, 1, "too many values");
  /* sized by what the list holds, not by what a __len claims */
  size = lua_type(L, 1) == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, 1) : 0;
  if (size > n)
    size = n;
  lua_createtable(L, (int)size, 0); /* 2: the list */
  lua_createtable(L, 0, (int)size); /* 3: seen */
  for (i = 1; i <= n; i++) {
    if (lua_geti(L, 1, i) == LUA_TNIL) /* as ensure_future would say */
      return aio_raisef(L, AIO_E_TYPE, "An asyncio.Future, a coroutine or "
                        "an awaitable is required, got nil");
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 3) != LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, 3); /* raises for NaN, as t[v] = true */
    lua_rawseti(L, 2, ++k);
  }
  lua_pop(L, 1);
  return 1;
}

/* The length of the list at idx, checked. */
static int list_len(lua_State *L, int idx) {
  lua_Unsigned n;
  luaL_checktype(L, idx, LUA_TTABLE);
  n = lua_rawlen(L, idx);
  luaL_argcheck(L, n < INT_MAX, idx, "too many values");
  return (int)n;
}

/* _ensure_futures(fs, loop): fs[i] = ensure_future(fs[i], loop) for
 * each i, in order. */
static int l__ensure_futures(lua_State *L) {
  int n = list_len(L, 1), i;
  aio_loop *loop = aio_check_loop_any(L, 2);
  lua_settop(L, 2);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    aio_ensure_future(L, 3, loop);
    lua_rawseti(L, 1, i);
    lua_settop(L, 2);
  }
  return 0;
}

/* _add_done_callbacks(fs, cb): fs[i]:add_done_callback(cb) for each i. */
static int l__add_done_callbacks(lua_State *L) {
  int n = list_len(L, 1), i;
  check_callable(L, 2, "add_done_callback");
  lua_settop(L, 2);
  for (i = 1; i <= n; i++) {
    push_listed_future(L, i);
    lua_pushvalue(L, 2);
    aio_future_add_callback(L, 3);
    lua_settop(L, 2);
  }
  return 0;
}

/* _remove_done_callbacks(fs, cb) -> done, pending: removes cb from each
 * future of fs, then splits fs into the done and the pending ones (in fs
 * order). */
static int l__remove_done_callbacks(lua_State *L) {
  int n = list_len(L, 1), i, ndone = 0, npending = 0;
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  for (i = 1; i <= n; i++) {
    if (push_listed_future(L, i)->state != AIO_PENDING)
      ndone++;
    remove_callbacks(L, 3, 2);
    lua_settop(L, 2);
  }
  lua_createtable(L, ndone, 0);     /* 3: done */
  lua_createtable(L, n - ndone, 0); /* 4: pending */
  ndone = 0;
  for (i = 1; i <= n; i++) {
    aio_future *f = push_listed_future(L, i);
    if (f->state != AIO_PENDING)
      lua_rawseti(L, 3, ++ndone);
    else
      lua_rawseti(L, 4, ++npending);
  }
  return 2;
}

/* _succeeded(fut) -> true when fut finished with a result (not cancelled,
 * no exception): gather's per-child test in one call. */
static int l__succeeded(lua_State *L) {
  aio_future *f = aio_check_future(L, 1);
  lua_pushboolean(L, f->state == AIO_FINISHED && !f->has_exc);
  return 1;
}

static const luaL_Reg future_funcs[] = {
    {"Future", l_future_new},
    {"Task", l_task_new},
    {"create_task", l_create_task},
    {"ensure_future", l_ensure_future},
    {"current_task", l_current_task},
    {"all_tasks", l_all_tasks},
    {"isfuture", l_isfuture},
    {"_traceback_of", l__traceback_of},
    {"_failure_traceback", l__failure_traceback},
    {"_suspended_traceback", l__suspended_traceback},
    {"_succeeded", l__succeeded},
    {"_gather_callback", l__gather_callback},
    {"_gather_watch", l__gather_watch},
    {"_unique", l__unique},
    {"_ensure_futures", l__ensure_futures},
    {"_add_done_callbacks", l__add_done_callbacks},
    {"_remove_done_callbacks", l__remove_done_callbacks},
    {"_gather_results", l__gather_results},
    {"_gather_count", l__gather_count},
    {NULL, NULL}};

void aio_open_future(lua_State *L) {
  aio_newclass(L, AIO_FUTURE_MT, AIO_K_FUTURE, future_methods,
               future_metamethods);
  aio_newclass(L, AIO_TASK_MT, AIO_K_TASK, future_methods,
               future_metamethods);
  aio_newclass(L, AIO_REPORTER_MT, AIO_K_OTHER, no_methods,
               reporter_metamethods);
  aio_cache_mt(L, AIO_FUTURE_MT, &aio_mt_future);
  aio_cache_mt(L, AIO_TASK_MT, &aio_mt_task);
  /* Task methods override and extend the Future ones */
  luaL_getmetatable(L, AIO_TASK_MT);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, task_methods, 0);
  lua_pop(L, 2);
  luaL_setfuncs(L, future_funcs, 0);
  /* loop methods that live here */
  luaL_getmetatable(L, AIO_LOOP_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, l_loop_create_future);
  lua_setfield(L, -2, "create_future");
  lua_pushcfunction(L, l_loop_create_task);
  lua_setfield(L, -2, "create_task");
  lua_pop(L, 2);
}
