/*
 * main.c - the luaio command line, shaped like lua(1):
 *
 *   luaio [options] [script [args]]
 *     -e stat   execute string 'stat'
 *     -l mod    require library 'mod' into global 'mod' (-l g=mod: into g)
 *     -i        enter interactive mode after running the script
 *     -v        show version information
 *     -E        ignore environment variables
 *     -W        turn warnings on
 *     --debug   asyncio debug mode for every loop
 *     --dump-on-hang=SECONDS
 *               print asyncio.dump_tasks() when a loop made no progress
 *               for SECONDS
 *     --        stop handling options
 *     -         run stdin as the script
 *
 * The script runs as plain Lua with no loop running: it starts its own
 * loop (asyncio.run, run_until_complete), as a Python script does. With no
 * script and a terminal on stdin, a REPL runs each input as a task on one
 * loop, so `await` works at top level.
 *
 * While a loop runs, SIGQUIT (Ctrl-\) prints asyncio.dump_tasks() on
 * stderr and the program goes on, unless the script handles SIGQUIT.
 *
 * Exit status: 0 on success, 1 on an uncaught error (message and
 * traceback on stderr), 130 when the script ends with KeyboardInterrupt.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <readline/history.h>
#include <readline/readline.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "luaio.h"
#include "pool.h"

#define PROGNAME "luaio"
#define EXIT_INTERRUPTED 130

static const char *progname = PROGNAME;

static void print_usage(const char *badoption) {
  if (strcmp(badoption, "-h") == 0 || strcmp(badoption, "--help") == 0)
    ; /* asked for */
  else if (badoption[1] == 'e' || badoption[1] == 'l')
    fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
  else if (badoption[0])
    fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
          "  -W        turn warnings on\n"
          "  --debug   run every event loop in asyncio debug mode\n"
          "  --dump-on-hang=SECONDS\n"
          "            print the tasks when a loop made no progress for\n"
          "            SECONDS\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n",
          progname);
}

static void print_version(void) {
  printf("luaio %s (asyncio for %s, libuv)\n", LUAIO_VERSION_STRING,
         LUA_RELEASE);
}

/* The exit status a SystemExit asked for, or -1. */
static int exit_request = -1;

/* Is the error value at idx an error object of the class called name (or
 * of a subclass)? */
static int is_class(lua_State *L, int idx, const char *name) {
  int r = 0, top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx)) {
    /* the error's class, then its ancestors (the __base chain) */
    while (!r && lua_istable(L, -1)) {
      lua_pushliteral(L, "__name");
      r = lua_rawget(L, -2) == LUA_TSTRING &&
          strcmp(lua_tostring(L, -1), name) == 0;
      lua_pop(L, 1);
      lua_pushliteral(L, "__base");
      lua_rawget(L, -2);
      lua_remove(L, -2);
    }
  }
  lua_settop(L, top);
  return r;
}

static int is_interrupt(lua_State *L, int idx) {
  return is_class(L, idx, "KeyboardInterrupt");
}

/* For a SystemExit at index 1 (Python's: its code, or its first
 * argument): notes the exit status it asks for (none: 0, an integer:
 * that one, another value: 1) and pushes what to print, which is empty
 * unless the value is not an integer (then the value itself, as Python
 * prints it). Returns 0, pushing nothing, for another error. */
static int system_exit(lua_State *L) {
  if (!is_class(L, 1, "SystemExit"))
    return 0;
  if (lua_getfield(L, 1, "code") == LUA_TNIL) {
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "args") == LUA_TTABLE)
      lua_rawgeti(L, -1, 1);
    else
      lua_pushnil(L);
    lua_remove(L, -2);
  }
  if (lua_isnil(L, -1)) {
    exit_request = 0;
    lua_pushliteral(L, "");
  } else if (lua_isinteger(L, -1)) {
    exit_request = (int)(lua_tointeger(L, -1) & 0xff);
    lua_pushliteral(L, "");
  } else {
    exit_request = 1;
    luaL_tolstring(L, -1, NULL);
  }
  lua_remove(L, -2);
  return 1;
}

