#include "calls/signaling/relay_sampler.hpp"

namespace callrelay::calls {
namespace {

double leg_rtt(const RelayLeg& leg) {
  if (leg.rtt_client_ms >= 0 && leg.rtt_peer_ms >= 0) return leg.rtt_client_ms + leg.rtt_peer_ms;
  if (leg.rtt_client_ms >= 0) return leg.rtt_client_ms;
  if (leg.rtt_peer_ms >= 0) return leg.rtt_peer_ms;
  return -1;
}

}  // namespace

std::vector<RelayInterval> leg_intervals(Direction direction, const RelayLeg& before,
                                         const RelayLeg& after, TimeMs start, TimeMs end) {
  std::vector<RelayInterval> out;
  const double rtt = leg_rtt(after);
  for (const MediaKind kind : {MediaKind::kAudio, MediaKind::kVideo}) {
    const bool video = kind == MediaKind::kVideo;
    const RelayStream& a = video ? before.video : before.audio;
    const RelayStream& b = video ? after.video : after.audio;
    // The counters never go back (ended allocations are folded in); if they ever did, the
    // interval is skipped rather than read as a huge unsigned delta.
    if (b.expected <= a.expected) continue;
    RelayInterval i;
    i.direction = direction;
    i.kind = kind;
    i.start = start;
    i.end = end;
    i.measure.expected = b.expected - a.expected;
    const uint64_t received = b.received > a.received ? b.received - a.received : 0;
    i.measure.lost = i.measure.expected > received ? i.measure.expected - received : 0;
    i.measure.jitter_ms = b.jitter_ms > 0 ? b.jitter_ms : 0;
    i.measure.rtt_ms = rtt;
    out.push_back(i);
  }
  return out;
}

std::vector<RelayInterval> RelaySampler::sample(const std::string& call, TimeMs connected,
                                                const RelayMedia& media, TimeMs now) {
  Sample before{RelayMedia{}, connected};
  if (const auto it = previous_.find(call); it != previous_.end()) before = it->second;
  std::vector<RelayInterval> out =
      leg_intervals(Direction::kCallerToCallee, before.media.caller, media.caller, before.at, now);
  for (RelayInterval& i :
       leg_intervals(Direction::kCalleeToCaller, before.media.callee, media.callee, before.at, now))
    out.push_back(i);
  previous_[call] = Sample{media, now};
  return out;
}

}  // namespace callrelay::calls
