/*
 * context.c - SSLContext: certificates, trust, protocol versions, ALPN
 * and the verification policy shared by the connections made from it.
 *
 * Python's settings are plain fields here (ctx.check_hostname = false),
 * read and written through __index / __newindex with Python's checks;
 * the methods are Python's (load_cert_chain, load_verify_locations, ...).
 * Defaults are Python 3.13's: TLS 1.2 at least, its cipher string,
 * compression off, and for PROTOCOL_TLS_CLIENT hostname checking with
 * CERT_REQUIRED. lua/asyncio/ssl.lua wraps a few methods (argument
 * shapes) and builds create_default_context on top.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls.h"

#define DEFAULT_CIPHERS "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:" \
  "DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"
#define SID_CTX "luaio"

/* The lowest protocol version this OpenSSL was built with (Python's
 * PY_PROTO_MINIMUM_AVAILABLE). */
#if defined(SSL3_VERSION) && !defined(OPENSSL_NO_SSL3)
#define MINIMUM_AVAILABLE SSL3_VERSION
#elif defined(TLS1_VERSION) && !defined(OPENSSL_NO_TLS1)
#define MINIMUM_AVAILABLE TLS1_VERSION
#elif defined(TLS1_1_VERSION) && !defined(OPENSSL_NO_TLS1_1)
#define MINIMUM_AVAILABLE TLS1_1_VERSION
#else
#define MINIMUM_AVAILABLE TLS1_2_VERSION
#endif

tls_ctx *tls_check_ctx(lua_State *L, int idx) {
  tls_ctx *c = luaL_checkudata(L, idx, TLS_CONTEXT_MT);
  if (!c->ctx)
    luaL_error(L, "attempt to use a closed %s", TLS_CONTEXT_MT);
  return c;
}

/* ------------------------------------------------------------------ */
/* Construction                                                        */

/* Python's verify modes onto OpenSSL's flags. */
static void set_verify_mode(tls_ctx *c, int mode) {
  int flags = SSL_VERIFY_NONE;
  if (mode == TLS_CERT_OPTIONAL)
    flags = SSL_VERIFY_PEER;
  else if (mode == TLS_CERT_REQUIRED)
    flags = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(c->ctx, flags, NULL);
}

static int get_verify_mode(tls_ctx *c) {
  int m = SSL_CTX_get_verify_mode(c->ctx);
  if (!(m & SSL_VERIFY_PEER))
    return TLS_CERT_NONE;
  return (m & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) ? TLS_CERT_REQUIRED
                                                : TLS_CERT_OPTIONAL;
}

/* _ssl.SSLContext(protocol) -> a new context with Python's defaults. */
static int l_context_new(lua_State *L) {
  lua_Integer proto = luaL_checkinteger(L, 1);
  const SSL_METHOD *method;
  tls_ctx *c;
  uint64_t opts;
  switch (proto) {
  case TLS_PROTOCOL_TLS: method = TLS_method(); break;
  case TLS_PROTOCOL_TLS_CLIENT: method = TLS_client_method(); break;
  case TLS_PROTOCOL_TLS_SERVER: method = TLS_server_method(); break;
  default: return tls_raise(L, "ValueError", "invalid or unsupported "
                            "protocol version %d", (int)proto);
  }
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, TLS_CONTEXT_MT);
  ERR_clear_error();
  if (!(c->ctx = SSL_CTX_new(method)))
    return tls_raise_ssl(L);
  c->protocol = (int)proto;
  opts = SSL_OP_ALL & ~SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS;
  opts |= SSL_OP_NO_SSLv3 | SSL_OP_NO_COMPRESSION |
          SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_DH_USE |
          SSL_OP_SINGLE_ECDH_USE;
  SSL_CTX_set_options(c->ctx, opts);
  SSL_CTX_set_mode(c->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_AUTO_RETRY);
  if (!SSL_CTX_set_cipher_list(c->ctx, DEFAULT_CIPHERS))
    return tls_raise_ssl(L);
  SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
  SSL_CTX_set_session_id_context(c->ctx, (const unsigned char *)SID_CTX,
                                 sizeof SID_CTX - 1);
  /* Python's verify_flags: VERIFY_X509_TRUSTED_FIRST (OpenSSL 3 builds
   * chains that way anyway; the flag is what ctx.verify_flags shows) */
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ctx),
                              X509_V_FLAG_TRUSTED_FIRST);
  X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(c->ctx),
                                  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (proto == TLS_PROTOCOL_TLS_CLIENT) {
    c->check_hostname = 1;
    set_verify_mode(c, TLS_CERT_REQUIRED);
  } else {
    set_verify_mode(c, TLS_CERT_NONE);
  }
  return 1;
}

