// Call quality in the state machine (README, section Call quality): the clients' `stats`
// reports become client-reported intervals, the service's relay samples become relay-observed
// intervals, the two are compared per direction and kind, and `media` changes (muting, the
// audio-only fallback) are forwarded to the other device and noted in the record.
#include <algorithm>
#include <cstdlib>

#include "calls/core/engine_impl.hpp"

namespace callrelay::calls {

using nlohmann::json;

namespace {

/// A client interval and a relay interval are compared when they end at most this many
/// interval lengths apart: both sides report about every 5 s, each on its own phase.
constexpr double kCompareWithin = 1.5;
/// A partial relay interval is compared only when it and the client's interval overlap by at
/// least this share of the longer of the two: the same time, give or take a message's trip.
constexpr double kSameTimeShare = 0.8;

/// Whether the relay interval [start, end] and the client's latest one describe the same media.
/// Regular intervals are compared within kCompareWithin of each other. A partial relay interval
/// (the call's last one, from its last sample to its end, or one shorter than the client's)
/// holds only part of what the client's figures cover, and a loss ratio over a part is not the
/// ratio over the whole: it is compared only when the client's figures cover the same time.
bool comparable(TimeMs start, TimeMs end, bool last, TimeMs client_start, TimeMs client_end) {
  const double length = static_cast<double>(std::max<TimeMs>(end - start, 1));
  const double client_length = static_cast<double>(std::max<TimeMs>(client_end - client_start, 1));
  if (last || length < kSameTimeShare * client_length) {
    const TimeMs overlap = std::min(end, client_end) - std::max(start, client_start);
    return static_cast<double>(overlap) >= kSameTimeShare * std::max(length, client_length);
  }
  return static_cast<double>(std::abs(end - client_end)) <= kCompareWithin * length;
}

/// The round trip a device saw: its selected pair's (STUN consent checks, RFC 7675), else the
/// one its receiver reported for its outbound stream of that kind (RTCP, RFC 3550 6.4.1).
double reported_rtt(const StatsReport& r, MediaKind kind) {
  if (r.pair && r.pair->rtt_ms) return *r.pair->rtt_ms;
  for (const OutboundStats& o : r.outbound)
    if (o.kind == kind && o.rtt_ms) return *o.rtt_ms;
  return -1;
}

}  // namespace

bool CallEngine::on_relay_interval(std::string_view call_id, Direction direction, MediaKind kind,
                                   TimeMs start, TimeMs end, const IntervalMeasure& measure) {
  Impl& s = *impl_;
  const auto it = s.calls.find(std::string(call_id));
  if (it == s.calls.end() || it->second.state != CallState::kActive) return false;
  s.relay_interval(it->second, direction, kind, start, end, measure);
  return true;
}

std::vector<ActiveCall> CallEngine::active_calls() const {
  std::vector<ActiveCall> list;
  for (const auto& [id, c] : impl_->calls)
    if (c.state == CallState::kActive)
      list.push_back(ActiveCall{id, c.rec.caller, c.rec.callee, c.rec.connected});
  return list;
}

void CallEngine::Impl::relay_interval(Call& c, Direction dir, MediaKind kind, TimeMs start,
                                      TimeMs end, const IntervalMeasure& measure, bool last) {
  // Scored with its real length, however short: ms_in_class adds end - start.
  const QualityInterval scored =
      score_interval(QualitySource::kRelay, dir, kind, start, end, measure);
  c.quality.add(scored);
  if (observer != nullptr) observer->on_quality_interval(scored);
  if (static_cast<size_t>(dir) > 1 || static_cast<size_t>(kind) > 1) return;
  auto& latest = c.latest_client[static_cast<size_t>(dir)][static_cast<size_t>(kind)];
  if (!latest.pending || !comparable(start, end, last, latest.start, latest.end)) return;
  latest.pending = false;
  const char* reason = c.quality.compare(dir, kind, measure, latest.measure);
  if (reason != nullptr && observer != nullptr) observer->on_disagreement(kind, reason);
}

void CallEngine::Impl::final_relay_intervals(Call& c, TimeMs now) {
  if (final_relay == nullptr) return;
  const ActiveCall call{c.rec.id, c.rec.caller, c.rec.callee, c.rec.connected};
  for (const RelayInterval& i : final_relay->final_intervals(call, now))
    relay_interval(c, i.direction, i.kind, i.start, i.end, i.measure, true);
}

void CallEngine::Impl::stats(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now,
                             Actions& out) {
  if (!is_participant(c, d.id)) {
    error(d, m, "not-participant", "call", "this device is not in the call", out);
    return;
  }
  if (c.state != CallState::kActive) {
    error(d, m, "wrong-state", "call", "stats are reported while the call is active", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  // What a device receives is the other party's media: the callee's inbound is the
  // caller-to-callee direction.
  const Direction dir =
      d.id == c.rec.caller_device ? Direction::kCalleeToCaller : Direction::kCallerToCallee;
  const TimeMs start = now - static_cast<TimeMs>(m.stats.interval_ms);
  for (const InboundStats& in : m.stats.inbound) {
    IntervalMeasure measure;
    measure.lost = in.packets_lost.value_or(0);
    measure.expected = in.packets_received.value_or(0) + measure.lost;
    if (measure.expected == 0) continue;  // no media of this kind in the interval
    measure.jitter_ms = in.jitter_ms.value_or(0);
    measure.rtt_ms = reported_rtt(m.stats, in.kind);
    const QualityInterval scored =
        score_interval(QualitySource::kClient, dir, in.kind, start, now, measure);
    c.quality.add(scored);
    if (observer != nullptr) observer->on_quality_interval(scored);
    c.latest_client[static_cast<size_t>(dir)][static_cast<size_t>(in.kind)] = {measure, start,
                                                                              now, true};
  }
}

void CallEngine::Impl::media(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now,
                             Actions& out) {
  if (!is_participant(c, d.id)) {
    error(d, m, "not-participant", "call", "this device is not in the call", out);
    return;
  }
  if (c.state != CallState::kConnecting && c.state != CallState::kActive) {
    error(d, m, "wrong-state", "call", "media changes are sent after the callee accepted", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  const MediaState& ms = m.media_state;
  json payload = {{"reason", to_string(ms.reason)}};
  if (ms.audio) payload["audio"] = *ms.audio;
  if (ms.video) payload["video"] = *ms.video;
  send(out, other_device(c, d.id), message("peer-media", c, std::move(payload)));
  const Party party = d.id == c.rec.caller_device ? Party::kCaller : Party::kCallee;
  if (ms.video == false && ms.reason == MediaReason::kPoorQuality) {
    // A repeat while the party's video is still off is the same fallback, counted once.
    const auto& list = c.quality.result().video_fallbacks;
    const bool repeat = std::any_of(list.begin(), list.end(), [&](const VideoFallback& f) {
      return f.party == party && f.restored == 0;
    });
    c.quality.video_fallback(party, now);
    if (!repeat && observer != nullptr) observer->on_video_fallback();
  } else if (ms.video == true && ms.reason == MediaReason::kQualityRestored) {
    c.quality.video_restored(party, now);
  }
}

}  // namespace callrelay::calls
