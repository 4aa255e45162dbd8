# Sourced by bench/run.sh: the housekeeping rows (bench/timers), one worker's TurnServer driven
# in process on the server's CPU, the held allocations, the burst of expiries, and the burst once
# more with callrelay's observers attached. Uses run.sh's BUILD, SERVER_CPU, WORK, NOTES and R.
# shellcheck shell=bash

# Housekeeping with 100k allocations held and a burst of 100k expiries (bench_timers: the core
# driven as a worker drives it, in process, on CPU $SERVER_CPU).
bench_timers() {
  log "== housekeeping (bench_timers)"
  background_check timers
  local mode out
  # The burst once more with callrelay's telemetry and log, whose line per ended allocation goes
  # to a file (as a service's log would), removed after the run.
  for mode in "held --allocations 0" "held --allocations 100000" "burst --allocations 100000" \
    "burst --allocations 100000 --observers"; do
    # shellcheck disable=SC2086  # mode is words on purpose
    out=$(nice -n -10 taskset -c $SERVER_CPU "$BUILD/bench/bench_timers" $mode 2>"$WORK/timers.log") ||
      NOTES+=("bench_timers $mode failed (see $WORK/timers.err)")
    grep -v '^{' "$WORK/timers.log" >>"$WORK/timers.err"
    rm -f "$WORK/timers.log"
    echo "$out" >>"$WORK/timers.out"
    local key value suffix=
    [[ $mode == "held --allocations 0" ]] && suffix=_none
    [[ $mode == *--observers ]] && suffix=_observed
    while read -r key value; do
      [[ $key == timers.* ]] && R[$key$suffix]=$value
    done <<<"$out"
  done
}
