// Binding, the long-term credential mechanism, Allocate and Refresh with every error code.
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

uint16_t count_code(const RecordingObserver& o, Method m, uint16_t code) {
  uint16_t n = 0;
  for (const auto& r : o.requests) n = static_cast<uint16_t>(n + (r.method == m && r.code == code));
  return n;
}

TEST(Binding, AnswersXorMappedAddressWithoutAuth) {
  Harness h;
  Client c = h.rest_client("203.0.113.9:5555");
  const auto r = h.request(c, Method::kBinding, {}, kT0, false);
  ASSERT_EQ(r.code(), 0);
  const auto v = r.view();
  EXPECT_EQ(v.xor_address(at::kXorMappedAddress), c.tuple.client);
  EXPECT_EQ(v.string(at::kSoftware), "callrelay");
  EXPECT_FALSE(v.find(at::kMessageIntegrity));
  EXPECT_FALSE(v.find(at::kFingerprint)) << "no FINGERPRINT unless the request had one";
  EXPECT_EQ(count_code(h.observer, Method::kBinding, 0), 1);
}

TEST(Binding, FingerprintWhenRequestHadOneAndIPv6) {
  Harness h;
  Client c = h.rest_client("[2001:db8::42]:6000");
  c.fingerprint = true;
  const auto r = h.request(c, Method::kBinding, {}, kT0, false);
  ASSERT_EQ(r.code(), 0);
  EXPECT_TRUE(r.has(at::kFingerprint));
  EXPECT_EQ(r.view().xor_address(at::kXorMappedAddress), c.tuple.client);
}

TEST(Binding, UnknownComprehensionRequiredAttributeGets420) {
  Harness h;
  Client c = h.rest_client();
  const auto r = h.request(c, Method::kBinding, [](stun::MessageBuilder& b) {
    b.add_u32(0x0077, 1);
    b.add_u32(0xC001, 2);  // comprehension-optional: ignored
  }, kT0, false);
  ASSERT_EQ(r.code(), 420);
  const auto v = r.view();
  const auto ua = v.find(at::kUnknownAttributes);
  ASSERT_TRUE(ua);
  const auto val = v.value(*ua);
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ((val[0] << 8) | val[1], 0x0077);
}

TEST(Binding, ChangeRequestWithoutFlagsIsUnderstood) {
  Harness h;
  Client c = h.rest_client();
  EXPECT_EQ(h.request(c, Method::kBinding, [](stun::MessageBuilder& b) { b.add_u32(0x0003, 0); }, kT0, false).code(), 0);
  EXPECT_EQ(h.request(c, Method::kBinding, [](stun::MessageBuilder& b) { b.add_u32(0x0003, 6); }, kT0, false).code(), 420);
}

TEST(Binding, RequiresAuthWhenConfigured) {
  CoreConfig cfg;
  cfg.require_auth_for_binding = true;
  Harness h(cfg);
  Client c = h.rest_client();
  const auto r = h.request(c, Method::kBinding, {}, kT0, false);
  ASSERT_EQ(r.code(), 401);
  c.nonce = std::string(*r.view().string(at::kNonce));
  const auto ok = h.request(c, Method::kBinding, {}, kT0);
  ASSERT_EQ(ok.code(), 0);
  EXPECT_EQ(stun::check_integrity(ok.view(), c.key()), stun::Integrity::kOk);
}

