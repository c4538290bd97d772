/*
 * coro.c - coroutine functions, Coroutine objects and await.
 *
 * async(fn) returns a coroutine function: calling it makes a Coroutine
 * object (fn and the arguments, not started), as calling an `async def`
 * does in Python. await(x) runs in a task's own thread:
 *   - a Coroutine object runs inline, as a plain call of fn(args) in the
 *     awaiting task (yields inside it suspend the task);
 *   - a pending Future or Task registers the task's wakeup and suspends
 *     it; a done one returns its values at once, without yielding;
 *   - any value whose metatable has __await is replaced by what __await
 *     returns, and awaited.
 * Every suspension goes through aio_task_suspend, which marks the yield as
 * legitimate; the task step treats any other yield as a bad yield.
 */
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------------ */
/* Suspension protocol                                                 */

int aio_task_suspend(lua_State *L, aio_task *t, lua_KContext ctx,
                     lua_KFunction k) {
  t->awaiting = 1;
  return lua_yieldk(L, 0, ctx, k);
}

void aio_resume_check(lua_State *L, aio_task *t) {
  if (t != NULL && t->resume_throw) {
    t->resume_throw = 0;
    lua_error(L); /* the value the step passed is on top */
  }
}

aio_task *aio_check_await(lua_State *L, const char *what) {
  aio_task *t = aio_current_task_of(L);
  if (t != NULL)
    return t;
  if (aio_running_loop(L) != NULL && lua_isyieldable(L))
    aio_raisef(L, AIO_E_RUNTIME, "cannot %s in a coroutine that is not a "
               "task's own (use asyncio.create_task to run it)", what);
  aio_raisef(L, AIO_E_RUNTIME, "cannot %s outside a task", what);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Coroutine objects                                                   */

static int coro_factory(lua_State *L);
static int kept_factory(lua_State *L);

/* Whether f is the C function of a coroutine function: coro_factory, or
 * kept_factory for the C operations whose Coroutine objects are kept. */
static int is_factory(lua_CFunction f) {
  return f == coro_factory || f == kept_factory;
}

/* A Coroutine object's block starts with &coro_tag (aio_testtagged). */
static const char coro_tag = 0;

/* Is the userdata block p of len bytes a Coroutine object? Either size
 * is one: aio_coro, or the aio_fast_op that starts with one. */
static int is_coro_block(const char *const *p, size_t len) {
  return (len == sizeof(aio_coro) || len == sizeof(aio_fast_op)) &&
         *p == &coro_tag;
}

aio_coro *aio_test_coro(lua_State *L, int idx) {
  const char **p = lua_touserdata(L, idx); /* NULL unless a userdata */
  return p != NULL && is_coro_block(p, lua_rawlen(L, idx)) ? (aio_coro *)p
                                                           : NULL;
}

/* Fills the block of a new Coroutine object (not started). */
static void coro_init(aio_coro *c, lua_CFunction body, int nargs,
                      int origin, int cached) {
  c->tag = &coro_tag;
  c->body = body;
  c->nargs = nargs;
  c->state = AIO_CORO_NEW;
  c->origin = (unsigned char)origin;
  c->cached = (unsigned char)cached;
}

static aio_coro *check_coro(lua_State *L, int idx) {
  aio_coro *c = aio_test_coro(L, idx);
  if (c == NULL)
    luaL_typeerror(L, idx, AIO_CORO_MT);
  return c;
}

/* A coroutine function is a C closure of coro_factory with upvalues
 * (fn, name, itself, the metatable of its Coroutine objects). Its name is
 * resolved once, from the call site of its first call (how Lua itself
 * names functions in tracebacks), so that every repr of its coroutines
 * agrees; false when the call site gives none. */
static void name_from_call(lua_State *L) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name &&
      ar.name[0] != '?')
    lua_pushstring(L, ar.name);
  else
    lua_pushboolean(L, 0);
  lua_replace(L, lua_upvalueindex(2));
}

/* The coroutine function of a C operation made with `keep`
 * (asyncio.sleep) is a closure of kept_factory instead, with the same
 * upvalues, fn being a light C function and named, and a fifth: its
 * Coroutine objects are C operations (no finalizer) of which it keeps
 * one, in upvalue 5 (false until the first call), armed again by the
 * next call once awaited, as aio_ccoro_kept does; calls with more than
 * KEPT_ARGS arguments get one of their own. Their uservalue 1 is the
 * coroutine function, for its name. */
