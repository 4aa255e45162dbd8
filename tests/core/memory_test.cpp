// The per-allocation memory budget (about 1 KiB per idle allocation with one permission and one
// channel, see README "Memory per idle allocation"): the core's share of it as ceilings on the
// structures every allocation holds, and the inline list that keeps its one peer off the heap.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <utility>

#include "relay/core/allocation.hpp"
#include "relay/core/allocation_table.hpp"
#include "relay/core/small_list.hpp"

namespace callrelay::core {
namespace {

TEST(Memory, AllocationFitsItsBudget) {
  std::printf("sizeof(Allocation) = %zu (AllocationInfo %zu, BandwidthGate %zu, UserSlot %zu, "
              "TokenBucket %zu, SmallList<Permission> %zu)\n",
              sizeof(Allocation), sizeof(AllocationInfo), sizeof(BandwidthGate), sizeof(UserSlot),
              sizeof(TokenBucket), sizeof(SmallList<Permission>));
  EXPECT_LE(sizeof(TokenBucket), 16u);
  EXPECT_LE(sizeof(SmallList<Permission>), 40u);
  EXPECT_LE(sizeof(SmallList<ChannelBinding>), 40u);
  // Media counters are made at the first datagram, the realm is a shared view and the quota
  // slot refers to its user's entry: none of them is a copy per allocation.
  EXPECT_LE(sizeof(LazyMediaCounters), 8u);
  EXPECT_LE(sizeof(UserSlot), 16u);
  EXPECT_LE(sizeof(AllocationInfo), 272u);
  EXPECT_LE(sizeof(Allocation), 584u);
}

TEST(Memory, MediaCountersAreMadeAtTheFirstWrite) {
  LazyMediaCounters c;
  EXPECT_FALSE(c.made());
  EXPECT_EQ(c.get().kind[0].packets.get(), 0u);
  EXPECT_EQ(c.get().rtt_peer_samples.get(), 0u);
  c.write().kind[0].packets.add(3);
  EXPECT_TRUE(c.made());
  EXPECT_EQ(c.get().kind[0].packets.get(), 3u);
  EXPECT_EQ(&c.get(), &c.write());
  LazyMediaCounters other;  // the shared zeros are not another allocation's counters
  EXPECT_EQ(other.get().kind[0].packets.get(), 0u);
}

TEST(Memory, RealmsAreInternedOncePerName) {
  const std::string a = "example.org";
  const std::string b = "example.org";
  EXPECT_EQ(intern_realm(a).data(), intern_realm(b).data());
  EXPECT_EQ(intern_realm(a), "example.org");
  EXPECT_NE(intern_realm("other.example").data(), intern_realm(a).data());
  EXPECT_EQ(intern_realm(""), "");
}

TEST(Memory, SlotsOfOneUserShareItsEntry) {
  UserLimits limits;
  QuotaRefusal why = QuotaRefusal::kNone;
  UserSlot first = limits.acquire("alice-with-a-long-quota-key", 0, 0, &why);
  UserSlot second = limits.acquire("alice-with-a-long-quota-key", 0, 0, &why);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first.share(), second.share());
  EXPECT_EQ(limits.allocations("alice-with-a-long-quota-key"), 2u);
  UserSlot moved = std::move(first);
  EXPECT_FALSE(first);
  EXPECT_EQ(moved.share(), second.share());
  second = UserSlot();
  EXPECT_EQ(limits.allocations("alice-with-a-long-quota-key"), 1u);
  moved = UserSlot();
  EXPECT_EQ(limits.allocations("alice-with-a-long-quota-key"), 0u);
  EXPECT_EQ(limits.user_count(), 0u);
}

struct Entry {
  int key = 0;
  int64_t value = 0;
};

std::vector<int> keys(const SmallList<Entry>& l) {
  std::vector<int> out;
  for (const Entry& e : l) out.push_back(e.key);
  return out;
}

TEST(SmallList, OneInlineThenGrowsKeepingOrder) {
  SmallList<Entry> l;
  EXPECT_TRUE(l.empty());
  l.push_back({1, 10});
  EXPECT_EQ(keys(l), (std::vector<int>{1}));
  for (int k = 2; k <= 9; ++k) l.push_back({k, k * 10});
  EXPECT_EQ(l.size(), 9u);
  EXPECT_EQ(keys(l), (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(l[4].value, 50);
  l[4].value = 7;
  EXPECT_EQ(l[4].value, 7);
}

TEST(SmallList, RemoveIfKeepsTheOthersInOrder) {
  SmallList<Entry> l;
  for (int k = 1; k <= 6; ++k) l.push_back({k, 0});
  EXPECT_EQ(l.remove_if([](const Entry& e) { return e.key % 2 == 0; }), 3u);
  EXPECT_EQ(keys(l), (std::vector<int>{1, 3, 5}));
  l.push_back({7, 0});
  EXPECT_EQ(keys(l), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(l.remove_if([](const Entry&) { return true; }), 4u);
  EXPECT_TRUE(l.empty());
  l.push_back({8, 0});
  EXPECT_EQ(keys(l), (std::vector<int>{8}));
}

TEST(SmallList, InlineEntryRemovedAndReplaced) {
  SmallList<Entry> l;
  l.push_back({1, 0});
  EXPECT_EQ(l.remove_if([](const Entry& e) { return e.key == 2; }), 0u);
  EXPECT_EQ(l.remove_if([](const Entry& e) { return e.key == 1; }), 1u);
  EXPECT_TRUE(l.empty());
  l.push_back({2, 0});
  l.push_back({3, 0});
  EXPECT_EQ(keys(l), (std::vector<int>{2, 3}));
}

std::unique_ptr<Allocation> allocation_on(uint16_t client_port, uint64_t id) {
  auto a = std::make_unique<Allocation>();
  a->info.id = id;
  a->info.client.client = Endpoint::v4({192, 0, 2, 1}, client_port);
  a->info.client.server = Endpoint::v4({198, 51, 100, 2}, 3478);
  return a;
}

TEST(AllocationTable, FindsTakesAndReplacesByTheAllocationsOwnTuple) {
  AllocationTable t;
  for (uint16_t p = 1; p <= 100; ++p) t.insert(allocation_on(p, p));
  EXPECT_EQ(t.size(), 100u);
  FiveTuple probe;
  probe.client = Endpoint::v4({192, 0, 2, 1}, 42);
  probe.server = Endpoint::v4({198, 51, 100, 2}, 3478);
  ASSERT_NE(t.find(probe), nullptr);
  EXPECT_EQ(t.find(probe)->info.id, 42u);
  probe.transport = Transport::kTcp;  // another 5-tuple
  EXPECT_EQ(t.find(probe), nullptr);
  EXPECT_FALSE(t.contains(probe));
  probe.transport = Transport::kUdp;

  std::unique_ptr<Allocation> taken = t.take(probe);
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(taken->info.id, 42u);
  EXPECT_EQ(t.find(probe), nullptr);
  EXPECT_EQ(t.take(probe), nullptr);
  EXPECT_EQ(t.size(), 99u);

  t.insert(allocation_on(7, 1007));  // the same 5-tuple as allocation 7: replaces it
  EXPECT_EQ(t.size(), 99u);
  probe.client.port = 7;
  EXPECT_EQ(t.find(probe)->info.id, 1007u);

  uint64_t ids = 0;
  for (const auto& a : t) ids += a->info.id;
  EXPECT_EQ(ids, 100u * 101u / 2 - 42 - 7 + 1007);
}

}  // namespace
}  // namespace callrelay::core
