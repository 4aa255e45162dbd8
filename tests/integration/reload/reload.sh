#!/usr/bin/env bash
# Configuration reload while an allocation relays a counted packet stream (200 packets a second,
# each numbered and echoed by turnutils_peer):
#   1. SIGHUP rotates the REST secret (new first, old kept), adds a deny range and replaces the
#      TLS certificate files in place: new-secret and old-secret credentials both work, the
#      denied peer gets 403, a new TLS handshake presents the new certificate, and the changed
#      restart-only key (workers) is named in a warning;
#   2. SIGHUP with an invalid file (a bad deny range), then with a certificate that does not
#      load: each is rejected whole (the old secret still works, the old certificate is still
#      served) and counted as an error;
#   3. POST /api/v1/admin/reload (401 without a key, 403 with an application key) removes the
#      old secret: its credentials get 401, the new ones 200.
# Through all of it not one packet of the stream may be lost, and the allocation made with the
# removed secret keeps relaying (its client can no longer refresh it: its credentials are gone).
source "$(dirname "$0")/../lib/common.sh"

: "${RELOAD_TOOL:?RELOAD_TOOL must point to callrelay_reload_tool (run through ctest)}"
BIN="${CALLRELAY_BIN:-}"
[ -x "$BIN" ] || fail "callrelay binary not found at '$BIN' (build the callrelay target)"
CONFIG="$WORK_DIR/callrelay.yaml"
STREAM_PID=""
# The stream client goes too (common.sh's cleanup reads the exit status first: keep it).
trap 'rc=$?; [ -n "$STREAM_PID" ] && kill -TERM "$STREAM_PID" 2>/dev/null; (exit $rc); cleanup' EXIT

make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=callrelay-reload-$1" -keyout "$WORK_DIR/$1.key" -out "$WORK_DIR/$1.crt" \
    >"$WORK_DIR/openssl-$1.log" 2>&1 || fail "openssl could not make certificate $1"
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
# The fingerprint of the certificate a new TLS handshake with the server presents.
served_fingerprint() {
  timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256
}

# write_config SECRETS DENY CERT [LINE...]: the whole file (SECRETS and DENY are YAML list
# bodies; CERT the certificate's base name).
write_config() {
  local secrets="$1" deny="$2" cert="$3"
  shift 3
  {
    cat <<EOF
listen: {udp: ["127.0.0.1:0"], tcp: [], tls: ["127.0.0.1:0"]}
relay: {ports: {min: 61000, max: 65000}}
state_dir: $WORK_DIR/state
realm: $TEST_REALM
auth: {secrets: [$secrets], separator: ":"}
peers: {allow: ["127.0.0.0/8"], deny: [$deny]}   # loopback peers: test config only
tls: {cert: $WORK_DIR/$cert.crt, key: $WORK_DIR/$cert.key}
http: {listen: "127.0.0.1:0"}
api: {keys: [{name: ops, key: "ops-key-0123456789", admin: true},
             {name: app, key: "app-key-0123456789"}]}
log: {level: info}
EOF
    printf '%s\n' "$@"
  } >"$CONFIG.tmp"
  apply_log_format "$CONFIG.tmp"
  mv "$CONFIG.tmp" "$CONFIG"  # whole, so a reload never reads half a file
}

# allocate_code SECRET USER: the final code of an Allocate with a REST credential of SECRET.
allocate_code() {
  local username password
  username="$(($(date +%s) + 3600)):$2"
  password="$("$INTEG_TOOL" mint "$1" "$username")"
  timeout 30 "$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$username" "$password"
}
expect_allocate() {
  local got
  got="$(allocate_code "$1" "$2")"
  [ "$got" = "$3" ] || fail "$4: Allocate with the '$1' secret answered '$got', expected $3"
}
# bind_code PEER_IP: the ChannelBind code for a peer at PEER_IP (new-secret credentials).
bind_code() {
  local username password
  username="$(($(date +%s) + 3600)):binder"
  password="$("$INTEG_TOOL" mint new "$username")"
  timeout 30 "$RELOAD_TOOL" bind 127.0.0.1 "$SERVER_PORT" "$username" "$password" "$1" 40000
}

