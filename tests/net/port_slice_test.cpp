// PortSlice: each worker's share of the relay port range as a free-list ring.
#include "relay/net/port_slice.hpp"

#include <gtest/gtest.h>

#include <set>

namespace callrelay::net {
namespace {

TEST(PortSlice, WorkersOwnDisjointSlicesCoveringTheRange) {
  std::set<uint16_t> seen;
  for (unsigned w = 0; w < 3; ++w) {
    PortSlice s(61000, 61099, w, 3);
    for (uint32_t p = 61000; p <= 61099; ++p) {
      if (s.owns(static_cast<uint16_t>(p))) {
        EXPECT_TRUE(seen.insert(static_cast<uint16_t>(p)).second) << p;
      }
    }
    EXPECT_EQ(s.free_count(), s.size());
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(PortSlice, EvenPortAndTheOddOneAfterItShareAWorker) {
  for (unsigned w = 0; w < 4; ++w) {
    PortSlice s(61000, 61999, w, 4);
    for (uint32_t p = 61000; p <= 61998; p += 2) {
      EXPECT_EQ(s.owns(static_cast<uint16_t>(p)), s.owns(static_cast<uint16_t>(p + 1))) << p;
    }
  }
}

TEST(PortSlice, ExhaustionReturnsNulloptAndReleaseRefills) {
  PortSlice s(61000, 61003, 0, 1);
  std::set<uint16_t> taken;
  for (int i = 0; i < 4; ++i) {
    const auto p = s.take(false, false);
    ASSERT_TRUE(p.has_value());
    EXPECT_TRUE(taken.insert(*p).second);
  }
  EXPECT_FALSE(s.take(false, false).has_value());
  EXPECT_EQ(s.free_count(), 0u);
  s.release(61002);
  EXPECT_EQ(s.take(false, false), std::optional<uint16_t>(61002));
}

TEST(PortSlice, ReleasedPortGoesToTheBackOfTheRing) {
  PortSlice s(61000, 61003, 0, 1);
  const auto first = s.take(false, false);
  ASSERT_TRUE(first);
  s.release(*first);  // e.g. EADDRINUSE: retried only after the others
  std::vector<uint16_t> order;
  while (auto p = s.take(false, false)) order.push_back(*p);
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order.back(), *first);
}

TEST(PortSlice, EvenRequestSkipsOddPortsWithoutLosingThem) {
  PortSlice s(61000, 61007, 0, 1);
  ASSERT_EQ(s.take(false, false), std::optional<uint16_t>(61000));
  const auto even = s.take(true, false);  // 61001 is next in the ring but odd
  ASSERT_TRUE(even);
  EXPECT_EQ(*even % 2, 0);
  EXPECT_TRUE(s.is_free(61001));
  EXPECT_EQ(s.free_count(), 6u);
}

TEST(PortSlice, PairTakesAnEvenPortAndItsSuccessor) {
  PortSlice s(61000, 61007, 0, 1);
  ASSERT_EQ(s.take(false, false), std::optional<uint16_t>(61000));  // 61001 left without its pair
  const auto p = s.take(true, true);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p % 2, 0);
  EXPECT_NE(*p, 61000);
  EXPECT_FALSE(s.is_free(*p));
  EXPECT_FALSE(s.is_free(static_cast<uint16_t>(*p + 1)));
  // The odd half's stale ring entry is skipped, never handed out twice.
  std::set<uint16_t> rest;
  while (auto q = s.take(false, false)) EXPECT_TRUE(rest.insert(*q).second) << *q;
  EXPECT_EQ(rest.count(*p), 0u);
  EXPECT_EQ(rest.count(static_cast<uint16_t>(*p + 1)), 0u);
  EXPECT_EQ(rest.size(), 5u);
}

TEST(PortSlice, NoPairLeftMeansNullopt) {
  PortSlice s(61000, 61003, 0, 1);
  ASSERT_TRUE(s.take(false, false));  // 61000
  ASSERT_TRUE(s.take(false, false));  // 61001
  ASSERT_TRUE(s.take(false, false));  // 61002: 61002/61003 pair broken
  EXPECT_FALSE(s.take(true, true).has_value());
  EXPECT_FALSE(s.take(true, false).has_value());  // 61003 is odd
  EXPECT_TRUE(s.take(false, false).has_value());
}

TEST(PortSlice, ScanIsBounded) {
  // 2000 odd-only candidates would be a long scan; take() gives up after kMaxScan.
  PortSlice s(61000, 64999, 0, 1);
  for (uint32_t p = 61000; p <= 64999; p += 2) {
    ASSERT_EQ(s.take(true, false), std::optional<uint16_t>(static_cast<uint16_t>(p)));
  }
  EXPECT_FALSE(s.take(true, false).has_value());
  EXPECT_EQ(s.free_count(), 2000u);
}

}  // namespace
}  // namespace callrelay::net
