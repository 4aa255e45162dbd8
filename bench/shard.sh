#!/usr/bin/env bash
# Clients behind one address against clients on many: callrelay with 2 workers, 50 UDP clients
# relaying 160 B ChannelData at saturation to an echo peer, once all from 127.0.0.1 (distinct
# ports, as behind a NAT) and once from 127.0.0.1..127.0.0.50. Prints markdown table rows:
# relayed packets/s, server process CPU per relayed packet, and how the server's CPU time split
# between its two busiest threads (the workers: both busy means both near 0.50).
#
#   bench/shard.sh            (run.sh calls it; standalone it builds nothing)
#
# The server runs unpinned on every CPU (2 workers need 2), the generator and echo peer too:
# on a 2-CPU machine they compete with the server, so compare the two rows with each other,
# not with run.sh's pinned single-worker rows. Environment: BENCH_BUILD_DIR (build-bench),
# CALLRELAY_BIN, BENCH_MAX_DURATION (s per run, 3), BENCH_REPS (runs per case, median kept, 3).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
BIN=${CALLRELAY_BIN:-$BUILD/app/callrelay}
DURATION=${BENCH_MAX_DURATION:-3}
REPS=${BENCH_REPS:-3}
CLIENTS=50
LISTEN=127.0.0.1:13578
ECHO=127.0.0.1:19100
WORK=$(mktemp -d /tmp/callrelay-shard.XXXXXX)

log() { echo "[shard] $*" >&2; }
field() { grep -o "\b$2=[^ ]*" <<<"$1" | head -1 | cut -d= -f2; }

[[ -x $BIN && -x $BUILD/bench/bench_loadgen ]] || { log "no $BIN or bench tools in $BUILD"; exit 1; }

cleanup() {
  [[ -n ${SERVER_PID:-} ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [[ -n ${ECHO_PID:-} ]] && kill "$ECHO_PID" 2>/dev/null && wait "$ECHO_PID" 2>/dev/null
}
trap cleanup EXIT

"$BUILD/bench/bench_echo" --listen $ECHO --stats "$WORK/echo.stats" 2>"$WORK/echo.err" &
ECHO_PID=$!
mkdir -p "$WORK/state"
cat >"$WORK/config.yaml" <<YAML
listen: {udp: ["$LISTEN"]}
relay: {ports: {min: 33000, max: 34000}}
workers: 2
state_dir: $WORK/state
realm: callrelay
auth: {secrets: ["benchsecret"]}
allocations: {max_per_user: 0}
peers: {allow: ["127.0.0.0/8"]}
log: {level: warn}
http: {enabled: false}
YAML
"$BIN" --config "$WORK/config.yaml" 2>"$WORK/stderr" &
SERVER_PID=$!

loadgen() {
  "$BUILD/bench/bench_loadgen" --server $LISTEN --peer $ECHO --echo-stats "$WORK/echo.stats" "$@"
}
for _ in $(seq 100); do
  loadgen --mode probe --timeout 0.3 >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { log "callrelay exited: $(tail -3 "$WORK/stderr")"; exit 1; }
  sleep 0.1
done

# Per-thread CPU ticks of the server: "tid ticks" lines.
thread_ticks() {
  for t in /proc/"$SERVER_PID"/task/*; do
    awk -v t="${t##*/}" '{ sub(/^.*\) /, ""); print t, $12 + $13 }' "$t/stat" 2>/dev/null
  done
}
# The two busiest threads' shares of their summed CPU time between two thread_ticks snapshots.
busy_shares() {
  awk 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if (d > 0) print d }' "$1" "$2" |
    sort -rn | head -2 |
    awk '{ v[NR] = $1; s += $1 } END { if (NR < 2 || s == 0) print "n/a"; else printf "%.2f / %.2f", v[1] / s, v[2] / s }'
}

declare -A PPS CPU SHARE
for sources in 1 $CLIENTS; do
  runs=()
  for ((i = 1; i <= REPS; i++)); do
    thread_ticks >"$WORK/t0"
    out=$(loadgen --mode max --payload 160 --window 8 --clients $CLIENTS --sources $sources \
      --warmup 1 --duration "$DURATION" --timeout 60 --server-pid "$SERVER_PID" 2>"$WORK/err-$sources-$i")
    thread_ticks >"$WORK/t1"
    line=$(grep '^result' <<<"$out" | tail -1)
    log "sources=$sources run $i: ${line:-no result} shares=$(busy_shares "$WORK/t0" "$WORK/t1")"
    [[ -z $line ]] && continue
    runs+=("$(field "$line" proc_ns_per_pkt) $(field "$line" pps) $(busy_shares "$WORK/t0" "$WORK/t1" | tr -d ' ')")
    sleep 1
  done
  median=$(printf '%s\n' "${runs[@]}" | sort -n | awk '{a[NR]=$0} END {if (NR) print a[int((NR+1)/2)]}')
  CPU[$sources]=$(awk '{print $1}' <<<"$median")
  PPS[$sources]=$(awk '{print $2}' <<<"$median")
  SHARE[$sources]=$(awk '{print $3}' <<<"$median")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "" || b == "") print "n/a"; else printf "%.2fx", a / b }'; }
fmt0() { awk -v v="$1" 'BEGIN { if (v == "") print "n/a"; else printf "%.0f", v }'; }
echo "| 2 workers, $CLIENTS UDP clients, 160 B | one address (127.0.0.1) | $CLIENTS addresses | one/many | target |"
echo "|---|---:|---:|---:|---|"
echo "| relayed packets/s | $(fmt0 "${PPS[1]}") | $(fmt0 "${PPS[$CLIENTS]}") | $(ratio "${PPS[1]}" "${PPS[$CLIENTS]}") | within 10% |"
echo "| server process CPU per relayed packet (ns) | $(fmt0 "${CPU[1]}") | $(fmt0 "${CPU[$CLIENTS]}") | $(ratio "${CPU[1]}" "${CPU[$CLIENTS]}") | within 10% |"
echo "| busiest two server threads' shares of their CPU time | ${SHARE[1]:-n/a} | ${SHARE[$CLIENTS]:-n/a} | | both busy |"
