/*
 * process.c - subprocesses: the C half of create_subprocess_exec/_shell
 * (_spawn; the facade is lua/asyncio/subprocess.lua, which adds
 * communicate()), and the Process object: pid, returncode, stdin /
 * stdout / stderr streams, wait(), send_signal(), terminate(), kill().
 *
 * The child runs under a uv_process_t. Its pipes are stream transports
 * (stream.c): stdin a StreamWriter, stdout and stderr StreamReaders. The
 * loop keeps the Process userdata while the child runs (as asyncio's
 * child watcher does), so that its exit is always recorded; the exit
 * callback only records it, and dispatch sets returncode, wakes wait()
 * and closes the handle. Closing the loop kills nothing: it closes the
 * handles and the pipes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* asyncio.PIPE, STDOUT, DEVNULL: Python's values. */
#define IO_PIPE (-1)
#define IO_STDOUT (-2)
#define IO_DEVNULL (-3)

typedef struct pud pud;

typedef struct proc {
  aio_io io;
  uv_process_t h;
  pud *ud;             /* the Lua Process, NULL once detached */
  int64_t status;
  int signal;
  unsigned char reaped; /* libuv reported the exit (dispatched or not) */
} proc;

struct pud {
  proc *p;             /* NULL once the child exited or the loop closed */
  int pid;
  lua_Integer returncode;
  unsigned char exited;
  char wait_key;       /* address: the registry key of wait()'s future */
  int anchor;          /* aio_anchor's until it is let go */
};

enum {
  P_UV_STDIN = 1, P_UV_STDOUT, P_UV_STDERR, P_UV_LOOP,
  P_UV_COUNT = P_UV_LOOP
};

static void on_proc_closed(uv_handle_t *h) {
  aio_io_release((aio_io *)h->data);
}

static void proc_close_hook(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_proc_closed);
}

/* Lets the Lua side go: no more anchor, the handle closes. */
static void proc_detach(lua_State *L, proc *p) {
  pud *ud = p->ud;
  if (ud) {
    p->ud = NULL;
    ud->p = NULL;
    aio_unanchor(L, &ud->anchor);
  }
  proc_close_hook((uv_handle_t *)&p->h);
}

static void proc_shut(lua_State *L, aio_io *io) {
  proc_detach(L, (proc *)io);
}

static void proc_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  proc *p = (proc *)io;
  pud *ud = p->ud;
  (void)ev;
  if (ud == NULL)
    return;
  ud->exited = 1;
  ud->returncode = p->signal ? -(lua_Integer)p->signal
                             : (lua_Integer)p->status;
  aio_waiters_wake(L, &ud->wait_key);
  proc_detach(L, p);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int signal) {
  proc *p = h->data;
  p->status = status;
  p->signal = signal;
  p->reaped = 1;
  aio_io_notify(&p->io, 1);
}

/* ------------------------------------------------------------------ */
/* Lua methods                                                         */

static pud *check_process(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, AIO_PROCESS_MT);
}

static int wait_body(lua_State *L);

/* Woken by the exit: wait_body returns the returncode. */
static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  pud *ud = lua_touserdata(L, 1);
  (void)status;
  (void)ctx;
  aio_waiters_resumed(L, &ud->wait_key, 2);
  lua_settop(L, 1);
  return wait_body(L);
}

/* [process] -> returncode */
static int wait_body(lua_State *L) {
  pud *ud = check_process(L, 1);
  aio_task *t;
  lua_settop(L, 1);
  if (ud->exited) {
    lua_pushinteger(L, ud->returncode);
    return 1;
  }
  if (ud->p == NULL)
    return aio_raisef(L, AIO_E_RUNTIME, "the process is no longer watched "
                      "(its event loop closed)");
  t = aio_check_await(L, "wait");
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, &ud->wait_key, 0, wait_k);
}

static int l_process_wait(lua_State *L) {
  check_process(L, 1);
  return aio_ccoro_method(L, 1, wait_body);
}

/* Signals the child; once its exit was seen (returncode set) or its loop
 * closed, Python's ProcessLookupError, as asyncio's Process raises then.
 * An exit libuv reported but not yet dispatched is seen by no one yet:
 * the signal goes nowhere, as Popen.send_signal's after the exit. */
static int send_signal(lua_State *L, pud *ud, int signum) {
  int r;
  if (ud->exited || ud->p == NULL)
    return aio_raise_uv(L, UV_ESRCH, "send_signal");
  if (ud->p->reaped)
    return 0;
  r = uv_process_kill(&ud->p->h, signum);
  if (r != 0)
    return aio_raise_uv(L, r, "send_signal");
  return 0;
}

