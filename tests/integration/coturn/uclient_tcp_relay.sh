#!/usr/bin/env bash
# RFC 6062 TCP allocations with coturn's turnutils_uclient -T: each client allocates a TCP
# relay (REQUESTED-TRANSPORT TCP), and the clients are paired (-y, implied by -T): one sends
# Connect to its partner's relayed address, so callrelay connects one TCP relay to the other;
# the partner's relay accepts it and sends a ConnectionAttempt indication; both clients open
# a data connection with ConnectionBind and their messages then flow as raw bytes through two
# spliced TCP connections. Zero loss required, and the server log must show every step.
# Modes:
#   tcp        control and data connections over TCP, 2 clients (one pair)
#   tls        over TLS, 4 clients (two pairs)
#   tcp-many   over TCP, 10 clients (five pairs) at once
#   tcp-ipv6   clients on [::1] over TCP asking for IPv6 relays (-x): the relays connect to
#              each other over IPv6
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/streams.sh"

mode="${1:?mode: tcp | tls | tcp-many | tcp-ipv6}"
messages=20
case "$mode" in
  tcp) flags=(-T); clients=2 ;;
  tls) flags=(-T -S); clients=4 ;;
  tcp-many) flags=(-T); clients=10 ;;
  tcp-ipv6) flags=(-T -x); clients=2 ;;
  *) fail "unknown mode $mode" ;;
esac
port_var=TCP_PORT
transport=tcp
[[ "$mode" == tls* ]] && port_var=TLS_PORT && transport=tls

host=127.0.0.1
ip_re='127\.0\.0\.1'
if [ "$mode" = tcp-ipv6 ]; then
  write_callrelay_config '{udp: ["[::1]:0"], tcp: ["[::1]:0"]}' \
    "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-debug}}"
  launch_callrelay "${CALLRELAY_BIN:?}"
  TCP_PORT="$(logged_port tcp '\[::1\]')"
  [ -n "$TCP_PORT" ] || fail "callrelay logged no 'listening tcp [::1]:PORT' line"
  host=::1
  ip_re='\[::1\]'
else
  start_stream_server
fi
port="${!port_var}"
run_uclient "${flags[@]}" -p "$port" -W "$TEST_SECRET" -u alice -n "$messages" -m "$clients" \
  -l 120 "$host"
echo "$UCLIENT_OUT" | tail -n 8
check_uclient_result $((clients * messages))

count() { grep -cE "$1" "$SERVER_LOG"; }
# Peer connections made by Connect, and accepted by a partner's relay (ConnectionAttempt);
# uclient decides how many per pair, so the counts are checked against each other.
made="$(count "$(log_line debug "tcp relay: connected to peer $ip_re:[0-9]+ \\(connection [0-9]+\\)")")"
accepted="$(count "$(log_line debug "tcp relay $ip_re:[0-9]+: peer $ip_re:[0-9]+ connected \\(connection [0-9]+\\)")")"
bound="$(count "$(log_line debug "tcp relay: connection [0-9]+ bound to $transport $ip_re:[0-9]+ .*")")"
log "peer connections: $made made by Connect, $accepted accepted; $bound client data connections bound"
[ "$made" -ge $((clients / 2)) ] || fail "expected at least $((clients / 2)) Connect-made peer connections"
[ "$accepted" -eq "$made" ] || fail "$made connections made but $accepted accepted by a TCP relay"
# Every peer connection, at both ends, got its client data connection (ConnectionBind).
[ "$bound" -eq $((made + accepted)) ] || fail "$bound $transport data connections bound, expected $((made + accepted))"
# Each client's messages crossed its TCP allocation: the allocation log counts them.
relayed="$(grep -cE '"event":"allocation_ended".*"transport":"'"$transport"'".*"bytes_to_peer":[1-9][0-9]*,.*"bytes_to_client":[1-9]' "$SERVER_LOG")"
[ "$relayed" -eq "$clients" ] || fail "expected $clients TCP allocations with bytes both ways, found $relayed"
assert_server_alive
echo "PASS: $mode: $UCLIENT_RECEIVED/$UCLIENT_SENT messages through $made Connect-made and $accepted accepted RFC 6062 peer connections"
