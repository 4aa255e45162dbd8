// Call quality scores (README, section Call quality): per 5-second interval and per call, for
// each direction and kind, from two sources: what the relay observed on the client-to-relay leg
// and what the receiving client reported. Pure arithmetic and bookkeeping; no clock, no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "calls/core/types.hpp"

namespace callrelay::calls {

enum class QualityClass : uint8_t { kExcellent = 0, kGood, kFair, kPoor };
inline constexpr size_t kQualityClasses = 4;
enum class QualitySource : uint8_t { kRelay = 0, kClient };
enum class MediaKind : uint8_t { kAudio = 0, kVideo };
/// Direction of the media: kCallerToCallee is what the caller sends and the callee receives.
enum class Direction : uint8_t { kCallerToCallee = 0, kCalleeToCaller };

const char* to_string(QualityClass c);   ///< excellent | good | fair | poor
const char* to_string(QualitySource s);  ///< relay | client
const char* to_string(MediaKind k);      ///< audio | video
const char* to_string(Direction d);      ///< caller_to_callee | callee_to_caller

/// By loss: under 1% excellent, under 3% good, under 5% fair, otherwise poor.
QualityClass classify_loss(double loss_ratio);

/// The simplified ITU-T G.107 E-model as WebRTC stacks compute it: effective latency =
/// RTT + 2 x jitter + 10 ms; R = 93.2 - latency/40 below 160 ms, else 93.2 - (latency - 120)/10;
/// R -= 2.5 x loss percent; MOS = 1 + 0.035 R + 7e-6 R (R - 60)(100 - R), R and MOS clamped.
struct EModelScore {
  double r = 0;
  double mos = 1;
};
EModelScore e_model(double rtt_ms, double jitter_ms, double loss_ratio);

/// One interval of one direction, kind and source, as measured (inputs of the score).
struct IntervalMeasure {
  uint64_t expected = 0;  ///< packets expected in the interval (received + lost)
  uint64_t lost = 0;
  double jitter_ms = 0;
  double rtt_ms = -1;     ///< -1: unknown (scored as 0)
};

/// One scored interval.
struct QualityInterval {
  QualitySource source = QualitySource::kRelay;
  Direction direction = Direction::kCallerToCallee;
  MediaKind kind = MediaKind::kAudio;
  TimeMs start = 0, end = 0;
  IntervalMeasure measure;
  double loss_ratio = 0;
  double mos = 0;
  QualityClass quality = QualityClass::kExcellent;
};

/// Scores one interval (loss ratio = lost / expected, 0 when nothing was expected).
QualityInterval score_interval(QualitySource source, Direction direction, MediaKind kind,
                               TimeMs start, TimeMs end, const IntervalMeasure& m);

/// A whole call's figures for one direction, kind and source.
struct QualitySummary {
  uint32_t intervals = 0;  ///< 0: nothing measured (the rest is meaningless)
  double mean_mos = 0, worst_mos = 0;
  uint64_t expected = 0, lost = 0;  ///< totals; loss ratio = lost / expected
  double worst_loss_ratio = 0;      ///< of the worst interval
  double mean_jitter_ms = 0, worst_jitter_ms = 0;
  double mean_rtt_ms = -1, worst_rtt_ms = -1;  ///< -1: never known
  std::array<int64_t, kQualityClasses> ms_in_class{};  ///< time spent in each class
  friend bool operator==(const QualitySummary&, const QualitySummary&) = default;
};

/// Relay-observed and client-reported side by side.
struct SourcePair {
  QualitySummary relay, client;
  friend bool operator==(const SourcePair&, const SourcePair&) = default;
};

/// A video fallback: the sender stopped its video for poor quality (and maybe restored it).
struct VideoFallback {
  Party party = Party::kCaller;  ///< who stopped sending video
  TimeMs at = 0;
  TimeMs restored = 0;           ///< 0: not restored before the call ended
  friend bool operator==(const VideoFallback&, const VideoFallback&) = default;
};

/// What a call record carries about quality.
struct CallQuality {
  /// [direction][kind]
  std::array<std::array<SourcePair, 2>, 2> streams{};
  /// Intervals where the relay's and the receiving client's loss for the same direction and
  /// kind differed by more than the margin: the client reported less loss than the relay saw
  /// before it (under-reporting), or more (loss after the relay).
  uint32_t client_underreports = 0;
  uint32_t loss_after_relay = 0;
  std::vector<VideoFallback> video_fallbacks;
  bool empty() const;
  friend bool operator==(const CallQuality&, const CallQuality&) = default;
};

/// Loss ratios differing by more than this (absolute) count as a disagreement.
inline constexpr double kDisagreementMargin = 0.02;
/// compare() needs at least this many expected packets on both sides: over fewer, one lost
/// packet alone moves the ratio by more than the margin.
inline constexpr uint64_t kMinComparePackets = 50;
/// A record keeps at most this many video fallbacks (a client toggling its video cannot grow a
/// record without bound); later ones are not recorded.
inline constexpr size_t kMaxVideoFallbacks = 32;

/// Accumulates one call's intervals into a CallQuality.
class QualityTracker {
 public:
  void add(const QualityInterval& interval);
  /// Compares the relay's and the client's loss for one direction and kind over the same
  /// time (both measured over roughly one interval), counting a disagreement when they differ
  /// by more than kDisagreementMargin. Returns which, if any: "client_underreports" or
  /// "loss_after_relay" (nullptr: they agree, or either side expected fewer than
  /// kMinComparePackets packets).
  const char* compare(Direction direction, MediaKind kind, const IntervalMeasure& relay,
                      const IntervalMeasure& client);
  /// `party` stopped its video for poor quality at `at`. Ignored while that party's previous
  /// fallback is not restored, and beyond kMaxVideoFallbacks.
  void video_fallback(Party party, TimeMs at);
  /// `party` sends video again: closes its open fallback, if any.
  void video_restored(Party party, TimeMs at);
  const CallQuality& result() const { return quality_; }

 private:
  CallQuality quality_;
  // Sums for the means, per [direction][kind][source].
  struct Sums {
    double mos = 0, jitter = 0, rtt = 0;
    uint32_t rtt_count = 0;
  };
  std::array<std::array<std::array<Sums, 2>, 2>, 2> sums_{};
};

/// The SDK's fallback rule, here so that the server and tests share one definition: video is
/// dropped after this many consecutive poor intervals, measured on the receiving side.
inline constexpr int kFallbackPoorIntervals = 3;
/// Video is offered back after this many consecutive intervals of good or excellent quality.
inline constexpr int kRestoreGoodIntervals = 6;

/// Follows one sender's video class, interval by interval.
class FallbackRule {
 public:
  enum class Advice : uint8_t { kNone, kDropVideo, kOfferVideo };
  /// One interval's class: of the outbound video while `video_on`, of the audio (the only
  /// media left) while it is off. kDropVideo after kFallbackPoorIntervals poor intervals in a
  /// row with video on; kOfferVideo after kRestoreGoodIntervals good-or-excellent intervals in
  /// a row with video off. Each advice is given once per run; any other class resets the run.
  Advice on_interval(QualityClass video_or_audio_class, bool video_on);

 private:
  int poor_run_ = 0;
  int good_run_ = 0;
};

}  // namespace callrelay::calls
