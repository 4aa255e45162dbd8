#!/usr/bin/env bash
# Signaling under load: starts callrelay on loopback with calls enabled, then runs
# callrelay_signal_bench against it: 1000 WebSocket devices, 500 calls ringing, accept and
# negotiate, a burst of candidates through the accepted calls, hang-up. Prints the bench's table
# (latencies, messages/s, server CPU and VmRSS) and stops the server. Never part of CI.
#
# Usage: bench/signal.sh [CALLRELAY_BINARY]
#   default binary: build-opsbench/app/callrelay; the bench tool: $SIGNAL_BENCH or
#   build-opsbench/bench/signal/callrelay_signal_bench (built when missing, with callrelay).
#   SIGNAL_CONNECTIONS (1000), SIGNAL_CALLS (500), SIGNAL_RATE (200/s), SIGNAL_WINDOW (4),
#   SIGNAL_BURST (5 s) change the load; SIGNAL_ARGS passes more options to the bench tool
#   (--quickack: see bench/signal/main.cpp).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SIGNAL_BUILD:-$ROOT/build-opsbench}
SERVER=${1:-$BUILD/app/callrelay}
BENCH=${SIGNAL_BENCH:-$BUILD/bench/signal/callrelay_signal_bench}
CONNECTIONS=${SIGNAL_CONNECTIONS:-1000}
CALLS=${SIGNAL_CALLS:-500}

if [[ ! -x $SERVER || ! -x $BENCH ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCALLRELAY_BUILD_BENCH=ON >/dev/null
  cmake --build "$BUILD" -j2 --target callrelay callrelay_signal_bench >/dev/null
fi

# Each device is a socket in both processes (plus the server's listeners and database).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((CONNECTIONS + 256))
if (($(ulimit -n) < need)); then
  echo "signal.sh: the open-file limit is $(ulimit -n), $CONNECTIONS devices need $need" >&2
  exit 1
fi

WORK=$(mktemp -d /tmp/callrelay-signal.XXXXXX)
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Loopback ports: UDP picked at random, HTTP by the kernel (the server logs the one it got).
udp_port=$((20000 + RANDOM % 20000))
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$WORK/state"
cat >"$WORK/config.yaml" <<EOF
listen: {udp: ["127.0.0.1:$udp_port"], tcp: []}
http: {listen: "127.0.0.1:0", max_connections_per_address: 1024}
relay: {ports: {min: 40000, max: 40999}}
workers: 1
state_dir: $WORK/state
realm: callrelay
log: {level: warn}
calls:
  token_secret: "$secret"
  max_connections: $((2 * CONNECTIONS > 2000 ? 2 * CONNECTIONS : 2000))
  # Every bench device comes from 127.0.0.1.
  max_connections_per_address: $((2 * CONNECTIONS > 2000 ? 2 * CONNECTIONS : 2000))
  # Nothing may time out between the phases (ringing, then connecting).
  ring_timeout_s: 600
  connect_timeout_s: 600
  # Closed devices are forgotten after this, before the bench's last memory reading.
  grace_s: 5
  # The candidate burst sends as fast as the server acknowledges.
  messages_per_second: 10000
  records: {path: $WORK/calls.sqlite3}
EOF

# Server on CPU 0, bench on CPU 1 when there are two.
pin_server=() pin_bench=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
  pin_server=(taskset -c 0) pin_bench=(taskset -c 1)
fi
"${pin_server[@]}" "$SERVER" --config "$WORK/config.yaml" 2>"$WORK/server.log" &
server_pid=$!
for _ in $(seq 100); do grep -q '^ready$' "$WORK/server.log" && break; sleep 0.1; done
if ! grep -q '^ready$' "$WORK/server.log"; then
  echo "signal.sh: callrelay did not start:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
http=$(sed -nE 's/.*listening http ([0-9.]+:[0-9]+).*/\1/p' "$WORK/server.log" | head -n1)
if [[ -z $http ]]; then
  echo "signal.sh: no 'listening http' line in the server's log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi

revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || revision+=" plus uncommitted changes"
cpu=$(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -n1)
echo "callrelay at revision $revision ($SERVER), pid $server_pid, http $http"
echo "machine: $(nproc) CPUs, $cpu, Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "pinning: ${pin_server[*]:-none} server, ${pin_bench[*]:-none} bench;" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
status=0
read -ra extra <<<"${SIGNAL_ARGS:-}"
"${pin_bench[@]}" "$BENCH" --server "$http" --secret "$secret" --server-pid "$server_pid" \
  --connections "$CONNECTIONS" --calls "$CALLS" --rate "${SIGNAL_RATE:-200}" \
  --window "${SIGNAL_WINDOW:-4}" --burst "${SIGNAL_BURST:-5}" --linger 8 "${extra[@]}" ||
  status=$?
if ((status != 0)) || grep -qE '^(error|warning):' "$WORK/server.log"; then
  echo
  echo "server log (warnings and errors, first 20):"
  grep -E '^(error|warning):' "$WORK/server.log" | head -n 20 || true
fi
exit "$status"