#define KEPT_ARGS 2

static int kept_factory(lua_State *L) {
  int n = lua_gettop(L), i;
  aio_coro *c = NULL;
  if (n <= KEPT_ARGS) {
    c = lua_touserdata(L, lua_upvalueindex(5)); /* NULL: false */
    if (c != NULL && c->state == AIO_CORO_STARTED)
      lua_pushvalue(L, lua_upvalueindex(5));
    else
      c = NULL; /* none yet, or armed and not awaited yet: a new one */
  }
  if (c == NULL) {
    c = lua_newuserdatauv(L, sizeof *c, 1 + (n > KEPT_ARGS ? n : KEPT_ARGS));
    coro_init(c, lua_tocfunction(L, lua_upvalueindex(1)), n, 0, 1);
    lua_pushvalue(L, lua_upvalueindex(4));
    lua_setmetatable(L, -2);
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_setiuservalue(L, -2, 1);
    if (n <= KEPT_ARGS) {
      lua_pushvalue(L, -1);
      lua_replace(L, lua_upvalueindex(5));
    }
  }
  c->state = AIO_CORO_NEW;
  c->nargs = n;
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_setiuservalue(L, -2, i + 1);
  }
  return 1;
}

/* Called as a coroutine function: returns a new Coroutine object holding
 * the coroutine function (uservalue 1) and the arguments. */
static int coro_factory(lua_State *L) {
  int n = lua_gettop(L), i;
  aio_coro *c;
  int origin = aio_debug_mode(L);
  if (lua_type(L, lua_upvalueindex(2)) == LUA_TNIL)
    name_from_call(L);
  c = lua_newuserdatauv(L, sizeof *c, 1 + n + origin);
  coro_init(c, NULL, n, origin, 0);
  if (origin) { /* where it was created, for the never-awaited report */
    aio_traceback(L, L, 1);
    lua_setiuservalue(L, -2, n + 2);
  }
  lua_pushvalue(L, lua_upvalueindex(4)); /* the metatable */
  lua_setmetatable(L, -2);
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_setiuservalue(L, -2, 1);
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_setiuservalue(L, -2, i + 1);
  }
  return 1;
}

/* Marks the Coroutine c at cidx (a positive index) as `state` (started,
 * or taken by a task), raising if it was awaited or taken before. One
 * with a finalizer (made with a Lua function: c->body is NULL) has
 * nothing left to report from now on: it takes the metatable without
 * __gc, which differs in nothing else (aio_open_coro), so that the
 * collector skips the call of an idle finalizer. `loop`, when not NULL,
 * is an open loop of L's state, whose ref finds that metatable. */
static aio_coro *coro_take(lua_State *L, int cidx, aio_coro *c, int state,
                           aio_loop *loop) {
  if (c->state != AIO_CORO_NEW)
    aio_raisef(L, AIO_E_RUNTIME, "cannot reuse already awaited coroutine");
  c->state = (unsigned char)state;
  if (c->body == NULL) {
    if (loop != NULL)
      lua_rawgeti(L, LUA_REGISTRYINDEX, loop->mt_ref[AIO_MT_CCORO]);
    else
      lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_mt_ccoro);
    lua_setmetatable(L, cidx);
  }
  return c;
}

/* Pushes the function and the arguments of the Coroutine c at cidx onto
 * `to`; returns the number of arguments. The object then lets go of
 * them (a kept operation not of its owner, uservalue 2): they live in
 * the body's frame from now on, and die with it. Kept by the object,
 * they would live as long as a task (get_coro), or through the
 * resurrection of the object's finalizer, and in the generational
 * collector the big ones (a 1 MiB read written out through an async
 * function) would get old and wait for a major collection. */
static int push_body(lua_State *L, int cidx, aio_coro *c, lua_State *to) {
  int i;
  luaL_checkstack(L, c->nargs + 2, "too many arguments");
  if (to != L)
    luaL_checkstack(to, c->nargs + 2, "too many arguments");
  if (c->cached == AIO_CORO_FAST && ((aio_fast_op *)c)->settle != NULL)
    ((aio_fast_op *)c)->settle(L, (aio_fast_op *)c, cidx);
  aio_coro_pushfn(L, cidx);
  for (i = 2; i <= c->nargs + 1; i++)
    lua_getiuservalue(L, cidx, i);
  for (i = c->cached ? 3 : 2; i <= c->nargs + 1; i++) { /* as run_cop */
    lua_pushnil(L);
    lua_setiuservalue(L, cidx, i);
  }
  if (to != L)
    lua_xmove(L, to, c->nargs + 1);
  return c->nargs;
}

