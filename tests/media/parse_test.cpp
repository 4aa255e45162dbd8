// The pieces under MediaMonitor: RFC 7983 demultiplexing, the RTP header (RFC 3550 section
// 5.1), Binding recognition (RFC 8489 section 5) and sequence accounting (RFC 3550 A.1).
#include <gtest/gtest.h>

#include "media_test_support.hpp"
#include "relay/media/rtp.hpp"

namespace callrelay::media::testing {
namespace {

TEST(MediaDemux, FirstByteRanges) {
  EXPECT_EQ(demultiplex(Bytes{}), Demux::kOther);
  EXPECT_EQ(demultiplex(Bytes{0x00, 0x01}), Demux::kStun);
  EXPECT_EQ(demultiplex(Bytes{0x03}), Demux::kStun);
  EXPECT_EQ(demultiplex(Bytes{0x10}), Demux::kOther);  // ZRTP
  EXPECT_EQ(demultiplex(Bytes{0x14}), Demux::kDtls);
  EXPECT_EQ(demultiplex(Bytes{0x3f}), Demux::kDtls);
  EXPECT_EQ(demultiplex(Bytes{0x40}), Demux::kOther);  // TURN ChannelData
  EXPECT_EQ(demultiplex(Bytes{0x80, 0x6f}), Demux::kRtp);
  EXPECT_EQ(demultiplex(Bytes{0x80, 0xef}), Demux::kRtp);   // marker, PT 111
  EXPECT_EQ(demultiplex(Bytes{0x81, 0xc8}), Demux::kRtcp);  // SR
  EXPECT_EQ(demultiplex(Bytes{0x8f, 0xcd}), Demux::kRtcp);  // RTPFB
  EXPECT_EQ(demultiplex(Bytes{0xbf, 0xdf}), Demux::kRtcp);
  EXPECT_EQ(demultiplex(Bytes{0xc0, 0x00}), Demux::kOther);
}

TEST(MediaRtpHeader, FieldsCsrcsExtensionAndPadding) {
  Rtp p{.ssrc = 0xdeadbeef,
        .seq = 0xfffe,
        .ts = 0x01020304,
        .pt = 96,
        .marker = true,
        .payload = 33,
        .padding = 7,
        .csrcs = 2,
        .extension_words = 3};
  const auto h = parse_rtp(p.bytes());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->ssrc, 0xdeadbeefu);
  EXPECT_EQ(h->seq, 0xfffe);
  EXPECT_EQ(h->timestamp, 0x01020304u);
  EXPECT_EQ(h->payload_type, 96);
  EXPECT_TRUE(h->marker);
  EXPECT_EQ(h->payload_size, 33u);