TEST(Allocate, ChallengeCarriesRealmNonceAndNoIntegrity) {
  Harness h;
  Client c = h.rest_client();
  const auto r = h.request(c, Method::kAllocate, Harness::udp_transport(), kT0, false);
  ASSERT_EQ(r.code(), 401);
  const auto v = r.view();
  EXPECT_EQ(v.string(at::kRealm), kRealm);
  ASSERT_TRUE(v.string(at::kNonce));
  EXPECT_TRUE(h.nonces.valid(*v.string(at::kNonce), c.tuple.client, kT0));
  EXPECT_FALSE(v.find(at::kMessageIntegrity));
  EXPECT_TRUE(v.find(at::kSoftware));
  EXPECT_TRUE(h.observer.auth_failures.empty()) << "the first challenge is not a failure";
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(Allocate, SuccessAfterChallenge) {
  Harness h;
  Client c = h.rest_client();
  c.fingerprint = true;
  h.challenge(c, kT0);
  const auto r = h.request(c, Method::kAllocate, Harness::udp_transport(), kT0);
  ASSERT_EQ(r.code(), 0);
  const auto v = r.view();
  EXPECT_EQ(v.xor_address(at::kXorRelayedAddress), ep("192.0.2.1:61000"));
  EXPECT_EQ(v.xor_address(at::kXorMappedAddress), c.tuple.client);
  EXPECT_EQ(v.u32(at::kLifetime), 600u);
  EXPECT_EQ(v.string(at::kSoftware), "callrelay");
  EXPECT_EQ(stun::check_integrity(v, c.key()), stun::Integrity::kOk);
  EXPECT_TRUE(v.find(at::kFingerprint));
  EXPECT_FALSE(v.find(at::kReservationToken));
  ASSERT_EQ(h.observer.created.size(), 1u);
  const AllocationInfo& info = *h.observer.created[0];
  EXPECT_EQ(info.user_id, "bob");
  EXPECT_EQ(info.username, c.username);
  EXPECT_EQ(info.realm, kRealm);
  EXPECT_EQ(info.secret_index, 0);
  EXPECT_EQ(info.client, c.tuple);
  EXPECT_EQ(info.started, kT0);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_EQ(count_code(h.observer, Method::kAllocate, 401), 1);
  EXPECT_EQ(count_code(h.observer, Method::kAllocate, 0), 1);
}

TEST(Allocate, RotatedSecretValidatesWithItsIndex) {
  AuthConfig acfg = Harness::default_auth();
  acfg.rest_secrets = {"new-secret", kSecret};
  Harness h({}, acfg);
  Client old_client = h.rest_client("198.51.100.7:1", "bob", kSecret);
  Client new_client = h.rest_client("198.51.100.7:2", "carol", "new-secret");
  h.allocate(old_client, kT0);
  h.allocate(new_client, kT0);
  ASSERT_EQ(h.observer.created.size(), 2u);
  EXPECT_EQ(h.observer.created[0]->secret_index, 1);
  EXPECT_EQ(h.observer.created[1]->secret_index, 0);
}

TEST(Allocate, StaticUser) {
  Harness h;
  Client c = h.rest_client();
  c.username = "alice";
  c.password = "alice-password";
  h.allocate(c, kT0);
  ASSERT_EQ(h.observer.created.size(), 1u);
  EXPECT_EQ(h.observer.created[0]->secret_index, -1);
  EXPECT_EQ(h.observer.created[0]->user_id, "alice");
}

/// Sends a signed Allocate and expects a 401 with a fresh nonce and no MESSAGE-INTEGRITY.
void expect_rejected(Harness& h, Client& c, AuthFailure why, TimeMs now = kT0) {
  h.challenge(c, now);
  const auto r = h.request(c, Method::kAllocate, Harness::udp_transport(), now);
  ASSERT_EQ(r.code(), 401);
  const auto v = r.view();
  EXPECT_FALSE(v.find(at::kMessageIntegrity));
  EXPECT_EQ(v.string(at::kRealm), kRealm);
  ASSERT_TRUE(v.string(at::kNonce));
  EXPECT_TRUE(h.nonces.valid(*v.string(at::kNonce), c.tuple.client, now));
  ASSERT_EQ(h.observer.auth_failures.size(), 1u);
  EXPECT_EQ(h.observer.auth_failures[0], why);
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(Allocate, WrongPasswordGets401) {
  Harness h;
  Client c = h.rest_client();
  c.password = Authenticator::rest_password("not-the-secret", c.username);
  expect_rejected(h, c, AuthFailure::kBadIntegrity);
}

TEST(Allocate, ExpiredRestUsernameGets401) {
  Harness h;
  Client c = h.rest_client();
  c.username = std::to_string(kT0 / 1000 - 1) + ":bob";
  c.password = Authenticator::rest_password(kSecret, c.username);
  expect_rejected(h, c, AuthFailure::kExpired);
}

TEST(Allocate, RevokedUsernameGets401) {
  Harness h;
  Client c = h.rest_client();
  h.auth.revoke(c.username, kT0 + 3600 * kSecond);
  expect_rejected(h, c, AuthFailure::kRevoked);
}

TEST(Allocate, UnknownStaticUserGets401) {
  Harness h;
  Client c = h.rest_client();
  c.username = "mallory";
  expect_rejected(h, c, AuthFailure::kUnknownUser);
}

TEST(Allocate, WrongRealmGets401) {
  Harness h;
  Client c = h.rest_client();
  c.realm = "other.example";
  expect_rejected(h, c, AuthFailure::kWrongRealm);
}

TEST(Allocate, IntegrityWithoutNonceGets400) {
  Harness h;
  Client c = h.rest_client();
  std::vector<uint8_t> buf(512);
  stun::MessageBuilder b(buf, Method::kAllocate, stun::Class::kRequest, c.next_tid());
  b.add_requested_transport(17);
  b.add_string(at::kUsername, c.username);
  b.add_string(at::kRealm, kRealm);
  b.add_integrity(c.key());
  buf.resize(b.finish());
  const auto r = h.send(buf, c.tuple, kT0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code(), 400);
  EXPECT_FALSE(r->has(at::kMessageIntegrity));
}

TEST(Allocate, StaleNonceGets438WithFreshNonce) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const TimeMs later = kT0 + 601 * kSecond;
  const auto r = h.request(c, Method::kAllocate, Harness::udp_transport(), later);
  ASSERT_EQ(r.code(), 438);
  const auto v = r.view();
  EXPECT_FALSE(v.find(at::kMessageIntegrity));
  EXPECT_EQ(v.string(at::kRealm), kRealm);
  const std::string fresh(*v.string(at::kNonce));
  EXPECT_NE(fresh, c.nonce);
  EXPECT_EQ(h.observer.auth_failures, std::vector<AuthFailure>{AuthFailure::kStaleNonce});
  c.nonce = fresh;
  EXPECT_EQ(h.request(c, Method::kAllocate, Harness::udp_transport(), later).code(), 0);
}

TEST(Allocate, NonceFromAnotherClientIpIsStale) {
  Harness h;
  Client a = h.rest_client("198.51.100.7:1");
  Client b = h.rest_client("198.51.100.8:1");
  h.challenge(a, kT0);
  b.nonce = a.nonce;
  EXPECT_EQ(h.request(b, Method::kAllocate, Harness::udp_transport(), kT0).code(), 438);
}

TEST(Allocate, RetransmissionGetsSameSuccessOtherTransactionGets437) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const auto tid = c.next_tid();
  const auto first = h.request(c, Method::kAllocate, Harness::udp_transport(), kT0, true, tid);
  ASSERT_EQ(first.code(), 0);
  const auto again = h.request(c, Method::kAllocate, Harness::udp_transport(), kT0 + 500, true, tid);
  ASSERT_EQ(again.code(), 0);
  EXPECT_EQ(again.bytes, first.bytes);
  EXPECT_EQ(h.ports.open_calls, 1);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  const auto other = h.request(c, Method::kAllocate, Harness::udp_transport(), kT0 + 600);
  ASSERT_EQ(other.code(), 437);
  EXPECT_EQ(stun::check_integrity(other.view(), c.key()), stun::Integrity::kOk)
      << "errors after successful authentication are signed";
}

