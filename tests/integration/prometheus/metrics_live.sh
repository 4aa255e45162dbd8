#!/usr/bin/env bash
# Live per-allocation metrics (issue 4), end to end on loopback:
#  1. callrelay (HTTP listener on 127.0.0.1:0, per-allocation series capped at 3) relays
#     ChannelData between `integ_tool stream` and turnutils_peer (echo);
#  2. while the allocation lives, /metrics shows its per-allocation bytes series (labelled with
#     the REST user id) growing between scrapes, in both directions;
#  3. `promtool check metrics` accepts the exposition (lint included);
#  4. a real Prometheus server scraping every second returns, through /api/v1/query, the
#     allocation's relayed bytes (> 0) and a non-zero rate while traffic flows; every query of
#     deploy/grafana/callrelay-dashboard.json runs without error and the rules of
#     deploy/prometheus/alerts.yml evaluate without error against the real metrics;
#  5. after Refresh(0) the allocation's series are gone from /metrics;
#  6. with 6 live allocations and the cap at 3, every scrape shows exactly 3 allocations'
#     series, the 3 with the highest throughput are the ones kept, and the cap is reported.
# Every wait is bounded; no assertion depends on how long something took.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/prom_helpers.sh"

DEPLOY_DIR="$(cd "$(dirname "$0")/../../../deploy" && pwd)"
CAP=3
STREAM_PID=""

[ "$SERVER_KIND" = callrelay ] || fail "this test needs callrelay's /metrics (CALLRELAY_TEST_SERVER=$SERVER_KIND)"

metrics_cleanup() {
  local rc=$?
  stop_pid "$STREAM_PID" "integ_tool stream"
  prom_cleanup "$rc"
  (exit "$rc")
  cleanup
}
trap metrics_cleanup EXIT

# callrelay with the HTTP listener on a kernel-chosen port: sets SERVER_PORT and HTTP_PORT.
start_callrelay_http() {
  [ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"
  write_callrelay_config '{udp: ["127.0.0.1:0"]}' 'log: {level: info}' \
    "telemetry: {per_allocation: {max_series: $CAP}}"
  launch_callrelay "$CALLRELAY_BIN"
  SERVER_PORT="$(logged_port udp '127\.0\.0\.1')"
  HTTP_PORT="$(logged_port http '127\.0\.0\.1')"
  [ -n "$SERVER_PORT" ] && [ "$SERVER_PORT" != 0 ] || fail "callrelay logged no 'listening udp 127.0.0.1:PORT'"
  [ -n "$HTTP_PORT" ] && [ "$HTTP_PORT" != 0 ] || fail "callrelay logged no 'listening http 127.0.0.1:PORT'"
  log "callrelay running (pid $SERVER_PID): udp $SERVER_PORT, http $HTTP_PORT"
}

scrape() { curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics"; }

# sample_value FILE METRIC LABEL_REGEX: the value of the one sample of METRIC whose label set
# matches LABEL_REGEX (any or no label set when it is empty; empty if none; fails if several).
sample_value() {
  local values pattern="^$2\\{[^}]*$3[^}]*\\} "
  [ -n "$3" ] || pattern="^$2(\\{[^}]*\\})? "
  values="$(grep -E "$pattern" "$1" | awk '{print $2}')"
  [ "$(printf '%s' "$values" | grep -c .)" -le 1 ] || fail "several $2 samples match $3 in $1"
  printf '%s' "$values"
}

# greater A B: true if the number A > B (values may be in exponent notation).
greater() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }

# wait_stream_line REGEX SECONDS: waits for the stream tool's stdout to match.
wait_stream_line() {
  local i
  for i in $(seq 1 $(($2 * 10))); do
    grep -qE "$1" "$WORK_DIR/stream.out" && return 0
    kill -0 "$STREAM_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK_DIR/stream.err" >&2
  fail "integ_tool stream did not print '$1'"
}

# start_stream USER...: one allocation per REST user id, relaying to the echo peer.
start_stream() {
  local expiry=$(($(date +%s) + 3600)) args=() user
  for user in "$@"; do
    args+=("$expiry:$user" "$(mint_password "$expiry:$user")")
  done
  : >"$WORK_DIR/stream.out"
  timeout 150 "$INTEG_TOOL" stream 127.0.0.1 "$SERVER_PORT" 127.0.0.1 "$PEER_PORT" 120 "${args[@]}" \
    >"$WORK_DIR/stream.out" 2>"$WORK_DIR/stream.err" &
  STREAM_PID=$!
  wait_stream_line "^allocated $#\$" 15
}

# stop_stream N: SIGTERM makes the tool send Refresh(0) for its N allocations; it must succeed.
stop_stream() {
  kill -TERM "$STREAM_PID"
  wait "$STREAM_PID"
  local rc=$?
  STREAM_PID=""
  [ "$rc" -eq 0 ] || { cat "$WORK_DIR/stream.err" >&2; fail "integ_tool stream failed (exit $rc)"; }
  grep -qE "^released $1 " "$WORK_DIR/stream.out" || fail "integ_tool stream did not release $1 allocation(s)"
  log "stream: $(tail -n1 "$WORK_DIR/stream.out")"
}

# prom_first_value PROMQL: the value of the query's first sample (empty if there is none).
prom_first_value() {
  prom_query "$1" | node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    if (r.status !== "success") { console.error(JSON.stringify(r)); process.exit(1); }
    const v = r.data.result[0];
    process.stdout.write(v ? v.value[1] : "");'
}

# wait_prom_positive PROMQL SECONDS: waits until the query returns a sample > 0.
wait_prom_positive() {
  local i v=""
  for i in $(seq 1 $(($2 * 2))); do
    v="$(prom_first_value "$1")" || fail "Prometheus rejected the query $1"
    [ -n "$v" ] && greater "$v" 0 && { log "prometheus: $1 = $v"; return 0; }
    sleep 0.5
  done
  fail "Prometheus query '$1' gave no sample > 0 within $2 s (last: '${v}')"
}

start_callrelay_http
start_peer
start_prometheus "$HTTP_PORT" "$DEPLOY_DIR/prometheus/alerts.yml"

# --- 1-2: one allocation; its series grows while it lives -------------------------------------
LIVE_USER="live-$$"
start_stream "$LIVE_USER"
SEL="user=\"$LIVE_USER\""
scrape >"$WORK_DIR/m1.txt" || fail "GET /metrics failed"
first_up="$(sample_value "$WORK_DIR/m1.txt" callrelay_allocation_relayed_bytes_total "direction=\"client_to_peer\"[^}]*$SEL")"
first_down="$(sample_value "$WORK_DIR/m1.txt" callrelay_allocation_relayed_bytes_total "direction=\"peer_to_client\"[^}]*$SEL")"
[ -n "$first_up" ] && [ -n "$first_down" ] ||
  fail "no per-allocation bytes series for user $LIVE_USER while it lives: $(grep -E '^callrelay_allocation_' "$WORK_DIR/m1.txt" | head -n 6)"
