// A snapshot of every live allocation for the operator (GET /api/v1/admin/allocations, the
// status page, `callrelay ctl allocations`): unlike the Prometheus per-allocation series it is
// never capped, and it carries what an operator asks about (user, client, relayed addresses,
// age, bytes, current rate, relay-observed media quality, the call).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/types.hpp"
#include "telemetry/metric_labels.hpp"
#include "telemetry/worker_metrics.hpp"

namespace callrelay::telemetry {

/// Relay-observed media the client sent (both kinds): known once an RTP packet was expected.
struct LiveQuality {
  double loss_ratio = 0;  ///< lost / expected since the allocation started
  double jitter_ms = 0;   ///< the worst kind's current interarrival jitter
};

/// One live allocation as of the moment of the snapshot.
struct LiveAllocationView {
  std::string id;  ///< "<worker>-<core id>", as the metrics' allocation_id label
  std::string user;
  std::string transport;  ///< udp | tcp | tls
  std::string family;     ///< ipv4 | ipv6 | dual
  std::string client;
  std::vector<std::string> relayed;
  std::string call_id;  ///< "" when not call-scoped
  double age_s = 0;
  std::array<uint64_t, kDirections> bytes{};  ///< client_to_peer, peer_to_client
  std::array<double, kDirections> rate{};     ///< bytes/s over the bitrate window, last tick
  std::optional<LiveQuality> quality;         ///< nullopt: no media measured
};

/// Live allocations per client transport (indexed like transport_index) and in all.
struct LiveCounts {
  std::array<uint64_t, kTransports> by_transport{};
  uint64_t total = 0;
};

/// Every live allocation of `workers`, sorted by id (worker, then core id). `now` is on the
/// core's monotonic clock (the allocations' start). Each worker's mutex is held only while
/// its entries are copied. Any thread.
std::vector<LiveAllocationView> live_allocations(
    const std::vector<std::unique_ptr<WorkerMetrics>>& workers, core::TimeMs now);

/// How many allocations live now, by transport. Any thread.
LiveCounts live_counts(const std::vector<std::unique_ptr<WorkerMetrics>>& workers);

}  // namespace callrelay::telemetry
