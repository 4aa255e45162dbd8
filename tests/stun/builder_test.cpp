// MessageBuilder -> MessageView round trips for every attribute TURN uses, bounds checks,
// and the zero-copy Data indication header.
#include "relay/stun/builder.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"
#include "test_util.hpp"

namespace callrelay::stun {
namespace {

using test::bytes_of;
using test::str;

const TransactionId kTid = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8};

Endpoint ep(std::string_view text) { return *Endpoint::parse(text); }

/// Builds with `fill`, then parses; fails the test when either step does.
template <typename Fill>
std::vector<uint8_t> build(Fill fill, Method m = Method::kAllocate, Class c = Class::kSuccess) {
  std::vector<uint8_t> buf(2048);
  MessageBuilder mb(buf, m, c, kTid);
  fill(mb);
  EXPECT_TRUE(mb.ok());
  buf.resize(mb.finish());
  return buf;
}

TEST(BuilderRoundTrip, Addresses) {
  const Endpoint addrs[] = {ep("192.0.2.1:32853"),
                            ep("0.0.0.0:0"),
                            ep("255.255.255.255:65535"),
                            ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
                            ep("[::1]:3478"),
                            ep("[::ffff:1.2.3.4]:1")};
  for (const auto& a : addrs) {
    const auto b = build([&](MessageBuilder& mb) {
      mb.add_xor_address(attr::kXorMappedAddress, a);
      mb.add_xor_address(attr::kXorPeerAddress, a);
      mb.add_xor_address(attr::kXorRelayedAddress, a);
      mb.add_plain_address(attr::kMappedAddress, a);
      mb.add_plain_address(attr::kAlternateServer, a);
    });
    const auto m = MessageView::parse(b);
    ASSERT_TRUE(m) << a.to_string();
    EXPECT_EQ(m->xor_address(attr::kXorMappedAddress), a);
    EXPECT_EQ(m->xor_address(attr::kXorPeerAddress), a);
    EXPECT_EQ(m->xor_address(attr::kXorRelayedAddress), a);
    EXPECT_EQ(m->plain_address(attr::kMappedAddress), a);
    EXPECT_EQ(m->plain_address(attr::kAlternateServer), a);
    // The XOR form differs on the wire from the plain one (that is its point).
    const auto x = m->find(attr::kXorMappedAddress);
    const auto p = m->find(attr::kMappedAddress);
    EXPECT_NE(str(m->value(*x)), str(m->value(*p)));
  }
}

// RFC 8489 section 14.15: ALTERNATE-SERVER is encoded like MAPPED-ADDRESS, port and address
// in the clear (a 300 answer to an Allocate names the server to try, RFC 8656 section 7.2).
TEST(BuilderRoundTrip, AlternateServerIsNotXored) {
  const auto b = build([&](MessageBuilder& mb) {
    mb.add_alternate_server(ep("192.0.2.7:3478"));
    mb.add_alternate_server(ep("[2001:db8::9]:5349"));
  }, Method::kAllocate, Class::kError);
  const auto m = MessageView::parse(b);
  ASSERT_TRUE(m);
  const auto attrs = m->attributes();
  ASSERT_EQ(attrs.size(), 2u);
  EXPECT_EQ(attrs[0].type, attr::kAlternateServer);
  EXPECT_EQ(str(m->value(attrs[0])), str(test::hex("0001 0d96 c0000207")));
  EXPECT_EQ(attrs[1].type, attr::kAlternateServer);
  EXPECT_EQ(str(m->value(attrs[1])),
            str(test::hex("0002 14e5 20010db8 00000000 00000000 00000009")));
  EXPECT_EQ(m->plain_address(attr::kAlternateServer), ep("192.0.2.7:3478"));
}

TEST(BuilderRoundTrip, NumbersAndFlags) {
  const auto b = build([](MessageBuilder& mb) {
    mb.add_u32(attr::kLifetime, 3600);
    mb.add_requested_transport(17);
    mb.add_u32(attr::kRequestedAddressFamily, 0x02000000);
    mb.add_u32(attr::kAdditionalAddressFamily, 0x02000000);
    const uint8_t even[] = {0x80};
    mb.add_bytes(attr::kEvenPort, even);
    mb.add_u64(attr::kReservationToken, 0x0123456789abcdefULL);
    mb.add_bytes(attr::kDontFragment, {});
    mb.add_channel_number(0x4abc);
    mb.add_u32(attr::kConnectionId, 0xfeedface);
  });
  const auto m = MessageView::parse(b);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->u32(attr::kLifetime), 3600u);
  EXPECT_EQ(m->requested_transport(), 17);
  EXPECT_EQ(m->family_attr(attr::kRequestedAddressFamily), 0x02);
  EXPECT_EQ(m->family_attr(attr::kAdditionalAddressFamily), 0x02);
  EXPECT_EQ(m->even_port_reserve(), true);
  EXPECT_EQ(m->reservation_token(), 0x0123456789abcdefULL);
  const auto df = m->find(attr::kDontFragment);
  ASSERT_TRUE(df);
  EXPECT_EQ(df->length, 0);
  EXPECT_EQ(m->channel_number(), 0x4abc);
  EXPECT_EQ(m->u32(attr::kConnectionId), 0xfeedfaceu);
  // RFFU bytes after the protocol and the channel number are zero.
  EXPECT_EQ(str(m->value(*m->find(attr::kRequestedTransport))), std::string("\x11\0\0\0", 4));
  EXPECT_EQ(str(m->value(*m->find(attr::kChannelNumber))), std::string("\x4a\xbc\0\0", 4));
}

