/*
 * server.c - the HTTP/1.1 server protocol of asyncio.http.web: a C
 * protocol (the core's AIO_PROTO_VT mechanism, as the stream protocol)
 * that feeds libhttp_parser straight from the transport's read buffer,
 * collects each request head in C and calls Lua once per complete head.
 *
 *   local p = _http.ServerProtocol(conn [, {max_field_size = 8190,
 *                                   max_headers = 128, max_body = 0}])
 *   loop:create_server(function() return p end, ...)
 *
 * conn is a Lua table whose methods the protocol calls (as methods, in
 * Lua context, never from inside the parser):
 *   conn:on_made(transport)      connection_made
 *   conn:on_request(head)        a complete head: {method =, url =,
 *     path = (the target up to '?' or '#'), query_string =, major =,
 *     minor =, keep_alive =, upgrade =, chunked =, content_length =,
 *     has_body =, headers = (as parser.c's)}; the booleans are nil when
 *     false, content_length when absent
 *   conn:on_body(data [, ends])  a piece of that request's body; ends,
 *     when chunks of a chunked body ended in it, packs their end offsets
 *     in data as native uint32 (the final chunk of size 0 has none)
 *   conn:on_body_end()           its body is complete
 *   conn:on_error(name, size, in_body) malformed input (libhttp_parser's
 *     error name, "HPE_HEADER_OVERFLOW" for a limit on the fields,
 *     "HPE_LINE_TOO_LONG" for a target over max_field_size,
 *     "HPE_BODY_TOO_LARGE" when the body goes over max_body, or a
 *     smuggling guard's (check_framing); size: the body bytes so far;
 *     in_body: the head of that message was given to on_request):
 *     nothing more is parsed
 *   conn:on_partial()            the first bytes of a head came, not all
 *     of it (once per head)
 *   conn:on_eof() -> keep        the client's end; true keeps the
 *     connection half-open
 *   conn:on_lost(exc)            connection_lost
 *   conn:on_pause_writing(), conn:on_resume_writing()
 *
 * Requests are answered in order: once a request's message is complete,
 * the bytes after it (pipelined requests) stay buffered until Lua calls
 * p:finish() for it; reading pauses while more than HOLD bytes wait.
 * After an upgrade (or CONNECT) nothing more is parsed: p:take_rest()
 * returns the bytes after the head and detaches the protocol.
 *
 * On a C transport the data is read straight into the protocol's buffer;
 * on any other (TLS's, written in Lua) the transport calls the Lua
 * methods connection_made, data_received, eof_received, connection_lost,
 * pause_writing and resume_writing, which do the same.
 *
 * Responses: p:respond(status_line, date, content_type, headers, length,
 * chunked, connection, body) writes the whole response (or its head) in
 * one transport write, or corks it while pipelined requests wait (then
 * the batch is one write); p:write(data) writes raw bytes, p:flush()
 * what is corked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "internal.h"
#include "http.h"

#define SERVER_MT "asyncio.http.ServerProtocol"
#define HOLD (256 * 1024) /* unparsed bytes kept while a request runs */

/* What the parser paused for. */
enum { EV_NONE, EV_HEAD, EV_DONE };

/* Uservalues. */
enum { SV_CONN = 1, SV_TRANSPORT, SV_HEAD, SV_COUNT = SV_HEAD };

typedef struct srv {
  http_parser p;
  aio_http_acc acc;      /* the head being collected */
  lua_State *L;          /* during execute only */
  int uidx;              /* the protocol's stack index during execute */
  char *rbuf;            /* bytes read, parsed from roff */
  size_t roff, rlen, rcap;
  char *body;            /* body bytes parsed by one execute */
  size_t blen, bcap;
  uint32_t *ends;        /* offsets in body where chunks ended */
  size_t nends, ecap;
  char *obuf;            /* corked responses (pipelined), not written */
  size_t olen, ocap;
  uint64_t body_total, max_body;
  uint64_t chunk_size;   /* the size of the chunk being parsed */
  int ev;                /* EV_* */
  unsigned char inflight;  /* a request is served (until finish) */
  unsigned char msg_done;  /* its message is complete */
  unsigned char has_body, in_head, in_body, told_partial, failed, upgraded;
  unsigned char driving, lost, rpaused, detached, too_large;
} srv;

