#!/usr/bin/env bash
# The cluster dashboard against two live instances, on loopback:
#  1. two callrelays (HTTP listeners on kernel-chosen ports) are scraped by a real Prometheus
#     whose configuration is deploy/prometheus/prometheus-kubernetes.yml with its DNS discovery
#     replaced by the two targets, each carrying the SRV target name the headless Service would
#     give (callrelay-0.callrelay.callrelay.svc.cluster.local.): the file's own relabeling must
#     label them instance="callrelay-0" and "callrelay-1";
#  2. `integ_tool stream` holds 2 allocations on callrelay-0 and 1 on callrelay-1;
#  3. every query of deploy/grafana/callrelay-cluster.json is accepted, and the dashboard's own
#     queries give 2 instances up, 3 allocations in total, 2 and 1 by instance, shares of 2/3
#     and 1/3, a total of 1 with $instance set to callrelay-1, and the $instance variable's
#     query lists both instances.
# Every wait is bounded; no assertion depends on how long something took.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/prom_helpers.sh"

DEPLOY_DIR="$(cd "$(dirname "$0")/../../../deploy" && pwd)"
DASHBOARD="$DEPLOY_DIR/grafana/callrelay-cluster.json"
B_PID=""
B_LOG="$WORK_DIR/server-b.log"
STREAM_PIDS=()

