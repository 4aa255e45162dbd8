// Graceful drain and the main thread's signal loop. A drain (SIGTERM, or the admin endpoint)
// turns /readyz 503 and makes the relay refuse new allocations while live ones keep relaying;
// the process stops once the last one has ended or at the drain's deadline. A second SIGTERM,
// or SIGINT, stops at once; SIGHUP reloads the configuration.
#pragma once

#include <signal.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "relay/core/types.hpp"

namespace callrelay::app {

/// The drain's state: started from any thread (the signal loop, the HTTP admin endpoint),
/// watched by the signal loop. Times are net::now_ms() (monotonic). Thread-safe.
class Drain {
 public:
  /// `default_deadline_s`: drain.deadline_s. `begin` runs once, on the first start(): it must
  /// be thread-safe (it turns /readyz 503 and tells the workers to refuse new Allocates).
  Drain(uint32_t default_deadline_s, std::function<void()> begin);

  /// Starts draining at `now` with a deadline `deadline_s` seconds on (default: the configured
  /// one). Once draining, a later call can only bring the deadline closer. Returns the seconds
  /// left until the deadline.
  uint32_t start(std::optional<uint32_t> deadline_s, core::TimeMs now);
  bool started() const;
  /// When the drain started and when it must end (valid once started()).
  core::TimeMs started_at() const;
  core::TimeMs deadline() const;

 private:
  const uint32_t default_deadline_s_;
  const std::function<void()> begin_;
  mutable std::mutex mu_;  ///< guards the fields below
  bool started_ = false;
  core::TimeMs started_at_ = 0;
  core::TimeMs deadline_ = 0;
};

/// What the signal loop watches and does, all thread-safe (net::Server's calls are).
struct ServerHooks {
  std::function<uint64_t()> allocations;         ///< live allocations, all workers
  std::function<core::TimeMs()> oldest_heartbeat;  ///< net::Server::oldest_heartbeat
  std::function<void()> end_remaining;           ///< at the deadline: end what is left
  std::function<core::TimeMs()> now;             ///< net::now_ms
};

/// Why run() returned.
enum class StopCause { kDrained, kDeadline, kSignal };

/// The main thread's signal handling. Construct it before any thread starts: it blocks SIGINT,
/// SIGTERM and SIGHUP, and threads started later inherit the mask, so only run() sees them.
class SignalLoop {
 public:
  /// A worker whose heartbeat is older than this stops the watchdog pings (workers tick at
  /// least once a second).
  static constexpr core::TimeMs kHeartbeatStaleMs = 5000;

  SignalLoop();
  /// What SIGHUP does (a configuration reload). Without it SIGHUP is logged and ignored.
  void set_reload(std::function<void()> reload) { reload_ = std::move(reload); }

  /// Serves until the process should stop: SIGTERM starts `drain` or lets the one the admin
  /// endpoint started run on (a second SIGTERM stops at once), SIGINT stops at once; a drain
  /// ends when every worker has ticked since it began and no allocation is left, or at its
  /// deadline (after hooks.end_remaining). Pings the service manager's watchdog while every
  /// worker heartbeats.
  StopCause run(Drain& drain, const ServerHooks& hooks);

 private:
  /// Handles one signal; a StopCause when the process must stop now.
  std::optional<StopCause> on_signal(int sig, Drain& drain, const ServerHooks& hooks);
  /// Watchdog ping and status line, at most as often as they are due.
  void keep_alive(const Drain& drain, const ServerHooks& hooks, core::TimeMs now);

  sigset_t signals_{};
  std::function<void()> reload_;
  core::TimeMs watchdog_every_ms_ = 0;  ///< 0: no watchdog
  core::TimeMs next_ping_ = 0;
  core::TimeMs next_status_ = 0;
  bool stalled_logged_ = false;
  bool sigterm_seen_ = false;  ///< the next SIGTERM stops at once
};

}  // namespace callrelay::app
