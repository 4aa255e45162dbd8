# bench/run.sh's table: the markdown rows it prints from the results its runs gathered in R[],
# and the description of the machine and the run. Sourced by run.sh; not run on its own.

val() { local v=${R[$1]:-}; echo "${v:-n/a}"; }
fmt() {  # fmt VALUE DECIMALS [DIVISOR]
  [[ $1 == n/a || -z $1 ]] && { echo "n/a"; return; }
  awk -v v="$1" -v d="$2" -v s="${3:-1}" 'BEGIN { printf "%.*f", d, v / s }'
}
ratio() {
  [[ $1 == n/a || $2 == n/a || -z $1 || -z $2 ]] && { echo "n/a"; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'
}
stage_rss() {  # stage_rss SERVER COUNT [STAGES_KEY] -> MiB
  local s; s=$(val "$1.${3:-stages}")
  [[ $s == n/a ]] && { echo n/a; return; }
  local kib; kib=$(tr ',' '\n' <<<"$s" | awk -F: -v n="$2" '$1==n {print $2}')
  fmt "${kib:-n/a}" 1 1024
}
row() {  # row LABEL TARGET METRIC DECIMALS [DIVISOR [noratio]]
  local c k f r
  c=$(fmt "$(val callrelay.$3)" "$4" "${5:-1}")
  k=$(fmt "$(val coturn.$3)" "$4" "${5:-1}")
  f=$(fmt "$(val floor.$3)" "$4" "${5:-1}")
  [[ $3 == tcp_* || $3 == tls_* ]] && f=-   # the bare forwarder has no TCP mode
  r=$(ratio "$c" "$k"); [[ ${6:-} == noratio ]] && r=
  echo "| $1 | $c | $k | $f | $r | $2 |"
}

pair_cell() {  # pair_cell PAYLOAD [KEY] -> "0.95x (0.88-1.02, 5 pairs; 3,100 vs 3,260 ns)"
  local k=${2:-pairs}
  [[ $(val $k.ratio$1) == n/a ]] && { echo n/a; return; }
  echo "$(fmt "$(val $k.ratio$1)" 2)x ($(val $k.range$1), $(val $k.n$1) pairs; $(fmt "$(val $k.cpu$1)" 0) vs $(fmt "$(val $k.floor$1)" 0) ns)"
}

busy_pair() {  # busy_pair SERVER TRANSPORT -> "0.99 / 1.00"
  echo "$(fmt "$(val "$1.${2}_util160")" 2) / $(fmt "$(val "$1.${2}_gen160")" 2)"
}

table() {
  echo "| metric | callrelay | coturn | floor | callrelay/coturn | target |"
  echo "|---|---:|---:|---:|---:|---|"
  row "**server CPU per relayed packet, 160 B (ns)**" "≤ 0.70x, ≤ floor" cpu160 0
  row "server CPU per relayed packet, 1200 B (ns)" "" cpu1200 0
  local io
  for io in 160 1200; do
    echo "| server CPU per relayed packet, $io B, callrelay relay.io io_uring (ns) | $(fmt "$(val callrelay_uring.cpu$io)" 0) | $(fmt "$(val coturn.cpu$io)" 0) | $(fmt "$(val floor.cpu$io)" 0) | $(ratio "$(val callrelay_uring.cpu$io)" "$(val coturn.cpu$io)") | |"
  done
  for io in 160 1200; do
    echo "| server CPU per relayed packet, $io B, callrelay relay.multiplex_peers, 64 to a port (ns) | $(fmt "$(val callrelay_shared.cpu$io)" 0) | $(fmt "$(val coturn.cpu$io)" 0) | $(fmt "$(val floor.cpu$io)" 0) | $(ratio "$(val callrelay_shared.cpu$io)" "$(val coturn.cpu$io)") | |"
  done
  for io in 160 1200; do
    echo "| callrelay / floor, CPU per relayed packet, $io B: relay.io auto (epoll) / io_uring / shared relay ports | $(ratio "$(val callrelay.cpu$io)" "$(val floor.cpu$io)") / $(ratio "$(val callrelay_uring.cpu$io)" "$(val floor.cpu$io)") / $(ratio "$(val callrelay_shared.cpu$io)" "$(val floor.cpu$io)") | | | | ≤ 1.00x |"
  done
  for io in 160 1200; do
    echo "| callrelay / floor, server process CPU per relayed packet, $io B: epoll / io_uring / shared relay ports | $(ratio "$(val callrelay.proc$io)" "$(val floor.proc$io)") / $(ratio "$(val callrelay_uring.proc$io)" "$(val floor.proc$io)") / $(ratio "$(val callrelay_shared.proc$io)" "$(val floor.proc$io)") | | | | |"
  done
  echo "| callrelay (epoll) / floor, interleaved pairs: median CPU per relayed packet ratio (range over the pairs), 160 B / 1200 B | $(pair_cell 160) / $(pair_cell 1200) | | | | ≤ 1.00x |"
  echo "| callrelay (epoll) / floor, interleaved pairs: median server process CPU ratio, 160 B / 1200 B | $(fmt "$(val pairs.proc160)" 2)x / $(fmt "$(val pairs.proc1200)" 2)x | | | | |"
  echo "| windows lost (stalls) in the 160 / 1200 B saturation runs: callrelay epoll, shared ports | $(val callrelay.stalls160) / $(val callrelay.stalls1200), $(val callrelay_shared.stalls160) / $(val callrelay_shared.stalls1200) | $(val coturn.stalls160) / $(val coturn.stalls1200) | $(val floor.stalls160) / $(val floor.stalls1200) | | 0 |"
  echo "| packets dropped by callrelay with shared relay ports, by reason (its metrics after its runs) | $(val callrelay_shared.drops) | | | | no ambiguous_peer |"
  row "server CPU per relayed packet, TCP client, 160 B (ns)" "" tcp_cpu160 0
  row "server CPU per relayed packet, TCP client, 1200 B (ns)" "" tcp_cpu1200 0
  row "server CPU per relayed packet, TLS client, 160 B (ns)" "" tls_cpu160 0
  row "server CPU per relayed packet, TLS client, 1200 B (ns)" "" tls_cpu1200 0
  for io in 160 1200; do
    echo "| server CPU per relayed packet, TLS client, $io B, callrelay tls.records: packed (ns) | $(fmt "$(val callrelay.tls_packed_cpu$io)" 0) | $(fmt "$(val coturn.tls_cpu$io)" 0) | - | $(ratio "$(val callrelay.tls_packed_cpu$io)" "$(val coturn.tls_cpu$io)") | |"
  done
  echo "| callrelay / coturn, TLS clients (a record per frame), interleaved pairs: median CPU per relayed packet ratio (range over the pairs), 160 B / 1200 B | $(pair_cell 160 tlspairs) / $(pair_cell 1200 tlspairs) | | | | ≤ 0.70x |"
  echo "| callrelay / coturn, TLS clients, interleaved pairs: median server process CPU ratio, 160 B / 1200 B | $(fmt "$(val tlspairs.proc160)" 2)x / $(fmt "$(val tlspairs.proc1200)" 2)x | | | | |"
  echo "| callrelay / coturn, TLS clients packing each write into one record, interleaved pairs: median CPU per relayed packet ratio (range), 160 B / 1200 B | $(pair_cell 160 tlsclientpackedpairs) / $(pair_cell 1200 tlsclientpackedpairs) | | | | |"
  echo "| callrelay (tls.records: packed) / coturn, TLS clients packing each write, interleaved pairs: median CPU per relayed packet ratio (range over the pairs), 160 B / 1200 B | $(pair_cell 160 tlspackedpairs) / $(pair_cell 1200 tlspackedpairs) | | | | |"
  echo "| callrelay (tls.records: packed) / coturn, TLS clients packing each write, interleaved pairs: median server process CPU ratio, 160 B / 1200 B | $(fmt "$(val tlspackedpairs.proc160)" 2)x / $(fmt "$(val tlspackedpairs.proc1200)" 2)x | | | | |"
  row "server CPU per relayed packet, TCP client, 160 B, paced at $STREAM_PACE frames/s per client (ns)" "" tcp_paced_cpu160 0
  row "server CPU per relayed packet, TLS client, 160 B, paced at $STREAM_PACE frames/s per client (ns)" "" tls_paced_cpu160 0
  row "server process CPU per relayed packet, 160 B (ns; its threads, incl. softirq run in them)" "" proc160 0
  row "server process CPU per relayed packet, 1200 B (ns)" "" proc1200 0
  row "server process CPU per relayed packet, TCP client, 160 B (ns)" "" tcp_proc160 0
  row "server process CPU per relayed packet, TLS client, 160 B (ns)" "" tls_proc160 0
  # Below saturation a server wakes, works and sleeps between the scheduler's ticks, and CPU 0's
  # tick-sampled busy time in /proc/stat misses much of that work (seen: 0.7 s busy against 1.2 s
  # of the process's own CPU time); the process's time comes from the scheduler's clock.
  row "server process CPU per relayed packet, TCP client, 160 B, paced (ns)" "" tcp_paced_proc160 0
  row "server process CPU per relayed packet, TLS client, 160 B, paced (ns)" "" tls_paced_proc160 0
  row "relayed packets/s, 160 B, $CLIENTS clients" "" pps160 0
  row "relayed packets/s, 1200 B, $CLIENTS clients" "" pps1200 0
  row "relayed packets/s, TCP clients, 160 B, $CLIENTS clients" "" tcp_pps160 0
  row "relayed packets/s, TLS clients, 160 B, $CLIENTS clients" "" tls_pps160 0
  row "relayed packets/s, TCP clients paced, 160 B (the load offered)" "" tcp_paced_pps160 0
  row "server CPU busy during 160 B run (1 = saturated)" "" util160 2 1 noratio
  row "generator CPU busy during 160 B run (1 = saturated)" "" gen160 2 1 noratio
  local t
  for t in tcp tls; do
    echo "| server / generator CPU busy during ${t^^} client 160 B run | $(busy_pair callrelay $t) | $(busy_pair coturn $t) | - | | |"
  done
  row "RTT p50 (µs), $CLIENTS clients x 50 pps" "" p50 0
  row "RTT p99 (µs), $CLIENTS clients x 50 pps" "≤ 1.00x" p99 0
  row "allocations/s (401 round + permission + channel + Refresh 0)" "≥ 5x" allocs 0
  row "server process CPU per allocation cycle (µs)" "" alloc_us 0
  local name
  for n in 0 1000 10000; do
    echo "| RSS with $n idle allocations (MiB) | $(stage_rss callrelay $n) | $(stage_rss coturn $n) | n/a | $(ratio "$(stage_rss callrelay $n)" "$(stage_rss coturn $n)") | |"
  done
  row "RSS per idle allocation, slope 1k→10k (KiB)" "≤ 1 KiB" slope 2
  row "RSS per idle allocation, slope 10k→$HOLD_LARGE (KiB; callrelay held $(val callrelay.held_large))" "≤ 1 KiB" slope_large 2
  [[ $HOLD_HUGE -gt 0 ]] && huge_rows
  row "RSS before Allocate storm (MiB)" "" storm_before 1 1024
  row "RSS after 20k Allocates on 16 ports (MiB)" "flat" storm_after 1 1024
  echo "| storm answers (code:count) | $(val callrelay.storm_errors) | $(val coturn.storm_errors) | n/a | | |"
  echo "| CPU $SERVER_CPU busy with other work before the server's runs (%) | $(val callrelay.bg) | $(val coturn.bg) | $(val floor.bg) | | |"
  [[ ${BENCH_SKIP_TIMERS:-0} == 1 ]] && return
  local held none
  held=$(val timers.held_p99_us); none=$(val timers.held_p99_us_none)
  echo "| core round trip p99 of a 50 pps flow, 100k allocations held / none (µs) | $held / $none | n/a | n/a | $(ratio "$held" "$none") held/none | ≤ 1.10x |"
  echo "| longest on_timer call, 100k allocations held (µs) | $(val timers.held_longest_timer_us) | n/a | n/a | | |"
  echo "| longest stop in relaying, 100k expiries at once (µs; flow every 1 ms) | $(val timers.burst_longest_flow_delay_us) | n/a | n/a | | ≤ 1000 |"
  echo "| longest on_timer call during that burst (µs) | $(val timers.burst_longest_timer_us) | n/a | n/a | | |"
  # Each burst's stop beside the same window just before it, when nothing expires: a stop both
  # show is the machine's (the thread off its CPU), not the core's.
  echo "| stop in relaying, median of $(val timers.bursts) bursts / same window, no expiries (µs) | $(val timers.burst_stop_median_us) / $(val timers.quiet_stop_median_us) | n/a | n/a | | |"
  echo "| flow delay p99.9, bursts / no expiries (µs) | $(val timers.burst_p999_us) / $(val timers.quiet_p999_us) | n/a | n/a | | |"
  # A stop in which the thread was never switched out, neither taken off its CPU nor blocked, is
  # the core's own work: the figure the target is about, apart from the hypervisor taking the CPU.
  echo "| longest stop with the thread on its CPU throughout (no context switch), bursts / no expiries (µs) | $(val timers.burst_on_cpu_longest_flow_delay_us) / $(val timers.quiet_on_cpu_longest_flow_delay_us) | n/a | n/a | | ≤ 1000 |"
  echo "| CPU time taken by the hypervisor (steal) / interrupts, bursts / no expiries (ms) | $(val timers.burst_steal_ms) / $(val timers.burst_irq_ms), $(val timers.quiet_steal_ms) / $(val timers.quiet_irq_ms) | n/a | n/a | | |"
  echo "| involuntary context switches of the thread, bursts / no expiries | $(val timers.burst_switches) / $(val timers.quiet_switches) | n/a | n/a | | |"
  echo "| on_timer time per expired allocation (µs) | $(val timers.burst_timer_us_per_expiry) | n/a | n/a | | |"
  echo "| with callrelay's telemetry and log: longest stop / no expiries (µs) | $(val timers.burst_longest_flow_delay_us_observed) / $(val timers.quiet_longest_flow_delay_us_observed) | n/a | n/a | | ≤ 1000 |"
  echo "| with callrelay's telemetry and log: longest stop with the thread on its CPU throughout (no context switch), bursts / no expiries (µs) | $(val timers.burst_on_cpu_longest_flow_delay_us_observed) / $(val timers.quiet_on_cpu_longest_flow_delay_us_observed) | n/a | n/a | | ≤ 1000 |"
  echo "| with callrelay's telemetry and log, what the longest stop held since the flow packet before it: time in on_timer (µs) in calls; voluntary / involuntary switches; minor page faults | $(val timers.burst_longest_stop_timer_us_observed) in $(val timers.burst_longest_stop_timer_calls_observed); $(val timers.burst_longest_stop_voluntary_switches_observed) / $(val timers.burst_longest_stop_involuntary_switches_observed); $(val timers.burst_longest_stop_minor_faults_observed) | n/a | n/a | | |"
  echo "| with callrelay's telemetry and log: longest on_timer call (µs), time per expired allocation (µs) | $(val timers.burst_longest_timer_us_observed), $(val timers.burst_timer_us_per_expiry_observed) | n/a | n/a | | |"
}

# The largest hold: a server that did not get there shows why instead of its figures.
huge_cell() {  # huge_cell SERVER VALUE
  local note; note=$(val "$1.huge_note")
  if [[ $note != n/a && $2 == n/a ]]; then echo "n/a: $note"; else echo "$2"; fi
}
huge_rows() {
  local n c k
  for n in 10000 "$HOLD_HUGE"; do
    c=$(stage_rss callrelay "$n" huge_stages); k=$(stage_rss coturn "$n" huge_stages)
    echo "| RSS with $n idle allocations, clients $HOLD_SOURCES to a socket (MiB) | $(huge_cell callrelay "$c") | $(huge_cell coturn "$k") | n/a | $(ratio "$c" "$k") | |"
  done
  c=$(fmt "$(val callrelay.slope_huge)" 2); k=$(fmt "$(val coturn.slope_huge)" 2)
  echo "| RSS per idle allocation, slope 10k→$HOLD_HUGE (KiB; callrelay relay.multiplex_peers, $HOLD_PER_PORT to a port) | $(huge_cell callrelay "$c") | $(huge_cell coturn "$k") | n/a | $(ratio "$c" "$k") | ≤ 1 KiB |"
  [[ $HOLD_ADDRESSES -gt 0 ]] || return 0
  c=$(fmt "$(val callrelay_addrs.slope_huge)" 2)
  echo "| RSS per idle allocation, slope 10k→$HOLD_HUGE, over $HOLD_ADDRESSES relay addresses (KiB; relay.bind_ipv4 too) | $(huge_cell callrelay_addrs "$c") | n/a | n/a | | |"
}

machine() {
  local model; model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  echo "Machine: $(nproc) CPUs, ${model:-unknown CPU}, Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo "coturn $(turnserver --version 2>/dev/null | head -1) with --relay-threads 1; callrelay workers: 1;"
  local rev dirty=
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [[ -n $(git -C "$ROOT" --no-optional-locks status --porcelain 2>/dev/null) ]] && dirty=" (plus uncommitted work)"
  if [[ -n $GIVEN_BIN ]]; then  # say which server ran: it need not match this checkout
    local bin_rev; bin_rev=$(git -C "$(dirname "$GIVEN_BIN")" rev-parse --short HEAD 2>/dev/null || echo unknown)
    echo "callrelay: CALLRELAY_BIN=$GIVEN_BIN (its tree at revision $bin_rev); bench tools: revision $rev$dirty;"
  else
    echo "callrelay revision $rev$dirty;"
  fi
  echo "servers pinned to CPU $SERVER_CPU, load generator and echo peer to CPU $GEN_CPU;"
  echo "saturation runs: median CPU/packet of $REPS runs of ${MAX_DURATION} s, $WINDOW packets in flight per client;"
  echo "other runs ${DURATION} s; ${WARMUP} s warm-up each; payload in ChannelData, REST credentials."
}
