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
      if (Allocation* const a = by_tuple.find(t); a != nullptr) {
        a->monitor.set_payload_map(map.get());
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
    idle_payloads(p->second, call_id, now);
  }
}

void TurnServer::Impl::idle_payloads(CallPayloads& p, std::string_view call_id, TimeMs now) {
  p.idle_since = now;
  payload_timers.push(now + TurnServer::kPayloadTypesIdleMs, std::string(call_id));
  // A call that idles again and again leaves an entry each time; they are dropped once they
  // outnumber the maps, so the queue stays within twice the shard's maps.
  if (payload_timers.size() <= 2 * payloads_by_call.size() + 64) return;
  payload_timers.compact([this](const DeadlineQueue<std::string>::Entry& e) {
    const auto it = payloads_by_call.find(e.key);
    return it == payloads_by_call.end() || it->second.idle_since < 0 ||
           it->second.idle_since + TurnServer::kPayloadTypesIdleMs != e.due;
  });
}

}  // namespace callrelay::core
