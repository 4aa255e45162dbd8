#!/usr/bin/env bash
# Call metrics end to end: a real Prometheus can query call setup time and outcomes.
#  1. callrelay with calls enabled (ring timeout 2 s, records in the work dir, an API key) and
#     a Prometheus server scraping it every second; the call series exist at zero before the
#     first call;
#  2. calls_driver.js drives signaling-only calls (no media: both devices report `connected`):
#     completed calls with a known pause between invite and connected, one declined, one
#     cancelled, one missed, one busy, and an intruder's messages into an active call;
#  3. Prometheus answers, through /api/v1/query, the calls by outcome, the setup histogram
#     (count, sum and median against the pause), the refused intruder messages, no live call
#     and no signaling connection left; `promtool check metrics` accepts /metrics;
#  4. GET /api/v1/calls lists every call with its outcome and, for completed calls, setup_ms.
# Every wait is bounded; assertions are on counts and values, none on how long something took.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/prom_helpers.sh"

DRIVER="$(dirname "$0")/calls_driver.js"
TOKEN_SECRET="calls-metrics-test-signaling-secret-0123456789"
API_KEY="calls-metrics-test-api-key-0123456789"
PAUSE_MS=300       # between invite and connected, so every setup time is at least this
RING_TIMEOUT_S=2

[ "$SERVER_KIND" = callrelay ] ||
  fail "this test needs callrelay's calls (CALLRELAY_TEST_SERVER=$SERVER_KIND)"

calls_cleanup() {
  local rc=$?
  prom_cleanup "$rc"
  (exit "$rc")
  cleanup
}
trap calls_cleanup EXIT

# --- 1: callrelay with calls, and Prometheus scraping it -----------------------------------------
[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"
write_callrelay_config '{udp: ["127.0.0.1:0"]}' "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-info}}" \
  "api: {keys: [{name: calls-metrics-test, key: \"$API_KEY\"}]}" \
  "calls:" "  enabled: true" "  token_secret: \"$TOKEN_SECRET\"" \
  "  ring_timeout_s: $RING_TIMEOUT_S" "  connect_timeout_s: 30" "  grace_s: 2" \
  "  records: {path: \"$WORK_DIR/calls.sqlite3\"}"
launch_callrelay "$CALLRELAY_BIN"
HTTP_PORT="$(logged_port http '127\.0\.0\.1')"
[ -n "$HTTP_PORT" ] && [ "$HTTP_PORT" != 0 ] || fail "callrelay logged no 'listening http 127.0.0.1:PORT'"
log "callrelay running (pid $SERVER_PID): http $HTTP_PORT"
start_prometheus "$HTTP_PORT"

# Scraped before any call: the series are there, at zero, so rates start from a known sample.
wait_prom_compare 'up{job="callrelay"}' == 1 30
wait_prom_compare 'callrelay_calls_started_total' == 0 10
wait_prom_compare 'callrelay_call_setup_seconds_count' == 0 10
for outcome in completed declined cancelled missed busy failed peer_disconnected; do
  wait_prom_compare "callrelay_calls_total{outcome=\"$outcome\"}" == 0 10
done

# --- 2: the calls ---------------------------------------------------------------------------------
timeout 120 node "$DRIVER" drive "ws://127.0.0.1:$HTTP_PORT" "$TOKEN_SECRET" "$PAUSE_MS" \
  "$WORK_DIR/summary.json" || fail "signaling calls failed (see above)"
assert_server_alive
# summary FIELD: a field of the driver's summary (dotted path, e.g. counts.completed).
summary() {
  node -e 'const [file, path] = process.argv.slice(1);
    console.log(path.split(".").reduce((v, k) => v[k], require(file)))' "$WORK_DIR/summary.json" "$1"
}

# --- 3: what Prometheus answers -----------------------------------------------------------------
for outcome in completed declined cancelled missed busy failed peer_disconnected; do
  wait_prom_compare "callrelay_calls_total{outcome=\"$outcome\"}" == "$(summary "counts.$outcome")" 30
done
completed="$(summary counts.completed)"
wait_prom_compare 'callrelay_calls_started_total' == "$(summary started)" 10
wait_prom_compare 'callrelay_call_setup_seconds_count' == "$completed" 10
# Each setup took at least the pause (the server measures invite to the second `connected`).
min_sum="$(awk -v n="$completed" -v p="$PAUSE_MS" 'BEGIN { print n * p / 1000 }')"
wait_prom_compare 'callrelay_call_setup_seconds_sum' '>=' "$min_sum" 10
# The median lies in a bucket at or above the pause's (0.25, 0.5]: at least its lower bound.
wait_prom_compare \
  'histogram_quantile(0.5, sum by (le) (rate(callrelay_call_setup_seconds_bucket[1m])))' '>=' 0.25 10
wait_prom_compare 'callrelay_call_ring_seconds_count' == "$(summary answered)" 10
wait_prom_compare 'callrelay_call_duration_seconds_count' == "$completed" 10
wait_prom_compare 'callrelay_signaling_rejected_messages_total{reason="not_participant"}' == \
  "$(summary intruderMessages)" 10
wait_prom_compare 'callrelay_signaling_messages_total{type="connected",result="ok"}' == \
  "$((2 * completed))" 10
wait_prom_compare 'callrelay_signaling_messages_total{type="hangup",result="error"}' == 1 10
wait_prom_compare 'callrelay_call_records_total{result="written"}' == "$(summary started)" 30
for state in ringing connecting active; do
  wait_prom_compare "callrelay_calls{state=\"$state\"}" == 0 10
done
wait_prom_compare 'callrelay_signaling_connections' == 0 10
wait_prom_compare 'sum(rate(callrelay_calls_total{outcome="completed"}[1m]))' '>' 0 10

curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" >"$WORK_DIR/metrics.txt" ||
  fail "GET /metrics failed"
promtool check metrics <"$WORK_DIR/metrics.txt" || fail "promtool check metrics rejects /metrics"

# --- 4: the records API ---------------------------------------------------------------------------
node "$DRIVER" records "http://127.0.0.1:$HTTP_PORT" "$API_KEY" "$WORK_DIR/summary.json" \
  "$PAUSE_MS" || fail "GET /api/v1/calls does not match the calls made (see above)"

assert_server_alive
log "PASS"
