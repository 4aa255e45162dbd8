// MediaMonitor on synthetic RTP streams: loss accounting (RFC 3550 A.1, A.3), SSRC slots,
// repair streams, padding and what is not media. Jitter and RTT have their own files.
#include <gtest/gtest.h>

#include <vector>

#include "media_test_support.hpp"

namespace callrelay::media::testing {
namespace {

/// Sends `n` packets of `p` 20 ms apart, Opus-like (timestamp +960 at 48 kHz).
void send_audio(Meter& m, Rtp& p, int n) {
  for (int i = 0; i < n; ++i) {
    m.client(p.bytes());
    ++p.seq;
    p.ts += 960;
    m.now_us += 20'000;
  }
}

TEST(MediaMonitor, CleanStreamHasNoLossAndNoJitter) {
  Meter m;
  Rtp p{.seq = 1000, .ts = 5000};
  send_audio(m, p, 500);
  EXPECT_EQ(m.audio().packets.get(), 500u);
  // The first packet is the source's probation (RFC 3550 A.1, MIN_SEQUENTIAL 2): the run, and
  // so `expected`, starts at the second.
  EXPECT_EQ(m.audio().expected.get(), 499u);
  EXPECT_EQ(m.audio().received.get(), 499u);
  EXPECT_EQ(m.audio().jitter_us.get(), 0u);
  EXPECT_EQ(m.video().packets.get(), 0u);
  EXPECT_EQ(m.video().expected.get(), 0u);
  EXPECT_EQ(m.out.non_media_packets.get(), 0u);
}

TEST(MediaMonitor, SkippedSequenceNumbersAreExactlyTheLoss) {
  Meter m;
  Rtp p{.seq = 30000};
  int skipped = 0;
  for (int i = 0; i < 2000; ++i) {
    if (i >= 10 && i % 20 == 7) {
      ++skipped;  // 5%: the sender's packet never reaches the relay
    } else {
      m.client(p.bytes());
    }
    ++p.seq;
    p.ts += 960;
    m.now_us += 20'000;
  }
  EXPECT_EQ(skipped, 99);
  EXPECT_EQ(m.audio().expected.get(), 1999u);
  EXPECT_EQ(m.audio().received.get(), 1999u - 99u);
  EXPECT_EQ(Meter::lost(m.audio()), 99);
}

TEST(MediaMonitor, LatePacketsCountAsReceived) {
  Meter m;
  Rtp p{.seq = 7};
  send_audio(m, p, 10);  // 7..16
  Rtp late = p;          // 17 arrives after 18 and 19
  p.seq = 18;
  p.ts += 960;
  send_audio(m, p, 2);
  EXPECT_EQ(m.audio().expected.get(), 12u);  // 8..19
  EXPECT_EQ(Meter::lost(m.audio()), 1);
  m.client(late.bytes());
  EXPECT_EQ(m.audio().expected.get(), 12u);
  EXPECT_EQ(m.audio().received.get(), 12u);
  EXPECT_EQ(Meter::lost(m.audio()), 0);

  // Then every pair swapped for a while: nothing is lost.
  for (int i = 0; i < 200; i += 2) {
    Rtp a = p, b = p;
    b.seq = static_cast<uint16_t>(p.seq + 1);
    b.ts = p.ts + 960;
    m.client(b.bytes());
    m.client(a.bytes());
    p.seq = static_cast<uint16_t>(p.seq + 2);
    p.ts += 1920;
    m.now_us += 40'000;
  }
  EXPECT_EQ(m.audio().expected.get(), 212u);
  EXPECT_EQ(m.audio().received.get(), 212u);
}

TEST(MediaMonitor, DuplicatesAreCountedOnce) {
  Meter m;
  Rtp p{.seq = 500};
  for (int i = 0; i < 200; ++i) {
    m.client(p.bytes());
    m.client(p.bytes());
    ++p.seq;
    p.ts += 960;
    m.now_us += 20'000;
  }
  Rtp old = p;
  old.seq = static_cast<uint16_t>(p.seq - 50);  // a late duplicate, inside the window
  m.client(old.bytes());
  EXPECT_EQ(m.audio().packets.get(), 401u);
  EXPECT_EQ(m.audio().expected.get(), 199u);
  EXPECT_EQ(m.audio().received.get(), 199u);
}

TEST(MediaMonitor, SequenceWrapKeepsCounting) {
  Meter m;
  Rtp p{.seq = 65400};
  int skipped = 0;
  for (int i = 0; i < 400; ++i) {
    if (p.seq == 3 || p.seq == 65535) {
      ++skipped;
    } else {
      m.client(p.bytes());
    }
    ++p.seq;
    p.ts += 960;
    m.now_us += 20'000;
  }
  EXPECT_EQ(skipped, 2);
  EXPECT_EQ(m.audio().expected.get(), 399u);  // 65401 .. 65535, 0 .. 263
  EXPECT_EQ(Meter::lost(m.audio()), 2);
}

TEST(MediaMonitor, SsrcChangeCountsBothAndNeverGoesBack) {
  Meter m;
  Rtp a{.ssrc = 0xaaaa0001, .seq = 100};
  Rtp b{.ssrc = 0xbbbb0002, .seq = 40000, .ts = 123456};
  uint64_t last_expected = 0, last_received = 0;
  auto check = [&] {
    EXPECT_GE(m.audio().expected.get(), last_expected);
    EXPECT_GE(m.audio().received.get(), last_received);
    last_expected = m.audio().expected.get();
    last_received = m.audio().received.get();
  };
  for (int i = 0; i < 100; ++i) {
    send_audio(m, a, 1);
    check();
  }
  for (int i = 0; i < 100; ++i) {
    send_audio(m, b, 1);
    check();
  }
  EXPECT_EQ(m.audio().expected.get(), 99u + 99u);
  EXPECT_EQ(m.audio().received.get(), 99u + 99u);
}

TEST(MediaMonitor, FullSlotsRecycleTheLeastRecentlySeen) {
  Meter m;
  std::vector<Rtp> s;
  for (uint32_t i = 0; i < 5; ++i) s.push_back(Rtp{.ssrc = 0x1000 + i, .seq = uint16_t(i * 1000)});
  for (int round = 0; round < 20; ++round) {
    for (size_t i = 0; i < 4; ++i) send_audio(m, s[i], 1);
  }
  EXPECT_EQ(m.audio().expected.get(), 4u * 19u);
  const uint64_t before = m.audio().received.get();

  send_audio(m, s[4], 10);  // a fifth SSRC takes the slot of s[0], seen least recently
  EXPECT_EQ(m.audio().received.get(), before + 9);
  for (size_t i = 1; i < 4; ++i) send_audio(m, s[i], 1);  // still in their slots: counted
  EXPECT_EQ(m.audio().received.get(), before + 12);
  send_audio(m, s[0], 2);  // back in the slot of s[4]: a new source, in probation again
  EXPECT_EQ(m.audio().received.get(), before + 13);
  EXPECT_EQ(Meter::lost(m.audio()), 0);
  EXPECT_EQ(m.audio().packets.get(), 80u + 10u + 3u + 2u);

  // Many more sources than slots, one after the other: every run is counted, nothing goes back.
  Meter many;
  uint64_t last = 0;
  for (uint32_t i = 0; i < 9; ++i) {
    Rtp p{.ssrc = 0x9000 + i, .seq = uint16_t(i * 77)};
    for (int n = 0; n < 50; ++n) {
      send_audio(many, p, 1);
      EXPECT_GE(many.audio().expected.get(), last);
      last = many.audio().expected.get();
    }
  }
  EXPECT_EQ(many.audio().expected.get(), 9u * 49u);
  EXPECT_EQ(many.audio().received.get(), 9u * 49u);
}

TEST(MediaMonitor, LargeJumpRestartsTheRunWithoutLoss) {
  Meter m;
  Rtp p{.seq = 100};
  send_audio(m, p, 50);
  p.seq = static_cast<uint16_t>(p.seq + 20000);  // the sender restarted its numbering
  p.ts += 5'000'000;
  send_audio(m, p, 50);  // first packet of the jump waits for the second (A.1 bad_seq)
  EXPECT_EQ(m.audio().expected.get(), 49u + 49u);
  EXPECT_EQ(Meter::lost(m.audio()), 0);
  EXPECT_EQ(m.audio().jitter_us.get(), 0u);  // never measured across the restart

  // The same when the first packet of the jump carries nothing but padding.
  Rtp pad = p;
  pad.seq = static_cast<uint16_t>(p.seq + 10000);
  pad.payload = 0;
  pad.padding = 4;
  m.client(pad.bytes());
  p.seq = static_cast<uint16_t>(pad.seq + 1);
  p.ts += 777'777;
  m.now_us += 20'000;
  send_audio(m, p, 10);
  EXPECT_EQ(m.audio().expected.get(), 49u + 49u + 10u);
  EXPECT_EQ(Meter::lost(m.audio()), 0);
  EXPECT_EQ(m.audio().jitter_us.get(), 0u);
}

TEST(MediaMonitor, DtxSilenceIsNeitherLossNorJitter) {
  Meter m;
  Rtp p{.seq = 9};
  send_audio(m, p, 50);
  // One second of silence: the next packet has the next sequence number and a timestamp one
  // second later (RFC 7587 section 3.1.3), and arrives one second later.
  p.ts += 48'000;
  m.now_us += 1'000'000;
  send_audio(m, p, 50);
  EXPECT_EQ(Meter::lost(m.audio()), 0);
  EXPECT_EQ(m.audio().expected.get(), 99u);
  EXPECT_EQ(m.audio().jitter_us.get(), 0u);
}

TEST(MediaMonitor, RepairStreamsOfTheMapAreIgnored) {
  PayloadMap map{};
  map[96] = {PayloadType::Role::kVideo, 90000};
  map[97] = {PayloadType::Role::kRepair, 90000};  // rtx
  map[111] = {PayloadType::Role::kAudio, 48000};
  map[63] = {PayloadType::Role::kAudio, 48000};  // red: the Opus SSRC's own numbers
  Meter m;
  m.monitor.set_payload_map(&map);
  Rtp video{.ssrc = 0x7000, .seq = 1, .pt = 96, .payload = 1000};
  Rtp rtx{.ssrc = 0x7001, .seq = 30000, .pt = 97, .payload = 1000};
  Rtp audio{.ssrc = 0x5000, .seq = 1};
  for (int frame = 0; frame < 30; ++frame) {
    for (int i = 0; i < 3; ++i) {
      m.client(video.bytes());
      ++video.seq;
    }
    m.client(rtx.bytes());
    ++rtx.seq;
    audio.pt = frame % 2 ? 63 : 111;
    send_audio(m, audio, 1);
    video.ts += 3000;
    m.now_us += 13'333;
  }
  EXPECT_EQ(m.video().packets.get(), 90u);
  EXPECT_EQ(m.video().expected.get(), 89u);
  EXPECT_EQ(m.video().received.get(), 89u);
  EXPECT_EQ(m.audio().packets.get(), 30u);
  EXPECT_EQ(m.audio().expected.get(), 29u);
  EXPECT_EQ(m.out.non_media_packets.get(), 30u);  // the rtx packets
}

TEST(MediaMonitor, PaddingOnlyPacketsCountForSequenceButNotJitter) {
  Meter m;
  Rtp p{.ssrc = 0x4242, .seq = 60000, .pt = 96, .payload = 900};  // no map: 90 kHz video
  int padding = 0;
  for (int frame = 0; frame < 100; ++frame) {
    m.client(p.bytes());
    ++p.seq;
    if (frame % 4 == 3) {
      // Bandwidth probing between frames (RFC 3550 section 5.1 P bit), at odd moments.
      Rtp pad = p;
      pad.payload = 0;
      pad.padding = 200;
      m.now_us += 7'777;
      m.client(pad.bytes());
      m.now_us -= 7'777;
      ++p.seq;
      ++padding;
    }
    p.ts += 3000;
    m.now_us += 33'333;
  }
  EXPECT_EQ(padding, 25);
  EXPECT_EQ(m.video().expected.get(), 124u);
  EXPECT_EQ(m.video().received.get(), 124u);
  EXPECT_EQ(m.video().packets.get(), 125u);
  EXPECT_EQ(m.out.non_media_packets.get(), 25u);
  EXPECT_LE(m.video().jitter_us.get(), 1u);  // 33333 us per 3000 ticks: rounding only
  EXPECT_EQ(m.audio().packets.get(), 0u);
}

TEST(MediaMonitor, GarbageOnlyCountsAsNonMedia) {
  Meter m;
  Rtp p{.seq = 10};
  send_audio(m, p, 20);
  const Snapshot before = Snapshot::of(m.out);

  std::vector<Bytes> garbage;
  garbage.push_back({});
  garbage.push_back({0x80});
  garbage.push_back(Bytes(11, 0x80));  // shorter than the header
  garbage.push_back(Rtp{.payload = 10, .csrcs = 15}.bytes());
  garbage.back().resize(12 + 4 * 14);  // CSRC list cut short
  garbage.push_back(Rtp{.payload = 0, .extension_words = 3}.bytes());
  garbage.back().resize(garbage.back().size() - 1);  // extension cut short
  garbage.push_back(Rtp{.payload = 4, .padding = 1}.bytes());
  garbage.back().back() = 9;  // more padding than payload
  garbage.push_back(Rtp{.payload = 4, .padding = 1}.bytes());
  garbage.back().back() = 0;                                // padding count 0
  garbage.push_back({0x80, 0xc8, 0x00, 0x06, 1, 2, 3, 4});  // RTCP sender report
  garbage.push_back({0x16, 0xfe, 0xfd, 0x00, 0x00});        // DTLS record
  garbage.push_back({0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4});  // ChannelData-like
  garbage.push_back(stun(kBindingSuccess, tid(1)));         // an answer to nothing
  Bytes bad_length = stun(kBindingRequest, tid(2));
  put_u16(bad_length, 2, 6);  // not a multiple of 4
  garbage.push_back(bad_length);
  for (uint8_t seed = 0; seed < 32; ++seed) {
    Bytes noise(40 + seed);
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(seed * 31 + i * 17);
    noise[0] = static_cast<uint8_t>(0x80 | (seed & 0x40));  // RTP-looking first byte
    noise.resize(seed % 12);                                // but always truncated
    garbage.push_back(noise);
  }

  for (const Bytes& g : garbage) m.peer(g);
  EXPECT_EQ(Snapshot::of(m.out), before);  // nothing from the peer's side but Binding timing
  for (const Bytes& g : garbage) m.client(g);
  Snapshot expected = before;
  expected.v.back() += garbage.size();
  EXPECT_EQ(Snapshot::of(m.out), expected);

  send_audio(m, p, 1);  // the stream goes on as if nothing came in between
  EXPECT_EQ(m.audio().expected.get(), 20u);
  EXPECT_EQ(Meter::lost(m.audio()), 0);
}

}  // namespace
}  // namespace callrelay::media::testing
