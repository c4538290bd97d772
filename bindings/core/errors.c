/*
 * errors.c - error objects made and recognised from C.
 *
 * The error classes themselves are Lua tables defined in
 * lua/asyncio/errors.lua (a class is the metatable of its instances and
 * carries `__is`, the set of itself and its ancestors). This file caches
 * the classes the core raises, builds error objects by calling them, maps
 * libuv error codes to OSError subclasses and formats Python-style reprs.
 */
#include <netdb.h>
#include <stdarg.h>
#include <string.h>

#include "internal.h"

const char aio_key_errors = 0;
static const char key_classes = 0; /* array: aio_errclass + 1 -> class */

static const char *const class_names[AIO_E_COUNT] = {
    "CancelledError", "InvalidStateError", "RuntimeError", "ValueError",
    "TypeError",      "TimeoutError",      "KeyboardInterrupt", "SystemExit",
    "QueueEmpty",     "QueueFull",         "QueueShutDown"};

static void push_class(lua_State *L, aio_errclass cls) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_classes);
  lua_rawgeti(L, -1, (lua_Integer)cls + 1);
  lua_remove(L, -2);
}

void aio_pusherror(lua_State *L, aio_errclass cls, int nargs) {
  push_class(L, cls);
  lua_insert(L, -1 - nargs);
  lua_call(L, nargs, 1);
}

void aio_pusherrorf(lua_State *L, aio_errclass cls, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  aio_pusherror(L, cls, 1);
}

int aio_raisef(lua_State *L, aio_errclass cls, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  aio_pusherror(L, cls, 1);
  return lua_error(L);
}

/* Pushes the `__is` set of the error object at idx, or returns 0. */
static int push_is_set(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
    return 0;
  lua_pushliteral(L, "__is");
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  lua_remove(L, -2);
  return 1;
}

int aio_iserror(lua_State *L, int idx, aio_errclass cls) {
  int r;
  idx = lua_absindex(L, idx);
  if (!push_is_set(L, idx))
    return 0;
  push_class(L, cls);
  r = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return r;
}

void aio_push_error_class(lua_State *L, aio_errclass cls) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_classes) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_pushnil(L); /* asyncio.errors not loaded yet */
    return;
  }
  lua_rawgeti(L, -1, (lua_Integer)cls + 1);
  lua_remove(L, -2);
}

int aio_loop_iscancelled(lua_State *L, aio_loop *loop, int idx) {
  const void *mt;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
    return 0;
  mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  return mt == loop->cancelled_cls || aio_iserror(L, idx, AIO_E_CANCELLED);
}

int aio_iserror_named(lua_State *L, int idx, const char *name) {
  int r;
  idx = lua_absindex(L, idx);
  if (!push_is_set(L, idx))
    return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  r = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return r;
}

int aio_isfatal(lua_State *L, int idx) {
  return aio_iserror(L, idx, AIO_E_KEYBOARD_INTERRUPT) ||
         aio_iserror(L, idx, AIO_E_SYSTEM_EXIT);
}

/* Appends one frame's line to the buffer in lauxlib's shape. */
static void add_frame(luaL_Buffer *b, lua_State *L, lua_Debug *ar) {
  if (ar->currentline > 0)
    lua_pushfstring(L, "\n\t%s:%d: in ", ar->short_src, ar->currentline);
  else
    lua_pushfstring(L, "\n\t%s: in ", ar->short_src);
  luaL_addvalue(b);
  if (*ar->namewhat != '\0')
    lua_pushfstring(L, "%s '%s'", ar->namewhat, ar->name);
  else if (*ar->what == 'm')
    lua_pushliteral(L, "main chunk");
  else if (*ar->what != 'C')
    lua_pushfstring(L, "function <%s:%d>", ar->short_src, ar->linedefined);
  else
    lua_pushliteral(L, "?");
  luaL_addvalue(b);
}

/* A frame of luaio's own Lua sources (embedded as "@lua/asyncio/...",
 * or installed under ".../lua/5.4/asyncio/"), or a C frame with no name:
 * left out of tracebacks outside debug mode. */
static int is_library_frame(const lua_Debug *ar) {
  if (*ar->what == 'C')
    return *ar->namewhat == '\0';
  return ar->source[0] == '@' && (strncmp(ar->source, "@lua/asyncio/", 13) == 0 ||
                                  strstr(ar->source, "/lua/asyncio/") != NULL ||
                                  strstr(ar->source, "/5.4/asyncio/") != NULL);
}

