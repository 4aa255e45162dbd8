// One worker's share of the metrics: the observer its TurnServer shard calls, plain counters it
// bumps, and the registry of its live allocations that scrapes and tick() read.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"
#include "telemetry/metric_labels.hpp"
#include "telemetry/rate_window.hpp"

namespace callrelay::telemetry {

/// Fixed upper bounds of the allocation-end histograms (the +Inf bucket is implicit).
inline constexpr std::array<double, 12> kLifetimeBounds = {1,   5,    10,   30,   60,    300,
                                                           600, 1800, 3600, 7200, 21600, 86400};
inline constexpr std::array<double, 8> kBytesBounds = {1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};
/// Bytes per second: 1.25e5 is 1 Mbit/s.
inline constexpr std::array<double, 10> kThroughputBounds = {1e2,    1e3, 4e3,    1.25e4, 4e4,
                                                             1.25e5, 4e5, 1.25e6, 4e6,    1.25e7};

/// Per-bucket (not cumulative) counts, guarded by the owner's mutex.
template <size_t N>
struct FixedHistogram {
  std::array<uint64_t, N + 1> counts{};  ///< [N] is the +Inf bucket
  double sum = 0;
  uint64_t count = 0;

  void observe(double v, const std::array<double, N>& bounds) {
    size_t i = 0;
    while (i < N && v > bounds[i]) ++i;
    ++counts[i];
    sum += v;
    ++count;
  }
  void merge(const FixedHistogram& o) {
    for (size_t i = 0; i <= N; ++i) counts[i] += o.counts[i];
    sum += o.sum;
    count += o.count;
  }
};

/// Counters bumped by the worker (one writer, relaxed), read by scrapes without a lock.
struct EventCounters {
  std::array<std::array<std::array<core::RelaxedCounter, kCodes>, kTransports>, kMethods> requests;
  std::array<core::RelaxedCounter, kAuthFailures> auth_failures;
  std::array<core::RelaxedCounter, kDenyReasons> peer_denials;
  std::array<core::RelaxedCounter, kDropReasons> drops;
  std::array<std::array<core::RelaxedCounter, kFamilies>, kTransports> created;
  std::array<core::RelaxedCounter, kSecretSlots> by_secret;
};

/// Labels of one allocation's series, fixed at creation; shared with scrape snapshots.
struct SeriesLabels {
  std::string allocation_id;  ///< "<worker>-<core id>": core ids are unique per shard only
  std::string user;           ///< sanitized REST user id
  size_t transport = 0;
  size_t family = 0;
};

/// What the admin API shows of an allocation besides its labels, copied at creation on the
/// worker's thread (the core's AllocationInfo is read by other threads for its atomics only).
/// Addresses stay binary (20 bytes each, no heap) and are formatted when the API reads them.
struct AllocationFacts {
  std::string user;     ///< the REST user id (or static username), as sent
  std::string call_id;  ///< "" when not call-scoped
  core::Endpoint client;
  core::Endpoint relayed;                           ///< the relayed address
  std::optional<core::Endpoint> relayed_additional;  ///< a dual allocation's second
  core::TimeMs started = 0;                         ///< the core's monotonic clock
};

/// A live allocation as the registry keeps it. `info` is read only for its traffic and media
/// counters (atomics); its other fields are copied at creation on the worker's thread.
struct LiveAllocation {
  const core::AllocationInfo* info = nullptr;
  std::shared_ptr<const SeriesLabels> labels;
  RateWindow window;
  std::array<double, 2> throughput{};  ///< bytes/s each way as of the last tick
  AllocationFacts facts;
};

/// Traffic of ended allocations, per transport: [direction] bytes and packets.
struct EndedTraffic {
  std::array<uint64_t, kDirections> bytes{};
  std::array<uint64_t, kDirections> packets{};
};

/// What the worker's mutex guards.
struct AllocationState {
  std::unordered_map<uint64_t, LiveAllocation> live;  ///< by core allocation id
  std::array<EndedTraffic, kTransports> ended_traffic{};
  std::array<std::array<std::array<uint64_t, kFamilies>, kTransports>, kEndReasons> ended{};
  FixedHistogram<kLifetimeBounds.size()> lifetime;
  std::array<FixedHistogram<kBytesBounds.size()>, kDirections> bytes;
  FixedHistogram<kThroughputBounds.size()> throughput;
};

/// The observer of one worker shard. on_* run on that worker's thread; events(), with_state()
/// and sample() may run on any thread. Nothing here allocates or locks per packet: on_drop and
/// the traffic counters are plain relaxed counters; only allocation creation and end (control
/// path) take the mutex.
class WorkerMetrics final : public core::Observer {
 public:
  WorkerMetrics(unsigned index, uint32_t rate_window_s);

  /// Events are forwarded here after being counted (null: none). Set before traffic starts.
  void set_next(core::Observer* next) { next_ = next; }

  void on_allocation_created(const core::AllocationInfo& a) override;
  void on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                           core::TimeMs now) override;
  void on_request(stun::Method m, core::Transport t, uint16_t code) override;
  void on_auth_failure(core::AuthFailure r) override;
  void on_peer_denied(core::PeerDenyReason r) override;
  void on_drop(core::DropReason r) override;

  const EventCounters& events() const { return events_; }

  /// Runs `f(const AllocationState&)` under the mutex. Keep `f` short: the worker waits on it
  /// when an allocation starts or ends.
  template <typename F>
  void with_state(F&& f) const {
    std::lock_guard lock(mu_);
    f(static_cast<const AllocationState&>(state_));
  }

  /// Adds a throughput sample at `now` to every live allocation (Telemetry::tick).
  void sample(core::TimeMs now);

 private:
  unsigned index_;
  uint32_t rate_window_s_;
  core::Observer* next_ = nullptr;
  EventCounters events_;
  mutable std::mutex mu_;
  AllocationState state_;
};

}  // namespace callrelay::telemetry
