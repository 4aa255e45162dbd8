#!/usr/bin/env bash
# Benchmarks callrelay against Debian's coturn and a bare UDP forwarder (the floor), in one run
# on this machine, under the same load generator (bench_loadgen + bench_echo). The CPU per
# relayed packet is also measured with TCP and TLS clients relaying to the same UDP echo peer
# (callrelay and coturn only: the forwarder has no TCP mode).
#
#   bench/run.sh [--no-save]
#
# Each server is pinned to CPU 0 and the generator and echo peer to CPU 1 (taskset), all at
# nice -10 so that other work on a shared machine disturbs them less. The
# headline is server CPU per relayed packet: CPU 0's busy time from /proc/stat (user, nice,
# system, irq, softirq: it includes kernel network time no process is charged for) divided by
# the packets relayed in both directions. Prints a markdown table and writes it to
# bench/RESULTS.md (unless --no-save). Takes about six minutes; never part of CI.
#
# Environment: BENCH_BUILD_DIR (default build-bench), BENCH_DURATION (s per measurement, 5),
# BENCH_MAX_DURATION (s per saturation run, 3), BENCH_REPS (saturation runs per size, 3),
# CALLRELAY_BIN (use this binary instead of building one), BENCH_SKIP_COTURN=1,
# BENCH_SKIP_STREAMS=1 (no TCP/TLS client rows), BENCH_SKIP_URING=1 (no relay.io io_uring rows), BENCH_SKIP_TIMERS=1 (no housekeeping rows),
# BENCH_WAIT_IDLE (seconds to wait for CPU 0 to be quiet before each server, default 0),
# BENCH_HOLD_HUGE (allocations of the largest hold, 100000; 0: not run), BENCH_HOLD_ADDRESSES=N
# (that hold once more on callrelay with N relay addresses, relay.bind_ipv4; default 0: not run),
# BENCH_ONLY=hold (only the idle-allocation rows, for both servers; nothing saved),
# BENCH_ONLY=udp (only the UDP saturation runs of callrelay, its shared relay ports and the
# forwarder, and the interleaved pairs: the rows that compare callrelay with the floor;
# nothing saved), BENCH_FLOOR_PAIRS (interleaved pairs per payload, default 5),
# BENCH_ONLY=streams (only the TCP and TLS client runs of callrelay and coturn, and their TLS
# interleaved pairs; nothing saved), BENCH_ONLY=tls_pairs (only those pairs; nothing saved),
# BENCH_STREAM_PAIRS (TLS pairs per payload, default 5),
# BENCH_STREAM_PACE (frames/s per client in the paced TCP/TLS runs, default 400),
# BENCH_SKIP_SHARED=1 (no relay.multiplex_peers rows).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
DURATION=${BENCH_DURATION:-5}
WARMUP=1
MAX_DURATION=${BENCH_MAX_DURATION:-3}
REPS=${BENCH_REPS:-3}
WINDOW=8                     # packets in flight per client in the saturation runs
STREAM_PACE=${BENCH_STREAM_PACE:-400}  # frames/s per TCP/TLS client in the paced runs (both servers about half busy)
CLIENTS=50
SERVER_CPU=0
GEN_CPU=1
LISTEN=127.0.0.1:13478       # outside the ephemeral range, unlike 3478's neighbours in tests
                             # (UDP, and TCP on the same port as both servers default to)
TLS_LISTEN=127.0.0.1:15349
ECHO=127.0.0.1:19000
# Each client relays to a peer address of its own, 127.0.0.1 to 127.0.0.<PEERS> (the echo peer
# answers from them all), as each browser's remote party is its own address: a relay socket
# shared by allocations (relay.multiplex_peers) tells their answers apart by it. The forwarder
# and coturn get the same peers.
PEERS=$CLIENTS
PORT_MIN=20000               # relay ports stay below the ephemeral range (32768-60999)
PORT_MAX=32000
STORM_PORT_MAX=$((PORT_MIN + 15))   # 16 relay ports: an Allocate storm runs out at once
HOLD_COUNTS=1000,10000
# The largest hold: one relay socket (descriptor) per allocation, so RLIMIT_NOFILE bounds it
# (20000 here); relay ports from HOLD_PORT_MIN, clients on 33000-60999.
HOLD_LARGE=${BENCH_HOLD_LARGE:-18000}
HOLD_PORT_MIN=1100
# The largest hold goes past that limit on both sides: callrelay's UDP allocations share relay
# ports (relay.multiplex_peers, HOLD_PER_PORT to a port) and each generator socket speaks for
# HOLD_SOURCES clients, each from its own loopback address (bench_loadgen --source-addresses).
HOLD_HUGE=${BENCH_HOLD_HUGE:-100000}
HOLD_PER_PORT=64
HOLD_SOURCES=100
HOLD_ADDRESSES=${BENCH_HOLD_ADDRESSES:-0}
SAVE=1
GIVEN_BIN=${CALLRELAY_BIN:-}
[[ ${1:-} == --no-save ]] && SAVE=0
ONLY=${BENCH_ONLY:-}
[[ -n $ONLY && $ONLY != hold && $ONLY != udp && $ONLY != streams && $ONLY != tls_pairs ]] &&
  die "BENCH_ONLY must be hold, udp, streams or tls_pairs (or unset)"
[[ -n $ONLY ]] && SAVE=0   # a partial table never replaces RESULTS.md

