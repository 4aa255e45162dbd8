// MessageView::parse against malformed input: every error kind, overrunning lengths at every
// value, attribute order rules, garbage and 64 KiB buffers. Buffers are exactly sized vectors
// so that AddressSanitizer catches any read past the end.
#include "relay/stun/message.hpp"

#include <gtest/gtest.h>

#include <random>
#include <tuple>
#include <vector>

#include "relay/stun/builder.hpp"

namespace callrelay::stun {
namespace {

const TransactionId kTid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/// A message holding the given attributes in order, with no rule checking by the builder.
std::vector<uint8_t> message_with(std::initializer_list<std::pair<uint16_t, size_t>> attrs) {
  std::vector<uint8_t> buf(70000);
  MessageBuilder mb(buf, Method::kAllocate, Class::kRequest, kTid);
  for (const auto& [type, len] : attrs) {
    const std::vector<uint8_t> value(len, 0xAB);
    mb.add_bytes(type, value);
  }
  buf.resize(mb.finish());
  return buf;
}

ParseError error_of(std::span<const uint8_t> b) {
  ParseError err{};
  const std::vector<uint8_t> exact(b.begin(), b.end());
  EXPECT_FALSE(MessageView::parse(exact, &err));
  return err;
}

TEST(MessageParse, MinimalMessage) {
  const auto b = message_with({});
  ASSERT_EQ(b.size(), kHeaderSize);
  const auto m = MessageView::parse(b);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), Method::kAllocate);
  EXPECT_EQ(m->cls(), Class::kRequest);
  EXPECT_EQ(m->transaction_id(), kTid);
  EXPECT_TRUE(m->attributes().empty());
  EXPECT_FALSE(m->find(attr::kUsername));
}

TEST(MessageParse, HeaderErrors) {
  auto b = message_with({{attr::kSoftware, 5}});
  {
    auto bad = b;
    bad[4] ^= 0x01;
    EXPECT_EQ(error_of(bad), ParseError::kNotStun) << "cookie";
  }
  for (const uint8_t top : std::initializer_list<uint8_t>{0x40, 0x80, 0xC0}) {
    auto bad = b;
    bad[0] |= top;
    EXPECT_EQ(error_of(bad), ParseError::kNotStun) << int{top};
  }
  {
    auto bad = b;
    bad.push_back(0);  // buffer longer than the header says
    EXPECT_EQ(error_of(bad), ParseError::kBadLength);
    bad.insert(bad.end(), 3, 0);
    EXPECT_EQ(error_of(bad), ParseError::kBadLength);
  }
  for (uint16_t delta = 1; delta < 4; ++delta) {
    auto bad = b;
    bad[3] = static_cast<uint8_t>(bad[3] + delta);  // not a multiple of 4
    bad.resize(bad.size() + delta);
    EXPECT_EQ(error_of(bad), ParseError::kBadLength) << delta;
  }
  EXPECT_EQ(error_of(std::span(b).first(19)), ParseError::kTooShort);
  EXPECT_EQ(error_of({}), ParseError::kTooShort);
}

/// Every possible length of every attribute: one that runs past the message is reported as
/// an overrun, never read; one that fits parses or fails cleanly.
TEST(MessageParse, OverrunningAttributeLengthsAtEveryValue) {
  const auto base = message_with({{attr::kUsername, 9}, {attr::kData, 12}, {attr::kSoftware, 3}});
  const size_t starts[] = {20, 20 + 16, 20 + 16 + 16};
  for (const size_t at : starts) {
    const size_t room = base.size() - at - 4;
    for (uint32_t len = 0; len <= 0xFFFF; ++len) {
      auto b = base;
      b[at + 2] = static_cast<uint8_t>(len >> 8);
      b[at + 3] = static_cast<uint8_t>(len);
      ParseError err{};
      const auto m = MessageView::parse(b, &err);
      if (((len + 3) & ~3u) > room) {
        ASSERT_FALSE(m) << at << " " << len;
        ASSERT_EQ(err, ParseError::kAttributeOverrun) << at << " " << len;
      } else if (m) {
        for (const auto& a : m->attributes()) ASSERT_LE(a.offset + a.length, b.size());
      }
    }
  }
}

