/*
 * errors.c - OpenSSL failures as the error objects of Python's ssl.
 *
 * The classes are lua/asyncio/ssl.lua's (SSLError, an asyncio.OSError,
 * and its subclasses); this file only picks the class and builds the
 * fields Python's _ssl module fills: `.errno` (the SSL_ERROR_* code of a
 * connection's failure, OpenSSL's reason code of a context's, nil
 * for a check of luaio's own with no OpenSSL error behind it),
 * `.library` ("SSL"), `.reason` ("CERTIFICATE_VERIFY_FAILED"), and for
 * verification failures `.verify_code` and `.verify_message`. Messages
 * read as Python's, without its "(_ssl.c:NNN)" tail:
 *   [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable
 *   to get local issuer certificate
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "tls.h"

static const char key_classes = 0; /* registry: the classes table */

void tls_set_classes(lua_State *L, int idx) {
  lua_pushvalue(L, idx);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_classes);
}

/* Pushes classes[cls]; raises if asyncio.ssl did not hand them over. */
static void push_class(lua_State *L, const char *cls) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_classes) != LUA_TTABLE)
    luaL_error(L, "asyncio._ssl is used through asyncio.ssl");
  if (lua_getfield(L, -1, cls) == LUA_TNIL)
    luaL_error(L, "asyncio._ssl: no error class '%s'", cls);
  lua_remove(L, -2);
}

/* Pushes cls(errnum, msg), or cls(msg) (errno nil) for errnum < 0. */
void tls_push_error(lua_State *L, const char *cls, int errnum,
                    const char *msg) {
  push_class(L, cls);
  if (errnum >= 0)
    lua_pushinteger(L, errnum);
  lua_pushstring(L, msg);
  lua_call(L, errnum >= 0 ? 2 : 1, 1);
}

int tls_raise(lua_State *L, const char *cls, const char *fmt, ...) {
  va_list ap;
  push_class(L, cls);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_call(L, 1, 1);
  return lua_error(L);
}

int tls_raise_errno(lua_State *L, int err, const char *path) {
  const char *cls = "OSError";
  switch (err) {
  case ENOENT: cls = "FileNotFoundError"; break;
  case EACCES: case EPERM: cls = "PermissionError"; break;
  case EISDIR: cls = "IsADirectoryError"; break;
  case ENOTDIR: cls = "NotADirectoryError"; break;
  }
  tls_push_error(L, cls, err, strerror(err));   /* [e] */
  lua_pushstring(L, path);
  lua_setfield(L, -2, "filename");
  /* the message as Python's OSError with a filename (and asyncio.fs's):
   * [Errno 2] No such file or directory: 'ca.pem' */
  lua_pushfstring(L, "[Errno %d] %s: ", err, strerror(err));
  push_class(L, "repr");                          /* [e, msg, repr] */
  lua_pushstring(L, path);
  lua_call(L, 1, 1);
  lua_concat(L, 2);                               /* [e, msg] */
  lua_setfield(L, -2, "message");
  return lua_error(L);
}

/* Python's short library names. */
static const char *lib_name(int lib) {
  switch (lib) {
  case ERR_LIB_SSL: return "SSL";
  case ERR_LIB_PEM: return "PEM";
  case ERR_LIB_X509: return "X509";
  case ERR_LIB_X509V3: return "X509V3";
  case ERR_LIB_ASN1: return "ASN1";
  case ERR_LIB_EVP: return "EVP";
  case ERR_LIB_SYS: return "SYS";
  case ERR_LIB_BIO: return "BIO";
  case ERR_LIB_PKCS12: return "PKCS12";
  case ERR_LIB_CRYPTO: return "CRYPTO";
  case ERR_LIB_RSA: return "RSA";
  case ERR_LIB_EC: return "EC";
  case ERR_LIB_OSSL_DECODER: return "DECODER";
  default: return NULL;
  }
}

/* Pushes the symbolic name of a reason ("certificate verify failed" ->
 * "CERTIFICATE_VERIFY_FAILED"), the form of Python's table. */
static void push_reason_name(lua_State *L, const char *s) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (; *s; s++)
    luaL_addchar(&b, *s == ' ' ? '_' : (char)toupper((unsigned char)*s));
  luaL_pushresult(&b);
}

/* Python's verify_message for a failed verification. */
static void push_verify_message(lua_State *L, long code,
                                const char *hostname) {
  if (code == X509_V_ERR_HOSTNAME_MISMATCH && hostname)
    lua_pushfstring(L, "Hostname mismatch, certificate is not valid for "
                    "'%s'.", hostname);
  else if (code == X509_V_ERR_IP_ADDRESS_MISMATCH && hostname)
    lua_pushfstring(L, "IP address mismatch, certificate is not valid "
                    "for '%s'.", hostname);
  else
    lua_pushstring(L, X509_verify_cert_error_string(code));
}

