/*
 * internal.h - declarations shared by the C files of the asyncio core.
 *
 * The core is one Lua C module, "asyncio.core", made of one translation unit
 * per asyncio concept (loop.c, handle.c, timer.c, future.c, coro.c, ...).
 * Everything here is private to the module: cross-file names start with
 * "aio_", metatable names are the dotted type names users see in errors.
 *
 * Threading: every object below belongs to one lua_State and is touched only
 * by the OS thread running that state, except the fields of aio_remote,
 * which are guarded by its mutex (see threads.c).
 */
#ifndef AIO_INTERNAL_H
#define AIO_INTERNAL_H

/* The module is built with hidden visibility: only what is marked
 * AIO_EXPORT leaves the shared object (the "aio_" names are internal, and
 * some, like aio_suspend, are POSIX functions we must never interpose). */
#define AIO_EXPORT __attribute__((visibility("default")))

#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

#define AIO_LOOP_MT "asyncio.EventLoop"
#define AIO_FUTURE_MT "asyncio.Future"
#define AIO_TASK_MT "asyncio.Task"
#define AIO_HANDLE_MT "asyncio.Handle"
#define AIO_TIMERHANDLE_MT "asyncio.TimerHandle"
#define AIO_CORO_MT "asyncio.Coroutine"

/* Every metatable of the core carries its kind under this key, so one
 * look-up tells what a userdata is (Future and Task share code). */
typedef enum {
  AIO_K_NONE,
  AIO_K_LOOP,
  AIO_K_FUTURE,
  AIO_K_TASK,
  AIO_K_HANDLE,
  AIO_K_CORO,
  AIO_K_LOCK,
  AIO_K_EVENT,
  AIO_K_SEMAPHORE,
  AIO_K_QUEUE,
  AIO_K_READER,   /* StreamReader (stream.c) */
  AIO_K_WRITER,   /* StreamWriter: each has a metatable of its own */
  AIO_K_OTHER,
  AIO_K_COUNT
} aio_kind;
/* The integer key of the kind tag in our metatables. The tag names
 * aio_kind_tags[kind], which no other library can forge; it is stored
 * XORed with the address of the metatable holding it, so that a tag read
 * from one of our metatables and copied into another library's writable
 * one (getmetatable(io.stdout)[1] = ...) decodes to no kind there. */
#define AIO_KIND_KEY 1
extern const char aio_kind_tags[AIO_K_COUNT];
/* The kind of the metatable at mtidx (AIO_K_NONE if it holds no valid
 * tag); pushes nothing. */
static inline aio_kind aio_mt_kind(lua_State *L, int mtidx) {
  uintptr_t mt = (uintptr_t)lua_topointer(L, mtidx);
  const char *p;
  lua_rawgeti(L, mtidx, AIO_KIND_KEY);
  p = (const char *)((uintptr_t)lua_touserdata(L, -1) ^ mt);
  lua_pop(L, 1);
  if (p >= aio_kind_tags && p < aio_kind_tags + AIO_K_COUNT)
    return (aio_kind)(p - aio_kind_tags);
  return AIO_K_NONE;
}
/* Stores kind's tag in the metatable at mtidx (see AIO_KIND_KEY). */
static inline void aio_set_mt_kind(lua_State *L, int mtidx, aio_kind kind) {
  uintptr_t mt = (uintptr_t)lua_topointer(L, mtidx);
  mtidx = lua_absindex(L, mtidx);
  lua_pushlightuserdata(L, (void *)((uintptr_t)&aio_kind_tags[kind] ^ mt));
  lua_rawseti(L, mtidx, AIO_KIND_KEY);
}
/* Pushes registry[key], a table with the weak mode `mode` ("k", "v" or
 * "kv"; NULL: a plain table), making it the first time. Raises only
 * memory errors. */
void aio_push_weak_registry_table(lua_State *L, const void *key,
                                  const char *mode);
/* The kind of the metatable at address mt when it is a Future, Task or
 * Coroutine metatable of the state of the loop running on this thread
 * (its registry keeps them while the state lives, so no other object
 * has their address), else AIO_K_NONE: the common case of aio_kindof,
 * without reading a tag. */
aio_kind aio_running_mt_kind(const void *mt);
/* Returns the kind of the value at idx (AIO_K_NONE if not ours). */
aio_kind aio_kindof(lua_State *L, int idx);
/* The optional options table at idx (a positive index): returns 0 when
 * there is none (none or nil), 1 when it is a table whose keys are all
 * names in `known` (a list ended by NULL); raises "bad argument #idx to
 * 'f' (table expected, got x)" for anything else, and "(unknown option
 * 'x')" for another key: Python raises TypeError for an unexpected
 * keyword argument, and a misspelt option must not be ignored. */
int aio_check_options(lua_State *L, int idx, const char *const known[]);
/* The userdata at idx if it is of `kind`, else a "bad argument" error
 * naming `tname`. */
void *aio_checkkind(lua_State *L, int idx, aio_kind kind, const char *tname);
/* For hot paths, the C types whose struct starts with a `const char *`
 * tag, the address of a static of their file that only their
 * constructor writes (neither Lua code nor another library can forge
 * it): a full userdata of `size` bytes starting with `tag` is one,
 * known without a metatable look-up (two API calls). aio_testtagged
 * returns its block or NULL (light userdata have length 0);
 * aio_checktagged sends anything else to aio_checkkind, which raises
 * unless it is one. */
static inline void *aio_testtagged(lua_State *L, int idx, size_t size,
                                   const char *tag) {
  const char **p = lua_touserdata(L, idx);
  return p != NULL && lua_rawlen(L, idx) == size && *p == tag ? p : NULL;
}

static inline void *aio_checktagged(lua_State *L, int idx, size_t size,
                                    const char *tag, aio_kind kind,
                                    const char *tname) {
  void *p = aio_testtagged(L, idx, size, tag);
  return p != NULL ? p : aio_checkkind(L, idx, kind, tname);
}

/* The metatables made on hot paths are also kept in the registry under
 * these addresses: setting one by address (aio_setmt) avoids looking its
 * name up. */
extern const char aio_mt_future, aio_mt_task, aio_mt_coro, aio_mt_ccoro,
    aio_mt_handle, aio_mt_timerhandle;
/* Keeps the metatable `name` under registry[key]. */
void aio_cache_mt(lua_State *L, const char *name, const void *key);
/* Sets the metatable kept under key on the value on top. */
void aio_setmt(lua_State *L, const void *key);

/* Registry keys (addresses of these objects are the keys). */
extern const char aio_key_running;  /* loop running in this state, or nil */
extern const char aio_key_current;  /* loop set by set_event_loop, or nil */
extern const char aio_key_errors;   /* the asyncio.errors module table */

/* ------------------------------------------------------------------ */
/* Errors (errors.c)                                                   */

/* Error classes the C core raises; indices into the errors module. */
typedef enum {
  AIO_E_CANCELLED,
  AIO_E_INVALID_STATE,
  AIO_E_RUNTIME,
  AIO_E_VALUE,
  AIO_E_TYPE,
  AIO_E_TIMEOUT,
  AIO_E_KEYBOARD_INTERRUPT,
  AIO_E_SYSTEM_EXIT,
  AIO_E_QUEUE_EMPTY,
  AIO_E_QUEUE_FULL,
  AIO_E_QUEUE_SHUTDOWN,
  AIO_E_COUNT
} aio_errclass;

/* Pushes a new error object of class `cls` with `nargs` arguments taken
 * from the top of the stack (they are popped). Never raises except on
 * memory errors. */
void aio_pusherror(lua_State *L, aio_errclass cls, int nargs);
/* Pushes an error object whose single argument is the formatted message. */
void aio_pusherrorf(lua_State *L, aio_errclass cls, const char *fmt, ...);
/* Raises an error object of class `cls` with a formatted message. */
int aio_raisef(lua_State *L, aio_errclass cls, const char *fmt, ...);
/* Raises an asyncio.OSError subclass built from a libuv error code;
 * `what` names the operation ("connect", ...). */
int aio_raise_uv(lua_State *L, int uverr, const char *what);
/* Pushes the OSError object for a libuv error code (does not raise). */
void aio_push_uverror(lua_State *L, int uverr, const char *what);
/* True when the value at `idx` is an error object of class `cls` (or of
 * a subclass). Never raises. */
int aio_iserror(lua_State *L, int idx, aio_errclass cls);
/* The same for the class errors.<name> ("OSError"). */
int aio_iserror_named(lua_State *L, int idx, const char *name);
/* True for the errors that must leave the loop instead of reaching the
 * exception handler (KeyboardInterrupt, SystemExit). */
int aio_isfatal(lua_State *L, int idx);
/* Pushes the error class `cls` (nil before asyncio.errors is loaded). */
void aio_push_error_class(lua_State *L, aio_errclass cls);
/* If the value at `idx` is an error object without a traceback, sets its
 * traceback to the one of thread `co` (the failed coroutine). */
void aio_set_traceback(lua_State *L, int idx, lua_State *co);
/* Pushes "stack traceback:\n\t..." for thread L1 from `level`, as
 * luaL_traceback does but without its costly search of global names. */
void aio_traceback(lua_State *L, lua_State *L1, int level);
/* Pushes a short printable description of the value at `idx` in the
 * shape Python's repr() gives (strings quoted). */
void aio_pushrepr(lua_State *L, int idx);

/* ------------------------------------------------------------------ */
/* The event loop (loop.c)                                             */

typedef enum {
  AIO_CLOCK_REAL,     /* monotonic clock, uv_hrtime */
  AIO_CLOCK_VIRTUAL,  /* starts at 0, jumps to the next deadline when idle */
  AIO_CLOCK_HOST,     /* supplied by the embedding host */
  AIO_CLOCK_LUA       /* a Lua function, env slot CLOCK (aio_loop_now) */
} aio_clock_kind;

