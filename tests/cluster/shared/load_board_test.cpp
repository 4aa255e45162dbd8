// Load and health through a real Redis: every instance's record read back, credentials
// carrying the least-loaded one's URIs (spreading a burst within one interval), this
// instance's own URIs when nothing fresh is known, records that expire or are withdrawn.
#include "cluster/shared/load_board.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "tests/cluster/shared/redis_fixture.hpp"

namespace callrelay::cluster {
namespace {

using testing::RedisServer;
using testing::fresh_keys;
using Clock = std::chrono::steady_clock;

InstanceLoad load(std::string id, uint64_t allocations, std::string region = "",
                  bool draining = false) {
  InstanceLoad l;
  l.uris = {"turn:" + id + ".example.net:3478?transport=udp"};
  l.id = std::move(id);
  l.region = std::move(region);
  l.allocations = allocations;
  l.draining = draining;
  return l;
}

class LoadBoardTest : public ::testing::Test {
 protected:
  void SetUp() override { REQUIRE_REDIS(); }
  LoadBoard board(std::vector<std::string> own = {"turn:self.example.net:3478?transport=udp"},
                  LoadBoard::Options opts = {}) {
    return LoadBoard(redis, keys, std::move(own), counters, opts);
  }
  SharedKeys keys = fresh_keys();
  SharedCounters counters;
  RedisClient redis{RedisServer::get().url()};
};

TEST_F(LoadBoardTest, CredentialsCarryTheLeastLoadedInstance) {
  LoadBoard b = board();
  ASSERT_TRUE(b.publish(load("a", 10)));
  ASSERT_TRUE(b.publish(load("b", 3)));
  ASSERT_TRUE(b.publish(load("c", 0, "", true)));  // draining: left out
  ASSERT_TRUE(b.publish(load("d", 7, "eu-west")));
  const auto now = Clock::now();
  ASSERT_TRUE(b.refresh(now));
  EXPECT_EQ(b.instances().size(), 4u);
  EXPECT_EQ(counters.instances_healthy.load(), 3u);
  EXPECT_EQ(b.uris_for("", now), load("b", 0).uris);
  EXPECT_EQ(b.uris_for("eu-west", now), load("d", 0).uris);
  EXPECT_EQ(counters.credential_fallbacks.load(), 0u);
}

TEST_F(LoadBoardTest, ABurstSpreadsBeforeTheNextRead) {
  LoadBoard b = board();
  ASSERT_TRUE(b.publish(load("a", 2)));
  ASSERT_TRUE(b.publish(load("b", 0)));
  const auto now = Clock::now();
  ASSERT_TRUE(b.refresh(now));
  // b takes the first two (0, 1), then a and b alternate from 2 each.
  std::vector<std::string> firsts;
  for (int i = 0; i < 4; ++i) firsts.push_back(b.uris_for("", now).front());
  EXPECT_EQ(firsts, (std::vector<std::string>{load("b", 0).uris[0], load("b", 0).uris[0],
                                              load("a", 0).uris[0], load("b", 0).uris[0]}));
}

TEST_F(LoadBoardTest, OwnUrisWhenNothingFreshIsKnown) {
  LoadBoard b = board();
  const auto now = Clock::now();
  // Never read.
  EXPECT_EQ(b.uris_for("", now), std::vector<std::string>{"turn:self.example.net:3478?transport=udp"});
  ASSERT_TRUE(b.publish(load("a", 1)));
  ASSERT_TRUE(b.refresh(now));
  EXPECT_EQ(b.uris_for("", now), load("a", 0).uris);
  // Read too long ago (Redis unreachable since).
  EXPECT_EQ(b.uris_for("", now + std::chrono::seconds(4)),
            std::vector<std::string>{"turn:self.example.net:3478?transport=udp"});
  EXPECT_EQ(counters.credential_fallbacks.load(), 2u);
}

TEST_F(LoadBoardTest, RecordsExpireAndAreWithdrawn) {
  LoadBoard::Options short_ttl;
  short_ttl.ttl = std::chrono::milliseconds(200);
  LoadBoard b = board({}, short_ttl);
  ASSERT_TRUE(b.publish(load("a", 1)));
  ASSERT_TRUE(b.publish(load("b", 1)));
  ASSERT_TRUE(b.refresh(Clock::now()));
  EXPECT_EQ(b.instances().size(), 2u);
  b.withdraw("b");
  ASSERT_TRUE(b.refresh(Clock::now()));
  ASSERT_EQ(b.instances().size(), 1u);
  EXPECT_EQ(b.instances()[0].id, "a");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE(b.refresh(Clock::now()));
  EXPECT_TRUE(b.instances().empty());
}

TEST_F(LoadBoardTest, ForeignAndMalformedRecordsAreIgnored) {
  LoadBoard b = board();
  ASSERT_TRUE(b.publish(load("a", 5)));
  ASSERT_TRUE(redis.command({"SET", keys.instance("junk"), "not json"}));
  // A record that speaks for another instance than its key names.
  ASSERT_TRUE(redis.command({"SET", keys.instance("x"), to_json(load("a", 0))}));
  ASSERT_TRUE(b.refresh(Clock::now()));
  ASSERT_EQ(b.instances().size(), 1u);
  EXPECT_EQ(b.instances()[0].allocations, 5u);
}

TEST_F(LoadBoardTest, RedisAwayCountsAndKeepsOwnUris) {
  RedisClient::Options fast;
  fast.timeout = std::chrono::milliseconds(200);
  fast.retry_interval = std::chrono::milliseconds(0);
  RedisClient own(RedisServer::get().url(), fast);
  LoadBoard b(own, keys, {"turn:self.example.net:3478?transport=udp"}, counters, {});
  ASSERT_TRUE(RedisServer::get().run("stop"));
  EXPECT_FALSE(b.publish(load("a", 1)));
  EXPECT_FALSE(b.refresh(Clock::now()));
  EXPECT_GE(counters.failed(SharedOp::kLoadPublish), 1u);
  EXPECT_GE(counters.failed(SharedOp::kLoadRead), 1u);
  EXPECT_EQ(b.uris_for("", Clock::now()),
            std::vector<std::string>{"turn:self.example.net:3478?transport=udp"});
  ASSERT_TRUE(RedisServer::get().run("start"));
}

}  // namespace
}  // namespace callrelay::cluster
