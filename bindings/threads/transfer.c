/*
 * transfer.c - copying Lua values from one Lua state to another.
 *
 * A message (aio_msg) is a self-contained C buffer: values are encoded
 * one after the other; a table is encoded once and referred to by number
 * afterwards, which keeps cycles and shared references; a Lua function
 * whose only upvalue is _ENV travels as bytecode (its _ENV becomes the
 * receiving state's globals); a light C function travels as its address;
 * an error object travels as its class name and fields and is rebuilt
 * with the receiving state's class of that name; shareable objects (loop
 * references, concurrent futures, channels, thread-safe callables) travel
 * by reference, counted.
 *
 * Anything else raises SendError naming the path of the offending value,
 * e.g. "args[2].cb: function with upvalues". Packing builds the whole
 * message before anything is sent, so nothing is ever half-sent.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_FLT, T_STR, T_TABLE, T_TABLEREF,
  T_LFUNC, T_CFUNC, T_ERROR, T_SHARED, T_END
};

struct aio_msg {
  size_t len, cap;
  int nshared;       /* shared references held by the message */
  int block;         /* allocated with aio_block_alloc */
  unsigned char *buf;
};

/* ------------------------------------------------------------------ */
/* Shareable objects                                                   */

/* Filled by the first opening of the core (states of other threads open
 * it later, and only find their types there), under a lock in case two
 * threads open it first at once. */
static const aio_shared_type *shared_types[8];
static int nshared_types;
static pthread_mutex_t shared_types_mu = PTHREAD_MUTEX_INITIALIZER;

void aio_shared_register(const aio_shared_type *type) {
  int i;
  pthread_mutex_lock(&shared_types_mu);
  for (i = 0; i < nshared_types && shared_types[i] != type; i++)
    ;
  if (i == nshared_types)
    shared_types[nshared_types++] = type;
  pthread_mutex_unlock(&shared_types_mu);
}

