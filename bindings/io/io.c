/*
 * io.c - what every I/O object of the loop shares (stream.c, udp.c,
 * process.c, dns.c): the loop's list of I/O objects, deferred dispatch of
 * their events, and the registry of the futures that wait on C events.
 *
 * Each I/O object is a malloc'd struct that starts with aio_io and sits in
 * its loop's list until its handle's close callback releases it, so that
 * closing a loop closes everything it owns. Its uv callbacks never call
 * Lua: they keep data in C, record events and call aio_io_notify, which
 * runs the object's dispatch function in protected mode on the thread
 * running the loop. Dispatch completes futures; tasks wake through the
 * ready queue. Futures that C events complete wait in one registry table,
 * keyed by the address of the C object they wait on.
 */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------------ */
/* I/O objects: the loop's list, events, deferred dispatch             */

void aio_io_link(aio_loop *loop, aio_io *io, uv_handle_t *h) {
  io->loop = loop;
  io->handle = h;
  io->prev = NULL;
  io->next = loop->ios;
  if (loop->ios)
    loop->ios->prev = io;
  loop->ios = io;
  if (h) {
    h->data = io;
    loop->handles_open++;
  }
}

static void io_unlink(aio_io *io) {
  aio_loop *loop = io->loop;
  if (loop == NULL)
    return;
  if (io->prev)
    io->prev->next = io->next;
  else
    loop->ios = io->next;
  if (io->next)
    io->next->prev = io->prev;
  io->next = io->prev = NULL;
  if (io->handle)
    loop->handles_open--;
  io->loop = NULL;
}

void aio_io_release(aio_io *io) {
  io_unlink(io);
  if (io->posted)
    io->dead = 1; /* the queued post frees it */
  else
    free(io);
}

/* [io]: runs the recorded events. */
static int l_io_dispatch(lua_State *L) {
  aio_io *io = lua_touserdata(L, 1);
  unsigned ev = io->events;
  io->events = 0;
  lua_settop(L, 0);
  if (ev && io->dispatch)
    io->dispatch(L, io, ev);
  return 0;
}

/* Dispatches in protected mode on L; failures (memory errors only: a
 * protocol's Lua callbacks are called under their own protection) go to
 * the loop's exception handler, without a traceback, which would only
 * show this function. */
static void dispatch_on(lua_State *L, aio_io *io) {
  aio_loop *loop = io->loop;
  if (!lua_checkstack(L, 8))
    return;
  loop->dispatches++;
  lua_pushcfunction(L, l_io_dispatch);
  lua_pushlightuserdata(L, io);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    aio_report_error(L, loop, "Exception in an I/O callback", -1, NULL, 0);
    lua_pop(L, 1);
  }
}

/* A dispatch posted while the loop was not running (a host running the
 * uv loop itself): runs as a ready entry, or frees a released object. */
static void io_posted(aio_loop *loop, lua_State *L, void *p) {
  aio_io *io = p;
  (void)loop;
  io->posted = 0;
  if (io->dead) {
    free(io);
    return;
  }
  if (L != NULL && io->events && io->loop && !io->loop->closed)
    dispatch_on(L, io);
}

void aio_io_notify(aio_io *io, unsigned events) {
  aio_loop *loop = io->loop;
  io->events |= events;
  if (loop == NULL || loop->closed || io->posted)
    return;
  if (loop->Lrun != NULL)
    dispatch_on(loop->Lrun, io);
  else if (loop->remote && aio_remote_post(loop->remote, io_posted, io) == 0)
    io->posted = 1;
}

void aio_io_close_all(lua_State *L, aio_loop *loop) {
  aio_io *io, *next;
  for (io = loop->ios; io; io = next) {
    next = io->next;
    if (io->shut)
      io->shut(L, io);
  }
  if (!loop->own_uv) {
    /* the host's loop runs the close callbacks later: they must not
     * touch this loop */
    for (io = loop->ios; io; io = next) {
      next = io->next;
      io->loop = NULL;
      io->next = io->prev = NULL;
    }
    loop->ios = NULL;
  }
}

void aio_io_ignore_sigpipe(void) {
  static int done;
  struct sigaction sa;
  if (done)
    return;
  done = 1;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------ */
/* Waiting futures                                                     */

/* The registry table of what C holds for Lua: key (a C address) -> one
 * future, or a list of futures in the order they were added (a second
 * aio_waiters_add makes the list), or an object C anchors. */
static const char key_waits = 0;

static void push_waits(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_waits) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_waits);
  }
}

void aio_waiter_set(lua_State *L, const void *key, int fidx) {
  fidx = lua_absindex(L, fidx);
  push_waits(L);
  lua_pushvalue(L, fidx);
  lua_rawsetp(L, -2, key);
  lua_pop(L, 1);
}

int aio_waiter_get(lua_State *L, const void *key) {
  int type;
  push_waits(L);
  type = lua_rawgetp(L, -1, key);
  lua_remove(L, -2);
  return type;
}

int aio_waiter_take(lua_State *L, const void *key) {
  push_waits(L);
  if (lua_rawgetp(L, -1, key) == LUA_TNIL) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pushnil(L);
  lua_rawsetp(L, -3, key);
  lua_remove(L, -2);
  return 1;
}

void aio_waiter_drop(lua_State *L, const void *key) {
  push_waits(L);
  lua_pushnil(L);
  lua_rawsetp(L, -2, key);
  lua_pop(L, 1);
}

