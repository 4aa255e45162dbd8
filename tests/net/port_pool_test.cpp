// PortPool: the relay port range shared by every worker, taken and given back without a lock.
#include "relay/net/port_pool.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "relay/net/reservation_registry.hpp"

namespace callrelay::net {
namespace {

TEST(PortPool, ACursorStartsWhereItsStartSaysAndWrapsRound) {
  PortPool pool(2000, 2099);  // bit 0 is port 1984 (2000 rounded down to 64)
  auto cursor = pool.cursor(0, 1, 2090 - 1984);
  EXPECT_EQ(pool.take(cursor, false, false), std::optional<uint16_t>(2090));
  for (int i = 0; i < 9; ++i) pool.take(cursor, false, false);  // 2091-2099
  EXPECT_EQ(pool.take(cursor, false, false), std::optional<uint16_t>(2000));  // wrapped
  // Two servers on one host, each with a pool of its own over the same range: with different
  // starts their first ports differ (a start below the range's first port finds that one).
  PortPool one(2000, 2099);
  PortPool two(2000, 2099);
  auto a = one.cursor(0, 2, 10);  // bit 10 is port 1994, outside the range
  auto b = two.cursor(0, 2, 60);  // port 2044
  EXPECT_EQ(one.take(a, false, false), std::optional<uint16_t>(2000));
  EXPECT_EQ(two.take(b, false, false), std::optional<uint16_t>(2044));
}

TEST(RelayShare, DrawsWhereEachPoolsSearchStartsWithinItsRange) {
  const RelayShare share(40000, 40999);
  EXPECT_LT(share.start(0), share.pool(0).size());
}

TEST(PortPool, TakesEveryPortOfTheRangeOnceThenNothing) {
  PortPool pool(1000, 1099);  // not aligned to 64 at either end
  auto cursor = pool.cursor(0, 1);
  std::set<uint16_t> got;
  while (auto p = pool.take(cursor, false, false)) {
    EXPECT_TRUE(got.insert(*p).second) << *p;
    ASSERT_LE(got.size(), 100u);
  }
  EXPECT_EQ(got.size(), 100u);
  EXPECT_EQ(*got.begin(), 1000);
  EXPECT_EQ(*got.rbegin(), 1099);
  EXPECT_EQ(pool.free_count(), 0u);
  pool.release(1042);
  EXPECT_TRUE(pool.is_free(1042));
  EXPECT_EQ(pool.take(cursor, false, false), std::optional<uint16_t>(1042));
  pool.release(999);  // outside: nothing happens
  pool.release(1100);
  EXPECT_EQ(pool.free_count(), 0u);
}

TEST(PortPool, ACursorGoesRoundBeforeAPortGivenBackIsTakenAgain) {
  PortPool pool(2000, 2009);
  auto cursor = pool.cursor(0, 1);
  const auto first = pool.take(cursor, false, false);
  ASSERT_EQ(first, std::optional<uint16_t>(2000));
  pool.release(*first);  // as after EADDRINUSE: tried again only after the rest of the range
  for (uint16_t want = 2001; want <= 2009; ++want) {
    EXPECT_EQ(pool.take(cursor, false, false), std::optional<uint16_t>(want));
  }
  EXPECT_EQ(pool.take(cursor, false, false), std::optional<uint16_t>(2000));
  EXPECT_FALSE(pool.take(cursor, false, false));
}

TEST(PortPool, EvenPortsAndPairsTakenAtomically) {
  PortPool pool(3001, 3008);  // 3001 odd: the first even port is 3002
  auto cursor = pool.cursor(0, 1);
  EXPECT_EQ(pool.take(cursor, true, false), std::optional<uint16_t>(3002));
  // 3003 is free but its even partner is taken: the next pair is 3004/3005.
  EXPECT_EQ(pool.take(cursor, false, true), std::optional<uint16_t>(3004));
  EXPECT_FALSE(pool.is_free(3004));
  EXPECT_FALSE(pool.is_free(3005));
  EXPECT_EQ(pool.take(cursor, false, true), std::optional<uint16_t>(3006));
  // 3008 is even and free but 3009 is outside the range: no pair left.
  EXPECT_FALSE(pool.take(cursor, false, true));
  EXPECT_EQ(pool.take(cursor, true, false), std::optional<uint16_t>(3008));
  EXPECT_EQ(pool.free_count(), 2u);  // 3001 and 3003
  EXPECT_FALSE(pool.take(cursor, true, false));
  EXPECT_TRUE(pool.take(cursor, false, false));
}

TEST(PortPool, WorkersStartApartAndSeeEachOthersPorts) {
  PortPool pool(10000, 10999);
  auto a = pool.cursor(0, 2);
  auto b = pool.cursor(1, 2);
  const auto pa = pool.take(a, false, false);
  const auto pb = pool.take(b, false, false);
  ASSERT_TRUE(pa && pb);
  EXPECT_GE(*pb - *pa, 400);  // spread over the range, not next to each other
  pool.release(*pa);
  // A port worker a gave back is free for worker b too: one range for all.
  b.bit = a.bit = 0;
  EXPECT_EQ(pool.take(b, false, false), pa);
}

TEST(PortPool, ThreadsTakingAndReleasingNeverHoldAPortTwice) {
  // Each thread takes ports (singles and pairs), checks that no other thread holds them (a
  // per-port owner flag set with exchange), and gives them back; with a small range the
  // threads contend for the same words all the time.
  constexpr uint16_t kMin = 20000, kMax = 20199;
  PortPool pool(kMin, kMax);
  std::vector<std::atomic<int>> holder(kMax - kMin + 1);
  for (auto& h : holder) h.store(-1);
  std::atomic<int> duplicates{0};
  std::atomic<long> taken{0};
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto cursor = pool.cursor(static_cast<unsigned>(t), kThreads);
      std::vector<uint16_t> mine;
      for (int round = 0; round < 20000; ++round) {
        const bool pair = round % 3 == 0;
        if (auto p = pool.take(cursor, false, pair)) {
          for (int k = 0; k < (pair ? 2 : 1); ++k) {
            const auto port = static_cast<uint16_t>(*p + k);
            if (holder[port - kMin].exchange(t) != -1) duplicates.fetch_add(1);
            mine.push_back(port);
          }
          taken.fetch_add(1);
        }
        if (mine.size() > 30 || (round % 7 == 0 && !mine.empty())) {
          const uint16_t port = mine.back();
          mine.pop_back();
          holder[port - kMin].store(-1);
          pool.release(port);
        }
      }
      for (const uint16_t port : mine) {
        holder[port - kMin].store(-1);
        pool.release(port);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(duplicates.load(), 0);
  EXPECT_GT(taken.load(), 20000);
  EXPECT_EQ(pool.free_count(), pool.size());
}

TEST(ReservationRegistry, ClaimedOnceAndWithdrawnOnlyUnclaimed) {
  ReservationRegistry reg;
  // Owners are only compared here: any distinct addresses do. The registry owns the
  // descriptors it is given (duplicates of a socket, as RelaySockets lists them).
  int owner_tag = 0, other_tag = 0;
  auto* owner = reinterpret_cast<RelaySockets*>(&owner_tag);
  auto* other = reinterpret_cast<RelaySockets*>(&other_tag);
  const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  const auto dup = [&] { return ::fcntl(sock, F_DUPFD_CLOEXEC, 0); };
  const auto ep = stun::Endpoint::v4({127, 0, 0, 1}, 5001);
  reg.add(7, {owner, 3, 1, dup(), ep, 1000});
  reg.add(8, {owner, 4, 1, dup(), ep, 1000});
  reg.add(9, {owner, 5, 1, dup(), ep, 1000});
  reg.add(10, {owner, 6, 1, dup(), ep, 1000});  // left for the destructor to close
  EXPECT_FALSE(reg.claim(7, 1000, owner));  // expired at its deadline
  const auto own = reg.claim(8, 999, owner);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->id, 4u);
  EXPECT_EQ(own->fd, -1);                  // the owner's own socket: no descriptor handed over
  EXPECT_FALSE(reg.claim(8, 999, owner));  // once only
  EXPECT_FALSE(reg.withdraw(8, owner));    // claimed: the owner keeps the port taken
  const auto moved = reg.claim(9, 10, other);  // another worker's: the descriptor is theirs
  ASSERT_TRUE(moved);
  ASSERT_GE(moved->fd, 0);
  EXPECT_EQ(::fcntl(moved->fd, F_GETFD), FD_CLOEXEC);
  ::close(moved->fd);
  EXPECT_FALSE(reg.withdraw(9, owner));
  EXPECT_FALSE(reg.withdraw(7, other));  // only its owner withdraws it
  EXPECT_TRUE(reg.withdraw(7, owner));   // expired, never claimed: its port goes back
  EXPECT_EQ(reg.size(), 1u);
  ::close(sock);
}

}  // namespace
}  // namespace callrelay::net
