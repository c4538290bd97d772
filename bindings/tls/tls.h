/*
 * tls.h - declarations shared by the C files of the TLS battery, the
 * module "asyncio._ssl" (module.c, context.c, sslobj.c, x509.c, errors.c).
 *
 * The battery is a module of its own, linked with libssl: it uses only
 * Lua's and OpenSSL's APIs, never the core's C functions (a separate
 * shared object cannot reach them). Error objects are made by calling
 * the error classes lua/asyncio/ssl.lua hands over at load time.
 *
 * Cross-file names start with "tls_". Every object belongs to the
 * lua_State that made it and is touched only by the thread running it.
 */
#ifndef TLS_H
#define TLS_H

#include <stddef.h>

#include <lua.h>
#include <lauxlib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* AIO_EXPORT, the transport entries (aio_transport_vt) and the inline
 * aio_testtagged: nothing that links against the core */
#include "internal.h"

#define TLS_CONTEXT_MT "asyncio.ssl.SSLContext"
#define TLS_OBJECT_MT "asyncio.ssl.SSLObject"

/* Python's constants (ssl.PROTOCOL_*, ssl.CERT_*, ssl.TLSVersion.*). */
enum {
  TLS_PROTOCOL_TLS = 2,
  TLS_PROTOCOL_TLS_CLIENT = 16,
  TLS_PROTOCOL_TLS_SERVER = 17
};
enum { TLS_CERT_NONE, TLS_CERT_OPTIONAL, TLS_CERT_REQUIRED };
enum { TLS_VERSION_MINIMUM_SUPPORTED = -2, TLS_VERSION_MAXIMUM_SUPPORTED = -1 };

/* An SSLContext: the userdata owns one reference to the SSL_CTX (each
 * SSL made from it takes one more). */
typedef struct tls_ctx {
  SSL_CTX *ctx;          /* NULL once collected */
  int protocol;          /* TLS_PROTOCOL_* */
  unsigned char check_hostname;
  unsigned char *alpn;   /* ALPN protocols in wire format (malloc'd), or
                            NULL; read by the server's selection callback */
  unsigned alpn_len;
} tls_ctx;

/* ------------------------------------------------------------------ */
/* errors.c                                                            */

/* Keeps the table of error classes at idx (SSLError, ..., and asyncio's
 * ValueError, OSError kin; `repr`, asyncio's repr of a value) for the
 * functions below. */
void tls_set_classes(lua_State *L, int idx);
/* Pushes classes[cls](errnum, msg), a new error object (not raised). */
void tls_push_error(lua_State *L, const char *cls, int errnum,
                    const char *msg);
/* Raises classes[cls](msg) (ValueError and the like). */
int tls_raise(lua_State *L, const char *cls, const char *fmt, ...);
/* Pushes the error object for an OpenSSL failure: `code` is what
 * SSL_get_error returned (SSL_ERROR_SSL for context functions), `ssl`
 * the connection or NULL, `hostname` the name checked or NULL. Reads
 * and clears the thread's OpenSSL error queue. */
void tls_push_ssl_error(lua_State *L, SSL *ssl, int code,
                        const char *hostname);
/* Raises what tls_push_ssl_error pushes, for an SSL_ERROR_SSL failure
 * of a context function. */
int tls_raise_ssl(lua_State *L);
/* Raises the OSError kin for errno `err` on file `path` ("[Errno 2] No
 * such file or directory: 'path'", .errno, .strerror, .filename), as
 * Python's OSError with a filename. */
int tls_raise_errno(lua_State *L, int err, const char *path);

/* ------------------------------------------------------------------ */
/* context.c                                                           */

tls_ctx *tls_check_ctx(lua_State *L, int idx);
/* The file path argument at idx (nil: dflt, unless dflt is NULL): a
 * string without a NUL byte, else raises (ValueError "embedded null
 * byte" for one with). */
const char *tls_check_path(lua_State *L, int idx, const char *dflt);
void tls_open_context(lua_State *L);

/* ------------------------------------------------------------------ */
/* sslobj.c                                                            */

/* ctx:wrap_bio(server_side, server_hostname): pushes a new SSLObject
 * made from the context at index 1. Raises ValueError as Python does. */
int tls_wrap_bio(lua_State *L);
void tls_open_sslobj(lua_State *L);

/* ------------------------------------------------------------------ */
/* x509.c                                                              */

/* Pushes Python's getpeercert() dict for cert, as a Lua table. */
void tls_push_cert_dict(lua_State *L, X509 *cert);
/* Pushes the DER encoding of cert as a string. */
void tls_push_cert_der(lua_State *L, X509 *cert);
void tls_open_x509(lua_State *L);

AIO_EXPORT int luaopen_asyncio__ssl(lua_State *L);

#endif
