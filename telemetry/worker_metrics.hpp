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

/// Labels of one allocation's series, made at scrape time from the allocation (nothing is kept
/// per allocation for them).
struct SeriesLabels {
  std::string allocation_id;  ///< "<worker>-<core id>": core ids are unique per shard only
  std::string user;           ///< sanitized REST user id
  size_t transport = 0;
  size_t family = 0;
};

/// The throughput state of an allocation that relayed at least one byte. Allocations that never
/// did (ICE agents gather relay candidates they may never use) have none: their rate is 0.
struct ActiveRate {
  explicit ActiveRate(uint32_t window_s) : window(window_s) {}
  RateWindow window;
  std::array<double, 2> throughput{};  ///< bytes/s each way as of the last tick
};

/// A live allocation as the registry keeps it: 24 bytes while it relays nothing. `info` is read
/// under the worker's mutex: its counters are atomics, and its other fields (user, call,
/// addresses, start) are set before on_allocation_created and never change while it is live,
/// and the core frees it only after on_allocation_ended took it out (under the same mutex).
struct LiveAllocation {
  const core::AllocationInfo* info = nullptr;
  /// Null until a tick finds traffic; then made with the zero samples it would have had.
  std::unique_ptr<ActiveRate> rate;
  uint32_t created_tick = 0;  ///< WorkerMetrics' tick count at creation (later ones are replayed)
  uint8_t transport = 0;      ///< transport_index, fixed at creation
  uint8_t family = 0;         ///< family_index, fixed at creation

  std::array<double, 2> throughput() const {
    return rate ? rate->throughput : std::array<double, 2>{};
  }
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

  unsigned index() const { return index_; }

 private:
  /// Starts the rate window of `live`, which had no traffic at any earlier tick: the samples
  /// an eager window would hold (its start and the ticks since, all zero), then `now`'s.
  void activate(LiveAllocation& live, core::TimeMs now, uint64_t to_peer, uint64_t to_client);

  unsigned index_;
  uint32_t rate_window_s_;
  /// A remembered tick: its time and the number of the last tick at that time.
  struct Tick {
    core::TimeMs t = 0;
    uint32_t last = 0;
  };
  /// The latest distinct tick times (as many as a RateWindow holds), a ring of which
  /// distinct_ticks_ were ever filled, and the number of ticks so far: what activate() replays.
  /// Under mu_.
  std::vector<Tick> tick_times_;
  uint32_t distinct_ticks_ = 0;
  uint32_t ticks_ = 0;
  core::Observer* next_ = nullptr;
  EventCounters events_;
  mutable std::mutex mu_;
  AllocationState state_;
};

}  // namespace callrelay::telemetry
