// Drives many TURN sessions through their control sequence over real UDP sockets: one epoll
// loop, retransmission on a fixed timeout, and a cap on transactions in flight.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "bench/loadgen/options.hpp"
#include "bench/loadgen/turn_session.hpp"

namespace callrelay::bench {

/// What each session is driven towards.
enum class Goal {
  kReady,  ///< allocation + permission + channel, then hold it (data modes, hold mode)
  kCycle,  ///< allocation + permission + channel + Refresh 0, over and over (allocs mode)
  kStorm,  ///< credentialed Allocates until the storm budget is spent (storm mode)
};

struct ControlStats {
  uint64_t ready = 0;          ///< sessions that reached kReady
  uint64_t cycles = 0;         ///< completed allocate..release cycles
  uint64_t failed = 0;         ///< sessions that gave up
  uint64_t timeouts = 0;       ///< of which: no answer after all retransmissions
  uint64_t bad_integrity = 0;  ///< success responses failing MESSAGE-INTEGRITY
  uint64_t no_integrity = 0;   ///< success responses without MESSAGE-INTEGRITY
  uint64_t retransmits = 0;
  uint64_t storm_allocates = 0;         ///< credentialed Allocates sent in storm mode
  uint64_t storm_refused = 0;           ///< of which answered with an error
  uint64_t renewals = 0;                ///< held sessions' completed refreshes
  uint64_t renewals_failed = 0;         ///< held sessions lost to a failed refresh
  uint64_t renewal_late_max_ns = 0;     ///< the most a refresh started after it was due
  std::map<uint16_t, uint64_t> errors;  ///< unexpected error codes seen (0: no ERROR-CODE)
  std::string first_failure;            ///< what the first failing session saw
};

/// Client ports are taken in turn from this span (inside the ephemeral range, where client
/// ports belong), from a random start, and kCycle and kStorm give every new attempt a fresh
/// 5-tuple, so a port comes back only after thousands of attempts: coturn deletes a released
/// allocation about a second late and answers 437 to a new Allocate from that 5-tuple until then.
inline constexpr uint16_t kFirstCyclePort = 33000;
inline constexpr uint16_t kLastCyclePort = 60999;

class ControlDriver {
 public:
  ControlDriver(const Options& options, Goal goal);
  ~ControlDriver();
  ControlDriver(const ControlDriver&) = delete;
  ControlDriver& operator=(const ControlDriver&) = delete;

  /// Opens `n` more client sockets, queued to start. False when a socket could not be opened
  /// (fd limit); the sessions opened so far stay.
  bool add_sessions(size_t n);
  /// Runs the loop until `done()` returns true (checked every pass), the deadline passes or a
  /// stop signal arrives. Returns whether `done()` was reached.
  bool run_until(const std::function<bool()>& done, uint64_t deadline_ns);
  /// Sessions neither queued nor in a transaction (ready, done or failed); a held session
  /// renewing its allocation counts as ready.
  bool all_settled() const;
  void set_storm_budget(uint64_t n) { storm_budget_ = n; }
  /// kReady: from now on every session that becomes ready sends CreatePermission every
  /// `permission_ns`, and ChannelBind then Refresh every `allocation_ns` (0: never), as a
  /// browser keeps its allocation. Refreshes fall due as spread out as the sessions became
  /// ready and go before new sessions in the transaction slots.
  void enable_renewals(uint64_t permission_ns, uint64_t allocation_ns);
  /// Ready sessions now: reached kReady and not lost to a failed refresh.
  uint64_t held() const { return stats_.ready - stats_.renewals_failed; }
  /// Client descriptors open: one per session, or the shared ones (--source-addresses).
  size_t socket_count() const {
    return shared_fds_.empty() ? sessions_.size() : shared_fds_.size();
  }
  /// kCycle: sessions stop at the end of their current cycle.
  void stop_cycling() { cycling_ = false; }
  /// Deletes every ready allocation (Refresh with LIFETIME 0) so the server holds nothing from
  /// this run: the kernel reuses ephemeral ports, and a later run on the same 5-tuple would get
  /// 437. Runs until all answered or the deadline. Returns how many were released.
  uint64_t release_all(uint64_t deadline_ns);

  const ControlStats& stats() const { return stats_; }
  const std::vector<Session>& sessions() const { return sessions_; }

 private:
  struct Due {
    uint64_t at_ns;
    uint32_t idx;
    Renewal what;
    bool operator>(const Due& o) const { return at_ns > o.at_ns; }
  };

  void schedule(uint32_t idx, Renewal what, uint64_t now);
  void start_due_renewals(uint64_t now);
  void finish_renewal(uint32_t idx);
  void drain_shared(uint32_t sock);
  void start(uint32_t idx);
  void send(Session& s);
  void advance(uint32_t idx, Step next);
  void on_datagram(uint32_t idx, std::span<const uint8_t> bytes);
  void on_success(uint32_t idx);
  void on_error(uint32_t idx);
  void fail(uint32_t idx, const std::string& why);
  void drain(uint32_t idx);
  void retransmit_due(uint64_t now);
  void refill();
  void reopen(uint32_t idx);
  int open_socket();

  const Options& options_;
  Goal goal_;
  int epoll_ = -1;
  std::mt19937_64 rng_;
  std::vector<Session> sessions_;
  std::vector<uint32_t> pending_;    ///< sessions waiting for a transaction slot (LIFO)
  std::vector<uint32_t> active_;     ///< sessions with a transaction in flight
  std::vector<uint32_t> releasing_;  ///< ready sessions waiting to send Refresh 0
  uint64_t storm_budget_ = 0;
  bool cycling_ = true;
  uint64_t next_scan_ns_ = 0;
  uint16_t next_port_ = kFirstCyclePort;
  uint64_t sockets_opened_ = 0;  ///< picks each socket's source address (--sources)
  std::vector<int> shared_fds_;  ///< --source-addresses: socket k serves sessions kN..kN+N-1
  uint64_t permission_ns_ = 0;   ///< renewal periods; 0: that renewal is off
  uint64_t allocation_ns_ = 0;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;  ///< renewals, soonest first
  ControlStats stats_;
};

/// Converts a socket address into the codec's endpoint type.
stun::Endpoint to_endpoint(const sockaddr_in& addr);

}  // namespace callrelay::bench