void aio_waiters_add(lua_State *L, const void *key, int fidx) {
  fidx = lua_absindex(L, fidx);
  push_waits(L);
  switch (lua_rawgetp(L, -1, key)) { /* [waits, registered] */
  case LUA_TNIL: /* the only one: no list */
    lua_pushvalue(L, fidx);
    lua_rawsetp(L, -3, key);
    break;
  case LUA_TTABLE:
    lua_pushvalue(L, fidx);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    break;
  default: /* the second: a list of both */
    lua_createtable(L, 2, 0);
    lua_insert(L, -2); /* [waits, list, first] */
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, fidx);
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, key);
  }
  lua_pop(L, 2);
}

/* Removes the future at fidx from the list on top, registered under key
 * in the waits table below it; an emptied list is unregistered. */
static void list_remove(lua_State *L, const void *key, int fidx) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_rawequal(L, -1, fidx)) {
      lua_pop(L, 1);
      for (; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        lua_rawseti(L, -2, i);
      }
      lua_pushnil(L);
      lua_rawseti(L, -2, n);
      if (n == 1) {
        lua_pushnil(L);
        lua_rawsetp(L, -3, key);
      }
      return;
    }
    lua_pop(L, 1);
  }
}

void aio_waiters_remove(lua_State *L, const void *key, int fidx) {
  fidx = lua_absindex(L, fidx);
  push_waits(L);
  if (lua_rawgetp(L, -1, key) == LUA_TTABLE)
    list_remove(L, key, fidx);
  else if (lua_rawequal(L, -1, fidx)) {
    lua_pushnil(L);
    lua_rawsetp(L, -3, key);
  }
  lua_pop(L, 2);
}

int aio_wake_future(lua_State *L, int fidx) {
  aio_future *f = lua_touserdata(L, fidx);
  if (f == NULL || f->state != AIO_PENDING || f->loop->closed)
    return 0;
  return aio_future_set_result(L, lua_absindex(L, fidx), 0);
}

void aio_waiters_wake(lua_State *L, const void *key) {
  lua_Integer i, n;
  if (!aio_waiter_take(L, key))
    return;
  if (lua_type(L, -1) == LUA_TTABLE) {
    n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      aio_wake_future(L, -1);
      lua_pop(L, 1);
    }
  } else
    aio_wake_future(L, -1);
  lua_pop(L, 1);
}

int aio_waiters_await(lua_State *L, aio_task *t, const void *key,
                      lua_KContext ctx, lua_KFunction k) {
  aio_waiters_add(L, key, -1);
  return aio_await_future(L, t, lua_gettop(L), ctx, k);
}

void aio_waiters_resumed(lua_State *L, const void *key, int fidx) {
  aio_future *f = lua_touserdata(L, fidx);
  int threw = aio_resume_take_throw(L, aio_current_task_of(L));
  if (f->state != AIO_FINISHED) /* else a wake-up unregistered it */
    aio_waiters_remove(L, key, fidx);
  if (threw)
    lua_error(L);
  if (f->state == AIO_CANCELLED)
    aio_future_push_result(L, fidx); /* raises the CancelledError */
}

void aio_push_error_named(lua_State *L, const char *name, const char *msg) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_pushstring(L, msg);
  lua_call(L, 1, 1);
}

size_t aio_opt_limit(lua_State *L, int idx) {
  lua_Integer n = 0;
  if (lua_type(L, idx) != LUA_TTABLE)
    return 0;
  if (lua_getfield(L, idx, "limit") == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_isinteger(L, -1))
    luaL_error(L, "bad option 'limit' (integer expected)");
  n = lua_tointeger(L, -1);
  if (n <= 0) /* a value problem: Python's ValueError */
    aio_raisef(L, AIO_E_VALUE, "Limit cannot be <= 0");
  lua_pop(L, 1);
  return (size_t)n;
}

/* Pushes the OSError of a failed operation on paths as Python shapes it
 * (fs.c, Unix sockets); the paths are the strings at stack indices p1
 * and p2 (0: none). */
void aio_push_path_error(lua_State *L, int err, const char *op, int p1,
                        int p2) {
  const char *msg = strerror(-err);
  aio_push_uverror(L, err, op);
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "strerror");
  if (lua_getfield(L, -1, "args") == LUA_TTABLE) {
    lua_pushstring(L, msg);
    lua_rawseti(L, -2, 2);
  }
  lua_pop(L, 1);
  lua_pushfstring(L, "[Errno %d] %s", -err, msg);
  if (p1) {
    lua_pushvalue(L, p1);
    lua_setfield(L, -3, "filename");
    lua_pushliteral(L, ": ");
    aio_pushrepr(L, p1);
    lua_concat(L, 3);
  }
  if (p2) {
    lua_pushvalue(L, p2);
    lua_setfield(L, -3, "filename2");
    lua_pushliteral(L, " -> ");
    aio_pushrepr(L, p2);
    lua_concat(L, 3);
  }
  lua_setfield(L, -2, "message");
}

int aio_set_reuse_port(uv_handle_t *h) {
  uv_os_fd_t fd;
  int on = 1, r = uv_fileno(h, &fd);
  if (r != 0)
    return r;
#ifdef SO_REUSEPORT
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
    return uv_translate_sys_error(errno);
  return 0;
#else
  (void)on;
  return UV_ENOTSUP;
#endif
}
