// Per-user allocation quotas counted across every instance of a cluster (relay.
// max_allocations_per_user for the whole service, not per process). Each instance keeps its
// own live count of a user in the hash <prefix>quota:<user> under its instance id; an
// allocation's start runs one script that sums the fields of live instances (whose
// <prefix>instance:<id> key still exists, so a dead instance's counts stop counting when its
// load record expires) and takes a slot when the sum is below the limit. Only an allocation's
// start waits for Redis (with the command timeout); its end is queued. Fail-safe: when Redis
// does not answer, the allocation is admitted on this instance's own limit alone (what the
// process checked already) and counted: an outage of the shared store must not refuse every
// client of every instance. The counts are then rewritten whole from the process's own once
// Redis answers again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/redis/redis_client.hpp"
#include "cluster/shared/counters.hpp"
#include "cluster/shared/keys.hpp"
#include "relay/core/user_limits.hpp"

namespace callrelay::cluster {

class SharedQuotaStore final : public core::SharedQuota {
 public:
  /// This process's live allocations per user (core::UserLimits::user_counts).
  using LocalCounts = std::function<std::vector<std::pair<std::string, uint32_t>>()>;

  /// `admit_redis` serves admit() (the workers, at an allocation's start); `redis` serves
  /// poll(). Both, and `counters`, outlive this object. A quota hash not refreshed for
  /// `key_ttl` expires (a user whose allocations all ended on instances that died).
  SharedQuotaStore(RedisClient& admit_redis, RedisClient& redis, SharedKeys keys,
                   std::string instance_id, LocalCounts local_counts, SharedCounters& counters,
                   std::chrono::milliseconds key_ttl = std::chrono::hours(1));

  bool admit(std::string_view key, uint32_t max_per_user) override;
  void released(std::string_view key) override;
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

  /// Takes ended allocations off the shared count; rewrites this instance's counts whole when
  /// they may be wrong (at the start, after a failure, when `resync` asks). Returns false when
  /// Redis did not answer.
  bool poll(bool resync = false);
  /// Whether this instance's shared counts wait to be rewritten.
  bool dirty() const { return dirty_.load(); }

 private:
  bool rewrite_counts();

  RedisClient& admit_redis_;
  RedisClient& redis_;
  SharedKeys keys_;
  std::string instance_id_;
  LocalCounts local_counts_;
  SharedCounters& counters_;
  std::string ttl_ms_;
  std::function<void()> wake_;
  std::mutex mu_;  ///< guards released_
  std::vector<std::string> released_;
  /// At the start the fields a previous run of this instance id left are rewritten too.
  std::atomic<bool> dirty_{true};
  std::atomic<bool> admit_failing_{false};  ///< to log the change only
};

}  // namespace callrelay::cluster
