// What the registry keeps per live allocation: nothing but a pointer and two small indexes
// while the allocation relays nothing, a rate window once it does, and then exactly the
// throughput an eager window (one sample at the start and at every tick) would report.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "telemetry/rate_window.hpp"
#include "telemetry/worker_metrics.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

using testing::fake_allocation;
using testing::relay;

constexpr core::TimeMs kT0 = 1'700'000'000'000;

const LiveAllocation& entry(const WorkerMetrics& w, uint64_t id, const LiveAllocation** out) {
  w.with_state([&](const AllocationState& st) { *out = &st.live.at(id); });
  return **out;
}

std::array<double, 2> throughput(const WorkerMetrics& w, uint64_t id) {
  std::array<double, 2> r{};
  w.with_state([&](const AllocationState& st) { r = st.live.at(id).throughput(); });
  return r;
}

TEST(IdleState, EntryIsSmall) {
  std::printf("sizeof(LiveAllocation) = %zu, sizeof(ActiveRate) = %zu\n", sizeof(LiveAllocation),
              sizeof(ActiveRate));
  EXPECT_LE(sizeof(LiveAllocation), 24u);
}

TEST(IdleState, NoRateWindowUntilTrafficThenOne) {
  WorkerMetrics w(0, 5);
  auto a = fake_allocation(1, "alice", kT0);
  w.on_allocation_created(*a);
  const LiveAllocation* live = nullptr;
  for (int s = 1; s <= 20; ++s) w.sample(kT0 + s * 1000);
  EXPECT_EQ(entry(w, 1, &live).rate, nullptr);
  EXPECT_EQ(throughput(w, 1), (std::array<double, 2>{0, 0}));
  relay(*a, 3000, 1000);
  w.sample(kT0 + 21'000);
  EXPECT_NE(entry(w, 1, &live).rate, nullptr);
  // The window covers 5 s of zero samples before the bytes came: 3000 B over 5 s.
  EXPECT_DOUBLE_EQ(throughput(w, 1)[0], 600.0);
  EXPECT_DOUBLE_EQ(throughput(w, 1)[1], 200.0);
  w.on_allocation_ended(*a, core::EndReason::kExpired, kT0 + 22'000);
}

TEST(IdleState, TrafficBeforeRegistrationStartsTheWindowAtOnce) {
  WorkerMetrics w(0, 5);
  auto a = fake_allocation(1, "alice", kT0);
  relay(*a, 1000, 0);
  w.on_allocation_created(*a);
  const LiveAllocation* live = nullptr;
  EXPECT_NE(entry(w, 1, &live).rate, nullptr);
  relay(*a, 2000, 0);
  w.sample(kT0 + 1000);
  EXPECT_DOUBLE_EQ(throughput(w, 1)[0], 2000.0);
  w.on_allocation_ended(*a, core::EndReason::kExpired, kT0 + 1000);
}

/// Random tick times (jittered, some repeated, some going back), allocations created between
/// them and starting traffic at random ticks: every tick, each allocation's throughput equals
/// that of an eager RateWindow given its start and every tick since.
TEST(IdleState, LazyWindowMatchesAnEagerOne) {
  for (uint32_t window_s : {1u, 2u, 5u, 10u}) {
    std::mt19937 rng(window_s);
    WorkerMetrics w(0, window_s);
    struct Tracked {
      std::unique_ptr<core::AllocationInfo> info;
      RateWindow eager;
      int traffic_from = 0;  ///< tick index at which bytes start coming
    };
    std::vector<Tracked> tracked;
    core::TimeMs now = kT0;
    uint64_t next_id = 1;
    for (int tick = 0; tick < 200; ++tick) {
      // Ticks about a second apart on one monotonic clock, sometimes twice at the same time.
      if (rng() % 20 != 0) now += 700 + static_cast<core::TimeMs>(rng() % 700);
      if (rng() % 3 == 0) {
        // A worker reads the clock on its own: a start may be a little after the next tick's
        // time (that tick's sample is then older than the start and ignored).
        const core::TimeMs started = now + 100 - static_cast<core::TimeMs>(rng() % 1000);
        auto info = fake_allocation(next_id++, "u", started);
        w.on_allocation_created(*info);
        Tracked t{std::move(info), RateWindow(window_s), tick + static_cast<int>(rng() % 30)};
        t.eager.add(started, 0, 0);
        tracked.push_back(std::move(t));
      }
      for (Tracked& t : tracked) {
        if (tick >= t.traffic_from && rng() % 2 == 0) relay(*t.info, rng() % 5000, rng() % 300);
      }
      w.sample(now);
      for (Tracked& t : tracked) {
        t.eager.add(now, t.info->traffic.bytes_to_peer.get(), t.info->traffic.bytes_to_client.get());
        const std::array<double, 2> want = t.eager.bytes_per_second();
        const std::array<double, 2> got = throughput(w, t.info->id);
        ASSERT_DOUBLE_EQ(got[0], want[0]) << "window " << window_s << " tick " << tick << " id "
                                          << t.info->id;
        ASSERT_DOUBLE_EQ(got[1], want[1]);
      }
    }
    for (Tracked& t : tracked) w.on_allocation_ended(*t.info, core::EndReason::kExpired, now);
  }
}

}  // namespace
}  // namespace callrelay::telemetry