/* _ssl.is_context(v) -> whether v is an SSLContext. */
static int l_is_context(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, TLS_CONTEXT_MT) != NULL);
  return 1;
}

static int l_context__gc(lua_State *L) {
  tls_ctx *c = luaL_checkudata(L, 1, TLS_CONTEXT_MT);
  if (c->ctx) {
    SSL_CTX_free(c->ctx);
    c->ctx = NULL;
  }
  free(c->alpn);
  c->alpn = NULL;
  return 0;
}

static int l_context__tostring(lua_State *L) {
  tls_ctx *c = luaL_checkudata(L, 1, TLS_CONTEXT_MT);
  const char *p = c->protocol == TLS_PROTOCOL_TLS_CLIENT
                      ? "PROTOCOL_TLS_CLIENT"
                  : c->protocol == TLS_PROTOCOL_TLS_SERVER
                      ? "PROTOCOL_TLS_SERVER"
                      : "PROTOCOL_TLS";
  lua_pushfstring(L, "<SSLContext %s at %p>", p, (void *)c);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Certificates and trust                                              */

/* The password of load_cert_chain: a string, or a function returning
 * one, called from OpenSSL's callback. A failure is recorded (and its
 * error left on the stack) for the caller to raise once OpenSSL
 * returned: nothing raises through OpenSSL's frames. */
typedef struct pw_info {
  lua_State *L;
  int idx;       /* the password argument, 0: none */
  int failed;    /* PW_RAISED: what the function raised is on top of the
                    stack; PW_TYPE, PW_VALUE: a message for that class */
} pw_info;
enum { PW_OK, PW_RAISED, PW_TYPE, PW_VALUE };

static int pw_cb(char *buf, int size, int rwflag, void *ud) {
  pw_info *pw = ud;
  lua_State *L = pw->L;
  const char *s;
  size_t len;
  (void)rwflag;
  if (!pw->idx || pw->failed)
    return -1;
  lua_pushvalue(L, pw->idx);
  if (lua_isfunction(L, -1) && lua_pcall(L, 0, 1, 0) != LUA_OK) {
    pw->failed = PW_RAISED;
    return -1;
  }
  if (!(s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len)
                                           : NULL)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "password callback must return a string");
    pw->failed = PW_TYPE;
    return -1;
  }
  if (len > (size_t)size) {
    lua_pop(L, 1);
    lua_pushfstring(L, "password cannot be longer than %d bytes", size);
    pw->failed = PW_VALUE;
    return -1;
  }
  memcpy(buf, s, len);
  lua_pop(L, 1);
  return (int)len;
}

/* Raises FileNotFoundError and kin unless path can be read. */
static void check_readable(lua_State *L, const char *path) {
  if (access(path, R_OK) != 0)
    tls_raise_errno(L, errno, path);
}

/* check_readable for a file: a directory raises IsADirectoryError, as
 * Python's open does. */
static void check_file(lua_State *L, const char *path) {
  struct stat st;
  check_readable(L, path);
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    tls_raise_errno(L, EISDIR, path);
}

