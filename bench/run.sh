#!/bin/sh
# run.sh - every workload under luaio and each peer, interleaved, in one
# table of medians with luaio's ratio to each peer.
#
#   bench/run.sh [path/to/luaio]   (default build/luaio, which it does not
#                                  build; it builds the C programs)
#
# Peers: CPython asyncio and uvloop (bench/py/), luv and cqueues (a
# minimal scheduler of ours on each, bench/peers/), Node.js (bench/node/)
# and the limit: bare Lua coroutines for w1/w2, plain libuv C programs for
# w4/w6/w7 (bench/limit/, bench/uv_echo_server.c). A peer that is not
# installed is skipped, saying so. The TLS workloads (w9, w10) use a
# throwaway certificate made with the openssl CLI; w9's load comes from
# bench/tls_client.c (OpenSSL), w10 runs both ends in one process.
#
# For each workload the runs are interleaved (luaio, peer 1, peer 2, ...,
# then again), BENCH_RUNS times (default 3); the table shows the run with
# the median time of each. The ratio column is luaio's ops/s over the
# peer's (above 1: luaio is faster); for lines with overhead= (w4) it is
# the peer's overhead over luaio's.
#
# Environment:
#   BENCH_RUNS    runs per workload and implementation (default 3)
#   BENCH_ONLY    workloads to run (default all), e.g. "w1_spawn w3_queue"
#   BENCH_IMPLS   implementations to run (default all), e.g. "luaio luv"
#   PYTHON LUA NODE  the peers' interpreters (/usr/bin/python3, lua5.4, node)
#   W1_N .. W10_N the workloads' N (see the table at the end)
#   W11_N         MiB copied by w11_files (default 1024)
#   W14_N W15_N   commands of w14_redis, jobs of w15_workqueue (default
#                 200000, 20000)
#   W16_N         messages echoed by w16_ws_echo (default 100000)
#   W17_N         idle connections held by w17_conns (default 450)
#   BENCH_BIN     where the C programs go (default <luaio's dir>/bench)
#   LUAIO_BENCH_GC  the Lua collector setting (see bench/common.lua)
#   BENCH_TIMEOUT seconds before a run counts as failed (default 120)
#
# Adding a workload or a peer is one line at the end: `add WORKLOAD IMPL
# COMMAND...`; the command prints `IMPL/WORKLOAD N seconds ops_per_sec
# [key=value ...]` as its last line. A server workload driven by
# bench/tcp_client.c uses `tcp_pair` as its command (see w7).

LUAIO=${1:-build/luaio}
RUNS=${BENCH_RUNS:-3}
if [ -z "$PYTHON" ]; then
  PYTHON=python3
  [ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
fi
LUA=${LUA:-lua5.4}
NODE=${NODE:-node}
DIR=$(dirname "$0")
BIN=${BENCH_BIN:-$(dirname "$LUAIO")/bench}
LIMIT=""
if command -v timeout >/dev/null 2>&1; then
  LIMIT="timeout ${BENCH_TIMEOUT:-120}"
fi
STATUS=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/luaio-bench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

if [ ! -x "$LUAIO" ]; then
  echo "run.sh: $LUAIO not found (build it first: make)" >&2
  exit 1
fi

# ------------------------------------------------------------------
# Which implementations are here

# have IMPL: whether IMPL can run (a missing one is reported once).
have() {
  case " ${BENCH_IMPLS:-$1} " in *" $1 "*) ;; *) return 1 ;; esac
  [ -f "$TMP/have.$1" ] && return "$(cat "$TMP/have.$1")"
  case $1 in
    luaio) ok=0 ;;
    asyncio) "$PYTHON" -c 'import asyncio' 2>/dev/null; ok=$?
      why="$PYTHON not installed (python3)" ;;
    uvloop) "$PYTHON" -c 'import uvloop' 2>/dev/null; ok=$?
      why="not installed for $PYTHON (python3-uvloop)" ;;
    luv) "$LUA" -e 'require "luv"' 2>/dev/null; ok=$?
      why="not installed for $LUA (lua-luv)" ;;
    cqueues) "$LUA" -e 'require "cqueues"' 2>/dev/null; ok=$?
      why="not installed for $LUA (lua-cqueues)" ;;
    node) "$NODE" -e '' 2>/dev/null; ok=$?
      why="$NODE not installed (nodejs)" ;;
    limit) build_c; ok=$?
      why="cannot build the C programs in $BIN (cc, libuv1-dev)" ;;
    *) ok=0 ;;
  esac
  [ "$ok" = 0 ] || { ok=1; echo "skipping $1: $why"; }
  echo "$ok" > "$TMP/have.$1"
  return "$ok"
}

