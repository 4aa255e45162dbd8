// Relayed traffic per call: the allocations made with a call's credentials (AllocationInfo's
// call_id), live and ended, by the user who made them. The call service reads it when a call
// ends, for the call's record. One instance for the whole process, shared by every worker.
#pragma once

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
  struct Live {
    uint64_t id = 0;
    std::string user_id;
    const core::TrafficCounters* traffic = nullptr;
  };
  struct UserBytes {
    std::string user_id;
    uint64_t to_peer = 0, to_client = 0;
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

  core::Observer* next_;
  mutable std::mutex mu_;  ///< guards calls_ (control path only)
  std::unordered_map<std::string, Call, Hash, std::equal_to<>> calls_;
  std::vector<std::unique_ptr<WorkerObserver>> workers_;  ///< wiring time only
};

}  // namespace callrelay::telemetry
