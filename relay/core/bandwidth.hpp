// Bandwidth caps as token buckets: one per allocation and direction (owned by one worker), and
// shared ones (per user, and the whole server) that every worker draws from with atomics only.
// Tokens are counted in units of 1/8000 byte, so a rate of `bps` bits per second refills
// exactly `bps` units per millisecond: integer arithmetic, no rounding drift.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "relay/core/types.hpp"

namespace callrelay::core {

/// The `bandwidth:` section. Every cap is per direction (client to peer, peer to client) and
/// counts payload bytes, as the traffic counters do. 0 turns a cap off.
struct BandwidthConfig {
  uint64_t max_bps = 100'000'000;         ///< per allocation (one video call needs a few Mbit/s)
  uint64_t user_max_bps = 1'000'000'000;  ///< per user, across every worker
  uint64_t total_max_bps = 0;             ///< the whole server; 0: off (the NIC is the limit)
  /// How long a sender may go above the rate after a quiet period: a bucket holds
  /// rate * burst_ms of bytes, and never less than kMinBurstBytes.
  uint32_t burst_ms = 500;
  friend bool operator==(const BandwidthConfig&, const BandwidthConfig&) = default;
};

/// A bucket always holds one largest datagram (UDP payloads end below 64 KiB), so a low cap
/// slows a sender down rather than refusing every one of its large packets.
inline constexpr uint64_t kMinBurstBytes = 65536;
/// Token units per byte: with them a bit rate is a refill in units per millisecond.
inline constexpr int64_t kUnitsPerByte = 8000;

enum class Direction : uint8_t { kToPeer = 0, kToClient = 1 };

/// A rate in bits per second and the bucket's depth in token units, or off (bps == 0).
struct Rate {
  uint64_t bps = 0;
  int64_t burst_units = 0;
  bool off() const { return bps == 0; }
};
/// The rate of a cap of `bps` with the configured burst.
Rate make_rate(uint64_t bps, uint32_t burst_ms);
/// Units a refill adds after `elapsed_ms` at `r` (at most the burst: no overflow however long).
int64_t refill_units(const Rate& r, TimeMs elapsed_ms);
/// Milliseconds until a bucket `debt_units` below zero is back at zero (0 when not in debt).
TimeMs wait_ms(const Rate& r, int64_t debt_units);

/// A token bucket used by one thread (an allocation's, on its worker). It starts full.
class TokenBucket {
 public:
  /// Takes `bytes` if the bucket holds them; otherwise takes nothing (the packet is dropped).
  bool take(uint64_t bytes, TimeMs now, const Rate& r);
  /// Takes `bytes` even into debt (a stream read that already happened); returns how long the
  /// reader should wait before reading more (0: go on).
  TimeMs charge(uint64_t bytes, TimeMs now, const Rate& r);
  /// Returns tokens a later cap refused (the packet did not go after all).
  void give_back(uint64_t bytes, const Rate& r);
  /// Tokens now, in units (tests).
  int64_t units() const { return units_; }

 private:
  void refill(TimeMs now, const Rate& r);
  /// "Never refilled": the first use fills the bucket. A sentinel rather than a flag keeps
  /// the bucket at 16 bytes (two per allocation).
  static constexpr TimeMs kUnprimed = INT64_MIN;
  int64_t units_ = 0;
  TimeMs last_ = kUnprimed;
};

/// A token bucket any thread may draw from, lock-free: the refill claims the elapsed time with
/// a compare-and-swap on the last refill time, takes retry a compare-and-swap on the tokens.
/// Workers' clocks are one monotonic clock, so a worker slightly behind another refills nothing.
class SharedTokenBucket {
 public:
  bool take(uint64_t bytes, TimeMs now, const Rate& r);
  TimeMs charge(uint64_t bytes, TimeMs now, const Rate& r);
  void give_back(uint64_t bytes, const Rate& r);
  int64_t units() const { return units_.load(std::memory_order_relaxed); }

 private:
  void refill(TimeMs now, const Rate& r);
  static constexpr TimeMs kUnprimed = INT64_MIN;
  std::atomic<int64_t> units_{0};
  std::atomic<TimeMs> last_{kUnprimed};
};

}  // namespace callrelay::core
