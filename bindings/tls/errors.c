/*
 * errors.c - OpenSSL failures as the error objects of Python's ssl.
 *
 * The classes are lua/asyncio/ssl.lua's (SSLError, an asyncio.OSError,
 * and its subclasses); this file only picks the class and builds the
 * fields Python's _ssl module fills: `.errno` (the SSL_ERROR_* code of a
 * connection's failure, OpenSSL's reason code of a context's, nil
 * for a check of luaio's own with no OpenSSL error behind it),
 * `.library` ("SSL"), `.reason` ("CERTIFICATE_VERIFY_FAILED"; nil, and
 * the message's prefix "[SSL]" only, for a reason Python's table has no
 * name for, as OpenSSL's common "PEM lib"), and for
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

#include <openssl/dherr.h>
#include <openssl/err.h>
#include <openssl/evperr.h>
#include <openssl/randerr.h>
#include <openssl/rsaerr.h>

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

/* Python's library names (_ssl's library_codes): every ERR_LIB_* of
 * OpenSSL's headers. */
static const char *lib_name(int lib) {
  switch (lib) {
#ifdef ERR_LIB_ASN1
  case ERR_LIB_ASN1: return "ASN1";
#endif
#ifdef ERR_LIB_ASYNC
  case ERR_LIB_ASYNC: return "ASYNC";
#endif
#ifdef ERR_LIB_BIO
  case ERR_LIB_BIO: return "BIO";
#endif
#ifdef ERR_LIB_BN
  case ERR_LIB_BN: return "BN";
#endif
#ifdef ERR_LIB_BUF
  case ERR_LIB_BUF: return "BUF";
#endif
#ifdef ERR_LIB_CMP
  case ERR_LIB_CMP: return "CMP";
#endif
#ifdef ERR_LIB_CMS
  case ERR_LIB_CMS: return "CMS";
#endif
#ifdef ERR_LIB_COMP
  case ERR_LIB_COMP: return "COMP";
#endif
#ifdef ERR_LIB_CONF
  case ERR_LIB_CONF: return "CONF";
#endif
#ifdef ERR_LIB_CRMF
  case ERR_LIB_CRMF: return "CRMF";
#endif
#ifdef ERR_LIB_CRYPTO
  case ERR_LIB_CRYPTO: return "CRYPTO";
#endif
#ifdef ERR_LIB_CT
  case ERR_LIB_CT: return "CT";
#endif
#ifdef ERR_LIB_DH
  case ERR_LIB_DH: return "DH";
#endif
#ifdef ERR_LIB_DSA
  case ERR_LIB_DSA: return "DSA";
#endif
#ifdef ERR_LIB_DSO
  case ERR_LIB_DSO: return "DSO";
#endif
#ifdef ERR_LIB_EC
  case ERR_LIB_EC: return "EC";
#endif
#ifdef ERR_LIB_ECDH
  case ERR_LIB_ECDH: return "ECDH";
#endif
#ifdef ERR_LIB_ECDSA
  case ERR_LIB_ECDSA: return "ECDSA";
#endif
#ifdef ERR_LIB_ENGINE
  case ERR_LIB_ENGINE: return "ENGINE";
#endif
#ifdef ERR_LIB_ESS
  case ERR_LIB_ESS: return "ESS";
#endif
#ifdef ERR_LIB_EVP
  case ERR_LIB_EVP: return "EVP";
#endif
#ifdef ERR_LIB_FIPS
  case ERR_LIB_FIPS: return "FIPS";
#endif
#ifdef ERR_LIB_HMAC
  case ERR_LIB_HMAC: return "HMAC";
#endif
#ifdef ERR_LIB_HTTP
  case ERR_LIB_HTTP: return "HTTP";
#endif
#ifdef ERR_LIB_JPAKE
  case ERR_LIB_JPAKE: return "JPAKE";
#endif
#ifdef ERR_LIB_KDF
  case ERR_LIB_KDF: return "KDF";
#endif
#ifdef ERR_LIB_MASK
  case ERR_LIB_MASK: return "MASK";
#endif
#ifdef ERR_LIB_METH
  case ERR_LIB_METH: return "METH";
#endif
#ifdef ERR_LIB_NONE
  case ERR_LIB_NONE: return "NONE";
#endif
#ifdef ERR_LIB_OBJ
  case ERR_LIB_OBJ: return "OBJ";
#endif
#ifdef ERR_LIB_OCSP
  case ERR_LIB_OCSP: return "OCSP";
#endif
#ifdef ERR_LIB_OFFSET
  case ERR_LIB_OFFSET: return "OFFSET";
#endif
#ifdef ERR_LIB_OSSL_DECODER
  case ERR_LIB_OSSL_DECODER: return "OSSL_DECODER";
#endif
#ifdef ERR_LIB_OSSL_ENCODER
  case ERR_LIB_OSSL_ENCODER: return "OSSL_ENCODER";
#endif
#ifdef ERR_LIB_OSSL_STORE
  case ERR_LIB_OSSL_STORE: return "OSSL_STORE";
#endif
#ifdef ERR_LIB_PEM
  case ERR_LIB_PEM: return "PEM";
#endif
#ifdef ERR_LIB_PKCS12
  case ERR_LIB_PKCS12: return "PKCS12";
#endif
#ifdef ERR_LIB_PKCS7
  case ERR_LIB_PKCS7: return "PKCS7";
#endif
#ifdef ERR_LIB_PROP
  case ERR_LIB_PROP: return "PROP";
#endif
#ifdef ERR_LIB_PROV
  case ERR_LIB_PROV: return "PROV";
#endif
#ifdef ERR_LIB_PROXY
  case ERR_LIB_PROXY: return "PROXY";
#endif
#ifdef ERR_LIB_RAND
  case ERR_LIB_RAND: return "RAND";
#endif
#ifdef ERR_LIB_RSA
  case ERR_LIB_RSA: return "RSA";
#endif
#ifdef ERR_LIB_RSAREF
  case ERR_LIB_RSAREF: return "RSAREF";
#endif
#ifdef ERR_LIB_SM2
  case ERR_LIB_SM2: return "SM2";
#endif
#ifdef ERR_LIB_SSL
  case ERR_LIB_SSL: return "SSL";
#endif
#ifdef ERR_LIB_SSL2
  case ERR_LIB_SSL2: return "SSL2";
#endif
#ifdef ERR_LIB_SSL23
  case ERR_LIB_SSL23: return "SSL23";
#endif
#ifdef ERR_LIB_SSL3
  case ERR_LIB_SSL3: return "SSL3";
#endif
#ifdef ERR_LIB_SYS
  case ERR_LIB_SYS: return "SYS";
#endif
#ifdef ERR_LIB_TS
  case ERR_LIB_TS: return "TS";
#endif
#ifdef ERR_LIB_UI
  case ERR_LIB_UI: return "UI";
#endif
#ifdef ERR_LIB_USER
  case ERR_LIB_USER: return "USER";
#endif
#ifdef ERR_LIB_X509
  case ERR_LIB_X509: return "X509";
#endif
#ifdef ERR_LIB_X509V3
  case ERR_LIB_X509V3: return "X509V3";
#endif
  default: return NULL;
  }
}

