/*
 * x509.c - certificates as Python's ssl shows them: getpeercert()'s
 * dict (subject, issuer, version, serialNumber, notBefore, notAfter,
 * subjectAltName) as a Lua table, and the DER form.
 *
 * Python's tuples become Lua lists: a name is a list of RDNs, each a
 * list of {attribute, value} pairs, so
 *   (('commonName', 'localhost'),),  ->  {{{"commonName", "localhost"}}}
 * and subjectAltName is a list of {type, value}: {"DNS", "localhost"},
 * {"IP Address", "127.0.0.1"}.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls.h"

/* Replaces the two values on top, [a, b], by the pair {a, b}. */
static void pair2(lua_State *L) {
  lua_createtable(L, 2, 0);
  lua_insert(L, -3);
  lua_rawseti(L, -3, 2);
  lua_rawseti(L, -2, 1);
}

/* Replaces the value b on top by the pair {a, b}. */
static void pair(lua_State *L, const char *a) {
  lua_pushstring(L, a);
  lua_insert(L, -2);
  pair2(L);
}

/* Appends the value on top (popped) to the list at idx. */
static void append(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawseti(L, idx, (lua_Integer)lua_rawlen(L, idx) + 1);
}

/* Pushes an ASN.1 string as UTF-8. */
static void push_asn1_string(lua_State *L, const ASN1_STRING *s) {
  unsigned char *utf8 = NULL;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) {
    ERR_clear_error();
    lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s),
                    (size_t)ASN1_STRING_length(s));
    return;
  }
  lua_pushlstring(L, (const char *)utf8, (size_t)n);
  OPENSSL_free(utf8);
}

/* Pushes an object's long name ("commonName"), or its dotted number. */
static void push_obj_name(lua_State *L, const ASN1_OBJECT *obj) {
  char buf[128];
  int n = OBJ_obj2txt(buf, (int)sizeof buf, obj, 0);
  if (n < 0)
    n = 0;
  lua_pushlstring(L, buf, (size_t)n < sizeof buf ? (size_t)n
                                                 : sizeof buf - 1);
}

/* Pushes a name as a list of RDNs (entries of one set stay together). */
static void push_name(lua_State *L, const X509_NAME *name) {
  int i, n = X509_NAME_entry_count(name), last = -1;
  lua_newtable(L);                                     /* [dn] */
  for (i = 0; i < n; i++) {
    const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    int set = X509_NAME_ENTRY_set(e);
    if (set != last) {
      if (last >= 0)
        append(L, -2);                                 /* [dn] */
      lua_newtable(L);                                 /* [dn, rdn] */
      last = set;
    }
    push_obj_name(L, X509_NAME_ENTRY_get_object(e));
    push_asn1_string(L, X509_NAME_ENTRY_get_data(e));
    pair2(L);                                          /* [dn, rdn, p] */
    append(L, -2);
  }
  if (last >= 0)
    append(L, -2);
}

/* Pushes what an OpenSSL printer writes into a memory BIO. */
static void push_bio_text(lua_State *L, BIO *bio) {
  char *p;
  long n = BIO_get_mem_data(bio, &p);
  lua_pushlstring(L, p, n > 0 ? (size_t)n : 0);
}

static void push_time(lua_State *L, const ASN1_TIME *t) {
  BIO *bio = BIO_new(BIO_s_mem());
  if (!bio)
    luaL_error(L, "not enough memory");
  ASN1_TIME_print(bio, t);
  push_bio_text(L, bio);
  BIO_free(bio);
}

static void push_serial(lua_State *L, const ASN1_INTEGER *serial) {
  BIO *bio = BIO_new(BIO_s_mem());
  if (!bio)
    luaL_error(L, "not enough memory");
  i2a_ASN1_INTEGER(bio, serial);
  push_bio_text(L, bio);
  BIO_free(bio);
}

/* Pushes an address as Python prints it (v6: eight %X groups). */
static void push_ip(lua_State *L, const ASN1_OCTET_STRING *ip) {
  const unsigned char *p = ASN1_STRING_get0_data(ip);
  char buf[64];
  if (ASN1_STRING_length(ip) == 4) {
    snprintf(buf, sizeof buf, "%d.%d.%d.%d", p[0], p[1], p[2], p[3]);
  } else if (ASN1_STRING_length(ip) == 16) {
    int i, off = 0;
    for (i = 0; i < 8; i++)
      off += snprintf(buf + off, sizeof buf - (size_t)off, "%s%X",
                      i ? ":" : "", (unsigned)(p[2 * i] << 8 | p[2 * i + 1]));
  } else {
    snprintf(buf, sizeof buf, "<invalid>");
  }
  lua_pushstring(L, buf);
}

/* Pushes one general name as {type, value}. */
static void push_general_name(lua_State *L, const GENERAL_NAME *g) {
  switch (g->type) {
  case GEN_DNS:
    push_asn1_string(L, g->d.dNSName);
    pair(L, "DNS");
    break;
  case GEN_EMAIL:
    push_asn1_string(L, g->d.rfc822Name);
    pair(L, "email");
    break;
  case GEN_URI:
    push_asn1_string(L, g->d.uniformResourceIdentifier);
    pair(L, "URI");
    break;
  case GEN_IPADD:
    push_ip(L, g->d.iPAddress);
    pair(L, "IP Address");
    break;
  case GEN_DIRNAME:
    push_name(L, g->d.directoryName);
    pair(L, "DirName");
    break;
  case GEN_RID: {
    char buf[128];
    int n = OBJ_obj2txt(buf, (int)sizeof buf, g->d.registeredID, 1);
    lua_pushlstring(L, buf, n < 0 ? 0 : n < (int)sizeof buf
                                        ? (size_t)n : sizeof buf - 1);
    pair(L, "Registered ID");
    break;
  }
  default:
    lua_pushliteral(L, "<unsupported>");
    pair(L, g->type == GEN_OTHERNAME ? "othername"
            : g->type == GEN_X400 ? "X400Name" : "EdiPartyName");
    break;
  }
}

