#include "config/relay_addresses.hpp"

#include <algorithm>
#include <string>

namespace callrelay::config::detail {
namespace {

const char* key_of(stun::Family family) {
  return family == stun::Family::kIPv4 ? "bind_ipv4" : "bind_ipv6";
}

}  // namespace

const char* relay_address_problem(const stun::Endpoint& ip) {
  const auto& a = ip.addr;
  if (ip.is_v4()) {
    if (a[0] == 0) return "is a wildcard ('this network', RFC 1122 section 3.2.1.3)";
    // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved and 255.255.255.255 broadcast (RFC 1112,
    // RFC 919): nothing a peer can send unicast datagrams to.
    if (a[0] >= 224) return "is not a unicast address (multicast, reserved or broadcast)";
    return nullptr;
  }
  if (std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; })) {
    return "is the wildcard address";
  }
  if (a[0] == 0xff) return "is a multicast address (RFC 4291 section 2.7)";
  const bool mapped = std::all_of(a.begin(), a.begin() + 10, [](uint8_t b) { return b == 0; }) &&
                      a[10] == 0xff && a[11] == 0xff;
  if (mapped) return "is an IPv4-mapped address: list its IPv4 address under bind_ipv4";
  return nullptr;
}

void read_relay_addresses(Reader& r, const Field& f, stun::Family family,
                          std::vector<stun::Endpoint>& out) {
  out.clear();
  if (f.node.IsNull()) return;  // "~" or nothing: unset, same as leaving the key out
  const auto one = [&](const Field& item) {
    const auto s = r.string(item);
    if (!s) return;
    const auto ip = stun::Endpoint::parse_ip(*s, 0);  // "1.2.3.4", "::1" or "[::1]"
    if (!ip || ip->family != family) {
      const bool v4 = family == stun::Family::kIPv4;
      r.error(item, std::string("must be an ") + (v4 ? "IPv4" : "IPv6") + " address like '" +
                        (v4 ? "203.0.113.7" : "2001:db8::7") +
                        "' (no port), or a list of them, not '" + *s + "'");
      return;
    }
    if (const char* why = relay_address_problem(*ip)) {
      r.error(item, "'" + *s + "' " + why +
                        "; a relay address must be one of this host's unicast addresses "
                        "(leave " + key_of(family) +
                        " out to relay on the address the client reached)");
      return;
    }
    if (std::find(out.begin(), out.end(), *ip) != out.end()) {
      r.error(item, "'" + *s + "' is listed twice");
      return;
    }
    out.push_back(*ip);
  };
  if (f.node.IsSequence()) {
    r.for_each_item(f, one);
  } else {
    one(f);
  }
}

void check_relay_external(Reader& r, const Field& f, const std::optional<stun::Endpoint>& external,
                          const std::vector<stun::Endpoint>& bind, stun::Family family) {
  if (!external || bind.size() <= 1) return;
  r.error(f, std::string("cannot be given with ") + std::to_string(bind.size()) + " relay." +
                 key_of(family) +
                 " addresses: each has its own port range, so relays on two of "
                 "them may share a port, which collides behind one public address. Give one "
                 "bind address per public address, or leave this key out to advertise each "
                 "address as it is");
}

}  // namespace callrelay::config::detail
