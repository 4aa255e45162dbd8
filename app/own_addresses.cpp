#include "app/own_addresses.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace callrelay::app {
namespace {

/// Every address configured on an interface of this host; empty when getifaddrs fails (the
/// configured and bound addresses still count).
std::vector<stun::Endpoint> interface_addresses() {
  std::vector<stun::Endpoint> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      sockaddr_in sin{};
      std::memcpy(&sin, i->ifa_addr, sizeof sin);
      std::array<uint8_t, 4> a{};
      std::memcpy(a.data(), &sin.sin_addr, a.size());
      out.push_back(stun::Endpoint::v4(a, 0));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, i->ifa_addr, sizeof sin6);
      std::array<uint8_t, 16> a{};
      std::memcpy(a.data(), &sin6.sin6_addr, a.size());
      out.push_back(stun::Endpoint::v6(a, 0));
    }
  }
  freeifaddrs(list);
  return out;
}

void add_ip(std::vector<stun::Endpoint>& ips, stun::Endpoint ip) {
  ip.port = 0;
  if (std::find(ips.begin(), ips.end(), ip) == ips.end()) ips.push_back(ip);
}

}  // namespace

core::OwnAddresses own_addresses(const net::Server& server, const net::RelayNetSettings& relay,
                                 const std::optional<stun::Endpoint>& http) {
  core::OwnAddresses own;
  own.listeners = server.listening();
  for (const auto& l : server.stream_listening()) own.listeners.push_back(l.endpoint);
  if (http) own.listeners.push_back(*http);
  for (const auto& ip : interface_addresses()) add_ip(own.ips, ip);
  // Every relay address of every family: a peer there would be this server relaying to itself.
  for (const auto* list : {&relay.bind_ipv4, &relay.bind_ipv6}) {
    for (const auto& ip : *list) add_ip(own.ips, ip);
  }
  for (const auto& ip : {relay.external_ipv4, relay.external_ipv6}) {
    if (ip) add_ip(own.ips, *ip);
  }
  for (const auto& l : own.listeners) add_ip(own.ips, l);
  return own;
}

}  // namespace callrelay::app
