// Relay-observed media in telemetry: the per-allocation loss ratio and jitter series (under the
// series cap, in both renderings), and CallTraffic's per-call media by user with ended
// allocations folded in. The media counters are set by hand as the monitor would publish them.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include "telemetry/call_traffic.hpp"
#include "telemetry/collector.hpp"
#include "telemetry/telemetry.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

using testing::fake_allocation;
using testing::has_line;
using testing::sample_count;

constexpr core::TimeMs kT0 = 1'700'000'000'000;
constexpr char kCallA[] = "c_AAAAAAAAAAAAAAAAAAAAAA";
constexpr size_t kAudio = static_cast<size_t>(media::Kind::kAudio);
constexpr size_t kVideo = static_cast<size_t>(media::Kind::kVideo);
constexpr const char* kLoss = "callrelay_allocation_media_loss_ratio";
constexpr const char* kJitter = "callrelay_allocation_media_jitter_seconds";

/// Media of one kind as the monitor publishes it.
void set_kind(core::AllocationInfo& a, size_t kind, uint64_t expected, uint64_t received,
              uint64_t jitter_us) {
  media::KindCounters& k = a.media.write().kind[kind];
  k.expected.set(expected);
  k.received.set(received);
  k.jitter_us.set(jitter_us);
  k.packets.set(received);
}

/// One round-trip sample more on a leg.
void rtt_sample(media::Relaxed& value, media::Relaxed& samples, uint64_t us) {
  value.set(us);
  samples.add(1);
}

std::string series(const char* name, const std::string& id, const std::string& user) {
  return std::string(name) + "{allocation_id=\"" + id +
         "\",direction=\"client_to_peer\",transport=\"udp\",user=\"" + user + "\"}";
}

Telemetry make(TelemetryConfig cfg) {
  ProcessProbes p;
  p.version = "test";
  p.started_at = kT0;
  return Telemetry(cfg, 1, p);
}

TEST(MediaSeries, LossRatioOverBothKindsAndTheWorstJitter) {
  Telemetry t = make({});
  core::Observer* o = t.observer_for_worker(0);
  auto a = fake_allocation(3, "alice", kT0);
  auto quiet = fake_allocation(4, "bob", kT0);
  o->on_allocation_created(*a);
  o->on_allocation_created(*quiet);
  set_kind(*a, kAudio, 1000, 990, 4000);   // 10 lost, 4 ms
  set_kind(*a, kVideo, 3000, 2950, 12500);  // 50 lost, 12.5 ms
  const std::string text = t.scrape_text(kT0 + 1000);
  EXPECT_TRUE(has_line(text, series(kLoss, "0-3", "alice") + " 0.015")) << text;
  EXPECT_TRUE(has_line(text, series(kJitter, "0-3", "alice") + " 0.0125")) << text;
  // Nothing expected yet: 0, not NaN.
  EXPECT_TRUE(has_line(text, series(kLoss, "0-4", "bob") + " 0")) << text;
  EXPECT_TRUE(has_line(text, series(kJitter, "0-4", "bob") + " 0")) << text;
  EXPECT_TRUE(has_line(text, std::string("# TYPE ") + kLoss + " gauge"));
  EXPECT_TRUE(has_line(text, std::string("# TYPE ") + kJitter + " gauge"));
  // Gone with the allocation.
  o->on_allocation_ended(*a, core::EndReason::kRefreshZero, kT0 + 2000);
  const std::string after = t.scrape_text(kT0 + 3000);
  EXPECT_EQ(after.find("allocation_id=\"0-3\""), std::string::npos);
  EXPECT_EQ(sample_count(after, kLoss), 1u);
}

TEST(MediaSeries, UnderTheSameCapAsTheOtherSeries) {
  TelemetryConfig cfg;
  cfg.per_allocation_max_series = 2;
  Telemetry t = make(cfg);
  core::Observer* o = t.observer_for_worker(0);
  std::vector<std::unique_ptr<core::AllocationInfo>> allocs;
  for (uint64_t id = 1; id <= 5; ++id) {
    allocs.push_back(fake_allocation(id, "u" + std::to_string(id), kT0));
    o->on_allocation_created(*allocs.back());
    set_kind(*allocs.back(), kAudio, 100, 100 - id, 1000 * id);
  }
  const std::string text = t.scrape_text(kT0 + 1000);
  EXPECT_EQ(sample_count(text, kLoss), 2u);
  EXPECT_EQ(sample_count(text, kJitter), 2u);
  EXPECT_EQ(sample_count(text, "callrelay_allocation_relayed_bytes_total"), 4u);
  EXPECT_TRUE(has_line(text, "callrelay_allocation_series_suppressed 3"));
}

TEST(MediaSeries, TextWriterMatchesTheSerializerWithMedia) {
  std::vector<std::unique_ptr<WorkerMetrics>> workers;
  workers.push_back(std::make_unique<WorkerMetrics>(0, 3));
  TelemetryConfig cfg;
  RelayCollector collector(cfg, workers);
  std::vector<std::unique_ptr<core::AllocationInfo>> allocs;
  for (uint64_t id = 1; id <= 6; ++id) {
    allocs.push_back(fake_allocation(id, id % 2 ? "alice" : "b\"ob", kT0));
    workers[0]->on_allocation_created(*allocs.back());
    // Ratios that are not short decimals, jitter in odd microseconds, and nothing at all.
    if (id != 6) set_kind(*allocs.back(), id % 2 ? kAudio : kVideo, 3 * id, 2 * id, 1234567 * id);
  }
  const std::string reference = prometheus::TextSerializer().Serialize(collector.Collect());
  const CollectResult fast = collector.collect(true);
  std::string text = prometheus::TextSerializer().Serialize(fast.families);
  render_series_text(fast.series, text);
  EXPECT_EQ(text, reference);
  EXPECT_EQ(sample_count(text, kLoss), 6u);
  EXPECT_EQ(sample_count(text, kJitter), 6u);
}

