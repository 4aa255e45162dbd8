// Peer address policy: which relayed destinations an allocation may reach.
#include "relay/core/peer_policy.hpp"

#include <algorithm>
#include <charconv>
#include <initializer_list>

namespace callrelay::core {

namespace {

size_t max_prefix(Family f) { return f == Family::kIPv4 ? 32 : 128; }

/// Zeroes every bit after the first `prefix` bits.
void mask_to_prefix(Endpoint& e, uint8_t prefix) {
  for (size_t i = 0; i < e.addr.size(); ++i) {
    const size_t bit = i * 8;
    if (bit >= prefix) {
      e.addr[i] = 0;
    } else if (bit + 8 > prefix) {
      e.addr[i] &= static_cast<uint8_t>(0xFF00u >> (prefix - bit));
    }
  }
}

struct BuiltinRange {
  const char* cidr;
  PeerDenyReason reason;
};

// IANA special-purpose registries (RFC 6890 and updates). Order matters only where ranges
// nest: the more specific entry (and reason) comes first.
constexpr BuiltinRange kBuiltin[] = {
    {"0.0.0.0/8", PeerDenyReason::kUnspecified},        // RFC 791 "this network"
    {"10.0.0.0/8", PeerDenyReason::kPrivate},           // RFC 1918
    {"100.64.0.0/10", PeerDenyReason::kPrivate},        // RFC 6598 CGNAT shared space
    {"127.0.0.0/8", PeerDenyReason::kLoopback},         // RFC 1122
    {"169.254.0.0/16", PeerDenyReason::kLinkLocal},     // RFC 3927, incl. cloud metadata
    {"172.16.0.0/12", PeerDenyReason::kPrivate},        // RFC 1918
    {"192.0.0.0/24", PeerDenyReason::kReserved},        // RFC 6890 IETF protocol assignments
    {"192.0.2.0/24", PeerDenyReason::kDocumentation},   // RFC 5737 TEST-NET-1
    {"192.168.0.0/16", PeerDenyReason::kPrivate},       // RFC 1918
    {"198.18.0.0/15", PeerDenyReason::kReserved},       // RFC 2544 benchmarking
    {"198.51.100.0/24", PeerDenyReason::kDocumentation},// RFC 5737 TEST-NET-2
    {"203.0.113.0/24", PeerDenyReason::kDocumentation}, // RFC 5737 TEST-NET-3
    {"224.0.0.0/4", PeerDenyReason::kMulticast},        // RFC 5771
    {"255.255.255.255/32", PeerDenyReason::kBroadcast}, // RFC 919 limited broadcast
    {"240.0.0.0/4", PeerDenyReason::kReserved},         // RFC 1112 class E
    {"::/128", PeerDenyReason::kUnspecified},           // RFC 4291
    {"::1/128", PeerDenyReason::kLoopback},             // RFC 4291
    {"::/96", PeerDenyReason::kReserved},               // RFC 4291 deprecated IPv4-compatible
    {"100::/64", PeerDenyReason::kReserved},            // RFC 6666 discard-only
    {"64:ff9b:1::/48", PeerDenyReason::kReserved},      // RFC 8215 local-use NAT64
    {"2001:db8::/32", PeerDenyReason::kDocumentation},  // RFC 3849
    {"3fff::/20", PeerDenyReason::kDocumentation},      // RFC 9637
    {"fc00::/7", PeerDenyReason::kPrivate},             // RFC 4193 unique local
    {"fec0::/10", PeerDenyReason::kPrivate},            // RFC 3879 deprecated site-local
    {"fe80::/10", PeerDenyReason::kLinkLocal},          // RFC 4291
    {"ff00::/8", PeerDenyReason::kMulticast},           // RFC 4291
};

struct ParsedRange {
  Cidr cidr;
  PeerDenyReason reason;
};

const std::vector<ParsedRange>& builtin_ranges() {
  static const std::vector<ParsedRange> ranges = [] {
    std::vector<ParsedRange> v;
    for (const auto& r : kBuiltin) v.push_back({*Cidr::parse(r.cidr), r.reason});
    return v;
  }();
  return ranges;
}

bool has_prefix(const Endpoint& ip, std::initializer_list<uint8_t> prefix) {
  return std::equal(prefix.begin(), prefix.end(), ip.addr.begin());
}

Endpoint v4_at(const Endpoint& ip, size_t offset, uint8_t mask, uint16_t port) {
  return Endpoint::v4({static_cast<uint8_t>(ip.addr[offset] ^ mask),
                       static_cast<uint8_t>(ip.addr[offset + 1] ^ mask),
                       static_cast<uint8_t>(ip.addr[offset + 2] ^ mask),
                       static_cast<uint8_t>(ip.addr[offset + 3] ^ mask)},
                      port);
}

bool is_unspecified(const Endpoint& ip) {
  return std::all_of(ip.addr.begin(), ip.addr.begin() + static_cast<std::ptrdiff_t>(ip.addr_len()),
                     [](uint8_t b) { return b == 0; });
}

bool is_loopback_or_unspecified(const Endpoint& ip) {
  if (ip.is_v4())
    return ip.addr[0] == 127 || (ip.addr[0] | ip.addr[1] | ip.addr[2] | ip.addr[3]) == 0;
  return std::all_of(ip.addr.begin(), ip.addr.begin() + 15, [](uint8_t b) { return b == 0; }) &&
         ip.addr[15] <= 1;
}

bool any_contains(const std::vector<Cidr>& list, const Endpoint& ip,
                  const std::optional<Endpoint>& v4) {
  for (const auto& c : list) {
    if (c.contains(ip) || (v4 && c.contains(*v4))) return true;
  }
  return false;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view ip = text.substr(0, slash);
  auto base = Endpoint::parse_ip(ip, 0);
  if (!base) return std::nullopt;
  size_t prefix = max_prefix(base->family);
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || v > prefix) {
      return std::nullopt;
    }
    prefix = v;
  }
  Cidr c;
  c.base = *base;
  c.base.port = 0;
  c.prefix = static_cast<uint8_t>(prefix);
  mask_to_prefix(c.base, c.prefix);
  return c;
}

