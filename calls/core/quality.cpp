// Call quality scores (README, section Call quality): the E-model, per-interval scores and the
// per-call summaries a record carries.
#include "calls/core/quality.hpp"

#include <algorithm>
#include <cmath>

namespace callrelay::calls {

namespace {

/// ITU-T G.107 section 7.1: R0 - Is for default values, the best R a narrowband call reaches.
constexpr double kBaseR = 93.2;
/// Delay the jitter buffer and codec add on top of the network's (the WebRTC stacks' figure).
constexpr double kCodecDelayMs = 10;
/// Above this effective latency the delay impairment grows ten times faster (G.107's Id knee).
constexpr double kLatencyKneeMs = 160;

/// A measurement from outside: negative, NaN or infinite figures count as 0.
double sane(double v) { return std::isfinite(v) && v > 0 ? v : 0; }

bool valid(Direction d, MediaKind k, QualitySource s) {
  return static_cast<size_t>(d) < 2 && static_cast<size_t>(k) < 2 && static_cast<size_t>(s) < 2;
}

}  // namespace

const char* to_string(QualityClass c) {
  switch (c) {
    case QualityClass::kExcellent:
      return "excellent";
    case QualityClass::kGood:
      return "good";
    case QualityClass::kFair:
      return "fair";
    case QualityClass::kPoor:
      return "poor";
  }
  return "unknown";
}

const char* to_string(QualitySource s) {
  switch (s) {
    case QualitySource::kRelay:
      return "relay";
    case QualitySource::kClient:
      return "client";
  }
  return "unknown";
}

const char* to_string(MediaKind k) {
  switch (k) {
    case MediaKind::kAudio:
      return "audio";
    case MediaKind::kVideo:
      return "video";
  }
  return "unknown";
}

const char* to_string(Direction d) {
  switch (d) {
    case Direction::kCallerToCallee:
      return "caller_to_callee";
    case Direction::kCalleeToCaller:
      return "callee_to_caller";
  }
  return "unknown";
}

QualityClass classify_loss(double loss_ratio) {
  const double loss = sane(loss_ratio);
  if (loss < 0.01) return QualityClass::kExcellent;
  if (loss < 0.03) return QualityClass::kGood;
  if (loss < 0.05) return QualityClass::kFair;
  return QualityClass::kPoor;
}

EModelScore e_model(double rtt_ms, double jitter_ms, double loss_ratio) {
  const double latency = sane(rtt_ms) + 2 * sane(jitter_ms) + kCodecDelayMs;
  double r = latency < kLatencyKneeMs ? kBaseR - latency / 40 : kBaseR - (latency - 120) / 10;
  r -= 2.5 * 100 * std::min(sane(loss_ratio), 1.0);
  r = std::clamp(r, 0.0, 100.0);
  // ITU-T G.107 Annex B: the R factor to MOS (conversational quality estimate).
  const double mos = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r);
  return {r, std::clamp(mos, 1.0, 4.5)};
}

QualityInterval score_interval(QualitySource source, Direction direction, MediaKind kind,
                               TimeMs start, TimeMs end, const IntervalMeasure& m) {
  QualityInterval q;
  q.source = source;
  q.direction = direction;
  q.kind = kind;
  q.start = start;
  q.end = end;
  q.measure = m;
  q.measure.lost = std::min(m.lost, m.expected);  // more lost than expected is a bad report
  q.measure.jitter_ms = sane(m.jitter_ms);
  q.measure.rtt_ms = std::isfinite(m.rtt_ms) && m.rtt_ms >= 0 ? m.rtt_ms : -1;
  q.loss_ratio = q.measure.expected == 0 ? 0
                                         : static_cast<double>(q.measure.lost) /
                                               static_cast<double>(q.measure.expected);
  q.mos = e_model(std::max(q.measure.rtt_ms, 0.0), q.measure.jitter_ms, q.loss_ratio).mos;
  q.quality = classify_loss(q.loss_ratio);
  return q;
}

bool CallQuality::empty() const {
  for (const auto& by_kind : streams) {
    for (const SourcePair& p : by_kind) {
      if (p.relay.intervals != 0 || p.client.intervals != 0) return false;
    }
  }
  return client_underreports == 0 && loss_after_relay == 0 && video_fallbacks.empty();
}

