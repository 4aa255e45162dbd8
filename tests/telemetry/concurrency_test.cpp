// A worker thread creates, feeds and ends allocations while the test thread ticks and scrapes:
// the aggregates never go backwards and end exact. (No timing: fixed iteration counts; the
// sanitizer build checks the memory accesses.)
#include <gtest/gtest.h>

#include <thread>

#include "telemetry/telemetry.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

constexpr core::TimeMs kT0 = 1'700'000'000'000;

TEST(Concurrency, ScrapesDuringAllocationChurnStayMonotonic) {
  TelemetryConfig cfg;
  cfg.per_allocation_max_series = 5;
  Telemetry t(cfg, 1, ProcessProbes{});
  core::Observer* o = t.observer_for_worker(0);
  constexpr int kAllocations = 2000;
  std::thread worker([o] {
    std::vector<std::unique_ptr<core::AllocationInfo>> live;
    for (int i = 1; i <= kAllocations; ++i) {
      live.push_back(testing::fake_allocation(static_cast<uint64_t>(i), "u", kT0));
      o->on_allocation_created(*live.back());
      for (auto& a : live) testing::relay(*a, 10, 1);
      if (live.size() == 8) {  // end the oldest: the core destroys it right after
        o->on_allocation_ended(*live.front(), core::EndReason::kExpired, kT0 + i);
        live.erase(live.begin());
      }
    }
    for (auto& a : live) o->on_allocation_ended(*a, core::EndReason::kShutdown, kT0 + 1'000'000);
  });
  const std::string bytes =
      R"(callrelay_relayed_bytes_total{direction="client_to_peer",transport="udp"})";
  double last = 0;
  for (int s = 0; s < 200; ++s) {
    t.tick(kT0 + s * 1000);
    const std::string text = t.scrape_text(kT0 + s * 1000);
    const auto v = testing::value(text, bytes);
    ASSERT_TRUE(v.has_value()) << text;
    EXPECT_GE(*v, last);
    last = *v;
    EXPECT_LE(testing::sample_count(text, "callrelay_allocation_relayed_bytes_total"), 10u);
  }
  worker.join();
  // Each allocation i gets 10 bytes for each later iteration it is live in (8 at most).
  uint64_t expected = 0;
  for (int i = 1; i <= kAllocations; ++i) {
    const int last_iteration = std::min(kAllocations, i + 7);
    expected += 10u * static_cast<uint64_t>(last_iteration - i + 1);
  }
  const std::string text = t.scrape_text(kT0 + 2'000'000);
  EXPECT_EQ(testing::value(text, bytes), static_cast<double>(expected));
  EXPECT_TRUE(
      testing::has_line(text, R"(callrelay_allocations_active{family="ipv4",transport="udp"} 0)"));
}

}  // namespace
}  // namespace callrelay::telemetry