/* Reasons of OpenSSL 3 that Python's table of names (_ssl_data_300.h)
 * lacks: their errors read "[SSL] tlsv1 alert no application protocol"
 * there, with .reason None. */
static int python_lacks(int lib, int reason) {
  return lib == ERR_LIB_SSL &&
         (reason == SSL_R_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY ||
          reason == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
}

/* The names of Python's table that are not OpenSSL's reason text
 * upper-cased ("at least (D)TLS 1.2 needed in Suite B mode"). */
static const struct {
  int lib, reason;
  const char *name;
} renamed[] = {
    {ERR_LIB_SSL, SSL_R_AT_LEAST_TLS_1_2_NEEDED_IN_SUITEB_MODE,
     "AT_LEAST_TLS_1_2_NEEDED_IN_SUITEB_MODE"},
    {ERR_LIB_SSL, SSL_R_ILLEGAL_SUITEB_DIGEST, "ILLEGAL_SUITEB_DIGEST"},
    {ERR_LIB_SSL, SSL_R_MISSING_SRP_PARAM, "MISSING_SRP_PARAM"},
    {ERR_LIB_SSL, SSL_R_NO_GOST_CERTIFICATE_SENT_BY_PEER,
     "NO_GOST_CERTIFICATE_SENT_BY_PEER"},
    {ERR_LIB_SSL, SSL_R_SRP_A_CALC, "SRP_A_CALC"},
    {ERR_LIB_EVP, EVP_R_EXPECTING_A_ECX_KEY, "EXPECTING_A_ECX_KEY"},
    {ERR_LIB_EVP, EVP_R_EXPECTING_A_EC_KEY, "EXPECTING_A_EC_KEY"},
    {ERR_LIB_EVP, EVP_R_PARTIALLY_OVERLAPPING, "PARTIALLY_OVERLAPPING"},
    {ERR_LIB_RSA, RSA_R_SLEN_CHECK_FAILED, "SLEN_CHECK_FAILED"},
    {ERR_LIB_RSA, RSA_R_SLEN_RECOVERY_FAILED, "SLEN_RECOVERY_FAILED"},
    {ERR_LIB_DH, DH_R_INVALID_PUBKEY, "INVALID_PUBKEY"},
    {ERR_LIB_RAND, RAND_R_FUNC_NOT_IMPLEMENTED, "FUNC_NOT_IMPLEMENTED"},
    {ERR_LIB_RAND, RAND_R_FWRITE_ERROR, "FWRITE_ERROR"},
};

/* Pushes Python's name of the reason of error e ("certificate verify
 * failed" -> "CERTIFICATE_VERIFY_FAILED"), or nil when Python's table
 * has none: OpenSSL's common reasons ("PEM lib", "ASN1 lib", any
 * library's) and the few codes python_lacks. Python's table holds the
 * libraries' own reasons, named after OpenSSL's macros; those are their
 * text upper-cased, but for `renamed`. */
static void push_reason_name(lua_State *L, unsigned long e,
                             const char *text) {
  int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);
  size_t i;
  luaL_Buffer b;
  if (!text || ERR_SYSTEM_ERROR(e) || (ERR_GET_RFLAGS(e) & ERR_RFLAG_COMMON) ||
      !lib_name(lib) || python_lacks(lib, reason)) {
    lua_pushnil(L);
    return;
  }
  for (i = 0; i < sizeof renamed / sizeof renamed[0]; i++)
    if (renamed[i].lib == lib && renamed[i].reason == reason) {
      lua_pushstring(L, renamed[i].name);
      return;
    }
  luaL_buffinit(L, &b);
  for (; *text; text++)
    luaL_addchar(&b, *text == ' ' ? '_'
                                  : (char)toupper((unsigned char)*text));
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

/* Pushes the message of error e as Python's _ssl builds it: "[LIB:
 * NAME] text[: verify message]" when both have a name in Python's
 * tables, "[LIB] text" when only the library has, else the text. The
 * name (or nil) is at index `name`, the verify message (or nothing) at
 * name + 1. */
static void push_message(lua_State *L, unsigned long e, int name,
                         int verify) {
  const char *lib = lib_name(ERR_GET_LIB(e));
  const char *text = ERR_reason_error_string(e);
  char hex[32];
  if (!text) {
    snprintf(hex, sizeof hex, "%lx", e);
    lua_pushfstring(L, e ? "unknown error (0x%s)" : "unknown error", hex);
  } else if (lib && !lua_isnil(L, name)) {
    lua_pushfstring(L, "[%s: %s] %s%s%s", lib, lua_tostring(L, name), text,
                    verify ? ": " : "",
                    verify ? lua_tostring(L, name + 1) : "");
  } else if (lib) {
    lua_pushfstring(L, "[%s] %s", lib, text);
  } else {
    lua_pushstring(L, text);
  }
}

/* Pushes the error object for an SSL_ERROR_SSL failure with queued
 * error e (0: none); its errno (and args[1]) is errnum. [-0, +1] */
static void push_lib_error(lua_State *L, SSL *ssl, unsigned long e,
                           const char *hostname, int errnum) {
  const char *cls = ssl_class(e);
  int top = lua_gettop(L);
  int verify = is_ssl_reason(e, SSL_R_CERTIFICATE_VERIFY_FAILED);
  long vcode = verify && ssl ? SSL_get_verify_result(ssl) : 0;

  push_reason_name(L, e, e ? ERR_reason_error_string(e) : NULL);
  if (verify)
    push_verify_message(L, vcode, hostname);    /* [name, (vmsg)] */
  push_message(L, e, top + 1, verify);
  tls_push_error(L, cls, errnum, lua_tostring(L, -1));
  lua_replace(L, -2);                           /* [name, (vmsg), e] */
  lua_pushstring(L, e ? lib_name(ERR_GET_LIB(e)) : NULL);
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

/* Pushes the error of a connection's failure (errnum: SSL_get_error's
 * code) or a context's (errnum: the reason code). */
static void push_ssl_error(lua_State *L, SSL *ssl, int code,
                           const char *hostname, int errnum) {
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
    push_lib_error(L, ssl, e, hostname,
                   is_ssl_reason(e, SSL_R_UNEXPECTED_EOF_WHILE_READING)
                       ? 8 : errnum);
    break;
  }
  ERR_clear_error();
}

void tls_push_ssl_error(lua_State *L, SSL *ssl, int code,
                        const char *hostname) {
  push_ssl_error(L, ssl, code, hostname, SSL_ERROR_SSL);
}

/* A failure outside a connection's I/O: errno is the reason code of
 * OpenSSL's last queued error, as Python's _ssl gives it (0 for none). */
int tls_raise_ssl(lua_State *L) {
  int code = ERR_GET_REASON(ERR_peek_last_error());
  push_ssl_error(L, NULL, SSL_ERROR_SSL, NULL, code);
  return lua_error(L);
}