/* The shared type of the userdata at idx and its object, or NULL. */
static const aio_shared_type *shared_of(lua_State *L, int idx, void **obj) {
  int i;
  for (i = 0; i < nshared_types; i++) {
    void *o = shared_types[i]->test(L, idx);
    if (o != NULL) {
      *obj = o;
      return shared_types[i];
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Buffer                                                              */

#define MAX_DEPTH 200 /* tables nested deeper are not sent */

typedef struct packer {
  lua_State *L;
  aio_msg *m;
  int seen;        /* stack index: table -> reference number (0 until the
                      first table) */
  int ntables;
  int depth;       /* tables being packed */
  /* The path of the value being packed, for SendError: the top-level
   * value (fn or args[i]), then the stack indices of the table keys that
   * lead from it. Nothing is formatted unless the packing fails. */
  int arg, fn_first;
  int nkeys;
  int keys[MAX_DEPTH];
} packer;

static void reserve(packer *p, size_t n) {
  aio_msg *m = p->m;
  if (m->len + n > m->cap) {
    size_t ncap = m->cap ? m->cap * 2 : 256;
    unsigned char *nb;
    while (ncap < m->len + n)
      ncap *= 2;
    nb = realloc(m->buf, ncap);
    if (nb == NULL)
      luaL_error(p->L, "not enough memory");
    m->buf = nb;
    m->cap = ncap;
  }
}

static void put(packer *p, const void *data, size_t n) {
  reserve(p, n);
  memcpy(p->m->buf + p->m->len, data, n);
  p->m->len += n;
}

static void put_byte(packer *p, int b) {
  unsigned char c = (unsigned char)b;
  put(p, &c, 1);
}

static void put_size(packer *p, size_t n) {
  put(p, &n, sizeof n);
}

/* ------------------------------------------------------------------ */
/* Packing                                                             */

static void ensure_core(lua_State *L);

/* Adds the path of the value being packed to b: "fn" or "args[i]", then
 * ".name" or "[key]" for each key. */
static void add_path(packer *p, luaL_Buffer *b) {
  lua_State *L = p->L;
  int i;
  if (p->fn_first && p->arg == 0)
    luaL_addstring(b, "fn");
  else {
    lua_pushfstring(L, "args[%d]", p->arg + !p->fn_first);
    luaL_addvalue(b);
  }
  for (i = 0; i < p->nkeys; i++) {
    int k = p->keys[i];
    if (lua_type(L, k) == LUA_TSTRING)
      lua_pushfstring(L, ".%s", lua_tostring(L, k));
    else if (lua_type(L, k) == LUA_TNUMBER || lua_type(L, k) == LUA_TBOOLEAN) {
      lua_pushfstring(L, "[%s]", luaL_tolstring(L, k, NULL));
      lua_remove(L, -2);
    } else
      lua_pushfstring(L, "[<%s key>]", luaL_typename(L, k));
    luaL_addvalue(b);
  }
}

/* Raises SendError "<path>: <why>". */
static void fail(packer *p, const char *why) {
  lua_State *L = p->L;
  luaL_Buffer b;
  ensure_core(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  lua_getfield(L, -1, "SendError");
  luaL_buffinit(L, &b);
  add_path(p, &b);
  luaL_addstring(&b, ": ");
  luaL_addstring(&b, why);
  luaL_pushresult(&b);
  lua_call(L, 1, 1);
  lua_error(L);
}

/* lua_dump's writer into a buffer opened at its first call, above the
 * function being dumped. */
typedef struct dump_state {
  luaL_Buffer b;
  int open;
} dump_state;

static int dump_writer(lua_State *L, const void *data, size_t n, void *ud) {
  dump_state *d = ud;
  if (!d->open) {
    luaL_buffinit(L, &d->b);
    d->open = 1;
  }
  luaL_addlstring(&d->b, data, n);
  return 0;
}

/* Can the Lua function at idx be sent: has it no upvalue but _ENV?
 * *has_env tells whether it has that one. Leaves the stack as it was. */
static int sendable_lfunction(lua_State *L, int idx, int *has_env) {
  const char *name = lua_getupvalue(L, idx, 1);
  *has_env = name != NULL;
  if (name == NULL)
    return 1;
  lua_pop(L, 1);
  if (strcmp(name, "_ENV") != 0)
    return 0;
  if (lua_getupvalue(L, idx, 2) != NULL) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* Registry keys of a state's function caches: the bytecode of the
 * functions it sent (weak keys: function -> bytecode), and the functions
 * it received (at most LOAD_CACHE_MAX, then it starts again). A function
 * sent again is neither dumped nor loaded again, and arrives as the
 * function that came before: it has no upvalue but the receiver's _ENV,
 * so nothing tells the two apart but identity.
 *
 * The receiver's cache is keyed by the address of the bytecode string in
 * the sender (a light userdata: no hashing of the bytecode), and holds,
 * for each function, the bytecode it was loaded from, which must equal
 * the bytecode received: an address freed and used again for another
 * function's bytecode is then a miss. */
static const char dump_cache_key = 0, load_cache_key = 0;
#define LOAD_CACHE_MAX 128

/* Pushes the bytecode of the Lua function at idx, or nil when it cannot
 * be dumped. */
static void push_bytecode(lua_State *L, int idx) {
  int base = lua_gettop(L);
  idx = lua_absindex(L, idx);
  aio_push_weak_registry_table(L, &dump_cache_key, "k");
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TSTRING) { /* [cache, nil] */
    dump_state d;
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    d.open = 0;
    if (lua_dump(L, dump_writer, &d, 0) != 0 || !d.open) {
      lua_settop(L, base);
      lua_pushnil(L);
      return;
    }
    luaL_pushresult(&d.b); /* [cache, fn, code] */
    lua_remove(L, -2);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
}

static void pack_value(packer *p, int idx);

/* A Lua function in a message: T_LFUNC, the bytecode's length and bytes,
 * whether it has _ENV, and the bytecode's address (its key in the
 * receiver's cache). LFUNC_SIZE(len) bytes; write_lfunc writes them at w
 * and returns their end. */
#define LFUNC_SIZE(len) (1 + sizeof(size_t) + (len) + 1 + sizeof(const char *))

static unsigned char *write_lfunc(unsigned char *w, const char *code,
                                  size_t len, int has_env) {
  *w++ = T_LFUNC;
  memcpy(w, &len, sizeof len);
  w += sizeof len;
  memcpy(w, code, len);
  w += len;
  *w++ = (unsigned char)has_env;
  memcpy(w, &code, sizeof code);
  return w + sizeof code;
}

static void pack_function(packer *p, int idx) {
  lua_State *L = p->L;
  const char *code;
  size_t len;
  int has_env;
  if (lua_iscfunction(L, idx)) {
    lua_CFunction f = lua_tocfunction(L, idx);
    if (lua_getupvalue(L, idx, 1) != NULL)
      fail(p, "C function with upvalues");
    put_byte(p, T_CFUNC);
    put(p, &f, sizeof f);
    return;
  }
  luaL_checkstack(L, 6, "too many values to send");
  if (!sendable_lfunction(L, idx, &has_env))
    fail(p, "function with upvalues");
  push_bytecode(L, idx);
  if (lua_isnil(L, -1))
    fail(p, "function cannot be dumped");
  code = lua_tolstring(L, -1, &len);
  reserve(p, LFUNC_SIZE(len));
  p->m->len = (size_t)(write_lfunc(p->m->buf + p->m->len, code, len,
                                   has_env) - p->m->buf);
  lua_pop(L, 1);
}

/* Error objects: class name, then the fields as a table. */
static int pack_error(packer *p, int idx) {
  lua_State *L = p->L;
  const char *cname;
  size_t len;
  if (!lua_getmetatable(L, idx))
    return 0;
  lua_pushliteral(L, "__is");
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "__name");
  cname = lua_tolstring(L, -1, &len);
  put_byte(p, T_ERROR);
  put_size(p, len);
  put(p, cname ? cname : "", len);
  lua_pop(L, 2);
  /* the fields, as a plain table (without the metatable) */
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  pack_value(p, lua_gettop(L));
  lua_pop(L, 1);
  return 1;
}

static void pack_table(packer *p, int idx) {
  lua_State *L = p->L;
  int ref;
  if (p->seen == 0) {
    /* the first table is a top-level value: no loop over a table's
     * pairs is using the top of the stack */
    lua_newtable(L);
    p->seen = lua_gettop(L);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, p->seen) == LUA_TNUMBER) {
    ref = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    put_byte(p, T_TABLEREF);
    put(p, &ref, sizeof ref);
    return;
  }
  lua_pop(L, 1);
  if (pack_error(p, idx))
    return;
  if (lua_getmetatable(L, idx)) {
    lua_pop(L, 1);
    fail(p, "table with a metatable");
  }
  ref = ++p->ntables;
  lua_pushvalue(L, idx);
  lua_pushinteger(L, ref);
  lua_rawset(L, p->seen);
  put_byte(p, T_TABLE);
  if (++p->depth > MAX_DEPTH)
    fail(p, "tables nested too deeply");
  luaL_checkstack(L, 6, NULL);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_gettop(L) - 1, v = lua_gettop(L);
    int kt = lua_type(L, k);
    p->keys[p->nkeys++] = k;
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
      fail(p, "table key that cannot be sent");
    pack_value(p, k);
    pack_value(p, v);
    p->nkeys--;
    lua_pop(L, 1);
  }
  p->depth--;
  put_byte(p, T_END);
}

static void pack_value(packer *p, int idx) {
  lua_State *L = p->L;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    put_byte(p, T_NIL);
    break;
  case LUA_TBOOLEAN:
    put_byte(p, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      put_byte(p, T_INT);
      put(p, &i, sizeof i);
    } else {
      lua_Number n = lua_tonumber(L, idx);
      put_byte(p, T_FLT);
      put(p, &n, sizeof n);
    }
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    put_byte(p, T_STR);
    put_size(p, len);
    put(p, s, len);
    break;
  }
  case LUA_TTABLE:
    pack_table(p, idx);
    break;
  case LUA_TFUNCTION:
    pack_function(p, idx);
    break;
  case LUA_TUSERDATA: {
    void *obj = NULL;
    const aio_shared_type *type = shared_of(L, idx, &obj);
    if (type == NULL) {
      lua_pushfstring(L, "%s value", luaL_typename(L, idx));
      if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
        lua_pushfstring(L, "%s value", lua_tostring(L, -1));
        fail(p, lua_tostring(L, -1));
      }
      fail(p, lua_tostring(L, -1));
    }
    put_byte(p, T_SHARED);
    put(p, &type, sizeof type);
    put(p, &obj, sizeof obj);
    type->retain(obj);
    p->m->nshared++;
    break;
  }
  default:
    lua_pushfstring(L, "%s value", luaL_typename(L, idx));
    fail(p, lua_tostring(L, -1));
  }
}

