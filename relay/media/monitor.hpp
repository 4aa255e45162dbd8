// Passive media quality of one allocation, measured on the relayed bytes without decrypting
// anything: SRTP leaves the RTP header in clear (RFC 3711 section 3.1), so the relay can count
// loss and interarrival jitter per SSRC on the client-to-relay leg (RFC 3550 appendices A.1,
// A.3, A.8), and time the STUN Binding requests the two ICE agents send each other (RFC 8445
// section 7.2, RFC 7675 consent freshness) as they cross the relay, once per leg.
//
// Pure and fixed-size: no allocation, no lock, no clock (time comes in as an argument). One
// writer (the allocation's worker thread); the published counters are read by any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "relay/media/checks.hpp"
#include "relay/media/sequence.hpp"

namespace callrelay::media {

enum class Kind : uint8_t { kAudio = 0, kVideo = 1 };
inline constexpr size_t kKinds = 2;

/// What one RTP payload type of a call carries, from the SDP's a=rtpmap lines.
struct PayloadType {
  /// kRepair: rtx and flexfec, repair streams with SSRCs of their own, never counted as media.
  /// red and ulpfec share the media SSRC's sequence numbers: they are audio or video. Sequence
  /// accounting is per SSRC over every packet of it (padding-only packets included, else they
  /// would look like loss); padding-only packets never feed jitter or decide an SSRC's kind.
  enum class Role : uint8_t { kUnknown = 0, kAudio, kVideo, kRepair };
  Role role = Role::kUnknown;
  uint32_t clock_rate = 0;  ///< Hz; 0: unknown (48 kHz for audio, 90 kHz for video)
};

/// A call's payload types indexed by PT (0..127). Shared, read-only, by the call's allocations;
/// without one a packet's kind is guessed (see MediaMonitor::set_payload_map).
using PayloadMap = std::array<PayloadType, 128>;

/// A counter or gauge with one writer (relaxed load+store, no locked instruction).
class Relaxed {
 public:
  void set(uint64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(uint64_t n) { set(get() + n); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

/// Media the client sent through the allocation, one kind (all its SSRCs).
struct KindCounters {
  Relaxed expected;   ///< packets expected from extended sequence numbers, since the start
  Relaxed received;   ///< media packets received (duplicates not counted twice)
  Relaxed jitter_us;  ///< current interarrival jitter of the worst live SSRC, microseconds
  /// Every RTP packet of this kind seen (duplicates and padding-only included; repair streams
  /// belong to no kind), for activity
  Relaxed packets;
};

/// What the monitor publishes. Lives in core::AllocationInfo (stable address).
struct MediaCounters {
  std::array<KindCounters, kKinds> kind;  ///< indexed by Kind
  /// Round-trip times, last sample, microseconds (0: none yet), and how many samples.
  /// client leg: relay -> client -> relay (a Binding request from the peer, answered by the
  /// client); peer leg: relay -> peer -> relay (a request from the client, answered by the peer).
  Relaxed rtt_client_us, rtt_client_samples;
  Relaxed rtt_peer_us, rtt_peer_samples;
  /// Client datagrams that carried no media: DTLS, STUN, RTCP, repair streams, padding-only
  /// RTP and unclassifiable datagrams
  Relaxed non_media_packets;
};

/// The measuring state of one allocation: a few SSRC slots and a few pending Binding
/// transactions, all inline. Size is part of the per-allocation memory budget: keep it small.
class MediaMonitor {
 public:
  static constexpr size_t kMaxSsrcs = 4;
  static constexpr size_t kMaxPendingChecks = 4;

  /// The call's payload types (may be null: kinds are guessed). The map outlives its use:
  /// the owner replaces it with set_payload_map before freeing the old one.
  /// An SSRC's kind is decided once, by its first media packet whose payload type the map
  /// declares audio or video; else by the static types of RFC 3551 (0..34); else 111, 109 and
  /// 63 are audio; else by the timestamp step between two consecutive media packets: 480, 960
  /// or 1920 (10, 20, 40 ms at 48 kHz) is audio, anything else video (90 kHz). Until then its
  /// packets are accounted but published only once the kind is known.
  void set_payload_map(const PayloadMap* map) { map_ = map; }

  /// One datagram the client sent to a peer (the DATA of a Send indication or a ChannelData
  /// payload), at `now_us` (monotonic microseconds). Updates `out`.
  void on_client_datagram(std::span<const uint8_t> payload, int64_t now_us, MediaCounters& out);
  /// One datagram a peer sent to the client through the relay.
  void on_peer_datagram(std::span<const uint8_t> payload, int64_t now_us, MediaCounters& out);

 private:
  /// One RTP source of the client (64 bytes).
  struct SsrcSlot {
    int64_t last_media_us = 0;  ///< arrival of the last counted media packet (jitter, liveness)
    SequenceState seq;          ///< RFC 3550 A.1 and A.3
    uint32_t ssrc = 0;
    uint32_t last_ts = 0;            ///< RTP timestamp that goes with last_media_us
    uint32_t last_used = 0;          ///< tick_ of the last packet (least recently seen is recycled)
    float jitter_us = 0;             ///< RFC 3550 A.8 J, in microseconds
    uint16_t undecided_packets = 0;  ///< packets seen before the kind was known
    uint8_t kind = kUndecided;       ///< Kind, or kUndecided
    uint8_t flags = 0;               ///< kInUse, kHasPrevious, kHasGuessPrevious
  };
  static constexpr uint8_t kUndecided = 0xff;
  static constexpr uint8_t kInUse = 1;
  static constexpr uint8_t kHasPrevious = 2;       ///< last_* hold a counted media packet
  static constexpr uint8_t kHasGuessPrevious = 4;  ///< last_ts: the highest packet, undecided

  void on_rtp(std::span<const uint8_t> payload, int64_t now_us, MediaCounters& out);
  void on_binding(std::span<const uint8_t> payload, int64_t now_us, bool from_client,
                  MediaCounters& out);
  SsrcSlot& slot_for(uint32_t ssrc, uint16_t seq);
  static uint8_t decide(const SsrcSlot& slot, const PayloadType& declared, uint8_t payload_type,
                        uint32_t timestamp, bool next_in_order);
  static void update_jitter(SsrcSlot& slot, int64_t now_us, uint32_t timestamp,
                            uint32_t clock_rate);
  void publish_jitter(int64_t now_us, MediaCounters& out) const;

  const PayloadMap* map_ = nullptr;
  int64_t last_binding_us_ = 0;  ///< when a Binding last crossed (see PendingChecks)
  std::array<SsrcSlot, kMaxSsrcs> slots_{};
  PendingChecks<kMaxPendingChecks> client_checks_;  ///< requests the client sent
  PendingChecks<kMaxPendingChecks> peer_checks_;    ///< requests the peer sent
  uint32_t tick_ = 0;  ///< RTP packets seen, for least-recently-seen order
};

}  // namespace callrelay::media
