// The media monitor an allocation takes at its first datagram: nothing held while idle, the
// same measurements as a monitor held from the start (payload map included), the shard's
// spares kept between kReserve and 2 * kReserve, and a reused monitor starting afresh.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "relay/core/monitor_pool.hpp"

namespace callrelay::core {
namespace {

constexpr size_t kAudio = static_cast<size_t>(media::Kind::kAudio);
constexpr size_t kVideo = static_cast<size_t>(media::Kind::kVideo);

/// An RTP packet (RFC 3550 section 5.1): version 2, no padding, extension or CSRCs.
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

struct Counts {
  uint64_t expected[2], received[2], packets[2], jitter[2], non_media;
  explicit Counts(const media::MediaCounters& m) {
    for (size_t k = 0; k < 2; ++k) {
      expected[k] = m.kind[k].expected.get();
      received[k] = m.kind[k].received.get();
      packets[k] = m.kind[k].packets.get();
      jitter[k] = m.kind[k].jitter_us.get();
    }
    non_media = m.non_media_packets.get();
  }
  bool operator==(const Counts&) const = default;
};

/// Feeds 20 packets of SSRC `ssrc` with payload type `pt` (one lost: seq 5 skipped), 20 ms
/// apart, to both monitors. The first packet only starts the sequence (RFC 3550 A.1): 18
/// received of 19 expected.
template <typename A, typename B>
void feed(A& a, media::MediaCounters& out_a, B& b, media::MediaCounters& out_b, uint8_t pt,
          uint32_t ssrc, uint16_t first_seq) {
  for (uint16_t i = 0; i < 20; ++i) {
    if (i == 5) continue;
    const auto p = rtp(pt, static_cast<uint16_t>(first_seq + i), 1000u + 960u * i, ssrc);
    const int64_t at_us = 1'000'000 + 20'000 * static_cast<int64_t>(i) + (i % 3) * 700;
    a.on_client_datagram(p, at_us, out_a);
    b.on_client_datagram(p, at_us, out_b);
  }
}

TEST(LazyMonitor, HoldsNoMonitorUntilTheFirstDatagram) {
  MonitorPool pool;
  LazyMonitor m;
  m.attach(&pool);
  EXPECT_FALSE(m.active());
  EXPECT_EQ(pool.spares(), MonitorPool::kReserve);  // attaching tops the spares up
  media::MediaCounters out;
  m.on_peer_datagram(rtp(0, 1, 0, 7), 1000, out);
  EXPECT_TRUE(m.active());
  EXPECT_EQ(pool.spares(), MonitorPool::kReserve - 1);
  EXPECT_EQ(pool.allocated_on_data_path(), 0u);
}

TEST(LazyMonitor, MeasuresAsAMonitorHeldFromTheStart) {
  MonitorPool pool;
  LazyMonitor lazy;
  lazy.attach(&pool);
  media::MediaMonitor plain;
  media::MediaCounters out_lazy, out_plain;
  feed(lazy, out_lazy, plain, out_plain, 111, 0x1234, 100);
  EXPECT_EQ(Counts(out_lazy), Counts(out_plain));
  EXPECT_EQ(out_lazy.kind[kAudio].received.get(), 18u);
  EXPECT_EQ(out_lazy.kind[kAudio].expected.get(), 19u);
}

TEST(LazyMonitor, ThePayloadMapSetWhileIdleReachesTheMonitor) {
  // PT 100 declared video: without the map a 960-tick step would be guessed audio.
  auto map = std::make_shared<media::PayloadMap>();
  (*map)[100] = media::PayloadType{media::PayloadType::Role::kVideo, 90000};
  MonitorPool pool;
  LazyMonitor lazy;
  lazy.attach(&pool);
  lazy.set_payload_map(map.get());
  media::MediaMonitor plain;
  plain.set_payload_map(map.get());
  media::MediaCounters out_lazy, out_plain;
  feed(lazy, out_lazy, plain, out_plain, 100, 0x99, 7);
  EXPECT_EQ(Counts(out_lazy), Counts(out_plain));
  EXPECT_EQ(out_lazy.kind[kVideo].received.get(), 18u);
  EXPECT_EQ(out_lazy.kind[kAudio].received.get(), 0u);

  // A map replaced after the monitor was taken reaches it too: a new SSRC decided by it.
  auto audio = std::make_shared<media::PayloadMap>();
  (*audio)[100] = media::PayloadType{media::PayloadType::Role::kAudio, 48000};
  lazy.set_payload_map(audio.get());
  plain.set_payload_map(audio.get());
  feed(lazy, out_lazy, plain, out_plain, 100, 0x77, 500);
  EXPECT_EQ(Counts(out_lazy), Counts(out_plain));
  EXPECT_EQ(out_lazy.kind[kAudio].received.get(), 18u);
}

TEST(LazyMonitor, AReusedMonitorStartsAfresh) {
  MonitorPool pool;
  media::MediaCounters first_out;
  {
    LazyMonitor first;
    first.attach(&pool);
    media::MediaMonitor unused;
    media::MediaCounters unused_out;
    feed(first, first_out, unused, unused_out, 0, 0xAAAA, 60000);
  }  // its monitor goes back to the spares
  EXPECT_EQ(pool.spares(), MonitorPool::kReserve);
  // The spares are taken last in, first out: the next allocation gets that same monitor. It
  // must not remember SSRC 0xAAAA's sequence numbers (they would make this stream look lossy).
  LazyMonitor second;
  second.attach(&pool);
  media::MediaMonitor fresh;
  media::MediaCounters out_second, out_fresh;
  feed(second, out_second, fresh, out_fresh, 0, 0xAAAA, 10);
  EXPECT_EQ(Counts(out_second), Counts(out_fresh));
  EXPECT_EQ(out_second.kind[kAudio].expected.get(), 19u);
}

TEST(MonitorPool, KeepsBetweenOneAndTwoReservesOfSpares) {
  MonitorPool pool;
  EXPECT_EQ(pool.spares(), 0u);
  std::vector<std::unique_ptr<media::MediaMonitor>> taken;
  for (size_t i = 0; i < 3 * MonitorPool::kReserve; ++i) taken.push_back(pool.take());
  // Nothing was spare: each one was allocated on the data path, and counted.
  EXPECT_EQ(pool.allocated_on_data_path(), 3 * MonitorPool::kReserve);
  for (auto& m : taken) pool.give_back(std::move(m));
  EXPECT_EQ(pool.spares(), 2 * MonitorPool::kReserve);  // the rest were freed
  for (size_t i = 0; i < 2 * MonitorPool::kReserve; ++i) (void)pool.take();
  EXPECT_EQ(pool.spares(), 0u);
  EXPECT_EQ(pool.allocated_on_data_path(), 3 * MonitorPool::kReserve);
  pool.refill();
  EXPECT_EQ(pool.spares(), MonitorPool::kReserve);
  pool.give_back(nullptr);
  EXPECT_EQ(pool.spares(), MonitorPool::kReserve);
}

TEST(LazyMonitor, WorksWithoutAPool) {
  LazyMonitor m;
  media::MediaMonitor plain;
  media::MediaCounters out_m, out_plain;
  feed(m, out_m, plain, out_plain, 8, 5, 1);
  EXPECT_TRUE(m.active());
  EXPECT_EQ(Counts(out_m), Counts(out_plain));
}

}  // namespace
}  // namespace callrelay::core