/* The path argument at idx (nil: `dflt`): a string, not a number Lua
 * would turn into one, without a NUL byte (ValueError "embedded null
 * byte", as Python's: OpenSSL would read the path up to it). */
const char *tls_check_path(lua_State *L, int idx, const char *dflt) {
  size_t len;
  const char *path;
  if (dflt != NULL && lua_isnoneornil(L, idx))
    return dflt;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_typeerror(L, idx, "string");
  path = lua_tolstring(L, idx, &len);
  if (strlen(path) != len)
    tls_raise(L, "ValueError", "embedded null byte");
  return path;
}

/* tls_check_path for an optional path: NULL for nil. */
static const char *opt_path(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? NULL : tls_check_path(L, idx, NULL);
}

/* Raises what the password callback recorded, else the SSL error. */
static int raise_load(lua_State *L, pw_info *pw) {
  if (pw->failed) {
    ERR_clear_error();
    if (pw->failed == PW_RAISED)
      return lua_error(L);
    return tls_raise(L, pw->failed == PW_TYPE ? "TypeError" : "ValueError",
                     "%s", lua_tostring(L, -1));
  }
  return tls_raise_ssl(L);
}

/* ctx:load_cert_chain(certfile [, keyfile [, password]]) */
static int l_context_load_cert_chain(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  const char *cert = tls_check_path(L, 2, NULL);
  const char *key = tls_check_path(L, 3, cert);
  pw_info pw = {L, 0, 0};
  pem_password_cb *old_cb = SSL_CTX_get_default_passwd_cb(c->ctx);
  void *old_ud = SSL_CTX_get_default_passwd_cb_userdata(c->ctx);
  int ok;
  if (!lua_isnoneornil(L, 4)) {
    if (lua_type(L, 4) != LUA_TSTRING && !lua_isfunction(L, 4))
      return luaL_argerror(L, 4, "string or function expected");
    pw.idx = 4;
  }
  check_file(L, cert);
  check_file(L, key);
  lua_settop(L, 4);
  ERR_clear_error();
  /* an encrypted key without a password fails instead of prompting */
  SSL_CTX_set_default_passwd_cb(c->ctx, pw_cb);
  SSL_CTX_set_default_passwd_cb_userdata(c->ctx, &pw);
  ok = SSL_CTX_use_certificate_chain_file(c->ctx, cert) == 1 &&
       SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) == 1 &&
       SSL_CTX_check_private_key(c->ctx) == 1;
  SSL_CTX_set_default_passwd_cb(c->ctx, old_cb);
  SSL_CTX_set_default_passwd_cb_userdata(c->ctx, old_ud);
  if (!ok)
    return raise_load(L, &pw);
  return 0;
}

/* Whether cadata is read as PEM (Python's str) rather than DER (its
 * bytes), Lua having one string type: text is PEM, that is PEM armour
 * anywhere or nothing but printable ASCII and white space (a DER
 * certificate always has bytes outside that set). */
static int is_pem_data(const char *data, size_t len) {
  size_t i;
  if (strstr(data, "-----BEGIN") != NULL)
    return 1;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)data[i];
    if ((ch < 0x20 || ch > 0x7e) && !(ch >= '\t' && ch <= '\r'))
      return 0;
  }
  return 1;
}

/* Adds the certificates of PEM or DER data to the store; returns how
 * many (0: none found, the error queue cleared), or -1 with the error
 * queue holding the failure. As Python's _add_ca_certs, data after the
 * last certificate fails unless it is only the end (PEM: text with no
 * further armour; DER: nothing). */