  const auto padding_only = parse_rtp(Rtp{.payload = 0, .padding = 255}.bytes());
  ASSERT_TRUE(padding_only);
  EXPECT_EQ(padding_only->payload_size, 0u);
  const auto header_only = parse_rtp(Rtp{.payload = 0}.bytes());
  ASSERT_TRUE(header_only);
  EXPECT_EQ(header_only->payload_size, 0u);
}

TEST(MediaRtpHeader, DeclaredLengthsBeyondTheDatagramAreRefused) {
  Bytes b = Rtp{.payload = 0, .csrcs = 3}.bytes();
  EXPECT_TRUE(parse_rtp(b));
  b.pop_back();
  EXPECT_FALSE(parse_rtp(b));

  b = Rtp{.payload = 0, .extension_words = 2}.bytes();
  EXPECT_TRUE(parse_rtp(b));
  b.pop_back();
  EXPECT_FALSE(parse_rtp(b));
  b.resize(14);  // extension flag, but not even its 4-byte header
  EXPECT_FALSE(parse_rtp(b));

  b = Rtp{.payload = 2, .padding = 4}.bytes();
  EXPECT_TRUE(parse_rtp(b));
  b.back() = 7;  // more padding than what follows the header
  EXPECT_FALSE(parse_rtp(b));
  b.back() = 0;  // the count includes itself: 0 is impossible
  EXPECT_FALSE(parse_rtp(b));

  b = Rtp{}.bytes();
  b[0] = 0x40;  // version 1
  EXPECT_FALSE(parse_rtp(b));
  EXPECT_FALSE(parse_rtp(Bytes(11, 0x80)));
}

TEST(MediaBinding, RequestsAndAnswersOnly) {
  const auto req = parse_binding(stun(kBindingRequest, tid(4)));
  ASSERT_TRUE(req);
  EXPECT_EQ(req->cls, BindingMessage::Class::kRequest);
  EXPECT_EQ(req->transaction, tid(4));
  EXPECT_EQ(parse_binding(stun(kBindingSuccess, tid(4)))->cls, BindingMessage::Class::kResponse);
  EXPECT_EQ(parse_binding(stun(kBindingError, tid(4)))->cls, BindingMessage::Class::kResponse);
  EXPECT_FALSE(parse_binding(stun(0x0011, tid(4))));  // Binding indication: nothing to time
  EXPECT_FALSE(parse_binding(stun(0x0003, tid(4))));  // Allocate

  Bytes b = stun(kBindingRequest, tid(4), 0);
  EXPECT_TRUE(parse_binding(b));
  b[4] ^= 1;  // cookie
  EXPECT_FALSE(parse_binding(b));
  b = stun(kBindingRequest, tid(4), 4);
  put_u16(b, 2, 8);  // longer than the datagram
  EXPECT_FALSE(parse_binding(b));
  put_u16(b, 2, 2);  // not a multiple of 4
  EXPECT_FALSE(parse_binding(b));
  b = stun(kBindingRequest, tid(4));
  b[0] |= 0x40;
  EXPECT_FALSE(parse_binding(b));
  EXPECT_FALSE(parse_binding(Bytes(19, 0)));
}

TEST(MediaSequence, ProbationWrapAndCycles) {
  SequenceState s;
  s.start(65534);
  EXPECT_EQ(s.update(65534), SeqOutcome::kNotValid);
  EXPECT_TRUE(s.in_probation());
  EXPECT_EQ(s.update(65535), SeqOutcome::kStarted);
  EXPECT_EQ(s.update(0), SeqOutcome::kCounted);
  EXPECT_EQ(s.cycles(), 65536u);
  EXPECT_EQ(s.extended_max(), 65536u);
  EXPECT_EQ(s.update(2), SeqOutcome::kCounted);
  EXPECT_EQ(s.expected(), 4u);  // 65535, 0, 1, 2
  EXPECT_EQ(s.received(), 3u);
  EXPECT_EQ(s.update(1), SeqOutcome::kCounted);
  EXPECT_EQ(s.update(1), SeqOutcome::kDuplicate);
  EXPECT_EQ(s.update(2), SeqOutcome::kDuplicate);
  EXPECT_EQ(s.update(65534), SeqOutcome::kBeforeRun);  // the probation packet, late
  EXPECT_EQ(s.received(), 4u);
}

TEST(MediaSequence, ProbationRestartsOnAGap) {
  SequenceState s;
  s.start(10);
  EXPECT_EQ(s.update(10), SeqOutcome::kNotValid);
  EXPECT_EQ(s.update(12), SeqOutcome::kNotValid);  // not in sequence: probation again
  EXPECT_EQ(s.expected(), 0u);
  EXPECT_EQ(s.update(13), SeqOutcome::kStarted);
  EXPECT_EQ(s.expected(), 1u);
}

TEST(MediaSequence, DropoutMisorderAndRestart) {
  SequenceState s;
  s.start(1000);
  s.update(1000);
  s.update(1001);
  EXPECT_EQ(s.update(1001 + 2999), SeqOutcome::kCounted);  // gap below MAX_DROPOUT
  EXPECT_EQ(s.expected(), 3000u);
  EXPECT_EQ(s.update(4000 - 99), SeqOutcome::kCounted);    // within MAX_MISORDER: late
  EXPECT_EQ(s.update(4000 - 100), SeqOutcome::kNotValid);  // too old: a jump backwards
  EXPECT_EQ(s.update(9000), SeqOutcome::kNotValid);        // a jump ...
  EXPECT_EQ(s.update(9002), SeqOutcome::kNotValid);        // ... not followed
  EXPECT_EQ(s.update(9003), SeqOutcome::kStarted);         // ... followed: a new run
  EXPECT_EQ(s.expected(), 1u);
  EXPECT_EQ(s.received(), 1u);
  EXPECT_EQ(s.update(9003 - 1), SeqOutcome::kBeforeRun);
}

TEST(MediaSequence, WindowSlidesAcrossWords) {
  SequenceState s;
  s.start(0);
  s.update(0);
  s.update(1);
  for (uint16_t seq = 2; seq < 200; seq += 2) s.update(seq);  // every odd one missing
  EXPECT_EQ(s.received(), 100u);
  for (uint16_t seq = 199; seq > 100; seq -= 2) EXPECT_EQ(s.update(seq), SeqOutcome::kCounted);
  for (uint16_t seq = 198; seq > 100; --seq) EXPECT_EQ(s.update(seq), SeqOutcome::kDuplicate);
  s.update(300);  // a slide of 101 bits
  EXPECT_EQ(s.update(201), SeqOutcome::kCounted);
  EXPECT_EQ(s.update(300 - 1), SeqOutcome::kCounted);
  EXPECT_EQ(s.update(300 - 1), SeqOutcome::kDuplicate);
  EXPECT_EQ(s.update(300), SeqOutcome::kDuplicate);
}

}  // namespace
}  // namespace callrelay::media::testing
