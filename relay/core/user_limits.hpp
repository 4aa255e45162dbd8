// What the workers' TurnServers share about users: allocation quotas counted across every
// worker, and the per-user and whole-server bandwidth buckets. One instance per process (owned
// by relay/net's Server; a TurnServer given none makes its own, for a single shard). The map
// of users is locked only when an allocation starts or ends; relayed packets touch atomics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/limits.hpp"
#include "relay/core/bandwidth.hpp"

namespace callrelay::core {

/// One user's shared state: its live allocations (under UserLimits' mutex) and its buckets.
struct UserShare {
  uint32_t allocations = 0;
  std::array<SharedTokenBucket, 2> buckets;  ///< indexed by Direction
};

class UserLimits;

/// A user's entry in UserLimits: its quota key and its share, in one map node whose address
/// stays put while the user has an allocation.
using UserEntry = std::pair<const std::string, UserShare>;

/// A counted allocation of one user: holding it keeps the user's quota slot taken and its
/// share alive; destroying it (the allocation ended) gives the slot back. Move-only. Refers to
/// the user's entry, not a copy of its key: every allocation of a user shares one key string.
class UserSlot {
 public:
  UserSlot() = default;
  UserSlot(UserLimits* owner, UserEntry* entry);
  ~UserSlot();
  UserSlot(UserSlot&& o) noexcept;
  UserSlot& operator=(UserSlot&& o) noexcept;
  UserSlot(const UserSlot&) = delete;
  UserSlot& operator=(const UserSlot&) = delete;

  explicit operator bool() const { return entry_ != nullptr; }
  UserShare* share() const { return entry_ != nullptr ? &entry_->second : nullptr; }

 private:
  void reset();
  UserLimits* owner_ = nullptr;
  UserEntry* entry_ = nullptr;
};

/// Why acquire() refused (RFC 8656 section 7.2: 486 Allocation Quota Reached).
enum class QuotaRefusal : uint8_t { kNone, kUser, kTotal };

/// Allocations per user counted across the instances of a cluster (a shared store), on top
/// of this process's count. Called when an allocation starts and when it ends, never per
/// packet; from any worker thread.
class SharedQuota {
 public:
  virtual ~SharedQuota() = default;
  /// Whether one more allocation of `key` keeps the user within `max_per_user` (0: no limit)
  /// across every instance; it is counted when it does. Called after this process's own count
  /// admitted it; true also when the store cannot tell (the implementation's fail-safe).
  virtual bool admit(std::string_view key, uint32_t max_per_user) = 0;
  /// An allocation admit() counted has ended. Must not block.
  virtual void released(std::string_view key) = 0;
};

/// Thread-safe. Outlives every TurnServer (and so every UserSlot) that uses it.
class UserLimits {
 public:
  explicit UserLimits(const BandwidthConfig& bw = {}, base::LimitCounters* counters = nullptr);
  UserLimits(const UserLimits&) = delete;
  UserLimits& operator=(const UserLimits&) = delete;

  /// Counts one more allocation for quota key `key`, unless the user has `max_per_user` (0: no
  /// limit) or the server `max_total` (0: no limit) already; then an empty slot and `*why`.
  /// Exact across workers: the count and the check happen under one mutex.
  UserSlot acquire(std::string_view key, uint32_t max_per_user, uint32_t max_total,
                   QuotaRefusal* why);
  /// Live allocations of `key` across every worker, and in all.
  uint32_t allocations(std::string_view key) const;
  uint32_t total_allocations() const;
  /// Users with a live allocation (entries are freed with their last allocation).
  size_t user_count() const;
  /// Every user with a live allocation and its count (a snapshot).
  std::vector<std::pair<std::string, uint32_t>> user_counts() const;

  /// Per-user quotas also counted across instances by `shared` (null: this process only).
  /// Before any allocation; `shared` outlives this object's last UserSlot.
  void set_shared_quota(SharedQuota* shared) { shared_ = shared; }

  /// New user and total caps and burst; any thread, takes effect on the next packet.
  void reconfigure(const BandwidthConfig& bw);
  Rate user_rate() const { return user_rate_.load(); }
  Rate total_rate() const { return total_rate_.load(); }
  SharedTokenBucket& total_bucket(Direction d) { return total_[static_cast<size_t>(d)]; }
  /// Null: nothing counted.
  base::LimitCounters* counters() const { return counters_; }

 private:
  friend class UserSlot;
  void release(UserEntry* entry);
  /// Takes one allocation of `key` off this process's count.
  void release_local(std::string_view key);

  /// A Rate any thread reads while a reload writes it: two relaxed atomics. A packet racing a
  /// reload may see the new rate with the old burst; the next one sees both.
  struct AtomicRate {
    std::atomic<uint64_t> bps{0};
    std::atomic<int64_t> burst_units{0};
    Rate load() const {
      return {bps.load(std::memory_order_relaxed), burst_units.load(std::memory_order_relaxed)};
    }
    void store(const Rate& r) {
      bps.store(r.bps, std::memory_order_relaxed);
      burst_units.store(r.burst_units, std::memory_order_relaxed);
    }
  };

  mutable std::mutex mu_;
  /// Under mu_. Node-based: an entry (key and share) keeps its address until it is erased.
  std::unordered_map<std::string, UserShare> users_;
  uint32_t total_allocations_ = 0;                                      ///< under mu_
  AtomicRate user_rate_, total_rate_;
  std::array<SharedTokenBucket, 2> total_;
  base::LimitCounters* counters_;
  SharedQuota* shared_ = nullptr;
};

/// What one allocation's relayed bytes pass through: its own bucket per direction, then its
/// user's, then the server's. Owned by the allocation, used on its worker's thread (the
/// datagram data path in the core, RFC 6062 splices in relay/net).
class BandwidthGate {
 public:
  BandwidthGate() = default;
  /// `own` is the shard's per-allocation cap (it outlives the allocation and changes with
  /// TurnServer::update_limits); `limits` the shared caps; `slot` the allocation's user.
  BandwidthGate(const BandwidthConfig* own, UserLimits* limits, UserSlot slot)
      : own_(own), limits_(limits), slot_(std::move(slot)) {}

  /// Datagrams: whether `bytes` may be relayed in direction `d` now. A refusal is counted
  /// (the tightest cap that refused: allocation, user or total) and the packet is dropped.
  bool admit(Direction d, uint64_t bytes, TimeMs now);
  /// Streams (RFC 6062 splices): the bytes were read already and go on; returns how long the
  /// reader waits before reading more (0: at once). Each pause is counted as a hit.
  TimeMs charge(Direction d, uint64_t bytes, TimeMs now);

  /// The allocation's own bucket (tests read its tokens).
  const TokenBucket& bucket(Direction d) const { return own_bucket_[static_cast<size_t>(d)]; }

 private:
  void count(base::Limit which, uint64_t dropped) const;
  const BandwidthConfig* own_ = nullptr;
  UserLimits* limits_ = nullptr;
  UserSlot slot_;
  std::array<TokenBucket, 2> own_bucket_{};
};

}  // namespace callrelay::core