typedef double (*aio_clock_fn)(void *ud);

/* Kinds of ready-queue entries. Each entry runs exactly once, in FIFO
 * order, in the iteration after the one that queued it. */
typedef enum {
  AIO_R_HANDLE,  /* obj = Handle/TimerHandle userdata: call its callback */
  AIO_R_STEP,    /* p = task (anchored by the loop): run one task step */
  AIO_R_FUTCB,   /* obj = callback, arg = future: call callback(future) */
  AIO_R_SLEEP,   /* p = task, n = sleep generation: wake a sleeping task */
  AIO_R_CFUNC    /* cfn(loop, L, p) with obj as an optional Lua value */
} aio_ready_kind;

typedef struct aio_loop aio_loop;
typedef struct aio_remote aio_remote;
typedef struct aio_msg aio_msg;
typedef struct aio_future aio_future;
typedef struct aio_task aio_task;

/* The metatables whose addresses a loop keeps (aio_running_mt_kind). */
enum { AIO_MT_FUTURE, AIO_MT_TASK, AIO_MT_CORO, AIO_MT_CCORO,
       AIO_MT_PTR_COUNT };

/* A C callback run from the ready queue. The Lua value stored with the
 * entry (or nil) is on top of L's stack when it is called; the callback
 * must leave the stack as it found it. It runs inside the loop's
 * protected funnel: raising reports to the exception handler. */
typedef void (*aio_cfunc)(aio_loop *loop, lua_State *L, void *p);

typedef struct aio_ready {
  unsigned char kind;
  unsigned char nvals; /* Lua values of the entry in the values ring */
  unsigned n;         /* AIO_R_SLEEP: generation */
  void *p;            /* AIO_R_STEP/SLEEP: task; AIO_R_CFUNC: data */
  aio_cfunc cfn;      /* AIO_R_CFUNC only */
} aio_ready;

/* A timer heap entry: ordered by (when, seq). Its Lua object lives in the
 * loop's timer anchor table under key seq until the entry is popped. */
typedef struct aio_timer {
  double when;
  uint64_t seq;
  unsigned char kind; /* AIO_R_HANDLE (TimerHandle) or AIO_R_SLEEP (task) */
  unsigned gen;       /* AIO_R_SLEEP: sleep generation of the task */
  void *p;            /* TimerHandle or task */
} aio_timer;

/* Slots of the env table. */
enum {
  AIO_ENV_SELF = 1,   /* a weak table holding the loop userdata at [1] */
  AIO_ENV_READY,      /* ring of the ready entries' Lua values */
  AIO_ENV_TIMERS,     /* seq -> TimerHandle or task */
  AIO_ENV_TASKS,      /* task id -> pending task */
  AIO_ENV_THREADSAFE, /* ref -> function of asyncio.threadsafe (looked up
                         by every call of one, from another thread) */
  AIO_ENV_HOT = AIO_ENV_THREADSAFE, /* the slots above live in loop->hot */
  AIO_ENV_HANDLER,    /* custom exception handler or nil */
  AIO_ENV_SIGNALS,    /* signum -> {handle, fn, args...} */
  AIO_ENV_EXECUTOR,   /* default executor or nil */
  AIO_ENV_STOPCB,     /* the done-callback of run_until_complete */
  AIO_ENV_TASK_FACTORY, /* set_task_factory's callable or nil */
  AIO_ENV_CANCELLED,  /* the CancelledError class (loop->cancelled_cls) */
  AIO_ENV_ANCHORS,    /* ref -> a value a request in flight reads (fs.c:
                         the string a write writes), or nil; dropped once
                         the closed loop's requests ended */
  AIO_ENV_CLOCK,      /* the clock function of an AIO_CLOCK_LUA loop */
  AIO_ENV_COUNT = AIO_ENV_CLOCK
};

struct aio_loop {
  uv_loop_t *uv;          /* own_uv ? a libuv loop of its own (malloc'd,
                             freed by __gc) : the host's loop */
  uv_timer_t *poll_timer; /* wakes a blocking poll at the next deadline */
  uv_async_t *wakeup;     /* wakes a blocking poll from other threads */
  aio_remote *remote;     /* the part other threads may touch */
  lua_State *L;           /* the main thread of the owning state */
  lua_State *Lrun;        /* thread running the loop, while it runs */
  int env;                /* registry ref: table of the other slots */
  int hot[AIO_ENV_HOT];   /* registry refs of the values of the slots
                             SELF to TASKS themselves (one look-up
                             instead of two on hot paths); always tables */
  int mt_ref[AIO_MT_PTR_COUNT]; /* registry refs of the same metatables
                             (AIO_MT_*): making a Future or a Task, or
                             starting a Coroutine, looks its metatable
                             up in the registry's array part, not under
                             a light userdata key in its hash part */
  const void *mt_ptr[AIO_MT_PTR_COUNT]; /* the addresses of the Future,
                             Task and Coroutine metatables (see
                             aio_running_mt_kind) */
  const void *cancelled_cls; /* the address of the CancelledError class
                             when the loop was made, which its env keeps
                             (aio_loop_iscancelled) */

  /* The ready queue: a ring of C entries, and a second ring (the env
   * READY table) holding, in the same FIFO order, the Lua values of the
   * entries that have some. Task steps carry none. */
  aio_ready *ready;
  unsigned rcap, rhead, rcount;
  unsigned vcap, vhead, vcount;

  /* The timer heap (lazy deletion: cancelled entries stay until popped
   * or compacted). */
  aio_timer *heap;
  unsigned hcap, hcount, hcancelled;
  uint64_t hseq;

  aio_task *current;      /* task being stepped, or NULL */
  aio_task *starting;     /* task whose thread a first step is making:
                             if that raises, the run schedules the step
                             again (see run_loop) */
  unsigned npending;      /* pending tasks (entries of env TASKS) */
  unsigned handles_open;  /* uv handles not yet closed (debug counts) */
  unsigned endless_reqs;  /* file requests in flight that may never end
                             (fs.c's count_endless: opens, and reads and
                             writes of pipes, FIFOs, terminals); closing
                             the loop does not wait for them alone */
  unsigned polls_skipped;
  aio_task *interrupt_task; /* asyncio.run's main task (SIGINT cancels) */
  struct aio_sigwatch *signals; /* signal watchers (signal.c) */
  struct aio_io *ios;     /* I/O objects' uv handles (io.c) */
  uv_signal_t *sigint;    /* SIGINT watcher from the first run, or NULL */
  uv_signal_t *sigquit;   /* SIGQUIT dump trigger while running (dump.c) */
  uv_timer_t *hang_timer; /* hang watch while running (dump.c) */
  unsigned quits, quits_seen;
  unsigned long progress; /* ready entries run so far */
  unsigned long hang_progress;
  uint64_t hang_since;
  unsigned char hang_tick, hang_dumped;
  int interrupts;         /* SIGINTs received while running */
  int interrupts_seen;

  aio_clock_kind clock;
  double vnow;            /* virtual clock: current time */
  aio_clock_fn host_clock;
  void *host_clock_ud;
  double lua_now;         /* AIO_CLOCK_LUA: what its function last
                             returned (aio_loop_time gives that) */

  unsigned char own_uv, running, stopping, closed, debug, finalized;
  unsigned char uv_abandoned; /* its own libuv loop was left to requests
                                 that may never end: never freed */
  unsigned char interrupted; /* SIGINT seen: raise KeyboardInterrupt */
  unsigned char propagate;   /* a BaseException escaped: leave the run */
  unsigned char watch_sigint; /* watch SIGINT from the first run on */
  unsigned char executor_shutdown; /* the default executor is shut down */
  unsigned char task_factory; /* env TASK_FACTORY is set */
  double slow_callback;   /* debug mode: report callbacks slower than this */
  /* Counted apart from the hot fields above: with `progress`, they tell
   * luaio_step a poll that only took a wake-up left by posts already
   * run (no entry, no dispatch ran after it). */
  unsigned long dispatches; /* I/O dispatches run so far (io.c) */
  unsigned long wakeups;  /* wake-ups a poll took (on_wakeup calls) */
  uint64_t deadline;      /* uv_hrtime() past which an iteration leaves
                             the rest of its ready snapshot for the next
                             one (luaio_step's budget), or 0 */
  char *read_scratch;     /* AIO_READ_CHUNK bytes where a stream's read
                             lands when its protocol has less room
                             (transport.c), malloc'd at first use */
};

/* The loop userdata is the aio_loop itself: Lua frees it only when no
 * Future, Task or Handle refers to it, since each of those keeps the loop
 * userdata as a user value. The uv handles it owns are malloc'd and free
 * themselves in their close callbacks, which touch the loop only while it
 * is open (their data is cleared when it closes). */

/* Pushes a new loop userdata running on `uv` (NULL: a libuv loop of its
 * own). */
aio_loop *aio_loop_new(lua_State *L, uv_loop_t *uv, aio_clock_kind clock);
/* aio_iserror(L, idx, AIO_E_CANCELLED) for an error met by loop's tasks:
 * an instance of the CancelledError class is told by the address of its
 * metatable, without a look-up (cancelling many tasks costs less). */
int aio_loop_iscancelled(lua_State *L, aio_loop *loop, int idx);
/* One iteration; `max_wait` bounds the poll in seconds (< 0: unbounded).
 * Returns 1 if an error must propagate out of the run (left on the
 * stack), else 0. The loop must be running. */
int aio_run_once(lua_State *L, aio_loop *loop, double max_wait);
/* Runs one iteration of a loop that is not running, as luaio_step does.
 * Same return convention as aio_run_once. */