static void release_shared(aio_msg *m);

/* Protected: [packer, values...] */
static int pack_protected(lua_State *L) {
  packer *p = lua_touserdata(L, 1);
  int n = lua_gettop(L) - 1;
  for (p->arg = 0; p->arg < n; p->arg++)
    pack_value(p, 2 + p->arg);
  return 0;
}

/* The fast way, for the common case of values that cannot fail to pack
 * (nil, booleans, numbers, strings, light C functions, shareable
 * objects): their size is known in advance, so the message is one
 * allocation, built without a protected call or any Lua table. */
/* The bytecode of the Lua function at idx (len bytes) when it has no
 * upvalue but _ENV (*has_env: it has that one) and this state sent it
 * before; else NULL. Allocates nothing: the string stays in the cache
 * while the function lives. */
static const char *cached_bytecode(lua_State *L, int idx, size_t *len,
                                   int *has_env) {
  const char *code = NULL;
  luaL_checkstack(L, 3, "too many values to send");
  if (!sendable_lfunction(L, idx, has_env))
    return NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &dump_cache_key) == LUA_TTABLE) {
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TSTRING)
      code = lua_tolstring(L, -1, len);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return code;
}

/* What pack_simple learns of a value while sizing it, for writing it. */
typedef struct simple_val {
  const aio_shared_type *st; /* a shareable object: its type, or NULL */
  void *obj;
  const char *code;          /* a Lua function sent before: its bytecode */
  size_t len;
  int has_env;
} simple_val;

