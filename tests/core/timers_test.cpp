// The deadline queues (relay/core/timers.hpp) against a plain sorted reference, and the core's
// housekeeping driven by them: exact deadlines, bursts spread over calls, nothing left behind
// by allocations that ended otherwise.
#include <map>
#include <random>
#include <set>
#include <string>

#include "relay/core/allocation.hpp"
#include "relay/core/timers.hpp"
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

struct Item {
  int id = 0;
  TimerSlot slot;
};
using Heap = DeadlineHeap<Item, &Item::slot>;

/// Pops everything due at `now` from `heap` (taking each out), returning their deadlines.
std::vector<TimeMs> drain(Heap& heap, TimeMs now) {
  std::vector<TimeMs> out;
  while (heap.next_due() <= now) {
    Item* top = heap.top();
    out.push_back(top->slot.due);
    heap.remove(*top);
  }
  return out;
}

TEST(DeadlineHeap, EmptyHasNoDeadline) {
  Heap heap;
  EXPECT_EQ(heap.next_due(), kNever);
  EXPECT_EQ(heap.top(), nullptr);
  Item a;
  heap.remove(a);  // not in: harmless
  EXPECT_TRUE(heap.empty());
}

TEST(DeadlineHeap, MovesEitherWayAndRemovesAnywhere) {
  std::vector<Item> items(5);
  Heap heap;
  for (int i = 0; i < 5; ++i) {
    items[static_cast<size_t>(i)].id = i;
    heap.schedule(items[static_cast<size_t>(i)], 100 + i * 10);  // 100 110 120 130 140
  }
  EXPECT_EQ(heap.top()->id, 0);
  heap.schedule(items[0], 135);  // later: 1 comes first now
  EXPECT_EQ(heap.top()->id, 1);
  heap.schedule(items[4], 50);  // sooner
  EXPECT_EQ(heap.top()->id, 4);
  heap.schedule_by(items[4], 60);  // not sooner: stays
  EXPECT_EQ(items[4].slot.due, 50);
  heap.schedule_by(items[3], 20);  // sooner: moves
  EXPECT_EQ(heap.top()->id, 3);
  heap.remove(items[2]);
  EXPECT_FALSE(items[2].slot.scheduled());
  EXPECT_EQ(drain(heap, 1000), (std::vector<TimeMs>{20, 50, 110, 135}));
  EXPECT_TRUE(heap.empty());
}

TEST(DeadlineHeap, MatchesASortedReferenceUnderRandomChanges) {
  std::mt19937 rng(12345);  // fixed seed: the same sequence every run
  constexpr size_t kItems = 2000;
  std::vector<Item> items(kItems);
  std::map<int, TimeMs> reference;  // id -> due, for the items in the heap
  Heap heap;
  for (size_t i = 0; i < kItems; ++i) items[i].id = static_cast<int>(i);
  for (int step = 0; step < 50'000; ++step) {
    Item& it = items[rng() % kItems];
    const TimeMs due = static_cast<TimeMs>(rng() % 10'000);
    switch (rng() % 4) {
      case 0: heap.remove(it); reference.erase(it.id); break;
      case 1: heap.schedule_by(it, due);
        if (!reference.contains(it.id) || due < reference[it.id]) reference[it.id] = due;
        break;
      default: heap.schedule(it, due); reference[it.id] = due; break;
    }
    ASSERT_EQ(heap.size(), reference.size());
  }
  std::multiset<TimeMs> expected;
  for (const auto& [id, due] : reference) {
    expected.insert(due);
    EXPECT_EQ(items[static_cast<size_t>(id)].slot.due, due);
  }
  const std::vector<TimeMs> popped = drain(heap, kNever - 1);
  EXPECT_EQ(popped, std::vector<TimeMs>(expected.begin(), expected.end()));
}

TEST(DeadlineHeap, ClearForgetsEveryItem) {
  std::vector<Item> items(3);
  Heap heap;
  for (auto& i : items) heap.schedule(i, 5);
  heap.clear();
  for (const auto& i : items) EXPECT_FALSE(i.slot.scheduled());
  heap.schedule(items[1], 7);  // usable again
  EXPECT_EQ(heap.top(), &items[1]);
}

TEST(DeadlineQueue, PopsInOrderAndCompacts) {
  DeadlineQueue<std::string> q;
  q.push(30, "c");
  q.push(10, "a");
  q.push(20, "b");
  q.push(10, "stale");
  EXPECT_EQ(q.next_due(), 10);
  EXPECT_FALSE(q.due(9));
  EXPECT_TRUE(q.due(10));
  q.compact([](const DeadlineQueue<std::string>::Entry& e) { return e.key == "stale"; });
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q.pop().key, "a");
  EXPECT_EQ(q.pop().key, "b");
  EXPECT_EQ(q.pop().key, "c");
  EXPECT_EQ(q.next_due(), kNever);
}

