#!/usr/bin/env bash
# coturn's turnutils_uclient allocates with TURN REST credentials (-W), relays to
# turnutils_peer (an echo server) and back. Modes:
#   channels          ChannelBind + ChannelData, 2 clients as one RTP/RTCP pair of allocations
#                     (EVEN-PORT with RESERVATION-TOKEN)
#   channels-no-rtcp  ChannelBind + ChannelData, one allocation per client (-c)
#   send              CreatePermission + Send/Data indications, no channels (-s -c)
#   many              10 clients at once with channels
# The test fails unless every message sent came back (uclient exits 0 even on 100% loss, so
# its summary is parsed).
source "$(dirname "$0")/../lib/common.sh"

mode="${1:?mode: channels | channels-no-rtcp | send | many}"
clients=1
messages=20
flags=()
case "$mode" in
  channels) clients=2 ;;  # uclient rounds RTP/RTCP clients up to an even number
  channels-no-rtcp) flags=(-c) ;;
  send) flags=(-s -c) ;;
  many) clients=10 ;;  # 5 RTP/RTCP pairs
  *) fail "unknown mode $mode" ;;
esac

start_server
start_peer
run_uclient "${flags[@]}" -p "$SERVER_PORT" -e 127.0.0.1 -r "$PEER_PORT" \
  -W "$TEST_SECRET" -u alice -n "$messages" -m "$clients" -l 120 127.0.0.1
echo "$UCLIENT_OUT" | tail -n 12
check_uclient_result $((clients * messages))
assert_server_alive
echo "PASS: $mode: $UCLIENT_RECEIVED/$UCLIENT_SENT messages relayed both ways"