TEST(Allocate, MissingRequestedTransportGets400) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const auto r = h.request(c, Method::kAllocate, {}, kT0);
  EXPECT_EQ(r.code(), 400);
  EXPECT_TRUE(r.has(at::kMessageIntegrity));
  EXPECT_EQ(h.ports.open_calls, 0);
}

TEST(Allocate, TcpTransportGets442) {
  // With TCP relays disabled (RFC 6062 TCP allocations: tcp_relay_test.cpp).
  CoreConfig cfg;
  cfg.tcp_relay = false;
  Harness h(cfg);
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const auto r = h.request(c, Method::kAllocate, [](stun::MessageBuilder& b) { b.add_requested_transport(6); }, kT0);
  EXPECT_EQ(r.code(), 442);
  EXPECT_EQ(count_code(h.observer, Method::kAllocate, 442), 1);
}

TEST(Allocate, UnknownAttributeGets420Signed) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const auto r = h.request(c, Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_u32(0x0031, 7);
    b.add_u32(0x7FFF, 7);
  }, kT0);
  ASSERT_EQ(r.code(), 420);
  const auto v = r.view();
  const auto val = v.value(*v.find(at::kUnknownAttributes));
  ASSERT_EQ(val.size(), 4u);
  EXPECT_EQ((val[0] << 8) | val[1], 0x0031);
  EXPECT_EQ((val[2] << 8) | val[3], 0x7FFF);
  EXPECT_EQ(stun::check_integrity(v, c.key()), stun::Integrity::kOk);
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(Allocate, PerUserQuotaGets486) {
  CoreConfig cfg;
  cfg.max_allocations_per_user = 2;
  Harness h(cfg);
  Client c1 = h.rest_client("198.51.100.7:1");
  Client c2 = h.rest_client("198.51.100.7:2");
  Client c3 = h.rest_client("198.51.100.7:3");
  Client other = h.rest_client("198.51.100.7:4", "someone-else");
  h.allocate(c1, kT0);
  h.allocate(c2, kT0);
  h.challenge(c3, kT0);
  EXPECT_EQ(h.request(c3, Method::kAllocate, Harness::udp_transport(), kT0).code(), 486);
  EXPECT_EQ(h.observer.drops, std::vector<DropReason>{DropReason::kOverQuota});
  h.allocate(other, kT0);
  // Freeing one lets the user allocate again.
  EXPECT_EQ(h.refresh(c1, 0, kT0).code(), 0);
  EXPECT_EQ(h.request(c3, Method::kAllocate, Harness::udp_transport(), kT0).code(), 0);
}

