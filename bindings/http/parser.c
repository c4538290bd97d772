/*
 * parser.c - HTTP/1.x messages parsed by libhttp_parser into Lua values.
 *
 *   local p = _http.Parser("request" | "response" [, {max_field_size =,
 *                          max_headers =}])
 *   local events, rest = p:feed(data)   -- or nil, name, description
 *   local events = p:feed_eof()         -- the end of the stream
 *   p:skip_body(true)                   -- the next response has no body
 *                                       -- (1xx, 204, 304 never have one)
 *
 * events is a list, in wire order, of:
 *   - a head table {method =, url = (requests) | status =, reason =
 *     (responses), major =, minor =, headers =, keep_alive =, upgrade =,
 *     chunked =, content_length = (or nil)};
 *   - a string: a piece of the current message's body (chunk framing
 *     removed);
 *   - false: a chunk of a chunked body ended with the last piece (not
 *     given for the final chunk of size 0);
 *   - true: the current message is complete.
 * headers keeps every field in arrival order as a flat list {name1,
 * value1, name2, value2, ...} (names as sent) and, under each lower-cased
 * name, the first value: the asyncio.http multidict wraps this table.
 * rest is set when the connection switched protocols (Upgrade, CONNECT):
 * the bytes after the head, which the parser does not read; feed nothing
 * more then. After an error the parser stays failed: every feed returns
 * the same error. A feed whose bytes complete messages before the error
 * returns the events of those messages first (a 204 followed by stray
 * bytes is still a 204), and the error from its next feed.
 * p:idle() is true between messages: no byte of a next message read, no
 * error. Fields longer than max_field_size (8190) or more than
 * max_headers (128) fields are the error "HPE_HEADER_OVERFLOW".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "internal.h"
#include "http.h"

#define PARSER_MT "asyncio.http.Parser"

typedef struct parser {
  http_parser p;
  lua_State *L;        /* valid during feed only */
  int events;          /* stack index of the events table during feed */
  int nevents;
  aio_http_acc acc;    /* the head being collected (head.c) */
  int skip_body;
  int failed;          /* an error happened: its name is kept */
  int upgraded;        /* a message that switches protocols ended */
  int in_message;      /* bytes of a message read, its end not yet */
  int complete_events; /* events of this feed up to its last message end */
  uint64_t chunk_size; /* the size of the chunk being parsed */
} parser;

static http_parser_settings settings;

static const char *start_key(parser *ps) {
  return ps->p.type == HTTP_REQUEST ? "url" : "reason";
}

/* Pushes the head table being built (uservalue 1 of the parser at index
 * 1 of ps->L); returns its index. */
static int push_head(parser *ps) {
  lua_getiuservalue(ps->L, 1, 1);
  return lua_gettop(ps->L);
}

/* Moves what the buffer holds into the head table; 0 or -1 (a limit). */
static int flush(parser *ps) {
  int r = aio_http_acc_flush(ps->L, &ps->acc, push_head(ps), start_key(ps));
  lua_pop(ps->L, 1);
  return r;
}

static void push_event(parser *ps) {
  lua_rawseti(ps->L, ps->events, ++ps->nevents);
}

static int on_message_begin(http_parser *hp) {
  parser *ps = hp->data;
  lua_State *L = ps->L;
  lua_createtable(L, 0, 10);
  lua_createtable(L, 16, 8);
  lua_setfield(L, -2, "headers");
  lua_setiuservalue(L, 1, 1);
  aio_http_acc_reset(&ps->acc);
  ps->in_message = 1;
  return 0;
}

static int on_start_piece(http_parser *hp, const char *at, size_t n) {
  return aio_http_acc_start(&((parser *)hp->data)->acc, at, n);
}

static int on_header_field(http_parser *hp, const char *at, size_t n) {
  parser *ps = hp->data;
  int r = aio_http_acc_field(ps->L, &ps->acc, push_head(ps), start_key(ps),
                             at, n);
  lua_pop(ps->L, 1);
  return r;
}

