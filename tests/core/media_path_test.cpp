// Relay-observed media on the data path: RTP the client sends through ChannelData and Send
// indications is counted in AllocationInfo::media, Binding requests crossing the relay are
// timed on both legs, a call's payload map reaches its allocations (set before or after they
// exist) and is freed with the call, and CoreConfig::media_quality off measures nothing.
#include <memory>

#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

constexpr char kCallA[] = "c_Yq3x-_abcdefghijklmnop";
constexpr char kCallB[] = "c_0123456789ABCDEFGHIJKL";
const Endpoint kPeer = ep("93.184.216.34:7000");
constexpr uint16_t kChannel = 0x4001;
constexpr size_t kAudio = static_cast<size_t>(media::Kind::kAudio);
constexpr size_t kVideo = static_cast<size_t>(media::Kind::kVideo);

/// An RTP packet (RFC 3550 section 5.1): version 2, no padding, extension or CSRCs, and a
/// 20-byte payload.
std::vector<uint8_t> rtp(uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc) {
  std::vector<uint8_t> p(12 + 20, 0xAB);
  p[0] = 0x80;
  p[1] = pt;
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  for (int i = 0; i < 4; ++i) {
    p[4 + static_cast<size_t>(i)] = static_cast<uint8_t>(ts >> (24 - 8 * i));
    p[8 + static_cast<size_t>(i)] = static_cast<uint8_t>(ssrc >> (24 - 8 * i));
  }
  return p;
}

/// A STUN Binding request or success response with transaction `tid` (an ICE check).
std::vector<uint8_t> binding(stun::Class cls, uint8_t tid_byte) {
  stun::TransactionId tid{};
  tid.fill(tid_byte);
  std::vector<uint8_t> buf(64);
  stun::MessageBuilder b(buf, Method::kBinding, cls, tid);
  buf.resize(b.finish());
  return buf;
}

std::vector<uint8_t> channel_data(const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out(4 + payload.size());
  stun::write_channel_data_header(std::span<uint8_t, 4>(out.data(), 4), kChannel,
                                  static_cast<uint16_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), out.begin() + 4);
  return out;
}

std::vector<uint8_t> send_indication(Client& c, const std::vector<uint8_t>& payload) {
  return c.build(Method::kSend, [&](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, kPeer);
    b.add_bytes(at::kData, payload);
  }, false, c.next_tid(), stun::Class::kIndication);
}

/// A map where payload type `pt` is `role`, the rest unknown.
std::shared_ptr<media::PayloadMap> map_with(uint8_t pt, media::PayloadType::Role role,
                                            uint32_t clock_rate) {
  auto m = std::make_shared<media::PayloadMap>();
  (*m)[pt] = media::PayloadType{role, clock_rate};
  return m;
}

/// A call-scoped client of `user` in `call`, allocated with a permission and channel to kPeer.
struct Media {
  explicit Media(Harness& harness, const char* addr = "198.51.100.7:40000",
                 const char* call = kCallA, const char* user = "bob")
      : h(harness), c(h.rest_client(addr, std::string(user) + ":call=" + call)) {
    relay = h.ports.next_id;
    h.allocate(c, kT0);
    EXPECT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
    EXPECT_EQ(h.channel_bind(c, kChannel, kPeer, kT0).code(), 0);
    info = h.observer.created.back();
  }
  /// A ChannelData from the client; expects it relayed.
  void to_peer(const std::vector<uint8_t>& payload, TimeMs now, int64_t now_us = -1) {
    const Output out = h.server->on_client_packet(c.tuple, channel_data(payload), now, now_us);
    EXPECT_EQ(out.kind, Output::Kind::kToPeer);
  }
  void from_peer(const std::vector<uint8_t>& payload, TimeMs now, int64_t now_us = -1) {
    h.peer_buffer.assign(kPeerHeadroom + payload.size() + kPeerTailroom, 0);
    std::copy(payload.begin(), payload.end(), h.peer_buffer.begin() + kPeerHeadroom);
    const Output out =
        h.server->on_peer_packet(relay, kPeer, h.peer_buffer, payload.size(), now, now_us);
    EXPECT_EQ(out.kind, Output::Kind::kToClient);
  }
  uint64_t expected(size_t kind) const { return info->media.get().kind[kind].expected.get(); }
  uint64_t received(size_t kind) const { return info->media.get().kind[kind].received.get(); }
  /// RTP packets of `kind`, counted from an SSRC's first packet (before its probation ends).
  uint64_t packets(size_t kind) const { return info->media.get().kind[kind].packets.get(); }

