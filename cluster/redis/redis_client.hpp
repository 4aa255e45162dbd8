// A small client for the Redis server that instances of one cluster share (hiredis, Debian's
// libhiredis-dev): one blocking command connection with a timeout that reconnects by itself,
// and a subscriber on its own thread that resubscribes after Redis restarts. Callers never
// block longer than the timeout and never see an exception: an unreachable Redis is a
// nullopt reply, which the caller turns into its own fail-safe behaviour and counts.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/redis/redis_url.hpp"

namespace callrelay::cluster {

/// One reply, hiredis' reply tree copied out.
struct RedisReply {
  enum class Type : uint8_t { kNil, kStatus, kError, kString, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  ///< kStatus, kError, kString
  long long integer = 0;
  std::vector<RedisReply> elements;  ///< kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
};

/// Counts what the link saw; read by metrics (any thread).
struct RedisLinkCounters {
  std::atomic<uint64_t> commands{0};     ///< commands answered
  std::atomic<uint64_t> failures{0};     ///< commands not answered (unreachable, timeout)
  std::atomic<uint64_t> reconnects{0};   ///< connections made after the first
  std::atomic<bool> up{false};           ///< the last attempt reached Redis
};

/// One command connection. Thread-safe (one command at a time, under a mutex). Connects on
/// first use and again after any failure, at most once per `retry_interval` so that a dead
/// Redis costs callers a cheap nullopt, not a connect timeout each time.
class RedisClient {
 public:
  struct Options {
    std::chrono::milliseconds timeout{500};          ///< connect and each command
    std::chrono::milliseconds retry_interval{1000};  ///< between connection attempts
  };
  RedisClient(RedisUrl url, Options opts, RedisLinkCounters* counters = nullptr);
  explicit RedisClient(RedisUrl url) : RedisClient(std::move(url), Options{}) {}
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// Runs one command (arguments binary-safe). nullopt: Redis was not reached or did not
  /// answer in time (the connection is dropped and made again later). A Redis error reply
  /// (WRONGTYPE, NOSCRIPT, ...) is a reply of type kError.
  std::optional<RedisReply> command(const std::vector<std::string>& args);
  /// Several commands in one round trip (pipelined, not a transaction): one reply each, or
  /// nullopt for all when the link failed part-way.
  std::optional<std::vector<RedisReply>> pipeline(const std::vector<std::vector<std::string>>& cmds);
  /// Whether the last attempt reached Redis.
  bool up() const;

 private:
  bool ensure_connected_locked();
  void drop_locked();
  RedisUrl url_;
  Options opts_;
  RedisLinkCounters own_counters_;
  RedisLinkCounters* counters_;
  mutable std::mutex mu_;
  void* ctx_ = nullptr;  ///< redisContext*, under mu_
  std::chrono::steady_clock::time_point next_attempt_{};
  bool connected_once_ = false;
};

/// Subscribes to channels (exact names) on a connection of its own and calls `on_message` for
/// each message, on its own thread. After a failure it reconnects with a growing pause (50 ms to
/// 2 s) and subscribes again; `on_link(true)` is called once subscribed (again after every
/// reconnection: messages published while it was down are lost, the caller resynchronises),
/// `on_link(false)` when the link drops. Callbacks must not block for long.
class RedisSubscriber {
 public:
  using OnMessage = std::function<void(const std::string& channel, const std::string& payload)>;
  using OnLink = std::function<void(bool up)>;
  RedisSubscriber(RedisUrl url, std::vector<std::string> channels, OnMessage on_message,
                  OnLink on_link = {}, RedisLinkCounters* counters = nullptr);
  ~RedisSubscriber();  ///< stops
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

  void start();
  /// Returns once the thread has ended (within about 100 ms).
  void stop();
  bool subscribed() const { return subscribed_.load(); }

 private:
  void run();
  RedisUrl url_;
  std::vector<std::string> channels_;
  OnMessage on_message_;
  OnLink on_link_;
  RedisLinkCounters own_counters_;
  RedisLinkCounters* counters_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> subscribed_{false};
  std::thread thread_;
};

}  // namespace callrelay::cluster