/* aio_coro_start, for a caller that may know an open loop (or NULL) */
static int coro_start(lua_State *L, int cidx, lua_State *to,
                      aio_loop *loop) {
  cidx = lua_absindex(L, cidx);
  return push_body(L, cidx,
                   coro_take(L, cidx, lua_touserdata(L, cidx),
                             AIO_CORO_STARTED, loop),
                   to);
}

int aio_coro_start(lua_State *L, int cidx, lua_State *to) {
  return coro_start(L, cidx, to, NULL);
}

void aio_coro_take(lua_State *L, int cidx, aio_coro *c, aio_loop *loop) {
  coro_take(L, cidx, c, AIO_CORO_TAKEN, loop);
}

int aio_coro_start_taken(lua_State *L, int cidx, lua_State *to) {
  aio_coro *c;
  int nargs;
  cidx = lua_absindex(L, cidx);
  c = lua_touserdata(L, cidx);
  nargs = push_body(L, cidx, c, to);
  c->state = AIO_CORO_STARTED; /* a kept operation may be armed again */
  return nargs;
}

/* Pushes loaded[mod][name] found equal to the function at fidx, or
 * returns 0. Searches two levels as lauxlib does for tracebacks; a
 * coroutine function whose wrapped function is fidx also matches. */
static int matches(lua_State *L, int vidx, int fidx) {
  if (lua_rawequal(L, vidx, fidx))
    return 1;
  if (is_factory(lua_tocfunction(L, vidx)) &&
      lua_getupvalue(L, vidx, 1) != NULL) {
    int r = lua_rawequal(L, -1, fidx);
    lua_pop(L, 1);
    return r;
  }
  return 0;
}

static int find_global(lua_State *L, int fidx) {
  int top = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, top + 1)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && matches(L, -1, fidx)) {
          const char *mod = lua_tostring(L, -4);
          if (strcmp(mod, LUA_GNAME) == 0)
            lua_pushvalue(L, -2);
          else
            lua_pushfstring(L, "%s.%s", mod, lua_tostring(L, -2));
          lua_replace(L, top + 1);
          lua_settop(L, top + 1);
          return 1;
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  return 0;
}

