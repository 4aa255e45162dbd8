#!/usr/bin/env bash
# Shared relay ports: callrelay with relay.multiplex_peers: true and allocations_per_port: 4,
# 20 of coturn's turnutils_uclient at once, each with one allocation (-c: no RTCP pair, whose
# EVEN-PORT reservations would keep ports of their own) relaying with channels to a
# turnutils_peer of its own: peers on a shared port are told apart by their address and port,
# so clients sharing a port cannot share one echo peer (the peer would answer all of them from
# one address). Every message must come back, every relayed address must be on 127.0.0.1,
# and the allocations must have shared their ports: about clients/4 distinct relayed ports
# (each worker fills its own shared sockets, so at most one partly filled port per worker more),
# read from the allocation records the server logs when each allocation ends, and from the
# server's UDP sockets in the relay range that `ss` lists while they are open.
source "$(dirname "$0")/../lib/common.sh"

[ "$SERVER_KIND" = callrelay ] || fail "relay.multiplex_peers is callrelay's (CALLRELAY_TEST_SERVER=$SERVER_KIND)"
bin="${CALLRELAY_BIN:?CALLRELAY_BIN must point to the callrelay binary}"

per_port=4
workers=2
# debug: the server logs each shared relay port it opens.
write_callrelay_config '{udp: ["127.0.0.1:0"]}' "log: {level: debug}"
# The shared relay line with the two keys added (one relay key: YAML keys are unique).
sed -i -E "s/^relay: \{ports: \{min: ([0-9]+), max: ([0-9]+)\}\}\$/relay: {ports: {min: \1, max: \2}, multiplex_peers: true, allocations_per_port: $per_port}/" \
  "$WORK_DIR/callrelay.yaml"
grep -q "multiplex_peers: true, allocations_per_port: $per_port" "$WORK_DIR/callrelay.yaml" ||
  fail "could not add relay.multiplex_peers to the test configuration"
grep -qx "workers: $workers" "$WORK_DIR/callrelay.yaml" || fail "the test configuration no longer has workers: $workers"
launch_callrelay "$bin"
SERVER_PORT="$(logged_port udp '127\.0\.0\.1')"
[ -n "$SERVER_PORT" ] && [ "$SERVER_PORT" != 0 ] || fail "callrelay logged no 'listening udp' line"
log "callrelay running (pid $SERVER_PID) on udp 127.0.0.1:$SERVER_PORT with shared relay ports ($per_port per port)"

clients=20
messages=20
peer_pids=()
stop_peers() {
  local pid
  # turnutils_peer ignores SIGINT (stop_pid would wait 5 s for each).
  for pid in "${peer_pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for pid in "${peer_pids[@]}"; do wait "$pid" 2>/dev/null; done
}
trap 'rc=$?; stop_peers; (exit $rc); cleanup' EXIT
peer_ports=()
for i in $(seq 1 "$clients"); do
  port="$("$INTEG_TOOL" free-port --pair)" || fail "no free port pair for turnutils_peer $i"
  turnutils_peer -L 127.0.0.1 -p "$port" >"$WORK_DIR/peer$i.log" 2>&1 &
  peer_pids+=($!)
  peer_ports+=("$port")
done
for port in "${peer_ports[@]}"; do
  "$INTEG_TOOL" wait-echo 127.0.0.1 "$port" 5000 || fail "turnutils_peer on $port did not start"
done
# While the clients run, the UDP sockets of the server (ss names the process of our sockets).
(
  for _ in $(seq 1 100); do
    ss -Hunap state all 2>/dev/null | grep "pid=$SERVER_PID," || true
    sleep 0.1
  done
) >"$WORK_DIR/ss.txt" &
ss_pid=$!
uclient_pids=()
for i in $(seq 1 "$clients"); do
  timeout 60 turnutils_uclient -c -p "$SERVER_PORT" -e 127.0.0.1 -r "${peer_ports[$((i - 1))]}" \
    -W "$TEST_SECRET" -u alice -n "$messages" -m 1 -l 120 127.0.0.1 >"$WORK_DIR/uclient$i.log" 2>&1 &
  uclient_pids+=($!)