static int add_ca_data(X509_STORE *store, const char *data, size_t len,
                       int pem) {
  BIO *bio = BIO_new_mem_buf(data, (int)len);
  unsigned long e;
  int n = 0;
  X509 *x;
  if (!bio)
    return -1;
  for (;;) {
    if (!pem && BIO_eof(bio))
      break;
    x = pem ? PEM_read_bio_X509(bio, NULL, NULL, NULL)
            : d2i_X509_bio(bio, NULL);
    if (!x)
      break;
    if (!X509_STORE_add_cert(store, x)) {
      e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) != ERR_LIB_X509 ||
          ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        X509_free(x);
        BIO_free(bio);
        return -1;
      }
      ERR_clear_error();
    }
    X509_free(x);
    n++;
  }
  BIO_free(bio);
  e = ERR_peek_last_error();
  if (n == 0 || e == 0 ||
      (pem && ERR_GET_LIB(e) == ERR_LIB_PEM &&
       ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ||
      (!pem && ERR_GET_LIB(e) == ERR_LIB_ASN1 &&
       ERR_GET_REASON(e) == ASN1_R_HEADER_TOO_LONG)) {
    ERR_clear_error(); /* the end of the data, not a failure */
    return n;
  }
  return -1;
}

/* ctx:load_verify_locations(cafile, capath, cadata): any may be nil;
 * cadata is PEM text or DER bytes. Errors are Python's: empty cadata
 * raises ValueError, a cafile that cannot be read the OSError kin (a
 * directory IsADirectoryError). OpenSSL reads capath only when it
 * verifies a certificate, so a missing one is taken, as in Python. */
static int l_context_load_verify_locations(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  const char *cafile = opt_path(L, 2);
  const char *capath = opt_path(L, 3);
  size_t len = 0;
  const char *cadata = luaL_optlstring(L, 4, NULL, &len);
  if (!cafile && !capath && !cadata)
    return tls_raise(L, "TypeError", "cafile, capath and cadata cannot "
                     "be all omitted");
  ERR_clear_error();
  if (cadata) {
    int pem = is_pem_data(cadata, len);
    int n;
    if (len == 0)
      return tls_raise(L, "ValueError", "Empty certificate data");
    n = add_ca_data(SSL_CTX_get_cert_store(c->ctx), cadata, len, pem);
    if (n < 0)
      return tls_raise_ssl(L);
    if (n == 0) {
      tls_push_error(L, "SSLError", 0, pem
                     ? "no start line: cadata does not contain a certificate"
                     : "not enough data: cadata does not contain a "
                       "certificate");
      return lua_error(L);
    }
  }
  if (cafile)
    check_file(L, cafile);
  if ((cafile || capath) &&
      SSL_CTX_load_verify_locations(c->ctx, cafile, capath) != 1)
    return tls_raise_ssl(L);
  return 0;
}

/* ctx:set_default_verify_paths(): the system's CA store. */
static int l_context_set_default_verify_paths(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  ERR_clear_error();
  if (SSL_CTX_set_default_verify_paths(c->ctx) != 1)
    return tls_raise_ssl(L);
  return 0;
}

/* ctx:set_ciphers(s) (TLS 1.2 and below; TLS 1.3's suites stay). */
static int l_context_set_ciphers(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  const char *s = luaL_checkstring(L, 2);
  ERR_clear_error();
  if (!SSL_CTX_set_cipher_list(c->ctx, s)) {
    ERR_clear_error();
    tls_push_error(L, "SSLError", -1, "No cipher can be selected.");
    return lua_error(L);
  }
  return 0;
}

/* The server's choice among the client's ALPN protocols: the first of
 * the context's list the client offers (arg is the tls_ctx); no match
 * goes on without ALPN, as Python. */
