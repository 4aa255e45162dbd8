// CallTraffic: per-call bytes of call-scoped allocations (live and ended, split by caller and
// callee), forgetting, forwarding along the observer chain, and a reader racing a writer.
// (No timing: fixed iteration counts; the sanitizer build checks the memory accesses.)
#include "telemetry/call_traffic.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "telemetry/telemetry.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

constexpr core::TimeMs kT0 = 1'700'000'000'000;
constexpr char kCallA[] = "c_AAAAAAAAAAAAAAAAAAAAAA";
constexpr char kCallB[] = "c_BBBBBBBBBBBBBBBBBBBBBB";

std::unique_ptr<core::AllocationInfo> call_allocation(uint64_t id, const std::string& user,
                                                      const std::string& call) {
  auto a = testing::fake_allocation(id, user, kT0);
  a->call_id = call;
  a->username = "1700003600:" + user + (call.empty() ? "" : ":call=" + call);
  return a;
}

bool same(const CallTrafficTotals& a, const CallTrafficTotals& b) {
  return a.caller_to_peer == b.caller_to_peer && a.caller_to_client == b.caller_to_client &&
         a.callee_to_peer == b.callee_to_peer && a.callee_to_client == b.callee_to_client &&
         a.allocations == b.allocations;
}

TEST(CallTraffic, SumsLiveAndEndedAllocationsByUser) {
  CallTraffic t;
  auto caller1 = call_allocation(1, "alice", kCallA);
  auto caller2 = call_allocation(2, "alice", kCallA);
  auto callee = call_allocation(3, "bob", kCallA);
  auto other_call = call_allocation(4, "alice", kCallB);
  auto plain = call_allocation(5, "alice", "");
  for (auto* a : {caller1.get(), caller2.get(), callee.get(), other_call.get(), plain.get()}) {
    t.on_allocation_created(*a);
  }
  EXPECT_EQ(t.call_count(), 2u);
  testing::relay(*caller1, 100, 1000);
  testing::relay(*caller2, 20, 200);
  testing::relay(*callee, 3, 30);
  testing::relay(*other_call, 7, 7);
  testing::relay(*plain, 9, 9);
  EXPECT_TRUE(same(t.traffic(kCallA, "alice", "bob"), {120, 1200, 3, 30, 3}));

  // An allocation that ended still counts; its counters are not read again.
  t.on_allocation_ended(*caller1, core::EndReason::kRefreshZero, kT0 + 1000);
  caller1.reset();
  testing::relay(*caller2, 1, 1);
  EXPECT_TRUE(same(t.traffic(kCallA, "alice", "bob"), {121, 1201, 3, 30, 3}));
  // Sides swapped, and a user who is neither.
  EXPECT_TRUE(same(t.traffic(kCallA, "bob", "alice"), {3, 30, 121, 1201, 3}));
  EXPECT_TRUE(same(t.traffic(kCallA, "carol", "dave"), {0, 0, 0, 0, 3}));
  EXPECT_TRUE(same(t.traffic(kCallB, "alice", "bob"), {7, 7, 0, 0, 1}));
  EXPECT_TRUE(same(t.traffic("c_CCCCCCCCCCCCCCCCCCCCCC", "alice", "bob"), {}));

  t.on_allocation_ended(*caller2, core::EndReason::kExpired, kT0 + 2000);
  t.on_allocation_ended(*callee, core::EndReason::kTransportClosed, kT0 + 2000);
  EXPECT_TRUE(same(t.traffic(kCallA, "alice", "bob"), {121, 1201, 3, 30, 3}));
  t.on_allocation_ended(*plain, core::EndReason::kExpired, kT0 + 2000);
  EXPECT_EQ(t.call_count(), 2u);
}

TEST(CallTraffic, ForgetDropsTheCallAndLateEndsDoNotBringItBack) {
  CallTraffic t;
  auto a = call_allocation(1, "alice", kCallA);
  auto b = call_allocation(2, "bob", kCallB);
  t.on_allocation_created(*a);
  t.on_allocation_created(*b);
  testing::relay(*a, 5, 5);
  t.forget(kCallA);
  EXPECT_EQ(t.call_count(), 1u);
  EXPECT_TRUE(same(t.traffic(kCallA, "alice", "bob"), {}));
  t.on_allocation_ended(*a, core::EndReason::kCallEnded, kT0);
  EXPECT_EQ(t.call_count(), 1u);
  t.forget(kCallA);  // twice is harmless
  t.forget(kCallB);
  EXPECT_EQ(t.call_count(), 0u);
}

TEST(CallTraffic, CallEndedDropsTheCallOnceItsLastAllocationEnds) {
  CallTraffic t;
  auto a = call_allocation(1, "alice", kCallA);
  auto b = call_allocation(2, "bob", kCallA);
  t.on_allocation_created(*a);
  t.on_allocation_created(*b);
  testing::relay(*a, 5, 6);
  t.on_allocation_ended(*a, core::EndReason::kCallEnded, kT0);
  EXPECT_TRUE(same(t.traffic(kCallA, "alice", "bob"), {5, 6, 0, 0, 2}));
  t.on_allocation_ended(*b, core::EndReason::kCallEnded, kT0);
  EXPECT_EQ(t.call_count(), 0u);
}

