/*
 * luaio.h - the embedding API of luaio: asyncio for Lua 5.4 on libuv.
 *
 * A program (a game, a tool) either opens the library in a lua_State of
 * its own making:
 *
 *     lua_State *L = luaL_newstate();
 *     luaL_openlibs(L);
 *     luaio_openlibs(L);          -- require "asyncio" now works
 *
 * or creates a host, which owns (or attaches to) a lua_State and an event
 * loop, and drives the loop itself: to completion with luaio_run, or one
 * bounded step per frame with luaio_step. Other threads hand work to the
 * loop with posters and resolve futures with luaio_future handles; both
 * stay safe to use after the host is closed (they then fail).
 *
 * Threading: every function taking a luaio_host must be called from the
 * thread that created it; luaio_poster_post, luaio_post and the
 * luaio_future_resolve* / reject / cancel functions may be called from
 * any thread.
 */
#ifndef LUAIO_H
#define LUAIO_H

#include <stddef.h>

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUAIO_VERSION_STRING "0.1.0"
#define LUAIO_API __attribute__((visibility("default")))

/* Errors returned by the functions below (0 is success). */
#define LUAIO_OK 0
#define LUAIO_ERROR -1     /* a Lua error: see luaio_last_error() */
#define LUAIO_CLOSED -2    /* the loop is closed: nothing was done */
#define LUAIO_NOMEM -3
#define LUAIO_FULL -4      /* the post limit is reached: nothing was done */

/* Makes require "asyncio" (and its submodules) available in L without any
 * file on disk: the C core is registered in package.preload and the Lua
 * sources are embedded. Leaves the stack unchanged. */
LUAIO_API void luaio_openlibs(lua_State *L);

/* The C core's opener, for hosts that prefer their own preloading. */
LUAIO_API int luaopen_asyncio_core(lua_State *L);

typedef struct luaio_host luaio_host;

/* Called with the text the default handler would print: the message, the
 * context and the error's traceback. */
typedef void (*luaio_error_fn)(luaio_host *h, const char *text, void *ud);
/* A host clock: seconds, monotonic while running; it may pause or scale. */
typedef double (*luaio_clock_fn)(void *ud);

typedef struct luaio_config {
  lua_State *L;          /* attach to this state (NULL: a new one, with the
                            standard libraries); it stays the caller's */
  void *uv_loop;         /* a uv_loop_t* to run on (NULL: one of its own) */
  luaio_clock_fn clock;  /* NULL: the monotonic clock */
  void *clock_ud;
  luaio_error_fn on_error; /* NULL: errors are printed on stderr */
  void *on_error_ud;
  int watch_sigint;      /* 1: Ctrl-C reaches the loop as in the CLI */
} luaio_config;

/* Creates a host (cfg may be NULL for the defaults). The loop is the
 * state's current loop: asyncio.get_event_loop() returns it. Returns NULL
 * when out of memory. */
LUAIO_API luaio_host *luaio_host_new(const luaio_config *cfg);
LUAIO_API lua_State *luaio_state(luaio_host *h);

/* Runs a chunk as plain Lua (it may create tasks, which run when the loop
 * runs). LUAIO_OK or LUAIO_ERROR. */
LUAIO_API int luaio_dostring(luaio_host *h, const char *code,
                             const char *name);
LUAIO_API int luaio_dofile(luaio_host *h, const char *path);
/* Runs a chunk as a new task (so it may await); it starts at the next
 * step. The chunk's own errors go to the exception handler when the task
 * fails; compile errors return LUAIO_ERROR; LUAIO_CLOSED when Lua closed
 * the loop (nothing is done). */
LUAIO_API int luaio_spawn(luaio_host *h, const char *code, const char *name);

/* Runs the loop until no task is pending and nothing is scheduled (it
 * blocks while waiting for timers, I/O or posts). LUAIO_OK, LUAIO_ERROR
 * when a KeyboardInterrupt-class error left the loop (or when called
 * from inside the loop, a callback or a task of it: "This event loop is
 * already running", nothing is run), or LUAIO_CLOSED when Lua closed the
 * loop (loop:close()): nothing was run. luaio_step refuses the same way. */
LUAIO_API int luaio_run(luaio_host *h);

/* One bounded step: runs the work that is ready and the timers that are
 * due, polls I/O, and returns after at most budget_ms milliseconds of
 * waiting (it never waits when work is ready; with nothing to do, it
 * waits for an event, and a wake-up left by posts an earlier iteration
 * ran is none). A positive budget also bounds the run of ready work,
 * looked at every 16 callbacks or task steps: what is left stays
 * queued, in order, for the next step (0 runs one whole iteration).
 * Returns the milliseconds until the next timer deadline, 0 when work
 * is ready now, -1 when nothing is scheduled, or, below -1, a code
 * minus one: LUAIO_ERROR - 1 when an error left the loop (see
 * luaio_last_error()), LUAIO_CLOSED - 1 when Lua closed the loop. */
LUAIO_API double luaio_step(luaio_host *h, double budget_ms);

/* Supplies (or, with NULL, removes) the host clock. */
LUAIO_API void luaio_set_clock(luaio_host *h, luaio_clock_fn clock,
                               void *ud);
/* Installs the error handler (NULL: print on stderr). It is called only
 * while the host is open: a report made after luaio_host_close in a state
 * that lives on (a failed task it kept, collected later) is printed on
 * stderr. */
