/*
 * resp.c - the RESP side of asyncio.redis (module "asyncio._redis").
 *
 * A Protocol object holds what one Redis connection needs in C:
 *   - hiredis's reader (redisReaderCreateWithFunctions) with reply-object
 *     functions that build Lua values directly: bulk and status replies
 *     become strings, integers integers, a null nil, an array a table
 *     (its length in field n, holes for nulls), an error reply the value
 *     the Lua layer's error factory returns for its message;
 *   - an output buffer the commands are encoded into (RESP arrays of bulk
 *     strings), taken as one string per flush.
 * The transport stays in Lua (asyncio streams). Nothing here touches the
 * event loop, so the module needs only Lua and libhiredis.
 *
 *   local p = _redis.Protocol(function(msg) return Err(msg) end)
 *   p:command("SET", "k", 1)  p:command("GET", "k")
 *   writer:write(p:take())                 -- both commands, one string
 *   p:feed(data)                           -- bytes read from the socket
 *   local ok, v = p:get()  -- true, value | false, error value | nothing
 *
 * hiredis 0.14 (Debian 12) speaks RESP2 only; its reader nests arrays 7
 * deep at most and reports deeper ones as a protocol error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/read.h>

#include "internal.h"

#define PROTOCOL_MT "asyncio.redis.Protocol"

/* The reader's user values: 1 the error factory, 2 the build table (slot
 * 0: the reply; slot d + 1: the array being filled at depth d). */
enum { UV_ERRFN = 1, UV_BUILD = 2 };

typedef struct protocol {
  redisReader *reader;  /* NULL once closed */
  char *out;            /* encoded commands not taken yet (malloc'd) */
  size_t len, cap;
  /* Valid only during get(): the thread building and the build table's
   * stack index. */
  lua_State *L;
  int build;
  int errfn;
  int root_error;       /* the reply being built is an error reply */
  int maxdepth;         /* deepest array slot set since the last reply */
} protocol;

/* ------------------------------------------------------------------ */
/* Building Lua values from the reader's callbacks                     */

/* The callbacks run inside redisReaderGetReply, called by l_get: they
 * use p->L's stack but must not raise through hiredis's frames, so the
 * only calls that may raise are the allocation ones (out of memory). They
 * return a non-NULL token (hiredis takes NULL for out of memory). */
#define TOKEN ((void *)1)

static protocol *task_proto(const redisReadTask *task) {
  return task->privdata;
}

/* The depth of a task: its index in the reader's task stack. */
static int task_depth(protocol *p, const redisReadTask *task) {
  return (int)(task - p->reader->rstack);
}

/* Stores the value on top of p->L (popped) where `task` puts it: the
 * reply slot for a top-level task, else its index in the parent array. */
static void store(protocol *p, const redisReadTask *task) {
  lua_State *L = p->L;
  if (task->parent == NULL) {
    lua_rawseti(L, p->build, 0);
    return;
  }
  lua_rawgeti(L, p->build, task_depth(p, task->parent) + 1);
  lua_insert(L, -2);
  lua_rawseti(L, -2, (lua_Integer)task->idx + 1);
  lua_pop(L, 1);
}

/* An error reply: at the top level its message is kept and flagged (the
 * Lua layer raises it); inside an array the factory's value for it is
 * stored, or the message if the factory fails. */
static void push_error(protocol *p, const char *s, size_t len) {
  lua_State *L = p->L;
  lua_pushvalue(L, p->errfn);
  lua_pushlstring(L, s, len);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    lua_pushlstring(L, s, len);
  }
}

static void *create_string(const redisReadTask *task, char *s, size_t len) {
  protocol *p = task_proto(task);
  if (task->type == REDIS_REPLY_ERROR) {
    if (task->parent == NULL) p->root_error = 1;
    push_error(p, s, len);
  } else {
    lua_pushlstring(p->L, s, len);
  }
  store(p, task);
  return TOKEN;
}

/* The most array slots preallocated for a header's count: the count is
 * the peer's word (hiredis takes up to INT_MAX), so a table grows past
 * this only as its elements arrive. */
#define PREALLOC_MAX 1024