/* Searches the locals and upvalues of the active frames of L. */
static int find_local(lua_State *L, int fidx) {
  lua_Debug ar;
  int level, top = lua_gettop(L);
  for (level = 0; lua_getstack(L, level, &ar); level++) {
    const char *name;
    int i;
    for (i = 1; (name = lua_getlocal(L, &ar, i)) != NULL; i++) {
      if (name[0] != '(' && matches(L, -1, fidx)) {
        lua_pushstring(L, name);
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
        return 1;
      }
      lua_pop(L, 1);
    }
    lua_getinfo(L, "f", &ar);
    for (i = 1; (name = lua_getupvalue(L, -1, i)) != NULL; i++) {
      if (name[0] != '\0' && matches(L, -1, fidx)) {
        lua_pushstring(L, name);
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
        return 1;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* C operations' bodies by name: the registry's table at &key_op_names,
 * function -> name. */
static const char key_op_names = 0;

void aio_name_ops(lua_State *L, const aio_op_name *names) {
  aio_push_weak_registry_table(L, &key_op_names, NULL);
  for (; names->body != NULL; names++) {
    lua_pushcfunction(L, names->body);
    lua_pushstring(L, names->name);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
}

/* Pushes the name aio_name_ops gave the C function at idx, if any. */
static int push_op_name(lua_State *L, int idx) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_op_names) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TSTRING) {
    lua_pop(L, 2);
    return 0;
  }
  lua_remove(L, -2);
  return 1;
}

void aio_pushfuncname(lua_State *L, int idx) {
  lua_Debug ar;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 10, NULL);
  if (lua_iscfunction(L, idx) && push_op_name(L, idx))
    return;
  if (find_global(L, idx) || find_local(L, idx))
    return;
  if (lua_type(L, idx) != LUA_TFUNCTION) {
    luaL_tolstring(L, idx, NULL);
    return;
  }
  lua_pushvalue(L, idx);
  lua_getinfo(L, ">S", &ar);
  if (*ar.what == 'C')
    lua_pushliteral(L, "function <C>");
  else
    lua_pushfstring(L, "function <%s:%d>", ar.short_src, ar.linedefined);
}

void aio_coro_pushfn(lua_State *L, int cidx) {
  aio_coro *c = lua_touserdata(L, cidx);
  if (c->body != NULL) {
    lua_pushcfunction(L, c->body);
    return;
  }
  lua_getiuservalue(L, cidx, 1);
  if (is_factory(lua_tocfunction(L, -1))) {
    lua_getupvalue(L, -1, 1);
    lua_replace(L, -2); /* no rotation */
  }
}

void aio_coro_pushname(lua_State *L, int cidx) {
  cidx = lua_absindex(L, cidx);
  lua_getiuservalue(L, cidx, 1);
  if (is_factory(lua_tocfunction(L, -1))) {
    lua_getupvalue(L, -1, 2);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_remove(L, -2);
      return;
    }
    lua_pop(L, 1);
    lua_getupvalue(L, -1, 1);
    aio_pushfuncname(L, -1);
    lua_remove(L, -2);
    if (strncmp(lua_tostring(L, -1), "function <", 10) != 0) {
      lua_pushvalue(L, -1); /* found by search: remember it */
      lua_setupvalue(L, -3, 2);
    }
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  aio_coro_pushfn(L, cidx);
  aio_pushfuncname(L, -1);
  lua_remove(L, -2);
}

static int l_coro__tostring(lua_State *L) {
  aio_coro *c = check_coro(L, 1);
  lua_pushliteral(L, "<coroutine object ");
  aio_coro_pushname(L, 1);
  lua_pushfstring(L, "%s>", c->state == AIO_CORO_NEW ? "" : " (started)");
  lua_concat(L, 3);
  return 1;
}

/* A Coroutine never awaited nor wrapped in a task is reported, as
 * Python's RuntimeWarning "coroutine ... was never awaited". */
static int l_coro__gc(lua_State *L) {
  aio_coro *c = lua_touserdata(L, 1);
  if (c->state == AIO_CORO_NEW) {
    c->state = AIO_CORO_STARTED;
    aio_coro_pushname(L, 1);
    fprintf(stderr, "RuntimeWarning: coroutine '%s' was never awaited\n",
            lua_tostring(L, -1));
    if (c->origin && lua_getiuservalue(L, 1, c->nargs + 2) == LUA_TSTRING)
      fprintf(stderr, "Coroutine created at %s\n", lua_tostring(L, -1));
    else
      fprintf(stderr, "(run with --debug or LUAIO_DEBUG=1 to see where "
                      "it was created)\n");
    fflush(stderr);
  }
  return 0;
}

/* coro:close(): marks a not-started coroutine as disposed of, so that it
 * is not reported (Python's coro.close()). */
static int l_coro_close(lua_State *L) {
  aio_coro *c = check_coro(L, 1);
  if (c->state == AIO_CORO_NEW) /* a task's stays its own */
    c->state = AIO_CORO_STARTED;
  return 0;
}

/* ------------------------------------------------------------------ */
/* await                                                               */

static int await_future_k(lua_State *L, int status, lua_KContext ctx) {
  aio_future *f;
  (void)status;
  (void)ctx;
  aio_resume_check(L, aio_current_task_of(L));
  lua_settop(L, 1);
  f = lua_touserdata(L, 1);
  if (f->state == AIO_PENDING)
    return aio_raisef(L, AIO_E_RUNTIME, "await wasn't used with future");
  return aio_future_push_result(L, 1);
}

/* aio_await_future for the future f at the absolute index fidx. */
static int await_future_at(lua_State *L, aio_task *t, aio_future *f,
                           int fidx, lua_KContext ctx, lua_KFunction k) {
  int top = lua_gettop(L);
  if (f == &t->fut) {
    aio_future_pushrepr(L, fidx);
    return aio_raisef(L, AIO_E_RUNTIME, "Task cannot await on itself: %s",
                      lua_tostring(L, -1));
  }
  if (f->loop != t->fut.loop) {
    aio_future_pushrepr(L, fidx);
    return aio_raisef(L, AIO_E_RUNTIME,
                      "Task got Future %s attached to a different loop",
                      lua_tostring(L, -1));
  }
  lua_pushlightuserdata(L, t);
  aio_future_add_callback(L, fidx);
  /* the future stays in this frame while the task waits: the task keeps
   * its slot instead of a reference (see aio_push_waiter) */
  t->waiter = f;
  t->waiter_idx = fidx;
  t->wait_kind = AIO_WAIT_FUTURE;
  if (t->must_cancel) /* requested while it ran: it hits this await */
    aio_task_forward_cancel(L, t, fidx);
  lua_settop(L, top);
  return aio_task_suspend(L, t, ctx, k);
}

int aio_await_future(lua_State *L, aio_task *t, int fidx, lua_KContext ctx,
                     lua_KFunction k) {
  fidx = lua_absindex(L, fidx);
  return await_future_at(L, t, lua_touserdata(L, fidx), fidx, ctx, k);
}

int aio_resume_take_throw(lua_State *L, aio_task *t) {
  if (t != NULL && t->resume_throw) {
    t->resume_throw = 0;
    return 1;
  }
  return 0;
}

/* Awaits the future f at index 1 (the only value on the stack). */
static int await_future(lua_State *L, aio_task *t, aio_future *f) {
  if (f->state != AIO_PENDING)
    return aio_future_push_result(L, 1);
  return await_future_at(L, t, f, 1, 0, await_future_k);
}

static int await_coro_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L) - 1;
}