LUAIO_API void luaio_set_error_handler(luaio_host *h, luaio_error_fn fn,
                                       void *ud);
/* The message of the last LUAIO_ERROR (valid until the next call). */
LUAIO_API const char *luaio_last_error(luaio_host *h);

/* Closes the host: pending tasks are cancelled and the loop runs until
 * they are done (their cleanup may await timers and I/O), for one second
 * of real time at most; those still pending then are reported as
 * destroyed. Then executors are shut down, handles closed, and the state
 * closed if the host created it. On a uv_loop_t of the program's
 * (luaio_config.uv_loop), luaio's handles are closing when this returns:
 * the program's next uv_run finishes them (before uv_loop_close). h may be
 * NULL (nothing is done). */
LUAIO_API void luaio_host_close(luaio_host *h);

/* A C callback run on the loop's thread, as a ready callback (FIFO with
 * call_soon), with the host's state; L is NULL when the loop closed before
 * it could run (then only release ud). */
typedef void (*luaio_callback)(lua_State *L, void *ud);

/* Posters let any thread hand callbacks to a host's loop; never lost,
 * never coalesced. A poster outlives its host safely. Posting returns
 * LUAIO_OK, LUAIO_NOMEM, LUAIO_CLOSED when the loop is closed already
 * (fn is then not called at all), or LUAIO_ERROR for a NULL fn (nothing
 * is queued).
 *
 * By default the queue of posted callbacks is unbounded: posters never
 * wait, and memory grows while they outpace the loop. With a post limit
 * (luaio_set_post_limit) at most `maxsize` posted callbacks wait to run
 * (posted, not yet started): luaio_poster_post and luaio_post called from
 * another thread then wait until the loop has started enough of them to
 * be down to maxsize / 2 (or closed: LUAIO_CLOSED), and
 * luaio_poster_trypost returns LUAIO_FULL at once
 * without queueing anything. On the loop's own thread (the one that
 * created the host) posting never waits, as waiting would deadlock: the
 * post is queued beyond the limit (trypost still returns LUAIO_FULL). The
 * limit also applies to call_soon_threadsafe through a loop reference
 * from Lua threads (asyncio.threadsafe functions have their own maxsize).
 * A thread that waits is not woken in any particular order with others;
 * each thread's own posts run in the order it made them. While the host
 * thread blocks in luaio's own waits (joining executor workers, a Lua
 * cf:result or Channel get/put) the limit is lifted; a host thread that
 * blocks in its own code (pthread_join of a posting thread) must drive
 * the loop or have that thread use luaio_poster_trypost. */
typedef struct luaio_poster luaio_poster;
LUAIO_API luaio_poster *luaio_poster_new(luaio_host *h);
LUAIO_API int luaio_poster_post(luaio_poster *p, luaio_callback fn,
                                void *ud);
/* Never waits: LUAIO_FULL when the post limit is reached. */
LUAIO_API int luaio_poster_trypost(luaio_poster *p, luaio_callback fn,
                                   void *ud);
LUAIO_API void luaio_poster_free(luaio_poster *p);
/* Shorthand for posting while the host is known to be alive. */
LUAIO_API int luaio_post(luaio_host *h, luaio_callback fn, void *ud);

/* Sets the post limit (0: unbounded, the default); raising it or setting
 * 0 lets waiting posters go on. Posts made while no limit is set are not
 * counted. Host thread only. */
LUAIO_API void luaio_set_post_limit(luaio_host *h, size_t maxsize);
typedef struct luaio_post_stats {
  size_t maxsize;        /* the limit (0: none) */
  size_t queued;         /* counted posts not yet started */
  size_t peak;           /* the most counted posts queued at once */
  unsigned long waited;  /* posts that had to wait (or got LUAIO_FULL) */
} luaio_post_stats;
/* Any thread. */
LUAIO_API void luaio_get_post_stats(luaio_host *h, luaio_post_stats *st);

/* A Future created from C: luaio_future_new pushes it on L (the thread
 * the caller runs in, e.g. inside a C function called from a task; NULL
 * for the host's main thread) and returns a handle with which any thread
 * completes it exactly once (NULL on error: see luaio_last_error()).
 * Completing consumes the handle, whatever it returns but LUAIO_NOMEM:
 * LUAIO_OK, or LUAIO_CLOSED when the loop is closed already. A NULL
 * handle (a failed luaio_future_new) returns LUAIO_ERROR and does nothing
 * else (push is not called). */
typedef struct luaio_future luaio_future;
typedef void (*luaio_push_fn)(lua_State *L, void *ud); /* pushes values */
LUAIO_API luaio_future *luaio_future_new(luaio_host *h, lua_State *L);
/* The values are pushed by push(L, ud) on the loop's thread (push may be
 * NULL for no value); if the loop closed meanwhile push is called with
 * L == NULL so that ud can be released. */
LUAIO_API int luaio_future_resolve(luaio_future *f, luaio_push_fn push,
                                   void *ud);
/* The string is copied; NULL resolves with nil. */
LUAIO_API int luaio_future_resolve_string(luaio_future *f, const char *s);
LUAIO_API int luaio_future_resolve_number(luaio_future *f, double n);
/* Completes with asyncio.RuntimeError(message) (message copied; NULL:
 * asyncio.RuntimeError() with no message). */
LUAIO_API int luaio_future_reject(luaio_future *f, const char *message);
LUAIO_API int luaio_future_cancel(luaio_future *f);

#ifdef __cplusplus
}
#endif

#endif
