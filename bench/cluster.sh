#!/usr/bin/env bash
# Calls set up across instances: starts a throwaway Redis and three callrelay instances on
# loopback in one cluster (cluster.redis_url), then, after a warm-up run, runs
# callrelay_signal_bench twice: every
# call within one instance (caller and callee on A), then every call across instances (callers
# on A, callees on B, so that each invite, ring, accept and answer crosses Redis). Prints both
# tables and a summary: calls set up per second and the setup latencies within one instance and
# across, and what Redis adds (the difference of the p50s and p99s). Never part of CI.
#
# Usage: bench/cluster.sh [CALLRELAY_BINARY]
#   default binary: build-opsbench/app/callrelay; the bench tool: $SIGNAL_BENCH or
#   build-opsbench/bench/signal/callrelay_signal_bench (built when missing, with callrelay).
#   CLUSTER_CONNECTIONS (400), CLUSTER_RATE (200 calls/s) change the load.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SIGNAL_BUILD:-$ROOT/build-opsbench}
SERVER=${1:-$BUILD/app/callrelay}
BENCH=${SIGNAL_BENCH:-$BUILD/bench/signal/callrelay_signal_bench}
CONNECTIONS=${CLUSTER_CONNECTIONS:-400}
RATE=${CLUSTER_RATE:-200}

if [[ ! -x $SERVER || ! -x $BENCH ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCALLRELAY_BUILD_BENCH=ON >/dev/null
  cmake --build "$BUILD" -j2 --target callrelay callrelay_signal_bench >/dev/null
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/callrelay-cluster-bench.XXXXXX)
chmod 0755 "$WORK"  # as root, Redis runs as nobody and must reach its directory inside
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$ROOT/tests/integration/redis/redis_server.sh" stop "$WORK/redis" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

redis_url=$("$ROOT/tests/integration/redis/redis_server.sh" start "$WORK/redis")
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
declare -A http
for name in a b c; do
  mkdir -p "$WORK/$name/state"
  udp_port=$((20000 + RANDOM % 20000))
  cat >"$WORK/$name/config.yaml" <<EOF
listen: {udp: ["127.0.0.1:$udp_port"], tcp: []}
http: {listen: "127.0.0.1:0", max_connections_per_address: 1024}
workers: 1
state_dir: $WORK/$name/state
realm: callrelay
log: {level: warn}
cluster:
  instance_id: bench-$name
  redis_url: "$redis_url"
calls:
  token_secret: "$secret"
  max_connections: 4000
  max_connections_per_address: 4000  # every bench device comes from 127.0.0.1
  ring_timeout_s: 600
  connect_timeout_s: 600
  grace_s: 5
  messages_per_second: 10000
  records: {path: $WORK/$name/calls.sqlite3}
EOF
  "$SERVER" --config "$WORK/$name/config.yaml" 2>"$WORK/$name/server.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^ready$' "$WORK/$name/server.log" && break; sleep 0.1; done
  if ! grep -q '^ready$' "$WORK/$name/server.log"; then
    echo "cluster.sh: instance $name did not start:" >&2
    cat "$WORK/$name/server.log" >&2
    exit 1
  fi
  http[$name]=$(sed -nE 's/.*listening http ([0-9.]+:[0-9]+).*/\1/p' "$WORK/$name/server.log" | head -n1)
done
pid_a=${pids[0]}

revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || revision+=" plus uncommitted changes"
cpu=$(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -n1)
echo "callrelay at revision $revision ($SERVER): instances a ${http[a]}, b ${http[b]}," \
  "c ${http[c]}; Redis $(redis-server --version | sed -nE 's/.*v=([0-9.]+).*/\1/p')"
echo "machine: $(nproc) CPUs, $cpu, Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC');" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {  # run TITLE OUT [--callee-server ADDR]
  local title=$1 out=$2
  shift 2
  echo
  echo "## $title"
  "$BENCH" --server "${http[a]}" --secret "$secret" --server-pid "$pid_a" \
    --connections "$CONNECTIONS" --rate "$RATE" --burst 2 --warmup 0.5 "$@" | tee "$out"
  sleep 6  # past grace_s: the first run's devices are forgotten before the second starts
}
# The first calls of a fresh instance pay for connections and caches being made: a first run
# that is not counted.
run "warm-up (within one instance, not counted)" "$WORK/warm-up.md" >/dev/null
run "within one instance (callers and callees on a)" "$WORK/within.md"
run "across instances (callers on a, callees on b, through Redis)" "$WORK/across.md" \
  --callee-server "${http[b]}"

value() { grep -F "| $2" "$1" | head -n1 | awk -F'|' '{gsub(/ /, "", $3); print $3}'; }
p() { echo "$1" | cut -d/ -f"$2"; }
echo
echo "## summary"
echo "| figure | within one instance | across instances | Redis adds |"
echo "|---|---:|---:|---:|"
for figure in "invite sent -> callee receives invite" "accept sent -> caller receives accepted"; do
  w=$(value "$WORK/within.md" "$figure")
  a=$(value "$WORK/across.md" "$figure")
  echo "| $figure, p50 / p99 (us) | $w | $a | $(($(p "$a" 1) - $(p "$w" 1))) / $(($(p "$a" 2) - $(p "$w" 2))) |"
done
w=$(value "$WORK/within.md" "calls set up per second")
a=$(value "$WORK/across.md" "calls set up per second")
echo "| calls set up per second (offered $RATE/s) | $w | $a | |"
for name in a b c; do
  if grep -qE '^(error|warning):' "$WORK/$name/server.log"; then
    echo
    echo "instance $name log (warnings and errors, first 10):"
    grep -E '^(error|warning):' "$WORK/$name/server.log" | head -n 10
  fi
done
