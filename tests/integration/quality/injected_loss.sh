#!/usr/bin/env bash
# Call quality with known impairments: callrelay with calls (records in the work dir, an API
# key), then injected_loss.js makes an active call and sends RTP with 5% loss, 16 ms of
# RFC 3550 jitter and >= 50 ms of round trip through the caller's call-scoped allocation
# (integ_tool rtp-stream), and checks what /metrics and the call's record say (see the
# script's header). Every wait is bounded; no assertion is on how long something took.
source "$(dirname "$0")/../lib/common.sh"

API_KEY="quality-test-api-key-0123456789"
TOKEN_SECRET="quality-test-signaling-secret-0123456789"

[ "$SERVER_KIND" = callrelay ] || fail "this test needs callrelay's calls (CALLRELAY_TEST_SERVER=$SERVER_KIND)"
[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"
command -v node >/dev/null || fail "node not found (Debian package nodejs)"

write_callrelay_config '{udp: ["127.0.0.1:0"]}' "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-info}}" \
  "api: {keys: [{name: quality-test, key: \"$API_KEY\"}]}" \
  "calls:" "  enabled: true" "  token_secret: \"$TOKEN_SECRET\"" "  connect_timeout_s: 30" \
  "  records: {path: \"$WORK_DIR/calls.sqlite3\"}"
launch_callrelay "$CALLRELAY_BIN"
HTTP_PORT="$(logged_port http '127\.0\.0\.1')"
[ -n "$HTTP_PORT" ] && [ "$HTTP_PORT" != 0 ] || fail "callrelay logged no 'listening http 127.0.0.1:PORT'"
log "callrelay running (pid $SERVER_PID): http $HTTP_PORT"

timeout 150 node "$(dirname "$0")/injected_loss.js" "http://127.0.0.1:$HTTP_PORT" "$API_KEY" \
  "$INTEG_TOOL" || fail "call quality under injected loss (see above)"
assert_server_alive
log "PASS"
