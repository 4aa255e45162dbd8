#!/usr/bin/env bash
# Bad TURN REST credentials are refused quickly (the server answers, the client gives up), while
# a good credential on the same server works: wrong secret, expired timestamp, wrong user's
# password. Send indications (-s) keep this test about auth only, independent of channels.
source "$(dirname "$0")/../lib/common.sh"

start_server
start_peer

# uclient_try NAME ARGS...: runs one allocation attempt; sets OUT, RC and SECONDS_TAKEN.
uclient_try() {
  local name="$1" start
  shift
  start=$(date +%s)
  OUT="$(timeout 30 turnutils_uclient -v -s -c -p "$SERVER_PORT" -e 127.0.0.1 -r "$PEER_PORT" \
    -n 3 "$@" 127.0.0.1 2>&1)"
  RC=$?
  SECONDS_TAKEN=$(($(date +%s) - start))
  log "$name: exit $RC after ${SECONDS_TAKEN}s"
}

expect_refused() {
  local name="$1"
  [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] ||
    fail "$name: uclient exit status $RC (expected a refusal; 124 means no answer in 30 s)"
  echo "$OUT" | grep -q 'Cannot complete Allocation' ||
    fail "$name: uclient did not report a refused allocation: $(echo "$OUT" | tail -n 5)"
  echo "$OUT" | grep -q 'allocate response received' ||
    fail "$name: the server never answered the Allocate (silence instead of 401)"
  [ "$SECONDS_TAKEN" -le 10 ] || fail "$name: refusal took ${SECONDS_TAKEN}s (clients must fail fast)"
}

uclient_try "good secret" -W "$TEST_SECRET" -u alice
[ "$RC" -eq 0 ] || fail "good credential: uclient exit $RC: $(echo "$OUT" | tail -n 5)"
echo "$OUT" | grep -qE 'tot_recv_msgs=3$' || fail "good credential: data did not come back"

uclient_try "wrong secret" -W not-the-secret -u alice
expect_refused "wrong secret"

expired_user="$(($(date +%s) - 3600)):alice"
uclient_try "expired timestamp" -u "$expired_user" -w "$(mint_password "$expired_user")"
expect_refused "expired timestamp"

future_user="$(($(date +%s) + 3600)):alice"
uclient_try "password of another user" -u "$future_user" \
  -w "$(mint_password "$(($(date +%s) + 3600)):mallory")"
expect_refused "password of another user"

# The explicit error code: a raw Allocate with a wrong password must end in 401.
code="$(timeout 20 "$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$future_user" wrong-password)" ||
  fail "raw Allocate with a wrong password got no final answer"
[ "$code" = 401 ] || fail "raw Allocate with a wrong password: error $code, expected 401"
code="$(timeout 20 "$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$expired_user" \
  "$(mint_password "$expired_user")")" || fail "raw Allocate with an expired credential got no answer"
[ "$code" = 401 ] || fail "raw Allocate with an expired credential: error $code, expected 401"
code="$(timeout 20 "$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$future_user" \
  "$(mint_password "$future_user")")" || fail "raw Allocate with a good credential got no answer"
[ "$code" = 200 ] || fail "raw Allocate with a good credential: error $code, expected success"

assert_server_alive
echo "PASS: bad credentials refused with 401, good credential relays"
