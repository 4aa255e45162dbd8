// Per-user quotas across instances through a real Redis: two stores (two instances) share one
// user's limit, an ended allocation frees its slot, a dead instance's counts stop counting,
// and with Redis away allocations are admitted on the local limit, counted, and the shared
// counts rewritten once it is back.
#include "cluster/shared/shared_quota.hpp"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "tests/cluster/shared/redis_fixture.hpp"

namespace callrelay::cluster {
namespace {

using testing::RedisServer;
using testing::fresh_keys;

/// One instance: its store and the local counts it would rewrite from.
struct Instance {
  Instance(const SharedKeys& keys, std::string id, SharedCounters& counters,
           RedisClient::Options opts = {})
      : admit_redis(RedisServer::get().url(), opts),
        redis(RedisServer::get().url(), opts),
        store(admit_redis, redis, keys, id, [this] { return counts(); }, counters) {}
  std::vector<std::pair<std::string, uint32_t>> counts() {
    const std::lock_guard lock(mu);
    return {local.begin(), local.end()};
  }
  /// As UserLimits does: the local count first, the store then.
  bool allocate(const std::string& user, uint32_t max) {
    {
      const std::lock_guard lock(mu);
      ++local[user];
    }
    if (store.admit(user, max)) return true;
    const std::lock_guard lock(mu);
    if (--local[user] == 0) local.erase(user);
    return false;
  }
  void end(const std::string& user) {
    {
      const std::lock_guard lock(mu);
      if (--local[user] == 0) local.erase(user);
    }
    store.released(user);
  }
  RedisClient admit_redis, redis;
  SharedQuotaStore store;
  std::mutex mu;
  std::map<std::string, uint32_t> local;
};

class SharedQuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_REDIS();
    alive("a");
    alive("b");
  }
  /// The instance's load record, which the admit script takes as "alive".
  void alive(const std::string& id) {
    // After a restart the first command finds the old connection broken; the next one
    // connects again.
    bool ok = false;
    for (int i = 0; i < 5 && !ok; ++i)
      ok = redis.command({"SET", keys.instance(id), "{}", "PX", "60000"}).has_value();
    ASSERT_TRUE(ok);
  }
  long long field(const std::string& user, const std::string& id) {
    const auto r = redis.command({"HGET", keys.quota(user), id});
    return r && r->type == RedisReply::Type::kString ? std::stoll(r->str) : 0;
  }
  SharedKeys keys = fresh_keys();
  SharedCounters counters;
  // No pause between connection attempts: the test's own reads right after a restart.
  RedisClient redis{RedisServer::get().url(), {std::chrono::milliseconds(500), std::chrono::milliseconds(0)}};
};

TEST_F(SharedQuotaTest, OneLimitAcrossInstances) {
  Instance a(keys, "a", counters), b(keys, "b", counters);
  ASSERT_TRUE(a.store.poll());  // the first poll rewrites (nothing yet)
  ASSERT_TRUE(b.store.poll());
  EXPECT_TRUE(a.allocate("alice", 3));
  EXPECT_TRUE(a.allocate("alice", 3));
  EXPECT_TRUE(b.allocate("alice", 3));
  EXPECT_FALSE(b.allocate("alice", 3));
  EXPECT_FALSE(a.allocate("alice", 3));
  EXPECT_EQ(counters.quota_refused.load(), 2u);
  EXPECT_TRUE(b.allocate("bob", 3));  // another user's own limit
  EXPECT_EQ(field("alice", "a"), 2);
  EXPECT_EQ(field("alice", "b"), 1);
  // An allocation ends on A: its slot is free for B.
  a.end("alice");
  ASSERT_TRUE(a.store.poll());
  EXPECT_EQ(field("alice", "a"), 1);
  EXPECT_TRUE(b.allocate("alice", 3));
  EXPECT_FALSE(a.allocate("alice", 3));
  // 0: no limit, still counted.
  EXPECT_TRUE(a.allocate("alice", 0));
  EXPECT_EQ(field("alice", "a"), 2);
}

TEST_F(SharedQuotaTest, TheLastEndRemovesTheField) {
  Instance a(keys, "a", counters);
  ASSERT_TRUE(a.store.poll());
  EXPECT_TRUE(a.allocate("carol", 1));
  a.end("carol");
  ASSERT_TRUE(a.store.poll());
  const auto exists = redis.command({"HEXISTS", keys.quota("carol"), "a"});
  ASSERT_TRUE(exists);
  EXPECT_EQ(exists->integer, 0);
}