#define SIMPLE_MAX 16 /* values pack_simple takes at most */

static size_t simple_size(lua_State *L, int idx, simple_val *v) {
  size_t len;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
  case LUA_TBOOLEAN:
    return 1;
  case LUA_TNUMBER:
    return 1 + 8;
  case LUA_TSTRING:
    lua_tolstring(L, idx, &len);
    return 1 + sizeof(size_t) + len;
  case LUA_TFUNCTION:
    if (!lua_iscfunction(L, idx)) { /* a Lua function sent before */
      v->code = cached_bytecode(L, idx, &v->len, &v->has_env);
      if (v->code == NULL)
        return 0;
      return LFUNC_SIZE(v->len);
    }
    if (lua_getupvalue(L, idx, 1) != NULL) { /* a C closure */
      lua_pop(L, 1);
      return 0;
    }
    return 1 + sizeof(lua_CFunction);
  case LUA_TUSERDATA:
    v->st = shared_of(L, idx, &v->obj);
    return v->st ? 1 + sizeof(void *) * 2 : 0;
  default:
    return 0;
  }
}

static void put_simple(unsigned char **w, lua_State *L, int idx,
                       const simple_val *v) {
  unsigned char *p = *w;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    *p++ = T_NIL;
    break;
  case LUA_TBOOLEAN:
    *p++ = lua_toboolean(L, idx) ? T_TRUE : T_FALSE;
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      *p++ = T_INT;
      memcpy(p, &i, sizeof i);
    } else {
      lua_Number x = lua_tonumber(L, idx);
      *p++ = T_FLT;
      memcpy(p, &x, sizeof x);
    }
    p += 8;
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    *p++ = T_STR;
    memcpy(p, &len, sizeof len);
    p += sizeof len;
    memcpy(p, s, len);
    p += len;
    break;
  }
  case LUA_TFUNCTION: {
    lua_CFunction f = lua_tocfunction(L, idx);
    if (f == NULL) { /* a Lua function sent before */
      p = write_lfunc(p, v->code, v->len, v->has_env);
      break;
    }
    *p++ = T_CFUNC;
    memcpy(p, &f, sizeof f);
    p += sizeof f;
    break;
  }
  default: /* a shareable object */
    *p++ = T_SHARED;
    memcpy(p, &v->st, sizeof v->st);
    memcpy(p + sizeof v->st, &v->obj, sizeof v->obj);
    p += sizeof v->st + sizeof v->obj;
    v->st->retain(v->obj);
  }
  *w = p;
}