static http_parser_settings settings;

static srv *check_srv(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, SERVER_MT);
}

/* ------------------------------------------------------------------ */
/* Parser callbacks (no Lua call, no raise but memory errors)          */

static int push_head(srv *ps) {
  lua_getiuservalue(ps->L, ps->uidx, SV_HEAD);
  return lua_gettop(ps->L);
}

static int on_message_begin(http_parser *hp) {
  srv *ps = hp->data;
  lua_State *L = ps->L;
  lua_createtable(L, 0, 8);
  lua_createtable(L, 8, 4);
  lua_setfield(L, -2, "headers");
  lua_setiuservalue(L, ps->uidx, SV_HEAD);
  aio_http_acc_reset(&ps->acc);
  ps->body_total = 0;
  ps->in_head = 1;
  ps->told_partial = 0;
  return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n) {
  return aio_http_acc_start(&((srv *)hp->data)->acc, at, n);
}

static int on_header_field(http_parser *hp, const char *at, size_t n) {
  srv *ps = hp->data;
  int r = aio_http_acc_field(ps->L, &ps->acc, push_head(ps), "url", at, n);
  lua_pop(ps->L, 1);
  return r;
}

static int on_header_value(http_parser *hp, const char *at, size_t n) {
  return aio_http_acc_value(&((srv *)hp->data)->acc, at, n);
}

/* head.path and head.query_string from head.url (at -1 in the head at
 * hidx). */
static void split_target(lua_State *L, int hidx) {
  size_t n, i, q;
  const char *u = lua_tolstring(L, -1, &n);
  for (i = 0; i < n && u[i] != '?' && u[i] != '#'; i++) {}
  lua_pushlstring(L, u, i);
  lua_setfield(L, hidx, "path");
  q = i;
  if (i < n && u[i] == '?')
    for (q = ++i; q < n && u[q] != '#'; q++) {}
  lua_pushlstring(L, u + i, q - i);
  lua_setfield(L, hidx, "query_string");
}

/* head[k] = true when v (false is left out: nil). */
static void set_bool(lua_State *L, int hidx, const char *k, int v) {
  if (!v)
    return;
  lua_pushboolean(L, 1);
  lua_setfield(L, hidx, k);
}

/* Request smuggling guards, from the framing facts the accumulator
 * noted: the name of the error when a Transfer-Encoding's last coding
 * (over all its fields, in order) is not exactly "chunked", or when it is
 * but the parser did not take the body as chunked, or when "chunked"
 * comes more than once (RFC 9112 6.1; aiohttp refuses a second
 * Transfer-Encoding field), or when Host comes
 * twice, or when a field name holds whitespace (RFC 9112 5.1: a server
 * must answer 400); NULL when the head is sound. */
static const char *check_framing(const aio_http_acc *a, http_parser *hp) {
  if (a->spaced_name)
    return "HPE_INVALID_HEADER_TOKEN";
  if (a->hosts > 1)
    return "HPE_DUPLICATE_HOST";
  if (a->te && (!a->te_chunked || !(hp->flags & F_CHUNKED) ||
                a->chunkeds > 1))
    return "HPE_INVALID_TRANSFER_ENCODING";
  return NULL;
}

