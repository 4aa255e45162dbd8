#!/usr/bin/env bash
# Call quality metrics end to end: a real Prometheus can query the quality histograms, the
# interval classes, the relay/client disagreements and the preflight outcomes.
#  1. callrelay with calls (records in the work dir, an API key) and a Prometheus server
#     scraping it every second with deploy/prometheus/alerts.yml loaded; the quality series
#     exist at zero before the first call;
#  2. quality_driver.js: an active call where bob reports (`stats`, once a second) alice's audio
#     with 10% loss, 20 ms jitter, 40 ms RTT (poor), alice reports bob's without loss
#     (excellent), and integ_tool rtp-stream relays RTP with 5% loss through alice's
#     allocation; then one preflight: udp ok, tcp failed;
#  3. Prometheus answers, through /api/v1/query: client intervals by class equal to the reports
#     sent, the loss, jitter and MOS histograms with every report in its bucket, relay intervals
#     (fair or poor), loss_after_relay disagreements, the preflight counters and histograms by
#     transport; every query of the dashboard's Call quality row is valid and the quality rules
#     evaluate; `promtool check metrics` accepts /metrics.
# Every wait is bounded; assertions are on counts and values, none on how long something took.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/prom_helpers.sh"

DRIVER="$(dirname "$0")/quality_driver.js"
DEPLOY_DIR="$(cd "$(dirname "$0")/../../../deploy" && pwd)"
TOKEN_SECRET="quality-metrics-test-signaling-secret-0123456789"
API_KEY="quality-metrics-test-api-key-0123456789"

[ "$SERVER_KIND" = callrelay ] ||
  fail "this test needs callrelay's calls (CALLRELAY_TEST_SERVER=$SERVER_KIND)"

quality_cleanup() {
  local rc=$?
  prom_cleanup "$rc"
  (exit "$rc")
  cleanup
}
trap quality_cleanup EXIT

