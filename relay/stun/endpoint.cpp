// Endpoint text conversion and hashing. inet_pton/inet_ntop are pure conversions: no sockets.
#include "relay/stun/endpoint.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace callrelay::stun {
namespace {

/// Longest address text we accept: a full IPv6 address with an embedded IPv4 tail
/// (INET6_ADDRSTRLEN counts the terminating NUL).
constexpr size_t kMaxIpText = INET6_ADDRSTRLEN - 1;

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value > 0xFFFF) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

Endpoint Endpoint::v4(std::array<uint8_t, 4> a, uint16_t port) {
  Endpoint e;
  e.family = Family::kIPv4;
  e.port = port;
  std::memcpy(e.addr.data(), a.data(), a.size());
  return e;
}

Endpoint Endpoint::v6(const std::array<uint8_t, 16>& a, uint16_t port) {
  Endpoint e;
  e.family = Family::kIPv6;
  e.port = port;
  e.addr = a;
  return e;
}

std::optional<Endpoint> Endpoint::parse_ip(std::string_view ip, uint16_t port) {
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  if (ip.empty() || ip.size() > kMaxIpText) return std::nullopt;
  char text[kMaxIpText + 1] = {};
  std::memcpy(text, ip.data(), ip.size());  // inet_pton wants a NUL-terminated string
  Endpoint e;
  e.port = port;
  if (ip.find(':') == std::string_view::npos) {
    e.family = Family::kIPv4;
    if (inet_pton(AF_INET, text, e.addr.data()) != 1) return std::nullopt;
  } else {
    e.family = Family::kIPv6;
    if (inet_pton(AF_INET6, text, e.addr.data()) != 1) return std::nullopt;
  }
  return e;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  std::string_view ip;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    ip = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (ip.find(':') == std::string_view::npos) return std::nullopt;  // "[1.2.3.4]:5" is not v6
  } else {
    const size_t colon = text.find(':');
    // A bare IPv6 address has several colons; it needs brackets to carry a port.
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      return std::nullopt;
    }
    ip = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  const auto p = parse_port(port);
  if (!p) return std::nullopt;
  return parse_ip(ip, *p);
}

std::string Endpoint::ip_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  const int af = is_v4() ? AF_INET : AF_INET6;
  if (inet_ntop(af, addr.data(), text, sizeof text) == nullptr) return {};
  return text;
}

std::string Endpoint::to_string() const {
  std::string out;
  if (is_v4()) {
    out = ip_string();
  } else {
    out = "[" + ip_string() + "]";
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

size_t EndpointHash::operator()(const Endpoint& e) const noexcept {
  uint64_t hi = 0;
  uint64_t lo = 0;
  std::memcpy(&hi, e.addr.data(), 8);
  std::memcpy(&lo, e.addr.data() + 8, 8);
  // splitmix64 finaliser over the folded words: cheap, and every input bit reaches the output,
  // so neighbouring ports and addresses spread over the buckets.
  uint64_t x = hi ^ (lo * 0x9E3779B97F4A7C15ULL) ^
               ((uint64_t{e.port} << 8) | static_cast<uint64_t>(e.family)) * 0xC2B2AE3D27D4EB4FULL;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return static_cast<size_t>(x);
}

}  // namespace callrelay::stun