int aio_loop_step(lua_State *L, aio_loop *loop, double max_wait);
/* Closes a uv handle the loop allocated with malloc (its data is the
 * loop, or NULL once the loop closed); the close callback frees it. */
void aio_loop_close_handle(aio_loop *loop, uv_handle_t *h);

/* Every uv handle made for a Lua object (streams, servers, processes)
 * has `data` pointing at a struct that starts with aio_io, so that
 * closing a loop can close it. */
typedef struct aio_io {
  void (*close)(uv_handle_t *h); /* closes h and detaches its owner */
  /* The fields below belong to the I/O machinery of io.c. */
  aio_loop *loop;          /* owning loop; NULL once detached from it */
  struct aio_io *next, *prev; /* the loop's list (loop->ios) */
  uv_handle_t *handle;     /* NULL for a request (getaddrinfo) */
  /* Closes (or cancels) at once when the loop closes; never frees. */
  void (*shut)(lua_State *L, struct aio_io *io);
  /* Runs the events its uv callbacks recorded, in Lua context. */
  void (*dispatch)(lua_State *L, struct aio_io *io, unsigned events);
  unsigned events;         /* recorded, not yet dispatched */
  unsigned char posted;    /* a deferred dispatch is queued (threads.c) */
  unsigned char dead;      /* released while posted: the post frees it */
} aio_io;
void aio_io_close_for_loop(uv_handle_t *h);

/* Returns the loop at `idx`, raising if it is not a loop or is closed. */
aio_loop *aio_check_loop(lua_State *L, int idx);
/* Like aio_check_loop but accepts a closed loop. */
aio_loop *aio_check_loop_any(lua_State *L, int idx);
/* Returns the loop at `idx` or NULL when it is not a loop. */
aio_loop *aio_test_loop(lua_State *L, int idx);
/* Raises RuntimeError "Event loop is closed" when the loop is closed. */
void aio_check_open(lua_State *L, aio_loop *loop);
/* Pushes the loop's userdata. */
void aio_push_loop(lua_State *L, aio_loop *loop);
/* aio_push_env for the slots that do not live in loop->hot. */
void aio_push_env_cold(lua_State *L, aio_loop *loop, int slot);
/* Pushes env slot `slot` of the loop (nil once the loop dropped its
 * env). Inline: the hot slots, read on every task step, are one registry
 * read. */
static inline void aio_push_env(lua_State *L, aio_loop *loop, int slot) {
  if (slot <= AIO_ENV_HOT && loop->env != LUA_NOREF)
    lua_rawgeti(L, LUA_REGISTRYINDEX, loop->hot[slot - 1]);
  else
    aio_push_env_cold(L, loop, slot);
}
/* Sets env slot `slot` to the value on top (popped). */
void aio_set_env(lua_State *L, aio_loop *loop, int slot);
/* Pushes the table in env slot `slot` of the open loop, making it the
 * first time. */
void aio_push_env_table(lua_State *L, aio_loop *loop, int slot);
/* The loop running in L's state, or NULL. Pushes nothing. */
aio_loop *aio_running_loop(lua_State *L);
/* Returns the running loop, or get_event_loop() semantics: the loop set
 * with set_event_loop, created on demand. Pushes nothing. */
aio_loop *aio_get_event_loop(lua_State *L);
/* Whether debug mode is on for code running in L: the running loop's
 * setting, else the default (--debug, LUAIO_DEBUG). */
int aio_debug_mode(lua_State *L);
/* The loop's clock, in seconds. */
/* The loop's clock, without calling Lua: a Lua clock's last reading. */
double aio_loop_time(aio_loop *loop);
/* The loop's clock; a Lua clock is called on L (what it raises, or a
 * TypeError for a result that is not a number, propagates). */
double aio_loop_now(lua_State *L, aio_loop *loop);

/* Appends an entry to the ready queue. The Lua values of the entry are
 * taken from the stack: `nvals` (0, 1 or 2) values are popped (obj, then
 * arg). Raises only on memory errors. The caller checks closedness. */
void aio_ready_push(lua_State *L, aio_loop *loop, aio_ready_kind kind,
                    void *p, unsigned n, aio_cfunc cfn, int nvals);
/* aio_ready_push without first draining thread-safe posts. */
void aio_ready_push_raw(lua_State *L, aio_loop *loop, aio_ready_kind kind,
                        void *p, unsigned n, aio_cfunc cfn, int nvals);
/* Makes room for n more ready entries without raising (0: out of
 * memory, nothing changed). */
int aio_ready_fit(aio_loop *loop, unsigned n);
/* Drains thread-safe posts, then makes room for n more ready entries
 * (raises "not enough memory"); a later aio_ready_push_raw of n entries
 * without Lua values then cannot fail. */
void aio_ready_reserve(lua_State *L, aio_loop *loop, unsigned n);
/* Schedules one step of task `t` (call_soon(task.__step)). */
void aio_schedule_step(lua_State *L, aio_loop *loop, aio_task *t);
/* aio_schedule_step from a uv callback, without Lua and without raising:
 * only while the loop runs on this thread, no thread-safe post is queued
 * (they go first) and the ready queue has room; else returns 0 and
 * schedules nothing. */
int aio_try_schedule_step(aio_loop *loop, aio_task *t);

/* Calls the loop's exception handler with the context table on top of
 * the stack (popped). Never raises. */
void aio_report(lua_State *L, aio_loop *loop);
/* Builds a context {message=msg, exception=<value at exc_idx or none>}
 * with one more key `key` = value at key_idx (0 for none) and reports
 * it. Never raises. */
void aio_report_error(lua_State *L, aio_loop *loop, const char *msg,
                      int exc_idx, const char *key, int key_idx);
/* Reports the exception of the finished future at fidx (log_tb cleared):
 * {message = msg, exception =, [key] = the future, and for a task the
 * traceback of where its failure was raised}. Never raises. */
void aio_report_exception(lua_State *L, int fidx, const char *msg,
                          const char *key);
/* The message handler of aio_pcall, for callers that push it below the
 * function themselves (saving the stack rotations). */
int aio_msgh(lua_State *L);
/* Runs fn with nargs arguments below it on the stack in protected mode,
 * with a traceback-capturing message handler; on error leaves the error
 * value on the stack and returns its status, else pops fn and arguments
 * and returns LUA_OK. */
int aio_pcall(lua_State *L, int nargs);

/* ------------------------------------------------------------------ */
/* Thread-safe submission (threads.c)                                  */

/* A C callback posted from any thread. It runs on the loop's thread as a
 * ready entry: fn(loop, L, data); if the loop closes first it is called
 * with L == NULL and must only release `data`. */
typedef struct aio_remote aio_remote;
aio_remote *aio_remote_new(lua_State *L, aio_loop *loop);
/* Queues fn(data) from any thread and wakes the loop. Returns 0, or
 * UV_ECANCELED when the loop is closed (fn is not called). */
int aio_remote_post(aio_remote *r, aio_cfunc fn, void *data);
/* The same with a queue node the caller provides (inside its job, to save
 * an allocation): fn(loop, L, data) must free it; owned must be 0. */
typedef struct aio_gate aio_gate;
typedef struct aio_post {
  struct aio_post *next;
  aio_cfunc fn;
  void *data;
  aio_gate *gate;      /* the mark that counted it, or NULL */
  unsigned char owned; /* allocated by aio_remote_post */
  unsigned char batch; /* posted with aio_remote_post_batched */
} aio_post;
int aio_remote_post_node(aio_remote *r, aio_post *node);

/* A high-water mark on thread-safe posts (asyncio.threadsafe's maxsize,
 * the loop's post limit of the embedding API). A post counted by a gate
 * stays counted until its callback starts (or is disposed of because the
 * loop closed): the callback calls aio_gate_leave(node->gate). While
 * `limit` posts are counted, another thread posting through the gate
 * waits, until the count is down to limit / 2; the loop's own thread
 * never waits (its post goes beyond the mark, counted). Fields are guarded by the remote's mutex. */
struct aio_gate {
  aio_remote *r;
  unsigned limit;        /* 0: unbounded (nothing waits) */
  unsigned count, peak;  /* counted posts now, and at most */
  unsigned waiters;
  unsigned long waited;  /* foreign posts that found it full */
  uv_cond_t room;
  struct aio_gate *next; /* the remote's gates, woken when it closes */
};
typedef struct aio_gate_stats {
  unsigned limit, count, peak;
  unsigned long waited;
} aio_gate_stats;
/* Sets up g on r with the mark `limit`; returns 0 or a libuv error. */
int aio_gate_init(aio_remote *r, aio_gate *g, unsigned limit);
void aio_gate_destroy(aio_gate *g);
/* Queues node through g (NULL: ungated, as aio_remote_post_node). With
 * `wait` a full gate makes a foreign thread wait for room; without, it
 * returns UV_EAGAIN and queues nothing. UV_ECANCELED: the loop closed. */
int aio_remote_post_gated(aio_remote *r, aio_post *node, aio_gate *g,
                          int wait);
/* As aio_remote_post_gated, for callbacks that run several posts in one
 * call: consecutive batched posts of the same fn (nothing posted between
 * them) become one ready entry, fn(loop, L, data of the first), and fn
 * finds the others through node->next (the data of each, NULL after the
 * last), to run them in the order posted. When the loop closes, each is
 * disposed of alone (fn with L == NULL and next NULL). */
int aio_remote_post_batched(aio_remote *r, aio_post *node, aio_gate *g,
                            int wait);
/* A counted post has run or was disposed of (g NULL: nothing to do). */
void aio_gate_leave(aio_gate *g);
void aio_gate_get_stats(aio_gate *g, aio_gate_stats *st);
/* Around a blocking wait of this thread: the marks of the loops it made
 * are lifted meanwhile (their posters would wait for it). No lock held. */
