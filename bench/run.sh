#!/bin/sh
# run.sh - the benchmark workloads under luaio, CPython asyncio and uvloop.
#
#   bench/run.sh [path/to/luaio]   (default build/luaio, which it does not
#                                  build; it builds w7's C programs)
#
# Each workload runs BENCH_RUNS times (default 3) per implementation; the
# table shows the run with the median time. A peer that is not installed
# is skipped, saying so. Environment:
#   BENCH_RUNS   runs per workload and implementation (default 3)
#   PYTHON       the Python for the peers (default /usr/bin/python3)
#   W1_N W2_N W3_N W4_N W5_N W6_N W8_N  the workloads' N (defaults 200000,
#                  200000, 500000, 100000, 100000, 200000, 1000)
#   W7_N         round trips of the tcp workload (default 200000)
#   W11_N        MiB copied by the files workload (default 1024)
#   TCP_BIN      where its C programs are (default <luaio's dir>/bench;
#                  built there with $CC and pkg-config's libuv if missing)
#   LUAIO_BENCH_GC  the Lua collector setting (see bench/common.lua)
#   BENCH_TIMEOUT   seconds before a run counts as failed (default 120)
#
# Ratios: for w1, w2, w3, w5, w6 and w8, luaio's ops/s over the peer's
# (higher is better for luaio); for w4, also the peer's overhead over
# luaio's.
#
# w7 (tcp) differs: each implementation runs an echo server on 127.0.0.1
# (bench/w7_tcp_server.lua and its twin) and bench/tcp_client.c drives it
# (50 connections, one 64-byte request in flight each, every byte
# checked) and prints the result line. A plain libuv echo server in C
# (bench/uv_echo_server.c, row c-uv) is the ceiling.
#
# w11 (files) copies a file made at run time in /tmp while a task ticks
# every millisecond; worst_gap_ms= is the longest gap between two ticks
# (the loop stalling on the disk would show there). Rows: luaio's
# asyncio.fs read/write loop, fs.copyfile (w11_copyfile), CPython with
# asyncio.to_thread (and uvloop), and cp(1) as the limit.

LUAIO=${1:-build/luaio}
RUNS=${BENCH_RUNS:-3}
if [ -z "$PYTHON" ]; then
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
DIR=$(dirname "$0")
LIMIT=""
if command -v timeout >/dev/null 2>&1; then
  LIMIT="timeout ${BENCH_TIMEOUT:-120}"
fi
STATUS=0

if [ ! -x "$LUAIO" ]; then
  echo "run.sh: $LUAIO not found (build it first: make)" >&2
  exit 1
fi

HAVE_PY=1 HAVE_UV=1
if ! "$PYTHON" -c 'import asyncio' 2>/dev/null; then
  echo "skipping CPython asyncio and uvloop: $PYTHON not installed"
  HAVE_PY=0 HAVE_UV=0
elif ! "$PYTHON" -c 'import uvloop' 2>/dev/null; then
  echo "skipping uvloop: not installed for $PYTHON (python3-uvloop)"
  HAVE_UV=0
fi

# median CMD...: runs CMD $RUNS times, prints the result line of the run
# with the median time (field 3). Returns 1 when a run fails.
median() {
  out=$(
    i=0
    while [ "$i" -lt "$RUNS" ]; do
      all=$($LIMIT "$@") || exit 1
      line=$(echo "$all" | tail -n 1)
      [ -n "$line" ] || exit 1
      echo "$line"
      i=$((i + 1))
    done
  ) || return 1
  echo "$out" | sort -g -k3,3 | awk -v n="$RUNS" 'NR == int((n + 1) / 2)'
}

# row LINE: one table row from a result line.
row() {
  echo "$1" | awk '{
    split($1, p, "/"); extra = ""
    for (i = 5; i <= NF; i++) extra = extra " " $i
    printf "  %-10s %-8s %8d %9.3f %10d %s\n", p[2], p[1], $2, $3, $4, extra
  }'
}