static void *create_array(const redisReadTask *task, int elements) {
  protocol *p = task_proto(task);
  lua_State *L = p->L;
  int depth = task_depth(p, task);
  lua_createtable(L, elements < 0 ? 0
                  : elements > PREALLOC_MAX ? PREALLOC_MAX : elements, 1);
  lua_pushinteger(L, elements);
  lua_setfield(L, -2, "n");
  lua_pushvalue(L, -1);
  lua_rawseti(L, p->build, depth + 1);
  if (depth + 1 > p->maxdepth) p->maxdepth = depth + 1;
  store(p, task);
  return TOKEN;
}

static void *create_integer(const redisReadTask *task, long long value) {
  protocol *p = task_proto(task);
  lua_pushinteger(p->L, (lua_Integer)value);
  store(p, task);
  return TOKEN;
}

static void *create_nil(const redisReadTask *task) {
  protocol *p = task_proto(task);
  lua_pushnil(p->L);
  store(p, task);
  return TOKEN;
}

/* The values live in the build table, which Lua collects. */
static void free_object(void *obj) { (void)obj; }

static redisReplyObjectFunctions lua_objects = {
  create_string, create_array, create_integer, create_nil, free_object
};

/* ------------------------------------------------------------------ */
/* The Protocol object                                                 */

static protocol *check_protocol(lua_State *L) {
  protocol *p = luaL_checkudata(L, 1, PROTOCOL_MT);
  if (p->reader == NULL)
    luaL_error(L, "attempt to use a closed %s", PROTOCOL_MT);
  return p;
}

/* _redis.Protocol(errfn) -> a new Protocol; errfn(message) makes the
 * value of an error reply. */
static int l_protocol_new(lua_State *L) {
  protocol *p;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  p = lua_newuserdatauv(L, sizeof *p, 2);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, PROTOCOL_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_ERRFN);
  lua_createtable(L, 8, 0);
  lua_setiuservalue(L, -2, UV_BUILD);
  p->reader = redisReaderCreateWithFunctions(&lua_objects);
  if (p->reader == NULL) return luaL_error(L, "not enough memory");
  p->reader->privdata = p;
  return 1;
}

/* p:feed(data): appends bytes read from the connection. */
static int l_protocol_feed(lua_State *L) {
  protocol *p = check_protocol(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (len > 0 && redisReaderFeed(p->reader, s, len) != REDIS_OK)
    return luaL_error(L, "not enough memory");
  return 0;
}

/* p:get() -> true, value for a complete reply; false, error value for an
 * error reply; nothing when no complete reply is buffered. A malformed
 * stream raises "protocol error: ..." (a string), and keeps raising: the
 * connection is unusable. */
static int l_protocol_get(lua_State *L) {
  protocol *p = check_protocol(L);
  void *reply = NULL;
  int rc, i;
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, UV_ERRFN);   /* [p, errfn] */
  lua_getiuservalue(L, 1, UV_BUILD);   /* [p, errfn, build] */
  p->L = L;
  p->errfn = 2;
  p->build = 3;
  rc = redisReaderGetReply(p->reader, &reply);
  p->L = NULL;
  /* a reply still incomplete keeps its arrays for the next feed */
  if (rc == REDIS_OK && reply == NULL) return 0;
  /* else let the arrays built go with the reply */
  for (i = 1; i <= p->maxdepth; i++) {
    lua_pushnil(L);
    lua_rawseti(L, 3, i);
  }
  p->maxdepth = 0;
  if (rc != REDIS_OK) {
    return luaL_error(L, "protocol error: %s", p->reader->errstr);
  }
  lua_pushboolean(L, !p->root_error);
  p->root_error = 0;
  lua_rawgeti(L, 3, 0);
  lua_pushnil(L);
  lua_rawseti(L, 3, 0);
  return 2;
}

/* Appends len bytes to the output buffer, growing it; raises on memory
 * errors. */
static void out_append(lua_State *L, protocol *p, const char *s,
                       size_t len) {
  if (p->cap - p->len < len) {
    size_t cap = p->cap ? p->cap : 4096;
    char *nb;
    while (cap - p->len < len) cap *= 2;
    nb = realloc(p->out, cap);
    if (nb == NULL) luaL_error(L, "not enough memory");
    p->out = nb;
    p->cap = cap;
  }
  memcpy(p->out + p->len, s, len);
  p->len += len;
}