TEST(MessageParse, AttributeCountLimit) {
  std::vector<uint8_t> buf(4096);
  MessageBuilder mb(buf, Method::kBinding, Class::kRequest, kTid);
  for (size_t i = 0; i < kMaxAttributes; ++i) mb.add_u32(attr::kPriority, static_cast<uint32_t>(i));
  auto at_limit =
      std::vector<uint8_t>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(mb.finish()));
  const auto m = MessageView::parse(at_limit);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->attributes().size(), kMaxAttributes);
  EXPECT_EQ(m->u32(attr::kPriority), 0u) << "find returns the first";

  mb.add_u32(attr::kPriority, 99);
  const std::vector<uint8_t> over(buf.begin(),
                                  buf.begin() + static_cast<std::ptrdiff_t>(mb.finish()));
  EXPECT_EQ(error_of(over), ParseError::kTooManyAttributes);
}

TEST(MessageParse, OnlyTrailersMayFollowIntegrity) {
  using namespace attr;
  EXPECT_EQ(error_of(message_with({{kMessageIntegrity, 20}, {kUsername, 4}})),
            ParseError::kAfterIntegrity);
  EXPECT_EQ(error_of(message_with({{kMessageIntegrity, 20}, {kMessageIntegrity, 20}})),
            ParseError::kAfterIntegrity);
  EXPECT_EQ(error_of(message_with({{kMessageIntegritySha256, 32}, {kSoftware, 4}})),
            ParseError::kAfterIntegrity);
  EXPECT_EQ(error_of(message_with({{kMessageIntegritySha256, 32}, {kMessageIntegrity, 20}})),
            ParseError::kAfterIntegrity);
  EXPECT_EQ(
      error_of(message_with({{kMessageIntegrity, 20}, {kMessageIntegritySha256, 32}, {kRealm, 4}})),
      ParseError::kAfterIntegrity);
  const auto ok =
      message_with({{kUsername, 4}, {kMessageIntegrity, 20}, {kMessageIntegritySha256, 32}});
  EXPECT_TRUE(MessageView::parse(ok));
}

TEST(MessageParse, NothingMayFollowFingerprint) {
  std::vector<uint8_t> buf(256);
  MessageBuilder mb(buf, Method::kBinding, Class::kRequest, kTid);
  mb.add_fingerprint();
  mb.add_string(attr::kSoftware, "x");
  buf.resize(mb.finish());
  EXPECT_EQ(error_of(buf), ParseError::kAfterFingerprint);

  std::vector<uint8_t> two(256);
  MessageBuilder mb2(two, Method::kBinding, Class::kRequest, kTid);
  mb2.add_fingerprint();
  mb2.add_fingerprint();
  two.resize(mb2.finish());
  EXPECT_EQ(error_of(two), ParseError::kAfterFingerprint);
}

TEST(MessageParse, FingerprintMustBeFourBytesAndRight) {
  EXPECT_EQ(error_of(message_with({{attr::kFingerprint, 8}})), ParseError::kBadFingerprint);
  EXPECT_EQ(error_of(message_with({{attr::kFingerprint, 0}})), ParseError::kBadFingerprint);
  EXPECT_EQ(error_of(message_with({{attr::kFingerprint, 4}})), ParseError::kBadFingerprint);

  std::vector<uint8_t> buf(256);
  MessageBuilder mb(buf, Method::kBinding, Class::kIndication, kTid);
  mb.add_string(attr::kSoftware, "callrelay");
  mb.add_fingerprint();
  buf.resize(mb.finish());
  ASSERT_TRUE(MessageView::parse(buf));
  for (size_t i = 0; i < buf.size(); ++i) {
    if (i == 0 || (i >= 2 && i < 8)) continue;  // type bits, length, cookie: checked first
    auto bad = buf;
    bad[i] ^= 0x10;
    const auto m = MessageView::parse(bad);
    if (i == 36 || i == 37) {
      // The FINGERPRINT's own type bytes: what is left is a valid message with an unknown
      // attribute and no FINGERPRINT to check.
      ASSERT_TRUE(m) << i;
      EXPECT_FALSE(m->find(attr::kFingerprint)) << i;
    } else {
      EXPECT_FALSE(m) << i;
    }
  }
}

