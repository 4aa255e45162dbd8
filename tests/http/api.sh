#!/usr/bin/env bash
# The HTTP listener of the real binary, checked with curl: credential JSON shape, wrong key 401,
# missing parameters 400, ttl above the key's maximum 400, revoked username refused by a raw
# Allocate with 401 (while a fresh credential still gets 200), CORS, /healthz, /readyz,
# /metrics, 404/405/413, and the relay surviving oversized HTTP. Uses the integration harness
# (tests/integration/lib/common.sh) for cleanup, logs and callrelay_integ_tool.
source "$(dirname "$0")/../integration/lib/common.sh"

command -v curl >/dev/null || fail "curl is not installed (scripts/install-deps.sh installs it)"
command -v node >/dev/null || fail "node is not installed (scripts/install-deps.sh installs it)"
[ -x "${CALLRELAY_BIN:-}" ] || fail "CALLRELAY_BIN does not point to the callrelay binary"

API_KEY="integration-test-api-key-0123456789"
WEB_KEY="integration-test-web-key-0123456789"
ORIGIN="https://app.example.com"

mkdir -p "$WORK_DIR/state"
cat >"$WORK_DIR/callrelay.yaml" <<YAML
listen: {udp: ["127.0.0.1:0"], tcp: []}
relay: {ports: {min: 61000, max: 65000}}
workers: 2
state_dir: $WORK_DIR/state
realm: $TEST_REALM
auth: {secrets: ["$TEST_SECRET", "older-secret"], separator: ":"}
peers: {allow: ["127.0.0.0/8"]}
http: {listen: "127.0.0.1:0", max_request_bytes: 4096}
api:
  keys:
    - {name: backend, key: "$API_KEY", max_ttl: 7200}
    - {name: web, key: "$WEB_KEY", max_ttl: 600, allowed_origins: ["$ORIGIN"]}
  default_ttl: 3600
YAML
apply_log_format "$WORK_DIR/callrelay.yaml"
"$CALLRELAY_BIN" --config "$WORK_DIR/callrelay.yaml" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
wait_for_log "$(log_line info ready)" 10 || fail "callrelay did not log 'ready' within 10 s"
SERVER_PORT="$(logged_port udp '127\.0\.0\.1')"
HTTP_PORT="$(logged_port http '127\.0\.0\.1')"
[ -n "$SERVER_PORT" ] || fail "no 'listening udp' line"
[ -n "$HTTP_PORT" ] && [ "$HTTP_PORT" != 0 ] || fail "no 'listening http 127.0.0.1:PORT' line"
BASE="http://127.0.0.1:$HTTP_PORT"
log "callrelay running: udp $SERVER_PORT, http $HTTP_PORT"

# req ARGS...: one curl call; sets STATUS, BODY and HEADERS (never fails the script by itself).
req() {
  local out="$WORK_DIR/body" hdr="$WORK_DIR/headers"
  STATUS="$(curl -sS --max-time 10 -o "$out" -D "$hdr" -w '%{http_code}' "$@")" || STATUS="curl-failed"
  BODY="$(cat "$out" 2>/dev/null)"
  HEADERS="$(cat "$hdr" 2>/dev/null)"
}
expect() {  # expect NAME STATUS [BODY-SUBSTRING]
  [ "$STATUS" = "$2" ] || fail "$1: HTTP $STATUS, expected $2: $BODY"
  [ -z "${3:-}" ] || [[ "$BODY" == *"$3"* ]] || fail "$1: body lacks '$3': $BODY"
  log "ok: $1 -> $STATUS"
}
# json_get FIELD: prints a field of $BODY (arrays as JSON) with node; fails on invalid JSON.
json_get() {
  node -e 'const o = JSON.parse(process.argv[1]); const v = o[process.argv[2]];
           process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));' "$BODY" "$1"
}

