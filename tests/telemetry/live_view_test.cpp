// The operator's view of live allocations (Telemetry::live_allocations): every allocation of
// every worker, never capped, with what was copied at creation (user, client, relayed
// addresses, call), bytes and rate, and relay-observed quality once media was expected.
#include <gtest/gtest.h>

#include "telemetry/telemetry.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

using testing::fake_allocation;
using testing::relay;

constexpr core::TimeMs kT0 = 1'700'000'000'000;

Telemetry make(TelemetryConfig cfg, unsigned workers = 2) {
  ProcessProbes p;
  p.version = "test";
  p.started_at = kT0;
  return Telemetry(cfg, workers, p);
}

TEST(LiveView, EveryAllocationOfEveryWorkerSortedById) {
  TelemetryConfig cfg;
  cfg.per_allocation_max_series = 1;  // the Prometheus cap does not apply here
  Telemetry t = make(cfg);
  auto a = fake_allocation(12, "alice", kT0);
  auto b = fake_allocation(3, "bob", kT0, core::Transport::kTcp, stun::Family::kIPv6);
  auto c = fake_allocation(7, "carol", kT0, core::Transport::kTls);
  b->relayed_additional = *core::Endpoint::parse("203.0.113.9:50002");
  c->call_id = "c_AAAAAAAAAAAAAAAAAAAAAA";
  t.observer_for_worker(1)->on_allocation_created(*a);
  t.observer_for_worker(0)->on_allocation_created(*b);
  t.observer_for_worker(1)->on_allocation_created(*c);

  const auto live = t.live_allocations(kT0 + 2500);
  ASSERT_EQ(live.size(), 3u);
  EXPECT_EQ(live[0].id, "0-3");
  EXPECT_EQ(live[1].id, "1-7");
  EXPECT_EQ(live[2].id, "1-12");  // numeric order, not text order

  EXPECT_EQ(live[0].user, "bob");
  EXPECT_EQ(live[0].transport, "tcp");
  EXPECT_EQ(live[0].family, "dual");
  EXPECT_EQ(live[0].client, "192.0.2.1:40003");
  ASSERT_EQ(live[0].relayed.size(), 2u);
  EXPECT_EQ(live[0].relayed[0], "[2001:db8::1]:50000");
  EXPECT_EQ(live[0].relayed[1], "203.0.113.9:50002");
  EXPECT_EQ(live[0].call_id, "");
  EXPECT_DOUBLE_EQ(live[0].age_s, 2.5);
  EXPECT_EQ(live[1].transport, "tls");
  EXPECT_EQ(live[1].call_id, "c_AAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(live[2].family, "ipv4");

  const LiveCounts counts = t.live_counts();
  EXPECT_EQ(counts.total, 3u);
  EXPECT_EQ(counts.by_transport[0], 1u);
  EXPECT_EQ(counts.by_transport[1], 1u);
  EXPECT_EQ(counts.by_transport[2], 1u);

  t.observer_for_worker(1)->on_allocation_ended(*a, core::EndReason::kExpired, kT0 + 3000);
  EXPECT_EQ(t.live_allocations(kT0 + 3000).size(), 2u);
  EXPECT_EQ(t.live_counts().total, 2u);
  t.observer_for_worker(0)->on_allocation_ended(*b, core::EndReason::kExpired, kT0 + 3000);
  t.observer_for_worker(1)->on_allocation_ended(*c, core::EndReason::kExpired, kT0 + 3000);
  EXPECT_TRUE(t.live_allocations(kT0 + 3000).empty());
}

TEST(LiveView, BytesAndRatesAlsoWithTheSeriesTurnedOff) {
  TelemetryConfig cfg;
  cfg.per_allocation_enabled = false;  // no Prometheus series; the operator still sees rates
  cfg.bitrate_window_s = 5;
  Telemetry t = make(cfg, 1);
  auto a = fake_allocation(1, "alice", kT0);
  t.observer_for_worker(0)->on_allocation_created(*a);
  relay(*a, 4000, 2000);
  t.tick(kT0 + 2000);
  const auto live = t.live_allocations(kT0 + 2000);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].bytes[0], 4000u);
  EXPECT_EQ(live[0].bytes[1], 2000u);
  EXPECT_DOUBLE_EQ(live[0].rate[0], 2000.0);
  EXPECT_DOUBLE_EQ(live[0].rate[1], 1000.0);
  t.observer_for_worker(0)->on_allocation_ended(*a, core::EndReason::kExpired, kT0 + 2000);
}

TEST(LiveView, QualityOnlyOnceMediaWasExpected) {
  Telemetry t = make({}, 1);
  auto a = fake_allocation(1, "alice", kT0);
  t.observer_for_worker(0)->on_allocation_created(*a);
  EXPECT_FALSE(t.live_allocations(kT0).at(0).quality.has_value());
  media::KindCounters& audio = a->media.write().kind[static_cast<size_t>(media::Kind::kAudio)];
  audio.expected.set(200);
  audio.received.set(190);
  audio.jitter_us.set(3200);
  const auto q = t.live_allocations(kT0).at(0).quality;
  ASSERT_TRUE(q.has_value());
  EXPECT_DOUBLE_EQ(q->loss_ratio, 0.05);
  EXPECT_DOUBLE_EQ(q->jitter_ms, 3.2);
  t.observer_for_worker(0)->on_allocation_ended(*a, core::EndReason::kExpired, kT0);
}

}  // namespace
}  // namespace callrelay::telemetry
