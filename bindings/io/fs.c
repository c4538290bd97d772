/*
 * fs.c - the file system on libuv's file requests (uv_fs_*), for
 * asyncio.fs (lua/asyncio/fs.lua, which builds the public File and
 * functions on these).
 *
 * Every operation is a C Coroutine object (aio_ccoro_method); awaited, it
 * starts one uv_fs_* request, which runs on libuv's thread pool, and
 * suspends the task until the request's callback fires: the loop never
 * waits on a disk. A request is an I/O object without a handle (aio_io
 * with handle NULL, as getaddrinfo's in dns.c) in the loop's list, so that
 * closing the loop cancels it. Whoever finishes last frees it: the
 * awaiting task after reading the answer, or the uv callback when the
 * task went away first (cancelled, or its loop closed).
 *
 * An open file is a FileDescriptor userdata pointing at a malloc'd fsfile
 * that every request using it holds a reference to. A request given up by
 * its task may still run on the pool: until it ends, the file's next
 * request waits (so a cancelled write cannot land after a later one) and
 * closing it is deferred (so the descriptor is never closed, and its
 * number reused, under a running read or write).
 *
 * Failures raise the OSError kin shaped as Python's:
 * "[Errno 2] No such file or directory: 'x'", with .errno, .strerror,
 * .filename (and .filename2 for two paths) and libuv's .name.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define AIO_FSFD_MT "asyncio.FileDescriptor"

/* ------------------------------------------------------------------ */
/* Open files                                                          */

typedef struct fsfile {
  uv_file fd;             /* -1 once closed (or its close issued) */
  unsigned refs;          /* the userdata's, and one per request */
  unsigned inflight;      /* requests started and not ended */
  unsigned char closing;  /* close when the last request in flight ends */
  unsigned char stream;   /* no positions (a pipe, a FIFO, a terminal, a
                             socket: its first fstat said so): a read or
                             a write of it may wait for ever */
} fsfile;

static void close_req_done(uv_fs_t *req) {
  uv_fs_req_cleanup(req);
  free(req);
}

/* Closes f's descriptor without a waiter: a close request on `uv` when
 * there is one (its callback frees it), else close(2) at once (no loop
 * to keep going). */
static void file_close_now(uv_loop_t *uv, fsfile *f) {
  uv_fs_t *req;
  uv_file fd = f->fd;
  f->fd = -1;
  f->closing = 0;
  if (fd < 0)
    return;
  req = uv ? malloc(sizeof *req) : NULL;
  if (req == NULL || uv_fs_close(uv, req, fd, close_req_done) != 0) {
    free(req);
    close(fd);
  }
}

static void file_unref(fsfile *f) {
  if (--f->refs == 0)
    free(f);
}

/* The fsfile of the FileDescriptor at idx; NULL once it was finalized
 * (a File finalized in the same cycle may come after it). */
static fsfile *to_file(lua_State *L, int idx) {
  return *(fsfile **)luaL_checkudata(L, idx, AIO_FSFD_MT);
}

/* The open fsfile of the FileDescriptor at idx; a closed one raises
 * Python's ValueError, as the File above it does. */
static fsfile *check_fd(lua_State *L, int idx) {
  fsfile **p = luaL_checkudata(L, idx, AIO_FSFD_MT);
  if (*p == NULL || (*p)->fd < 0 || (*p)->closing)
    aio_raisef(L, AIO_E_VALUE, "I/O operation on closed file.");
  return *p;
}

/* Pushes a FileDescriptor for fd; the userdata holds one reference. */
static void push_fd(lua_State *L, uv_file fd) {
  fsfile **p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = calloc(1, sizeof **p);
  if (*p == NULL) {
    close(fd);
    luaL_error(L, "not enough memory");
  }
  (*p)->fd = fd;
  (*p)->refs = 1;
  luaL_setmetatable(L, AIO_FSFD_MT);
}

static void file_close_detached(aio_loop *loop, fsfile *f);

/* fd:close_detached(): closes without waiting; a request in flight
 * delays it until it ends. Closing twice does nothing. */
static int l_fd_close_detached(lua_State *L) {
  fsfile *f = to_file(L, 1);
  aio_loop *loop;
  if (f == NULL || f->fd < 0 || f->closing)
    return 0;
  if (f->inflight > 0) {
    f->closing = 1;
    return 0;
  }
  loop = aio_running_loop(L);
  file_close_detached(loop, f);
  return 0;
}

static int l_fd__gc(lua_State *L) {
  fsfile **p = luaL_checkudata(L, 1, AIO_FSFD_MT);
  if (*p == NULL)
    return 0;
  l_fd_close_detached(L);
  file_unref(*p);
  *p = NULL;
  return 0;
}

