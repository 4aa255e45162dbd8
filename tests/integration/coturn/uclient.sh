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
out="$(timeout 60 turnutils_uclient "${flags[@]}" -p "$SERVER_PORT" -e 127.0.0.1 -r "$PEER_PORT" \
  -W "$TEST_SECRET" -u alice -n "$messages" -m "$clients" -l 120 127.0.0.1 2>&1)"
rc=$?
echo "$out" | tail -n 12
[ "$rc" -ne 124 ] || fail "turnutils_uclient timed out after 60 s"
[ "$rc" -eq 0 ] || fail "turnutils_uclient exited with $rc"

summary="$(echo "$out" | grep -E 'start_mclient: tot_send_msgs=[0-9]+, tot_recv_msgs=[0-9]+$' | tail -n1)"
[ -n "$summary" ] || fail "no send/receive summary in turnutils_uclient output"
sent="$(echo "$summary" | sed -E 's/.*tot_send_msgs=([0-9]+).*/\1/')"
received="$(echo "$summary" | sed -E 's/.*tot_recv_msgs=([0-9]+).*/\1/')"
lost="$(echo "$out" | sed -nE 's/.*Total lost packets ([0-9]+) .*/\1/p' | tail -n1)"
expected=$((clients * messages))
log "mode=$mode sent=$sent received=$received lost=${lost:-?} expected=$expected"
[ "$sent" -eq "$expected" ] || fail "uclient sent $sent messages, expected $expected"
[ "$received" -eq "$sent" ] || fail "uclient received $received of $sent relayed messages"
[ "${lost:-x}" = 0 ] || fail "uclient reports ${lost:-unknown} lost packets"
assert_server_alive
echo "PASS: $mode: $received/$sent messages relayed both ways"
