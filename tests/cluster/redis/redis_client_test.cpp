// The Redis client against a real redis-server: commands binary-safe, pipelines, Redis's own
// errors, a dead server as a cheap nullopt (counted), reconnection after a restart, and the
// subscriber receiving, losing and regaining its subscription. URL parsing and masking.
#include "cluster/redis/redis_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "redis_test_support.hpp"

namespace callrelay::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

RedisUrl url_of(const test::RedisServer& s) {
  std::string why;
  auto u = parse_redis_url(s.url(), &why);
  if (!u) throw std::runtime_error("bad test URL " + s.url() + ": " + why);
  return *u;
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(RedisUrl, ParsesTheForms) {
  auto u = parse_redis_url("redis://127.0.0.1:6390/3");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6390);
  EXPECT_EQ(u->db, 3u);
  EXPECT_EQ(u->password, "");

  u = parse_redis_url("redis://:p%40ss@redis.example.net");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "redis.example.net");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->password, "p@ss");
  EXPECT_EQ(u->user, "");

  u = parse_redis_url("redis://relay:secret@[::1]:7000");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 7000);
  EXPECT_EQ(u->user, "relay");
  EXPECT_EQ(u->password, "secret");

  u = parse_redis_url("unix:///run/redis/redis.sock?db=2&password=x%20y");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->unix_path, "/run/redis/redis.sock");
  EXPECT_EQ(u->db, 2u);
  EXPECT_EQ(u->password, "x y");
}

