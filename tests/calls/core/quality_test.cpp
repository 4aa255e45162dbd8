// Call quality arithmetic: the E-model against known vectors, loss classes at their edges,
// interval scores, per-call summaries, relay/client comparison and the fallback rule.
#include "calls/core/quality.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace callrelay::calls {
namespace {

double round2(double v) { return std::round(v * 100) / 100; }

TEST(EModel, KnownVectors) {
  // Effective latency 0 + 0 + 10 ms: R = 93.2 - 10/40.
  EModelScore clean = e_model(0, 0, 0);
  EXPECT_NEAR(clean.r, 92.95, 1e-9);
  EXPECT_DOUBLE_EQ(round2(clean.mos), 4.40);
  // 510 ms is past the knee: R = 93.2 - (510 - 120)/10.
  EModelScore slow = e_model(500, 0, 0);
  EXPECT_NEAR(slow.r, 54.2, 1e-9);
  EXPECT_DOUBLE_EQ(round2(slow.mos), 2.80);
  // 1% loss costs 2.5 R.
  EModelScore lossy = e_model(0, 0, 0.01);
  EXPECT_NEAR(lossy.r, 90.45, 1e-9);
  EXPECT_DOUBLE_EQ(round2(lossy.mos), 4.35);
  // Jitter counts twice: 20 ms jitter is 40 ms of latency.
  EXPECT_NEAR(e_model(0, 20, 0).r, 93.2 - 50.0 / 40, 1e-9);
  EXPECT_NEAR(e_model(40, 0, 0).r, e_model(0, 20, 0).r, 1e-9);
}

TEST(EModel, KneeIsContinuousAndSlopesChange) {
  // 150 ms RTT + 10 ms = 160 ms: both formulas give 89.2.
  EXPECT_NEAR(e_model(150, 0, 0).r, 89.2, 1e-9);
  EXPECT_NEAR(e_model(149, 0, 0).r, 93.2 - 159.0 / 40, 1e-9);
  EXPECT_NEAR(e_model(151, 0, 0).r, 93.2 - (161.0 - 120) / 10, 1e-9);
}

TEST(EModel, RAndMosAreClamped) {
  const EModelScore awful = e_model(5000, 1000, 0.5);
  EXPECT_EQ(awful.r, 0);
  EXPECT_EQ(awful.mos, 1);
  EXPECT_EQ(e_model(0, 0, 1).r, 0);
  // Loss above 1 or figures that are not numbers count as at most total loss / nothing.
  EXPECT_EQ(e_model(0, 0, 7).r, 0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NEAR(e_model(nan, -5, nan).r, 92.95, 1e-9);
  for (double rtt : {0.0, 50.0, 150.0, 400.0, 2000.0}) {
    for (double loss : {0.0, 0.02, 0.2, 1.0}) {
      const EModelScore s = e_model(rtt, 5, loss);
      EXPECT_GE(s.r, 0);
      EXPECT_LE(s.r, 100);
      EXPECT_GE(s.mos, 1);
      EXPECT_LE(s.mos, 4.5);
    }
  }
}

TEST(ClassifyLoss, EdgesAtOneThreeAndFivePercent) {
  EXPECT_EQ(classify_loss(0), QualityClass::kExcellent);
  EXPECT_EQ(classify_loss(0.0099), QualityClass::kExcellent);
  EXPECT_EQ(classify_loss(0.01), QualityClass::kGood);
  EXPECT_EQ(classify_loss(0.0299), QualityClass::kGood);
  EXPECT_EQ(classify_loss(0.03), QualityClass::kFair);
  EXPECT_EQ(classify_loss(0.0499), QualityClass::kFair);
  EXPECT_EQ(classify_loss(0.05), QualityClass::kPoor);
  EXPECT_EQ(classify_loss(1), QualityClass::kPoor);
  EXPECT_EQ(classify_loss(-0.5), QualityClass::kExcellent);
}

TEST(QualityNames, AreTheRecordAndMetricLabels) {
  EXPECT_STREQ(to_string(QualityClass::kExcellent), "excellent");
  EXPECT_STREQ(to_string(QualityClass::kPoor), "poor");
  EXPECT_STREQ(to_string(QualitySource::kRelay), "relay");
  EXPECT_STREQ(to_string(QualitySource::kClient), "client");
  EXPECT_STREQ(to_string(MediaKind::kVideo), "video");
  EXPECT_STREQ(to_string(Direction::kCallerToCallee), "caller_to_callee");
  EXPECT_STREQ(to_string(Direction::kCalleeToCaller), "callee_to_caller");
  EXPECT_STREQ(to_string(static_cast<QualityClass>(9)), "unknown");
}

TEST(ScoreInterval, LossRatioClassAndMos) {
  const QualityInterval q = score_interval(QualitySource::kClient, Direction::kCalleeToCaller,
                                           MediaKind::kVideo, 1000, 6000, {1000, 40, 4.5, 30});
  EXPECT_EQ(q.source, QualitySource::kClient);
  EXPECT_EQ(q.direction, Direction::kCalleeToCaller);
  EXPECT_EQ(q.kind, MediaKind::kVideo);
  EXPECT_EQ(q.start, 1000);
  EXPECT_EQ(q.end, 6000);
  EXPECT_DOUBLE_EQ(q.loss_ratio, 0.04);
  EXPECT_EQ(q.quality, QualityClass::kFair);
  EXPECT_DOUBLE_EQ(q.mos, e_model(30, 4.5, 0.04).mos);
}

TEST(ScoreInterval, NothingExpectedIsNoLossAndUnknownRttScoresAsZero) {
  const QualityInterval q = score_interval(QualitySource::kRelay, Direction::kCallerToCallee,
                                           MediaKind::kAudio, 0, 5000, {0, 0, 0, -1});
  EXPECT_EQ(q.loss_ratio, 0);
  EXPECT_EQ(q.quality, QualityClass::kExcellent);
  EXPECT_DOUBLE_EQ(q.mos, e_model(0, 0, 0).mos);
  EXPECT_EQ(q.measure.rtt_ms, -1);
  // A report of more lost than expected is capped at total loss.
  const QualityInterval bad = score_interval(QualitySource::kClient, Direction::kCallerToCallee,
                                             MediaKind::kAudio, 0, 5000, {10, 50, 0, 0});
  EXPECT_EQ(bad.loss_ratio, 1);
  EXPECT_EQ(bad.measure.lost, 10u);
}

QualityInterval interval(QualitySource src, TimeMs start, TimeMs end, IntervalMeasure m,
                         MediaKind kind = MediaKind::kAudio) {
  return score_interval(src, Direction::kCallerToCallee, kind, start, end, m);
}

TEST(QualityTracker, SummarizesMeansWorstsTotalsAndTimeInClass) {
  QualityTracker t;
  EXPECT_TRUE(t.result().empty());
  const QualityInterval a = interval(QualitySource::kRelay, 0, 5000, {1000, 0, 2, 20});
  const QualityInterval b = interval(QualitySource::kRelay, 5000, 10000, {1000, 20, 8, -1});
  const QualityInterval c = interval(QualitySource::kRelay, 10000, 14000, {500, 30, 5, 40});
  for (const auto& i : {a, b, c}) t.add(i);
  const QualitySummary& s = t.result().streams[0][0].relay;
  EXPECT_EQ(s.intervals, 3u);
  EXPECT_NEAR(s.mean_mos, (a.mos + b.mos + c.mos) / 3, 1e-12);
  EXPECT_DOUBLE_EQ(s.worst_mos, c.mos);
  EXPECT_EQ(s.expected, 2500u);
  EXPECT_EQ(s.lost, 50u);
  EXPECT_DOUBLE_EQ(s.worst_loss_ratio, 0.06);
  EXPECT_DOUBLE_EQ(s.mean_jitter_ms, 5);
  EXPECT_DOUBLE_EQ(s.worst_jitter_ms, 8);
  EXPECT_DOUBLE_EQ(s.mean_rtt_ms, 30);  // the interval without an RTT does not count
  EXPECT_DOUBLE_EQ(s.worst_rtt_ms, 40);
  EXPECT_EQ(s.ms_in_class[static_cast<size_t>(QualityClass::kExcellent)], 5000);
  EXPECT_EQ(s.ms_in_class[static_cast<size_t>(QualityClass::kGood)], 5000);
  EXPECT_EQ(s.ms_in_class[static_cast<size_t>(QualityClass::kFair)], 0);
  EXPECT_EQ(s.ms_in_class[static_cast<size_t>(QualityClass::kPoor)], 4000);
  // The other streams and sources are untouched.
  EXPECT_EQ(t.result().streams[0][0].client.intervals, 0u);
  EXPECT_EQ(t.result().streams[0][1].relay.intervals, 0u);
  EXPECT_EQ(t.result().streams[1][0].relay.intervals, 0u);
  EXPECT_FALSE(t.result().empty());
}

TEST(QualityTracker, RttNeverKnownStaysUnknown) {
  QualityTracker t;
  t.add(interval(QualitySource::kClient, 0, 5000, {100, 0, 1, -1}, MediaKind::kVideo));
  const QualitySummary& s = t.result().streams[0][1].client;
  EXPECT_EQ(s.intervals, 1u);
  EXPECT_EQ(s.mean_rtt_ms, -1);
  EXPECT_EQ(s.worst_rtt_ms, -1);
}

TEST(QualityTracker, RefusesIntervalsOutsideItsStreams) {
  QualityTracker t;
  QualityInterval odd = interval(QualitySource::kRelay, 0, 5000, {100, 0, 1, 1});
  odd.direction = static_cast<Direction>(5);
  t.add(odd);
  odd = interval(QualitySource::kRelay, 5000, 0, {100, 0, 1, 1});  // ends before it starts
  t.add(odd);
  EXPECT_EQ(t.result().streams[0][0].relay.intervals, 1u);
  EXPECT_EQ(t.result().streams[0][0].relay.ms_in_class[0], 0);
}

TEST(QualityTracker, CompareCountsDisagreementsBeyondTheMargin) {
  QualityTracker t;
  const auto d = Direction::kCallerToCallee;
  const auto k = MediaKind::kAudio;
  // Client 5% against relay 1%: the loss happened after the relay.
  EXPECT_STREQ(t.compare(d, k, {1000, 10, 0, 0}, {1000, 50, 0, 0}), "loss_after_relay");
  // Relay 6%, client 1%: the client reports less than was lost before the relay.
  EXPECT_STREQ(t.compare(d, k, {1000, 60, 0, 0}, {1000, 10, 0, 0}), "client_underreports");
  // Exactly the margin apart, and within it: agreement.
  EXPECT_EQ(t.compare(d, k, {1000, 10, 0, 0}, {1000, 30, 0, 0}), nullptr);
  EXPECT_EQ(t.compare(d, k, {1000, 30, 0, 0}, {1000, 20, 0, 0}), nullptr);
  EXPECT_EQ(t.result().loss_after_relay, 1u);
  EXPECT_EQ(t.result().client_underreports, 1u);
}

TEST(QualityTracker, CompareNeedsEnoughPacketsOnBothSides) {
  QualityTracker t;
  const auto d = Direction::kCalleeToCaller;
  const auto k = MediaKind::kVideo;
  const uint64_t n = kMinComparePackets;
  EXPECT_EQ(t.compare(d, k, {n - 1, 0, 0, 0}, {1000, 500, 0, 0}), nullptr);
  EXPECT_EQ(t.compare(d, k, {1000, 0, 0, 0}, {n - 1, n - 1, 0, 0}), nullptr);
  EXPECT_EQ(t.compare(d, k, {0, 0, 0, 0}, {0, 0, 0, 0}), nullptr);
  EXPECT_STREQ(t.compare(d, k, {n, 0, 0, 0}, {n, 10, 0, 0}), "loss_after_relay");
  EXPECT_EQ(t.result().loss_after_relay, 1u);
}

TEST(QualityTracker, VideoFallbacksOpenOncePerPartyAndRestore) {
  QualityTracker t;
  t.video_fallback(Party::kCaller, 1000);
  t.video_fallback(Party::kCaller, 2000);  // still off: the same fallback
  t.video_fallback(Party::kCallee, 3000);
  t.video_restored(Party::kCaller, 4000);
  t.video_restored(Party::kCaller, 5000);  // nothing open any more
  t.video_fallback(Party::kCaller, 6000);  // a new episode
  const std::vector<VideoFallback> expected = {
      {Party::kCaller, 1000, 4000}, {Party::kCallee, 3000, 0}, {Party::kCaller, 6000, 0}};
  EXPECT_EQ(t.result().video_fallbacks, expected);
  EXPECT_FALSE(t.result().empty());
}

TEST(QualityTracker, VideoFallbacksAreCapped) {
  QualityTracker t;
  for (TimeMs i = 1; i <= 2 * static_cast<TimeMs>(kMaxVideoFallbacks); ++i) {
    t.video_fallback(Party::kCallee, i * 10);
    t.video_restored(Party::kCallee, i * 10 + 5);
  }
  ASSERT_EQ(t.result().video_fallbacks.size(), kMaxVideoFallbacks);
  EXPECT_EQ(t.result().video_fallbacks.back().at, static_cast<TimeMs>(kMaxVideoFallbacks) * 10);
}

using Advice = FallbackRule::Advice;
constexpr auto kPoor = QualityClass::kPoor;
constexpr auto kFair = QualityClass::kFair;
constexpr auto kGood = QualityClass::kGood;
constexpr auto kExcellent = QualityClass::kExcellent;

TEST(FallbackRule, DropsVideoAfterThreePoorInARowOnce) {
  FallbackRule rule;
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kDropVideo);
  // Still poor and video still on (the SDK has not acted yet): no second advice.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
}

TEST(FallbackRule, AnyNonPoorIntervalResetsThePoorRun) {
  FallbackRule rule;
  for (QualityClass breaker : {kFair, kGood, kExcellent}) {
    EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
    EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
    EXPECT_EQ(rule.on_interval(breaker, true), Advice::kNone);
  }
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kDropVideo);
}