grew=0
for i in $(seq 1 40); do
  sleep 0.5
  scrape >"$WORK_DIR/m2.txt" || fail "GET /metrics failed"
  up="$(sample_value "$WORK_DIR/m2.txt" callrelay_allocation_relayed_bytes_total "direction=\"client_to_peer\"[^}]*$SEL")"
  down="$(sample_value "$WORK_DIR/m2.txt" callrelay_allocation_relayed_bytes_total "direction=\"peer_to_client\"[^}]*$SEL")"
  [ -n "$up" ] && [ -n "$down" ] || fail "the per-allocation series vanished while the allocation lives"
  if greater "$up" "$first_up" && greater "$down" "$first_down"; then
    grew=1
    break
  fi
done
[ "$grew" = 1 ] || fail "per-allocation bytes did not grow while traffic flowed ($first_up -> $up, $first_down -> $down)"
kill -0 "$STREAM_PID" 2>/dev/null && ! grep -q '^released' "$WORK_DIR/stream.out" ||
  fail "the allocation ended before growth was seen"
log "per-allocation bytes grew while live: client_to_peer $first_up -> $up, peer_to_client $first_down -> $down"
grep -qE "^callrelay_allocation_relayed_bytes_total\{[^}]*allocation_id=\"[^\"]+\"[^}]*transport=\"udp\"[^}]*$SEL" \
  "$WORK_DIR/m2.txt" || fail "the per-allocation series lacks the allocation_id/transport labels"
if grep -E "^callrelay_[a-z_]+\{[^}]*user=\"[0-9]+:" "$WORK_DIR/m2.txt"; then
  fail "a user label carries the whole expiry:user REST username"
fi

# --- 3: promtool accepts the exposition -------------------------------------------------------
promtool check metrics <"$WORK_DIR/m2.txt" || fail "promtool check metrics rejects /metrics"

