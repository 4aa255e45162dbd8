// Operator actions on a shard: ending a revoked username's allocations, all of a user's and one
// by id, draining (new Allocates refused with 403, or 300 with an ALTERNATE-SERVER of the
// client's family, live allocations untouched), and auth.strict_expiry on a stepped wall clock.
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

class SteppedWall final : public WallClock {
 public:
  TimeMs unix_ms() const override { return now_; }
  void set(TimeMs to) { now_ = to; }

 private:
  TimeMs now_ = kT0;
};

/// A REST client of `user` whose credential expires `ttl_s` seconds after kT0.
Client client_until(const Harness& h, const char* addr, const std::string& user, int64_t ttl_s) {
  Client c = h.rest_client(addr, user);
  c.username = std::to_string(kT0 / 1000 + ttl_s) + ":" + user;
  c.password = Authenticator::rest_password(kSecret, c.username);
  return c;
}

size_t ended_with(const RecordingObserver& o, EndReason why) {
  size_t n = 0;
  for (const auto& e : o.ended) n += e.why == why ? 1 : 0;
  return n;
}

TEST(AdminEnd, RevokedUsernameEndsItsAllocationsOnly) {
  Harness h;
  Client a = h.rest_client("198.51.100.7:40000", "bob");
  Client b = h.rest_client("198.51.100.8:40000", "bob");  // same username, another 5-tuple
  Client other = client_until(h, "198.51.100.9:40000", "bob", 7200);  // bob, another credential
  h.allocate(a, kT0);
  h.allocate(b, kT0);
  h.allocate(other, kT0);
  EXPECT_EQ(h.server->end_username(a.username, kT0 + kSecond), 2u);
  EXPECT_EQ(ended_with(h.observer, EndReason::kRevoked), 2u);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_EQ(h.ports.closed.size(), 2u);  // their relay ports go back
  EXPECT_EQ(h.refresh(a, 600, kT0 + 2 * kSecond).code(), 437);  // RFC 8656 7.3: no allocation
  EXPECT_EQ(h.refresh(other, 600, kT0 + 2 * kSecond).code(), 0);
  EXPECT_EQ(h.server->end_username("no-such-user", kT0), 0u);
}

TEST(AdminEnd, EndUserEndsEveryCredentialOfTheUser) {
  Harness h;
  Client one = h.rest_client("198.51.100.7:40000", "carol");
  Client two = client_until(h, "198.51.100.8:40000", "carol", 7200);
  Client dave = h.rest_client("198.51.100.9:40000", "dave");
  Client alice;  // a static user: user_id is the username
  alice.tuple.client = ep("198.51.100.10:40000");
  alice.tuple.server = ep("192.0.2.1:3478");
  alice.username = "alice";
  alice.password = "alice-password";
  for (Client* c : {&one, &two, &dave, &alice}) h.allocate(*c, kT0);
  EXPECT_EQ(h.server->end_user("carol", EndReason::kAdminEnded, kT0), 2u);
  EXPECT_EQ(h.server->end_user("alice", EndReason::kAdminEnded, kT0), 1u);
  EXPECT_EQ(ended_with(h.observer, EndReason::kAdminEnded), 3u);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_EQ(h.server->end_all(EndReason::kDrained, kT0), 1u);
  EXPECT_EQ(ended_with(h.observer, EndReason::kDrained), 1u);
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(AdminEnd, EndAllocationEndsOnlyThatId) {
  Harness h;
  Client a = h.rest_client("198.51.100.7:40000", "erin");
  Client b = h.rest_client("198.51.100.8:40000", "erin");  // the same user, another 5-tuple
  h.allocate(a, kT0);
  h.allocate(b, kT0);
  ASSERT_EQ(h.observer.created_ids.size(), 2u);
  const uint64_t first = h.observer.created_ids[0];
  const uint64_t second = h.observer.created_ids[1];
  EXPECT_TRUE(h.server->end_allocation(first, EndReason::kAdminEnded, kT0 + kSecond));
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].id, first);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kAdminEnded);
  EXPECT_EQ(h.ports.closed.size(), 1u);  // its relay port goes back
  EXPECT_EQ(h.refresh(a, 600, kT0 + 2 * kSecond).code(), 437);  // RFC 8656 7.3: no allocation
  EXPECT_EQ(h.refresh(b, 600, kT0 + 2 * kSecond).code(), 0);
  // Ended already, or never existed: nothing ends.
  EXPECT_FALSE(h.server->end_allocation(first, EndReason::kAdminEnded, kT0 + 3 * kSecond));
  EXPECT_FALSE(h.server->end_allocation(second + 1000, EndReason::kAdminEnded, kT0));
  EXPECT_EQ(h.server->allocation_count(), 1u);
}

TEST(Drain, NewAllocatesGet403AfterAuthenticationLiveOnesRunOn) {
  Harness h;
  Client live = h.rest_client("198.51.100.7:40000", "bob");
  h.allocate(live, kT0);
  EXPECT_FALSE(h.server->draining());
  h.server->start_draining({});
  EXPECT_TRUE(h.server->draining());

  Client late = h.rest_client("198.51.100.8:40000", "carol");
  h.challenge(late, kT0);  // unauthenticated: the usual 401, nothing about the drain
  const auto r = h.request(late, stun::Method::kAllocate, Harness::udp_transport(), kT0);
  EXPECT_EQ(r.code(), 403);
  EXPECT_TRUE(r.has(stun::attr::kMessageIntegrity));  // signed: the request was authenticated
  EXPECT_FALSE(r.has(stun::attr::kAlternateServer));
  EXPECT_EQ(h.server->allocation_count(), 1u);

  // The live allocation refreshes and relays as before.
  EXPECT_EQ(h.refresh(live, 600, kT0 + kSecond).code(), 0);
  EXPECT_EQ(h.create_permission(live, ep("93.184.216.34:0"), kT0 + kSecond).code(), 0);
  // A second Allocate on its 5-tuple is still answered as without a drain (437).
  const auto again = h.request(live, stun::Method::kAllocate, Harness::udp_transport(), kT0);
  EXPECT_EQ(again.code(), 437);
}