void aio_blocking_begin(void);
void aio_blocking_end(void);
/* The loop-wide gate of LoopRef:call_soon_threadsafe and luaio posts;
 * aio_remote_set_limit changes its mark (0: unbounded) and wakes the
 * waiters. */
aio_gate *aio_remote_gate(aio_remote *r);
void aio_remote_set_limit(aio_remote *r, unsigned limit);
/* Moves posted callbacks to the ready queue (loop thread only). */
void aio_remote_drain(lua_State *L, aio_loop *loop);
/* True when posts may be waiting (cheap, lock-free). */
int aio_remote_has_posts(aio_remote *r);
/* Refuses further posts; posts still queued are disposed of. */
void aio_remote_close(aio_remote *r);
/* For a posted callback (L != NULL): runs body(data) in protected mode;
 * an error goes to the exception handler as `what`, a fatal one
 * (KeyboardInterrupt, SystemExit) leaves the loop's run, left on top of
 * the stack, which the callback then leaves alone. */
void aio_run_posted(aio_loop *loop, lua_State *L, lua_CFunction body,
                    void *data, const char *what);
void aio_remote_retain(aio_remote *r);
void aio_remote_release(aio_remote *r);
/* Shuts the default executor down without waiting (loop close). */
void aio_executor_shutdown_default(lua_State *L, aio_loop *loop);
/* 1 once the remote's loop has closed. */
int aio_remote_closed(aio_remote *r);
/* The remote of the loop or loop reference at idx (raises otherwise). */
aio_remote *aio_check_remote(lua_State *L, int idx);
/* Blocking waits of plain threads (cf:result, ch:get, ...). The deadline
 * (uv_hrtime nanoseconds, 0: none) of the optional timeout argument at
 * idx, in seconds; a negative one counts as 0. */
uint64_t aio_deadline_arg(lua_State *L, int idx);
/* Waits on cond, mu held, until signalled or the deadline; returns 0,
 * without waiting, once the deadline has passed. The caller checks its
 * condition before each call. */
int aio_cond_wait_until(uv_cond_t *cond, uv_mutex_t *mu, uint64_t deadline);

/* New Lua states for threads: the standard libraries, the creator's
 * package.path/cpath and, when the library is linked into the program,
 * the embedded sources (the hook luaio_openlibs installs). */
typedef struct aio_state_cfg {
  char *path, *cpath;
} aio_state_cfg;
aio_state_cfg *aio_state_cfg_new(lua_State *L);
void aio_state_cfg_free(aio_state_cfg *cfg);
lua_State *aio_state_new(aio_state_cfg *cfg);
AIO_EXPORT void aio_set_state_hook(void (*hook)(lua_State *L));

/* Concurrent futures (cfuture.c): any thread may complete or wait. */
typedef struct aio_cfuture aio_cfuture;
aio_cfuture *aio_cfuture_new(void);
void aio_cfuture_retain(aio_cfuture *cf);
void aio_cfuture_release(aio_cfuture *cf);
/* Completes with `value` (owned from now on); 0 if it was done already. */
int aio_cfuture_set(aio_cfuture *cf, aio_msg *value, int is_exc);
/* Completes cf with the values above stack index `base` (popped), which
 * are the error with is_exc; values that cannot be sent complete it with
 * their SendError instead. Raises only on memory errors. */
void aio_cfuture_set_from(lua_State *L, aio_cfuture *cf, int base,
                          int is_exc);
int aio_cfuture_set_running(aio_cfuture *cf);
int aio_cfuture_cancel(aio_cfuture *cf);
/* Pushes a userdata for cf (taking a reference). */
void aio_cfuture_push(lua_State *L, aio_cfuture *cf);
/* Pushes a userdata holding a new concurrent future (the userdata owns
 * its only reference) and returns it; raises "not enough memory"
 * leaking nothing. */
aio_cfuture *aio_cfuture_push_new(lua_State *L);
/* Pushes a Future of `loop` (NULL: the running or current loop) that
 * completes with the concurrent future at idx (asyncio.wrap_future). */
int aio_cfuture_wrap(lua_State *L, int idx, aio_loop *loop);

/* ------------------------------------------------------------------ */
/* Values crossing between Lua states (transfer.c)                     */

/* A kind of object shared between states by reference (loop references,
 * concurrent futures, channels, thread-safe callables): reference
 * counted C objects, each state holding userdata that point at them. */
typedef struct aio_shared_type {
  const char *name;
  /* the object of the userdata at idx, or NULL if it is not of the type */
  void *(*test)(lua_State *L, int idx);
  void (*retain)(void *obj);
  void (*release)(void *obj);
  /* pushes a new userdata for obj in L; takes a reference of its own */
  void (*push)(lua_State *L, void *obj);
} aio_shared_type;

void aio_shared_register(const aio_shared_type *type);
/* Packs the n values from stack index `first` (not popped). With
 * fn_first, the first is named "fn" and the others "args[i]" in SendError
 * paths; else they are all "args[i]". Raises SendError; on success the
 * message owns references to the shared objects it holds. */
aio_msg *aio_msg_pack(lua_State *L, int first, int n, int fn_first);
/* As aio_msg_pack, with `room` bytes for the caller in the message's own
 * allocation, at *roomp (aligned for any type; also for n == 0, which
 * then makes an empty message): aio_msg_free frees them with it. */
aio_msg *aio_msg_pack_room(lua_State *L, int first, int n, int fn_first,
                           size_t room, void **roomp);
/* Pushes the message's values (in any state) and returns their number. */
int aio_msg_unpack(lua_State *L, const aio_msg *m);
/* Frees a message (NULL is fine), releasing its shared references. */
void aio_msg_free(aio_msg *m);

/* Blocks of AIO_BLOCK_SIZE bytes for what one thread allocates and
 * another frees (blocks.c): recycled between threads in chains instead
 * of freed into another thread's malloc arena. aio_block_alloc returns
 * NULL when out of memory; aio_block_free takes NULL. */
#define AIO_BLOCK_SIZE 256
/* The most blocks the shared pool keeps (blocks.c: chains of 32). */
#define AIO_BLOCK_POOL_MAX 8192
void *aio_block_alloc(void);
void aio_block_free(void *b);
/* The blocks in the shared pool now (for tests). */
unsigned aio_block_pool_size(void);

/* ------------------------------------------------------------------ */
/* Handles and timers (handle.c, timer.c)                              */

typedef struct aio_handle {
  aio_loop *loop;
  double when;          /* TimerHandle: deadline */
  int nargs;            /* callback arguments: uservalues 2..nargs+1 */
  unsigned char timer, cancelled, scheduled;
} aio_handle;

/* Pushes a new Handle (timer = 0) or TimerHandle for the function at
 * `fidx` and the `nargs` values after it. A coroutine function or a
 * Coroutine object raises TypeError "coroutines cannot be used with
 * <what>()", as asyncio's callbacks do. */
aio_handle *aio_handle_new(lua_State *L, aio_loop *loop, int fidx, int nargs,
                           int timer, double when, const char *what);
/* Runs the handle on top of the stack (popped) unless cancelled. */
void aio_handle_run(lua_State *L, aio_loop *loop);

/* Pushes a timer entry. For a TimerHandle (AIO_R_HANDLE) the Lua object
 * on top of the stack is anchored (and popped); a task's sleep entry
 * (AIO_R_SLEEP) takes nothing from the stack: the task is anchored by its
 * loop while pending, and by the timer table once retired while entries
 * still point at it (aio_timer_task_retired). */
void aio_timer_push(lua_State *L, aio_loop *loop, double when, int kind,
                    void *p, unsigned gen);
/* Moves every due timer to the end of the ready queue. */
void aio_timers_run_due(lua_State *L, aio_loop *loop, double now);
/* Sets *when to the deadline of the earliest live timer and returns 1, or
 * returns 0 when there is none (math.huge deadlines never fire). Pops
 * cancelled entries off the top of the heap on the way. */
int aio_timers_next(lua_State *L, aio_loop *loop, double *when);
/* Notes that a heap entry became dead (cancelled handle or stale sleep);
 * compacts the heap when most of it is dead. */
void aio_timers_cancelled(lua_State *L, aio_loop *loop);
/* The task at tidx retires (leaves the loop's pending set): while timer
 * entries still point at it, the timer table keeps it. */
void aio_timer_task_retired(lua_State *L, aio_loop *loop, int tidx);
/* Number of live timers (for tests). */
unsigned aio_timers_live(lua_State *L, aio_loop *loop);
/* Drops every timer (loop close). */
void aio_timers_clear(lua_State *L, aio_loop *loop);

/* ------------------------------------------------------------------ */
/* Futures and tasks (future.c)                                        */

typedef enum {
  AIO_PENDING,
  AIO_CANCELLED,
  AIO_FINISHED
} aio_fstate;

/* Uservalue slots of a Future (a Task has them too, then its own). */
enum {
  AIO_FU_LOOP = 1,  /* the loop userdata */
  AIO_FU_VALUE,     /* result (nres == 1), table of results (nres > 1),
                       the exception, or the CancelledError/message */
  AIO_FU_CB,        /* done callbacks: nil, one entry, or a list table */
  AIO_FU_COUNT = AIO_FU_CB
};
enum {
  AIO_TU_CORO = AIO_FU_COUNT + 1, /* the Coroutine object the task
                       runs, or, once the task needs more, a table of
                       those (name=, cancel_msg=, traceback=, its kept
                       wait future at [1]) with it at [2] */
  AIO_TU_COUNT = AIO_TU_CORO
};
/* While a task is pending, its VALUE slot (its outcome once done) holds
 * the error the next step raises (throwing), or nil: one slot less in
 * every Task. */
