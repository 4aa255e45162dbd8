#!/usr/bin/env bash
# A dual-stack allocation (RFC 8656 ADDITIONAL-ADDRESS-FAMILY) against the real server listening
# on 127.0.0.1 only: an IPv4 client gets an IPv4 and an IPv6 relayed address (relay/net binds
# the IPv6 one on [::1], the loopback of the family it was not reached on), relays Send/Data
# indications to a turnutils_peer echo on 127.0.0.1 and one on [::1] through the relay of each
# peer's family, deletes the IPv6 half with a Refresh carrying REQUESTED-ADDRESS-FAMILY, and
# then gets 443 for an IPv6 permission (callrelay_integ_tool dual checks every step).
source "$(dirname "$0")/../lib/common.sh"

[ "$SERVER_KIND" = callrelay ] || fail "the IPv6 tests run against callrelay only"
python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))' ||
  fail "this host cannot bind [::1] (IPv6 disabled?)"

start_server
start_peer  # IPv4 echo: PEER_PORT, PEER_PID (stopped by common.sh)
PEER4_PORT="$PEER_PORT"
PEER6_PORT="$("$INTEG_TOOL" free-port --pair)" || fail "no free port pair for the IPv6 peer"
turnutils_peer -L ::1 -p "$PEER6_PORT" >"$WORK_DIR/peer6.log" 2>&1 &
PEER6_PID=$!
trap 'rc=$?; stop_pid "$PEER6_PID" turnutils_peer6; (exit $rc); cleanup' EXIT  # keeps the exit status
"$INTEG_TOOL" wait-echo ::1 "$PEER6_PORT" 5000 || fail "turnutils_peer did not start on [::1]"

user="$(($(date +%s) + 3600)):dual"
out="$(timeout 60 "$INTEG_TOOL" dual 127.0.0.1 "$SERVER_PORT" "$PEER4_PORT" "$PEER6_PORT" "$user" \
  "$(mint_password "$user")" 2>&1)"
rc=$?
echo "$out"
[ "$rc" -ne 124 ] || fail "callrelay_integ_tool dual timed out after 60 s"
[ "$rc" -eq 0 ] || fail "the dual-stack exchange failed (exit $rc)"
echo "$out" | grep -qx 'PASS dual allocation' || fail "no PASS line from callrelay_integ_tool dual"
assert_server_alive
echo "PASS: dual allocation: both families relayed, IPv6 half deleted, 443 after"
