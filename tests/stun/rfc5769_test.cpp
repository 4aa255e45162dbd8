// RFC 5769 ("Test Vectors for STUN") byte for byte: parsing, integrity, fingerprint, and the
// builder reproducing each vector exactly.
#include <gtest/gtest.h>

#include <vector>

#include "relay/stun/builder.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"
#include "test_util.hpp"

namespace callrelay::stun {
namespace {

using test::bytes_of;
using test::hex;

// RFC 5769 section 2.1, Sample Request.
constexpr std::string_view kSampleRequest =
    "00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"
    "00 24 00 04 6e 00 01 ff"
    "80 29 00 08 93 2f f9 b1 51 26 3b 36"
    "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"
    "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"
    "80 28 00 04 e5 7a 3b cf";

// RFC 5769 section 2.2, Sample IPv4 Response.
constexpr std::string_view kIPv4Response =
    "01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
    "00 20 00 08 00 01 a1 47 e1 12 a6 43"
    "00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7"
    "80 28 00 04 c0 7d 4c 96";

// RFC 5769 section 2.3, Sample IPv6 Response.
constexpr std::string_view kIPv6Response =
    "01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
    "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"
    "00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41"
    "80 28 00 04 c8 fb 0b 4c";

// RFC 5769 section 2.4, Sample Request with Long-Term Authentication.
constexpr std::string_view kLongTermRequest =
    "00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
    "00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00"
    "00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34"
    "6f 4c 39 46 53 54 76 79 36 34 73 41"
    "00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00"
    "00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";

constexpr std::string_view kShortTermPassword = "VOkJxbRl1RmTxUk/WvJxBt";
// "マトリックス" in UTF-8.
constexpr std::string_view kLongTermUser =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
// The password "The<U+00AD>M<U+00AA>tr<U+2168>" after SASLprep, as RFC 5769 section 2.4 gives it.
constexpr std::string_view kLongTermPassword = "TheMatrIX";
constexpr std::string_view kRealm = "example.org";
constexpr std::string_view kNonce = "f//499k954d6OL34oL9FSTvy64sA";

const TransactionId kResponseTid = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                    0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

TEST(Rfc5769, SampleRequestParsesAndChecks) {
  const auto b = hex(kSampleRequest);
  ASSERT_EQ(b.size(), 108u);
  ParseError err{};
  const auto m = MessageView::parse(b, &err);
  ASSERT_TRUE(m) << to_string(err);
  EXPECT_EQ(m->method(), Method::kBinding);
  EXPECT_EQ(m->cls(), Class::kRequest);
  EXPECT_EQ(m->transaction_id(), kResponseTid);
  EXPECT_EQ(m->string(attr::kSoftware), "STUN test client");
  EXPECT_EQ(m->string(attr::kUsername), "evtj:h6vY");
  EXPECT_EQ(m->u32(attr::kPriority), 0x6e0001ffu);
  const auto controlled = m->find(attr::kIceControlled);
  ASSERT_TRUE(controlled);
  EXPECT_EQ(m->value(*controlled).size(), 8u);
  EXPECT_EQ(m->attributes().size(), 6u);
  EXPECT_EQ(check_integrity(*m, bytes_of(kShortTermPassword)), Integrity::kOk);
  EXPECT_EQ(check_integrity(*m, bytes_of("VOkJxbRl1RmTxUk/WvJxBT")), Integrity::kBad);
}

TEST(Rfc5769, ResponsesDecodeTheMappedAddress) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {kIPv4Response, "192.0.2.1:32853"},
      {kIPv6Response, "[2001:db8:1234:5678:11:2233:4455:6677]:32853"},
  };
  for (const auto& [vector, mapped] : cases) {
    const auto b = hex(vector);
    ParseError err{};
    const auto m = MessageView::parse(b, &err);
    ASSERT_TRUE(m) << mapped << ": " << to_string(err);
    EXPECT_EQ(m->method(), Method::kBinding);
    EXPECT_EQ(m->cls(), Class::kSuccess);
    EXPECT_EQ(m->string(attr::kSoftware), "test vector");
    const auto addr = m->xor_address(attr::kXorMappedAddress);
    ASSERT_TRUE(addr) << mapped;
    EXPECT_EQ(addr->to_string(), mapped);
    EXPECT_EQ(check_integrity(*m, bytes_of(kShortTermPassword)), Integrity::kOk) << mapped;
    EXPECT_EQ(check_integrity(*m, bytes_of("wrong")), Integrity::kBad) << mapped;
  }
}

