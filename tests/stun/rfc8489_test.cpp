// RFC 8489 Appendix B.1 (with erratum 6268, which adds the PASSWORD-ALGORITHM the example's
// SHA-256 key needs and corrects the length and HMAC): USERHASH, the SHA-256 long-term key and
// MESSAGE-INTEGRITY-SHA256, checked and rebuilt byte for byte; truncated MESSAGE-INTEGRITY-SHA256
// (section 14.6) and the PASSWORD-ALGORITHM(S) encodings (sections 14.11, 14.12).
#include <gtest/gtest.h>

#include <vector>

#include "relay/stun/builder.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"
#include "relay/stun/wire.hpp"
#include "test_util.hpp"

namespace callrelay::stun {
namespace {

using test::hex;
using test::str;

// Username "<U+30DE><U+30C8><U+30EA><U+30C3><U+30AF><U+30B9>" (UTF-8 below), password
// "TheMatrIX" after OpaqueString, realm "example.org".
constexpr std::string_view kUser = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
constexpr std::string_view kPassword = "TheMatrIX";
constexpr std::string_view kRealm = "example.org";
constexpr std::string_view kNonce = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";

const std::vector<uint8_t> kB1 = hex(
    "00010090 2112a442 78ad3433 c6ad72c0 29da412e"
    "001e0020 4a3cf38f ef6992bd a952c678 0417da0f 24819415 569e60b2 05c46e41 407f1704"
    "00150029 6f624d61 744a6f73 32414141 43662f2f 3439396b 39353464 364f4c33 346f4c39"
    "         46535476 79363473 41000000"
    "0014000b 6578616d 706c652e 6f726700"
    "001d0004 00020000"
    "001c0020 b5c7bf00 5b6c52a2 1c51c5e8 92f81924 136296cb 927c4314 9309278c c6518e65");

TEST(Rfc8489, B1UserhashIsSha256OfUsernameAndRealm) {
  const auto m = MessageView::parse(kB1);
  ASSERT_TRUE(m);
  const auto uh = m->find(attr::kUserhash);
  ASSERT_TRUE(uh);
  const auto want = userhash(kUser, kRealm);
  EXPECT_EQ(str(m->value(*uh)), str(want));
}

TEST(Rfc8489, B1ChecksUnderTheSha256Key) {
  const auto m = MessageView::parse(kB1);
  ASSERT_TRUE(m);
  const auto pa = read_password_algorithm(*m);
  EXPECT_TRUE(pa.present && pa.valid);
  EXPECT_EQ(pa.algorithm, static_cast<uint16_t>(PasswordAlgorithm::kSha256));
  const auto key = long_term_key_sha256(kUser, kRealm, kPassword);
  EXPECT_EQ(check_integrity_sha256(*m, key), Integrity::kOk);
  EXPECT_EQ(check_integrity(*m, key), Integrity::kNotSet);
  // The MD5 key, or the password before OpaqueString, does not verify.
  EXPECT_EQ(check_integrity_sha256(*m, long_term_key(kUser, kRealm, kPassword)), Integrity::kBad);
  EXPECT_EQ(check_integrity_sha256(*m, long_term_key_sha256(kUser, kRealm, "TheMatrix")),
            Integrity::kBad);
}

TEST(Rfc8489, BuilderReproducesB1) {
  std::vector<uint8_t> buf(512);
  const TransactionId tid = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};
  MessageBuilder b(buf, Method::kBinding, Class::kRequest, tid);
  b.add_bytes(attr::kUserhash, userhash(kUser, kRealm));
  b.add_string(attr::kNonce, kNonce);
  b.add_string(attr::kRealm, kRealm);
  b.add_password_algorithm(PasswordAlgorithm::kSha256);
  b.add_integrity_sha256(long_term_key_sha256(kUser, kRealm, kPassword));
  ASSERT_TRUE(b.ok());
  buf.resize(b.finish());
  EXPECT_EQ(str(buf), str(kB1));
}

TEST(Rfc8489, AChangedByteBreaksIntegritySha256) {
  auto bytes = kB1;
  bytes[100] ^= 0x01;  // inside REALM
  const auto m = MessageView::parse(bytes);
  ASSERT_TRUE(m);
  EXPECT_EQ(check_integrity_sha256(*m, long_term_key_sha256(kUser, kRealm, kPassword)),
            Integrity::kBad);
}

/// A Binding request with MESSAGE-INTEGRITY-SHA256 truncated to `n` bytes (section 14.6: the
/// header length counts the truncated attribute; the value is the HMAC's leading bytes).
std::vector<uint8_t> truncated(size_t n, std::span<const uint8_t> key) {
  std::vector<uint8_t> buf(256);
  const TransactionId tid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  MessageBuilder b(buf, Method::kBinding, Class::kRequest, tid);
  b.add_string(attr::kUsername, "user");
  buf.resize(b.finish());
  const size_t covered = buf.size();
  wire::write_u16(buf.data() + 2, static_cast<uint16_t>(covered - kHeaderSize + 4 + wire::padded(n)));
  const auto mac = hmac_sha256(key, buf);
  buf.resize(covered + 4 + wire::padded(n), 0);
  wire::write_u16(buf.data() + covered, attr::kMessageIntegritySha256);
  wire::write_u16(buf.data() + covered + 2, static_cast<uint16_t>(n));
  std::copy_n(mac.begin(), std::min<size_t>(n, mac.size()), buf.begin() + static_cast<long>(covered) + 4);
  return buf;
}

TEST(Rfc8489, TruncatedIntegritySha256From16To32BytesInStepsOf4) {
  const auto key = long_term_key_sha256("user", "realm", "pass");
  for (size_t n : {16u, 20u, 24u, 28u, 32u}) {
    const auto bytes = truncated(n, key);
    const auto m = MessageView::parse(bytes);
    ASSERT_TRUE(m) << n;
    EXPECT_EQ(check_integrity_sha256(*m, key), Integrity::kOk) << n;
    auto broken = bytes;
    broken.back() ^= 0x80;
    EXPECT_EQ(check_integrity_sha256(*MessageView::parse(broken), key), Integrity::kBad) << n;
  }
  // Shorter than 16, not a multiple of 4: refused whatever the bytes.
  for (size_t n : {0u, 4u, 12u, 18u}) {
    const auto bytes = truncated(n, key);
    const auto m = MessageView::parse(bytes);
    ASSERT_TRUE(m) << n;
    EXPECT_EQ(check_integrity_sha256(*m, key), Integrity::kBad) << n;
  }
}

TEST(Rfc8489, IntegritySha256AfterMessageIntegrityCoversIt) {
  std::vector<uint8_t> buf(256);
  const TransactionId tid = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  const auto key = long_term_key("u", "r", "p");
  MessageBuilder b(buf, Method::kBinding, Class::kRequest, tid);
  b.add_string(attr::kUsername, "u");
  b.add_integrity(key);
  b.add_integrity_sha256(key);
  b.add_fingerprint();
  buf.resize(b.finish());
  const auto m = MessageView::parse(buf);
  ASSERT_TRUE(m);
  EXPECT_EQ(check_integrity(*m, key), Integrity::kOk);
  EXPECT_EQ(check_integrity_sha256(*m, key), Integrity::kOk);
}

TEST(Rfc8489, PasswordAlgorithmsEncoding) {
  std::vector<uint8_t> buf(128);
  MessageBuilder b(buf, Method::kAllocate, Class::kError, TransactionId{});
  const PasswordAlgorithm both[] = {PasswordAlgorithm::kSha256, PasswordAlgorithm::kMd5};
  b.add_password_algorithms(both);
  b.add_password_algorithm(PasswordAlgorithm::kMd5);
  ASSERT_TRUE(b.ok());
  buf.resize(b.finish());
  EXPECT_EQ(str(std::span<const uint8_t>(buf).subspan(kHeaderSize)),
            str(hex("8002 0008 0002 0000 0001 0000  001d 0004 0001 0000")));
}

TEST(Rfc8489, MalformedPasswordAlgorithmIsNotValid) {
  for (const auto& value : {hex("0002 0004 00000000"), hex("0003 0000"), hex("0002"), hex("")}) {
    std::vector<uint8_t> buf(128);
    MessageBuilder b(buf, Method::kAllocate, Class::kRequest, TransactionId{});
    b.add_bytes(attr::kPasswordAlgorithm, value);
    buf.resize(b.finish());
    const auto pa = read_password_algorithm(*MessageView::parse(buf));
    EXPECT_TRUE(pa.present);
    EXPECT_FALSE(pa.valid) << value.size();
  }
}

}  // namespace
}  // namespace callrelay::stun
