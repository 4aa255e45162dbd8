// Revocations shared by every instance of a cluster. A revocation made here is written to
// <prefix>revoked:<username> (expiring when the revocation does) and published on
// <prefix>revocations; every instance subscribes and applies what the others publish to its
// Authenticator, and after each (re)subscription reads the keys back, since messages published
// while it was not subscribed are lost. Redis unreachable: the revocation holds on this
// instance at once, stays queued, is counted, and is shared when Redis answers again.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include "cluster/redis/redis_client.hpp"
#include "cluster/shared/counters.hpp"
#include "cluster/shared/keys.hpp"

namespace callrelay::cluster {

/// The longest username a message or key may carry (RFC 8489 section 14.3: USERNAME is under
/// 513 bytes); longer ones are ignored.
inline constexpr size_t kMaxSharedUsernameBytes = 512;

class RevocationSync {
 public:
  /// Applies another instance's revocation here: `username` refused until `until_ms` (Unix
  /// ms). Called on the subscriber's thread and in poll().
  using Apply = std::function<void(const std::string& username, int64_t until_ms)>;

  /// `redis` (a command connection) and `counters` outlive this object. At most `max_pending`
  /// revocations wait for Redis; beyond that the oldest are dropped (and counted).
  RevocationSync(RedisClient& redis, SharedKeys keys, std::string instance_id, Apply apply,
                 SharedCounters& counters, size_t max_pending = 100'000);

  /// A revocation made on this instance (the Authenticator's on_revoke hook, any thread):
  /// queued for poll(), never blocking on Redis. `wake` (set once, before use) is called so
  /// that the thread running poll() does not wait for its next tick.
  void revoked(const std::string& username, int64_t until_ms);
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

  /// A message on revocation_channel() (the subscriber's thread). Malformed ones are ignored.
  void on_message(const std::string& payload);
  /// The subscription is (again) up: revocations published meanwhile were missed; the next
  /// poll() reads them from their keys.
  void request_catch_up() { catch_up_.store(true); }

  /// Sends the queued revocations (one pipeline) and catches up when asked. `wall_now`: Unix
  /// ms. Returns false when Redis did not answer (the work stays for the next call).
  bool poll(int64_t wall_now);

  size_t pending() const;
  const std::string& channel() const { return channel_; }

 private:
  bool send_pending(int64_t wall_now);
  bool catch_up(int64_t wall_now);

  RedisClient& redis_;
  SharedKeys keys_;
  std::string instance_id_;
  std::string channel_;
  Apply apply_;
  SharedCounters& counters_;
  size_t max_pending_;
  std::function<void()> wake_;
  mutable std::mutex mu_;  ///< guards pending_
  std::deque<std::pair<std::string, int64_t>> pending_;
  std::atomic<bool> catch_up_{false};
  bool link_ok_ = true;  ///< poll()'s thread only: whether to log the next failure
};

}  // namespace callrelay::cluster