/* fd:fileno() -> the descriptor number, or nil once closed. */
static int l_fd_fileno(lua_State *L) {
  fsfile *f = to_file(L, 1);
  if (f == NULL || f->fd < 0 || f->closing)
    lua_pushnil(L);
  else
    lua_pushinteger(L, f->fd);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

typedef enum {
  OP_OPEN, OP_CLOSE, OP_READ, OP_WRITE, OP_FSTAT, OP_FSYNC, OP_FTRUNCATE,
  OP_STAT, OP_LSTAT, OP_EXISTS, OP_MKDIR, OP_RMDIR, OP_UNLINK, OP_RENAME,
  OP_SCANDIR, OP_MKDTEMP, OP_REALPATH, OP_CHMOD, OP_READLINK, OP_SENDFILE,
  OP_COUNT
} fsop;

static const char *const op_names[OP_COUNT] = {
    "open",  "close", "read",  "write",  "fstat",    "fsync",   "ftruncate",
    "stat",  "lstat", "exists", "mkdir", "rmdir",    "unlink",  "rename",
    "scandir", "mkdtemp", "realpath", "chmod", "readlink", "sendfile"};

/* A write of BORROW_MIN bytes or more awaited on a loop that owns its
 * libuv loop writes the Lua string itself instead of a copy: the string
 * is kept in the loop's ANCHORS table until the request ends, released
 * by whoever sees its end in Lua context (fs_finish; fs_dispatch or
 * fs_abandon for a request its task gave up; fs_await when the request
 * could not start). A loop that closes runs its requests to their end
 * before it drops that table, except those that may never end (see
 * count_endless), which never borrow. Other writes (smaller ones,
 * detached ones, those of streams, and those on a host's libuv loop,
 * whose requests may end after the Lua state) write a copy. */
#define BORROW_MIN 4096

/* An open's state, between the pool thread that opens and the loop that
 * may give the answer up (open_work) */
enum { OPEN_RUNNING, OPEN_DONE, OPEN_GIVEN_UP };

typedef struct fsreq {
  aio_io io;
  uv_fs_t req;           /* its result: req.result (an open's too) */
  uv_work_t work;        /* an open's: open_work on the pool */
  char *path;            /* an open's path (owned) */
  int flags;             /* an open's flags */
  _Atomic int ostate;    /* an open's OPEN_* */
  fsfile *file;          /* a reference, or NULL */
  fsfile *file2;         /* a sendfile's source: a reference, or NULL */
  char *buf;             /* owned: the read target or the written copy */
  int64_t after;         /* append write: the descriptor's offset after */
  int anchor;            /* the written string's ref in ANCHORS, or 0 */
  unsigned char op, done, abandoned;
  unsigned char detached; /* a write nobody awaits: failures are reported */
  unsigned char endless;  /* counted in its loop's endless_reqs */
} fsreq;

static void fsreq_free(fsreq *r) {
  uv_fs_req_cleanup(&r->req);
  free(r->path);
  free(r->buf);
  if (r->file)
    file_unref(r->file);
  if (r->file2)
    file_unref(r->file2);
  aio_io_release(&r->io);
}

/* Keeps the string at stack index sidx in loop's ANCHORS table for a
 * request that writes it; returns its ref there. Raises only memory
 * errors. */
static int anchor_string(lua_State *L, aio_loop *loop, int sidx) {
  int ref;
  sidx = lua_absindex(L, sidx);
  aio_push_env_table(L, loop, AIO_ENV_ANCHORS);
  lua_pushvalue(L, sidx);
  ref = luaL_ref(L, -2);
  lua_pop(L, 1);
  return ref;
}

/* Releases what anchor_string kept (in Lua context, the loop open). */
static void release_anchor(lua_State *L, fsreq *r) {
  if (r->anchor == 0)
    return;
  aio_push_env(L, r->io.loop, AIO_ENV_ANCHORS);
  if (lua_istable(L, -1))
    luaL_unref(L, -1, r->anchor);
  lua_pop(L, 1);
  r->anchor = 0;
}

/* The request r, which used f, ended (in its uv callback): f may close
 * now. */
static void file_release(fsreq *r, fsfile *f) {
  if (--f->inflight == 0 && f->closing) {
    if (r->io.loop && !r->io.loop->closed)
      file_close_detached(r->io.loop, f);
    else
      file_close_now(r->req.loop, f); /* the loop is closing */
  }
}

/* The request ended (in its uv callback): its files may close now. */
static void file_settle(fsreq *r) {
  fsfile *f = r->file;
  if (f == NULL)
    return;
  if (r->op == OP_WRITE && r->req.result >= 0 && f->fd >= 0 &&
      r->after == -1)
    r->after = (int64_t)lseek(f->fd, 0, SEEK_CUR);
  file_release(r, f);
  if (r->file2)
    file_release(r, r->file2);
}

/* Wakes the tasks that wait for r's files to be idle (in Lua context,
 * once r ended). */
static void wake_files(lua_State *L, fsreq *r) {
  if (r->file && r->file->inflight == 0)
    aio_waiters_wake(L, r->file);
  if (r->file2 && r->file2->inflight == 0)
    aio_waiters_wake(L, r->file2);
}

static void drop_result(fsreq *r);
static void push_fs_error(lua_State *L, int err, const char *op, int p1,
                          int p2);

/* The request r, done, tells its file what it learnt: an fstat whether
 * the file has positions. */
static void note_file_kind(fsreq *r) {
  if (r->op == OP_FSTAT && r->file && r->req.result >= 0) {
    uint64_t fmt = r->req.statbuf.st_mode & S_IFMT;
    r->file->stream = fmt != S_IFREG && fmt != S_IFBLK && fmt != S_IFDIR;
  }
}

/* ------------------------------------------------------------------ */
/* Requests that may never end, and the process's exit                 */

/* Such requests in flight in the whole process (a loop that closed
 * without them never sees them end: they stay counted). libuv's own
 * destructor, run by exit(), joins its pool's threads: it would wait for
 * ever for one of them, so end_process ends the process before it. */
static _Atomic unsigned long endless_in_flight;
static int exit_status;
static _Atomic int exiting;
static pthread_once_t exit_watch = PTHREAD_ONCE_INIT;

/* on_exit handler: exit() has begun, with that status. */
static void note_exit(int status, void *arg) {
  (void)arg;
  exit_status = status;
  atomic_store(&exiting, 1);
}

/* Once, when the first such request starts: note_exit watches exit(),
 * and this library stays loaded until the process ends (unloaded, by
 * lua_close's dlclose, it would run its destructors and libuv's join
 * then). */
static void watch_exit(void) {
#ifdef __GLIBC__
  Dl_info info;
  on_exit(note_exit, NULL);
  if (dladdr((void *)&note_exit, &info) && info.dli_fname != NULL)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
}

/* Runs after exit()'s handlers, with the destructors of the objects that
 * use libuv, before libuv's: with such a request still in flight, the
 * process ends here with its exit status, its streams flushed. */
__attribute__((destructor)) static void end_process(void) {
  if (!atomic_load(&exiting) || atomic_load(&endless_in_flight) == 0)
    return;
  fflush(NULL);
  _exit(exit_status);
}

/* Counts the started request r among its loop's endless_reqs and the
 * process's, until it ends (on_fs_done), when it may wait for ever: an
 * open (of a FIFO, it waits for the other end), a read or write of a
 * stream. */
static void count_endless(fsreq *r) {
  int stream_io = ((r->file && r->file->stream) ||
                   (r->file2 && r->file2->stream)) &&
                  (r->op == OP_READ || r->op == OP_WRITE ||
                   r->op == OP_SENDFILE);
  if ((r->op == OP_OPEN || stream_io) && r->io.loop) {
    pthread_once(&exit_watch, watch_exit);
    r->endless = 1;
    r->io.loop->endless_reqs++;
    atomic_fetch_add(&endless_in_flight, 1);
  }
}

/* r ended: it no longer counts. */
static void uncount_endless(fsreq *r) {
  if (!r->endless)
    return;
  r->endless = 0;
  if (r->io.loop)
    r->io.loop->endless_reqs--;
  atomic_fetch_sub(&endless_in_flight, 1);
}

static void on_fs_done(uv_fs_t *req) {
  fsreq *r = req->data;
  r->done = 1;
  uncount_endless(r);
  note_file_kind(r);
  file_settle(r);
  if (!r->abandoned) {
    aio_io_notify(&r->io, 1); /* dispatch wakes the awaiting task */
    return;
  }
  drop_result(r);
  if (r->file && r->io.loop && !r->io.loop->closed)
    aio_io_notify(&r->io, 1); /* dispatch wakes the file's waiters */
  else
    fsreq_free(r);
}

static void fs_dispatch(lua_State *L, aio_io *io, unsigned ev) {
  fsreq *r = (fsreq *)io;
  (void)ev;
  if (!r->abandoned) {
    aio_waiters_wake(L, io);
    return;
  }
  release_anchor(L, r);
  wake_files(L, r);
  if (r->detached && r->req.result < 0 && r->io.loop) {
    aio_loop *loop = r->io.loop;
    int closing = r->op == OP_CLOSE;
    push_fs_error(L, (int)r->req.result, op_names[r->op], 0, 0);
    fsreq_free(r);
    aio_report_error(L, loop, closing ? "asyncio.File failed to close"
                     : "asyncio.File lost data written before it closed",
                     -1, NULL, 0);
    lua_pop(L, 1);
    return;
  }
  fsreq_free(r);
}

/* An open that succeeded for nobody: its descriptor is closed. */
static void drop_result(fsreq *r) {
  if (r->op == OP_OPEN && r->req.result >= 0) {
    fsfile tmp = {0};
    tmp.fd = (uv_file)r->req.result;
    file_close_now(r->req.loop, &tmp);
    r->req.result = UV_EBADF;
  }
}

/* Gives the request up (its task is leaving, or its loop closing): the
 * callback frees it. A close is never cancelled (the descriptor would
 * stay open), nor a detached write (its data would be lost). An open
 * under way closes what it opens itself (open_work): its loop may be
 * left before the callback runs (a closing loop leaves the requests that
 * may never end, as an open of a FIFO). */
static void fs_abandon(lua_State *L, fsreq *r) {
  r->abandoned = 1;
  if (r->done) {
    release_anchor(L, r);
    drop_result(r);
    fsreq_free(r);
  } else if (r->op == OP_OPEN) {
    atomic_store(&r->ostate, OPEN_GIVEN_UP); /* OPEN_DONE: the callback */
    uv_cancel((uv_req_t *)&r->work);         /* closes it */
  } else if (r->op != OP_CLOSE && !r->detached)
    uv_cancel((uv_req_t *)&r->req);
}

/* The loop closes: nobody will read the answer. */
static void fs_shut(lua_State *L, aio_io *io) {
  aio_waiter_drop(L, io);
  fs_abandon(L, (fsreq *)io);
}

/* Sets up the zeroed request r for op and puts it in loop's list; a
 * detached request has no waiter from the start. */
static void fsreq_init(fsreq *r, aio_loop *loop, fsop op, int detached) {
  r->req.data = r;
  r->op = (unsigned char)op;
  r->abandoned = r->detached = (unsigned char)detached;
  r->io.shut = fs_shut;
  r->io.dispatch = fs_dispatch;
  aio_io_link(loop, &r->io, NULL);
}

/* A started request uses f: it holds a reference and counts in flight
 * until it ends (file_release). */
static void file_hold(fsfile *f) {
  f->refs++;
  f->inflight++;
}

/* The started request r uses f (as r->file). */
static void fsreq_hold(fsreq *r, fsfile *f) {
  r->file = f;
  file_hold(f);
}

/* A new request of task t's loop for op, in the loop's list; the caller
 * sets r->file when the request uses an open file (fs_await takes the
 * reference once the request started). Raises on memory errors. */
static fsreq *fsreq_new(lua_State *L, aio_task *t, fsop op) {
  fsreq *r = calloc(1, sizeof *r);
  if (r == NULL) {
    luaL_error(L, "not enough memory");
    return NULL;
  }
  fsreq_init(r, t->fut.loop, op, 0);
  return r;
}

/* Closes f's descriptor without a waiter. With an open loop, a close
 * request nobody awaits, counted in flight for f (so that _fs_wait_idle
 * sees it end; a failure goes to the exception handler); else close(2)
 * at once (or a plain request, see file_close_now). */
static void file_close_detached(aio_loop *loop, fsfile *f) {
  uv_file fd = f->fd;
  fsreq *r;
  if (fd < 0)
    return;
  if (loop == NULL || loop->closed || (r = calloc(1, sizeof *r)) == NULL) {
    file_close_now(NULL, f);
    return;
  }
  f->fd = -1;
  f->closing = 0;
  fsreq_init(r, loop, OP_CLOSE, 1);
  if (uv_fs_close(loop->uv, &r->req, fd, on_fs_done) != 0) {
    fsreq_free(r);
    close(fd);
    return;
  }
  fsreq_hold(r, f);
}

/* ------------------------------------------------------------------ */
/* Results                                                             */

static const char *type_of_mode(uint64_t mode) {
  switch (mode & S_IFMT) {
  case S_IFREG: return "file";
  case S_IFDIR: return "directory";
  case S_IFLNK: return "link";
  case S_IFIFO: return "fifo";
  case S_IFSOCK: return "socket";
  case S_IFCHR: return "char";
  case S_IFBLK: return "block";
  default: return "unknown";
  }
}

static const char *type_of_dirent(uv_dirent_type_t t) {
  switch (t) {
  case UV_DIRENT_FILE: return "file";
  case UV_DIRENT_DIR: return "directory";
  case UV_DIRENT_LINK: return "link";
  case UV_DIRENT_FIFO: return "fifo";
  case UV_DIRENT_SOCKET: return "socket";
  case UV_DIRENT_CHAR: return "char";
  case UV_DIRENT_BLOCK: return "block";
  default: return "unknown";
  }
}

static void set_time(lua_State *L, const char *k, uv_timespec_t ts) {
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/* Pushes {size, mtime, atime, ctime, mode, type, ...} (Python's st_*
 * names without the prefix; times in seconds). */
static void push_stat(lua_State *L, const uv_stat_t *s) {
  lua_createtable(L, 0, 12);
  set_int(L, "size", s->st_size);
  set_time(L, "mtime", s->st_mtim);
  set_time(L, "atime", s->st_atim);
  set_time(L, "ctime", s->st_ctim);
  set_time(L, "birthtime", s->st_birthtim);
  set_int(L, "mode", s->st_mode);
  lua_pushstring(L, type_of_mode(s->st_mode));
  lua_setfield(L, -2, "type");
  set_int(L, "ino", s->st_ino);
  set_int(L, "dev", s->st_dev);
  set_int(L, "nlink", s->st_nlink);
  set_int(L, "uid", s->st_uid);
  set_int(L, "gid", s->st_gid);
}

/* Pushes the list of {name, type} of a scandir request. */
static void push_entries(lua_State *L, uv_fs_t *req) {
  uv_dirent_t ent;
  lua_Integer i = 0;
  lua_newtable(L);
  while (uv_fs_scandir_next(req, &ent) == 0) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ent.name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, type_of_dirent(ent.type));
    lua_setfield(L, -2, "type");
    lua_rawseti(L, -2, ++i);
  }
}