/* d as Python's repr writes it, which is what redis-py sends: the fewest
 * significant digits that read back as d, positional while the decimal
 * point falls within -4 < decpt <= 16 (with ".0" when nothing follows
 * the point), else D.DDDe+XX with at least two exponent digits; "inf",
 * "-inf". buf holds 32 bytes at least. */
static int format_double(char *buf, size_t size, double d) {
  char e[32], digits[20];
  int prec, decpt, nd = 0, i;
  const char *p;
  size_t n = 0;
  if (isinf(d)) return snprintf(buf, size, d > 0 ? "inf" : "-inf");
  for (prec = 1; prec <= 17; prec++) { /* e: [-]D[.DDD]e[+-]XX */
    snprintf(e, sizeof e, "%.*e", prec - 1, d);
    if (strtod(e, NULL) == d) break;
  }
  for (p = e; *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') digits[nd++] = *p;
  decpt = atoi(p + 1) + 1; /* digits are 0.DDD times 10^decpt */
  if (e[0] == '-') buf[n++] = '-';
  if (decpt <= -4 || decpt > 16) {
    buf[n++] = digits[0];
    if (nd > 1) {
      buf[n++] = '.';
      memcpy(buf + n, digits + 1, (size_t)nd - 1);
      n += (size_t)nd - 1;
    }
    return (int)n + snprintf(buf + n, size - n, "e%c%02d",
                             decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
  }
  if (decpt <= 0) {
    buf[n++] = '0';
    buf[n++] = '.';
    for (i = decpt; i < 0; i++) buf[n++] = '0';
    memcpy(buf + n, digits, (size_t)nd);
    n += (size_t)nd;
  } else {
    for (i = 0; i < decpt; i++) buf[n++] = i < nd ? digits[i] : '0';
    buf[n++] = '.';
    if (nd > decpt) {
      memcpy(buf + n, digits + decpt, (size_t)(nd - decpt));
      n += (size_t)(nd - decpt);
    } else
      buf[n++] = '0';
  }
  buf[n] = '\0';
  return (int)n;
}

/* Raises a bad argument error unless argument idx can be sent. */
static void check_arg(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_typeerror(L, idx, "string or number");
  if (t == LUA_TNUMBER && !lua_isinteger(L, idx) &&
      isnan(lua_tonumber(L, idx)))
    luaL_argerror(L, idx, "NaN is not a valid Redis argument");
}

/* Appends argument idx (checked) as a bulk string: strings as they are,
 * integers in decimal, floats as format_double writes them. Anything
 * else is a bad argument (Redis has no booleans, nor nil arguments). */
static void append_arg(lua_State *L, protocol *p, int idx) {
  char head[32], num[64];
  const char *s;
  size_t len;
  int n;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      n = snprintf(num, sizeof num, LUA_INTEGER_FMT, lua_tointeger(L, idx));
    else
      n = format_double(num, sizeof num, lua_tonumber(L, idx));
    s = num;
    len = (size_t)n;
    break;
  default:
    return;
  }
  n = snprintf(head, sizeof head, "$%zu\r\n", len);
  out_append(L, p, head, (size_t)n);
  out_append(L, p, s, len);
  out_append(L, p, "\r\n", 2);
}

/* p:command(word, ...): encodes one command into the output buffer. The
 * arguments are checked before anything is written, so a bad one leaves
 * the buffer as it was. */
static int l_protocol_command(lua_State *L) {
  protocol *p = check_protocol(L);
  int i, n = lua_gettop(L);
  char head[32];
  int hn;
  if (n < 2) return luaL_argerror(L, 2, "command name expected");
  hn = snprintf(head, sizeof head, "*%d\r\n", n - 1);
  for (i = 2; i <= n; i++) check_arg(L, i);
  out_append(L, p, head, (size_t)hn);
  for (i = 2; i <= n; i++) append_arg(L, p, i);
  return 0;
}

/* p:command_list(t [, i [, j]]): as p:command(t[i], ..., t[j]) (default
 * 1 and t.n or #t), for commands built in a table. */
static int l_protocol_command_list(lua_State *L) {
  protocol *p = check_protocol(L);
  lua_Integer i, j, k;
  char head[32];
  int hn;
  luaL_checktype(L, 2, LUA_TTABLE);
  i = luaL_optinteger(L, 3, 1);
  if (lua_isnoneornil(L, 4)) {
    if (lua_getfield(L, 2, "n") == LUA_TNUMBER) j = lua_tointeger(L, -1);
    else j = (lua_Integer)lua_rawlen(L, 2);
    lua_pop(L, 1);
  } else {
    j = luaL_checkinteger(L, 4);
  }
  if (j < i) return luaL_argerror(L, 2, "command name expected");
  lua_settop(L, 2);
  for (k = i; k <= j; k++) {
    int t = lua_rawgeti(L, 2, k);
    if (t == LUA_TNUMBER && !lua_isinteger(L, -1) &&
        isnan(lua_tonumber(L, -1)))
      t = LUA_TNIL;
    lua_pop(L, 1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      return luaL_error(L, "bad argument #%d to 'command' (string or "
                        "number expected, got %s)", (int)(k - i + 1),
                        lua_typename(L, t));
  }
  hn = snprintf(head, sizeof head, "*%lld\r\n", (long long)(j - i + 1));
  out_append(L, p, head, (size_t)hn);
  for (k = i; k <= j; k++) {
    lua_rawgeti(L, 2, k);
    append_arg(L, p, 3);
    lua_pop(L, 1);
  }
  return 0;
}

/* p:take() -> the encoded commands as one string ("" if none); the
 * buffer is emptied (a large one is given back to the system). */
static int l_protocol_take(lua_State *L) {
  protocol *p = check_protocol(L);
  lua_pushlstring(L, p->out ? p->out : "", p->len);
  p->len = 0;
  if (p->cap > (1u << 20)) {
    free(p->out);
    p->out = NULL;
    p->cap = 0;
  }
  return 1;
}

/* p:pending() -> the number of bytes encoded and not taken. */
static int l_protocol_pending(lua_State *L) {
  protocol *p = check_protocol(L);
  lua_pushinteger(L, (lua_Integer)p->len);
  return 1;
}

/* p:close(): frees the reader and the buffer; idempotent. */
static int l_protocol_close(lua_State *L) {
  protocol *p = luaL_checkudata(L, 1, PROTOCOL_MT);
  if (p->reader != NULL) {
    redisReaderFree(p->reader);
    p->reader = NULL;
  }
  free(p->out);
  p->out = NULL;
  p->len = p->cap = 0;
  return 0;
}

static int l_protocol__tostring(lua_State *L) {
  protocol *p = luaL_checkudata(L, 1, PROTOCOL_MT);
  lua_pushfstring(L, "<%s%s>", PROTOCOL_MT, p->reader ? "" : " closed");
  return 1;
}

/* _redis.encode(word, ...) -> the RESP encoding of one command. */
static int l_encode(lua_State *L) {
  protocol tmp;
  int n = lua_gettop(L), i;
  char head[32];
  int hn;
  if (n < 1) return luaL_argerror(L, 1, "command name expected");
  for (i = 1; i <= n; i++) check_arg(L, i);
  /* every failure below is out of memory (the arguments are checked) */
  memset(&tmp, 0, sizeof tmp);
  hn = snprintf(head, sizeof head, "*%d\r\n", n);
  out_append(L, &tmp, head, (size_t)hn);
  for (i = 1; i <= n; i++) append_arg(L, &tmp, i);
  lua_pushlstring(L, tmp.out, tmp.len);
  free(tmp.out);
  return 1;
}

static const luaL_Reg protocol_methods[] = {
  {"feed", l_protocol_feed},
  {"get", l_protocol_get},
  {"command", l_protocol_command},
  {"command_list", l_protocol_command_list},
  {"take", l_protocol_take},
  {"pending", l_protocol_pending},
  {"close", l_protocol_close},
  {NULL, NULL}
};

static const luaL_Reg protocol_metamethods[] = {
  {"__gc", l_protocol_close},
  {"__close", l_protocol_close},
  {"__tostring", l_protocol__tostring},
  {NULL, NULL}
};

static const luaL_Reg module_functions[] = {
  {"Protocol", l_protocol_new},
  {"encode", l_encode},
  {NULL, NULL}
};

AIO_EXPORT int luaopen_asyncio__redis(lua_State *L);

AIO_EXPORT int luaopen_asyncio__redis(lua_State *L) {
  luaL_newmetatable(L, PROTOCOL_MT);
  luaL_setfuncs(L, protocol_metamethods, 0);
  luaL_newlib(L, protocol_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, module_functions);
  return 1;
}