/* run_cop for n > 1 arguments: [coro] -> [arg1, ..., argn] (arguments
 * 2..n go above the coro, then the first replaces it: no rotation) */
static __attribute__((noinline)) void push_cop_args(lua_State *L,
                                                   aio_coro *c, int n) {
  int i;
  if (n > LUA_MINSTACK - 2) /* a C function always has LUA_MINSTACK */
    luaL_checkstack(L, n + 2, "too many arguments");
  for (i = 3; i <= n + 1; i++) {
    lua_getiuservalue(L, 1, i);
    if (c->cached) { /* a kept operation lets go of its arguments */
      lua_pushnil(L);
      lua_setiuservalue(L, 1, i);
    }
  }
  lua_getiuservalue(L, 1, 2);
  lua_replace(L, 1);
}

/* Runs the body of the C operation c at index 1, already marked started,
 * in await's own frame, as if await were that function: its arguments
 * become the whole stack, its yields and results are await's. */
static inline int run_cop(lua_State *L, aio_coro *c) {
  int n = c->nargs;
  if (n == 0)
    lua_settop(L, 0);
  else if (n == 1) { /* the usual case: sleep(s), q:get() waiting */
    lua_getiuservalue(L, 1, 2);
    lua_replace(L, 1);
  } else
    push_cop_args(L, c, n);
  return c->body(L);
}

/* Runs the body of the C operation op at index 1, started, whose fast
 * path declined: with the stack reset to [op] and its arguments back. */
static int run_declined(lua_State *L, aio_fast_op *op) {
  lua_settop(L, 1);
  if (op->settle != NULL)
    op->settle(L, op, 1);
  return run_cop(L, &op->c);
}

/* Runs the Coroutine object c at index 1, the only value on the stack,
 * not a new C operation, inline in the task: a Lua function as a plain
 * call in the task. */
static int await_coro(lua_State *L, aio_task *t, aio_coro *c) {
  int nargs;
  lua_CFunction body = c->body;
  if (body != NULL) /* a C operation, not new (await_coro_at1) */
    return aio_raisef(L, AIO_E_RUNTIME,
                      "cannot reuse already awaited coroutine");
  nargs = coro_start(L, 1, L, t->fut.loop); /* [coro, fn, args...] */
  body = lua_tocfunction(L, 2);
  if (body != NULL) {
    if (lua_getupvalue(L, 2, 1) == NULL) { /* a light C function */
      lua_rotate(L, 1, -2); /* [args..., coro, fn] */
      lua_settop(L, -3);
      return body(L);
    }
    lua_pop(L, 1); /* a C closure needs its own frame for its upvalues */
  }
  lua_callk(L, nargs, LUA_MULTRET, 0, await_coro_k);
  return await_coro_k(L, LUA_OK, 0);
}

/* The task awaiting in L, or raises. */
static aio_task *awaiting_task(lua_State *L) {
  aio_task *t = aio_current_task_of(L);
  return t != NULL ? t : aio_check_await(L, "await");
}

/* Awaits the Coroutine object c at index 1, in a coroutine that may
 * yield. The fast path of a new C operation needs no task: it completes
 * at once, or changes nothing and the operation stays new if there is
 * no task to run its body. */
