/*
 * handle.c - Handle and TimerHandle: callbacks scheduled with call_soon,
 * call_soon_threadsafe, call_later and call_at.
 *
 * A handle is a userdata holding its loop (uservalue 1), the callback
 * (uservalue 2) and its arguments (uservalues 3..). Cancelling drops the
 * callback and arguments at once, as asyncio does, so that they can be
 * collected; a cancelled TimerHandle leaves the heap lazily (timer.c).
 */
#include <string.h>

#include "internal.h"

#define UV_FN 2
#define UV_ARG0 3

aio_handle *aio_handle_new(lua_State *L, aio_loop *loop, int fidx, int nargs,
                           int timer, double when, const char *what) {
  aio_handle *h;
  int i;
  fidx = lua_absindex(L, fidx);
  if (lua_type(L, fidx) != LUA_TFUNCTION) {
    if (aio_test_coro(L, fidx) != NULL)
      aio_raisef(L, AIO_E_TYPE, "coroutines cannot be used with %s()", what);
    if (luaL_getmetafield(L, fidx, "__call") == LUA_TNIL)
      luaL_typeerror(L, fidx, "function");
    lua_pop(L, 1);
  } else if (aio_is_coroutine_function(L, fidx))
    aio_raisef(L, AIO_E_TYPE, "coroutines cannot be used with %s()", what);
  h = lua_newuserdatauv(L, sizeof *h, UV_ARG0 - 1 + nargs);
  memset(h, 0, sizeof *h);
  h->loop = loop;
  h->nargs = nargs;
  h->timer = (unsigned char)timer;
  h->when = when;
  aio_setmt(L, timer ? &aio_mt_timerhandle : &aio_mt_handle);
  aio_push_loop(L, loop);
  lua_setiuservalue(L, -2, 1);
  for (i = 0; i <= nargs; i++) {
    lua_pushvalue(L, fidx + i);
    lua_setiuservalue(L, -2, UV_FN + i);
  }
  return h;
}

static aio_handle *check_handle(lua_State *L, int idx) {
  if (aio_kindof(L, idx) != AIO_K_HANDLE)
    luaL_typeerror(L, idx, AIO_HANDLE_MT);
  return lua_touserdata(L, idx);
}

