/*
 * uv_echo_server.c - the ceiling of the tcp workload (w7): a plain libuv
 * echo server on 127.0.0.1:PORT that exits once CONNS connections have
 * closed. No Lua, no asyncio: what the event loop and the kernel cost.
 *
 *   uv_echo_server [N] PORT CONNS   (N, the client's, is ignored: the
 *                                   other servers of w7 take it too)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

typedef struct client {
  uv_tcp_t tcp;
  char buf[65536];
} client;

typedef struct wreq {
  uv_write_t req;
  uv_buf_t buf;
} wreq;

static uv_tcp_t server;
static int conns_left;

static void on_closed(uv_handle_t *h) {
  free(h);
  if (--conns_left == 0)
    uv_close((uv_handle_t *)&server, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  client *c = (client *)h;
  (void)suggested;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_written(uv_write_t *req, int status) {
  (void)status;
  free(((wreq *)req)->buf.base);
  free(req);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  uv_buf_t b;
  int r;
  if (nread < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  if (nread == 0)
    return;
  b = uv_buf_init(buf->base, (unsigned)nread);
  r = uv_try_write(s, &b, 1);
  if (r == nread)
    return;
  if (r < 0 && r != UV_EAGAIN) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  } else {
    size_t done = r < 0 ? 0 : (size_t)r;
    wreq *w = malloc(sizeof *w);
    w->buf = uv_buf_init(malloc((size_t)nread - done),
                         (unsigned)((size_t)nread - done));
    memcpy(w->buf.base, buf->base + done, w->buf.len);
    uv_write(&w->req, s, &w->buf, 1, on_written);
  }
}

static void on_connection(uv_stream_t *srv, int status) {
  client *c;
  if (status < 0)
    return;
  c = malloc(sizeof *c);
  uv_tcp_init(srv->loop, &c->tcp);
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    conns_left++;
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
  struct sockaddr_in sa;
  uv_loop_t *loop = uv_default_loop();
  int r;
  if (argc == 4) { /* N PORT CONNS */
    argc--;
    argv++;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: uv_echo_server [N] PORT CONNS\n");
    return 2;
  }
  conns_left = atoi(argv[2]);
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &sa);
  uv_tcp_init(loop, &server);
  r = uv_tcp_bind(&server, (const struct sockaddr *)&sa, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&server, 128, on_connection);
  if (r != 0) {
    fprintf(stderr, "uv_echo_server: %s\n", uv_strerror(r));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}
