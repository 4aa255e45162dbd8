// Telemetry through the log: one JSON line per ended allocation, and cheap event counters.
// The Prometheus export (telemetry.hpp) has counters of its own.
#pragma once

#include <cstdint>
#include <string>

#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"

namespace callrelay::telemetry {

/// Counts of what the core reported. One writer (the worker's thread), any readers.
struct EventCounts {
  core::RelaxedCounter allocations_created;
  core::RelaxedCounter allocations_ended;
  core::RelaxedCounter requests;         ///< answered requests, successful or not
  core::RelaxedCounter error_responses;  ///< answered with an error code
  core::RelaxedCounter auth_failures;
  core::RelaxedCounter peers_denied;
  core::RelaxedCounter drops;
};

/// The JSON line LogObserver writes when an allocation ends (exposed for tests). `now` and
/// `a.started` are the core's monotonic times (they give duration_ms); `end_unix_ms` is the wall
/// time at `now`, and the start is stamped `end_unix_ms - duration`, so the line's times stay
/// consistent even when the wall clock stepped while the allocation lived.
std::string allocation_json(const core::AllocationInfo& a, core::EndReason reason,
                            core::TimeMs now, core::TimeMs end_unix_ms);
/// The same with `now` taken as the wall time too (times already on one clock).
std::string allocation_json(const core::AllocationInfo& a, core::EndReason reason,
                            core::TimeMs now);

/// An observer for one worker shard: logs ended allocations at info level and counts events.
/// Thread: called on its shard's thread only; counts() may be read from anywhere.
class LogObserver final : public core::Observer {
 public:
  /// `wall` stamps the log lines (must outlive the observer). Null: the core's `now` is taken as
  /// wall time (tests with one clock).
  explicit LogObserver(const core::WallClock* wall = nullptr) : wall_(wall) {}

  void on_allocation_created(const core::AllocationInfo&) override;
  void on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                           core::TimeMs now) override;
  void on_request(stun::Method, core::Transport, uint16_t code) override;
  void on_auth_failure(core::AuthFailure) override;
  void on_peer_denied(core::PeerDenyReason) override;
  void on_drop(core::DropReason) override;

  const EventCounts& counts() const { return counts_; }

 private:
  const core::WallClock* wall_ = nullptr;
  EventCounts counts_;
};

}  // namespace callrelay::telemetry
