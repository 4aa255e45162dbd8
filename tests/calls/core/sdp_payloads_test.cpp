// RTP payload types from browser SDPs (Chromium and Firefox offers), static types without
// rtpmap, repair streams, and SDPs that are broken on purpose.
#include "calls/core/sdp_payloads.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "sdp_samples.hpp"

namespace callrelay::calls {
namespace {

using test::crlf;

std::map<int, RtpPayloadType> by_pt(const std::vector<RtpPayloadType>& list) {
  std::map<int, RtpPayloadType> out;
  for (const RtpPayloadType& t : list) out.emplace(t.pt, t);
  EXPECT_EQ(out.size(), list.size()) << "a payload type appears twice";
  return out;
}

void expect(const std::map<int, RtpPayloadType>& m, int pt, bool video, uint32_t clock,
            bool repair) {
  const auto it = m.find(pt);
  ASSERT_NE(it, m.end()) << "payload type " << pt;
  EXPECT_EQ(it->second.video, video) << pt;
  EXPECT_EQ(it->second.clock_rate, clock) << pt;
  EXPECT_EQ(it->second.repair, repair) << pt;
}

void expect_chromium(const std::vector<RtpPayloadType>& list) {
  const auto m = by_pt(list);
  EXPECT_EQ(m.size(), 8u + 16u);
  expect(m, 111, false, 48000, false);  // opus
  expect(m, 63, false, 48000, false);   // red shares the opus SSRC
  expect(m, 9, false, 8000, false);     // G722's RTP clock is 8000 (RFC 3551 section 4.5.2)
  expect(m, 0, false, 8000, false);
  expect(m, 8, false, 8000, false);
  expect(m, 13, false, 8000, false);
  expect(m, 110, false, 48000, false);
  expect(m, 126, false, 8000, false);
  expect(m, 96, true, 90000, false);  // VP8
  expect(m, 97, true, 90000, true);   // its rtx
  expect(m, 102, true, 90000, false);
  expect(m, 103, true, 90000, true);
  expect(m, 127, true, 90000, false);  // VP9
  expect(m, 39, true, 90000, false);   // AV1
  expect(m, 40, true, 90000, true);
  expect(m, 45, true, 90000, false);  // red on video
  expect(m, 46, true, 90000, true);
}

TEST(SdpPayloadTypes, ChromiumOffer) { expect_chromium(sdp_payload_types(test::kChromiumOffer)); }

TEST(SdpPayloadTypes, LineFeedsAloneAreReadToo) {
  std::string lf = test::kChromiumOffer;
  for (size_t p = lf.find("\r\n"); p != std::string::npos; p = lf.find("\r\n", p)) lf.erase(p, 1);
  ASSERT_EQ(lf.find('\r'), std::string::npos);
  expect_chromium(sdp_payload_types(lf));
}

TEST(SdpPayloadTypes, FirefoxOffer) {
  const auto m = by_pt(sdp_payload_types(test::kFirefoxOffer));
  EXPECT_EQ(m.size(), 5u + 11u);
  expect(m, 109, false, 48000, false);
  expect(m, 9, false, 8000, false);  // "G722/8000/1"
  expect(m, 101, false, 8000, false);
  expect(m, 120, true, 90000, false);
  expect(m, 124, true, 90000, true);
  expect(m, 121, true, 90000, false);
  expect(m, 97, true, 90000, false);
  expect(m, 98, true, 90000, true);
  expect(m, 123, true, 90000, false);  // ulpfec travels on the media SSRC
  expect(m, 122, true, 90000, false);
  expect(m, 119, true, 90000, true);
}

TEST(SdpPayloadTypes, StaticTypesWithoutRtpmapComeFromRfc3551) {
  const auto m = by_pt(sdp_payload_types(crlf({
      "v=0",
      "o=- 1 1 IN IP4 192.0.2.1",
      "s=-",
      "t=0 0",
      "m=audio 49170 RTP/AVP 0 8 9 18 96 26",
      "a=rtpmap:96 opus/48000/2",
      "m=video 51372 RTP/AVP 31 34 0",
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
  })));
  expect(m, 0, false, 8000, false);
  expect(m, 8, false, 8000, false);
  expect(m, 9, false, 8000, false);
  expect(m, 18, false, 8000, false);
  expect(m, 96, false, 48000, false);
  expect(m, 31, true, 90000, false);
  expect(m, 34, true, 90000, false);
  // 26 (JPEG) is a video type listed under audio: not taken; 0 was already audio.
  EXPECT_EQ(m.count(26), 0u);
  EXPECT_EQ(m.size(), 7u);
}

TEST(SdpPayloadTypes, AnRtpmapOverridesTheStaticDefault) {
  const auto m = by_pt(sdp_payload_types(crlf({
      "v=0",
      "o=- 1 1 IN IP4 192.0.2.1",
      "s=-",
      "t=0 0",
      "m=audio 9 RTP/AVP 10",
      "a=rtpmap:10 L16/48000/2",
  })));
  expect(m, 10, false, 48000, false);
}

TEST(SdpPayloadTypes, FlexfecAndRtxAreRepairWhateverTheirCase) {
  const auto m = by_pt(sdp_payload_types(crlf({
      "v=0",
      "o=- 1 1 IN IP4 192.0.2.1",
      "s=-",
      "t=0 0",
      "m=video 9 UDP/TLS/RTP/SAVPF 96 35 36 37 38",
      "a=rtpmap:96 VP8/90000",
      "a=rtpmap:35 flexfec-03/90000",
      "a=rtpmap:36 FlexFEC/90000",
      "a=rtpmap:37 RTX/90000",
      "a=rtpmap:38 ULPFEC/90000",
  })));
  expect(m, 35, true, 90000, true);
  expect(m, 36, true, 90000, true);
  expect(m, 37, true, 90000, true);
  expect(m, 38, true, 90000, false);
}

TEST(SdpPayloadTypes, TheFirstMentionOfAPayloadTypeWins) {
  const auto m = by_pt(sdp_payload_types(crlf({
      "v=0",
      "o=- 1 1 IN IP4 192.0.2.1",
      "s=-",
      "t=0 0",
      "m=audio 9 RTP/AVP 100",
      "a=rtpmap:100 opus/48000/2",
      "a=rtpmap:100 PCMU/8000",
      "m=video 9 RTP/AVP 100",
      "a=rtpmap:100 VP8/90000",
  })));
  expect(m, 100, false, 48000, false);
  EXPECT_EQ(m.size(), 1u);
}

TEST(SdpPayloadTypes, MalformedLinesAreSkipped) {
  const auto m = by_pt(sdp_payload_types(crlf({
      "v=0",
      "o=- 1 1 IN IP4 192.0.2.1",
      "s=-",
      "t=0 0",
      "a=rtpmap:99 opus/48000",  // session level: not in any media section
      "m=audio 9 RTP/AVP 1 2 3 4 5 6 7 100",
      "a=rtpmap:128 opus/48000",        // beyond 7 bits
      "a=rtpmap:1000 opus/48000",       // far beyond
      "a=rtpmap:-1 opus/48000",         // not a number
      "a=rtpmap:101 opus",              // no clock rate
      "a=rtpmap:102 /48000",            // no encoding name
      "a=rtpmap:103 opus/0",            // no clock
      "a=rtpmap:104 opus/48k",          // not a number
      "a=rtpmap:105 opus/99999999999",  // beyond 32 bits
      "a=rtpmap:106 opus/48000/x",      // channels not a number
      "a=rtpmap:107 op us/48000",       // a space in the name
      "a=rtpmap:108",                   // nothing
      "a=rtpmap: 109 opus/48000",       // a space before the type
      "a=rtpmap:100 opus/48000/2",      // the one good line
      "m=text 9 RTP/AVP 110",
      "a=rtpmap:110 t140/1000",  // neither audio nor video
  })));
  // 100 and the static types 3..7 (RFC 3551 leaves 1 and 2 unassigned).
  EXPECT_EQ(m.size(), 6u);
  expect(m, 100, false, 48000, false);
  for (int pt : {3, 4, 5, 7}) expect(m, pt, false, 8000, false);
  expect(m, 6, false, 16000, false);  // DVI4 at 16 kHz
}

TEST(SdpPayloadTypes, EmptyAndGarbageGiveNothing) {
  EXPECT_TRUE(sdp_payload_types("").empty());
  EXPECT_TRUE(sdp_payload_types("\n\r\n\r").empty());
  EXPECT_TRUE(sdp_payload_types("m=").empty());
  EXPECT_TRUE(sdp_payload_types("m=audio").empty());
  EXPECT_TRUE(sdp_payload_types("m=audio 9 RTP/AVP").empty());
  EXPECT_TRUE(sdp_payload_types("a=rtpmap:0 PCMU/8000").empty());
  // A NUL inside a format spoils that format only.
  const auto nul = sdp_payload_types(std::string("m=audio 9 RTP/AVP 0\0 8", 22));
  ASSERT_EQ(nul.size(), 1u);
  EXPECT_EQ(nul[0].pt, 8);
}

TEST(SdpPayloadTypes, AtMostOneEntryPerPayloadType) {
  std::string sdp = "v=0\r\nm=video 9 RTP/AVP";
  for (int pt = 0; pt < 200; ++pt) sdp += " " + std::to_string(pt);
  sdp += "\r\n";
  for (int round = 0; round < 3; ++round) {
    for (int pt = 0; pt < 200; ++pt) sdp += "a=rtpmap:" + std::to_string(pt) + " VP8/90000\r\n";
  }
  const auto list = sdp_payload_types(sdp);
  EXPECT_EQ(list.size(), 128u);
  EXPECT_EQ(by_pt(list).size(), 128u);
  EXPECT_EQ(by_pt(list).rbegin()->first, 127);
}

}  // namespace
}  // namespace callrelay::calls