# --- success: the JSON shape clients (and RTCPeerConnection) expect
req -H "Authorization: Bearer $API_KEY" "$BASE/api/v1/turn/credentials?service=turn&username=alice&ttl=600"
expect "credentials (Bearer)" 200
node -e '
  const o = JSON.parse(process.argv[1]);
  const keys = Object.keys(o).join(",");
  if (keys !== "username,password,ttl,uris,iceServers") throw new Error("keys: " + keys);
  if (!/^[0-9]+:alice$/.test(o.username)) throw new Error("username " + o.username);
  if (o.ttl !== 600 || typeof o.password !== "string" || o.password.length !== 28) throw new Error("ttl/password");
  const expiry = Number(o.username.split(":")[0]), now = Date.now() / 1000;
  if (Math.abs(expiry - now - 600) > 5) throw new Error("expiry " + expiry + " now " + now);
  if (o.uris.length !== 1 || !/^turn:127\.0\.0\.1:[0-9]+\?transport=udp$/.test(o.uris[0])) throw new Error("uris " + o.uris);
  const s = o.iceServers;
  if (s.length !== 1 || JSON.stringify(s[0].urls) !== JSON.stringify(o.uris) ||
      s[0].username !== o.username || s[0].credential !== o.password) throw new Error("iceServers");
' "$BODY" || fail "credential JSON has the wrong shape: $BODY"
USER1="$(json_get username)"
PASS1="$(json_get password)"
[ "$PASS1" = "$(mint_password "$USER1")" ] || fail "password is not HMAC(first secret, username)"
[[ "$(json_get uris)" == *":$SERVER_PORT?transport=udp"* ]] || fail "URI does not name the relay port"

req "$BASE/api/v1/turn/credentials?service=turn&username=bob&key=$API_KEY"
expect "credentials (key= parameter, default ttl)" 200 '"ttl":3600'
req -X POST -d "service=turn&username=carol&ttl=60&api=$API_KEY" "$BASE/api/v1/turn/credentials"
expect "credentials (POST form, api= parameter)" 200 ':carol"'
req -X POST -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  -d '{"service": "turn", "username": "dave", "ttl": 120}' "$BASE/api/v1/turn/credentials"
expect "credentials (POST JSON)" 200 '"ttl":120'

# --- errors
req "$BASE/api/v1/turn/credentials?service=turn&username=alice"
expect "no key" 401 '"error":"missing API key'
req -H "Authorization: Bearer wrong-$API_KEY" "$BASE/api/v1/turn/credentials?service=turn&username=alice"
expect "wrong key" 401 '"error":"invalid API key"'
grep -q "$API_KEY" "$SERVER_LOG" && fail "an API key appears in the server log"
req -H "Authorization: Bearer $API_KEY" "$BASE/api/v1/turn/credentials?username=alice"
expect "missing service" 400 "missing parameter 'service'"
req -H "Authorization: Bearer $API_KEY" "$BASE/api/v1/turn/credentials?service=turn"
expect "missing username" 400 "missing parameter 'username'"
req -H "Authorization: Bearer $API_KEY" "$BASE/api/v1/turn/credentials?service=turn&username=alice&ttl=abc"
expect "bad ttl" 400 "positive integer"
req -H "Authorization: Bearer $API_KEY" "$BASE/api/v1/turn/credentials?service=turn&username=alice&ttl=7201"
expect "ttl above the key's maximum" 400 "maximum of 7200 seconds"
req -X DELETE "$BASE/api/v1/turn/credentials"
expect "wrong method" 405
req "$BASE/no/such/path"
expect "unknown path" 404 '"error"'
head -c 6000 /dev/zero | tr '\0' a >"$WORK_DIR/big"
req -X POST --data-binary @"$WORK_DIR/big" "$BASE/api/v1/turn/credentials"
expect "oversized request" 413 "max_request_bytes"

# --- CORS: the web key's origin is echoed, others are not
req -H "Origin: $ORIGIN" "$BASE/api/v1/turn/credentials?service=turn&username=eve&key=$WEB_KEY"
expect "CORS allowed origin" 200
grep -qi "^Access-Control-Allow-Origin: $ORIGIN" <<<"$HEADERS" || fail "allowed origin not echoed: $HEADERS"
req -H "Origin: https://evil.example.com" "$BASE/api/v1/turn/credentials?service=turn&username=eve&key=$WEB_KEY"
expect "CORS other origin" 200
grep -qi "^Access-Control-Allow-Origin" <<<"$HEADERS" && fail "unlisted origin got a CORS header"
req -X OPTIONS -H "Origin: $ORIGIN" -H "Access-Control-Request-Method: GET" "$BASE/api/v1/turn/credentials"
expect "CORS preflight" 204