void aio_traceback(lua_State *L, lua_State *L1, int level) {
  lua_Debug ar;
  luaL_Buffer b;
  int n = 0, hidden = 0, all = aio_debug_default();
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "stack traceback:");
  while (lua_getstack(L1, level++, &ar)) {
    if (n == 24) { /* enough: long recursions elide the middle */
      n++;
      luaL_addstring(&b, "\n\t...");
      while (lua_getstack(L1, level + 10, &ar))
        level += 10;
      continue;
    }
    lua_getinfo(L1, "Sln", &ar);
    if (!all && is_library_frame(&ar)) {
      hidden++;
      continue;
    }
    n++;
    add_frame(&b, L, &ar);
  }
  if (hidden > 0 && n == 0)
    luaL_addstring(&b, "\n\t(only library frames: --debug shows them)");
  luaL_pushresult(&b);
}

static int l_traceback(lua_State *L) {
  lua_State *L1 = lua_isthread(L, 1) ? lua_tothread(L, 1) : L;
  int arg = L1 == L ? 1 : 2;
  const char *msg = lua_tostring(L, arg);
  int level = (int)luaL_optinteger(L, arg + 1, L1 == L ? 1 : 0);
  if (msg == NULL && !lua_isnoneornil(L, arg)) {
    lua_pushvalue(L, arg); /* non-string message: returned untouched */
    return 1;
  }
  aio_traceback(L, L1, level);
  if (msg)
    lua_pushfstring(L, "%s\n%s", msg, lua_tostring(L, -1));
  return 1;
}

void aio_set_traceback(lua_State *L, int idx, lua_State *co) {
  idx = lua_absindex(L, idx);
  if (!push_is_set(L, idx))
    return;
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "traceback") == LUA_TNIL) {
    aio_traceback(L, co, 0);
    lua_setfield(L, idx, "traceback");
  }
  lua_pop(L, 1);
}

/* ------------------------------------------------------------------ */
/* OSError from libuv codes                                            */

static const char *oserror_class(int err) {
  switch (err) {
  case UV_ECONNREFUSED: return "ConnectionRefusedError";
  case UV_ECONNRESET: return "ConnectionResetError";
  case UV_ECONNABORTED: return "ConnectionAbortedError";
  case UV_EPIPE: return "BrokenPipeError";
  case UV_ENOENT: return "FileNotFoundError";
  case UV_EEXIST: return "FileExistsError";
  case UV_EACCES:
  case UV_EPERM: return "PermissionError";
  case UV_ETIMEDOUT: return "TimeoutError";
  case UV_EAGAIN: return "BlockingIOError";
  case UV_EINTR: return "InterruptedError";
  case UV_EISDIR: return "IsADirectoryError";
  case UV_ENOTDIR: return "NotADirectoryError";
  case UV_ESRCH: return "ProcessLookupError";
  default: return "OSError";
  }
}

/* The EAI_* code of a libuv look-up failure (UV_EAI_*), 0 for another
 * error: such failures raise socket.gaierror, as Python's getaddrinfo. */
static int eai_code(int uverr) {
  switch (uverr) {
  case UV_EAI_ADDRFAMILY: return EAI_ADDRFAMILY;
  case UV_EAI_AGAIN: return EAI_AGAIN;
  case UV_EAI_BADFLAGS: return EAI_BADFLAGS;
  case UV_EAI_CANCELED: return EAI_CANCELED;
  case UV_EAI_FAIL: return EAI_FAIL;
  case UV_EAI_FAMILY: return EAI_FAMILY;
  case UV_EAI_MEMORY: return EAI_MEMORY;
  case UV_EAI_NODATA: return EAI_NODATA;
  case UV_EAI_NONAME: return EAI_NONAME;
  case UV_EAI_OVERFLOW: return EAI_OVERFLOW;
  case UV_EAI_SERVICE: return EAI_SERVICE;
  case UV_EAI_SOCKTYPE: return EAI_SOCKTYPE;
  default: return 0;
  }
}

/* Replaces the error classes table on top by cls(errnum, strerror), an
 * OSError kin named `name` (libuv's "ECONNREFUSED", "EAI_NONAME") whose
 * message is "NAME: strerror". */
static void push_named_oserror(lua_State *L, const char *cls,
                               lua_Integer errnum, const char *strerror,
                               const char *name) {
  lua_getfield(L, -1, cls);
  lua_remove(L, -2);
  lua_pushinteger(L, errnum);
  lua_pushstring(L, strerror);
  lua_call(L, 2, 1);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushfstring(L, "%s: %s", name, strerror);
  lua_setfield(L, -2, "message");
}

/* A look-up failure is a gaierror with Python's errno and gai_strerror's
 * text; any other carries errno as Python's OSError.errno. */
