// MediaMonitor's interarrival jitter (RFC 3550 A.8), clock rates and the kind of an SSRC.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "media_test_support.hpp"

namespace callrelay::media::testing {
namespace {

/// Sends `n` packets of `p`, timestamp + `ts_step` and arrival + `us_step` each.
void send(Meter& m, Rtp& p, int n, uint32_t ts_step, int64_t us_step) {
  for (int i = 0; i < n; ++i) {
    m.client(p.bytes());
    ++p.seq;
    p.ts += ts_step;
    m.now_us += us_step;
  }
}

TEST(MediaJitter, MatchesRfc3550A8ComputedIndependently) {
  Meter m;
  Rtp p{.seq = 1, .ts = 1000};
  std::mt19937 rng(20240601);
  constexpr int kSpreadUs = 10'000;  // arrivals uniform within +-10 ms of the nominal time
  std::uniform_int_distribution<int> offset(-kSpreadUs, kSpreadUs);
  const int64_t t0 = m.now_us;
  double j = 0, prev_transit = 0, sum = 0;
  bool have_prev = false;
  int samples = 0;
  for (int i = 0; i < 20000; ++i) {
    const int64_t arrival = t0 + int64_t{i} * 20'000 + offset(rng);
    m.now_us = arrival;
    m.client(p.bytes());
    if (i >= 1) {  // the first packet is the probation; jitter is measured on the run
      // A.8 as written: arrival in timestamp units, transit = arrival - timestamp.
      const double transit = static_cast<double>(arrival) * 48000 / 1e6 - p.ts;
      if (have_prev) j += (std::fabs(transit - prev_transit) - j) / 16;
      prev_transit = transit;
      have_prev = true;
    }
    ASSERT_NEAR(static_cast<double>(m.audio().jitter_us.get()), j / 48000 * 1e6, 1.0) << i;
    if (i >= 1000) {
      sum += static_cast<double>(m.audio().jitter_us.get());
      ++samples;
    }
    ++p.seq;
    p.ts += 960;
  }
  // J's expectation is E|D|, and D = e_j - e_i of two uniform offsets on [-S, S] has
  // E|D| = 2S/3: the published value settles there (averaged over its fluctuation).
  const double theory = 2.0 * kSpreadUs / 3;
  EXPECT_NEAR(sum / samples, theory, 0.10 * theory);
}

TEST(MediaJitter, OnlyConsecutivePacketsOfOneSsrc) {
  Meter m;
  Rtp a{.ssrc = 1, .seq = 10, .ts = 0};
  Rtp b{.ssrc = 2, .seq = 5000, .ts = 3'000'000'000u};  // far apart timestamps, same clock
  for (int i = 0; i < 200; ++i) {
    send(m, a, 1, 960, 10'000);
    send(m, b, 1, 960, 10'000);
  }
  EXPECT_EQ(m.audio().jitter_us.get(), 0u);
  EXPECT_EQ(m.audio().expected.get(), 2u * 199u);
}

TEST(MediaJitter, WorstLiveSsrcOfTheKindIsPublished) {
  Meter m;
  Rtp steady{.ssrc = 1, .seq = 1};
  Rtp shaky{.ssrc = 2, .seq = 1};
  for (int i = 0; i < 100; ++i) {
    send(m, steady, 1, 960, 10'000);
    m.now_us += (i % 2) ? 4'000 : -4'000;  // 8 ms early, then on time, ...
    send(m, shaky, 1, 960, 10'000);
    m.now_us -= (i % 2) ? 4'000 : -4'000;
  }
  const uint64_t shaky_jitter = m.audio().jitter_us.get();
  EXPECT_GT(shaky_jitter, 4'000u);
  // The shaky source stops; five seconds on, only the steady one counts.
  send(m, steady, 300, 960, 20'000);
  EXPECT_EQ(m.audio().jitter_us.get(), 0u);

  // Video that stopped (an audio-only fallback) shows no jitter once it is stale either.
  Rtp video{.ssrc = 3, .seq = 1, .pt = 96};
  for (int i = 0; i < 30; ++i) {
    send(m, video, 1, 3000, i % 2 ? 40'000 : 26'666);
    send(m, steady, 1, 960, 0);
  }
  EXPECT_GT(m.video().jitter_us.get(), 0u);
  send(m, steady, 300, 960, 20'000);
  EXPECT_EQ(m.video().jitter_us.get(), 0u);
}

TEST(MediaJitter, StaticPayloadTypesUseTheirClock) {
  Meter pcmu;
  Rtp p{.pt = 0, .payload = 160};  // PCMU, 8 kHz: 160 samples per 20 ms
  send(pcmu, p, 100, 160, 20'000);
  EXPECT_EQ(pcmu.audio().expected.get(), 99u);
  EXPECT_EQ(pcmu.audio().jitter_us.get(), 0u);

  Meter h263;
  Rtp v{.pt = 34, .payload = 1000};  // H263, 90 kHz
  send(h263, v, 100, 3000, 33'333);
  EXPECT_EQ(h263.video().expected.get(), 99u);
  EXPECT_LE(h263.video().jitter_us.get(), 1u);
}

TEST(MediaJitter, MapClockRatesAndDefaults) {
  PayloadMap map{};
  map[100] = {PayloadType::Role::kAudio, 0};      // unknown rate: 48 kHz
  map[101] = {PayloadType::Role::kAudio, 16000};  // e.g. a 16 kHz codec
  map[102] = {PayloadType::Role::kVideo, 0};      // 90 kHz
  Meter m;
  m.monitor.set_payload_map(&map);
  Rtp a{.ssrc = 1, .pt = 100};
  Rtp b{.ssrc = 2, .pt = 101};
  Rtp v{.ssrc = 3, .pt = 102};
  for (int i = 0; i < 100; ++i) {
    send(m, a, 1, 960, 0);
    send(m, b, 1, 320, 0);
    send(m, v, 1, 1800, 20'000);
  }
  EXPECT_EQ(m.audio().expected.get(), 2u * 99u);
  EXPECT_EQ(m.video().expected.get(), 99u);
  EXPECT_EQ(m.audio().jitter_us.get(), 0u);
  EXPECT_EQ(m.video().jitter_us.get(), 0u);
}

TEST(MediaKind, WithoutAMapTimestampStepsTellAudio) {
  for (const uint32_t step : {480u, 960u, 1920u}) {
    Meter m;
    Rtp p{.pt = 100};
    send(m, p, 50, step, step * 1'000'000 / 48'000);
    EXPECT_EQ(m.audio().packets.get(), 50u) << step;
    EXPECT_EQ(m.audio().expected.get(), 49u) << step;
    EXPECT_EQ(m.audio().jitter_us.get(), 0u) << step;
    EXPECT_EQ(m.video().packets.get(), 0u) << step;
  }
}

TEST(MediaKind, WithoutAMapOtherDynamicTypesAreVideo) {
  Meter m;
  Rtp p{.pt = 102, .payload = 1100};
  for (int frame = 0; frame < 30; ++frame) {  // two packets a frame, 30 frames per second
    send(m, p, 1, 0, 0);
    send(m, p, 1, 3000, 33'333);
  }
  EXPECT_EQ(m.video().packets.get(), 60u);
  EXPECT_EQ(m.video().expected.get(), 59u);
  EXPECT_LE(m.video().jitter_us.get(), 1u);
  EXPECT_EQ(m.audio().packets.get(), 0u);

  Meter opus;  // the browsers' Opus number is audio from its first packet, whatever its step
  Rtp o{.pt = 111};
  send(opus, o, 10, 2880, 60'000);
  EXPECT_EQ(opus.audio().packets.get(), 10u);
}

TEST(MediaKind, TheMapWinsOverGuessing) {
  PayloadMap map{};
  map[100] = {PayloadType::Role::kVideo, 90000};
  Meter m;
  m.monitor.set_payload_map(&map);
  Rtp p{.pt = 100};
  send(m, p, 20, 960, 20'000);  // an audio-like step, but the call said video
  EXPECT_EQ(m.video().packets.get(), 20u);
  EXPECT_EQ(m.audio().packets.get(), 0u);
}

TEST(MediaKind, PaddingNeverDecidesTheKind) {
  Meter m;
  Rtp p{.seq = 1, .ts = 0, .pt = 100};
  m.client(p.bytes());
  Rtp pad{.seq = 2, .ts = 960, .pt = 100, .payload = 0, .padding = 100};
  m.client(pad.bytes());  // an audio-like step, but padding only
  EXPECT_EQ(m.audio().packets.get() + m.video().packets.get(), 0u);
  p.seq = 3;
  p.ts = 3000;
  m.client(p.bytes());  // follows padding: still no step to judge
  EXPECT_EQ(m.audio().packets.get() + m.video().packets.get(), 0u);
  p.seq = 4;
  p.ts = 6000;
  m.client(p.bytes());
  EXPECT_EQ(m.video().packets.get(), 4u);  // the undecided packets are counted at once
  EXPECT_EQ(m.video().expected.get(), 3u);
  EXPECT_EQ(m.video().received.get(), 3u);
  EXPECT_EQ(m.audio().packets.get(), 0u);
}

}  // namespace
}  // namespace callrelay::media::testing