static int on_headers_complete(http_parser *hp) {
  srv *ps = hp->data;
  lua_State *L = ps->L;
  int h = push_head(ps);
  if (aio_http_acc_flush(L, &ps->acc, h, "url")) {
    lua_pop(L, 1);
    return -1;
  }
  if ((ps->acc.own_err = check_framing(&ps->acc, hp))) {
    lua_pop(L, 1);
    return -1;
  }
  lua_pushstring(L, http_method_str((enum http_method)hp->method));
  lua_setfield(L, h, "method");
  if (lua_getfield(L, h, "url") == LUA_TNIL) {
    lua_pushliteral(L, "");
    lua_copy(L, -1, -2);
    lua_setfield(L, h, "url");
  }
  split_target(L, h);
  lua_pop(L, 1);
  lua_pushinteger(L, hp->http_major);
  lua_setfield(L, h, "major");
  lua_pushinteger(L, hp->http_minor);
  lua_setfield(L, h, "minor");
  set_bool(L, h, "keep_alive", http_should_keep_alive(hp));
  set_bool(L, h, "upgrade", hp->upgrade);
  set_bool(L, h, "chunked", (hp->flags & F_CHUNKED) != 0);
  ps->has_body = (hp->flags & F_CHUNKED) != 0;
  if (hp->flags & F_CONTENTLENGTH) {
    lua_pushinteger(L, (lua_Integer)hp->content_length);
    lua_setfield(L, h, "content_length");
    ps->has_body = ps->has_body || hp->content_length > 0;
  }
  set_bool(L, h, "has_body", ps->has_body);
  lua_pop(L, 1);
  ps->in_head = 0;
  ps->in_body = 1;
  ps->ev = EV_HEAD;
  http_parser_pause(hp, 1);
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n) {
  srv *ps = hp->data;
  ps->body_total += n;
  if (ps->max_body && ps->body_total > ps->max_body) {
    ps->too_large = 1;
    return -1;
  }
  if (ps->blen + n > ps->bcap) {
    size_t cap = ps->bcap ? ps->bcap : 4096;
    while (cap < ps->blen + n) cap *= 2;
    char *b = realloc(ps->body, cap);
    if (!b) { ps->acc.own_err = "HPE_OUT_OF_MEMORY"; return -1; }
    ps->body = b;
    ps->bcap = cap;
  }
  memcpy(ps->body + ps->blen, at, n);
  ps->blen += n;
  return 0;
}

static int on_chunk_header(http_parser *hp) {
  ((srv *)hp->data)->chunk_size = hp->content_length;
  return 0;
}

/* A chunk with data ended: its offset in the body bytes of this execute
 * goes to conn with them (aiohttp's end_http_chunk_receiving). */
static int on_chunk_complete(http_parser *hp) {
  srv *ps = hp->data;
  if (ps->chunk_size == 0)
    return 0; /* the last chunk */
  if (ps->nends == ps->ecap) {
    size_t cap = ps->ecap ? ps->ecap * 2 : 16;
    uint32_t *e = realloc(ps->ends, cap * sizeof *e);
    if (!e) { ps->acc.own_err = "HPE_OUT_OF_MEMORY"; return -1; }
    ps->ends = e;
    ps->ecap = cap;
  }
  ps->ends[ps->nends++] = (uint32_t)ps->blen;
  return 0;
}