/* Pushes the OSError of a failed request as Python shapes it; the paths
 * are the strings at stack indices p1 and p2 (0: none). */
static void push_fs_error(lua_State *L, int err, const char *op, int p1,
                          int p2) {
  aio_push_path_error(L, err, op, p1, p2);
}

/* Whether op's stack index 1 (and 2) are paths for error messages. */
static int op_paths(fsop op) {
  switch (op) {
  case OP_CLOSE: case OP_READ: case OP_WRITE: case OP_FSTAT:
  case OP_FSYNC: case OP_FTRUNCATE: case OP_SENDFILE:
    return 0;
  case OP_RENAME:
    return 2;
  default:
    return 1;
  }
}

/* The request r is done and the task reads its answer, with the body's
 * arguments at 1..n: pushes the results (or raises), freeing r. */
static int fs_finish(lua_State *L, fsreq *r) {
  ssize_t res = r->req.result;
  int nres = 0;
  release_anchor(L, r);
  wake_files(L, r);
  if (r->op == OP_EXISTS) {
    lua_pushboolean(L, res >= 0);
    fsreq_free(r);
    return 1;
  }
  if (res < 0) {
    int np = op_paths((fsop)r->op);
    push_fs_error(L, (int)res, op_names[r->op], np > 0 ? 1 : 0,
                  np > 1 ? 2 : 0);
    fsreq_free(r);
    return lua_error(L);
  }
  switch (r->op) {
  case OP_OPEN:
    push_fd(L, (uv_file)res);
    nres = 1;
    break;
  case OP_READ:
    lua_pushlstring(L, r->buf, (size_t)res);
    nres = 1;
    break;
  case OP_WRITE:
    lua_pushinteger(L, (lua_Integer)res);
    nres = 1;
    if (r->after != 0) { /* an append: where the descriptor is now */
      lua_pushinteger(L, (lua_Integer)r->after);
      nres = 2;
    }
    break;
  case OP_FSTAT: case OP_STAT: case OP_LSTAT:
    push_stat(L, &r->req.statbuf);
    nres = 1;
    break;
  case OP_SCANDIR:
    push_entries(L, &r->req);
    nres = 1;
    break;
  case OP_MKDTEMP:
    lua_pushstring(L, r->req.path);
    nres = 1;
    break;
  case OP_REALPATH: case OP_READLINK:
    lua_pushstring(L, r->req.ptr);
    nres = 1;
    break;
  case OP_SENDFILE:
    lua_pushinteger(L, (lua_Integer)res);
    nres = 1;
    break;
  default:
    break;
  }
  fsreq_free(r);
  return nres;
}

