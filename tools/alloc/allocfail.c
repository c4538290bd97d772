/*
 * allocfail.c - allocation-failure testing of luaio.
 *
 *   allocfail [-v] [-b] [-p] [-n N] [-t seconds] script.lua...
 *
 * Every allocation goes through one counting allocator: the Lua state's
 * (lua_Alloc), libuv's (uv_replace_allocator) and the module's own
 * (aio_mem, see bindings/core/mem.c). For each script and each N, a child
 * process fails allocation N (only that one: a window of one allocation)
 * and must end cleanly:
 *   - the script returns, or raises an error saying "not enough memory"
 *     (ENOMEM from libuv counts as one);
 *   - no crash (a signal), no hang (killed after -t seconds, default 10);
 *   - no leak: once lua_close returns, every block the allocator handed
 *     out was freed (counted here), and LeakSanitizer, when built in,
 *     finds nothing at exit.
 * N runs from 1 until a run in which allocation N never happened. The
 * state is set up (luaio_openlibs, require "asyncio") before the fork in
 * the parent, so N counts from the script's start; with -p the set-up
 * itself is failed too (the children then make the state). -n N runs one
 * N and shows the child's stderr; -b adds where allocation N was made.
 *
 * Exit status: 0 when every run of every script was clean, 1 otherwise.
 * An allocation failure that libuv itself turns into abort() (its
 * io-watcher array cannot grow in uv__io_start, reached from
 * uv_loop_init, uv_async_init, uv_poll_start, ...) is counted apart as
 * "libuv aborts": the child's SIGABRT came after the failed allocation was
 * libuv's own. docs/reliability.md lists them.
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <uv.h>

#include "internal.h"
#include "luaio.h"

/* internal.h routes malloc & co to aio_mem: the allocator below needs
 * libc's */
#undef malloc
#undef calloc
#undef realloc
#undef free

static atomic_long count;   /* allocations so far */
static atomic_long live;    /* blocks handed out, not yet freed */
static atomic_int failed;   /* allocation fail_at happened */
static atomic_int failed_in_uv; /* ... and it was libuv's */
static long fail_at;        /* 0: none */
static int show_stack;      /* -b: print where allocation N was made */

static int should_fail(void) {
  long n = atomic_fetch_add(&count, 1) + 1;
  if (n == fail_at) {
    atomic_store(&failed, 1);
    if (show_stack) {
      void *frames[32];
      backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
    }
    return 1;
  }
  return 0;
}

static void *h_malloc(size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = malloc(size ? size : 1);
  if (p)
    atomic_fetch_add(&live, 1);
  return p;
}

static void *h_calloc(size_t n, size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = calloc(n ? n : 1, size ? size : 1);
  if (p)
    atomic_fetch_add(&live, 1);
  return p;
}

static void h_free(void *p) {
  if (p) {
    atomic_fetch_sub(&live, 1);
    free(p);
  }
}

static void *h_realloc(void *p, size_t size) {
  if (p == NULL)
    return h_malloc(size);
  if (size == 0) {
    h_free(p);
    return NULL;
  }
  if (should_fail())
    return NULL;
  return realloc(p, size);
}

/* libuv's allocator: the same, noting when the failure was libuv's. */
static void *u_malloc(size_t size) {
  void *p = h_malloc(size);
  if (p == NULL)
    atomic_store(&failed_in_uv, 1);
  return p;
}

static void *u_calloc(size_t n, size_t size) {
  void *p = h_calloc(n, size);
  if (p == NULL)
    atomic_store(&failed_in_uv, 1);
  return p;
}

static void *u_realloc(void *p, size_t size) {
  void *q = h_realloc(p, size);
  if (q == NULL && size != 0)
    atomic_store(&failed_in_uv, 1);
  return q;
}

/* Lua assumes a shrinking block never fails: only growth is counted. */
static void *l_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    h_free(p);
    return NULL;
  }
  if (p == NULL)
    return h_malloc(nsize);
  if (nsize <= osize) {
    void *q = realloc(p, nsize);
    return q ? q : p;
  }
  return h_realloc(p, nsize);
}