static int on_header_value(http_parser *hp, const char *at, size_t n) {
  return aio_http_acc_value(&((parser *)hp->data)->acc, at, n);
}

static int on_headers_complete(http_parser *hp) {
  parser *ps = hp->data;
  lua_State *L = ps->L;
  if (flush(ps)) return -1;
  push_head(ps);
  if (hp->type == HTTP_REQUEST) {
    lua_pushstring(L, http_method_str((enum http_method)hp->method));
    lua_setfield(L, -2, "method");
    lua_getfield(L, -1, "url");
    if (lua_isnil(L, -1)) {
      lua_pushliteral(L, "");
      lua_setfield(L, -3, "url");
    }
    lua_pop(L, 1);
  } else {
    lua_pushinteger(L, hp->status_code);
    lua_setfield(L, -2, "status");
    lua_getfield(L, -1, "reason");
    if (lua_isnil(L, -1)) {
      lua_pushliteral(L, "");
      lua_setfield(L, -3, "reason");
    }
    lua_pop(L, 1);
  }
  lua_pushinteger(L, hp->http_major);
  lua_setfield(L, -2, "major");
  lua_pushinteger(L, hp->http_minor);
  lua_setfield(L, -2, "minor");
  lua_pushboolean(L, http_should_keep_alive(hp));
  lua_setfield(L, -2, "keep_alive");
  lua_pushboolean(L, hp->upgrade);
  lua_setfield(L, -2, "upgrade");
  lua_pushboolean(L, (hp->flags & F_CHUNKED) != 0);
  lua_setfield(L, -2, "chunked");
  if (hp->flags & F_CONTENTLENGTH) {
    lua_pushinteger(L, (lua_Integer)hp->content_length);
    lua_setfield(L, -2, "content_length");
  }
  push_event(ps);
  if (hp->type == HTTP_RESPONSE) {
    /* RFC 9112 6.3: an interim, 204 or 304 response ends with its head,
     * whatever Content-Length or Transfer-Encoding says (the parser
     * would wait for that body). skip_body is kept across an interim
     * answer for the final one; 101 is left to the upgrade. */
    unsigned status = hp->status_code;
    if (status / 100 == 1 && status != 101) return 1;
    if (ps->skip_body || status == 204 || status == 304) {
      ps->skip_body = 0;
      return 1;
    }
  }
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n) {
  parser *ps = hp->data;
  lua_pushlstring(ps->L, at, n);
  push_event(ps);
  return 0;
}

static int on_chunk_header(http_parser *hp) {
  ((parser *)hp->data)->chunk_size = hp->content_length;
  return 0;
}

static int on_chunk_complete(http_parser *hp) {
  parser *ps = hp->data;
  if (ps->chunk_size > 0) {
    lua_pushboolean(ps->L, 0);
    push_event(ps);
  }
  return 0;
}

/* The end of a message. An upgrade takes effect here, after the body
 * of a request that has one: hp->upgrade is set from the head on. */
static int on_message_complete(http_parser *hp) {
  parser *ps = hp->data;
  lua_pushboolean(ps->L, 1);
  push_event(ps);
  ps->in_message = 0;
  ps->complete_events = ps->nevents;
  if (hp->upgrade) ps->upgraded = 1;
  return 0;
}

static parser *check_parser(lua_State *L) {
  return luaL_checkudata(L, 1, PARSER_MT);
}

/* Pushes nil, name, description of the parser's error; returns 3. */
static int push_failure(lua_State *L, parser *ps) {
  enum http_errno e = HTTP_PARSER_ERRNO(&ps->p);
  lua_pushnil(L);
  if (ps->acc.own_err) {
    lua_pushstring(L, ps->acc.own_err);
    lua_pushstring(L, "header field or line too large");
  } else {
    lua_pushstring(L, http_errno_name(e));
    lua_pushstring(L, http_errno_description(e));
  }
  return 3;
}