[ "$SERVER_KIND" = callrelay ] || fail "this test needs callrelay's /metrics (CALLRELAY_TEST_SERVER=$SERVER_KIND)"
[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"

cluster_cleanup() {
  local rc=$? pid
  for pid in "${STREAM_PIDS[@]}"; do stop_pid "$pid" "integ_tool stream"; done
  stop_pid "$B_PID" "callrelay (second instance)"
  if [ "$rc" -ne 0 ] && [ -f "$B_LOG" ]; then
    echo "---- second instance's log (last 40 lines) ----" >&2
    tail -n 40 "$B_LOG" >&2
  fi
  prom_cleanup "$rc"
  (exit "$rc")
  cleanup
}
trap cluster_cleanup EXIT

# --- 1: two instances, one Prometheus labelling them as on Kubernetes -----------------------
write_callrelay_config '{udp: ["127.0.0.1:0"]}' 'log: {level: info}'
launch_callrelay "$CALLRELAY_BIN"
A_PORT="$(logged_port udp '127\.0\.0\.1')"
A_HTTP="$(logged_port http '127\.0\.0\.1')"
# The second instance: its own state directory and relay range, the same secret.
mkdir -p "$WORK_DIR/b/state"
sed -e "s#^state_dir: .*#state_dir: $WORK_DIR/b/state#" \
  -e 's#^relay: .*#relay: {ports: {min: 56000, max: 60000}}#' \
  "$WORK_DIR/callrelay.yaml" >"$WORK_DIR/b/callrelay.yaml"
"$CALLRELAY_BIN" --config "$WORK_DIR/b/callrelay.yaml" >"$B_LOG" 2>&1 &
B_PID=$!
for i in $(seq 1 100); do
  grep -qE "$(log_line info ready)" "$B_LOG" && break
  kill -0 "$B_PID" 2>/dev/null || fail "the second callrelay exited during startup"
  sleep 0.1
done
SERVER_LOG_A="$SERVER_LOG"
SERVER_LOG="$B_LOG"
B_PORT="$(logged_port udp '127\.0\.0\.1')"
B_HTTP="$(logged_port http '127\.0\.0\.1')"
SERVER_LOG="$SERVER_LOG_A"
for p in "$A_PORT" "$A_HTTP" "$B_PORT" "$B_HTTP"; do
  [ -n "$p" ] && [ "$p" != 0 ] || fail "an instance logged no udp or http port (a: $A_PORT/$A_HTTP, b: $B_PORT/$B_HTTP)"
done
log "instances: callrelay-0 udp $A_PORT http $A_HTTP, callrelay-1 udp $B_PORT http $B_HTTP"

# The deploy file's scrape job with static targets in place of dns_sd_configs; every other line
# (relabeling included) is the file's own. Intervals shortened for the test.
mkdir -p "$WORK_DIR/prometheus"
cp "$DEPLOY_DIR/prometheus/alerts.yml" "$WORK_DIR/prometheus/"
srv() { printf '%s.callrelay.callrelay.svc.cluster.local.' "$1"; }
awk -v a="127.0.0.1:$A_HTTP" -v b="127.0.0.1:$B_HTTP" -v sa="$(srv callrelay-0)" -v sb="$(srv callrelay-1)" '
  /^    dns_sd_configs:/ {
    print "    static_configs:"
    print "      - targets: [\"" a "\"]"
    print "        labels: {__meta_dns_srv_record_target: \"" sa "\"}"
    print "      - targets: [\"" b "\"]"
    print "        labels: {__meta_dns_srv_record_target: \"" sb "\"}"
    skip = 1; replaced++; next
  }
  skip && /^    [a-z_]+:/ { skip = 0 }
  skip { next }
  { sub(/scrape_interval: (15|5)s/, "scrape_interval: 1s"); sub(/scrape_timeout: 4s/, "scrape_timeout: 1s")
    sub(/evaluation_interval: 15s/, "evaluation_interval: 1s"); print }
  END { if (replaced != 1) exit 1 }
' "$DEPLOY_DIR/prometheus/prometheus-kubernetes.yml" >"$WORK_DIR/prometheus/prometheus.yml" ||
  fail "prometheus-kubernetes.yml has no dns_sd_configs block to replace"
grep -q '__meta_dns_srv_record_target' "$WORK_DIR/prometheus/prometheus.yml" || fail "no relabeling from the SRV target"
promtool check config "$WORK_DIR/prometheus/prometheus.yml" >/dev/null ||
  { cat "$WORK_DIR/prometheus/prometheus.yml" >&2; fail "promtool rejects the test's Prometheus config"; }
run_prometheus

wait_prom_compare 'up{job="callrelay", instance="callrelay-0"}' == 1 20
wait_prom_compare 'up{job="callrelay", instance="callrelay-1"}' == 1 20

# --- 2: allocations, 2 on callrelay-0 and 1 on callrelay-1 -----------------------------------
start_peer
# stream_to PORT NAME USER...: one allocation per user on the instance at PORT, relaying to the
# echo peer until stopped.
stream_to() {
  local port="$1" name="$2" expiry=$(($(date +%s) + 3600)) args=() user
  shift 2
  for user in "$@"; do args+=("$expiry:$user" "$(mint_password "$expiry:$user")"); done
  timeout 150 "$INTEG_TOOL" stream 127.0.0.1 "$port" 127.0.0.1 "$PEER_PORT" 120 "${args[@]}" \
    >"$WORK_DIR/stream-$name.out" 2>"$WORK_DIR/stream-$name.err" &
  STREAM_PIDS+=($!)
  for i in $(seq 1 150); do
    grep -qE "^allocated $#\$" "$WORK_DIR/stream-$name.out" && return 0
    kill -0 "${STREAM_PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK_DIR/stream-$name.err" >&2
  fail "integ_tool stream did not allocate $# on $name"
}
stream_to "$A_PORT" callrelay-0 "a1-$$" "a2-$$"
stream_to "$B_PORT" callrelay-1 "b1-$$"
wait_prom_compare 'sum(callrelay_allocations_active{job="callrelay"})' == 3 20

# --- 3: the dashboard's own queries --------------------------------------------------------
node - "$DASHBOARD" "$PROM_URL" <<'EOF' || fail "the cluster dashboard's queries do not show the instances' figures"
const [dashboardPath, prom] = process.argv.slice(2);
const d = JSON.parse(require("fs").readFileSync(dashboardPath, "utf8"));
const fill = (e, instance) => e.replaceAll("$__rate_interval", "5s").replaceAll("$instance", instance);
const query = async (q) => {
  const res = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = await res.json();
  if (body.status !== "success") throw new Error(`Prometheus rejects ${q}: ${JSON.stringify(body)}`);
  return body.data.result;
};
const panel = (title) => {
  const p = d.panels.find((x) => x.title === title);
  if (!p) throw new Error(`no panel "${title}"`);
  return p.targets[0].expr;
};
const problems = [];
const expect = (what, got, want) => {
  if (Math.abs(got - want) > 1e-9) problems.push(`${what}: ${got}, expected ${want}`);
  else console.error(`ok: ${what} = ${got}`);
};
const total = async (title, instance = ".*") => {
  const r = await query(fill(panel(title), instance));
  return r.length === 1 ? Number(r[0].value[1]) : NaN;
};
const byInstance = async (title) => {
  const out = {};
  for (const s of await query(fill(panel(title), ".*"))) out[s.metric.instance] = Number(s.value[1]);
  return out;
};
(async () => {
  const exprs = d.panels.flatMap((p) => (p.targets || []).map((t) => t.expr));
  for (const e of exprs) await query(fill(e, ".*"));
  console.error(`${exprs.length} cluster dashboard queries accepted by Prometheus`);

  expect("Instances up", await total("Instances up"), 2);
  expect("Active allocations (all)", await total("Active allocations"), 3);
  expect("Active allocations ($instance=callrelay-1)", await total("Active allocations", "callrelay-1"), 1);
  const alloc = await byInstance("Active allocations by instance");
  expect("allocations of callrelay-0", alloc["callrelay-0"], 2);
  expect("allocations of callrelay-1", alloc["callrelay-1"], 1);
  if (Object.keys(alloc).length !== 2) problems.push(`by instance: ${JSON.stringify(alloc)}`);
  const share = await byInstance("Share of the cluster's allocations");
  expect("share of callrelay-0", share["callrelay-0"], 2 / 3);
  expect("share of callrelay-1", share["callrelay-1"], 1 / 3);
  const transports = await query(fill(panel("Active allocations by transport"), ".*"));
  const sum = transports.reduce((s, x) => s + Number(x.value[1]), 0);
  expect("allocations by transport, summed", sum, 3);
  if (transports.some((x) => "instance" in x.metric)) problems.push("a cluster total keeps the instance label");
  const up = await byInstance("Up and draining by instance");
  if (!("callrelay-0" in up && "callrelay-1" in up)) problems.push(`up by instance: ${JSON.stringify(up)}`);

  // The $instance variable's query (label_values(up{job="callrelay"}, instance)).
  const v = d.templating.list.find((x) => x.name === "instance").query.query;
  const m = /^label_values\((.*), (\w+)\)$/.exec(v);
  const res = await fetch(`${prom}/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(m[1])}`);
  const names = (await res.json()).data;
  if (JSON.stringify(names) !== JSON.stringify(["callrelay-0", "callrelay-1"])) problems.push(`$instance values: ${JSON.stringify(names)}`);
  else console.error(`ok: $instance lists ${names.join(", ")}`);

  if (problems.length) { for (const p of problems) console.error(`FAIL: ${p}`); process.exit(1); }
})().catch((err) => { console.error(String(err)); process.exit(1); });
EOF

for pid in "${STREAM_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || fail "an allocation ended before the checks were done"; done
assert_server_alive
kill -0 "$B_PID" 2>/dev/null || fail "the second callrelay died"
log "PASS"
