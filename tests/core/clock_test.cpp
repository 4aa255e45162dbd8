// Two clocks: the core's monotonic `now` runs lifetimes, permissions, channels and nonces; the
// wall clock (a core::WallClock) judges only REST usernames' expiry. Stepping the wall clock by
// hours, forward and back, must move none of the former and all of the latter.
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;

/// A wall clock a test steps at will (an NTP step, a VM resumed, an operator's date command).
class SteppedWallClock final : public WallClock {
 public:
  TimeMs unix_ms() const override { return now_; }
  void step(TimeMs by) { now_ += by; }
  void set(TimeMs to) { now_ = to; }

 private:
  TimeMs now_ = kT0;
};

/// The monotonic clock's origin: an arbitrary small value (the steady clock counts from the
/// boot), far from any Unix time, so mixing the two clocks anywhere shows at once.
constexpr TimeMs kM0 = 42 * kSecond;
constexpr TimeMs kHour = 3600 * kSecond;
const Endpoint kPeer = ep("93.184.216.34:7000");

struct TwoClocks : ::testing::Test {
  SteppedWallClock wall;
  Harness h{CoreConfig{}, Harness::default_auth(), PeerPolicyConfig{}, &wall};
};

/// Whether a peer packet at `now` reaches the client as ChannelData on `channel`.
bool relayed_on_channel(Harness& h, uint16_t channel, TimeMs now) {
  const Output out = h.from_peer(0, kPeer, {1, 2, 3}, now);
  if (out.kind != Output::Kind::kToClient || out.data.size() < 2) return false;
  return ((out.data[0] << 8) | out.data[1]) == channel;
}

TEST_F(TwoClocks, WallStepsForwardAndBackMoveNoLifetime) {
  Client c = h.rest_client();
  h.allocate(c, kM0);
  // The channel lasts 600 s; the permission it installs 300 s (RFC 8656 sections 12 and 9).
  ASSERT_EQ(h.channel_bind(c, 0x4000, kPeer, kM0).code(), 0);

  wall.step(5 * kHour);  // past the REST username's expiry: live state must not care
  EXPECT_EQ(h.server->on_timer(kM0 + kSecond), kM0 + 2 * kSecond);
  EXPECT_TRUE(relayed_on_channel(h, 0x4000, kM0 + 300 * kSecond - 1)) << "expired early";

  wall.step(-10 * kHour);  // before the allocation was made: nothing may be stretched
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kM0 + 300 * kSecond).kind, Output::Kind::kNone)
      << "the permission outlived its 300 s";

  h.server->on_timer(kM0 + 600 * kSecond - 1);
  EXPECT_EQ(h.server->allocation_count(), 1u) << "the allocation expired early";
  wall.step(24 * kHour);
  h.server->on_timer(kM0 + 600 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 0u) << "the allocation outlived its 600 s";
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kExpired);
  EXPECT_EQ(h.observer.ended[0].now, kM0 + 600 * kSecond);
  EXPECT_EQ(h.observer.created.size(), 1u);
}

TEST_F(TwoClocks, RefreshedLifetimeCountsOnTheMonotonicClock) {
  Client c = h.rest_client();
  h.allocate(c, kM0);
  wall.step(-2 * kHour);  // the credential is still valid (its expiry is an hour after kT0)
  ASSERT_EQ(h.refresh(c, 1200, kM0 + 50 * kSecond).code(), 0);
  wall.step(4 * kHour);
  h.server->on_timer(kM0 + 1250 * kSecond - 1);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  h.server->on_timer(kM0 + 1250 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST_F(TwoClocks, NoncesExpireOnTheMonotonicClock) {
  // A static user: its credential never expires, so only the nonce's lifetime (600 s) is judged.
  Client c;
  c.tuple.client = ep("198.51.100.7:40000");
  c.tuple.server = ep("192.0.2.1:3478");
  c.username = "alice";
  c.password = "alice-password";
  h.challenge(c, kM0);

  Client late = c;
  late.tuple.client = ep("198.51.100.8:40000");
  h.challenge(late, kM0);

  wall.step(6 * kHour);
  const auto ok =
      h.request(c, Method::kAllocate, Harness::udp_transport(), kM0 + 600 * kSecond - 1);
  EXPECT_EQ(ok.code(), 0) << "a nonce expired early";
  wall.step(-12 * kHour);
  const auto stale =
      h.request(late, Method::kAllocate, Harness::udp_transport(), kM0 + 600 * kSecond);
  EXPECT_EQ(stale.code(), 438) << "a nonce outlived its 600 s";
}

TEST_F(TwoClocks, RestExpiryFollowsTheWallClock) {
  // The REST username expires at kT0 + 1 h on the wall clock; the monotonic clock barely moves.
  Client c = h.rest_client();
  wall.set(kT0 + kHour - kSecond);
  h.allocate(c, kM0);
  EXPECT_EQ(h.server->allocation_count(), 1u);

  Client other = h.rest_client("198.51.100.9:40000");
  h.challenge(other, kM0 + kSecond);
  wall.set(kT0 + kHour + kSecond);  // a step forward: the credential's expiry has passed
  const auto refused = h.request(other, Method::kAllocate, Harness::udp_transport(), kM0 + kSecond);
  EXPECT_EQ(refused.code(), 401);
  ASSERT_FALSE(h.observer.auth_failures.empty());
  EXPECT_EQ(h.observer.auth_failures.back(), AuthFailure::kExpired);

  wall.set(kT0);  // stepped back: the same username is valid again
  const auto accepted =
      h.request(other, Method::kAllocate, Harness::udp_transport(), kM0 + 2 * kSecond);
  EXPECT_EQ(accepted.code(), 0);
  EXPECT_EQ(h.server->allocation_count(), 2u);
}

}  // namespace
}  // namespace callrelay::core::testing