/* Continuation of an awaited request: [args..., r, future]; ctx is the
 * index of r. */
static int fs_k(lua_State *L, int status, lua_KContext ctx) {
  int ridx = (int)ctx;
  fsreq *r = lua_touserdata(L, ridx);
  aio_future *f = lua_touserdata(L, ridx + 1);
  int threw = aio_resume_take_throw(L, aio_current_task_of(L));
  (void)status;
  if (threw || f->state == AIO_CANCELLED || !r->done) {
    aio_waiter_drop(L, &r->io);
    fs_abandon(L, r);
    if (threw)
      return lua_error(L);
    return aio_future_push_result(L, ridx + 1); /* the CancelledError */
  }
  lua_settop(L, ridx - 1);
  return fs_finish(L, r);
}

/* Started (rc is what uv_fs_* returned): suspends task t until r is done.
 * Use as `return fs_await(...)`. */
static int fs_await(lua_State *L, aio_task *t, fsreq *r, int rc) {
  int ridx;
  if (rc < 0) {
    fsop op = (fsop)r->op;
    int np = op_paths(op);
    r->file = r->file2 = NULL; /* they took no reference yet */
    release_anchor(L, r);
    fsreq_free(r);
    push_fs_error(L, rc, op_names[op], np > 0 ? 1 : 0, np > 1 ? 2 : 0);
    return lua_error(L);
  }
  if (r->file)
    file_hold(r->file);
  if (r->file2) /* a sendfile's source */
    file_hold(r->file2);
  count_endless(r);
  /* abandoned until the task waits on it: should the future or the
   * waiter entry fail to allocate, the request ends and frees itself as
   * one a cancelled task gave up */
  r->abandoned = 1;
  lua_pushlightuserdata(L, r);
  ridx = lua_gettop(L);
  aio_future_new(L, t->fut.loop);
  aio_waiters_add(L, &r->io, -1);
  r->abandoned = 0;
  return aio_await_future(L, t, lua_gettop(L), ridx, fs_k);
}

