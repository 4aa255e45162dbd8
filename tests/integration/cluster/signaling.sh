#!/usr/bin/env bash
# Calls across three callrelay instances (A, B, C) sharing one Redis (cluster.redis_url) and
# one PostgreSQL (cluster.postgres_url), each with its own state directory and ports:
#  1. alice on A calls bob on B through to the hang-up; the record is read from C;
#  2. exactly one accept when bob's two devices sit on B and C and both accept at once;
#  3. C killed (SIGKILL) while a call it owns rings on B and while its device is the callee of
#     an active call owned by A: both end cleanly for the other side;
#  4. Redis restarted during an active call between A and B: signaling recovers (renegotiation,
#     hang-up, a new call found through presence written again).
# Every wait is bounded; nothing is asserted about how long something took.
source "$(dirname "$0")/../lib/common.sh"

HERE="$(cd "$(dirname "$0")" && pwd)"
DRIVER="$HERE/signaling.js"
PG="$HERE/../postgres/pg_server.sh"
REDIS="$HERE/../redis/redis_server.sh"
TOKEN_SECRET="cluster-signaling-test-secret-0123456789"
API_KEY="cluster-signaling-test-api-key-0123456789"
PG_DIR="$WORK_DIR/pg"
REDIS_DIR="$WORK_DIR/redis"
declare -A PIDS=() HTTP=()

[ "$SERVER_KIND" = callrelay ] || fail "this test needs callrelay's calls (CALLRELAY_TEST_SERVER=$SERVER_KIND)"
[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || fail "CALLRELAY_BIN is not an executable callrelay"

cluster_cleanup() {
  local rc=$?
  for n in b c; do
    [ -n "${PIDS[$n]:-}" ] && stop_pid "${PIDS[$n]}" "callrelay $n"
    if [ -f "$WORK_DIR/server-$n.log" ] && grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$WORK_DIR/server-$n.log"; then
      echo "FAIL: sanitizer report in instance $n's log" >&2
      rc=1
    fi
    if [ "$rc" -ne 0 ] && [ -f "$WORK_DIR/server-$n.log" ]; then
      echo "---- instance $n log (last 40 lines) ----" >&2
      tail -n 40 "$WORK_DIR/server-$n.log" >&2
    fi
  done
  [ -d "$PG_DIR/data" ] && bash "$PG" stop "$PG_DIR" 2>/dev/null
  [ -d "$REDIS_DIR" ] && bash "$REDIS" stop "$REDIS_DIR" 2>/dev/null
  (exit "$rc")
  cleanup
}
trap cluster_cleanup EXIT

[ "$(id -u)" != 0 ] || chmod 0755 "$WORK_DIR"
PG_URL="$(bash "$PG" start "$PG_DIR")" || fail "PostgreSQL did not start"
REDIS_URL="$(bash "$REDIS" start "$REDIS_DIR")" || fail "Redis did not start"
log "PostgreSQL at $PG_URL, Redis at $REDIS_URL"

# instance_config NAME: calls, the shared database and Redis; NAME's own state dir.
instance_config() {
  write_callrelay_config '{udp: ["127.0.0.1:0"]}' "log: {level: ${CALLRELAY_TEST_LOG_LEVEL:-info}}" \
    "api: {keys: [{name: cluster-test, key: \"$API_KEY\"}]}" \
    "calls:" "  enabled: true" "  token_secret: \"$TOKEN_SECRET\"" "  grace_s: 2" \
    "  ring_timeout_s: 30" \
    "cluster:" "  instance_id: relay-$1" "  postgres_url: \"$PG_URL\"" "  redis_url: \"$REDIS_URL\""
  sed -i "s|^state_dir: .*|state_dir: $WORK_DIR/state-$1|" "$WORK_DIR/callrelay.yaml"
  mkdir -p "$WORK_DIR/state-$1"
}

# start_instance NAME: instance NAME in the background, waits for 'ready', sets HTTP[NAME].
start_instance() {
  local n="$1" f="$WORK_DIR/server-$1.log"
  instance_config "$n"
  cp "$WORK_DIR/callrelay.yaml" "$WORK_DIR/$n.yaml"
  "$CALLRELAY_BIN" --config "$WORK_DIR/$n.yaml" >"$f" 2>&1 &
  PIDS[$n]=$!
  for _ in $(seq 1 100); do
    grep -qE "$(log_line info ready)" "$f" && break
    kill -0 "${PIDS[$n]}" 2>/dev/null || fail "instance $n exited during startup: $(tail -n 5 "$f")"
    sleep 0.1
  done
  grep -qE "$(log_line info ready)" "$f" || fail "instance $n did not log 'ready' within 10 s"
  HTTP[$n]="$(SERVER_LOG="$f" logged_port http '127\.0\.0\.1')"
  [ -n "${HTTP[$n]}" ] && [ "${HTTP[$n]}" != 0 ] || fail "instance $n logged no http port"
  grep -q "signaling across instances through Redis" "$f" || fail "instance $n is not in cluster mode"
}

# A is the harness' server (its log is SERVER_LOG); B and C run beside it.
instance_config a
launch_callrelay "$CALLRELAY_BIN"
HTTP[a]="$(logged_port http '127\.0\.0\.1')"
start_instance b
start_instance c
ws() { echo "ws://127.0.0.1:${HTTP[$1]}"; }
log "A :${HTTP[a]} (pid $SERVER_PID), B :${HTTP[b]} (pid ${PIDS[b]}), C :${HTTP[c]} (pid ${PIDS[c]})"
# Each instance has subscribed before the first call (its first heartbeat wrote its liveness).
for f in "$SERVER_LOG" "$WORK_DIR/server-b.log" "$WORK_DIR/server-c.log"; do
  for _ in $(seq 1 50); do grep -q "subscribed to its signaling channel" "$f" && break; sleep 0.1; done
  grep -q "subscribed to its signaling channel" "$f" || fail "$f: never subscribed"
done

# --- 1: A to B, the record read from C -----------------------------------------------------------
timeout 60 node "$DRIVER" call "$TOKEN_SECRET" "$(ws a)" "$(ws b)" "$WORK_DIR/call.json" ||
  fail "the call from A to B failed"
ID="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK_DIR/call.json")"
rec=""
for _ in $(seq 1 50); do
  rec="$(curl -s -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:${HTTP[c]}/api/v1/calls/$ID")"
  echo "$rec" | grep -q "\"$ID\"" && break
  sleep 0.2
