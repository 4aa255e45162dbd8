// Exact expiry times on the fake clock: one millisecond before the deadline alive, at it gone.
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

const Endpoint kPeer = ep("93.184.216.34:7000");

std::vector<uint8_t> channel_data(uint16_t channel, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out(4 + payload.size());
  stun::write_channel_data_header(std::span<uint8_t, 4>(out.data(), 4), channel, static_cast<uint16_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), out.begin() + 4);
  return out;
}

TEST(Expiry, AllocationAt600Seconds) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  const TimeMs deadline = kT0 + 600 * kSecond;
  EXPECT_EQ(h.server->on_timer(kT0), kT0 + 1000) << "housekeeping at least every second";
  EXPECT_EQ(h.server->on_timer(deadline - 500), deadline) << "the next deadline when it is sooner";
  h.server->on_timer(deadline - 1);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_TRUE(h.ports.closed.empty());
  h.server->on_timer(deadline);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{0});
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kExpired);
  EXPECT_EQ(h.observer.ended[0].now, deadline);
  EXPECT_EQ(h.observer.ended[0].id, h.observer.created_ids.at(0));
  h.challenge(c, deadline);
  EXPECT_EQ(h.refresh(c, 600, deadline).code(), 437);
}

TEST(Expiry, AllocationIsGoneAtDeadlineEvenBeforeTheTimerRuns) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0 + 400 * kSecond).code(), 0);
  const TimeMs deadline = kT0 + 600 * kSecond;
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, deadline - 1).kind, Output::Kind::kToClient);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, deadline).kind, Output::Kind::kNone);
  h.challenge(c, deadline);
  EXPECT_EQ(h.refresh(c, 600, deadline).code(), 437);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_EQ(h.observer.ended.at(0).why, EndReason::kExpired);
}

TEST(Expiry, PermissionAt300Seconds) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  const TimeMs installed = kT0 + 10 * kSecond;
  ASSERT_EQ(h.create_permission(c, kPeer, installed).code(), 0);
  const TimeMs deadline = installed + 300 * kSecond;
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, deadline - 1).kind, Output::Kind::kToClient);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, deadline).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops, std::vector<DropReason>{DropReason::kNoPermission});
  // The timer prunes it; a refresh before the deadline would have kept it.
  h.server->on_timer(deadline);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, deadline).kind, Output::Kind::kNone);
  ASSERT_EQ(h.create_permission(c, kPeer, deadline).code(), 0);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, deadline).kind, Output::Kind::kToClient);
}

TEST(Expiry, PermissionRefreshExtends) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0 + 200 * kSecond).code(), 0);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kT0 + 500 * kSecond - 1).kind, Output::Kind::kToClient);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kT0 + 500 * kSecond).kind, Output::Kind::kNone);
}

TEST(Expiry, ChannelAt600Seconds) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0, [](stun::MessageBuilder& b) { b.add_u32(at::kLifetime, 3600); });
  ASSERT_EQ(h.channel_bind(c, 0x4000, kPeer, kT0).code(), 0);
  const TimeMs deadline = kT0 + 600 * kSecond;
  // Keep the permission alive separately so only the channel lapses.
  ASSERT_EQ(h.create_permission(c, kPeer, deadline - 100 * kSecond).code(), 0);
  const auto cd = channel_data(0x4000, {1, 2});
  EXPECT_EQ(h.server->on_client_packet(c.tuple, cd, deadline - 1).kind, Output::Kind::kToPeer);
  const Output before = h.from_peer(0, kPeer, {1}, deadline - 1);
  ASSERT_EQ(before.kind, Output::Kind::kToClient);
  EXPECT_TRUE(stun::looks_like_channel_data(before.data));
  h.server->on_timer(deadline);
  EXPECT_EQ(h.server->on_client_packet(c.tuple, cd, deadline).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoChannel);
  const Output after = h.from_peer(0, kPeer, {1}, deadline);
  ASSERT_EQ(after.kind, Output::Kind::kToClient);
  EXPECT_TRUE(stun::looks_like_stun(after.data)) << "a Data indication once the channel is gone";
}

TEST(Expiry, RefreshThatShortensLifetimeIsHonouredByTheTimer) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0, [](stun::MessageBuilder& b) { b.add_u32(at::kLifetime, 3600); });
  EXPECT_EQ(h.server->on_timer(kT0 + kSecond), kT0 + 2 * kSecond);
  ASSERT_EQ(h.refresh(c, std::nullopt, kT0 + 10 * kSecond).code(), 0);
  const TimeMs deadline = kT0 + 610 * kSecond;
  EXPECT_EQ(h.server->on_timer(deadline - 200), deadline);
  h.server->on_timer(deadline - 1);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  h.server->on_timer(deadline);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_EQ(h.observer.ended.at(0).now, deadline);
}

TEST(Expiry, ClientClosedAndShutdownEndAllocations) {
  Harness h;
  Client a = h.rest_client("198.51.100.7:1", "a");
  Client b = h.rest_client("198.51.100.7:2", "b");
  Client d = h.rest_client("198.51.100.7:3", "d");
  h.allocate(a, kT0);
  h.allocate(b, kT0);
  h.allocate(d, kT0);
  h.server->on_client_closed(a.tuple, kT0 + 5);
  EXPECT_EQ(h.server->allocation_count(), 2u);
  EXPECT_EQ(h.observer.ended.at(0).why, EndReason::kTransportClosed);
  h.server->on_client_closed(a.tuple, kT0 + 6);  // twice is harmless
  h.server->shutdown(kT0 + 7);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  ASSERT_EQ(h.observer.ended.size(), 3u);
  EXPECT_EQ(h.observer.ended[1].why, EndReason::kShutdown);
  EXPECT_EQ(h.observer.ended[2].why, EndReason::kShutdown);
  EXPECT_TRUE(h.ports.open_ids.empty());
}

TEST(Expiry, RelayIdsAreReusedSafely) {
  Harness h;
  Client a = h.rest_client("198.51.100.7:1", "a");
  h.allocate(a, kT0);
  ASSERT_EQ(h.create_permission(a, kPeer, kT0).code(), 0);
  EXPECT_EQ(h.refresh(a, 0, kT0).code(), 0);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoAllocation);
  // relay/net reuses ids after close: a new allocation on id 0 has no old permissions.
  h.ports.next_id = 0;
  Client b = h.rest_client("198.51.100.7:2", "b");
  h.allocate(b, kT0);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoPermission);
}

}  // namespace
}  // namespace callrelay::core::testing
