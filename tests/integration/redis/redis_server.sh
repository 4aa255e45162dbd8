#!/usr/bin/env bash
# A throwaway Redis server for tests (Debian's redis-server package), unprivileged, in DIR,
# listening on a unix socket (DIR/redis.sock) and, when PORT is given, on 127.0.0.1:PORT.
#
#   redis_server.sh start DIR [PORT]   start the server (no persistence); prints its URL
#   redis_server.sh stop DIR           shut it down
#   redis_server.sh kill DIR           SIGKILL, as a crash
#   redis_server.sh restart DIR        stop, then start again with the same socket and port
#
# As root (CI) the server runs as `nobody` through setpriv, as the PostgreSQL tests' server
# does. Its log is DIR/redis.log.
set -euo pipefail

die() {
  echo "redis_server.sh: $*" >&2
  exit 1
}

[ $# -ge 2 ] || die "usage: redis_server.sh start|stop|kill|restart DIR [PORT]"
cmd="$1"
dir="$(realpath -m "$2")"
port="${3:-}"

command -v redis-server >/dev/null ||
  die "redis-server is not installed (Debian package redis-server; scripts/install-deps.sh installs it)"

as_server=()
if [ "$(id -u)" = 0 ]; then
  as_server=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi

url() {
  if [ -f "$dir/port" ] && [ "$(cat "$dir/port")" != 0 ]; then
    echo "redis://127.0.0.1:$(cat "$dir/port")"
  else
    echo "unix://$dir/redis.sock"
  fi
}

start() {
  mkdir -p "$dir"
  if [ -n "$port" ]; then echo "$port" >"$dir/port"; fi
  [ -f "$dir/port" ] || echo 0 >"$dir/port"
  if [ "$(id -u)" = 0 ]; then
    chmod 0755 "$dir"
    chown nobody:nogroup "$dir"
  fi
  rm -f "$dir/redis.pid"
  # No RDB or AOF: the tests' data is throwaway, and a restart must start empty (as a Redis
  # that lost its memory would).
  "${as_server[@]}" redis-server --daemonize yes --port "$(cat "$dir/port")" --bind 127.0.0.1 \
    --unixsocket "$dir/redis.sock" --unixsocketperm 777 --dir "$dir" --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" --save "" --appendonly no --maxmemory 64mb ||
    die "redis-server did not start"
  for _ in $(seq 1 100); do
    if [ -S "$dir/redis.sock" ] && redis-cli -s "$dir/redis.sock" ping 2>/dev/null | grep -q PONG; then
      url
      return
    fi
    sleep 0.05
  done
  tail -n 20 "$dir/redis.log" >&2 || true
  die "the server did not answer within 5 s"
}

pid() { cat "$dir/redis.pid" 2>/dev/null || true; }

wait_gone() {
  local p="$1"
  for _ in $(seq 1 100); do
    kill -0 "$p" 2>/dev/null || return 0
    sleep 0.05
  done
  die "the server (pid $p) did not exit"
}

stop() {
  local p
  p="$(pid)"
  [ -n "$p" ] || return 0
  redis-cli -s "$dir/redis.sock" shutdown nosave >/dev/null 2>&1 || kill "$p" 2>/dev/null || true
  wait_gone "$p"
  rm -f "$dir/redis.sock"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  kill)
    p="$(pid)"
    if [ -n "$p" ]; then
      kill -KILL "$p" 2>/dev/null || true
      wait_gone "$p"
    fi
    rm -f "$dir/redis.sock"
    ;;
  restart)
    stop
    start
    ;;
  *) die "unknown command '$cmd' (start, stop, kill, restart)" ;;
esac
