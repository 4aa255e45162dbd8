#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests (Debian's postgresql package), listening only on a
# unix socket in DIR/sock, trusting local connections as the role "callrelay".
#
#   pg_server.sh start DIR     initdb DIR/data on first use, start the server; prints its
#                              connection URI (database "callrelay", created on first use)
#   pg_server.sh stop DIR      fast shutdown (committed transactions are kept)
#   pg_server.sh kill DIR      immediate shutdown, as a crash: no checkpoint
#   pg_server.sh restart DIR   stop, then start on the same socket
#
# PostgreSQL refuses to run as root: as root (CI), DIR is handed to `nobody` and the server
# runs as that user through setpriv; otherwise it runs as the calling user. The server's log
# is DIR/postgres.log. fsync is off: the tests stop servers, they never cut the power.
set -euo pipefail

die() {
  echo "pg_server.sh: $*" >&2
  exit 1
}

[ $# -eq 2 ] || die "usage: pg_server.sh start|stop|kill|restart DIR"
cmd="$1"
dir="$(realpath -m "$2")"

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
    bindir="$d"
    break
  fi
done
[ -n "$bindir" ] || die "PostgreSQL is not installed (Debian package postgresql; scripts/install-deps.sh installs it)"

as_server=()
if [ "$(id -u)" = 0 ]; then
  as_server=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi

pg_ctl() { "${as_server[@]}" "$bindir/pg_ctl" -D "$dir/data" "$@"; }

start() {
  mkdir -p "$dir"
  if [ ! -d "$dir/data" ]; then
    mkdir -p "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
      chmod 0755 "$dir"
      chown nobody:nogroup "$dir" "$dir/sock"
    fi
    "${as_server[@]}" "$bindir/initdb" -D "$dir/data" -U callrelay --auth=trust -E UTF8 \
      --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      die "initdb failed"
    }
  fi
  # Unix socket only (no TCP port to collide with a test running beside this one); small
  # memory so that several test servers fit on one machine.
  pg_ctl -w -t 30 -l "$dir/postgres.log" \
    -o "-k $dir/sock -c listen_addresses='' -c fsync=off -c shared_buffers=16MB -c max_connections=40" \
    start >/dev/null || {
    tail -n 20 "$dir/postgres.log" >&2
    die "the server did not start"
  }
  if [ ! -f "$dir/created" ]; then
    "$bindir/psql" -X -q -h "$dir/sock" -U callrelay -d postgres -c "CREATE DATABASE callrelay" ||
      die "cannot create the database"
    touch "$dir/created"
  fi
  echo "postgresql://callrelay@/callrelay?host=$dir/sock"
}

case "$cmd" in
  start) start ;;
  stop) pg_ctl -w -m fast stop >/dev/null ;;
  kill) pg_ctl -w -m immediate stop >/dev/null ;;
  restart)
    pg_ctl -w -m fast stop >/dev/null
    start
    ;;
  *) die "unknown command '$cmd' (start, stop, kill, restart)" ;;
esac
