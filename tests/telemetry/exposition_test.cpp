// Telemetry's exposition: names, types, labels and values of the aggregate metrics, driven
// through the worker observers with fake allocations.
#include <gtest/gtest.h>

#include "telemetry/telemetry.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

using testing::fake_allocation;
using testing::has_line;
using testing::relay;
using testing::sample_count;
using testing::value;

constexpr core::TimeMs kT0 = 1'700'000'000'000;

Telemetry make(unsigned workers = 2, TelemetryConfig cfg = {}) {
  ProcessProbes p;
  p.version = "1.2.3";
  p.started_at = kT0;
  return Telemetry(cfg, workers, p);
}

TEST(Exposition, EveryFamilyHasItsType) {
  Telemetry t = make();
  const std::string text = t.scrape_text(kT0);
  for (const char* line : {
           "# TYPE callrelay_build_info gauge",
           "# TYPE callrelay_uptime_seconds gauge",
           "# TYPE callrelay_worker_threads gauge",
           "# TYPE callrelay_open_fds gauge",
           "# TYPE callrelay_relay_ports_capacity gauge",
           "# TYPE callrelay_relayed_bytes_total counter",
           "# TYPE callrelay_relayed_packets_total counter",
           "# TYPE callrelay_allocations_active gauge",
           "# TYPE callrelay_allocations_created_total counter",
           "# TYPE callrelay_allocations_ended_total counter",
           "# TYPE callrelay_requests_total counter",
           "# TYPE callrelay_auth_failures_total counter",
           "# TYPE callrelay_allocations_by_secret_total counter",
           "# TYPE callrelay_peer_denials_total counter",
           "# TYPE callrelay_dropped_packets_total counter",
           "# TYPE callrelay_allocation_lifetime_seconds histogram",
           "# TYPE callrelay_allocation_traffic_bytes histogram",
           "# TYPE callrelay_allocation_mean_throughput_bytes_per_second histogram",
           "# TYPE callrelay_allocation_relayed_bytes_total counter",
           "# TYPE callrelay_allocation_relayed_packets_total counter",
           "# TYPE callrelay_allocation_throughput_bytes_per_second gauge",
           "# TYPE callrelay_allocation_series_cap_hits_total counter",
           "# TYPE callrelay_allocation_series_suppressed gauge",
       }) {
    EXPECT_TRUE(has_line(text, line)) << line << "\n" << text;
  }
}

TEST(Exposition, EventCountersWithBoundedLabels) {
  Telemetry t = make();
  core::Observer* w0 = t.observer_for_worker(0);
  core::Observer* w1 = t.observer_for_worker(1);
  w0->on_request(stun::Method::kAllocate, core::Transport::kUdp, 401);
  w1->on_request(stun::Method::kAllocate, core::Transport::kUdp, 401);
  w0->on_request(stun::Method::kAllocate, core::Transport::kUdp, 0);
  w0->on_request(stun::Method::kRefresh, core::Transport::kTcp, 437);
  // Codes and methods nobody defined all land in "other".
  for (uint16_t code = 600; code < 700; ++code) {
    w0->on_request(static_cast<stun::Method>(0x0FF), core::Transport::kUdp, code);
  }
  w0->on_auth_failure(core::AuthFailure::kStaleNonce);
  w1->on_auth_failure(core::AuthFailure::kStaleNonce);
  w0->on_peer_denied(core::PeerDenyReason::kLoopback);
  for (int i = 0; i < 3; ++i) w1->on_drop(core::DropReason::kNoPermission);
  const std::string text = t.scrape_text(kT0);
  EXPECT_TRUE(
      has_line(text, R"(callrelay_requests_total{code="401",method="allocate",transport="udp"} 2)"))
      << text;
  EXPECT_TRUE(has_line(
      text, R"(callrelay_requests_total{code="success",method="allocate",transport="udp"} 1)"));
  EXPECT_TRUE(
      has_line(text, R"(callrelay_requests_total{code="437",method="refresh",transport="tcp"} 1)"));
  EXPECT_TRUE(has_line(
      text, R"(callrelay_requests_total{code="other",method="other",transport="udp"} 100)"));
  EXPECT_EQ(sample_count(text, "callrelay_requests_total"), 4u);
  EXPECT_TRUE(has_line(text, R"(callrelay_auth_failures_total{reason="stale_nonce"} 2)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_auth_failures_total{reason="revoked"} 0)"));
  EXPECT_EQ(sample_count(text, "callrelay_auth_failures_total"), 6u);
  EXPECT_TRUE(has_line(text, R"(callrelay_peer_denials_total{reason="loopback"} 1)"));
  EXPECT_EQ(sample_count(text, "callrelay_peer_denials_total"), 11u);  // own_address too
  EXPECT_TRUE(has_line(text, R"(callrelay_dropped_packets_total{reason="no_permission"} 3)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_dropped_packets_total{reason="over_quota"} 0)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_dropped_packets_total{reason="ambiguous_peer"} 0)"));
  EXPECT_EQ(sample_count(text, "callrelay_dropped_packets_total"), 7u);
}

