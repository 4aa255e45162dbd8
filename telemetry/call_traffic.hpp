// Relayed traffic per call: the allocations made with a call's credentials (AllocationInfo's
// call_id), live and ended, by the user who made them. The call service reads it when a call
// ends, for the call's record, and the relay-observed media of those allocations (AllocationInfo's
// media counters) while the call runs. One instance for the whole process, shared by every worker.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"

namespace callrelay::telemetry {

/// Payload bytes relayed by one call's allocations, split by user (the call service's
/// calls::CallTraffic has the same fields; app/ converts).
struct CallTrafficTotals {
  uint64_t caller_to_peer = 0, caller_to_client = 0;  ///< allocations of the caller
  uint64_t callee_to_peer = 0, callee_to_client = 0;  ///< allocations of the callee
  uint32_t allocations = 0;  ///< allocations made with the call's credentials (live and ended)
};

/// Relay-observed media of one kind that one user's client sent through the call's
/// allocations (relay/media/monitor.hpp). Counts are summed over live and ended allocations.
struct MediaKindTotals {
  uint64_t expected = 0;  ///< RTP packets expected (extended sequence numbers)
  uint64_t received = 0;  ///< media packets received
  int64_t jitter_us = -1;  ///< worst current jitter of a live allocation; -1: none has media
};

/// What the relay measured for one user of a call.
struct UserMediaTotals {
  std::array<MediaKindTotals, media::kKinds> kind{};  ///< indexed by media::Kind
  /// Last round trips, microseconds, from the allocation whose sample is the most recent (as
  /// seen by successive reads); -1: no sample yet.
  int64_t rtt_client_us = -1, rtt_peer_us = -1;
};

struct CallMediaTotals {
  UserMediaTotals caller, callee;
};

/// A core::Observer that remembers, per call, the live allocations' TrafficCounters and the
/// bytes of those that ended, and forwards every event to the next observer of the chain.
///
/// Thread-safe: workers report allocations (the mutex is taken only when a call-scoped
/// allocation starts or ends, never per packet) while any thread reads traffic(). The live
/// allocations' counters are read under the same mutex, so an allocation is never read after
/// the core destroyed it (the core destroys it only after on_allocation_ended returns).
class CallTraffic final : public core::Observer {
 public:
  /// `next` (may be null) receives every event after this observer; it must be safe to call
  /// from every worker thread. With several workers whose chains differ, use
  /// observer_for_worker() instead.
  explicit CallTraffic(core::Observer* next = nullptr);
  ~CallTraffic() override;
  CallTraffic(const CallTraffic&) = delete;
  CallTraffic& operator=(const CallTraffic&) = delete;

  /// An observer for worker `index` that records into this CallTraffic, then forwards to
  /// `next` (that worker's own chain, e.g. Telemetry::observer_for_worker). Valid for this
  /// object's lifetime. Call while wiring, before the workers run.
  core::Observer* observer_for_worker(unsigned index, core::Observer* next);

  /// Bytes so far of call `call_id`'s allocations: those of user `caller`, and of `callee`.
  /// Zero for a call never seen or forgotten. Any thread.
  CallTrafficTotals traffic(std::string_view call_id, std::string_view caller,
                            std::string_view callee) const;
  /// Media so far of call `call_id`'s allocations, by user. Reads the live allocations'
  /// counters under the mutex (call it once per sampling interval, not per packet). Any thread.
  CallMediaTotals media(std::string_view call_id, std::string_view caller,
                        std::string_view callee) const;
  /// Drops what is known of the call. Allocations of it that end later are not recorded
  /// again. Any thread.
  void forget(std::string_view call_id);
  /// Calls remembered now. Any thread.
  size_t call_count() const;

  void on_allocation_created(const core::AllocationInfo& a) override;
  void on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                           core::TimeMs now) override;
  void on_request(stun::Method m, core::Transport t, uint16_t code) override;
  void on_auth_failure(core::AuthFailure r) override;
  void on_peer_denied(core::PeerDenyReason r) override;
  void on_drop(core::DropReason r) override;

 private:
  class WorkerObserver;
  /// The last round-trip sample of one leg as successive reads saw it: `stamp` orders samples
  /// across allocations (the read that first saw it; higher is more recent).
  struct RttSeen {
    uint64_t samples = 0;
    uint64_t us = 0;
    uint64_t stamp = 0;  ///< 0: no sample seen
  };
  struct Live {
    uint64_t id = 0;
    std::string user_id;
    const core::TrafficCounters* traffic = nullptr;
    const core::LazyMediaCounters* media = nullptr;  ///< zeros until the allocation relays
    RttSeen rtt_client, rtt_peer;  ///< updated under mu_ by reads and at the end
  };
  struct UserBytes {
    std::string user_id;
    uint64_t to_peer = 0, to_client = 0;
    std::array<uint64_t, media::kKinds> expected{}, received{};
    RttSeen rtt_client, rtt_peer;  ///< the most recent of the ended allocations'
  };
  struct Call {
    std::vector<Live> live;
    std::vector<UserBytes> ended;  ///< folded per user (a call has two)
    uint32_t allocations = 0;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  void record_created(const core::AllocationInfo& a);
  void record_ended(const core::AllocationInfo& a, core::EndReason reason);
  /// Notes a live allocation's current round-trip samples as seen at read `stamp` (under mu_).
  static void observe_rtt(Live& l, uint64_t stamp);

  core::Observer* next_;
  mutable std::mutex mu_;  ///< guards calls_ (control path only)
  /// mutable: reads note which allocation's round trip is the most recent (RttSeen).
  mutable std::unordered_map<std::string, Call, Hash, std::equal_to<>> calls_;
  mutable uint64_t read_stamp_ = 0;  ///< under mu_: one per media() read or allocation end
  std::vector<std::unique_ptr<WorkerObserver>> workers_;  ///< wiring time only
};

}  // namespace callrelay::telemetry
