/*
 * signal.c - Unix signals: loop:add_signal_handler / remove_signal_handler,
 * and the SIGINT watch that lets Ctrl-C reach a running loop.
 *
 * libuv delivers signals through the loop's poll; the uv callbacks here
 * only count them. After each poll the iteration calls
 * aio_signal_dispatch, which turns the counts into ready entries (the
 * user's handler Handle) or into an interruption: the first SIGINT
 * cancels the main task of asyncio.run, a later one (or the first when
 * there is no such task) raises KeyboardInterrupt out of the running loop,
 * as Python does.
 *
 * The SIGINT watch exists only while a loop runs, in the main thread, when
 * SIGINT has its default disposition (the process stays killable by
 * Ctrl-C outside the loop, and a host's own handler is left alone).
 *
 * libuv only queues a signal for the loop's next poll, which never comes
 * while Lua code is busy (a task or callback in a loop of its own, plain
 * Lua after a run). So the watch puts a handler of its own in front of
 * libuv's (chained): a SIGINT that comes while an earlier one is still
 * unread by the loop arms a hook on the Lua threads that may be running,
 * which raises KeyboardInterrupt at their next instruction, as Python's
 * second Ctrl-C raises it in the code that runs.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

typedef struct aio_sigwatch {
  uv_signal_t handle; /* first: the block is freed as the handle */
  int signum;
  unsigned count;
  struct aio_sigwatch *next;
} aio_sigwatch;

static const struct {
  const char *name;
  int num;
} signames[] = {
    {"SIGHUP", SIGHUP},     {"SIGINT", SIGINT},     {"SIGQUIT", SIGQUIT},
    {"SIGUSR1", SIGUSR1},   {"SIGUSR2", SIGUSR2},   {"SIGPIPE", SIGPIPE},
    {"SIGALRM", SIGALRM},   {"SIGTERM", SIGTERM},   {"SIGCHLD", SIGCHLD},
    {"SIGCONT", SIGCONT},   {"SIGTSTP", SIGTSTP},   {"SIGWINCH", SIGWINCH},
    {"SIGTTIN", SIGTTIN},   {"SIGTTOU", SIGTTOU},   {"SIGKILL", SIGKILL},
    {"SIGSTOP", SIGSTOP},   {NULL, 0}};

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  ((aio_sigwatch *)h)->count++;
}

/* The busy-code interrupt (see the top). Set and cleared in the loop's
 * thread; read by the handler, which runs there too (another thread that
 * gets the signal passes it on). */
static struct sigaction uv_sigint;    /* libuv's handler, chained */
static aio_loop *volatile stuck_loop; /* the loop whose watch it is */
static pthread_t stuck_thread;        /* the thread it runs in */
/* Lock-free atomics, so that the handler's increment and the loop's
 * decrement of the same counter, on the same thread, never lose one. */
static atomic_int unread;             /* SIGINTs the loop has not read */
static atomic_int armed;              /* a hook waits to raise */
static int answered; /* unread SIGINTs the raised KeyboardInterrupt
                        answered: the loop drops them when it reads them */

/* The hook armed on busy threads: the first to run raises. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (!atomic_exchange(&armed, 0))
    return; /* another thread raised it */
  answered = atomic_load(&unread);
  aio_pusherror(L, AIO_E_KEYBOARD_INTERRUPT, 0);
  lua_error(L);
}