# --- 1: callrelay with calls, and Prometheus scraping it -----------------------------------------
[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"
write_callrelay_config '{udp: ["127.0.0.1:0"]}' "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-info}}" \
  "api: {keys: [{name: quality-metrics-test, key: \"$API_KEY\"}]}" \
  "calls:" "  enabled: true" "  token_secret: \"$TOKEN_SECRET\"" "  connect_timeout_s: 30" \
  "  records: {path: \"$WORK_DIR/calls.sqlite3\"}"
launch_callrelay "$CALLRELAY_BIN"
HTTP_PORT="$(logged_port http '127\.0\.0\.1')"
[ -n "$HTTP_PORT" ] && [ "$HTTP_PORT" != 0 ] || fail "callrelay logged no 'listening http 127.0.0.1:PORT'"
log "callrelay running (pid $SERVER_PID): http $HTTP_PORT"
start_prometheus "$HTTP_PORT" "$DEPLOY_DIR/prometheus/alerts.yml"

wait_prom_compare 'up{job="callrelay"}' == 1 30
wait_prom_compare 'count(callrelay_call_quality_intervals_total)' == 16 10  # 2 sources x 2 kinds x 4 classes
wait_prom_compare 'sum(callrelay_call_quality_intervals_total)' == 0 10
wait_prom_compare 'count(callrelay_call_quality_mos_count)' == 4 10
wait_prom_compare 'count(callrelay_call_quality_disagreements_total)' == 4 10
wait_prom_compare 'callrelay_call_video_fallbacks_total' == 0 10
wait_prom_compare 'count(callrelay_preflight_total)' == 6 10  # 3 transports x 2 outcomes

# --- 2: the call, its reports and relayed media; a preflight ---------------------------------------
timeout 120 node "$DRIVER" "http://127.0.0.1:$HTTP_PORT" "$API_KEY" "$INTEG_TOOL" \
  "$WORK_DIR/summary.json" || fail "the call with stats reports failed (see above)"
assert_server_alive
summary() { node -e 'console.log(require(process.argv[1])[process.argv[2]])' "$WORK_DIR/summary.json" "$1"; }
reports="$(summary reports)"
[ "$reports" -ge 5 ] || fail "only $reports stats reports from each side"

# --- 3: what Prometheus answers -----------------------------------------------------------------
CA='source="client", kind="audio"'
wait_prom_compare "sum(callrelay_call_quality_intervals_total{$CA})" == "$((2 * reports))" 30
wait_prom_compare "callrelay_call_quality_intervals_total{$CA, class=\"poor\"}" == "$reports" 10
wait_prom_compare "callrelay_call_quality_intervals_total{$CA, class=\"excellent\"}" == "$reports" 10
wait_prom_compare 'sum(callrelay_call_quality_intervals_total{source="client", kind="video"})' == 0 10
# Loss: alice's reports (0) at or below 0.001, bob's (0.1) in (0.05, 0.1].
wait_prom_compare "callrelay_call_quality_loss_ratio_count{$CA}" == "$((2 * reports))" 10
wait_prom_compare "callrelay_call_quality_loss_ratio_bucket{$CA, le=\"0.001\"}" == "$reports" 10
wait_prom_compare "callrelay_call_quality_loss_ratio_bucket{$CA, le=\"0.05\"}" == "$reports" 10
wait_prom_compare "callrelay_call_quality_loss_ratio_bucket{$CA, le=\"0.1\"}" == "$((2 * reports))" 10
wait_prom_compare "callrelay_call_quality_loss_ratio_sum{$CA}" '>=' "$(awk -v n="$reports" 'BEGIN { print n * 0.1 - 1e-9 }')" 10
# Jitter: 2 ms in (0.001, 0.0025], 20 ms in (0.01, 0.02].
wait_prom_compare "callrelay_call_quality_jitter_seconds_bucket{$CA, le=\"0.001\"}" == 0 10
wait_prom_compare "callrelay_call_quality_jitter_seconds_bucket{$CA, le=\"0.0025\"}" == "$reports" 10
wait_prom_compare "callrelay_call_quality_jitter_seconds_bucket{$CA, le=\"0.01\"}" == "$reports" 10
wait_prom_compare "callrelay_call_quality_jitter_seconds_bucket{$CA, le=\"0.02\"}" == "$((2 * reports))" 10
# RTT: 10 ms in (0.005, 0.01], 40 ms in (0.025, 0.05].
wait_prom_compare "callrelay_call_quality_rtt_seconds_bucket{$CA, le=\"0.005\"}" == 0 10
wait_prom_compare "callrelay_call_quality_rtt_seconds_bucket{$CA, le=\"0.01\"}" == "$reports" 10
wait_prom_compare "callrelay_call_quality_rtt_seconds_bucket{$CA, le=\"0.025\"}" == "$reports" 10
wait_prom_compare "callrelay_call_quality_rtt_seconds_bucket{$CA, le=\"0.05\"}" == "$((2 * reports))" 10
# MOS: each report in the bucket of its E-model score (bob's near 3.4, alice's near 4.4).
mos_le() { awk -v m="$1" 'BEGIN { n = split("1 1.5 2 2.5 3 3.5 4 4.25 4.5", b, " ")
  for (i = 1; i <= n; ++i) if (m <= b[i]) { print b[i]; exit } print "+Inf" }'; }
mos_below() { awk -v m="$1" 'BEGIN { n = split("1 1.5 2 2.5 3 3.5 4 4.25 4.5", b, " ")
  p = ""; for (i = 1; i <= n; ++i) if (b[i] < m) p = b[i]; print p }'; }
for who in bob alice; do
  mos="$(summary "${who}Mos")"
  le="$(mos_le "$mos")"
  below="$(mos_below "$mos")"
  log "$who's reports: MOS $mos, bucket ($below, $le]"
  wait_prom_compare "callrelay_call_quality_mos_bucket{$CA, le=\"$le\"} - ignoring (le) callrelay_call_quality_mos_bucket{$CA, le=\"$below\"}" \
    '>=' "$reports" 10
done
wait_prom_compare "histogram_quantile(0.5, sum by (le) (rate(callrelay_call_quality_mos_bucket{$CA}[1m])))" '>' 1 10

# Relay: alice's leg scored (5% loss: fair or poor), and bob reporting 10% after the relay's 5%.
RA='source="relay", kind="audio"'
wait_prom_compare "sum(callrelay_call_quality_intervals_total{$RA})" '>=' 2 10
wait_prom_compare "sum(callrelay_call_quality_intervals_total{$RA, class=~\"fair|poor\"})" '>=' 1 10
wait_prom_compare "callrelay_call_quality_rtt_seconds_count{$RA}" '>=' 1 10
wait_prom_compare 'callrelay_call_quality_disagreements_total{kind="audio", reason="loss_after_relay"}' '>=' 1 10
wait_prom_compare 'callrelay_call_quality_disagreements_total{kind="audio", reason="client_underreports"}' == 0 10
wait_prom_compare 'sum(rate(callrelay_call_quality_intervals_total{class="poor"}[1m]))' '>' 0 10

# The preflight: udp ok, tcp failed, nothing for tls.
wait_prom_compare 'callrelay_preflight_total{transport="udp", outcome="ok"}' == 1 30
wait_prom_compare 'callrelay_preflight_total{transport="tcp", outcome="failed"}' == 1 10
wait_prom_compare 'sum(callrelay_preflight_total{transport="tls"})' == 0 10
wait_prom_compare 'callrelay_preflight_total{transport="udp", outcome="failed"}' == 0 10
wait_prom_compare 'callrelay_preflight_gather_seconds_count{transport="udp"}' == 1 10
wait_prom_compare 'callrelay_preflight_gather_seconds_sum{transport="udp"}' == 0.12 10
wait_prom_compare 'callrelay_preflight_gather_seconds_count{transport="tcp"}' == 0 10
wait_prom_compare 'callrelay_preflight_rtt_seconds_sum{transport="udp"}' == 0.0035 10

# The dashboard's Call quality row: every query valid, and those about the intervals and
# preflights of this call return data (variables as Grafana would fill them in).
node -e '
  const [dashboard, prom] = process.argv.slice(1);
  const d = JSON.parse(require("fs").readFileSync(dashboard, "utf8"));
  const start = d.panels.findIndex((p) => p.type === "row" && p.title === "Call quality");
  if (start < 0) { console.error("no Call quality row in the dashboard"); process.exit(1); }
  const end = d.panels.findIndex((p, i) => i > start && p.type === "row");
  const panels = d.panels.slice(start + 1, end < 0 ? undefined : end);
  // The call has ended (no live allocation) and nobody sent video.
  const expectEmpty = new Set(["Live allocations: media loss and jitter (worst $top)",
    "Mean MOS (client, video)"]);
  const fill = (e) => e.replace(/\$__rate_interval/g, "1m").replace(/\$instance/g, ".*")
    .replace(/\$user/g, ".*").replace(/\$top/g, "20");
  (async () => {
    let bad = 0, withData = 0, queries = 0;
    for (const p of panels) {
      for (const t of p.targets) {
        ++queries;
        const r = await (await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(fill(t.expr))}`)).json();
        if (r.status !== "success") { console.error(`${p.title}: ${r.error}`); ++bad; continue; }
        if (r.data.result.some((s) => s.value[1] !== "NaN")) ++withData;
        else if (!expectEmpty.has(p.title)) {
          console.error(`${p.title}: no data for ${t.expr}`); ++bad;
        }
      }
    }
    console.error(`${queries} Call quality queries accepted, ${withData} with data`);
    process.exit(bad ? 1 : 0);
  })();
' "$DEPLOY_DIR/grafana/callrelay-dashboard.json" "$PROM_URL" || fail "a Call quality panel query is invalid or empty"

# The quality rules of deploy/prometheus/alerts.yml evaluate without error.
wait_rules_ok() {
  local i out=""
  for i in $(seq 1 40); do
    out="$(curl -fsS --max-time 5 "$PROM_URL/api/v1/rules")" || fail "GET /api/v1/rules failed"
    if node -e '
      const g = JSON.parse(process.argv[1]).data.groups.find((x) => x.name === "callrelay.call_quality");
      if (!g) process.exit(2);
      const bad = g.rules.filter((r) => r.health !== "ok");
      if (bad.length) { console.error(JSON.stringify(bad)); process.exit(bad.some((r) => r.health === "err") ? 3 : 1); }
    ' "$out"; then return 0; fi
    [ $? -eq 3 ] && fail "a callrelay.call_quality rule fails to evaluate"
    sleep 0.25
  done
  fail "the callrelay.call_quality rules were not evaluated healthy within 10 s"
}
wait_rules_ok

curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" >"$WORK_DIR/metrics.txt" ||
  fail "GET /metrics failed"
promtool check metrics <"$WORK_DIR/metrics.txt" || fail "promtool check metrics rejects /metrics"
assert_server_alive
log "PASS"