TEST(Rfc5769, LongTermRequestChecksUnderTheMd5Key) {
  const auto b = hex(kLongTermRequest);
  const auto m = MessageView::parse(b);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->string(attr::kUsername), kLongTermUser);
  EXPECT_EQ(m->string(attr::kRealm), kRealm);
  EXPECT_EQ(m->string(attr::kNonce), kNonce);
  EXPECT_FALSE(m->find(attr::kFingerprint));
  const auto key = long_term_key(kLongTermUser, kRealm, kLongTermPassword);
  EXPECT_EQ(check_integrity(*m, key), Integrity::kOk);
  const auto wrong = long_term_key(kLongTermUser, kRealm, "TheMatrix");
  EXPECT_EQ(check_integrity(*m, wrong), Integrity::kBad);
}

TEST(Rfc5769, AChangedByteBreaksTheFingerprint) {
  for (const auto vector : {kSampleRequest, kIPv4Response, kIPv6Response}) {
    auto b = hex(vector);
    b[30] ^= 0x01;  // inside the SOFTWARE value
    ParseError err{};
    EXPECT_FALSE(MessageView::parse(b, &err));
    EXPECT_EQ(err, ParseError::kBadFingerprint);
  }
}

TEST(Rfc5769, AChangedByteBreaksTheIntegrity) {
  auto b = hex(kLongTermRequest);  // no FINGERPRINT, so the parse still succeeds
  b[b.size() - 30] ^= 0x40;        // inside the REALM value
  const auto m = MessageView::parse(b);
  ASSERT_TRUE(m);
  EXPECT_EQ(check_integrity(*m, long_term_key(kLongTermUser, kRealm, kLongTermPassword)),
            Integrity::kBad);
}

/// The RFC pads with spaces where our builder writes zeros (padding is the sender's choice),
/// so each rebuild patches the RFC's padding in before integrity and fingerprint cover it.
TEST(Rfc5769, BuilderReproducesTheSampleRequest) {
  const auto want = hex(kSampleRequest);
  std::vector<uint8_t> buf(want.size());
  MessageBuilder mb(buf, Method::kBinding, Class::kRequest, kResponseTid);
  mb.add_string(attr::kSoftware, "STUN test client");
  mb.add_u32(attr::kPriority, 0x6e0001ff);
  mb.add_u64(attr::kIceControlled, 0x932ff9b151263b36ULL);
  mb.add_string(attr::kUsername, "evtj:h6vY");
  buf[20 + 20 + 8 + 12 + 4 + 9] = buf[20 + 20 + 8 + 12 + 4 + 10] = buf[20 + 20 + 8 + 12 + 4 + 11] =
      0x20;
  mb.add_integrity(bytes_of(kShortTermPassword));
  mb.add_fingerprint();
  ASSERT_EQ(mb.finish(), want.size());
  EXPECT_EQ(buf, want);
}

TEST(Rfc5769, BuilderReproducesTheResponses) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {kIPv4Response, "192.0.2.1:32853"},
      {kIPv6Response, "[2001:db8:1234:5678:11:2233:4455:6677]:32853"},
  };
  for (const auto& [vector, mapped] : cases) {
    const auto want = hex(vector);
    std::vector<uint8_t> buf(want.size());
    MessageBuilder mb(buf, Method::kBinding, Class::kSuccess, kResponseTid);
    mb.add_string(attr::kSoftware, "test vector");
    buf[20 + 4 + 11] = 0x20;
    mb.add_xor_address(attr::kXorMappedAddress, *Endpoint::parse(mapped));
    mb.add_integrity(bytes_of(kShortTermPassword));
    mb.add_fingerprint();
    ASSERT_EQ(mb.finish(), want.size()) << mapped;
    EXPECT_EQ(buf, want) << mapped;
  }
}

TEST(Rfc5769, BuilderReproducesTheLongTermRequest) {
  const auto want = hex(kLongTermRequest);
  const TransactionId tid = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad,
                             0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};
  std::vector<uint8_t> buf(want.size());
  MessageBuilder mb(buf, Method::kBinding, Class::kRequest, tid);
  mb.add_string(attr::kUsername, kLongTermUser);
  mb.add_string(attr::kNonce, kNonce);
  mb.add_string(attr::kRealm, kRealm);
  mb.add_integrity(long_term_key(kLongTermUser, kRealm, kLongTermPassword));
  ASSERT_EQ(mb.finish(), want.size());
  EXPECT_EQ(buf, want);
}

/// Truncating a vector anywhere leaves a header whose length runs past the buffer.
TEST(Rfc5769, EveryTruncationIsTooShort) {
  for (const auto vector : {kSampleRequest, kIPv4Response, kIPv6Response, kLongTermRequest}) {
    const auto full = hex(vector);
    for (size_t n = 0; n < full.size(); ++n) {
      const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      ParseError err{};
      EXPECT_FALSE(MessageView::parse(cut, &err)) << n;
      EXPECT_EQ(err, ParseError::kTooShort) << n;
    }
  }
}

}  // namespace
}  // namespace callrelay::stun