/* Bytes of a block before its room (aio_msg_pack_room): aligned for any
 * type. */
#define ROOM_ALIGN 16
static size_t room_offset(size_t used) {
  return (used + ROOM_ALIGN - 1) / ROOM_ALIGN * ROOM_ALIGN;
}

static aio_msg *pack_simple(lua_State *L, int first, int n, size_t room) {
  size_t total = 0, size;
  int i, nshared = 0;
  aio_msg *m;
  unsigned char *w;
  simple_val vals[SIMPLE_MAX];
  if (n > SIMPLE_MAX)
    return NULL;
  for (i = 0; i < n; i++) {
    size_t sz;
    vals[i].st = NULL;
    sz = simple_size(L, first + i, &vals[i]);
    if (sz == 0)
      return NULL;
    nshared += vals[i].st != NULL;
    total += sz;
  }
  size = room ? room_offset(sizeof *m + total) + room : sizeof *m + total;
  m = size <= AIO_BLOCK_SIZE ? aio_block_alloc() : malloc(size);
  if (m == NULL)
    luaL_error(L, "not enough memory");
  m->block = size <= AIO_BLOCK_SIZE;
  m->buf = (unsigned char *)(m + 1);
  m->len = m->cap = total;
  m->nshared = nshared;
  w = m->buf;
  for (i = 0; i < n; i++)
    put_simple(&w, L, first + i, &vals[i]);
  return m;
}

/* aio_msg_pack and aio_msg_pack_room: `room` bytes more in the block
 * (0: none, and no message at all for no value). */
static aio_msg *pack(lua_State *L, int first, int n, int fn_first,
                     size_t room) {
  packer p;
  aio_msg *m;
  int i, st, base;
  first = lua_absindex(L, first);
  if (first + n - 1 > lua_gettop(L)) /* missing values are nil */
    lua_settop(L, first + n - 1);
  if (n == 0 && room == 0)
    return NULL; /* nothing to send: no message at all */
  m = pack_simple(L, first, n, room);
  if (m != NULL)
    return m;
  m = calloc(1, room ? room_offset(sizeof *m) + room : sizeof *m);
  if (m == NULL)
    luaL_error(L, "not enough memory");
  p.L = L;
  p.m = m;
  p.seen = p.ntables = p.depth = p.nkeys = 0;
  p.fn_first = fn_first;
  base = lua_gettop(L);
  /* run the packing protected (with copies of the values as arguments)
   * so that the buffer is freed on failure */
  luaL_checkstack(L, n + 2, "too many values to send");
  lua_pushcfunction(L, pack_protected);
  lua_pushlightuserdata(L, &p);
  for (i = 0; i < n; i++)
    lua_pushvalue(L, first + i);
  st = lua_pcall(L, 1 + n, 0, 0);
  if (st != LUA_OK) {
    release_shared(m);
    free(m->buf);
    free(m);
    lua_settop(L, base + 1);
    lua_error(L);
  }
  return m;
}

aio_msg *aio_msg_pack(lua_State *L, int first, int n, int fn_first) {
  return pack(L, first, n, fn_first, 0);
}

aio_msg *aio_msg_pack_room(lua_State *L, int first, int n, int fn_first,
                           size_t room, void **roomp) {
  aio_msg *m = pack(L, first, n, fn_first, room);
  *roomp = (char *)m + room_offset(sizeof *m + (m->buf ==
                                   (unsigned char *)(m + 1) ? m->len : 0));
  return m;
}

