// Authenticator (REST usernames, rotation, static users, USERHASH, bounded revocation,
// reconfigure) and NonceCodec (the RFC 8489 cookie and its feature bits).
#include <atomic>
#include <thread>

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

TEST(Authenticator, RevocationsAreBoundedInCount) {
  AuthConfig a = config({"s1"});
  a.max_revocations = 2;
  base::LimitCounters limits;
  Authenticator auth(a, nullptr, &limits);
  const TimeMs until = kT0 + 100 * kSecond;
  EXPECT_TRUE(auth.revoke(rest_name(kT0 + 3600 * kSecond, "u1"), until, kT0));
  EXPECT_TRUE(auth.revoke(rest_name(kT0 + 3600 * kSecond, "u2"), until, kT0));
  // Full: refused and counted; extending an entry already there still works.
  EXPECT_FALSE(auth.revoke(rest_name(kT0 + 3600 * kSecond, "u3"), until, kT0));
  EXPECT_EQ(limits.hits(base::Limit::kRevocationsFull), 1u);
  EXPECT_TRUE(auth.revoke(rest_name(kT0 + 3600 * kSecond, "u1"), until + kSecond, kT0));
  EXPECT_EQ(auth.revoked_count(), 2u);
  EXPECT_FALSE(auth.lookup(rest_name(kT0 + 3600 * kSecond, "u3"), kT0).failure);
  // Once entries have run out they make room without waiting for a prune.
  EXPECT_TRUE(auth.revoke(rest_name(kT0 + 3600 * kSecond, "u3"), until + 300 * kSecond,
                          until + 2 * kSecond));
  EXPECT_EQ(auth.revoked_count(), 1u);
}

TEST(Authenticator, RevocationLastsAtMostTheLongestCredentialLifetime) {
  AuthConfig a = config({"s1"});
  a.max_credential_lifetime_s = 600;
  Authenticator auth(a);
  // A username whose expiry lies a year ahead (not one this server minted).
  const std::string name = rest_name(kT0 + 365 * 86400 * kSecond, "bob");
  ASSERT_TRUE(auth.revoke(name, kT0 + 365 * 86400 * kSecond, kT0));
  EXPECT_EQ(auth.lookup(name, kT0 + 599 * kSecond).failure, AuthFailure::kRevoked);
  auth.prune_revocations(kT0 + 600 * kSecond);
  EXPECT_EQ(auth.revoked_count(), 0u);
}

TEST(Authenticator, UserhashFindsStaticUsersOnly) {
  Authenticator auth(config({"s1"}));
  const auto alice = stun::userhash("alice", kRealm);
  const auto found = auth.lookup_userhash(alice, kT0);
  ASSERT_FALSE(found.failure);
  EXPECT_EQ(found.candidates.at(0).username, "alice");
  EXPECT_EQ(found.candidates.at(0).key_sha256,
            stun::long_term_key_sha256("alice", kRealm, "alice-password"));
  const std::string rest = rest_name(kT0 + 3600 * kSecond, "bob");
  EXPECT_EQ(auth.lookup_userhash(stun::userhash(rest, kRealm), kT0).failure,
            AuthFailure::kUnknownUser);
  EXPECT_FALSE(auth.userhash_resolvable());  // REST secrets configured
  auth.reconfigure(config({}));
  EXPECT_TRUE(auth.userhash_resolvable());
  // The hash includes the realm: after a realm change the old hash no longer names alice.
  AuthConfig other = config({});
  other.realm = "elsewhere";
  auth.reconfigure(other);
  EXPECT_EQ(auth.lookup_userhash(alice, kT0).failure, AuthFailure::kUnknownUser);
}

// Derived keys are kept per thread between lookups of the same username: they must follow a
// reload (new secrets, passwords or realm) and never leak between two authenticators.
TEST(Authenticator, RepeatedLookupsFollowReloadsAndInstances) {
  Authenticator auth(config({"s1"}));
  const std::string name = rest_name(kT0 + 3600 * kSecond, "bob");
  const auto key_of = [&](const std::string& secret, const std::string& realm) {
    return stun::long_term_key(name, realm, Authenticator::rest_password(secret, name));
  };
  for (int i = 0; i < 2; ++i) {  // derived, then from the cache
    const auto found = auth.lookup(name, kT0);
    ASSERT_EQ(found.candidates.size(), 1u);
    EXPECT_EQ(found.candidates[0].key, key_of("s1", kRealm));
    EXPECT_EQ(found.candidates[0].key_sha256,
              stun::long_term_key_sha256(name, kRealm, Authenticator::rest_password("s1", name)));
  }
  auth.reconfigure(config({"s2", "s1"}));
  auto found = auth.lookup(name, kT0);
  ASSERT_EQ(found.candidates.size(), 2u);
  EXPECT_EQ(found.candidates[0].key, key_of("s2", kRealm));
  EXPECT_EQ(found.candidates[1].key, key_of("s1", kRealm));
  EXPECT_EQ(found.candidates[1].secret_index, 1);
  AuthConfig elsewhere = config({"s2"});
  elsewhere.realm = "elsewhere";
  auth.reconfigure(elsewhere);
  found = auth.lookup(name, kT0);
  ASSERT_EQ(found.candidates.size(), 1u);
  EXPECT_EQ(found.candidates[0].key, key_of("s2", "elsewhere"));

  // A static user's new password, and another instance with other secrets, same username.
  EXPECT_EQ(auth.lookup("alice", kT0).candidates.at(0).key,
            stun::long_term_key("alice", "elsewhere", "alice-password"));
  AuthConfig changed = config({"s2"});
  changed.static_users = {{"alice", "new-password"}};
  auth.reconfigure(changed);
  EXPECT_EQ(auth.lookup("alice", kT0).candidates.at(0).key,
            stun::long_term_key("alice", kRealm, "new-password"));
  Authenticator other(config({"s3"}));
  found = other.lookup(name, kT0);
  ASSERT_EQ(found.candidates.size(), 1u);
  EXPECT_EQ(found.candidates[0].key, key_of("s3", kRealm));
  EXPECT_EQ(auth.lookup(name, kT0).candidates.at(0).key, key_of("s2", kRealm));
  // Expiry and revocation are judged on every lookup, cached keys or not.
  EXPECT_EQ(auth.lookup(name, kT0 + 3601 * kSecond).failure, AuthFailure::kExpired);
  ASSERT_TRUE(auth.revoke(name, kT0 + 3600 * kSecond, kT0));
  EXPECT_EQ(auth.lookup(name, kT0).failure, AuthFailure::kRevoked);
}