static inline __attribute__((always_inline)) int
await_coro_at1(lua_State *L, aio_coro *c) {
  if (c->body == NULL || c->state != AIO_CORO_NEW) {
    aio_task *t = awaiting_task(L);
    lua_settop(L, 1);
    return await_coro(L, t, c);
  }
  if (c->cached == AIO_CORO_FAST) {
    aio_fast_op *op = (aio_fast_op *)c;
    int nres;
    c->state = AIO_CORO_STARTED;
    nres = op->fast(L, op);
    if (nres >= 0)
      return nres;
    if (aio_current_task_of(L) == NULL) {
      c->state = AIO_CORO_NEW;
      aio_check_await(L, "await"); /* raises */
    }
    return run_declined(L, op);
  }
  awaiting_task(L);
  c->state = AIO_CORO_STARTED;
  if (lua_gettop(L) != 1)
    lua_settop(L, 1);
  return run_cop(L, c);
}

/* Awaits what __await of the value at index 1 returns, and so on. */
static __attribute__((noinline)) int await_dunder(lua_State *L,
                                                  aio_task *t) {
  int depth;
  for (depth = 0; depth < 100; depth++) {
    const char **p;
    size_t len;
    if (luaL_getmetafield(L, 1, "__await") == LUA_TNIL) {
      aio_pushrepr(L, 1);
      return aio_raisef(L, AIO_E_TYPE, "object %s can't be used in "
                        "'await' expression", lua_tostring(L, -1));
    }
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_replace(L, 1);
    len = lua_rawlen(L, 1);
    p = lua_touserdata(L, 1); /* NULL unless a userdata */
    if (p != NULL) {
      lua_CFunction guard;
      if (is_coro_block(p, len))
        return await_coro_at1(L, (aio_coro *)p);
      guard = aio_guard_body_of(p, len); /* await(lock), await(sem) */
      if (guard != NULL)
        return guard(L);
    }
    switch (aio_kindof(L, 1)) {
    case AIO_K_FUTURE:
    case AIO_K_TASK:
      return await_future(L, t, lua_touserdata(L, 1));
    default:
      break;
    }
  }
  return aio_raisef(L, AIO_E_TYPE, "__await chain too deep");
}

int aio_await(lua_State *L) {
  aio_task *t;
  size_t len;
  const char **p;
  /* checked before any waiter is registered: a yield that failed after
   * (a task awaiting inside __tostring) would leave the task queued on a
   * lock, or its wake-up on a future, past its end */
  if (!lua_isyieldable(L)) {
    awaiting_task(L); /* raises outside a task */
    return aio_raisef(L, AIO_E_RUNTIME, "cannot await here: attempt to "
                      "yield across a C-call boundary");
  }
  /* index 1 is acceptable even on an empty stack (nil: length 0) */
  len = lua_rawlen(L, 1);
  p = lua_touserdata(L, 1); /* NULL unless a userdata */
  if (p != NULL && is_coro_block(p, len))
    return await_coro_at1(L, (aio_coro *)p);
  t = awaiting_task(L);
  if (lua_gettop(L) != 1) {
    luaL_checkany(L, 1);
    lua_settop(L, 1);
  }
  if (p != NULL) {
    lua_CFunction guard = aio_guard_body_of(p, len); /* await(lock) */
    if (guard != NULL)
      return guard(L);
  }
  switch (aio_kindof(L, 1)) {
  case AIO_K_FUTURE:
  case AIO_K_TASK:
    return await_future(L, t, lua_touserdata(L, 1));
  default:
    return await_dunder(L, t);
  }
}

/* ------------------------------------------------------------------ */
/* Module functions                                                    */

/* Replaces the values on top by a new Coroutine of a block of `size`
 * bytes (aio_coro, or a larger block that starts with one) and returns
 * the block: [fn, args...] when body is NULL, else the `nargs`
 * arguments of the C operation `body`, whose Coroutine has no finalizer
 * (the metatables are set once: a finalizer registered by a first
 * metatable stays). */
