#!/bin/bash
# systemd_verify.sh UNIT EXAMPLE_CONFIG: `systemd-analyze verify` accepts the unit without a
# single warning (unknown keys are only warnings, so any output fails), and the unit keeps what
# the drain and the watchdog need: Type=notify, WatchdogSec, ExecReload sending SIGHUP, and a
# TimeoutStopSec above the default drain.deadline_s of the example configuration.
# Exit 77 (skipped) when systemd-analyze cannot run here (not installed, or a chroot without
# the pieces it needs): a known-good unit is verified first to tell that from a bad unit.
set -u
unit="$1" example="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed (Debian package systemd)"; exit 77; }
printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$work/probe.service"
if ! probe="$(systemd-analyze verify "$work/probe.service" 2>&1)" || [ -n "$probe" ]; then
  echo "SKIP: systemd-analyze verify does not work here (a chroot or container without systemd's runtime): $probe"
  exit 77
fi

# The binary is installed at /usr/local/bin/callrelay on a real host; verify checks that the
# executable exists, so it is pointed at one that does.
sed 's#/usr/local/bin/callrelay#/bin/true#g' "$unit" >"$work/callrelay.service"
out="$(systemd-analyze verify "$work/callrelay.service" 2>&1)"
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ] || { echo "FAIL: systemd-analyze verify (rc $rc): $out"; exit 1; }

value() { sed -nE "s/^$1=(.*)$/\1/p" "$unit" | tail -n1; }
[ "$(value Type)" = notify ] || { echo "FAIL: Type must be notify (callrelay sends READY=1)"; exit 1; }
[ -n "$(value WatchdogSec)" ] || { echo "FAIL: no WatchdogSec (callrelay pings while its workers tick)"; exit 1; }
value ExecReload | grep -qE 'kill -HUP \$MAINPID' || { echo "FAIL: ExecReload must send SIGHUP to \$MAINPID"; exit 1; }
stop="$(value TimeoutStopSec | sed -E 's/s$//')"
deadline="$(sed -nE 's/^  deadline_s: ([0-9]+).*/\1/p' "$example" | head -n1)"
[ -n "$deadline" ] || { echo "FAIL: no drain.deadline_s in $example"; exit 1; }
[[ "$stop" =~ ^[0-9]+$ ]] || { echo "FAIL: TimeoutStopSec '$stop' is not a number of seconds"; exit 1; }
[ "$stop" -gt "$deadline" ] || { echo "FAIL: TimeoutStopSec ($stop s) must exceed drain.deadline_s ($deadline s), or systemd kills a drain"; exit 1; }
echo "ok: systemd-analyze verify accepts the unit; Type=notify, WatchdogSec=$(value WatchdogSec), TimeoutStopSec=${stop}s > drain.deadline_s=${deadline}s"
