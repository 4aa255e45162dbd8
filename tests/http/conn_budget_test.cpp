// The listener's connection budget without sockets: per-address and total limits, eviction
// of the connection that waited longest for a request head (never one being served), and the
// WebSocket counts, each refusal counted in LimitCounters.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "http/conn_budget.hpp"

namespace callrelay::http {
namespace {

using base::Limit;

struct FakeConn : Evictable {
  void evict() override { ++evictions; }
  int evictions = 0;
};

class BudgetTest : public ::testing::Test {
 protected:
  ConnectionBudget::Id open(const std::string& ip) {
    conns_.push_back(std::make_shared<FakeConn>());
    return budget_.open(ip, conns_.back());
  }
  base::LimitCounters counters_;
  ConnectionBudget budget_{{2, 4}, &counters_};
  std::vector<std::shared_ptr<FakeConn>> conns_;
};

TEST_F(BudgetTest, OneAddressHoldsAtMostItsShare) {
  EXPECT_NE(open("10.0.0.1"), 0u);
  EXPECT_NE(open("10.0.0.1"), 0u);
  EXPECT_EQ(open("10.0.0.1"), 0u);
  EXPECT_EQ(counters_.hits(Limit::kHttpPerAddress), 1u);
  EXPECT_EQ(budget_.connections_from("10.0.0.1"), 2u);
  EXPECT_NE(open("10.0.0.2"), 0u);
  EXPECT_EQ(budget_.connections(), 3u);
}

TEST_F(BudgetTest, ClosingFreesTheAddressesSlot) {
  const auto a = open("10.0.0.1");
  open("10.0.0.1");
  budget_.close(a);
  budget_.close(a);  // twice: ignored
  EXPECT_NE(open("10.0.0.1"), 0u);
  EXPECT_EQ(budget_.connections_from("10.0.0.1"), 2u);
  EXPECT_EQ(budget_.connections(), 2u);
}

TEST_F(BudgetTest, FullListenerEvictsTheLongestWaitingHead) {
  const auto first = open("10.0.0.1");
  open("10.0.0.2");
  const auto third = open("10.0.0.3");
  open("10.0.0.4");
  // The first is being served; the second has waited longest for a head.
  budget_.serving(first);
  const auto fifth = open("10.0.0.5");
  EXPECT_NE(fifth, 0u);
  EXPECT_EQ(conns_[0]->evictions, 0);
  EXPECT_EQ(conns_[1]->evictions, 1);
  EXPECT_EQ(counters_.hits(Limit::kHttpTotal), 1u);
  EXPECT_EQ(budget_.connections(), 4u);
  EXPECT_EQ(budget_.connections_from("10.0.0.2"), 0u);
  // A kept-alive connection waiting again is the newest waiter: the third goes first.
  budget_.serving(third);
  budget_.waiting(third);
  open("10.0.0.6");
  EXPECT_EQ(conns_[3]->evictions, 1);
  EXPECT_EQ(conns_[2]->evictions, 0);
}

TEST_F(BudgetTest, RefusedOnlyWhenEveryConnectionIsServed) {
  std::vector<ConnectionBudget::Id> ids;
  for (const char* ip : {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}) ids.push_back(open(ip));
  for (const auto id : ids) budget_.serving(id);
  EXPECT_EQ(open("10.0.0.5"), 0u);
  EXPECT_EQ(counters_.hits(Limit::kHttpTotal), 1u);
  for (const auto& c : conns_) EXPECT_EQ(c->evictions, 0);
  budget_.waiting(ids[2]);
  EXPECT_NE(open("10.0.0.5"), 0u);
  EXPECT_EQ(conns_[2]->evictions, 1);
}

TEST_F(BudgetTest, GoneSessionsOnlyFreeTheirSlot) {
  for (const char* ip : {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}) open(ip);
  conns_[0].reset();  // its session ended without closing: its slot is simply taken back
  EXPECT_NE(open("10.0.0.5"), 0u);
  EXPECT_EQ(conns_[1]->evictions, 0);
  EXPECT_EQ(budget_.connections_from("10.0.0.1"), 0u);
  EXPECT_EQ(budget_.connections(), 4u);
}

TEST_F(BudgetTest, EvictedIdsAreForgotten) {
  std::vector<ConnectionBudget::Id> ids;
  for (const char* ip : {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}) ids.push_back(open(ip));
  open("10.0.0.5");  // evicts ids[0]
  budget_.serving(ids[0]);
  budget_.waiting(ids[0]);
  budget_.close(ids[0]);
  EXPECT_EQ(budget_.connections(), 4u);
}

TEST_F(BudgetTest, WebSocketsHaveTheirOwnLimits) {
  const WsLimits limits{2, 3};
  using Admit = ConnectionBudget::WsAdmit;
  EXPECT_EQ(budget_.open_websocket("10.0.0.1", limits), Admit::kAccepted);
  EXPECT_EQ(budget_.open_websocket("10.0.0.1", limits), Admit::kAccepted);
  EXPECT_EQ(budget_.open_websocket("10.0.0.1", limits), Admit::kPerAddress);
  EXPECT_EQ(budget_.open_websocket("10.0.0.2", limits), Admit::kAccepted);
  EXPECT_EQ(budget_.open_websocket("10.0.0.3", limits), Admit::kTotal);
  EXPECT_EQ(counters_.hits(Limit::kWsPerAddress), 1u);
  EXPECT_EQ(counters_.hits(Limit::kWsTotal), 1u);
  EXPECT_EQ(budget_.websockets(), 3u);
  EXPECT_EQ(budget_.connections(), 0u);  // not HTTP connections
  budget_.close_websocket("10.0.0.1");
  EXPECT_EQ(budget_.open_websocket("10.0.0.3", limits), Admit::kAccepted);
  EXPECT_EQ(budget_.open_websocket("10.0.0.9", WsLimits{}), Admit::kAccepted);  // no limits
}

TEST(ConnectionBudget, WithoutCountersNothingIsCounted) {
  ConnectionBudget budget({1, 1}, nullptr);
  auto a = std::make_shared<FakeConn>();
  const auto id = budget.open("10.0.0.1", a);
  budget.serving(id);
  EXPECT_EQ(budget.open("10.0.0.1", a), 0u);
  EXPECT_EQ(budget.open("10.0.0.2", a), 0u);
}

}  // namespace
}  // namespace callrelay::http