# build_c: the C programs, when missing or older than their sources.
build_c() {
  mkdir -p "$BIN" || return 1
  for src in tcp_client.c uv_echo_server.c limit/uv_timers.c \
             limit/uv_threadsafe.c; do
    exe=$BIN/$(basename "$src" .c)
    if [ ! -x "$exe" ] || [ "$DIR/$src" -nt "$exe" ]; then
      ${CC:-cc} -O2 $(pkg-config --cflags libuv) -o "$exe" "$DIR/$src" \
        $(pkg-config --libs libuv) || return 1
    fi
  done
}

# ------------------------------------------------------------------
# The table's rows

# add WORKLOAD IMPL COMMAND...: one implementation of a workload.
add() {
  w=$1 impl=$2
  shift 2
  case " ${BENCH_ONLY:-$w} " in *" $w "*) ;; *) return ;; esac
  have "$impl" || return
  grep -qx "$w" "$TMP/workloads" 2>/dev/null || echo "$w" >> "$TMP/workloads"
  echo "$impl $*" >> "$TMP/rows.$w"
}

# tcp_pair N SERVER...: one run of a server workload: SERVER N PORT CONNS
# on a fresh port, driven by tcp_client (50 connections, one 64-byte
# request in flight each); prints the client's line, named after the
# implementation in $IMPL. tls_pair: the same over TLS 1.3 (w9), SERVER
# N PORT CONNS CERT KEY driven by tls_client.
# The ports stay below Linux's ephemeral range (32768 and up), where a
# client socket of an earlier workload could hold one.
TCP_PORT=$((20000 + $$ % 9000))
tcp_pair() {
  build_c || return 1
  client_pair tcp_client "" "$@"
}

tls_pair() {
  build_tls || return 1
  client_pair tls_client "$TMP/cert.pem $TMP/key.pem" "$@"
}

# client_pair CLIENT EXTRA N SERVER...: runs SERVER N PORT 50 EXTRA and
# CLIENT against it; prints the client's line.
client_pair() {
  client=$1 extra=$2 n=$3
  shift 3
  TCP_PORT=$((TCP_PORT + 1))
  $LIMIT "$@" "$n" "$TCP_PORT" 50 $extra &
  server=$!
  if ! line=$($LIMIT "$BIN/$client" -c 50 127.0.0.1 "$TCP_PORT" "$n" \
                "$IMPL"); then
    kill "$server" 2>/dev/null
    wait "$server"
    return 1
  fi
  wait "$server" || return 1
  echo "$line"
}

# wrk_pair N SERVER...: one run of an HTTP server workload (w12): SERVER
# N PORT on a fresh port, loaded by Debian's wrk for W12_SECONDS (3) with
# 50 keep-alive connections; prints the line, named after $IMPL.
wrk_pair() {
  command -v wrk >/dev/null 2>&1 || { echo "wrk not installed" >&2; return 1; }
  n=$1
  shift
  TCP_PORT=$((TCP_PORT + 1))
  $LIMIT "$@" "$n" "$TCP_PORT" &
  server=$!
  wait_port "$TCP_PORT" || { kill "$server"; wait "$server"; return 1; }
  secs=${W12_SECONDS:-3}
  # the server's own process (under timeout(1), its child)
  spid=$(pgrep -P "$server" | head -n 1)
  [ -n "$spid" ] || spid=$server
  t0=$(proc_ticks "$spid")
  rps=$(wrk -t2 -c50 -d"${secs}s" "http://127.0.0.1:$TCP_PORT/" |
        awk '/^Requests\/sec:/ {print $2}')
  t1=$(proc_ticks "$spid")
  kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  [ -n "$rps" ] || return 1
  awk -v impl="$IMPL" -v s="$secs" -v r="$rps" -v a="$t0" -v b="$t1" \
    -v hz="$(getconf CLK_TCK)" \
    'BEGIN { c = (b - a) / hz
             printf "%s/w12_http_server %d %.4f %.0f cpu=%.2f " \
               "us_per_req=%.1f\n", impl, r * s, s, r, c, c * 1e6 / (r * s) }'
}

