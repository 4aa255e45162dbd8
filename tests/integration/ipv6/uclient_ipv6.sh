#!/usr/bin/env bash
# IPv6 and mixed-family relaying (RFC 6156 as updated by RFC 8656) with coturn's
# turnutils_uclient and turnutils_peer, the server listening on 127.0.0.1 and [::1]. Modes:
#   v6          IPv6 client on [::1], IPv6 relay (-x: REQUESTED-ADDRESS-FAMILY IPv6), IPv6 peer;
#               ChannelBind + ChannelData
#   v6-send     the same with CreatePermission + Send/Data indications (-s)
#   v4-to-v6    IPv4 client on 127.0.0.1 asking for an IPv6 relay (-x), IPv6 peer on [::1]
#   v6-to-v4    IPv6 client on [::1], default (IPv4) relay, IPv4 peer on 127.0.0.1
# The test fails unless every message sent came back (uclient's summary is parsed, as in
# coturn/uclient.sh).
source "$(dirname "$0")/../lib/common.sh"

mode="${1:?mode: v6 | v6-send | v4-to-v6 | v6-to-v4}"
messages=20
flags=(-c -v)  # -v: uclient prints "IPvN. Received relay addr: ADDR:PORT"
case "$mode" in
  v6) server_ip=::1 peer_ip=::1 flags+=(-x) ;;
  v6-send) server_ip=::1 peer_ip=::1 flags+=(-x -s) ;;
  v4-to-v6) server_ip=127.0.0.1 peer_ip=::1 flags+=(-x) ;;
  v6-to-v4) server_ip=::1 peer_ip=127.0.0.1 ;;
  *) fail "unknown mode $mode" ;;
esac

# The server with one UDP listener per family (common.sh's start_callrelay listens on IPv4).
start_dual_listener_server() {
  local bin="${CALLRELAY_BIN:-}"
  [ -x "$bin" ] || fail "callrelay binary not found at '$bin' (build the callrelay target)"
  mkdir -p "$WORK_DIR/state"
  cat >"$WORK_DIR/callrelay.yaml" <<EOF
listen: {udp: ["127.0.0.1:0", "[::1]:0"]}
relay: {ports: {min: 61000, max: 65000}}
workers: 2
state_dir: $WORK_DIR/state
realm: $TEST_REALM
auth: {secrets: ["$TEST_SECRET"], separator: ":"}
peers: {allow: ["127.0.0.0/8", "::1/128"]}   # loopback peers: test config only
log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-info}}
EOF
  "$bin" --config "$WORK_DIR/callrelay.yaml" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  wait_for_log '^ready$' 10 || fail "callrelay did not log 'ready' within 10 s"
  PORT_V4="$(sed -nE 's/^listening udp 127\.0\.0\.1:([0-9]+)$/\1/p' "$SERVER_LOG" | head -n1)"
  PORT_V6="$(sed -nE 's/^listening udp \[::1\]:([0-9]+)$/\1/p' "$SERVER_LOG" | head -n1)"
  [ -n "$PORT_V4" ] && [ -n "$PORT_V6" ] || fail "callrelay logged no listener for 127.0.0.1 and [::1]"
  log "callrelay running (pid $SERVER_PID) on udp 127.0.0.1:$PORT_V4 and [::1]:$PORT_V6"
}

start_peer_on() {
  PEER_PORT="$("$INTEG_TOOL" free-port --pair)" || fail "no free port pair for turnutils_peer"
  turnutils_peer -L "$1" -p "$PEER_PORT" >"$WORK_DIR/peer.log" 2>&1 &
  PEER_PID=$!
  "$INTEG_TOOL" wait-echo "$1" "$PEER_PORT" 5000 || fail "turnutils_peer did not start on $1"
}

[ "$SERVER_KIND" = callrelay ] || fail "the IPv6 tests run against callrelay only"
python3 - <<'EOF' || fail "this host cannot bind [::1] (IPv6 disabled?)"
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::1", 0))
EOF

start_dual_listener_server
start_peer_on "$peer_ip"
port="$PORT_V4"
[ "$server_ip" = ::1 ] && port="$PORT_V6"

out="$(timeout 60 turnutils_uclient "${flags[@]}" -p "$port" -e "$peer_ip" -r "$PEER_PORT" \
  -W "$TEST_SECRET" -u alice -n "$messages" -m 1 -l 120 "$server_ip" 2>&1)"
rc=$?
echo "$out" | grep -E 'Received relay addr|start_mclient: tot_|Total lost' 
[ "$rc" -ne 124 ] || fail "turnutils_uclient timed out after 60 s"
[ "$rc" -eq 0 ] || fail "turnutils_uclient exited with $rc"

summary="$(echo "$out" | grep -E 'start_mclient: tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+$' | tail -n1)"
[ -n "$summary" ] || fail "no send/receive summary in turnutils_uclient output"
sent="$(echo "$summary" | sed -E 's/.*tot_send_msgs=([0-9]+).*/\1/')"
received="$(echo "$summary" | sed -E 's/.*tot_recv_msgs=([0-9]+).*/\1/')"
lost="$(echo "$out" | sed -nE 's/.*Total lost packets ([0-9]+) .*/\1/p' | tail -n1)"
log "mode=$mode sent=$sent received=$received lost=${lost:-?} expected=$messages"
[ "$sent" -eq "$messages" ] || fail "uclient sent $sent messages, expected $messages"
[ "$received" -eq "$sent" ] || fail "uclient received $received of $sent relayed messages"
[ "${lost:-x}" = 0 ] || fail "uclient reports ${lost:-unknown} lost packets"

# The relayed address must be of the family asked for (uclient prints it with -v).
case "$mode" in
  v6 | v6-send | v4-to-v6) want='IPv6\. Received relay addr: ::1:[0-9]+' ;;
  v6-to-v4) want='IPv4\. Received relay addr: 127\.0\.0\.1:[0-9]+' ;;
esac
echo "$out" | grep -qE "$want" || fail "uclient got no relayed address matching '$want'"
if echo "$out" | grep -E 'Received relay addr' | grep -vqE "$want"; then
  fail "uclient got a relayed address of the wrong family"
fi
assert_server_alive
echo "PASS: $mode: $received/$sent messages relayed both ways"