TEST(FallbackRule, OffersVideoAfterSixGoodOrBetterWhileOffOnce) {
  FallbackRule rule;
  for (int i = 0; i < 3; ++i) rule.on_interval(kPoor, true);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(rule.on_interval(i % 2 ? kGood : kExcellent, false), Advice::kNone) << i;
  }
  EXPECT_EQ(rule.on_interval(kGood, false), Advice::kOfferVideo);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rule.on_interval(kExcellent, false), Advice::kNone);
}

TEST(FallbackRule, AnyNonGoodIntervalResetsTheGoodRun) {
  FallbackRule rule;
  for (QualityClass breaker : {kFair, kPoor}) {
    for (int i = 0; i < 5; ++i) EXPECT_EQ(rule.on_interval(kGood, false), Advice::kNone);
    EXPECT_EQ(rule.on_interval(breaker, false), Advice::kNone);
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(rule.on_interval(kExcellent, false), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kExcellent, false), Advice::kOfferVideo);
}

TEST(FallbackRule, GoodIntervalsWithVideoOnOfferNothing) {
  FallbackRule rule;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(rule.on_interval(kExcellent, true), Advice::kNone);
}

TEST(FallbackRule, RunsStartAfreshWhenVideoTurnsOnOrOff) {
  FallbackRule rule;
  // Two poor with video on, then video off: the poor run does not carry over.
  rule.on_interval(kPoor, true);
  rule.on_interval(kPoor, true);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rule.on_interval(kGood, false), Advice::kNone);
  // Video back on (the user restored it early): the good run is gone, a new poor run counts.
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kDropVideo);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(rule.on_interval(kGood, false), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kGood, false), Advice::kOfferVideo);
  // After the restore a second fallback episode is advised again.
  for (int i = 0; i < 2; ++i) EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kNone);
  EXPECT_EQ(rule.on_interval(kPoor, true), Advice::kDropVideo);
}

}  // namespace
}  // namespace callrelay::calls
