// Revocations shared through a real Redis: written with their expiry, published, applied by
// the other instances (not by the one that made them), read back after a subscription was
// down, and kept while Redis is away.
#include "cluster/shared/revocation_sync.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/cluster/shared/redis_fixture.hpp"

namespace callrelay::cluster {
namespace {

using testing::RedisServer;
using testing::fresh_keys;

constexpr int64_t kNow = 1'800'000'000'000;  // wall ms; Redis only sees the difference

struct Applied {
  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> got;
  RevocationSync::Apply fn() {
    return [this](const std::string& u, int64_t until) {
      const std::lock_guard lock(mu);
      got.emplace_back(u, until);
    };
  }
  size_t size() {
    const std::lock_guard lock(mu);
    return got.size();
  }
};

class RevocationSyncTest : public ::testing::Test {
 protected:
  void SetUp() override { REQUIRE_REDIS(); }
  SharedKeys keys = fresh_keys();
  SharedCounters counters;
  RedisClient redis{RedisServer::get().url()};
};

TEST_F(RevocationSyncTest, WritesTheKeyWithTheRevocationsExpiry) {
  Applied applied;
  RevocationSync a(redis, keys, "a", applied.fn(), counters);
  a.revoked("1800000600:alice", kNow + 600'000);
  EXPECT_EQ(a.pending(), 1u);
  ASSERT_TRUE(a.poll(kNow));
  EXPECT_EQ(a.pending(), 0u);
  const auto value = redis.command({"GET", keys.revoked("1800000600:alice")});
  ASSERT_TRUE(value);
  EXPECT_EQ(value->str, std::to_string(kNow + 600'000));
  const auto ttl = redis.command({"PTTL", keys.revoked("1800000600:alice")});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, 590'000);
  EXPECT_LE(ttl->integer, 600'000);
  EXPECT_EQ(counters.revocations_published.load(), 1u);
  EXPECT_EQ(applied.size(), 0u);  // its own are not applied again
}

TEST_F(RevocationSyncTest, AnExpiredRevocationIsNotShared) {
  Applied applied;
  RevocationSync a(redis, keys, "a", applied.fn(), counters);
  a.revoked("1:old", kNow - 1);
  ASSERT_TRUE(a.poll(kNow));
  const auto exists = redis.command({"EXISTS", keys.revoked("1:old")});
  ASSERT_TRUE(exists);
  EXPECT_EQ(exists->integer, 0);
}

TEST_F(RevocationSyncTest, AnotherInstanceReceivesThePublishedRevocation) {
  Applied on_a, on_b;
  RevocationSync a(redis, keys, "a", on_a.fn(), counters);
  RedisClient redis_b(RedisServer::get().url());
  RevocationSync b(redis_b, keys, "b", on_b.fn(), counters);
  RedisSubscriber sub(
      RedisServer::get().url(), {b.channel()},
      [&b](const std::string&, const std::string& payload) { b.on_message(payload); });
  sub.start();
  for (int i = 0; i < 200 && !sub.subscribed(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(sub.subscribed());
  a.revoked("1800000600:bob", kNow + 60'000);
  ASSERT_TRUE(a.poll(kNow));
  for (int i = 0; i < 200 && on_b.size() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  sub.stop();
  ASSERT_EQ(on_b.size(), 1u);
  EXPECT_EQ(on_b.got[0].first, "1800000600:bob");
  EXPECT_EQ(on_b.got[0].second, kNow + 60'000);
  EXPECT_EQ(on_a.size(), 0u);
}

TEST_F(RevocationSyncTest, MalformedAndOwnMessagesAreIgnored) {
  Applied applied;
  RevocationSync b(redis, keys, "b", applied.fn(), counters);
  for (const std::string& bad : {
           std::string(), std::string("{"), std::string("[]"), std::string("null"),
           std::string(R"({"username":"u","until":"5","from":"a"})"),
           std::string(R"({"username":"","until":5,"from":"a"})"),
           std::string(R"({"username":"u","until":-5,"from":"a"})"),
           std::string(R"({"username":7,"until":5,"from":"a"})"),
           std::string(R"({"username":"u","until":5})"),
           std::string(R"({"username":"u","until":5,"from":"b"})"),
           R"({"username":")" + std::string(kMaxSharedUsernameBytes + 1, 'x') +
               R"(","until":5,"from":"a"})",
       })
    b.on_message(bad);
  EXPECT_EQ(applied.size(), 0u);
  b.on_message(R"({"username":"u","until":5,"from":"a"})");
  EXPECT_EQ(applied.size(), 1u);
}

TEST_F(RevocationSyncTest, CatchUpReadsRevocationsPublishedWhileUnsubscribed) {
  Applied on_a, on_b;
  RevocationSync a(redis, keys, "a", on_a.fn(), counters);
  for (int i = 0; i < 700; ++i) a.revoked("1800000600:user" + std::to_string(i), kNow + 60'000);
  ASSERT_TRUE(a.poll(kNow));
  // Another prefix's revocation is none of this cluster's business.
  SharedKeys other = fresh_keys();
  ASSERT_TRUE(redis.command({"SET", other.revoked("x"), std::to_string(kNow + 60'000)}));
  RedisClient redis_b(RedisServer::get().url());
  RevocationSync b(redis_b, keys, "b", on_b.fn(), counters);
  b.request_catch_up();
  ASSERT_TRUE(b.poll(kNow));
  ASSERT_EQ(on_b.size(), 700u);
  for (const auto& [name, until] : on_b.got) {
    EXPECT_TRUE(name.starts_with("1800000600:user")) << name;
    EXPECT_EQ(until, kNow + 60'000);
  }
}

TEST_F(RevocationSyncTest, KeptAndCountedWhileRedisIsAwayThenShared) {
  Applied applied;
  RedisClient::Options fast;
  fast.timeout = std::chrono::milliseconds(200);
  fast.retry_interval = std::chrono::milliseconds(0);
  RedisClient own(RedisServer::get().url(), fast);
  RevocationSync a(own, keys, "a", applied.fn(), counters);
  ASSERT_TRUE(RedisServer::get().run("stop"));
  a.revoked("1800000600:carol", kNow + 60'000);
  EXPECT_FALSE(a.poll(kNow));
  EXPECT_EQ(a.pending(), 1u);
  EXPECT_GE(counters.failed(SharedOp::kRevocationPublish), 1u);
  ASSERT_TRUE(RedisServer::get().run("start"));
  bool sent = false;
  for (int i = 0; i < 50 && !(sent = a.poll(kNow)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(sent);
  EXPECT_EQ(a.pending(), 0u);
  const auto value = redis.command({"GET", keys.revoked("1800000600:carol")});
  ASSERT_TRUE(value);
  EXPECT_EQ(value->str, std::to_string(kNow + 60'000));
}

}  // namespace
}  // namespace callrelay::cluster
