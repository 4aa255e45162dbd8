#!/usr/bin/env bash
# libnice: two relay-only agents exchange datagrams through the server (TURN REST
# credentials); with a wrong password they must not get a relayed candidate.
source "$(dirname "$0")/../lib/common.sh"
: "${INTEG_NICE:?INTEG_NICE must point to callrelay_integ_nice (run through ctest)}"

start_server
user="$(($(date +%s) + 3600)):nice"
timeout 60 "$INTEG_NICE" 127.0.0.1 "$SERVER_PORT" "$user" "$(mint_password "$user")" 50
rc=$?
[ "$rc" -eq 0 ] || fail "libnice relay exchange failed (exit $rc; 124: hung)"
assert_server_alive

out="$(timeout 60 "$INTEG_NICE" 127.0.0.1 "$SERVER_PORT" "$user" wrong-password 5 2>&1)"
rc=$?
[ "$rc" -ne 0 ] || fail "libnice connected with a wrong password"
echo "$out" | grep -q 'gathered no relayed candidate' ||
  fail "wrong password: expected no relayed candidate, got: $(echo "$out" | tail -n 3)"
assert_server_alive
echo "PASS: libnice relayed 50 datagrams each way; wrong password refused"
