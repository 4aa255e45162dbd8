#!/usr/bin/env bash
# libnice: two relay-only agents exchange datagrams through the server (TURN REST
# credentials); with a wrong password they must not get a relayed candidate. Argument: how the
# agents reach the server, udp (default) or tcp (TURN over TCP to callrelay's TCP listener; the
# allocations relay over UDP as usual; callrelay only).
source "$(dirname "$0")/../lib/common.sh"
: "${INTEG_NICE:?INTEG_NICE must point to callrelay_integ_nice (run through ctest)}"

transport="${1:-udp}"
messages=50
case "$transport" in
  udp)
    start_server
    port="$SERVER_PORT"
    ;;
  tcp)
    source "$(dirname "$0")/../lib/streams.sh"
    start_stream_server
    port="$TCP_PORT"
    ;;
  *) fail "unknown transport $transport (udp or tcp)" ;;
esac

# tcp_connections: how many TCP connections the server accepted on its TCP listener (debug log).
tcp_connections() {
  grep -cE "$(log_line debug "tcp 127\.0\.0\.1:[0-9]+: connected to 127\.0\.0\.1:$port")" "$SERVER_LOG"
}
# allocation_records: the server's allocation_ended records (one per allocation, at its end;
# the record itself in text format, merged into the line's object in json).
allocation_records() { grep -E '^\{("time":"[^"]*","level":"info",)?"event":"allocation_ended",' "$SERVER_LOG"; }

user="$(($(date +%s) + 3600)):nice"
timeout 60 "$INTEG_NICE" 127.0.0.1 "$port" "$user" "$(mint_password "$user")" "$messages" \
  "$transport"
rc=$?
[ "$rc" -eq 0 ] || fail "libnice relay exchange failed over $transport (exit $rc; 124: hung)"
assert_server_alive

if [ "$transport" = tcp ]; then
  # The program checked that each agent's selected local candidate was allocated on the TCP
  # listener; the server's side: both allocations belonged to TCP connections to that listener
  # and relayed every datagram (the records appear once libnice has released the allocations).
  for _ in $(seq 1 50); do
    [ "$(allocation_records | wc -l)" -ge 2 ] && break
    sleep 0.1
  done
  records="$(allocation_records)"
  [ "$(echo "$records" | grep -c .)" -eq 2 ] ||
    fail "expected 2 allocation records after the exchange, got: $records"
  [ "$(tcp_connections)" -eq 2 ] ||
    fail "expected the 2 agents' TCP connections to the TCP listener, got $(tcp_connections)"
  while read -r record; do
    echo "$record" | grep -qE "\"transport\":\"tcp\",\"client\":\"127\.0\.0\.1:[0-9]+\",\"server\":\"127\.0\.0\.1:$port\"" ||
      fail "an allocation was not made over TCP on the TCP listener: $record"
    to_peer="$(echo "$record" | sed -nE 's/.*"packets_to_peer":([0-9]+).*/\1/p')"
    to_client="$(echo "$record" | sed -nE 's/.*"packets_to_client":([0-9]+).*/\1/p')"
    [ "${to_peer:-0}" -ge "$messages" ] && [ "${to_client:-0}" -ge "$messages" ] ||
      fail "an allocation relayed fewer than $messages packets each way: $record"
  done <<<"$records"
fi

out="$(timeout 60 "$INTEG_NICE" 127.0.0.1 "$port" "$user" wrong-password 5 "$transport" 2>&1)"
rc=$?
[ "$rc" -ne 0 ] || fail "libnice connected with a wrong password"
echo "$out" | grep -q 'gathered no relayed candidate' ||
  fail "wrong password: expected no relayed candidate, got: $(echo "$out" | tail -n 3)"
if [ "$transport" = tcp ]; then
  # Refused by the server, not unreachable: both agents connected again, and got no allocation.
  [ "$(tcp_connections)" -eq 4 ] ||
    fail "wrong password: the agents did not reach the TCP listener ($(tcp_connections) connections in all)"
  [ "$(allocation_records | wc -l)" -eq 2 ] || fail "wrong password: the server made an allocation"
fi
assert_server_alive
echo "PASS: libnice relayed $messages datagrams each way over $transport; wrong password refused"
