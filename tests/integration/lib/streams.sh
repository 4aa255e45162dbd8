# Helpers for the TCP/TLS integration tests (sourced after common.sh, bash).
#
# make_cert         a self-signed P-256 certificate for CN=localhost (valid one day) in
#                   $WORK_DIR/cert.pem and $WORK_DIR/key.pem; sets CERT_SPKI (base64 SHA-256 of
#                   the public key, as Chromium's --ignore-certificate-errors-spki-list wants).
# start_stream_server [min_version]
#                   starts callrelay with UDP, TCP and TLS listeners on 127.0.0.1:0 and sets
#                   SERVER_PORT (udp), TCP_PORT, TLS_PORT. callrelay only.

make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK_DIR/key.pem" -out "$WORK_DIR/cert.pem" >"$WORK_DIR/openssl.log" 2>&1 ||
    fail "openssl could not make a test certificate: $(cat "$WORK_DIR/openssl.log")"
  CERT_SPKI="$(openssl x509 -in "$WORK_DIR/cert.pem" -pubkey -noout |
    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
}

start_stream_server() {
  local min_version="${1:-1.2}" bin="${CALLRELAY_BIN:-}"
  [ "$SERVER_KIND" = callrelay ] || fail "the stream tests run against callrelay only"
  [ -n "$bin" ] && [ -x "$bin" ] || fail "callrelay binary not found (CALLRELAY_BIN='$bin')"
  [ -f "$WORK_DIR/cert.pem" ] || make_cert
  mkdir -p "$WORK_DIR/state"
  cat >"$WORK_DIR/callrelay.yaml" <<EOF2
listen: {udp: ["127.0.0.1:0"], tcp: ["127.0.0.1:0"], tls: ["127.0.0.1:0"]}
tls: {cert: "$WORK_DIR/cert.pem", key: "$WORK_DIR/key.pem", min_version: "$min_version"}
relay: {ports: {min: 61000, max: 65000}}
workers: 2
state_dir: $WORK_DIR/state
realm: $TEST_REALM
auth: {secrets: ["$TEST_SECRET"], separator: ":"}
peers: {allow: ["127.0.0.0/8", "::1/128"]}   # loopback peers: test config only
log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-debug}}
http: {listen: "127.0.0.1:0"}   # never the default 9641: tests run in parallel
EOF2
  "$bin" --config "$WORK_DIR/callrelay.yaml" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  wait_for_log '^ready$' 10 || fail "callrelay did not log 'ready' within 10 s"
  SERVER_PORT="$(sed -nE 's/^listening udp 127\.0\.0\.1:([0-9]+)$/\1/p' "$SERVER_LOG" | head -n1)"
  TCP_PORT="$(sed -nE 's/^listening tcp 127\.0\.0\.1:([0-9]+)$/\1/p' "$SERVER_LOG" | head -n1)"
  TLS_PORT="$(sed -nE 's/^listening tls 127\.0\.0\.1:([0-9]+)$/\1/p' "$SERVER_LOG" | head -n1)"
  [ -n "$TCP_PORT" ] || fail "callrelay logged no 'listening tcp 127.0.0.1:PORT' line"
  [ -n "$TLS_PORT" ] || fail "callrelay logged no 'listening tls 127.0.0.1:PORT' line"
  log "callrelay running (pid $SERVER_PID): udp $SERVER_PORT, tcp $TCP_PORT, tls $TLS_PORT"
}