std::unique_ptr<core::AllocationInfo> call_allocation(uint64_t id, const std::string& user) {
  auto a = fake_allocation(id, user, kT0);
  a->call_id = kCallA;
  a->username = "1700003600:" + user + ":call=" + kCallA;
  return a;
}

TEST(CallMedia, SumsByUserWithEndedAllocationsFoldedIn) {
  CallTraffic t;
  auto alice1 = call_allocation(1, "alice");
  auto alice2 = call_allocation(2, "alice");
  auto bob = call_allocation(3, "bob");
  for (auto* a : {alice1.get(), alice2.get(), bob.get()}) t.on_allocation_created(*a);

  CallMediaTotals m = t.media(kCallA, "alice", "bob");
  EXPECT_EQ(m.caller.kind[kAudio].expected, 0u);
  EXPECT_EQ(m.caller.kind[kAudio].jitter_us, -1);  // no media yet
  EXPECT_EQ(m.caller.rtt_client_us, -1);
  EXPECT_EQ(m.callee.rtt_peer_us, -1);

  set_kind(*alice1, kAudio, 500, 490, 3000);
  set_kind(*alice2, kAudio, 100, 100, 9000);
  set_kind(*alice2, kVideo, 2000, 1900, 20000);
  set_kind(*bob, kAudio, 400, 400, 1000);
  rtt_sample(alice1->media.write().rtt_client_us, alice1->media.write().rtt_client_samples, 30'000);
  rtt_sample(alice1->media.write().rtt_peer_us, alice1->media.write().rtt_peer_samples, 40'000);
  m = t.media(kCallA, "alice", "bob");
  EXPECT_EQ(m.caller.kind[kAudio].expected, 600u);
  EXPECT_EQ(m.caller.kind[kAudio].received, 590u);
  EXPECT_EQ(m.caller.kind[kAudio].jitter_us, 9000);  // the worst live one
  EXPECT_EQ(m.caller.kind[kVideo].expected, 2000u);
  EXPECT_EQ(m.caller.kind[kVideo].jitter_us, 20000);
  EXPECT_EQ(m.caller.rtt_client_us, 30'000);
  EXPECT_EQ(m.caller.rtt_peer_us, 40'000);
  EXPECT_EQ(m.callee.kind[kAudio].expected, 400u);
  EXPECT_EQ(m.callee.kind[kVideo].jitter_us, -1);
  EXPECT_EQ(m.callee.rtt_client_us, -1);

  // alice2 takes a newer sample: the most recent one wins, though alice1's is still there.
  rtt_sample(alice2->media.write().rtt_client_us, alice2->media.write().rtt_client_samples, 50'000);
  m = t.media(kCallA, "alice", "bob");
  EXPECT_EQ(m.caller.rtt_client_us, 50'000);
  EXPECT_EQ(m.caller.rtt_peer_us, 40'000);

  // alice2 ends: its counts stay (monotonic), its jitter no longer (not live); its round trip
  // is still the most recent one seen.
  t.on_allocation_ended(*alice2, core::EndReason::kRefreshZero, kT0 + 5000);
  alice2.reset();
  m = t.media(kCallA, "alice", "bob");
  EXPECT_EQ(m.caller.kind[kAudio].expected, 600u);
  EXPECT_EQ(m.caller.kind[kAudio].received, 590u);
  EXPECT_EQ(m.caller.kind[kAudio].jitter_us, 3000);
  EXPECT_EQ(m.caller.kind[kVideo].expected, 2000u);
  EXPECT_EQ(m.caller.kind[kVideo].received, 1900u);
  EXPECT_EQ(m.caller.kind[kVideo].jitter_us, -1);
  EXPECT_EQ(m.caller.rtt_client_us, 50'000);

  // A later sample of the live allocation takes over again.
  rtt_sample(alice1->media.write().rtt_client_us, alice1->media.write().rtt_client_samples, 35'000);
  set_kind(*alice1, kAudio, 700, 680, 2000);
  m = t.media(kCallA, "alice", "bob");
  EXPECT_EQ(m.caller.rtt_client_us, 35'000);
  EXPECT_EQ(m.caller.kind[kAudio].expected, 800u);
  EXPECT_EQ(m.caller.kind[kAudio].received, 780u);

  // Sides swapped, a stranger, an unknown call.
  EXPECT_EQ(t.media(kCallA, "bob", "alice").callee.kind[kAudio].expected, 800u);
  EXPECT_EQ(t.media(kCallA, "carol", "dave").caller.kind[kAudio].expected, 0u);
  EXPECT_EQ(t.media("c_CCCCCCCCCCCCCCCCCCCCCC", "alice", "bob").caller.rtt_client_us, -1);

  // Forgotten: nothing.
  t.forget(kCallA);
  EXPECT_EQ(t.media(kCallA, "alice", "bob").caller.kind[kAudio].expected, 0u);
  t.on_allocation_ended(*alice1, core::EndReason::kCallEnded, kT0 + 9000);
  t.on_allocation_ended(*bob, core::EndReason::kCallEnded, kT0 + 9000);
}

}  // namespace
}  // namespace callrelay::telemetry
