// Permission and channel bookkeeping for one allocation.
#include "relay/core/allocation.hpp"

#include <algorithm>
#include <functional>
#include <mutex>
#include <set>
#include <string>

namespace callrelay::core {

std::string_view intern_realm(std::string_view realm) {
  static std::mutex mu;
  static std::set<std::string, std::less<>>* realms = new std::set<std::string, std::less<>>;
  const std::lock_guard lock(mu);
  auto it = realms->find(realm);
  if (it == realms->end()) it = realms->emplace(realm).first;
  return *it;  // set nodes never move; never freed, so views outlive every allocation
}

void Allocation::update_expiry() {
  expires = 0;
  for (const auto& r : relays) {
    if (r.open) expires = std::max(expires, r.expires);
  }
}

bool Allocation::permitted(const Endpoint& ip, TimeMs now) const {
  for (const auto& p : permissions) {
    if (p.expires > now && p.ip.same_ip(ip)) return true;
  }
  return false;
}

bool Allocation::install_permission(const Endpoint& ip, TimeMs until, size_t max_entries) {
  for (auto& p : permissions) {
    if (p.ip.same_ip(ip)) {
      // RFC 8656 section 9: installing an existing permission refreshes it.
      p.expires = std::max(p.expires, until);
      return true;
    }
  }
  if (permissions.size() >= max_entries) return false;
  Endpoint key = ip;
  key.port = 0;
  permissions.push_back({key, until});
  ++info.peers_contacted;
  return true;
}

const ChannelBinding* Allocation::channel(uint16_t number, TimeMs now) const {
  for (const auto& c : channels) {
    if (c.number == number) return c.expires > now ? &c : nullptr;
  }
  return nullptr;
}

const ChannelBinding* Allocation::channel_to(const Endpoint& peer, TimeMs now) const {
  for (const auto& c : channels) {
    if (c.peer == peer) return c.expires > now ? &c : nullptr;
  }
  return nullptr;
}

Allocation::BindResult Allocation::bind_channel(uint16_t number, const Endpoint& peer, TimeMs until,
                                                TimeMs now, size_t max_entries) {
  ChannelBinding* same = nullptr;
  for (auto& c : channels) {
    const bool reserved = c.expires + kChannelCooldownMs > now;
    const bool number_match = c.number == number;
    const bool peer_match = c.peer == peer;
    if (number_match && peer_match) {
      same = &c;
    } else if (reserved && (number_match || peer_match)) {
      // RFC 8656 section 12.2: the channel is bound to a different peer, or the peer to a
      // different channel (including during the 5-minute cooldown after expiry).
      return BindResult::kConflict;
    }
  }
  if (same != nullptr) {
    same->expires = std::max(same->expires, until);
    return BindResult::kOk;
  }
  // Entries whose cooldown ended no longer reserve anything: reuse their slots.
  channels.remove_if([now](const ChannelBinding& c) { return c.expires + kChannelCooldownMs <= now; });
  if (channels.size() >= max_entries) return BindResult::kFull;
  channels.push_back({peer, number, until});
  return BindResult::kOk;
}

TimeMs Allocation::prune(TimeMs now) {
  permissions.remove_if([now](const Permission& p) { return p.expires <= now; });
  channels.remove_if([now](const ChannelBinding& c) { return c.expires + kChannelCooldownMs <= now; });
  TimeMs next = expires;
  for (const auto& r : relays) {
    if (r.open) next = std::min(next, r.expires);
  }
  for (const auto& p : permissions) next = std::min(next, p.expires);
  // A lapsed channel needs no action (the data path compares timestamps); its entry goes
  // when the cooldown ends.
  for (const auto& c : channels) next = std::min(next, c.expires + kChannelCooldownMs);
  return next;
}

}  // namespace callrelay::core