# sighup_and_wait WHAT N: sends SIGHUP and waits for the Nth "config reload (SIGHUP)" line.
sighup_and_wait() {
  kill -HUP "$SERVER_PID"
  for _ in $(seq 1 300); do
    [ "$(grep -c 'config reload (SIGHUP)' "$SERVER_LOG")" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "$1: no outcome logged within 30 s of SIGHUP"
}
metric() {
  curl -fsS --max-time 10 "http://127.0.0.1:$HTTP_PORT/metrics" | grep -E "^$1 " | awk '{print $2}'
}
expect_metric() {
  local got
  got="$(metric "$1")"
  [ "$got" = "$2" ] || fail "$3: $1 is '$got', expected $2"
}
stream_alive() {
  kill -0 "$STREAM_PID" 2>/dev/null || fail "the stream stopped early: $(cat "$WORK_DIR/stream.out")"
}

make_cert first
make_cert second
cp "$WORK_DIR/first.crt" "$WORK_DIR/live.crt"
cp "$WORK_DIR/first.key" "$WORK_DIR/live.key"
printf 'not a certificate\n' >"$WORK_DIR/garbage.crt"
cp "$WORK_DIR/first.key" "$WORK_DIR/garbage.key"
mkdir -p "$WORK_DIR/state"
write_config '"old"' '' live
launch_callrelay "$BIN"
SERVER_PORT="$(logged_port udp '127\.0\.0\.1')"
TLS_PORT="$(logged_port tls '127\.0\.0\.1')"
HTTP_PORT="$(logged_port http '127\.0\.0\.1')"
[ -n "$SERVER_PORT" ] && [ -n "$TLS_PORT" ] && [ -n "$HTTP_PORT" ] ||
  fail "callrelay did not log its udp, tls and http listeners"
start_peer

# The stream: old-secret credentials, echo peer on 127.0.0.1.
stream_user="$(($(date +%s) + 3600)):streamer"
"$RELOAD_TOOL" stream 127.0.0.1 "$SERVER_PORT" 127.0.0.1 "$PEER_PORT" "$stream_user" \
  "$("$INTEG_TOOL" mint old "$stream_user")" 240 >"$WORK_DIR/stream.out" 2>&1 &
STREAM_PID=$!
touch "$WORK_DIR/stream.out"
for _ in $(seq 1 300); do
  grep -q '^flowing$' "$WORK_DIR/stream.out" && break
  stream_alive
  sleep 0.1
done
grep -q '^flowing$' "$WORK_DIR/stream.out" || fail "the stream did not start within 30 s"
log "stream flowing through $(sed -n 's/^allocated //p' "$WORK_DIR/stream.out")"

[ "$(served_fingerprint)" = "$(fingerprint "$WORK_DIR/first.crt")" ] ||
  fail "before any reload the TLS listener does not present the first certificate"
expect_allocate old alice 200 "before any reload"
expect_allocate new alice 401 "before any reload"
[ "$(bind_code 127.0.0.2 2>/dev/null)" = "allocate 401" ] ||
  fail "before any reload a new-secret credential got further than 401"
expect_metric 'callrelay_config_reloads_total\{outcome="ok"\}' 0 "before any reload"

log "reload 1 (SIGHUP): secrets [new, old], deny 127.0.0.2/32, second certificate, workers 3"
cp "$WORK_DIR/second.crt" "$WORK_DIR/live.crt"
cp "$WORK_DIR/second.key" "$WORK_DIR/live.key"
write_config '"new", "old"' '"127.0.0.2/32"' live 'workers: 3'
sighup_and_wait "reload 1" 1
grep -q 'config reload (SIGHUP) applied: changed auth.secrets, peers.deny' "$SERVER_LOG" ||
  fail "reload 1: no 'applied' line naming auth.secrets and peers.deny"
grep -qE "$(log_line warn 'config reload: .*workers.* take effect only at the next start')" "$SERVER_LOG" ||
  fail "reload 1: the restart-only key 'workers' was not named in a warning"
expect_allocate new alice 200 "after reload 1"
expect_allocate old alice 200 "after reload 1 (old secret kept)"
[ "$(bind_code 127.0.0.2)" = 403 ] || fail "after reload 1 the denied peer 127.0.0.2 was not refused"
[ "$(bind_code 127.0.0.3)" = 200 ] || fail "after reload 1 the allowed peer 127.0.0.3 was refused"
[ "$(served_fingerprint)" = "$(fingerprint "$WORK_DIR/second.crt")" ] ||
  fail "after reload 1 a new TLS handshake does not present the second certificate"
expect_metric 'callrelay_config_reloads_total\{outcome="ok"\}' 1 "after reload 1"
stream_alive

log "reload 2 (SIGHUP): an invalid deny range: rejected whole"
write_config '"new"' '"not-a-range"' live
sighup_and_wait "reload 2" 2
grep -q 'config reload (SIGHUP) rejected, nothing applied.*peers.deny' "$SERVER_LOG" ||
  fail "reload 2: no 'rejected' line naming peers.deny"
expect_allocate old alice 200 "after the rejected reload 2 (old secret must stay)"
expect_metric 'callrelay_config_reloads_total\{outcome="error"\}' 1 "after reload 2"
expect_metric callrelay_config_last_reload_successful 0 "after reload 2"

log "reload 3 (SIGHUP): a certificate that does not load: rejected whole"
write_config '"new"' '"127.0.0.2/32"' garbage
sighup_and_wait "reload 3" 3
[ "$(grep -c 'config reload (SIGHUP) rejected, nothing applied, the running configuration stays: tls:' "$SERVER_LOG")" = 1 ] ||
  fail "reload 3: no 'rejected' line naming the certificate"
expect_allocate old alice 200 "after the rejected reload 3 (old secret must stay)"
[ "$(served_fingerprint)" = "$(fingerprint "$WORK_DIR/second.crt")" ] ||
  fail "after the rejected reload 3 the TLS listener no longer presents the second certificate"
stream_alive

log "reload 4 (POST /api/v1/admin/reload): secrets [new] only"
write_config '"new"' '"127.0.0.2/32"' live 'workers: 3'
reload_url="http://127.0.0.1:$HTTP_PORT/api/v1/admin/reload"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST "$reload_url")"
[ "$code" = 401 ] || fail "reload without a key answered $code, expected 401"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST \
  -H 'Authorization: Bearer app-key-0123456789' "$reload_url")"
