/*
 * module.c - the opener of asyncio._ssl, the C half of asyncio.ssl:
 * SSLContext (context.c), SSLObject (sslobj.c), certificates (x509.c),
 * errors (errors.c), and OpenSSL's constants under Python's names.
 * Users require "asyncio.ssl", which hands this module its error classes
 * (_set_classes) before anything can fail.
 */
#include <openssl/err.h>
#include <openssl/opensslv.h>

#include "tls.h"

/* _ssl._set_classes(t): the error classes the C side raises. */
static int l_set_classes(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  tls_set_classes(L, 1);
  return 0;
}

typedef struct constant {
  const char *name;
  lua_Integer value;
} constant;

static const constant constants[] = {
    {"OP_ALL", (lua_Integer)(SSL_OP_ALL & ~SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS)},
    {"OP_NO_SSLv2", 0},
    {"OP_NO_SSLv3", (lua_Integer)SSL_OP_NO_SSLv3},
    {"OP_NO_TLSv1", (lua_Integer)SSL_OP_NO_TLSv1},
    {"OP_NO_TLSv1_1", (lua_Integer)SSL_OP_NO_TLSv1_1},
    {"OP_NO_TLSv1_2", (lua_Integer)SSL_OP_NO_TLSv1_2},
    {"OP_NO_TLSv1_3", (lua_Integer)SSL_OP_NO_TLSv1_3},
    {"OP_NO_COMPRESSION", (lua_Integer)SSL_OP_NO_COMPRESSION},
    {"OP_NO_TICKET", (lua_Integer)SSL_OP_NO_TICKET},
    {"OP_NO_RENEGOTIATION", (lua_Integer)SSL_OP_NO_RENEGOTIATION},
    {"OP_CIPHER_SERVER_PREFERENCE",
     (lua_Integer)SSL_OP_CIPHER_SERVER_PREFERENCE},
    {"OP_SINGLE_DH_USE", (lua_Integer)SSL_OP_SINGLE_DH_USE},
    {"OP_SINGLE_ECDH_USE", (lua_Integer)SSL_OP_SINGLE_ECDH_USE},
    {"OP_ENABLE_MIDDLEBOX_COMPAT",
     (lua_Integer)SSL_OP_ENABLE_MIDDLEBOX_COMPAT},
    {"OP_IGNORE_UNEXPECTED_EOF", (lua_Integer)SSL_OP_IGNORE_UNEXPECTED_EOF},
    {"VERIFY_DEFAULT", 0},
    {"VERIFY_CRL_CHECK_LEAF", X509_V_FLAG_CRL_CHECK},
    {"VERIFY_CRL_CHECK_CHAIN",
     X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL},
    {"VERIFY_X509_STRICT", X509_V_FLAG_X509_STRICT},
    {"VERIFY_ALLOW_PROXY_CERTS", X509_V_FLAG_ALLOW_PROXY_CERTS},
    {"VERIFY_X509_TRUSTED_FIRST", X509_V_FLAG_TRUSTED_FIRST},
    {"VERIFY_X509_PARTIAL_CHAIN", X509_V_FLAG_PARTIAL_CHAIN},
    {"OPENSSL_VERSION_NUMBER", OPENSSL_VERSION_NUMBER},
    {NULL, 0}};

AIO_EXPORT int luaopen_asyncio__ssl(lua_State *L) {
  const constant *c;
  lua_newtable(L);
  tls_open_context(L);
  tls_open_sslobj(L);
  tls_open_x509(L);
  lua_pushcfunction(L, l_set_classes);
  lua_setfield(L, -2, "_set_classes");
  for (c = constants; c->name; c++) {
    lua_pushinteger(L, c->value);
    lua_setfield(L, -2, c->name);
  }
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "OPENSSL_VERSION");
  return 1;
}