/// Random bytes, and random bodies behind a valid header: never a crash or a read out of bounds.
TEST(MessageParse, GarbageNeverCrashes) {
  std::mt19937 rng(5769);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 20000; ++round) {
    const size_t len = static_cast<size_t>(rng() % 200);
    std::vector<uint8_t> b(len);
    for (auto& x : b) x = static_cast<uint8_t>(byte(rng));
    if (round % 2 == 1 && len >= kHeaderSize) {
      // A valid header so the attribute walk runs over random attributes.
      const size_t body = (len - kHeaderSize) & ~size_t{3};
      b.resize(kHeaderSize + body);
      b[0] &= 0x3F;
      b[2] = static_cast<uint8_t>(body >> 8);
      b[3] = static_cast<uint8_t>(body);
      b[4] = 0x21, b[5] = 0x12, b[6] = 0xA4, b[7] = 0x42;
    }
    const std::vector<uint8_t> exact(b);
    if (const auto m = MessageView::parse(exact)) {
      for (const auto& a : m->attributes()) ASSERT_LE(a.offset + a.length, exact.size());
      (void)m->xor_address(attr::kXorPeerAddress);
      (void)m->error_code();
      (void)m->string(attr::kUsername);
    }
  }
}

TEST(MessageParse, SixtyFourKilobyteBuffers) {
  // The largest message: a 65532-byte body, one DATA attribute filling it.
  const auto big = message_with({{attr::kData, 0xFFFC - 4}});
  ASSERT_EQ(big.size(), kHeaderSize + 0xFFFC);
  const auto m = MessageView::parse(big);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->data());
  EXPECT_EQ(m->data()->size(), 0xFFFCu - 4);

  // 64 KiB of zeros: a header with zero length, then far too many bytes.
  const std::vector<uint8_t> zeros(65536);
  EXPECT_EQ(error_of(zeros), ParseError::kNotStun);
  std::vector<uint8_t> lying(65536);
  lying[2] = 0xFF, lying[3] = 0xFC;
  lying[4] = 0x21, lying[5] = 0x12, lying[6] = 0xA4, lying[7] = 0x42;
  EXPECT_EQ(error_of(lying), ParseError::kTooShort);
  std::vector<uint8_t> odd(kHeaderSize + 0xFFFF);
  odd[2] = 0xFF, odd[3] = 0xFF;
  odd[4] = 0x21, odd[5] = 0x12, odd[6] = 0xA4, odd[7] = 0x42;
  EXPECT_EQ(error_of(odd), ParseError::kBadLength);

  // An attribute whose value would start past offset 0xFFFF cannot be described: refused.
  const auto late = message_with({{attr::kData, 0xFFF0}, {attr::kSoftware, 4}});
  EXPECT_EQ(error_of(late), ParseError::kBadLength);
}

TEST(MessageAccessors, MalformedValuesAreNullopt) {
  using namespace attr;
  const auto b = message_with({{kLifetime, 3},
                               {kXorPeerAddress, 12},
                               {kMappedAddress, 7},
                               {kRequestedTransport, 2},
                               {kChannelNumber, 5},
                               {kReservationToken, 4},
                               {kEvenPort, 0},
                               {kErrorCode, 3},
                               {kUsername, 513},
                               {kRealm, 764},
                               {kRequestedAddressFamily, 4}});
  const auto m = MessageView::parse(b);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->u32(kLifetime));
  EXPECT_FALSE(m->xor_address(kXorPeerAddress));
  EXPECT_FALSE(m->plain_address(kMappedAddress));
  EXPECT_FALSE(m->requested_transport());
  EXPECT_FALSE(m->channel_number());
  EXPECT_FALSE(m->reservation_token());
  EXPECT_FALSE(m->even_port_reserve());
  EXPECT_FALSE(m->error_code());
  EXPECT_FALSE(m->string(kUsername));
  EXPECT_FALSE(m->string(kRealm));
  bool bad = false;
  EXPECT_FALSE(m->family_attr(kRequestedAddressFamily, &bad));  // value byte 0xAB
  EXPECT_TRUE(bad);
  EXPECT_FALSE(m->family_attr(kAdditionalAddressFamily, &bad));
  EXPECT_FALSE(bad) << "absent is not malformed";
  // Absent attributes are nullopt too.
  EXPECT_FALSE(m->data());
  EXPECT_FALSE(m->string(kNonce));
  EXPECT_FALSE(m->integrity());
}

