#!/usr/bin/env bash
# Does scraping /metrics every second cost relayed packets? (issue 4: "no measurable drop in
# relayed packets/s while scraping every second", with 10,000 active allocations.)
#
# Runs callrelay (1 worker, pinned to CPU 0) with 10,000 idle allocations held, then measures
# relayed packets/s with the saturating load generator (pinned to CPU 1) twice: without
# scrapes, and while a loop scrapes /metrics once a second, timing each scrape. Prints both
# rates, their ratio and the scrape times. Never part of CI (timings are noisy).
#
# Usage: bench/scrape_load.sh   (after bench/run.sh has built build-bench, or it builds it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
LISTEN=127.0.0.1:13478
ECHO=127.0.0.1:19000
HTTP_PORT=19641
HOLD=${BENCH_HOLD:-10000}
DURATION=${BENCH_DURATION:-5}

if [[ ! -x $BUILD/app/callrelay || ! -x $BUILD/bench/bench_loadgen ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCALLRELAY_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target callrelay bench_tools >/dev/null
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d /tmp/callrelay-scrape.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/state"
cat >"$WORK/config.yaml" <<EOF
listen: {udp: ["$LISTEN"], tcp: []}
http: {listen: "127.0.0.1:$HTTP_PORT"}
relay: {ports: {min: 20000, max: 32000}}
workers: 1
state_dir: $WORK/state
realm: callrelay
auth: {secrets: ["benchsecret"]}
allocations: {max_per_user: 0}
peers: {allow: ["127.0.0.0/8"]}
log: {level: warn}
EOF
taskset -c 1 "$BUILD/bench/bench_echo" --listen $ECHO --stats "$WORK/echo.stats" 2>/dev/null &
pids+=($!)
taskset -c 0 "$BUILD/app/callrelay" --config "$WORK/config.yaml" 2>"$WORK/server.log" &
pids+=($!)
server_pid=$!
for _ in $(seq 100); do grep -q '^ready$' "$WORK/server.log" && break; sleep 0.1; done
grep -q '^ready$' "$WORK/server.log" || { cat "$WORK/server.log"; exit 1; }

gen() { taskset -c 1 "$BUILD/bench/bench_loadgen" --server $LISTEN --peer $ECHO "$@"; }
gen --mode hold --count "$HOLD" --server-pid "$server_pid" | grep '^result' |
  sed -E 's/.*held=([0-9]+).*/held allocations: \1/'

pps() { sed -nE 's/.* pps=([0-9.]+).*/\1/p; s/.* relayed_pps=([0-9.]+).*/\1/p' | head -n1; }
quiet=$(gen --mode max --duration "$DURATION" | tee "$WORK/quiet.txt" | pps)

: >"$WORK/scrapes.txt"
(
  while :; do
    curl -s -o "$WORK/metrics.txt" -w '%{time_total}\n' "http://127.0.0.1:$HTTP_PORT/metrics" \
      >>"$WORK/scrapes.txt" || true
    sleep 1
  done
) &
pids+=($!)
sleep 1
busy=$(gen --mode max --duration "$DURATION" | tee "$WORK/busy.txt" | pps)

series=$(grep -c '^callrelay_allocation_throughput_bytes_per_second{' "$WORK/metrics.txt" || true)
active=$(awk '/^callrelay_allocations_active/ {s += $2} END {print s + 0}' "$WORK/metrics.txt")
echo "active allocations in the last scrape: $active (per-allocation series exported: $series)"
echo "relayed packets/s without scrapes: ${quiet:-?}"
echo "relayed packets/s scraping every second: ${busy:-?}"
if [[ -n $quiet && -n $busy ]]; then
  awk -v q="$quiet" -v b="$busy" 'BEGIN {printf "ratio (scraping / quiet): %.3f\n", b / q}'
fi
sort -n "$WORK/scrapes.txt" | awk '{t[NR] = $1 * 1000} END {
  if (NR == 0) { print "no scrapes"; exit }
  printf "scrapes: %d, median %.1f ms, max %.1f ms\n", NR, t[int((NR + 1) / 2)], t[NR] }'