# --- revocation: the minted credential works, then is refused with 401 after revoke
code="$(timeout 20 "$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$USER1" "$PASS1")" ||
  fail "raw Allocate with the minted credential got no final answer"
[ "$code" = 200 ] || fail "raw Allocate with the minted credential: $code, expected success"
req -X POST -H "Authorization: Bearer $API_KEY" --data-urlencode "username=$USER1" "$BASE/api/v1/turn/revoke"
expect "revoke" 200 '"revoked":true'
code="$(timeout 20 "$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$USER1" "$PASS1")" ||
  fail "raw Allocate with a revoked credential got no final answer"
[ "$code" = 401 ] || fail "raw Allocate with a revoked credential: $code, expected 401"
log "ok: revoked username refused with 401"
req -H "Authorization: Bearer $API_KEY" "$BASE/api/v1/turn/credentials?service=turn&username=alice&ttl=900"
USER2="$(json_get username)"
code="$(timeout 20 "$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$USER2" "$(json_get password)")" ||
  fail "raw Allocate with a fresh credential got no final answer"
[ "$code" = 200 ] || fail "a fresh credential for the same user was refused: $code"
req -X GET "$BASE/api/v1/turn/revoke?username=$USER1&key=$API_KEY"
expect "revoke with GET" 405

# --- health, readiness, metrics
req "$BASE/healthz"
expect "/healthz" 200
req "$BASE/readyz"
expect "/readyz" 200
req "$BASE/metrics"
expect "/metrics" 200 "# TYPE "
grep -qi '^Content-Type: text/plain; version=0.0.4' <<<"$HEADERS" || fail "/metrics content type: $HEADERS"
grep -q "$API_KEY\|$TEST_SECRET" <<<"$BODY" && fail "a key or secret appears in /metrics"

# --- a huge request is cut off, and the relay still answers
curl -sS --max-time 10 -o /dev/null -X POST -H 'Content-Length: 100000000' --data-binary @"$WORK_DIR/big" \
  "$BASE/api/v1/turn/credentials" 2>/dev/null
code="$(timeout 20 "$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$USER2" "$(mint_password "$USER2")")" ||
  fail "the relay stopped answering after oversized HTTP"
[ "$code" = 200 ] || fail "Allocate after oversized HTTP: $code"
req "$BASE/healthz"
expect "/healthz after oversized HTTP" 200

assert_server_alive

# --- HTTPS: the same listener with http.tls (a self-signed certificate made here)
stop_pid "$SERVER_PID" callrelay
command -v openssl >/dev/null || fail "openssl is not installed (scripts/install-deps.sh installs it)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$WORK_DIR/http-key.pem" -out "$WORK_DIR/http-cert.pem" 2>/dev/null ||
  fail "openssl could not make a test certificate"
sed -i 's|^http: .*$|http: {listen: "127.0.0.1:0", tls: {cert: http-cert.pem, key: http-key.pem}}|' \
  "$WORK_DIR/callrelay.yaml"
: >"$SERVER_LOG"
"$CALLRELAY_BIN" --config "$WORK_DIR/callrelay.yaml" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
wait_for_log "$(log_line info ready)" 10 || fail "callrelay with http.tls did not log 'ready' within 10 s"
HTTPS_PORT="$(logged_port https '127\.0\.0\.1')"
[ -n "$HTTPS_PORT" ] || fail "no 'listening https 127.0.0.1:PORT' line"
req --cacert "$WORK_DIR/http-cert.pem" -H "Authorization: Bearer $API_KEY" \
  "https://127.0.0.1:$HTTPS_PORT/api/v1/turn/credentials?service=turn&username=tls-user"
expect "credentials over HTTPS" 200 ':tls-user"'
req "http://127.0.0.1:$HTTPS_PORT/healthz"
[ "$STATUS" != 200 ] || fail "plain HTTP was answered on the HTTPS listener"
req --cacert "$WORK_DIR/http-cert.pem" "https://127.0.0.1:$HTTPS_PORT/readyz"
expect "/readyz over HTTPS" 200

assert_server_alive
echo "PASS: HTTP API, revocation, health, readiness, metrics and HTTPS"
