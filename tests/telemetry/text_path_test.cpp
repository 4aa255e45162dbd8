// The direct text writer for per-allocation series produces exactly what prometheus-cpp's
// TextSerializer writes for the same families (so scrape_text's fast path changes nothing),
// the media loss ratio and jitter series included.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include "telemetry/collector.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

constexpr core::TimeMs kT0 = 1'700'000'000'000;

std::string serialize(const std::vector<prometheus::MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

TEST(TextPath, SameBytesAsTheSerializer) {
  std::vector<std::unique_ptr<WorkerMetrics>> workers;
  workers.push_back(std::make_unique<WorkerMetrics>(0, 3));
  workers.push_back(std::make_unique<WorkerMetrics>(1, 3));
  TelemetryConfig cfg;
  cfg.per_allocation_max_series = 100;
  RelayCollector collector(cfg, workers);
  std::vector<std::unique_ptr<core::AllocationInfo>> allocs;
  const char* users[] = {"alice", "b\\o\"b", "", "j\xC3\xBCrgen", "x\ny"};
  for (uint64_t id = 1; id <= 10; ++id) {
    allocs.push_back(
        testing::fake_allocation(id, users[id % 5], kT0, static_cast<core::Transport>(id % 3)));
    workers[id % 2]->on_allocation_created(*allocs.back());
    // Sizes that make non-integer rates and values past 2^53.
    testing::relay(*allocs.back(), id * 1'000'003, id == 7 ? (uint64_t{1} << 60) + 1 : id * 7, id);
    // Relay-observed media: loss ratios and jitter that are not short decimals (some none).
    media::KindCounters& k = allocs.back()->media.write().kind[id % 2];
    k.expected.set(id % 4 == 0 ? 0 : 7 * id);
    k.received.set(id % 4 == 0 ? 0 : 5 * id);
    k.jitter_us.set(id * 333'333);
  }
  for (auto& w : workers) w->sample(kT0 + 3000);
  const std::string reference = serialize(collector.Collect());
  const CollectResult fast = collector.collect(true);
  ASSERT_TRUE(fast.series_pending);
  EXPECT_EQ(fast.series.size(), 10u);
  std::string text = serialize(fast.families);
  render_series_text(fast.series, text);
  EXPECT_EQ(text, reference);
  // And with nothing live (headers only).
  for (uint64_t id = 1; id <= 10; ++id) {
    workers[id % 2]->on_allocation_ended(*allocs[id - 1], core::EndReason::kShutdown, kT0 + 4000);
  }
  const CollectResult empty = collector.collect(true);
  text = serialize(empty.families);
  render_series_text(empty.series, text);
  EXPECT_EQ(text, serialize(collector.Collect()));
}

}  // namespace
}  // namespace callrelay::telemetry
