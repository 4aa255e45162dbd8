// Transport addresses as plain values, independent of any socket library.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace callrelay::stun {

/// Address family as STUN encodes it (RFC 8489 section 14.1).
enum class Family : uint8_t { kIPv4 = 0x01, kIPv6 = 0x02 };

/// An IP address and port. IPv4 addresses use the first 4 bytes of `addr`;
/// the rest stay zero so that comparison and hashing are plain byte compares.
struct Endpoint {
  Family family = Family::kIPv4;
  uint16_t port = 0;
  std::array<uint8_t, 16> addr{};

  static Endpoint v4(std::array<uint8_t, 4> a, uint16_t port);
  static Endpoint v6(const std::array<uint8_t, 16>& a, uint16_t port);
  /// Parses "1.2.3.4:5", "[::1]:5", or with `port` given, a bare address.
  static std::optional<Endpoint> parse(std::string_view text);
  static std::optional<Endpoint> parse_ip(std::string_view ip, uint16_t port);

  size_t addr_len() const { return family == Family::kIPv4 ? 4 : 16; }
  bool is_v4() const { return family == Family::kIPv4; }
  /// "1.2.3.4:5" or "[::1]:5".
  std::string to_string() const;
  /// Address only, without port.
  std::string ip_string() const;
  /// Same address, ignoring the port (TURN permissions are per IP address).
  bool same_ip(const Endpoint& o) const {
    return family == o.family && addr == o.addr;
  }
  friend bool operator==(const Endpoint& a, const Endpoint& b) {
    return a.family == b.family && a.port == b.port && a.addr == b.addr;
  }
};

struct EndpointHash {
  size_t operator()(const Endpoint& e) const noexcept;
};

}  // namespace callrelay::stun