/* The buffer of a message made by pack_simple is part of its block. */
static int inline_buffer(const aio_msg *m) {
  return m->buf == (const unsigned char *)(m + 1);
}

/* ------------------------------------------------------------------ */
/* Unpacking                                                           */

typedef struct reader {
  lua_State *L;
  const aio_msg *m;
  size_t pos;
  int tables;      /* stack index: reference number -> table */
  int ntables;
} reader;

static void get(reader *r, void *out, size_t n) {
  memcpy(out, r->m->buf + r->pos, n);
  r->pos += n;
}

static int get_byte(reader *r) {
  return r->m->buf[r->pos++];
}

static size_t get_size(reader *r) {
  size_t n;
  get(r, &n, sizeof n);
  return n;
}

static void unpack_value(reader *r);

/* Pushes the function cached under key in the cache on top (replacing
 * it) and returns 1 when it was loaded from the same bytecode; else
 * leaves the cache alone and returns 0. */
static int cached_function(lua_State *L, const char *code, size_t len,
                           void *key) {
  if (lua_rawgetp(L, -1, key) == LUA_TFUNCTION) { /* [cache, fn] */
    size_t clen;
    const char *cached;
    lua_pushvalue(L, -1);
    lua_rawget(L, -3); /* [cache, fn, code] */
    cached = lua_tolstring(L, -1, &clen);
    if (cached != NULL && clen == len && memcmp(cached, code, len) == 0) {
      lua_pop(L, 1);
      lua_replace(L, -2);
      return 1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* Pushes the function of the bytecode (len bytes at code), loaded or
 * from the state's cache of received functions under key; with has_env,
 * its one upvalue is the state's globals. */
static void push_loaded(lua_State *L, const char *code, size_t len,
                        int has_env, void *key) {
  lua_Integer n;
  luaL_checkstack(L, 5, "too many values received");
  aio_push_weak_registry_table(L, &load_cache_key, NULL);
  if (cached_function(L, code, len, key))
    return;
  lua_pushlstring(L, code, len); /* [cache, code] */
  if (luaL_loadbufferx(L, code, len, "=(sent function)", "b") != LUA_OK)
    lua_error(L);
  if (has_env) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_setupvalue(L, -2, 1);
  }
  lua_rawgeti(L, -3, 0); /* the count of cached functions */
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (n >= LOAD_CACHE_MAX) { /* start again: a new cache */
    lua_newtable(L);
    lua_replace(L, -4);
    lua_pushvalue(L, -3);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &load_cache_key);
    n = 0;
  }
  lua_pushinteger(L, n + 1);
  lua_rawseti(L, -4, 0);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -4, key); /* cache[key] = fn */
  lua_pushvalue(L, -1);
  lua_pushvalue(L, -3);
  lua_rawset(L, -5); /* cache[fn] = code */
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* Shared objects and error objects need the core's metatables and error
 * classes in the receiving state (a worker state may not have required
 * asyncio yet). */
static void ensure_core(lua_State *L) {
  int loaded = lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors) ==
               LUA_TTABLE;
  lua_pop(L, 1);
  if (!loaded) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "asyncio.core");
    lua_call(L, 1, 0);
  }
}

/* Pushes the error object of class `name` with the fields table on top
 * (replaced). Unknown classes become RuntimeError objects. */
static void rebuild_error(lua_State *L, const char *name) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &aio_key_errors);
  if (lua_getfield(L, -1, name) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_getfield(L, -1, "RuntimeError");
  }
  lua_remove(L, -2);
  lua_setmetatable(L, -2);
}

