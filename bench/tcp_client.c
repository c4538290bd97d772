/*
 * tcp_client.c - the load client of the tcp workload (w7): CONNS
 * connections to an echo server, each with one SIZE-byte request in
 * flight; every echoed byte is checked; N round trips in all.
 *
 *   tcp_client [-c CONNS] [-s SIZE] HOST PORT N [LABEL]
 *
 * Prints `LABEL/w7_tcp N seconds round_trips_per_sec` (LABEL defaults to
 * "client"). Connecting retries for 10 s, so the server may still be
 * starting. Exits 1 on any error or a mismatched byte. Linux (epoll).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
  int fd, id;
  long quota, done;  /* round trips to make, made */
  size_t got, sent;  /* bytes of the current request */
  unsigned char *out, *in;
} conn;

static size_t size = 64;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "tcp_client: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* The request bytes of round trip `seq` of connection `id`. */
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

static void send_request(conn *c) {
  while (c->sent < size) {
    ssize_t n = write(c->fd, c->out + c->sent, size - c->sent);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue; /* 64 bytes: the socket buffer always has room */
      die("write");
    }
    c->sent += (size_t)n;
  }
}

int main(int argc, char **argv) {
  struct sockaddr_in sa;
  struct epoll_event ev, evs[256];
  int nconns = 50, opt, ep, i, left;
  long n;
  const char *label = "client";
  conn *cs;
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
    fprintf(stderr, "usage: tcp_client [-c CONNS] [-s SIZE] HOST PORT N "
            "[LABEL]\n");
    return 2;
  }
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[optind + 1]));
  if (inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1) {
    fprintf(stderr, "tcp_client: bad host %s\n", argv[optind]);
    return 2;
  }
  n = atol(argv[optind + 2]);
  if (argc - optind > 3)
    label = argv[optind + 3];
  cs = calloc((size_t)nconns, sizeof *cs);
  ep = epoll_create1(0);
  if (cs == NULL || ep < 0)
    die("setup");
  for (i = 0; i < nconns; i++) {
    conn *c = &cs[i];
    c->id = i;
    c->fd = connect_retry(&sa);
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
      fprintf(stderr, "tcp_client: no answer for 10 s\n");
      return 1;
    }
    for (i = 0; i < k; i++) {
      conn *c = evs[i].data.ptr;
      ssize_t r = read(c->fd, c->in + c->got, size - c->got);
      if (r < 0) {
        if (errno == EAGAIN || errno == EINTR)
          continue;
        die("read");
      }
      if (r == 0) {
        fprintf(stderr, "tcp_client: the server closed connection %d\n",
                c->id);
        return 1;
      }
      c->got += (size_t)r;
      if (c->got < size)
        continue;
      if (memcmp(c->in, c->out, size) != 0) {
        fprintf(stderr, "tcp_client: wrong echo on connection %d, round "
                "trip %ld\n", c->id, c->done);
        return 1;
      }
      c->got = c->sent = 0;
      if (++c->done == c->quota) {
        left--;
        continue;
      }
      fill(c);
      send_request(c);
    }
  }
  t1 = now();
  for (i = 0; i < nconns; i++)
    close(cs[i].fd);
  printf("%s/w7_tcp %ld %.4f %.0f\n", label, n, t1 - t0, (double)n / (t1 - t0));
  return 0;
}