void QualityTracker::add(const QualityInterval& in) {
  if (!valid(in.direction, in.kind, in.source)) return;
  const auto d = static_cast<size_t>(in.direction), k = static_cast<size_t>(in.kind);
  SourcePair& pair = quality_.streams[d][k];
  QualitySummary& s = in.source == QualitySource::kRelay ? pair.relay : pair.client;
  Sums& sum = sums_[d][k][static_cast<size_t>(in.source)];
  const double mos = std::clamp(sane(in.mos), 1.0, 4.5);
  const double loss = std::min(sane(in.loss_ratio), 1.0);
  const double jitter = sane(in.measure.jitter_ms);
  const bool first = s.intervals == 0;

  ++s.intervals;
  sum.mos += mos;
  sum.jitter += jitter;
  s.mean_mos = sum.mos / s.intervals;
  s.worst_mos = first ? mos : std::min(s.worst_mos, mos);
  s.expected += in.measure.expected;
  s.lost += std::min(in.measure.lost, in.measure.expected);
  s.worst_loss_ratio = first ? loss : std::max(s.worst_loss_ratio, loss);
  s.mean_jitter_ms = sum.jitter / s.intervals;
  s.worst_jitter_ms = first ? jitter : std::max(s.worst_jitter_ms, jitter);
  if (std::isfinite(in.measure.rtt_ms) && in.measure.rtt_ms >= 0) {
    sum.rtt += in.measure.rtt_ms;
    ++sum.rtt_count;
    s.mean_rtt_ms = sum.rtt / sum.rtt_count;
    s.worst_rtt_ms = std::max(s.worst_rtt_ms, in.measure.rtt_ms);
  }
  const auto c = static_cast<size_t>(in.quality);
  if (c < kQualityClasses && in.end > in.start) s.ms_in_class[c] += in.end - in.start;
}

const char* QualityTracker::compare(Direction /*direction*/, MediaKind /*kind*/,
                                    const IntervalMeasure& relay, const IntervalMeasure& client) {
  // Over fewer packets a single loss moves a ratio past the margin: no verdict. The direction
  // and kind name the stream for the caller's metrics; the counts are per call.
  if (relay.expected < kMinComparePackets || client.expected < kMinComparePackets) {
    return nullptr;
  }
  const auto ratio = [](const IntervalMeasure& m) {
    return static_cast<double>(std::min(m.lost, m.expected)) / static_cast<double>(m.expected);
  };
  const double diff = ratio(client) - ratio(relay);
  if (diff > kDisagreementMargin) {
    // The receiver lost more than the relay saw lost before it: on the relay-to-receiver leg.
    ++quality_.loss_after_relay;
    return "loss_after_relay";
  }
  if (-diff > kDisagreementMargin) {
    // The relay saw packets lost on the way in that the receiver does not report.
    ++quality_.client_underreports;
    return "client_underreports";
  }
  return nullptr;
}

void QualityTracker::video_fallback(Party party, TimeMs at) {
  auto& list = quality_.video_fallbacks;
  const bool open = std::any_of(list.begin(), list.end(), [&](const VideoFallback& f) {
    return f.party == party && f.restored == 0;
  });
  if (open || list.size() >= kMaxVideoFallbacks) return;
  list.push_back({party, at, 0});
}

void QualityTracker::video_restored(Party party, TimeMs at) {
  for (VideoFallback& f : quality_.video_fallbacks) {
    if (f.party == party && f.restored == 0) {
      // 0 means "not restored": a restore at time 0 (a clock at the epoch) still counts.
      f.restored = std::max<TimeMs>(at, 1);
      return;
    }
  }
}

FallbackRule::Advice FallbackRule::on_interval(QualityClass c, bool video_on) {
  if (video_on) {
    good_run_ = 0;
    // Capped one past the threshold: long enough to say "already advised", never overflows.
    const bool poor = c == QualityClass::kPoor;
    poor_run_ = poor ? std::min(poor_run_ + 1, kFallbackPoorIntervals + 1) : 0;
    // Exactly at the threshold, so that a longer poor run advises once.
    return poor_run_ == kFallbackPoorIntervals ? Advice::kDropVideo : Advice::kNone;
  }
  poor_run_ = 0;
  const bool good = c == QualityClass::kExcellent || c == QualityClass::kGood;
  good_run_ = good ? std::min(good_run_ + 1, kRestoreGoodIntervals + 1) : 0;
  return good_run_ == kRestoreGoodIntervals ? Advice::kOfferVideo : Advice::kNone;
}

}  // namespace callrelay::calls