// --- the core's housekeeping ---

const Endpoint kPeer = ep("93.184.216.34:7000");

CoreConfig unlimited() {
  CoreConfig cfg;
  cfg.max_allocations_per_user = 0;
  return cfg;
}

std::vector<Client> allocate_many(Harness& h, size_t n, TimeMs now) {
  std::vector<Client> clients;
  for (size_t i = 0; i < n; ++i) {
    // A source address each: the reflection guard limits challenges per address.
    const std::string addr =
        "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":40000";
    clients.push_back(h.rest_client(addr.c_str()));
    h.allocate(clients.back(), now);
  }
  return clients;
}

TEST(Housekeeping, ABurstOfExpiriesIsSpreadOverCalls) {
  Harness h(unlimited());
  constexpr size_t kCount = 2 * TurnServer::kTimerBatch + 10;
  allocate_many(h, kCount, kT0);
  const TimeMs deadline = kT0 + 600 * kSecond;
  EXPECT_EQ(h.server->on_timer(deadline - 1), deadline);
  // Each call ends at most kTimerBatch and asks to be called again at once while more are due.
  EXPECT_EQ(h.server->on_timer(deadline), deadline);
  EXPECT_EQ(h.server->allocation_count(), kCount - TurnServer::kTimerBatch);
  EXPECT_EQ(h.server->on_timer(deadline), deadline);
  EXPECT_EQ(h.server->allocation_count(), 10u);
  EXPECT_EQ(h.server->on_timer(deadline), deadline + TurnServer::kHeartbeatMs);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  ASSERT_EQ(h.observer.ended.size(), kCount);
  for (const auto& e : h.observer.ended) {
    EXPECT_EQ(e.why, EndReason::kExpired);
    EXPECT_EQ(e.now, deadline);
  }
  EXPECT_TRUE(h.ports.open_ids.empty());
}

TEST(Housekeeping, ExactlyABatchDueReturnsTheNextDeadline) {
  Harness h(unlimited());
  allocate_many(h, TurnServer::kTimerBatch, kT0);
  Client late = h.rest_client("198.51.100.8:1");
  h.allocate(late, kT0 + 5 * kSecond);
  const TimeMs deadline = kT0 + 600 * kSecond;
  // The whole batch used up, and nothing else due: no needless call back.
  EXPECT_EQ(h.server->on_timer(deadline), deadline + TurnServer::kHeartbeatMs);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_EQ(h.server->on_timer(deadline + 4500), deadline + 5 * kSecond);
}

