// Binding transactions in flight through the relay, one direction: enough to time the
// connectivity checks and consent freshness requests of ICE (RFC 8445 section 7.2, RFC 7675)
// as they cross the relay, without parsing more of STUN than its header.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace callrelay::media {

/// Up to N pending Binding requests of one direction: transaction id and when it passed.
/// Times are kept as the low 32 bits of microseconds; the owner discards everything when no
/// Binding crossed for longer than kMaxAgeUs (see expire), so a 32-bit age never wraps.
template <size_t N>
class PendingChecks {
 public:
  using TransactionId = std::array<uint8_t, 12>;
  static constexpr uint32_t kMaxAgeUs = 5'000'000;  ///< an unanswered request is forgotten

  /// Records a request seen at `now_us`. A retransmission (the same id again) makes the sample
  /// ambiguous, so the transaction is dropped (Karn's algorithm, RFC 6298 section 3). When
  /// full, the oldest entry is replaced.
  void add(const TransactionId& id, uint32_t now_us) {
    if (const auto i = find(id)) {
      used_ &= static_cast<uint8_t>(~(1u << *i));
      return;
    }
    size_t slot = 0;
    uint32_t oldest_age = 0;
    for (size_t i = 0; i < N; ++i) {
      if (!used(i)) {
        slot = i;
        break;
      }
      const uint32_t age = now_us - at_[i];
      if (age >= oldest_age) {
        oldest_age = age;
        slot = i;
      }
    }
    ids_[slot] = id;
    at_[slot] = now_us;
    used_ |= static_cast<uint8_t>(1u << slot);
  }

  /// The round trip of the request answered by `id`, removing it; nullopt when unknown.
  std::optional<uint32_t> answer(const TransactionId& id, uint32_t now_us) {
    const auto i = find(id);
    if (!i) return std::nullopt;
    used_ &= static_cast<uint8_t>(~(1u << *i));
    return now_us - at_[*i];
  }

  /// Forgets requests older than kMaxAgeUs at `now_us`.
  void expire(uint32_t now_us) {
    for (size_t i = 0; i < N; ++i) {
      if (used(i) && now_us - at_[i] > kMaxAgeUs) used_ &= static_cast<uint8_t>(~(1u << i));
    }
  }

  /// Forgets every request.
  void clear() { used_ = 0; }

  size_t size() const {
    size_t n = 0;
    for (size_t i = 0; i < N; ++i) n += used(i) ? 1 : 0;
    return n;
  }

 private:
  static_assert(N >= 1 && N <= 8, "the used set is one byte");

  bool used(size_t i) const { return ((used_ >> i) & 1u) != 0; }
  std::optional<size_t> find(const TransactionId& id) const {
    for (size_t i = 0; i < N; ++i) {
      if (used(i) && ids_[i] == id) return i;
    }
    return std::nullopt;
  }

  std::array<TransactionId, N> ids_{};
  std::array<uint32_t, N> at_{};
  uint8_t used_ = 0;
};

}  // namespace callrelay::media