TEST(Exposition, ForwardsEveryEventToNext) {
  Telemetry t = make(1);
  testing::RecordingObserver next;
  core::Observer* o = t.observer_for_worker(0, &next);
  auto a = fake_allocation(1, "alice", kT0);
  o->on_allocation_created(*a);
  o->on_request(stun::Method::kAllocate, core::Transport::kUdp, 0);
  o->on_auth_failure(core::AuthFailure::kExpired);
  o->on_peer_denied(core::PeerDenyReason::kPrivate);
  o->on_drop(core::DropReason::kMalformed);
  o->on_allocation_ended(*a, core::EndReason::kRefreshZero, kT0 + 1000);
  EXPECT_EQ(next.created, 1);
  EXPECT_EQ(next.requests, 1);
  EXPECT_EQ(next.auth, 1);
  EXPECT_EQ(next.denied, 1);
  EXPECT_EQ(next.drops, 1);
  EXPECT_EQ(next.ended, 1);
  EXPECT_THROW(t.observer_for_worker(1), std::out_of_range);
}

TEST(Exposition, ActiveCreatedEndedBySecretTransportFamily) {
  Telemetry t = make();
  core::Observer* w0 = t.observer_for_worker(0);
  core::Observer* w1 = t.observer_for_worker(1);
  auto a = fake_allocation(1, "alice", kT0, core::Transport::kUdp, stun::Family::kIPv4);
  auto b = fake_allocation(1, "bob", kT0, core::Transport::kTcp, stun::Family::kIPv6);
  auto c = fake_allocation(2, "carol", kT0, core::Transport::kUdp, stun::Family::kIPv4);
  auto dual = fake_allocation(3, "dave", kT0, core::Transport::kUdp, stun::Family::kIPv4);
  dual->relayed_additional = *core::Endpoint::parse("[2001:db8::7]:50002");
  b->secret_index = 1;
  c->secret_index = -1;
  w0->on_allocation_created(*a);
  w1->on_allocation_created(*b);
  w0->on_allocation_created(*c);
  w0->on_allocation_created(*dual);
  w0->on_allocation_ended(*c, core::EndReason::kExpired, kT0 + 600'000);
  const std::string text = t.scrape_text(kT0 + 600'000);
  EXPECT_TRUE(has_line(text, R"(callrelay_allocations_active{family="ipv4",transport="udp"} 1)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(callrelay_allocations_active{family="ipv6",transport="tcp"} 1)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocations_active{family="ipv6",transport="udp"} 0)"));
  EXPECT_EQ(sample_count(text, "callrelay_allocations_active"), 9u);
  EXPECT_TRUE(
      has_line(text, R"(callrelay_allocations_created_total{family="ipv4",transport="udp"} 2)"));
  EXPECT_TRUE(
      has_line(text, R"(callrelay_allocations_created_total{family="ipv6",transport="tcp"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(callrelay_allocations_ended_total{family="ipv4",reason="expired",transport="udp"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(callrelay_allocations_ended_total{family="ipv4",reason="shutdown",transport="udp"} 0)"));
  EXPECT_TRUE(has_line(
      text,
      R"(callrelay_allocations_ended_total{family="ipv4",reason="call_ended",transport="udp"} 0)"));
  EXPECT_EQ(sample_count(text, "callrelay_allocations_ended_total"), 81u);
  EXPECT_TRUE(has_line(text, R"(callrelay_allocations_active{family="dual",transport="udp"} 1)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocations_by_secret_total{secret_index="0"} 2)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocations_by_secret_total{secret_index="1"} 1)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocations_by_secret_total{secret_index="static"} 1)"));
  w0->on_allocation_ended(*a, core::EndReason::kShutdown, kT0 + 700'000);
  w0->on_allocation_ended(*dual, core::EndReason::kTransportClosed, kT0 + 700'000);
  const std::string after = t.scrape_text(kT0 + 700'000);
  EXPECT_TRUE(has_line(
      after,
      R"(callrelay_allocations_ended_total{family="dual",reason="transport_closed",transport="udp"} 1)"))
      << after;
  EXPECT_TRUE(has_line(after, R"(callrelay_allocations_active{family="dual",transport="udp"} 0)"));
  w1->on_allocation_ended(*b, core::EndReason::kShutdown, kT0 + 700'000);
}

TEST(Exposition, AggregateTrafficIsLivePlusEndedAndMonotonic) {
  Telemetry t = make();
  core::Observer* w0 = t.observer_for_worker(0);
  core::Observer* w1 = t.observer_for_worker(1);
  const std::string c2p =
      R"(callrelay_relayed_bytes_total{direction="client_to_peer",transport="udp"})";
  const std::string p2c =
      R"(callrelay_relayed_bytes_total{direction="peer_to_client",transport="udp"})";
  const std::string pkts =
      R"(callrelay_relayed_packets_total{direction="client_to_peer",transport="udp"})";
  auto a = fake_allocation(1, "alice", kT0);
  auto b = fake_allocation(1, "bob", kT0);
  w0->on_allocation_created(*a);
  w1->on_allocation_created(*b);
  double last = 0;
  core::TimeMs now = kT0;
  // Traffic shows up while the allocations live, not only when they end.
  for (int round = 1; round <= 3; ++round) {
    relay(*a, 1000, 10, 2);
    relay(*b, 500, 5, 1);
    now += 1000;
    const std::string text = t.scrape_text(now);
    EXPECT_EQ(value(text, c2p), 1500.0 * round) << text;
    EXPECT_EQ(value(text, p2c), 15.0 * round);
    EXPECT_EQ(value(text, pkts), 3.0 * round);
    EXPECT_GE(*value(text, c2p), last);
    last = *value(text, c2p);
  }
  w0->on_allocation_ended(*a, core::EndReason::kRefreshZero, now);
  a.reset();  // the core destroys the AllocationInfo right after on_allocation_ended
  std::string text = t.scrape_text(now + 1000);
  EXPECT_EQ(value(text, c2p), 4500.0);
  relay(*b, 500, 5, 1);
  w1->on_allocation_ended(*b, core::EndReason::kExpired, now + 2000);
  b.reset();
  text = t.scrape_text(now + 3000);
  EXPECT_EQ(value(text, c2p), 5000.0);
  EXPECT_EQ(value(text, p2c), 50.0);
  EXPECT_EQ(value(text, pkts), 10.0);
  EXPECT_EQ(
      value(text, R"(callrelay_relayed_bytes_total{direction="client_to_peer",transport="tcp"})"),
      0.0);
}

TEST(Exposition, HistogramsObservedAtEnd) {
  Telemetry t = make(1);
  core::Observer* o = t.observer_for_worker(0);
  auto a = fake_allocation(1, "alice", kT0);
  o->on_allocation_created(*a);
  relay(*a, 600'000, 20'000);
  o->on_allocation_ended(*a, core::EndReason::kRefreshZero, kT0 + 61'500);
  auto b = fake_allocation(2, "bob", kT0);
  o->on_allocation_created(*b);
  o->on_allocation_ended(*b, core::EndReason::kRefreshZero, kT0);  // no time: no mean rate
  const std::string text = t.scrape_text(kT0 + 61'500);
  EXPECT_TRUE(has_line(text, "callrelay_allocation_lifetime_seconds_count 2")) << text;
  EXPECT_TRUE(has_line(text, "callrelay_allocation_lifetime_seconds_sum 61.5"));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocation_lifetime_seconds_bucket{le="1"} 1)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocation_lifetime_seconds_bucket{le="60"} 1)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocation_lifetime_seconds_bucket{le="300"} 2)"));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocation_lifetime_seconds_bucket{le="+Inf"} 2)"));
  EXPECT_TRUE(has_line(
      text, R"(callrelay_allocation_traffic_bytes_sum{direction="client_to_peer"} 600000)"));
  EXPECT_TRUE(has_line(
      text,
      R"(callrelay_allocation_traffic_bytes_bucket{direction="client_to_peer",le="100000"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(callrelay_allocation_traffic_bytes_bucket{direction="client_to_peer",le="1000000"} 2)"));
  EXPECT_TRUE(has_line(
      text,
      R"(callrelay_allocation_traffic_bytes_bucket{direction="peer_to_client",le="10000"} 1)"));
  EXPECT_TRUE(has_line(
      text,
      R"(callrelay_allocation_traffic_bytes_bucket{direction="peer_to_client",le="100000"} 2)"));
  // 620,000 bytes over 61.5 s: 10081.3 B/s.
  EXPECT_TRUE(has_line(text, "callrelay_allocation_mean_throughput_bytes_per_second_count 1"));
  EXPECT_TRUE(has_line(
      text, R"(callrelay_allocation_mean_throughput_bytes_per_second_bucket{le="4000"} 0)"));
  EXPECT_TRUE(has_line(
      text, R"(callrelay_allocation_mean_throughput_bytes_per_second_bucket{le="12500"} 1)"));
  EXPECT_NEAR(*value(text, "callrelay_allocation_mean_throughput_bytes_per_second_sum"),
              620'000 / 61.5, 0.01);
}

}  // namespace
}  // namespace callrelay::telemetry