[ "$code" = 403 ] || fail "reload with an application key answered $code, expected 403"
answer="$(curl -sS --max-time 30 -X POST -H 'Authorization: Bearer ops-key-0123456789' "$reload_url")"
echo "$answer" | grep -q '"outcome":"ok"' || fail "reload 4 answered: $answer"
echo "$answer" | grep -q '"changed":\["auth.secrets"' || fail "reload 4 did not name auth.secrets: $answer"
echo "$answer" | grep -q '"restart_required":\["workers"\]' ||
  fail "reload 4 did not name workers as restart-only: $answer"
expect_allocate old alice 401 "after reload 4 removed the old secret"
expect_allocate new alice 200 "after reload 4"
expect_metric 'callrelay_config_reloads_total\{outcome="ok"\}' 2 "after reload 4"
expect_metric callrelay_config_last_reload_successful 1 "after reload 4"
stream_alive

# A second more of packets after the last reload, then the tally.
sleep 1
kill -TERM "$STREAM_PID"
wait "$STREAM_PID"
stream_rc=$?
STREAM_PID=""
result="$(grep '^sent=' "$WORK_DIR/stream.out")"
log "stream: $result"
[ "$stream_rc" -eq 0 ] || fail "packets were lost: $result"
sent="$(echo "$result" | sed -E 's/^sent=([0-9]+).*/\1/')"
[ "$sent" -ge 200 ] || fail "the stream sent only $sent packets"
assert_server_alive
# SIGINT stops at once (SIGTERM would drain: the streamer's allocation, made with the removed
# secret, cannot be released by its client and would hold the drain).
kill -INT "$SERVER_PID"
wait "$SERVER_PID"
server_rc=$?
SERVER_PID=""
[ "$server_rc" -eq 0 ] || fail "callrelay exited with $server_rc on SIGINT"
log "PASS: 4 reloads (2 rejected) while $sent packets were relayed, none lost"