TEST(MessageAccessors, AddressFamilyMustMatchLength) {
  std::vector<uint8_t> buf(256);
  MessageBuilder mb(buf, Method::kBinding, Class::kSuccess, kTid);
  mb.add_xor_address(attr::kXorMappedAddress, *Endpoint::parse("10.0.0.1:80"));
  buf.resize(mb.finish());
  buf[20 + 5] = 0x02;  // claims IPv6 in an 8-byte value
  ASSERT_TRUE(MessageView::parse(buf));
  EXPECT_FALSE(MessageView::parse(buf)->xor_address(attr::kXorMappedAddress));
  buf[20 + 5] = 0x03;  // no such family
  EXPECT_FALSE(MessageView::parse(buf)->xor_address(attr::kXorMappedAddress));
}

TEST(MessageAccessors, ErrorCodeClassAndNumberRanges) {
  const auto with_code = [](uint8_t cls, uint8_t number) {
    std::vector<uint8_t> value = {0, 0, cls, number};
    std::vector<uint8_t> buf(64);
    MessageBuilder mb(buf, Method::kAllocate, Class::kError, kTid);
    mb.add_bytes(attr::kErrorCode, value);
    buf.resize(mb.finish());
    return buf;
  };
  for (const auto& [cls, number, ok] :
       std::initializer_list<std::tuple<uint8_t, uint8_t, bool>>{{3, 0, true},
                                                                 {6, 99, true},
                                                                 {4, 1, true},
                                                                 {2, 0, false},
                                                                 {7, 0, false},
                                                                 {4, 100, false}}) {
    const auto b = with_code(cls, number);
    const auto m = MessageView::parse(b);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->error_code().has_value(), ok) << int{cls} << " " << int{number};
  }
}

TEST(MessageParse, ErrorStrings) {
  for (int e = 0; e <= static_cast<int>(ParseError::kBadChannelNumber); ++e) {
    EXPECT_STRNE(to_string(static_cast<ParseError>(e)), "unknown parse error");
  }
}

TEST(MessageType, EveryMethodAndClassRoundTrips) {
  const Method methods[] = {Method::kBinding,
                            Method::kAllocate,
                            Method::kRefresh,
                            Method::kSend,
                            Method::kData,
                            Method::kCreatePermission,
                            Method::kChannelBind,
                            Method::kConnect,
                            Method::kConnectionBind,
                            Method::kConnectionAttempt,
                            static_cast<Method>(0xFFF)};
  const Class classes[] = {Class::kRequest, Class::kIndication, Class::kSuccess, Class::kError};
  for (const auto method : methods) {
    for (const auto cls : classes) {
      std::vector<uint8_t> buf(kHeaderSize);
      MessageBuilder mb(buf, method, cls, kTid);
      ASSERT_EQ(mb.finish(), kHeaderSize);
      const auto m = MessageView::parse(buf);
      ASSERT_TRUE(m);
      EXPECT_EQ(m->method(), method);
      EXPECT_EQ(m->cls(), cls);
    }
  }
  // Values from RFC 8489 and RFC 8656.
  EXPECT_EQ(message_type(Method::kBinding, Class::kSuccess), 0x0101);
  EXPECT_EQ(message_type(Method::kAllocate, Class::kError), 0x0113);
  EXPECT_EQ(message_type(Method::kSend, Class::kIndication), 0x0016);
  EXPECT_EQ(message_type(Method::kData, Class::kIndication), 0x0017);
  EXPECT_EQ(message_type(Method::kChannelBind, Class::kSuccess), 0x0109);
}

TEST(MessageDemux, FirstByteClassifies) {
  const uint8_t stun[] = {0x00};
  const uint8_t cd[] = {0x40};
  const uint8_t other[] = {0x80};
  EXPECT_TRUE(looks_like_stun(stun));
  EXPECT_TRUE(looks_like_channel_data(cd));
  EXPECT_FALSE(looks_like_stun(other));
  EXPECT_FALSE(looks_like_channel_data(other));
  EXPECT_FALSE(looks_like_stun({}));
}

}  // namespace
}  // namespace callrelay::stun
