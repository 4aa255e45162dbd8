// Bounded answers to unauthenticated requests: what keeps a TURN server from being a reflection
// amplifier or a 401 generator for spoofed traffic (RFC 8656 section 21.1.2 discusses the risk;
// RFC 8489 section 16.1.1 the unauthenticated Binding). One ReflectionGuard per worker shard.
//
// The rule, in one sentence: the bytes of every answer sent without MESSAGE-INTEGRITY to the
// source addresses sharing one slot of a fixed table never exceed the bytes of the requests
// received from those addresses plus a small allowance that refills slowly; 401 and 438
// answers to them are also capped by a token bucket. Slots are chosen by a keyed hash (SipHash
// with a random key drawn at start), so an attacker cannot aim many addresses at one slot, and
// memory is slot_count * sizeof(Slot) whatever the number of addresses.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "relay/core/types.hpp"

namespace callrelay::core {

/// The abuse limits (the `limits:` configuration section). The core reads `unauth_*` and
/// `challenge_*`; relay/net reads the connection limits.
struct AbuseConfig {
  // --- answers to unauthenticated requests (UDP; the core) ---
  /// Off: every request is answered, as RFC 8489 alone would have it.
  bool reflection_enabled = true;
  /// Slots of the per-worker table (a power of two; rounded up). Memory per worker:
  /// slots * 24 bytes.
  uint32_t table_slots = 16384;
  /// Bytes a slot's sources may be answered beyond what they sent: a real client's first
  /// exchanges (a Binding and a 401 round per candidate) fit well within it.
  uint32_t allowance_bytes = 2048;
  /// Refill of that allowance, bytes per second.
  uint32_t allowance_bytes_per_s = 64;
  /// 401/438 answers per second per slot (sustained) and burst; rate 0: not limited.
  uint32_t challenges_per_s = 10;
  uint32_t challenge_burst = 40;

  // --- TCP and TLS connections (relay/net) ---
  /// Open connections from one source address, across workers; 0: unlimited.
  uint32_t tcp_max_per_address = 256;
  /// Open connections in total, across workers; 0: unlimited (the descriptor reserve still
  /// applies).
  uint32_t tcp_max_total = 65536;
  /// A connection that sent this many bytes without an allocation on it is closed; 0: never.
  uint32_t tcp_unauth_bytes = 32768;
  /// TLS handshakes started per second across workers (a shared bucket; burst twice the
  /// rate); 0: not limited.
  uint32_t tls_handshakes_per_s = 200;
  /// Descriptors kept free for relay sockets: a connection is refused when fewer than this
  /// many remain below RLIMIT_NOFILE (at most half the limit is kept).
  uint32_t fd_reserve = 512;
};

/// One worker's table. Not thread-safe: its shard's thread only.
class ReflectionGuard {
 public:
  /// Draws the hash key from the system's random source; throws std::runtime_error when it
  /// cannot (startup only: a predictable key would let attackers aim collisions).
  explicit ReflectionGuard(const AbuseConfig& cfg);
  /// With a given key (tests).
  ReflectionGuard(const AbuseConfig& cfg, const std::array<uint8_t, 16>& key);

  /// What an answer is, for allow().
  enum class Answer : uint8_t { kUnsigned, kChallenge };

  /// A request of `bytes` arrived from `source` at `now`: credits its slot. Returns the slot
  /// for allow(). Cheap: a keyed hash of the address and a few additions.
  size_t credit(const Endpoint& source, size_t bytes, TimeMs now);
  /// May an unsigned answer of `bytes` (a challenge: 401 or 438) go to the sources of `slot`?
  /// Debits the slot when yes. `why` (if not null) says which limit refused on no.
  enum class Refusal : uint8_t { kNone, kBytes, kChallengeRate };
  bool allow(size_t slot, size_t bytes, Answer kind, TimeMs now, Refusal* why = nullptr);

  /// New limits (reload); the table keeps its size and contents.
  void reconfigure(const AbuseConfig& cfg);
  bool enabled() const { return cfg_.reflection_enabled; }
  size_t slot_count() const { return slots_.size(); }
  /// The table's memory, fixed at construction.
  size_t memory_bytes() const { return slots_.size() * sizeof(Slot); }
  /// The slot `source` maps to (tests).
  size_t slot_of(const Endpoint& source) const;

  /// Credit beyond this many bytes is not kept (an idle source cannot bank a large burst).
  static constexpr uint32_t kMaxCredit = 65536;

 private:
  struct Slot {
    uint32_t credit = 0;             ///< bytes received not yet spent on answers
    uint32_t allowance_milli = 0;    ///< allowance bytes x 1000
    uint32_t challenges_milli = 0;   ///< challenge tokens x 1000
    uint32_t fresh = 1;              ///< never touched: full buckets on first use
    TimeMs last = 0;                 ///< when the buckets were last refilled
  };
  void refill(Slot& s, TimeMs now) const;

  AbuseConfig cfg_;
  std::array<uint64_t, 2> key_{};
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace callrelay::core