TEST(Housekeeping, RefreshedPermissionsMoveTheDeadline) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0, [](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, 3600); });
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  EXPECT_EQ(h.server->on_timer(kT0 + 299'500), kT0 + 300 * kSecond);
  // Refreshed as clients do, a minute early: the deadline passes without the permission going.
  ASSERT_EQ(h.create_permission(c, kPeer, kT0 + 240 * kSecond).code(), 0);
  EXPECT_EQ(h.server->on_timer(kT0 + 300 * kSecond), kT0 + 301 * kSecond);
  EXPECT_EQ(h.server->on_timer(kT0 + 539'500), kT0 + 540 * kSecond);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kT0 + 540 * kSecond - 1).kind, Output::Kind::kToClient);
  h.server->on_timer(kT0 + 540 * kSecond);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kT0 + 540 * kSecond).kind, Output::Kind::kNone);
  // Only the allocation's own lifetime is left.
  EXPECT_EQ(h.server->on_timer(kT0 + 3599'500), kT0 + 3600 * kSecond);
  h.server->on_timer(kT0 + 3600 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(Housekeeping, ChannelsAreKeptUntilTheirCooldownEnds) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0, [](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, 3600); });
  ASSERT_EQ(h.channel_bind(c, 0x4000, kPeer, kT0).code(), 0);
  EXPECT_EQ(h.server->on_timer(kT0 + 299'500), kT0 + 300 * kSecond) << "the permission first";
  EXPECT_EQ(h.server->on_timer(kT0 + 300 * kSecond), kT0 + 301 * kSecond);
  // The channel lapses at 600 s (the data path compares timestamps, nothing to do then) and
  // stays reserved 5 minutes more (RFC 8656 section 12): its entry goes when that ends.
  const TimeMs cooled = kT0 + 600 * kSecond + kChannelCooldownMs;
  EXPECT_EQ(h.server->on_timer(cooled - 500), cooled);
  const Endpoint other = ep("93.184.216.35:7000");
  h.challenge(c, cooled - 1);  // a fresh nonce
  EXPECT_EQ(h.channel_bind(c, 0x4000, other, cooled - 1).code(), 400);
  h.server->on_timer(cooled);
  EXPECT_EQ(h.server->on_timer(cooled + 500), cooled + 1500) << "nothing due but the heartbeat";
  EXPECT_EQ(h.channel_bind(c, 0x4000, other, cooled).code(), 0);
}

TEST(Housekeeping, AllocationsThatEndedOtherwiseLeaveNothingDue) {
  Harness h(unlimited());
  auto clients = allocate_many(h, 3, kT0);
  ASSERT_EQ(h.refresh(clients[0], 0, kT0 + kSecond).code(), 0);
  h.server->on_client_closed(clients[1].tuple, kT0 + kSecond);
  h.server->end_all(EndReason::kDrained, kT0 + kSecond);
  ASSERT_EQ(h.server->allocation_count(), 0u);
  // Their deadlines went with them: only the heartbeat is left.
  const TimeMs lifetime_end = kT0 + 600 * kSecond;
  EXPECT_EQ(h.server->on_timer(lifetime_end), lifetime_end + TurnServer::kHeartbeatMs);
  EXPECT_EQ(h.observer.ended.size(), 3u);
}

TEST(Housekeeping, ReservationsExpireAtThirtySecondsUnlessClaimed) {
  Harness h;
  Client a = h.rest_client("198.51.100.7:1");
  Client b = h.rest_client("198.51.100.7:2");
  h.challenge(a, kT0);
  const auto r = h.request(a, stun::Method::kAllocate, [](stun::MessageBuilder& m) {
    m.add_requested_transport(17);
    m.add_bytes(stun::attr::kEvenPort, std::vector<uint8_t>{0x80});
  }, kT0);
  ASSERT_EQ(r.code(), 0);
  const auto token = r.view().reservation_token();
  ASSERT_TRUE(token.has_value());
  Client c = h.rest_client("198.51.100.7:3");
  h.challenge(c, kT0);
  const auto r2 = h.request(c, stun::Method::kAllocate, [](stun::MessageBuilder& m) {
    m.add_requested_transport(17);
    m.add_bytes(stun::attr::kEvenPort, std::vector<uint8_t>{0x80});
  }, kT0 + kSecond);
  ASSERT_EQ(r2.code(), 0);
  // a's reservation is claimed by b; c's is left to expire.
  h.challenge(b, kT0 + 2 * kSecond);
  const auto claimed = h.request(b, stun::Method::kAllocate, [&](stun::MessageBuilder& m) {
    m.add_requested_transport(17);
    m.add_u64(stun::attr::kReservationToken, *token);
  }, kT0 + 2 * kSecond);
  ASSERT_EQ(claimed.code(), 0);
  EXPECT_EQ(h.server->on_timer(kT0 + 30 * kSecond + 500), kT0 + 31 * kSecond);
  EXPECT_TRUE(h.ports.closed.empty()) << "a's claimed reservation is b's relay now";
  h.server->on_timer(kT0 + 31 * kSecond);
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{3}) << "c's unclaimed port+1";
  EXPECT_EQ(h.server->allocation_count(), 3u);
}

TEST(Housekeeping, OneBatchIsSharedByEveryQueue) {
  Harness h(unlimited());
  constexpr size_t kAllocations = TurnServer::kTimerBatch;
  constexpr size_t kReservations = TurnServer::kTimerBatch / 2;
  allocate_many(h, kAllocations, kT0);
  const TimeMs deadline = kT0 + 600 * kSecond;
  // Reservations made 30 s before the allocations' end expire with them (RFC 8656 section 7.2).
  for (size_t i = 0; i < kReservations; ++i) {
    const std::string addr = "10.1.0." + std::to_string(i + 1) + ":40000";
    Client c = h.rest_client(addr.c_str());
    h.challenge(c, deadline - 30 * kSecond);
    const auto r = h.request(c, stun::Method::kAllocate, [](stun::MessageBuilder& m) {
      m.add_requested_transport(17);
      m.add_bytes(stun::attr::kEvenPort, std::vector<uint8_t>{0x80});
    }, deadline - 30 * kSecond);
    ASSERT_EQ(r.code(), 0);
  }
  ASSERT_EQ(h.ports.closed.size(), 0u);
  // The allocations use the whole batch: the reservations wait for the next call, at once.
  EXPECT_EQ(h.server->on_timer(deadline), deadline);
  EXPECT_EQ(h.server->allocation_count(), kReservations);
  EXPECT_EQ(h.ports.closed.size(), kAllocations);
  EXPECT_EQ(h.server->on_timer(deadline), deadline + TurnServer::kHeartbeatMs);
  EXPECT_EQ(h.ports.closed.size(), kAllocations + kReservations);
  EXPECT_EQ(h.observer.ended.size(), kAllocations);
}

}  // namespace
}  // namespace callrelay::core::testing
