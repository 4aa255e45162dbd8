#!/usr/bin/env bash
# One address (127.0.0.2) opens 5,000 idle TCP connections to the TURN listener and another
# (127.0.0.3) 3,000 HTTP connections whose request head never ends; both re-open what the
# server closes. Meanwhile, from 127.0.0.1: an allocation over UDP, an allocation over TCP, a
# /metrics scrape and a credential request all succeed. Durations are reported; only success
# is asserted. Skips (77) when the descriptor limit cannot hold the connections.
source "$(dirname "$0")/../lib/common.sh"

: "${INTEG_FLOOD:?INTEG_FLOOD must point to callrelay_integ_flood (run through ctest)}"
TCP_HOLD=5000
HTTP_HOLD=3000
API_KEY="abuse-test-key-0123456789abcdef"
HOLD_PIDS=()

hold_cleanup() {
  local rc=$?
  for pid in "${HOLD_PIDS[@]}"; do stop_pid "$pid" holder; done
  (exit "$rc")
  cleanup
}
trap hold_cleanup EXIT

# The holders and the server both need descriptors for every connection.
ulimit -n "$(ulimit -H -n)" 2>/dev/null || true
need=$((TCP_HOLD + HTTP_HOLD + 512))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "SKIP: the descriptor limit ($(ulimit -H -n)) cannot hold $need connections"
  exit 77
fi

[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"
write_callrelay_config '{udp: ["127.0.0.1:0"], tcp: ["127.0.0.1:0"]}' "log: {level: info}" \
  "api: {keys: [{name: abuse-test, key: \"$API_KEY\"}]}"
launch_callrelay "$CALLRELAY_BIN"
UDP_PORT="$(logged_port udp '127\.0\.0\.1')"
TCP_PORT="$(logged_port tcp '127\.0\.0\.1')"
HTTP_PORT="$(logged_port http '127\.0\.0\.1')"
[ -n "$UDP_PORT" ] && [ -n "$TCP_PORT" ] && [ -n "$HTTP_PORT" ] ||
  fail "callrelay logged no udp, tcp or http listener"

# hold NAME ARGS...: starts a holder in the background; its output goes to $WORK_DIR/NAME.out.
hold() {
  local name="$1"
  shift
  "$INTEG_FLOOD" hold "$@" >"$WORK_DIR/$name.out" 2>&1 &
  HOLD_PIDS+=($!)
}
hold tcp 127.0.0.1 "$TCP_PORT" 127.0.0.2 "$TCP_HOLD" tcp
hold http 127.0.0.1 "$HTTP_PORT" 127.0.0.3 "$HTTP_HOLD" http
for name in tcp http; do
  for _ in $(seq 1 1200); do
    grep -qE '^(held|SKIP)' "$WORK_DIR/$name.out" && break
    sleep 0.1
  done
  if grep -q '^SKIP' "$WORK_DIR/$name.out"; then cat "$WORK_DIR/$name.out"; exit 77; fi
  grep -q '^held' "$WORK_DIR/$name.out" || fail "the $name holder did not settle: $(cat "$WORK_DIR/$name.out")"
  head -n1 "$WORK_DIR/$name.out"
done
assert_server_alive

# From 127.0.0.1, while the holders keep their connections (and re-open refused ones).
now_ms() { date +%s%3N; }
user="$(( $(date +%s) + 3600 )):probe"
password="$("$INTEG_TOOL" mint "$TEST_SECRET" "$user")"
timeout 60 "$INTEG_FLOOD" allocate udp 127.0.0.1 "$UDP_PORT" 127.0.0.1 "$user" "$password" ||
  fail "no UDP allocation while the connections are held"
timeout 60 "$INTEG_FLOOD" allocate tcp 127.0.0.1 "$TCP_PORT" 127.0.0.1 "$user" "$password" ||
  fail "no TCP allocation while the connections are held"
t0="$(now_ms)"
metrics="$(curl -sS --fail --max-time 30 --interface 127.0.0.1 "http://127.0.0.1:$HTTP_PORT/metrics")" ||
  fail "/metrics did not answer while the connections are held"
echo "scraped /metrics in $(( $(now_ms) - t0 )) ms"
echo "$metrics" | grep -q '^callrelay_limit_hits_total' || fail "/metrics has no callrelay_limit_hits_total"
t0="$(now_ms)"
creds="$(curl -sS --fail --max-time 30 --interface 127.0.0.1 -H "Authorization: Bearer $API_KEY" \
  "http://127.0.0.1:$HTTP_PORT/api/v1/turn/credentials?service=turn&username=probe&ttl=600")" ||
  fail "the credential request failed while the connections are held"
echo "got credentials in $(( $(now_ms) - t0 )) ms"
echo "$creds" | grep -q '"password"' || fail "no password in the credential answer: $creds"
assert_server_alive
echo "$metrics" | grep -E '^callrelay_limit_hits_total\{limit="(tcp|http|fd)' || true
for pid in "${HOLD_PIDS[@]}"; do stop_pid "$pid" holder; done
HOLD_PIDS=()
tail -n1 "$WORK_DIR/tcp.out" "$WORK_DIR/http.out"
echo "PASS: with $TCP_HOLD idle TCP and $HTTP_HOLD slow HTTP connections from one address each, another address allocated over UDP and TCP, scraped /metrics and got credentials"
