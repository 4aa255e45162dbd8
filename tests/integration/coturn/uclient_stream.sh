#!/usr/bin/env bash
# coturn's turnutils_uclient reaches callrelay over TCP (-t) or TLS (-S) and relays through
# UDP to turnutils_peer (an echo server) and back, with channels; zero loss required. Modes:
#   tcp        TURN over TCP, 2 clients (an RTP/RTCP pair), ChannelData
#   tcp-send   TURN over TCP, Send/Data indications (-s), one allocation per client
#   tls        TURN over TLS with a self-signed certificate, 2 clients, ChannelData
#   tls-many   TURN over TLS, 10 clients at once
#   tls-bursts TURN over TLS, the client stopped and resumed every 250 ms, so that it sends
#              its messages in bursts and their echoes reach the relay together: uclient
#              reads one message per TLS record and drops a record holding two
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/streams.sh"

mode="${1:?mode: tcp | tcp-send | tls | tls-many | tls-bursts}"
clients=2
messages=20
flags=()
case "$mode" in
  tcp) flags=(-t) ;;
  tcp-send) flags=(-t -s -c); clients=1 ;;
  tls) flags=(-t -S) ;;
  tls-many) flags=(-t -S); clients=10 ;;
  tls-bursts) flags=(-t -S); messages=100 ;;
  *) fail "unknown mode $mode" ;;
esac
port_var=TCP_PORT
[[ "$mode" == tls* ]] && port_var=TLS_PORT

start_stream_server
start_peer
port="${!port_var}"
args=("${flags[@]}" -p "$port" -e 127.0.0.1 -r "$PEER_PORT" \
  -W "$TEST_SECRET" -u alice -n "$messages" -m "$clients" -l 120 127.0.0.1)
if [[ "$mode" == tls-bursts ]]; then
  # uclient sends every 20 ms by its clock: held for 100 ms, it sends the overdue messages at
  # once when resumed. Only this test's uclient is signalled (other tests run in parallel).
  timeout 60 turnutils_uclient "${args[@]}" >"$WORK_DIR/uclient.out" 2>&1 &
  timeout_pid=$!
  uclient_pid=""
  for _ in $(seq 50); do
    uclient_pid="$(pgrep -P "$timeout_pid")" && break
    sleep 0.1
  done
  [ -n "$uclient_pid" ] || fail "turnutils_uclient did not start"
  while kill -STOP "$uclient_pid" 2>/dev/null; do
    sleep 0.1
    kill -CONT "$uclient_pid" 2>/dev/null
    sleep 0.15
  done
  wait "$timeout_pid"
  UCLIENT_RC=$?
  UCLIENT_OUT="$(cat "$WORK_DIR/uclient.out")"
else
  run_uclient "${args[@]}"
fi
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