TEST_F(SharedQuotaTest, ADeadInstancesCountsStopCounting) {
  Instance a(keys, "a", counters), b(keys, "b", counters);
  ASSERT_TRUE(a.store.poll());
  ASSERT_TRUE(b.store.poll());
  EXPECT_TRUE(a.allocate("dave", 2));
  EXPECT_TRUE(a.allocate("dave", 2));
  EXPECT_FALSE(b.allocate("dave", 2));
  // A's load record expires (it died): its two allocations no longer hold B's slots.
  ASSERT_TRUE(redis.command({"DEL", keys.instance("a")}));
  EXPECT_TRUE(b.allocate("dave", 2));
  EXPECT_TRUE(b.allocate("dave", 2));
  EXPECT_FALSE(b.allocate("dave", 2));
}

TEST_F(SharedQuotaTest, AStartRewritesWhatAnEarlierRunLeft) {
  // A previous run of instance "a" died holding 3 of erin's allocations.
  ASSERT_TRUE(redis.command({"HSET", keys.quota("erin"), "a", "3"}));
  Instance a(keys, "a", counters);
  EXPECT_TRUE(a.store.dirty());
  ASSERT_TRUE(a.store.poll());
  EXPECT_FALSE(a.store.dirty());
  EXPECT_EQ(field("erin", "a"), 0);
  EXPECT_TRUE(a.allocate("erin", 1));
}

TEST_F(SharedQuotaTest, RedisAwayAdmitsOnTheLocalLimitCountsAndRewritesAfter) {
  RedisClient::Options fast;
  fast.timeout = std::chrono::milliseconds(200);
  fast.retry_interval = std::chrono::milliseconds(0);
  Instance a(keys, "a", counters, fast);
  ASSERT_TRUE(a.store.poll());
  EXPECT_TRUE(a.allocate("frank", 2));
  ASSERT_TRUE(RedisServer::get().run("stop"));
  // Fail-safe: admitted (the process's own limit admitted it), counted, marked for rewrite.
  EXPECT_TRUE(a.allocate("frank", 2));
  EXPECT_TRUE(a.allocate("grace", 2));
  EXPECT_GE(counters.failed(SharedOp::kQuotaAdmit), 2u);
  EXPECT_TRUE(a.store.dirty());
  a.end("grace");
  EXPECT_FALSE(a.store.poll());
  // Redis comes back empty (it lost its memory): the counts are rewritten from the local ones.
  ASSERT_TRUE(RedisServer::get().run("start"));
  alive("a");
  alive("b");
  bool ok = false;
  for (int i = 0; i < 50 && !(ok = a.store.poll()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(ok);
  EXPECT_FALSE(a.store.dirty());
  EXPECT_EQ(field("frank", "a"), 2);
  EXPECT_EQ(field("grace", "a"), 0);
  Instance b(keys, "b", counters);
  EXPECT_FALSE(b.allocate("frank", 2));
}

TEST_F(SharedQuotaTest, UserLimitsAskTheStoreAndGiveBackWhatItRefused) {
  Instance b(keys, "b", counters);
  EXPECT_TRUE(b.allocate("henry", 2));
  RedisClient admit_redis(RedisServer::get().url()), own(RedisServer::get().url());
  core::UserLimits limits;
  SharedQuotaStore store(admit_redis, own, keys, "a", [&limits] { return limits.user_counts(); },
                         counters);
  limits.set_shared_quota(&store);
  ASSERT_TRUE(store.poll());
  core::QuotaRefusal why = core::QuotaRefusal::kNone;
  core::UserSlot first = limits.acquire("henry", 2, 0, &why);
  EXPECT_TRUE(first);
  EXPECT_EQ(field("henry", "a"), 1);
  // The process allows a second (1 < 2); the cluster does not (B holds one).
  const core::UserSlot second = limits.acquire("henry", 2, 0, &why);
  EXPECT_FALSE(second);
  EXPECT_EQ(why, core::QuotaRefusal::kUser);
  EXPECT_EQ(limits.allocations("henry"), 1u);  // the refused one's local count taken back
  EXPECT_EQ(field("henry", "a"), 1);           // and never counted in Redis
  first = core::UserSlot();  // the allocation ends
  EXPECT_EQ(limits.allocations("henry"), 0u);
  ASSERT_TRUE(store.poll());
  EXPECT_EQ(field("henry", "a"), 0);
  EXPECT_TRUE(limits.acquire("henry", 2, 0, &why));
}

}  // namespace
}  // namespace callrelay::cluster
