// RFC 8489 authentication in the core: MESSAGE-INTEGRITY-SHA256, PASSWORD-ALGORITHM(S) with the
// nonce cookie's bid-down protection (section 9.2.4), USERHASH (section 14.4), responses signed
// the way the request was, and RFC 5389 clients unchanged.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

namespace at = stun::attr;
using stun::PasswordAlgorithm;

/// How an RFC 8489 request is signed: which key, which integrity attribute, which
/// algorithm attributes, and whether the user is named by USERHASH.
struct Signing {
  PasswordAlgorithm key_algorithm = PasswordAlgorithm::kSha256;
  bool sha256_integrity = true;
  bool send_algorithm = true;   ///< PASSWORD-ALGORITHM
  bool send_list = true;        ///< PASSWORD-ALGORITHMS
  std::vector<PasswordAlgorithm> list = {PasswordAlgorithm::kSha256, PasswordAlgorithm::kMd5};
  bool userhash = false;
};

std::vector<uint8_t> key_of(const Client& c, PasswordAlgorithm a) {
  if (a == PasswordAlgorithm::kSha256) {
    const auto k = stun::long_term_key_sha256(c.username, c.realm, c.password);
    return {k.begin(), k.end()};
  }
  const auto k = stun::long_term_key(c.username, c.realm, c.password);
  return {k.begin(), k.end()};
}

/// Sends `m` from `c` signed per `s`; returns the response.
Response send_signed(Harness& h, Client& c, stun::Method m, const Signing& s, const AttrFn& attrs = {}) {
  std::vector<uint8_t> buf(2048);
  const auto tid = c.next_tid();
  stun::MessageBuilder b(buf, m, stun::Class::kRequest, tid);
  if (attrs) attrs(b);
  if (s.userhash) {
    b.add_bytes(at::kUserhash, stun::userhash(c.username, c.realm));
  } else {
    b.add_string(at::kUsername, c.username);
  }
  b.add_string(at::kRealm, c.realm);
  b.add_string(at::kNonce, c.nonce);
  if (s.send_list) b.add_password_algorithms(s.list);
  if (s.send_algorithm) b.add_password_algorithm(s.key_algorithm);
  const auto key = key_of(c, s.key_algorithm);
  if (s.sha256_integrity) {
    b.add_integrity_sha256(key);
  } else {
    b.add_integrity(key);
  }
  EXPECT_TRUE(b.ok());
  buf.resize(b.finish());
  auto r = h.send(buf, c.tuple, kT0);
  EXPECT_TRUE(r.has_value());
  return r.value_or(Response{});
}

std::string reason(const Response& r) {
  const auto e = r.view().error_code();
  return e ? std::string(e->reason) : std::string();
}

TEST(Rfc8489Auth, ChallengeOffersAlgorithmsInACookieNonce) {
  Harness h;
  Client c = h.rest_client();
  const auto r = h.request(c, stun::Method::kAllocate, Harness::udp_transport(), kT0, false);
  ASSERT_EQ(r.code(), 401);
  const auto v = r.view();
  const auto nonce = std::string(*v.string(at::kNonce));
  EXPECT_TRUE(nonce.starts_with("obMatJos2")) << nonce;
  ASSERT_TRUE(NonceCodec::features(nonce));
  EXPECT_EQ(*NonceCodec::features(nonce) & kFeaturePasswordAlgorithms, kFeaturePasswordAlgorithms);
  // REST users cannot be found by USERHASH, so anonymity is not offered.
  EXPECT_EQ(*NonceCodec::features(nonce) & kFeatureUsernameAnonymity, 0u);
  const auto list = v.find(at::kPasswordAlgorithms);
  ASSERT_TRUE(list);
  const std::vector<uint8_t> want = {0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
  const auto got = v.value(*list);
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), want);
  EXPECT_FALSE(v.integrity());
}

TEST(Rfc8489Auth, Sha256ClientIsAnsweredWithIntegritySha256) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const auto r = send_signed(h, c, stun::Method::kAllocate, Signing{}, Harness::udp_transport());
  ASSERT_EQ(r.code(), 0) << reason(r);
  const auto v = r.view();
  EXPECT_FALSE(v.integrity());  // signed the way the request was: SHA-256 only
  EXPECT_EQ(stun::check_integrity_sha256(v, key_of(c, PasswordAlgorithm::kSha256)),
            stun::Integrity::kOk);
  // The allocation is the user's: a CreatePermission signed the same way is accepted and signed.
  const auto p = send_signed(h, c, stun::Method::kCreatePermission, Signing{},
                             [](stun::MessageBuilder& b) {
                               b.add_xor_address(at::kXorPeerAddress, ep("93.184.216.34:9000"));
                             });
  EXPECT_EQ(p.code(), 0) << reason(p);
  EXPECT_EQ(stun::check_integrity_sha256(p.view(), key_of(c, PasswordAlgorithm::kSha256)),
            stun::Integrity::kOk);
  // The wrong password fails as ever: 401, not signed.
  Client wrong = c;
  wrong.password = "not-the-password";
  const auto bad = send_signed(h, wrong, stun::Method::kRefresh, Signing{});
  EXPECT_EQ(bad.code(), 401);
  EXPECT_FALSE(bad.has(at::kMessageIntegritySha256));
}

TEST(Rfc8489Auth, Rfc5389ClientKeepsMd5AndMessageIntegrity) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);  // no PASSWORD-ALGORITHM(S), MESSAGE-INTEGRITY with the MD5 key
  const auto r = h.refresh(c, 600, kT0);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_FALSE(r.has(at::kMessageIntegritySha256));
}