#define AIO_TU_WAITER AIO_FU_VALUE
/* Likewise its LOOP slot holds the loop until the task's first step,
 * its coroutine thread from that step while it is pending (the thread
 * keeps the loop userdata at the base of its stack, below the
 * trampoline), and the loop again once it is done. */
#define AIO_TU_THREAD AIO_FU_LOOP

struct aio_future {         /* 24 bytes on 64-bit platforms */
  aio_loop *loop;
  unsigned wq_slot;         /* sequence number in a waiter queue */
  int nres;                 /* number of result values */
  unsigned ncb;             /* number of done callbacks */
  unsigned state : 2;       /* aio_fstate */
  unsigned is_task : 1;
  unsigned has_exc : 1;     /* finished with an exception */
  unsigned log_tb : 1;      /* exception not yet retrieved */
  unsigned cb_list : 1;     /* AIO_FU_CB holds a list table */
  unsigned cancel_msg : 1;  /* cancelled: VALUE holds a message, not an
                               error object */
  unsigned cancel_hook : 1; /* pending: VALUE holds a function that
                               cancel() calls instead (gather) */
};

/* Why a task is suspended. */
typedef enum {
  AIO_WAIT_NONE,    /* scheduled to run (or running) */
  AIO_WAIT_FUTURE,  /* on the future in AIO_TU_WAITER */
  AIO_WAIT_SLEEP,   /* on a timer entry of generation sleep_gen */
  AIO_WAIT_YIELD,   /* sleep(0), or woken: its step is already queued */
  AIO_WAIT_PRIM     /* in the aio_taskq of a primitive (a Lock) */
} aio_wait_kind;

/* How the wait of a task in an aio_taskq ended (aio_task.wstate). */
enum { AIO_TW_PENDING, AIO_TW_WOKEN, AIO_TW_CANCELLED };

/* Laid out without inner padding (80 bytes on 64-bit platforms, the last
 * 4 free): every pending task holds one, so its size counts
 * (spec/task_memory_spec). */
struct aio_task {
  aio_future fut;
  lua_State *co;            /* anchored by AIO_TU_THREAD; NULL until the
                               first step and once done */
  aio_future *waiter;       /* the future awaited, or NULL */
  lua_Integer id;           /* n of the default name Task-<n>, and the
                               task's key in the loop's pending table */
  aio_task *wnext;          /* the next task of the aio_taskq it is in */
  int waiter_idx;           /* its slot in the suspended frame of co */
  unsigned sleep_gen;
  int num_cancels;          /* cancel() requests not yet uncancelled */
  unsigned timer_refs;      /* timer heap entries pointing at the task,
                               live or dead (see aio_timer_task_retired) */
  unsigned wait_kind : 3;   /* aio_wait_kind */
  unsigned must_cancel : 1;
  unsigned started : 1;
  unsigned awaiting : 1;    /* set by a legitimate await before yielding */
  unsigned throwing : 1;    /* the next step raises AIO_TU_WAITER's value */
  unsigned resume_throw : 1; /* this resume passes an error to raise */
  unsigned bad_yield : 1;   /* the next step raises "bad yield" by hook */
  unsigned sleep_in_heap : 1; /* the current sleep's timer is live */
  unsigned wstate : 2;      /* AIO_TW_*: its wait in an aio_taskq */
};

aio_future *aio_check_future(lua_State *L, int idx);
aio_future *aio_test_future(lua_State *L, int idx); /* Future or Task */
aio_task *aio_test_task(lua_State *L, int idx);
aio_task *aio_check_task(lua_State *L, int idx);
/* Pushes a new pending Future bound to loop. */
aio_future *aio_future_new(lua_State *L, aio_loop *loop);
/* Completes the future at `fidx` with the `n` values on top of the stack
 * (popped). Returns 0 if it was already done (values popped anyway). */
int aio_future_set_result(lua_State *L, int fidx, int n);
/* Completes the future at `fidx` with the error on top (popped). */
int aio_future_set_exception(lua_State *L, int fidx);
/* Cancels the future at `fidx`; the message (or nil) is on top, popped.
 * Returns 1 if it was cancelled now. For tasks, requests cancellation. */
int aio_future_cancel(lua_State *L, int fidx);
/* Pushes the future's results and returns their count, or raises its
 * exception (marking it retrieved). Raises InvalidStateError if pending. */
int aio_future_push_result(lua_State *L, int fidx);
/* Adds the value on top (popped) as a done callback; a lightuserdata is
 * the wakeup of that task. Schedules at once if the future is done. */
void aio_future_add_callback(lua_State *L, int fidx);
/* Pushes the future task t waits on (t->waiter): it sits in the frame
 * of the suspended coroutine that awaits it. */
void aio_push_waiter(lua_State *L, aio_task *t);
/* Pushes the task object for a task pointer (it must be pending). */
void aio_push_task(lua_State *L, aio_task *t);
void aio_task_describe(lua_State *L, aio_task *t, char *buf, size_t size);
/* The debug mode of new loops (--debug, LUAIO_DEBUG=1). */
int aio_debug_default(void);
/* The loop is closing: its pending tasks get finalizers, so that they
 * report "Task was destroyed but it is pending!" when collected. */
void aio_tasks_orphaned(lua_State *L, aio_loop *loop);
/* Creates a Task running the Coroutine object at `cidx` on `loop`; the
 * options table at `oidx` (0 for none) may give a name. Pushes it. */
aio_task *aio_task_new(lua_State *L, aio_loop *loop, int cidx, int oidx);
/* loop:create_task: pushes what the loop's task factory returns for
 * (loop, coro, opts or nil) when one is set, else a new Task (as
 * aio_task_new). Returns the pushed value as a future, or NULL when the
 * factory made something else. */
aio_future *aio_create_task(lua_State *L, aio_loop *loop, int cidx,
                            int oidx);
/* Pushes a pending future of t's loop for a wait of t on a primitive
 * (aio_prim_wait): the task's kept one once free, so that waiting
 * allocates nothing after the first wait. */
void aio_task_wait_future(lua_State *L, aio_task *t);
/* The stack room a task step needs on L above its top: the loop's run
 * of its ready entries ensures it once for all of them, as each entry
 * leaves L's stack as it found it. */
#define AIO_STEP_ROOM 8
/* Runs one step of task `t`; L has room for AIO_STEP_ROOM values. */
void aio_task_step(lua_State *L, aio_loop *loop, aio_task *t);
/* Wakes a task whose sleep of generation `gen` is due. */
void aio_task_sleep_done(lua_State *L, aio_loop *loop, aio_task *t,
                         unsigned gen);
/* Pushes the Python-shaped repr of the future or task at `idx`. */
void aio_future_pushrepr(lua_State *L, int idx);
/* task:cancel(msg) for the task at tidx, message at midx (0: none). */
int aio_task_cancel(lua_State *L, int tidx, int midx);
/* Suspends the running task t in a wait without a Future that C code
 * ends with aio_task_wake_prim (a task in a Lock's aio_taskq, a task
 * reading a StreamReader): wait_kind AIO_WAIT_PRIM, wstate
 * AIO_TW_PENDING. cancel() ends it with wstate AIO_TW_CANCELLED and
 * schedules the step, which throws CancelledError; so does a cancellation
 * requested while t ran, at once. k continues the suspended C function
 * with the same stack and must call aio_resume_take_throw first (1: the
 * error is on top). Use as `return aio_task_wait_prim(...)`. */
int aio_task_wait_prim(lua_State *L, aio_task *t, lua_KContext ctx,
                       lua_KFunction k);
/* Ends the pending wait of t (wstate AIO_TW_PENDING): its step is
 * scheduled and wstate becomes AIO_TW_WOKEN. If scheduling raises (out
 * of memory), t still waits, unchanged. */
void aio_task_wake_prim(lua_State *L, aio_task *t);
/* aio_task_wake_prim from a uv callback of t's loop, without Lua: returns
 * 0, changing nothing, when that needs Lua (aio_try_schedule_step). */
int aio_task_try_wake_prim(aio_task *t);
/* What a pending wait in an aio_taskq shows in reprs: the Future
 * Python's primitive would wait on. */
#define AIO_PRIM_WAIT_REPR "<Future pending cb=[Task.task_wakeup()]>"
/* Hands a cancellation requested while t ran to the future at fidx it
 * now awaits, with the message cancel() stored (Python's __step after a
 * yield); the request is consumed if the future got cancelled. */
void aio_task_forward_cancel(lua_State *L, aio_task *t, int fidx);
/* Pushes a future of `loop` for the awaitable at idx (a Future or Task is
 * itself; a Coroutine becomes a Task). Returns 1 if a task was made.
 * Raises TypeError for other values, ValueError for another loop's
 * future. */
int aio_ensure_future(lua_State *L, int idx, aio_loop *loop);

/* The running task of the running loop when L is that task's thread,
 * else NULL. */
aio_task *aio_current_task_of(lua_State *L);

/* ------------------------------------------------------------------ */
/* Coroutine objects and await (coro.c)                                */

typedef struct aio_coro {
  const char *tag;        /* &coro_tag of coro.c (aio_testtagged) */
  lua_CFunction body;     /* a C operation's body (aio_push_ccoro); NULL
                             for others, whose function is uservalue 1 */
  int nargs;              /* arguments: uservalues 2..nargs+1 */
  unsigned char state;    /* AIO_CORO_* */
  unsigned char origin;   /* debug mode: uservalue nargs+2 is the
                             traceback of where it was created */
  unsigned char cached;   /* a C operation its object keeps for reuse
                             (aio_ccoro_kept); AIO_CORO_FAST: an
                             aio_fast_op, kept (aio_ccoro_kept_fast) */
} aio_coro;

enum { AIO_CORO_FAST = 2 };