static int alpn_select(SSL *s, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg) {
  tls_ctx *c = arg;
  (void)s;
  if (!c->alpn)
    return SSL_TLSEXT_ERR_NOACK;
  if (SSL_select_next_proto((unsigned char **)out, outlen, c->alpn,
                            c->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  return SSL_TLSEXT_ERR_OK;
}

/* ctx:set_alpn_protocols(list of strings) */
static int l_context_set_alpn_protocols(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  luaL_Buffer b;
  size_t len, i, n;
  unsigned char *wire;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = lua_rawlen(L, 2);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    const char *p;
    lua_rawgeti(L, 2, (lua_Integer)i);
    if (!(p = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len)
                                             : NULL))
      return luaL_error(L, "bad argument #1 to 'set_alpn_protocols' "
                        "(list of strings expected, item %d is %s)",
                        (int)i, luaL_typename(L, -1));
    if (len == 0 || len > 255) {
      tls_push_error(L, "SSLError", -1,
                     "ALPN protocols must be 1 to 255 in length");
      return lua_error(L);
    }
    lua_pop(L, 1);
    luaL_addchar(&b, (char)len);
    luaL_addlstring(&b, p, len);
  }
  luaL_pushresult(&b);
  {
    const char *s = lua_tolstring(L, -1, &len);
    if (!(wire = malloc(len ? len : 1)))
      return luaL_error(L, "not enough memory");
    memcpy(wire, s, len);
  }
  free(c->alpn);
  c->alpn = wire;
  c->alpn_len = (unsigned)len;
  if (SSL_CTX_set_alpn_protos(c->ctx, wire, (unsigned)len) != 0)
    return luaL_error(L, "not enough memory");
  SSL_CTX_set_alpn_select_cb(c->ctx, alpn_select, c);
  return 0;
}

/* ctx:cert_store_stats() -> {x509 =, crl =, x509_ca =} */
static int l_context_cert_store_stats(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  X509_STORE *store = SSL_CTX_get_cert_store(c->ctx);
  STACK_OF(X509_OBJECT) *objs;
  int i, x509 = 0, crl = 0, ca = 0;
  X509_STORE_lock(store);
  objs = X509_STORE_get0_objects(store);
  for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
    X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);
    if (X509_OBJECT_get_type(o) == X509_LU_X509) {
      x509++;
      if (X509_check_ca(X509_OBJECT_get0_X509(o)))
        ca++;
    } else if (X509_OBJECT_get_type(o) == X509_LU_CRL) {
      crl++;
    }
  }
  X509_STORE_unlock(store);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, x509);
  lua_setfield(L, -2, "x509");
  lua_pushinteger(L, crl);
  lua_setfield(L, -2, "crl");
  lua_pushinteger(L, ca);
  lua_setfield(L, -2, "x509_ca");
  return 1;
}

/* ------------------------------------------------------------------ */
/* Fields                                                              */

/* The integer assigned to field `k` (the value at index 3 of
 * __newindex); raises "bad value for SSLContext field 'k' (...)" for
 * anything else, as luaL_checkinteger would name a 'newindex'. */
static lua_Integer check_field_int(lua_State *L, const char *k) {
  int isint;
  lua_Integer v = lua_tointegerx(L, 3, &isint);
  if (!isint || lua_type(L, 3) != LUA_TNUMBER)
    luaL_error(L, "bad value for SSLContext field '%s' (%s)", k,
               lua_type(L, 3) == LUA_TNUMBER
                   ? "number has no integer representation"
                   : lua_pushfstring(L, "integer expected, got %s",
                                     luaL_typename(L, 3)));
  return v;
}

/* The boolean assigned to field `k` (index 3 of __newindex): true or
 * false only, where Python would take any value by its truth (0 and
 * "yes" are mistakes here, not settings). */
static int check_field_bool(lua_State *L, const char *k) {
  if (lua_type(L, 3) != LUA_TBOOLEAN)
    luaL_error(L, "bad value for SSLContext field '%s' (boolean expected, "
               "got %s)", k, luaL_typename(L, 3));
  return lua_toboolean(L, 3);
}

/* The options assigned (index 3): an integer, not negative (Python's
 * conversion to unsigned refuses it). */
static uint64_t check_options(lua_State *L) {
  lua_Integer v = check_field_int(L, "options");
  if (v < 0)
    tls_raise(L, "ValueError", "can't convert negative int to unsigned");
  return (uint64_t)v;
}

