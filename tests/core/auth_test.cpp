// Authenticator (REST usernames, rotation, static users, revocation) and NonceCodec.
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

AuthConfig config(std::vector<std::string> secrets, char sep = ':') {
  AuthConfig a;
  a.realm = kRealm;
  a.rest_secrets = std::move(secrets);
  a.rest_separator = sep;
  a.static_users = {{"alice", "alice-password"}};
  return a;
}

std::string rest_name(TimeMs expiry_ms, const std::string& user, char sep = ':') {
  return std::to_string(expiry_ms / 1000) + sep + user;
}

TEST(RestPassword, IsBase64OfHmacSha1OfUsername) {
  // Independently computed: printf '%s' 1700003600:bob | openssl dgst -sha1 -hmac first-secret -binary | base64
  EXPECT_EQ(Authenticator::rest_password("first-secret", "1700003600:bob"), "koJx+A2za5tIPSq89e/ssPrqoRc=");
}

TEST(Authenticator, RestUsernameGivesOneCandidatePerSecret) {
  Authenticator auth(config({"s1", "s2"}));
  const std::string name = rest_name(kT0 + 3600 * kSecond, "bob");
  const auto found = auth.lookup(name, kT0);
  ASSERT_FALSE(found.failure);
  ASSERT_EQ(found.candidates.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const auto& c = found.candidates[static_cast<size_t>(i)];
    EXPECT_EQ(c.secret_index, i);
    EXPECT_EQ(c.user_id, "bob");
    EXPECT_EQ(c.expires, (kT0 / 1000 + 3600) * 1000);
    const std::string secret = i == 0 ? "s1" : "s2";
    EXPECT_EQ(c.key, stun::long_term_key(name, kRealm, Authenticator::rest_password(secret, name)));
  }
}

TEST(Authenticator, ExpiredRestUsernameFails) {
  Authenticator auth(config({"s1"}));
  const TimeMs expiry = kT0 + 10 * kSecond;
  const std::string name = rest_name(expiry, "bob");
  EXPECT_FALSE(auth.lookup(name, expiry - 1).failure);
  EXPECT_EQ(auth.lookup(name, expiry).failure, AuthFailure::kExpired);
  EXPECT_TRUE(auth.lookup(name, expiry).candidates.empty());
}

TEST(Authenticator, ConfigurableSeparator) {
  Authenticator auth(config({"s1"}, '.'));
  const auto found = auth.lookup(rest_name(kT0 + 3600 * kSecond, "carol", '.'), kT0);
  ASSERT_FALSE(found.failure);
  EXPECT_EQ(found.candidates.at(0).user_id, "carol");
  // With '.' configured, ':' is part of a malformed timestamp.
  EXPECT_EQ(auth.lookup(rest_name(kT0 + 3600 * kSecond, "carol", ':'), kT0).failure, AuthFailure::kUnknownUser);
}

TEST(Authenticator, BareTimestampIsAccepted) {
  Authenticator auth(config({"s1"}));
  const auto found = auth.lookup(std::to_string(kT0 / 1000 + 60), kT0);
  ASSERT_FALSE(found.failure);
  EXPECT_EQ(found.candidates.at(0).user_id, "");
}

TEST(Authenticator, MalformedUsernamesAreUnknown) {
  Authenticator auth(config({"s1"}));
  for (const char* name : {"", ":bob", "abc:bob", "-5:bob", "12x:bob", "99999999999999999999:bob", "bob"}) {
    EXPECT_EQ(auth.lookup(name, kT0).failure, AuthFailure::kUnknownUser) << name;
  }
}

TEST(Authenticator, StaticUsers) {
  Authenticator auth(config({}));
  const auto found = auth.lookup("alice", kT0);
  ASSERT_FALSE(found.failure);
  ASSERT_EQ(found.candidates.size(), 1u);
  EXPECT_EQ(found.candidates[0].secret_index, -1);
  EXPECT_EQ(found.candidates[0].user_id, "alice");
  EXPECT_EQ(found.candidates[0].expires, 0);
  EXPECT_EQ(found.candidates[0].key, stun::long_term_key("alice", kRealm, "alice-password"));
  EXPECT_EQ(auth.lookup("mallory", kT0).failure, AuthFailure::kUnknownUser);
}

TEST(Authenticator, RevocationUntilExpiryThenPruned) {
  Authenticator auth(config({"s1"}));
  const std::string name = rest_name(kT0 + 3600 * kSecond, "bob");
  auth.revoke(name, kT0 + 100 * kSecond);
  EXPECT_EQ(auth.lookup(name, kT0).failure, AuthFailure::kRevoked);
  EXPECT_EQ(auth.lookup("alice", kT0).failure, std::nullopt);
  auth.revoke("alice", kT0 + 100 * kSecond);
  EXPECT_EQ(auth.lookup("alice", kT0).failure, AuthFailure::kRevoked);
  // Past the revocation's end the entry is inert, and pruning removes it.
  EXPECT_FALSE(auth.lookup(name, kT0 + 100 * kSecond).failure);
  auth.prune_revocations(kT0 + 50 * kSecond);
  EXPECT_EQ(auth.lookup(name, kT0 + 60 * kSecond).failure, AuthFailure::kRevoked);
  auth.prune_revocations(kT0 + 100 * kSecond);
  EXPECT_FALSE(auth.lookup(name, kT0).failure);
}

TEST(NonceCodec, ValidForLifetimeAndClientIpOnly) {
  NonceCodec codec(Harness::nonce_key(), 600);
  const Endpoint client = ep("198.51.100.7:40000");
  const std::string nonce = codec.issue(client, kT0);
  EXPECT_TRUE(codec.valid(nonce, client, kT0));
  EXPECT_TRUE(codec.valid(nonce, client, kT0 + 600 * kSecond - 1));
  EXPECT_FALSE(codec.valid(nonce, client, kT0 + 600 * kSecond));
  // Bound to the IP, not the port.
  EXPECT_TRUE(codec.valid(nonce, ep("198.51.100.7:40001"), kT0));
  EXPECT_FALSE(codec.valid(nonce, ep("198.51.100.8:40000"), kT0));
  EXPECT_FALSE(codec.valid(nonce, ep("[2001:db8::7]:40000"), kT0));
}

TEST(NonceCodec, RejectsForgeriesAndOtherKeys) {
  NonceCodec codec(Harness::nonce_key(), 600);
  auto other_key = Harness::nonce_key();
  other_key[0] ^= 1;
  NonceCodec other(other_key, 600);
  const Endpoint client = ep("[2001:db8::7]:1");
  std::string nonce = codec.issue(client, kT0);
  EXPECT_TRUE(codec.valid(nonce, client, kT0));
  EXPECT_FALSE(other.valid(nonce, client, kT0));
  // Extending the expiry stamp breaks the MAC.
  std::string later = nonce;
  later[15] = later[15] == 'f' ? 'e' : 'f';
  EXPECT_FALSE(codec.valid(later, client, kT0));
  std::string bad_mac = nonce;
  bad_mac.back() = bad_mac.back() == '0' ? '1' : '0';
  EXPECT_FALSE(codec.valid(bad_mac, client, kT0));
  for (const char* junk : {"", "x", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "00000000000000000000000000000000"}) {
    EXPECT_FALSE(codec.valid(junk, client, kT0)) << junk;
  }
  EXPECT_FALSE(codec.valid(nonce + "00", client, kT0));
}

}  // namespace
}  // namespace callrelay::core::testing