/* A kept C operation with a fast path: await runs `fast` first, with the
 * op at index 1 (values above it, await's extra arguments, are to be
 * ignored) and the arguments still in the op's uservalues 3..nargs+1
 * (uservalue 2 is the owner, uservalue 1 what the owner gave it). `fast`
 * completes the operation when it can do so at once, without waiting,
 * waking anyone or calling Lua, and returns its number of results; else
 * it changes nothing and returns -1, and the body runs as usual. It runs
 * in any coroutine that may yield, a task's or not: await looks for the
 * awaiting task only when `fast` returns -1. */
typedef struct aio_fast_op aio_fast_op;
typedef int (*aio_fast_fn)(lua_State *L, aio_fast_op *op);
/* An owner may keep an operation's argument elsewhere until the
 * operation runs: then its `settle` (NULL: none) puts it back into the
 * op's uservalue, and is called, with the op at the absolute index idx,
 * before anything but `fast` reads the arguments (the body when `fast`
 * returns -1, a task's first step). */
typedef void (*aio_fast_settle)(lua_State *L, aio_fast_op *op, int idx);
struct aio_fast_op {
  aio_coro c;
  void *owner;            /* the userdata block at uservalue 2 */
  aio_fast_fn fast;
  aio_fast_settle settle;
};

/* A Coroutine is new, then started (awaited, or run by a task), or
 * taken: wrapped in a task that has not made its first step yet, which
 * holds its function and arguments until then (a kept operation in that
 * state is not armed again). */
enum { AIO_CORO_NEW, AIO_CORO_STARTED, AIO_CORO_TAKEN };

aio_coro *aio_test_coro(lua_State *L, int idx);
/* Whether the value at idx is a coroutine function (asyncio.async's). */
int aio_is_coroutine_function(lua_State *L, int idx);
/* Marks the Coroutine at `cidx` as started and pushes its function and
 * arguments onto `to` (which may be another thread of the same state).
 * Raises RuntimeError if it was already awaited or wrapped in a task.
 * Returns the number of arguments. */
int aio_coro_start(lua_State *L, int cidx, lua_State *to);
/* aio_coro_start in two halves, for a task of `loop`: aio_coro_take marks
 * the Coroutine c (aio_test_coro's block) at the positive index cidx as
 * taken (raising as aio_coro_start does), and aio_coro_start_taken, at
 * the task's first step, pushes its function and arguments onto `to`,
 * marks it started and returns the number of arguments. */
void aio_coro_take(lua_State *L, int cidx, aio_coro *c, aio_loop *loop);
int aio_coro_start_taken(lua_State *L, int cidx, lua_State *to);
/* Pushes the function the Coroutine at cidx runs. */
void aio_coro_pushfn(lua_State *L, int cidx);
/* Pushes the name of the coroutine's function (for reprs). */
void aio_coro_pushname(lua_State *L, int cidx);
/* The name of a C operation's body in reprs, Python's qualified name of
 * the method ("Queue.get"): each module names its bodies when it opens. */
typedef struct aio_op_name {
  lua_CFunction body;
  const char *name;
} aio_op_name;
/* Names the bodies of `names` (ended by {NULL, NULL}) in L's state. */
void aio_name_ops(lua_State *L, const aio_op_name *names);
/* Pushes a printable name for the function at idx: the name aio_name_ops
 * gave it, its global name when it has one, else "function <source:line>"
 * ("function <C>" for a C function). */
void aio_pushfuncname(lua_State *L, int idx);
/* Suspends the running task until its next step; k is the continuation.
 * Must be called as `return aio_task_suspend(L, t, ctx, k)`. */
int aio_task_suspend(lua_State *L, aio_task *t, lua_KContext ctx,
                     lua_KFunction k);
/* In a continuation after aio_task_suspend: raises the value the task was
 * resumed with if the resume is a throw (cancellation). */
void aio_resume_check(lua_State *L, aio_task *t);
/* Suspends task t (running L) until the future at fidx is done; then
 * k(L, status, ctx) continues in the task with the same stack (the future
 * still at fidx). Handles the self-await and other-loop errors and hands
 * a pending cancellation of t to the future. Use as
 * `return aio_await_future(...)`. In k, call aio_resume_take_throw first:
 * when it returns 1 the task is being thrown an error (on top of the
 * stack) instead of being woken by the future; clean up and raise it. */
int aio_await_future(lua_State *L, aio_task *t, int fidx, lua_KContext ctx,
                     lua_KFunction k);
int aio_resume_take_throw(lua_State *L, aio_task *t);
/* Replaces the nargs values on top by a Coroutine object whose body is
 * the C function `body` called with them (an awaitable C operation, e.g.
 * lock:acquire()). */
void aio_push_ccoro(lua_State *L, lua_CFunction body, int nargs);
/* The body of a method returning a C operation: keeps the first nargs
 * arguments (the object, already checked, and its arguments) and returns
 * the Coroutine object of `body` for them. */
int aio_ccoro_method(lua_State *L, int nargs, lua_CFunction body);
/* As aio_ccoro_method, allocating nothing in the steady state: the object
 * at index 1 keeps the operation in its user value `slot`; a call returns
 * that Coroutine armed with the new arguments once it has been awaited
 * (or wrapped in a task), else a new one, which it keeps instead. So
 * `await(q:get())` in a loop reuses one object. What this relaxes: an
 * operation object already awaited may be armed again by the next call
 * of the same method of the same object (it is then that call's object:
 * awaiting the old reference again performs the new call), and a kept
 * operation has no "never awaited" report (no C operation has one).
 * Methods may share a slot: a call of another body than the kept
 * operation's makes a new one, which the slot keeps instead. */
int aio_ccoro_kept(lua_State *L, int nargs, lua_CFunction body, int slot);
/* As aio_ccoro_kept, for an operation with a fast path (aio_fast_op):
 * its object's uservalue 1 is the owner's uservalue `aux` (0: none). */
int aio_ccoro_kept_fast(lua_State *L, int nargs, lua_CFunction body,
                        int slot, aio_fast_fn fast, int aux);
/* As aio_ccoro_kept_fast, cheaper: *kept, a field of the owner (NULL
 * when it is made), is the block of the operation kept at `slot`, which
 * only this function writes; extra arguments are ignored, absent ones
 * are nil. `fast` may be NULL: an operation with no fast path (its
 * block is an aio_fast_op all the same). */
int aio_fast_op_kept(lua_State *L, aio_fast_op **kept, int nargs,
                     lua_CFunction body, int slot, aio_fast_fn fast,
                     int aux);
/* The bodies await(lock) and await(sem) run directly, with the stack
 * [obj], instead of the Coroutine obj's __await would return (locks.c).
 * Fixed functions, not a table the opener fills: every Lua state opens
 * the module, from any thread. */
int aio_lock_guard_body(lua_State *L);
int aio_sem_guard_body(lua_State *L);
/* The guard body of the userdata p of len bytes when it is a Lock or a
 * Semaphore, else NULL (p not NULL). */
lua_CFunction aio_guard_body_of(const void *p, size_t len);
/* Replaces [fn, args...] (nargs arguments) on top by a Coroutine object
 * running fn(args). */
void aio_coro_new(lua_State *L, int nargs);
/* The task running L, raising "cannot await outside a task" when L is
 * not a task's own thread; `what` names the operation for the message. */
aio_task *aio_check_await(lua_State *L, const char *what);
/* The await function: awaits the value at stack index 1. */
int aio_await(lua_State *L);

/* The body of asyncio.sleep(delay [, result]) (timer.c); await runs it
 * inline with the stack [delay, result]. */
int aio_sleep_body(lua_State *L);

/* ------------------------------------------------------------------ */
/* Waiter queues and primitives (locks.c, queue.c)                     */

/* A FIFO of waiting futures kept in the Lua table that is user value `uv`
 * of the object at stack index `owner` (a ring; removed entries are
 * false). `base` counts entries that left the head, so a future's
 * wq_slot - base is its position. */
typedef struct aio_waitq {
  unsigned cap, head, count; /* ring slots in use, false entries included */
  unsigned live;             /* entries not removed */
  unsigned base;
} aio_waitq;

void aio_wq_push(lua_State *L, aio_waitq *q, int owner, int uv, int fidx);
/* Removes the future at fidx if it is queued; returns 1 if it was. */
int aio_wq_remove(lua_State *L, aio_waitq *q, int owner, int uv, int fidx);
/* Pushes the first queued future (returns 0 and pushes nothing if none). */
int aio_wq_first(lua_State *L, aio_waitq *q, int owner, int uv);
/* Like aio_wq_first, and removes it. */
int aio_wq_popleft(lua_State *L, aio_waitq *q, int owner, int uv);
/* Calls fn on each queued future until it returns non-zero. */
int aio_wq_each(lua_State *L, aio_waitq *q, int owner, int uv,
                int (*fn)(lua_State *L, int fidx, void *ud), void *ud);
/* A FIFO of the tasks waiting on a primitive without a Future each (a
 * Lock, a Semaphore, a Queue's getters, putters and joiners): a task is
 * its own entry (aio_task.wnext, wstate), so a wait
 * allocates nothing and a wake-up schedules the task's step directly.
 * While the loop the primitive is bound to is open, every task in the
 * list is pending, so its loop keeps it; once that loop is closed its
 * tasks may be collected, and the list is dropped unread (aio_tq_open).
 * A cancelled task stays in the list until its continuation removes it,
 * as Python's waiter futures stay in their deque; so does a woken one in
 * a Lock's or Semaphore's list, while a Queue takes a task out as it
 * wakes it (Python's _wakeup_next pops its waiters). */
typedef struct aio_taskq {
  aio_task *head, *tail;
  unsigned count;
} aio_taskq;

