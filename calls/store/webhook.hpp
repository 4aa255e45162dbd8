// Posts each finished call record to the app's webhook (calls.webhook), signed so that the
// receiver can tell it came from this server and was not replayed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>

#include "calls/core/config.hpp"
#include "calls/core/record.hpp"

namespace callrelay::calls {

/// "sha256=" + lowercase hex HMAC-SHA256(secret, timestamp + "." + body): the value of
/// X-Callrelay-Signature. Receivers recompute it over the raw body and the
/// X-Callrelay-Timestamp header, compare in constant time and refuse old timestamps.
std::string webhook_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body);

/// Delivers records as `POST url` with body to_json(record) on a thread of its own.
///
/// Request headers: Content-Type: application/json, X-Callrelay-Event: call.ended,
/// X-Callrelay-Timestamp: <Unix seconds>, X-Callrelay-Signature (webhook_signature; omitted
/// when the secret is empty). A 2xx answer delivers; any other status, a network error or a
/// timeout is retried with exponential backoff and jitter, up to max_attempts attempts, then
/// the record is given up and counted as failed. Redirects are not followed and HTTPS
/// certificates are verified. A record that waits for its retry does not hold back the others.
///
/// Any thread may call enqueue() and the counters.
class Webhook {
 public:
  struct Options {
    std::chrono::milliseconds backoff_base{1'000};  ///< the wait after the first failure
    std::chrono::milliseconds backoff_max{300'000};
  };

  /// Throws std::invalid_argument unless config.url is an http:// or https:// URL.
  explicit Webhook(WebhookConfig config);
  Webhook(WebhookConfig config, Options options);
  /// Stops at once: an in-flight request is aborted, no backoff is waited out, and records
  /// still queued are not sent (logged with their count).
  ~Webhook();
  Webhook(const Webhook&) = delete;
  Webhook& operator=(const Webhook&) = delete;

  /// Queues the record for delivery and returns at once. False (counted as dropped) when
  /// queue_size records are already waiting.
  bool enqueue(const CallRecord& record);

  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }
  uint64_t pending() const { return pending_.load(std::memory_order_relaxed); }

 private:
  struct Item {
    std::string id;
    std::string body;
    uint32_t attempts = 0;
    std::chrono::steady_clock::time_point due;
  };
  class Client;

  void run();
  /// Takes the first item that is due out of the queue; nullopt (with the time the earliest
  /// one falls due, if any) when none is.
  std::optional<Item> take_due(std::optional<std::chrono::steady_clock::time_point>& wake_at);
  /// Counts one attempt's result; true when the item must be queued again for a retry.
  bool settle(Item& item, long status, const std::string& error);
  /// One signed POST of `body`: the HTTP status, or 0 with `error` set.
  long send(const std::string& body, std::string& error);
  std::chrono::milliseconds backoff(uint32_t attempts);

  WebhookConfig config_;
  Options options_;
  std::unique_ptr<Client> client_;  ///< used by the thread; its wakeup() by the destructor
  std::mt19937 rng_;                ///< jitter; used by the thread only

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;  ///< guarded by mutex_: waiting items, oldest first
  bool sending_ = false;    ///< guarded by mutex_: an item is out of queue_ on the wire
  std::atomic<bool> stopping_{false};

  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> pending_{0};

  std::thread thread_;  ///< last: starts after every member above exists
};

}  // namespace callrelay::calls
