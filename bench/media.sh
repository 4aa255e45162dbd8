#!/usr/bin/env bash
# What measuring relayed media costs on the hot path: callrelay with allocations.media_quality
# on and off, in one run on this machine, under the same load (bench_loadgen's max mode with
# RTP-shaped 160-byte payloads, so that the media monitor parses every packet as it would a
# call's: Opus payload type, one SSRC per client, sequence numbers counting up).
#
#   bench/media.sh [--no-save]
#
# The server is pinned to CPU 0 and the generator and echo peer to CPU 1 (as in bench/run.sh).
# On and off alternate (on/off, then off/on, ...) so that drift on a shared machine spreads over
# both. Before each run it waits (up to BENCH_WAIT_IDLE s) for both CPUs to be quiet. Reported:
# each setting's median, and the median over the pairs (one on and one off run back to back) of
# the on/off ratio, which cancels most of the drift between pairs. The headline is the server
# process's own CPU per packet (other work on CPU 0 does not inflate it).
# Prints a markdown section and puts it in bench/RESULTS.md between the media markers (unless
# --no-save); bench/run.sh keeps that section when it rewrites the file. Never part of CI.
#
# Environment: BENCH_BUILD_DIR (default build-bench), BENCH_MAX_DURATION (s per run, 3),
# BENCH_REPS (runs per setting, 10), BENCH_WAIT_IDLE (s, 60), CALLRELAY_BIN (use this binary
# instead of building one).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
MAX_DURATION=${BENCH_MAX_DURATION:-3}
REPS=${BENCH_REPS:-10}
WAIT_IDLE=${BENCH_WAIT_IDLE:-60}
PAYLOAD=160
WINDOW=8
CLIENTS=50
SERVER_CPU=0
GEN_CPU=1
LISTEN=127.0.0.1:13478
ECHO=127.0.0.1:19000
SAVE=1
[[ ${1:-} == --no-save ]] && SAVE=0
BEGIN_MARK='<!-- media-quality-bench -->'
END_MARK='<!-- /media-quality-bench -->'

log() { echo "[media-bench] $*" >&2; }
die() { log "error: $*"; exit 1; }

build() {
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCALLRELAY_BUILD_TESTS=OFF \
      -DCALLRELAY_BUILD_BENCH=ON >/dev/null || die "cmake configure failed"
  fi
  cmake --build "$BUILD" -j2 --target bench_tools >/dev/null || die "building the bench tools failed"
  if [[ -z ${CALLRELAY_BIN:-} ]]; then
    cmake --build "$BUILD" -j2 --target callrelay >/dev/null || die "building callrelay failed"
    CALLRELAY_BIN=$BUILD/app/callrelay
  fi
}

SERVER_PID=
ECHO_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null
  [[ -n $ECHO_PID ]] && kill "$ECHO_PID" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

loadgen() {
  nice -n -10 taskset -c $GEN_CPU "$BUILD/bench/bench_loadgen" --server $LISTEN --peer $ECHO \
    --server-cpu $SERVER_CPU --gen-cpu $GEN_CPU --echo-stats "$WORK/echo.stats" "$@"
}

# start_callrelay on|off: one worker, REST credentials, the loopback echo peer allowed.
start_callrelay() {
  local media=$1 dir=$WORK/callrelay-$1-$RANDOM
  [[ $media == on ]] && media=true || media=false
  mkdir -p "$dir/state"
  cat >"$dir/config.yaml" <<EOF
listen: {udp: ["$LISTEN"]}
relay: {ports: {min: 20000, max: 32000}}
workers: 1
state_dir: $dir/state
realm: callrelay
auth: {secrets: ["benchsecret"]}
allocations: {max_per_user: 0, media_quality: $media}
peers: {allow: ["127.0.0.0/8"]}
log: {level: warn}
EOF
  nice -n -10 taskset -c $SERVER_CPU "$CALLRELAY_BIN" --config "$dir/config.yaml" 2>"$dir/stderr" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -5 "$dir/stderr" >&2; return 1; }
    loadgen --mode probe --timeout 0.3 >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

stop_server() {
  [[ -z $SERVER_PID ]] && return
  kill "$SERVER_PID" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
  sleep 1
}

field() { grep -o "\b$2=[^ ]*" <<<"$1" | head -1 | cut -d= -f2; }

