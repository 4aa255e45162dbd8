// The call quality metrics: every series exists at zero from the start, with exactly the
// spec's names, labels and buckets, and each interval, disagreement and fallback lands in its
// own series.
#include "calls/signaling/call_metrics.hpp"

#include <gtest/gtest.h>

#include <string>

namespace callrelay::calls {
namespace {

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(CallQualityMetrics, EverySeriesExistsAtZeroFromTheStart) {
  const CallMetrics m;
  const std::string text = m.scrape_text();
  for (const char* family : {"mos", "loss_ratio", "jitter_seconds", "rtt_seconds"})
    for (const char* source : {"relay", "client"})
      for (const char* kind : {"audio", "video"})
        EXPECT_TRUE(has(text, std::string("callrelay_call_quality_") + family + "_count{kind=\"" +
                                  kind + "\",source=\"" + source + "\"} 0"))
            << family << " " << source << " " << kind;
  for (const char* cls : {"excellent", "good", "fair", "poor"})
    EXPECT_TRUE(has(text, std::string("callrelay_call_quality_intervals_total{class=\"") + cls +
                              "\",kind=\"video\",source=\"client\"} 0"));
  for (const char* reason : {"client_underreports", "loss_after_relay"})
    EXPECT_TRUE(has(text, std::string("callrelay_call_quality_disagreements_total{kind=\"audio\","
                                      "reason=\"") +
                              reason + "\"} 0"));
  EXPECT_TRUE(has(text, "callrelay_call_video_fallbacks_total 0"));
}

TEST(CallQualityMetrics, BucketsAreTheSpecs) {
  const std::string text = CallMetrics().scrape_text();
  const auto bucket = [&](const std::string& family, const std::string& le) {
    return has(text, "callrelay_call_quality_" + family +
                         "_bucket{kind=\"audio\",source=\"relay\",le=\"" + le + "\"} 0");
  };
  for (const char* le : {"1", "1.5", "2", "2.5", "3", "3.5", "4", "4.25", "4.5", "+Inf"})
    EXPECT_TRUE(bucket("mos", le)) << le;
  for (const char* le : {"0.001", "0.005", "0.01", "0.02", "0.03", "0.05", "0.1", "0.2", "0.5"})
    EXPECT_TRUE(bucket("loss_ratio", le)) << le;
  for (const char* le : {"0.001", "0.0025", "0.005", "0.01", "0.02", "0.03", "0.05", "0.1", "0.2"})
    EXPECT_TRUE(bucket("jitter_seconds", le)) << le;
  for (const char* le : {"0.005", "0.01", "0.025", "0.05", "0.1", "0.2", "0.3", "0.5", "1"})
    EXPECT_TRUE(bucket("rtt_seconds", le)) << le;
}

TEST(CallQualityMetrics, IntervalsDisagreementsAndFallbacksAreCounted) {
  CallMetrics m;
  IntervalMeasure measure;
  measure.expected = 1000;
  measure.lost = 40;
  measure.jitter_ms = 8;
  measure.rtt_ms = 120;
  m.on_quality_interval(score_interval(QualitySource::kClient, Direction::kCalleeToCaller,
                                       MediaKind::kVideo, 0, 5000, measure));
  measure.rtt_ms = -1;  // unknown: no RTT observation
  m.on_quality_interval(score_interval(QualitySource::kClient, Direction::kCallerToCallee,
                                       MediaKind::kVideo, 0, 5000, measure));
  m.on_disagreement(MediaKind::kVideo, "loss_after_relay");
  m.on_disagreement(MediaKind::kVideo, "something else");
  m.on_video_fallback();
  const std::string text = m.scrape_text();
  EXPECT_TRUE(has(text,
                  "callrelay_call_quality_intervals_total{class=\"fair\",kind=\"video\","
                  "source=\"client\"} 2"));
  EXPECT_TRUE(has(text,
                  "callrelay_call_quality_loss_ratio_bucket{kind=\"video\","
                  "source=\"client\",le=\"0.03\"} 0"));
  EXPECT_TRUE(has(text,
                  "callrelay_call_quality_loss_ratio_bucket{kind=\"video\","
                  "source=\"client\",le=\"0.05\"} 2"));
  EXPECT_TRUE(has(text,
                  "callrelay_call_quality_jitter_seconds_bucket{kind=\"video\","
                  "source=\"client\",le=\"0.01\"} 2"));
  EXPECT_TRUE(has(text,
                  "callrelay_call_quality_rtt_seconds_count{kind=\"video\","
                  "source=\"client\"} 1"));
  EXPECT_TRUE(has(text,
                  "callrelay_call_quality_rtt_seconds_bucket{kind=\"video\","
                  "source=\"client\",le=\"0.1\"} 0"));
  EXPECT_TRUE(has(text, "callrelay_call_quality_mos_count{kind=\"audio\",source=\"client\"} 0"));
  EXPECT_TRUE(has(text,
                  "callrelay_call_quality_disagreements_total{kind=\"video\","
                  "reason=\"loss_after_relay\"} 1"));
  EXPECT_TRUE(has(text,
                  "callrelay_call_quality_disagreements_total{kind=\"video\","
                  "reason=\"client_underreports\"} 0"));
  EXPECT_TRUE(has(text, "callrelay_call_video_fallbacks_total 1"));
}

}  // namespace
}  // namespace callrelay::calls
