/*
 * sdl_game.c - luaio inside a real frame loop, on SDL2.
 *
 * The program owns the main thread and a window. Each frame it
 *   1. polls SDL's events: P pauses and resumes, S changes the speed
 *      (1x, 2x, 0.5x), Escape or closing the window quits;
 *   2. advances game time by one fixed step (1/60 s) times the speed,
 *      unless paused. Game time is luaio's host clock (luaio_config.clock):
 *      a task's asyncio.sleep counts game time, so pausing freezes the
 *      NPC tasks and the speed scales them;
 *   3. runs luaio_step(h, budget) and measures how long it took;
 *   4. draws the NPCs (rectangles whose positions the Lua tasks set), the
 *      bars the background fetch brought, and the state (paused, speed)
 *      with SDL_FillRect on the window's surface, which works on any
 *      video driver, the headless ones (offscreen, dummy) included.
 *
 * The level script (sdl_game.lua) starts the NPC behaviours as tasks and
 * a task that fetches data over HTTP from a server the script starts on
 * 127.0.0.1.
 *
 *   sdl_game [script] [--frames N] [--fps N] [--budget MS] [--speed X]
 *            [--pause-at FRAME --resume-at FRAME] [--screenshot FILE.bmp]
 *            [--report]
 *
 * --fps 0 runs the frames back to back (game time still advances one
 * fixed step per frame). --pause-at and --resume-at press P at those
 * frames through SDL's event queue, as a player would. --screenshot saves
 * the last frame (SDL_SaveBMP). --report prints one line per frame (game
 * time, the wall-clock and CPU time luaio_step took, NPC positions), a
 * line with the NPC positions when the game pauses and when it resumes,
 * and a summary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <SDL.h>
#include <lauxlib.h>

#include "luaio.h"

#define WIDTH 640
#define HEIGHT 360
#define STEP (1.0 / 60.0) /* game time per frame, seconds */
#define MAX_NPCS 16
#define MAX_BARS 16

typedef struct npc {
  float x, y;        /* the top-left corner, pixels */
  int w, h;
  Uint8 r, g, b;
} npc;

typedef struct options {
  const char *script;
  const char *screenshot;
  long frames;
  long pause_at, resume_at; /* 0: never */
  double fps;
  double budget_ms;
  double speed;
  int report;
} options;

typedef struct game {
  double time;       /* game time, seconds: the host clock */
  double speed;
  int paused;
  long frame;
  int quit;
  npc npcs[MAX_NPCS];
  int nnpcs;
  int bars[MAX_BARS];
  int nbars;
  int fetched;       /* set when the script called game.bars */
} game;

/* The time luaio_step takes: wall-clock time (waiting for I/O included,
 * and whatever else the machine ran meanwhile) and the CPU time of this
 * thread (the Lua work and the loop's own). */
typedef struct step_stats {
  double wall_ms, cpu_ms;       /* the last step's */
  double max_wall, max_cpu, total_wall, total_cpu;
  long over;                    /* steps whose wall time passed the budget */
  long n;
} step_stats;

static double game_clock(void *ud) {
  return ((game *)ud)->time;
}

/* ------------------------------------------------------------------ */
/* What the script sees: the global table `game`. Each function has the
 * game as upvalue 1. None allocates, none yields.                     */