# Other processes' share of CPU 0 during a run (the server's own CPU is not "other").
foreign_share() {
  awk -v b="$(field "$1" cpu_busy_s)" -v p="$(field "$1" proc_cpu_s)" -v w="$(field "$1" window_s)" \
    'BEGIN { if (w > 0) printf "%.2f", (b - p) / w; else print 1 }'
}

# Percent busy of CPU $1 over one second.
cpu_busy_pct() {
  local a b
  a=$(awk -v c="cpu$1" '$1==c {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 1
  b=$(awk -v c="cpu$1" '$1==c {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a,x," "); split(b,y," "); printf "%.0f", 100*(y[1]-x[1])/(y[2]-x[2]) }'
}

# Waits up to WAIT_IDLE s for both CPUs to be under 10% busy (the echo peer idles meanwhile).
wait_quiet() {
  local waited=0
  while ((waited < WAIT_IDLE)); do
    (($(cpu_busy_pct $SERVER_CPU) <= 10 && $(cpu_busy_pct $GEN_CPU) <= 10)) && return 0
    waited=$((waited + 2))
  done
  log "CPUs still busy with other work after ${WAIT_IDLE} s; running anyway"
}

declare -A CLEAN DIRTY   # CLEAN[on] = newline-separated result lines
declare -A LAST          # LAST[on] = this pair's result line
PAIR_PROC=() PAIR_PPS=() PAIR_BUSY=()   # per pair: on/off ratios
run_once() {  # run_once on|off
  local setting=$1 out line
  LAST[$setting]=
  wait_quiet
  start_callrelay "$setting" || { log "callrelay ($setting) did not start"; stop_server; return; }
  out=$(loadgen --server-pid "$SERVER_PID" --mode max --rtp --payload $PAYLOAD --window $WINDOW \
    --clients $CLIENTS --warmup 1 --duration "$MAX_DURATION" --timeout 60 2>>"$WORK/loadgen.err")
  stop_server
  line=$(grep '^result' <<<"$out" | tail -1)
  [[ -z $line ]] && { log "$setting: no result"; return; }
  log "$setting: pps=$(field "$line" pps) ns_per_pkt=$(field "$line" ns_per_pkt) proc_ns_per_pkt=$(field "$line" proc_ns_per_pkt) other=$(foreign_share "$line")"
  LAST[$setting]=$line
  if awk -v f="$(foreign_share "$line")" 'BEGIN { exit !(f < 0.10) }'; then
    CLEAN[$setting]+="$line"$'\n'
  else
    DIRTY[$setting]+="$line"$'\n'
  fi
}

# median SETTING METRIC: over the clean runs (all runs when none was clean).
median() {
  local lines=${CLEAN[$1]:-${DIRTY[$1]:-}}
  [[ -z $lines ]] && { echo n/a; return; }
  while IFS= read -r l; do [[ -n $l ]] && field "$l" "$2"; done <<<"$lines" | sort -g |
    awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'
}
# Records the pair just run (both results present) as on/off ratios.
note_pair() {
  [[ -z ${LAST[on]} || -z ${LAST[off]} ]] && return
  local r
  r=$(ratio "$(field "${LAST[on]}" proc_ns_per_pkt)" "$(field "${LAST[off]}" proc_ns_per_pkt)")
  PAIR_PROC+=("$r")
  PAIR_PPS+=("$(ratio "$(field "${LAST[on]}" pps)" "$(field "${LAST[off]}" pps)")")
  PAIR_BUSY+=("$(ratio "$(field "${LAST[on]}" ns_per_pkt)" "$(field "${LAST[off]}" ns_per_pkt)")")
  log "pair: process CPU per packet on/off $r"
}
median_of() { printf '%s\n' "$@" | grep -v n/a | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'; }
range_of() { printf '%s\n' "$@" | grep -v n/a | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {if (NR) print lo "-" hi; else print "n/a"}'; }
count() { local l=${CLEAN[$1]:-}; [[ -z $l ]] && echo 0 || grep -c . <<<"$l"; }
ratio() {
  [[ $1 == n/a || $2 == n/a ]] && { echo n/a; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'
}

section() {
  local pps_on pps_off cpu_on cpu_off proc_on proc_off util_on util_off
  pps_on=$(median on pps); pps_off=$(median off pps)
  cpu_on=$(median on ns_per_pkt); cpu_off=$(median off ns_per_pkt)
  proc_on=$(median on proc_ns_per_pkt); proc_off=$(median off proc_ns_per_pkt)
  util_on=$(median on cpu_util); util_off=$(median off cpu_util)
  echo "$BEGIN_MARK"
  echo "## Media quality measurement (allocations.media_quality on and off)"
  echo
  echo "From \`bench/media.sh\`: callrelay (1 worker) with the media monitor on and off, alternating,"
  echo "$REPS runs of ${MAX_DURATION} s each, $CLIENTS clients, $WINDOW packets in flight each, $PAYLOAD-byte"
  echo "RTP payloads (Opus payload type, one SSRC per client) in ChannelData to the UDP echo peer."
  echo "Medians of the runs with less than 10% of CPU $SERVER_CPU used by other work"
  echo "(on: $(count on), off: $(count off) such runs; all runs when none was). $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'),"
  echo "Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC'); revision $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)."
  echo
  echo "| metric | on | off | on/off of the medians | median of the ${#PAIR_PROC[@]} pairs' on/off (range) |"
  echo "|---|---:|---:|---:|---:|"
  echo "| **server process CPU per relayed packet (ns)** | $proc_on | $proc_off | $(ratio "$proc_on" "$proc_off") | **$(median_of "${PAIR_PROC[@]}")** ($(range_of "${PAIR_PROC[@]}")) |"
  echo "| server CPU per relayed packet, CPU $SERVER_CPU busy time (ns) | $cpu_on | $cpu_off | $(ratio "$cpu_on" "$cpu_off") | $(median_of "${PAIR_BUSY[@]}") ($(range_of "${PAIR_BUSY[@]}")) |"
  echo "| relayed packets/s, 160 B | $pps_on | $pps_off | $(ratio "$pps_on" "$pps_off") | $(median_of "${PAIR_PPS[@]}") ($(range_of "${PAIR_PPS[@]}")) |"
  echo "| server CPU busy (1 = saturated) | $util_on | $util_off | | |"
  echo
  if [[ -n $COST ]]; then
    echo "The monitor alone (\`bench_media_cost\`, 1000 allocations' monitors in turn, best of 5 on"
    echo "CPU $SERVER_CPU): $(field "$COST" client_ns_per_pkt) ns per client packet (RTP parsed, sequence and jitter"
    echo "updated), $(field "$COST" peer_ns_per_pkt) ns per peer packet (demultiplexed only)."
    echo
  fi
  echo "The cost of measuring is the process CPU per packet ratio minus 1 (target: under 5%);"
  echo "packets/s only shows it when the server, not the generator, is the bottleneck."
  echo "$END_MARK"
}

# Replaces the media section of bench/RESULTS.md (or appends it).
save() {
  local file=$ROOT/bench/RESULTS.md tmp
  tmp=$(mktemp)
  if [[ -f $file ]] && grep -qF "$BEGIN_MARK" "$file"; then
    awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v s="$WORK/section.md" '
      $0 == b { while ((getline l < s) > 0) print l; skip = 1; next }
      $0 == e { skip = 0; next }
      !skip { print }' "$file" >"$tmp"
  else
    { [[ -f $file ]] && cat "$file" && echo; cat "$WORK/section.md"; } >"$tmp"
  fi
  mv "$tmp" "$file"
  log "saved the section in bench/RESULTS.md"
}

[[ $(nproc) -ge 2 ]] || die "needs at least 2 CPUs (server and generator on separate cores)"
command -v taskset >/dev/null || die "taskset not installed (util-linux)"
WORK=$(mktemp -d /tmp/callrelay-media-bench.XXXXXX)
build
nice -n -10 taskset -c $GEN_CPU "$BUILD/bench/bench_echo" --listen $ECHO --stats "$WORK/echo.stats" 2>"$WORK/echo.err" &
ECHO_PID=$!
for _ in $(seq 50); do [[ -s $WORK/echo.stats ]] && break; sleep 0.1; done
sleep 0.2; kill -0 "$ECHO_PID" 2>/dev/null || die "bench_echo did not start: $(cat "$WORK/echo.err")"

wait_quiet
COST=$(nice -n -10 taskset -c $SERVER_CPU "$BUILD/bench/bench_media_cost" --allocations 1000 | grep '^result')
log "monitor alone: $COST"
for ((i = 1; i <= REPS; i++)); do
  if ((i % 2)); then run_once on; run_once off; else run_once off; run_once on; fi
  note_pair
done
section >"$WORK/section.md"
cat "$WORK/section.md"
if [[ $SAVE == 1 ]]; then save; fi