static int l_process_send_signal(lua_State *L) {
  return send_signal(L, check_process(L, 1), aio_check_signal(L, 2));
}

static int l_process_terminate(lua_State *L) {
  return send_signal(L, check_process(L, 1), SIGTERM);
}

static int l_process_kill(lua_State *L) {
  return send_signal(L, check_process(L, 1), SIGKILL);
}

/* Fields: pid, returncode (nil until the exit), stdin, stdout, stderr. */
static int l_process__index(lua_State *L) {
  pud *ud = check_process(L, 1);
  const char *key;
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1;
  key = lua_tostring(L, 2);
  if (key == NULL)
    return 0;
  if (strcmp(key, "pid") == 0)
    lua_pushinteger(L, ud->pid);
  else if (strcmp(key, "returncode") == 0) {
    if (ud->exited)
      lua_pushinteger(L, ud->returncode);
    else
      lua_pushnil(L);
  } else if (strcmp(key, "stdin") == 0)
    lua_getiuservalue(L, 1, P_UV_STDIN);
  else if (strcmp(key, "stdout") == 0)
    lua_getiuservalue(L, 1, P_UV_STDOUT);
  else if (strcmp(key, "stderr") == 0)
    lua_getiuservalue(L, 1, P_UV_STDERR);
  else
    lua_pushnil(L);
  return 1;
}

static int l_process__tostring(lua_State *L) {
  pud *ud = check_process(L, 1);
  if (ud->exited)
    lua_pushfstring(L, "<Process %d returncode=%I>", ud->pid,
                    ud->returncode);
  else
    lua_pushfstring(L, "<Process %d%s>", ud->pid,
                    ud->p ? " running" : " unwatched");
  return 1;
}

