#!/usr/bin/env bash
# Several relay addresses of a family: callrelay with relay.bind_ipv4 [127.0.0.2, 127.0.0.3]
# (both on loopback) and coturn's turnutils_uclient with 10 clients relaying through it to
# turnutils_peer. Every message must come back, every relayed address must be one of the two,
# and both must have served allocations (read from the allocation records the server logs
# when each allocation ends, and from the relay sockets `ss` lists while they are open).
source "$(dirname "$0")/../lib/common.sh"

[ "$SERVER_KIND" = callrelay ] || fail "relay.bind_ipv4 lists are callrelay's (CALLRELAY_TEST_SERVER=$SERVER_KIND)"
bin="${CALLRELAY_BIN:?CALLRELAY_BIN must point to the callrelay binary}"
for ip in 127.0.0.2 127.0.0.3; do
  python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$ip', 0))" ||
    fail "$ip is not usable on this host's loopback"
done

write_callrelay_config '{udp: ["127.0.0.1:0"]}' "log: {level: info}"
# The shared relay line with the two addresses added (one relay key: YAML keys are unique).
sed -i -E 's/^relay: \{ports: \{min: ([0-9]+), max: ([0-9]+)\}\}$/relay: {ports: {min: \1, max: \2}, bind_ipv4: [127.0.0.2, 127.0.0.3]}/' \
  "$WORK_DIR/callrelay.yaml"
grep -q 'bind_ipv4: \[127.0.0.2, 127.0.0.3\]' "$WORK_DIR/callrelay.yaml" ||
  fail "could not add relay.bind_ipv4 to the test configuration"
launch_callrelay "$bin"
SERVER_PORT="$(logged_port udp '127\.0\.0\.1')"
[ -n "$SERVER_PORT" ] && [ "$SERVER_PORT" != 0 ] || fail "callrelay logged no 'listening udp' line"
log "callrelay running (pid $SERVER_PID) on udp 127.0.0.1:$SERVER_PORT, relaying on 127.0.0.2 and 127.0.0.3"

start_peer
clients=10
messages=20
# While uclient runs, the relay sockets bound on each address (ss lists the server's sockets).
(
  for _ in $(seq 1 100); do
    ss -Hun state all "src 127.0.0.2 or src 127.0.0.3" 2>/dev/null
    sleep 0.1
  done
) >"$WORK_DIR/ss.txt" &
ss_pid=$!
run_uclient -p "$SERVER_PORT" -e 127.0.0.1 -r "$PEER_PORT" -W "$TEST_SECRET" -u alice \
  -n "$messages" -m "$clients" -l 120 127.0.0.1
kill "$ss_pid" 2>/dev/null
wait "$ss_pid" 2>/dev/null
echo "$UCLIENT_OUT" | tail -n 8
check_uclient_result $((clients * messages))
assert_server_alive

# Stopping the server ends every allocation uclient left open, each with its record.
stop_pid "$SERVER_PID" callrelay
SERVER_PID=""
relayed="$(grep -oE '"relayed":"[0-9.]+:[0-9]+"' "$SERVER_LOG" | sed -E 's/"relayed":"([0-9.]+):.*/\1/')"
total="$(echo "$relayed" | grep -c . || true)"
on2="$(echo "$relayed" | grep -cx '127\.0\.0\.2' || true)"
on3="$(echo "$relayed" | grep -cx '127\.0\.0\.3' || true)"
log "allocation records: $total (127.0.0.2: $on2, 127.0.0.3: $on3)"
[ "$total" -ge "$clients" ] || fail "expected at least $clients allocation records, found $total"
[ "$((on2 + on3))" -eq "$total" ] || fail "relayed addresses outside the two configured: $(echo "$relayed" | sort -u | tr '\n' ' ')"
[ "$on2" -gt 0 ] || fail "no allocation was relayed on 127.0.0.2"
[ "$on3" -gt 0 ] || fail "no allocation was relayed on 127.0.0.3"
ss2="$(grep -c '127\.0\.0\.2:' "$WORK_DIR/ss.txt" || true)"
ss3="$(grep -c '127\.0\.0\.3:' "$WORK_DIR/ss.txt" || true)"
log "relay sockets seen by ss: 127.0.0.2: $ss2, 127.0.0.3: $ss3"
[ "$ss2" -gt 0 ] && [ "$ss3" -gt 0 ] || fail "ss did not see relay sockets on both addresses"
echo "PASS: $UCLIENT_RECEIVED/$UCLIENT_SENT messages relayed; allocations on 127.0.0.2: $on2, on 127.0.0.3: $on3"
