// Sequence accounting of one RTP source: RFC 3550 appendix A.1 (validation and extended
// sequence numbers) and A.3 (expected packets), with a window of the latest sequence numbers
// received so that a duplicate is never counted twice and a late packet counts once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace callrelay::media {

/// What one packet did to its source's sequence accounting.
enum class SeqOutcome : uint8_t {
  kNotValid,   ///< in probation (RFC 3550 A.1 MIN_SEQUENTIAL), or the first packet of a large jump
  kStarted,    ///< counted, and the first packet of a new run (probation over, or a restart)
  kCounted,    ///< counted in the current run (in order, after a gap, or late)
  kDuplicate,  ///< already counted (within the window): not counted again
  kBeforeRun,  ///< late, but older than the run's first packet: not counted
};

/// RFC 3550 A.1 state of one source, plus the window of received sequence numbers.
/// 36 bytes, no allocation.
class SequenceState {
 public:
  static constexpr uint16_t kMinSequential = 2;  ///< RFC 3550 A.1 MIN_SEQUENTIAL
  static constexpr uint16_t kMaxDropout = 3000;  ///< RFC 3550 A.1 MAX_DROPOUT
  static constexpr uint16_t kMaxMisorder = 100;  ///< RFC 3550 A.1 MAX_MISORDER
  static constexpr uint32_t kWindow = 128;       ///< sequence numbers remembered (> kMaxMisorder)

  /// A new source whose first packet has `seq` (A.1: init_seq, then probation).
  void start(uint16_t seq);
  /// Accounts one packet of the source (A.1 update_seq).
  SeqOutcome update(uint16_t seq);

  /// Extended highest sequence number of the run: cycles + max_seq (A.1).
  uint64_t extended_max() const { return uint64_t{cycles_} + max_seq_; }
  /// Sequence number wraps in the run, counted in units of 2^16 (A.1 `cycles`).
  uint32_t cycles() const { return cycles_; }
  /// Packets expected in the run: extended_max - base_seq + 1 (A.3); 0 in probation.
  uint64_t expected() const;
  /// Packets counted in the run (each sequence number once).
  uint32_t received() const { return received_; }
  bool in_probation() const { return probation_ > 0; }
  /// Highest sequence number seen (A.1 max_seq; in probation, the latest).
  uint16_t max_seq() const { return max_seq_; }

 private:
  void start_run(uint16_t seq);
  void advance(uint16_t delta);
  bool seen(uint32_t behind) const;
  void mark(uint32_t behind);

  std::array<uint32_t, 4> window_{};  ///< bit i: max_seq - i was counted (word i / 32)
  uint32_t cycles_ = 0;               ///< wraps << 16
  uint32_t received_ = 0;
  uint32_t bad_seq_ = 0;  ///< A.1: > 0xffff means none
  uint16_t max_seq_ = 0;
  uint16_t base_seq_ = 0;
  uint16_t probation_ = 0;
};

}  // namespace callrelay::media