# proc_ticks PID: user + system CPU ticks of the process (and its threads)
proc_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# http_client_pair N CLIENT...: runs CLIENT N PORT against Node's hello
# server (bench/node/w12_http_server.js) on a fresh port (w13).
http_client_pair() {
  n=$1
  shift
  TCP_PORT=$((TCP_PORT + 1))
  $LIMIT "$NODE" "$DIR/node/w12_http_server.js" 1 "$TCP_PORT" &
  server=$!
  wait_port "$TCP_PORT" || { kill "$server"; wait "$server"; return 1; }
  line=$($LIMIT "$@" "$n" "$TCP_PORT")
  st=$?
  kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  [ $st -eq 0 ] && echo "$line"
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (5 s at most)
wait_port() {
  i=0
  while [ $i -lt 100 ]; do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
    i=$((i + 1))
  done
  return 1
}

# build_tls: tls_client (OpenSSL) and a throwaway certificate in $TMP for
# the TLS workloads.
build_tls() {
  build_c || return 1
  exe=$BIN/tls_client
  if [ ! -x "$exe" ] || [ "$DIR/tls_client.c" -nt "$exe" ]; then
    ${CC:-cc} -O2 -o "$exe" "$DIR/tls_client.c" \
      $(pkg-config --cflags --libs openssl) || return 1
  fi
  make_cert
}

make_cert() {
  [ -f "$TMP/cert.pem" ] ||
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
      -subj /CN=localhost 2>/dev/null
}

# ------------------------------------------------------------------
# Running and printing

# run_workload W: RUNS rounds over its rows, then one line per row.
run_workload() {
  w=$1
  i=0
  while [ "$i" -lt "$RUNS" ]; do
    while read -r impl cmd; do
      IMPL=$impl
      case $cmd in tcp_pair*|tls_pair*|redis_bench*|wrk_pair*|http_client_pair*|synced*) pre="" ;;
        *) pre=$LIMIT ;; esac
      if line=$(eval "$pre $cmd" 2>"$TMP/err") &&
         line=$(echo "$line" | tail -n 1) && [ -n "$line" ]; then
        echo "$line" >> "$TMP/out.$w.$impl"
      else
        echo "  $w: $impl FAILED: $(tail -n 1 "$TMP/err")"
        STATUS=1
      fi
    done < "$TMP/rows.$w"
    i=$((i + 1))
  done
  base=""
  while read -r impl cmd; do
    [ -f "$TMP/out.$w.$impl" ] || continue
    line=$(sort -g -k3,3 "$TMP/out.$w.$impl" |
           awk -v n="$(wc -l < "$TMP/out.$w.$impl")" 'NR == int((n + 1) / 2)')
    [ "$impl" = luaio ] && base=$line
    print_row "$w" "$impl" "$line" "$base"
  done < "$TMP/rows.$w"
}

# print_row W IMPL LINE LUAIOLINE
print_row() {
  printf '%s\n%s\n' "$3" "${4:-$3}" | awk -v w="$1" -v impl="$2" '
    function field(k,   i) {
      for (i = 5; i <= NF; i++) if (index($i, k "=") == 1)
        return substr($i, length(k) + 2)
      return ""
    }
    NR == 1 { n = $2; s = $3; ops = $4; ov = field("overhead")
              extra = ""; for (i = 5; i <= NF; i++) extra = extra " " $i }
    NR == 2 {
      r = "";
      if (impl != "luaio") {
        lov = field("overhead")
        if (ov != "" && lov != "" && lov + 0 > 0 && ov + 0 > 0)
          r = sprintf("%.2fx less", ov / lov)
        else if (ops > 0) r = sprintf("%.2fx", $4 / ops)
      }
      printf "%-15s %-8s %8d %9.4f %10d %11s %s\n", w, impl, n, s, ops, r,
             extra
    }'
}

# ------------------------------------------------------------------
# The workloads: one line per workload and implementation

W1=${W1_N:-200000} W2=${W2_N:-200000} W3=${W3_N:-500000} W4=${W4_N:-100000}
W5=${W5_N:-100000} W6=${W6_N:-200000} W7=${W7_N:-200000} W8=${W8_N:-1000}
W9=${W9_N:-100000} W10=${W10_N:-256}
P=$DIR/peers N=$DIR/node

