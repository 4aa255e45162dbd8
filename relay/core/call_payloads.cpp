// Per-call payload maps for the media measurement: the call service tells the relay which RTP
// payload types a call negotiated; every allocation of that call on this shard (live, or made
// later) measures with that map. The shard owns the maps; monitors hold raw pointers.
#include "relay/core/server_impl.hpp"

namespace callrelay::core {

void TurnServer::Impl::attach_payloads(Allocation& a) {
  const auto p = payloads_by_call.find(a.info.call_id);
  if (p == payloads_by_call.end()) return;
  p->second.idle_since = -1;
  a.monitor.set_payload_map(p->second.map.get());
}

void TurnServer::Impl::set_payload_types(std::string_view call_id,
                                         std::shared_ptr<const media::PayloadMap> map, TimeMs now) {
  const auto live = by_call.find(call_id);
  auto p = payloads_by_call.find(call_id);
  if (p == payloads_by_call.end()) {
    if (!map) return;
    p = payloads_by_call.emplace(std::string(call_id), CallPayloads{}).first;
  }
  // The allocations switch to the new map before the old one can be released (below, when
  // `old` goes out of scope, unless another shard still holds it).
  const std::shared_ptr<const media::PayloadMap> old = std::move(p->second.map);
  if (live != by_call.end()) {
    for (const FiveTuple& t : live->second) {
      if (const auto a = by_tuple.find(t); a != by_tuple.end()) {
        a->second->monitor.set_payload_map(map.get());
      }
    }
  }
  if (!map) {
    payloads_by_call.erase(p);
    return;
  }
  p->second.map = std::move(map);
  if (live != by_call.end()) {
    p->second.idle_since = -1;
  } else {
    // A call without allocations here (yet): kept for those to come, not forever.
    p->second.idle_since = now;
    note_deadline(now + TurnServer::kPayloadTypesIdleMs);
  }
}

TimeMs TurnServer::Impl::expire_payloads(TimeMs now) {
  TimeMs next = INT64_MAX;
  std::erase_if(payloads_by_call, [&](const auto& entry) {
    const TimeMs idle_since = entry.second.idle_since;
    if (idle_since < 0) return false;
    const TimeMs due = idle_since + TurnServer::kPayloadTypesIdleMs;
    if (due <= now) return true;  // no allocation of the call is left to point at it
    next = std::min(next, due);
    return false;
  });
  return next;
}

}  // namespace callrelay::core