/* Runs the parser over s (NULL: the end); pushes the results. */
static int run(lua_State *L, parser *ps, const char *s, size_t n) {
  if (ps->failed) return push_failure(L, ps);
  lua_settop(L, 2);
  lua_createtable(L, 4, 0);
  ps->L = L;
  ps->events = 3;
  ps->nevents = 0;
  ps->complete_events = 0;
  size_t done = http_parser_execute(&ps->p, &settings, s, n);
  ps->L = NULL;
  if (HTTP_PARSER_ERRNO(&ps->p) != HPE_OK) {
    ps->failed = 1;
    if (ps->complete_events == 0)
      return push_failure(L, ps);
    while (ps->nevents > ps->complete_events) { /* the broken message's */
      lua_pushnil(L);
      lua_rawseti(L, 3, ps->nevents--);
    }
    return 1;
  }
  if (ps->upgraded) {
    lua_pushlstring(L, s ? s + done : "", s ? n - done : 0);
    return 2;
  }
  if (s && done != n) { /* cannot happen without an error or upgrade */
    ps->failed = 1;
    ps->acc.own_err = "HPE_UNKNOWN";
    return push_failure(L, ps);
  }
  return 1;
}

/* p:feed(data) -> events [, rest] | nil, name, description */
static int l_feed(lua_State *L) {
  parser *ps = check_parser(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (n == 0) { lua_newtable(L); return 1; }
  return run(L, ps, s, n);
}

/* p:feed_eof() -> events | nil, name, description */
static int l_feed_eof(lua_State *L) {
  return run(L, check_parser(L), NULL, 0);
}

/* p:idle() -> whether the parser is between messages, not failed */
static int l_idle(lua_State *L) {
  parser *ps = check_parser(L);
  lua_pushboolean(L, !ps->failed && !ps->in_message);
  return 1;
}

/* p:skip_body(flag): the next response's head is all there is of it (the
 * answer to a HEAD request; a 1xx/204/304 is known without it). */
static int l_skip_body(lua_State *L) {
  parser *ps = check_parser(L);
  ps->skip_body = lua_toboolean(L, 2);
  return 0;
}

static int l_gc(lua_State *L) {
  parser *ps = luaL_checkudata(L, 1, PARSER_MT);
  aio_http_acc_free(&ps->acc);
  return 0;
}

/* Parser(kind [, opts]) -> a new parser of requests or responses. */
static int l_new(lua_State *L) {
  static const char *const kinds[] = {"request", "response", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  aio_http_acc limits;
  aio_http_acc_options(L, 2, &limits);
  parser *ps = lua_newuserdatauv(L, sizeof *ps, 1);
  memset(ps, 0, sizeof *ps);
  http_parser_init(&ps->p, kind == 0 ? HTTP_REQUEST : HTTP_RESPONSE);
  ps->p.data = ps;
  ps->acc.max_field = limits.max_field;
  ps->acc.max_headers = limits.max_headers;
  luaL_setmetatable(L, PARSER_MT);
  return 1;
}

static const luaL_Reg parser_methods[] = {
  {"feed", l_feed},
  {"feed_eof", l_feed_eof},
  {"idle", l_idle},
  {"skip_body", l_skip_body},
  {NULL, NULL}
};

void aio_http_open_parser(lua_State *L) {
  http_parser_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_start_piece;
  settings.on_status = on_start_piece;
  settings.on_header_field = on_header_field;
  settings.on_header_value = on_header_value;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_chunk_header = on_chunk_header;
  settings.on_chunk_complete = on_chunk_complete;
  settings.on_message_complete = on_message_complete;
  aio_http_class(L, PARSER_MT, parser_methods, l_gc, l_new, "Parser");
  lua_pop(L, 1);
}
