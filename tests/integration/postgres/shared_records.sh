#!/usr/bin/env bash
# Two callrelay instances on one PostgreSQL database (cluster.postgres_url):
#  1. a real PostgreSQL server (Debian's postgresql, unprivileged, unix socket in the work dir)
#     and instances A and B with calls enabled, each with its own state directory;
#  2. signaling-only calls through A and through B: GET /api/v1/calls of either instance lists
#     every record of both, each readable by id, pages walking the same list;
#  3. PostgreSQL killed (as a crash) while calls end on A: A's writer keeps the records and
#     retries; PostgreSQL started again, B lists every record: none was lost;
#  4. the schema was migrated once although both instances started against an empty database.
# Every wait is bounded; assertions are on records, none on how long something took.
source "$(dirname "$0")/../lib/common.sh"

HERE="$(cd "$(dirname "$0")" && pwd)"
DRIVER="$HERE/shared_records.js"
PG="$HERE/pg_server.sh"
TOKEN_SECRET="shared-records-test-signaling-secret-0123456789"
API_KEY="shared-records-test-api-key-0123456789"
PG_DIR="$WORK_DIR/pg"
B_PID=""
B_LOG="$WORK_DIR/server-b.log"

[ "$SERVER_KIND" = callrelay ] ||
  fail "this test needs callrelay's calls (CALLRELAY_TEST_SERVER=$SERVER_KIND)"