void aio_push_uverror(lua_State *L, int uverr, const char *what) {
  int eai = eai_code(uverr);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  if (eai != 0)
    push_named_oserror(L, "gaierror", eai, gai_strerror(eai),
                       uv_err_name(uverr));
  else
    push_named_oserror(L, oserror_class(uverr), -uverr,
                       uv_strerror(uverr), uv_err_name(uverr));
  if (what) {
    lua_pushstring(L, what);
    lua_setfield(L, -2, "op");
  }
}

int aio_raise_uv(lua_State *L, int uverr, const char *what) {
  aio_push_uverror(L, uverr, what);
  return lua_error(L);
}

/* ------------------------------------------------------------------ */
/* repr                                                                */

static void push_quoted(lua_State *L, int idx) {
  size_t len, i;
  const char *s = lua_tolstring(L, idx, &len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '\'');
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\'' || c == '\\') {
      luaL_addchar(&b, '\\');
      luaL_addchar(&b, (char)c);
    } else if (c == '\n')
      luaL_addstring(&b, "\\n");
    else if (c < 32) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\x%02x", c);
      luaL_addstring(&b, esc);
    } else
      luaL_addchar(&b, (char)c);
  }
  luaL_addchar(&b, '\'');
  luaL_pushresult(&b);
}

static void pushrepr(lua_State *L, int idx, int depth);

/* A list argument of an error object (a table with no metatable, as the
 * exceptions of an ExceptionGroup): "[repr(t[1]), ...]", as Python's
 * list repr; "[...]" past a nesting depth (a cycle). */
static void push_list_repr(lua_State *L, int idx, int depth) {
  luaL_Buffer b;
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  if (depth > 8) {
    lua_pushliteral(L, "[...]");
    return;
  }
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '[');
  for (i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addstring(&b, ", ");
    lua_rawgeti(L, idx, i);
    pushrepr(L, -1, depth + 1);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, ']');
  luaL_pushresult(&b);
}

void aio_pushrepr(lua_State *L, int idx) {
  pushrepr(L, idx, 0);
}

static void pushrepr(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 6, NULL);
  if (lua_type(L, idx) == LUA_TSTRING) {
    push_quoted(L, idx);
    return;
  }
  if (push_is_set(L, idx)) { /* error object: Class(arg, ...) */
    int base = lua_gettop(L) - 1;
    lua_Integer i, n;
    lua_pop(L, 1);
    lua_getfield(L, idx, "args"); /* base + 1 */
    lua_getmetatable(L, idx);
    lua_getfield(L, -1, "__name");
    lua_remove(L, -2);
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "?");
    }
    lua_pushliteral(L, "(");
    n = lua_istable(L, base + 1) ? luaL_len(L, base + 1) : 0;
    for (i = 1; i <= n; i++) {
      luaL_checkstack(L, 4, NULL);
      if (i > 1)
        lua_pushliteral(L, ", ");
      lua_rawgeti(L, base + 1, i);
      if (lua_type(L, -1) == LUA_TTABLE && !lua_getmetatable(L, -1))
        push_list_repr(L, lua_gettop(L), depth + 1);
      else
        pushrepr(L, -1, depth + 1);
      lua_remove(L, -2);
    }
    lua_pushliteral(L, ")");
    lua_concat(L, lua_gettop(L) - (base + 1));
    lua_remove(L, base + 1);
    return;
  }
  luaL_tolstring(L, idx, NULL);
}

static int l_repr(lua_State *L) {
  luaL_checkany(L, 1);
  aio_pushrepr(L, 1);
  return 1;
}

static int l_iserror(lua_State *L) {
  /* iserror(e [, cls]): with no class, any error object */
  int r, nocls = lua_isnoneornil(L, 2);
  lua_settop(L, 2);
  if (!push_is_set(L, 1)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (nocls) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushvalue(L, 2);
  r = lua_rawget(L, -2) != LUA_TNIL;
  lua_pushboolean(L, r);
  return 1;
}

void aio_open_errors(lua_State *L) {
  int i;
  /* the Lua side of the classes */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "asyncio.errors");
  lua_call(L, 1, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  lua_createtable(L, AIO_E_COUNT, 0);
  for (i = 0; i < AIO_E_COUNT; i++) {
    if (lua_getfield(L, -2, class_names[i]) != LUA_TTABLE)
      luaL_error(L, "asyncio.errors lacks class '%s'", class_names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_classes);
  /* the faster C versions serve the Lua side too */
  lua_pushcfunction(L, l_traceback);
  lua_setfield(L, -2, "traceback");
  lua_pushcfunction(L, l_repr);
  lua_setfield(L, -2, "repr");
  lua_pushcfunction(L, l_iserror);
  lua_setfield(L, -2, "iserror");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_repr);
  lua_setfield(L, -2, "repr");
  lua_pushcfunction(L, l_iserror);
  lua_setfield(L, -2, "iserror");
}
