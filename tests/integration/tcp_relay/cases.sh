#!/usr/bin/env bash
# RFC 6062 TCP allocations at the socket level, for what turnutils_uclient -T does not exercise
# (coturn/uclient_tcp_relay.sh covers the relay-to-relay happy path). callrelay_integ_tool
# tcp-relay runs each case with its own allocation and its own peers (plain sockets on
# 127.0.0.1) and checks every step; see tools/tcp_relay.hpp for what each case asserts:
#   outbound        Connect: the peer sees the relayed address as source; 3000 peer bytes sent
#                   before the ConnectionBind come first, then 1 MiB each way (TCP and TLS)
#   close           peer close -> client reads the rest then EOF, and the reverse
#   connect-errors  447, 400, 446
#   inbound         no permission: closed, no ConnectionAttempt; with one: ConnectionAttempt
#                   naming the peer, 100 KiB peer bytes before the ConnectionBind (more than
#                   the server keeps), then bytes both ways (TCP and TLS)
#   bind-errors     400 unknown CONNECTION-ID, 441 another user, 400 on the control connection
#                   and for a bound connection
#   control-close   the control connection's close ends the data connections and the relay port
#   udp-allocate    REQUESTED-TRANSPORT TCP over UDP: 400
# The server's debug log must also show the early peer bytes were held for the ConnectionBind
# (not merely left in the kernel) for each outbound and inbound connection the tool names.
# Everything runs against one server (start_stream_server: UDP, TCP and TLS listeners) in a few
# seconds; no case waits for the 30 s ConnectionBind timer.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/streams.sh"

start_stream_server

user="$(($(date +%s) + 3600)):tcprelay"
password="$(mint_password "$user")"
other="$(($(date +%s) + 3600)):mallory"
other_password="$(mint_password "$other")"

OUT_ALL=""
FAILED=()
# run_case CASE TRANSPORT PORT [ARG...]: one tool run, which must print its PASS line. A failed
# case is noted and the next one runs (the report then names every failing case); a server that
# died ends the test at once.
run_case() {
  local name="$1" transport="$2" port="$3" out rc
  shift 3
  out="$(timeout 30 "$INTEG_TOOL" tcp-relay "$name" "$transport" 127.0.0.1 "$port" "$user" \
    "$password" "$@" 2>&1)"
  rc=$?
  echo "$out"
  if [ "$rc" -eq 124 ]; then
    FAILED+=("$name/$transport (no result within 30 s)")
  elif [ "$rc" -ne 0 ] || ! echo "$out" | grep -qx "PASS tcp-relay $name over $transport"; then
    FAILED+=("$name/$transport")
  fi
  assert_server_alive
  OUT_ALL+="$out"$'\n'
}

run_case outbound tcp "$TCP_PORT"
run_case outbound tls "$TLS_PORT"
run_case close tcp "$TCP_PORT"
run_case connect-errors tcp "$TCP_PORT"
run_case inbound tcp "$TCP_PORT"
run_case inbound tls "$TLS_PORT"
run_case bind-errors tcp "$TCP_PORT" "$other" "$other_password"
run_case control-close tcp "$TCP_PORT"
run_case udp-allocate udp "$SERVER_PORT"
[ "${#FAILED[@]}" -eq 0 ] || fail "failed cases: ${FAILED[*]}"

# Each connection the tool named got its early bytes through the server's pre-bind buffer
# (relay/net logs the count at the bind): 3000 for outbound, 64 KiB (all it keeps; the rest
# waited in TCP flow control) for inbound. The tool gave the server 200-300 ms to read them.
named="$(echo "$OUT_ALL" | sed -nE 's/^connection-id ([0-9]+) buffered ([0-9]+)(,.*)?$/\1:\2/p')"
[ "$(echo "$named" | wc -w)" -eq 4 ] || fail "expected 4 connection-id lines, got: $named"
for entry in $named; do
  id="${entry%%:*}" buffered="${entry##*:}"
  grep -qE "$(log_line debug "tcp relay: connection $id bound to (tcp|tls) 127\.0\.0\.1:[0-9]+ \($buffered bytes buffered\)")" \
    "$SERVER_LOG" || fail "the server log does not show connection $id bound with $buffered bytes buffered"
done
assert_server_alive
echo "PASS: RFC 6062 cases: outbound and inbound (tcp, tls), close, connect and bind errors, control close, UDP refusal"
