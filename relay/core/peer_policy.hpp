// Which peer addresses an allocation may reach. Secure by default: loopback, private,
// link-local (incl. cloud metadata 169.254.169.254), CGNAT, multicast, broadcast,
// documentation and reserved ranges, and every IPv6 form that embeds such an IPv4 address,
// are refused unless an operator allows a range; the server's own listeners always are.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"

namespace callrelay::core {

struct Cidr {
  Endpoint base;  ///< port ignored
  uint8_t prefix = 0;
  /// "10.0.0.0/8", "::1/128", "127.0.0.1" (host route). nullopt if malformed.
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const Endpoint& ip) const;
};

struct PeerPolicyConfig {
  std::vector<Cidr> allow;  ///< overrides the built-in denials
  std::vector<Cidr> deny;   ///< extra denials, checked first (beat allow)
};

/// The server's own transport addresses, never a peer whatever the allow list says: a client
/// must not loop the relay into the server's own listeners (TURN, TURN over TCP/TLS, HTTP API).
struct OwnAddresses {
  /// Listener endpoints (address and port). A wildcard address (0.0.0.0, [::]) stands for its
  /// port on every address in `ips`.
  std::vector<Endpoint> listeners;
  /// The addresses of this host (interfaces, relay and external addresses); ports ignored.
  std::vector<Endpoint> ips;
};

/// Decides which peer addresses an allocation may reach, on the canonical address: an IPv6
/// address that embeds an IPv4 one (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64) is
/// judged as that IPv4 address, since that is what a packet to it reaches.
///
/// Thread-safe: workers call check() (control path: CreatePermission, ChannelBind, Connect)
/// while the reload thread calls reconfigure(); a check sees the old or the new lists whole.
class PeerPolicy {
 public:
  explicit PeerPolicy(PeerPolicyConfig cfg = {});
  ~PeerPolicy();
  PeerPolicy(const PeerPolicy&) = delete;
  PeerPolicy& operator=(const PeerPolicy&) = delete;

  /// Replaces the allow and deny lists (hot reload); checks after it returns use the new ones.
  void reconfigure(PeerPolicyConfig cfg);
  /// Sets the server's own addresses, refused as peers (kOwnAddress). Call once the listeners
  /// are bound and before the workers start: is_own_endpoint() reads them without a lock.
  void set_own_addresses(OwnAddresses own);

  /// nullopt: allowed. Otherwise why it is refused (the request gets 403).
  std::optional<PeerDenyReason> check(const Endpoint& peer) const;
  /// Whether `peer` (canonical) is one of the server's own listener endpoints. Cheap, lock
  /// free: for the data path (Send indications name their peer in every packet).
  bool is_own_endpoint(const Endpoint& peer) const;

 private:
  std::atomic<std::shared_ptr<const PeerPolicyConfig>> cfg_;
  OwnAddresses own_;
};

/// The IPv4 address an IPv6 address stands for (IPv4-mapped ::ffff:0:0/96 and IPv4-compatible
/// ::/96 of RFC 4291 section 2.5.5, 6to4 2002::/16 of RFC 3056 section 2, Teredo 2001::/32 of
/// RFC 4380 section 4 (the client address, bit-inverted), NAT64 64:ff9b::/96 of RFC 6052
/// section 2.1); `ip` itself for an IPv4 or any other IPv6 address. The port is kept.
Endpoint canonical_peer(const Endpoint& ip);

}  // namespace callrelay::core