/* The list of a primitive bound to `loop` (NULL: never waited on),
 * emptied first if that loop is closed. */
aio_taskq *aio_tq_open(aio_taskq *q, aio_loop *loop);
/* Removes t from q if it is there (O(1) at the head). */
void aio_tq_remove(aio_taskq *q, aio_task *t);
/* Appends the running task t to q and suspends it (aio_task_wait_prim;
 * wake it with aio_task_wake_prim); its continuation k must remove t from
 * q. A cancellation requested while t ran ends the wait at once, t not
 * linked. Use as `return aio_tq_wait(...)`. */
int aio_tq_wait(lua_State *L, aio_task *t, aio_taskq *q, lua_KContext ctx,
                lua_KFunction k);

/* For a primitive at stack index 1: checks the caller is a task (naming
 * the operation `what`), binds the primitive to the task's loop on first
 * use (keeping the loop in user value `uvloop`) and raises RuntimeError
 * when it is bound to another loop. Returns the task. */
aio_task *aio_prim_enter(lua_State *L, aio_loop **bound, int uvloop,
                         const char *what);
/* For a primitive at stack index 1: pushes a new future of task t's loop,
 * queues it in q (kept in user value uv) and suspends t on it, as
 * aio_await_future does (the future stays on top of the stack for k).
 * Use as `return aio_prim_wait(...)`. */
int aio_prim_wait(lua_State *L, aio_task *t, aio_waitq *q, int uv,
                  lua_KContext ctx, lua_KFunction k);

/* ------------------------------------------------------------------ */
/* I/O: streams, servers, UDP, processes, DNS (stream.c, udp.c, ...)   */

#define AIO_READER_MT "asyncio.StreamReader"
#define AIO_WRITER_MT "asyncio.StreamWriter"
#define AIO_SERVER_MT "asyncio.Server"
#define AIO_UDP_MT "asyncio.DatagramEndpoint"
#define AIO_DGT_MT "asyncio.DatagramTransport"
#define AIO_PROCESS_MT "asyncio.Process"

/* An I/O object is a malloc'd struct starting with aio_io. Its uv
 * callbacks never call Lua: they record events and call aio_io_notify,
 * which runs io->dispatch in protected mode on the thread running the
 * loop (at once while the loop runs, else through a thread-safe post).
 * Its memory is released with aio_io_release, from the handle's close
 * callback (or a request's completion). */
void aio_io_link(aio_loop *loop, aio_io *io, uv_handle_t *h);
void aio_io_notify(aio_io *io, unsigned events);
void aio_io_release(aio_io *io);
/* Shuts every I/O object of the loop (loop close). */
void aio_io_close_all(lua_State *L, aio_loop *loop);
/* Ignores SIGPIPE once (writes to a closed peer fail with EPIPE). */
void aio_io_ignore_sigpipe(void);

/* Anchors. The userdata of an I/O object in service (a transport until
 * connection_lost, a server while it serves, a process until it is let
 * go) is kept by a registry reference, which also gives it back to C
 * code holding only its address: one array read. A reference is
 * LUA_NOREF when nothing is anchored: set it so when the object is made,
 * before anything may unanchor it (0 is a reference). */
static inline void aio_anchor(lua_State *L, int *ref, int idx) {
  lua_pushvalue(L, idx);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
}
/* Pushes the anchored userdata (nil when none) and returns its type. */
static inline int aio_anchored(lua_State *L, int ref) {
  return lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
}
static inline void aio_unanchor(lua_State *L, int *ref) {
  luaL_unref(L, LUA_REGISTRYINDEX, *ref); /* LUA_NOREF: nothing */
  *ref = LUA_NOREF;
}

/* Futures waiting on C events, in a registry table keyed by the address
 * of a C object: one future per key (set/take) or a FIFO list (add,
 * remove, wake). Waking completes every pending future with no value;
 * futures of a closed loop are left alone. */
void aio_waiter_set(lua_State *L, const void *key, int fidx);
int aio_waiter_take(lua_State *L, const void *key);
void aio_waiters_add(lua_State *L, const void *key, int fidx);
void aio_waiters_remove(lua_State *L, const void *key, int fidx);
void aio_waiters_wake(lua_State *L, const void *key);
/* Completes the pending future at fidx with no value (0 if it was done
 * or its loop is closed). */
int aio_wake_future(lua_State *L, int fidx);
/* Pushes what is registered under key (nil if nothing) and returns its
 * type; the registration stays. */
int aio_waiter_get(lua_State *L, const void *key);
/* Forgets what is registered under key. */
void aio_waiter_drop(lua_State *L, const void *key);
/* Suspends task t on the new future on top of the stack, added under key
 * (use as `return aio_waiters_await(...)`); k continues as with
 * aio_await_future and starts with aio_waiters_resumed. */
int aio_waiters_await(lua_State *L, aio_task *t, const void *key,
                      lua_KContext ctx, lua_KFunction k);
/* In the continuation of aio_waiters_await, the future at fidx: removes
 * it from key's registrations if a wake-up did not, then raises what the
 * task was thrown (a cancellation) or, if the future was cancelled, its
 * CancelledError. Returns when a wake-up ended the wait. */
void aio_waiters_resumed(lua_State *L, const void *key, int fidx);
/* Pushes the OSError of a failed operation on the path(s) at stack
 * indices p1 and p2 (0: none) as Python shapes it: .filename
 * (.filename2), message "[Errno 2] No such file or directory: 'p'". */
void aio_push_path_error(lua_State *L, int uverr, const char *what, int p1,
                         int p2);
/* Sets SO_REUSEPORT on the socket of h (a TCP or UDP handle that has its
 * socket). Returns a libuv error code. */
int aio_set_reuse_port(uv_handle_t *h);
/* Pushes errors.<name>(message) (an error object, not raised). */
void aio_push_error_named(lua_State *L, const char *name, const char *msg);

/* Addresses (dns.c): a numeric host and port to a sockaddr (returns a
 * libuv error code, UV_EINVAL for a host that is not numeric); a sockaddr
 * to {host, port} (a path string for AF_UNIX). */
int aio_sockaddr_parse(const char *host, int port,
                       struct sockaddr_storage *ss);
void aio_push_sockaddr(lua_State *L, const struct sockaddr *sa);

/* ------------------------------------------------------------------ */
/* Transports and protocols (transport.c, server.c, stream.c)          */

#define AIO_TRANSPORT_MT "asyncio.Transport"
#define AIO_SRP_MT "asyncio.StreamReaderProtocol"

/* The uv half of a stream transport (TCP, Unix socket, pipe): malloc'd,
 * an I/O object of its loop, freed by its handle's close callback. */
typedef struct aio_stream aio_stream;
/* The Lua half: the Transport userdata. It is anchored (kept alive by
 * the registry) from its creation until connection_lost was called. */
typedef struct aio_transport aio_transport;

/* A protocol C drives with no Lua on the data path. The metatable of a C
 * protocol's userdata holds its vtable (a light userdata) under
 * AIO_PROTO_VT; `p` is the userdata's address. Every other protocol
 * value is called through its Lua methods by transport.c. */
#define AIO_PROTO_VT "__aio_protocol"
/* The light userdata under `name` in the metatable of the value at idx
 * (the entries AIO_PROTO_VT, AIO_DATA_FN, AIO_LUA_TRANSPORT_VT and
 * AIO_TRANSPORT_VT publish), or NULL. */
static inline void *aio_metafield_ptr(lua_State *L, int idx,
                                      const char *name) {
  void *p = NULL;
  int type = luaL_getmetafield(L, idx, name);
  if (type == LUA_TLIGHTUSERDATA)
    p = lua_touserdata(L, -1);
  if (type != LUA_TNIL)
    lua_pop(L, 1);
  return p;
}
/* The capacity a byte buffer of capacity cap grows to when it must hold
 * need bytes: at least double, so that growing by small reads costs
 * amortized constant copies (the read buffers of the protocols). */
static inline size_t aio_grown_cap(size_t cap, size_t need) {
  return cap * 2 > need ? cap * 2 : need;
}
#define AIO_READ_CHUNK 65536 /* the room a stream's read needs in the
                                protocol's buffer to land there; with
                                less, it lands in the loop's scratch
                                buffer of this size */
typedef struct aio_proto_vt {
  /* uv context (no Lua): the room after the buffered bytes, made at
   * least `want` long (want 0: the room there is, nothing allocated;
   * len 0 when there is none or memory is short); and that n bytes
   * arrived there; nonzero asks dispatch to call wake (buffer_updated
   * may wake a task itself when it can without Lua:
   * aio_task_try_wake_prim). A read lands in that room when it is
   * AIO_READ_CHUNK long; else in the loop's scratch buffer, and the
   * transport copies the bytes into a room of their size: a connection
   * holds what it was sent, not a read's worth of buffer. */
  void (*get_buffer)(void *p, size_t want, uv_buf_t *buf);
  int (*buffer_updated)(void *p, size_t n);
  void (*wake)(lua_State *L, void *p);
  /* Lua context; the protocol object at pidx; they may raise (the
   * transport reports the error and aborts). eof_received returns true
   * to keep the connection half-open. */
  void (*connection_made)(lua_State *L, void *p, int pidx, int tidx);
  int (*eof_received)(lua_State *L, void *p, int pidx);
  void (*connection_lost)(lua_State *L, void *p, int pidx, int eidx);
  void (*pause_writing)(lua_State *L, void *p, int pidx);
  void (*resume_writing)(lua_State *L, void *p, int pidx);
  /* Nonzero when the data path serves a transport written in Lua too
   * (TLS's, which decrypts into get_buffer's room): wake, called after
   * any buffer_updated that returned nonzero, then does all that the
   * protocol's Lua data_received would, flow control included, and may
   * raise as data_received may. */
  int lua_transports;
} aio_proto_vt;

