// bench_scrape [allocations] [scrapes]: times Telemetry::scrape_text with `allocations` fake
// live allocations (default 10,000) spread over 2 worker observers, once with the default
// per-allocation series cap (1,000) and once with the cap at the allocation count (every
// allocation exported), and prints the median and p99 in milliseconds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "telemetry/telemetry.hpp"

namespace {

using namespace callrelay;
constexpr core::TimeMs kT0 = 1'700'000'000'000;

struct Result {
  double median_ms, p99_ms;
  double tick_median_ms;
  size_t bytes;
};

double percentile(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

Result run(size_t allocations, int scrapes, size_t max_series) {
  telemetry::TelemetryConfig cfg;
  cfg.per_allocation_max_series = max_series;
  telemetry::ProcessProbes probes;
  probes.version = "bench";
  probes.relay_ports_total = 16384;
  probes.relay_ports_in_use = [allocations] { return static_cast<uint64_t>(allocations); };
  probes.started_at = kT0;
  telemetry::Telemetry t(cfg, 2, probes);
  std::vector<std::unique_ptr<core::AllocationInfo>> live;
  live.reserve(allocations);
  std::mt19937_64 rng(42);
  for (size_t i = 0; i < allocations; ++i) {
    auto a = std::make_unique<core::AllocationInfo>();
    a->id = i / 2 + 1;
    a->user_id = "user" + std::to_string(i % 5000);
    a->username = "1700000000:" + a->user_id;
    a->realm = "example.org";
    a->started = kT0;
    t.observer_for_worker(static_cast<unsigned>(i % 2))->on_allocation_created(*a);
    live.push_back(std::move(a));
  }
  std::vector<double> ms, tick_ms;
  size_t bytes = 0;
  for (int s = 0; s < scrapes; ++s) {
    const core::TimeMs now = kT0 + (s + 1) * 1000;
    for (auto& a : live) {  // about 50 packets a second each way, of 100..1200 bytes
      a->traffic.bytes_to_peer.add(50 * (100 + rng() % 1100));
      a->traffic.packets_to_peer.add(50);
      a->traffic.bytes_to_client.add(50 * (100 + rng() % 1100));
      a->traffic.packets_to_client.add(50);
    }
    const auto tick_start = std::chrono::steady_clock::now();
    t.tick(now);
    tick_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - tick_start)
            .count());
    const auto start = std::chrono::steady_clock::now();
    const std::string text = t.scrape_text(now);
    const auto end = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    bytes = text.size();
  }
  for (size_t i = 0; i < live.size(); ++i) {
    t.observer_for_worker(static_cast<unsigned>(i % 2))
        ->on_allocation_ended(*live[i], core::EndReason::kShutdown, kT0 + (scrapes + 1) * 1000);
  }
  const double median = percentile(ms, 0.5);
  return {median, percentile(ms, 0.99), percentile(tick_ms, 0.5), bytes};
}

}  // namespace

int main(int argc, char** argv) {
  const size_t allocations = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10'000;
  const int scrapes = argc > 2 ? std::atoi(argv[2]) : 50;
  if (allocations == 0 || scrapes <= 0) {
    std::fprintf(stderr, "usage: bench_scrape [allocations>0] [scrapes>0]\n");
    return 2;
  }
  std::printf("scrape_text, %zu live allocations on 2 workers, %d scrapes (target < 50 ms)\n",
              allocations, scrapes);
  for (const size_t cap : {size_t{1000}, allocations}) {
    const Result r = run(allocations, scrapes, cap);
    std::printf(
        "  max_series %6zu: median %7.2f ms  p99 %7.2f ms  (%zu bytes of exposition); "
        "tick median %.2f ms\n",
        cap, r.median_ms, r.p99_ms, r.bytes, r.tick_median_ms);
  }
  return 0;
}
