// A real redis-server for the cluster tests (tests/integration/redis/redis_server.sh, on a
// unix socket in a temporary directory), started once per test program; each test uses a key
// prefix of its own, so tests never see each other's keys.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "cluster/redis/redis_client.hpp"
#include "cluster/shared/keys.hpp"

namespace callrelay::cluster::testing {

class RedisServer {
 public:
  static RedisServer& get() {
    static RedisServer server;
    return server;
  }
  const RedisUrl& url() const { return url_; }
  const std::string& url_text() const { return url_text_; }
  bool ok() const { return !url_text_.empty(); }
  /// stop, kill (as a crash), start, restart: the script's commands on this server.
  bool run(const std::string& cmd) {
    return std::system((script() + " " + cmd + " " + dir_ + " >/dev/null").c_str()) == 0;
  }
  ~RedisServer() {
    if (dir_.empty()) return;
    run("stop");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  RedisServer() {
    char tmpl[] = "/tmp/callrelay-cluster-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    FILE* p = ::popen((script() + " start " + dir_).c_str(), "r");
    if (p == nullptr) return;
    char buf[512] = {};
    if (std::fgets(buf, sizeof buf, p) != nullptr) url_text_ = buf;
    ::pclose(p);
    while (!url_text_.empty() && (url_text_.back() == '\n' || url_text_.back() == '\r'))
      url_text_.pop_back();
    if (auto u = parse_redis_url(url_text_)) url_ = *u;
    else url_text_.clear();
  }
  static std::string script() {
    return std::string("bash ") + CALLRELAY_SOURCE_DIR + "/tests/integration/redis/redis_server.sh";
  }
  std::string dir_;
  std::string url_text_;
  RedisUrl url_;
};

/// A prefix no other test uses.
inline SharedKeys fresh_keys() {
  static std::mt19937_64 rng(std::random_device{}());
  SharedKeys k;
  k.prefix = "test" + std::to_string(rng()) + ":";
  return k;
}

#define REQUIRE_REDIS()                                                              \
  do {                                                                               \
    ASSERT_TRUE(::callrelay::cluster::testing::RedisServer::get().ok())              \
        << "redis-server did not start (Debian package redis-server)";               \
  } while (0)

}  // namespace callrelay::cluster::testing
