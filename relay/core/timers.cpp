// TurnServer's housekeeping: allocations, permissions, channels, reservations, RFC 6062
// ConnectionBind deadlines and idle payload maps expire from deadline queues (timers.hpp).
// on_timer costs what is due, never the shard's size, and does a bounded amount per call, so
// a burst of expiries (100k allocations made in the same second) is spread over many calls
// with the worker's packets relayed in between.
#include <algorithm>

#include "relay/core/server_impl.hpp"

namespace callrelay::core {

TimeMs TurnServer::on_timer(TimeMs now) { return impl_->on_timer(now); }

void TurnServer::shutdown(TimeMs now) {
  Impl& s = *impl_;
  while (!s.by_tuple.empty()) {
    const FiveTuple tuple = (*s.by_tuple.begin())->info.client;
    s.end_allocation(tuple, EndReason::kShutdown, now);
  }
  for (const auto& [token, r] : s.reservations) s.ports.close(r.relay.id);
  s.reservations.clear();
  s.reservation_timers.clear();
  s.payloads_by_call.clear();  // no allocation points at a map any more
  s.payload_timers.clear();
}

TimeMs TurnServer::Impl::on_timer(TimeMs now) {
  size_t budget = kTimerBatch;
  // Wall-clock deadlines (REST credential expiry): their own heap, looked at on every call.
  if (cfg.strict_expiry) expire_credentials(now, &budget);
  expire_allocations(now, &budget);
  // RFC 8656 section 7.2: an unclaimed reservation is released after 30 seconds.
  expire_reservations(now, &budget);
  expire_tcp_peers(now, &budget);
  expire_payloads(now, &budget);
  // More is due than one call may do: the caller comes back at once, after its packets.
  if (budget == 0 && anything_due(now)) return now;
  const TimeMs next = std::min({allocation_timers.next_due(), reservation_timers.next_due(),
                                bind_timers.next_due(), payload_timers.next_due()});
  return std::min(next, now + kHeartbeatMs);
}

bool TurnServer::Impl::anything_due(TimeMs now) const {
  if (allocation_timers.next_due() <= now || reservation_timers.due(now) || bind_timers.due(now) ||
      payload_timers.due(now)) {
    return true;
  }
  return cfg.strict_expiry && !credential_deadlines.empty() &&
         credential_deadlines.front().wall_expires <= auth.wall_now(now);
}

void TurnServer::Impl::expire_allocations(TimeMs now, size_t* budget) {
  // RFC 8656 sections 3.2, 9 and 12: allocations, permissions and channel bindings end when
  // their time-to-expiry reaches zero. The data path compares timestamps itself, so this only
  // releases what ended: the allocation (its relay sockets), a dual allocation's lapsed family,
  // permissions and channels past their cooldown.
  while (*budget > 0 && allocation_timers.next_due() <= now) {
    --*budget;
    Allocation& a = *allocation_timers.top();
    if (a.expires <= now) {
      end_allocation(a.info.client, EndReason::kExpired, now);  // leaves the heap too
      continue;
    }
    // Everything left is due later (prune drops what is due): the entry moves down.
    allocation_timers.schedule(a, expire_relays(a, now));
  }
}

void TurnServer::Impl::expire_reservations(TimeMs now, size_t* budget) {
  while (*budget > 0 && reservation_timers.due(now)) {
    --*budget;
    const auto due = reservation_timers.pop();
    const auto it = reservations.find(due.key);
    if (it == reservations.end() || it->second.expires != due.due) continue;  // claimed
    ports.close(it->second.relay.id);
    reservations.erase(it);
  }
}

void TurnServer::Impl::expire_tcp_peers(TimeMs now, size_t* budget) {
  while (*budget > 0 && bind_timers.due(now)) {
    --*budget;
    const auto due = bind_timers.pop();
    const auto it = tcp_peers.find(due.key);
    if (it == tcp_peers.end() || it->second.state != TcpPeer::State::kPendingBind ||
        it->second.bind_deadline != due.due) {
      continue;  // bound or closed in time
    }
    // "If no ConnectionBind request associated with this peer data connection is received
    // after 30 seconds, the peer data connection MUST be closed."
    ports.close_peer(due.key);
    erase_tcp_peer(due.key);
  }
}

void TurnServer::Impl::expire_payloads(TimeMs now, size_t* budget) {
  while (*budget > 0 && payload_timers.due(now)) {
    --*budget;
    const auto due = payload_timers.pop();
    const auto it = payloads_by_call.find(due.key);
    if (it == payloads_by_call.end() || it->second.idle_since < 0 ||
        it->second.idle_since + TurnServer::kPayloadTypesIdleMs != due.due) {
      continue;  // the call has allocations again, or idled again later
    }
    payloads_by_call.erase(it);  // no allocation of the call is left to point at it
  }
}

}  // namespace callrelay::core