static int on_message_complete(http_parser *hp) {
  srv *ps = hp->data;
  ps->in_body = 0;
  ps->ev = EV_DONE;
  http_parser_pause(hp, 1);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Calling conn                                                        */

/* conn:name(args...) with the nargs values on top (popped), the
 * protocol at uidx; nres results. Raises what the method raises. */
static void call_conn(lua_State *L, int uidx, const char *name, int nargs,
                      int nres) {
  int base = lua_gettop(L) - nargs;
  lua_getiuservalue(L, uidx, SV_CONN);
  lua_getfield(L, -1, name);
  lua_insert(L, base + 1);
  lua_insert(L, base + 2); /* [fn, conn, args...] */
  lua_call(L, nargs + 1, nres);
}

/* transport:name(args...), as call_conn. */
static void call_transport(lua_State *L, int uidx, const char *name,
                           int nargs) {
  int base = lua_gettop(L) - nargs;
  lua_getiuservalue(L, uidx, SV_TRANSPORT);
  lua_getfield(L, -1, name);
  lua_insert(L, base + 1);
  lua_insert(L, base + 2);
  lua_call(L, nargs + 1, 0);
}

/* Writes what is corked, if anything. */
static void flush_out(lua_State *L, srv *ps, int uidx) {
  if (ps->olen == 0)
    return;
  lua_pushlstring(L, ps->obuf, ps->olen);
  ps->olen = 0;
  call_transport(L, uidx, "write", 1);
}

/* Appends the string on top (popped) to the corked bytes. */
static void cork(lua_State *L, srv *ps) {
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (ps->olen + n > ps->ocap) {
    size_t cap = ps->ocap ? ps->ocap : 4096;
    while (cap < ps->olen + n) cap *= 2;
    char *b = realloc(ps->obuf, cap);
    if (!b)
      luaL_error(L, "not enough memory");
    ps->obuf = b;
    ps->ocap = cap;
  }
  memcpy(ps->obuf + ps->olen, s, n);
  ps->olen += n;
  lua_pop(L, 1);
}

/* Gives conn the body bytes the last execute parsed, and the chunk ends
 * among them. */
static void deliver_body(lua_State *L, srv *ps, int uidx) {
  int nargs = 1;
  lua_pushlstring(L, ps->body, ps->blen);
  if (ps->nends > 0) {
    lua_pushlstring(L, (const char *)ps->ends, ps->nends * sizeof *ps->ends);
    nargs = 2;
  }
  ps->blen = ps->nends = 0;
  call_conn(L, uidx, "on_body", nargs, 0);
}

/* Pushes the name of the parser's error. */
static void push_error_name(lua_State *L, srv *ps) {
  if (ps->too_large)
    lua_pushliteral(L, "HPE_BODY_TOO_LARGE");
  else if (ps->acc.own_err)
    lua_pushstring(L, ps->acc.own_err);
  else
    lua_pushstring(L, http_errno_name(HTTP_PARSER_ERRNO(&ps->p)));
}

/* Stops or restarts reading as the held bytes ask. */
static void flow(lua_State *L, srv *ps, int uidx) {
  size_t held = ps->rlen - ps->roff;
  if (ps->lost || ps->detached)
    return;
  if (!ps->rpaused && held > HOLD) {
    ps->rpaused = 1;
    call_transport(L, uidx, "pause_reading", 0);
  } else if (ps->rpaused && held <= HOLD / 2) {
    ps->rpaused = 0;
    call_transport(L, uidx, "resume_reading", 0);
  }
}

/* One step after execute paused: the head or the end of a message. */
static void paused(lua_State *L, srv *ps, int uidx) {
  int ev = ps->ev;
  http_parser_pause(&ps->p, 0);
  ps->ev = EV_NONE;
  if (ev == EV_HEAD) {
    ps->inflight = 1;
    ps->msg_done = 0;
    lua_getiuservalue(L, uidx, SV_HEAD);
    lua_pushnil(L);
    lua_setiuservalue(L, uidx, SV_HEAD);
    call_conn(L, uidx, "on_request", 1, 0);
  } else if (ev == EV_DONE) {
    ps->msg_done = 1;
    if (ps->p.upgrade) /* the rest is another protocol's */
      ps->upgraded = 1;
    if (ps->has_body)
      call_conn(L, uidx, "on_body_end", 0, 0);
  }
}

/* Parses what is buffered, as far as the order of requests allows. */
static void drive_body(lua_State *L, srv *ps, int uidx) {
  while (!ps->failed && !ps->upgraded && !ps->lost && !ps->detached) {
    size_t avail = ps->rlen - ps->roff, n;
    enum http_errno e;
    if (ps->inflight && ps->msg_done)
      break; /* the next request waits for finish() */
    if (avail == 0)
      break;
    ps->L = L;
    ps->uidx = uidx;
    n = http_parser_execute(&ps->p, &settings, ps->rbuf + ps->roff, avail);
    ps->L = NULL;
    ps->roff += n;
    if (ps->blen || ps->nends) /* an end may come with no byte */
      deliver_body(L, ps, uidx);
    e = HTTP_PARSER_ERRNO(&ps->p);
    if (e == HPE_PAUSED)
      paused(L, ps, uidx);
    else if (e != HPE_OK) {
      ps->failed = 1;
      push_error_name(L, ps);
      lua_pushinteger(L, (lua_Integer)ps->body_total);
      lua_pushboolean(L, ps->in_body);
      call_conn(L, uidx, "on_error", 3, 0);
    } else if (n < avail) { /* cannot happen without an error or pause */
      /* (an upgrade takes effect at its message's end, paused() above:
       * p.upgrade is set from the head on, before a body) */
      ps->failed = 1;
      lua_pushliteral(L, "HPE_UNKNOWN");
      call_conn(L, uidx, "on_error", 1, 0);
    }
  }
  if (ps->roff == ps->rlen)
    ps->roff = ps->rlen = 0;
  if (ps->in_head && !ps->told_partial && !ps->failed && !ps->lost) {
    ps->told_partial = 1;
    call_conn(L, uidx, "on_partial", 0, 0);
  }
  flow(L, ps, uidx);
}

static int l_drive(lua_State *L) {
  drive_body(L, lua_touserdata(L, 1), 2);
  return 0;
}

/* Runs drive_body once at a time (a conn method may call finish()); the
 * protocol at uidx. Raises what conn raised, after marking the protocol
 * failed. */
static void drive(lua_State *L, srv *ps, int uidx) {
  if (ps->driving)
    return;
  ps->driving = 1;
  lua_pushcfunction(L, l_drive);
  lua_pushlightuserdata(L, ps);
  lua_pushvalue(L, uidx);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    ps->driving = 0;
    ps->failed = 1;
    lua_error(L);
  }
  ps->driving = 0;
}