add w1_spawn luaio    "$LUAIO" "$DIR/w1_spawn.lua" "$W1"
add w1_spawn asyncio  "$PYTHON" "$DIR/py/w1_spawn.py" "$W1"
add w1_spawn uvloop   "$PYTHON" "$DIR/py/w1_spawn.py" "$W1" --uvloop
add w1_spawn luv      "$LUA" "$P/w1_spawn.lua" "$W1" luv
add w1_spawn cqueues  "$LUA" "$P/w1_spawn.lua" "$W1" cqueues
add w1_spawn node     "$NODE" "$N/w1_spawn.js" "$W1"
add w1_spawn limit    "$LUA" "$DIR/limit/w1_spawn.lua" "$W1"

add w2_switch luaio   "$LUAIO" "$DIR/w2_switch.lua" "$W2"
add w2_switch asyncio "$PYTHON" "$DIR/py/w2_switch.py" "$W2"
add w2_switch uvloop  "$PYTHON" "$DIR/py/w2_switch.py" "$W2" --uvloop
add w2_switch luv     "$LUA" "$P/w2_switch.lua" "$W2" luv
add w2_switch cqueues "$LUA" "$P/w2_switch.lua" "$W2" cqueues
add w2_switch node    "$NODE" "$N/w2_switch.js" "$W2"
add w2_switch limit   "$LUA" "$DIR/limit/w2_switch.lua" "$W2"

add w3_queue luaio    "$LUAIO" "$DIR/w3_queue.lua" "$W3"
add w3_queue asyncio  "$PYTHON" "$DIR/py/w3_queue.py" "$W3"
add w3_queue uvloop   "$PYTHON" "$DIR/py/w3_queue.py" "$W3" --uvloop
add w3_queue luv      "$LUA" "$P/w3_queue.lua" "$W3" luv
add w3_queue cqueues  "$LUA" "$P/w3_queue.lua" "$W3" cqueues
add w3_queue node     "$NODE" "$N/w3_queue.js" "$W3"

add w4_timers luaio   "$LUAIO" "$DIR/w4_timers.lua" "$W4"
add w4_timers asyncio "$PYTHON" "$DIR/py/w4_timers.py" "$W4"
add w4_timers uvloop  "$PYTHON" "$DIR/py/w4_timers.py" "$W4" --uvloop
add w4_timers luv     "$LUA" "$P/w4_timers.lua" "$W4" luv
add w4_timers cqueues "$LUA" "$P/w4_timers.lua" "$W4" cqueues
add w4_timers node    "$NODE" --expose-gc "$N/w4_timers.js" "$W4"
add w4_timers limit   "$BIN/uv_timers" "$W4"

add w5_lock luaio     "$LUAIO" "$DIR/w5_lock.lua" "$W5"
add w5_lock asyncio   "$PYTHON" "$DIR/py/w5_lock.py" "$W5"
add w5_lock uvloop    "$PYTHON" "$DIR/py/w5_lock.py" "$W5" --uvloop
add w5_lock luv       "$LUA" "$P/w5_lock.lua" "$W5" luv
add w5_lock cqueues   "$LUA" "$P/w5_lock.lua" "$W5" cqueues
add w5_lock node      "$NODE" "$N/w5_lock.js" "$W5"

add w6_threadsafe luaio   "$LUAIO" "$DIR/w6_threadsafe.lua" "$W6"
add w6_threadsafe asyncio "$PYTHON" "$DIR/py/w6_threadsafe.py" "$W6"
add w6_threadsafe uvloop  "$PYTHON" "$DIR/py/w6_threadsafe.py" "$W6" --uvloop
add w6_threadsafe luv     "$LUA" "$P/w6_threadsafe.lua" "$W6" luv
add w6_threadsafe cqueues "$LUA" "$P/w6_threadsafe.lua" "$W6" cqueues
add w6_threadsafe node    "$NODE" "$N/w6_threadsafe.js" "$W6"
add w6_threadsafe limit   "$BIN/uv_threadsafe" "$W6"

