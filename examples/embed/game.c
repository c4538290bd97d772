/*
 * game.c - luaio embedded in a program shaped like a game.
 *
 * A fixed-rate frame loop (60 frames per second of game time) owns the
 * main thread. Each frame it advances the game clock, which is luaio's
 * host clock (so script sleeps count game time, and pausing the game
 * pauses them), and calls luaio_step with a small budget. The level script
 * (game.lua) runs as tasks across frames: a guard patrols, sleeping in
 * game time, and asks for a path to be computed. The path finding runs on
 * a worker thread, which hands the result back by resolving a luaio
 * future from that thread. The game pauses for a while in the middle.
 *
 * The frames are simulated (no real sleeping between them), so the run is
 * deterministic: `make` builds it, the specs run it and check its output.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "luaio.h"

#define FPS 60
#define FRAMES 360 /* six seconds of game time */

typedef struct game {
  int frame;
  double time;   /* game time, seconds: the host clock */
  int paused;
} game;

static double game_clock(void *ud) {
  return ((game *)ud)->time;
}

/* The worker thread: "computes" a path and resolves the future. */
typedef struct path_job {
  luaio_future *future;
  int from, to;
} path_job;

static void *path_worker(void *arg) {
  path_job *job = arg;
  char path[128];
  int i, n = 0, step = job->from < job->to ? 1 : -1;
  for (i = job->from; i != job->to + step && n < 100; i += step)
    n += snprintf(path + n, sizeof path - (size_t)n, "%s%d", n ? "-" : "",
                  i);
  luaio_future_resolve_string(job->future, path);
  free(job);
  return NULL;
}

/* find_path(from, to) -> a Future the worker thread completes */
static int l_find_path(lua_State *L) {
  luaio_host *h = lua_touserdata(L, lua_upvalueindex(1));
  int from = (int)luaL_checkinteger(L, 1), to = (int)luaL_checkinteger(L, 2);
  path_job *job = malloc(sizeof *job);
  pthread_t tid;
  if (job == NULL)
    return luaL_error(L, "not enough memory");
  job->from = from;
  job->to = to;
  job->future = luaio_future_new(h, L); /* pushes the Future */
  if (job->future == NULL) {
    free(job);
    return luaL_error(L, "%s", luaio_last_error(h));
  }
  if (pthread_create(&tid, NULL, path_worker, job) != 0) {
    luaio_future_reject(job->future, "cannot start the worker");
    free(job);
  } else
    pthread_detach(tid);
  return 1;
}

/* frame() -> the current frame number, for the script's log lines */
static int l_frame(lua_State *L) {
  game *g = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushinteger(L, g->frame);
  return 1;
}

static void on_error(luaio_host *h, const char *text, void *ud) {
  (void)h;
  (void)ud;
  fprintf(stderr, "script error: %s\n", text);
}

int main(int argc, char **argv) {
  const char *script = argc > 1 ? argv[1] : "examples/embed/game.lua";
  game g = {0, 0.0, 0};
  luaio_config cfg;
  luaio_host *h;
  lua_State *L;
  memset(&cfg, 0, sizeof cfg);
  cfg.clock = game_clock;
  cfg.clock_ud = &g;
  cfg.on_error = on_error;
  h = luaio_host_new(&cfg);
  if (h == NULL)
    return 1;
  L = luaio_state(h);
  lua_pushlightuserdata(L, h);
  lua_pushcclosure(L, l_find_path, 1);
  lua_setglobal(L, "find_path");
  lua_pushlightuserdata(L, &g);
  lua_pushcclosure(L, l_frame, 1);
  lua_setglobal(L, "frame");
  if (luaio_dofile(h, script) != LUAIO_OK) {
    fprintf(stderr, "game: %s\n", luaio_last_error(h));
    luaio_host_close(h);
    return 1;
  }
  for (g.frame = 1; g.frame <= FRAMES; g.frame++) {
    /* frames 120..179: the game is paused, game time stands still */
    g.paused = g.frame >= 120 && g.frame < 180;
    if (!g.paused)
      g.time += 1.0 / FPS;
    /* a 2 ms budget per frame; the worker's result may take a few
     * frames to arrive, which is how a game would see it */
    luaio_step(h, 2.0);
  }
  printf("frames: %d, game time: %.2f s\n", FRAMES, g.time);
  luaio_host_close(h);
  return 0;
}