# Every metric the deploy files use is exported (histograms by their base name).
missing=""
for name in $(grep -ohE 'callrelay_[a-z0-9_]+' "$DEPLOY_DIR/prometheus/alerts.yml" \
  "$DEPLOY_DIR/grafana/callrelay-dashboard.json" | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
  grep -qE "^# TYPE $name " "$WORK_DIR/m2.txt" || missing="$missing $name"
done
[ -z "$missing" ] || fail "metrics used by deploy/prometheus or deploy/grafana are not exported:$missing"

# --- 4: a real Prometheus sees live per-allocation bandwidth -----------------------------------
wait_prom_positive "callrelay_allocation_relayed_bytes_total{$SEL, direction=\"client_to_peer\"}" 30
wait_prom_positive "sum(rate(callrelay_allocation_relayed_bytes_total{$SEL}[5s]))" 30
wait_prom_positive "sum(callrelay_relayed_bytes_total)" 10
kill -0 "$STREAM_PID" 2>/dev/null || fail "the allocation ended before Prometheus saw its bandwidth"

# Every dashboard query is valid PromQL against the real series (variables filled in).
node -e '
  const [dashboard, prom] = process.argv.slice(1);
  const d = JSON.parse(require("fs").readFileSync(dashboard, "utf8"));
  const exprs = d.panels.flatMap((p) => (p.targets || []).map((t) => t.expr));
  (async () => {
    for (const e of exprs) {
      const q = e.replaceAll("$__rate_interval", "5s").replaceAll("$instance", ".*")
        .replaceAll("$user", ".*").replaceAll("$top", "20");
      const res = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = await res.json();
      if (body.status !== "success") throw new Error(`Prometheus rejects ${q}: ${JSON.stringify(body)}`);
    }
    console.error(`${exprs.length} dashboard queries accepted by Prometheus`);
  })().catch((err) => { console.error(String(err)); process.exit(1); });
' "$DEPLOY_DIR/grafana/callrelay-dashboard.json" "$PROM_URL" || fail "a dashboard query is not valid PromQL"

# The deploy rules evaluate without error against the real metrics.
rules_ok=0
for i in $(seq 1 20); do
  curl -fsS --max-time 5 "$PROM_URL/api/v1/rules" >"$WORK_DIR/rules.json" || fail "GET /api/v1/rules failed"
  if node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const rules = r.data.groups.flatMap((g) => g.rules);
    const bad = rules.filter((x) => x.health === "err");
    if (bad.length) { console.error(JSON.stringify(bad, null, 1)); process.exit(2); }
    process.exit(rules.length > 0 && rules.every((x) => x.health === "ok") ? 0 : 1);
  ' "$WORK_DIR/rules.json"; then
    rules_ok=1
    break
  else
    [ $? -eq 2 ] && fail "a rule of deploy/prometheus/alerts.yml fails to evaluate"
  fi
  sleep 0.5
done
[ "$rules_ok" = 1 ] || fail "the deploy rules were not all evaluated within 10 s"
log "deploy/prometheus/alerts.yml rules evaluate without error on the live metrics"

# --- 5: Refresh(0) removes the allocation's series ----------------------------------------------
stop_stream 1
gone=0
for i in $(seq 1 20); do
  scrape >"$WORK_DIR/m3.txt" || fail "GET /metrics failed"
  if ! grep -qE "^callrelay_allocation_[a-z_]+\{[^}]*$SEL" "$WORK_DIR/m3.txt"; then
    gone=1
    break
  fi
  sleep 0.25
done
[ "$gone" = 1 ] || fail "per-allocation series of $LIVE_USER still exported after Refresh(0): $(grep -E "$SEL" "$WORK_DIR/m3.txt")"
ended="$(sample_value "$WORK_DIR/m3.txt" callrelay_allocations_ended_total 'family="ipv4"[^}]*reason="refresh_zero"[^}]*transport="udp"')"
greater "${ended:-0}" 0 || fail "callrelay_allocations_ended_total{reason=\"refresh_zero\"} did not count the release"

# --- 6: more allocations than the cap --------------------------------------------------------
users=()
for i in 1 2 3 4 5 6; do users+=("cap$i-$$"); done
start_stream "${users[@]}"
kept_ok=0
for i in $(seq 1 40); do
  scrape >"$WORK_DIR/m4.txt" || fail "GET /metrics failed"
  active="$(grep -E '^callrelay_allocations_active\{' "$WORK_DIR/m4.txt" | awk '{s += $2} END {print s + 0}')"
  [ "$active" = 6 ] || fail "callrelay_allocations_active sums to $active, expected 6"
  kept="$(grep -E '^callrelay_allocation_relayed_bytes_total\{' "$WORK_DIR/m4.txt" |
    sed -nE 's/.*allocation_id="([^"]+)".*/\1/p' | sort -u | wc -l)"
  [ "$kept" = "$CAP" ] || fail "$kept allocations have per-allocation series with 6 live and the cap at $CAP"
  suppressed="$(sample_value "$WORK_DIR/m4.txt" callrelay_allocation_series_suppressed '')"
  [ -n "$suppressed" ] && [ "$(awk -v v="$suppressed" 'BEGIN { print v + 0 }')" = 3 ] || fail "callrelay_allocation_series_suppressed is '$suppressed', expected 3"
  kept_users="$(grep -E '^callrelay_allocation_relayed_bytes_total\{' "$WORK_DIR/m4.txt" |
    sed -nE 's/.*user="([^"]+)".*/\1/p' | sort -u | tr '\n' ' ')"
  if [ "$kept_users" = "cap4-$$ cap5-$$ cap6-$$ " ]; then
    kept_ok=1
    break
  fi
  sleep 0.5
done
[ "$kept_ok" = 1 ] || fail "the kept series are not the 3 biggest allocations by throughput: $kept_users"
hits="$(sample_value "$WORK_DIR/m4.txt" callrelay_allocation_series_cap_hits_total '')"
greater "${hits:-0}" 0 || fail "callrelay_allocation_series_cap_hits_total did not count the cap"
log "cap: 6 live allocations, $CAP exported ($kept_users), cap hits $hits"
stop_stream 6

assert_server_alive
log "PASS"