static void unpack_value(reader *r) {
  lua_State *L = r->L;
  luaL_checkstack(L, 4, NULL);
  switch (get_byte(r)) {
  case T_NIL:
    lua_pushnil(L);
    break;
  case T_FALSE:
    lua_pushboolean(L, 0);
    break;
  case T_TRUE:
    lua_pushboolean(L, 1);
    break;
  case T_INT: {
    lua_Integer i;
    get(r, &i, sizeof i);
    lua_pushinteger(L, i);
    break;
  }
  case T_FLT: {
    lua_Number n;
    get(r, &n, sizeof n);
    lua_pushnumber(L, n);
    break;
  }
  case T_STR: {
    size_t len = get_size(r);
    lua_pushlstring(L, (const char *)r->m->buf + r->pos, len);
    r->pos += len;
    break;
  }
  case T_TABLE:
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, r->tables, ++r->ntables);
    while (r->m->buf[r->pos] != T_END) {
      unpack_value(r);
      unpack_value(r);
      lua_rawset(L, -3);
    }
    r->pos++;
    break;
  case T_TABLEREF: {
    int ref;
    get(r, &ref, sizeof ref);
    lua_rawgeti(L, r->tables, ref);
    break;
  }
  case T_LFUNC: {
    size_t len = get_size(r);
    const char *code = (const char *)r->m->buf + r->pos;
    int has_env;
    void *key;
    r->pos += len;
    has_env = get_byte(r);
    get(r, &key, sizeof key);
    push_loaded(L, code, len, has_env, key);
    break;
  }
  case T_CFUNC: {
    lua_CFunction f;
    get(r, &f, sizeof f);
    lua_pushcfunction(L, f);
    break;
  }
  case T_ERROR: {
    size_t len = get_size(r), n = len;
    char name[64];
    if (n >= sizeof name)
      n = sizeof name - 1;
    memcpy(name, r->m->buf + r->pos, n);
    name[n] = '\0';
    r->pos += len;
    ensure_core(L);
    unpack_value(r); /* the fields */
    rebuild_error(L, name);
    break;
  }
  case T_SHARED: {
    const aio_shared_type *type;
    void *obj;
    get(r, &type, sizeof type);
    get(r, &obj, sizeof obj);
    ensure_core(L);
    type->push(L, obj); /* takes a reference of its own */
    break;
  }
  default:
    luaL_error(L, "corrupt message");
  }
}

int aio_msg_unpack(lua_State *L, const aio_msg *m) {
  reader r;
  int base = lua_gettop(L);
  if (m == NULL)
    return 0;
  memset(&r, 0, sizeof r);
  r.L = L;
  r.m = m;
  if (!inline_buffer(m)) { /* it may hold tables: number -> table */
    lua_newtable(L);
    r.tables = base + 1;
  }
  while (r.pos < m->len)
    unpack_value(&r);
  if (r.tables)
    lua_remove(L, r.tables);
  return lua_gettop(L) - base;
}

/* Walks a message to release its shared references. */
static void release_shared(aio_msg *m) {
  size_t pos = 0;
  if (m == NULL || m->nshared == 0)
    return;
  while (pos < m->len) {
    int t = m->buf[pos++];
    switch (t) {
    case T_INT:
    case T_FLT:
      pos += 8;
      break;
    case T_STR: {
      size_t len;
      memcpy(&len, m->buf + pos, sizeof len);
      pos += sizeof len + len;
      break;
    }
    case T_TABLEREF:
      pos += sizeof(int);
      break;
    case T_LFUNC: {
      size_t len;
      memcpy(&len, m->buf + pos, sizeof len);
      pos += sizeof len + len + 1 + sizeof(void *);
      break;
    }
    case T_CFUNC:
      pos += sizeof(lua_CFunction);
      break;
    case T_ERROR: {
      size_t len;
      memcpy(&len, m->buf + pos, sizeof len);
      pos += sizeof len + len;
      break;
    }
    case T_SHARED: {
      const aio_shared_type *type;
      void *obj;
      memcpy(&type, m->buf + pos, sizeof type);
      memcpy(&obj, m->buf + pos + sizeof type, sizeof obj);
      pos += sizeof type + sizeof obj;
      type->release(obj);
      break;
    }
    default:
      break;
    }
  }
  m->nshared = 0;
}

void aio_msg_free(aio_msg *m) {
  if (m == NULL)
    return;
  release_shared(m);
  if (!inline_buffer(m))
    free(m->buf);
  if (m->block)
    aio_block_free(m);
  else
    free(m);
}