/* Pushes the text asyncio.errors.format_exception gives the error at
 * index 1 (with an exception group's exceptions) and returns 1, or
 * pushes nothing and returns 0 when asyncio is not loaded or fails. */
static int format_error(lua_State *L) {
  int top = lua_gettop(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) == LUA_TTABLE &&
      lua_getfield(L, -1, "asyncio.errors") == LUA_TTABLE &&
      lua_getfield(L, -1, "format_exception") == LUA_TFUNCTION) {
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      return 1;
    }
  }
  lua_settop(L, top);
  return 0;
}

/* Message handler: the error's text and a traceback. Error objects carry
 * the traceback of where they were raised (in a task, usually), which is
 * the one worth showing. */
static int msghandler(lua_State *L) {
  const char *msg = NULL;
  if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
    /* a copy: lua_tostring turns a number into a string in place, and the
     * error must stay the value the task raised (_traceback_of below) */
    lua_pushvalue(L, 1);
    msg = lua_tostring(L, -1);
  }
  lua_pushboolean(L, is_interrupt(L, 1));
  lua_setfield(L, LUA_REGISTRYINDEX, "luaio.interrupted");
  if (system_exit(L)) /* Python prints no traceback for it */
    return 1;
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  if (lua_type(L, 1) == LUA_TTABLE && format_error(L))
    return 1;
  if (lua_type(L, 1) == LUA_TTABLE &&
      lua_getfield(L, 1, "traceback") == LUA_TSTRING) {
    lua_pushfstring(L, "%s\n%s", msg, lua_tostring(L, -1));
    return 1;
  }
  /* a task's string error: the core kept the task's traceback */
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) == LUA_TTABLE &&
      lua_getfield(L, -1, "asyncio.core") == LUA_TTABLE &&
      lua_getfield(L, -1, "_traceback_of") == LUA_TFUNCTION) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushfstring(L, "%s\n%s", msg, lua_tostring(L, -1));
      return 1;
    }
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Keeps the error value (for the exit status) and prints it. */
static int report(lua_State *L, int status, int *interrupted) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (exit_request >= 0) { /* a SystemExit: its value alone, if any */
      if (msg && *msg)
        fprintf(stderr, "%s\n", msg);
    } else
      fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error)");
    fflush(stderr);
    lua_pop(L, 1);
    if (interrupted && lua_toboolean(L, -1))
      *interrupted = 1;
    lua_pop(L, 1);
  }
  return status;
}

/* Calls the function below nargs arguments; on error leaves the message
 * and a boolean "was interrupted" on the stack. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg, status;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  if (status != LUA_OK) {
    /* the handler noted whether the error was a KeyboardInterrupt */
    lua_getfield(L, LUA_REGISTRYINDEX, "luaio.interrupted");
    lua_insert(L, -2);
  }
  return status;
}

static int dochunk(lua_State *L, int status, int *interrupted) {
  if (status == LUA_OK)
    status = docall(L, 0, 0);
  else {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
  }
  return report(L, status, interrupted);
}

static int dostring(lua_State *L, const char *s, const char *name,
                    int *interrupted) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name), interrupted);
}

/* -l mod or -l g=mod */
static int dolibrary(lua_State *L, char *globname, int *interrupted) {
  int status;
  char *modname = strchr(globname, '=');
  if (modname == NULL)
    modname = globname;
  else {
    *modname = '\0';
    modname++;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  status = docall(L, 1, 1);
  if (status == LUA_OK)
    lua_setglobal(L, globname);
  return report(L, status, interrupted);
}

/* Builds the global 'arg' as lua does: arg[0] is the script, negative
 * indices hold the interpreter and its options. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  int i, narg;
  if (script == argc)
    script = 0;
  narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int pushargs(lua_State *L) {
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

static int handle_script(lua_State *L, char **argv, int *interrupted) {
  int status;
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
    fname = NULL; /* stdin */
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = docall(L, n, LUA_MULTRET);
  } else {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
  }
  return report(L, status, interrupted);
}

#define DUMP_ON_HANG "--dump-on-hang="

/* The SECONDS of --dump-on-hang=SECONDS, or -1 when it is not a positive
 * number. */