/* Python's TLSVersion for an OpenSSL protocol version bound (0: none). */
static lua_Integer version_get(int v, int is_min) {
  if (v == 0)
    return is_min ? TLS_VERSION_MINIMUM_SUPPORTED
                  : TLS_VERSION_MAXIMUM_SUPPORTED;
  return v;
}

static int version_set(lua_State *L, tls_ctx *c, int is_min) {
  lua_Integer v = check_field_int(L, is_min ? "minimum_version"
                                            : "maximum_version");
  char hex[32];
  int ok;
  switch (v) {
  /* the bound the other field has no name for is emulated, as Python's:
   * the lowest (or highest) protocol this OpenSSL has */
  case TLS_VERSION_MINIMUM_SUPPORTED: v = is_min ? 0 : MINIMUM_AVAILABLE;
    break;
  case TLS_VERSION_MAXIMUM_SUPPORTED: v = is_min ? TLS1_3_VERSION : 0; break;
  case SSL3_VERSION: case TLS1_VERSION: case TLS1_1_VERSION:
  case TLS1_2_VERSION: case TLS1_3_VERSION: break;
  default:
    snprintf(hex, sizeof hex, "%llx", (unsigned long long)v);
    return tls_raise(L, "ValueError", "Unsupported TLS/SSL version 0x%s",
                     hex);
  }
  ok = is_min ? SSL_CTX_set_min_proto_version(c->ctx, (int)v)
              : SSL_CTX_set_max_proto_version(c->ctx, (int)v);
  if (!ok) {
    snprintf(hex, sizeof hex, "%x", (unsigned)v);
    return tls_raise(L, "ValueError", "Unsupported protocol version 0x%s",
                     hex);
  }
  return 0;
}

/* hostname_checks_common_name off (`never` 1): a certificate's subject
 * CN is not taken for its name when it has no DNS subjectAltName, as
 * Python's, through the context's X509_CHECK_FLAG_NEVER_CHECK_SUBJECT
 * (connections copy the context's host flags). */
static void set_never_check_subject(tls_ctx *c, int never) {
  X509_VERIFY_PARAM *p = SSL_CTX_get0_param(c->ctx);
  unsigned int flags = X509_VERIFY_PARAM_get_hostflags(p);
  if (never)
    flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
  else
    flags &= ~(unsigned int)X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
  X509_VERIFY_PARAM_set_hostflags(p, flags);
}

/* __index: methods first, then the fields; any other key raises. */
static int l_context__index(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL)
    return 1;
  if (strcmp(k, "check_hostname") == 0)
    lua_pushboolean(L, c->check_hostname);
  else if (strcmp(k, "verify_mode") == 0)
    lua_pushinteger(L, get_verify_mode(c));
  else if (strcmp(k, "minimum_version") == 0)
    lua_pushinteger(L, version_get(SSL_CTX_get_min_proto_version(c->ctx), 1));
  else if (strcmp(k, "maximum_version") == 0)
    lua_pushinteger(L, version_get(SSL_CTX_get_max_proto_version(c->ctx), 0));
  else if (strcmp(k, "hostname_checks_common_name") == 0)
    lua_pushboolean(L, !(X509_VERIFY_PARAM_get_hostflags(
                             SSL_CTX_get0_param(c->ctx)) &
                         X509_CHECK_FLAG_NEVER_CHECK_SUBJECT));
  else if (strcmp(k, "verify_flags") == 0)
    lua_pushinteger(L, (lua_Integer)X509_VERIFY_PARAM_get_flags(
                           SSL_CTX_get0_param(c->ctx)));
  else if (strcmp(k, "options") == 0)
    lua_pushinteger(L, (lua_Integer)SSL_CTX_get_options(c->ctx));
  else if (strcmp(k, "protocol") == 0)
    lua_pushinteger(L, c->protocol);
  else if (strcmp(k, "security_level") == 0)
    lua_pushinteger(L, SSL_CTX_get_security_level(c->ctx));
  else /* a misspelt setting must not read as nil (Python raises) */
    return luaL_error(L, "SSLContext has no field '%s'", k);
  return 1;
}

