// Synthetic RTP and STUN datagrams for the relay/media tests, and a monitor with its counters.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "relay/media/monitor.hpp"

namespace callrelay::media::testing {

using Bytes = std::vector<uint8_t>;

inline void put_u16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

inline void put_u32(Bytes& b, size_t at, uint32_t v) {
  put_u16(b, at, static_cast<uint16_t>(v >> 16));
  put_u16(b, at + 2, static_cast<uint16_t>(v));
}

/// One RTP packet (RFC 3550 section 5.1), built field by field.
struct Rtp {
  uint32_t ssrc = 0x11111111;
  uint16_t seq = 0;
  uint32_t ts = 0;
  uint8_t pt = 111;
  bool marker = false;
  size_t payload = 80;  ///< payload bytes (0: padding only, with padding > 0)
  uint8_t padding = 0;  ///< padding bytes, the count octet included
  uint8_t csrcs = 0;
  int extension_words = -1;  ///< -1: no header extension

  Bytes bytes() const {
    const size_t ext = extension_words < 0 ? 0 : 4 + 4 * static_cast<size_t>(extension_words);
    Bytes b(12 + 4 * size_t{csrcs} + ext + payload + padding, 0xab);
    b[0] = static_cast<uint8_t>(0x80 | (padding ? 0x20 : 0) | (extension_words >= 0 ? 0x10 : 0) |
                                csrcs);
    b[1] = static_cast<uint8_t>((marker ? 0x80 : 0) | pt);
    put_u16(b, 2, seq);
    put_u32(b, 4, ts);
    put_u32(b, 8, ssrc);
    if (extension_words >= 0) {
      const size_t at = 12 + 4 * size_t{csrcs};
      put_u16(b, at, 0xbede);
      put_u16(b, at + 2, static_cast<uint16_t>(extension_words));
    }
    if (padding) b.back() = padding;
    return b;
  }
};

using TransactionId = std::array<uint8_t, 12>;

inline TransactionId tid(uint8_t n) {
  TransactionId t{};
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint8_t>(n + i * 7);
  return t;
}

/// A STUN message header with `type` and `attribute_bytes` of zeroes after it
/// (RFC 8489 section 5).
inline Bytes stun(uint16_t type, const TransactionId& id, size_t attribute_bytes = 8) {
  Bytes b(20 + attribute_bytes, 0);
  put_u16(b, 0, type);
  put_u16(b, 2, static_cast<uint16_t>(attribute_bytes));
  put_u32(b, 4, 0x2112A442);
  for (size_t i = 0; i < id.size(); ++i) b[8 + i] = id[i];
  return b;
}
inline constexpr uint16_t kBindingRequest = 0x0001;
inline constexpr uint16_t kBindingSuccess = 0x0101;
inline constexpr uint16_t kBindingError = 0x0111;

/// A monitor, its published counters and a clock in microseconds.
struct Meter {
  MediaMonitor monitor;
  MediaCounters out;
  int64_t now_us = 1'000'000'000;

  void client(const Bytes& b) { monitor.on_client_datagram(b, now_us, out); }
  void peer(const Bytes& b) { monitor.on_peer_datagram(b, now_us, out); }

  const KindCounters& audio() const { return out.kind[static_cast<size_t>(Kind::kAudio)]; }
  const KindCounters& video() const { return out.kind[static_cast<size_t>(Kind::kVideo)]; }
  static int64_t lost(const KindCounters& k) {
    return static_cast<int64_t>(k.expected.get()) - static_cast<int64_t>(k.received.get());
  }
};

/// The published numbers of both kinds, to check that nothing moved or nothing went back.
struct Snapshot {
  std::array<uint64_t, 4 * kKinds + 5> v{};

  static Snapshot of(const MediaCounters& c) {
    Snapshot s;
    size_t i = 0;
    for (const KindCounters& k : c.kind) {
      s.v[i++] = k.expected.get();
      s.v[i++] = k.received.get();
      s.v[i++] = k.jitter_us.get();
      s.v[i++] = k.packets.get();
    }
    s.v[i++] = c.rtt_client_us.get();
    s.v[i++] = c.rtt_client_samples.get();
    s.v[i++] = c.rtt_peer_us.get();
    s.v[i++] = c.rtt_peer_samples.get();
    s.v[i++] = c.non_media_packets.get();
    return s;
  }
  bool operator==(const Snapshot&) const = default;
};

}  // namespace callrelay::media::testing