static int is_ssl_reason(unsigned long e, int reason) {
  return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == reason;
}

/* The class for an SSL_ERROR_SSL failure whose last queued error is e. */
static const char *ssl_class(unsigned long e) {
  if (is_ssl_reason(e, SSL_R_CERTIFICATE_VERIFY_FAILED))
    return "SSLCertVerificationError";
  if (is_ssl_reason(e, SSL_R_UNEXPECTED_EOF_WHILE_READING))
    return "SSLEOFError";
  return "SSLError";
}

/* Pushes the error object for an SSL_ERROR_SSL failure with queued
 * error e (0: none). [-0, +1] */
static void push_lib_error(lua_State *L, SSL *ssl, unsigned long e,
                           const char *hostname) {
  const char *lib = e ? lib_name(ERR_GET_LIB(e)) : NULL;
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  const char *cls = ssl_class(e);
  int top = lua_gettop(L);
  int verify = is_ssl_reason(e, SSL_R_CERTIFICATE_VERIFY_FAILED);
  long vcode = verify && ssl ? SSL_get_verify_result(ssl) : 0;

  /* the message: [LIB: REASON] reason[: verify message] */
  if (reason) {
    push_reason_name(L, reason);                    /* [name] */
    if (verify)
      push_verify_message(L, vcode, hostname);      /* [name, vmsg] */
    if (lib)
      lua_pushfstring(L, "[%s: %s] %s%s%s", lib, lua_tostring(L, top + 1),
                      reason, verify ? ": " : "",
                      verify ? lua_tostring(L, top + 2) : "");
    else
      lua_pushfstring(L, "[%s] %s%s%s", lua_tostring(L, top + 1), reason,
                      verify ? ": " : "",
                      verify ? lua_tostring(L, top + 2) : "");
  } else if (e) {
    lua_pushnil(L);
    if (verify)
      push_verify_message(L, vcode, hostname);
    char hex[32];
    snprintf(hex, sizeof hex, "%lx", e);
    lua_pushfstring(L, "unknown error (0x%s)", hex);
  } else {
    lua_pushnil(L);
    if (verify)
      push_verify_message(L, vcode, hostname);
    lua_pushliteral(L, "unknown error");
  }
  tls_push_error(L, cls, SSL_ERROR_SSL, lua_tostring(L, -1));
  lua_replace(L, -2);                               /* [name, (vmsg), e] */
  lua_pushstring(L, lib);
  lua_setfield(L, -2, "library");
  lua_pushvalue(L, top + 1);
  lua_setfield(L, -2, "reason");
  if (verify) {
    lua_pushinteger(L, vcode);
    lua_setfield(L, -2, "verify_code");
    lua_pushvalue(L, top + 2);
    lua_setfield(L, -2, "verify_message");
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

void tls_push_ssl_error(lua_State *L, SSL *ssl, int code,
                        const char *hostname) {
  unsigned long e = ERR_peek_last_error();
  switch (code) {
  case SSL_ERROR_ZERO_RETURN:
    tls_push_error(L, "SSLZeroReturnError", code,
                   "TLS/SSL connection has been closed (EOF)");
    break;
  case SSL_ERROR_WANT_READ:
    tls_push_error(L, "SSLWantReadError", code,
                   "The operation did not complete (read)");
    break;
  case SSL_ERROR_WANT_WRITE:
    tls_push_error(L, "SSLWantWriteError", code,
                   "The operation did not complete (write)");
    break;
  case SSL_ERROR_SYSCALL:
    if (e == 0) {
      tls_push_error(L, "SSLEOFError", 8,
                     "EOF occurred in violation of protocol");
      break;
    }
    /* fall through */
  default:
    push_lib_error(L, ssl, e, hostname);
    if (is_ssl_reason(e, SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
      lua_pushinteger(L, 8);
      lua_setfield(L, -2, "errno");
    }
    break;
  }
  ERR_clear_error();
}

/* A failure outside a connection's I/O: errno is the reason code of
 * OpenSSL's last queued error, as Python's _ssl gives it (0 for none). */
int tls_raise_ssl(lua_State *L) {
  int code = ERR_GET_REASON(ERR_peek_last_error());
  tls_push_ssl_error(L, NULL, SSL_ERROR_SSL, NULL);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "errno");
  return lua_error(L);
}