static double dump_seconds(const char *opt) {
  char *end;
  double s = strtod(opt + sizeof DUMP_ON_HANG - 1, &end);
  if (end == opt + sizeof DUMP_ON_HANG - 1 || *end != '\0' || !(s > 0))
    return -1;
  return s;
}

/* Option flags */
#define has_error 1
#define has_i 2
#define has_v 4
#define has_e 8
#define has_E 16

/* Scans the options; returns the flags and sets *first to the index of
 * the script (argc if none). */
static int collectargs(char **argv, int *first) {
  int args = 0, i;
  if (argv[0] == NULL) {
    *first = -1;
    return 0;
  }
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-')
      return args;
    switch (argv[i][1]) {
    case '-':
      if (strcmp(argv[i], "--debug") == 0)
        break;
      if (strncmp(argv[i], DUMP_ON_HANG, sizeof DUMP_ON_HANG - 1) == 0) {
        if (dump_seconds(argv[i]) < 0)
          return has_error;
        break;
      }
      if (strcmp(argv[i], "--help") == 0) {
        *first = i;
        return has_error;
      }
      if (argv[i][2] != '\0')
        return has_error;
      *first = i + 1;
      return args;
    case '\0':
      return args;
    case 'E':
      if (argv[i][2] != '\0')
        return has_error;
      args |= has_E;
      break;
    case 'W':
      if (argv[i][2] != '\0')
        return has_error;
      break;
    case 'i':
      args |= has_i; /* -i implies -v */
      /* fall through */
    case 'v':
      if (argv[i][2] != '\0')
        return has_error;
      args |= has_v;
      break;
    case 'e':
      args |= has_e;
      /* fall through */
    case 'l':
      if (argv[i][2] == '\0') {
        i++;
        if (argv[i] == NULL || argv[i][0] == '-')
          return has_error;
      }
      break;
    case 'h':
      return has_error;
    default:
      return has_error;
    }
  }
  *first = i;
  return args;
}

/* Sets the debug mode of the loops made from now on (--debug, -E). */
static void set_default_debug(lua_State *L, int on) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "asyncio.core");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "_set_default_debug");
  lua_pushboolean(L, on);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
}

/* Runs -e, -l, -W, --debug in order. Returns 0 on error. */
static int runargs(lua_State *L, char **argv, int n, int *interrupted) {
  int i;
  for (i = 1; i < n; i++) {
    int option = argv[i][1];
    switch (option) {
    case 'e':
    case 'l': {
      int status;
      char *extra = argv[i] + 2;
      if (*extra == '\0')
        extra = argv[++i];
      status = option == 'e'
                   ? dostring(L, extra, "=(command line)", interrupted)
                   : dolibrary(L, extra, interrupted);
      if (status != LUA_OK)
        return 0;
      break;
    }
    case 'W':
      lua_warning(L, "@on", 0);
      break;
    case '-':
      if (strcmp(argv[i], "--debug") == 0)
        set_default_debug(L, 1);
      break;
    }
  }
  return 1;
}

/* The task dump of running loops: on SIGQUIT always, and after
 * --dump-on-hang's SECONDS without progress. */
static void set_dump_triggers(lua_State *L, char **argv, int n) {
  double hang = 0;
  int i;
  for (i = 1; i < n; i++)
    if (strncmp(argv[i], DUMP_ON_HANG, sizeof DUMP_ON_HANG - 1) == 0)
      hang = dump_seconds(argv[i]);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "asyncio.core");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "_set_dump_triggers");
  lua_pushboolean(L, 1);
  lua_pushnumber(L, hang);
  lua_call(L, 2, 0);
  lua_pop(L, 1);
}

static int handle_luainit(lua_State *L, int *interrupted) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv("LUA_INIT_5_4");
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv("LUA_INIT");
  }
  if (init == NULL)
    return LUA_OK;
  if (init[0] == '@')
    return dochunk(L, luaL_loadfile(L, init + 1), interrupted);
  return dostring(L, init, name, interrupted);
}

/* ------------------------------------------------------------------ */
/* The REPL's terminal: module asyncio._term (the CLI only), GNU readline
 * for line editing and history. */