done
python3 - "$rec" "$WORK_DIR/call.json" <<'PY' || fail "C does not return the record of $ID: $rec"
import json, sys
rec = json.loads(sys.argv[1]); rec = rec.get("record", rec)
want = json.load(open(sys.argv[2]))
assert rec["id"] == want["id"] and rec["outcome"] == "completed", rec
assert rec["caller"] == want["caller"] and rec["callee"] == want["callee"], rec
PY
log "call $ID between A and B; its record read from C"
# A counted what it published to B (the HTTP tick copies the totals into the metrics).
sent=""
for _ in $(seq 1 30); do
  sent="$(curl -fsS --max-time 5 "http://127.0.0.1:${HTTP[a]}/metrics" |
    sed -nE 's/^callrelay_signaling_cluster_messages_total\{result="sent"\} ([0-9]+).*$/\1/p')"
  [ -n "$sent" ] && [ "$sent" != 0 ] && break
  sleep 0.2
done
[ -n "$sent" ] && [ "$sent" != 0 ] || fail "A's callrelay_signaling_cluster_messages_total{result=\"sent\"} is '$sent'"

# --- 2: exactly one accept across B and C ----------------------------------------------------------
timeout 120 node "$DRIVER" one-accept "$TOKEN_SECRET" "$(ws a)" "$(ws b)" "$(ws c)" 6 ||
  fail "exactly-one-accept across instances failed"

# --- 4 before 3 (it needs A and B only, and C still running costs nothing) ---------------------
# The driver runs this between its checks: Redis restarted (empty), then back once A and B
# logged a new subscription.
cat >"$WORK_DIR/restart_redis.sh" <<EOF
#!/usr/bin/env bash
set -e
count() { grep -c "subscribed to its signaling channel" "\$1" || true; }
a0="\$(count "$SERVER_LOG")"; b0="\$(count "$WORK_DIR/server-b.log")"
bash "$REDIS" restart "$REDIS_DIR" >/dev/null
for _ in \$(seq 1 150); do
  [ "\$(count "$SERVER_LOG")" -gt "\$a0" ] && [ "\$(count "$WORK_DIR/server-b.log")" -gt "\$b0" ] && break
  sleep 0.1
done
[ "\$(count "$SERVER_LOG")" -gt "\$a0" ] || { echo "A did not subscribe again" >&2; exit 1; }
[ "\$(count "$WORK_DIR/server-b.log")" -gt "\$b0" ] || { echo "B did not subscribe again" >&2; exit 1; }
# Liveness and presence are written again at once on subscribing; a heartbeat of slack.
sleep 1.5
EOF
timeout 90 node "$DRIVER" restart "$TOKEN_SECRET" "$(ws a)" "$(ws b)" "bash $WORK_DIR/restart_redis.sh" ||
  fail "signaling did not recover after a Redis restart"

# --- 3: C killed ---------------------------------------------------------------------------------
timeout 90 node "$DRIVER" kill "$TOKEN_SECRET" "$(ws a)" "$(ws b)" "$(ws c)" "${PIDS[c]}" ||
  fail "killing C did not end its calls cleanly"
wait "${PIDS[c]}" 2>/dev/null
PIDS[c]=""
grep -q "instance relay-c is gone" "$SERVER_LOG" || fail "A did not log that C is gone"
grep -q "instance relay-c is gone" "$WORK_DIR/server-b.log" || fail "B did not log that C is gone"

assert_server_alive
kill -0 "${PIDS[b]}" 2>/dev/null || fail "instance B is no longer running"
log "PASS: calls across instances over Redis"
