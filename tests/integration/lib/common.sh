# Shared harness for the integration test scripts (sourced, bash).
#
# start_server   starts the server under test on a loopback port chosen by the kernel and sets
#                SERVER_PORT, SERVER_PID, SERVER_LOG. CALLRELAY_TEST_SERVER selects it:
#                "callrelay" (default; binary from CALLRELAY_BIN) or "coturn" (Debian turnserver,
#                used to validate the harness itself).
# start_peer     starts turnutils_peer (UDP echo) on a free port pair and sets PEER_PORT.
# write_callrelay_config, launch_callrelay, logged_port
#                building blocks for scripts that start callrelay with their own listeners.
# run_uclient, check_uclient_result
#                run turnutils_uclient and fail unless every message came back.
# log_line       an ERE for a server log line of a level and message, in either log format.
# CALLRELAY_TEST_LOG_FORMAT=json (scripts/test.sh sets it for the sanitizer stage) makes every
# callrelay these helpers configure log JSON lines, and fails the test when any line of the
# server log is not one JSON object (lib/check_json_log.py).
# On exit (success or failure) everything started here is killed and the server log is
# printed if the test failed. Every client must run under `timeout`.

set -u
set -o pipefail

TEST_SECRET="testsecret"
TEST_REALM="callrelay"
WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/callrelay-integ.XXXXXX")"
SERVER_PID=""
PEER_PID=""
SERVER_LOG="$WORK_DIR/server.log"
SERVER_KIND="${CALLRELAY_TEST_SERVER:-callrelay}"
LOG_FORMAT="${CALLRELAY_TEST_LOG_FORMAT:-text}"
LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

: "${INTEG_TOOL:?INTEG_TOOL must point to callrelay_integ_tool (run through ctest)}"

stop_pid() {
  local pid="$1" name="$2"
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  # SIGINT: callrelay stops at once (SIGTERM would drain, waiting for live allocations); the
  # clients and coturn stop on it too.
  kill -INT "$pid" 2>/dev/null
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored SIGINT for 5 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

cleanup() {
  local rc=$?
  stop_pid "$PEER_PID" turnutils_peer
  stop_pid "$SERVER_PID" "$SERVER_KIND"
  if [ -f "$SERVER_LOG" ] && grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SERVER_LOG"; then
    echo "FAIL: sanitizer report in the server log" >&2
    rc=1
  fi
  if [ "$LOG_FORMAT" = json ] && [ "$SERVER_KIND" = callrelay ] && [ -f "$SERVER_LOG" ] &&
    ! python3 "$LIB_DIR/check_json_log.py" "$SERVER_LOG"; then
    echo "FAIL: a server log line is not one JSON object (log.format: json)" >&2
    rc=1
  fi
  if [ "$rc" -ne 0 ] && [ -f "$SERVER_LOG" ]; then
    echo "---- server log (last 80 lines): $SERVER_LOG ----" >&2
    tail -n 80 "$SERVER_LOG" >&2
  fi
  rm -rf "$WORK_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# write_callrelay_config LISTEN [LINE...]: $WORK_DIR/callrelay.yaml with `listen: LISTEN`, the
# settings every test server shares (relay ports, state dir, test realm and secret, loopback
# peers, an HTTP listener on a free port: never the default 9641, tests run side by side) and
# the extra LINEs.
write_callrelay_config() {
  local listen="$1"
  shift
  mkdir -p "$WORK_DIR/state"
  {
    echo "listen: $listen"
    cat <<EOF
relay: {ports: {min: 61000, max: 65000}}
workers: 2
state_dir: $WORK_DIR/state
realm: $TEST_REALM
auth: {secrets: ["$TEST_SECRET"], separator: ":"}
peers: {allow: ["127.0.0.0/8", "::1/128"]}   # loopback peers: test config only
http: {listen: "127.0.0.1:0"}
EOF
    printf '%s\n' "$@"
  } >"$WORK_DIR/callrelay.yaml"
  apply_log_format "$WORK_DIR/callrelay.yaml"
}

# apply_log_format FILE: with CALLRELAY_TEST_LOG_FORMAT=json, adds `format: json` to the
# config's one-line `log: {...}` mapping (or adds one).
apply_log_format() {
  [ "$LOG_FORMAT" = json ] || return 0
  if grep -qE '^log: \{' "$1"; then
    sed -i -E 's/^log: \{(.*)\}[[:space:]]*$/log: {\1, format: json}/' "$1"
  else
    echo 'log: {format: json}' >>"$1"
  fi
}

# log_line LEVEL MESSAGE_ERE: an ERE matching a server log line at LEVEL (error, warn, info,
# debug) whose whole message matches MESSAGE_ERE, in either log format: text ("warning: MSG",
# "debug: MSG", "error: MSG", plain "MSG" at info) or json ({"level":"warn",...,"message":"MSG"}).
log_line() {
  local prefix=""
  case "$1" in
    error) prefix='error: ' ;;
    warn) prefix='warning: ' ;;
    debug) prefix='debug: ' ;;
  esac
  printf '(^%s%s$|"level":"%s",.*"message":"%s"\}$)' "$prefix" "$2" "$1" "$2"
}

# launch_callrelay BIN: runs BIN on $WORK_DIR/callrelay.yaml (output in SERVER_LOG), sets
# SERVER_PID and waits until it logs 'ready'.
launch_callrelay() {
  "$1" --config "$WORK_DIR/callrelay.yaml" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  wait_for_log "$(log_line info ready)" 10 || fail "callrelay did not log 'ready' within 10 s"
}

# logged_port PROTO ADDRESS_REGEX: the port of callrelay's first 'listening PROTO ADDRESS:PORT'
# log line, text or json (empty if none).
logged_port() {
  sed -nE "s/^(.*\"message\":\")?listening $1 $2:([0-9]+)(\"\})?\$/\2/p" "$SERVER_LOG" | head -n1
}