static game *get_game(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* game.spawn(w, h, r, g, b) -> id: a new NPC at (0, 0). */
static int l_spawn(lua_State *L) {
  game *g = get_game(L);
  npc *n;
  if (g->nnpcs == MAX_NPCS)
    return luaL_error(L, "at most %d NPCs", MAX_NPCS);
  n = &g->npcs[g->nnpcs];
  n->w = (int)luaL_checkinteger(L, 1);
  n->h = (int)luaL_checkinteger(L, 2);
  n->r = (Uint8)luaL_checkinteger(L, 3);
  n->g = (Uint8)luaL_checkinteger(L, 4);
  n->b = (Uint8)luaL_checkinteger(L, 5);
  n->x = n->y = 0;
  lua_pushinteger(L, ++g->nnpcs);
  return 1;
}

/* game.move(id, x, y): where NPC id is drawn from now on. */
static int l_move(lua_State *L) {
  game *g = get_game(L);
  lua_Integer id = luaL_checkinteger(L, 1);
  luaL_argcheck(L, id >= 1 && id <= g->nnpcs, 1, "no such NPC");
  g->npcs[id - 1].x = (float)luaL_checknumber(L, 2);
  g->npcs[id - 1].y = (float)luaL_checknumber(L, 3);
  return 0;
}

/* game.bars(list): the values (0..100) drawn as bars at the top. */
static int l_bars(lua_State *L) {
  game *g = get_game(L);
  int i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (int)luaL_len(L, 1);
  luaL_argcheck(L, n <= MAX_BARS, 1, "too many bars");
  for (i = 0; i < n; i++) {
    lua_Integer v;
    lua_geti(L, 1, i + 1);
    v = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    g->bars[i] = v < 0 ? 0 : v > 100 ? 100 : (int)v;
  }
  g->nbars = n;
  g->fetched = 1;
  return 0;
}

/* game.frame() -> the current frame number. */
static int l_frame(lua_State *L) {
  lua_pushinteger(L, get_game(L)->frame);
  return 1;
}

static void open_game_table(lua_State *L, game *g) {
  static const luaL_Reg fns[] = {{"spawn", l_spawn}, {"move", l_move},
                                 {"bars", l_bars},   {"frame", l_frame},
                                 {NULL, NULL}};
  lua_newtable(L);
  lua_pushlightuserdata(L, g);
  luaL_setfuncs(L, fns, 1);
  lua_pushinteger(L, WIDTH);
  lua_setfield(L, -2, "width");
  lua_pushinteger(L, HEIGHT);
  lua_setfield(L, -2, "height");
  lua_setglobal(L, "game");
}

/* ------------------------------------------------------------------ */
/* Input, drawing, the report                                          */

static void press(SDL_Keycode key) {
  SDL_Event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = SDL_KEYDOWN;
  ev.key.keysym.sym = key;
  SDL_PushEvent(&ev);
}

static void poll_events(game *g) {
  SDL_Event ev;
  while (SDL_PollEvent(&ev)) {
    if (ev.type == SDL_QUIT)
      g->quit = 1;
    else if (ev.type == SDL_KEYDOWN) {
      switch (ev.key.keysym.sym) {
      case SDLK_p: g->paused = !g->paused; break;
      case SDLK_s:
        g->speed = g->speed == 1.0 ? 2.0 : g->speed == 2.0 ? 0.5 : 1.0;
        break;
      case SDLK_ESCAPE: g->quit = 1; break;
      default: break;
      }
    }
  }
}

static void fill(SDL_Surface *s, int x, int y, int w, int h, Uint8 r,
                 Uint8 gr, Uint8 b) {
  SDL_Rect rect = {x, y, w, h};
  SDL_FillRect(s, &rect, SDL_MapRGB(s->format, r, gr, b));
}

static void draw(SDL_Surface *s, const game *g) {
  int i;
  fill(s, 0, 0, WIDTH, HEIGHT, 24, 28, 40);           /* the sky */
  fill(s, 0, HEIGHT - 40, WIDTH, 40, 40, 90, 50);     /* the ground */
  for (i = 0; i < g->nbars; i++)                      /* fetched data */
    fill(s, 10 + i * 14, 60 - g->bars[i] / 2, 10, g->bars[i] / 2, 230,
         200, 60);
  for (i = 0; i < g->nnpcs; i++) {
    const npc *n = &g->npcs[i];
    fill(s, (int)n->x, (int)n->y, n->w, n->h, n->r, n->g, n->b);
  }
  /* the speed as 1 to 4 squares, a red frame while paused */
  for (i = 0; i < (int)(g->speed * 2); i++)
    fill(s, WIDTH - 20 - i * 14, 10, 10, 10, 200, 200, 200);
  if (g->paused) {
    fill(s, 0, 0, WIDTH, 4, 220, 40, 40);
    fill(s, 0, HEIGHT - 4, WIDTH, 4, 220, 40, 40);
  }
}

static void print_npcs(const game *g) {
  int i;
  for (i = 0; i < g->nnpcs; i++)
    printf(" %.2f,%.2f", g->npcs[i].x, g->npcs[i].y);
}

/* ------------------------------------------------------------------ */

static int parse_args(int argc, char **argv, options *o) {
  int i;
  o->script = "examples/embed/sdl_game.lua";
  o->screenshot = NULL;
  o->frames = 600;
  o->pause_at = o->resume_at = 0;
  o->fps = 60;
  o->budget_ms = 4;
  o->speed = 1;
  o->report = 0;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--report") == 0) {
      o->report = 1;
      continue;
    }
    if (a[0] != '-') {
      o->script = a;
      continue;
    }
    if (v == NULL) {
      fprintf(stderr, "sdl_game: %s needs a value\n", a);
      return -1;
    }
    i++;
    if (strcmp(a, "--frames") == 0) o->frames = atol(v);
    else if (strcmp(a, "--fps") == 0) o->fps = atof(v);
    else if (strcmp(a, "--budget") == 0) o->budget_ms = atof(v);
    else if (strcmp(a, "--speed") == 0) o->speed = atof(v);
    else if (strcmp(a, "--pause-at") == 0) o->pause_at = atol(v);
    else if (strcmp(a, "--resume-at") == 0) o->resume_at = atol(v);
    else if (strcmp(a, "--screenshot") == 0) o->screenshot = v;
    else {
      fprintf(stderr, "sdl_game: unknown option %s\n", a);
      return -1;
    }
  }
  if (o->frames < 1 || o->fps < 0 || o->budget_ms < 0 || o->speed <= 0) {
    fprintf(stderr, "sdl_game: bad option value\n");
    return -1;
  }
  return 0;
}

