// Prometheus telemetry for the relay (issue 4). Workers bump plain counters through their
// observer; nothing here is called per packet. A custom prometheus::Collectable reads the
// counters (and every live allocation's TrafficCounters) at scrape time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/limits.hpp"
#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"
#include "telemetry/live_view.hpp"

namespace callrelay::telemetry {

struct TelemetryConfig {
  bool per_allocation_enabled = true;       ///< telemetry.per_allocation.enabled
  size_t per_allocation_max_series = 1000;  ///< telemetry.per_allocation.max_series
  uint32_t bitrate_window_s = 5;            ///< "current bitrate" averages over this window
};

/// Process-level facts the telemetry cannot see by itself, read at scrape time.
struct ProcessProbes {
  std::function<uint64_t()> relay_ports_in_use;  ///< may be empty
  std::function<uint64_t()> tcp_peer_connections;  ///< may be empty (RFC 6062 peer connections)
  std::function<bool()> draining;                ///< may be empty (then always 0)
  uint64_t relay_ports_total = 0;
  unsigned worker_threads = 0;
  std::string version;
  /// Counters of the abuse limits and bandwidth caps (callrelay_limit_hits_total,
  /// callrelay_bandwidth_dropped_bytes_total); may be null (then those families are absent).
  const base::LimitCounters* limits = nullptr;
  /// When the process started, on the core's monotonic clock (relay/net's now_ms(), for the
  /// uptime); 0: when the Telemetry was constructed.
  core::TimeMs started_at = 0;
};

/// Owns the metric state for the whole process. Thread-safe as documented per member.
class Telemetry {
 public:
  Telemetry(TelemetryConfig cfg, unsigned workers, ProcessProbes probes);
  ~Telemetry();
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  /// The observer for worker `index` (valid for the Telemetry's lifetime). Called on that
  /// worker's thread only. It also forwards to `next` (e.g. the LogObserver) when given.
  core::Observer* observer_for_worker(unsigned index, core::Observer* next = nullptr);

  /// Samples live allocations' counters for the bitrate windows. Call about once a second from
  /// one thread (the HTTP server's timer). `now` is on the core's monotonic clock (relay/net's
  /// now_ms()), like AllocationInfo::started it is compared with: never a wall time.
  void tick(core::TimeMs now);

  /// The Prometheus text exposition (format 0.0.4) of every metric. Any thread. `now`: as for
  /// tick() (the uptime is measured on the monotonic clock, so a stepped wall clock leaves it).
  std::string scrape_text(core::TimeMs now);

  /// Every live allocation, uncapped (the admin API's view; see live_view.hpp). `now`: as for
  /// tick(). Any thread.
  std::vector<LiveAllocationView> live_allocations(core::TimeMs now) const;
  /// Live allocations by client transport. Any thread.
  LiveCounts live_counts() const;
  /// The process facts given at construction (version, start, probes). Any thread.
  const ProcessProbes& probes() const;
  /// When the process started (ProcessProbes::started_at, or the construction), on the core's
  /// monotonic clock.
  core::TimeMs started_at() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace callrelay::telemetry
