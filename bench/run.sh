#!/bin/sh
# run.sh - the benchmark workloads under luaio, CPython asyncio and uvloop.
#
#   bench/run.sh [path/to/luaio]        (default build/luaio; builds nothing)
#
# Each workload runs BENCH_RUNS times (default 3) per implementation; the
# table shows the run with the median time. A peer that is not installed
# is skipped, saying so. Environment:
#   BENCH_RUNS   runs per workload and implementation (default 3)
#   PYTHON       the Python for the peers (default /usr/bin/python3)
#   W1_N W2_N W3_N W4_N W5_N W6_N  the workloads' N (defaults 200000,
#                  200000, 500000, 100000, 100000, 200000)
#   LUAIO_BENCH_GC  the Lua collector setting (see bench/common.lua)
#   BENCH_TIMEOUT   seconds before a run counts as failed (default 120)
#
# Ratios: for w1, w2, w3, w5 and w6, luaio's ops/s over the peer's
# (higher is better for luaio); for w4, also the peer's overhead over
# luaio's.

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

echo "luaio: $LUAIO   peers: $PYTHON   runs: $RUNS (median)   $(date -u +%Y-%m-%d)"
printf '  %-10s %-8s %8s %9s %10s %s\n' workload impl N seconds ops/s extra
workload w1_spawn "${W1_N:-200000}"
workload w2_switch "${W2_N:-200000}"
workload w3_queue "${W3_N:-500000}"
workload w4_timers "${W4_N:-100000}"
workload w5_lock "${W5_N:-100000}"
workload w6_threadsafe "${W6_N:-200000}"
exit $STATUS
