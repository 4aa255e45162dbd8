#!/usr/bin/env bash
# coturn's turnutils_uclient reaches callrelay over TCP (-t) or TLS (-S) and relays through
# UDP to turnutils_peer (an echo server) and back, with channels; zero loss required. Modes:
#   tcp        TURN over TCP, 2 clients (an RTP/RTCP pair), ChannelData
#   tcp-send   TURN over TCP, Send/Data indications (-s), one allocation per client
#   tls        TURN over TLS with a self-signed certificate, 2 clients, ChannelData
#   tls-many   TURN over TLS, 10 clients at once
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/streams.sh"

mode="${1:?mode: tcp | tcp-send | tls | tls-many}"
clients=2
messages=20
flags=()
case "$mode" in
  tcp) flags=(-t) ;;
  tcp-send) flags=(-t -s -c); clients=1 ;;
  tls) flags=(-t -S) ;;
  tls-many) flags=(-t -S); clients=10 ;;
  *) fail "unknown mode $mode" ;;
esac
port_var=TCP_PORT
[[ "$mode" == tls* ]] && port_var=TLS_PORT

start_stream_server
start_peer
port="${!port_var}"
run_uclient "${flags[@]}" -p "$port" -e 127.0.0.1 -r "$PEER_PORT" \
  -W "$TEST_SECRET" -u alice -n "$messages" -m "$clients" -l 120 127.0.0.1
echo "$UCLIENT_OUT" | tail -n 12
check_uclient_result $((clients * messages))

# The clients went over the stream transport (not UDP) and their allocations ended with the
# connection (uclient closes it at the end).
transport=tcp
[[ "$mode" == tls* ]] && transport=tls
grep -qE "^.*$transport 127\.0\.0\.1:[0-9]+: connected to" "$SERVER_LOG" ||
  fail "the server log shows no $transport connection"
if [[ "$mode" == tls* ]]; then
  grep -qE "tls 127\.0\.0\.1:[0-9]+: TLSv1\.[23] " "$SERVER_LOG" ||
    fail "the server log shows no TLS 1.2/1.3 handshake"
fi
assert_server_alive
echo "PASS: $mode: $UCLIENT_RECEIVED/$UCLIENT_SENT messages relayed both ways"