// Workers look up while the reload thread swaps the configuration: every lookup sees one
// configuration or the other, whole (run under the sanitizers in CI).
TEST(Authenticator, ReconfigureWhileLookingUp) {
  Authenticator auth(config({"s1"}));
  const std::string name = rest_name(kT0 + 3600 * kSecond, "bob");
  std::atomic<bool> stop{false};
  std::atomic<size_t> odd{0};
  std::thread worker([&] {
    while (!stop.load()) {
      const auto found = auth.lookup(name, kT0);
      // One secret (s1) or two (s2, s1): never anything else.
      if (found.failure || (found.candidates.size() != 1 && found.candidates.size() != 2)) ++odd;
      if (auth.realm() != kRealm) ++odd;
    }
  });
  for (int i = 0; i < 2000; ++i) {
    auth.reconfigure(config(i % 2 == 0 ? std::vector<std::string>{"s2", "s1"}
                                       : std::vector<std::string>{"s1"}));
  }
  stop = true;
  worker.join();
  EXPECT_EQ(odd.load(), 0u);
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

// Nonces found valid are remembered per thread: many clients' nonces in turn (more than are
// remembered), each checked again, still hold only for their own IP, key and lifetime.
TEST(NonceCodec, RepeatedChecksJudgeEveryTime) {
  NonceCodec codec(Harness::nonce_key(), 600);
  auto other_key = Harness::nonce_key();
  other_key[31] ^= 0x80;
  NonceCodec other(other_key, 600);
  std::vector<std::pair<Endpoint, std::string>> issued;
  for (int i = 0; i < 200; ++i) {
    const std::string text = "10.0." + std::to_string(i / 100) + "." + std::to_string(i % 100) + ":5000";
    const Endpoint client = ep(text.c_str());
    issued.emplace_back(client, codec.issue(client, kT0 + i));
  }
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < issued.size(); ++i) {
      const auto& [client, nonce] = issued[i];
      EXPECT_TRUE(codec.valid(nonce, client, kT0 + 1000));
      EXPECT_FALSE(other.valid(nonce, client, kT0 + 1000));
      EXPECT_FALSE(codec.valid(nonce, issued[(i + 1) % issued.size()].first, kT0 + 1000));
      EXPECT_FALSE(codec.valid(nonce, client, kT0 + 700 * kSecond));
    }
  }
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

// RFC 8489 section 9.2: "obMatJos2" then 4 base64 characters of 24 feature bits, which the MAC
// covers: a nonce whose bits were changed (say, password algorithms cleared) is stale.
TEST(NonceCodec, CookieCarriesFeatureBitsUnderTheMac) {
  NonceCodec codec(Harness::nonce_key(), 600);
  const Endpoint client = ep("198.51.100.7:1");
  const std::string both =
      codec.issue(client, kT0, kFeaturePasswordAlgorithms | kFeatureUsernameAnonymity);
  EXPECT_TRUE(both.starts_with("obMatJos2"));
  // Set from the low end (erratum 6290) and mirrored from the high end: 0xC00003.
  EXPECT_EQ(both.substr(9, 4), "wAAD");
  EXPECT_EQ(NonceCodec::features(both), kFeaturePasswordAlgorithms | kFeatureUsernameAnonymity);
  EXPECT_TRUE(codec.valid(both, client, kT0));
  const std::string pa_only = codec.issue(client, kT0);
  EXPECT_EQ(pa_only.substr(9, 4), "gAAB");
  EXPECT_EQ(NonceCodec::features(pa_only), kFeaturePasswordAlgorithms);
  std::string cleared = pa_only;
  cleared.replace(9, 4, "AAAA");
  EXPECT_EQ(NonceCodec::features(cleared), 0u);
  EXPECT_FALSE(codec.valid(cleared, client, kT0));
  EXPECT_FALSE(NonceCodec::features("0123456789abcdef"));
  EXPECT_FALSE(NonceCodec::features("obMatJos2A!AA"));
}

}  // namespace
}  // namespace callrelay::core::testing