static int l_context__newindex(lua_State *L) {
  tls_ctx *c = tls_check_ctx(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "check_hostname") == 0) {
    int on = check_field_bool(L, k);
    if (on && get_verify_mode(c) == TLS_CERT_NONE)
      set_verify_mode(c, TLS_CERT_REQUIRED);
    c->check_hostname = (unsigned char)on;
  } else if (strcmp(k, "verify_mode") == 0) {
    lua_Integer m = check_field_int(L, k);
    if (m < TLS_CERT_NONE || m > TLS_CERT_REQUIRED)
      return tls_raise(L, "ValueError", "invalid value for verify_mode");
    if (m == TLS_CERT_NONE && c->check_hostname)
      return tls_raise(L, "ValueError", "Cannot set verify_mode to "
                       "CERT_NONE when check_hostname is enabled.");
    set_verify_mode(c, (int)m);
  } else if (strcmp(k, "minimum_version") == 0) {
    version_set(L, c, 1);
  } else if (strcmp(k, "maximum_version") == 0) {
    version_set(L, c, 0);
  } else if (strcmp(k, "hostname_checks_common_name") == 0) {
    set_never_check_subject(c, !check_field_bool(L, k));
  } else if (strcmp(k, "verify_flags") == 0) {
    X509_VERIFY_PARAM *p = SSL_CTX_get0_param(c->ctx);
    unsigned long now = X509_VERIFY_PARAM_get_flags(p);
    unsigned long want = (unsigned long)check_field_int(L, k);
    X509_VERIFY_PARAM_clear_flags(p, now & ~want);
    X509_VERIFY_PARAM_set_flags(p, ~now & want);
  } else if (strcmp(k, "options") == 0) {
    uint64_t now = SSL_CTX_get_options(c->ctx);
    uint64_t want = check_options(L);
    SSL_CTX_clear_options(c->ctx, now & ~want);
    SSL_CTX_set_options(c->ctx, ~now & want);
  } else if (strcmp(k, "protocol") == 0 ||
             strcmp(k, "security_level") == 0) {
    return luaL_error(L, "field '%s' of SSLContext is read-only", k);
  } else {
    return luaL_error(L, "SSLContext has no field '%s'", k);
  }
  return 0;
}

static const luaL_Reg context_methods[] = {
    {"load_cert_chain", l_context_load_cert_chain},
    {"load_verify_locations", l_context_load_verify_locations},
    {"set_default_verify_paths", l_context_set_default_verify_paths},
    {"set_ciphers", l_context_set_ciphers},
    {"set_alpn_protocols", l_context_set_alpn_protocols},
    {"cert_store_stats", l_context_cert_store_stats},
    {"wrap_bio", tls_wrap_bio},
    {NULL, NULL}};

static const luaL_Reg context_metamethods[] = {
    {"__newindex", l_context__newindex},
    {"__gc", l_context__gc},
    {"__tostring", l_context__tostring},
    {NULL, NULL}};

/* Adds SSLContext and context_methods (the table __index looks methods
 * up in, which asyncio.ssl extends) to the module table on top. */
void tls_open_context(lua_State *L) {
  luaL_newmetatable(L, TLS_CONTEXT_MT);
  luaL_setfuncs(L, context_metamethods, 0);
  lua_newtable(L);
  luaL_setfuncs(L, context_methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "context_methods");
  lua_pushcclosure(L, l_context__index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_context_new);
  lua_setfield(L, -2, "SSLContext");
  lua_pushcfunction(L, l_is_context);
  lua_setfield(L, -2, "is_context");
}