TEST(BuilderRoundTrip, EvenPortWithoutReserve) {
  const auto b = build([](MessageBuilder& mb) {
    const uint8_t even[] = {0x00};
    mb.add_bytes(attr::kEvenPort, even);
  });
  EXPECT_EQ(MessageView::parse(b)->even_port_reserve(), false);
}

TEST(BuilderRoundTrip, StringsOfEveryPadding) {
  for (size_t n = 0; n <= 9; ++n) {
    const std::string text(n, static_cast<char>('a' + n));
    const auto b = build([&](MessageBuilder& mb) {
      mb.add_string(attr::kUsername, text);
      mb.add_string(attr::kRealm, text + "r");
      mb.add_string(attr::kNonce, text + "nn");
      mb.add_string(attr::kSoftware, text + "sss");
    });
    ASSERT_EQ(b.size() % 4, 0u);
    const auto m = MessageView::parse(b);
    ASSERT_TRUE(m) << n;
    EXPECT_EQ(m->string(attr::kUsername), text);
    EXPECT_EQ(m->string(attr::kRealm), text + "r");
    EXPECT_EQ(m->string(attr::kNonce), text + "nn");
    EXPECT_EQ(m->string(attr::kSoftware), text + "sss");
  }
}

TEST(BuilderRoundTrip, DataOfEverySize) {
  for (size_t n = 0; n <= 1200; n += (n < 16 ? 1 : 97)) {
    std::vector<uint8_t> payload(n);
    for (size_t i = 0; i < n; ++i) payload[i] = static_cast<uint8_t>(i * 7 + 1);
    const auto b = build(
        [&](MessageBuilder& mb) {
          mb.add_xor_address(attr::kXorPeerAddress, ep("203.0.113.9:5000"));
          mb.add_bytes(attr::kData, payload);
        },
        Method::kSend, Class::kIndication);
    const auto m = MessageView::parse(b);
    ASSERT_TRUE(m) << n;
    ASSERT_TRUE(m->data());
    EXPECT_EQ(str(*m->data()), str(payload)) << n;
  }
}