/* A Lua protocol's data_received in C. A protocol value whose metatable
 * holds, under AIO_DATA_FN, a light userdata pointing to an aio_data_vt
 * has the transports of the core call its data_received entry in place
 * of its data_received method: in protected mode, with the protocol at
 * pidx and the bytes read, valid during the call only (no Lua string).
 * It may raise as the method may. Looked up when the protocol is set.
 * (TLS's SSLProtocol: its hot path needs no Lua call per chunk.) */
#define AIO_DATA_FN "__aio_data_received"
typedef struct aio_data_vt {
  void (*data_received)(lua_State *L, int pidx, const char *data,
                        size_t len);
} aio_data_vt;

/* Entries of a transport written in Lua, for C callers (the stream
 * writer): its metatable holds, under AIO_LUA_TRANSPORT_VT, a light
 * userdata pointing to an aio_lua_transport_vt. Looked up when the writer
 * takes the transport, at tidx in the calls. write does what the
 * transport's write method does with the string at didx, and may raise
 * as the method may; is_closing is the method's answer, read without
 * calling Lua (so a fast path may ask). (TLS's transport: a write on its
 * hot path is encrypted to the socket with no Lua call.) */
#define AIO_LUA_TRANSPORT_VT "__aio_lua_transport"
typedef struct aio_lua_transport_vt {
  void (*write)(lua_State *L, int tidx, int didx);
  int (*is_closing)(lua_State *L, int tidx);
} aio_lua_transport_vt;

/* The data path of a C transport for a battery, which is a shared
 * object of its own and cannot link the core's aio_transport_write: the
 * Transport metatable holds this table of entries, a light userdata,
 * under AIO_TRANSPORT_VT; `t` is the Transport userdata's address. */
#define AIO_TRANSPORT_VT "__aio_transport"
typedef struct aio_transport_vt {
  /* aio_transport_write: may raise as it does */
  void (*write)(lua_State *L, aio_transport *t, const char *data,
                size_t len);
} aio_transport_vt;

/* The transport at idx, or NULL if the value is not one. */
aio_transport *aio_test_transport(lua_State *L, int idx);
/* The arguments (high, low) at 2 and 3 of a set_write_buffer_limits, as
 * asyncio reads them: high defaults to def_high (4 * low when low is
 * given), low to high // 4; raises ValueError unless high >= low >= 0. */
void aio_check_write_limits(lua_State *L, lua_Integer def_high,
                            size_t *high, size_t *low);
/* Data path for C callers (Lua context). write: raises RuntimeError
 * after write_eof; a closing transport drops the data; a failure loses
 * the transport (connection_lost gets the error). */
void aio_transport_write(lua_State *L, aio_transport *t, const char *data,
                         size_t len);
void aio_transport_close(lua_State *L, aio_transport *t);
void aio_transport_abort(lua_State *L, aio_transport *t);
void aio_transport_write_eof(lua_State *L, aio_transport *t);
int aio_transport_is_closing(aio_transport *t);
void aio_transport_pause_reading(aio_transport *t);
void aio_transport_resume_reading(aio_transport *t);
size_t aio_transport_buffer_size(aio_transport *t);
/* Pushes "tcp", "unix" or "pipe". */
const char *aio_transport_kind(aio_transport *t);

/* writelines: replaces the list of strings at idx (the top of the
 * stack) by their concatenation (a number joins as Lua writes it); raises
 * for an item that is neither. */
void aio_join_list(lua_State *L, int idx);

/* A new unconnected stream of `kind` (raises OSError). */
enum { AIO_SK_TCP, AIO_SK_UNIX, AIO_SK_PIPE };
aio_stream *aio_stream_new(lua_State *L, aio_loop *loop, int kind);
uv_stream_t *aio_stream_uv(aio_stream *s);
/* Closes a stream no transport owns yet. */
void aio_stream_abort(aio_stream *s);
/* Pushes a new Transport over the connected stream s (which it owns
 * from now on). ro / wo: a read-only or write-only pipe. */
aio_transport *aio_transport_push(lua_State *L, aio_stream *s, int ro,
                                  int wo);
/* Sets the protocol at pidx on the transport at tidx and starts it:
 * connection_made(transport), then reading; at once (now) or from the
 * ready queue, as asyncio's call_soon. */
void aio_transport_start(lua_State *L, int tidx, int pidx, int now);
/* Server accounting: the server's shared part (server.c). */
typedef struct aio_srvcore aio_srvcore;
void aio_transport_set_server(aio_transport *t, aio_srvcore *c);
void aio_srvcore_detach(lua_State *L, aio_srvcore *c, aio_transport *t);
/* Closes (abort: aborts) every transport linked in the list at *head
 * (server.c's close_clients / abort_clients). */
aio_transport *aio_transport_next_client(aio_transport *t);
void aio_transport_link_client(aio_transport **head, aio_transport *t);
void aio_transport_unlink_client(aio_transport **head, aio_transport *t);

/* Raises OSError "AF_UNIX path too long" (with .filename) when the path
 * at idx does not fit a socket address. */
void aio_check_unix_path(lua_State *L, int idx);
/* For server.c's accept: a new stream or NULL (never raises). */
aio_stream *aio_stream_alloc(aio_loop *loop, int kind);

/* Stream helpers for process.c (stream.c): the StreamReader of a pipe
 * (limit 0: the default) and the StreamWriter of one. They push it. */
void aio_stream_push_reader(lua_State *L, aio_stream *s, size_t limit);
void aio_stream_push_writer(lua_State *L, aio_stream *s);
/* The `limit` field of the options table at idx (0: none given). */
size_t aio_opt_limit(lua_State *L, int idx);

/* ------------------------------------------------------------------ */
/* Module registration (core.c and each file's opener)                 */

AIO_EXPORT int luaopen_asyncio_core(lua_State *L);

/* Each opener adds its functions to the module table on top. */
void aio_open_errors(lua_State *L);
void aio_open_loop(lua_State *L);
void aio_open_handle(lua_State *L);
void aio_open_timer(lua_State *L);
void aio_open_future(lua_State *L);
void aio_open_coro(lua_State *L);
void aio_open_signal(lua_State *L);
void aio_open_locks(lua_State *L);
void aio_open_queue(lua_State *L);
void aio_open_stream(lua_State *L);
void aio_open_transport(lua_State *L);
void aio_open_server(lua_State *L);
void aio_open_udp(lua_State *L);
void aio_open_process(lua_State *L);
void aio_open_dns(lua_State *L);
void aio_open_fs(lua_State *L);
void aio_open_threads(lua_State *L);
void aio_open_cfuture(lua_State *L);
void aio_open_executor(lua_State *L);
void aio_open_channel(lua_State *L);

/* Registers `methods` in a new metatable `name` (as __index) together
 * with `metamethods` and the kind tag; leaves the stack unchanged. */
void aio_newclass(lua_State *L, const char *name, aio_kind kind,
                  const luaL_Reg *methods, const luaL_Reg *metamethods);

/* Signal watching (signal.c). The uv callbacks only count signals; the
 * iteration turns the counts into ready entries (dispatch). */
void aio_signal_loop_started(lua_State *L, aio_loop *loop);
void aio_signal_loop_stopped(lua_State *L, aio_loop *loop);
void aio_signal_dispatch(lua_State *L, aio_loop *loop);
/* While a loop runs, in the main thread, a signal the script does not
 * handle and whose disposition is the default: an unref'd watcher calling
 * cb (NULL when any of that is not so, or out of memory). */
uv_signal_t *aio_default_watch(aio_loop *loop, int signum,
                               uv_signal_cb cb);

/* The task dump's core part (dump.c): the loop userdata on top joins the
 * state's list of loops; the SIGQUIT and hang triggers start and stop
 * with a run; dispatch prints the dump when one fired. */
void aio_dump_register_loop(lua_State *L);
void aio_dump_loop_started(aio_loop *loop);
void aio_dump_loop_stopped(aio_loop *loop);
void aio_dump_sigquit_taken(aio_loop *loop);
void aio_dump_dispatch(lua_State *L, aio_loop *loop);
void aio_open_dump(lua_State *L);
void aio_signal_close_all(lua_State *L, aio_loop *loop);
/* The signal number at idx: an integer, or a name of asyncio.signals
 * ("SIGTERM"); raises ValueError for an unknown name. */
int aio_check_signal(lua_State *L, int idx);

/* ------------------------------------------------------------------ */
/* Memory (mem.c)                                                      */

/* Every C allocation of the core module goes through aio_mem, which is
 * libc's malloc family unless a test harness replaced it
 * (tools/alloc/allocfail.c fails allocation N to test every failure
 * path). The macros below route the usual names there; mem.c itself
 * defines AIO_MEM_IMPL to see libc's. Memory from these functions is
 * always freed with free() here, never by another library.
 *
 * A battery (AIO_BATTERY, set by the Makefile) is a shared object of its
 * own: `require` loads it with RTLD_LOCAL, so it cannot see the core's
 * hidden aio_mem, and uses libc's allocator directly. No allocation
 * crosses between a battery and the core. */
#include <stdlib.h>

typedef struct aio_allocator {
  void *(*alloc)(size_t size);
  void *(*zalloc)(size_t n, size_t size);
  void *(*resize)(void *p, size_t size);
  void (*release)(void *p);
} aio_allocator;

extern aio_allocator aio_mem;

#if !defined(AIO_MEM_IMPL) && !defined(AIO_BATTERY)
#define malloc(size) (aio_mem.alloc(size))
#define calloc(n, size) (aio_mem.zalloc((n), (size)))
#define realloc(p, size) (aio_mem.resize((p), (size)))
#define free(p) (aio_mem.release(p))
#endif

#endif