static aio_coro *coro_new(lua_State *L, int nargs, lua_CFunction body,
                          size_t size) {
  aio_coro *c;
  int nvals = nargs + (body == NULL), top = lua_gettop(L);
  int base = top - nvals + 1, uv = body == NULL ? 1 : 2, i;
  c = lua_newuserdatauv(L, size, 1 + nargs);
  coro_init(c, body, nargs, 0, 0);
  aio_setmt(L, body == NULL ? &aio_mt_coro : &aio_mt_ccoro);
  for (i = base; i <= top; i++) {
    lua_pushvalue(L, i);
    lua_setiuservalue(L, -2, uv++);
  }
  lua_insert(L, base);
  lua_settop(L, base);
  return c;
}

/* C operations (lock:acquire(), q:get(), reader:read(n), ...) are made
 * on hot paths and are not worth a never-awaited report: their Coroutine
 * objects use a metatable without a finalizer, which keeps them cheap to
 * collect. */
#define AIO_CCORO_MT "asyncio.Coroutine (C)"

void aio_coro_new(lua_State *L, int nargs) {
  coro_new(L, nargs, NULL, sizeof(aio_coro));
}

void aio_push_ccoro(lua_State *L, lua_CFunction body, int nargs) {
  coro_new(L, nargs, body, sizeof(aio_coro));
}

int aio_ccoro_method(lua_State *L, int nargs, lua_CFunction body) {
  lua_settop(L, nargs);
  aio_push_ccoro(L, body, nargs);
  return 1;
}

/* Pushes the kept operation in the uservalue `slot` of the object at 1,
 * armed again with the arguments 2..nargs, and returns 1; or returns 0
 * (nothing pushed) when there is none, it is armed and not awaited yet,
 * or it is another operation's (operations may share a slot: the last
 * one made is kept). */
static int rearm_kept(lua_State *L, int nargs, lua_CFunction body,
                      int slot) {
  int i;
  if (lua_getiuservalue(L, 1, slot) == LUA_TUSERDATA) {
    aio_coro *c = lua_touserdata(L, -1);
    if (c->state == AIO_CORO_STARTED && c->body == body) { /* awaited */
      c->state = AIO_CORO_NEW;
      for (i = 2; i <= nargs; i++) {
        lua_pushvalue(L, i);
        lua_setiuservalue(L, -2, i + 1);
      }
      return 1;
    }
  }
  lua_pop(L, 1);
  return 0;
}

int aio_ccoro_kept(lua_State *L, int nargs, lua_CFunction body, int slot) {
  return aio_ccoro_kept_fast(L, nargs, body, slot, NULL, 0);
}

/* Pushes a new operation of the object at 1 (its arguments: 1..nargs,
 * the whole stack) that the object keeps in its uservalue `slot`, in a
 * block of `size` bytes: an aio_coro, or an aio_fast_op whose fast path
 * is `fast` (none when NULL) and whose uservalue 1 is the object's
 * uservalue `aux` (0: none). Returns the block. */
static aio_coro *kept_new(lua_State *L, int nargs, lua_CFunction body,
                          int slot, aio_fast_fn fast, int aux, size_t size) {
  aio_coro *c;
  int i;
  for (i = 1; i <= nargs; i++)
    lua_pushvalue(L, i);
  c = coro_new(L, nargs, body, size);
  c->cached = fast ? AIO_CORO_FAST : 1;
  if (size >= sizeof(aio_fast_op)) {
    aio_fast_op *op = (aio_fast_op *)c;
    op->owner = lua_touserdata(L, 1);
    op->fast = fast;
    op->settle = NULL;
    if (aux) {
      lua_getiuservalue(L, 1, aux);
      lua_setiuservalue(L, -2, 1);
    }
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, slot);
  return c;
}

int aio_ccoro_kept_fast(lua_State *L, int nargs, lua_CFunction body,
                        int slot, aio_fast_fn fast, int aux) {
  if (lua_gettop(L) != nargs)
    lua_settop(L, nargs);
  if (rearm_kept(L, nargs, body, slot))
    return 1;
  /* none yet, or it is armed and not awaited yet: a new one, kept */
  kept_new(L, nargs, body, slot, fast, aux,
           fast ? sizeof(aio_fast_op) : sizeof(aio_coro));
  return 1;
}