/* ------------------------------------------------------------------ */
/* Operations on open files                                            */

static int fd_run(lua_State *L, fsop op);

/* Continuation of a wait for the file at stack index 1 + ctx % 2 to be
 * idle, for the operation ctx / 2: [args..., future]. */
static int idle_k(lua_State *L, int status, lua_KContext ctx) {
  fsfile *f = *(fsfile **)lua_touserdata(L, 1 + (int)(ctx % 2));
  (void)status;
  aio_waiters_resumed(L, f, lua_gettop(L));
  lua_pop(L, 1);
  return fd_run(L, (fsop)(ctx / 2));
}

/* Suspends task t until the file f, at stack index idx (1 or 2), has no
 * request in flight; then runs op again (use as `return ...`). */
static int await_idle(lua_State *L, aio_task *t, fsfile *f, int idx,
                      fsop op) {
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, f, (lua_KContext)op * 2 + (idx - 1),
                           idle_k);
}

static int fd_close_body(lua_State *L, aio_task *t, fsfile *f);
static int fd_read_body(lua_State *L, aio_task *t, fsfile *f);
static int fd_write_body(lua_State *L, aio_task *t, fsfile *f);
static int fd_fstat_body(lua_State *L, aio_task *t, fsfile *f);
static int fd_fsync_body(lua_State *L, aio_task *t, fsfile *f);
static int fd_ftruncate_body(lua_State *L, aio_task *t, fsfile *f);
static int fd_sendfile_body(lua_State *L, aio_task *t, fsfile *f);

/* Runs op's body on the file at stack index 1 (and a sendfile's source at
 * 2) once no request of it is in flight (one given up by a cancelled task
 * may still run). */
static int fd_run(lua_State *L, fsop op) {
  aio_task *t = aio_check_await(L, op_names[op]);
  fsfile *f = check_fd(L, 1);
  if (op == OP_CLOSE && f->inflight > 0) {
    f->closing = 1; /* a request given up still runs: close after it */
    return 0;
  }
  if (f->inflight > 0)
    return await_idle(L, t, f, 1, op);
  if (op == OP_SENDFILE) {
    fsfile *in = check_fd(L, 2);
    if (in->inflight > 0)
      return await_idle(L, t, in, 2, op);
  }
  switch (op) {
  case OP_CLOSE: return fd_close_body(L, t, f);
  case OP_READ: return fd_read_body(L, t, f);
  case OP_WRITE: return fd_write_body(L, t, f);
  case OP_FSTAT: return fd_fstat_body(L, t, f);
  case OP_FSYNC: return fd_fsync_body(L, t, f);
  case OP_FTRUNCATE: return fd_ftruncate_body(L, t, f);
  case OP_SENDFILE: return fd_sendfile_body(L, t, f);
  default: return luaL_error(L, "bad file operation");
  }
}

/* [fd]: the descriptor is closed for Lua at once. */
static int fd_close_body(lua_State *L, aio_task *t, fsfile *f) {
  fsreq *r = fsreq_new(L, t, OP_CLOSE);
  uv_file fd = f->fd;
  f->fd = -1;
  return fs_await(L, t, r, uv_fs_close(t->fut.loop->uv, &r->req, fd,
                                       on_fs_done));
}

/* [fd, n, offset]: offset -1 reads at the descriptor's offset. */
static int fd_read_body(lua_State *L, aio_task *t, fsfile *f) {
  size_t n = (size_t)lua_tointeger(L, 2);
  int64_t off = (int64_t)lua_tointeger(L, 3);
  fsreq *r = fsreq_new(L, t, OP_READ);
  uv_buf_t b;
  r->file = f;
  r->buf = malloc(n > 0 ? n : 1);
  if (r->buf == NULL) {
    r->file = NULL;
    fsreq_free(r);
    return luaL_error(L, "not enough memory");
  }
  b = uv_buf_init(r->buf, (unsigned)n);
  return fs_await(L, t, r, uv_fs_read(t->fut.loop->uv, &r->req, f->fd, &b, 1,
                                      off, on_fs_done));
}

/* [fd, data, offset]: offset -1 writes at the descriptor's offset (the
 * end, for a file opened to append), and then also returns it. */
