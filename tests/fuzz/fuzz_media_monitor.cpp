// libFuzzer target: MediaMonitor on arbitrary datagrams of both directions. The input is
//   flags (1 byte: bit 0, a payload map follows), [map: 64 bytes, a nibble per payload type:
//   2 bits role, 2 bits clock rate index], then records of
//   time (1 byte: bits 0-6 a step, bit 7 the unit: ms or s) | length (1 byte, bit 7: from the
//   peer) | that many bytes (what is left, if fewer).
// After every datagram the published counters must hold the monitor's promises: totals never
// go back, received never exceeds expected, jitter and round trips stay within their bounds,
// and the peer's datagrams change nothing but the round trips.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "relay/media/monitor.hpp"

namespace {

using namespace callrelay::media;

void require(bool condition) {
  if (!condition) std::abort();
}

struct Totals {
  uint64_t expected[kKinds], received[kKinds], packets[kKinds];
  uint64_t rtt_client_samples, rtt_peer_samples, non_media;

  static Totals of(const MediaCounters& c) {
    Totals t{};
    for (size_t k = 0; k < kKinds; ++k) {
      t.expected[k] = c.kind[k].expected.get();
      t.received[k] = c.kind[k].received.get();
      t.packets[k] = c.kind[k].packets.get();
    }
    t.rtt_client_samples = c.rtt_client_samples.get();
    t.rtt_peer_samples = c.rtt_peer_samples.get();
    t.non_media = c.non_media_packets.get();
    return t;
  }
};

void check(const Totals& before, const MediaCounters& c, bool from_peer) {
  const Totals now = Totals::of(c);
  for (size_t k = 0; k < kKinds; ++k) {
    require(now.expected[k] >= before.expected[k]);
    require(now.received[k] >= before.received[k]);
    require(now.packets[k] >= before.packets[k]);
    require(now.received[k] <= now.expected[k]);
    require(c.kind[k].jitter_us.get() <= 60'000'000);
    if (from_peer) {
      require(now.expected[k] == before.expected[k] && now.packets[k] == before.packets[k]);
    }
  }
  require(now.non_media >= before.non_media && (!from_peer || now.non_media == before.non_media));
  require(now.rtt_client_samples >= before.rtt_client_samples);
  require(now.rtt_peer_samples >= before.rtt_peer_samples);
  require(now.rtt_client_samples + now.rtt_peer_samples <=
          before.rtt_client_samples + before.rtt_peer_samples + 1);
  // A round trip is measured only on requests younger than five seconds.
  require(c.rtt_client_us.get() <= 5'000'000 && c.rtt_peer_us.get() <= 5'000'000);
}

PayloadMap map_from(std::span<const uint8_t> bytes) {
  static constexpr uint32_t kClocks[] = {0, 1, 48000, 0xffffffff};
  PayloadMap map{};
  for (size_t pt = 0; pt < map.size(); ++pt) {
    const uint8_t nibble = static_cast<uint8_t>(bytes[pt / 2] >> (pt % 2 ? 4 : 0));
    map[pt].role = static_cast<PayloadType::Role>(nibble & 3);
    map[pt].clock_rate = kClocks[(nibble >> 2) & 3];
  }
  return map;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  if (in.empty()) return 0;
  const bool with_map = (in[0] & 1) != 0;
  in = in.subspan(1);
  PayloadMap map{};
  if (with_map) {
    if (in.size() < 64) return 0;
    map = map_from(in.first(64));
    in = in.subspan(64);
  }

  MediaMonitor monitor;
  monitor.set_payload_map(with_map ? &map : nullptr);
  MediaCounters out;
  int64_t now_us = 1'000'000;
  while (in.size() >= 2) {
    const uint8_t time = in[0];
    const uint8_t header = in[1];
    in = in.subspan(2);
    now_us += int64_t{time & 0x7f} * ((time & 0x80) ? 1'000'000 : 1'000);
    const size_t length = std::min<size_t>(header & 0x7f, in.size());
    const std::span<const uint8_t> datagram = in.first(length);
    in = in.subspan(length);
    const bool from_peer = (header & 0x80) != 0;
    const Totals before = Totals::of(out);
    if (from_peer) {
      monitor.on_peer_datagram(datagram, now_us, out);
    } else {
      monitor.on_client_datagram(datagram, now_us, out);
    }
    check(before, out, from_peer);
  }
  return 0;
}
