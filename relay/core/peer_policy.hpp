// Which peer addresses an allocation may reach. Secure by default: loopback, private,
// link-local (incl. cloud metadata 169.254.169.254), CGNAT, multicast, broadcast,
// documentation and reserved ranges, and their IPv4-mapped / NAT64 forms are refused
// unless an operator allows a range.
#pragma once

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

class PeerPolicy {
 public:
  explicit PeerPolicy(PeerPolicyConfig cfg = {}) : cfg_(std::move(cfg)) {}
  /// nullopt: allowed. Otherwise why it is refused (the request gets 403).
  std::optional<PeerDenyReason> check(const Endpoint& peer) const;
 private:
  PeerPolicyConfig cfg_;
};

}  // namespace callrelay::core