static int fd_write_body(lua_State *L, aio_task *t, fsfile *f) {
  size_t n;
  const char *data = lua_tolstring(L, 2, &n);
  int64_t off = (int64_t)lua_tointeger(L, 3);
  aio_loop *loop = t->fut.loop;
  /* a stream's write may outlive the state (closing the loop does not
   * wait for it): it writes a copy */
  int anchor = n >= BORROW_MIN && loop->own_uv && !f->stream
                   ? anchor_string(L, loop, 2)
                   : 0;
  fsreq *r = calloc(1, sizeof *r);
  uv_buf_t b;
  if (r != NULL && !anchor && (r->buf = malloc(n > 0 ? n : 1)) == NULL) {
    free(r);
    r = NULL;
  }
  if (r == NULL) {
    if (anchor) {
      aio_push_env(L, loop, AIO_ENV_ANCHORS);
      luaL_unref(L, -1, anchor);
    }
    return luaL_error(L, "not enough memory");
  }
  fsreq_init(r, loop, OP_WRITE, 0);
  r->anchor = anchor;
  r->after = off < 0 ? -1 : 0;
  if (anchor)
    b = uv_buf_init((char *)data, (unsigned)n);
  else {
    memcpy(r->buf, data, n);
    b = uv_buf_init(r->buf, (unsigned)n);
  }
  r->file = f;
  return fs_await(L, t, r, uv_fs_write(t->fut.loop->uv, &r->req, f->fd, &b,
                                       1, off, on_fs_done));
}

static int fd_fstat_body(lua_State *L, aio_task *t, fsfile *f) {
  fsreq *r = fsreq_new(L, t, OP_FSTAT);
  r->file = f;
  return fs_await(L, t, r, uv_fs_fstat(t->fut.loop->uv, &r->req, f->fd,
                                       on_fs_done));
}

static int fd_fsync_body(lua_State *L, aio_task *t, fsfile *f) {
  fsreq *r = fsreq_new(L, t, OP_FSYNC);
  r->file = f;
  return fs_await(L, t, r, uv_fs_fsync(t->fut.loop->uv, &r->req, f->fd,
                                       on_fs_done));
}

/* [fd, size] */
static int fd_ftruncate_body(lua_State *L, aio_task *t, fsfile *f) {
  int64_t size = (int64_t)lua_tointeger(L, 2);
  fsreq *r = fsreq_new(L, t, OP_FTRUNCATE);
  r->file = f;
  return fs_await(L, t, r, uv_fs_ftruncate(t->fut.loop->uv, &r->req, f->fd,
                                           size, on_fs_done));
}

/* [out, in, offset, length]: copies up to length bytes of in from offset
 * to out at out's descriptor offset, in the kernel where it can
 * (uv_fs_sendfile: copy_file_range(2), sendfile(2), else reads and
 * writes on the pool); the request holds both files. */
static int fd_sendfile_body(lua_State *L, aio_task *t, fsfile *f) {
  fsfile *in = check_fd(L, 2);
  int64_t off = (int64_t)lua_tointeger(L, 3);
  size_t len = (size_t)lua_tointeger(L, 4);
  fsreq *r = fsreq_new(L, t, OP_SENDFILE);
  r->file = f;
  r->file2 = in;
  return fs_await(L, t, r, uv_fs_sendfile(t->fut.loop->uv, &r->req, f->fd,
                                          in->fd, off, len, on_fs_done));
}

/* [fd]: returns once no request of the file is in flight, its close
 * included (closed files too). */
static int wait_idle_body(lua_State *L);

static int wait_idle_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  aio_waiters_resumed(L, to_file(L, 1), lua_gettop(L));
  lua_pop(L, 1);
  return wait_idle_body(L);
}

static int wait_idle_body(lua_State *L) {
  aio_task *t = aio_check_await(L, "close");
  fsfile *f = to_file(L, 1);
  if (f == NULL || f->inflight == 0)
    return 0;
  aio_future_new(L, t->fut.loop);
  return aio_waiters_await(L, t, f, 0, wait_idle_k);
}

/* _fs_wait_idle(fd) -> Coroutine; awaited, returns once the file has no
 * request in flight (a close without a waiter included). */
static int l_fs_wait_idle(lua_State *L) {
  luaL_checkudata(L, 1, AIO_FSFD_MT);
  return aio_ccoro_method(L, 1, wait_idle_body);
}

static int close_body(lua_State *L) { return fd_run(L, OP_CLOSE); }
static int read_body(lua_State *L) { return fd_run(L, OP_READ); }
static int write_body(lua_State *L) { return fd_run(L, OP_WRITE); }
static int fstat_body(lua_State *L) { return fd_run(L, OP_FSTAT); }
static int fsync_body(lua_State *L) { return fd_run(L, OP_FSYNC); }
static int ftruncate_body(lua_State *L) { return fd_run(L, OP_FTRUNCATE); }
static int sendfile_body(lua_State *L) { return fd_run(L, OP_SENDFILE); }

/* _fs_read(fd, n, offset) -> Coroutine; awaited, the bytes read ("" at
 * the end of the file). */
static int l_fs_read(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_checkinteger(L, 3);
  check_fd(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 0x7fffffff, 2, "out of range");
  return aio_ccoro_method(L, 3, read_body);
}

/* _fs_write(fd, data, offset) -> Coroutine; awaited, the count written
 * (and, with offset -1, the descriptor's offset after). */
static int l_fs_write(lua_State *L) {
  size_t n;
  luaL_checklstring(L, 2, &n);
  luaL_checkinteger(L, 3);
  check_fd(L, 1);
  luaL_argcheck(L, n <= 0x7fffffff, 2, "too long");
  return aio_ccoro_method(L, 3, write_body);
}

static int l_fs_close(lua_State *L) {
  check_fd(L, 1);
  return aio_ccoro_method(L, 1, close_body);
}