static volatile sig_atomic_t term_sigint;
static char *term_line;  /* the line readline handed over, or NULL */
static int term_done;    /* readline handed a line over (or end of input) */

static void term_on_sigint(int sig) {
  (void)sig;
  term_sigint = 1;
}

static void term_on_line(char *line) {
  term_line = line;
  term_done = 1;
  rl_callback_handler_remove();
}

/* Waits for stdin with SIGINT blocked except inside pselect (so a Ctrl-C
 * that came before the wait is not missed); returns 0 when readable, -1
 * after Ctrl-C. */
static int term_wait(const sigset_t *waitmask) {
  for (;;) {
    fd_set fds;
    if (term_sigint)
      return -1;
    FD_ZERO(&fds);
    FD_SET(STDIN_FILENO, &fds);
    if (pselect(STDIN_FILENO + 1, &fds, NULL, NULL, NULL, waitmask) > 0)
      return 0;
  }
}

/* term.readline(prompt) -> the line without its newline; nil at the end
 * of input; false after Ctrl-C (the line typed so far is dropped). SIGINT
 * is caught only while it waits: a running loop has its own watch. */
static int l_term_readline(lua_State *L) {
  const char *prompt = luaL_checkstring(L, 1);
  struct sigaction sa, old;
  sigset_t sigint, oldmask, waitmask;
  int interrupted = 0;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = term_on_sigint; /* no SA_RESTART: pselect sees EINTR */
  sigemptyset(&sa.sa_mask);
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  term_sigint = 0;
  term_done = 0;
  term_line = NULL;
  sigprocmask(SIG_BLOCK, &sigint, &oldmask);
  waitmask = oldmask;
  sigdelset(&waitmask, SIGINT);
  sigaction(SIGINT, &sa, &old);
  rl_callback_handler_install(prompt, term_on_line);
  while (!term_done) {
    if (term_wait(&waitmask) < 0) {
      interrupted = 1;
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_callback_handler_remove();
      fputc('\n', stdout);
      fflush(stdout);
      break;
    }
    rl_callback_read_char();
  }
  sigaction(SIGINT, &old, NULL);
  sigprocmask(SIG_SETMASK, &oldmask, NULL);
  if (interrupted)
    lua_pushboolean(L, 0);
  else if (term_line == NULL)
    lua_pushnil(L);
  else {
    if (term_line[0] != '\0')
      add_history(term_line);
    lua_pushstring(L, term_line);
    free(term_line);
  }
  return 1;
}

/* term.isatty(fd) -> boolean */
static int l_term_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* term.load_history(path) / term.save_history(path): a missing file
 * is an empty history; failures to save are ignored, as a shell does. */
static int l_term_load_history(lua_State *L) {
  read_history(luaL_checkstring(L, 1));
  return 0;
}

static int l_term_save_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  write_history(path);
  history_truncate_file(path, 1000);
  return 0;
}

static const luaL_Reg term_funcs[] = {
    {"readline", l_term_readline},
    {"isatty", l_term_isatty},
    {"load_history", l_term_load_history},
    {"save_history", l_term_save_history},
    {NULL, NULL}};

static int luaopen_term(lua_State *L) {
  rl_catch_signals = 0;
  rl_readline_name = "luaio";
  luaL_newlib(L, term_funcs);
  return 1;
}

/* The REPL is Lua code (asyncio.repl): each input runs as a task. */
static int dorepl(lua_State *L, int *interrupted) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "asyncio.repl");
  if (docall(L, 1, 1) != LUA_OK)
    return report(L, LUA_ERRRUN, interrupted);
  return report(L, docall(L, 0, 0), interrupted);
}

typedef struct cli {
  int argc;
  char **argv;
  int status;   /* EXIT_SUCCESS / EXIT_FAILURE / EXIT_INTERRUPTED */
} cli;