static void arm(lua_State *L) {
  if (L != NULL)
    lua_sethook(L, interrupt_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void on_sigint_signal(int signum) {
  int saved = errno;
  aio_loop *loop = stuck_loop;
  if (loop != NULL && !pthread_equal(pthread_self(), stuck_thread)) {
    pthread_kill(stuck_thread, signum); /* handled there, chain included */
    errno = saved;
    return;
  }
  if (uv_sigint.sa_handler != SIG_DFL && uv_sigint.sa_handler != SIG_IGN)
    uv_sigint.sa_handler(signum);
  if (loop != NULL && atomic_fetch_add(&unread, 1) + 1 >= 2) {
    /* the loop did not poll since the last one */
    atomic_store(&armed, 1);
    arm(loop->L);
    arm(loop->Lrun);
    if (loop->current != NULL)
      arm(loop->current->co);
  }
  errno = saved;
}

/* Puts on_sigint_signal in front of the handler libuv installed for the
 * watch of loop. */
static void chain_sigint(aio_loop *loop) {
  struct sigaction sa, old;
  if (sigaction(SIGINT, NULL, &old) != 0)
    return;
  if (old.sa_handler != on_sigint_signal) {
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    uv_sigint = old;
    if (sigaction(SIGINT, &sa, NULL) != 0)
      return;
  }
  atomic_store(&unread, 0);
  answered = 0;
  stuck_thread = pthread_self();
  stuck_loop = loop;
}

/* Closes loop's SIGINT watch; the chained handler stops arming hooks
 * (libuv restores SIGINT's default once no handle of its watches it). */
static void drop_sigint_watch(aio_loop *loop) {
  if (stuck_loop == loop)
    stuck_loop = NULL;
  aio_loop_close_handle(loop, (uv_handle_t *)loop->sigint);
  loop->sigint = NULL;
}

static void on_sigint(uv_signal_t *h, int signum) {
  aio_loop *loop = h->data;
  int n = atomic_load(&unread);
  (void)signum;
  while (n > 0 && !atomic_compare_exchange_weak(&unread, &n, n - 1))
    ;
  if (answered > 0)
    answered--;
  else
    loop->interrupts++;
}

int aio_check_signal(lua_State *L, int idx) {
  int i;
  const char *name;
  if (lua_type(L, idx) != LUA_TSTRING)
    return (int)luaL_checkinteger(L, idx);
  name = lua_tostring(L, idx);
  for (i = 0; signames[i].name; i++)
    if (strcmp(signames[i].name, name) == 0)
      return signames[i].num;
  return aio_raisef(L, AIO_E_VALUE, "invalid signal name '%s'", name);
}

/* The signal number at idx, for a handler. */
static int check_signum(lua_State *L, int idx) {
  int num = aio_check_signal(L, idx);
  if (num < 1 || num >= NSIG)
    aio_raisef(L, AIO_E_VALUE, "invalid signal number %d", num);
  if (num == SIGKILL || num == SIGSTOP)
    aio_raisef(L, AIO_E_RUNTIME, "sig %d cannot be caught", num);
  return num;
}

static aio_sigwatch *find_watch(aio_loop *loop, int signum,
                                aio_sigwatch ***link) {
  aio_sigwatch **p = &loop->signals;
  while (*p && (*p)->signum != signum)
    p = &(*p)->next;
  if (link)
    *link = p;
  return *p;
}

/* loop:add_signal_handler(sig, fn, ...) */
static int l_loop_add_signal_handler(lua_State *L) {
  aio_loop *loop = aio_check_loop(L, 1);
  int signum = check_signum(L, 2);
  aio_sigwatch *w = find_watch(loop, signum, NULL);
  aio_handle_new(L, loop, 3, lua_gettop(L) - 3, 0, 0, "add_signal_handler");
  if (w == NULL) {
    int r;
    w = calloc(1, sizeof *w);
    if (w == NULL)
      return luaL_error(L, "not enough memory");
    uv_signal_init(loop->uv, &w->handle);
    w->handle.data = loop;
    loop->handles_open++;
    w->signum = signum;
    r = uv_signal_start(&w->handle, on_signal, signum);
    if (r != 0) {
      aio_loop_close_handle(loop, (uv_handle_t *)&w->handle);
      return aio_raise_uv(L, r, "add_signal_handler");
    }
    uv_unref((uv_handle_t *)&w->handle);
    w->next = loop->signals;
    loop->signals = w;
  }
  aio_push_env(L, loop, AIO_ENV_SIGNALS);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, signum);
  if (signum == SIGINT && loop->sigint)
    drop_sigint_watch(loop); /* the user's handler now owns Ctrl-C */
  if (signum == SIGQUIT)
    aio_dump_sigquit_taken(loop); /* the script's handler replaces it */
  return 0;
}

static void drop_watch(aio_loop *loop, aio_sigwatch **link) {
  aio_sigwatch *w = *link;
  *link = w->next;
  aio_loop_close_handle(loop, (uv_handle_t *)&w->handle);
}

/* loop:remove_signal_handler(sig) -> true if a handler was removed */
static int l_loop_remove_signal_handler(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  int signum = aio_check_signal(L, 2);
  if (signum < 1 || signum >= NSIG)
    aio_raisef(L, AIO_E_VALUE, "invalid signal number %d", signum);
  aio_sigwatch **link;
  if (find_watch(loop, signum, &link) == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  drop_watch(loop, link);
  aio_push_env(L, loop, AIO_ENV_SIGNALS);
  lua_pushnil(L);
  lua_rawseti(L, -2, signum);
  lua_pushboolean(L, 1);
  return 1;
}

void aio_signal_close_all(lua_State *L, aio_loop *loop) {
  (void)L;
  aio_dump_loop_stopped(loop);
  while (loop->signals)
    drop_watch(loop, &loop->signals);
  if (loop->sigint)
    drop_sigint_watch(loop);
}

static int is_main_thread(void) {
  return (pid_t)syscall(SYS_gettid) == getpid();
}

uv_signal_t *aio_default_watch(aio_loop *loop, int signum,
                               uv_signal_cb cb) {
  struct sigaction sa;
  uv_signal_t *h;
  if (!is_main_thread() || find_watch(loop, signum, NULL))
    return NULL;
  if (sigaction(signum, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL)
    return NULL;
  h = calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  uv_signal_init(loop->uv, h);
  h->data = loop;
  loop->handles_open++;
  if (uv_signal_start(h, cb, signum) != 0) {
    aio_loop_close_handle(loop, (uv_handle_t *)h);
    return NULL;
  }
  uv_unref((uv_handle_t *)h);
  return h;
}

void aio_signal_loop_started(lua_State *L, aio_loop *loop) {
  (void)L;
  aio_dump_loop_started(loop);
  if (loop->watch_sigint && loop->sigint == NULL) {
    loop->sigint = aio_default_watch(loop, SIGINT, on_sigint);
    if (loop->sigint != NULL)
      chain_sigint(loop);
  }
}

/* The SIGINT watch outlives the run: it stays until the loop closes (or a
 * handler of the script's takes SIGINT). Closing it here lost a Ctrl-C
 * that libuv had queued but the run had not read yet, and let one that
 * came between two runs kill the process; kept, such a Ctrl-C is counted
 * and raised by the loop's next run. */
void aio_signal_loop_stopped(lua_State *L, aio_loop *loop) {
  (void)L;
  aio_dump_loop_stopped(loop);
}

void aio_signal_dispatch(lua_State *L, aio_loop *loop) {
  aio_sigwatch *w;
  if (loop->quits != loop->quits_seen || loop->hang_tick)
    aio_dump_dispatch(L, loop);
  if (loop->interrupts != loop->interrupts_seen) {
    aio_task *t = loop->interrupt_task;
    loop->interrupts_seen = loop->interrupts;
    if (t != NULL && loop->interrupts == 1 && t->fut.state == AIO_PENDING) {
      aio_push_task(L, t);
      aio_task_cancel(L, -1, 0);
      lua_pop(L, 1);
    } else
      loop->interrupted = 1;
  }
  for (w = loop->signals; w; w = w->next) {
    if (w->count == 0)
      continue;
    aio_push_env(L, loop, AIO_ENV_SIGNALS);
    for (; w->count > 0; w->count--) {
      lua_rawgeti(L, -1, w->signum);
      aio_ready_push(L, loop, AIO_R_HANDLE, NULL, 0, NULL, 1);
    }
    lua_pop(L, 1);
  }
}

/* loop:_set_interrupt_task(task | nil): the task the first Ctrl-C
 * cancels (asyncio.run's main task). Returns the number of SIGINTs
 * received while it was set. */
static int l_loop__set_interrupt_task(lua_State *L) {
  aio_loop *loop = aio_check_loop_any(L, 1);
  int n = loop->interrupts;
  loop->interrupt_task = lua_isnoneornil(L, 2) ? NULL : aio_check_task(L, 2);
  loop->interrupts = loop->interrupts_seen = 0;
  lua_pushinteger(L, n);
  return 1;
}

void aio_open_signal(lua_State *L) {
  int i;
  luaL_getmetatable(L, AIO_LOOP_MT);
  lua_getfield(L, -1, "__index");
  lua_pushcfunction(L, l_loop_add_signal_handler);
  lua_setfield(L, -2, "add_signal_handler");
  lua_pushcfunction(L, l_loop_remove_signal_handler);
  lua_setfield(L, -2, "remove_signal_handler");
  lua_pushcfunction(L, l_loop__set_interrupt_task);
  lua_setfield(L, -2, "_set_interrupt_task");
  lua_pop(L, 2);
  lua_createtable(L, 0, 16);
  for (i = 0; signames[i].name; i++) {
    lua_pushinteger(L, signames[i].num);
    lua_setfield(L, -2, signames[i].name);
  }
  lua_setfield(L, -2, "signals");
}