# ratio LUALINE PEERLINE PEER: luaio's ops/s over the peer's, and for
# lines that carry overhead=, the peer's overhead over luaio's.
ratio() {
  printf '%s\n%s\n' "$1" "$2" | awk -v peer="$3" '
    function field(k,   i) {
      for (i = 5; i <= NF; i++) if (index($i, k "=") == 1)
        return substr($i, length(k) + 2)
      return ""
    }
    NR == 1 { ops = $4; ov = field("overhead") }
    NR == 2 {
      s = sprintf("luaio/%s %.2fx", peer, ops / $4)
      pov = field("overhead")
      if (ov != "" && pov != "" && ov + 0 > 0)
        s = s sprintf(" (overhead %s/luaio %.2fx)", peer, pov / ov)
      print s
    }'
}

# workload NAME N: the three rows and the ratios.
workload() {
  name=$1 n=$2
  lua_line=$(median "$LUAIO" "$DIR/$name.lua" "$n") || {
    echo "  $name: luaio FAILED"; STATUS=1; return; }
  row "$lua_line"
  ratios=""
  if [ "$HAVE_PY" = 1 ]; then
    if py_line=$(median "$PYTHON" "$DIR/py/$name.py" "$n"); then
      row "$py_line"
      ratios="$(ratio "$lua_line" "$py_line" asyncio)"
    else
      echo "  $name: asyncio FAILED"; STATUS=1
    fi
  fi
  if [ "$HAVE_UV" = 1 ]; then
    if uv_line=$(median "$PYTHON" "$DIR/py/$name.py" "$n" --uvloop); then
      row "$uv_line"
      ratios="$ratios${ratios:+, }$(ratio "$lua_line" "$uv_line" uvloop)"
    else
      echo "  $name: uvloop FAILED"; STATUS=1
    fi
  fi
  [ -n "$ratios" ] && echo "  $(printf '%-19s' '') $ratios"
}

# ------------------------------------------------------------------
# w7 tcp: servers driven by a C client

TCP_BIN=${TCP_BIN:-$(dirname "$LUAIO")/bench}
TCP_CONNS=50
TCP_PORT=$((20000 + $$ % 20000))

# build_tcp_tools: the client and the C echo server, when missing or older
# than their sources.
build_tcp_tools() {
  mkdir -p "$TCP_BIN" || return 1
  if [ ! -x "$TCP_BIN/tcp_client" ] ||
     [ "$DIR/tcp_client.c" -nt "$TCP_BIN/tcp_client" ]; then
    ${CC:-cc} -O2 -o "$TCP_BIN/tcp_client" "$DIR/tcp_client.c" || return 1
  fi
  if [ ! -x "$TCP_BIN/uv_echo_server" ] ||
     [ "$DIR/uv_echo_server.c" -nt "$TCP_BIN/uv_echo_server" ]; then
    ${CC:-cc} -O2 $(pkg-config --cflags libuv) -o "$TCP_BIN/uv_echo_server" \
      "$DIR/uv_echo_server.c" $(pkg-config --libs libuv) || return 1
  fi
}

# tcp_once IMPL N: one run: starts IMPL's server on a fresh port, drives it
# with the client, waits for the server to exit; prints the client's line.
tcp_once() {
  TCP_PORT=$((TCP_PORT + 1))
  case $1 in
    luaio) $LIMIT "$LUAIO" "$DIR/w7_tcp_server.lua" "$2" "$TCP_PORT" \
             "$TCP_CONNS" & ;;
    asyncio) $LIMIT "$PYTHON" "$DIR/py/w7_tcp_server.py" "$2" "$TCP_PORT" \
               "$TCP_CONNS" & ;;
    uvloop) $LIMIT "$PYTHON" "$DIR/py/w7_tcp_server.py" "$2" "$TCP_PORT" \
              "$TCP_CONNS" --uvloop & ;;
    c-uv) $LIMIT "$TCP_BIN/uv_echo_server" "$TCP_PORT" "$TCP_CONNS" & ;;
  esac
  server=$!
  if ! line=$($LIMIT "$TCP_BIN/tcp_client" -c "$TCP_CONNS" 127.0.0.1 \
                "$TCP_PORT" "$2" "$1"); then
    kill "$server" 2>/dev/null
    wait "$server"
    return 1
  fi
  wait "$server" || return 1
  echo "$line"
}