TEST(Allocate, PerShardQuotaGets486) {
  CoreConfig cfg;
  cfg.max_allocations = 1;
  Harness h(cfg);
  Client c1 = h.rest_client("198.51.100.7:1", "u1");
  Client c2 = h.rest_client("198.51.100.7:2", "u2");
  h.allocate(c1, kT0);
  h.challenge(c2, kT0);
  EXPECT_EQ(h.request(c2, Method::kAllocate, Harness::udp_transport(), kT0).code(), 486);
}

TEST(Allocate, NoRelayPortGets508) {
  Harness h;
  h.ports.capacity = 0;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  EXPECT_EQ(h.request(c, Method::kAllocate, Harness::udp_transport(), kT0).code(), 508);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_TRUE(h.observer.created.empty());
}

TEST(Allocate, AddressFamilies) {
  Harness h;
  Client c = h.rest_client("198.51.100.7:1");
  const Endpoint relayed = h.allocate(c, kT0, [](stun::MessageBuilder& b) {
    b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x02, 0, 0, 0});
  });
  EXPECT_FALSE(relayed.is_v4());
  Client bogus = h.rest_client("198.51.100.7:2");
  h.challenge(bogus, kT0);
  EXPECT_EQ(h.request(bogus, Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x03, 0, 0, 0});
  }, kT0).code(), 440);
  h.ports.ipv6 = false;
  EXPECT_EQ(h.request(bogus, Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x02, 0, 0, 0});
  }, kT0).code(), 440);
  EXPECT_EQ(h.request(bogus, Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x01, 0});
  }, kT0).code(), 400);
}

TEST(Allocate, AdditionalFamilyIPv6IsRefusedInAddressErrorCodeWithoutIPv6) {
  Harness h;
  h.ports.ipv6 = false;  // dual allocations themselves: dual_stack_test.cpp
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const auto r = h.request(c, Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(at::kAdditionalAddressFamily, std::vector<uint8_t>{0x02, 0, 0, 0});
  }, kT0);
  ASSERT_EQ(r.code(), 0);
  const auto v = r.view();
  const auto aec = v.find(at::kAddressErrorCode);
  ASSERT_TRUE(aec);
  const auto val = v.value(*aec);
  ASSERT_GE(val.size(), 4u);
  EXPECT_EQ(val[0], 0x02);
  EXPECT_EQ(val[2] * 100 + val[3], 440);
  EXPECT_TRUE(v.xor_address(at::kXorRelayedAddress)->is_v4());
}