/* ------------------------------------------------------------------ */
/* The protocol's entries                                              */

/* The buffer has room for n more bytes (0 or -1): what was read moves to
 * its start, else it grows (at least doubling). No Lua. */
static int reserve(srv *ps, size_t n) {
  if (ps->roff > 0 && ps->roff == ps->rlen)
    ps->roff = ps->rlen = 0;
  if (ps->rcap - ps->rlen >= n)
    return 0;
  if (ps->roff > 0) {
    memmove(ps->rbuf, ps->rbuf + ps->roff, ps->rlen - ps->roff);
    ps->rlen -= ps->roff;
    ps->roff = 0;
    if (ps->rcap - ps->rlen >= n)
      return 0;
  }
  size_t cap = aio_grown_cap(ps->rcap, ps->rlen + n);
  char *b = realloc(ps->rbuf, cap);
  if (b == NULL)
    return -1;
  ps->rbuf = b;
  ps->rcap = cap;
  return 0;
}

static void srv_get_buffer(void *p, size_t want, uv_buf_t *buf) {
  srv *ps = p;
  buf->base = NULL;
  buf->len = 0;
  if (reserve(ps, want) != 0 || ps->rbuf == NULL)
    return; /* the read fails with UV_ENOBUFS */
  buf->base = ps->rbuf + ps->rlen;
  buf->len = ps->rcap - ps->rlen;
}

static int srv_buffer_updated(void *p, size_t n) {
  ((srv *)p)->rlen += n;
  return 1;
}

/* Pushes the protocol's userdata (anchored while connected), or nothing
 * (returns 0). */
static int push_self(lua_State *L, srv *ps) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, ps) == LUA_TUSERDATA)
    return 1;
  lua_pop(L, 1);
  return 0;
}

static int l_wake(lua_State *L) {
  drive(L, lua_touserdata(L, 1), 2);
  return 0;
}

/* Data came on a C transport. A failure of conn aborts the transport,
 * then goes to the loop (reported as an I/O callback's). */
static void srv_wake(lua_State *L, void *p) {
  srv *ps = p;
  int top = lua_gettop(L);
  if (!push_self(L, ps))
    return;
  lua_pushcfunction(L, l_wake);
  lua_pushlightuserdata(L, ps);
  lua_pushvalue(L, top + 1);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    if (!ps->lost)
      call_transport(L, top + 1, "abort", 0);
    lua_error(L);
  }
  lua_settop(L, top);
}

static void srv_connection_made(lua_State *L, void *p, int pidx, int tidx) {
  pidx = lua_absindex(L, pidx);
  tidx = lua_absindex(L, tidx);
  lua_pushvalue(L, tidx);
  lua_setiuservalue(L, pidx, SV_TRANSPORT);
  lua_pushvalue(L, pidx);
  lua_rawsetp(L, LUA_REGISTRYINDEX, p);
  lua_pushvalue(L, tidx);
  call_conn(L, pidx, "on_made", 1, 0);
}

