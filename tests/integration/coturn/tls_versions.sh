#!/usr/bin/env bash
# The TLS listener accepts TLS 1.2 and 1.3 only: openssl s_client with -tls1_2 and -tls1_3
# connects, with -tls1 and -tls1_1 it is refused (a control s_server proves this client can
# speak TLS 1.1 here, so the refusal is callrelay's). The client's SNI is logged. A plain-TCP
# STUN Binding on the TLS port gets no STUN answer (the same bytes on the TCP port do).
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/streams.sh"

OLD_TLS_CIPHERS='DEFAULT@SECLEVEL=0'  # Debian's OpenSSL refuses TLS < 1.2 at its default level

# s_client_try PORT ARGS...: one handshake; sets OUT and RC.
s_client_try() {
  local port="$1"
  shift
  OUT="$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -brief "$@" </dev/null 2>&1)"
  RC=$?
}

make_cert
start_stream_server

# Control: a TLS 1.1-only s_server, to prove this client can negotiate TLS 1.1 at all.
control_port="$("$INTEG_TOOL" free-port)" || fail "no free port"
openssl s_server -accept "127.0.0.1:$control_port" -cert "$WORK_DIR/cert.pem" \
  -key "$WORK_DIR/key.pem" -tls1_1 -cipher "$OLD_TLS_CIPHERS" -quiet \
  >"$WORK_DIR/s_server.log" 2>&1 &
control_pid=$!
for _ in $(seq 1 100); do  # until s_server listens (10 s at most)
  ss -Hltn "sport = :$control_port" | grep -q LISTEN && break
  kill -0 "$control_pid" 2>/dev/null || fail "control s_server exited: $(cat "$WORK_DIR/s_server.log")"
  sleep 0.1
done
s_client_try "$control_port" -tls1_1 -cipher "$OLD_TLS_CIPHERS"
kill "$control_pid" 2>/dev/null
wait "$control_pid" 2>/dev/null
[ "$RC" -eq 0 ] && echo "$OUT" | grep -q 'Protocol version: TLSv1.1' ||
  fail "control: openssl s_client cannot speak TLS 1.1 to s_server here: $OUT $(cat "$WORK_DIR/s_server.log")"
log "control: s_client negotiates TLS 1.1 with a TLS 1.1 s_server"

for v in tls1 tls1_1; do
  s_client_try "$TLS_PORT" "-$v" -cipher "$OLD_TLS_CIPHERS"
  [ "$RC" -ne 124 ] || fail "-$v: s_client hung"
  [ "$RC" -ne 0 ] && ! echo "$OUT" | grep -q 'Protocol version' ||
    fail "callrelay accepted -$v: $OUT"
  log "-$v refused: $(echo "$OUT" | grep -m1 -iE 'alert|error' || echo "exit $RC")"
done

s_client_try "$TLS_PORT" -tls1_2 -servername turn.example.test
[ "$RC" -eq 0 ] && echo "$OUT" | grep -q 'Protocol version: TLSv1.2' ||
  fail "TLS 1.2 handshake failed: $OUT"
echo "$OUT" | grep -qE 'Ciphersuite: ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)' ||
  fail "TLS 1.2 negotiated a cipher outside the modern list: $(echo "$OUT" | grep Ciphersuite)"
s_client_try "$TLS_PORT" -tls1_3
[ "$RC" -eq 0 ] && echo "$OUT" | grep -q 'Protocol version: TLSv1.3' ||
  fail "TLS 1.3 handshake failed: $OUT"
log "TLS 1.2 and 1.3 accepted"
wait_for_log 'SNI turn\.example\.test' 5 || fail "the server did not log the client's SNI"

# binding_on PORT: hex of whatever comes back within 3 s for a STUN Binding request sent as
# plain bytes on a TCP connection to PORT.
binding_on() {
  local port="$1"
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf '\x00\x01\x00\x00\x21\x12\xa4\x42\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c' >&3
    timeout 3 cat <&3 | head -c 64 | od -An -tx1 | tr -d ' \n'
  )
}
tcp_answer="$(binding_on "$TCP_PORT")"
[[ "$tcp_answer" == 0101* ]] || fail "control: no Binding success on the TCP port ($tcp_answer)"
tls_answer="$(binding_on "$TLS_PORT")"
[[ "$tls_answer" != 0101* ]] || fail "a plain-TCP STUN client got a STUN answer on the TLS port"
log "plain STUN on the TLS port: ${tls_answer:-no bytes} (not STUN); on the TCP port: a Binding success"

assert_server_alive
echo "PASS: TLS 1.0/1.1 refused, 1.2/1.3 served with modern ciphers, SNI logged, no STUN on the TLS port"
