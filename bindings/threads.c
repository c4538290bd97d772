/*
 * threads.c - the part of a loop other threads may touch: a queue of
 * posted C callbacks, and the wake-up that interrupts a blocking poll.
 *
 * uv_async_send coalesces wake-ups, so posts are kept in our own queue:
 * none is merged or lost. The loop drains the whole queue at the start of
 * each iteration, after each poll, and before every push to its ready
 * queue (aio_ready_push), so that a post that happened before a call_soon
 * runs before it: a post is visible through the `pending` counter, whose
 * increment happens-before anything the poster does afterwards.
 *
 * The struct is reference counted: the loop holds one reference, and every
 * loop reference in another thread holds one, so posting to a loop that
 * has closed (or been freed) fails cleanly instead of touching freed
 * memory. The mutex guards `head`, `tail`, `loop` and `closed`; Lua is
 * never called with it held.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

typedef struct post {
  struct post *next;
  aio_cfunc fn;
  void *data;
} post;

struct aio_remote {
  uv_mutex_t mu;
  atomic_int refs;
  atomic_uint pending; /* posts in the queue (a hint read without mu) */
  post *head, *tail;
  aio_loop *loop;      /* NULL once the loop closed */
  uv_async_t *wakeup;  /* valid while loop != NULL */
};

aio_remote *aio_remote_new(lua_State *L, aio_loop *loop) {
  aio_remote *r = calloc(1, sizeof *r);
  if (r == NULL || uv_mutex_init(&r->mu) != 0) {
    free(r);
    luaL_error(L, "not enough memory");
  }
  atomic_init(&r->refs, 1);
  atomic_init(&r->pending, 0);
  r->loop = loop;
  r->wakeup = loop->wakeup;
  return r;
}

void aio_remote_retain(aio_remote *r) {
  atomic_fetch_add(&r->refs, 1);
}

void aio_remote_release(aio_remote *r) {
  if (atomic_fetch_sub(&r->refs, 1) == 1) {
    uv_mutex_destroy(&r->mu);
    free(r);
  }
}

int aio_remote_post(aio_remote *r, aio_cfunc fn, void *data) {
  post *p = malloc(sizeof *p);
  if (p == NULL)
    return UV_ENOMEM;
  p->next = NULL;
  p->fn = fn;
  p->data = data;
  uv_mutex_lock(&r->mu);
  if (r->loop == NULL) {
    uv_mutex_unlock(&r->mu);
    free(p);
    return UV_ECANCELED;
  }
  if (r->tail)
    r->tail->next = p;
  else
    r->head = p;
  r->tail = p;
  atomic_fetch_add(&r->pending, 1);
  /* under the mutex: the loop cannot close the handle meanwhile */
  uv_async_send(r->wakeup);
  uv_mutex_unlock(&r->mu);
  return 0;
}

/* Takes the whole queue. */
static post *take_all(aio_remote *r) {
  post *list;
  uv_mutex_lock(&r->mu);
  list = r->head;
  r->head = r->tail = NULL;
  atomic_store(&r->pending, 0);
  uv_mutex_unlock(&r->mu);
  return list;
}

int aio_remote_has_posts(aio_remote *r) {
  return atomic_load_explicit(&r->pending, memory_order_relaxed) != 0;
}

void aio_remote_drain(lua_State *L, aio_loop *loop) {
  post *p, *next;
  if (loop->remote == NULL || !aio_remote_has_posts(loop->remote))
    return;
  for (p = take_all(loop->remote); p; p = next) {
    next = p->next;
    aio_ready_push_raw(L, loop, AIO_R_CFUNC, p->data, 0, p->fn, 0);
    free(p);
  }
}

void aio_remote_close(aio_remote *r) {
  post *p, *next;
  aio_loop *loop;
  uv_mutex_lock(&r->mu);
  loop = r->loop;
  r->loop = NULL;
  uv_mutex_unlock(&r->mu);
  for (p = take_all(r); p; p = next) {
    next = p->next;
    p->fn(loop, NULL, p->data);
    free(p);
  }
}