TEST(BuilderRoundTrip, ErrorCodes) {
  const std::pair<uint16_t, std::string_view> cases[] = {{300, "Try Alternate"},
                                                         {400, "Bad Request"},
                                                         {401, "Unauthorized"},
                                                         {403, "Forbidden"},
                                                         {420, "Unknown Attribute"},
                                                         {437, "Allocation Mismatch"},
                                                         {438, "Stale Nonce"},
                                                         {442, "Unsupported Transport Protocol"},
                                                         {486, "Allocation Quota Reached"},
                                                         {508, "Insufficient Capacity"},
                                                         {699, ""}};
  for (const auto& c : cases) {
    const uint16_t code = c.first;  // named copies: clang 14 cannot capture structured bindings
    const std::string_view reason = c.second;
    const auto b = build([&](MessageBuilder& mb) { mb.add_error(code, reason); }, Method::kAllocate,
                         Class::kError);
    const auto m = MessageView::parse(b);
    ASSERT_TRUE(m);
    const auto e = m->error_code();
    ASSERT_TRUE(e) << code;
    EXPECT_EQ(e->code, code);
    EXPECT_EQ(e->reason, reason);
    // RFC 8489 section 14.8: class in the low 3 bits of byte 2, number in byte 3.
    const auto v = m->value(*m->find(attr::kErrorCode));
    EXPECT_EQ(v[0], 0);
    EXPECT_EQ(v[1], 0);
    EXPECT_EQ(v[2], code / 100);
    EXPECT_EQ(v[3], code % 100);
  }
}

TEST(BuilderRoundTrip, InvalidErrorCodesAreRefused) {
  for (const uint16_t code : std::initializer_list<uint16_t>{0, 99, 299, 700, 999}) {
    std::vector<uint8_t> buf(128);
    MessageBuilder mb(buf, Method::kAllocate, Class::kError, kTid);
    mb.add_error(code, "x");
    EXPECT_FALSE(mb.ok()) << code;
    EXPECT_EQ(mb.finish(), 0u);
  }
}