static int l_fs_fstat(lua_State *L) {
  check_fd(L, 1);
  return aio_ccoro_method(L, 1, fstat_body);
}

static int l_fs_fsync(lua_State *L) {
  check_fd(L, 1);
  return aio_ccoro_method(L, 1, fsync_body);
}

static int l_fs_ftruncate(lua_State *L) {
  check_fd(L, 1);
  luaL_checkinteger(L, 2);
  return aio_ccoro_method(L, 2, ftruncate_body);
}

/* _fs_sendfile(out, in, offset, length) -> Coroutine; awaited, the count
 * of bytes of in, from offset, written to out at its descriptor's offset
 * (0 at the end of in). A failure names no path: the system does not say
 * which file failed. */
static int l_fs_sendfile(lua_State *L) {
  lua_Integer off = luaL_checkinteger(L, 3);
  lua_Integer len = luaL_checkinteger(L, 4);
  check_fd(L, 1);
  check_fd(L, 2);
  luaL_argcheck(L, off >= 0, 3, "out of range");
  luaL_argcheck(L, len >= 0 && len <= 0x7fffffff, 4, "out of range");
  return aio_ccoro_method(L, 4, sendfile_body);
}

/* ------------------------------------------------------------------ */
/* Operations on paths                                                 */

/* io.open's mode ("r", "w", "a", "r+", "w+", "a+", "b" anywhere after
 * the letter), or Python's "x" (exclusive creation), to open(2) flags;
 * -1 for an invalid mode. */
static int mode_flags(const char *m) {
  int flags;
  switch (*m++) {
  case 'r': flags = O_RDONLY; break;
  case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
  case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
  case 'x': flags = O_WRONLY | O_CREAT | O_EXCL; break;
  default: return -1;
  }
  if (*m == '+') {
    flags = (flags & ~O_WRONLY) | O_RDWR;
    m++;
  }
  while (*m == 'b')
    m++;
  return *m == '\0' ? flags : -1;
}

/* An open, on the pool: as uv_fs_open's, and a descriptor opened for a
 * request given up meanwhile is closed here (fs_abandon), since the
 * callback may never run. */
static void open_work(uv_work_t *w) {
  fsreq *r = w->data;
  int fd = open(r->path, r->flags | O_CLOEXEC, 0666);
  r->req.result = fd >= 0 ? fd : -errno;
  if (atomic_exchange(&r->ostate, OPEN_DONE) == OPEN_GIVEN_UP && fd >= 0) {
    close(fd);
    r->req.result = UV_ECANCELED;
  }
}

static void open_done(uv_work_t *w, int status) {
  fsreq *r = w->data;
  if (status == UV_ECANCELED)
    r->req.result = UV_ECANCELED;
  on_fs_done(&r->req);
}

/* [path, mode] */
static int open_body(lua_State *L) {
  aio_task *t = aio_check_await(L, "open");
  size_t len;
  const char *path = lua_tolstring(L, 1, &len);
  fsreq *r = fsreq_new(L, t, OP_OPEN);
  r->flags = mode_flags(lua_tostring(L, 2));
  r->path = malloc(len + 1);
  if (r->path == NULL) {
    fsreq_free(r);
    return luaL_error(L, "not enough memory");
  }
  memcpy(r->path, path, len + 1);
  r->req.loop = t->fut.loop->uv; /* drop_result closes on it */
  r->work.data = r;
  return fs_await(L, t, r, uv_queue_work(t->fut.loop->uv, &r->work,
                                         open_work, open_done));
}

/* [path] or [path, path2] or [path, mode]: one body per path op. */
static int path_body(lua_State *L, fsop op) {
  aio_task *t = aio_check_await(L, op_names[op]);
  uv_loop_t *uv = t->fut.loop->uv;
  const char *p = lua_tostring(L, 1);
  fsreq *r = fsreq_new(L, t, op);
  uv_fs_t *q = &r->req;
  int rc;
  switch (op) {
  case OP_STAT: case OP_EXISTS:
    rc = uv_fs_stat(uv, q, p, on_fs_done);
    break;
  case OP_LSTAT: rc = uv_fs_lstat(uv, q, p, on_fs_done); break;
  case OP_MKDIR:
    rc = uv_fs_mkdir(uv, q, p, (int)lua_tointeger(L, 2), on_fs_done);
    break;
  case OP_RMDIR: rc = uv_fs_rmdir(uv, q, p, on_fs_done); break;
  case OP_UNLINK: rc = uv_fs_unlink(uv, q, p, on_fs_done); break;
  case OP_RENAME:
    rc = uv_fs_rename(uv, q, p, lua_tostring(L, 2), on_fs_done);
    break;
  case OP_SCANDIR: rc = uv_fs_scandir(uv, q, p, 0, on_fs_done); break;
  case OP_MKDTEMP: rc = uv_fs_mkdtemp(uv, q, p, on_fs_done); break;
  case OP_REALPATH: rc = uv_fs_realpath(uv, q, p, on_fs_done); break;
  case OP_READLINK: rc = uv_fs_readlink(uv, q, p, on_fs_done); break;
  case OP_CHMOD:
    rc = uv_fs_chmod(uv, q, p, (int)lua_tointeger(L, 2), on_fs_done);
    break;
  default: rc = UV_EINVAL;
  }
  return fs_await(L, t, r, rc);
}

#define PATH_OP(fn, op)                                                     \
  static int fn##_body(lua_State *L) { return path_body(L, op); }

PATH_OP(stat, OP_STAT)
PATH_OP(lstat, OP_LSTAT)
PATH_OP(exists, OP_EXISTS)
PATH_OP(mkdir, OP_MKDIR)
PATH_OP(rmdir, OP_RMDIR)
PATH_OP(unlink, OP_UNLINK)
PATH_OP(rename, OP_RENAME)
PATH_OP(scandir, OP_SCANDIR)
PATH_OP(mkdtemp, OP_MKDTEMP)
PATH_OP(realpath, OP_REALPATH)
PATH_OP(readlink, OP_READLINK)
PATH_OP(chmod, OP_CHMOD)