TEST(Rfc8489Auth, Md5KeyWithIntegritySha256AndSha256KeyWithIntegrity) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  Signing md5_sha256;
  md5_sha256.key_algorithm = PasswordAlgorithm::kMd5;
  const auto r = send_signed(h, c, stun::Method::kAllocate, md5_sha256, Harness::udp_transport());
  ASSERT_EQ(r.code(), 0) << reason(r);
  EXPECT_EQ(stun::check_integrity_sha256(r.view(), c.key()), stun::Integrity::kOk);
  Signing sha256_sha1;
  sha256_sha1.sha256_integrity = false;
  const auto f = send_signed(h, c, stun::Method::kRefresh, sha256_sha1);
  ASSERT_EQ(f.code(), 0) << reason(f);
  EXPECT_EQ(stun::check_integrity(f.view(), key_of(c, PasswordAlgorithm::kSha256)),
            stun::Integrity::kOk);
  EXPECT_FALSE(f.has(at::kMessageIntegritySha256));
}

// RFC 8489 section 9.2.4: with the cookie's password-algorithms bit, PASSWORD-ALGORITHM and
// PASSWORD-ALGORITHMS come together, the list is the one sent, the algorithm one of it.
TEST(Rfc8489Auth, BidDownAttemptsGet400) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  Signing no_list;
  no_list.send_list = false;
  Signing no_algorithm;
  no_algorithm.send_algorithm = false;
  Signing stripped;  // a middlebox removed SHA-256 from the offer
  stripped.list = {PasswordAlgorithm::kMd5};
  stripped.key_algorithm = PasswordAlgorithm::kMd5;
  Signing reordered;
  reordered.list = {PasswordAlgorithm::kMd5, PasswordAlgorithm::kSha256};
  for (const Signing& s : {no_list, no_algorithm, stripped, reordered}) {
    const auto r = send_signed(h, c, stun::Method::kAllocate, s, Harness::udp_transport());
    EXPECT_EQ(r.code(), 400) << reason(r);
    EXPECT_FALSE(r.has(at::kMessageIntegritySha256));
    EXPECT_FALSE(r.has(at::kMessageIntegrity));
  }
  EXPECT_TRUE(h.ports.open_ids.empty());
}

TEST(Rfc8489Auth, AlgorithmTurnedOffIsA400NotA401Loop) {
  AuthConfig a = Harness::default_auth();
  a.password_algorithms = {PasswordAlgorithm::kSha256};
  Harness h({}, a);
  Client c = h.rest_client();
  h.challenge(c, kT0);
  // An RFC 5389 client: MD5 implied, and MD5 is off.
  const auto r = h.request(c, stun::Method::kAllocate, Harness::udp_transport(), kT0);
  EXPECT_EQ(r.code(), 400);
  EXPECT_NE(reason(r).find("MD5"), std::string::npos) << reason(r);
  // An RFC 8489 client picks from what was offered, [SHA-256], and is let in.
  Signing s;
  s.list = {PasswordAlgorithm::kSha256};
  const auto ok = send_signed(h, c, stun::Method::kAllocate, s, Harness::udp_transport());
  EXPECT_EQ(ok.code(), 0) << reason(ok);
}

TEST(Rfc8489Auth, UserhashNamesAStaticUser) {
  AuthConfig a = Harness::default_auth();
  a.rest_secrets.clear();  // static users only: anonymity is offered
  Harness h({}, a);
  Client c;
  c.tuple.client = ep("198.51.100.9:40000");
  c.tuple.server = ep("192.0.2.1:3478");
  c.username = "alice";
  c.password = "alice-password";
  h.challenge(c, kT0);
  EXPECT_NE(*NonceCodec::features(c.nonce) & kFeatureUsernameAnonymity, 0u);
  Signing s;
  s.userhash = true;
  const auto r = send_signed(h, c, stun::Method::kAllocate, s, Harness::udp_transport());
  ASSERT_EQ(r.code(), 0) << reason(r);
  // Later requests on the allocation match its user (no 441) whichever way they name it.
  EXPECT_EQ(send_signed(h, c, stun::Method::kRefresh, s).code(), 0);
  EXPECT_EQ(send_signed(h, c, stun::Method::kRefresh, Signing{}).code(), 0);
}

TEST(Rfc8489Auth, UserhashOfARestUsernameIsA401ThatSaysWhy) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  Signing s;
  s.userhash = true;
  const auto r = send_signed(h, c, stun::Method::kAllocate, s, Harness::udp_transport());
  EXPECT_EQ(r.code(), 401);
  EXPECT_NE(reason(r).find("USERHASH"), std::string::npos) << reason(r);
}

TEST(Rfc8489Auth, ReconfigureRotatesSecretsAndRealm) {
  Harness h;
  Client old_secret = h.rest_client("198.51.100.7:40000", "bob", kSecret);
  Client new_secret = h.rest_client("198.51.100.8:40000", "carol", "second-secret");
  AuthConfig a = Harness::default_auth();
  a.rest_secrets = {"second-secret", kSecret};  // new one mints, old one still validates
  h.auth.reconfigure(a);
  h.allocate(old_secret, kT0);
  h.allocate(new_secret, kT0);
  a.rest_secrets = {"second-secret"};  // the old secret removed
  h.auth.reconfigure(a);
  EXPECT_EQ(h.refresh(old_secret, 600, kT0).code(), 401);
  EXPECT_EQ(h.refresh(new_secret, 600, kT0).code(), 0);
  a.realm = "other.example";
  h.auth.reconfigure(a);
  EXPECT_EQ(h.auth.realm(), "other.example");
  EXPECT_EQ(h.refresh(new_secret, 600, kT0).code(), 401);  // still the old realm
}

}  // namespace
}  // namespace callrelay::core::testing
