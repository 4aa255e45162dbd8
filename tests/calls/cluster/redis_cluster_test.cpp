// The Redis seam of the cluster router against a real redis-server: what callees() reads in
// one pipelined lookup for several users at once (each user's devices on live instances, a
// busy mark of another live instance), a dead instance's devices left out and deleted, and an
// unreachable store as nullopt.
#include "calls/cluster/redis_cluster.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "redis_test_support.hpp"

namespace callrelay::calls {
namespace {

using namespace std::chrono_literals;

cluster::RedisUrl url_of(const test::RedisServer& s) {
  std::string why;
  auto u = cluster::parse_redis_url(s.url(), &why);
  if (!u) throw std::runtime_error("bad test URL " + s.url() + ": " + why);
  return *u;
}

/// Bounded wait for what the seam's worker thread writes.
template <typename Pred>
bool eventually(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

struct NullSink : ClusterSink {
  void on_envelope(std::string) override {}
  void on_instances(std::vector<InstanceSeen>) override {}
};

using Users = std::vector<std::pair<std::string, std::string>>;

TEST(RedisCluster, CalleesReadsEveryUserInOneLookup) {
  test::RedisServer server;
  NullSink sink;
  RedisCluster a("relay-a", url_of(server)), b("relay-b", url_of(server));
  a.start(sink);
  b.start(sink);
  b.presence("t1", "bob", "bob-phone", true);
  b.presence("t1", "bob", "bob-laptop", true);
  b.busy("t1", "carol", "c_call", true);
  const Users users{{"t1", "bob"}, {"t1", "carol"}, {"t1", "dave"}, {"t2", "bob"}};
  std::optional<std::vector<CalleeSeen>> seen;
  ASSERT_TRUE(eventually([&] {
    seen = a.callees(users);
    return seen && seen->size() == 4 && (*seen)[0].devices.size() == 2 &&
           (*seen)[1].busy_on == "relay-b";
  }));
  for (const RemoteDevice& d : (*seen)[0].devices) {
    EXPECT_TRUE(d.device == "bob-phone" || d.device == "bob-laptop") << d.device;
    EXPECT_EQ(d.instance, "relay-b");
    EXPECT_EQ(d.nonce, b.nonce());
  }
  EXPECT_TRUE((*seen)[0].busy_on.empty());
  EXPECT_TRUE((*seen)[1].devices.empty());
  EXPECT_TRUE((*seen)[2].devices.empty());
  EXPECT_TRUE((*seen)[2].busy_on.empty());
  EXPECT_TRUE((*seen)[3].devices.empty());  // another tenant's bob

  // callee() is the same lookup for one user; an instance's own busy mark is its engine's.
  const auto one = a.callee("t1", "bob");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->devices.size(), 2u);
  a.busy("t1", "erin", "c_own", true);
  ASSERT_TRUE(eventually([&] {
    const auto e = b.callee("t1", "erin");
    return e && e->busy_on == "relay-a";
  }));
  const auto own = a.callee("t1", "erin");
  ASSERT_TRUE(own);
  EXPECT_TRUE(own->busy_on.empty());

  // A device gone offline is gone from the next lookup.
  b.presence("t1", "bob", "bob-laptop", false);
  ASSERT_TRUE(eventually([&] {
    const auto e = a.callee("t1", "bob");
    return e && e->devices.size() == 1 && e->devices[0].device == "bob-phone";
  }));
  EXPECT_TRUE(a.callees({}).has_value());
  b.stop();
  a.stop();
}

TEST(RedisCluster, ADeadInstancesDevicesAreLeftOutAndTheStoreAwayIsNullopt) {
  test::RedisServer server;
  NullSink sink;
  RedisCluster a("relay-a", url_of(server));
  {
    RedisCluster b("relay-b", url_of(server));
    b.start(sink);
    b.presence("", "bob", "bob-phone", true);
    ASSERT_TRUE(eventually([&] {
      const auto e = a.callees({{"", "bob"}});
      return e && (*e)[0].devices.size() == 1;
    }));
    b.stop();  // withdraws its presence and its liveness
  }
  // Its presence written back by hand without liveness: an instance that died.
  cluster::RedisClient raw(url_of(server), {});
  ASSERT_TRUE(raw.command({"HSET", "callrelay:sig:presence:0::bob", "bob-phone", "relay-b"}));
  const auto seen = a.callees({{"", "bob"}, {"", "carol"}});
  ASSERT_TRUE(seen);
  EXPECT_TRUE((*seen)[0].devices.empty());
  // ... and its field is deleted (by the worker thread, once a is started).
  a.start(sink);
  EXPECT_TRUE(eventually([&] {
    const auto r = raw.command({"HLEN", "callrelay:sig:presence:0::bob"});
    return r && r->type == cluster::RedisReply::Type::kInteger && r->integer == 0;
  }));
  server.stop();
  EXPECT_FALSE(a.callees({{"", "bob"}}).has_value());
  EXPECT_FALSE(a.callee("", "bob").has_value());
  a.stop();
}

}  // namespace
}  // namespace callrelay::calls