# tcp_median IMPL N: as median, for tcp_once.
tcp_median() {
  out=$(
    i=0
    while [ "$i" -lt "$RUNS" ]; do
      tcp_once "$1" "$2" || exit 1
      i=$((i + 1))
    done
  ) || return 1
  echo "$out" | sort -g -k3,3 | awk -v n="$RUNS" 'NR == int((n + 1) / 2)'
}

# tcp_workload N: the rows of w7 and luaio's ratios to the others.
tcp_workload() {
  if ! build_tcp_tools; then
    echo "  w7_tcp: cannot build $TCP_BIN/tcp_client or uv_echo_server"
    STATUS=1; return
  fi
  lua_line=$(tcp_median luaio "$1") || {
    echo "  w7_tcp: luaio FAILED"; STATUS=1; return; }
  row "$lua_line"
  ratios=""
  for impl in asyncio uvloop c-uv; do
    [ "$impl" = asyncio ] && [ "$HAVE_PY" = 0 ] && continue
    [ "$impl" = uvloop ] && [ "$HAVE_UV" = 0 ] && continue
    if line=$(tcp_median "$impl" "$1"); then
      row "$line"
      ratios="$ratios${ratios:+, }$(ratio "$lua_line" "$line" "$impl")"
    else
      echo "  w7_tcp: $impl FAILED"; STATUS=1
    fi
  done
  [ -n "$ratios" ] && echo "  $(printf '%-19s' '') $ratios"
}

# ------------------------------------------------------------------
# w11 files: a copy through asyncio.fs with a ticking task, next to
# asyncio.to_thread in CPython (and uvloop), fs.copyfile and cp(1) (the
# limit)

files_workload() {
  lua_line=$(median "$LUAIO" "$DIR/w11_files.lua" "$1") || {
    echo "  w11_files: luaio FAILED"; STATUS=1; return; }
  row "$lua_line"
  ratios=""
  if line=$(median "$LUAIO" "$DIR/w11_files.lua" "$1" --copyfile); then
    row "$line"
  else
    echo "  w11_copyfile: luaio FAILED"; STATUS=1
  fi
  for impl in asyncio uvloop cp; do
    [ "$impl" = asyncio ] && [ "$HAVE_PY" = 0 ] && continue
    [ "$impl" = uvloop ] && [ "$HAVE_UV" = 0 ] && continue
    [ "$impl" = cp ] && [ "$HAVE_PY" = 0 ] && continue
    case $impl in
      asyncio) flag= ;;
      *) flag=--$impl ;;
    esac
    if line=$(median "$PYTHON" "$DIR/py/w11_files.py" "$1" $flag); then
      row "$line"
      ratios="$ratios${ratios:+, }$(ratio "$lua_line" "$line" "$impl")"
    else
      echo "  w11_files: $impl FAILED"; STATUS=1
    fi
  done
  [ -n "$ratios" ] && echo "  $(printf '%-19s' '') $ratios"
}

echo "luaio: $LUAIO   peers: $PYTHON   runs: $RUNS (median)   $(date -u +%Y-%m-%d)"
printf '  %-10s %-8s %8s %9s %10s %s\n' workload impl N seconds ops/s extra
workload w1_spawn "${W1_N:-200000}"
workload w2_switch "${W2_N:-200000}"
workload w3_queue "${W3_N:-500000}"
workload w4_timers "${W4_N:-100000}"
workload w5_lock "${W5_N:-100000}"
workload w6_threadsafe "${W6_N:-200000}"
workload w8_gather_wait "${W8_N:-1000}"
tcp_workload "${W7_N:-200000}"
files_workload "${W11_N:-1024}"
exit $STATUS
