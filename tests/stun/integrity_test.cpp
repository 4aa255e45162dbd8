// The primitives under MESSAGE-INTEGRITY, FINGERPRINT and TURN REST credentials, against
// published vectors (RFC 2202 for HMAC-SHA1, RFC 4648 for base64, the CRC-32 check value).
#include "relay/stun/integrity.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.hpp"

namespace callrelay::stun {
namespace {

using test::bytes_of;
using test::hex;

template <size_t N>
std::vector<uint8_t> vec(const std::array<uint8_t, N>& a) {
  return {a.begin(), a.end()};
}

TEST(Crc32, PublishedCheckValue) {
  EXPECT_EQ(crc32(bytes_of("123456789")), 0xCBF43926u);
  EXPECT_EQ(crc32({}), 0u);
}

TEST(HmacSha1, Rfc2202Vectors) {
  const std::vector<uint8_t> key1(20, 0x0b);
  EXPECT_EQ(vec(hmac_sha1(key1, bytes_of("Hi There"))),
            hex("b617318655057264e28bc0b6fb378c8ef146be00"));
  EXPECT_EQ(vec(hmac_sha1(bytes_of("Jefe"), bytes_of("what do ya want for nothing?"))),
            hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"));
  const std::vector<uint8_t> key6(80, 0xaa);
  EXPECT_EQ(
      vec(hmac_sha1(key6, bytes_of("Test Using Larger Than Block-Size Key - Hash Key First"))),
      hex("aa4ae5e15272d00e95705637ce8a3b55ed402112"));
}

TEST(HmacSha1, EmptyKeyAndData) {
  EXPECT_EQ(vec(hmac_sha1({}, {})), hex("fbdb1d1b18aa6c08324b7d64b71fb76370690e1d"));
}

TEST(HmacSha1, RekeyingBetweenCallsUsesTheNewKey) {
  const auto a = hmac_sha1(bytes_of("key-a"), bytes_of("data"));
  const auto b = hmac_sha1(bytes_of("key-b"), bytes_of("data"));
  EXPECT_NE(a, b);
  EXPECT_EQ(hmac_sha1(bytes_of("key-a"), bytes_of("data")), a);
}

// Contexts stay keyed per thread: more keys than they keep, in turn and out of order, keys
// that differ only in length or in their last byte, and the empty key, each give its own HMAC
// every time (RFC 2202 vectors among them), for SHA-1 and SHA-256 alike.
TEST(HmacSha1, KeptKeyedContextsNeverMixKeys) {
  const std::vector<uint8_t> key1(20, 0x0b);
  const std::string want1 = "b617318655057264e28bc0b6fb378c8ef146be00";
  const auto jefe = bytes_of("Jefe");
  std::vector<std::vector<uint8_t>> keys = {key1, {}, {jefe.begin(), jefe.end()}};
  // Not all zero: HMAC pads a key with zeros, so zero bytes would give the empty key's HMAC.
  for (uint8_t i = 1; i <= 7; ++i) keys.push_back(std::vector<uint8_t>(16, i));
  keys.push_back(std::vector<uint8_t>(17, 7));  // key 9 with one more byte
  keys.push_back(std::vector<uint8_t>(64, 0xaa));
  keys.push_back(std::vector<uint8_t>(65, 0xaa));  // longer than a kept context holds
  auto last = std::vector<uint8_t>(16, 7);
  last.back() = 8;
  keys.push_back(last);
  const auto data = bytes_of("Hi There");
  std::vector<std::array<uint8_t, 20>> first;
  std::vector<std::array<uint8_t, 32>> first256;
  for (const auto& k : keys) {
    first.push_back(hmac_sha1(k, data));
    first256.push_back(hmac_sha256(k, data));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = i + 1; j < keys.size(); ++j) EXPECT_NE(first[i], first[j]) << i << " " << j;
  }
  EXPECT_EQ(vec(first[0]), hex(want1));
  // RFC 4231 test case 1.
  EXPECT_EQ(vec(first256[0]),
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
  for (int round = 0; round < 3; ++round) {
    for (size_t n = 0; n < keys.size() * 3; ++n) {
      const size_t i = (n * 7 + static_cast<size_t>(round)) % keys.size();
      EXPECT_EQ(hmac_sha1(keys[i], data), first[i]) << "key " << i;
      EXPECT_EQ(hmac_sha256(keys[i], data), first256[i]) << "key " << i;
      EXPECT_EQ(hmac_sha1(keys[i], data), first[i]) << "key " << i << " again";
    }
  }
  EXPECT_EQ(vec(hmac_sha1(key1, data)), hex(want1));
  EXPECT_EQ(vec(hmac_sha1({}, {})), hex("fbdb1d1b18aa6c08324b7d64b71fb76370690e1d"));
}

TEST(LongTermKey, IsMd5OfUserRealmPassword) {
  // MD5("user:realm:pass"), computed independently with Python's hashlib.
  EXPECT_EQ(vec(long_term_key("user", "realm", "pass")), hex("8493fbc53ba582fb4c044c456bdc40eb"));
  // Every part counts: a different realm or password gives a different key.
  EXPECT_NE(long_term_key("user", "realm2", "pass"), long_term_key("user", "realm", "pass"));
  EXPECT_NE(long_term_key("user", "realm", "pass2"), long_term_key("user", "realm", "pass"));
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64(bytes_of("")), "");
  EXPECT_EQ(base64(bytes_of("f")), "Zg==");
  EXPECT_EQ(base64(bytes_of("fo")), "Zm8=");
  EXPECT_EQ(base64(bytes_of("foo")), "Zm9v");
  EXPECT_EQ(base64(bytes_of("foob")), "Zm9vYg==");
  EXPECT_EQ(base64(bytes_of("fooba")), "Zm9vYmE=");
  EXPECT_EQ(base64(bytes_of("foobar")), "Zm9vYmFy");
}

TEST(Base64, TurnRestPassword) {
  // base64(HMAC-SHA1(secret, username)): 20 bytes give 28 characters, one '=' of padding.
  const auto mac = hmac_sha1(bytes_of("secret"), bytes_of("1700000000:alice"));
  const auto password = base64(mac);
  EXPECT_EQ(password.size(), 28u);
  EXPECT_EQ(password.back(), '=');
  EXPECT_EQ(password.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace callrelay::stun
