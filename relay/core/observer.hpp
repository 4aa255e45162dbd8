// What the core tells observers (telemetry, logs). Called on the shard's own thread; an
// observer must be cheap and must not call back into the core.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "relay/core/types.hpp"
#include "relay/media/monitor.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::core {

/// Why an allocation ended. kCallEnded: the call its credentials were scoped to ended
/// (TurnServer::end_call). kRevoked: its username was revoked. kCredentialExpired: its REST
/// credential's expiry passed (auth.strict_expiry). kAdminEnded: an operator ended it.
/// kDrained: the drain deadline passed while it was still relaying.
enum class EndReason : uint8_t {
  kRefreshZero, kExpired, kTransportClosed, kShutdown, kCallEnded, kRevoked, kCredentialExpired,
  kAdminEnded, kDrained,
};
enum class AuthFailure : uint8_t {
  kExpired,       ///< REST username's timestamp is in the past
  kBadIntegrity,  ///< MESSAGE-INTEGRITY did not verify (wrong password / HMAC)
  kUnknownUser,   ///< static user not configured, or username malformed
  kStaleNonce,    ///< nonce expired or not ours
  kRevoked,       ///< username revoked through the API
  kWrongRealm,
};
enum class PeerDenyReason : uint8_t {
  kLoopback, kPrivate, kLinkLocal, kMulticast, kBroadcast, kUnspecified, kDocumentation,
  kReserved, kDeniedByConfig, kFamilyMismatch,
  kOwnAddress,  ///< one of the server's own listeners (a loop into the server)
};
enum class DropReason : uint8_t {
  kNoAllocation, kNoPermission, kNoChannel, kMalformed, kOverQuota, kPeerDenied,
  /// A shared relay port (relay/net multiplex_peers) could not tell which allocation a
  /// datagram belongs to, or two allocations on it sent to the same peer transport address.
  kAmbiguousPeer,
};
const char* to_string(EndReason r);
const char* to_string(AuthFailure r);
const char* to_string(PeerDenyReason r);
const char* to_string(DropReason r);

/// An allocation's media counters, made when it relays its first datagram: most allocations
/// (gathered by ICE, never selected) relay none, and hold a pointer instead of the counters'
/// 104 bytes. One writer (the allocation's worker thread); any thread reads, and reads zeros
/// until the counters exist, which is what counters made eagerly would hold.
class LazyMediaCounters {
 public:
  LazyMediaCounters() = default;
  LazyMediaCounters(const LazyMediaCounters&) = delete;
  LazyMediaCounters& operator=(const LazyMediaCounters&) = delete;
  ~LazyMediaCounters() { delete counters_.load(std::memory_order_relaxed); }

  /// The counters, or all zeros while the allocation relayed nothing.
  const media::MediaCounters& get() const {
    const media::MediaCounters* c = counters_.load(std::memory_order_acquire);
    return c != nullptr ? *c : kNone;
  }
  bool made() const { return counters_.load(std::memory_order_acquire) != nullptr; }
  /// The writer's counters, made at the first call (on the allocation's worker thread only;
  /// published with release so that a reader sees them zeroed, never half-made).
  media::MediaCounters& write() {
    media::MediaCounters* c = counters_.load(std::memory_order_relaxed);
    if (c == nullptr) {
      c = new media::MediaCounters();
      counters_.store(c, std::memory_order_release);
    }
    return *c;
  }

 private:
  static inline const media::MediaCounters kNone{};
  std::atomic<media::MediaCounters*> counters_{nullptr};
};

/// A live allocation as observers see it. Stable address for the allocation's lifetime.
struct AllocationInfo {
  uint64_t id = 0;          ///< unique per process
  std::string username;     ///< as sent (for REST: "expiry:user")
  std::string user_id;      ///< REST user part (after the separator, without a call suffix);
                            ///< username for static users
  std::string call_id;      ///< call of a call-scoped username ("expiry:user:call=ID"), or ""
  /// One of a few strings shared by every allocation of its realm (see intern_realm): static
  /// storage, valid for the process's life.
  std::string_view realm;
  FiveTuple client;
  Endpoint relayed;
  /// A dual allocation's second relayed address (RFC 8656 section 7.2: the IPv6 one).
  std::optional<Endpoint> relayed_additional;
  TimeMs started = 0;
  uint32_t peers_contacted = 0;  ///< distinct peer IPs given a permission
  int secret_index = -1;         ///< which REST secret validated it (-1: static user)
  TrafficCounters traffic;
  /// Relay-observed media quality (CoreConfig::media_quality), read at scrape and sample time.
  LazyMediaCounters media;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_allocation_created(const AllocationInfo&) {}
  virtual void on_allocation_ended(const AllocationInfo&, EndReason, TimeMs /*now*/) {}
  /// One per answered request; `code` 0 on success, else the error code sent.
  virtual void on_request(stun::Method, Transport, uint16_t /*code*/) {}
  virtual void on_auth_failure(AuthFailure) {}
  virtual void on_peer_denied(PeerDenyReason) {}
  virtual void on_drop(DropReason) {}
};

}  // namespace callrelay::core
