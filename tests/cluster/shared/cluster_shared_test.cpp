// Two instances' shared state on one real Redis, threads and subscription included: a
// revocation on one is applied on the other within a second, each sees the other's load, and
// the metrics text counts what failed.
#include "cluster/shared/cluster_shared.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/cluster/shared/redis_fixture.hpp"

namespace callrelay::cluster {
namespace {

using testing::RedisServer;
using testing::fresh_keys;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Node {
  Node(const SharedKeys& keys, const std::string& id, uint64_t allocations)
      : allocations_(allocations) {
    ClusterSharedOptions o;
    o.url = RedisServer::get().url();
    o.instance_id = id;
    o.uris = {"turn:" + id + ".example.net:3478?transport=udp"};
    o.keys = keys;
    o.interval = std::chrono::milliseconds(100);
    shared = std::make_unique<ClusterShared>(
        o,
        LocalProbes{[this] { return allocations_.load(); }, {}, [] { return false; },
                    [] { return std::vector<std::pair<std::string, uint32_t>>{}; }, wall_ms},
        [this](const std::string& u, int64_t until) {
          const std::lock_guard lock(mu);
          applied.emplace_back(u, until);
        });
  }
  size_t applied_count() {
    const std::lock_guard lock(mu);
    return applied.size();
  }
  std::atomic<uint64_t> allocations_;
  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> applied;
  std::unique_ptr<ClusterShared> shared;
};

template <typename F>
bool eventually(F cond, std::chrono::milliseconds within) {
  const auto end = std::chrono::steady_clock::now() + within;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(ClusterShared, ARevocationReachesTheOtherInstanceWithinASecond) {
  REQUIRE_REDIS();
  const SharedKeys keys = fresh_keys();
  Node a(keys, "a", 5), b(keys, "b", 1);
  a.shared->start();
  b.shared->start();
  // Both subscribed: a revocation is pushed, not found by a later catch-up.
  ASSERT_TRUE(eventually([&] { return a.shared->counters().subscriber.up.load() &&
                                      b.shared->counters().subscriber.up.load(); },
                         std::chrono::seconds(5)));
  const int64_t until = wall_ms() + 60'000;
  const auto t0 = std::chrono::steady_clock::now();
  a.shared->revoked("1800000600:alice", until);
  // The requirement is one second (about 10 ms on an idle machine, printed below). The bound
  // leaves room for a loaded test machine, where one command can wait out its 500 ms timeout
  // and the retry after it.
  ASSERT_TRUE(eventually([&] { return b.applied_count() == 1; }, std::chrono::seconds(5)));
  std::printf("revocation applied on b after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count()));
  EXPECT_EQ(b.applied[0].first, "1800000600:alice");
  EXPECT_EQ(b.applied[0].second, until);
  EXPECT_EQ(a.applied_count(), 0u);
  // Each reads the other's load: b (1 allocation) is the least loaded for both.
  ASSERT_TRUE(eventually([&] {
    return a.shared->uris_for("") == std::vector<std::string>{"turn:b.example.net:3478?transport=udp"};
  }, std::chrono::seconds(5)));
  const std::string text = b.shared->scrape_text();
  EXPECT_NE(text.find("callrelay_cluster_revocations_applied_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("callrelay_cluster_redis_failures_total{op=\"quota_admit\"} 0\n"),
            std::string::npos);
  b.shared->stop();
  a.shared->stop();
  // A clean stop withdraws the record.
  RedisClient redis(RedisServer::get().url());
  const auto left = redis.command({"EXISTS", keys.instance("a"), keys.instance("b")});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->integer, 0);
}

TEST(ClusterShared, ASubscriberThatWasDownCatchesUp) {
  REQUIRE_REDIS();
  const SharedKeys keys = fresh_keys();
  Node a(keys, "a", 0);
  a.shared->start();
  const int64_t until = wall_ms() + 60'000;
  a.shared->revoked("1800000600:late", until);
  ASSERT_TRUE(eventually([&] { return a.shared->counters().revocations_published.load() == 1; },
                         std::chrono::seconds(5)));
  // b starts after the message went out: it reads the key when it subscribes.
  Node b(keys, "b", 0);
  b.shared->start();
  ASSERT_TRUE(eventually([&] { return b.applied_count() >= 1; }, std::chrono::seconds(5)));
  EXPECT_EQ(b.applied[0].first, "1800000600:late");
}

}  // namespace
}  // namespace callrelay::cluster