static int srv_eof_received(lua_State *L, void *p, int pidx) {
  int keep;
  (void)p;
  call_conn(L, lua_absindex(L, pidx), "on_eof", 0, 1);
  keep = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return keep;
}

static void srv_connection_lost(lua_State *L, void *p, int pidx, int eidx) {
  srv *ps = p;
  pidx = lua_absindex(L, pidx);
  eidx = lua_absindex(L, eidx);
  if (ps->lost)
    return;
  ps->lost = 1;
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, p);
  lua_pushvalue(L, eidx);
  call_conn(L, pidx, "on_lost", 1, 0);
}

static void srv_pause_writing(lua_State *L, void *p, int pidx) {
  (void)p;
  call_conn(L, lua_absindex(L, pidx), "on_pause_writing", 0, 0);
}

static void srv_resume_writing(lua_State *L, void *p, int pidx) {
  (void)p;
  call_conn(L, lua_absindex(L, pidx), "on_resume_writing", 0, 0);
}

static const aio_proto_vt srv_vt = {
    srv_get_buffer,      srv_buffer_updated, srv_wake,
    srv_connection_made, srv_eof_received,   srv_connection_lost,
    srv_pause_writing,   srv_resume_writing, 0};

/* ------------------------------------------------------------------ */
/* Lua methods                                                         */

/* The protocol entries as methods, for transports written in Lua. */
static int l_server_connection_made(lua_State *L) {
  srv *ps = check_srv(L, 1);
  luaL_checkany(L, 2);
  srv_connection_made(L, ps, 1, 2);
  return 0;
}

