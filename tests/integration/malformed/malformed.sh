#!/usr/bin/env bash
# Malformed datagrams (truncated, garbage, overrunning lengths, 64 KiB) must be dropped or get
# an error response; afterwards the server still answers Binding and still runs.
source "$(dirname "$0")/../lib/common.sh"

start_server
# coturn answers a Binding whose last attribute overruns the message with a success response
# (a leniency callrelay must not share); in coturn mode such answers are reported, not failed.
if [ "$SERVER_KIND" = coturn ]; then export INTEG_MALFORMED_LENIENT=1; fi
# Three runs from three source ports, so SO_REUSEPORT spreads them over the workers.
for run in 1 2 3; do
  timeout 60 "$INTEG_TOOL" malformed 127.0.0.1 "$SERVER_PORT" || fail "malformed battery run $run failed"
  assert_server_alive
done
assert_server_alive
out="$(timeout 10 turnutils_stunclient -p "$SERVER_PORT" 127.0.0.1 2>&1)" ||
  fail "turnutils_stunclient got no Binding answer after the battery: $out"
echo "$out" | grep -qE 'UDP reflexive addr: 127\.0\.0\.1:[0-9]+' ||
  fail "no reflexive address after the battery: $out"
assert_server_alive
echo "PASS: server survived the malformed battery and still answers Binding"
