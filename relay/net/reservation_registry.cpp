#include "relay/net/reservation_registry.hpp"

#include <unistd.h>

#include <random>

namespace callrelay::net {

ReservationRegistry::~ReservationRegistry() {
  for (const auto& [token, e] : entries_) {
    if (e.fd >= 0) ::close(e.fd);
  }
}

void ReservationRegistry::add(uint64_t token, const Entry& entry) {
  const std::lock_guard lock(mu_);
  const auto [it, added] = entries_.try_emplace(token, entry);
  if (!added) {  // a token drawn twice (one chance in 2^64): the newer one wins
    if (it->second.fd >= 0) ::close(it->second.fd);
    it->second = entry;
  }
}

std::optional<ReservationRegistry::Entry> ReservationRegistry::claim(uint64_t token,
                                                                     core::TimeMs now,
                                                                     const RelaySockets* claimer) {
  const std::lock_guard lock(mu_);
  const auto it = entries_.find(token);
  // RFC 8656 section 7.2: one past its lifetime is not handed out, even before its owner's
  // timer closes it.
  if (it == entries_.end() || it->second.expires <= now) return std::nullopt;
  Entry e = it->second;
  if (e.owner == claimer && e.fd >= 0) {  // its own socket: the duplicate is not needed
    ::close(e.fd);
    e.fd = -1;
  }
  entries_.erase(it);
  return e;
}

bool ReservationRegistry::withdraw(uint64_t token, const RelaySockets* owner) {
  const std::lock_guard lock(mu_);
  const auto it = entries_.find(token);
  if (it == entries_.end() || it->second.owner != owner) return false;
  if (it->second.fd >= 0) ::close(it->second.fd);
  entries_.erase(it);
  return true;
}

size_t ReservationRegistry::size() const {
  const std::lock_guard lock(mu_);
  return entries_.size();
}

RelayShare::RelayShare(uint16_t port_min, uint16_t port_max,
                       const std::vector<stun::Endpoint>& addresses) {
  addresses_.push_back(stun::Endpoint{});
  pools_.push_back(std::make_unique<PortPool>(port_min, port_max));
  for (stun::Endpoint ip : addresses) {
    ip.port = 0;
    addresses_.push_back(ip);
    pools_.push_back(std::make_unique<PortPool>(port_min, port_max));
  }
  std::random_device random;
  for (size_t i = 0; i < pools_.size(); ++i) starts_.push_back(random() % pools_[i]->size());
}

uint16_t RelayShare::pool_of(const stun::Endpoint& ip) const {
  for (size_t i = 1; i < addresses_.size(); ++i) {
    if (addresses_[i].same_ip(ip)) return static_cast<uint16_t>(i);
  }
  return 0;
}

}  // namespace callrelay::net