void aio_handle_run(lua_State *L, aio_loop *loop) {
  int hidx = lua_gettop(L), i;
  aio_handle *h = lua_touserdata(L, hidx);
  if (h->cancelled) {
    lua_pop(L, 1);
    return;
  }
  luaL_checkstack(L, h->nargs + 4, NULL);
  for (i = 0; i <= h->nargs; i++)
    lua_getiuservalue(L, hidx, UV_FN + i);
  if (aio_pcall(L, h->nargs) != LUA_OK) {
    if (aio_isfatal(L, -1)) {
      loop->propagate = 1;
      lua_replace(L, hidx);
      return;
    }
    lua_pushliteral(L, "Exception in callback ");
    luaL_tolstring(L, hidx, NULL);
    lua_concat(L, 2);
    aio_report_error(L, loop, lua_tostring(L, -1), -2, "handle", hidx);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* ------------------------------------------------------------------ */
/* Lua methods                                                         */

static int l_handle_cancel(lua_State *L) {
  aio_handle *h = check_handle(L, 1);
  int i;
  if (h->cancelled)
    return 0;
  h->cancelled = 1;
  for (i = 0; i <= h->nargs; i++) {
    lua_pushnil(L);
    lua_setiuservalue(L, 1, UV_FN + i);
  }
  if (h->timer && h->scheduled) {
    h->scheduled = 0;
    aio_timers_cancelled(L, h->loop);
  }
  return 0;
}

static int l_handle_cancelled(lua_State *L) {
  lua_pushboolean(L, check_handle(L, 1)->cancelled);
  return 1;
}

static int l_handle_when(lua_State *L) {
  aio_handle *h = check_handle(L, 1);
  if (!h->timer)
    return luaL_error(L, "'when' is only defined for asyncio.TimerHandle");
  lua_pushnumber(L, h->when);
  return 1;
}

static int l_handle_get_loop(lua_State *L) {
  check_handle(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int l_handle__tostring(lua_State *L) {
  aio_handle *h = check_handle(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, h->timer ? "<TimerHandle" : "<Handle");
  if (h->cancelled)
    luaL_addstring(&b, " cancelled");
  if (h->timer) {
    lua_pushfstring(L, " when=%f", h->when);
    luaL_addvalue(&b);
  }
  if (!h->cancelled) {
    int i;
    luaL_addchar(&b, ' ');
    lua_getiuservalue(L, 1, UV_FN);
    aio_pushfuncname(L, -1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
    luaL_addchar(&b, '(');
    /* the arguments only in debug mode: they may hold secrets (3.13) */
    for (i = 0; h->loop->debug && i < h->nargs; i++) {
      if (i > 0)
        luaL_addstring(&b, ", ");
      lua_getiuservalue(L, 1, UV_ARG0 + i);
      aio_pushrepr(L, -1);
      lua_remove(L, -2);
      luaL_addvalue(&b);
    }
    luaL_addchar(&b, ')');
  }
  luaL_addchar(&b, '>');
  luaL_pushresult(&b);
  return 1;
}

/* Comparisons of TimerHandles, as events.py's: ordered by `when`; equal
 * when `when`, the callback, the arguments (==, metamethods included)
 * and the cancelled flag are (a cancelled handle has dropped its
 * callback and arguments). A plain Handle is equal only to itself and
 * cannot be ordered. */
static aio_handle *check_timerhandle(lua_State *L, int idx) {
  aio_handle *h = check_handle(L, idx);
  if (!h->timer)
    luaL_error(L, "attempt to compare two asyncio.Handle values "
                  "(only TimerHandles are ordered)");
  return h;
}

static int handles_equal(lua_State *L, aio_handle *a, aio_handle *b) {
  int i;
  if (a == b)
    return 1;
  if (!a->timer || !b->timer || a->when != b->when ||
      a->cancelled != b->cancelled || a->nargs != b->nargs)
    return 0;
  if (a->cancelled)
    return 1;
  for (i = 0; i <= a->nargs; i++) {
    int eq;
    lua_getiuservalue(L, 1, UV_FN + i);
    lua_getiuservalue(L, 2, UV_FN + i);
    eq = lua_compare(L, -2, -1, LUA_OPEQ);
    lua_pop(L, 2);
    if (!eq)
      return 0;
  }
  return 1;
}

static int l_handle__eq(lua_State *L) {
  aio_handle *a, *b;
  if (aio_kindof(L, 1) != AIO_K_HANDLE || aio_kindof(L, 2) != AIO_K_HANDLE) {
    lua_pushboolean(L, 0);
    return 1;
  }
  a = lua_touserdata(L, 1);
  b = lua_touserdata(L, 2);
  lua_pushboolean(L, handles_equal(L, a, b));
  return 1;
}

static int l_handle__lt(lua_State *L) {
  aio_handle *a = check_timerhandle(L, 1), *b = check_timerhandle(L, 2);
  lua_pushboolean(L, a->when < b->when);
  return 1;
}

static int l_handle__le(lua_State *L) {
  aio_handle *a = check_timerhandle(L, 1), *b = check_timerhandle(L, 2);
  lua_pushboolean(L, a->when < b->when || handles_equal(L, a, b));
  return 1;
}

static int call_soon(lua_State *L, aio_loop *loop, const char *what) {
  aio_handle_new(L, loop, 2, lua_gettop(L) - 2, 0, 0, what);
  lua_pushvalue(L, -1);
  aio_ready_push(L, loop, AIO_R_HANDLE, NULL, 0, NULL, 1);
  return 1;
}

/* loop:call_soon(fn, ...) -> Handle */
static int l_loop_call_soon(lua_State *L) {
  return call_soon(L, aio_check_loop(L, 1), "call_soon");
}

/* loop:call_soon_threadsafe(fn, ...) from the loop's own state: as
 * call_soon, and wakes the loop in case it is blocked in a poll (another
 * Lua state may share the OS thread). Other threads use loop references
 * (threads.c). */
static int l_loop_call_soon_threadsafe(lua_State *L) {
  aio_loop *loop = aio_check_loop(L, 1);
  call_soon(L, loop, "call_soon_threadsafe");
  uv_async_send(loop->wakeup);
  return 1;
}

static const luaL_Reg handle_methods[] = {
    {"cancel", l_handle_cancel},
    {"cancelled", l_handle_cancelled},
    {"when", l_handle_when},
    {"get_loop", l_handle_get_loop},
    {NULL, NULL}};

static const luaL_Reg handle_metamethods[] = {
    {"__tostring", l_handle__tostring},
    {"__eq", l_handle__eq},
    {"__lt", l_handle__lt},
    {"__le", l_handle__le},
    {NULL, NULL}};

void aio_open_handle(lua_State *L) {
  aio_newclass(L, AIO_HANDLE_MT, AIO_K_HANDLE, handle_methods,
               handle_metamethods);
  aio_newclass(L, AIO_TIMERHANDLE_MT, AIO_K_HANDLE, handle_methods,
               handle_metamethods);
  aio_cache_mt(L, AIO_HANDLE_MT, &aio_mt_handle);
  aio_cache_mt(L, AIO_TIMERHANDLE_MT, &aio_mt_timerhandle);
  luaL_getmetatable(L, AIO_LOOP_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, l_loop_call_soon);
  lua_setfield(L, -2, "call_soon");
  lua_pushcfunction(L, l_loop_call_soon_threadsafe);
  lua_setfield(L, -2, "call_soon_threadsafe");
  lua_pop(L, 2);
}
