// Live-changeable settings (hot reload) and the randomness every unguessable value comes from.
#include <openssl/rand.h>

#include <limits>

#include "relay/core/server_impl.hpp"

namespace callrelay::core {

void TurnServer::update_limits(const CoreConfig& next) {
  CoreConfig& c = impl_->cfg;
  // Lifetimes apply from the next request: an allocation keeps the expiry it was granted.
  c.default_lifetime_s = next.default_lifetime_s;
  c.max_lifetime_s = next.max_lifetime_s;
  c.permission_lifetime_s = next.permission_lifetime_s;
  c.channel_lifetime_s = next.channel_lifetime_s;
  c.reservation_lifetime_s = next.reservation_lifetime_s;
  // Quotas and entry limits: what exists stays; new entries are judged by the new values.
  c.max_allocations_per_user = next.max_allocations_per_user;
  c.max_allocations = next.max_allocations;
  c.max_permissions_per_allocation = next.max_permissions_per_allocation;
  c.max_channels_per_allocation = next.max_channels_per_allocation;
  c.max_tcp_connections_per_allocation = next.max_tcp_connections_per_allocation;
  // Caps: every gate reads the per-allocation cap from here at each packet; the shared ones
  // live in UserLimits (every worker stores the same values: harmless).
  c.bandwidth = next.bandwidth;
  impl_->users.reconfigure(next.bandwidth);
  // Unauthenticated reflection and challenge rates: new values, the same table (its size and
  // key are fixed at start) and what its slots have counted so far.
  const uint32_t slots = c.abuse.table_slots;
  const uint32_t unauth_bytes = c.abuse.tcp_unauth_bytes;
  c.abuse = next.abuse;
  c.abuse.table_slots = slots;
  c.abuse.tcp_unauth_bytes = unauth_bytes;
  impl_->reflection.reconfigure(c.abuse);
}

UserLimits& TurnServer::user_limits() { return impl_->users; }

bool TurnServer::Impl::random(uint8_t* out, size_t n) const {
  if (cfg.random_bytes != nullptr) return cfg.random_bytes(out, n);
  if (n > static_cast<size_t>(std::numeric_limits<int>::max())) return false;
  return RAND_bytes(out, static_cast<int>(n)) == 1;
}

}  // namespace callrelay::core
