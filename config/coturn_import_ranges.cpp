#include "config/coturn_import_ranges.hpp"

namespace callrelay::config::coturn {
namespace {

constexpr Address kAllOnes = ~Address{0};

unsigned bits_of(stun::Family f) { return f == stun::Family::kIPv4 ? 32 : 128; }

Address max_of(stun::Family f) {
  return f == stun::Family::kIPv4 ? Address{0xFFFFFFFFu} : kAllOnes;
}

Address to_number(const stun::Endpoint& ip) {
  Address n = 0;
  for (size_t i = 0; i < ip.addr_len(); ++i) n = (n << 8) | ip.addr[i];
  return n;
}

stun::Endpoint to_endpoint(stun::Family f, Address n) {
  stun::Endpoint e;
  e.family = f;
  const size_t len = f == stun::Family::kIPv4 ? 4 : 16;
  for (size_t i = len; i-- > 0;) {
    e.addr[i] = static_cast<uint8_t>(n & 0xFF);
    n >>= 8;
  }
  return e;
}

/// Mask of the low `k` bits (k up to 128).
Address low_bits(unsigned k) { return k >= 128 ? kAllOnes : (Address{1} << k) - 1; }

}  // namespace

std::optional<IpRange> parse_range(std::string_view text, std::string& why) {
  const size_t dash = text.find('-');
  const std::string_view first_text = text.substr(0, dash);
  const auto first = stun::Endpoint::parse_ip(first_text, 0);
  if (!first) {
    why = "'" + std::string(first_text) + "' is not an IP address";
    return std::nullopt;
  }
  IpRange r{first->family, to_number(*first), to_number(*first)};
  if (dash == std::string_view::npos) return r;
  const std::string_view last_text = text.substr(dash + 1);
  const auto last = stun::Endpoint::parse_ip(last_text, 0);
  if (!last) {
    why = "'" + std::string(last_text) + "' is not an IP address";
    return std::nullopt;
  }
  if (last->family != first->family) {
    why = "the range mixes IPv4 and IPv6";
    return std::nullopt;
  }
  r.last = to_number(*last);
  if (r.last < r.first) {
    why = "the range ends below its start";
    return std::nullopt;
  }
  return r;
}

std::vector<IpRange> subtract(const std::vector<IpRange>& from, const std::vector<IpRange>& holes) {
  std::vector<IpRange> out = from;
  for (const IpRange& h : holes) {
    std::vector<IpRange> next;
    for (const IpRange& r : out) {
      if (r.family != h.family || h.last < r.first || h.first > r.last) {
        next.push_back(r);  // no overlap
        continue;
      }
      if (h.first > r.first) next.push_back({r.family, r.first, h.first - 1});
      if (h.last < r.last) next.push_back({r.family, h.last + 1, r.last});
    }
    out = std::move(next);
  }
  return out;
}

std::vector<std::string> to_cidrs(const IpRange& range) {
  std::vector<std::string> out;
  const unsigned bits = bits_of(range.family);
  Address at = range.first;
  for (;;) {
    // The largest block starting at `at` (aligned to its size) that stays within the range.
    unsigned k = 0;
    while (k < bits && (at & low_bits(k + 1)) == 0 && range.last - at >= low_bits(k + 1)) ++k;
    const std::string ip = to_endpoint(range.family, at).ip_string();
    out.push_back(k == 0 ? ip : ip + "/" + std::to_string(bits - k));
    const Address block_last = at + low_bits(k);
    if (block_last >= range.last || block_last == max_of(range.family)) break;
    at = block_last + 1;
  }
  return out;
}

}  // namespace callrelay::config::coturn