TEST(Allocate, EvenPortReservationTokenAndDontFragment) {
  Harness h;
  h.ports.next_port = 61001;
  Client c = h.rest_client("198.51.100.7:1");
  h.challenge(c, kT0);
  const auto r = h.request(c, Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(at::kEvenPort, std::vector<uint8_t>{0x80});
    b.add_bytes(at::kDontFragment, {});
  }, kT0);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(r.view().xor_address(at::kXorRelayedAddress)->port, 61002);
  const auto token = r.view().reservation_token();
  ASSERT_TRUE(token);

  // Another client claims the reserved port+1 with the token.
  Client d = h.rest_client("198.51.100.7:2");
  const Endpoint second = h.allocate(d, kT0 + 10 * kSecond, [&](stun::MessageBuilder& b) {
    b.add_u64(at::kReservationToken, *token);
  });
  EXPECT_EQ(second.port, 61003);
  EXPECT_EQ(h.ports.open_calls, 1);
  // A token works once.
  Client e = h.rest_client("198.51.100.7:3");
  h.challenge(e, kT0);
  EXPECT_EQ(h.request(e, Method::kAllocate, [&](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_u64(at::kReservationToken, *token);
  }, kT0 + 11 * kSecond).code(), 508);
  // EVEN-PORT with RESERVATION-TOKEN is a 400.
  EXPECT_EQ(h.request(e, Method::kAllocate, [&](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(at::kEvenPort, std::vector<uint8_t>{0x00});
    b.add_u64(at::kReservationToken, 1234);
  }, kT0 + 11 * kSecond).code(), 400);
}

TEST(Allocate, UnclaimedReservationIsReleasedAfter30Seconds) {
  Harness h;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const auto r = h.request(c, Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(at::kEvenPort, std::vector<uint8_t>{0x80});
  }, kT0);
  ASSERT_EQ(r.code(), 0);
  const auto token = *r.view().reservation_token();
  EXPECT_EQ(h.ports.open_ids.size(), 2u);
  EXPECT_EQ(h.server->on_timer(kT0 + 1), kT0 + 1 + 1000);
  h.server->on_timer(kT0 + 30 * kSecond - 1);
  EXPECT_EQ(h.ports.open_ids.size(), 2u);
  h.server->on_timer(kT0 + 30 * kSecond);
  EXPECT_EQ(h.ports.open_ids.size(), 1u);
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{1});
  Client d = h.rest_client("198.51.100.7:2");
  h.challenge(d, kT0 + 30 * kSecond);
  EXPECT_EQ(h.request(d, Method::kAllocate, [&](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_u64(at::kReservationToken, token);
  }, kT0 + 30 * kSecond).code(), 508);
}

TEST(Allocate, EvenPortThatCannotBeReservedGets508) {
  Harness h;
  h.ports.capacity = 1;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  EXPECT_EQ(h.request(c, Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(at::kEvenPort, std::vector<uint8_t>{0x80});
  }, kT0).code(), 508);
  EXPECT_TRUE(h.ports.open_ids.empty());
}

TEST(Allocate, LifetimeNegotiation) {
  Harness h;
  const std::pair<uint32_t, uint32_t> cases[] = {{0, 600}, {60, 600}, {600, 600}, {1800, 1800}, {3600, 3600},
                                                 {99999, 3600}};
  uint16_t port = 1;
  for (const auto& test_case : cases) {
    const uint32_t asked = test_case.first;
    const uint32_t granted = test_case.second;
    Client c = h.rest_client(("198.51.100.7:" + std::to_string(port++)).c_str());
    h.challenge(c, kT0);
    const auto r = h.request(c, Method::kAllocate, [&](stun::MessageBuilder& b) {
      b.add_requested_transport(17);
      b.add_u32(at::kLifetime, asked);
    }, kT0);
    ASSERT_EQ(r.code(), 0);
    EXPECT_EQ(r.view().u32(at::kLifetime), granted) << "asked " << asked;
  }
}

}  // namespace
}  // namespace callrelay::core::testing