static int l_process__gc(lua_State *L) {
  pud *ud = lua_touserdata(L, 1);
  proc *p = ud->p;
  aio_waiter_drop(L, &ud->wait_key);
  if (p) {
    p->ud = NULL;
    ud->p = NULL;
    proc_close_hook((uv_handle_t *)&p->h);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Spawning                                                            */

/* How one of the child's fds 0..2 is set up, from the option at idx. */
static int opt_stdio(lua_State *L, int oidx, const char *name, int fd) {
  lua_Integer v;
  if (lua_type(L, oidx) != LUA_TTABLE)
    return fd; /* inherited */
  lua_getfield(L, oidx, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return fd;
  }
  if (!lua_isinteger(L, -1))
    return luaL_error(L, "bad option '%s' (asyncio.PIPE, DEVNULL, STDOUT, "
                      "a file descriptor or nil expected)", name);
  v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (v < IO_DEVNULL || (v == IO_STDOUT && fd != 2))
    return luaL_error(L, "bad option '%s'", name);
  return (int)v;
}

/* The string (or number) at idx as the child gets it: a bad argument
 * error for another type, Python's ValueError "embedded null byte" when a
 * NUL would cut it short. */
static const char *child_string(lua_State *L, int idx) {
  size_t n;
  const char *s = luaL_checklstring(L, idx, &n);
  if (strlen(s) != n)
    aio_raisef(L, AIO_E_VALUE, "embedded null byte");
  return s;
}

/* The environment option at oidx as "K=V" strings (NULL: inherited):
 * string keys without "=" (Python's ValueError "illegal environment
 * variable name"), string or number values. Pushes one value that keeps
 * the strings and the array alive. */
static char **build_env(lua_State *L, int oidx) {
  char **env;
  int n = 0, i;
  if (lua_type(L, oidx) != LUA_TTABLE ||
      lua_getfield(L, oidx, "env") == LUA_TNIL) {
    if (lua_type(L, oidx) == LUA_TTABLE)
      lua_pop(L, 1);
    lua_pushnil(L);
    return NULL;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_newtable(L); /* [env, keep] */
  lua_pushnil(L);
  while (lua_next(L, -3)) { /* [env, keep, k, v] */
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "bad option 'env' (string keys expected)");
    if (!lua_isstring(L, -1))
      luaL_error(L, "bad option 'env' (string or number values expected, "
                 "got %s for '%s')", luaL_typename(L, -1),
                 lua_tostring(L, -2));
    if (strchr(child_string(L, -2), '=') != NULL)
      aio_raisef(L, AIO_E_VALUE, "illegal environment variable name");
    lua_pushvalue(L, -1); /* a number stays a number for lua_next's key */
    child_string(L, -1);
    lua_pushfstring(L, "%s=%s", lua_tostring(L, -3), lua_tostring(L, -1));
    lua_rawseti(L, -5, ++n);
    lua_pop(L, 2);
  }
  env = lua_newuserdatauv(L, sizeof *env * (size_t)(n + 1), 0);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    env[i] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  env[n] = NULL;
  lua_rawseti(L, -2, 0); /* [env, keep] */
  lua_remove(L, -2);
  return env;
}

/* The argument list at index 2 as a NULL-terminated array (file alone
 * when it is empty). Pushes the array; the list keeps the strings. */
static char **build_argv(lua_State *L, const char *file) {
  int i, n = (int)lua_rawlen(L, 2);
  char **argv = lua_newuserdatauv(L, sizeof *argv * (size_t)(n + 2), 0);
  for (i = 0; i < n; i++) {
    if (lua_rawgeti(L, 2, i + 1) != LUA_TSTRING)
      luaL_error(L, "bad argument list item #%d (string expected, got %s)",
                 i + 1, luaL_typename(L, -1));
    argv[i] = (char *)child_string(L, -1);
    lua_pop(L, 1);
  }
  if (n == 0)
    argv[n++] = (char *)file;
  argv[n] = NULL;
  return argv;
}

static void abort_pipes(aio_stream *pipes[3]) {
  int i;
  for (i = 0; i < 3; i++)
    if (pipes[i])
      aio_stream_abort(pipes[i]);
}

static void close_fds(uv_os_fd_t fds[3]) {
  int i;
  for (i = 0; i < 3; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}

/* Sets up the child's fds 0..2 from the options at oidx: for each
 * asyncio.PIPE a real pipe, as Python's os.pipe() (a child may open
 * /dev/stdin; libuv's UV_CREATE_PIPE would give it a socket), whose end
 * of ours pipes[i] reads or writes; the child's ends go to child_fds
 * (-1: none), which the caller closes once the child has them. For
 * stderr = STDOUT beside a stdout pipe, the child gets that pipe's write
 * end as fds 1 and 2. Returns 0, or a libuv error once the pipes and
 * fds are closed. */
static int open_stdio(lua_State *L, aio_loop *loop, int oidx,
                      uv_stdio_container_t stdio[3], aio_stream *pipes[3],
                      uv_os_fd_t child_fds[3]) {
  uv_os_fd_t pair[2];
  int i, r, how[3];
  how[0] = opt_stdio(L, oidx, "stdin", 0);
  how[1] = opt_stdio(L, oidx, "stdout", 1);
  how[2] = opt_stdio(L, oidx, "stderr", 2);
  if (how[2] == IO_STDOUT && how[1] != IO_PIPE)
    how[2] = how[1]; /* stderr goes where stdout goes */
  for (i = 0; i < 3; i++) { /* the streams first: this may raise */
    child_fds[i] = -1;
    if (how[i] == IO_PIPE)
      pipes[i] = aio_stream_new(L, loop, AIO_SK_PIPE);
    else if (how[i] == IO_DEVNULL)
      stdio[i].flags = UV_IGNORE;
    else if (how[i] >= 0) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = how[i];
    }
  }
  for (i = 0; i < 3; i++) {
    if (how[i] != IO_PIPE)
      continue;
    r = uv_pipe(pair, 0, 0); /* blocking both: uv_pipe_open makes ours not */
    if (r == 0 && (r = uv_pipe_open((uv_pipe_t *)aio_stream_uv(pipes[i]),
                                    pair[i == 0])) != 0) {
      close(pair[0]);
      close(pair[1]);
    }
    if (r != 0) {
      close_fds(child_fds);
      abort_pipes(pipes);
      return r;
    }
    child_fds[i] = pair[i != 0];
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = child_fds[i];
  }
  if (how[2] == IO_STDOUT) { /* stdout and stderr share one pipe */
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = child_fds[1];
  }
  return 0;
}

/* Pushes the Process of the running child p, with its streams (raw:
 * its pipes' transports, with no protocol yet), and anchors it while the
 * child runs. */
static void push_process(lua_State *L, aio_loop *loop, proc *p,
                         aio_stream *pipes[3], size_t limit, int raw) {
  int i;
  pud *ud = lua_newuserdatauv(L, sizeof *ud, P_UV_COUNT);
  memset(ud, 0, sizeof *ud);
  ud->anchor = LUA_NOREF;
  ud->p = p;
  ud->pid = p->h.pid;
  p->ud = ud;
  luaL_setmetatable(L, AIO_PROCESS_MT);
  aio_push_loop(L, loop);
  lua_setiuservalue(L, -2, P_UV_LOOP);
  for (i = 0; i < 3; i++) {
    if (pipes[i] == NULL)
      continue;
    if (raw)
      aio_transport_push(L, pipes[i], i != 0, i == 0);
    else if (i == 0)
      aio_stream_push_writer(L, pipes[i]);
    else
      aio_stream_push_reader(L, pipes[i], limit);
    lua_setiuservalue(L, -2, P_UV_STDIN + i);
  }
  aio_anchor(L, &ud->anchor, -1);
}

/* Raises the OSError of a failed spawn of the program at index 1 as
 * Python does: it names the program (.filename), or the working directory
 * when that is what is missing. */
static int raise_spawn_error(lua_State *L, int uverr, const char *cwd) {
  struct stat st;
  if (cwd != NULL && stat(cwd, &st) != 0) {
    lua_pushstring(L, cwd);
    aio_push_path_error(L, uv_translate_sys_error(errno), "spawn",
                        lua_gettop(L), 0);
  } else
    aio_push_path_error(L, uverr, "spawn", 1, 0);
  return lua_error(L);
}

/* _spawn(file, args, opts [, raw]): args is the full argv list (args[1]
 * is the program name the child sees). opts: stdin, stdout, stderr, cwd,
 * env, limit, start_new_session. Returns a Process, whose stdin, stdout
 * and stderr are streams, or with raw the pipes' transports, which the
 * caller starts with its protocols (loop:subprocess_exec). */
static int l_spawn(lua_State *L) {
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  aio_stream *pipes[3] = {NULL, NULL, NULL};
  uv_os_fd_t child_fds[3];
  const char *file = child_string(L, 1);
  aio_loop *loop;
  proc *p;
  size_t limit;
  int r, raw = lua_toboolean(L, 4);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  loop = aio_get_event_loop(L);
  aio_check_open(L, loop);
  limit = aio_opt_limit(L, 3);
  memset(&o, 0, sizeof o);
  o.file = file;
  o.args = build_argv(L, file);
  o.exit_cb = on_exit_cb;
  o.env = build_env(L, 3);
  if (lua_type(L, 3) == LUA_TTABLE) {
    if (lua_getfield(L, 3, "cwd") != LUA_TNIL) {
      if (!lua_isstring(L, -1))
        luaL_error(L, "bad option 'cwd' (string expected, got %s)",
                   luaL_typename(L, -1));
      o.cwd = child_string(L, -1);
    }
    if (lua_getfield(L, 3, "start_new_session") != LUA_TNIL &&
        lua_toboolean(L, -1))
      o.flags |= UV_PROCESS_DETACHED;
    lua_pop(L, 2); /* the cwd string stays referenced by opts */
  }
  r = open_stdio(L, loop, 3, stdio, pipes, child_fds);
  if (r != 0)
    return aio_raise_uv(L, r, "pipe");
  o.stdio = stdio;
  o.stdio_count = 3;
  p = calloc(1, sizeof *p);
  if (p == NULL) {
    close_fds(child_fds);
    abort_pipes(pipes);
    return luaL_error(L, "not enough memory");
  }
  p->io.close = proc_close_hook;
  p->io.shut = proc_shut;
  p->io.dispatch = proc_dispatch;
  aio_io_ignore_sigpipe();
  r = uv_spawn(loop->uv, &p->h, &o);
  close_fds(child_fds); /* the child has them */
  aio_io_link(loop, &p->io, (uv_handle_t *)&p->h);
  if (r != 0) {
    proc_close_hook((uv_handle_t *)&p->h);
    abort_pipes(pipes);
    return raise_spawn_error(L, r, o.cwd);
  }
  push_process(L, loop, p, pipes, limit, raw);
  return 1;
}

static const luaL_Reg process_methods[] = {
    {"wait", l_process_wait},
    {"send_signal", l_process_send_signal},
    {"terminate", l_process_terminate},
    {"kill", l_process_kill},
    {NULL, NULL}};

static const luaL_Reg process_metamethods[] = {
    {"__gc", l_process__gc},
    {"__tostring", l_process__tostring},
    {NULL, NULL}};

/* Names of the C operations in reprs (aio_name_ops). */
static const aio_op_name op_names[] = {
    {wait_body, "Process.wait"},
    {NULL, NULL}};

void aio_open_process(lua_State *L) {
  aio_name_ops(L, op_names);
  aio_newclass(L, AIO_PROCESS_MT, AIO_K_OTHER, process_methods,
               process_metamethods);
  luaL_getmetatable(L, AIO_PROCESS_MT);
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "_Process"); /* the methods, for subprocess.lua */
  lua_pushcclosure(L, l_process__index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_spawn);
  lua_setfield(L, -2, "_spawn");
  lua_pushinteger(L, IO_PIPE);
  lua_setfield(L, -2, "PIPE");
  lua_pushinteger(L, IO_STDOUT);
  lua_setfield(L, -2, "STDOUT");
  lua_pushinteger(L, IO_DEVNULL);
  lua_setfield(L, -2, "DEVNULL");
}
