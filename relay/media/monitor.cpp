#include "relay/media/monitor.hpp"

#include <cmath>
#include <limits>

#include "relay/media/rtp.hpp"

namespace callrelay::media {
namespace {

using Role = PayloadType::Role;

constexpr int64_t kLiveUs = 5'000'000;       // an SSRC's jitter counts this long after media
constexpr double kMaxJitterUs = 60'000'000;  // published jitter is capped at one minute
constexpr float kMaxDeviationUs = 1e9f;      // |D| beyond this is garbage timestamps
constexpr uint32_t kAudioClock = 48'000;     // Opus and friends
constexpr uint32_t kVideoClock = 90'000;     // every video payload format

/// Microseconds from `then` to `now`; 0 when time went backwards. No signed overflow.
uint64_t elapsed_us(int64_t now, int64_t then) {
  if (now <= then) return 0;
  return static_cast<uint64_t>(now) - static_cast<uint64_t>(then);
}

bool is_media_role(Role r) { return r == Role::kAudio || r == Role::kVideo; }

uint8_t kind_of(Role r) {
  return static_cast<uint8_t>(r == Role::kAudio ? Kind::kAudio : Kind::kVideo);
}

/// The clock of one packet's timestamps: the call's declared rate, else the static payload
/// type's (RFC 3551), else the default of the SSRC's kind.
uint32_t clock_rate(const PayloadType& declared, uint8_t payload_type, uint8_t kind) {
  if (is_media_role(declared.role)) {
    if (declared.clock_rate != 0) return declared.clock_rate;
    return declared.role == Role::kAudio ? kAudioClock : kVideoClock;
  }
  const PayloadType fixed = static_payload_type(payload_type);
  if (fixed.role != Role::kUnknown) return fixed.clock_rate;
  return kind == static_cast<uint8_t>(Kind::kAudio) ? kAudioClock : kVideoClock;
}

}  // namespace

void MediaMonitor::on_client_datagram(std::span<const uint8_t> payload, int64_t now_us,
                                      MediaCounters& out) {
  switch (demultiplex(payload)) {
    case Demux::kRtp:
      on_rtp(payload, now_us, out);
      return;
    case Demux::kStun:
      out.non_media_packets.add(1);
      on_binding(payload, now_us, /*from_client=*/true, out);
      return;
    case Demux::kDtls:
    case Demux::kRtcp:
    case Demux::kOther:
      out.non_media_packets.add(1);
      return;
  }
}

void MediaMonitor::on_peer_datagram(std::span<const uint8_t> payload, int64_t now_us,
                                    MediaCounters& out) {
  // Media is measured on the client's leg only; from the peer, only Binding timing matters.
  if (demultiplex(payload) == Demux::kStun) on_binding(payload, now_us, false, out);
}

void MediaMonitor::on_rtp(std::span<const uint8_t> payload, int64_t now_us, MediaCounters& out) {
  const auto rtp = parse_rtp(payload);
  if (!rtp) {
    out.non_media_packets.add(1);
    return;
  }
  const PayloadType declared = map_ ? (*map_)[rtp->payload_type] : PayloadType{};
  if (declared.role == Role::kRepair) {
    // rtx and flexfec: SSRCs of their own, sequence numbers that say nothing about loss.
    out.non_media_packets.add(1);
    return;
  }
  const bool media = rtp->payload_size > 0;
  if (!media) out.non_media_packets.add(1);

  SsrcSlot& slot = slot_for(rtp->ssrc, rtp->seq);
  slot.last_used = ++tick_;
  const uint16_t previous_max = slot.seq.max_seq();
  const uint64_t expected_before = slot.seq.expected();
  const SeqOutcome outcome = slot.seq.update(rtp->seq);
  const bool counted = outcome == SeqOutcome::kStarted || outcome == SeqOutcome::kCounted;
  const bool highest = outcome != SeqOutcome::kDuplicate && slot.seq.max_seq() == rtp->seq;
  if (outcome == SeqOutcome::kStarted) slot.flags &= static_cast<uint8_t>(~kHasPrevious);

  bool decided_now = false;
  if (slot.kind == kUndecided) {
    if (media) {
      const bool next = highest && rtp->seq == static_cast<uint16_t>(previous_max + 1);
      slot.kind = decide(slot, declared, rtp->payload_type, rtp->timestamp, next);
    }
    if (slot.kind == kUndecided) {
      // Remember the highest packet's timestamp for the next one's step (see decide).
      if (highest) {
        slot.last_ts = rtp->timestamp;
        slot.flags = static_cast<uint8_t>(media ? slot.flags | kHasGuessPrevious
                                                : slot.flags & ~kHasGuessPrevious);
      }
      if (slot.undecided_packets < std::numeric_limits<uint16_t>::max()) ++slot.undecided_packets;
      return;
    }
    decided_now = true;
  }

  KindCounters& k = out.kind[slot.kind];
  if (decided_now) {
    // The run so far becomes visible at once; from now on, only what each packet adds.
    k.packets.add(uint64_t{slot.undecided_packets} + 1);
    k.expected.add(slot.seq.expected());
    k.received.add(slot.seq.received());
  } else {
    k.packets.add(1);
    if (counted) {
      const uint64_t before = outcome == SeqOutcome::kStarted ? 0 : expected_before;
      k.expected.add(slot.seq.expected() - before);
      k.received.add(1);
    }
  }

  if (media) {
    if (counted) {
      if (slot.flags & kHasPrevious) {
        update_jitter(slot, now_us, rtp->timestamp,
                      clock_rate(declared, rtp->payload_type, slot.kind));
      }
      slot.last_media_us = now_us;
      slot.last_ts = rtp->timestamp;
      slot.flags |= kHasPrevious;
    } else if (outcome == SeqOutcome::kNotValid) {
      slot.flags &= static_cast<uint8_t>(~kHasPrevious);  // not the run jitter is measured on
    }
  }
  publish_jitter(now_us, out);
}

MediaMonitor::SsrcSlot& MediaMonitor::slot_for(uint32_t ssrc, uint16_t seq) {
  SsrcSlot* pick = nullptr;
  for (SsrcSlot& s : slots_) {
    if ((s.flags & kInUse) && s.ssrc == ssrc) return s;
  }
  for (SsrcSlot& s : slots_) {
    if (!(s.flags & kInUse)) {
      pick = &s;
      break;
    }
    // Ages from the wrapping tick: the largest is the least recently seen.
    if (!pick || tick_ - s.last_used > tick_ - pick->last_used) pick = &s;
  }
  // A recycled slot's counts are already in the published totals (they only ever grow).
  *pick = SsrcSlot{};
  pick->ssrc = ssrc;
  pick->flags = kInUse;
  pick->seq.start(seq);
  return *pick;
}

uint8_t MediaMonitor::decide(const SsrcSlot& slot, const PayloadType& declared,
                             uint8_t payload_type, uint32_t timestamp, bool next_in_order) {
  if (is_media_role(declared.role)) return kind_of(declared.role);
  const PayloadType fixed = static_payload_type(payload_type);
  if (fixed.role != Role::kUnknown) return kind_of(fixed.role);
  // Without the call's payload types (README, section Call quality): the payload types
  // browsers give Opus (111), its red (63) and Opus on another clock (109) are audio; so is any
  // SSRC whose timestamp steps by 10, 20 or 40 ms of a 48 kHz clock between two consecutive
  // media packets (an audio packet per ptime). Everything else is video (90 kHz): frames span
  // several packets with one timestamp (step 0) and step by 90000/fps between frames.
  if (payload_type == 111 || payload_type == 109 || payload_type == 63) {
    return static_cast<uint8_t>(Kind::kAudio);
  }
  if (!next_in_order || !(slot.flags & kHasGuessPrevious)) return kUndecided;
  const uint32_t step = timestamp - slot.last_ts;
  if (step == 480 || step == 960 || step == 1920) return static_cast<uint8_t>(Kind::kAudio);
  return static_cast<uint8_t>(Kind::kVideo);
}

void MediaMonitor::update_jitter(SsrcSlot& slot, int64_t now_us, uint32_t timestamp,
                                 uint32_t clock_rate) {
  // RFC 3550 A.8: D = (R_j - R_i) - (S_j - S_i), J += (|D| - J) / 16, here in microseconds
  // (R in microseconds, S converted with the payload's clock). Timestamps are compared
  // modulo 2^32, so a wrap or a DTX jump (which matches the arrival gap) gives D near 0.
  const auto ts_step = static_cast<int32_t>(timestamp - slot.last_ts);
  const double arrival_step = static_cast<double>(now_us) - static_cast<double>(slot.last_media_us);
  const double d = arrival_step - static_cast<double>(ts_step) * 1e6 / clock_rate;
  const float deviation = std::fmin(static_cast<float>(std::fabs(d)), kMaxDeviationUs);
  slot.jitter_us += (deviation - slot.jitter_us) / 16.0f;
}

void MediaMonitor::publish_jitter(int64_t now_us, MediaCounters& out) const {
  std::array<double, kKinds> worst{};
  for (const SsrcSlot& s : slots_) {
    if (!(s.flags & kInUse) || !(s.flags & kHasPrevious) || s.kind >= kKinds) continue;
    if (elapsed_us(now_us, s.last_media_us) > kLiveUs) continue;
    worst[s.kind] = std::fmax(worst[s.kind], static_cast<double>(s.jitter_us));
  }
  for (size_t k = 0; k < kKinds; ++k) {
    out.kind[k].jitter_us.set(static_cast<uint64_t>(std::fmin(worst[k], kMaxJitterUs) + 0.5));
  }
}

void MediaMonitor::on_binding(std::span<const uint8_t> payload, int64_t now_us, bool from_client,
                              MediaCounters& out) {
  const auto binding = parse_binding(payload);
  if (!binding) return;
  // Pending times are 32-bit: after a quiet spell longer than their lifetime every pending
  // request is stale, so dropping them all keeps each age far below the 32-bit wrap.
  if (elapsed_us(now_us, last_binding_us_) > PendingChecks<kMaxPendingChecks>::kMaxAgeUs) {
    client_checks_.clear();
    peer_checks_.clear();
  }
  last_binding_us_ = now_us;
  const auto now32 = static_cast<uint32_t>(static_cast<uint64_t>(now_us));
  client_checks_.expire(now32);
  peer_checks_.expire(now32);

  auto& requests = from_client ? client_checks_ : peer_checks_;
  auto& answered = from_client ? peer_checks_ : client_checks_;
  if (binding->cls == BindingMessage::Class::kRequest) {
    requests.add(binding->transaction, now32);
    return;
  }
  const auto rtt = answered.answer(binding->transaction, now32);
  if (!rtt) return;  // an answer to nothing that crossed this relay
  // The client answering the peer's request timed relay -> client -> relay, and vice versa.
  Relaxed& value = from_client ? out.rtt_client_us : out.rtt_peer_us;
  Relaxed& samples = from_client ? out.rtt_client_samples : out.rtt_peer_samples;
  value.set(*rtt);
  samples.add(1);
}

}  // namespace callrelay::media