/* Sets field subjectAltName of the table on top, when cert has one. */
static void set_san(lua_State *L, X509 *cert) {
  GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name,
                                          NULL, NULL);
  int i;
  if (!names) {
    ERR_clear_error();
    return;
  }
  lua_newtable(L);
  for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
    push_general_name(L, sk_GENERAL_NAME_value(names, i));
    append(L, -2);
  }
  GENERAL_NAMES_free(names);
  lua_setfield(L, -2, "subjectAltName");
}

/* Sets field `key` of the table on top to the list of the URIs of the
 * authority information access method `nid` (OCSP, caIssuers), when
 * cert has some. */
static void set_aia(lua_State *L, X509 *cert, int nid, const char *key) {
  AUTHORITY_INFO_ACCESS *info = X509_get_ext_d2i(cert, NID_info_access,
                                                 NULL, NULL);
  int i, n = 0;
  if (!info) {
    ERR_clear_error();
    return;
  }
  lua_newtable(L);
  for (i = 0; i < sk_ACCESS_DESCRIPTION_num(info); i++) {
    ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(info, i);
    if (OBJ_obj2nid(ad->method) != nid ||
        ad->location->type != GEN_URI)
      continue;
    push_asn1_string(L, ad->location->d.uniformResourceIdentifier);
    lua_rawseti(L, -2, ++n);
  }
  AUTHORITY_INFO_ACCESS_free(info);
  if (n)
    lua_setfield(L, -2, key);
  else
    lua_pop(L, 1);
}

/* Sets crlDistributionPoints: the URIs of the full names. */
static void set_crl_dp(lua_State *L, X509 *cert) {
  STACK_OF(DIST_POINT) *dps =
      X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
  int i, j, n = 0;
  if (!dps) {
    ERR_clear_error();
    return;
  }
  lua_newtable(L);
  for (i = 0; i < sk_DIST_POINT_num(dps); i++) {
    DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
    GENERAL_NAMES *gns;
    if (!dp->distpoint || dp->distpoint->type != 0)
      continue;
    gns = dp->distpoint->name.fullname;
    for (j = 0; j < sk_GENERAL_NAME_num(gns); j++) {
      GENERAL_NAME *g = sk_GENERAL_NAME_value(gns, j);
      if (g->type != GEN_URI)
        continue;
      push_asn1_string(L, g->d.uniformResourceIdentifier);
      lua_rawseti(L, -2, ++n);
    }
  }
  CRL_DIST_POINTS_free(dps);
  if (n)
    lua_setfield(L, -2, "crlDistributionPoints");
  else
    lua_pop(L, 1);
}

void tls_push_cert_dict(lua_State *L, X509 *cert) {
  lua_createtable(L, 0, 7);
  push_name(L, X509_get_subject_name(cert));
  lua_setfield(L, -2, "subject");
  push_name(L, X509_get_issuer_name(cert));
  lua_setfield(L, -2, "issuer");
  lua_pushinteger(L, X509_get_version(cert) + 1);
  lua_setfield(L, -2, "version");
  push_serial(L, X509_get0_serialNumber(cert));
  lua_setfield(L, -2, "serialNumber");
  push_time(L, X509_get0_notBefore(cert));
  lua_setfield(L, -2, "notBefore");
  push_time(L, X509_get0_notAfter(cert));
  lua_setfield(L, -2, "notAfter");
  set_san(L, cert);
  set_aia(L, cert, NID_ad_OCSP, "OCSP");
  set_aia(L, cert, NID_ad_ca_issuers, "caIssuers");
  set_crl_dp(L, cert);
}

void tls_push_cert_der(lua_State *L, X509 *cert) {
  unsigned char *der = NULL;
  int n = i2d_X509(cert, &der);
  if (n < 0) {
    ERR_clear_error();
    luaL_error(L, "cannot encode the certificate");
  }
  lua_pushlstring(L, (const char *)der, (size_t)n);
  OPENSSL_free(der);
}

/* Raises SSLError(msg) with no errno, as _ssl's own checks. */
static int raise_plain_ssl(lua_State *L, const char *msg) {
  ERR_clear_error();
  tls_push_error(L, "SSLError", -1, msg);
  return lua_error(L);
}

/* _ssl._test_decode_cert(path) -> the dict of the PEM certificate in a
 * file (Python's ssl._ssl._test_decode_cert, with its errors: SSLError
 * "Can't open file", "Error decoding PEM-encoded file"). */
static int l_test_decode_cert(lua_State *L) {
  const char *path = tls_check_path(L, 1, NULL);
  BIO *bio = BIO_new_file(path, "r");
  X509 *cert;
  if (!bio)
    return raise_plain_ssl(L, "Can't open file");
  cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (!cert)
    return raise_plain_ssl(L, "Error decoding PEM-encoded file");
  tls_push_cert_dict(L, cert);
  X509_free(cert);
  return 1;
}

void tls_open_x509(lua_State *L) {
  lua_pushcfunction(L, l_test_decode_cert);
  lua_setfield(L, -2, "_test_decode_cert");
}
