#!/usr/bin/env bash
# coturn's turnutils_stunclient gets a Binding success with our reflexive address.
source "$(dirname "$0")/../lib/common.sh"

start_server
out="$(timeout 10 turnutils_stunclient -p "$SERVER_PORT" 127.0.0.1 2>&1)"
rc=$?
echo "$out"
[ "$rc" -ne 124 ] || fail "turnutils_stunclient got no answer within 10 s"
[ "$rc" -eq 0 ] || fail "turnutils_stunclient exited with $rc"
echo "$out" | grep -qE 'UDP reflexive addr: 127\.0\.0\.1:[0-9]+' ||
  fail "no 'UDP reflexive addr: 127.0.0.1:PORT' in turnutils_stunclient output"
assert_server_alive
echo "PASS: Binding answered"
