// The control-plane modes: allocation rate, memory held by idle allocations, Allocate storms,
// and a Binding probe that tells when a server is up.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bench/loadgen/control.hpp"
#include "bench/loadgen/options.hpp"

namespace callrelay::bench {

/// Opens `n` sessions on `driver` and runs them until all are ready or failed, or the deadline.
bool establish(ControlDriver& driver, size_t n, uint64_t deadline_ns);

/// Prints the driver's counters as key=value pairs (no newline).
void print_control_stats(const ControlStats& stats);

/// Allocations/s: Allocate (401 round), CreatePermission, ChannelBind, Refresh 0, repeated.
int run_allocs_mode(const Options& options);
/// Holds allocations (each with a permission and a channel) at every --count stage and reads
/// the server's VmRSS after each; reports the KiB-per-allocation slope of the last stage and
/// of every stage from the one before it (slopes=held:KiB,...). Held allocations are refreshed
/// as browsers refresh them (--refresh-permission, --refresh-allocation) while the stages run
/// and for --hold seconds after the last.
int run_hold_mode(const Options& options);
/// Sends --count credentialed Allocates to a server with too few relay ports; reports how they
/// were answered and the server's VmRSS before and after.
int run_storm_mode(const Options& options);
/// Binding request until answered; checks XOR-MAPPED-ADDRESS. Exit 0 when the server is up.
int run_probe_mode(const Options& options);

}  // namespace callrelay::bench
