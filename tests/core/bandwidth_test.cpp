// Bandwidth caps: token bucket arithmetic with a fake clock (exact token counts), the caps on
// the relayed datagram path (allocation, user across shards, total), live changes, and the
// gate's pacing answer for streams.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "relay/core/bandwidth.hpp"
#include "relay/core/user_limits.hpp"
#include "tests/core/tcp_relay_support.hpp"

namespace callrelay::core {
namespace {

using testing::ep;
using testing::Harness;
using testing::kSecond;
using testing::kT0;

// 800 kbit/s = 100 bytes per ms; with burst_ms 500 the bucket would hold 50,000 bytes, so the
// floor of one largest datagram (65,536 bytes) applies.
constexpr uint64_t kBps = 800'000;
constexpr int64_t kBurstBytes = static_cast<int64_t>(kMinBurstBytes);

TEST(Rate, DepthIsRateTimesBurstWithALargestDatagramAsFloor) {
  EXPECT_TRUE(make_rate(0, 500).off());
  EXPECT_EQ(make_rate(kBps, 500).burst_units, kBurstBytes * kUnitsPerByte);
  const Rate fast = make_rate(100'000'000, 500);  // 100 Mbit/s for 500 ms: 6.25 MB
  EXPECT_EQ(fast.burst_units, 6'250'000 * kUnitsPerByte);
  EXPECT_EQ(refill_units(fast, 1), 100'000'000);  // 12,500 bytes per ms
  EXPECT_EQ(refill_units(fast, 1'000'000'000), fast.burst_units);  // no overflow, capped
  EXPECT_EQ(wait_ms(fast, 1), 1);
  EXPECT_EQ(wait_ms(fast, 100'000'000), 1);
  EXPECT_EQ(wait_ms(fast, 100'000'001), 2);
}

TEST(TokenBucket, StartsFullTakesExactlyAndRefillsAtTheRate) {
  const Rate r = make_rate(kBps, 500);
  TokenBucket b;
  EXPECT_TRUE(b.take(kBurstBytes - 100, kT0, r));
  EXPECT_TRUE(b.take(100, kT0, r));
  EXPECT_EQ(b.units(), 0);
  EXPECT_FALSE(b.take(1, kT0, r));
  EXPECT_EQ(b.units(), 0) << "a refused take takes nothing";
  // 10 ms later: exactly 1,000 bytes.
  EXPECT_FALSE(b.take(1001, kT0 + 10, r));
  EXPECT_TRUE(b.take(1000, kT0 + 10, r));
  EXPECT_FALSE(b.take(1, kT0 + 10, r));
  // A clock that does not move (or a caller slightly behind) refills nothing.
  EXPECT_FALSE(b.take(1, kT0 + 9, r));
  // A long silence fills the bucket to its depth, not beyond.
  EXPECT_TRUE(b.take(kBurstBytes, kT0 + 3600 * kSecond, r));
  EXPECT_FALSE(b.take(1, kT0 + 3600 * kSecond, r));
}

TEST(TokenBucket, ChargeGoesIntoDebtAndSaysHowLongToWait) {
  const Rate r = make_rate(kBps, 500);
  TokenBucket b;
  EXPECT_EQ(b.charge(kBurstBytes, kT0, r), 0);
  // 16 KiB read over the depth: 16,384 bytes at 100 bytes/ms is 163.84 ms, so 164.
  EXPECT_EQ(b.charge(16384, kT0, r), 164);
  EXPECT_EQ(b.units(), -16384 * kUnitsPerByte);
  EXPECT_EQ(b.charge(0, kT0 + 100, r), 64);
  EXPECT_EQ(b.charge(0, kT0 + 164, r), 0);
  EXPECT_EQ(b.units(), 16 * kUnitsPerByte);  // 0.16 ms of rate left over
}

TEST(TokenBucket, GiveBackNeverExceedsTheDepth) {
  const Rate r = make_rate(kBps, 500);
  TokenBucket b;
  EXPECT_TRUE(b.take(10, kT0, r));
  b.give_back(20, r);
  EXPECT_EQ(b.units(), kBurstBytes * kUnitsPerByte);
}

TEST(TokenBucket, OffTakesEverything) {
  TokenBucket b;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(b.take(1'000'000, kT0, Rate{}));
  EXPECT_EQ(b.charge(1'000'000, kT0, Rate{}), 0);
}

TEST(SharedTokenBucket, SameArithmeticAsTheSingleThreadedOne) {
  const Rate r = make_rate(kBps, 500);
  SharedTokenBucket b;
  EXPECT_TRUE(b.take(kBurstBytes, kT0, r));
  EXPECT_FALSE(b.take(1, kT0, r));
  EXPECT_TRUE(b.take(1000, kT0 + 10, r));
  EXPECT_FALSE(b.take(1, kT0 + 10, r));
  EXPECT_FALSE(b.take(1, kT0 + 5, r)) << "a worker whose clock is behind refills nothing";
  EXPECT_EQ(b.charge(500, kT0 + 10, r), 5);
  b.give_back(500, r);
  EXPECT_EQ(b.units(), 0);
}

TEST(SharedTokenBucket, ThreadsTakeExactlyTheBucketBetweenThem) {
  // With a clock that stands still, four threads racing for 1-byte tokens get exactly the
  // depth in all: no token is lost or taken twice.
  const Rate r = make_rate(kBps, 500);
  SharedTokenBucket b;
  ASSERT_TRUE(b.take(0, kT0, r));  // primes it full
  std::atomic<int64_t> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      int64_t mine = 0;
      while (b.take(1, kT0, r)) ++mine;
      taken.fetch_add(mine);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(taken.load(), kBurstBytes);
  EXPECT_EQ(b.units(), 0);
}

/// A TurnServer (or two shards) counting in one UserLimits with counters.
struct CappedShards {
  explicit CappedShards(BandwidthConfig bw, uint32_t max_per_user = 100) : users(bw, &counters) {
    CoreConfig cfg;
    cfg.bandwidth = bw;
    cfg.max_allocations_per_user = max_per_user;
    for (Harness* h : {&a, &b}) {
      h->server = std::make_unique<TurnServer>(cfg, h->auth, h->nonces, h->policy, h->ports,
                                               &h->observer, &users);
    }
  }
  base::LimitCounters counters;
  UserLimits users;
  Harness a, b;
};

/// Allocates for `c` and binds channel 0x4000 to `peer`; returns the relay id.
RelayId allocate_with_channel(Harness& h, testing::Client& c, const Endpoint& peer) {
  h.allocate(c, kT0);
  EXPECT_EQ(h.channel_bind(c, 0x4000, peer, kT0).code(), 0);
  return *h.ports.open_ids.rbegin();
}

std::vector<uint8_t> channel_data(size_t payload) {
  std::vector<uint8_t> f(4 + payload, 0x5A);
  stun::write_channel_data_header(std::span<uint8_t, 4>(f.data(), 4), 0x4000,
                                  static_cast<uint16_t>(payload));
  return f;
}

bool relayed_to_peer(Harness& h, const testing::Client& c, size_t payload, TimeMs now) {
  return h.server->on_client_packet(c.tuple, channel_data(payload), now).kind == Output::Kind::kToPeer;
}

using testing::kPeer;

TEST(BandwidthCap, AllocationDropsWhatExceedsItsBucketAndCountsIt) {
  BandwidthConfig bw;
  bw.max_bps = kBps;
  bw.user_max_bps = 0;
  CappedShards s(bw);
  auto c = s.a.rest_client();
  allocate_with_channel(s.a, c, kPeer);
  // 65 packets of 1,000 bytes fit in the 65,536-byte bucket, the 66th does not.
  for (int i = 0; i < 65; ++i) ASSERT_TRUE(relayed_to_peer(s.a, c, 1000, kT0)) << i;
  EXPECT_FALSE(relayed_to_peer(s.a, c, 1000, kT0));
  EXPECT_EQ(s.counters.hits(base::Limit::kBandwidthAllocation), 1u);
  EXPECT_EQ(s.counters.bytes(base::Limit::kBandwidthAllocation), 1000u);
  // 536 bytes were left; 4 ms adds 400 (936: not enough), 5 ms 500 (1,036).
  EXPECT_FALSE(relayed_to_peer(s.a, c, 1000, kT0 + 4));
  EXPECT_TRUE(relayed_to_peer(s.a, c, 1000, kT0 + 5));
  EXPECT_EQ(s.counters.hits(base::Limit::kBandwidthAllocation), 2u);
}

TEST(BandwidthCap, EachDirectionHasItsOwnBucket) {
  BandwidthConfig bw;
  bw.max_bps = kBps;
  bw.user_max_bps = 0;
  CappedShards s(bw);
  auto c = s.a.rest_client();
  const RelayId relay = allocate_with_channel(s.a, c, kPeer);
  for (int i = 0; i < 65; ++i) ASSERT_TRUE(relayed_to_peer(s.a, c, 1000, kT0));
  ASSERT_FALSE(relayed_to_peer(s.a, c, 1000, kT0));
  // The peer-to-client bucket is untouched: a full bucket of 1,000-byte datagrams passes.
  const std::vector<uint8_t> payload(1000, 0x11);
  for (int i = 0; i < 65; ++i) {
    ASSERT_EQ(s.a.from_peer(relay, kPeer, payload, kT0).kind, Output::Kind::kToClient) << i;
  }
  EXPECT_EQ(s.a.from_peer(relay, kPeer, payload, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(s.counters.hits(base::Limit::kBandwidthAllocation), 2u);
}

TEST(BandwidthCap, UserCapIsSharedByItsAllocationsOnEveryShard) {
  BandwidthConfig bw;
  bw.max_bps = 0;
  bw.user_max_bps = kBps;
  CappedShards s(bw);
  auto on_a = s.a.rest_client("198.51.100.7:40000", "carol");
  auto on_b = s.b.rest_client("198.51.100.8:40000", "carol");
  allocate_with_channel(s.a, on_a, kPeer);
  allocate_with_channel(s.b, on_b, kPeer);
  // Two shards, one bucket: 33 + 32 packets of 1,000 bytes, then neither passes.
  for (int i = 0; i < 33; ++i) ASSERT_TRUE(relayed_to_peer(s.a, on_a, 1000, kT0)) << i;
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(relayed_to_peer(s.b, on_b, 1000, kT0)) << i;
  EXPECT_FALSE(relayed_to_peer(s.a, on_a, 1000, kT0));
  EXPECT_FALSE(relayed_to_peer(s.b, on_b, 1000, kT0));
  EXPECT_EQ(s.counters.hits(base::Limit::kBandwidthUser), 2u);
  EXPECT_EQ(s.counters.bytes(base::Limit::kBandwidthUser), 2000u);
  // Another user has a bucket of its own.
  auto dave = s.b.rest_client("198.51.100.9:40000", "dave");
  allocate_with_channel(s.b, dave, kPeer);
  EXPECT_TRUE(relayed_to_peer(s.b, dave, 1000, kT0));
}

TEST(BandwidthCap, TotalCapCoversEveryUserAndARefusalReturnsTheOtherTokens) {
  BandwidthConfig bw;
  bw.max_bps = kBps;
  bw.user_max_bps = 0;
  bw.total_max_bps = kBps;
  CappedShards s(bw);
  auto x = s.a.rest_client("198.51.100.7:40000", "x");
  auto y = s.b.rest_client("198.51.100.8:40000", "y");
  allocate_with_channel(s.a, x, kPeer);
  allocate_with_channel(s.b, y, kPeer);
  for (int i = 0; i < 65; ++i) ASSERT_TRUE(relayed_to_peer(s.a, x, 1000, kT0)) << i;
  EXPECT_FALSE(relayed_to_peer(s.b, y, 1000, kT0));
  EXPECT_EQ(s.counters.hits(base::Limit::kBandwidthTotal), 1u);
  EXPECT_EQ(s.counters.hits(base::Limit::kBandwidthAllocation), 0u);
  // y's own bucket got its 1,000 bytes back: after 10 ms (1,000 bytes for the total) y sends
  // 1,000 and its own bucket, still full, does not refuse.
  EXPECT_TRUE(relayed_to_peer(s.b, y, 1000, kT0 + 10));
}

TEST(BandwidthCap, UpdateLimitsAppliesToLiveAllocations) {
  BandwidthConfig bw;
  bw.max_bps = kBps;
  bw.user_max_bps = 0;
  CappedShards s(bw);
  auto c = s.a.rest_client();
  allocate_with_channel(s.a, c, kPeer);
  for (int i = 0; i < 65; ++i) ASSERT_TRUE(relayed_to_peer(s.a, c, 1000, kT0));
  ASSERT_FALSE(relayed_to_peer(s.a, c, 1000, kT0));
  CoreConfig next;
  next.bandwidth = bw;
  next.bandwidth.max_bps = 8'000'000;  // ten times the rate: 1,000 bytes per ms
  s.a.server->update_limits(next);
  EXPECT_TRUE(relayed_to_peer(s.a, c, 1000, kT0 + 1));
  EXPECT_FALSE(relayed_to_peer(s.a, c, 1000, kT0 + 1));
  next.bandwidth.max_bps = 0;  // off
  s.a.server->update_limits(next);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(relayed_to_peer(s.a, c, 1000, kT0 + 1));
}

TEST(BandwidthGate, ChargeAnswersTheLongestWaitAndCountsWhichCapBit) {
  base::LimitCounters counters;
  BandwidthConfig bw;
  bw.max_bps = 8'000'000;  // 1,000 bytes per ms
  bw.user_max_bps = kBps;  // 100 bytes per ms: the tighter
  UserLimits users(bw, &counters);
  QuotaRefusal why{};
  BandwidthGate gate(&bw, &users, users.acquire("u", 0, 0, &why));
  EXPECT_EQ(gate.charge(Direction::kToPeer, kBurstBytes, kT0), 0);
  EXPECT_EQ(gate.charge(Direction::kToPeer, 1000, kT0), 10);
  EXPECT_EQ(counters.hits(base::Limit::kBandwidthUser), 1u);
  EXPECT_EQ(counters.bytes(base::Limit::kBandwidthUser), 0u) << "pacing drops nothing";
  EXPECT_EQ(gate.charge(Direction::kToClient, 1000, kT0), 0) << "the other direction is free";
}

TEST(RandomSource, AFailingSourceFailsTheRequestInsteadOfGuessableTokens) {
  CoreConfig cfg;
  cfg.random_bytes = [](uint8_t*, size_t) { return false; };
  Harness h(cfg);
  auto c = h.rest_client();
  h.challenge(c, kT0);
  // EVEN-PORT with R=1 needs a RESERVATION-TOKEN: without randomness, 500 and no port kept.
  const auto r = h.request(c, stun::Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    b.add_bytes(stun::attr::kEvenPort, std::vector<uint8_t>{0x80});
  }, kT0);
  EXPECT_EQ(r.code(), 500);
  EXPECT_TRUE(h.ports.open_ids.empty());
  EXPECT_EQ(h.server->allocation_count(), 0u);
  // Without EVEN-PORT nothing random is needed: the Allocate succeeds.
  h.allocate(c, kT0);
  EXPECT_EQ(h.server->allocation_count(), 1u);
}

TEST(RandomSource, NoConnectionIdWithoutRandomness) {
  CoreConfig cfg;
  cfg.random_bytes = [](uint8_t*, size_t) { return false; };
  Harness h(cfg);
  auto c = testing::stream_client(h);
  const RelayAddress relay = testing::allocate_tcp(h, c);
  // RFC 6062 Connect: no CONNECTION-ID can be made, so 500 and no connection attempt.
  const auto r = h.request(c, stun::Method::kConnect, [](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, kPeer);
  }, kT0);
  EXPECT_EQ(r.code(), 500);
  EXPECT_TRUE(h.ports.connects.empty());
  // A peer connecting to the relay is refused (no ConnectionAttempt with a guessable id).
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  std::optional<ConnectionId> cid;
  EXPECT_EQ(h.server->on_peer_connection(relay.id, kPeer, kT0, &cid).kind, Output::Kind::kNone);
  EXPECT_FALSE(cid.has_value());
}

}  // namespace
}  // namespace callrelay::core
