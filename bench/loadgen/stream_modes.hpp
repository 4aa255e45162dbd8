// The max mode with TCP or TLS clients (--transport tcp|tls): each client has one connection to
// the relay, which relays its ChannelData to the UDP echo peer and back.
#pragma once

#include "bench/loadgen/options.hpp"

namespace callrelay::bench {

/// Connects --clients stream clients and brings each to an allocation with a permission and
/// channel kBenchChannel bound to the echo peer (REST credentials, as over UDP), then keeps
/// `window` ChannelData frames in flight per client like run_max_mode and prints the same
/// result line, plus transport=, closed= (connections that broke during the run) and tls= (the
/// negotiated version and cipher). Closing the connections ends the allocations. Returns the
/// process exit code.
int run_stream_max_mode(const Options& options);

}  // namespace callrelay::bench
