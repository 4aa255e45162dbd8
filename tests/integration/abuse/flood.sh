#!/usr/bin/env bash
# A spoofed-looking flood: a million requests (Bindings, unauthenticated Allocates, bogus-nonce
# Allocates, unknown attributes, garbage) from 512 loopback addresses x 2 ports against
# callrelay. The bytes answered stay within the bytes sent plus each address's allowance, 401s
# are rate-limited per address, and the server's RSS stays flat (no state per source).
# Prints the measured figures (the README quotes them).
source "$(dirname "$0")/../lib/common.sh"

: "${INTEG_FLOOD:?INTEG_FLOOD must point to callrelay_integ_flood (run through ctest)}"
PACKETS="${ABUSE_FLOOD_PACKETS:-1000000}"
ADDRESSES=512
PORTS=2
PPS="${ABUSE_FLOOD_PPS:-40000}"
# The limits written into the configuration: the defaults, spelled out so the bounds below
# follow them.
ALLOWANCE=2048
ALLOWANCE_PER_S=64
CHALLENGE_BURST=40
CHALLENGES_PER_S=10

[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"
write_callrelay_config '{udp: ["127.0.0.1:0"], tcp: []}' "log: {level: info}" \
  "limits:" \
  "  unauthenticated: {allowance_bytes: $ALLOWANCE, allowance_bytes_per_s: $ALLOWANCE_PER_S," \
  "    challenge_burst: $CHALLENGE_BURST, challenges_per_s: $CHALLENGES_PER_S}"
# Under AddressSanitizer, freed blocks wait in a quarantine (256 MiB by default) before they are
# reused, so RSS would measure the quarantine filling with the flood's short-lived buffers, not
# state kept by the server. A small quarantine keeps the check meaningful in that build; the
# option is ignored by a binary built without ASan.
QUARANTINE_MIB=4
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=$QUARANTINE_MIB:thread_local_quarantine_size_kb=64"
launch_callrelay "$CALLRELAY_BIN"
SERVER_PORT="$(logged_port udp '127\.0\.0\.1')"
HTTP_PORT="$(logged_port http '127\.0\.0\.1')"
[ -n "$SERVER_PORT" ] && [ -n "$HTTP_PORT" ] || fail "callrelay logged no udp or http listener"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
metric() {  # metric NAME_AND_LABELS: its value in /metrics (0 when absent)
  curl -s --max-time 10 "http://127.0.0.1:$HTTP_PORT/metrics" |
    awk -v m="$1" 'index($0, m " ") == 1 {print $2; found=1} END {if (!found) print 0}'
}

# Warm up (page in the code paths, the tables and the socket buffers), then measure.
timeout 120 "$INTEG_FLOOD" flood 127.0.0.1 "$SERVER_PORT" 20000 "$ADDRESSES" "$PORTS" "$PPS" >/dev/null ||
  fail "warm-up flood failed"
rss_before="$(rss_kib)"
out="$(timeout 400 "$INTEG_FLOOD" flood 127.0.0.1 "$SERVER_PORT" "$PACKETS" "$ADDRESSES" "$PORTS" "$PPS")" ||
  fail "flood failed: $out"
rss_after="$(rss_kib)"
assert_server_alive
echo "flood: $out"
field() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
packets="$(field packets)"; sent="$(field bytes_sent)"; answered="$(field bytes_answered)"
answers="$(field answers)"; seconds="$(field seconds)"
challenge_requests="$(field challenge_requests)"; challenges="$(field challenges_answered)"
secs_up="$(awk -v s="$seconds" 'BEGIN {printf "%d", s + 1}')"

reflection_hits="$(metric 'callrelay_limit_hits_total{limit="unauth_reflection"}')"
challenge_hits="$(metric 'callrelay_limit_hits_total{limit="challenge_rate"}')"
echo "server RSS before ${rss_before} KiB, after ${rss_after} KiB"
echo "answered $answers of $packets packets: $answered bytes for $sent bytes sent"
echo "401/438 answered: $challenges for $challenge_requests requests that ask for one"
echo "withheld (server counters): unauth_reflection=$reflection_hits challenge_rate=$challenge_hits"

# Every packet was sent (loopback), and the server answered some: not a dead server.
[ "$packets" -eq "$PACKETS" ] || fail "sent $packets of $PACKETS packets"
[ "$answers" -gt 0 ] || fail "no answer at all: the server is not answering"
# Bounded reflection: what each address sent, plus its allowance (burst and refill over the run).
allowance_total=$((ADDRESSES * (ALLOWANCE + ALLOWANCE_PER_S * secs_up)))
[ "$answered" -le $((sent + allowance_total)) ] ||
  fail "answered $answered bytes > sent $sent + allowances $allowance_total"
# 401/438 per address: the burst plus the rate over the run.
challenge_bound=$((ADDRESSES * (CHALLENGE_BURST + CHALLENGES_PER_S * secs_up)))
[ "$challenges" -le "$challenge_bound" ] ||
  fail "$challenges challenges answered > bound $challenge_bound"
[ "$challenges" -lt "$challenge_requests" ] || fail "every challenge request was answered"
[ "$reflection_hits" -gt 0 ] && [ "$challenge_hits" -gt 0 ] ||
  fail "the limits did not count (unauth_reflection=$reflection_hits challenge_rate=$challenge_hits)"
# Flat RSS: no state per source or per request (8 MiB of slack for allocator noise, plus the
# sanitizer's quarantine where there is one).
[ $((rss_after - rss_before)) -le $((8192 + QUARANTINE_MIB * 1024)) ] ||
  fail "RSS grew by $((rss_after - rss_before)) KiB during the flood"

# A real client from a flooded address still gets its answers once the flood stops... and from
# a fresh address at once.
out="$(timeout 30 turnutils_stunclient -p "$SERVER_PORT" 127.0.0.1 2>&1)" ||
  fail "turnutils_stunclient got no Binding answer after the flood: $out"
user="$(( $(date +%s) + 3600 )):flooded"
password="$("$INTEG_TOOL" mint "$TEST_SECRET" "$user")"
timeout 30 "$INTEG_FLOOD" allocate udp 127.0.0.1 "$SERVER_PORT" 127.0.0.9 "$user" "$password" ||
  fail "no allocation after the flood"
assert_server_alive
echo "PASS: flood of $packets packets: $answered bytes answered for $sent sent, $challenges of $challenge_requests challenges answered, RSS ${rss_before} -> ${rss_after} KiB"
