// Live traffic through TURN allocations, for the metrics tests: allocations that relay
// ChannelData to an echo peer until told to stop, then release themselves with Refresh(0).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace callrelay::integ {

/// For each (username, password): Allocate, ChannelBind 0x4000 to peer_ip:peer_port, then send
/// one ChannelData every 20 ms per allocation (allocation i carries (i+1)*100-byte payloads, so
/// their bitrates differ and rank in order) and count the echoes, until SIGTERM/SIGINT or
/// max_seconds; then Refresh(0) each. Prints "allocated N" once all are allocated and bound,
/// then "released N sent=S received=R" (stdout, flushed). Returns 0 if every allocation,
/// binding and release succeeded and every allocation received echoes, else 1.
int run_stream(const std::string& host, uint16_t port, const std::string& peer_ip,
               uint16_t peer_port, int max_seconds,
               const std::vector<std::pair<std::string, std::string>>& credentials);

}  // namespace callrelay::integ