add w7_tcp luaio      tcp_pair "$W7" "$LUAIO" "$DIR/w7_tcp_server.lua"
add w7_tcp asyncio    tcp_pair "$W7" "$PYTHON" "$DIR/py/w7_tcp_server.py"
add w7_tcp uvloop     tcp_pair "$W7" "$PYTHON" "$DIR/py/w7_tcp_server.py" \
                        --uvloop
add w7_tcp luv        tcp_pair "$W7" "$LUA" "$P/w7_luv_server.lua"
add w7_tcp cqueues    tcp_pair "$W7" "$LUA" "$P/w7_cqueues_server.lua"
add w7_tcp node       tcp_pair "$W7" "$NODE" "$N/w7_tcp_server.js"
add w7_tcp limit      tcp_pair "$W7" "$BIN/uv_echo_server"

add w8_gather_wait luaio   "$LUAIO" "$DIR/w8_gather_wait.lua" "$W8"
add w8_gather_wait asyncio "$PYTHON" "$DIR/py/w8_gather_wait.py" "$W8"
add w8_gather_wait uvloop  "$PYTHON" "$DIR/py/w8_gather_wait.py" "$W8" \
                             --uvloop
add w8_gather_wait luv     "$LUA" "$P/w8_gather_wait.lua" "$W8" luv
add w8_gather_wait cqueues "$LUA" "$P/w8_gather_wait.lua" "$W8" cqueues
add w8_gather_wait node    "$NODE" "$N/w8_gather_wait.js" "$W8"

add w9_tls_echo luaio   tls_pair "$W9" "$LUAIO" "$DIR/w9_tls_echo.lua"
add w9_tls_echo asyncio tls_pair "$W9" "$PYTHON" "$DIR/py/w9_tls_echo.py"
add w9_tls_echo uvloop  tls_pair "$W9" "$PYTHON" "$DIR/py/w9_tls_echo.py" \
                          --uvloop
add w9_tls_echo node    tls_pair "$W9" "$NODE" "$N/w9_tls_echo.js"

make_cert
add w10_tls_bulk luaio   "$LUAIO" "$DIR/w10_tls_bulk.lua" "$W10" \
                           "$TMP/cert.pem" "$TMP/key.pem"
add w10_tls_bulk asyncio "$PYTHON" "$DIR/py/w10_tls_bulk.py" "$W10" \
                           "$TMP/cert.pem" "$TMP/key.pem"
add w10_tls_bulk uvloop  "$PYTHON" "$DIR/py/w10_tls_bulk.py" "$W10" \
                           "$TMP/cert.pem" "$TMP/key.pem" --uvloop

# w11: a 1 GiB copy (W11_N MiB) with a task ticking every millisecond;
# worst_gap_ms= is its longest gap (idle_gap_ms= the same with nothing
# else running). Rows: asyncio.fs's read/write loop, fs.copyfile, CPython's
# asyncio.to_thread (what aiofiles does), and cp(1), the limit.
# Each run starts after sync(1): the disk has written back what the run
# before left dirty, or that run's writeback and discards slow this one
# (without it, which implementation came after which swung w11 by 2x).
W11=${W11_N:-1024}
synced() {
  sync
  $LIMIT "$@"
}
add w11_files luaio    synced "$LUAIO" "$DIR/w11_files.lua" "$W11"
add w11_files copyfile synced "$LUAIO" "$DIR/w11_files.lua" "$W11" --copyfile
add w11_files asyncio  synced "$PYTHON" "$DIR/py/w11_files.py" "$W11"
add w11_files uvloop   synced "$PYTHON" "$DIR/py/w11_files.py" "$W11" --uvloop
add w11_files cp       synced "$PYTHON" "$DIR/py/w11_files.py" "$W11" --cp