TEST(RedisUrl, RefusesMalformedOnesWithAReason) {
  for (const char* bad :
       {"", "http://h", "redis://", "redis://:pw@", "redis://h:0", "redis://h:65536",
        "redis://h:x", "redis://h/x", "redis://h/1?x=y", "redis://[::1", "redis://h:1 2",
        "unix://relative", "unix:///s?db=q", "unix:///s?nope=1", "redis://h/%zz", "redis://:%4@h"}) {
    std::string why;
    EXPECT_FALSE(parse_redis_url(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

TEST(RedisUrl, MasksThePassword) {
  EXPECT_EQ(mask_redis_url("redis://:s3cret@h:1/0"), "redis://:***@h:1/0");
  EXPECT_EQ(mask_redis_url("redis://u:s3cret@h"), "redis://u:***@h");
  EXPECT_EQ(mask_redis_url("redis://s3cret@h"), "redis://***@h");
  EXPECT_EQ(mask_redis_url("unix:///s?db=1&password=s3cret"), "unix:///s?db=1&password=***");
  EXPECT_EQ(mask_redis_url("redis://h:1"), "redis://h:1");
}

TEST(RedisClient, CommandsPipelinesAndErrors) {
  test::RedisServer server;
  RedisLinkCounters counters;
  RedisClient client(url_of(server), {}, &counters);
  const std::string binary("a\0b\r\n\xff", 6);
  auto r = client.command({"SET", "k", binary});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, RedisReply::Type::kStatus);
  r = client.command({"GET", "k"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, RedisReply::Type::kString);
  EXPECT_EQ(r->str, binary);
  r = client.command({"GET", "missing"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_nil());
  r = client.command({"LPUSH", "k", "x"});  // k holds a string
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_error());
  EXPECT_NE(r->str.find("WRONGTYPE"), std::string::npos);

  auto many = client.pipeline({{"INCR", "n"}, {"INCR", "n"}, {"HSET", "h", "f", "v"},
                               {"HGETALL", "h"}, {"NOSUCHCOMMAND"}});
  ASSERT_TRUE(many);
  ASSERT_EQ(many->size(), 5u);
  EXPECT_EQ((*many)[1].integer, 2);
  ASSERT_EQ((*many)[3].type, RedisReply::Type::kArray);
  ASSERT_EQ((*many)[3].elements.size(), 2u);
  EXPECT_EQ((*many)[3].elements[1].str, "v");
  EXPECT_TRUE((*many)[4].is_error());
  EXPECT_TRUE(client.up());
  EXPECT_GE(counters.commands.load(), 9u);
  EXPECT_EQ(counters.failures.load(), 0u);
  EXPECT_FALSE(client.command({}));  // an empty command is refused, not sent
}

TEST(RedisClient, ADeadServerIsACheapNulloptAndTheClientComesBack) {
  test::RedisServer server;
  RedisLinkCounters counters;
  RedisClient client(url_of(server), {.timeout = 300ms, .retry_interval = 200ms}, &counters);
  ASSERT_TRUE(client.command({"SET", "k", "1"}));
  server.kill();
  EXPECT_FALSE(client.command({"GET", "k"}));
  EXPECT_FALSE(client.up());
  // Within the retry interval no connection is attempted: many calls cost nothing.
  const auto t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(client.command({"GET", "k"}));
  EXPECT_LT(Clock::now() - t0, 5s);  // a generous functional bound, not a speed claim
  EXPECT_GE(counters.failures.load(), 1001u);

  server.start();  // empty: the tests' servers keep nothing across restarts
  EXPECT_TRUE(eventually([&] {
    auto r = client.command({"PING"});
    return r && r->str == "PONG";
  }));
  EXPECT_TRUE(client.up());
  EXPECT_GE(counters.reconnects.load(), 1u);
}

TEST(RedisClient, AnUnreachableAddressFailsWithinTheTimeout) {
  RedisUrl url;
  url.host = "127.0.0.1";
  url.port = 1;  // nothing listens: refused at once
  RedisClient client(url, {.timeout = 200ms, .retry_interval = 0ms});
  EXPECT_FALSE(client.command({"PING"}));
  EXPECT_FALSE(client.up());
}

TEST(RedisClient, ConcurrentCallersEachGetTheirOwnReply) {
  test::RedisServer server;
  RedisClient client(url_of(server));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string key = "k" + std::to_string(t);
        const std::string value = std::to_string(i);
        auto r = client.pipeline({{"SET", key, value}, {"GET", key}});
        if (!r || (*r)[1].str != value) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

class Inbox {
 public:
  void push(std::string channel, std::string payload) {
    std::lock_guard lock(mu_);
    got_.emplace_back(std::move(channel), std::move(payload));
    cv_.notify_all();
  }
  bool wait_for(size_t n, std::chrono::milliseconds limit = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return got_.size() >= n; });
  }
  std::vector<std::pair<std::string, std::string>> got() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, std::string>> got_;
};

TEST(RedisSubscriber, ReceivesResubscribesAfterARestartAndStops) {
  test::RedisServer server;
  RedisClient pub(url_of(server), {.timeout = 300ms, .retry_interval = 100ms});
  Inbox inbox;
  std::atomic<int> ups{0}, downs{0};
  RedisSubscriber sub(
      url_of(server), {"a", "b"}, [&](const std::string& c, const std::string& p) { inbox.push(c, p); },
      [&](bool up) { (up ? ups : downs)++; });
  sub.start();
  ASSERT_TRUE(eventually([&] { return sub.subscribed(); }));
  EXPECT_EQ(ups.load(), 1);
  const std::string binary("x\0y", 3);
  ASSERT_TRUE(pub.command({"PUBLISH", "a", "one"}));
  ASSERT_TRUE(pub.command({"PUBLISH", "c", "not subscribed"}));
  ASSERT_TRUE(pub.command({"PUBLISH", "b", binary}));
  ASSERT_TRUE(inbox.wait_for(2));
  auto got = inbox.got();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(std::string("a"), std::string("one")));
  EXPECT_EQ(got[1], std::make_pair(std::string("b"), binary));

  server.kill();
  ASSERT_TRUE(eventually([&] { return downs.load() == 1; }));
  EXPECT_FALSE(sub.subscribed());
  server.start();
  ASSERT_TRUE(eventually([&] { return sub.subscribed() && ups.load() == 2; }, 15s));
  ASSERT_TRUE(eventually([&] {
    auto r = pub.command({"PUBLISH", "a", "two"});
    return r && r->integer == 1;  // one subscriber received it
  }));
  ASSERT_TRUE(inbox.wait_for(3));
  EXPECT_EQ(inbox.got()[2].second, "two");

  const auto t0 = Clock::now();
  sub.stop();
  EXPECT_LT(Clock::now() - t0, 3s);
}

TEST(RedisSubscriber, WaitsForAServerThatIsNotThereYet) {
  test::RedisServer server;
  const RedisUrl url = url_of(server);
  server.stop();
  Inbox inbox;
  RedisSubscriber sub(url, {"a"}, [&](const std::string& c, const std::string& p) {
    inbox.push(c, p);
  });
  sub.start();
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(sub.subscribed());
  server.start();
  ASSERT_TRUE(eventually([&] { return sub.subscribed(); }, 15s));
  RedisClient pub(url);
  ASSERT_TRUE(pub.command({"PUBLISH", "a", "hello"}));
  ASSERT_TRUE(inbox.wait_for(1));
  sub.stop();
}

}  // namespace
}  // namespace callrelay::cluster
