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
  write_callrelay_config '{udp: ["127.0.0.1:0"], tcp: ["127.0.0.1:0"], tls: ["127.0.0.1:0"]}' \
    "tls: {cert: \"$WORK_DIR/cert.pem\", key: \"$WORK_DIR/key.pem\", min_version: \"$min_version\"}" \
    "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-debug}}"
  launch_callrelay "$bin"
  SERVER_PORT="$(logged_port udp '127\.0\.0\.1')"
  TCP_PORT="$(logged_port tcp '127\.0\.0\.1')"
  TLS_PORT="$(logged_port tls '127\.0\.0\.1')"
  [ -n "$TCP_PORT" ] || fail "callrelay logged no 'listening tcp 127.0.0.1:PORT' line"
  [ -n "$TLS_PORT" ] || fail "callrelay logged no 'listening tls 127.0.0.1:PORT' line"
  log "callrelay running (pid $SERVER_PID): udp $SERVER_PORT, tcp $TCP_PORT, tls $TLS_PORT"
}