  Harness& h;
  Client c;
  const AllocationInfo* info = nullptr;
  RelayId relay = 0;
};

TEST(MediaPath, RtpThroughChannelDataIsCountedWithItsLoss) {
  Harness h;
  Media m(h);
  // Until a datagram crosses, the allocation holds no counters and reads zeros.
  EXPECT_FALSE(m.info->media.made());
  EXPECT_EQ(m.expected(kAudio), 0u);
  // Opus (PT 111) at 20 ms: sequence 1..10 without 4 and 7. RFC 3550 A.1: the first packet of
  // an SSRC is its probation; the source is counted from the second in sequence on.
  for (uint16_t seq = 1; seq <= 10; ++seq) {
    if (seq == 4 || seq == 7) continue;
    m.to_peer(rtp(111, seq, seq * 960u, 0x1111), kT0 + seq * 20);
  }
  EXPECT_EQ(m.expected(kAudio), 9u);
  EXPECT_EQ(m.received(kAudio), 7u);
  EXPECT_EQ(m.expected(kVideo), 0u);
  EXPECT_EQ(m.info->traffic.packets_to_peer.get(), 8u);
}

TEST(MediaPath, RtpThroughSendIndicationsIsCounted) {
  Harness h;
  Media m(h);
  for (uint16_t seq = 100; seq < 105; ++seq) {
    const Output out =
        h.server->on_client_packet(m.c.tuple, send_indication(m.c, rtp(111, seq, seq * 960u, 7)),
                                   kT0 + seq);
    EXPECT_EQ(out.kind, Output::Kind::kToPeer);
  }
  EXPECT_EQ(m.expected(kAudio), 4u);  // the first is the SSRC's probation (RFC 3550 A.1)
  EXPECT_EQ(m.received(kAudio), 4u);
  // DTLS from the client and RTP from the peer are not media of this leg.
  m.to_peer({22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, kT0 + 200);
  m.from_peer(rtp(111, 1, 960, 9), kT0 + 200);
  EXPECT_EQ(m.expected(kAudio), 4u);
  EXPECT_GE(m.info->media.get().non_media_packets.get(), 1u);
}

TEST(MediaPath, JitterUsesTheMicrosecondClockWhenGiven) {
  Harness h;
  Media m(h);
  // Video at 90 kHz, one packet per 33.333 ms frame (3000 ticks), arriving 5 ms late every other
  // frame. All within one millisecond of the core clock: only now_us can see it.
  int64_t us = 1'000'000'000;
  for (uint16_t seq = 1; seq <= 200; ++seq) {
    const int64_t arrival = us + (seq % 2 == 0 ? 5000 : 0);
    m.to_peer(rtp(96, seq, seq * 3000u, 0x2222), kT0, arrival);
    us += 33'333;
  }
  EXPECT_EQ(m.received(kVideo), 199u);  // after the first packet's probation
  // RFC 3550 A.8: |D| alternates around 5 ms, so J converges near 5 ms.
  const uint64_t jitter = m.info->media.get().kind[kVideo].jitter_us.get();
  EXPECT_GT(jitter, 4000u);
  EXPECT_LT(jitter, 6000u);
}

TEST(MediaPath, BindingRoundTripsOnBothLegsWithTheFakeClock) {
  Harness h;
  Media m(h);
  // The client's check goes to the peer and comes back 30 ms later: the peer leg.
  m.to_peer(binding(stun::Class::kRequest, 0x11), kT0 + 1000);
  m.from_peer(binding(stun::Class::kSuccess, 0x11), kT0 + 1030);
  EXPECT_EQ(m.info->media.get().rtt_peer_us.get(), 30'000u);
  EXPECT_EQ(m.info->media.get().rtt_peer_samples.get(), 1u);
  EXPECT_EQ(m.info->media.get().rtt_client_samples.get(), 0u);
  // The peer's check is answered by the client 12 ms later: the client leg.
  m.from_peer(binding(stun::Class::kRequest, 0x22), kT0 + 2000);
  m.to_peer(binding(stun::Class::kSuccess, 0x22), kT0 + 2012);
  EXPECT_EQ(m.info->media.get().rtt_client_us.get(), 12'000u);
  EXPECT_EQ(m.info->media.get().rtt_client_samples.get(), 1u);
  // With the microsecond clock a sub-millisecond round trip is seen as such.
  m.to_peer(binding(stun::Class::kRequest, 0x33), kT0 + 3000, 5'000'000);
  m.from_peer(binding(stun::Class::kSuccess, 0x33), kT0 + 3000, 5'000'250);
  EXPECT_EQ(m.info->media.get().rtt_peer_us.get(), 250u);
  EXPECT_EQ(m.info->media.get().rtt_peer_samples.get(), 2u);
}

TEST(MediaPath, MeasurementOffLeavesTheCountersAtZero) {
  CoreConfig cfg;
  cfg.media_quality = false;
  Harness h(cfg);
  Media m(h);
  for (uint16_t seq = 1; seq <= 5; ++seq) m.to_peer(rtp(111, seq, seq * 960u, 3), kT0 + seq);
  m.to_peer(binding(stun::Class::kRequest, 0x44), kT0 + 10);
  m.from_peer(binding(stun::Class::kSuccess, 0x44), kT0 + 20);
  for (const media::KindCounters& k : m.info->media.get().kind) {
    EXPECT_EQ(k.expected.get(), 0u);
    EXPECT_EQ(k.received.get(), 0u);
    EXPECT_EQ(k.packets.get(), 0u);
  }
  EXPECT_EQ(m.info->media.get().rtt_peer_samples.get(), 0u);
  EXPECT_EQ(m.info->media.get().non_media_packets.get(), 0u);
  // Relaying itself is unchanged.
  EXPECT_EQ(m.info->traffic.packets_to_peer.get(), 6u);
  EXPECT_EQ(m.info->traffic.packets_to_client.get(), 1u);
}

TEST(MediaPayloads, MapSetBeforeTheAllocationExistsIsApplied) {
  Harness h;
  // PT 111 declared video: without the map it would count as audio (Opus).
  h.server->set_payload_types(kCallA, map_with(111, media::PayloadType::Role::kVideo, 90000),
                              kT0);
  EXPECT_EQ(h.server->payload_map_count(), 1u);
  Media m(h);
  for (uint16_t seq = 1; seq <= 4; ++seq) m.to_peer(rtp(111, seq, seq * 3000u, 5), kT0 + seq);
  EXPECT_EQ(m.packets(kVideo), 4u);
  EXPECT_EQ(m.packets(kAudio), 0u);
  // Another call's allocation does not get it.
  Media other(h, "198.51.100.9:40000", kCallB);
  for (uint16_t seq = 1; seq <= 4; ++seq) other.to_peer(rtp(111, seq, seq * 960u, 6), kT0 + seq);
  EXPECT_EQ(other.packets(kAudio), 4u);
}

TEST(MediaPayloads, MapSetAfterTheAllocationReachesItAndReplacesTheOldOne) {
  Harness h;
  Media m(h);
  m.to_peer(rtp(111, 1, 960, 0xA), kT0 + 1);
  EXPECT_EQ(m.packets(kAudio), 1u);  // guessed: Opus
  const std::weak_ptr<const media::PayloadMap> first =
      [&] {
        auto map = map_with(111, media::PayloadType::Role::kVideo, 90000);
        h.server->set_payload_types(kCallA, map, kT0 + 2);
        return std::weak_ptr<const media::PayloadMap>(map);
      }();
  EXPECT_FALSE(first.expired());  // the shard keeps it
  // A new SSRC decides its kind with the call's map.
  m.to_peer(rtp(111, 1, 3000, 0xB), kT0 + 3);
  EXPECT_EQ(m.packets(kVideo), 1u);
  // A replacement frees the first map; the allocation measures with the new one (ASan would
  // see a read of the freed map here).
  h.server->set_payload_types(kCallA, map_with(111, media::PayloadType::Role::kRepair, 0),
                              kT0 + 4);
  EXPECT_TRUE(first.expired());
  m.to_peer(rtp(111, 2, 6000, 0xB), kT0 + 5);
  m.to_peer(rtp(111, 1, 960, 0xC), kT0 + 5);
  EXPECT_EQ(m.packets(kVideo), 1u);  // repair packets are never media
  EXPECT_EQ(m.packets(kAudio), 1u);
  // A null map switches the allocation back to guessing and drops the entry.
  h.server->set_payload_types(kCallA, nullptr, kT0 + 6);
  EXPECT_EQ(h.server->payload_map_count(), 0u);
  m.to_peer(rtp(111, 1, 960, 0xD), kT0 + 7);
  EXPECT_EQ(m.packets(kAudio), 2u);
}

TEST(MediaPayloads, EndCallFreesTheMap) {
  Harness h;
  Media bob(h);
  Media carol(h, "198.51.100.8:40000", kCallA, "carol");
  std::weak_ptr<const media::PayloadMap> weak;
  {
    auto map = map_with(96, media::PayloadType::Role::kVideo, 90000);
    weak = map;
    h.server->set_payload_types(kCallA, std::move(map), kT0);
  }
  ASSERT_FALSE(weak.expired());
  h.server->end_call(kCallA, kT0 + kSecond);
  EXPECT_EQ(h.observer.ended.size(), 2u);
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(h.server->payload_map_count(), 0u);
  // A map for a call with no allocation here goes with end_call as well.
  h.server->set_payload_types(kCallB, map_with(96, media::PayloadType::Role::kVideo, 0), kT0);
  EXPECT_EQ(h.server->payload_map_count(), 1u);
  h.server->end_call(kCallB, kT0 + kSecond);
  EXPECT_EQ(h.server->payload_map_count(), 0u);
}

TEST(MediaPayloads, MapOutlivesTheLastAllocationUntilIdleThenGoes) {
  Harness h;
  Media m(h);
  std::weak_ptr<const media::PayloadMap> weak;
  {
    auto map = map_with(96, media::PayloadType::Role::kVideo, 90000);
    weak = map;
    h.server->set_payload_types(kCallA, std::move(map), kT0);
  }
  // The allocation ends on its own: the map stays for the call's next allocation.
  EXPECT_EQ(h.refresh(m.c, 0, kT0 + kSecond).code(), 0);
  EXPECT_EQ(h.server->call_count(), 0u);
  EXPECT_FALSE(weak.expired());
  Media again(h, "198.51.100.7:40001");
  again.to_peer(rtp(96, 1, 3000, 1), kT0 + 2 * kSecond);
  EXPECT_EQ(again.packets(kVideo), 1u);
  EXPECT_EQ(h.refresh(again.c, 0, kT0 + 3 * kSecond).code(), 0);
  // Without any allocation of the call for kPayloadTypesIdleMs, it is freed.
  h.server->on_timer(kT0 + 3 * kSecond + TurnServer::kPayloadTypesIdleMs - 1);
  EXPECT_FALSE(weak.expired());
  h.server->on_timer(kT0 + 3 * kSecond + TurnServer::kPayloadTypesIdleMs);
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(h.server->payload_map_count(), 0u);
}

TEST(MediaPayloads, ShutdownFreesEveryMap) {
  Harness h;
  Media m(h);
  std::weak_ptr<const media::PayloadMap> weak;
  {
    auto map = map_with(96, media::PayloadType::Role::kVideo, 90000);
    weak = map;
    h.server->set_payload_types(kCallA, std::move(map), kT0);
  }
  h.server->set_payload_types(kCallB, map_with(8, media::PayloadType::Role::kAudio, 8000), kT0);
  h.server->shutdown(kT0 + kSecond);
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(h.server->payload_map_count(), 0u);
}

}  // namespace
}  // namespace callrelay::core::testing