log() { echo "[bench] $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- build -------------------------------------------------------------------------------
build() {
  command -v cmake >/dev/null || die "cmake not installed (run scripts/ install first)"
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCALLRELAY_BUILD_TESTS=OFF \
      -DCALLRELAY_BUILD_BENCH=ON >/dev/null || die "cmake configure failed"
  fi
  local tools=bench_tools
  [[ $ONLY == hold ]] && tools="bench_loadgen bench_echo"
  # shellcheck disable=SC2086  # tools is words on purpose
  cmake --build "$BUILD" -j2 --target $tools >/dev/null || die "building the bench tools failed"
  if [[ -z ${CALLRELAY_BIN:-} ]]; then
    if cmake --build "$BUILD" -j2 --target callrelay >/dev/null 2>"$WORK/build-callrelay.log"; then
      CALLRELAY_BIN=$BUILD/app/callrelay
    else
      log "warning: building callrelay failed (see $WORK/build-callrelay.log); its column is empty"
      CALLRELAY_BIN=
    fi
  fi
}

# --- processes -----------------------------------------------------------------------------
SERVER_PID=
ECHO_PID=
CALLRELAY_DIR=   # the last callrelay's directory (config, stderr)
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null
  [[ -n ${BESIDE_PID:-} ]] && kill "$BESIDE_PID" 2>/dev/null
  [[ -n $ECHO_PID ]] && kill "$ECHO_PID" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # so that the EXIT trap stops the servers and the echo peer

# Waits (at most 10 s) for "ready" on the server's stderr, or for a Binding answer.
wait_ready() {  # wait_ready ERRFILE PROBE [PID]: PID defaults to $SERVER_PID
  local errfile=$1 probe=$2 pid=${3:-$SERVER_PID}
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { log "server exited:"; tail -5 "$errfile" >&2; return 1; }
    if [[ $probe == 1 ]]; then
      loadgen --mode probe --timeout 0.3 >/dev/null 2>&1 && return 0
    elif grep -qw 'ready' "$errfile" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  log "server did not become ready"; return 1
}

# start_callrelay PORT_MAX [streams]: with "streams", TCP and TLS listeners too (TCP on the
# UDP port, as callrelay defaults to anyway, and TLS with the bench's self-signed certificate).
start_callrelay() {
  local port_max=$1 dir=$WORK/callrelay-$RANDOM listen="listen: {udp: [\"$LISTEN\"]}"
  if [[ ${2:-} == streams ]]; then
    listen="listen: {udp: [\"$LISTEN\"], tcp: [\"$LISTEN\"], tls: [\"$TLS_LISTEN\"]}
tls: {cert: $WORK/cert.pem, key: $WORK/key.pem${TLS_EXTRA:+, $TLS_EXTRA}}"
  fi
  mkdir -p "$dir/state"
  CALLRELAY_DIR=$dir
  cat >"$dir/config.yaml" <<EOF
$listen
relay: {ports: {min: $PORT_MIN, max: $port_max}${RELAY_IO:+, io: $RELAY_IO}${RELAY_EXTRA:+, $RELAY_EXTRA}}
workers: 1
state_dir: $dir/state
realm: callrelay
auth: {secrets: ["benchsecret"]}
allocations: {max_per_user: 0}
peers: {allow: ["127.0.0.0/8"]}
log: {level: warn}
# Every bench client shares 127.0.0.1: the per-address 401 rate would throttle the control runs.
limits: {unauthenticated: {challenges_per_s: 0}}
# The bench reads nothing over HTTP; port 0 so that another callrelay on the host (the default
# 9641) does not stop this one from starting.
http: {listen: "127.0.0.1:0"}
EOF
  nice -n -10 taskset -c $SERVER_CPU "$CALLRELAY_BIN" --config "$dir/config.yaml" 2>"$dir/stderr" &
  SERVER_PID=$!
  wait_ready "$dir/stderr" 0 && wait_ready "$dir/stderr" 1 && wait_streams "${2:-}"
}

# start_coturn PORT_MAX [streams]: with "streams", coturn's TCP listener (on the UDP port, its
# default) and TLS listener with the bench's certificate; DTLS stays off either way.
start_coturn() {
  local port_max=$1 dir=$WORK/coturn-$RANDOM streams=(--no-tls --no-tcp)
  if [[ ${2:-} == streams ]]; then
    streams=(--tls-listening-port "${TLS_LISTEN##*:}" --cert "$WORK/cert.pem" --pkey "$WORK/key.pem")
  fi
  mkdir -p "$dir"
  nice -n -10 taskset -c $SERVER_CPU turnserver -n --listening-ip 127.0.0.1 --listening-port "${LISTEN##*:}" \
    --relay-ip 127.0.0.1 --min-port $PORT_MIN --max-port "$port_max" --relay-threads 1 \
    --use-auth-secret --static-auth-secret benchsecret --realm callrelay --allow-loopback-peers \
    "${streams[@]}" --no-dtls --no-cli --no-stdout-log --log-file /dev/null --simple-log \
    --pidfile "$dir/turnserver.pid" --db "$dir/turndb" >"$dir/stderr" 2>&1 &
  SERVER_PID=$!
  wait_ready "$dir/stderr" 1 && wait_streams "${2:-}"
}

# The UDP probe says a server is up; its TCP and TLS listeners may come a moment later. Waits
# (at most 5 s) until both accept a connection.
wait_streams() {
  [[ $1 == streams ]] || return 0
  local addr
  for addr in "$LISTEN" "$TLS_LISTEN"; do
    for _ in $(seq 50); do
      (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null && continue 2
      sleep 0.1
    done
    log "nothing accepts TCP connections on $addr"; return 1
  done
}

# Self-signed certificate for both servers' TLS listeners (the generator does not verify it).
make_cert() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=callrelay-bench \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>"$WORK/openssl.err" ||
    { log "openssl could not make a certificate (see $WORK/openssl.err)"; return 1; }
}

# launch_forwarder LISTEN PORT_MIN DIR: the forwarder in the background (its pid in $!).
launch_forwarder() {
  mkdir -p "$3"
  nice -n -10 taskset -c $SERVER_CPU "$BUILD/bench/bench_forwarder" --listen "$1" --peer $ECHO \
    --peer-addresses $PEERS --port-min "$2" 2>"$3/stderr" &
}

start_floor() {
  launch_forwarder $LISTEN $PORT_MIN "$WORK/floor"
  SERVER_PID=$!
  wait_ready "$WORK/floor/stderr" 0
}

stop_server() {
  [[ -z $SERVER_PID ]] && return
  kill "$SERVER_PID" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
  sleep 1  # let the kernel settle before the next server
}

loadgen() {  # a --server in the arguments overrides $LISTEN (the last one given wins)
  nice -n -10 taskset -c $GEN_CPU "$BUILD/bench/bench_loadgen" --server $LISTEN --peer $ECHO \
    --peer-addresses $PEERS --server-cpu $SERVER_CPU --gen-cpu $GEN_CPU --echo-stats "$WORK/echo.stats" "$@"
}

# --- results -------------------------------------------------------------------------------
declare -A R   # R[server.metric] = value
NOTES=()

field() { grep -o "\b$2=[^ ]*" <<<"$1" | head -1 | cut -d= -f2; }

# Runs one measurement: measure SERVER LABEL loadgen-args...; prints the result line.
measure() {
  local server=$1 label=$2; shift 2
  local out
  out=$(loadgen --server-pid "$SERVER_PID" "$@" 2>"$WORK/$server-$label.err")
  local rc=$?
  echo "$out" >"$WORK/$server-$label.out"
  local line; line=$(grep '^result' <<<"$out" | tail -1)
  log "$server $label: ${line:-no result} (exit $rc)"
  if [[ $rc != 0 ]]; then
    NOTES+=("$server $label: load generator exit $rc: $(grep -h -v '^$' "$WORK/$server-$label.err" | head -2 | tr '\n' ' ')$(grep -o 'errors=[^ ]*\|failed=[^ ]*\|timeouts=[^ ]*' <<<"$out" | tr '\n' ' ')")
  fi
  LAST=$line
}

# Percent busy of CPU $1 over one second (nothing of ours runs on it when this is called).
cpu_busy_pct() {
  local a b
  a=$(awk -v c="cpu$1" '$1==c {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 1
  b=$(awk -v c="cpu$1" '$1==c {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a,x," "); split(b,y," "); printf "%.0f", 100*(y[1]-x[1])/(y[2]-x[2]) }'
}

# Other work on the server's CPU inflates its busy time: record it, and with BENCH_WAIT_IDLE=S
# wait up to S seconds for the CPU to become quiet first.
background_check() {
  local name=$1 pct waited=0
  pct=$(cpu_busy_pct $SERVER_CPU)
  while [[ $pct -gt 10 && $waited -lt ${BENCH_WAIT_IDLE:-0} ]]; do
    sleep 4; waited=$((waited + 5)); pct=$(cpu_busy_pct $SERVER_CPU)
  done
  R[$name.bg]=$pct
  if [[ $pct -gt 10 ]]; then
    NOTES+=("$name: CPU $SERVER_CPU was already ${pct}% busy with other work before its runs, so its CPU-per-packet figures are inflated (the process-CPU row is not)")
  fi
}

# CPU time on the server's CPU not spent by the server process, as a share of the window: other
# work that ran there (someone else's build on a shared machine) and inflates the headline.
foreign_share() {
  awk -v b="$(field "$1" cpu_busy_s)" -v p="$(field "$1" proc_cpu_s)" -v w="$(field "$1" window_s)" \
    'BEGIN { if (w > 0) printf "%.2f", (b - p) / w; else print 1 }'
}

# Saturation runs: REPS clean runs of MAX_DURATION s each (a run is clean when less than 10% of
# the server CPU's busy time went to other processes; up to 2*REPS tries), and the run with the
# median CPU per packet is kept. TRANSPORT is udp, tcp or tls; the stream ones store their
# results as R[NAME.tcp_cpu160] and so on.
max_runs() {  # max_runs NAME TRANSPORT PAYLOAD args...
  local name=$1 transport=$2 payload=$3; shift 3
  local clean=() dirty=() i key=
  [[ $transport != udp ]] && key=${transport}_
  [[ -n ${RUN_KEY:-} ]] && key=$RUN_KEY  # a variant's own keys (the paced stream runs)
  for ((i = 1; i <= 2 * REPS && ${#clean[@]} < REPS; i++)); do
    measure "$name" "${key}max$payload-$i" --mode max --transport "$transport" --payload "$payload" --window $WINDOW \
      --clients $CLIENTS --warmup $WARMUP --duration "$MAX_DURATION" --timeout 60 "$@"
    [[ -z $LAST ]] && continue
    if awk -v f="$(foreign_share "$LAST")" 'BEGIN { exit !(f < 0.10) }'; then
      clean+=("$(field "$LAST" ns_per_pkt) $LAST")
    else
      log "  (other work used $(foreign_share "$LAST") of CPU $SERVER_CPU: run not counted)"
      dirty+=("$(field "$LAST" ns_per_pkt) $LAST")
    fi
    sleep 1.5  # coturn deletes released allocations about a second late
  done
  if [[ ${#clean[@]} -eq 0 ]]; then
    NOTES+=("$name $transport $payload B: no saturation run free of other work on CPU $SERVER_CPU; CPU-per-packet is inflated")
    clean=("${dirty[@]}")
  fi
  LAST=$(printf '%s\n' "${clean[@]}" | sort -n | awk '{a[NR]=$0} END {if (NR) print a[int((NR+1)/2)]}' | cut -d' ' -f2-)
  R[$name.${key}cpu$payload]=$(field "$LAST" ns_per_pkt); R[$name.${key}pps$payload]=$(field "$LAST" pps)
  R[$name.${key}util$payload]=$(field "$LAST" cpu_util); R[$name.${key}gen$payload]=$(field "$LAST" gen_cpu_util)
  R[$name.${key}proc$payload]=$(field "$LAST" proc_ns_per_pkt)
  R[$name.${key}stalls$payload]=$(field "$LAST" stalls); R[$name.${key}bad$payload]=$(field "$LAST" bad)
  [[ $transport == tls ]] && R[$name.tls_cipher]=$(field "$LAST" tls)
}

data_runs() {  # data_runs NAME [--raw]
  local name=$1; shift
  max_runs "$name" udp 160 "$@"
  max_runs "$name" udp 1200 "$@"
  sleep 1
  measure "$name" rate --mode rate --pps 50 --payload 160 --clients $CLIENTS --warmup $WARMUP \
    --duration "$DURATION" --timeout 60 "$@"
  R[$name.p50]=$(field "$LAST" rtt_p50_us); R[$name.p99]=$(field "$LAST" rtt_p99_us)
  R[$name.lost]=$(field "$LAST" lost)
}

bench_turn_server() {  # bench_turn_server NAME START_FUNCTION
  local name=$1 start=$2
  log "== $name"
  background_check "$name"
  $start $PORT_MAX || { NOTES+=("$name: did not start"); stop_server; return; }
  data_runs "$name"
  sleep 2
  measure "$name" allocs --mode allocs --clients $CLIENTS --warmup $WARMUP --duration "$DURATION"
  R[$name.allocs]=$(field "$LAST" allocs_per_s); R[$name.alloc_us]=$(field "$LAST" proc_us_per_alloc)
  stop_server

  bench_holds "$name" "$start"

  $start $STORM_PORT_MAX || { NOTES+=("$name: did not start"); stop_server; return; }
  measure "$name" storm --mode storm --count 20000 --clients 500 --timeout 90
  R[$name.storm_before]=$(field "$LAST" rss_before_kib); R[$name.storm_after]=$(field "$LAST" rss_after_kib)
  R[$name.storm_errors]=$(field "$LAST" errors)
  stop_server
}

# Idle allocations (each with a permission and a channel, refreshed as browsers refresh them)
# and the server's RSS at each count.
bench_holds() {  # bench_holds NAME START_FUNCTION
  local name=$1 start=$2
  $start $PORT_MAX || { NOTES+=("$name: did not start"); stop_server; return; }
  measure "$name" hold --mode hold --count $HOLD_COUNTS --timeout 90
  R[$name.slope]=$(field "$LAST" slope_kib_per_alloc)
  R[$name.stages]=$(field "$LAST" stages)
  stop_server

  # 10k and then HOLD_LARGE allocations on a relay port range wide enough for them.
  PORT_MIN=$HOLD_PORT_MIN $start 32000 || { NOTES+=("$name: did not start (large hold)"); stop_server; return; }
  measure "$name" hold_large --mode hold --count "10000,$HOLD_LARGE" --timeout 120
  R[$name.slope_large]=$(field "$LAST" slope_kib_per_alloc)
  R[$name.held_large]=$(field "$LAST" held)
  stop_server
  [[ $HOLD_HUGE -gt 0 ]] && bench_hold_huge "$name" "$start"
  [[ $HOLD_HUGE -gt 0 && $HOLD_ADDRESSES -gt 0 && $name == callrelay ]] &&
    bench_hold_huge callrelay_addrs "$start" "$HOLD_ADDRESSES"
}

# 10k and then HOLD_HUGE allocations from HOLD_HUGE / HOLD_SOURCES client sockets. callrelay
# shares its relay ports (a server without relay.multiplex_peers refuses the key and the row
# says so); coturn keeps a descriptor per allocation and gets as far as RLIMIT_NOFILE lets it.
bench_hold_huge() {  # bench_hold_huge NAME START_FUNCTION [RELAY_ADDRESSES]
  local name=$1 start=$2 extra='' i
  [[ $name == callrelay* ]] && extra="multiplex_peers: true, allocations_per_port: $HOLD_PER_PORT"
  if [[ ${3:-0} -gt 0 ]]; then  # 127.0.0.2 and up: allocations spread over the addresses
    extra+=", bind_ipv4: [127.0.0.2"
    for ((i = 3; i <= $3 + 1; i++)); do extra+=", 127.0.0.$i"; done
    extra+="]"
  fi
  if ! RELAY_EXTRA=$extra PORT_MIN=$HOLD_PORT_MIN $start 32000; then
    R[$name.huge_note]="did not start"
    [[ -n $extra ]] && grep -qs 'multiplex_peers\|allocations_per_port' "$CALLRELAY_DIR/stderr" &&
      R[$name.huge_note]="needs relay.multiplex_peers"
    NOTES+=("$name: did not start for the $HOLD_HUGE hold (${R[$name.huge_note]})"); stop_server; return
  fi
  measure "$name" hold_huge --mode hold --count "10000,$HOLD_HUGE" --source-addresses $HOLD_SOURCES \
    --timeout 300
  R[$name.huge_stages]=$(field "$LAST" stages)
  R[$name.huge_held]=$(field "$LAST" held)
  R[$name.huge_sockets]=$(field "$LAST" client_sockets)
  R[$name.huge_renewal_late]=$(field "$LAST" renewal_late_max_ms)
  if [[ ${R[$name.huge_held]:-0} -ge $HOLD_HUGE ]]; then
    R[$name.slope_huge]=$(field "$LAST" slope_kib_per_alloc)
  else
    R[$name.huge_note]="held ${R[$name.huge_held]:-none}"
  fi
  stop_server
}

# TCP and TLS clients (one connection each) relaying to the UDP echo peer: the saturation runs
# only, on a server started with its stream listeners (the UDP runs keep coturn's --no-tcp).
bench_streams() {  # bench_streams NAME START_FUNCTION
  local name=$1 start=$2
  log "== $name, TCP and TLS clients"
  background_check "$name (TCP/TLS runs)"
  $start $PORT_MAX streams || { NOTES+=("$name: did not start with TCP and TLS listeners"); stop_server; return; }
  max_runs "$name" tcp 160
  max_runs "$name" tcp 1200
  max_runs "$name" tls 160 --server $TLS_LISTEN
  max_runs "$name" tls 1200 --server $TLS_LISTEN
  # Open loop: every client sends STREAM_PACE frames a second, one write each, a load both
  # servers carry below saturation. The closed-loop rows above let a server that answers later
  # gather more frames per TCP segment, so they compare the servers at different batching too.
  RUN_KEY=tcp_paced_ max_runs "$name" tcp 160 --pace "$STREAM_PACE"
  RUN_KEY=tls_paced_ max_runs "$name" tls 160 --server $TLS_LISTEN --pace "$STREAM_PACE"
  stop_server
  [[ $name == callrelay ]] || return 0
  # tls.records: packed (the frames of one write share records, for clients that reframe the
  # stream): the TLS saturation runs again.
  TLS_EXTRA="records: packed" $start $PORT_MAX streams ||
    { NOTES+=("$name (tls.records: packed): did not start"); stop_server; return; }
  RUN_KEY=tls_packed_ max_runs "$name" tls 160 --server $TLS_LISTEN
  RUN_KEY=tls_packed_ max_runs "$name" tls 1200 --server $TLS_LISTEN
  stop_server
}

# callrelay with its relay sockets on io_uring instead of the default Asio (epoll) path (relay.io), for
# the rows that compare the two data paths (UDP saturation runs only).
bench_callrelay_uring() {
  log "== callrelay, relay.io io_uring"
  background_check callrelay_uring
  RELAY_IO=io_uring start_callrelay $PORT_MAX || { NOTES+=("callrelay (relay.io io_uring): did not start"); stop_server; return; }
  max_runs callrelay_uring udp 160
  max_runs callrelay_uring udp 1200
  stop_server
}

# callrelay with shared relay ports (relay.multiplex_peers, 64 allocations to a port: the
# clients share one relay socket), UDP saturation runs only. Each client's peer is its own
# address, so no datagram may be dropped as ambiguous: the drop counter says so.
bench_callrelay_shared() {
  log "== callrelay, relay.multiplex_peers"
  background_check callrelay_shared
  RELAY_EXTRA="multiplex_peers: true, allocations_per_port: 64" start_callrelay $PORT_MAX ||
    { NOTES+=("callrelay (relay.multiplex_peers): did not start"); stop_server; return; }
  max_runs callrelay_shared udp 160
  max_runs callrelay_shared udp 1200
  # Its TCP listeners: TURN on the UDP port (the default) and HTTP on a port the kernel picked.
  local http metrics drops
  http=$(ss -ltnpH 2>/dev/null | grep "pid=$SERVER_PID," | awk '{print $4}' |
    grep -v ":${LISTEN##*:}\$" | head -1)
  metrics=$(curl -s --max-time 2 "http://$http/metrics" | grep '^callrelay_dropped_packets_total{')
  drops=$(grep -v ' 0$' <<<"$metrics" | sed 's/^callrelay_dropped_packets_total//' | tr '\n' ' ')
  R[callrelay_shared.drops]=${drops:-none}
  [[ -z $http || -z $metrics ]] && R[callrelay_shared.drops]="n/a (metrics not read from '$http')"
  [[ $drops == *ambiguous_peer* ]] && NOTES+=("callrelay (relay.multiplex_peers): ambiguous_peer drops: $drops")
  stop_server
}

bench_floor() {
  log "== floor"
  background_check floor
  start_floor || { NOTES+=("floor: did not start"); return; }
  if [[ $ONLY == udp ]]; then
    max_runs floor udp 160 --raw; max_runs floor udp 1200 --raw
  else
    data_runs floor --raw
  fi
  stop_server
}

# callrelay (epoll) against the floor in interleaved pairs: both run at once, each on a listen
# port of its own (the idle one costs CPU 0 nothing), and the saturation runs alternate between
# them, callrelay first in odd pairs and the forwarder first in even ones. The machine's drift
# over minutes (±20% between runs on a shared VM) then falls on both sides of each pair's ratio
# instead of between one server's block of runs and the other's. Kept: the median ratio over
# FLOOR_PAIRS clean pairs (a pair is clean when neither run lost 10% of CPU 0 to other work)
# and its range.
FLOOR_PAIRS=${BENCH_FLOOR_PAIRS:-5}
PAIR_LISTEN=127.0.0.1:13480
PAIR_FLOOR_PORT_MIN=27000    # the forwarder's sockets; callrelay's relay ports stay below
bench_floor_pairs() {
  [[ -z ${CALLRELAY_BIN:-} ]] && return
  log "== callrelay and the floor, interleaved pairs"
  background_check pairs
  start_forwarder_beside || { NOTES+=("interleaved pairs: the forwarder did not start"); return; }
  start_callrelay $((PAIR_FLOOR_PORT_MIN - 1)) ||
    { NOTES+=("interleaved pairs: callrelay did not start"); stop_server; stop_beside; return; }
  interleaved_pairs pairs udp "$FLOOR_PAIRS" "$SERVER_PID" "" floor "$BESIDE_PID" \
    "--raw --server $PAIR_LISTEN"
  stop_server
  stop_beside
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$0} END {if (NR) print a[int((NR+1)/2)]}'; }

# callrelay against coturn with TLS clients in interleaved pairs, as the floor pairs above:
# coturn on the usual listeners with the lower relay ports, callrelay beside it on PAIR_LISTEN /
# PAIR_TLS_LISTEN with the upper ones, and the saturation runs alternating between them. Three
# sets: clients writing a record per frame (as browsers do) with callrelay's default of a record
# per frame; clients packing each write into one record, callrelay as before; both packing
# (callrelay with tls.records: packed, which is what coturn does when frames queue). The stream
# rows above run one server's block of runs minutes after the other's, so the host's drift
# lands in their ratio; here it falls inside each pair. Kept: the median ratio over
# STREAM_PAIRS clean pairs and its range.
STREAM_PAIRS=${BENCH_STREAM_PAIRS:-5}
PAIR_TLS_LISTEN=127.0.0.1:15350
bench_tls_pairs() {
  [[ -z ${CALLRELAY_BIN:-} || ${BENCH_SKIP_COTURN:-0} == 1 ]] && return
  command -v turnserver >/dev/null || return
  log "== callrelay and coturn, TLS clients, interleaved pairs"
  background_check tls_pairs
  start_coturn $((PAIR_FLOOR_PORT_MIN - 1)) streams ||
    { NOTES+=("TLS pairs: coturn did not start"); stop_server; return; }
  BESIDE_PID=$SERVER_PID; SERVER_PID=
  local key clients
  for key in tlspairs tlsclientpackedpairs tlspackedpairs; do
    clients=packed; [[ $key == tlspairs ]] && clients=per-frame
    TLS_EXTRA=$([[ $key == tlspackedpairs ]] && echo "records: packed") LISTEN=$PAIR_LISTEN \
      TLS_LISTEN=$PAIR_TLS_LISTEN PORT_MIN=$PAIR_FLOOR_PORT_MIN start_callrelay $PORT_MAX streams ||
      { NOTES+=("TLS pairs ($key): callrelay did not start"); stop_server; break; }
    interleaved_pairs "$key" tls "$STREAM_PAIRS" "$SERVER_PID" \
      "--server $PAIR_TLS_LISTEN --client-records $clients" coturn "$BESIDE_PID" \
      "--server $TLS_LISTEN --client-records $clients"
    stop_server
  done
  stop_beside
}

# interleaved_pairs KEY TRANSPORT PAIRS RELAY_PID RELAY_ARGS OTHER OTHER_PID OTHER_ARGS: the
# saturation runs of callrelay and OTHER (both up) alternate, callrelay first in odd pairs and
# OTHER first in even ones, up to PAIRS clean pairs per payload (a pair is clean when neither
# run lost 10% of CPU 0 to other work; at most 2 x PAIRS tries). Each side's extra generator
# arguments are given as one string. Results in R[KEY.*]: the median ratio and its range, the
# median process-CPU ratio, and each side's median CPU per packet (OTHER's as KEY.floor).
interleaved_pairs() {
  local key=$1 transport=$2 pairs=$3 relay_pid=$4 relay_args=$5 other=$6 other_pid=$7 other_args=$8
  local payload who args order ratios procs cpus others tries dirty cc cp oc op
  for payload in 160 1200; do
    ratios=(); procs=(); cpus=(); others=()
    for ((tries = 1; tries <= 2 * pairs && ${#ratios[@]} < pairs; tries++)); do
      order=(callrelay "$other"); ((tries % 2 == 0)) && order=("$other" callrelay)
      dirty=0
      for who in "${order[@]}"; do
        SERVER_PID=$other_pid args=$other_args
        [[ $who == callrelay ]] && SERVER_PID=$relay_pid args=$relay_args
        # shellcheck disable=SC2086  # args: the side's generator arguments, split on purpose
        measure "$key-$who" "max$payload-$tries" --mode max --transport "$transport" --payload "$payload" \
          --window $WINDOW --clients $CLIENTS --warmup $WARMUP --duration "$MAX_DURATION" \
          --timeout 60 $args
        sleep 1.5  # coturn deletes released allocations about a second late
        if [[ -z $LAST ]] || ! awk -v f="$(foreign_share "$LAST")" 'BEGIN { exit !(f < 0.10) }'; then
          log "  (run not counted: no result, or other work on CPU $SERVER_CPU)"; dirty=1; break
        fi
        if [[ $who == callrelay ]]; then
          cc=$(field "$LAST" ns_per_pkt); cp=$(field "$LAST" proc_ns_per_pkt)
        else
          oc=$(field "$LAST" ns_per_pkt); op=$(field "$LAST" proc_ns_per_pkt)
        fi
      done
      [[ $dirty == 1 ]] && continue
      ratios+=("$(awk -v a="$cc" -v b="$oc" 'BEGIN { printf "%.4f", a / b }')")
      procs+=("$(awk -v a="$cp" -v b="$op" 'BEGIN { printf "%.4f", a / b }')")
      cpus+=("$cc"); others+=("$oc")
      log "  pair $tries ($key), $transport $payload B: callrelay $cc ns, $other $oc ns: $(fmt "${ratios[-1]}" 2)x"
    done
    SERVER_PID=$relay_pid
    [[ ${#ratios[@]} -eq 0 ]] && { NOTES+=("interleaved pairs ($key), $payload B: no clean pair"); continue; }
    R[$key.n$payload]=${#ratios[@]}
    R[$key.ratio$payload]=$(median "${ratios[@]}")
    R[$key.range$payload]=$(printf '%s\n' "${ratios[@]}" | sort -g |
      awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}')
    R[$key.proc$payload]=$(median "${procs[@]}")
    R[$key.cpu$payload]=$(median "${cpus[@]}"); R[$key.floor$payload]=$(median "${others[@]}")
  done
}

# The forwarder on PAIR_LISTEN beside the server under test (BESIDE_PID).
BESIDE_PID=
start_forwarder_beside() {
  local dir=$WORK/floor-beside
  launch_forwarder $PAIR_LISTEN $PAIR_FLOOR_PORT_MIN "$dir"
  BESIDE_PID=$!
  wait_ready "$dir/stderr" 0 "$BESIDE_PID" || { stop_beside; return 1; }
}
stop_beside() {
  [[ -z $BESIDE_PID ]] && return
  kill "$BESIDE_PID" 2>/dev/null; wait "$BESIDE_PID" 2>/dev/null
  BESIDE_PID=
}

# BENCH_ONLY=udp: callrelay on epoll, on shared relay ports, and the forwarder, in one run.
bench_udp_only() {
  if [[ -n ${CALLRELAY_BIN:-} ]]; then
    log "== callrelay"
    background_check callrelay
    start_callrelay $PORT_MAX || die "callrelay did not start"
    max_runs callrelay udp 160; max_runs callrelay udp 1200
    stop_server
    [[ ${BENCH_SKIP_SHARED:-0} != 1 ]] && bench_callrelay_shared
  fi
  bench_floor
  bench_floor_pairs
  table | grep -E '^\| metric|^\|---|per relayed packet, (160|1200) B|/ floor|dropped|stalls'
  [[ ${#NOTES[@]} -gt 0 ]] && printf -- '- %s\n' "${NOTES[@]}"
}

# --- housekeeping rows (bench_timers) ----------------------------------------------------
source "$ROOT/bench/run_timers.sh"

# --- table ---------------------------------------------------------------------------------
source "$ROOT/bench/run_table.sh"

# --- main ----------------------------------------------------------------------------------
[[ $(nproc) -ge 2 ]] || die "needs at least 2 CPUs (server and generator on separate cores)"
command -v taskset >/dev/null || die "taskset not installed (util-linux)"
WORK=$(mktemp -d /tmp/callrelay-bench.XXXXXX)
build
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[[ $(ulimit -n) -ge 10500 ]] || log "warning: ulimit -n $(ulimit -n) is too low to hold 10k allocations"

nice -n -10 taskset -c $GEN_CPU "$BUILD/bench/bench_echo" --listen "0.0.0.0:${ECHO##*:}" --stats "$WORK/echo.stats" 2>"$WORK/echo.err" &
ECHO_PID=$!
for _ in $(seq 50); do [[ -s $WORK/echo.stats ]] && break; sleep 0.1; done
# An echo peer that could not bind (a leftover one on the port) would leave the counter at 0
# and silently halve every relayed-packet count.
sleep 0.2; kill -0 "$ECHO_PID" 2>/dev/null || die "bench_echo did not start: $(cat "$WORK/echo.err")"

START=$(date +%s)
STREAMS=1
if [[ $ONLY == hold ]]; then
  [[ -n ${CALLRELAY_BIN:-} ]] && { log "== callrelay"; bench_holds callrelay start_callrelay; }
  if command -v turnserver >/dev/null && [[ ${BENCH_SKIP_COTURN:-0} != 1 ]]; then
    log "== coturn"; bench_holds coturn start_coturn
  fi
  table | grep -i 'idle allocation'
  [[ ${#NOTES[@]} -gt 0 ]] && printf -- '- %s\n' "${NOTES[@]}"
  exit 0
fi
[[ $ONLY == udp ]] && { bench_udp_only; exit 0; }
if [[ $ONLY == tls_pairs ]]; then
  make_cert || die "no certificate for the TLS runs"
  bench_tls_pairs
  table | grep -E '^\| metric|^\|---|TLS clients.*interleaved'
  [[ ${#NOTES[@]} -gt 0 ]] && printf -- '- %s\n' "${NOTES[@]}"
  exit 0
fi
if [[ $ONLY == streams ]]; then
  make_cert || die "no certificate for the TLS runs"
  [[ -n ${CALLRELAY_BIN:-} ]] && bench_streams callrelay start_callrelay
  if [[ ${BENCH_SKIP_COTURN:-0} != 1 ]] && command -v turnserver >/dev/null; then
    bench_streams coturn start_coturn
  fi
  bench_tls_pairs
  table | grep -E '^\| metric|^\|---|TCP client|TLS client|paced'
  [[ ${#NOTES[@]} -gt 0 ]] && printf -- '- %s\n' "${NOTES[@]}"
  exit 0
fi
if [[ ${BENCH_SKIP_STREAMS:-0} == 1 ]] || ! make_cert; then
  STREAMS=0; NOTES+=("TCP and TLS client rows not run")
fi
if [[ -n ${CALLRELAY_BIN:-} ]]; then
  bench_turn_server callrelay start_callrelay
  [[ ${BENCH_SKIP_URING:-0} != 1 ]] && bench_callrelay_uring
  [[ ${BENCH_SKIP_SHARED:-0} != 1 ]] && bench_callrelay_shared
  [[ $STREAMS == 1 ]] && bench_streams callrelay start_callrelay
fi
if [[ ${BENCH_SKIP_COTURN:-0} != 1 ]] && command -v turnserver >/dev/null; then
  bench_turn_server coturn start_coturn
  [[ $STREAMS == 1 ]] && bench_streams coturn start_coturn
else
  NOTES+=("coturn: turnserver not run")
fi
bench_floor
bench_floor_pairs
[[ $STREAMS == 1 ]] && bench_tls_pairs
[[ ${BENCH_SKIP_TIMERS:-0} != 1 ]] && bench_timers
# Two workers: clients behind one address against clients on many (bench/shard.sh).
SHARD_ROWS=
if [[ ${BENCH_SKIP_SHARD:-0} != 1 && -n ${CALLRELAY_BIN:-} ]]; then
  SHARD_ROWS=$(BENCH_BUILD_DIR=$BUILD CALLRELAY_BIN=$CALLRELAY_BIN "$ROOT/bench/shard.sh") ||
    NOTES+=("bench/shard.sh failed: the one-address rows are missing or partial")
fi

{
  echo "# Benchmark results"
  echo
  echo "Latest table from \`bench/run.sh\` (callrelay, coturn and the bare forwarder in one run;"
  echo "it builds the Release tools in build-bench and needs coturn, taskset and at least 2 CPUs)."
  echo
  machine
  echo
  table
  echo
  echo "Relayed packets count both directions (client→peer at the echo peer, peer→client at the"
  echo "clients). CPU per packet uses CPU $SERVER_CPU's busy time, so it includes softirq work for"
  echo "packets the server sends; the generator saturates before a good relay does on 2 cores."
  echo "The process-CPU rows count only the server's own threads (on this kernel, without"
  echo "IRQ_TIME_ACCOUNTING, softirq work done in a thread's context is charged to it): they stay"
  echo "right when other work shares CPU $SERVER_CPU, which inflates the busy-time rows."
  echo "Ratios below 1 are better except for packets/s and allocations/s."
  echo "callrelay runs with relay.io auto, which picks the epoll path: one wake-up and epoll_wait for"
  echo "all ready relay sockets, recvmmsg/sendmmsg per relay socket; the relay.io io_uring rows are the same binary on io_uring"
  echo "(multishot receive into provided buffers, sends of all relay sockets in one submit)."
  echo "The relay.multiplex_peers rows: the same binary with shared relay ports, 64 allocations to a"
  echo "port, so the $CLIENTS clients share one relay socket (one wake-up and recvmmsg for all their peers)."
  echo "Client i relays to its own peer address, 127.0.0.<i+1> (one echo socket on 0.0.0.0 answers from"
  echo "each, IP_PKTINFO), for every server and the forwarder alike, so a shared socket can tell whose"
  echo "answer a datagram is."
  echo "The interleaved-pairs rows: callrelay (epoll) and the forwarder run side by side, each on a"
  echo "listen port of its own, and their saturation runs alternate (each first in every other"
  echo "pair), so that the machine's drift falls inside each pair's ratio; the median of the pairs'"
  echo "ratios and their range are shown, and the medians of each side's CPU per packet. The TLS"
  echo "pairs do the same for callrelay and coturn, both with their TLS listeners, coturn on the"
  echo "lower relay ports and callrelay on the upper ones: clients writing a record per frame with"
  echo "callrelay's default (a record per frame); clients packing each write into one record, the"
  echo "same callrelay; both packing (callrelay restarted with tls.records: packed)."
  if [[ $STREAMS == 1 ]]; then
    echo
    echo "TCP and TLS rows: each of the $CLIENTS clients holds one connection to the server (TCP on"
    echo "its UDP port, TLS on ${TLS_LISTEN##*:} with a self-signed RSA 2048 certificate, TLS 1.2 or"
    echo "1.3, no verification) and relays ChannelData (padded to 4 bytes; 160 and 1200 need none)"
    echo "to the same UDP echo peer, $WINDOW frames in flight per client, each refill in one send. TLS"
    echo "clients seal each frame in a record of its own, as browsers (libwebrtc) and pion do, and"
    echo "send a refill's records together, unless a row says they pack a write into one record. The"
    echo "server's leg to the peer is UDP as in the other rows; the generator does the client side's"
    echo "TLS work on CPU $GEN_CPU."
    echo "Negotiated: callrelay $(val callrelay.tls_cipher), coturn $(val coturn.tls_cipher)."
  fi
  if [[ ${BENCH_SKIP_TIMERS:-0} != 1 ]]; then
    echo
    echo "Housekeeping rows (bench/timers): one worker's TurnServer driven in process on CPU"
    echo "$SERVER_CPU as its thread drives it, in real time and in the order work falls due: the held"
    echo "allocations' clients refreshing as clients do (CreatePermission every 240 s, ChannelBind"
    echo "and Refresh every 540 s, after 600 s of that traffic replayed to reach steady state), a"
    echo "flow's ChannelData round trip through the core, and on_timer at the deadlines it returns."
    echo "The core's share only: no sockets (100k relay ports need several relay addresses)."
  fi
  if [[ $HOLD_HUGE -gt 0 ]]; then
    echo
    echo "The $HOLD_HUGE-allocation rows: each generator socket speaks for $HOLD_SOURCES clients, each"
    echo "from its own loopback address (bench_loadgen --source-addresses, IP_PKTINFO), so both"
    echo "sides stay under RLIMIT_NOFILE ($(ulimit -Hn) here); callrelay runs with relay.multiplex_peers"
    echo "($HOLD_PER_PORT allocations to a relay port). coturn keeps a descriptor per allocation: it"
    echo "stops at the limit and answers 508 beyond it, and its RSS there grows with the refused"
    echo "Allocates, so only its 10000 figure is an idle-allocation one."
  fi
  if [[ -n $SHARD_ROWS ]]; then
    echo
    echo "Sharding rows (bench/shard.sh): callrelay with 2 workers, unpinned, generator and echo"
    echo "peer on the same 2 CPUs; $CLIENTS clients from one address (distinct ports) against"
    echo "$CLIENTS from 127.0.0.1-50; median of the runs by CPU per packet."
    echo
    echo "$SHARD_ROWS"
  fi
  if [[ ${#NOTES[@]} -gt 0 ]]; then
    echo
    echo "Problems seen in this run:"
    for n in "${NOTES[@]}"; do echo "- $n"; done
  fi
  echo
  echo "Run took $(( $(date +%s) - START )) s. Raw generator output: $WORK."
} >"$WORK/results.md"

cat "$WORK/results.md"
if [[ $SAVE == 1 ]]; then
  # bench/media.sh's section (media measurement on and off) is kept as it was.
  if [[ -f $ROOT/bench/RESULTS.md ]] && grep -q '^<!-- media-quality-bench -->$' "$ROOT/bench/RESULTS.md"; then
    { echo; sed -n '/^<!-- media-quality-bench -->$/,/^<!-- \/media-quality-bench -->$/p' "$ROOT/bench/RESULTS.md"; } >>"$WORK/results.md"
  fi
  cp "$WORK/results.md" "$ROOT/bench/RESULTS.md"; log "saved bench/RESULTS.md"
fi