TEST(Drain, AlternatesOfTheClientsFamilyRoundRobin) {
  Harness h;
  h.server->start_draining(
      {ep("[2001:db8::8]:3478"), ep("203.0.113.8:3478"), ep("203.0.113.9:3479")});
  std::vector<Endpoint> seen;
  for (const char* addr : {"198.51.100.7:40000", "198.51.100.8:40000", "198.51.100.9:40000"}) {
    Client c = h.rest_client(addr, "dave");
    h.challenge(c, kT0);
    const auto r = h.request(c, stun::Method::kAllocate, Harness::udp_transport(), kT0);
    ASSERT_EQ(r.code(), 300);
    // RFC 8489 section 14.15: ALTERNATE-SERVER is a plain (not XOR) address.
    const auto view = r.view();
    const auto alt = view.find(stun::attr::kAlternateServer);
    ASSERT_TRUE(alt.has_value());
    ASSERT_EQ(view.value(*alt).size(), 8u);
    EXPECT_EQ(view.value(*alt)[1], 0x01);  // IPv4, the client's family
    const auto plain = view.plain_address(stun::attr::kAlternateServer);
    ASSERT_TRUE(plain.has_value());
    seen.push_back(*plain);
  }
  EXPECT_EQ(seen[0], ep("203.0.113.8:3478"));
  EXPECT_EQ(seen[1], ep("203.0.113.9:3479"));
  EXPECT_EQ(seen[2], ep("203.0.113.8:3478"));

  // No alternate of the client's family: 403.
  Harness v4_only;
  v4_only.server->start_draining({ep("[2001:db8::8]:3478")});
  Client c = v4_only.rest_client("198.51.100.7:40000", "erin");
  v4_only.challenge(c, kT0);
  EXPECT_EQ(v4_only.request(c, stun::Method::kAllocate, Harness::udp_transport(), kT0).code(),
            403);
}

TEST(StrictExpiry, EndsAtTheCredentialsWallClockExpiry) {
  SteppedWall wall;
  CoreConfig cfg;
  cfg.strict_expiry = true;
  Harness h(cfg, Harness::default_auth(), {}, &wall);
  // The core's clock is monotonic and unrelated to the wall clock.
  const TimeMs mono = 5'000;
  Client soon = client_until(h, "198.51.100.7:40000", "bob", 100);
  Client later = client_until(h, "198.51.100.8:40000", "carol", 3600);
  Client alice;  // static users never expire
  alice.tuple.client = ep("198.51.100.10:40000");
  alice.tuple.server = ep("192.0.2.1:3478");
  alice.username = "alice";
  alice.password = "alice-password";
  for (Client* c : {&soon, &later, &alice}) h.allocate(*c, mono);

  wall.set(kT0 + 99 * kSecond);
  h.server->on_timer(mono + 99 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 3u);
  // The wall clock steps past the expiry while monotonic time hardly moves (an NTP step).
  wall.set(kT0 + 100 * kSecond);
  h.server->on_timer(mono + 99 * kSecond + 1);
  EXPECT_EQ(ended_with(h.observer, EndReason::kCredentialExpired), 1u);
  ASSERT_EQ(h.server->allocation_count(), 2u);
  wall.set(kT0 + 3600 * kSecond);
  h.server->on_timer(mono + 100 * kSecond);
  EXPECT_EQ(ended_with(h.observer, EndReason::kCredentialExpired), 2u);
  EXPECT_EQ(h.server->allocation_count(), 1u);  // alice
}

TEST(StrictExpiry, OffByDefault) {
  SteppedWall wall;
  Harness h(CoreConfig{}, Harness::default_auth(), {}, &wall);
  Client soon = client_until(h, "198.51.100.7:40000", "bob", 100);
  h.allocate(soon, 5'000);
  wall.set(kT0 + 200 * kSecond);
  h.server->on_timer(5'000 + 200 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 1u);  // ends at its own lifetime, or its Refresh
}

TEST(StrictExpiry, EndedAllocationsDoNotPileUpInTheHeap) {
  SteppedWall wall;
  CoreConfig cfg;
  cfg.strict_expiry = true;
  Harness h(cfg, Harness::default_auth(), {}, &wall);
  // Many short allocations on one 5-tuple, each released by Refresh(0): the tracked entries
  // of ended allocations are compacted, and a reused 5-tuple is not ended by a stale entry.
  Client c = client_until(h, "198.51.100.7:40000", "bob", 100);
  h.challenge(c, 5'000);  // one nonce for every round (401s are rate-limited per source)
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(h.request(c, stun::Method::kAllocate, Harness::udp_transport(), 5'000).code(), 0);
    ASSERT_EQ(h.refresh(c, 0, 5'000).code(), 0);
  }
  Client fresh = client_until(h, "198.51.100.7:40000", "bob", 3600);  // same 5-tuple
  fresh.nonce = c.nonce;
  ASSERT_EQ(h.request(fresh, stun::Method::kAllocate, Harness::udp_transport(), 5'000).code(), 0);
  wall.set(kT0 + 100 * kSecond);
  h.server->on_timer(5'000 + 100 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_EQ(ended_with(h.observer, EndReason::kCredentialExpired), 0u);
}

}  // namespace
}  // namespace callrelay::core::testing
