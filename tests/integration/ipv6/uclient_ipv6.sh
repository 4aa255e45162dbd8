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
  write_callrelay_config '{udp: ["127.0.0.1:0", "[::1]:0"]}' \
    "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-info}}"
  launch_callrelay "$bin"
  PORT_V4="$(logged_port udp '127\.0\.0\.1')"
  PORT_V6="$(logged_port udp '\[::1\]')"
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

run_uclient "${flags[@]}" -p "$port" -e "$peer_ip" -r "$PEER_PORT" \
  -W "$TEST_SECRET" -u alice -n "$messages" -m 1 -l 120 "$server_ip"
echo "$UCLIENT_OUT" | grep -E 'Received relay addr|start_mclient: tot_|Total lost'
check_uclient_result "$messages"

# The relayed address must be of the family asked for (uclient prints it with -v).
case "$mode" in
  v6 | v6-send | v4-to-v6) want='IPv6\. Received relay addr: ::1:[0-9]+' ;;
  v6-to-v4) want='IPv4\. Received relay addr: 127\.0\.0\.1:[0-9]+' ;;
esac
echo "$UCLIENT_OUT" | grep -qE "$want" || fail "uclient got no relayed address matching '$want'"
if echo "$UCLIENT_OUT" | grep -E 'Received relay addr' | grep -vqE "$want"; then
  fail "uclient got a relayed address of the wrong family"
fi
assert_server_alive
echo "PASS: $mode: $UCLIENT_RECEIVED/$UCLIENT_SENT messages relayed both ways"
