// The HTTP listener's connection budget: how many connections each source address and the
// whole listener may hold, which connection gives way when the listener is full, and the
// WebSocket counts (their own limits, per address and in total). Plain code and a mutex, no
// sockets, so the policy is testable on its own; the server asks it on every accept, request
// head, upgrade and close (never per byte), and counts what it refuses in LimitCounters.
//
// The rule that keeps /metrics, /healthz, /readyz and the API reachable: a connection that has
// not sent a complete request head (a new one, or a keep-alive one waiting for its next
// request) holds its slot only until a newcomer needs it. When the total is reached, the
// connection that has been waiting longest is evicted for the newcomer; a newcomer is refused
// only when every slot holds a request being served. One address holds at most
// max_per_address slots, so a single host can never fill the listener, and many hosts that
// connect and stay silent are evicted oldest first by anyone who actually sends a request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/limits.hpp"
#include "http/websocket.hpp"

namespace callrelay::http {

/// A connection the budget can end to make room (the server's session). Called without the
/// budget's lock held, from the thread that admits the newcomer.
class Evictable {
 public:
  virtual ~Evictable() = default;
  virtual void evict() = 0;
};

class ConnectionBudget {
 public:
  using Id = uint64_t;
  struct Limits {
    size_t max_per_address = 32;  ///< http.max_connections_per_address
    size_t max_total = 1024;      ///< http.max_connections
  };
  /// `counters` may be null (nothing counted); it must outlive the budget.
  ConnectionBudget(Limits limits, base::LimitCounters* counters);

  /// A new connection from `address`: its id (0 when refused: close the socket; counted as
  /// kHttpPerAddress or kHttpTotal). It starts out waiting for a request head. When the
  /// listener was full, the longest-waiting connection is evicted (counted as kHttpTotal) and
  /// its slot given to this one; `conn` is what a later newcomer may evict.
  Id open(const std::string& address, std::weak_ptr<Evictable> conn);
  /// The connection's request head is complete: it is served and cannot be evicted.
  void serving(Id id);
  /// The connection waits for its next request head (keep-alive): evictable again, as the
  /// newest waiter.
  void waiting(Id id);
  /// The connection closed (or became a WebSocket): its slot is free. Unknown ids (evicted
  /// connections) are ignored.
  void close(Id id);

  enum class WsAdmit : uint8_t { kAccepted, kPerAddress, kTotal };
  /// A WebSocket from `address` within `limits`: kAccepted counts it (release it with
  /// close_websocket), the others are counted as kWsPerAddress / kWsTotal.
  WsAdmit open_websocket(const std::string& address, WsLimits limits);
  void close_websocket(const std::string& address);

  size_t connections() const;  ///< HTTP connections counted now
  size_t websockets() const;   ///< WebSockets counted now
  size_t connections_from(const std::string& address) const;

 private:
  struct Conn {
    std::string address;
    std::weak_ptr<Evictable> session;
    bool waiting = true;
    std::list<Id>::iterator in_waiters;  ///< valid while waiting
  };
  void forget(std::unordered_map<Id, Conn>::iterator it);  ///< under the lock
  void hit(base::Limit l) const {
    if (counters_ != nullptr) counters_->hit(l);
  }

  const Limits limits_;
  base::LimitCounters* const counters_;
  mutable std::mutex mutex_;
  Id last_id_ = 0;
  std::unordered_map<Id, Conn> conns_;
  std::list<Id> waiters_;  ///< connections without a request head, oldest first
  std::unordered_map<std::string, size_t> per_address_;
  std::unordered_map<std::string, size_t> ws_per_address_;
  size_t ws_total_ = 0;
};

}  // namespace callrelay::http
