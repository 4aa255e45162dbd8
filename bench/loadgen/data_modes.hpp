// The data-plane modes: ChannelData through the relay to the echo peer and back.
#pragma once

#include <vector>

#include "bench/loadgen/options.hpp"

namespace callrelay::bench {

/// Max mode: every client keeps `window` packets in flight; reports relayed packets/s and the
/// server CPU per relayed packet. `fds` are sockets connected to the server, each with channel
/// kBenchChannel bound to the echo peer (or, with --raw, to a bare forwarder). Returns the
/// process exit code.
int run_max_mode(const Options& options, const std::vector<int>& fds);

/// Rate mode: every client sends `pps` packets per second carrying a send timestamp; reports
/// round-trip p50/p99 in microseconds.
int run_rate_mode(const Options& options, const std::vector<int>& fds);

}  // namespace callrelay::bench
