/*
 * tls_client.c - the load client of the TLS echo workload (w9): CONNS
 * TLS 1.3 connections to an echo server, each with one SIZE-byte request
 * in flight; every echoed byte is checked; N round trips in all. The
 * handshakes happen before the clock starts; the server's certificate is
 * not checked (the workload measures the record layer).
 *
 *   tls_client [-c CONNS] [-s SIZE] HOST PORT N [LABEL]
 *
 * Prints `LABEL/w9_tls_echo N seconds round_trips_per_sec`. Connecting
 * retries for 10 s, so the server may still be starting. Exits 1 on any
 * error or a mismatched byte. Linux (epoll), OpenSSL.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

typedef struct conn {
  int fd, id;
  SSL *ssl;
  long quota, done;  /* round trips to make, made */
  size_t got;        /* bytes of the current answer */
  unsigned char *out, *in;
} conn;

static size_t size = 64;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "tls_client: %s: %s\n", what, strerror(errno));
  ERR_print_errors_fp(stderr);
  exit(1);
}

static void fill(conn *c) {
  size_t i;
  for (i = 0; i < size; i++)
    c->out[i] = (unsigned char)(c->id * 131 + c->done * 7 + (long)i);
}

static int connect_retry(const struct sockaddr_in *sa) {
  double deadline = now() + 10;
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
      die("socket");
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0) {
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    close(fd);
    if (errno != ECONNREFUSED || now() > deadline)
      die("connect");
    usleep(20000);
  }
}

/* Writes the request; a 64-byte record always fits the socket buffer,
 * but a non-blocking SSL_write may still ask to be called again. */
static void send_request(conn *c) {
  for (;;) {
    int n = SSL_write(c->ssl, c->out, (int)size);
    if (n > 0)
      return;
    int e = SSL_get_error(c->ssl, n);
    if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
      die("SSL_write");
  }
}

int main(int argc, char **argv) {
  struct sockaddr_in sa;
  struct epoll_event ev, evs[256];
  int nconns = 50, opt, ep, i, left;
  long n;
  const char *label = "client";
  conn *cs;
  SSL_CTX *ctx;
  double t0, t1;
  while ((opt = getopt(argc, argv, "c:s:")) != -1) {
    if (opt == 'c')
      nconns = atoi(optarg);
    else if (opt == 's')
      size = (size_t)atol(optarg);
    else
      return 2;
  }
  if (argc - optind < 3 || nconns < 1 || size < 1) {
    fprintf(stderr, "usage: tls_client [-c CONNS] [-s SIZE] HOST PORT N "
            "[LABEL]\n");
    return 2;
  }
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[optind + 1]));
  if (inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1) {
    fprintf(stderr, "tls_client: bad host %s\n", argv[optind]);
    return 2;
  }
  n = atol(argv[optind + 2]);
  if (argc - optind > 3)
    label = argv[optind + 3];
  ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL)
    die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  cs = calloc((size_t)nconns, sizeof *cs);
  ep = epoll_create1(0);
  if (cs == NULL || ep < 0)
    die("setup");
  for (i = 0; i < nconns; i++) {
    conn *c = &cs[i];
    c->id = i;
    c->fd = connect_retry(&sa);
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd) ||
        SSL_connect(c->ssl) != 1)
      die("handshake");
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->quota = n / nconns + (i < n % nconns ? 1 : 0);
    c->out = malloc(size);
    c->in = malloc(size);
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (c->out == NULL || c->in == NULL ||
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
      die("setup");
  }
  t0 = now();
  left = 0;
  for (i = 0; i < nconns; i++) {
    conn *c = &cs[i];
    if (c->quota == 0)
      continue;
    fill(c);
    send_request(c);
    left++;
  }
  while (left > 0) {
    int k = epoll_wait(ep, evs, 256, 10000);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    if (k == 0) {
      fprintf(stderr, "tls_client: no answer for 10 s\n");
      return 1;
    }
    for (i = 0; i < k; i++) {
      conn *c = evs[i].data.ptr;
      for (;;) {
        int r = SSL_read(c->ssl, c->in + c->got, (int)(size - c->got));
        if (r <= 0) {
          int e = SSL_get_error(c->ssl, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
          fprintf(stderr, "tls_client: connection %d failed\n", c->id);
          ERR_print_errors_fp(stderr);
          return 1;
        }
        c->got += (size_t)r;
        if (c->got < size)
          continue;
        if (memcmp(c->in, c->out, size) != 0) {
          fprintf(stderr, "tls_client: wrong echo on connection %d, round "
                  "trip %ld\n", c->id, c->done);
          return 1;
        }
        c->got = 0;
        if (++c->done == c->quota) {
          left--;
          break;
        }
        fill(c);
        send_request(c);
      }
    }
  }
  t1 = now();
  for (i = 0; i < nconns; i++) {
    SSL_shutdown(cs[i].ssl);
    SSL_free(cs[i].ssl);
    close(cs[i].fd);
  }
  SSL_CTX_free(ctx);
  printf("%s/w9_tls_echo %ld %.4f %.0f\n", label, n, t1 - t0,
         (double)n / (t1 - t0));
  return 0;
}