TEST(CallTraffic, ForwardsEveryEventToNext) {
  testing::RecordingObserver next;
  CallTraffic t(&next);
  auto a = call_allocation(1, "alice", kCallA);
  auto p = call_allocation(2, "alice", "");
  t.on_allocation_created(*a);
  t.on_allocation_created(*p);
  t.on_allocation_ended(*a, core::EndReason::kCallEnded, kT0);
  t.on_allocation_ended(*p, core::EndReason::kExpired, kT0);
  t.on_request(stun::Method::kAllocate, core::Transport::kUdp, 0);
  t.on_auth_failure(core::AuthFailure::kRevoked);
  t.on_peer_denied(core::PeerDenyReason::kLoopback);
  t.on_drop(core::DropReason::kNoPermission);
  EXPECT_EQ(next.created, 2);
  EXPECT_EQ(next.ended, 2);
  EXPECT_EQ(next.requests, 1);
  EXPECT_EQ(next.auth, 1);
  EXPECT_EQ(next.denied, 1);
  EXPECT_EQ(next.drops, 1);
  CallTraffic alone;  // no next: nothing to forward to
  alone.on_request(stun::Method::kAllocate, core::Transport::kUdp, 0);
  alone.on_allocation_created(*a);
  EXPECT_EQ(alone.call_count(), 1u);
}

TEST(CallTraffic, WorkerObserversShareOneStateAndKeepTheirOwnChains) {
  testing::RecordingObserver next0, next1;
  CallTraffic t;
  core::Observer* w0 = t.observer_for_worker(0, &next0);
  core::Observer* w1 = t.observer_for_worker(1, &next1);
  ASSERT_NE(w0, w1);
  auto a = call_allocation(1, "alice", kCallA);
  auto b = call_allocation(2, "bob", kCallA);
  w0->on_allocation_created(*a);
  w1->on_allocation_created(*b);
  testing::relay(*a, 1, 2);
  testing::relay(*b, 3, 4);
  EXPECT_TRUE(same(t.traffic(kCallA, "alice", "bob"), {1, 2, 3, 4, 2}));
  w1->on_drop(core::DropReason::kMalformed);
  w0->on_allocation_ended(*a, core::EndReason::kExpired, kT0);
  EXPECT_EQ(next0.created, 1);
  EXPECT_EQ(next0.ended, 1);
  EXPECT_EQ(next0.drops, 0);
  EXPECT_EQ(next1.created, 1);
  EXPECT_EQ(next1.drops, 1);
  EXPECT_TRUE(same(t.traffic(kCallA, "alice", "bob"), {1, 2, 3, 4, 2}));
}

TEST(CallTraffic, ChainedBeforeTelemetryTheEndReasonIsLabelled) {
  Telemetry metrics(TelemetryConfig{}, 1, ProcessProbes{});
  CallTraffic t;
  core::Observer* o = t.observer_for_worker(0, metrics.observer_for_worker(0));
  auto a = call_allocation(1, "alice", kCallA);
  o->on_allocation_created(*a);
  o->on_allocation_ended(*a, core::EndReason::kCallEnded, kT0 + 1000);
  const std::string text = metrics.scrape_text(kT0 + 2000);
  EXPECT_TRUE(testing::has_line(
      text,
      R"(callrelay_allocations_ended_total{family="ipv4",reason="call_ended",transport="udp"} 1)"))
      << text;
  EXPECT_TRUE(testing::has_line(
      text,
      R"(callrelay_allocations_ended_total{family="ipv4",reason="shutdown",transport="udp"} 0)"));
}

TEST(CallTraffic, ReaderDuringAllocationChurnSeesMonotonicExactTotals) {
  CallTraffic t;
  core::Observer* o = t.observer_for_worker(0, nullptr);
  constexpr int kAllocations = 3000;
  std::atomic<bool> done{false};
  std::thread worker([o, &done] {
    std::vector<std::unique_ptr<core::AllocationInfo>> live;
    for (int i = 1; i <= kAllocations; ++i) {
      const bool caller = i % 2 == 0;
      live.push_back(call_allocation(static_cast<uint64_t>(i), caller ? "alice" : "bob",
                                     i % 3 == 0 ? kCallB : kCallA));
      o->on_allocation_created(*live.back());
      for (auto& a : live) testing::relay(*a, 1, 2);
      if (live.size() == 6) {  // end the oldest: the core destroys it right after
        o->on_allocation_ended(*live.front(), core::EndReason::kExpired, kT0 + i);
        live.erase(live.begin());
      }
    }
    for (auto& a : live) o->on_allocation_ended(*a, core::EndReason::kRefreshZero, kT0);
    done = true;
  });
  CallTrafficTotals last;
  size_t reads = 0;
  while (!done || reads < 100) {
    const CallTrafficTotals now = t.traffic(kCallA, "alice", "bob");
    EXPECT_GE(now.caller_to_peer, last.caller_to_peer);
    EXPECT_GE(now.callee_to_client, last.callee_to_client);
    EXPECT_GE(now.allocations, last.allocations);
    last = now;
    ++reads;
  }
  worker.join();
  // Allocation i is relayed 1 and 2 bytes in each iteration from i while it is live (6 at most).
  CallTrafficTotals expected;
  for (int i = 1; i <= kAllocations; ++i) {
    if (i % 3 == 0) continue;
    const auto n = static_cast<uint64_t>(std::min(kAllocations, i + 5) - i + 1);
    if (i % 2 == 0) {
      expected.caller_to_peer += n;
      expected.caller_to_client += 2 * n;
    } else {
      expected.callee_to_peer += n;
      expected.callee_to_client += 2 * n;
    }
    ++expected.allocations;
  }
  const CallTrafficTotals final_totals = t.traffic(kCallA, "alice", "bob");
  EXPECT_TRUE(same(final_totals, expected))
      << final_totals.caller_to_peer << " " << final_totals.callee_to_peer << " "
      << final_totals.allocations;
  EXPECT_EQ(t.call_count(), 2u);
}

}  // namespace
}  // namespace callrelay::telemetry