static int pmain(lua_State *L) {
  cli *c = lua_touserdata(L, 1);
  char **argv = c->argv;
  int script, interrupted = 0;
  int args = collectargs(argv, &script);
  c->status = EXIT_FAILURE;
  luaL_checkversion(L);
  if (args == has_error) {
    const char *opt = argv[script] ? argv[script] : "";
    print_usage(opt);
    return 0; /* as lua does: usage and exit status 1 */
  }
  if (args & has_v)
    print_version();
  if (args & has_E) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  luaio_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_term);
  lua_setfield(L, -2, "asyncio._term");
  lua_pop(L, 1);
  if (args & has_E) /* -E: LUAIO_DEBUG is ignored too */
    set_default_debug(L, 0);
  set_dump_triggers(L, argv, script);
  createargtable(L, argv, c->argc, script);
  lua_gc(L, LUA_GCRESTART);
  /* generational, a minor collection every 50 % of growth (Lua's default
   * is 20): tasks are made in bursts that mostly survive, and each minor
   * collection re-traverses the big tables they touched. A major one
   * once the heap is 4 times what the last one left (Lua's default: 2):
   * with minor steps this large, the young garbage of I/O (strings of
   * 64 KiB and more) would otherwise push the heap past twice its base
   * between two minor collections and make most of them major ones
   * (bench/README.md, "Collector settings") */
  lua_gc(L, LUA_GCGEN, 50, 300);
  if (!(args & has_E) && handle_luainit(L, &interrupted) != LUA_OK)
    goto failed;
  if (!runargs(L, argv, script, &interrupted))
    goto failed;
  if (script > 0 && argv[script] != NULL) {
    if (handle_script(L, argv + script, &interrupted) != LUA_OK)
      goto failed;
  }
  if (args & has_i) {
    if (dorepl(L, &interrupted) != LUA_OK)
      goto failed;
  } else if ((script <= 0 || argv[script] == NULL) &&
             !(args & (has_e | has_v))) {
    if (isatty(0)) {
      print_version();
      if (dorepl(L, &interrupted) != LUA_OK)
        goto failed;
    } else if (dochunk(L, luaL_loadfile(L, NULL), &interrupted) != LUA_OK)
      goto failed;
  }
  c->status = EXIT_SUCCESS;
  return 0;
failed:
  c->status = exit_request >= 0 ? exit_request
              : interrupted ? EXIT_INTERRUPTED : EXIT_FAILURE;
  return 0;
}

/* The malloc policy of the CLI's process (glibc's malloc; the pool takes
 * only blocks of up to 1 KiB). By default glibc gives the top of its heap
 * back to the kernel once 128 KiB of it is free, and maps blocks of 128
 * KiB or more on their own until a freed one raises that bound. I/O in
 * 64 KiB pieces makes Lua strings of 64 to 256 KiB that the collector
 * frees in batches: each batch shrank the heap and the next strings grew
 * it again, page by freshly zeroed page (w10, TLS bulk: 610 brk calls
 * for 256 MiB, a fifth of the time in page faults). Here the heap keeps
 * up to 16 MiB free at its top and only blocks of 4 MiB or more are
 * mapped on their own: within the range glibc's own adaptive bounds
 * reach (32 MiB), set once instead of learnt. A process started with
 * malloc settings of its own (GLIBC_TUNABLES, MALLOC_*_) keeps them. */
static void set_malloc_policy(void) {
#ifdef __GLIBC__
  const char *t = getenv("GLIBC_TUNABLES");
  if ((t && strstr(t, "glibc.malloc.")) ||
      getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_MMAP_THRESHOLD_") ||
      getenv("MALLOC_TOP_PAD_"))
    return;
  /* only with the mmap bound set: a trim bound alone would freeze the
   * mmap one at 128 KiB (as where 4 MiB is over its limit, 32-bit) */
  if (mallopt(M_MMAP_THRESHOLD, 4 << 20) == 1)
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
}

int main(int argc, char **argv) {
  cli c;
  int status;
  lua_State *L;
  set_malloc_policy();
  L = luaio_pool_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n",
            argv[0]);
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);
  c.argc = argc;
  c.argv = argv;
  c.status = EXIT_FAILURE;
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &c);
  status = lua_pcall(L, 1, 0, 0);
  if (status != LUA_OK) {
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    c.status = EXIT_FAILURE;
  }
  luaio_pool_close(L);
  return c.status;
}
