#include "relay/media/sequence.hpp"

namespace callrelay::media {
namespace {

constexpr uint32_t kSeqMod = 0x10000;        // RFC 3550 A.1 RTP_SEQ_MOD
constexpr uint32_t kNoBadSeq = kSeqMod + 1;  // never equal to a sequence number

}  // namespace

void SequenceState::start(uint16_t seq) {
  // A.1: init_seq(s, seq); s->max_seq = seq - 1; s->probation = MIN_SEQUENTIAL.
  start_run(seq);
  received_ = 0;
  window_ = {};
  max_seq_ = static_cast<uint16_t>(seq - 1);
  probation_ = kMinSequential;
}

void SequenceState::start_run(uint16_t seq) {
  // A.1 init_seq, and the packet that starts the run is counted.
  base_seq_ = seq;
  max_seq_ = seq;
  bad_seq_ = kNoBadSeq;
  cycles_ = 0;
  received_ = 1;
  window_ = {1, 0, 0, 0};
}

uint64_t SequenceState::expected() const {
  if (probation_ > 0) return 0;
  return extended_max() - base_seq_ + 1;
}

SeqOutcome SequenceState::update(uint16_t seq) {
  const auto udelta = static_cast<uint16_t>(seq - max_seq_);
  if (probation_ > 0) {
    // A.1: a source is valid after MIN_SEQUENTIAL packets in sequence.
    if (seq == static_cast<uint16_t>(max_seq_ + 1)) {
      --probation_;
      max_seq_ = seq;
      if (probation_ == 0) {
        start_run(seq);
        return SeqOutcome::kStarted;
      }
    } else {
      probation_ = kMinSequential - 1;
      max_seq_ = seq;
    }
    return SeqOutcome::kNotValid;
  }
  if (udelta == 0) return SeqOutcome::kDuplicate;  // the highest one again
  if (udelta < kMaxDropout) {
    // In order, with a permissible gap; a smaller number means the 16 bits wrapped.
    if (seq < max_seq_) cycles_ += kSeqMod;
    advance(udelta);
    max_seq_ = seq;
    ++received_;
    return SeqOutcome::kCounted;
  }
  if (udelta <= kSeqMod - kMaxMisorder) {
    // A very large jump: the source restarted if the next packet follows it (A.1).
    if (seq == bad_seq_) {
      start_run(seq);
      return SeqOutcome::kStarted;
    }
    bad_seq_ = (uint32_t{seq} + 1) & (kSeqMod - 1);
    return SeqOutcome::kNotValid;
  }
  // Duplicate or reordered: at most kMaxMisorder - 1 behind the highest, within the window.
  const uint32_t behind = kSeqMod - udelta;
  if (seen(behind)) return SeqOutcome::kDuplicate;
  if (behind > extended_max() - base_seq_) return SeqOutcome::kBeforeRun;
  mark(behind);
  ++received_;
  return SeqOutcome::kCounted;
}

void SequenceState::advance(uint16_t delta) {
  // The window slides by `delta`: bit i becomes bit i + delta; bit 0 is the new highest.
  const uint32_t words = delta / 32;
  const uint32_t bits = delta % 32;
  for (size_t i = window_.size(); i-- > 0;) {
    uint32_t v = 0;
    if (i >= words) {
      v = window_[i - words] << bits;
      if (bits != 0 && i > words) v |= window_[i - words - 1] >> (32 - bits);
    }
    window_[i] = v;
  }
  window_[0] |= 1;
}

bool SequenceState::seen(uint32_t behind) const {
  return behind < kWindow && ((window_[behind / 32] >> (behind % 32)) & 1) != 0;
}

void SequenceState::mark(uint32_t behind) {
  if (behind < kWindow) window_[behind / 32] |= uint32_t{1} << (behind % 32);
}

}  // namespace callrelay::media