static int l_server_data_received(lua_State *L) {
  srv *ps = check_srv(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  if (ps->lost || ps->detached || n == 0)
    return 0;
  if (reserve(ps, n) != 0)
    return luaL_error(L, "not enough memory");
  memcpy(ps->rbuf + ps->rlen, data, n);
  ps->rlen += n;
  lua_settop(L, 1);
  drive(L, ps, 1);
  return 0;
}

static int l_server_eof_received(lua_State *L) {
  lua_pushboolean(L, srv_eof_received(L, check_srv(L, 1), 1));
  return 1;
}

static int l_server_connection_lost(lua_State *L) {
  srv *ps = check_srv(L, 1);
  lua_settop(L, 2);
  srv_connection_lost(L, ps, 1, 2);
  return 0;
}

static int l_server_pause_writing(lua_State *L) {
  srv_pause_writing(L, check_srv(L, 1), 1);
  return 0;
}

static int l_server_resume_writing(lua_State *L) {
  srv_resume_writing(L, check_srv(L, 1), 1);
  return 0;
}

/* finish(): the request served is answered; parsing goes on (conn's
 * methods may be called before it returns). */
static int l_server_finish(lua_State *L) {
  srv *ps = check_srv(L, 1);
  lua_settop(L, 1);
  ps->inflight = 0;
  if (!ps->lost)
    drive(L, ps, 1);
  return 0;
}

/* take_rest() -> the bytes after an upgrade's head; the protocol parses
 * nothing more (the transport goes to another protocol). */
static int l_server_take_rest(lua_State *L) {
  srv *ps = check_srv(L, 1);
  lua_pushlstring(L, ps->rbuf ? ps->rbuf + ps->roff : "",
                  ps->rlen - ps->roff);
  ps->roff = ps->rlen = 0;
  ps->detached = 1;
  if (ps->rpaused && !ps->lost) {
    ps->rpaused = 0;
    call_transport(L, 1, "resume_reading", 0);
  }
  return 1;
}

/* write(data): raw bytes to the transport, after what is corked. */
static int l_server_write(lua_State *L) {
  srv *ps = check_srv(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  flush_out(L, ps, 1);
  call_transport(L, 1, "write", 1);
  return 0;
}

/* flush(): writes the corked responses. */
static int l_server_flush(lua_State *L) {
  flush_out(L, check_srv(L, 1), 1);
  return 0;
}

static void add_field(luaL_Buffer *b, const char *k, size_t kn,
                      const char *v, size_t vn) {
  luaL_addlstring(b, k, kn);
  luaL_addlstring(b, ": ", 2);
  luaL_addlstring(b, v, vn);
  luaL_addlstring(b, "\r\n", 2);
}

static int skipped(const char *k, size_t n) {
  return (n == 14 && strncasecmp(k, "content-length", n) == 0) ||
         (n == 17 && strncasecmp(k, "transfer-encoding", n) == 0) ||
         (n == 10 && strncasecmp(k, "connection", n) == 0);
}

/* Adds the fields of the flat list at idx {name1, value1, ...}, checked
 * against header injection, but for the framing ones. */
static void add_fields(lua_State *L, luaL_Buffer *b, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  for (lua_Integer i = 1; i + 1 <= n; i += 2) {
    size_t kn, vn;
    lua_rawgeti(L, idx, i);
    lua_rawgeti(L, idx, i + 1);
    const char *k = lua_tolstring(L, -2, &kn);
    const char *v = lua_tolstring(L, -1, &vn);
    if (!k || !v)
      luaL_error(L, "header %d is not a string", (int)(i / 2 + 1));
    aio_http_check_text(L, k, kn, 1, "header name");
    aio_http_check_text(L, v, vn, 0, "header value");
    if (!skipped(k, kn)) {
      /* the buffer's box may sit under the pair: copy, then pop */
      char *dst = luaL_prepbuffsize(b, kn + vn + 4);
      memcpy(dst, k, kn);
      memcpy(dst + kn, ": ", 2);
      memcpy(dst + kn + 2, v, vn);
      memcpy(dst + kn + 2 + vn, "\r\n", 2);
      lua_pop(L, 2);
      luaL_addsize(b, kn + vn + 4);
    } else
      lua_pop(L, 2);
  }
}

/* respond(status_line, date, content_type, headers, length, chunked,
 * connection, body) -> corked: one write of
 *   status_line CRLF Server: luaio CRLF Date: date CRLF
 *   [Content-Type: content_type CRLF] the headers (a flat list, nil for
 *   none; Content-Length, Transfer-Encoding and Connection left out)
 *   [Transfer-Encoding: chunked | Content-Length: length CRLF]
 *   [Connection: connection CRLF] CRLF [body]
 * Raises for a CR, LF or NUL in a name or value. When the next request
 * is already buffered (pipelined), the bytes are kept instead (corked =
 * true) and go out with the last response of the batch, or flush(), or
 * once the batch holds CORK_MAX bytes: then it is written at once, so
 * that a client that reads no answers meets the transport's back-pressure
 * (web.lua drains after each response). */
#define CORK_MAX 65536 /* the transports' default high-water mark */

static int l_server_respond(lua_State *L) {
  size_t ln, dn, cn = 0, bn = 0, kn = 0;
  srv *ps = check_srv(L, 1);
  const char *line = luaL_checklstring(L, 2, &ln);
  const char *date = luaL_checklstring(L, 3, &dn);
  const char *ct = luaL_optlstring(L, 4, NULL, &cn);
  if (!lua_isnoneornil(L, 5))
    luaL_checktype(L, 5, LUA_TTABLE);
  int has_len = !lua_isnoneornil(L, 6);
  lua_Integer len = has_len ? luaL_checkinteger(L, 6) : 0;
  int chunked = lua_toboolean(L, 7);
  const char *conn = luaL_optlstring(L, 8, NULL, &kn);
  const char *body = luaL_optlstring(L, 9, NULL, &bn);
  luaL_Buffer b;
  lua_settop(L, 9);
  aio_http_check_text(L, line, ln, 0, "start line");
  if (ct)
    aio_http_check_text(L, ct, cn, 0, "header value");
  luaL_buffinitsize(L, &b, 256 + bn);
  luaL_addlstring(&b, line, ln);
  luaL_addstring(&b, "\r\nServer: luaio\r\n");
  add_field(&b, "Date", 4, date, dn);
  if (ct)
    add_field(&b, "Content-Type", 12, ct, cn);
  if (lua_istable(L, 5))
    add_fields(L, &b, 5);
  if (chunked)
    luaL_addstring(&b, "Transfer-Encoding: chunked\r\n");
  else if (has_len) {
    char num[24], *e = num + sizeof num, *q = e;
    unsigned long long u = len < 0 ? 0 : (unsigned long long)len;
    do *--q = (char)('0' + u % 10); while ((u /= 10) != 0);
    add_field(&b, "Content-Length", 14, q, (size_t)(e - q));
  }
  if (conn)
    add_field(&b, "Connection", 10, conn, kn);
  luaL_addlstring(&b, "\r\n", 2);
  if (body)
    luaL_addlstring(&b, body, bn);
  luaL_pushresult(&b);
  if (ps->msg_done && ps->rlen > ps->roff && !ps->lost &&
      ps->olen + lua_rawlen(L, -1) < CORK_MAX) {
    cork(L, ps);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (ps->olen > 0) {
    cork(L, ps);
    flush_out(L, ps, 1);
  } else
    call_transport(L, 1, "write", 1);
  lua_pushboolean(L, 0);
  return 1;
}

static int l_server__gc(lua_State *L) {
  srv *ps = lua_touserdata(L, 1);
  aio_http_acc_free(&ps->acc);
  free(ps->rbuf);
  free(ps->body);
  free(ps->ends);
  ps->ends = NULL;
  ps->nends = ps->ecap = 0;
  free(ps->obuf);
  ps->rbuf = ps->body = ps->obuf = NULL;
  ps->rlen = ps->roff = ps->rcap = ps->blen = ps->bcap = 0;
  ps->olen = ps->ocap = 0;
  return 0;
}

static int l_server__tostring(lua_State *L) {
  srv *ps = check_srv(L, 1);
  lua_pushfstring(L, "<http.ServerProtocol%s%s buffered=%d>",
                  ps->lost ? " lost" : "", ps->inflight ? " serving" : "",
                  (int)(ps->rlen - ps->roff));
  return 1;
}

/* ServerProtocol(conn [, {max_field_size =, max_headers =, max_body =}]) */
static int l_server_new(lua_State *L) {
  lua_Integer max_body = 0;
  aio_http_acc limits;
  luaL_checktype(L, 1, LUA_TTABLE);
  aio_http_acc_options(L, 2, &limits);
  if (lua_istable(L, 2) && lua_getfield(L, 2, "max_body") != LUA_TNIL) {
    max_body = luaL_checkinteger(L, -1);
    luaL_argcheck(L, max_body >= 0, 2, "limits out of range");
  }
  srv *ps = lua_newuserdatauv(L, sizeof *ps, SV_COUNT);
  memset(ps, 0, sizeof *ps);
  http_parser_init(&ps->p, HTTP_REQUEST);
  ps->p.data = ps;
  ps->acc.max_field = limits.max_field;
  ps->acc.max_headers = limits.max_headers;
  ps->max_body = (uint64_t)max_body;
  luaL_setmetatable(L, SERVER_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, SV_CONN);
  return 1;
}

static const luaL_Reg server_methods[] = {
  {"connection_made", l_server_connection_made},
  {"data_received", l_server_data_received},
  {"eof_received", l_server_eof_received},
  {"connection_lost", l_server_connection_lost},
  {"pause_writing", l_server_pause_writing},
  {"resume_writing", l_server_resume_writing},
  {"finish", l_server_finish},
  {"take_rest", l_server_take_rest},
  {"write", l_server_write},
  {"flush", l_server_flush},
  {"respond", l_server_respond},
  {NULL, NULL}
};

void aio_http_open_server(lua_State *L) {
  http_parser_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_url;
  settings.on_header_field = on_header_field;
  settings.on_header_value = on_header_value;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_chunk_header = on_chunk_header;
  settings.on_chunk_complete = on_chunk_complete;
  settings.on_message_complete = on_message_complete;
  if (aio_http_class(L, SERVER_MT, server_methods, l_server__gc,
                     l_server_new, "ServerProtocol")) {
    lua_pushcfunction(L, l_server__tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushlightuserdata(L, (void *)&srv_vt);
    lua_setfield(L, -2, AIO_PROTO_VT);
  }
  lua_pop(L, 1);
}