/* The callers (fs.lua) have checked the arguments and name their own
 * functions in errors; these checks only keep C safe. */
static int l_fs_open(lua_State *L) {
  luaL_checkstring(L, 1);
  if (mode_flags(luaL_checkstring(L, 2)) < 0)
    return luaL_argerror(L, 2, "invalid mode");
  return aio_ccoro_method(L, 2, open_body);
}

#define PATH_FN(fn, nargs)                                                  \
  static int l_fs_##fn(lua_State *L) {                                      \
    int i;                                                                  \
    for (i = 1; i <= (nargs); i++)                                          \
      luaL_checkstring(L, i);                                               \
    return aio_ccoro_method(L, nargs, fn##_body);                           \
  }

PATH_FN(stat, 1)
PATH_FN(lstat, 1)
PATH_FN(exists, 1)
PATH_FN(rmdir, 1)
PATH_FN(unlink, 1)
PATH_FN(rename, 2)
PATH_FN(scandir, 1)
PATH_FN(mkdtemp, 1)
PATH_FN(realpath, 1)
PATH_FN(readlink, 1)

static int l_fs_mkdir(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checkinteger(L, 2);
  return aio_ccoro_method(L, 2, mkdir_body);
}

static int l_fs_chmod(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checkinteger(L, 2);
  return aio_ccoro_method(L, 2, chmod_body);
}

/* _fs_oserror(errno, op, path) -> the OSError Python raises for errno
 * about path (an error object, not raised). */
static int l_fs_oserror(lua_State *L) {
  int e = (int)luaL_checkinteger(L, 1);
  const char *op = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  push_fs_error(L, -e, op, lua_isnil(L, 3) ? 0 : 3, 0);
  return 1;
}

/* Writes all of data at off (-1: the descriptor's offset) with the
 * loop blocked: only when no loop runs. Returns 0 or a libuv error. */
static int write_now(uv_file fd, const char *data, size_t n, int64_t off) {
  while (n > 0) {
    ssize_t w = off < 0 ? write(fd, data, n) : pwrite(fd, data, n, off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    data += w;
    n -= (size_t)w;
    if (off >= 0)
      off += w;
  }
  return 0;
}

/* fd:write_detached(data, offset): writes without a waiter (the data a
 * File still buffers when it is closed without waiting); a close asked
 * for afterwards waits for it. A failure goes to the loop's exception
 * handler. With no loop running, writes at once. */
static int l_fd_write_detached(lua_State *L) {
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  int64_t off = (int64_t)luaL_checkinteger(L, 3);
  fsfile *f = check_fd(L, 1);
  aio_loop *loop = aio_running_loop(L);
  fsreq *r;
  uv_buf_t b;
  int rc;
  if (loop == NULL || loop->closed) {
    rc = write_now(f->fd, data, n, off);
    if (rc < 0) {
      push_fs_error(L, rc, "write", 0, 0);
      return lua_error(L);
    }
    return 0;
  }
  luaL_argcheck(L, n <= 0x7fffffff, 2, "too long");
  r = calloc(1, sizeof *r);
  if (r == NULL || (r->buf = malloc(n > 0 ? n : 1)) == NULL) {
    free(r);
    return luaL_error(L, "not enough memory");
  }
  memcpy(r->buf, data, n);
  fsreq_init(r, loop, OP_WRITE, 1);
  b = uv_buf_init(r->buf, (unsigned)n);
  rc = uv_fs_write(loop->uv, &r->req, f->fd, &b, 1, off, on_fs_done);
  if (rc < 0) {
    fsreq_free(r);
    push_fs_error(L, rc, "write", 0, 0);
    return lua_error(L);
  }
  fsreq_hold(r, f);
  count_endless(r);
  return 0;
}

static const luaL_Reg fd_methods[] = {
    {"write_detached", l_fd_write_detached},
    {"close_detached", l_fd_close_detached},
    {"fileno", l_fd_fileno},
    {NULL, NULL}};

static const luaL_Reg fd_metamethods[] = {
    {"__gc", l_fd__gc},
    {NULL, NULL}};

static const luaL_Reg fs_funcs[] = {
    {"_fs_open", l_fs_open},
    {"_fs_close", l_fs_close},
    {"_fs_wait_idle", l_fs_wait_idle},
    {"_fs_read", l_fs_read},
    {"_fs_write", l_fs_write},
    {"_fs_fstat", l_fs_fstat},
    {"_fs_fsync", l_fs_fsync},
    {"_fs_ftruncate", l_fs_ftruncate},
    {"_fs_stat", l_fs_stat},
    {"_fs_lstat", l_fs_lstat},
    {"_fs_exists", l_fs_exists},
    {"_fs_mkdir", l_fs_mkdir},
    {"_fs_rmdir", l_fs_rmdir},
    {"_fs_unlink", l_fs_unlink},
    {"_fs_rename", l_fs_rename},
    {"_fs_scandir", l_fs_scandir},
    {"_fs_mkdtemp", l_fs_mkdtemp},
    {"_fs_realpath", l_fs_realpath},
    {"_fs_readlink", l_fs_readlink},
    {"_fs_sendfile", l_fs_sendfile},
    {"_fs_chmod", l_fs_chmod},
    {"_fs_oserror", l_fs_oserror},
    {NULL, NULL}};

void aio_open_fs(lua_State *L) {
  aio_newclass(L, AIO_FSFD_MT, AIO_K_OTHER, fd_methods, fd_metamethods);
  luaL_setfuncs(L, fs_funcs, 0);
}
