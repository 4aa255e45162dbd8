// Live per-allocation series: present while the allocation lives, growing, gone after it ends,
// labelled with the REST user id, capped by max_series (biggest by throughput kept), and off
// when disabled.
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
constexpr const char* kBytes = "callrelay_allocation_relayed_bytes_total";
constexpr const char* kPackets = "callrelay_allocation_relayed_packets_total";
constexpr const char* kRate = "callrelay_allocation_throughput_bytes_per_second";

Telemetry make(TelemetryConfig cfg, unsigned workers = 2) {
  ProcessProbes p;
  p.version = "test";
  p.started_at = kT0;
  return Telemetry(cfg, workers, p);
}

std::string series(const char* name, const std::string& id, const char* direction,
                   const std::string& user, const char* transport = "udp") {
  return std::string(name) + "{allocation_id=\"" + id + "\",direction=\"" + direction +
         "\",transport=\"" + transport + "\",user=\"" + user + "\"}";
}

TEST(PerAllocation, SeriesGrowWhileLiveAndVanishAtEnd) {
  Telemetry t = make({});
  core::Observer* o = t.observer_for_worker(1);
  auto a = fake_allocation(7, "alice", kT0, core::Transport::kTcp);
  o->on_allocation_created(*a);
  relay(*a, 1000, 3000, 4);
  std::string text = t.scrape_text(kT0 + 1000);
  EXPECT_TRUE(has_line(text, series(kBytes, "1-7", "client_to_peer", "alice", "tcp") + " 1000"))
      << text;
  EXPECT_TRUE(has_line(text, series(kBytes, "1-7", "peer_to_client", "alice", "tcp") + " 3000"));
  EXPECT_TRUE(has_line(text, series(kPackets, "1-7", "client_to_peer", "alice", "tcp") + " 4"));
  EXPECT_TRUE(has_line(text, series(kPackets, "1-7", "peer_to_client", "alice", "tcp") + " 4"));
  relay(*a, 500, 0, 1);
  text = t.scrape_text(kT0 + 2000);
  EXPECT_TRUE(has_line(text, series(kBytes, "1-7", "client_to_peer", "alice", "tcp") + " 1500"));
  EXPECT_TRUE(has_line(text, series(kPackets, "1-7", "client_to_peer", "alice", "tcp") + " 5"));
  o->on_allocation_ended(*a, core::EndReason::kRefreshZero, kT0 + 2500);
  a.reset();
  text = t.scrape_text(kT0 + 3000);
  EXPECT_EQ(text.find("allocation_id=\"1-7\""), std::string::npos) << text;
  EXPECT_EQ(sample_count(text, kBytes), 0u);
  EXPECT_TRUE(has_line(text, "callrelay_allocation_series_suppressed 0"));
}

