#!/usr/bin/env bash
# Three callrelay instances on one real Redis (cluster.redis_url): a revocation on one refuses
# the credential on the others within a second, a per-user quota holds across instances,
# credentials carry the least-loaded instance's URIs (by region, draining ones left out), and
# with Redis killed each instance falls back safely, counts it, and catches up when Redis is
# back. The Redis server is Debian's redis-server, started here unprivileged on a unix socket;
# the cases are shared.test.js (node's test runner, its own TURN client).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -n "${CALLRELAY_BIN:-}" ] && [ -x "$CALLRELAY_BIN" ] || {
  echo "FAIL: CALLRELAY_BIN is not an executable callrelay" >&2
  exit 1
}
WORK_DIR="$(mktemp -d /tmp/callrelay-cluster-shared-XXXXXX)"
REDIS="$HERE/../redis/redis_server.sh"
cleanup() {
  local rc=$?
  bash "$REDIS" stop "$WORK_DIR/redis" 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ -f "$WORK_DIR/redis/redis.log" ]; then
    echo "---- redis log (last 20 lines) ----" >&2
    tail -n 20 "$WORK_DIR/redis/redis.log" >&2
  fi
  rm -rf "$WORK_DIR"
  exit "$rc"
}
trap cleanup EXIT
# As root the server runs as nobody (redis_server.sh), which must reach its directory.
[ "$(id -u)" != 0 ] || chmod 0755 "$WORK_DIR"
REDIS_URL="$(bash "$REDIS" start "$WORK_DIR/redis")"
echo "redis at $REDIS_URL" >&2
CLUSTER_REDIS_URL="$REDIS_URL" CLUSTER_REDIS_DIR="$WORK_DIR/redis" CLUSTER_REDIS_SCRIPT="$REDIS" \
  node --test --test-concurrency=1 "$HERE/shared.test.js"