static void on_error(luaio_host *h, const char *text, void *ud) {
  (void)h;
  (void)ud;
  fprintf(stderr, "script error: %s\n", text);
}

/* milliseconds of CPU time of the calling thread (0 where unknown) */
static double cpu_ms_now(void) {
#ifdef CLOCK_THREAD_CPUTIME_ID
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
#endif
  return 0;
}

static double ms_since(Uint64 t0) {
  return (double)(SDL_GetPerformanceCounter() - t0) * 1000.0 /
         (double)SDL_GetPerformanceFrequency();
}

/* luaio_step(h, budget_ms), accounted in st; returns what it returns. */
static double timed_step(luaio_host *h, double budget_ms, step_stats *st) {
  Uint64 t0 = SDL_GetPerformanceCounter();
  double c0 = cpu_ms_now(), r = luaio_step(h, budget_ms);
  st->cpu_ms = cpu_ms_now() - c0;
  st->wall_ms = ms_since(t0);
  st->total_wall += st->wall_ms;
  st->total_cpu += st->cpu_ms;
  if (st->wall_ms > st->max_wall)
    st->max_wall = st->wall_ms;
  if (st->cpu_ms > st->max_cpu)
    st->max_cpu = st->cpu_ms;
  if (st->wall_ms > budget_ms)
    st->over++;
  st->n++;
  return r;
}

static void print_summary(const options *o, const game *g,
                          const step_stats *st) {
  int i;
  double n = st->n > 0 ? (double)st->n : 1;
  printf("budget_ms %.3f max_step_ms %.3f mean_step_ms %.3f max_cpu_ms "
         "%.3f mean_cpu_ms %.3f over_budget %ld frames %ld\n", o->budget_ms,
         st->max_wall, st->total_wall / n, st->max_cpu, st->total_cpu / n,
         st->over, st->n);
  printf("fetched %d bars", g->fetched ? g->nbars : -1);
  for (i = 0; i < g->nbars; i++)
    printf(" %d", g->bars[i]);
  printf("\n");
}

