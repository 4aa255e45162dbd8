# Helpers for integration scripts that check callrelay's metrics through a real Prometheus
# server (Debian's prometheus package), sourced after ../lib/common.sh:
#
# start_prometheus PORT [RULE_FILE...]
#                  a Prometheus on 127.0.0.1:<kernel-chosen port> scraping callrelay's
#                  127.0.0.1:PORT/metrics every second (rules, if given, evaluated every
#                  second); sets PROM_PID, PROM_URL, PROM_LOG.
# prom_cleanup     stops it and prints its log tail if the test failed (call from the EXIT trap
#                  before common.sh's cleanup).
# prom_query, prom_value, wait_prom_compare
#                  Prometheus' instant query API.
# Every wait is bounded; assertions are on values, never on how long something took.

PROM_PID=""
PROM_URL=""
PROM_LOG="$WORK_DIR/prometheus.log"

command -v prometheus >/dev/null || fail "prometheus not found (Debian package prometheus)"
command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus)"
command -v curl >/dev/null || fail "curl not found"
command -v node >/dev/null || fail "node not found (Debian package nodejs)"

prom_cleanup() {
  local rc="$1"
  stop_pid "$PROM_PID" prometheus
  if [ "$rc" -ne 0 ] && [ -f "$PROM_LOG" ]; then
    echo "---- prometheus log (last 20 lines) ----" >&2
    tail -n 20 "$PROM_LOG" >&2
  fi
}

start_prometheus() {
  local target_port="$1" rules="" f
  shift
  mkdir -p "$WORK_DIR/prometheus"
  for f in "$@"; do
    cp "$f" "$WORK_DIR/prometheus/"
    rules="$rules${rules:+, }$(basename "$f")"
  done
  cat >"$WORK_DIR/prometheus/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: [$rules]
scrape_configs:
  - job_name: callrelay
    static_configs: [{targets: ["127.0.0.1:$target_port"]}]
EOF
  run_prometheus
}

# run_prometheus: checks $WORK_DIR/prometheus/prometheus.yml with promtool and starts Prometheus
# on it (a loopback port of the kernel's choosing); sets PROM_PID and PROM_URL.
run_prometheus() {
  promtool check config "$WORK_DIR/prometheus/prometheus.yml" >/dev/null ||
    fail "promtool rejects the test's Prometheus config"
  prometheus --config.file="$WORK_DIR/prometheus/prometheus.yml" \
    --storage.tsdb.path="$WORK_DIR/prometheus/data" --web.listen-address=127.0.0.1:0 \
    >"$PROM_LOG" 2>&1 &
  PROM_PID=$!
  local port="" i
  for i in $(seq 1 100); do
    kill -0 "$PROM_PID" 2>/dev/null || fail "prometheus exited during startup"
    if grep -q 'Server is ready to receive web requests' "$PROM_LOG"; then
      port="$(ss -Hltnp 2>/dev/null | grep "pid=$PROM_PID," |
        sed -nE 's/.* 127\.0\.0\.1:([0-9]+) .*/\1/p' | head -n1)"
      [ -n "$port" ] && break
    fi
    sleep 0.1
  done
  [ -n "$port" ] || fail "prometheus not ready (or its port not found with ss) within 10 s"
  PROM_URL="http://127.0.0.1:$port"
  log "prometheus running (pid $PROM_PID) on $PROM_URL"
}

# prom_query PROMQL: the JSON answer of Prometheus' instant query API.
prom_query() { curl -fsS --max-time 5 -G "$PROM_URL/api/v1/query" --data-urlencode "query=$1"; }

# prom_value PROMQL: the value of the query's only sample (empty if none; fails if several, or
# if Prometheus rejects the query).
prom_value() {
  prom_query "$1" | node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    if (r.status !== "success") { console.error(JSON.stringify(r)); process.exit(1); }
    if (r.data.result.length > 1) {
      console.error(`several samples: ${JSON.stringify(r.data.result)}`);
      process.exit(1);
    }
    const v = r.data.result[0];
    process.stdout.write(v ? v.value[1] : "");'
}

# compare A OP B: true if the numbers compare so (OP: == != >= > <= <; exponent notation ok).
compare() {
  awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
    a += 0; b += 0
    if (op == "==") exit !(a == b); if (op == "!=") exit !(a != b)
    if (op == ">=") exit !(a >= b); if (op == ">") exit !(a > b)
    if (op == "<=") exit !(a <= b); if (op == "<") exit !(a < b)
    exit 2 }'
}

# wait_prom_compare PROMQL OP VALUE SECONDS: waits until the query's sample compares so to VALUE
# (scrapes lag the server by up to a scrape interval); fails with the last value otherwise.
wait_prom_compare() {
  local query="$1" op="$2" want="$3" seconds="$4" i v=""
  for i in $(seq 1 $((seconds * 4))); do
    v="$(prom_value "$query")" || fail "Prometheus rejected the query $query"
    if [ -n "$v" ] && [ "$v" != NaN ] && compare "$v" "$op" "$want"; then
      log "prometheus: $query = $v ($op $want)"
      return 0
    fi
    sleep 0.25
  done
  fail "Prometheus: '$query' is '${v}', expected $op $want (waited $seconds s)"
}