static int l_panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "PANIC: %s\n", msg ? msg : "(not a string)");
  return 0; /* Lua aborts */
}

/* [] -> opens the libraries and requires asyncio (protected) */
static int setup(lua_State *L) {
  luaL_openlibs(L);
  luaio_openlibs(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "asyncio");
  lua_call(L, 1, 0);
  return 0;
}

static int msgh(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

static lua_State *new_state(void) {
  lua_State *L = lua_newstate(l_alloc, NULL);
  if (L == NULL)
    return NULL;
  lua_atpanic(L, l_panic);
  lua_pushcfunction(L, setup);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "set-up: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Whether the error message is a clean report of the failure. */
static int is_memory_error(const char *msg) {
  /* ENOBUFS: libuv's answer when a read's buffer cannot be allocated;
   * "Cannot allocate memory": an OSError of errno ENOMEM (a libuv file
   * request that could not allocate, as asyncio.fs reports it) */
  return msg && (strstr(msg, "not enough memory") ||
                 strstr(msg, "ENOMEM") || strstr(msg, "ENOBUFS") ||
                 strstr(msg, "cannot allocate memory") ||
                 strstr(msg, "Cannot allocate memory"));
}

enum { R_RESULT, R_MEMORY, R_UNEXPECTED, R_LEAK, R_DONE, R_SETUP,
       R_UV_ABORT };

/* SIGABRT in a child: libuv's own abort on a failed allocation, or a
 * crash like any other. */
static void on_abort(int sig) {
  if (atomic_load(&failed_in_uv))
    _exit(R_UV_ABORT);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* The child: runs the script in L (NULL: makes the state first, failing
 * its set-up too), closes the state and exits with an R_ code. */
static void child(lua_State *L, const char *script, long n) {
  int status, code;
  signal(SIGABRT, on_abort);
  fail_at = atomic_load(&count) + n;
  if (L == NULL && (L = new_state()) == NULL) {
    code = R_SETUP;
    goto out;
  }
  lua_settop(L, 0);
  lua_pushcfunction(L, msgh);
  status = luaL_loadfile(L, script);
  if (status == LUA_OK)
    status = lua_pcall(L, 0, 0, 1);
  if (status == LUA_OK)
    code = R_RESULT;
  else {
    const char *msg = lua_tostring(L, -1);
    if (is_memory_error(msg))
      code = R_MEMORY;
    else {
      fprintf(stderr, "unexpected error: %s\n", msg ? msg : "?");
      code = R_UNEXPECTED;
    }
  }
  lua_close(L);
out:
  if (code != R_UNEXPECTED && atomic_load(&live) != 0) {
    fprintf(stderr, "leak: %ld blocks not freed\n", atomic_load(&live));
    code = R_LEAK;
  }
  if (!atomic_load(&failed) && code != R_LEAK && code != R_UNEXPECTED)
    code = R_DONE;
  fflush(stderr);
  exit(code); /* LeakSanitizer checks at exit */
}

static void show_file(FILE *f, int lines) {
  char buf[512];
  int n = 0;
  rewind(f);
  while (fgets(buf, sizeof buf, f) && n++ < lines)
    fprintf(stderr, "    | %s", buf);
}

/* Waits for pid up to `limit` seconds; returns its wait status, or -1
 * after killing it on timeout. */
static int wait_child(pid_t pid, double limit) {
  struct timespec ts = {0, 1000000};
  double waited = 0;
  int st;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return st;
    if (r < 0 && errno != EINTR)
      return -2;
    if (waited > limit) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    nanosleep(&ts, NULL);
    waited += 0.001;
    if (ts.tv_nsec < 16000000)
      ts.tv_nsec *= 2;
    waited += (double)ts.tv_nsec / 2e9;
  }
}

typedef struct {
  long runs, results, memory, uv_aborts, failures;
} tally;

/* One run failing allocation n; returns 1 when n was past the last
 * allocation (the script is done). */
static int run_one(lua_State *L, const char *script, long n, double limit,
                   FILE *log, int verbose, tally *t) {
  pid_t pid;
  int st, code = -1;
  fflush(NULL);
  if (ftruncate(fileno(log), 0) != 0)
    perror("ftruncate");
  rewind(log);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    dup2(fileno(log), 2);
    child(L, script, n);
  }
  st = wait_child(pid, limit);
  t->runs++;
  if (st == -1) {
    fprintf(stderr, "FAIL %s N=%ld: hang (killed after %.0f s)\n", script,
            n, limit);
  } else if (WIFSIGNALED(st)) {
    fprintf(stderr, "FAIL %s N=%ld: crash (signal %d)\n", script, n,
            WTERMSIG(st));
  } else if (WIFEXITED(st)) {
    code = WEXITSTATUS(st);
    if (code == R_RESULT || code == R_SETUP)
      t->results++;
    else if (code == R_MEMORY)
      t->memory++;
    else if (code == R_UV_ABORT)
      t->uv_aborts++;
    else if (code == R_DONE) {
      t->runs--;
      return 1;
    } else if (code == R_LEAK)
      fprintf(stderr, "FAIL %s N=%ld: leak\n", script, n);
    else if (code == R_UNEXPECTED)
      fprintf(stderr, "FAIL %s N=%ld: error other than a memory error\n",
              script, n);
    else
      fprintf(stderr, "FAIL %s N=%ld: exit %d (LeakSanitizer: 23)\n",
              script, n, code);
  }
  if (code != R_RESULT && code != R_MEMORY && code != R_SETUP &&
      code != R_UV_ABORT) {
    t->failures++;
    show_file(log, 40);
  } else if (verbose)
    show_file(log, 200);
  return 0;
}

int main(int argc, char **argv) {
  double limit = 10;
  long only = 0;
  int verbose = 0, prelude = 0, i, bad = 0;
  FILE *log;
  while ((i = getopt(argc, argv, "bvpn:t:")) != -1) {
    if (i == 'v')
      verbose = 1;
    else if (i == 'b')
      show_stack = 1;
    else if (i == 'p')
      prelude = 1;
    else if (i == 'n')
      only = atol(optarg);
    else if (i == 't')
      limit = atof(optarg);
    else {
      fprintf(stderr, "usage: allocfail [-v] [-b] [-p] [-n N] [-t seconds] "
                      "script.lua...\n");
      return 2;
    }
  }
  if (uv_replace_allocator(u_malloc, u_realloc, u_calloc, h_free) != 0) {
    fprintf(stderr, "allocfail: uv_replace_allocator failed\n");
    return 2;
  }
  aio_mem.alloc = h_malloc;
  aio_mem.zalloc = h_calloc;
  aio_mem.resize = h_realloc;
  aio_mem.release = h_free;
  signal(SIGPIPE, SIG_IGN);
  log = tmpfile();
  if (log == NULL) {
    perror("tmpfile");
    return 2;
  }
  for (; optind < argc; optind++) {
    const char *script = argv[optind];
    lua_State *L = NULL;
    tally t = {0, 0, 0, 0, 0};
    long n, base = atomic_load(&count);
    if (!prelude && (L = new_state()) == NULL) {
      fprintf(stderr, "allocfail: cannot set up a state\n");
      return 2;
    }
    if (only)
      verbose = 1;
    for (n = only ? only : 1; only == 0 || n == only; n++)
      if (run_one(L, script, n, limit, log, verbose, &t))
        break;
    printf("%s: %ld allocations failed one at a time%s: %ld results, "
           "%ld clean memory errors, %ld libuv aborts, %ld failures\n",
           script, t.runs, prelude ? " (set-up included)" : "", t.results,
           t.memory, t.uv_aborts, t.failures);
    fflush(stdout);
    (void)base;
    if (L)
      lua_close(L);
    if (t.failures)
      bad = 1;
  }
  fclose(log);
  return bad;
}