[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"

shared_cleanup() {
  local rc=$?
  stop_pid "$B_PID" "callrelay B"
  if [ -f "$B_LOG" ] && grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$B_LOG"; then
    echo "FAIL: sanitizer report in instance B's log" >&2
    rc=1
  fi
  if [ "$LOG_FORMAT" = json ] && [ -f "$B_LOG" ] && ! python3 "$LIB_DIR/check_json_log.py" "$B_LOG"; then
    echo "FAIL: a line of instance B's log is not one JSON object (log.format: json)" >&2
    rc=1
  fi
  if [ "$rc" -ne 0 ]; then
    [ -f "$B_LOG" ] && { echo "---- instance B log (last 40 lines) ----" >&2; tail -n 40 "$B_LOG" >&2; }
    [ -f "$PG_DIR/postgres.log" ] && { echo "---- postgres log (last 20 lines) ----" >&2; tail -n 20 "$PG_DIR/postgres.log" >&2; }
  fi
  [ -d "$PG_DIR/data" ] && bash "$PG" stop "$PG_DIR" 2>/dev/null
  (exit "$rc")
  cleanup
}
trap shared_cleanup EXIT

# --- 1: PostgreSQL, then A and B ------------------------------------------------------------------
# As root the server runs as nobody (pg_server.sh), which must reach its directory.
[ "$(id -u)" != 0 ] || chmod 0755 "$WORK_DIR"
PG_URL="$(bash "$PG" start "$PG_DIR")" || fail "PostgreSQL did not start"
log "PostgreSQL at $PG_URL"

# instance_config NAME: the test config with calls and the shared database; NAME's own state dir.
instance_config() {
  write_callrelay_config '{udp: ["127.0.0.1:0"]}' "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-info}}" \
    "api: {keys: [{name: shared-records-test, key: \"$API_KEY\"}]}" \
    "calls:" "  enabled: true" "  token_secret: \"$TOKEN_SECRET\"" "  grace_s: 2" \
    "cluster:" "  instance_id: relay-$1" "  postgres_url: \"$PG_URL\""
  sed -i "s|^state_dir: .*|state_dir: $WORK_DIR/state-$1|" "$WORK_DIR/callrelay.yaml"
  mkdir -p "$WORK_DIR/state-$1"
}

# Both start together against the empty database: the migration runs once, under its lock.
instance_config b
cp "$WORK_DIR/callrelay.yaml" "$WORK_DIR/b.yaml"
"$CALLRELAY_BIN" --config "$WORK_DIR/b.yaml" >"$B_LOG" 2>&1 &
B_PID=$!
instance_config a
launch_callrelay "$CALLRELAY_BIN"
A_HTTP="$(logged_port http '127\.0\.0\.1')"
[ -n "$A_HTTP" ] && [ "$A_HTTP" != 0 ] || fail "instance A logged no 'listening http 127.0.0.1:PORT'"
for _ in $(seq 1 100); do
  grep -qE "$(log_line info ready)" "$B_LOG" && break
  kill -0 "$B_PID" 2>/dev/null || fail "instance B exited during startup: $(tail -n 5 "$B_LOG")"
  sleep 0.1
done
grep -qE "$(log_line info ready)" "$B_LOG" || fail "instance B did not log 'ready' within 10 s"
B_HTTP="$(SERVER_LOG="$B_LOG" logged_port http '127\.0\.0\.1')"
[ -n "$B_HTTP" ] && [ "$B_HTTP" != 0 ] || fail "instance B logged no 'listening http 127.0.0.1:PORT'"
log "instance A (pid $SERVER_PID) http $A_HTTP, instance B (pid $B_PID) http $B_HTTP"
for f in "$SERVER_LOG" "$B_LOG"; do
  grep -q "call records: in PostgreSQL at postgresql://callrelay@/callrelay" "$f" ||
    fail "$f does not say that call records go to PostgreSQL"
done

psql_value() { psql -X -A -t -h "$PG_DIR/sock" -U callrelay -d callrelay -c "$1"; }
[ "$(psql_value 'SELECT count(*) FROM callrelay_schema_version')" = 1 ] ||
  fail "the schema was migrated more than once: $(psql_value 'SELECT * FROM callrelay_schema_version')"

# --- 2: calls through A and B, records through both ----------------------------------------------
timeout 60 node "$DRIVER" calls "ws://127.0.0.1:$A_HTTP" "$TOKEN_SECRET" a1 4 "$WORK_DIR/a1.json" ||
  fail "calls through A failed"
timeout 60 node "$DRIVER" calls "ws://127.0.0.1:$B_HTTP" "$TOKEN_SECRET" b1 3 "$WORK_DIR/b1.json" ||
  fail "calls through B failed"
for http in "$B_HTTP" "$A_HTTP"; do
  timeout 60 node "$DRIVER" records "http://127.0.0.1:$http" "$API_KEY" 15000 \
    "$WORK_DIR/a1.json" "$WORK_DIR/b1.json" || fail "the records of both instances are not all listed by :$http"
done

# --- 3: PostgreSQL down while calls end on A ------------------------------------------------------
bash "$PG" kill "$PG_DIR" || fail "cannot stop PostgreSQL"
log "PostgreSQL killed"
timeout 60 node "$DRIVER" calls "ws://127.0.0.1:$A_HTTP" "$TOKEN_SECRET" a2 4 "$WORK_DIR/a2.json" ||
  fail "calls through A failed while PostgreSQL was down"
wait_for_log "call records: cannot store" 15 ||
  fail "instance A logged no failed write while PostgreSQL was down"
bash "$PG" start "$PG_DIR" >/dev/null || fail "PostgreSQL did not start again"
log "PostgreSQL started again"
timeout 60 node "$DRIVER" records "http://127.0.0.1:$B_HTTP" "$API_KEY" 30000 \
  "$WORK_DIR/a1.json" "$WORK_DIR/b1.json" "$WORK_DIR/a2.json" ||
  fail "records were lost across the PostgreSQL restart"
wait_for_log "call records: storing again after" 5 || fail "instance A logged no recovery"
[ "$(psql_value 'SELECT count(*) FROM call_records')" = 11 ] ||
  fail "call_records holds $(psql_value 'SELECT count(*) FROM call_records') rows, not 11"

assert_server_alive
kill -0 "$B_PID" 2>/dev/null || fail "instance B is no longer running"
log "PASS: 11 records through two instances on one PostgreSQL, 4 of them across a restart"