TEST(BuilderRoundTrip, UnknownAttributes) {
  for (size_t n = 1; n <= 5; ++n) {
    std::vector<uint16_t> types;
    for (size_t i = 0; i < n; ++i) types.push_back(static_cast<uint16_t>(0x7F00 + i));
    const auto b = build(
        [&](MessageBuilder& mb) {
          mb.add_error(420, "Unknown Attribute");
          mb.add_unknown_attributes(types);
        },
        Method::kAllocate, Class::kError);
    const auto m = MessageView::parse(b);
    ASSERT_TRUE(m);
    const auto v = m->value(*m->find(attr::kUnknownAttributes));
    ASSERT_EQ(v.size(), 2 * n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ((v[2 * i] << 8) | v[2 * i + 1], types[i]);
  }
}

TEST(BuilderRoundTrip, IntegrityAndFingerprint) {
  const auto key = long_term_key("1700000000:alice", "callrelay", "c2VjcmV0");
  const auto b = build(
      [&](MessageBuilder& mb) {
        mb.add_string(attr::kUsername, "1700000000:alice");
        mb.add_string(attr::kRealm, "callrelay");
        mb.add_string(attr::kNonce, "abcdef");
        mb.add_requested_transport(17);
        mb.add_integrity(key);
        mb.add_fingerprint();
      },
      Method::kAllocate, Class::kRequest);
  const auto m = MessageView::parse(b);
  ASSERT_TRUE(m);
  EXPECT_EQ(check_integrity(*m, key), Integrity::kOk);
  auto other = key;
  other[0] ^= 1;
  EXPECT_EQ(check_integrity(*m, other), Integrity::kBad);

  // Without FINGERPRINT the integrity still checks; without MESSAGE-INTEGRITY it is not set.
  const auto no_fp = build([&](MessageBuilder& mb) { mb.add_integrity(key); });
  EXPECT_EQ(check_integrity(*MessageView::parse(no_fp), key), Integrity::kOk);
  const auto none = build([&](MessageBuilder& mb) { mb.add_fingerprint(); });
  EXPECT_EQ(check_integrity(*MessageView::parse(none), key), Integrity::kNotSet);
  // A MESSAGE-INTEGRITY of the wrong size is bad, not absent.
  const auto short_mi = build([&](MessageBuilder& mb) {
    const std::vector<uint8_t> v(19, 0);
    mb.add_bytes(attr::kMessageIntegrity, v);
  });
  EXPECT_EQ(check_integrity(*MessageView::parse(short_mi), key), Integrity::kBad);
}

/// A builder that runs out of room at any point reports it once, and never writes past `out`
/// (the vector is exactly sized, so AddressSanitizer would see it).
TEST(BuilderBounds, EveryBufferSize) {
  const auto fill = [](MessageBuilder& mb) {
    mb.add_string(attr::kSoftware, "callrelay");
    mb.add_xor_address(attr::kXorRelayedAddress, ep("[2001:db8::1]:50000"));
    mb.add_u32(attr::kLifetime, 600);
    mb.add_error(401, "Unauthorized");
    mb.add_integrity(bytes_of("key"));
    mb.add_fingerprint();
  };
  std::vector<uint8_t> full(1024);
  MessageBuilder ref(full, Method::kAllocate, Class::kSuccess, kTid);
  fill(ref);
  const size_t need = ref.finish();
  ASSERT_GT(need, 0u);
  full.resize(need);
  for (size_t n = 0; n < need; ++n) {
    std::vector<uint8_t> buf(n);
    MessageBuilder mb(buf, Method::kAllocate, Class::kSuccess, kTid);
    fill(mb);
    EXPECT_FALSE(mb.ok()) << n;
    EXPECT_EQ(mb.finish(), 0u) << n;
  }
  std::vector<uint8_t> exact(need);
  MessageBuilder mb(exact, Method::kAllocate, Class::kSuccess, kTid);
  fill(mb);
  EXPECT_EQ(mb.finish(), need);
  EXPECT_EQ(exact, full);
}

TEST(BuilderBounds, BodyLimitIs64KiB) {
  std::vector<uint8_t> buf(70000);
  MessageBuilder mb(buf, Method::kSend, Class::kIndication, kTid);
  const std::vector<uint8_t> big(0xFFFC - 4, 1);
  mb.add_bytes(attr::kData, big);
  EXPECT_EQ(mb.finish(), kHeaderSize + 0xFFFC);
  mb.add_bytes(attr::kDontFragment, {});  // would make the body 0x10000
  EXPECT_FALSE(mb.ok());
  MessageBuilder too_big(buf, Method::kSend, Class::kIndication, kTid);
  const std::vector<uint8_t> huge(0x10000, 1);
  too_big.add_bytes(attr::kData, huge);
  EXPECT_FALSE(too_big.ok());
}

/// The relay writes the header in front of a payload that stays where it was received.
TEST(DataIndication, HeaderInFrontOfPayloadParsesBack) {
  for (const auto& peer : {ep("198.51.100.7:40000"), ep("[2001:db8::42]:61000")}) {
    for (size_t n : {0, 1, 2, 3, 4, 5, 160, 1199, 1200}) {
      const size_t head = data_indication_header_size(peer);
      EXPECT_EQ(head, peer.is_v4() ? 36u : 48u);
      const size_t pad = (4 - n % 4) % 4;
      std::vector<uint8_t> packet(head + n + pad, 0xEE);
      for (size_t i = 0; i < n; ++i) packet[head + i] = static_cast<uint8_t>(i ^ 0x5A);
      std::memset(packet.data() + head + n, 0, pad);
      ASSERT_EQ(write_data_indication_header(std::span(packet).first(head), kTid, peer, n), head);
      ParseError err{};
      const auto m = MessageView::parse(packet, &err);
      ASSERT_TRUE(m) << peer.to_string() << " " << n << ": " << to_string(err);
      EXPECT_EQ(m->method(), Method::kData);
      EXPECT_EQ(m->cls(), Class::kIndication);
      EXPECT_EQ(m->transaction_id(), kTid);
      EXPECT_EQ(m->xor_address(attr::kXorPeerAddress), peer);
      ASSERT_TRUE(m->data());
      EXPECT_EQ(str(*m->data()), str(std::span(packet).subspan(head, n)));
    }
  }
}

TEST(DataIndication, RefusesWhatDoesNotFit) {
  const auto peer = ep("198.51.100.7:40000");
  std::vector<uint8_t> header(64);
  EXPECT_EQ(write_data_indication_header(std::span(header).first(35), kTid, peer, 10), 0u);
  EXPECT_EQ(write_data_indication_header(header, kTid, peer, 0xFFFF), 0u);
  EXPECT_EQ(write_data_indication_header(header, kTid, peer, 0xFFFF - 16), 0u)
      << "padding overflows";
  EXPECT_EQ(write_data_indication_header(header, kTid, peer, 0xFFFC - 16), 36u);
}

}  // namespace
}  // namespace callrelay::stun
