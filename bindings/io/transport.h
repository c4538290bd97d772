/*
 * transport.h - the stream transport's structures, shared by the files
 * of the I/O layer that build on it (transport.c, server.c, stream.c).
 * Everything else goes through the aio_transport_* functions of
 * internal.h.
 */
#ifndef AIO_TRANSPORT_H
#define AIO_TRANSPORT_H

#include "../internal.h"

/* A write pipe's watch on its reader (transport.c). */
typedef struct aio_hup aio_hup;

/* The uv half. Its uv callbacks never call Lua: they record events
 * (aio_io_notify) that transport.c dispatches. */
struct aio_stream {
  aio_io io;
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  uv_connect_t creq;
  uv_shutdown_t sreq;
  aio_transport *t;       /* the owning transport, or NULL */
  struct aio_stream *next_accepted; /* in a listener's queue (server.c) */
  aio_hup *hup;           /* a write pipe's watch on its reader, or NULL */
  char *rbuf;             /* a Lua protocol's data not yet delivered */
  size_t rlen, rcap;
  uv_buf_t room;          /* the protocol's room when a read went to the
                             loop's scratch buffer (on_alloc to on_read) */
  size_t wbytes;          /* bytes queued in write requests */
  int err;                /* the read or write error that lost it */
  int cstatus;            /* connect result */
  unsigned char kind;     /* AIO_SK_* */
  unsigned char connecting, reading, killed;
};

/* The address of an IPv4 or IPv6 socket: 28 bytes, where a
 * sockaddr_storage takes 128. */
typedef union aio_inet_addr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} aio_inet_addr;

/* The Lua half (userdata AIO_TRANSPORT_MT). */
struct aio_transport {
  aio_stream *s;          /* NULL once the handle is closed */
  aio_loop *loop;
  const aio_proto_vt *vt; /* the protocol's vtable, NULL before start */
  void *proto;            /* its `p`: a C protocol's userdata, or this
                             transport for a Lua protocol */
  const aio_data_vt *dvt; /* a Lua protocol's data_received in C, or
                             NULL (AIO_DATA_FN) */
  aio_srvcore *srv;       /* the server that accepted it, until
                             connection_lost */
  aio_transport *cnext, *cprev; /* in the server's list of clients */
  size_t high, low;       /* write buffer limits */
  aio_inet_addr sock, peer; /* a TCP socket's (a Unix socket's paths
                               are strings: uservalue T_UV_EXTRA) */
  int fd;                 /* the OS handle, -1 if unknown */
  unsigned char kind;     /* AIO_SK_* */
  unsigned char readonly, writeonly;
  unsigned char started;  /* connection_made is (being) called */
  unsigned char closing;  /* close(), abort() or a fatal error */
  unsigned char eof_sent, eof, rpaused, wpaused;
  unsigned char lost;     /* connection_lost is scheduled */
  unsigned char has_sock, has_peer;
  int anchor;             /* its anchor (aio_anchor) until
                             connection_lost, else LUA_NOREF */
};

/* Uservalues of a Transport. */
enum {
  T_UV_PROTO = 1, /* the protocol */
  T_UV_LOOP,      /* the loop userdata */
  T_UV_EXC,       /* the error connection_lost gets */
  T_UV_EXTRA,     /* what it owns besides (a pipe's file handle), or a
                     Unix socket's {sockname, peername} (false: none) */
  T_UV_COUNT = T_UV_EXTRA
};

#endif