bool Cidr::contains(const Endpoint& ip) const {
  if (ip.family != base.family) return false;
  const size_t full = prefix / 8;
  for (size_t i = 0; i < full; ++i) {
    if (ip.addr[i] != base.addr[i]) return false;
  }
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF00u >> rest);
  return (ip.addr[full] & mask) == base.addr[full];
}

Endpoint canonical_peer(const Endpoint& ip) {
  if (ip.is_v4()) return ip;
  // RFC 4291 section 2.5.5.2: IPv4-mapped ::ffff:a.b.c.d.
  if (has_prefix(ip, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF})) return v4_at(ip, 12, 0, ip.port);
  // RFC 4291 section 2.5.5.1: IPv4-compatible ::a.b.c.d (:: and ::1 are IPv6's own).
  if (has_prefix(ip, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) && !is_loopback_or_unspecified(ip)) {
    return v4_at(ip, 12, 0, ip.port);
  }
  // RFC 6052 section 2.1: the NAT64 well-known prefix 64:ff9b::/96.
  if (has_prefix(ip, {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0}))
    return v4_at(ip, 12, 0, ip.port);
  // RFC 3056 section 2: 6to4 2002:V4ADDR::/48.
  if (has_prefix(ip, {0x20, 0x02})) return v4_at(ip, 2, 0, ip.port);
  // RFC 4380 section 4: Teredo 2001:0000::/32; the client's IPv4 address is the last 32 bits,
  // every bit inverted.
  if (has_prefix(ip, {0x20, 0x01, 0, 0})) return v4_at(ip, 12, 0xFF, ip.port);
  return ip;
}

PeerPolicy::PeerPolicy(PeerPolicyConfig cfg)
    : cfg_(std::make_shared<const PeerPolicyConfig>(std::move(cfg))) {}

PeerPolicy::~PeerPolicy() = default;

void PeerPolicy::reconfigure(PeerPolicyConfig cfg) {
  cfg_.store(std::make_shared<const PeerPolicyConfig>(std::move(cfg)));
}

void PeerPolicy::set_own_addresses(OwnAddresses own) { own_ = std::move(own); }

bool PeerPolicy::is_own_endpoint(const Endpoint& peer) const {
  if (own_.listeners.empty()) return false;
  const Endpoint c = canonical_peer(peer);
  for (const Endpoint& l : own_.listeners) {
    if (l.port != c.port) continue;
    if (!is_unspecified(l)) {
      if (canonical_peer(l).same_ip(c)) return true;  // a listener on one address
      continue;
    }
    // A wildcard listener is reached on every address of the host, loopback included.
    if (is_loopback_or_unspecified(c)) return true;
    for (const Endpoint& ip : own_.ips) {
      if (canonical_peer(ip).same_ip(c)) return true;
    }
  }
  return false;
}

std::optional<PeerDenyReason> PeerPolicy::check(const Endpoint& peer) const {
  // The server's own listeners first: no allow list opens a loop into the server itself.
  if (is_own_endpoint(peer)) return PeerDenyReason::kOwnAddress;
  const std::shared_ptr<const PeerPolicyConfig> cfg = cfg_.load();
  const Endpoint canonical = canonical_peer(peer);
  const std::optional<Endpoint> v4 =
      canonical.is_v4() && !peer.is_v4() ? std::optional<Endpoint>(canonical) : std::nullopt;
  // The operator's deny list is checked first and beats the allow list.
  if (any_contains(cfg->deny, peer, v4)) return PeerDenyReason::kDeniedByConfig;
  if (any_contains(cfg->allow, peer, v4)) return std::nullopt;
  // The embedded IPv4 address decides; the IPv6 form's own range (e.g. ::/96) may refuse too.
  for (const Endpoint* judged : {&canonical, &peer}) {
    for (const auto& r : builtin_ranges()) {
      if (r.cidr.contains(*judged)) return r.reason;
    }
  }
  return std::nullopt;
}

}  // namespace callrelay::core