/* The frame loop; returns the exit status. */
static int play(const options *o, game *g, luaio_host *h, SDL_Window *win) {
  step_stats st;
  int status = 0;
  memset(&st, 0, sizeof st);
  for (g->frame = 1; g->frame <= o->frames && !g->quit; g->frame++) {
    Uint64 start = SDL_GetPerformanceCounter();
    SDL_Surface *surface;
    int was_paused = g->paused;
    if (g->frame == o->pause_at || g->frame == o->resume_at)
      press(SDLK_p);
    poll_events(g);
    if (o->report && g->paused != was_paused) {
      printf("%s frame %ld time %.6f npcs", g->paused ? "pause" : "resume",
             g->frame, g->time);
      print_npcs(g);
      printf("\n");
    }
    if (!g->paused)
      g->time += STEP * g->speed;
    if (timed_step(h, o->budget_ms, &st) < -1) {
      fprintf(stderr, "sdl_game: %s\n", luaio_last_error(h));
      status = 1;
      break;
    }
    surface = SDL_GetWindowSurface(win);
    if (surface == NULL) {
      fprintf(stderr, "sdl_game: %s\n", SDL_GetError());
      status = 1;
      break;
    }
    draw(surface, g);
    SDL_UpdateWindowSurface(win);
    if (o->report) {
      printf("frame %ld time %.6f paused %d step_ms %.3f cpu_ms %.3f npcs",
             g->frame, g->time, g->paused, st.wall_ms, st.cpu_ms);
      print_npcs(g);
      printf("\n");
    }
    if (o->fps > 0) { /* pace the frames */
      double left = 1000.0 / o->fps - ms_since(start);
      if (left >= 1)
        SDL_Delay((Uint32)left);
    }
  }
  if (status == 0 && o->screenshot &&
      SDL_SaveBMP(SDL_GetWindowSurface(win), o->screenshot) != 0) {
    fprintf(stderr, "sdl_game: %s\n", SDL_GetError());
    status = 1;
  }
  if (o->report)
    print_summary(o, g, &st);
  return status;
}

int main(int argc, char **argv) {
  options o;
  game g;
  luaio_config cfg;
  luaio_host *h;
  SDL_Window *win;
  int status;
  if (parse_args(argc, argv, &o) != 0)
    return 2;
  memset(&g, 0, sizeof g);
  g.speed = o.speed;
  if (SDL_Init(SDL_INIT_VIDEO) != 0) {
    fprintf(stderr, "sdl_game: SDL_Init: %s (no display? try "
            "SDL_VIDEODRIVER=offscreen)\n", SDL_GetError());
    return 1;
  }
  win = SDL_CreateWindow("luaio on SDL2", SDL_WINDOWPOS_UNDEFINED,
                         SDL_WINDOWPOS_UNDEFINED, WIDTH, HEIGHT, 0);
  if (win == NULL) {
    fprintf(stderr, "sdl_game: SDL_CreateWindow: %s\n", SDL_GetError());
    SDL_Quit();
    return 1;
  }
  memset(&cfg, 0, sizeof cfg);
  cfg.clock = game_clock;
  cfg.clock_ud = &g;
  cfg.on_error = on_error;
  h = luaio_host_new(&cfg);
  if (h == NULL) {
    SDL_DestroyWindow(win);
    SDL_Quit();
    return 1;
  }
  open_game_table(luaio_state(h), &g);
  if (luaio_dofile(h, o.script) != LUAIO_OK) {
    fprintf(stderr, "sdl_game: %s\n", luaio_last_error(h));
    status = 1;
  } else
    status = play(&o, &g, h, win);
  if (o.report)
    printf("closing at game time %.4f\n", g.time);
  luaio_host_close(h); /* cancels the NPC tasks, closes the server */
  SDL_DestroyWindow(win);
  SDL_Quit();
  return status;
}