done
sent=0
received=0
for i in $(seq 1 "$clients"); do
  wait "${uclient_pids[$((i - 1))]}"
  UCLIENT_RC=$?
  UCLIENT_OUT="$(cat "$WORK_DIR/uclient$i.log")"
  mode="client $i"
  # uclient says why it gave up only in its own output.
  [ "$UCLIENT_RC" -eq 0 ] || { echo "---- uclient $i (exit $UCLIENT_RC), last lines:"; tail -n 15 "$WORK_DIR/uclient$i.log"; } >&2
  check_uclient_result "$messages"
  sent=$((sent + UCLIENT_SENT))
  received=$((received + UCLIENT_RECEIVED))
done
kill "$ss_pid" 2>/dev/null
wait "$ss_pid" 2>/dev/null
assert_server_alive

# Stopping the server ends every allocation uclient left open, each with its record.
stop_pid "$SERVER_PID" callrelay
SERVER_PID=""
relayed="$(grep -oE '"relayed":"[0-9.]+:[0-9]+"' "$SERVER_LOG" | sed -E 's/"relayed":"(.*)"/\1/')"
total="$(echo "$relayed" | grep -c . || true)"
outside="$(echo "$relayed" | grep -vc '^127\.0\.0\.1:' || true)"
[ "$total" -ge "$clients" ] || fail "expected at least $clients allocation records, found $total"
[ "$outside" -eq 0 ] || fail "relayed addresses outside 127.0.0.1: $(echo "$relayed" | grep -v '^127\.0\.0\.1:' | tr '\n' ' ')"
# uclient asks for EVEN-PORT in one of its allocations per client: those keep ports of their
# own; the others share the ports the server logged as shared.
shared_ports="$(grep -oE 'shared relay port [0-9]+ opened' "$SERVER_LOG" | awk '{print $4}' | sort -u)"
opened="$(echo "$shared_ports" | grep -c . || true)"
on_shared=0
dedicated=0
while read -r count port; do
  [ -n "$port" ] || continue
  if echo "$shared_ports" | grep -qx "$port"; then
    on_shared=$((on_shared + count))
    [ "$count" -le "$per_port" ] || fail "shared relay port $port carried $count allocations, more than $per_port"
  else
    dedicated=$((dedicated + 1))
    [ "$count" -eq 1 ] || fail "relay port $port carried $count allocations but was never logged as shared"
  fi
done < <(echo "$relayed" | sed -E 's/.*://' | sort | uniq -c)
# Each worker fills its shared ports before opening another: at most one partly filled port
# per worker, more only where a port closed with its last allocation (uclient ends some of its
# allocations early) before the server stopped.
closed_early="$(sed -n '/SIGINT: stopping now/q;p' "$SERVER_LOG" | grep -cE 'shared relay port [0-9]+ closed' || true)"
lo=$(((on_shared + per_port - 1) / per_port))
hi=$((lo + workers - 1 + closed_early))
log "allocation records: $total; $on_shared on $opened shared ports (expected $lo..$hi), $dedicated on ports of their own"
[ "$on_shared" -ge $((2 * per_port)) ] || fail "only $on_shared allocations on shared ports"
[ "$opened" -ge "$lo" ] && [ "$opened" -le "$hi" ] ||
  fail "$opened shared ports for $on_shared allocations, expected $lo..$hi"
# The relay sockets ss saw: ports of the relay range the server held (the listener is outside).
ss_ports="$(awk '{print $4}' "$WORK_DIR/ss.txt" | sed -E 's/.*://' | awk '$1 >= 61000 && $1 <= 65000' | sort -u | grep -c . || true)"
log "relay ports seen by ss: $ss_ports"
[ "$ss_ports" -gt 0 ] || fail "ss saw no relay socket of the server"
[ "$ss_ports" -le $((opened + dedicated)) ] ||
  fail "ss saw $ss_ports relay sockets, more than the $opened shared and $dedicated dedicated ports"
echo "PASS: $received/$sent messages relayed; $on_shared allocations on $opened shared relay ports ($per_port per port)"