int aio_fast_op_kept(lua_State *L, aio_fast_op **kept, int nargs,
                     lua_CFunction body, int slot, aio_fast_fn fast,
                     int aux) {
  aio_fast_op *op = *kept;
  int i;
  if (op != NULL && op->c.state == AIO_CORO_STARTED) {
    lua_getiuservalue(L, 1, slot); /* op, above any extra arguments */
    op->c.state = AIO_CORO_NEW;
    for (i = 2; i <= nargs; i++) { /* an absent one pushes nil */
      lua_pushvalue(L, i);
      lua_setiuservalue(L, -2, i + 1);
    }
    return 1;
  }
  /* none yet, or armed and not awaited yet, or taken by a task */
  if (lua_gettop(L) != nargs)
    lua_settop(L, nargs);
  *kept = (aio_fast_op *)kept_new(L, nargs, body, slot, fast, aux,
                                  sizeof(aio_fast_op));
  return 1;
}

/* Pushes a new coroutine function for the function at fidx, named `name`
 * (NULL: resolved at its first call); with `keep`, fidx is a light C
 * function whose Coroutine objects are kept (kept_factory). */
static void push_coro_function(lua_State *L, int fidx, const char *name,
                               int keep) {
  fidx = lua_absindex(L, fidx);
  lua_pushvalue(L, fidx);
  if (name)
    lua_pushstring(L, name);
  else
    lua_pushnil(L);
  lua_pushnil(L);
  /* the metatable of its Coroutine objects (no registry look-up per
   * call) */
  lua_rawgetp(L, LUA_REGISTRYINDEX, keep ? &aio_mt_ccoro : &aio_mt_coro);
  if (keep) {
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, kept_factory, 5);
  } else
    lua_pushcclosure(L, coro_factory, 4);
  lua_pushvalue(L, -1);
  lua_setupvalue(L, -2, 3); /* itself */
}

static int l_async(lua_State *L) {
  if (is_factory(lua_tocfunction(L, 1))) {
    lua_settop(L, 1);
    return 1; /* already a coroutine function */
  }
  if (lua_type(L, 1) != LUA_TFUNCTION &&
      luaL_getmetafield(L, 1, "__call") == LUA_TNIL)
    return luaL_typeerror(L, 1, "function");
  push_coro_function(L, 1, NULL, 0);
  return 1;
}

static int l_iscoroutine(lua_State *L) {
  lua_pushboolean(L, aio_test_coro(L, 1) != NULL);
  return 1;
}

int aio_is_coroutine_function(lua_State *L, int idx) {
  return is_factory(lua_tocfunction(L, idx));
}

static int l_iscoroutinefunction(lua_State *L) {
  lua_pushboolean(L, aio_is_coroutine_function(L, 1));
  return 1;
}

static const luaL_Reg coro_methods[] = {
    {"close", l_coro_close},
    {NULL, NULL}};

static const luaL_Reg coro_metamethods[] = {
    {"__tostring", l_coro__tostring},
    {"__gc", l_coro__gc},
    {NULL, NULL}};

static const luaL_Reg ccoro_metamethods[] = {
    {"__tostring", l_coro__tostring},
    {NULL, NULL}};

static const luaL_Reg coro_funcs[] = {
    {"async", l_async},
    {"iscoroutine", l_iscoroutine},
    {"iscoroutinefunction", l_iscoroutinefunction},
    {NULL, NULL}};

void aio_open_coro(lua_State *L) {
  aio_newclass(L, AIO_CORO_MT, AIO_K_CORO, coro_methods, coro_metamethods);
  aio_newclass(L, AIO_CCORO_MT, AIO_K_CORO, coro_methods,
               ccoro_metamethods);
  luaL_getmetatable(L, AIO_CCORO_MT);
  lua_pushliteral(L, AIO_CORO_MT); /* the name users see in errors */
  lua_setfield(L, -2, "__name");
  /* one methods table for both: a Coroutine changes metatables when it
   * starts (coro_take), and keeps the methods Lua code may have added */
  luaL_getmetatable(L, AIO_CORO_MT);
  lua_getfield(L, -1, "__methods");
  lua_setfield(L, -3, "__methods");
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, "__index");
  lua_pop(L, 2);
  aio_cache_mt(L, AIO_CORO_MT, &aio_mt_coro);
  aio_cache_mt(L, AIO_CCORO_MT, &aio_mt_ccoro);
  luaL_setfuncs(L, coro_funcs, 0);
  lua_pushcfunction(L, aio_await);
  lua_setfield(L, -2, "await");
  /* sleep is the coroutine function of aio_sleep_body, a C operation
   * whose Coroutine objects are kept */
  lua_pushcfunction(L, aio_sleep_body);
  push_coro_function(L, -1, "sleep", 1);
  lua_setfield(L, -3, "sleep");
  lua_pop(L, 1);
}
