// Allocation quotas counted across shards (RFC 8656 section 7.2: 486 Allocation Quota
// Reached): two TurnServers sharing one UserLimits, as relay/net's workers do.
#include <gtest/gtest.h>

#include "relay/core/user_limits.hpp"
#include "tests/core/core_test_support.hpp"

namespace callrelay::core {
namespace {

using testing::Client;
using testing::Harness;
using testing::kSecond;
using testing::kT0;

struct TwoShards {
  explicit TwoShards(uint32_t per_user, uint32_t total = 0) : users({}, &counters) {
    CoreConfig cfg;
    cfg.max_allocations_per_user = per_user;
    cfg.max_allocations = total;
    for (Harness* h : {&a, &b}) {
      h->server = std::make_unique<TurnServer>(cfg, h->auth, h->nonces, h->policy, h->ports,
                                               &h->observer, &users);
    }
  }
  /// An Allocate after the 401 round; the response code.
  static uint16_t allocate(Harness& h, Client& c, TimeMs now = kT0) {
    h.challenge(c, now);
    return h.request(c, stun::Method::kAllocate, Harness::udp_transport(), now).code();
  }
  base::LimitCounters counters;
  UserLimits users;
  Harness a, b;
};

TEST(Quota, PerUserCountsAllocationsOnEveryShard) {
  TwoShards s(2);
  auto a1 = s.a.rest_client("198.51.100.1:1000", "erin");
  auto b1 = s.b.rest_client("198.51.100.2:1000", "erin");
  auto a2 = s.a.rest_client("198.51.100.3:1000", "erin");
  auto b2 = s.b.rest_client("198.51.100.4:1000", "erin");
  EXPECT_EQ(TwoShards::allocate(s.a, a1), 0);
  EXPECT_EQ(TwoShards::allocate(s.b, b1), 0);
  EXPECT_EQ(s.users.allocations("erin"), 2u);
  // Each shard holds one; the user's third is refused on either.
  EXPECT_EQ(TwoShards::allocate(s.a, a2), 486);
  EXPECT_EQ(TwoShards::allocate(s.b, b2), 486);
  EXPECT_EQ(s.counters.hits(base::Limit::kUserQuota), 2u);
  EXPECT_TRUE(s.a.ports.open_ids.size() == 1 && s.b.ports.open_ids.size() == 1)
      << "a refused Allocate opens no relay port";
  // Another user is not affected.
  auto other = s.b.rest_client("198.51.100.5:1000", "frank");
  EXPECT_EQ(TwoShards::allocate(s.b, other), 0);
}

TEST(Quota, EveryWayAnAllocationEndsGivesItsSlotBack) {
  TwoShards s(1);
  auto c = s.a.rest_client("198.51.100.1:1000", "gina");
  auto d = s.b.rest_client("198.51.100.2:1000", "gina");
  ASSERT_EQ(TwoShards::allocate(s.a, c), 0);
  ASSERT_EQ(TwoShards::allocate(s.b, d), 486);
  // Refresh with lifetime 0 on shard a frees the slot for shard b.
  ASSERT_EQ(s.a.refresh(c, 0, kT0).code(), 0);
  EXPECT_EQ(s.users.allocations("gina"), 0u);
  ASSERT_EQ(TwoShards::allocate(s.b, d, kT0 + 1), 0);
  // Expiry (600 s default lifetime) on shard b's timer frees it again.
  EXPECT_EQ(TwoShards::allocate(s.a, c, kT0 + 2), 486);
  s.b.server->on_timer(kT0 + 1 + 600 * kSecond);
  EXPECT_EQ(s.users.allocations("gina"), 0u);
  ASSERT_EQ(TwoShards::allocate(s.a, c, kT0 + 601 * kSecond), 0);
  // Shutdown of a shard gives back whatever it held; the user's entry goes with its last.
  s.a.server->shutdown(kT0 + 602 * kSecond);
  EXPECT_EQ(s.users.allocations("gina"), 0u);
  EXPECT_EQ(s.users.user_count(), 0u);
  EXPECT_EQ(s.users.total_allocations(), 0u);
}

TEST(Quota, TotalCountsTheWholeServer) {
  TwoShards s(0, 2);
  auto x = s.a.rest_client("198.51.100.1:1000", "x");
  auto y = s.b.rest_client("198.51.100.2:1000", "y");
  auto z = s.a.rest_client("198.51.100.3:1000", "z");
  EXPECT_EQ(TwoShards::allocate(s.a, x), 0);
  EXPECT_EQ(TwoShards::allocate(s.b, y), 0);
  EXPECT_EQ(TwoShards::allocate(s.a, z), 486);
  EXPECT_EQ(s.counters.hits(base::Limit::kUserQuota), 0u) << "not a per-user refusal";
  EXPECT_EQ(s.users.total_allocations(), 2u);
}

TEST(Quota, UpdateLimitsChangesTheQuotaForTheNextAllocate) {
  TwoShards s(1);
  auto c = s.a.rest_client("198.51.100.1:1000", "hal");
  auto d = s.a.rest_client("198.51.100.2:1000", "hal");
  ASSERT_EQ(TwoShards::allocate(s.a, c), 0);
  ASSERT_EQ(TwoShards::allocate(s.a, d), 486);
  CoreConfig next;
  next.max_allocations_per_user = 2;
  s.a.server->update_limits(next);
  EXPECT_EQ(TwoShards::allocate(s.a, d, kT0 + 1), 0);
  // Lowering it ends nobody; it refuses the next.
  next.max_allocations_per_user = 1;
  s.a.server->update_limits(next);
  EXPECT_EQ(s.a.server->allocation_count(), 2u);
  auto e = s.a.rest_client("198.51.100.3:1000", "hal");
  EXPECT_EQ(TwoShards::allocate(s.a, e, kT0 + 2), 486);
}

TEST(Quota, StaticUsersAreCountedByUsername) {
  TwoShards s(1);
  Client c;
  c.tuple.client = testing::ep("198.51.100.1:1000");
  c.tuple.server = testing::ep("192.0.2.1:3478");
  c.username = "alice";
  c.password = "alice-password";
  Client d = c;
  d.tuple.client.port = 1001;
  EXPECT_EQ(TwoShards::allocate(s.a, c), 0);
  EXPECT_EQ(TwoShards::allocate(s.b, d), 486);
}

}  // namespace
}  // namespace callrelay::core
