// Refresh (RFC 8656 section 8) and requests on a 5-tuple without an allocation.
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

TEST(Refresh, ZeroDeletesAtOnceThenLaterRefreshGets437) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  const auto r = h.refresh(c, 0, kT0 + kSecond);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(r.view().u32(at::kLifetime), 0u);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{0});
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kRefreshZero);
  EXPECT_EQ(h.observer.ended[0].now, kT0 + kSecond);
  EXPECT_EQ(h.refresh(c, 600, kT0 + 2 * kSecond).code(), 437);
  EXPECT_EQ(h.refresh(c, 0, kT0 + 2 * kSecond).code(), 437);
}

TEST(Refresh, ExtendsLifetime) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  const auto r = h.refresh(c, 1200, kT0 + 500 * kSecond);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(r.view().u32(at::kLifetime), 1200u);
  EXPECT_EQ(h.refresh(c, std::nullopt, kT0 + 500 * kSecond).view().u32(at::kLifetime), 600u);
  h.server->on_timer(kT0 + 1100 * kSecond - 1);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  h.server->on_timer(kT0 + 1100 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(Refresh, FamilyMismatchGets443) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  const auto r = h.request(c, Method::kRefresh, [](stun::MessageBuilder& b) {
    b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x02, 0, 0, 0});
  }, kT0);
  EXPECT_EQ(r.code(), 443);
  EXPECT_EQ(h.request(c, Method::kRefresh, [](stun::MessageBuilder& b) {
    b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x01, 0, 0, 0});
  }, kT0).code(), 0);
}

TEST(Refresh, WithoutAllocationGets437AndNeedsAuth) {
  Harness h;
  Client c = h.rest_client();
  const auto r = h.request(c, Method::kRefresh, {}, kT0, false);
  EXPECT_EQ(r.code(), 401) << "unsigned: challenged first";
  h.challenge(c, kT0);
  EXPECT_EQ(h.refresh(c, 600, kT0).code(), 437);
  EXPECT_EQ(h.create_permission(c, ep("93.184.216.34:1"), kT0).code(), 437);
  EXPECT_EQ(h.channel_bind(c, 0x4000, ep("93.184.216.34:1"), kT0).code(), 437);
}

TEST(Refresh, OtherUsernameOnSameTupleGets441) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  Client impostor = c;
  impostor.username = "alice";
  impostor.password = "alice-password";
  EXPECT_EQ(h.refresh(impostor, 600, kT0).code(), 441);
}

TEST(Requests, UnsupportedMethodGets400) {
  Harness h;
  Client c = h.rest_client();
  // 0x00D: no method (Connect, 0x00A, is RFC 6062's and implemented now).
  const auto r = h.request(c, static_cast<Method>(0x00D), {}, kT0, false);
  EXPECT_EQ(r.code(), 400);
}

}  // namespace
}  // namespace callrelay::core::testing