TEST(PerAllocation, ThroughputFromTickSamples) {
  Telemetry t = make({true, 1000, 5});
  core::Observer* o = t.observer_for_worker(0);
  auto a = fake_allocation(1, "alice", kT0);
  o->on_allocation_created(*a);
  std::string text = t.scrape_text(kT0);
  EXPECT_TRUE(has_line(text, series(kRate, "0-1", "client_to_peer", "alice") + " 0")) << text;
  relay(*a, 2000, 500);
  t.tick(kT0 + 1000);  // the first sample is the allocation's start
  text = t.scrape_text(kT0 + 1000);
  EXPECT_TRUE(has_line(text, series(kRate, "0-1", "client_to_peer", "alice") + " 2000")) << text;
  EXPECT_TRUE(has_line(text, series(kRate, "0-1", "peer_to_client", "alice") + " 500"));
  for (int s = 2; s <= 10; ++s) t.tick(kT0 + s * 1000);  // idle: the window forgets the burst
  text = t.scrape_text(kT0 + 10'000);
  EXPECT_TRUE(has_line(text, series(kRate, "0-1", "client_to_peer", "alice") + " 0")) << text;
  o->on_allocation_ended(*a, core::EndReason::kExpired, kT0 + 10'000);
}

TEST(PerAllocation, UserLabelIsTheRestUserIdOnly) {
  Telemetry t = make({});
  core::Observer* o = t.observer_for_worker(0);
  auto a = fake_allocation(1, "alice", kT0);
  ASSERT_EQ(a->username, "1700000000:alice");
  o->on_allocation_created(*a);
  const std::string text = t.scrape_text(kT0);
  EXPECT_TRUE(has_line(text, series(kBytes, "0-1", "client_to_peer", "alice") + " 0")) << text;
  EXPECT_EQ(text.find("1700000000"), std::string::npos);
  o->on_allocation_ended(*a, core::EndReason::kExpired, kT0);
}

TEST(PerAllocation, CapKeepsTheBiggestByThroughputAndCountsHits) {
  TelemetryConfig cfg;
  cfg.per_allocation_max_series = 3;
  Telemetry t = make(cfg);
  std::vector<std::unique_ptr<core::AllocationInfo>> allocs;
  // Six allocations over two workers; throughput 100 * id bytes/s one way or the other.
  for (uint64_t id = 1; id <= 6; ++id) {
    allocs.push_back(fake_allocation(id, "u" + std::to_string(id), kT0));
    t.observer_for_worker(id % 2)->on_allocation_created(*allocs.back());
    if (id % 3 == 0) {
      relay(*allocs.back(), 0, 100 * id);
    } else {
      relay(*allocs.back(), 100 * id, 0);
    }
  }
  t.tick(kT0 + 1000);
  std::string text = t.scrape_text(kT0 + 1000);
  EXPECT_EQ(sample_count(text, kBytes), 6u) << text;  // 3 allocations x 2 directions
  EXPECT_EQ(sample_count(text, kRate), 6u);
  for (uint64_t id : {4, 5, 6}) {
    const std::string aid = std::to_string(id % 2) + "-" + std::to_string(id);
    EXPECT_NE(text.find("allocation_id=\"" + aid + "\""), std::string::npos) << aid << text;
  }
  for (uint64_t id : {1, 2, 3}) {
    const std::string aid = std::to_string(id % 2) + "-" + std::to_string(id);
    EXPECT_EQ(text.find("allocation_id=\"" + aid + "\""), std::string::npos) << aid;
  }
  EXPECT_TRUE(has_line(text, "callrelay_allocation_series_suppressed 3"));
  EXPECT_TRUE(has_line(text, "callrelay_allocation_series_cap_hits_total 1"));
  // Allocation 1 becomes the busiest: it takes a place.
  relay(*allocs[0], 100'000, 0);
  t.tick(kT0 + 2000);
  text = t.scrape_text(kT0 + 2000);
  EXPECT_NE(text.find("allocation_id=\"1-1\""), std::string::npos) << text;
  EXPECT_EQ(text.find("allocation_id=\"0-4\""), std::string::npos);
  EXPECT_TRUE(has_line(text, "callrelay_allocation_series_cap_hits_total 2"));
  // Aggregates still count every allocation.
  EXPECT_EQ(
      value(text, R"(callrelay_relayed_bytes_total{direction="client_to_peer",transport="udp"})"),
      100'000.0 + 100 * (1 + 2 + 4 + 5));
  EXPECT_TRUE(has_line(text, R"(callrelay_allocations_active{family="ipv4",transport="udp"} 6)"));
  // Back under the cap: no more hits, nothing suppressed.
  for (uint64_t id = 1; id <= 3; ++id) {
    t.observer_for_worker(id % 2)->on_allocation_ended(*allocs[id - 1], core::EndReason::kExpired,
                                                       kT0 + 3000);
  }
  text = t.scrape_text(kT0 + 3000);
  EXPECT_EQ(sample_count(text, kBytes), 6u);
  EXPECT_TRUE(has_line(text, "callrelay_allocation_series_suppressed 0"));
  EXPECT_TRUE(has_line(text, "callrelay_allocation_series_cap_hits_total 2"));
  for (uint64_t id = 4; id <= 6; ++id) {
    t.observer_for_worker(id % 2)->on_allocation_ended(*allocs[id - 1], core::EndReason::kExpired,
                                                       kT0 + 3000);
  }
}

TEST(PerAllocation, DisabledExportsNoSeriesButKeepsAggregates) {
  TelemetryConfig cfg;
  cfg.per_allocation_enabled = false;
  Telemetry t = make(cfg);
  core::Observer* o = t.observer_for_worker(0);
  auto a = fake_allocation(1, "alice", kT0);
  o->on_allocation_created(*a);
  relay(*a, 1000, 1000);
  t.tick(kT0 + 1000);
  const std::string text = t.scrape_text(kT0 + 1000);
  EXPECT_EQ(text.find("callrelay_allocation_relayed"), std::string::npos) << text;
  EXPECT_EQ(text.find(kRate), std::string::npos);
  EXPECT_EQ(text.find("callrelay_allocation_series_"), std::string::npos);
  EXPECT_EQ(text.find("alice"), std::string::npos);
  EXPECT_TRUE(has_line(
      text, R"(callrelay_relayed_bytes_total{direction="client_to_peer",transport="udp"} 1000)"));
  o->on_allocation_ended(*a, core::EndReason::kExpired, kT0 + 1000);
}

TEST(PerAllocation, HostileUserIdsStayOneValidLabel) {
  Telemetry t = make({});
  core::Observer* o = t.observer_for_worker(0);
  auto a = fake_allocation(1, "ev\"il\n\xFF}", kT0);
  o->on_allocation_created(*a);
  const std::string text = t.scrape_text(kT0);
  EXPECT_TRUE(
      has_line(text, series(kBytes, "0-1", "client_to_peer", "ev\\\"il?\xEF\xBF\xBD}") + " 0"))
      << text;
  o->on_allocation_ended(*a, core::EndReason::kExpired, kT0);
}

}  // namespace
}  // namespace callrelay::telemetry