start_callrelay() {
  local bin="${CALLRELAY_BIN:-}"
  [ -n "$bin" ] || fail "CALLRELAY_BIN is not set: the callrelay target was not configured (or set CALLRELAY_TEST_SERVER=coturn)"
  [ -x "$bin" ] || fail "callrelay binary not found at $bin (build the callrelay target)"
  write_callrelay_config '{udp: ["127.0.0.1:0"]}' \
    "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-info}}"
  launch_callrelay "$bin"
  SERVER_PORT="$(logged_port udp '127\.0\.0\.1')"
  [ -n "$SERVER_PORT" ] && [ "$SERVER_PORT" != 0 ] ||
    fail "callrelay logged no 'listening udp 127.0.0.1:PORT' line"
}

start_coturn() {
  SERVER_PORT="$("$INTEG_TOOL" free-port)" || fail "no free port"
  turnserver -n --listening-ip=127.0.0.1 --listening-port="$SERVER_PORT" --no-tcp \
    --relay-ip=127.0.0.1 --min-port=61000 --max-port=65000 --use-auth-secret \
    --static-auth-secret="$TEST_SECRET" --realm="$TEST_REALM" --allow-loopback-peers \
    --no-cli --no-tls --no-dtls --relay-threads=2 --pidfile="$WORK_DIR/turnserver.pid" \
    --userdb="$WORK_DIR/turndb" --log-file=stdout --simple-log --verbose >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  wait_for_log "UDP listener opened on: 127.0.0.1:$SERVER_PORT" 10 ||
    fail "turnserver did not open its UDP listener within 10 s"
}

# wait_for_log REGEX SECONDS: true once the server log matches; false on timeout or exit.
wait_for_log() {
  local pattern="$1" seconds="$2" i
  for i in $(seq 1 $((seconds * 10))); do
    grep -qE "$pattern" "$SERVER_LOG" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || {
      log "server exited during startup"
      return 1
    }
    sleep 0.1
  done
  return 1
}

start_server() {
  case "$SERVER_KIND" in
    callrelay) start_callrelay ;;
    coturn) start_coturn ;;
    *) fail "unknown CALLRELAY_TEST_SERVER '$SERVER_KIND' (callrelay or coturn)" ;;
  esac
  log "$SERVER_KIND running (pid $SERVER_PID) on udp 127.0.0.1:$SERVER_PORT"
}

# Fails the test if the server died (a crash is a failure even if clients passed).
assert_server_alive() {
  kill -0 "$SERVER_PID" 2>/dev/null || {
    wait "$SERVER_PID"
    fail "$SERVER_KIND is no longer running (exit status $?)"
  }
}

start_peer() {
  PEER_PORT="$("$INTEG_TOOL" free-port --pair)" || fail "no free port pair for turnutils_peer"
  turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$WORK_DIR/peer.log" 2>&1 &
  PEER_PID=$!
  "$INTEG_TOOL" wait-echo 127.0.0.1 "$PEER_PORT" 5000 || fail "turnutils_peer did not start"
}

# run_uclient ARG...: turnutils_uclient ARG... under a 60 s timeout; sets UCLIENT_OUT (its
# output) and UCLIENT_RC (its exit status).
run_uclient() {
  UCLIENT_OUT="$(timeout 60 turnutils_uclient "$@" 2>&1)"
  UCLIENT_RC=$?
}

# check_uclient_result EXPECTED: fails unless run_uclient's turnutils_uclient exited 0, sent
# EXPECTED messages, got every one back and reports no lost packets (uclient exits 0 even on
# 100% loss, so its summary is parsed); sets UCLIENT_SENT and UCLIENT_RECEIVED.
check_uclient_result() {
  local expected="$1" lost
  read_uclient_summary
  lost="$(echo "$UCLIENT_OUT" | sed -nE 's/.*Total lost packets ([0-9]+) .*/\1/p' | tail -n1)"
  log "mode=${mode:-} sent=$UCLIENT_SENT received=$UCLIENT_RECEIVED lost=${lost:-?} expected=$expected"
  [ "$UCLIENT_SENT" -eq "$expected" ] || fail "uclient sent $UCLIENT_SENT messages, expected $expected"
  [ "$UCLIENT_RECEIVED" -eq "$UCLIENT_SENT" ] || fail "uclient received $UCLIENT_RECEIVED of $UCLIENT_SENT relayed messages"
  [ "${lost:-x}" = 0 ] || fail "uclient reports ${lost:-unknown} lost packets"
}

# read_uclient_summary: fails unless run_uclient's turnutils_uclient exited 0 with its
# send/receive summary; sets UCLIENT_SENT and UCLIENT_RECEIVED from it.
read_uclient_summary() {
  local summary
  [ "$UCLIENT_RC" -ne 124 ] || fail "turnutils_uclient timed out after 60 s"
  [ "$UCLIENT_RC" -eq 0 ] || fail "turnutils_uclient exited with $UCLIENT_RC"
  summary="$(echo "$UCLIENT_OUT" | grep -E 'start_mclient: tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+$' | tail -n1)"
  [ -n "$summary" ] || fail "no send/receive summary in turnutils_uclient output"
  UCLIENT_SENT="$(echo "$summary" | sed -E 's/.*tot_send_msgs=([0-9]+).*/\1/')"
  UCLIENT_RECEIVED="$(echo "$summary" | sed -E 's/.*tot_recv_msgs=([0-9]+).*/\1/')"
}

# mint_password USERNAME: the TURN REST password for USERNAME with the test secret.
mint_password() { "$INTEG_TOOL" mint "$TEST_SECRET" "$1"; }