# w14, w15: Redis. run.sh starts a redis-server of its own (no
# persistence) on a free port, stopped at the end; the rows get its URL
# in REDIS_URL. w14: N SET/GET commands from 50 tasks on one client;
# redis-benchmark (50 connections, one command in flight each, no
# pipelining: the C client's own reference) runs N/2 SET then N/2 GET.
# w15: N jobs through asyncio.workqueue with 4 worker processes, next to
# the same reliable-queue pattern written with redis-py (bench/py/).
W14=${W14_N:-200000} W15=${W15_N:-20000}
REDIS_BENCH_PORT=$((30100 + $$ % 2000))
redis_bench() {
  redis-benchmark -h 127.0.0.1 -p "$REDIS_BENCH_PORT" -c 50 \
      -n $(($1 / 2)) -t set,get --csv 2>/dev/null |
    awk -F'"' -v n="$1" '$2 == "SET" || $2 == "GET" { t += (n / 2) / $4 }
      END { if (t > 0) printf "limit/w14_redis %d %.4f %.0f\n",
                              n, t, n / t; else exit 1 }'
}
if command -v redis-server >/dev/null 2>&1; then
  redis-server --port "$REDIS_BENCH_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$TMP" >/dev/null 2>&1 &
  REDIS_PID=$!
  trap 'kill $REDIS_PID 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
  export REDIS_URL="redis://127.0.0.1:$REDIS_BENCH_PORT/0"
  i=0
  until redis-cli -p "$REDIS_BENCH_PORT" ping >/dev/null 2>&1 ||
        [ "$i" -ge 200 ]; do sleep 0.05; i=$((i + 1)); done
  add w14_redis luaio   "$LUAIO" "$DIR/w14_redis.lua" "$W14"
  add w14_redis asyncio "$PYTHON" "$DIR/py/w14_redis.py" "$W14"
  add w14_redis uvloop  "$PYTHON" "$DIR/py/w14_redis.py" "$W14" --uvloop
  command -v redis-benchmark >/dev/null 2>&1 &&
    add w14_redis limit redis_bench "$W14"
  add w15_workqueue luaio   "$LUAIO" "$DIR/w15_workqueue.lua" "$W15"
  add w15_workqueue asyncio "$PYTHON" "$DIR/py/w15_workqueue.py" "$W15"
  add w15_workqueue uvloop  "$PYTHON" "$DIR/py/w15_workqueue.py" "$W15" \
                              --uvloop
else
  echo "skipping w14_redis, w15_workqueue: redis-server not installed"
fi

W13=${W13_N:-20000}
add w12_http_server luaio   wrk_pair 1 "$LUAIO" "$DIR/w12_http_server.lua"
add w12_http_server asyncio wrk_pair 1 "$PYTHON" "$DIR/py/w12_http_server.py"
add w12_http_server uvloop  wrk_pair 1 "$PYTHON" "$DIR/py/w12_http_server.py" --uvloop
add w12_http_server node    wrk_pair 1 "$NODE" "$DIR/node/w12_http_server.js"
add w13_http_client luaio   http_client_pair "$W13" "$LUAIO" "$DIR/w13_http_client.lua"
add w13_http_client asyncio http_client_pair "$W13" "$PYTHON" "$DIR/py/w13_http_client.py"
add w13_http_client uvloop  http_client_pair "$W13" "$PYTHON" "$DIR/py/w13_http_client.py" --uvloop
add w13_http_client node    http_client_pair "$W13" "$NODE" "$DIR/node/w13_http_client.js"
W16=${W16_N:-100000}
add w16_ws_echo luaio   "$LUAIO" "$DIR/w16_ws_echo.lua" "$W16"
add w16_ws_echo asyncio "$PYTHON" "$DIR/py/w16_ws_echo.py" "$W16"
add w16_ws_echo uvloop  "$PYTHON" "$DIR/py/w16_ws_echo.py" "$W16" --uvloop
W17=${W17_N:-450}
add w17_conns luaio   "$LUAIO" "$DIR/w17_conns.lua" "$W17"
add w17_conns asyncio "$PYTHON" "$DIR/py/w17_conns.py" "$W17"
add w17_conns uvloop  "$PYTHON" "$DIR/py/w17_conns.py" "$W17" --uvloop
add w17_conns luv     "$LUA" "$P/w17_luv_conns.lua" "$W17"
add w17_conns cqueues "$LUA" "$P/w17_cqueues_conns.lua" "$W17"
add w17_conns node    "$NODE" --expose-gc "$N/w17_conns.js" "$W17"

echo "luaio: $LUAIO   runs: $RUNS (median)   $(date -u '+%Y-%m-%d %H:%M')" \
  "  load: $(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)"
printf '%-15s %-8s %8s %9s %10s %11s %s\n' workload impl N seconds ops/s \
  luaio/impl extra
[ -f "$TMP/workloads" ] || { echo "run.sh: nothing to run" >&2; exit 1; }
while read -r w; do
  run_workload "$w"
done < "$TMP/workloads"
exit $STATUS
